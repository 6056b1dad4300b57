#ifndef LAYER_FOLDER_INT_H
#define LAYER_FOLDER_INT_H

/*
 * Internals shared by the transport folder writer (folder.c) and the
 * folder reader (reader.c, LAYER_KIND_FOLDER).
 *
 * tombstones.txt: the first line is exactly "Version 1.0"; each further
 * line is one deleted path, relative, '/'-separated, in reader order, with
 * '\\' written as "\\\\", a newline as "\\n" and a carriage return as
 * "\\r", so that any name fits on one line and no line carries a raw CR
 * (readers strip a CR before the newline, as Windows-written files have
 * one).
 */

#include <stddef.h>

/**
 * Undo the tombstones.txt escaping of one line in place.
 *
 * @param line the line, NUL-terminated, without its newline
 * @param[in,out] len its length; updated (the result is NUL-terminated)
 * @return 0, or LAYER_EINVALID for a backslash that is not followed by
 *         '\\', 'n' or 'r' (nothing is recorded with layer_error_set;
 *         the caller names the file)
 */
int layer_folder__unescape(char *line, size_t *len);

/**
 * Escape a path for one tombstones.txt line (without the newline).
 *
 * @param[out] out destination, at least 2 * len bytes
 * @param path the path bytes
 * @param len their number
 * @return the number of bytes written
 */
size_t layer_folder__escape(char *out, const char *path, size_t len);

#endif
