/*
 * The layer reader: a layer's changeset, one entry at a time.
 *
 * The walk is a depth-first pre-order over the layer directory with the
 * children of each directory sorted bytewise. One frame per directory
 * level holds the directory's fd, its sorted names, and the "lower view":
 * the fds of the same directory in the parents, nearest first, cut where
 * a parent hides what lies below (an opaque directory, a whiteout, a
 * non-directory, or a snapshot parent, which is a full tree). Memory is
 * therefore bounded by depth times directory width; the only structures
 * that grow with the layer are the hard-link maps, which hold one record
 * per multiply-linked inode.
 *
 * How names are classified depends on the layer's kind:
 *   - diff (overlayfs upperdir): a name present in the layer is an
 *     addition or modification, a whiteout is a tombstone if the lower
 *     view has the name (and dropped otherwise); an opaque directory turns
 *     the frame into merge mode, where lower names missing from the layer
 *     become tombstones;
 *   - snapshot (full tree): every frame is in merge mode against the lower
 *     view; names in both are compared with continuity's sameFile rules;
 *   - folder (transport folder): Files/ is walked as a base layer and the
 *     lines of tombstones.txt are merged in at their sorted position.
 *
 * Changed paths are staged in a small queue, preceded by the entries of
 * the directories above them that were not emitted yet, so every path is
 * preceded by its parents exactly once. Unchanged directories are emitted
 * lazily, as "modify", only when something below them changed.
 *
 * All access goes through directory fds with O_NOFOLLOW; symlinks are
 * read, never followed. Extended attributes of non-opened files are read
 * with listxattrat/getxattrat on (dirfd, name), or on kernels before 6.13
 * through /proc/self/fd/<dirfd>/<name> with the l*xattr calls; neither
 * follows the last component.
 *
 * Errors are recorded where they happen, naming the object (a path
 * relative to the layer, or "layer DIR" / "parent DIR"); the caller (the
 * reader's span, the CLI, the API) adds the operation once.
 */
#include "layer/reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/trace.h"
#include "folder_int.h"
#include "reader_int.h"

/* Deepest directory nesting followed. Each level holds one fd per layer
 * in the chain, so this also bounds the fds of one reader. */
#define READER_MAX_DEPTH 512
/* Longest relative path (tar PAX records carry any length; 32 KiB is far
 * beyond what real images hold and keeps one buffer small). */
#define READER_PATH_MAX 32768
/* Linux caps: XATTR_LIST_MAX and XATTR_SIZE_MAX are both 64 KiB. */
#define READER_XATTR_LIST_MAX 65536
#define READER_XATTR_SIZE_MAX 65536
/* First buffer size asked of listxattr and getxattr, retried at the caps
 * above on ERANGE: the kernel allocates what is asked for each call (64
 * KiB costs a page allocation, measured ~5% of a listing's CPU), and
 * nearly every list and value fits in 256 bytes. */
#define READER_XATTR_FIRST 256
/* Total xattr bytes kept for one entry. */
#define READER_XATTR_TOTAL_MAX (1024 * 1024)
/* getdents64 buffer. */
#define READER_DENTS_BUF 32768
/* Compare buffers for the content check of the double walk (continuity
 * uses 32 KiB chunks). */
#define READER_CMP_BUF 65536
/* Longest tombstones.txt line. */
#define READER_TOMBSTONE_LINE_MAX 65536

#define WHITEOUT_TRUSTED "trusted.overlay.whiteout"
#define WHITEOUT_USER    "user.overlay.whiteout"
#define OPAQUE_TRUSTED   "trusted.overlay.opaque"
#define OPAQUE_USER      "user.overlay.opaque"

/* ---- small containers ---------------------------------------------- */

/* Sorted names of one directory, NUL-terminated in one pool. */
typedef struct names {
    char *pool;
    size_t pool_len, pool_cap;
    size_t *off;
    signed char *src; /* lower listings: index of the layer that has it */
    size_t n, cap;
    size_t i; /* iteration cursor */
} names;

/* Extended attributes of one file, names and values in one blob. */
typedef struct xattrs {
    layer_xattr *items;
    size_t n, cap;
    unsigned char *blob;
    size_t blob_len, blob_cap;
} xattrs;

/* One directory of the lower view. */
typedef struct lower {
    int fd;
    bool diff; /* interpret whiteouts and opaque markers */
} lower;

typedef struct frame {
    int fd; /* this directory in the layer */
    names up;
    names low;  /* merge mode: names visible in the lower view */
    bool merge; /* iterate the union of up and low */
    lower *lowers;
    size_t nlowers;
    size_t path_len; /* length of this directory's path (0: root) */
    bool emitted;
    uint64_t serial;
    struct statx st;
    xattrs xa;
    bool opaque;
    layer_change change;
} frame;

/* A staged entry: owned copies of everything the entry points to. */
typedef struct staged {
    char *path;
    size_t path_len;
    layer_change change;
    layer_type type;
    struct statx st;
    bool has_st;
    char *link;
    size_t link_len;
    xattrs xa;
    bool opaque;
    int dirfd;        /* borrowed: where the data is (regular files) */
    const char *name; /* the file's name in dirfd: the tail of path */
} staged;

/* An ancestor directory of a pending link member. */
typedef struct anc {
    uint64_t serial;
    size_t path_len;
    struct statx st;
    xattrs xa;
    bool emitted;
} anc;

/* An unchanged member of a link group seen before any changed member. */
typedef struct pending {
    layer_file_id id;
    char *path;
    size_t path_len;
    struct statx st;
    anc *ancs;
    size_t nancs;
    struct pending *next;
} pending;

/* (dev, ino) -> first emitted path; open addressing. */
typedef struct link_slot {
    layer_file_id id;
    char *path; /* NULL: empty slot */
} link_slot;

struct layer_reader {
    bool closed;
    int failed; /* sticky error code, 0 if none */
    bool done;
    layer_kind kind;
    unsigned flags;
    bool noatime;

    int root_fd;
    lower *roots; /* parents' roots */
    size_t nroots;

    frame *frames;
    size_t depth, frames_cap;
    uint64_t next_serial;

    char *path;
    size_t path_cap;

    staged *queue;
    size_t qhead, qlen, qcap;

    link_slot *links;
    size_t links_n, links_cap;
    pending *pend;

    /* the current entry */
    layer_entry cur;
    staged cur_st;
    bool has_cur;
    int data_fd;
    uint64_t data_left;
    uint64_t data_pad;
    bool data_opened;
    bool data_warned;

    /* folder kind */
    FILE *tomb;
    char *tomb_line;
    size_t tomb_len;
    bool tomb_have;

    unsigned char *dents;
    layer_reader_stats stats;
    char warning[512];
    layer_span *span;
};

/* ---- helpers ----------------------------------------------------------- */

static int fail(layer_reader *r, int code)
{
    if (r->failed == 0)
        r->failed = code;
    return code;
}

static void names_dispose(names *n)
{
    layer_free(n->pool);
    layer_free(n->off);
    layer_free(n->src);
    memset(n, 0, sizeof(*n));
}

static const char *names_at(const names *n, size_t i)
{
    return n->pool + n->off[i];
}

static int names_add(names *n, const char *name, size_t len, int src)
{
    if (n->n == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 32;
        size_t *off = layer_tryarray(n->off, cap, sizeof(*off));
        signed char *s;

        if (off == NULL)
            return LAYER_ENOMEM;
        n->off = off;
        s = layer_tryarray(n->src, cap, sizeof(*s));
        if (s == NULL)
            return LAYER_ENOMEM;
        n->src = s;
        n->cap = cap;
    }
    if (n->pool_len + len + 1 > n->pool_cap) {
        size_t cap = n->pool_cap ? n->pool_cap : 1024;
        char *p;

        while (cap < n->pool_len + len + 1)
            cap *= 2;
        p = layer_tryarray(n->pool, cap, 1);
        if (p == NULL)
            return LAYER_ENOMEM;
        n->pool = p;
        n->pool_cap = cap;
    }
    memcpy(n->pool + n->pool_len, name, len);
    n->pool[n->pool_len + len] = '\0';
    n->off[n->n] = n->pool_len;
    n->src[n->n] = (signed char)src;
    n->pool_len += len + 1;
    n->n++;
    return 0;
}

/* Sorting needs the pool; qsort_r passes it through. */
static int cmp_off(const void *a, const void *b, void *pool)
{
    const char *pa = (const char *)pool + *(const size_t *)a;
    const char *pb = (const char *)pool + *(const size_t *)b;

    return strcmp(pa, pb);
}

/* Sort by name; for equal names keep the lowest src (nearest layer). */
typedef struct sort_item {
    size_t off;
    int src;
} sort_item;

static int cmp_item(const void *a, const void *b, void *pool)
{
    const sort_item *ia = a, *ib = b;
    int c = strcmp((const char *)pool + ia->off, (const char *)pool + ib->off);

    if (c != 0)
        return c;
    return ia->src - ib->src;
}

static void xattrs_dispose(xattrs *x)
{
    layer_free(x->items);
    layer_free(x->blob);
    memset(x, 0, sizeof(*x));
}

static void xattrs_reset(xattrs *x)
{
    x->n = 0;
    x->blob_len = 0;
}

static int xattrs_copy(xattrs *dst, const xattrs *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->n == 0)
        return 0;
    dst->blob = layer_trymalloc(src->blob_len);
    dst->items = layer_trycalloc(src->n, sizeof(*dst->items));
    if (dst->blob == NULL || dst->items == NULL) {
        xattrs_dispose(dst);
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

static const layer_xattr *xattrs_find(const xattrs *x, const char *name)
{
    for (size_t i = 0; i < x->n; i++) {
        if (strcmp(x->items[i].name, name) == 0)
            return &x->items[i];
    }
    return NULL;
}

static bool xattr_is(const xattrs *x, const char *name, const char *value)
{
    const layer_xattr *a = xattrs_find(x, name);
    size_t len = strlen(value);

    return a != NULL && a->len == len && memcmp(a->value, value, len) == 0;
}

static bool is_overlay_xattr(const char *name)
{
    return strncmp(name, "trusted.overlay.", 16) == 0 ||
           strncmp(name, "user.overlay.", 13) == 0;
}

static int cmp_xattr(const void *a, const void *b)
{
    return strcmp(((const layer_xattr *)a)->name,
                  ((const layer_xattr *)b)->name);
}

/*
 * Extended attributes of a file that is not open: listxattrat(2) and
 * getxattrat(2) (Linux 6.13) on (dirfd, name) with AT_SYMLINK_NOFOLLOW.
 * Before them, the only way without opening the file (which a fifo or a
 * device forbids, and which moves atimes) was the l*xattr calls on
 * "/proc/self/fd/<dirfd>/<name>": a /proc lookup and a path walk per
 * call, about half of the reader's system time on a tree without xattrs.
 * That path stays as the fallback, taken for good when the kernel lacks
 * the calls (ENOSYS) or a seccomp filter refuses them (EPERM, which older
 * container runtimes answer for syscalls they do not know; reading
 * xattrs never fails with EPERM otherwise). The numbers are the unified
 * syscall table's (every architecture but alpha).
 */
#if !defined(__alpha__)
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#define READER_HAVE_XATTRAT 1

/* struct xattr_args of <linux/xattr.h> (6.13), which older headers lack. */
typedef struct xattr_at_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
} xattr_at_args;
#endif

/* Cleared for good once the *xattrat calls turn out to be unavailable. */
static atomic_bool xattrat_on = true;

void layer_reader__xattrat_set(bool on)
{
    atomic_store_explicit(&xattrat_on, on, memory_order_relaxed);
}

/* Where read_xattrs() reads from: the open file fd, or name in dirfd. */
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
#ifdef READER_HAVE_XATTRAT
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
        layer_reader__xattrat_set(false);
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

/*
 * Read all extended attributes of a file into x, sorted by name. With
 * fd >= 0 the f*xattr calls are used; otherwise the file is name in
 * dirfd, read without following it (see xsrc_call()).
 */
static int read_xattrs(xattrs *x, int fd, int dirfd, const char *name,
                       const char *what)
{
    xsrc src;
    char list[READER_XATTR_LIST_MAX];
    ssize_t len;
    size_t names_len;
    unsigned char *base;
    int rc = 0;

    xattrs_reset(x);
    src.fd = fd;
    src.dirfd = dirfd;
    src.name = name;
    src.proc = false;
#ifdef READER_HAVE_XATTRAT
    if (fd < 0 && !atomic_load_explicit(&xattrat_on, memory_order_relaxed) &&
        (rc = xsrc_use_proc(&src, what)) < 0)
        return rc;
#else
    if (fd < 0 && (rc = xsrc_use_proc(&src, what)) < 0)
        return rc;
#endif
    len = xsrc_call(&rc, &src, NULL, list, READER_XATTR_FIRST, what);
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
        unsigned char vbuf[READER_XATTR_SIZE_MAX];
        ssize_t vl;

        vl = xsrc_call(&rc, &src, list + p, vbuf, READER_XATTR_FIRST, what);
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
        if (x->blob_len + (size_t)vl > READER_XATTR_TOTAL_MAX)
            return layer_error_set(LAYER_ETOOBIG,
                                   "%s: extended attributes exceed %d bytes",
                                   what, READER_XATTR_TOTAL_MAX);
        if (x->blob_len + (size_t)vl > x->blob_cap) {
            size_t cap = x->blob_cap * 2 + (size_t)vl;
            unsigned char *b = layer_tryarray(x->blob, cap, 1);
            if (b == NULL)
                return LAYER_ENOMEM;
            x->blob = b;
            x->blob_cap = cap;
        }
        memcpy(x->blob + x->blob_len, vbuf, (size_t)vl);
        if (x->n == x->cap) {
            size_t cap = x->cap ? x->cap * 2 : 8;
            layer_xattr *it = layer_tryarray(x->items, cap, sizeof(*it));
            if (it == NULL)
                return LAYER_ENOMEM;
            x->items = it;
            x->cap = cap;
        }
        /* store offsets now; the blob may still move */
        x->items[x->n].name = (const char *)(uintptr_t)p;
        x->items[x->n].value = (const unsigned char *)(uintptr_t)x->blob_len;
        x->items[x->n].len = (size_t)vl;
        x->n++;
        x->blob_len += (size_t)vl;
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

/* Drop overlay.* attributes: they are the layer's mechanics, not data. */
static void xattrs_strip_overlay(xattrs *x)
{
    size_t j = 0;

    for (size_t i = 0; i < x->n; i++) {
        if (!is_overlay_xattr(x->items[i].name))
            x->items[j++] = x->items[i];
    }
    x->n = j;
}

static int do_statx(struct statx *st, int dirfd, const char *name)
{
    return statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
                 STATX_BASIC_STATS | STATX_BTIME, st);
}

static layer_type type_of(unsigned mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return LAYER_TYPE_FILE;
    case S_IFDIR:
        return LAYER_TYPE_DIR;
    case S_IFLNK:
        return LAYER_TYPE_SYMLINK;
    case S_IFCHR:
        return LAYER_TYPE_CHAR;
    case S_IFBLK:
        return LAYER_TYPE_BLOCK;
    case S_IFIFO:
        return LAYER_TYPE_FIFO;
    default:
        return LAYER_TYPE_NONE; /* sockets and unknown types: skipped */
    }
}

static void lowers_free(lower *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(v[i].fd);
    layer_free(v);
}

static int open_dir_at(layer_reader *r, int dirfd, const char *name)
{
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = -1;

    if (r->noatime) {
        fd = openat(dirfd, name, flags | O_NOATIME);
        if (fd < 0 && errno == EPERM)
            r->noatime = false;
        else
            return fd;
    }
    return openat(dirfd, name, flags);
}

/* Read a directory's names (no "." and ".."), unsorted; src tags them. */
static int list_dir(layer_reader *r, names *out, int fd, int src,
                    const char *what)
{
    int rc = 0;

    if (lseek(fd, 0, SEEK_SET) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: rewind", what);
    for (;;) {
        long n = syscall(SYS_getdents64, fd, r->dents, READER_DENTS_BUF);

        if (n < 0)
            return layer_error_set_errno(LAYER_ERROR, errno,
                                         "%s: read directory", what);
        if (n == 0)
            break;
        for (long p = 0; p < n;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(r->dents + p);
            size_t nl = strlen(d->name);

            p += d->reclen;
            if (d->type == DT_SOCK)
                continue;
            if (d->name[0] == '.' &&
                (nl == 1 || (nl == 2 && d->name[1] == '.')))
                continue;
            if ((rc = names_add(out, d->name, nl, src)) < 0)
                return rc;
        }
    }
    return 0;
}

static void names_sort(names *n)
{
    if (n->n < 2)
        return;
    qsort_r(n->off, n->n, sizeof(*n->off), cmp_off, n->pool);
}

/* ---- whiteouts and the lower view ------------------------------------- */

/*
 * Is name (with stat st) in an overlay layer a whiteout? An empty regular
 * file needs its xattrs: they are left in scratch, and *out_read (when
 * not NULL) says whether they were, so a caller need not read them twice.
 */
static int is_whiteout(bool *out, bool *out_read, int dirfd, const char *name,
                       const char *what, const struct statx *st,
                       xattrs *scratch)
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
    if ((rc = read_xattrs(scratch, -1, dirfd, name, what)) < 0)
        return rc;
    if (out_read)
        *out_read = true;
    *out = xattrs_find(scratch, WHITEOUT_TRUSTED) != NULL ||
           xattrs_find(scratch, WHITEOUT_USER) != NULL;
    return 0;
}

static bool is_opaque(const xattrs *x)
{
    /* "x" marks a merge dir holding xattr whiteouts: NOT opaque. */
    return xattr_is(x, OPAQUE_TRUSTED, "y") || xattr_is(x, OPAQUE_USER, "y");
}

/* Refuse what cannot be exported from a raw upperdir. */
static int check_overlay_features(const xattrs *x, const char *path)
{
    if (xattrs_find(x, "trusted.overlay.redirect") ||
        xattrs_find(x, "user.overlay.redirect"))
        return layer_error_set(LAYER_EUNSUPPORTED,
                               "%s: overlay redirect (redirect_dir) cannot be "
                               "exported from the layer directory",
                               path);
    if (xattrs_find(x, "trusted.overlay.metacopy") ||
        xattrs_find(x, "user.overlay.metacopy"))
        return layer_error_set(
            LAYER_EUNSUPPORTED,
            "%s: overlay metacopy file holds no data in the layer directory",
            path);
    return 0;
}

typedef struct lookup {
    bool found;
    size_t layer; /* index into the frame's lowers */
    struct statx st;
} lookup;

/* Find name in the lower view of f, nearest layer first. */
static int lower_lookup(lookup *out, const frame *f, const char *name,
                        xattrs *scratch)
{
    int rc;

    out->found = false;
    for (size_t i = 0; i < f->nlowers; i++) {
        struct statx st;
        bool wh = false;

        if (do_statx(&st, f->lowers[i].fd, name) < 0) {
            if (errno == ENOENT)
                continue;
            return layer_error_set_errno(LAYER_ERROR, errno, "parent %s: stat",
                                         name);
        }
        if (f->lowers[i].diff &&
            (rc = is_whiteout(&wh, NULL, f->lowers[i].fd, name, name, &st,
                              scratch)) < 0)
            return rc;
        if (!wh) {
            out->found = true;
            out->layer = i;
            out->st = st;
        }
        return 0;
    }
    return 0;
}

/*
 * The lower view of child directory name of f, given that the nearest
 * layer holding it is `from` (a directory there).
 */
static int lower_child(lower **out, size_t *out_n, layer_reader *r,
                       const frame *f, const char *name, size_t from,
                       xattrs *scratch)
{
    lower *v = NULL;
    size_t n = 0;
    int rc = 0;

    v = layer_trycalloc(f->nlowers - from, sizeof(*v));
    if (v == NULL)
        return LAYER_ENOMEM;
    for (size_t i = from; i < f->nlowers; i++) {
        struct statx st;
        bool wh = false;
        int fd;

        if (do_statx(&st, f->lowers[i].fd, name) < 0) {
            if (errno == ENOENT)
                continue;
            rc = layer_error_set_errno(LAYER_ERROR, errno, "parent %s: stat",
                                       name);
            goto out;
        }
        if (f->lowers[i].diff &&
            (rc = is_whiteout(&wh, NULL, f->lowers[i].fd, name, name, &st,
                              scratch)) < 0)
            goto out;
        if (wh || !S_ISDIR(st.stx_mode))
            break; /* hides everything below */
        fd = open_dir_at(r, f->lowers[i].fd, name);
        if (fd < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno, "parent %s: open",
                                       name);
            goto out;
        }
        v[n].fd = fd;
        v[n].diff = f->lowers[i].diff;
        n++;
        if (!f->lowers[i].diff)
            break; /* a snapshot parent is the whole tree */
        if ((rc = read_xattrs(scratch, fd, -1, NULL, name)) < 0)
            goto out;
        if (is_opaque(scratch))
            break;
    }
out:
    if (rc < 0) {
        lowers_free(v, n);
        return rc;
    }
    *out = v;
    *out_n = n;
    return 0;
}

/* Names visible in a lower view, sorted, each tagged with its layer. */
static int lower_list(layer_reader *r, names *out, const lower *lowers,
                      size_t nlowers, xattrs *scratch)
{
    names all = {0};
    sort_item *items = NULL;
    int rc = 0;

    for (size_t i = 0; i < nlowers; i++) {
        if ((rc = list_dir(r, &all, lowers[i].fd, (int)i, "parent")) < 0)
            goto out;
    }
    if (all.n == 0)
        goto out;
    items = layer_trycalloc(all.n, sizeof(*items));
    if (items == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < all.n; i++) {
        items[i].off = all.off[i];
        items[i].src = all.src[i];
    }
    qsort_r(items, all.n, sizeof(*items), cmp_item, all.pool);
    for (size_t i = 0; i < all.n; i++) {
        const char *name = all.pool + items[i].off;
        const lower *lw = &lowers[items[i].src];
        bool wh = false;

        if (i > 0 && strcmp(name, all.pool + items[i - 1].off) == 0)
            continue; /* a nearer layer decided already */
        if (lw->diff) {
            struct statx st;

            if (do_statx(&st, lw->fd, name) < 0) {
                if (errno == ENOENT)
                    continue;
                rc = layer_error_set_errno(LAYER_ERROR, errno,
                                           "parent %s: stat", name);
                goto out;
            }
            if ((rc = is_whiteout(&wh, NULL, lw->fd, name, name, &st,
                                  scratch)) < 0)
                goto out;
        }
        if (!wh && (rc = names_add(out, name, strlen(name), items[i].src)) < 0)
            goto out;
    }
out:
    layer_free(items);
    names_dispose(&all);
    return rc;
}

/* ---- path, frames, queue ---------------------------------------------- */

/* Put name after frame f's path into the path buffer; returns length. */
static int path_set(size_t *out_len, layer_reader *r, const frame *f,
                    const char *name)
{
    size_t nl = strlen(name);
    size_t len = f->path_len + (f->path_len ? 1 : 0) + nl;

    if (len >= READER_PATH_MAX)
        return layer_error_set(
            LAYER_ETOOBIG, "path longer than %d bytes under %.*s",
            READER_PATH_MAX, (int)(f->path_len > 200 ? 200 : f->path_len),
            r->path);
    if (len + 1 > r->path_cap) {
        size_t cap = r->path_cap ? r->path_cap : 256;
        char *p;

        while (cap < len + 1)
            cap *= 2;
        p = layer_tryarray(r->path, cap, 1);
        if (p == NULL)
            return LAYER_ENOMEM;
        r->path = p;
        r->path_cap = cap;
    }
    if (f->path_len)
        r->path[f->path_len] = '/';
    memcpy(r->path + f->path_len + (f->path_len ? 1 : 0), name, nl);
    r->path[len] = '\0';
    *out_len = len;
    return 0;
}

static void frame_dispose(frame *f)
{
    if (f->fd >= 0)
        close(f->fd);
    lowers_free(f->lowers, f->nlowers);
    names_dispose(&f->up);
    names_dispose(&f->low);
    xattrs_dispose(&f->xa);
    memset(f, 0, sizeof(*f));
    f->fd = -1;
}

static void staged_dispose(staged *s)
{
    layer_free(s->path);
    layer_free(s->link);
    xattrs_dispose(&s->xa);
    memset(s, 0, sizeof(*s));
    s->dirfd = -1;
}

static int queue_push(layer_reader *r, staged *s)
{
    if (r->qlen == r->qcap) {
        size_t cap = r->qcap ? r->qcap * 2 : 16;
        staged *q = layer_trycalloc(cap, sizeof(*q));

        if (q == NULL)
            return LAYER_ENOMEM;
        for (size_t i = 0; i < r->qlen; i++)
            q[i] = r->queue[(r->qhead + i) % r->qcap];
        layer_free(r->queue);
        r->queue = q;
        r->qcap = cap;
        r->qhead = 0;
    }
    r->queue[(r->qhead + r->qlen) % r->qcap] = *s;
    r->qlen++;
    memset(s, 0, sizeof(*s));
    s->dirfd = -1;
    return 0;
}

/* Mark every pending record's ancestor with this serial as emitted. */
static void pending_mark(layer_reader *r, uint64_t serial)
{
    for (pending *p = r->pend; p; p = p->next) {
        for (size_t i = 0; i < p->nancs; i++) {
            if (p->ancs[i].serial == serial)
                p->ancs[i].emitted = true;
        }
    }
}

static frame *frame_by_serial(layer_reader *r, uint64_t serial)
{
    for (size_t i = 1; i < r->depth; i++) {
        if (r->frames[i].serial == serial)
            return &r->frames[i];
    }
    return NULL;
}

/* Stage a directory entry from recorded metadata. */
static int stage_dir(layer_reader *r, const char *path, size_t path_len,
                     const struct statx *st, const xattrs *xa,
                     layer_change change, bool opaque)
{
    staged s = {0};
    int rc;

    s.dirfd = -1;
    s.path = layer_trystrndup(path, path_len);
    if (s.path == NULL)
        return LAYER_ENOMEM;
    s.path_len = path_len;
    s.change = change;
    s.type = LAYER_TYPE_DIR;
    s.st = *st;
    s.has_st = true;
    s.opaque = opaque;
    if ((rc = xattrs_copy(&s.xa, xa)) < 0 || (rc = queue_push(r, &s)) < 0) {
        staged_dispose(&s);
        return rc;
    }
    return 0;
}

/* Stage the entries of frames 1..upto-1 that were not emitted yet. */
static int stage_ancestors(layer_reader *r, size_t upto)
{
    int rc;

    for (size_t i = 1; i < upto; i++) {
        frame *f = &r->frames[i];

        if (f->emitted)
            continue;
        if ((rc = stage_dir(r, r->path, f->path_len, &f->st, &f->xa, f->change,
                            f->opaque)) < 0)
            return rc;
        f->emitted = true;
        pending_mark(r, f->serial);
    }
    return 0;
}

/* ---- hard links ------------------------------------------------------- */

static size_t link_hash(layer_file_id id)
{
    uint64_t h =
        id.ino * 0x9E3779B97F4A7C15ull ^ id.dev * 0xC2B2AE3D27D4EB4Full;

    return (size_t)(h ^ (h >> 29));
}

static link_slot *link_find(layer_reader *r, layer_file_id id)
{
    if (r->links_cap == 0)
        return NULL;
    for (size_t i = link_hash(id) & (r->links_cap - 1);;
         i = (i + 1) & (r->links_cap - 1)) {
        link_slot *s = &r->links[i];

        if (s->path == NULL)
            return NULL;
        if (s->id.dev == id.dev && s->id.ino == id.ino)
            return s;
    }
}

static int link_insert(layer_reader *r, layer_file_id id, const char *path,
                       size_t len)
{
    link_slot *s;

    if ((r->links_n + 1) * 2 > r->links_cap) {
        size_t cap = r->links_cap ? r->links_cap * 2 : 64;
        link_slot *old = r->links;
        size_t oldcap = r->links_cap;
        link_slot *nt = layer_trycalloc(cap, sizeof(*nt));

        if (nt == NULL)
            return LAYER_ENOMEM;
        r->links = nt;
        r->links_cap = cap;
        for (size_t i = 0; i < oldcap; i++) {
            if (old[i].path == NULL)
                continue;
            for (size_t j = link_hash(old[i].id) & (cap - 1);;
                 j = (j + 1) & (cap - 1)) {
                if (nt[j].path == NULL) {
                    nt[j] = old[i];
                    break;
                }
            }
        }
        layer_free(old);
    }
    for (size_t i = link_hash(id) & (r->links_cap - 1);;
         i = (i + 1) & (r->links_cap - 1)) {
        s = &r->links[i];
        if (s->path == NULL)
            break;
    }
    s->path = layer_trystrndup(path, len);
    if (s->path == NULL)
        return LAYER_ENOMEM;
    s->id = id;
    r->links_n++;
    return 0;
}

static layer_file_id file_id_of(const struct statx *st)
{
    layer_file_id id;

    id.dev = makedev(st->stx_dev_major, st->stx_dev_minor);
    id.ino = st->stx_ino;
    return id;
}

static void pending_free(pending *p)
{
    for (size_t i = 0; i < p->nancs; i++)
        xattrs_dispose(&p->ancs[i].xa);
    layer_free(p->ancs);
    layer_free(p->path);
    layer_free(p);
}

/* Remember an unchanged link member at r->path (length len, in frame
 * depth-1) until a changed member of its group shows up. */
static int pending_add(layer_reader *r, const struct statx *st, size_t len)
{
    pending *p = layer_trycalloc(1, sizeof(*p));
    int rc = LAYER_ENOMEM;

    if (p == NULL)
        return rc;
    p->id = file_id_of(st);
    p->st = *st;
    p->path = layer_trystrndup(r->path, len);
    p->path_len = len;
    p->nancs = r->depth - 1;
    p->ancs = layer_trycalloc(p->nancs ? p->nancs : 1, sizeof(*p->ancs));
    if (p->path == NULL || p->ancs == NULL)
        goto out;
    for (size_t i = 1; i < r->depth; i++) {
        anc *a = &p->ancs[i - 1];

        a->serial = r->frames[i].serial;
        a->path_len = r->frames[i].path_len;
        a->st = r->frames[i].st;
        a->emitted = r->frames[i].emitted;
        if ((rc = xattrs_copy(&a->xa, &r->frames[i].xa)) < 0)
            goto out;
    }
    p->next = r->pend;
    r->pend = p;
    return 0;
out:
    pending_free(p);
    return rc;
}

/* Stage the pending members of id's group as links to target. */
static int pending_flush(layer_reader *r, layer_file_id id, const char *target,
                         size_t target_len)
{
    pending **pp = &r->pend;
    int rc;

    while (*pp) {
        pending *p = *pp;

        if (p->id.dev != id.dev || p->id.ino != id.ino) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        for (size_t i = 0; i < p->nancs; i++) {
            anc *a = &p->ancs[i];
            frame *f;

            if (a->emitted)
                continue;
            if ((rc = stage_dir(r, p->path, a->path_len, &a->st, &a->xa,
                                LAYER_CHANGE_MODIFY, false)) < 0) {
                pending_free(p);
                return rc;
            }
            f = frame_by_serial(r, a->serial);
            if (f)
                f->emitted = true;
            pending_mark(r, a->serial);
        }
        {
            staged s = {0};

            s.dirfd = -1;
            s.path = p->path;
            s.path_len = p->path_len;
            p->path = NULL;
            s.change = LAYER_CHANGE_MODIFY;
            s.type = LAYER_TYPE_HARDLINK;
            s.st = p->st;
            s.has_st = true;
            s.link = layer_trystrndup(target, target_len);
            s.link_len = target_len;
            rc = s.link ? queue_push(r, &s) : LAYER_ENOMEM;
            if (rc < 0) {
                staged_dispose(&s);
                pending_free(p);
                return rc;
            }
        }
        pending_free(p);
    }
    return 0;
}

/* ---- staging one name --------------------------------------------------- */

/*
 * Start a staged entry for r->path[0, len), a child of the top frame,
 * after staging the directories above it that were not emitted yet. On
 * failure s is still safe to staged_dispose().
 */
static int staged_begin(staged *s, layer_reader *r, size_t len,
                        layer_change change, layer_type type)
{
    int rc;

    memset(s, 0, sizeof(*s));
    s->dirfd = -1;
    if ((rc = stage_ancestors(r, r->depth)) < 0)
        return rc;
    s->path = layer_trystrndup(r->path, len);
    if (s->path == NULL)
        return LAYER_ENOMEM;
    s->path_len = len;
    s->change = change;
    s->type = type;
    return 0;
}

/*
 * Stage a non-tombstone entry for name in the top frame (path already in
 * r->path with length len), with its ancestors first and hard-link
 * handling. st and xa describe the file in the layer.
 */
static int stage_entry(layer_reader *r, const char *name, size_t len,
                       const struct statx *st, xattrs *xa, layer_change change,
                       bool opaque)
{
    frame *top = &r->frames[r->depth - 1];
    staged s;
    layer_type type = type_of(st->stx_mode);
    layer_file_id id = file_id_of(st);
    bool first_of_group = false;
    int rc;

    if ((rc = staged_begin(&s, r, len, change, type)) < 0)
        goto out;
    s.st = *st;
    s.has_st = true;
    s.opaque = opaque;
    if ((rc = xattrs_copy(&s.xa, xa)) < 0)
        goto out;
    if (type != LAYER_TYPE_DIR && st->stx_nlink > 1) {
        link_slot *ls = link_find(r, id);

        if (ls) {
            s.type = LAYER_TYPE_HARDLINK;
            s.link = layer_trystrdup(ls->path);
            if (s.link == NULL) {
                rc = LAYER_ENOMEM;
                goto out;
            }
            s.link_len = strlen(s.link);
        } else {
            if ((rc = link_insert(r, id, s.path, len)) < 0)
                goto out;
            first_of_group = true;
        }
    }
    if (type == LAYER_TYPE_SYMLINK) {
        size_t cap = st->stx_size + 1;
        ssize_t n;

        if (cap > READER_PATH_MAX) {
            rc = layer_error_set(LAYER_ETOOBIG, "%s: symlink target too long",
                                 s.path);
            goto out;
        }
        s.link = layer_trymalloc(cap);
        if (s.link == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
        n = readlinkat(top->fd, name, s.link, cap);
        if (n < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: readlink",
                                       s.path);
            goto out;
        }
        if ((size_t)n >= cap) { /* grew since the stat */
            rc = layer_error_set(LAYER_ECHANGED,
                                 "%s: symlink changed while read", s.path);
            goto out;
        }
        s.link[n] = '\0';
        s.link_len = (size_t)n;
    }
    if (s.type == LAYER_TYPE_FILE) {
        /* the path ends with the name: r->path is top's path + '/' + name */
        s.dirfd = top->fd;
        s.name = s.path + len - strlen(name);
    }
    if ((rc = queue_push(r, &s)) < 0)
        goto out;
    if (first_of_group && r->pend)
        rc = pending_flush(r, id, r->path, len);
    return rc;
out:
    staged_dispose(&s);
    return rc;
}

static int stage_tombstone(layer_reader *r, size_t len)
{
    staged s;
    int rc;

    if ((rc = staged_begin(&s, r, len, LAYER_CHANGE_DELETE, LAYER_TYPE_NONE)) <
            0 ||
        (rc = queue_push(r, &s)) < 0)
        staged_dispose(&s);
    return rc;
}

/* Push a frame for directory name (fd already open) below the top. */
static int push_frame(layer_reader *r, int fd, size_t path_len,
                      const struct statx *st, xattrs *xa, lower *lowers,
                      size_t nlowers, bool merge, bool opaque,
                      layer_change change, bool emitted, xattrs *scratch)
{
    frame *f;
    int rc;

    if (r->depth >= READER_MAX_DEPTH) {
        close(fd);
        lowers_free(lowers, nlowers);
        return layer_error_set(LAYER_ETOOBIG,
                               "directories nested deeper than %d levels",
                               READER_MAX_DEPTH);
    }
    if (r->depth == r->frames_cap) {
        size_t cap = r->frames_cap ? r->frames_cap * 2 : 16;
        frame *fs = layer_tryarray(r->frames, cap, sizeof(*fs));

        if (fs == NULL) {
            close(fd);
            lowers_free(lowers, nlowers);
            return LAYER_ENOMEM;
        }
        r->frames = fs;
        r->frames_cap = cap;
    }
    f = &r->frames[r->depth++];
    memset(f, 0, sizeof(*f));
    f->fd = fd;
    f->lowers = lowers;
    f->nlowers = nlowers;
    f->path_len = path_len;
    f->merge = merge;
    f->opaque = opaque;
    f->change = change;
    f->emitted = emitted;
    f->serial = ++r->next_serial;
    if (st)
        f->st = *st;
    if (xa && (rc = xattrs_copy(&f->xa, xa)) < 0)
        return rc;
    if ((rc = list_dir(r, &f->up, fd, 0, "directory")) < 0)
        return rc;
    names_sort(&f->up);
    if (merge && nlowers > 0 &&
        (rc = lower_list(r, &f->low, lowers, nlowers, scratch)) < 0)
        return rc;
    return 0;
}

static void pop_frame(layer_reader *r)
{
    frame *f = &r->frames[--r->depth];

    /* pending records keep their own copy of the emitted flag */
    if (f->emitted)
        pending_mark(r, f->serial);
    frame_dispose(f);
}

/* Do two files carry the same security.capability (or none)? */
static bool same_cap(const xattrs *a, const xattrs *b)
{
    const layer_xattr *ca = xattrs_find(a, "security.capability");
    const layer_xattr *cb = xattrs_find(b, "security.capability");

    if (ca == NULL || cb == NULL)
        return ca == cb;
    return ca->len == cb->len && memcmp(ca->value, cb->value, ca->len) == 0;
}

/* continuity's sameFile: is the upper file unchanged from the lower? */
static int same_file(bool *out, layer_reader *r, int ufd, int lfd,
                     const char *name, const struct statx *u,
                     const struct statx *l, const xattrs *ux, const xattrs *lx)
{
    int rc = 0;

    *out = false;
    if (u->stx_dev_major == l->stx_dev_major &&
        u->stx_dev_minor == l->stx_dev_minor && u->stx_ino == l->stx_ino) {
        *out = true;
        return 0;
    }
    if (u->stx_mode != l->stx_mode || u->stx_uid != l->stx_uid ||
        u->stx_gid != l->stx_gid || u->stx_rdev_major != l->stx_rdev_major ||
        u->stx_rdev_minor != l->stx_rdev_minor)
        return 0;
    if (!same_cap(ux, lx))
        return 0;
    if (S_ISDIR(u->stx_mode)) {
        *out = true;
        return 0;
    }
    if (u->stx_size != l->stx_size ||
        u->stx_mtime.tv_sec != l->stx_mtime.tv_sec)
        return 0;
    if (u->stx_mtime.tv_nsec != 0 || l->stx_mtime.tv_nsec != 0) {
        *out = u->stx_mtime.tv_nsec == l->stx_mtime.tv_nsec;
        return 0;
    }
    /* both nanosecond parts 0: files from a tar; compare content */
    if (S_ISLNK(u->stx_mode)) {
        char a[4097], b[4097];
        ssize_t na = readlinkat(ufd, name, a, sizeof(a));
        ssize_t nb = readlinkat(lfd, name, b, sizeof(b));

        if (na < 0 || nb < 0)
            return layer_error_set_errno(LAYER_ERROR, errno, "%s: readlink",
                                         name);
        *out = na == nb && memcmp(a, b, (size_t)na) == 0;
        return 0;
    }
    if (!S_ISREG(u->stx_mode) || u->stx_size == 0) {
        *out = true;
        return 0;
    }
    {
        int fa = -1, fb = -1;
        char *ba = layer_trymalloc(READER_CMP_BUF * 2);
        int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;

        if (ba == NULL)
            return LAYER_ENOMEM;
        fa = openat(ufd, name, flags | (r->noatime ? O_NOATIME : 0));
        if (fa < 0 && errno == EPERM)
            fa = openat(ufd, name, flags);
        fb = openat(lfd, name, flags | (r->noatime ? O_NOATIME : 0));
        if (fb < 0 && errno == EPERM)
            fb = openat(lfd, name, flags);
        if (fa < 0 || fb < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno,
                                       "%s: open to compare", name);
            goto out;
        }
        *out = true;
        for (;;) {
            ssize_t na = read(fa, ba, READER_CMP_BUF);
            ssize_t nb, got = 0;

            if (na < 0) {
                rc =
                    layer_error_set_errno(LAYER_ERROR, errno, "%s: read", name);
                goto out;
            }
            while (got < na) {
                nb = read(fb, ba + READER_CMP_BUF + got, (size_t)(na - got));
                if (nb < 0) {
                    rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: read",
                                               name);
                    goto out;
                }
                if (nb == 0)
                    break;
                got += nb;
            }
            if (got != na || memcmp(ba, ba + READER_CMP_BUF, (size_t)na)) {
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
    }
    return rc;
}

/* No lower directory to descend into (see descend()). */
#define NO_LOWER ((size_t)-1)

/*
 * Descend into directory name of the top frame (its path in r->path,
 * length len): open it, build its lower view from layer `from` of the top
 * frame's view (NO_LOWER: none) and push its frame.
 */
static int descend(layer_reader *r, const char *name, size_t len,
                   const struct statx *st, xattrs *xa, size_t from, bool merge,
                   bool opaque, bool emitted, xattrs *scratch)
{
    frame *top = &r->frames[r->depth - 1];
    lower *cl = NULL;
    size_t ncl = 0;
    int fd, rc;

    if (from != NO_LOWER &&
        (rc = lower_child(&cl, &ncl, r, top, name, from, scratch)) < 0)
        return rc;
    fd = open_dir_at(r, top->fd, name);
    if (fd < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: open", r->path);
        lowers_free(cl, ncl);
        return rc;
    }
    return push_frame(r, fd, len, st, xa, cl, ncl, merge, opaque,
                      LAYER_CHANGE_MODIFY, emitted, scratch);
}

/*
 * Handle one name of the top frame. in_up: the layer has it; low: the
 * lower view's entry (merge mode gives the layer index from the listing,
 * otherwise it is looked up here).
 */
static int visit(layer_reader *r, const char *name, bool in_up,
                 bool in_low_known, bool in_low, size_t low_layer)
{
    size_t fi = r->depth - 1;
    frame *top = &r->frames[fi];
    struct statx st, lst;
    xattrs xa = {0}, lxa = {0}, scratch = {0};
    lookup lk = {0};
    size_t len = 0;
    int rc;

    if ((rc = path_set(&len, r, top, name)) < 0)
        return rc;
    if (!in_up) {
        /* only in the lower view: deleted (merge mode) */
        rc = stage_tombstone(r, len);
        goto out;
    }
    if (do_statx(&st, top->fd, name) < 0) {
        if (errno == ENOENT) { /* removed since the listing */
            rc = 0;
            goto out;
        }
        rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: stat", r->path);
        goto out;
    }
    if (type_of(st.stx_mode) == LAYER_TYPE_NONE) {
        rc = 0; /* sockets are skipped */
        goto out;
    }
    if (in_low_known) {
        lk.found = in_low;
        if (in_low) {
            lk.layer = low_layer;
            if (do_statx(&lk.st, top->lowers[low_layer].fd, name) < 0) {
                if (errno != ENOENT) {
                    rc = layer_error_set_errno(LAYER_ERROR, errno,
                                               "parent %s: stat", r->path);
                    goto out;
                }
                lk.found = false;
            }
        }
    } else if ((rc = lower_lookup(&lk, top, name, &scratch)) < 0) {
        goto out;
    }

    if (r->kind == LAYER_KIND_DIFF) {
        bool wh = false, opq = false, have_xa = false;
        layer_change change = lk.found ? LAYER_CHANGE_MODIFY : LAYER_CHANGE_ADD;

        if ((rc = is_whiteout(&wh, &have_xa, top->fd, name, r->path, &st,
                              &xa)) < 0)
            goto out;
        if (wh) {
            rc = lk.found ? stage_tombstone(r, len) : 0;
            goto out;
        }
        if (!have_xa && (rc = read_xattrs(&xa, -1, top->fd, name, r->path)) < 0)
            goto out;
        if ((rc = check_overlay_features(&xa, r->path)) < 0)
            goto out;
        opq = S_ISDIR(st.stx_mode) && is_opaque(&xa);
        xattrs_strip_overlay(&xa);
        if (S_ISDIR(st.stx_mode)) {
            bool lower_dir = lk.found && S_ISDIR(lk.st.stx_mode);
            bool merge = opq || top->merge;
            bool emit = true;

            if (lower_dir && !merge) {
                /* a copied-up directory: a change only if its metadata
                 * differs; otherwise emitted when a child changes */
                if ((rc = read_xattrs(&lxa, -1, top->lowers[lk.layer].fd, name,
                                      r->path)) < 0)
                    goto out;
                emit = st.stx_mode != lk.st.stx_mode ||
                       st.stx_uid != lk.st.stx_uid ||
                       st.stx_gid != lk.st.stx_gid || !same_cap(&xa, &lxa);
            }
            if (emit &&
                (rc = stage_entry(r, name, len, &st, &xa, change, opq)) < 0)
                goto out;
            rc =
                descend(r, name, len, &st, &xa, lower_dir ? lk.layer : NO_LOWER,
                        merge, opq, emit, &scratch);
            goto out;
        }
        rc = stage_entry(r, name, len, &st, &xa, change, false);
        goto out;
    }

    /* snapshot and folder: full trees */
    if ((rc = read_xattrs(&xa, -1, top->fd, name, r->path)) < 0)
        goto out;
    if (!lk.found) {
        rc = stage_entry(r, name, len, &st, &xa, LAYER_CHANGE_ADD, false);
        if (rc == 0 && S_ISDIR(st.stx_mode))
            rc = descend(r, name, len, &st, &xa, NO_LOWER, false, false, true,
                         &scratch);
        goto out;
    }
    {
        bool same = false;
        int lfd = top->lowers[lk.layer].fd;

        lst = lk.st;
        if ((rc = read_xattrs(&lxa, -1, lfd, name, r->path)) < 0)
            goto out;
        if ((rc = same_file(&same, r, top->fd, lfd, name, &st, &lst, &xa,
                            &lxa)) < 0)
            goto out;
        if (S_ISDIR(st.stx_mode)) {
            if (!same && (rc = stage_entry(r, name, len, &st, &xa,
                                           LAYER_CHANGE_MODIFY, false)) < 0)
                goto out;
            rc = descend(r, name, len, &st, &xa,
                         S_ISDIR(lst.stx_mode) ? lk.layer : NO_LOWER, true,
                         false, !same, &scratch);
            goto out;
        }
        if (!same) {
            rc =
                stage_entry(r, name, len, &st, &xa, LAYER_CHANGE_MODIFY, false);
            goto out;
        }
        if (st.stx_nlink > 1) {
            /* unchanged member of a link group: re-emitted as a link if
             * a changed member exists or shows up later */
            link_slot *ls = link_find(r, file_id_of(&st));

            if (ls)
                rc = stage_entry(r, name, len, &st, &xa, LAYER_CHANGE_MODIFY,
                                 false);
            else
                rc = pending_add(r, &st, len);
        }
    }
out:
    xattrs_dispose(&xa);
    xattrs_dispose(&lxa);
    xattrs_dispose(&scratch);
    return rc;
}

/* Advance the walk of the top frame by one name; pops finished frames. */
static int walk_step(layer_reader *r)
{
    frame *top = &r->frames[r->depth - 1];
    const char *u =
        top->up.i < top->up.n ? names_at(&top->up, top->up.i) : NULL;
    const char *l = NULL;
    int c;

    if (top->merge)
        l = top->low.i < top->low.n ? names_at(&top->low, top->low.i) : NULL;
    if (u == NULL && l == NULL) {
        if (r->depth == 1) {
            r->done = true;
            return 0;
        }
        pop_frame(r);
        return 0;
    }
    if (!top->merge) {
        top->up.i++;
        return visit(r, u, true, false, false, 0);
    }
    c = u == NULL ? 1 : l == NULL ? -1 : strcmp(u, l);
    if (c < 0) {
        top->up.i++;
        return visit(r, u, true, true, false, 0);
    }
    if (c > 0) {
        top->low.i++;
        return visit(r, l, false, true, true, 0);
    }
    {
        size_t src = (size_t)top->low.src[top->low.i];

        top->up.i++;
        top->low.i++;
        return visit(r, u, true, true, true, src);
    }
}

/* ---- folder tombstones -------------------------------------------------- */

/* Load the next tombstone line into r->tomb_line (tomb_have). */
static int tomb_next(layer_reader *r)
{
    ssize_t n;

    r->tomb_have = false;
    if (r->tomb == NULL)
        return 0;
    for (;;) {
        size_t len;

        n = getline(&r->tomb_line, &r->tomb_len, r->tomb);
        if (n < 0) {
            if (ferror(r->tomb))
                return layer_error_set_errno(LAYER_ERROR, errno,
                                             "tombstones.txt: read");
            return 0;
        }
        len = (size_t)n;
        if (len > READER_TOMBSTONE_LINE_MAX)
            return layer_error_set(LAYER_EBROKEN,
                                   "tombstones.txt: line longer than %d bytes",
                                   READER_TOMBSTONE_LINE_MAX);
        while (len > 0 &&
               (r->tomb_line[len - 1] == '\n' || r->tomb_line[len - 1] == '\r'))
            len--;
        r->tomb_line[len] = '\0';
        if (len == 0)
            continue; /* hcsshim panics on empty lines; we skip them */
        if (layer_folder__unescape(r->tomb_line, &len) < 0)
            return layer_error_set(LAYER_EBROKEN,
                                   "tombstones.txt: bad escape in line");
        if (r->tomb_line[0] == '/' || strstr(r->tomb_line, "//") ||
            strcmp(r->tomb_line, "..") == 0 ||
            strncmp(r->tomb_line, "../", 3) == 0 ||
            strstr(r->tomb_line, "/../") ||
            (len >= 3 && strcmp(r->tomb_line + len - 3, "/..") == 0))
            return layer_error_set(LAYER_EBROKEN,
                                   "tombstones.txt: invalid path");
        r->tomb_have = true;
        return 0;
    }
}

static int open_tombstones(layer_reader *r, int folder_fd)
{
    int fd =
        openat(folder_fd, "tombstones.txt", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "tombstones.txt: open");
    }
    r->tomb = fdopen(fd, "r");
    if (r->tomb == NULL) {
        close(fd);
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "tombstones.txt: open");
    }
    n = getline(&r->tomb_line, &r->tomb_len, r->tomb);
    if (n < 0)
        return layer_error_set(LAYER_EBROKEN, "tombstones.txt: empty");
    {
        const char *line = r->tomb_line;

        if (strncmp(line, "\xEF\xBB\xBF", 3) == 0)
            line += 3;
        if (strncmp(line, "Version 1.0", 11) != 0 ||
            (line[11] != '\n' && line[11] != '\r' && line[11] != '\0'))
            return layer_error_set(LAYER_EBROKEN, "invalid tombstones file");
    }
    return tomb_next(r);
}

/* ---- public API --------------------------------------------------------- */

static int open_root(int *out, const char *path, const char *what)
{
    /* the root path is the operator's: following symlinks in it is
     * intended (e.g. /var/lib/docker on another disk) */
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOATIME);

    if (fd < 0 && errno == EPERM)
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return layer_error_set_errno(LAYER_ENOTFOUND, errno, "%s %s", what,
                                         path);
        return layer_error_set_errno(LAYER_ERROR, errno, "%s %s", what, path);
    }
    *out = fd;
    return 0;
}

int layer_reader_open(layer_reader **out, const layer_dir *layer,
                      const layer_dir *parents, size_t nparents,
                      const layer_reader_opts *opts)
{
    layer_reader *r = NULL;
    lower *lowers = NULL;
    xattrs scratch = {0};
    int fd = -1, rc = 0;
    size_t nl = 0;

    if (out == NULL || layer == NULL || layer->path == NULL ||
        (nparents > 0 && parents == NULL))
        return layer_error_set(LAYER_EINVALID, "missing argument");
    if (layer->kind == LAYER_KIND_FOLDER && nparents > 0)
        return layer_error_set(LAYER_EINVALID,
                               "a transport folder is read without parents");
    if (access("/proc/self/fd", X_OK) != 0)
        return layer_error_set_errno(LAYER_EUNSUPPORTED, errno,
                                     "/proc is not mounted");
    r = layer_trycalloc(1, sizeof(*r));
    if (r == NULL)
        return LAYER_ENOMEM;
    r->root_fd = -1;
    r->data_fd = -1;
    r->cur_st.dirfd = -1;
    r->kind = layer->kind;
    r->flags = opts ? opts->flags : 0;
    r->noatime = true;
    if (opts && opts->span) {
        layer_span_start(&r->span, NULL, opts->span, "layer.reader");
        layer_span_set_str(r->span, "layer.path", layer->path);
        layer_span_set_str(r->span, "layer.kind", layer_kind_name(layer->kind));
        layer_span_set_int(r->span, "layer.parents.count", (int64_t)nparents);
    }
    r->dents = layer_trymalloc(READER_DENTS_BUF);
    if (r->dents == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    if ((rc = open_root(&r->root_fd, layer->path, "layer")) < 0)
        goto out;
    if (nparents > 0) {
        lowers = layer_trycalloc(nparents, sizeof(*lowers));
        if (lowers == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < nparents; i++) {
            if (parents[i].path == NULL ||
                parents[i].kind == LAYER_KIND_FOLDER) {
                rc = layer_error_set(LAYER_EINVALID,
                                     "parent %zu is not a layer directory", i);
                goto out;
            }
            if ((rc = open_root(&lowers[nl].fd, parents[i].path, "parent")) < 0)
                goto out;
            lowers[nl].diff = parents[i].kind == LAYER_KIND_DIFF;
            nl++;
            if (!lowers[nl - 1].diff)
                break; /* a snapshot holds everything below it */
        }
        /* opaque roots cut the chain too */
        for (size_t i = 0; i < nl; i++) {
            if (!lowers[i].diff)
                continue;
            if ((rc = read_xattrs(&scratch, lowers[i].fd, -1, NULL,
                                  "parent root")) < 0)
                goto out;
            if (is_opaque(&scratch)) {
                for (size_t j = i + 1; j < nl; j++)
                    close(lowers[j].fd);
                nl = i + 1;
                break;
            }
        }
    }
    if (layer->kind == LAYER_KIND_FOLDER) {
        fd = openat(r->root_fd, "Files",
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            rc = layer_error_set_errno(errno == ENOENT ? LAYER_ENOTFOUND
                                                       : LAYER_ERROR,
                                       errno, "%s/Files", layer->path);
            goto out;
        }
        if ((rc = open_tombstones(r, r->root_fd)) < 0)
            goto out;
    } else {
        fd = dup(r->root_fd);
        if (fd < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno, "layer %s: dup",
                                       layer->path);
            goto out;
        }
    }
    {
        xattrs rx = {0};
        bool merge = false;

        if (layer->kind == LAYER_KIND_SNAPSHOT)
            merge = true;
        if (layer->kind == LAYER_KIND_DIFF) {
            if ((rc = read_xattrs(&rx, fd, -1, NULL, "layer root")) < 0)
                goto out;
            if ((rc = check_overlay_features(&rx, "/")) < 0) {
                xattrs_dispose(&rx);
                goto out;
            }
            merge = is_opaque(&rx);
            xattrs_dispose(&rx);
        }
        rc = push_frame(r, fd, 0, NULL, NULL, lowers, nl, merge, false,
                        LAYER_CHANGE_MODIFY, true, &scratch);
        fd = -1;
        lowers = NULL;
        nl = 0;
        if (rc < 0)
            goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    lowers_free(lowers, nl);
    xattrs_dispose(&scratch);
    if (rc < 0) {
        if (r) {
            layer_span_set_error(r->span, "layer.reader", rc);
            layer_reader_close(r);
            layer_reader_free(r);
        }
        return rc;
    }
    *out = r;
    return 0;
}

static void fill_time(layer_time *t, const struct statx_timestamp *ts)
{
    t->sec = ts->tv_sec;
    t->nsec = ts->tv_nsec;
}

/* Make the staged item the current entry. */
static void make_current(layer_reader *r, staged *s)
{
    layer_entry *e = &r->cur;

    staged_dispose(&r->cur_st);
    r->cur_st = *s;
    memset(s, 0, sizeof(*s));
    s->dirfd = -1;
    s = &r->cur_st;
    memset(e, 0, sizeof(*e));
    e->path = s->path;
    e->path_len = s->path_len;
    e->change = s->change;
    e->type = s->type;
    if (s->has_st) {
        const struct statx *st = &s->st;

        e->mode = st->stx_mode & 07777;
        e->uid = st->stx_uid;
        e->gid = st->stx_gid;
        e->size = s->type == LAYER_TYPE_FILE ? st->stx_size : 0;
        fill_time(&e->mtime, &st->stx_mtime);
        fill_time(&e->atime, &st->stx_atime);
        fill_time(&e->ctime, &st->stx_ctime);
        if (st->stx_mask & STATX_BTIME) {
            fill_time(&e->btime, &st->stx_btime);
            e->has_btime = true;
        }
        if (S_ISCHR(st->stx_mode) || S_ISBLK(st->stx_mode)) {
            e->rdev_major = st->stx_rdev_major;
            e->rdev_minor = st->stx_rdev_minor;
        }
        e->nlink = st->stx_nlink;
        e->file_id = file_id_of(st);
    }
    e->link_target = s->link;
    e->link_target_len = s->link_len;
    e->xattrs = s->xa.items;
    e->xattr_count = s->xa.n;
    e->opaque = s->opaque;
    r->has_cur = true;
    r->data_opened = false;
    r->data_warned = false;
    r->data_left = e->size;
    r->data_pad = 0;
    if (r->data_fd >= 0) {
        close(r->data_fd);
        r->data_fd = -1;
    }
    r->stats.entries++;
}

static int make_tombstone_current(layer_reader *r)
{
    staged s = {0};
    size_t len = strlen(r->tomb_line);

    s.dirfd = -1;
    s.path = layer_trystrndup(r->tomb_line, len);
    if (s.path == NULL)
        return LAYER_ENOMEM;
    s.path_len = len;
    s.change = LAYER_CHANGE_DELETE;
    make_current(r, &s);
    return tomb_next(r);
}

/* Calls after close, and (with check_failed) after a failure, are
 * defined errors. */
static int usable(const layer_reader *r, bool check_failed)
{
    if (r->closed)
        return layer_error_set(LAYER_ECLOSED, "the reader is closed");
    if (check_failed && r->failed)
        return layer_error_set(r->failed, "the reader failed earlier");
    return 0;
}

int layer_reader_next(const layer_entry **out, layer_reader *r)
{
    int rc;

    if (r == NULL || out == NULL)
        return layer_error_set(LAYER_EINVALID, "no reader");
    if ((rc = usable(r, true)) < 0)
        return rc;
    r->has_cur = false;
    for (;;) {
        if (r->qlen > 0) {
            staged *s = &r->queue[r->qhead];

            /* folder: a tombstone sorting first goes out first */
            if (r->tomb_have &&
                layer_path_compare(r->tomb_line, strlen(r->tomb_line), s->path,
                                   s->path_len) < 0) {
                if ((rc = make_tombstone_current(r)) < 0)
                    return fail(r, rc);
                *out = &r->cur;
                return 0;
            }
            make_current(r, s);
            r->qhead = (r->qhead + 1) % r->qcap;
            r->qlen--;
            *out = &r->cur;
            return 0;
        }
        if (r->done) {
            if (r->tomb_have) {
                if ((rc = make_tombstone_current(r)) < 0)
                    return fail(r, rc);
                *out = &r->cur;
                return 0;
            }
            return LAYER_ITEROVER;
        }
        if ((rc = walk_step(r)) < 0) {
            layer_span_set_error(r->span, "layer.reader", rc);
            return fail(r, rc);
        }
    }
}

int layer_reader_link_info(uint64_t *out_nlink, layer_file_id *out_id,
                           layer_reader *r)
{
    int rc;

    if (r == NULL)
        return layer_error_set(LAYER_EINVALID, "no reader");
    if ((rc = usable(r, false)) < 0)
        return rc;
    if (!r->has_cur || r->cur.change == LAYER_CHANGE_DELETE)
        return layer_error_set(LAYER_EINVALID, "no current entry with a file");
    *out_nlink = r->cur.nlink;
    *out_id = r->cur.file_id;
    return 0;
}

static void warn(layer_reader *r, const char *what)
{
    if (r->data_warned)
        return;
    r->data_warned = true;
    snprintf(r->warning, sizeof(r->warning), "%s: %s", r->cur.path, what);
    r->stats.warnings++;
}

/* Open the current file and check it is still the one that was listed. */
static int open_data(layer_reader *r)
{
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
    struct stat st;
    int fd;

    r->data_opened = true;
    fd = openat(r->cur_st.dirfd, r->cur_st.name,
                flags | (r->noatime ? O_NOATIME : 0));
    if (fd < 0 && errno == EPERM && r->noatime) {
        r->noatime = false;
        fd = openat(r->cur_st.dirfd, r->cur_st.name, flags);
    }
    if (fd < 0 && errno != ENOENT && errno != ELOOP)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: open",
                                     r->cur.path);
    if (fd >= 0 &&
        (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
         st.st_ino != r->cur.file_id.ino || st.st_dev != r->cur.file_id.dev)) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        if (r->flags & LAYER_READER_STRICT)
            return layer_error_set(LAYER_ECHANGED,
                                   "%s: file replaced while read", r->cur.path);
        warn(r, "file replaced while read; zero-filled");
        r->data_pad = r->data_left;
        return 0;
    }
    /* O_NONBLOCK guarded the open against a swapped-in fifo; it has no
     * effect on reads of a regular file, so it is left set */
    r->data_fd = fd;
    return 0;
}

int layer_reader_read(size_t *out_read, layer_reader *r, void *buf, size_t cap)
{
    size_t got = 0;
    int rc;

    if (out_read == NULL || r == NULL)
        return layer_error_set(LAYER_EINVALID, "no reader");
    *out_read = 0;
    if ((rc = usable(r, true)) < 0)
        return rc;
    if (!r->has_cur || r->cur.type != LAYER_TYPE_FILE || r->data_left == 0)
        return 0;
    if (!r->data_opened && (rc = open_data(r)) < 0)
        return fail(r, rc);
    if (cap > r->data_left)
        cap = (size_t)r->data_left;
    while (got < cap && r->data_pad == 0) {
        ssize_t n = read(r->data_fd, (char *)buf + got, cap - got);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(r, layer_error_set_errno(LAYER_ERROR, errno, "%s: read",
                                                 r->cur.path));
        }
        if (n == 0) { /* shrank */
            if (r->flags & LAYER_READER_STRICT)
                return fail(r, layer_error_set(LAYER_ECHANGED,
                                               "%s: file shrank while read",
                                               r->cur.path));
            warn(r, "file shrank while read; padded with zeros");
            r->data_pad = r->data_left - got;
            break;
        }
        got += (size_t)n;
    }
    if (r->data_pad > 0 && got < cap) {
        memset((char *)buf + got, 0, cap - got);
        r->data_pad -= cap - got;
        got = cap;
    }
    r->data_left -= got;
    r->stats.bytes_read += got;
    if (r->data_left == 0 && r->data_fd >= 0) {
        struct stat st;

        /* grew, or rewritten in place: GNU tar's "file changed as we read
         * it" */
        if (fstat(r->data_fd, &st) == 0 &&
            ((uint64_t)st.st_size != r->cur_st.st.stx_size ||
             st.st_mtim.tv_sec != r->cur_st.st.stx_mtime.tv_sec ||
             (uint32_t)st.st_mtim.tv_nsec != r->cur_st.st.stx_mtime.tv_nsec)) {
            if (r->flags & LAYER_READER_STRICT)
                return fail(r, layer_error_set(LAYER_ECHANGED,
                                               "%s: file changed while read",
                                               r->cur.path));
            warn(r, (uint64_t)st.st_size > r->cur_st.st.stx_size
                        ? "file grew while read; cut to its listed size"
                        : "file changed as we read it");
        }
        close(r->data_fd);
        r->data_fd = -1;
    }
    *out_read = got;
    return 0;
}

int layer_reader_seek(layer_reader *r, uint64_t offset)
{
    uint64_t pos;
    int rc;

    if (r == NULL)
        return layer_error_set(LAYER_EINVALID, "no reader");
    if ((rc = usable(r, true)) < 0)
        return rc;
    if (!r->has_cur || r->cur.type != LAYER_TYPE_FILE)
        return layer_error_set(LAYER_EINVALID, "the current entry has no data");
    pos = r->cur.size - r->data_left;
    if (offset < pos || offset > r->cur.size)
        return layer_error_set(
            LAYER_EINVALID, "seek to %llu outside %llu..%llu",
            (unsigned long long)offset, (unsigned long long)pos,
            (unsigned long long)r->cur.size);
    if (offset == pos)
        return 0;
    if (!r->data_opened && (rc = open_data(r)) < 0)
        return fail(r, rc);
    if (r->data_fd >= 0 && lseek(r->data_fd, (off_t)offset, SEEK_SET) < 0)
        return fail(r, layer_error_set_errno(LAYER_ERROR, errno, "%s: seek",
                                             r->cur.path));
    if (r->data_pad > 0) /* already padding: the rest is zeros */
        r->data_pad = r->cur.size - offset;
    r->data_left = r->cur.size - offset;
    return 0;
}

int layer_reader_stats_get(layer_reader_stats *out, const layer_reader *r)
{
    int rc;

    if (r == NULL || out == NULL)
        return layer_error_set(LAYER_EINVALID, "no reader");
    if ((rc = usable(r, false)) < 0)
        return rc;
    *out = r->stats;
    return 0;
}

const char *layer_reader_last_warning(const layer_reader *r)
{
    return r && r->warning[0] ? r->warning : NULL;
}

void layer_reader_close(layer_reader *r)
{
    if (r == NULL || r->closed)
        return;
    r->closed = true;
    if (r->span) {
        layer_span_set_int(r->span, "reader.entries",
                           (int64_t)r->stats.entries);
        layer_span_set_int(r->span, "reader.bytes_read",
                           (int64_t)r->stats.bytes_read);
        layer_span_set_int(r->span, "reader.warnings",
                           (int64_t)r->stats.warnings);
        if (r->warning[0])
            layer_span_set_str(r->span, "reader.last_warning", r->warning);
        layer_span_end(r->span);
        r->span = NULL;
    }
    while (r->depth > 0)
        frame_dispose(&r->frames[--r->depth]);
    layer_free(r->frames);
    r->frames = NULL;
    for (size_t i = 0; i < r->qlen; i++)
        staged_dispose(&r->queue[(r->qhead + i) % r->qcap]);
    layer_free(r->queue);
    r->queue = NULL;
    r->qlen = 0;
    staged_dispose(&r->cur_st);
    for (size_t i = 0; i < r->links_cap; i++)
        layer_free(r->links[i].path);
    layer_free(r->links);
    r->links = NULL;
    while (r->pend) {
        pending *p = r->pend;

        r->pend = p->next;
        pending_free(p);
    }
    if (r->data_fd >= 0)
        close(r->data_fd);
    r->data_fd = -1;
    if (r->root_fd >= 0)
        close(r->root_fd);
    r->root_fd = -1;
    if (r->tomb)
        fclose(r->tomb);
    r->tomb = NULL;
    free(r->tomb_line); /* from getline() */
    r->tomb_line = NULL;
    layer_free(r->path);
    r->path = NULL;
    layer_free(r->dents);
    r->dents = NULL;
    r->has_cur = false;
}

void layer_reader_free(layer_reader *r)
{
    if (r == NULL)
        return;
    layer_reader_close(r);
    layer_free(r);
}

/* ---- kinds ----------------------------------------------------------------
 */

const char *layer_kind_name(layer_kind kind)
{
    switch (kind) {
    case LAYER_KIND_DIFF:
        return "diff";
    case LAYER_KIND_SNAPSHOT:
        return "snapshot";
    case LAYER_KIND_FOLDER:
        return "folder";
    }
    return "unknown";
}

int layer_kind_parse(layer_kind *out, const char *name)
{
    static const layer_kind kinds[] = {LAYER_KIND_DIFF, LAYER_KIND_SNAPSHOT,
                                       LAYER_KIND_FOLDER};

    if (name != NULL) {
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
            if (strcmp(name, layer_kind_name(kinds[i])) == 0) {
                *out = kinds[i];
                return 0;
            }
        }
    }
    return layer_error_set(LAYER_EINVALID,
                           "unknown layer kind \"%.32s\" (expected diff, "
                           "snapshot or folder)",
                           name ? name : "");
}
