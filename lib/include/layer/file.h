#ifndef LAYER_FILE_H
#define LAYER_FILE_H

/**
 * @file layer/file.h
 * @brief Small files read with a cap: whole (metadata, configuration,
 * keys, the API contract) or line by line (tombstones.txt).
 *
 * Both refuse to grow past their cap before they allocate for it, so a
 * file planted by someone else (or one that keeps growing) costs at most
 * the cap in memory. Messages name the file the way the caller describes
 * it and say what went wrong with it, e.g. "cannot open config file
 * /etc/layerd.conf: No such file or directory".
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** layer_file_read() flag: refuse a symlink as the last component. */
#define LAYER_FILE_NOFOLLOW 1u
/** layer_file_read() flag: name is a relative path resolved beneath dirfd
 * with no symlink in any component (layer_beneath_open()); implies
 * LAYER_FILE_NOFOLLOW. For files below a directory someone else writes. */
#define LAYER_FILE_BENEATH 2u

/**
 * Read a whole regular file and NUL-terminate it.
 *
 * The file is opened with O_NONBLOCK and checked with fstat() before any
 * read, so a FIFO or a device under the name is refused at once instead
 * of blocking; a file larger than cap is refused before anything is
 * allocated, and one that grows past cap while it is read is refused too.
 *
 * @param[out] out the bytes, len + 1 of them with the NUL; owned by the
 *             caller (layer_free()); set only on success
 * @param[out] out_len the length, without the NUL
 * @param dirfd the directory name is relative to, or AT_FDCWD
 * @param name the file's name or path
 * @param cap the largest size accepted, in bytes
 * @param flags 0, LAYER_FILE_NOFOLLOW or LAYER_FILE_BENEATH
 * @param what how messages call the file (e.g. "config file
 *        /etc/layerd.conf", "layer base: layer.json"); NULL: by name
 * @return 0; LAYER_ENOTFOUND if it does not exist (or a directory on its
 *         path does not); LAYER_EINVALID if it is not a regular file, or
 *         a symlink under LAYER_FILE_NOFOLLOW, or a symlink or a path
 *         leaving dirfd anywhere on the way under LAYER_FILE_BENEATH;
 * LAYER_ETOOBIG if it is larger than cap; LAYER_ERROR (with the errno) for
 * other open or read failures; LAYER_ENOMEM
 */
int layer_file_read(char **out, size_t *out_len, int dirfd, const char *name,
                    size_t cap, unsigned flags, const char *what);

/**
 * Read the whole regular file open on fd, from its current offset, and
 * NUL-terminate it: layer_file_read() on a descriptor the caller opened
 * (and may have checked with fstat(), e.g. its owner and mode) and still
 * owns. Same checks, caps and results; what names the file in messages
 * (NULL: "the file").
 */
int layer_file_read_fd(char **out, size_t *out_len, int fd, size_t cap,
                       const char *what);

/**
 * A bounded line reader over an open file descriptor: unlike getline(),
 * it never holds more than one line of at most `max` bytes, however long
 * the line in the file is.
 *
 * Set up with layer_file_lines_init(), release with
 * layer_file_lines_dispose(). The fields are private.
 */
typedef struct layer_file_lines {
    int fd;            /* not owned */
    char *buf;         /* max + 2 bytes: a line, its '\n' and a NUL */
    size_t cap;        /* bytes at buf */
    size_t start, end; /* bytes read and not yet returned */
    size_t max;        /* longest line, without its '\n' */
    uint64_t lineno;   /* lines returned so far */
    bool eof;
    const char *what;
} layer_file_lines;

/**
 * Prepare to read lines from fd (which stays the caller's).
 *
 * @param[out] l the reader
 * @param fd an open descriptor, read from its current offset
 * @param max the longest line accepted, without its newline; at most
 *        SIZE_MAX - 2
 * @param what the file's name for messages, e.g. "tombstones.txt"
 * @return 0 or LAYER_ENOMEM; l may be disposed either way
 */
int layer_file_lines_init(layer_file_lines *l, int fd, size_t max,
                          const char *what);

/**
 * The next line, without its '\n' (a '\r' before it is kept; the last
 * line may lack the '\n').
 *
 * @param[out] out_line the line, NUL-terminated; the caller may change its
 *             bytes in place; valid until the next call
 * @param[out] out_len its length
 * @param l the reader
 * @return 0; LAYER_ITEROVER at the end of the file; LAYER_ETOOBIG for a
 *         line longer than max (the message names the file and the line
 *         number); LAYER_ERROR (with the errno) when a read fails
 */
int layer_file_lines_next(char **out_line, size_t *out_len,
                          layer_file_lines *l);

/** Release the reader's buffer (not its fd); NULL is accepted. */
void layer_file_lines_dispose(layer_file_lines *l);

#endif
