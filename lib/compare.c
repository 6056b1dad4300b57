/*
 * Has a file changed between a parent's tree and the layer's?
 *
 * A snapshot layer is a full tree, so its changeset is the difference to
 * the nearest parent, found by walking both (as continuity's fs.Changes,
 * which containerd uses, does). These are continuity's sameFile rules, so
 * that both tools give the same changeset for the same trees:
 *   - the same (dev, ino) is the same file (a hard link between the
 *     trees, or the same tree twice);
 *   - otherwise mode, uid, gid, rdev and security.capability must match
 *     (the capability because it changes what a file may do without
 *     changing its mode);
 *   - a directory compares nothing more: a change below it shows as the
 *     changed child;
 *   - other files compare size and mtime seconds; then, if either side
 *     has nanoseconds, equal nanoseconds mean unchanged and different
 *     ones changed (a file rewritten within the same second nearly always
 *     gets other nanoseconds);
 *   - both nanosecond parts 0 is what unpacking a tar leaves (tar keeps
 *     seconds only), so equal times say nothing: a symlink's target and a
 *     regular file's bytes are compared; other types count as unchanged.
 *
 * A diff layer holds only changes, but a directory is copied up into it
 * whenever something below it changes; it is itself a change only if its
 * mode, owner or capability differ from the parent's (same_dir).
 *
 * Only the content compare touches the disk: both files are opened by
 * name in their directory fds with O_NOFOLLOW | O_NONBLOCK (a fifo
 * swapped in meanwhile neither blocks nor is followed) and read in
 * 64 KiB pieces up to the first difference.
 */
#include "compare_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/error.h"

/* Compare buffers for the content check (continuity uses 32 KiB). */
#define COMPARE_BUF 65536
/* Longest symlink target compared: PATH_MAX, and one byte to see more. */
#define COMPARE_LINK_MAX 4097

bool layer_compare__same_cap(const layer_xattr__list *a,
                             const layer_xattr__list *b)
{
    const layer_xattr *ca = layer_xattr__find(a, "security.capability");
    const layer_xattr *cb = layer_xattr__find(b, "security.capability");

    if (ca == NULL || cb == NULL)
        return ca == cb;
    return ca->len == cb->len && memcmp(ca->value, cb->value, ca->len) == 0;
}

layer_compare__verdict layer_compare__meta(const struct statx *u,
                                           const struct statx *l,
                                           const layer_xattr__list *ux,
                                           const layer_xattr__list *lx)
{
    if (u->stx_dev_major == l->stx_dev_major &&
        u->stx_dev_minor == l->stx_dev_minor && u->stx_ino == l->stx_ino)
        return LAYER_COMPARE__SAME;
    if (u->stx_mode != l->stx_mode || u->stx_uid != l->stx_uid ||
        u->stx_gid != l->stx_gid || u->stx_rdev_major != l->stx_rdev_major ||
        u->stx_rdev_minor != l->stx_rdev_minor)
        return LAYER_COMPARE__DIFFERENT;
    if (!layer_compare__same_cap(ux, lx))
        return LAYER_COMPARE__DIFFERENT;
    if (S_ISDIR(u->stx_mode))
        return LAYER_COMPARE__SAME;
    if (u->stx_size != l->stx_size ||
        u->stx_mtime.tv_sec != l->stx_mtime.tv_sec)
        return LAYER_COMPARE__DIFFERENT;
    if (u->stx_mtime.tv_nsec != 0 || l->stx_mtime.tv_nsec != 0)
        return u->stx_mtime.tv_nsec == l->stx_mtime.tv_nsec
                   ? LAYER_COMPARE__SAME
                   : LAYER_COMPARE__DIFFERENT;
    /* both nanosecond parts 0: files from a tar */
    if (S_ISLNK(u->stx_mode))
        return LAYER_COMPARE__CONTENT;
    if (!S_ISREG(u->stx_mode) || u->stx_size == 0)
        return LAYER_COMPARE__SAME;
    return LAYER_COMPARE__CONTENT;
}

bool layer_compare__same_dir(const struct statx *u, const struct statx *l,
                             const layer_xattr__list *ux,
                             const layer_xattr__list *lx)
{
    return u->stx_mode == l->stx_mode && u->stx_uid == l->stx_uid &&
           u->stx_gid == l->stx_gid && layer_compare__same_cap(ux, lx);
}

static int same_target(bool *out, int ufd, int lfd, const char *name)
{
    char a[COMPARE_LINK_MAX], b[COMPARE_LINK_MAX];
    ssize_t na = readlinkat(ufd, name, a, sizeof(a));
    ssize_t nb = readlinkat(lfd, name, b, sizeof(b));

    if (na < 0 || nb < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: readlink", name);
    *out = na == nb && memcmp(a, b, (size_t)na) == 0;
    return 0;
}

/* Open name in dirfd to compare it: read-only, never following it. */
static int open_to_compare(int dirfd, const char *name, bool noatime)
{
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
    int fd = openat(dirfd, name, flags | (noatime ? O_NOATIME : 0));

    if (fd < 0 && errno == EPERM)
        fd = openat(dirfd, name, flags);
    return fd;
}

static int same_bytes(bool *out, int ufd, int lfd, const char *name,
                      bool noatime)
{
    int fa = -1, fb = -1;
    char *ba = layer_trymalloc(COMPARE_BUF * 2);
    int rc = 0;

    if (ba == NULL)
        return LAYER_ENOMEM;
    fa = open_to_compare(ufd, name, noatime);
    fb = open_to_compare(lfd, name, noatime);
    if (fa < 0 || fb < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: open to compare",
                                   name);
        goto out;
    }
    *out = true;
    for (;;) {
        ssize_t na = read(fa, ba, COMPARE_BUF);
        ssize_t nb, got = 0;

        if (na < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: read", name);
            goto out;
        }
        while (got < na) {
            nb = read(fb, ba + COMPARE_BUF + got, (size_t)(na - got));
            if (nb < 0) {
                rc =
                    layer_error_set_errno(LAYER_ERROR, errno, "%s: read", name);
                goto out;
            }
            if (nb == 0)
                break;
            got += nb;
        }
        if (got != na || memcmp(ba, ba + COMPARE_BUF, (size_t)na)) {
            *out = false;
            break;
        }
        if (na == 0)
            break;
    }
out:
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    layer_free(ba);
    return rc;
}

int layer_compare__same_file(bool *out, int ufd, int lfd, const char *name,
                             const struct statx *u, const struct statx *l,
                             const layer_xattr__list *ux,
                             const layer_xattr__list *lx, bool noatime)
{
    *out = false;
    switch (layer_compare__meta(u, l, ux, lx)) {
    case LAYER_COMPARE__SAME:
        *out = true;
        return 0;
    case LAYER_COMPARE__DIFFERENT:
        return 0;
    case LAYER_COMPARE__CONTENT:
        break;
    }
    if (S_ISLNK(u->stx_mode))
        return same_target(out, ufd, lfd, name);
    return same_bytes(out, ufd, lfd, name, noatime);
}
