#ifndef LAYER_FOLDER_INT_H
#define LAYER_FOLDER_INT_H

/*
 * Internals shared by the transport folder writer (folder.c) and the
 * folder reader (reader.c, LAYER_KIND_FOLDER).
 *
 * tombstones.txt: the first line is exactly "Version 1.0"; each further
 * line is one deleted path, relative, '/'-separated, in reader order, with
 * '\\' written as "\\\\" and a newline as "\\n" so that any name fits on
 * one line.
 */

#include <stddef.h>

/**
 * Undo the tombstones.txt escaping of one line in place.
 *
 * @param line the line, NUL-terminated, without its newline
 * @param[in,out] len its length; updated
 * @return 0, or -1 for an invalid escape
 */
int layer_folder__unescape(char *line, size_t *len);

#endif
