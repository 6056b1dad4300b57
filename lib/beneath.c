/*
 * Opening a relative path beneath a directory fd, for files a client
 * names (the dashboard's --ui-dir): the path is checked as text first
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

/* Is path a well-formed relative path of len bytes? */
static bool path_ok(const char *path, size_t len)
{
    size_t start = 0;

    if (len == 0 || len > LAYER_BENEATH_PATH_MAX)
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
            fd = openat(dfd, name, oflags | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0)
                rc = open_error(errno, path);
            break;
        }
        fd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            struct stat st;

            /* O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR */
            if (err == ENOTDIR &&
                fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode))
                err = ELOOP;
            rc = open_error(err, path);
            break;
        }
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

int layer_beneath_open(int *out_fd, int root_fd, const char *path, int oflags,
                       unsigned how)
{
    struct open_how oh;
    int fd;

    if (path == NULL || !path_ok(path, strlen(path)))
        return layer_error_set(LAYER_EINVALID,
                               "not a relative path without empty, '.' or "
                               "'..' components");
    if ((how & LAYER_BENEATH_WALK) == 0) {
        memset(&oh, 0, sizeof(oh));
        oh.flags = (unsigned long long)(oflags | O_NOFOLLOW | O_CLOEXEC);
        oh.resolve =
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        fd = (int)syscall(SYS_openat2, root_fd, path, &oh, sizeof(oh));
        if (fd >= 0) {
            *out_fd = fd;
            return 0;
        }
        if (errno != ENOSYS)
            return open_error(errno, path);
    }
    return walk_open(out_fd, root_fd, path, oflags);
}
