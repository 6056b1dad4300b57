/*
 * The layer reader: a layer's changeset, one entry at a time.
 *
 * The walk is a depth-first pre-order over the layer directory with the
 * children of each directory sorted bytewise. One frame per directory
 * level holds the directory's fd, its sorted names, and the "lower view":
 * the fds of the same directory in the parents, nearest first, cut where
 * a parent hides what lies below (an opaque directory, a whiteout, a
 * non-directory, or a snapshot parent, which is a full tree). Memory is
 * therefore bounded by depth times directory width; the only structure
 * that grows with the layer is the hard-link tracker (hardlink.c), which
 * holds one record per multiply-linked inode. Descriptors are bounded
 * whatever the depth: only the top frame's are used, so frames above it
 * give theirs back past a budget and reopen them on the way back up (see
 * "the descriptor budget" below).
 *
 * How names are classified depends on the layer's kind:
 *   - diff (overlayfs upperdir, visit_diff()): a name present in the
 *     layer is an addition or modification, a whiteout is a tombstone if
 *     the lower view has the name (and dropped otherwise); an opaque
 *     directory turns the frame into merge mode, where lower names
 *     missing from the layer become tombstones;
 *   - snapshot (full tree, visit_full()): every frame is in merge mode
 *     against the lower view; names in both are compared with
 *     continuity's sameFile rules (compare.c);
 *   - folder (transport folder, visit_full() without parents): Files/ is
 *     walked as a base layer and the lines of tombstones.txt are merged in
 *     at their sorted position.
 * Extended attributes and the overlay markers in them are read and told
 * apart in xattr.c.
 *
 * Changed paths are staged in a small queue, preceded by the entries of
 * the directories above them that were not emitted yet, so every path is
 * preceded by its parents exactly once. Unchanged directories are emitted
 * lazily, as "modify", only when something below them changed.
 *
 * All access goes through directory fds with O_NOFOLLOW; symlinks are
 * read, never followed. The roots are the descriptors a store handed over
 * (layer_dir.has_fd: opened beneath the store's root, so a directory
 * swapped for a symlink after the lookup changes nothing) or, for a
 * directory named by path, opened once from that path.
 *
 * File data: a regular file is checked against its listing when opened
 * (same inode, still a regular file, same size, mtime and ctime) and
 * after every read from it; any change, or fewer bytes than listed, is
 * LAYER_ECHANGED, so a tar never holds bytes that are not the file's.
 * LAYER_READER_ALLOW_CHANGING is GNU tar's tolerance instead: padded or
 * cut to the listed size, one warning per file.
 *
 * At most LAYER_CHAIN_MAX parents, checked before anything is opened; a
 * lower listing tags each name with its layer's index (layer_src), a type
 * that holds every index below the cap.
 *
 * Errors are recorded where they happen, naming the object (a path
 * relative to the layer, or "layer DIR" / "parent DIR"); the caller (the
 * reader's span, the CLI, the API) adds the operation.
 */
#include "layer/reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/beneath.h"
#include "layer/error.h"
#include "layer/trace.h"
#include "compare_int.h"
#include "folder_int.h"
#include "hardlink_int.h"
#include "xattr_int.h"

/* Deepest directory nesting followed. */
#define READER_MAX_DEPTH 512
/* Descriptors the frames between the root and the top may keep open (a
 * frame holds its directory and its lower view: 1 + parents). Beyond, the
 * frames nearest the root close theirs, and get them back, reopened
 * beneath the root, when the walk returns to them. 64 keeps a five-layer
 * chain's walk free of reopening down to a depth of 12. */
#define READER_FD_BUDGET 64
/* Longest relative path (tar PAX records carry any length; 32 KiB is far
 * beyond what real images hold and keeps one buffer small). */
#define READER_PATH_MAX 32768
/* getdents64 buffer. */
#define READER_DENTS_BUF 32768

/* ---- small containers ---------------------------------------------- */

/* The index of a layer in a lower view: below LAYER_CHAIN_MAX, which
 * layer_reader_open() checks before anything else, so it always fits. */
typedef uint16_t layer_src;
_Static_assert(LAYER_CHAIN_MAX - 1 <= UINT16_MAX,
               "a lower view's layer index must fit layer_src");

/* Sorted names of one directory, NUL-terminated in one pool. */
typedef struct names {
    char *pool;
    size_t pool_len, pool_cap;
    size_t *off;
    layer_src *src; /* lower listings: index of the layer that has it */
    size_t n, cap;
    size_t i; /* iteration cursor */
} names;

/* One directory of the lower view. */
typedef struct lower {
    int fd;        /* -1 while its frame is closed */
    bool diff;     /* interpret whiteouts and opaque markers */
    size_t anchor; /* its layer: the index in the root frame's lowers */
    dev_t dev;     /* the directory opened, to check a reopened one */
    ino_t ino;
} lower;

/*
 * One directory level of the walk. A frame whose entry is not emitted
 * yet is emitted as an unchanged directory ("modify", from the metadata
 * recorded here) when something below it changes.
 */
typedef struct frame {
    int fd;      /* this directory in the layer; -1 while closed */
    bool closed; /* fd and the lowers' fds are closed (budget) */
    dev_t dev;   /* what fd is, to check a reopened one */
    ino_t ino;
    names up;
    names low;  /* merge mode: names visible in the lower view */
    bool merge; /* iterate the union of up and low */
    lower *lowers;
    size_t nlowers;
    size_t path_len; /* length of this directory's path (0: root) */
    bool emitted;
    uint64_t serial;
    struct statx st;
    layer_xattr__list xa;
    bool opaque;
} frame;

/* What a directory entering the walk starts with (push_frame()). */
typedef struct frame_spec {
    size_t path_len;             /* its path in r->path; 0: the root */
    const struct statx *st;      /* NULL: the root, never emitted */
    const layer_xattr__list *xa; /* NULL: none */
    bool merge;   /* walk the union of its names and the lower view's */
    bool opaque;  /* its entry's opaque flag */
    bool emitted; /* its entry is out (the root's never goes out) */
} frame_spec;

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
    layer_xattr__list xa;
    bool opaque;
    int dirfd;        /* borrowed: where the data is (regular files) */
    const char *name; /* the file's name in dirfd: the tail of path */
} staged;

struct layer_reader {
    bool closed;
    int failed; /* sticky error code, 0 if none */
    bool done;
    layer_kind kind;
    unsigned flags;
    bool noatime;

    int root_fd;

    frame *frames;
    size_t depth, frames_cap;
    size_t frame_fds;   /* descriptors open in frames 1..depth-1 */
    size_t lowest_open; /* frames 1..lowest_open-1 are closed */
    uint64_t next_serial;

    char *path;
    size_t path_cap;

    staged *queue;
    size_t qhead, qlen, qcap;

    layer_hardlink__map links;

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
    layer_folder__tombstones *tomb;
    const char *tomb_line; /* the next tombstone, borrowed from tomb */
    size_t tomb_len;
    bool tomb_have;

    unsigned char *dents;
    layer_reader_stats stats;
    char warning[512];
    layer_span *span;
    void (*on_warning)(void *arg, const char *message);
    void *warning_arg;
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

static int names_add(names *n, const char *name, size_t len, size_t src)
{
    void *pool;

    if (n->n == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 32;
        size_t *off = layer_tryarray(n->off, cap, sizeof(*off));
        layer_src *s;

        if (off == NULL)
            return LAYER_ENOMEM;
        n->off = off;
        s = layer_tryarray(n->src, cap, sizeof(*s));
        if (s == NULL)
            return LAYER_ENOMEM;
        n->src = s;
        n->cap = cap;
    }
    pool = n->pool;
    if (layer_trygrow(&pool, &n->pool_cap, n->pool_len + len + 1, 1, 1024,
                      SIZE_MAX) < 0)
        return LAYER_ENOMEM;
    n->pool = pool;
    memcpy(n->pool + n->pool_len, name, len);
    n->pool[n->pool_len + len] = '\0';
    n->off[n->n] = n->pool_len;
    n->src[n->n] = (layer_src)src;
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
    layer_src src;
} sort_item;

static int cmp_item(const void *a, const void *b, void *pool)
{
    const sort_item *ia = a, *ib = b;
    int c = strcmp((const char *)pool + ia->off, (const char *)pool + ib->off);

    if (c != 0)
        return c;
    return (int)ia->src - (int)ib->src;
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
        if (v[i].fd >= 0)
            close(v[i].fd);
    layer_free(v);
}

/* Record what fd is, for the check after a reopen. */
static int identify(dev_t *dev, ino_t *ino, int fd, const char *what)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: stat", what);
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
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
static int list_dir(layer_reader *r, names *out, int fd, size_t src,
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

/* ---- the lower view ------------------------------------------------------ */

/*
 * Stat name in one directory of the lower view. *out_found is false when
 * the name is not there; *out_wh says whether it is a whiteout (which
 * only a diff parent has).
 */
static int lower_probe(bool *out_found, bool *out_wh, struct statx *st,
                       const lower *lw, const char *name,
                       layer_xattr__list *scratch)
{
    *out_found = false;
    *out_wh = false;
    if (do_statx(st, lw->fd, name) < 0) {
        if (errno == ENOENT)
            return 0;
        return layer_error_set_errno(LAYER_ERROR, errno, "parent %s: stat",
                                     name);
    }
    *out_found = true;
    if (!lw->diff)
        return 0;
    return layer_xattr__is_whiteout(out_wh, NULL, lw->fd, name, name, st,
                                    scratch);
}

typedef struct lookup {
    bool found;
    size_t layer; /* index into the frame's lowers */
    struct statx st;
} lookup;

/* Find name in the lower view of f, nearest layer first. */
static int lower_lookup(lookup *out, const frame *f, const char *name,
                        layer_xattr__list *scratch)
{
    int rc;

    out->found = false;
    for (size_t i = 0; i < f->nlowers; i++) {
        struct statx st;
        bool found, wh;

        if ((rc = lower_probe(&found, &wh, &st, &f->lowers[i], name, scratch)) <
            0)
            return rc;
        if (!found)
            continue;
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
                       layer_xattr__list *scratch)
{
    lower *v = NULL;
    size_t n = 0;
    int rc = 0;

    v = layer_trycalloc(f->nlowers - from, sizeof(*v));
    if (v == NULL)
        return LAYER_ENOMEM;
    for (size_t i = from; i < f->nlowers; i++) {
        struct statx st;
        bool found, wh;
        int fd;

        if ((rc = lower_probe(&found, &wh, &st, &f->lowers[i], name, scratch)) <
            0)
            goto out;
        if (!found)
            continue;
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
        v[n].anchor = f->lowers[i].anchor;
        n++;
        if ((rc = identify(&v[n - 1].dev, &v[n - 1].ino, fd, name)) < 0)
            goto out;
        if (!f->lowers[i].diff)
            break; /* a snapshot parent is the whole tree */
        if ((rc = layer_xattr__read(scratch, fd, -1, NULL, name)) < 0)
            goto out;
        if (layer_xattr__markers(scratch) & LAYER_XATTR__OPAQUE)
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
                      size_t nlowers, layer_xattr__list *scratch)
{
    names all = {0};
    sort_item *items = NULL;
    int rc = 0;

    for (size_t i = 0; i < nlowers; i++) {
        if ((rc = list_dir(r, &all, lowers[i].fd, i, "parent")) < 0)
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
            bool found;

            if ((rc = lower_probe(&found, &wh, &st, lw, name, scratch)) < 0)
                goto out;
            if (!found)
                continue;
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
    layer_xattr__dispose(&f->xa);
    memset(f, 0, sizeof(*f));
    f->fd = -1;
}

static void staged_dispose(staged *s)
{
    layer_free(s->path);
    layer_free(s->link);
    layer_xattr__dispose(&s->xa);
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

static frame *frame_by_serial(layer_reader *r, uint64_t serial)
{
    for (size_t i = 1; i < r->depth; i++) {
        if (r->frames[i].serial == serial)
            return &r->frames[i];
    }
    return NULL;
}

/* Stage an unchanged directory's entry ("modify") from recorded
 * metadata: the first path_len bytes of path. */
static int stage_dir(layer_reader *r, const char *path, size_t path_len,
                     const struct statx *st, const layer_xattr__list *xa,
                     bool opaque)
{
    staged s = {0};
    int rc;

    s.dirfd = -1;
    s.path = layer_trystrndup(path, path_len);
    if (s.path == NULL)
        return LAYER_ENOMEM;
    s.path_len = path_len;
    s.change = LAYER_CHANGE_MODIFY;
    s.type = LAYER_TYPE_DIR;
    s.st = *st;
    s.has_st = true;
    s.opaque = opaque;
    if ((rc = layer_xattr__copy(&s.xa, xa)) < 0 ||
        (rc = queue_push(r, &s)) < 0) {
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
        if ((rc = stage_dir(r, r->path, f->path_len, &f->st, &f->xa,
                            f->opaque)) < 0)
            return rc;
        f->emitted = true;
        layer_hardlink__mark_emitted(&r->links, f->serial);
    }
    return 0;
}

static void budget(layer_reader *r);

/* Push a frame for directory fd below the top. fd and lowers (nlowers of
 * them) belong to the frame from the call on, even when it fails. */
static int push_frame(layer_reader *r, const frame_spec *spec, int fd,
                      lower *lowers, size_t nlowers, layer_xattr__list *scratch)
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
    f->path_len = spec->path_len;
    f->merge = spec->merge;
    f->opaque = spec->opaque;
    f->emitted = spec->emitted;
    f->serial = ++r->next_serial;
    if (spec->st)
        f->st = *spec->st;
    if (r->depth > 1)
        r->frame_fds += 1 + nlowers;
    if (spec->xa && (rc = layer_xattr__copy(&f->xa, spec->xa)) < 0)
        return rc;
    if ((rc = identify(&f->dev, &f->ino, fd, "directory")) < 0)
        return rc;
    if ((rc = list_dir(r, &f->up, fd, 0, "directory")) < 0)
        return rc;
    names_sort(&f->up);
    if (spec->merge && nlowers > 0 &&
        (rc = lower_list(r, &f->low, lowers, nlowers, scratch)) < 0)
        return rc;
    budget(r);
    return 0;
}

/* ---- the descriptor budget ---------------------------------------------
 *
 * Only the top frame's descriptors are used: names are listed once, when
 * a frame is pushed, and every later call works on the top frame. So the
 * frames between the root and the top may give theirs back: when the
 * frames 1..depth-1 hold more than READER_FD_BUDGET, those nearest the
 * root are closed (a prefix 1..lowest_open-1 of the stack is closed), and
 * a frame the walk returns to is reopened from the root frame's
 * descriptors, beneath them, with no symlink on the way, and checked to be
 * the same directory. The root frame (the layer's root and the parents'
 * roots, the anchors) stays open. A reader thus holds at most
 * 2 * (n + 1) + READER_FD_BUDGET + 4 descriptors, n the parents in its
 * lower view (at most LAYER_CHAIN_MAX), whatever the depth.
 */

static size_t frame_fd_count(const frame *f)
{
    return f->closed ? 0 : 1 + f->nlowers;
}

static void frame_close(layer_reader *r, frame *f)
{
    r->frame_fds -= frame_fd_count(f);
    close(f->fd);
    f->fd = -1;
    for (size_t i = 0; i < f->nlowers; i++) {
        close(f->lowers[i].fd);
        f->lowers[i].fd = -1;
    }
    f->closed = true;
}

/* Close the frames nearest the root while the frames hold too many. */
static void budget(layer_reader *r)
{
    if (r->lowest_open == 0)
        r->lowest_open = 1;
    while (r->frame_fds > READER_FD_BUDGET && r->lowest_open + 1 < r->depth)
        frame_close(r, &r->frames[r->lowest_open++]);
}

/*
 * Reopen the directory at path (len bytes, relative, canonical) beneath
 * anchor, in pieces that fit layer_beneath_open(), and check that it is
 * the directory (dev, ino) it was.
 */
static int reopen_dir(int *out, int anchor, const char *path, size_t len,
                      dev_t dev, ino_t ino, const char *what)
{
    char piece[LAYER_BENEATH_PATH_MAX + 1];
    size_t pos = 0;
    int cur = anchor, fd = -1, rc = 0;
    struct stat st;

    while (pos < len) {
        size_t n = len - pos;

        if (n > LAYER_BENEATH_PATH_MAX) {
            const char *slash =
                memrchr(path + pos, '/', LAYER_BENEATH_PATH_MAX + 1);

            n = slash != NULL ? (size_t)(slash - (path + pos)) : 0;
        }
        memcpy(piece, path + pos, n);
        piece[n] = '\0';
        rc = layer_beneath_open(&fd, cur, piece, O_RDONLY | O_DIRECTORY, 0);
        if (cur != anchor)
            close(cur);
        cur = anchor;
        if (rc < 0)
            break;
        cur = fd;
        pos += n + 1;
    }
    if (rc == LAYER_ENOTFOUND || rc == LAYER_EINVALID)
        return layer_error_set(LAYER_ECHANGED,
                               "%s %.*s: directory removed or replaced while "
                               "read",
                               what, (int)(len > 512 ? 512 : len), path);
    if (rc < 0)
        return rc;
    if (fstat(cur, &st) < 0 || st.st_dev != dev || st.st_ino != ino) {
        close(cur);
        return layer_error_set(LAYER_ECHANGED,
                               "%s %.*s: directory replaced while read", what,
                               (int)(len > 512 ? 512 : len), path);
    }
    *out = cur;
    return 0;
}

/* Give the top frame its descriptors back (after a pop reached it). Its
 * path is the start of r->path, as every frame above it was below it. On
 * failure the frame stays closed (and the reader fails). */
static int frame_reopen(layer_reader *r, frame *f)
{
    const frame *root = &r->frames[0];
    size_t i = 0;
    int rc;

    if ((rc = reopen_dir(&f->fd, root->fd, r->path, f->path_len, f->dev, f->ino,
                         "layer")) < 0) {
        f->fd = -1;
        return rc;
    }
    for (; i < f->nlowers; i++) {
        lower *l = &f->lowers[i];

        if ((rc = reopen_dir(&l->fd, root->lowers[l->anchor].fd, r->path,
                             f->path_len, l->dev, l->ino, "parent")) < 0)
            break;
    }
    if (rc < 0) {
        close(f->fd);
        f->fd = -1;
        while (i-- > 0) {
            close(f->lowers[i].fd);
            f->lowers[i].fd = -1;
        }
        return rc;
    }
    f->closed = false;
    r->frame_fds += 1 + f->nlowers;
    r->lowest_open = (size_t)(f - r->frames);
    return 0;
}

static int pop_frame(layer_reader *r)
{
    frame *f = &r->frames[--r->depth];

    /* pending link members keep their own copy of the emitted flag */
    if (f->emitted)
        layer_hardlink__mark_emitted(&r->links, f->serial);
    if (r->depth >= 1)
        r->frame_fds -= frame_fd_count(f);
    frame_dispose(f);
    if (r->lowest_open > r->depth)
        r->lowest_open = r->depth;
    f = &r->frames[r->depth - 1];
    return f->closed ? frame_reopen(r, f) : 0;
}

/* No lower directory to descend into (see descend()). */
#define NO_LOWER ((size_t)-1)

/*
 * Descend into directory name of the top frame (its path is in r->path):
 * open it, build its lower view from layer `from` of the top frame's view
 * (NO_LOWER: none) and push its frame.
 */
static int descend(layer_reader *r, const frame_spec *spec, const char *name,
                   size_t from, layer_xattr__list *scratch)
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
    return push_frame(r, spec, fd, cl, ncl, scratch);
}

/* ---- staging one name --------------------------------------------------- */

/* One name of the top frame being visited: what visit() found out before
 * the rules of the layer's kind apply. */
typedef struct visit_ctx {
    frame *top;
    const char *name;
    size_t len;                         /* the length of its path, in r->path */
    struct statx st;                    /* in the layer */
    lookup low;                         /* in the lower view */
    layer_xattr__list xa, lxa, scratch; /* its, the lower file's, spare */
} visit_ctx;

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

/* Stage the waiting members of p's link group as links to target. */
static int stage_pending(layer_reader *r, layer_hardlink__pending *p,
                         const char *target, size_t target_len)
{
    staged s = {0};
    int rc;

    for (size_t i = 0; i < p->nancs; i++) {
        layer_hardlink__anc *a = &p->ancs[i];
        frame *f;

        if (a->emitted)
            continue;
        if ((rc = stage_dir(r, p->path, a->path_len, &a->st, &a->xa, false)) <
            0)
            return rc;
        f = frame_by_serial(r, a->serial);
        if (f)
            f->emitted = true;
        layer_hardlink__mark_emitted(&r->links, a->serial);
    }
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
    if (rc < 0)
        staged_dispose(&s);
    return rc;
}

/* The first name of id's link group went out (r->path, len bytes):
 * stage the members that waited for it as links to it. */
static int flush_pending(layer_reader *r, layer_file_id id, size_t len)
{
    layer_hardlink__pending *p;
    int rc = 0;

    while (rc == 0 && (p = layer_hardlink__take(&r->links, id)) != NULL) {
        rc = stage_pending(r, p, r->path, len);
        layer_hardlink__pending_free(p);
    }
    return rc;
}

/* Remember the visited file, an unchanged link member, until a changed
 * member of its group shows up. */
static int pending_add(layer_reader *r, const visit_ctx *v)
{
    layer_hardlink__pending *p = NULL;
    int rc;

    if ((rc = layer_hardlink__pending_new(&p, &v->st, r->path, v->len,
                                          r->depth - 1)) < 0)
        return rc;
    for (size_t i = 1; i < r->depth; i++) {
        layer_hardlink__anc *a = &p->ancs[i - 1];

        a->serial = r->frames[i].serial;
        a->path_len = r->frames[i].path_len;
        a->st = r->frames[i].st;
        a->emitted = r->frames[i].emitted;
        if ((rc = layer_xattr__copy(&a->xa, &r->frames[i].xa)) < 0) {
            layer_hardlink__pending_free(p);
            return rc;
        }
    }
    layer_hardlink__defer(&r->links, p);
    return 0;
}

/*
 * Stage the visited name as a non-tombstone entry, with its ancestors
 * first and hard-link handling: a later name of a link group becomes a
 * hardlink to the first, and the first releases the group's waiting
 * members.
 */
static int stage_entry(layer_reader *r, const visit_ctx *v, layer_change change,
                       bool opaque)
{
    frame *top = v->top;
    const struct statx *st = &v->st;
    staged s;
    layer_type type = type_of(st->stx_mode);
    layer_file_id id = layer_hardlink__id_of(st);
    bool first_of_group = false;
    int rc;

    if ((rc = staged_begin(&s, r, v->len, change, type)) < 0)
        goto out;
    s.st = *st;
    s.has_st = true;
    s.opaque = opaque;
    if ((rc = layer_xattr__copy(&s.xa, &v->xa)) < 0)
        goto out;
    if (type != LAYER_TYPE_DIR && st->stx_nlink > 1) {
        const char *first = layer_hardlink__find(&r->links, id);

        if (first) {
            s.type = LAYER_TYPE_HARDLINK;
            s.link = layer_trystrdup(first);
            if (s.link == NULL) {
                rc = LAYER_ENOMEM;
                goto out;
            }
            s.link_len = strlen(s.link);
        } else {
            if ((rc = layer_hardlink__insert(&r->links, id, s.path, v->len)) <
                0)
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
        n = readlinkat(top->fd, v->name, s.link, cap);
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
        s.name = s.path + v->len - strlen(v->name);
    }
    if ((rc = queue_push(r, &s)) < 0)
        goto out;
    return first_of_group ? flush_pending(r, id, v->len) : 0;
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

/* ---- the two walks ------------------------------------------------------ */

/*
 * Diff layer (overlayfs upperdir): the layer holds only changes. A
 * whiteout deletes what the lower view has under its name; anything else
 * is added (or modified, if the lower view has the name). A directory is
 * walked into; an opaque one (or any below an opaque one) in merge mode,
 * so that what the lower view holds and the layer does not becomes
 * tombstones. A directory copied up unchanged is emitted only when
 * something below it changes.
 */
static int visit_diff(layer_reader *r, visit_ctx *v)
{
    frame *top = v->top;
    frame_spec child = {0};
    bool wh = false, have_xa = false, lower_dir;
    layer_change change = v->low.found ? LAYER_CHANGE_MODIFY : LAYER_CHANGE_ADD;
    unsigned markers;
    int rc;

    if ((rc = layer_xattr__is_whiteout(&wh, &have_xa, top->fd, v->name, r->path,
                                       &v->st, &v->xa)) < 0)
        return rc;
    if (wh)
        return v->low.found ? stage_tombstone(r, v->len) : 0;
    if (!have_xa &&
        (rc = layer_xattr__read(&v->xa, -1, top->fd, v->name, r->path)) < 0)
        return rc;
    markers = layer_xattr__markers(&v->xa);
    if ((rc = layer_xattr__check_exportable(markers, r->path)) < 0)
        return rc;
    layer_xattr__strip_overlay(&v->xa);
    if (!S_ISDIR(v->st.stx_mode))
        return stage_entry(r, v, change, false);

    lower_dir = v->low.found && S_ISDIR(v->low.st.stx_mode);
    child.path_len = v->len;
    child.st = &v->st;
    child.xa = &v->xa;
    child.opaque = (markers & LAYER_XATTR__OPAQUE) != 0;
    child.merge = child.opaque || top->merge;
    child.emitted = true;
    if (lower_dir && !child.merge) {
        /* a copied-up directory: a change only if its metadata differs;
         * otherwise emitted when a child changes */
        if ((rc = layer_xattr__read(&v->lxa, -1, top->lowers[v->low.layer].fd,
                                    v->name, r->path)) < 0)
            return rc;
        child.emitted =
            !layer_compare__same_dir(&v->st, &v->low.st, &v->xa, &v->lxa);
    }
    if (child.emitted && (rc = stage_entry(r, v, change, child.opaque)) < 0)
        return rc;
    return descend(r, &child, v->name, lower_dir ? v->low.layer : NO_LOWER,
                   &v->scratch);
}

/*
 * Snapshot layer, and the Files/ tree of a transport folder: the layer is
 * a full tree. A name the lower view lacks is an addition (a directory is
 * walked into with no lower view: all of it is added); a name in both is
 * compared with continuity's rules, and only a changed one is emitted.
 * Every directory is walked in merge mode, so that names only the lower
 * view has become tombstones. An unchanged member of a link group is
 * emitted (as a hardlink) only if a changed member exists.
 */
static int visit_full(layer_reader *r, visit_ctx *v)
{
    frame *top = v->top;
    frame_spec child = {0};
    bool same = false;
    int lfd, rc;

    if ((rc = layer_xattr__read(&v->xa, -1, top->fd, v->name, r->path)) < 0)
        return rc;
    child.path_len = v->len;
    child.st = &v->st;
    child.xa = &v->xa;
    if (!v->low.found) {
        rc = stage_entry(r, v, LAYER_CHANGE_ADD, false);
        if (rc == 0 && S_ISDIR(v->st.stx_mode)) {
            child.emitted = true;
            rc = descend(r, &child, v->name, NO_LOWER, &v->scratch);
        }
        return rc;
    }
    lfd = top->lowers[v->low.layer].fd;
    if ((rc = layer_xattr__read(&v->lxa, -1, lfd, v->name, r->path)) < 0)
        return rc;
    if ((rc = layer_compare__same_file(&same, top->fd, lfd, v->name, &v->st,
                                       &v->low.st, &v->xa, &v->lxa,
                                       r->noatime)) < 0)
        return rc;
    if (S_ISDIR(v->st.stx_mode)) {
        if (!same && (rc = stage_entry(r, v, LAYER_CHANGE_MODIFY, false)) < 0)
            return rc;
        child.merge = true;
        child.emitted = !same;
        return descend(r, &child, v->name,
                       S_ISDIR(v->low.st.stx_mode) ? v->low.layer : NO_LOWER,
                       &v->scratch);
    }
    if (!same)
        return stage_entry(r, v, LAYER_CHANGE_MODIFY, false);
    if (v->st.stx_nlink > 1) {
        /* unchanged member of a link group: re-emitted as a link if a
         * changed member exists or shows up later */
        if (layer_hardlink__find(&r->links, layer_hardlink__id_of(&v->st)))
            return stage_entry(r, v, LAYER_CHANGE_MODIFY, false);
        return pending_add(r, v);
    }
    return 0;
}

/* How the walk met a name of the top frame that the layer holds. */
typedef struct met {
    const char *name;
    /* merge mode: the lower listing says whether the lower view holds
     * the name (in_lower) and in which of its layers; otherwise the
     * lower view is searched for it */
    bool listed;
    bool in_lower;
    size_t layer;
} met;

/* Where the visited name is in the lower view. */
static int visit_lower(visit_ctx *v, layer_reader *r, const met *m)
{
    if (!m->listed)
        return lower_lookup(&v->low, v->top, v->name, &v->scratch);
    v->low.found = m->in_lower;
    if (!m->in_lower)
        return 0;
    v->low.layer = m->layer;
    if (do_statx(&v->low.st, v->top->lowers[m->layer].fd, v->name) < 0) {
        if (errno != ENOENT)
            return layer_error_set_errno(LAYER_ERROR, errno, "parent %s: stat",
                                         r->path);
        v->low.found = false;
    }
    return 0;
}

/* Handle one name of the top frame that the layer holds. */
static int visit(layer_reader *r, const met *m)
{
    visit_ctx v;
    int rc;

    /* not zeroed whole: the two statx buffers are filled before use */
    memset(&v.xa, 0, sizeof(v.xa));
    memset(&v.lxa, 0, sizeof(v.lxa));
    memset(&v.scratch, 0, sizeof(v.scratch));
    v.low.found = false;
    v.top = &r->frames[r->depth - 1];
    v.name = m->name;
    if ((rc = path_set(&v.len, r, v.top, m->name)) < 0)
        return rc;
    /* A folder's Files/ tree names its entries as tombstones.txt does;
     * they obey the same rule (layer_folder__tombstones_next()). */
    if (r->kind == LAYER_KIND_FOLDER &&
        !layer_beneath_path_valid(r->path, v.len))
        return layer_error_set(
            LAYER_EBROKEN, "Files/%s: not a canonical relative path", r->path);
    if (do_statx(&v.st, v.top->fd, m->name) < 0) {
        if (errno == ENOENT) /* removed since the listing */
            return 0;
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: stat", r->path);
    }
    if (type_of(v.st.stx_mode) == LAYER_TYPE_NONE)
        return 0; /* sockets are skipped */
    if ((rc = visit_lower(&v, r, m)) == 0)
        rc = r->kind == LAYER_KIND_DIFF ? visit_diff(r, &v) : visit_full(r, &v);
    layer_xattr__dispose(&v.xa);
    layer_xattr__dispose(&v.lxa);
    layer_xattr__dispose(&v.scratch);
    return rc;
}

/* A name only the lower view holds, in merge mode: deleted. */
static int visit_deleted(layer_reader *r, const char *name)
{
    size_t len = 0;
    int rc;

    if ((rc = path_set(&len, r, &r->frames[r->depth - 1], name)) < 0)
        return rc;
    return stage_tombstone(r, len);
}

/* Advance the walk of the top frame by one name; pops finished frames. */
static int walk_step(layer_reader *r)
{
    frame *top = &r->frames[r->depth - 1];
    const char *u =
        top->up.i < top->up.n ? names_at(&top->up, top->up.i) : NULL;
    const char *l = NULL;
    met m = {0};
    int c;

    if (top->merge)
        l = top->low.i < top->low.n ? names_at(&top->low, top->low.i) : NULL;
    if (u == NULL && l == NULL) {
        if (r->depth == 1) {
            r->done = true;
            return 0;
        }
        return pop_frame(r);
    }
    m.name = u;
    if (!top->merge) {
        top->up.i++;
        return visit(r, &m);
    }
    c = u == NULL ? 1 : l == NULL ? -1 : strcmp(u, l);
    if (c > 0) {
        top->low.i++;
        return visit_deleted(r, l);
    }
    m.listed = true;
    if (c == 0) {
        m.in_lower = true;
        m.layer = (size_t)top->low.src[top->low.i];
        top->low.i++;
    }
    top->up.i++;
    return visit(r, &m);
}

/* ---- folder tombstones -------------------------------------------------- */

/* Load the next tombstone into r->tomb_line (tomb_have). */
static int tomb_next(layer_reader *r)
{
    int rc;

    r->tomb_have = false;
    if (r->tomb == NULL)
        return 0;
    rc = layer_folder__tombstones_next(&r->tomb_line, &r->tomb_len, r->tomb);
    if (rc == LAYER_ITEROVER)
        return 0;
    if (rc < 0)
        return rc;
    r->tomb_have = true;
    return 0;
}

static int open_tombstones(layer_reader *r, int folder_fd, const char *folder)
{
    int rc = layer_folder__tombstones_open(&r->tomb, folder_fd, folder);

    return rc < 0 ? rc : tomb_next(r);
}

/* ---- public API --------------------------------------------------------- */

/*
 * Open a layer directory: through the descriptor a store handed over
 * (openat(fd, ".") gives a description of our own, with its own
 * directory offset, of the very directory the store looked up), or else
 * by the path the caller named, whose symlinks are the caller's choice
 * (e.g. /var/lib/docker on another disk). Everything below is reached
 * from this descriptor, with O_NOFOLLOW.
 */
static int open_root(int *out, const layer_dir *d, const char *what)
{
    int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    int dirfd = d->has_fd ? d->fd : AT_FDCWD;
    const char *name = d->has_fd ? "." : d->path;
    int fd = openat(dirfd, name, flags | O_NOATIME);

    if (fd < 0 && errno == EPERM)
        fd = openat(dirfd, name, flags);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return layer_error_set_errno(LAYER_ENOTFOUND, errno, "%s %s", what,
                                         d->path);
        return layer_error_set_errno(LAYER_ERROR, errno, "%s %s", what,
                                     d->path);
    }
    *out = fd;
    return 0;
}

/*
 * Open the parents' roots as the lower view of the layer's root, nearest
 * first. The view ends after a snapshot parent (a full tree holds
 * everything below it) or a diff parent whose root is opaque.
 */
static int open_parents(lower **out, size_t *out_n, const layer_dir *parents,
                        size_t nparents, layer_xattr__list *scratch)
{
    lower *lowers = NULL;
    size_t nl = 0;
    int rc = 0;

    if (nparents == 0) {
        *out = NULL;
        *out_n = 0;
        return 0;
    }
    lowers = layer_trycalloc(nparents, sizeof(*lowers));
    if (lowers == NULL)
        return LAYER_ENOMEM;
    for (size_t i = 0; i < nparents; i++) {
        if (parents[i].path == NULL || parents[i].kind == LAYER_KIND_FOLDER) {
            rc = layer_error_set(LAYER_EINVALID,
                                 "parent %zu is not a layer directory", i);
            goto out;
        }
        if ((rc = open_root(&lowers[nl].fd, &parents[i], "parent")) < 0)
            goto out;
        lowers[nl].diff = parents[i].kind == LAYER_KIND_DIFF;
        lowers[nl].anchor = nl;
        nl++;
        if (!lowers[nl - 1].diff)
            break; /* a snapshot holds everything below it */
    }
    /* opaque roots cut the chain too */
    for (size_t i = 0; i < nl; i++) {
        if (!lowers[i].diff)
            continue;
        if ((rc = layer_xattr__read(scratch, lowers[i].fd, -1, NULL,
                                    "parent root")) < 0)
            goto out;
        if (layer_xattr__markers(scratch) & LAYER_XATTR__OPAQUE) {
            for (size_t j = i + 1; j < nl; j++)
                close(lowers[j].fd);
            nl = i + 1;
            break;
        }
    }
out:
    if (rc < 0) {
        lowers_free(lowers, nl);
        return rc;
    }
    *out = lowers;
    *out_n = nl;
    return 0;
}

/*
 * Push the root frame: the layer directory (a transport folder's Files/,
 * whose tombstones.txt is opened too) over the lower view lowers, which
 * the frame owns from the call on. A diff layer's root is walked in
 * merge mode when it is opaque, a snapshot's always.
 */
static int push_root(layer_reader *r, const layer_dir *layer, lower *lowers,
                     size_t nl, layer_xattr__list *scratch)
{
    frame_spec root = {.emitted = true};
    int fd = -1, rc = 0;

    if (layer->kind == LAYER_KIND_FOLDER) {
        rc = layer_beneath_open(&fd, r->root_fd, "Files",
                                O_RDONLY | O_DIRECTORY, 0);
        if (rc == LAYER_EINVALID)
            rc = layer_error_set(
                LAYER_EBROKEN, "%s/Files is a symlink (refused)", layer->path);
        else if (rc < 0)
            rc = layer_error_set_errno(
                rc == LAYER_ENOTFOUND ? LAYER_ENOTFOUND : LAYER_ERROR,
                layer_error_errno(), "%s/Files", layer->path);
        if (rc < 0)
            goto out;
        if ((rc = open_tombstones(r, r->root_fd, layer->path)) < 0)
            goto out;
    } else {
        fd = dup(r->root_fd);
        if (fd < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno, "layer %s: dup",
                                       layer->path);
            goto out;
        }
    }
    if (layer->kind == LAYER_KIND_SNAPSHOT)
        root.merge = true;
    if (layer->kind == LAYER_KIND_DIFF) {
        unsigned markers;

        if ((rc = layer_xattr__read(scratch, fd, -1, NULL, "layer root")) < 0)
            goto out;
        markers = layer_xattr__markers(scratch);
        if ((rc = layer_xattr__check_exportable(markers, "/")) < 0)
            goto out;
        root.merge = (markers & LAYER_XATTR__OPAQUE) != 0;
    }
    rc = push_frame(r, &root, fd, lowers, nl, scratch);
    fd = -1;
    lowers = NULL;
    nl = 0;
out:
    if (fd >= 0)
        close(fd);
    lowers_free(lowers, nl);
    return rc;
}

int layer_reader_open(layer_reader **out, const layer_dir *layer,
                      const layer_dir *parents, size_t nparents,
                      const layer_reader_opts *opts)
{
    layer_reader *r = NULL;
    lower *lowers = NULL;
    layer_xattr__list scratch = {0};
    size_t nl = 0;
    int rc = 0;

    if (out == NULL || layer == NULL || layer->path == NULL ||
        (nparents > 0 && parents == NULL))
        return layer_error_set(LAYER_EINVALID, "missing argument");
    if (nparents > LAYER_CHAIN_MAX)
        return layer_error_set(LAYER_EINVALID,
                               "%zu parents: a layer has at most %d "
                               "(LAYER_CHAIN_MAX)",
                               nparents, LAYER_CHAIN_MAX);
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
    if (opts != NULL) {
        r->on_warning = opts->on_warning;
        r->warning_arg = opts->warning_arg;
    }
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
    if ((rc = open_root(&r->root_fd, layer, "layer")) < 0 ||
        (rc = open_parents(&lowers, &nl, parents, nparents, &scratch)) < 0)
        goto out;
    rc = push_root(r, layer, lowers, nl, &scratch);
out:
    layer_xattr__dispose(&scratch);
    if (rc < 0) {
        if (r) {
            layer_span_set_error(r->span, "layer.reader", rc);
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
        e->file_id = layer_hardlink__id_of(st);
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
    size_t len = r->tomb_len;

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
            if (r->tomb_have && layer_path_compare(r->tomb_line, r->tomb_len,
                                                   s->path, s->path_len) < 0) {
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

/* One warning per file (tolerant mode only): kept as the last warning,
 * counted, handed to on_warning and logged as a child span of the
 * reader's, so a server's log has one line per file that changed. */
static void warn(layer_reader *r, const char *what)
{
    layer_span *w = NULL;

    if (r->data_warned)
        return;
    r->data_warned = true;
    snprintf(r->warning, sizeof(r->warning), "%s: %s", r->cur.path, what);
    r->stats.warnings++;
    if (r->span != NULL &&
        layer_span_start(&w, NULL, r->span, "layer.file_changed") == 0) {
        layer_span_set_str(w, "file.path", r->cur.path);
        layer_span_set_str(w, "warning", r->warning);
        layer_span_end(w);
    }
    if (r->on_warning != NULL)
        r->on_warning(r->warning_arg, r->warning);
}

static bool strict(const layer_reader *r)
{
    return (r->flags & LAYER_READER_ALLOW_CHANGING) == 0;
}

/* What moved in the file since it was listed, or NULL: its size, mtime or
 * ctime. The kernel moves ctime on every write, truncate, chmod, chown,
 * xattr change and link, even when mtime is put back (touch -r), so a
 * file whose three are unchanged holds the bytes that were listed. */
static const char *moved(const layer_reader *r, const struct stat *st)
{
    const struct statx *l = &r->cur_st.st;

    if ((uint64_t)st->st_size != l->stx_size)
        return (uint64_t)st->st_size > l->stx_size ? "grew" : "shrank";
    if (st->st_mtim.tv_sec != l->stx_mtime.tv_sec ||
        (uint32_t)st->st_mtim.tv_nsec != l->stx_mtime.tv_nsec)
        return "was modified";
    if (st->st_ctim.tv_sec != l->stx_ctime.tv_sec ||
        (uint32_t)st->st_ctim.tv_nsec != l->stx_ctime.tv_nsec)
        return "was changed";
    return NULL;
}

/* Strict mode: fail if the open file moved since its listing. */
static int check_unmoved(layer_reader *r)
{
    struct stat st;
    const char *how;

    if (fstat(r->data_fd, &st) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: stat",
                                     r->cur.path);
    if ((how = moved(r, &st)) != NULL)
        return layer_error_set(LAYER_ECHANGED,
                               "%s: file %s while read (listed with %llu "
                               "bytes)",
                               r->cur.path, how,
                               (unsigned long long)r->cur_st.st.stx_size);
    return 0;
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
        if (strict(r))
            return layer_error_set(LAYER_ECHANGED,
                                   "%s: file replaced or removed while read",
                                   r->cur.path);
        warn(r, "file replaced while read; zero-filled");
        r->data_pad = r->data_left;
        return 0;
    }
    /* O_NONBLOCK guarded the open against a swapped-in fifo; it has no
     * effect on reads of a regular file, so it is left set */
    r->data_fd = fd;
    return strict(r) ? check_unmoved(r) : 0;
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
            if (strict(r))
                return fail(
                    r,
                    layer_error_set(
                        LAYER_ECHANGED,
                        "%s: file shrank while read (%llu of %llu bytes)",
                        r->cur.path,
                        (unsigned long long)(r->cur.size - r->data_left + got),
                        (unsigned long long)r->cur.size));
            warn(r, "file shrank while read; padded with zeros");
            r->data_pad = r->data_left - got;
            break;
        }
        got += (size_t)n;
    }
    /* Strict: the bytes just read are the listed file's only if it has
     * not moved meanwhile (checked after every read, so a range that
     * stops short of the end is covered too). */
    if (strict(r) && (rc = check_unmoved(r)) < 0)
        return fail(r, rc);
    if (r->data_pad > 0 && got < cap) {
        memset((char *)buf + got, 0, cap - got);
        r->data_pad -= cap - got;
        got = cap;
    }
    r->data_left -= got;
    r->stats.bytes_read += got;
    if (r->data_left == 0 && r->data_fd >= 0) {
        struct stat st;
        const char *how;

        /* tolerant: grew, or rewritten in place: GNU tar's "file changed
         * as we read it" */
        if (!strict(r) && fstat(r->data_fd, &st) == 0 &&
            (how = moved(r, &st)) != NULL)
            warn(r, strcmp(how, "grew") == 0
                        ? "file grew while read; cut to its listed size"
                        : "file changed as we read it");
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
    layer_hardlink__dispose(&r->links);
    if (r->data_fd >= 0)
        close(r->data_fd);
    r->data_fd = -1;
    if (r->root_fd >= 0)
        close(r->root_fd);
    r->root_fd = -1;
    layer_folder__tombstones_free(r->tomb);
    r->tomb = NULL;
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
