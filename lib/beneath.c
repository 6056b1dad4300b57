/*
 * Opening a relative path beneath a directory fd: for paths a store's
 * metadata or a client names (a layer's data directory, a metadata file,
 * a --ui-dir file), and for directories the reader reopens. The path is
 * checked as text first
 * (no empty, "." or ".." component, no leading or trailing '/'), then
 * resolved by the kernel so that no symlink is followed and nothing
 * outside the directory is reached, whatever the tree holds.
 *
 * openat2(2) does it in one call. Where the kernel lacks it (ENOSYS), the
 * walk opens each middle component with O_PATH | O_DIRECTORY | O_NOFOLLOW
 * from the previous one's fd and the last with O_NOFOLLOW: every step is
 * relative to an fd already beneath the root, so a rename or a symlink
 * swapped in meanwhile can at worst make the open fail.
 */
#include "layer/beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "layer/error.h"

/* openat2 answers EAGAIN when a rename races a RESOLVE_BENEATH lookup
 * that it cannot prove safe; our paths have no "..", so a retry or two
 * settles it. Bounded: a store writer renaming in a loop gets an error,
 * not a spinning server. */
#define EAGAIN_RETRIES 8

bool layer_beneath_path_valid(const char *path, size_t len)
{
    size_t start = 0;

    if (path == NULL || len == 0 || len > LAYER_BENEATH_PATH_MAX ||
        memchr(path, '\0', len) != NULL)
        return false;
    for (size_t i = 0; i <= len; i++) {
        size_t n;

        if (i < len && path[i] != '/')
            continue;
        n = i - start;
        if (n == 0 || (n == 1 && path[start] == '.') ||
            (n == 2 && path[start] == '.' && path[start + 1] == '.'))
            return false;
        start = i + 1;
    }
    return true;
}

/* The code for an errno of a failed open. */
static int open_error(int err, const char *path)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return layer_error_set_errno(LAYER_ENOTFOUND, err, "%s: no such file",
                                     path);
    case ELOOP:
    case EXDEV:
        return layer_error_set_errno(LAYER_EINVALID, err,
                                     "%s: a symlink or a path leaving the "
                                     "directory",
                                     path);
    default:
        return layer_error_set_errno(LAYER_ERROR, err, "%s: cannot open", path);
    }
}

/* Open name in dfd without following a symlink; on failure, the error of
 * path. O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR: that is told
 * as the symlink it is. */
static int open_step(int *out_fd, int dfd, const char *name, int oflags,
                     const char *path)
{
    int err;
    struct stat st;

    if ((*out_fd = openat(dfd, name, oflags | O_NOFOLLOW | O_CLOEXEC)) >= 0)
        return 0;
    err = errno;
    if (err == ENOTDIR && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
        err = ELOOP;
    return open_error(err, path);
}

/* The component walk: each step from the fd of the one before. */
static int walk_open(int *out_fd, int root_fd, const char *path, int oflags)
{
    char name[LAYER_BENEATH_PATH_MAX + 1];
    const char *p = path;
    int dfd = root_fd, fd, rc = 0;

    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);

        memcpy(name, p, n);
        name[n] = '\0';
        if (slash == NULL) {
            rc = open_step(&fd, dfd, name, oflags, path);
            break;
        }
        if ((rc = open_step(&fd, dfd, name, O_PATH | O_DIRECTORY, path)) < 0)
            break;
        if (dfd != root_fd)
            close(dfd);
        dfd = fd;
        p = slash + 1;
    }
    if (dfd != root_fd)
        close(dfd);
    if (rc == 0)
        *out_fd = fd;
    return rc;
}

/* openat2 with O_DIRECTORY answers ENOTDIR for a last component that is a
 * symlink: tell that apart (for the message and the code) by opening the
 * last component itself, O_PATH | O_NOFOLLOW, which the kernel allows
 * even under RESOLVE_NO_SYMLINKS. Only the classification of a failure;
 * nothing is opened for use. */
static int last_is_symlink(int root_fd, const char *path)
{
    struct open_how oh;
    struct stat st;
    int fd, is = 0;

    memset(&oh, 0, sizeof(oh));
    oh.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    oh.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    fd = (int)syscall(SYS_openat2, root_fd, path, &oh, sizeof(oh));
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode))
        is = 1;
    close(fd);
    return is;
}

int layer_beneath_open(int *out_fd, int root_fd, const char *path, int oflags,
                       unsigned how)
{
    struct open_how oh;
    int fd, err, tries = 0;

    if (path == NULL || !layer_beneath_path_valid(
                            path, strnlen(path, LAYER_BENEATH_PATH_MAX + 1)))
        return layer_error_set(LAYER_EINVALID,
                               "not a relative path without empty, '.' or "
                               "'..' components");
    if ((how & LAYER_BENEATH_WALK) == 0) {
        memset(&oh, 0, sizeof(oh));
        oh.flags = (unsigned long long)(oflags | O_NOFOLLOW | O_CLOEXEC);
        oh.resolve =
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        do
            fd = (int)syscall(SYS_openat2, root_fd, path, &oh, sizeof(oh));
        while (fd < 0 && errno == EAGAIN && ++tries < EAGAIN_RETRIES);
        if (fd >= 0) {
            *out_fd = fd;
            return 0;
        }
        err = errno;
        if (err == ENOTDIR && (oflags & O_DIRECTORY) &&
            last_is_symlink(root_fd, path))
            err = ELOOP;
        if (err != ENOSYS)
            return open_error(err, path);
    }
    return walk_open(out_fd, root_fd, path, oflags);
}
