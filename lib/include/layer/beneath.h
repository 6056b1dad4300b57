#ifndef LAYER_BENEATH_H
#define LAYER_BENEATH_H

/**
 * @file layer/beneath.h
 * @brief Open a file by a relative path without ever leaving a directory.
 *
 * Whatever the path says and whatever the tree holds (symlinks placed by
 * someone else, a rename racing the open), the file opened lies beneath
 * the directory: the kernel resolves the path with openat2(2)'s
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, and
 * where openat2 is missing (Linux before 5.6), a walk opens one component
 * at a time from the directory's fd with O_NOFOLLOW. No symlink is
 * followed, inside the directory or out of it.
 */

#include <stdbool.h>
#include <stddef.h>

/** Use the component walk even where openat2 exists (tests). */
#define LAYER_BENEATH_WALK 1u

/** Longest path accepted (bytes, without the NUL). */
#define LAYER_BENEATH_PATH_MAX 4096

/**
 * Check that path is a canonical relative path: not empty, at most
 * LAYER_BENEATH_PATH_MAX bytes, no NUL, no leading or trailing '/', and no
 * empty, "." or ".." component (so no "//", "./" or "/." either).
 *
 * @param path the bytes (need not be NUL-terminated)
 * @param len their number
 * @return true if path is canonical
 */
bool layer_beneath_path_valid(const char *path, size_t len);

/**
 * Open path beneath the directory root_fd.
 *
 * path is relative and '/'-separated; an empty path, a leading or
 * trailing '/', an empty, "." or ".." component, or more than
 * LAYER_BENEATH_PATH_MAX bytes is refused before any system call.
 *
 * @param[out] out_fd the descriptor (O_CLOEXEC); the caller closes it
 * @param root_fd an open directory (O_PATH is enough)
 * @param path the relative path, NUL-terminated
 * @param oflags open(2) flags for the last component (O_RDONLY,
 *        O_NONBLOCK, ...); O_NOFOLLOW and O_CLOEXEC are added
 * @param how 0, or LAYER_BENEATH_WALK
 * @return 0 (a kernel that answers EAGAIN, as openat2 may when a rename
 *         races the lookup, is asked again a few times first); LAYER_EINVALID
 * for a malformed path or one that meets a symlink or would leave the
 * directory; LAYER_ENOTFOUND when a component is missing or a middle component
 * is not a directory; LAYER_ERROR for other failures (errno recorded)
 */
int layer_beneath_open(int *out_fd, int root_fd, const char *path, int oflags,
                       unsigned how);

#endif
