/*
 * Extended attributes of the files the reader walks, and the overlayfs
 * markers they carry.
 *
 * Reading. An open file (a directory the walk holds) is read with the
 * f*xattr calls. Every other file is read by (dirfd, name) without being
 * opened, since a fifo or a device must not be opened and opening moves
 * atimes: with listxattrat(2)/getxattrat(2) (Linux 6.13) and
 * AT_SYMLINK_NOFOLLOW, or before them with the l*xattr calls on
 * "/proc/self/fd/<dirfd>/<name>" (a /proc lookup and a path walk per
 * call, about half of the reader's system time on a tree without
 * xattrs). Neither follows the last component, and dirfd was opened with
 * O_NOFOLLOW, so nothing outside the layer is read. The fallback is taken
 * for good, process-wide, once the kernel lacks the calls (ENOSYS) or a
 * seccomp filter refuses them (EPERM, which older container runtimes
 * answer for syscalls they do not know; reading xattrs never fails with
 * EPERM otherwise).
 *
 * Invariants of a layer_xattr__list: items are sorted by name (the order
 * entries and tar PAX records carry them); names and values point into
 * the list's one blob, names first (the listxattr answer as is), then the
 * values; at most 1 MiB in all. A value removed between the list and the
 * get is skipped, as if it had never been there.
 *
 * Overlay markers (trusted.overlay.* or, for unprivileged overlayfs,
 * user.overlay.*): whiteout (any value) on an empty file marks a deletion;
 * opaque = "y" on a directory hides the lower layers ("x" marks a merge
 * directory holding xattr whiteouts, and is NOT opaque); redirect and
 * metacopy mean the content lives in another layer, so the raw upperdir
 * cannot be exported and is refused. The markers are the layer's
 * mechanics, not data: they are stripped from the entries.
 */
#include "xattr_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/error.h"

/* Linux caps: XATTR_LIST_MAX and XATTR_SIZE_MAX are both 64 KiB. */
#define XATTRS_LIST_MAX 65536
#define XATTRS_SIZE_MAX 65536
/* First buffer size asked of listxattr and getxattr, retried at the caps
 * above on ERANGE: the kernel allocates what is asked for each call (64
 * KiB costs a page allocation, measured ~5% of a listing's CPU), and
 * nearly every list and value fits in 256 bytes. */
#define XATTRS_FIRST 256
/* Total xattr bytes kept for one file. */
#define XATTRS_TOTAL_MAX (1024 * 1024)

#define OVERLAY_TRUSTED "trusted.overlay."
#define OVERLAY_USER    "user.overlay."

/* ---- the list -------------------------------------------------------- */

void layer_xattr__dispose(layer_xattr__list *x)
{
    if (x->items == NULL && x->blob == NULL) {
        x->n = x->blob_len = 0; /* nothing was ever read into it */
        return;
    }
    layer_free(x->items);
    layer_free(x->blob);
    memset(x, 0, sizeof(*x));
}

int layer_xattr__copy(layer_xattr__list *dst, const layer_xattr__list *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->n == 0)
        return 0;
    dst->blob = layer_trymalloc(src->blob_len);
    dst->items = layer_trycalloc(src->n, sizeof(*dst->items));
    if (dst->blob == NULL || dst->items == NULL) {
        layer_xattr__dispose(dst);
        return LAYER_ENOMEM;
    }
    memcpy(dst->blob, src->blob, src->blob_len);
    for (size_t i = 0; i < src->n; i++) {
        dst->items[i].name =
            (const char *)dst->blob +
            ((const unsigned char *)src->items[i].name - src->blob);
        dst->items[i].value = dst->blob + (src->items[i].value - src->blob);
        dst->items[i].len = src->items[i].len;
    }
    dst->n = dst->cap = src->n;
    dst->blob_len = dst->blob_cap = src->blob_len;
    return 0;
}

static int cmp_xattr(const void *a, const void *b)
{
    return strcmp(((const layer_xattr *)a)->name,
                  ((const layer_xattr *)b)->name);
}

/* ---- reading --------------------------------------------------------- */

/*
 * The syscall numbers are the unified syscall table's (every architecture
 * but alpha); older headers lack them.
 */
#if !defined(__alpha__)
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#define XATTRS_HAVE_AT 1

/* struct xattr_args of <linux/xattr.h> (6.13), which older headers lack. */
typedef struct xattr_at_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
} xattr_at_args;
#endif

/* Cleared for good once the *xattrat calls turn out to be unavailable. */
static atomic_bool xattrat_on = true;

void layer_xattr__xattrat_set(bool on)
{
    atomic_store_explicit(&xattrat_on, on, memory_order_relaxed);
}

/* Where layer_xattr__read() reads from: the open file fd, or name in
 * dirfd. */
typedef struct xsrc {
    int fd;
    int dirfd;
    const char *name;
    bool proc; /* through proc_path, the fallback */
    char proc_path[64 + 256];
} xsrc;

static int xsrc_use_proc(xsrc *s, const char *what)
{
    int n = snprintf(s->proc_path, sizeof(s->proc_path), "/proc/self/fd/%d/%s",
                     s->dirfd, s->name);

    if (n < 0 || (size_t)n >= sizeof(s->proc_path))
        return layer_error_set(LAYER_ETOOBIG, "%s: name too long", what);
    s->proc = true;
    return 0;
}

/*
 * listxattr (attr NULL) or getxattr (attr) of the source, never following
 * a symlink; like the libc calls, -1 with errno on failure. *rc is set
 * (and -1 returned) only when the fallback path cannot be built.
 */
static ssize_t xsrc_call(int *rc, xsrc *s, const char *attr, void *buf,
                         size_t size, const char *what)
{
    if (s->fd >= 0)
        return attr ? fgetxattr(s->fd, attr, buf, size)
                    : flistxattr(s->fd, buf, size);
#ifdef XATTRS_HAVE_AT
    if (!s->proc) {
        long n;

        if (attr == NULL) {
            n = syscall(SYS_listxattrat, s->dirfd, s->name, AT_SYMLINK_NOFOLLOW,
                        buf, size);
        } else {
            xattr_at_args a = {(uint64_t)(uintptr_t)buf, (uint32_t)size, 0};

            n = syscall(SYS_getxattrat, s->dirfd, s->name, AT_SYMLINK_NOFOLLOW,
                        attr, &a, sizeof(a));
        }
        if (n >= 0 || (errno != ENOSYS && errno != EPERM))
            return (ssize_t)n;
        layer_xattr__xattrat_set(false);
        if ((*rc = xsrc_use_proc(s, what)) < 0)
            return -1;
    }
#else
    (void)rc;
    (void)what;
#endif
    return attr ? lgetxattr(s->proc_path, attr, buf, size)
                : llistxattr(s->proc_path, buf, size);
}

/* Append one value to x (names are already in the blob, at offset
 * name_off). Items hold offsets until the blob stops moving. */
static int append_value(layer_xattr__list *x, size_t name_off,
                        const unsigned char *value, size_t len,
                        const char *what)
{
    if (x->blob_len + len > XATTRS_TOTAL_MAX)
        return layer_error_set(LAYER_ETOOBIG,
                               "%s: extended attributes exceed %d bytes", what,
                               XATTRS_TOTAL_MAX);
    if (x->blob_len + len > x->blob_cap) {
        size_t cap = x->blob_cap * 2 + len;
        unsigned char *b = layer_tryarray(x->blob, cap, 1);

        if (b == NULL)
            return LAYER_ENOMEM;
        x->blob = b;
        x->blob_cap = cap;
    }
    memcpy(x->blob + x->blob_len, value, len);
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        layer_xattr *it = layer_tryarray(x->items, cap, sizeof(*it));

        if (it == NULL)
            return LAYER_ENOMEM;
        x->items = it;
        x->cap = cap;
    }
    x->items[x->n].name = (const char *)(uintptr_t)name_off;
    x->items[x->n].value = (const unsigned char *)(uintptr_t)x->blob_len;
    x->items[x->n].len = len;
    x->n++;
    x->blob_len += len;
    return 0;
}

int layer_xattr__read(layer_xattr__list *x, int fd, int dirfd, const char *name,
                      const char *what)
{
    xsrc src;
    char list[XATTRS_LIST_MAX];
    ssize_t len;
    size_t names_len;
    unsigned char *base;
    int rc = 0;

    x->n = 0;
    x->blob_len = 0;
    src.fd = fd;
    src.dirfd = dirfd;
    src.name = name;
    src.proc = false;
#ifdef XATTRS_HAVE_AT
    if (fd < 0 && !atomic_load_explicit(&xattrat_on, memory_order_relaxed) &&
        (rc = xsrc_use_proc(&src, what)) < 0)
        return rc;
#else
    if (fd < 0 && (rc = xsrc_use_proc(&src, what)) < 0)
        return rc;
#endif
    len = xsrc_call(&rc, &src, NULL, list, XATTRS_FIRST, what);
    if (rc == 0 && len < 0 && errno == ERANGE)
        len = xsrc_call(&rc, &src, NULL, list, sizeof(list), what);
    if (rc < 0)
        return rc;
    if (len < 0) {
        if (errno == ENOTSUP || errno == ENOENT)
            return 0;
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: listxattr", what);
    }
    names_len = (size_t)len;
    if (names_len == 0)
        return 0;
    /* names first, then values, all in one blob */
    if (x->blob_cap < names_len) {
        unsigned char *b = layer_tryarray(x->blob, names_len, 1);
        if (b == NULL)
            return LAYER_ENOMEM;
        x->blob = b;
        x->blob_cap = names_len;
    }
    memcpy(x->blob, list, names_len);
    x->blob_len = names_len;
    for (size_t p = 0; p < names_len;) {
        size_t nl = strnlen(list + p, names_len - p);
        unsigned char vbuf[XATTRS_SIZE_MAX];
        ssize_t vl;

        vl = xsrc_call(&rc, &src, list + p, vbuf, XATTRS_FIRST, what);
        if (rc == 0 && vl < 0 && errno == ERANGE)
            vl = xsrc_call(&rc, &src, list + p, vbuf, sizeof(vbuf), what);
        if (rc < 0)
            return rc;
        if (vl < 0) {
            if (errno == ENODATA) { /* removed meanwhile */
                p += nl + 1;
                continue;
            }
            return layer_error_set_errno(LAYER_ERROR, errno, "%s: getxattr %s",
                                         what, list + p);
        }
        if ((rc = append_value(x, p, vbuf, (size_t)vl, what)) < 0)
            return rc;
        p += nl + 1;
    }
    base = x->blob;
    for (size_t i = 0; i < x->n; i++) {
        x->items[i].name = (const char *)base + (uintptr_t)x->items[i].name;
        x->items[i].value = base + (uintptr_t)x->items[i].value;
    }
    if (x->n > 1)
        qsort(x->items, x->n, sizeof(*x->items), cmp_xattr);
    return 0;
}

/* ---- overlay markers ------------------------------------------------- */

/* The part of an overlay.* name after its prefix, or NULL. */
static const char *overlay_suffix(const char *name)
{
    if (strncmp(name, OVERLAY_TRUSTED, sizeof(OVERLAY_TRUSTED) - 1) == 0)
        return name + sizeof(OVERLAY_TRUSTED) - 1;
    if (strncmp(name, OVERLAY_USER, sizeof(OVERLAY_USER) - 1) == 0)
        return name + sizeof(OVERLAY_USER) - 1;
    return NULL;
}

unsigned layer_xattr__markers(const layer_xattr__list *x)
{
    unsigned m = 0;

    for (size_t i = 0; i < x->n; i++) {
        const layer_xattr *a = &x->items[i];
        const char *s = overlay_suffix(a->name);

        if (s == NULL)
            continue;
        if (strcmp(s, "whiteout") == 0)
            m |= LAYER_XATTR__WHITEOUT;
        else if (strcmp(s, "opaque") == 0 && a->len == 1 && a->value[0] == 'y')
            m |= LAYER_XATTR__OPAQUE;
        else if (strcmp(s, "redirect") == 0)
            m |= LAYER_XATTR__REDIRECT;
        else if (strcmp(s, "metacopy") == 0)
            m |= LAYER_XATTR__METACOPY;
    }
    return m;
}

int layer_xattr__check_exportable(unsigned markers, const char *path)
{
    if (markers & LAYER_XATTR__REDIRECT)
        return layer_error_set(LAYER_EUNSUPPORTED,
                               "%s: overlay redirect (redirect_dir) cannot be "
                               "exported from the layer directory",
                               path);
    if (markers & LAYER_XATTR__METACOPY)
        return layer_error_set(LAYER_EUNSUPPORTED,
                               "%s: overlay metacopy file holds no data in "
                               "the layer directory",
                               path);
    return 0;
}

int layer_xattr__is_whiteout(bool *out, bool *out_read, int dirfd,
                             const char *name, const char *what,
                             const struct statx *st, layer_xattr__list *scratch)
{
    int rc;

    *out = false;
    if (out_read)
        *out_read = false;
    if (S_ISCHR(st->stx_mode) && st->stx_rdev_major == 0 &&
        st->stx_rdev_minor == 0) {
        *out = true;
        return 0;
    }
    if (!S_ISREG(st->stx_mode) || st->stx_size != 0)
        return 0;
    if ((rc = layer_xattr__read(scratch, -1, dirfd, name, what)) < 0)
        return rc;
    if (out_read)
        *out_read = true;
    *out = (layer_xattr__markers(scratch) & LAYER_XATTR__WHITEOUT) != 0;
    return 0;
}

void layer_xattr__strip_overlay(layer_xattr__list *x)
{
    size_t j = 0;

    for (size_t i = 0; i < x->n; i++) {
        if (overlay_suffix(x->items[i].name) == NULL)
            x->items[j++] = x->items[i];
    }
    x->n = j;
}
