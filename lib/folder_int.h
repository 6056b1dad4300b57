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

/** Longest tombstones.txt line accepted, without its newline (64 KiB with
 * it): a path of PATH_MAX bytes escaped takes at most 8 KiB. */
#define LAYER_FOLDER__TOMBSTONE_LINE_MAX 65535

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

/** The deleted paths of a folder's tombstones.txt, read one at a time. */
typedef struct layer_folder__tombstones layer_folder__tombstones;

/**
 * Open a folder's tombstones.txt and check its version line ("Version
 * 1.0", after an optional UTF-8 BOM, ending the line or followed by '\r').
 * The file is read with a bounded line reader (no line over
 * LAYER_FOLDER__TOMBSTONE_LINE_MAX bytes is ever held) and must be a
 * regular file: a FIFO under the name is refused, not waited on.
 *
 * @param[out] out the reader, or NULL when the folder has no
 *             tombstones.txt (nothing was deleted); free with
 *             layer_folder__tombstones_free()
 * @param folder_fd the folder's directory fd (not kept)
 * @param folder the folder's path, for messages; may be NULL
 * @return 0; LAYER_EBROKEN for a file that is not a regular file, is
 *         empty or has no version line; LAYER_ERROR, LAYER_ENOMEM
 */
int layer_folder__tombstones_open(layer_folder__tombstones **out, int folder_fd,
                                  const char *folder);

/**
 * layer_folder__tombstones_open() over a file already open (the fuzz
 * target's way in): the same checks, the same reading.
 *
 * @param[out] out the reader; free with layer_folder__tombstones_free()
 * @param fd the file, read from its current offset; owned from the call
 *        on (closed on failure, or by layer_folder__tombstones_free())
 * @param what the file's name for messages
 * @return 0; LAYER_EBROKEN for a file that is not a regular file, is
 *         empty or has no version line; LAYER_ERROR, LAYER_ENOMEM
 */
int layer_folder__tombstones_from_fd(layer_folder__tombstones **out, int fd,
                                     const char *what);

/**
 * The next deleted path: unescaped, with a '\r' before the newline
 * dropped and empty lines skipped.
 *
 * @param[out] out_path the path, NUL-terminated, borrowed until the next
 *             call
 * @param[out] out_len its length
 * @return 0; LAYER_ITEROVER after the last one; LAYER_EBROKEN for a line
 *         that is too long, badly escaped, or not a canonical relative
 *         path (layer_beneath_path_valid(): no leading or trailing '/', no
 *         empty, "." or ".." component, no NUL; the message names the
 *         file and the line number); LAYER_ERROR on a read error
 */
int layer_folder__tombstones_next(const char **out_path, size_t *out_len,
                                  layer_folder__tombstones *t);

/** Close the file and free the reader; NULL is accepted. */
void layer_folder__tombstones_free(layer_folder__tombstones *t);

#endif
