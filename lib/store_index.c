/*
 * The index of a store: what its metadata says, built once and shared
 * read-only by every call until the metadata changes.
 *
 * A back end's build() turns the metadata files into records (layers,
 * images) and names the files and directories they came from (stamps).
 * The index keeps the records in one arena, sorted by id (and layers by
 * alias, images by name) so that a lookup is a binary search, and keeps
 * each stamp's device, inode, size, mtime and ctime as they were before
 * the files were read. An index is stale once a stamp differs; the store
 * then builds a new one and swaps it in (store.c), while calls that hold
 * the old one finish with it: an index is immutable after its build and
 * freed with its last reference.
 *
 * A failure of the whole store (a layers.json that does not parse, a
 * driver that is not supported) is an index too, holding the error, so a
 * broken store is not re-read on every call: only a change makes it
 * built again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "store_int.h"

/* Arena blocks: big enough that a store of 32,000 layers takes a few
 * hundred, small enough that a tiny store wastes little. */
#define ARENA_BLOCK (64u * 1024u)
/* Most inotify watches one store adds; past them, the once-a-second
 * stamp check alone notices changes (a dir: store has one per layer). */
#define WATCHES_MAX 1024

typedef struct block {
    struct block *next;
    size_t used, cap;
    max_align_t data[];
} block;

typedef struct stamp {
    const char *rel;
    bool dir;
    bool present;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} stamp;

/* A name and the image it names. */
typedef struct name_ref {
    const char *name;
    uint32_t img;
} name_ref;

struct layer_store__index {
    atomic_int refs;
    int err;
    const char *errmsg;
    layer_store__rec *recs;
    size_t nrecs;
    uint32_t *by_id; /* records with an id, first of each id, bytewise */
    size_t nby_id;
    uint32_t *by_alias; /* records with an alias: alias, order, id */
    size_t nby_alias;
    uint32_t *listed; /* by_id positions of the listed records */
    size_t nlisted;
    int images_err; /* the image metadata is broken: no image is known */
    const char *images_errmsg;
    layer_store__img *imgs; /* sorted by id */
    size_t nimgs;
    name_ref *names; /* sorted by name */
    size_t nnames;
    stamp *stamps;
    size_t nstamps;
    block *blocks;
};

struct layer_store__builder {
    layer_store__index *idx;
    int root_fd;
    bool oom;
    size_t recs_cap, imgs_cap, stamps_cap;
};

/* ---- the arena -------------------------------------------------------- */

void *layer_store__balloc(layer_store__builder *b, size_t n)
{
    const size_t align = sizeof(max_align_t);
    block *blk = b->idx->blocks;
    size_t need = (n + align - 1) / align * align;
    void *p;

    if (n > SIZE_MAX / 2) {
        b->oom = true;
        return NULL;
    }
    if (blk == NULL || blk->cap - blk->used < need) {
        size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;

        blk = layer_trymalloc(sizeof(*blk) + cap);
        if (blk == NULL) {
            b->oom = true;
            return NULL;
        }
        blk->used = 0;
        blk->cap = cap;
        blk->next = b->idx->blocks;
        b->idx->blocks = blk;
    }
    p = (char *)blk->data + blk->used;
    blk->used += need;
    memset(p, 0, n);
    return p;
}

const char *layer_store__bstrn(layer_store__builder *b, const char *s,
                               size_t len)
{
    char *p;

    if (s == NULL)
        return NULL;
    if ((p = layer_store__balloc(b, len + 1)) == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

const char *layer_store__bstr(layer_store__builder *b, const char *s)
{
    return s == NULL ? NULL : layer_store__bstrn(b, s, strlen(s));
}

const char *layer_store__bfmt(layer_store__builder *b, const char *fmt, ...)
{
    va_list ap;
    char *p;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (p = layer_store__balloc(b, (size_t)n + 1)) == NULL) {
        b->oom = true;
        return NULL;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* Grow *v (of *cap items of size sz) to hold n + 1. */
static int grow(layer_store__builder *b, void **v, size_t *cap, size_t n,
                size_t sz)
{
    void *nv;
    size_t ncap;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 64;
    if ((nv = layer_tryarray(*v, ncap, sz)) == NULL) {
        b->oom = true;
        return LAYER_ENOMEM;
    }
    *v = nv;
    *cap = ncap;
    return 0;
}

int layer_store__badd_layer(layer_store__builder *b,
                            const layer_store__rec *rec)
{
    layer_store__index *idx = b->idx;

    if (idx->nrecs >= UINT32_MAX)
        return layer_error_set(LAYER_ETOOBIG, "more than %u layers",
                               UINT32_MAX);
    if (grow(b, (void **)&idx->recs, &b->recs_cap, idx->nrecs,
             sizeof(*idx->recs)) < 0)
        return LAYER_ENOMEM;
    idx->recs[idx->nrecs++] = *rec;
    return 0;
}

int layer_store__badd_image(layer_store__builder *b,
                            const layer_store__img *img)
{
    layer_store__index *idx = b->idx;

    if (idx->nimgs >= UINT32_MAX)
        return layer_error_set(LAYER_ETOOBIG, "more than %u images",
                               UINT32_MAX);
    if (grow(b, (void **)&idx->imgs, &b->imgs_cap, idx->nimgs,
             sizeof(*idx->imgs)) < 0)
        return LAYER_ENOMEM;
    idx->imgs[idx->nimgs++] = *img;
    return 0;
}

void layer_store__bimages_error(layer_store__builder *b, int code)
{
    b->idx->images_err = code;
    b->idx->images_errmsg = layer_store__bstr(b, layer_error_last());
    b->idx->nimgs = 0;
}

void layer_store__brec_error(layer_store__builder *b, layer_store__rec *rec,
                             int code)
{
    rec->err = code;
    rec->errmsg = layer_store__bstr(b, layer_error_last());
}

void layer_store__bimg_error(layer_store__builder *b, layer_store__img *img,
                             int code)
{
    img->err = code;
    img->errmsg = layer_store__bstr(b, layer_error_last());
}

/* The state of rel below root_fd now. */
static void stamp_take(stamp *s, int root_fd)
{
    struct stat st;

    s->present = fstatat(root_fd, s->rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!s->present)
        return;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime = st.st_mtim;
    s->ctime = st.st_ctim;
}

static bool stamp_same(const stamp *a, const stamp *b)
{
    if (a->present != b->present)
        return false;
    return !a->present ||
           (a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
            a->mtime.tv_sec == b->mtime.tv_sec &&
            a->mtime.tv_nsec == b->mtime.tv_nsec &&
            a->ctime.tv_sec == b->ctime.tv_sec &&
            a->ctime.tv_nsec == b->ctime.tv_nsec);
}

int layer_store__bstamp(layer_store__builder *b, const char *rel, bool dir)
{
    layer_store__index *idx = b->idx;
    stamp *s;

    if (grow(b, (void **)&idx->stamps, &b->stamps_cap, idx->nstamps,
             sizeof(*idx->stamps)) < 0)
        return LAYER_ENOMEM;
    s = &idx->stamps[idx->nstamps];
    memset(s, 0, sizeof(*s));
    if ((s->rel = layer_store__bstr(b, rel)) == NULL)
        return LAYER_ENOMEM;
    s->dir = dir;
    stamp_take(s, b->root_fd);
    idx->nstamps++;
    return 0;
}

/* ---- sorting ---------------------------------------------------------- */

/* qsort has no context argument in C11; qsort_r's is glibc's. */
static int cmp_rec_id(const void *a, const void *b, void *ctx)
{
    const layer_store__rec *recs = ctx;
    const layer_store__rec *x = &recs[*(const uint32_t *)a];
    const layer_store__rec *y = &recs[*(const uint32_t *)b];
    int c = strcmp(x->id, y->id);

    if (c != 0)
        return c;
    /* the first record of an id (file order) comes first */
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_rec_alias(const void *a, const void *b, void *ctx)
{
    const layer_store__rec *recs = ctx;
    const layer_store__rec *x = &recs[*(const uint32_t *)a];
    const layer_store__rec *y = &recs[*(const uint32_t *)b];
    int c = strcmp(x->alias, y->alias);

    if (c != 0)
        return c;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int cmp_img(const void *a, const void *b)
{
    const layer_store__img *x = a, *y = b;
    int c = strcmp(x->id, y->id);

    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_name(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    return c != 0 ? c : (x->img < y->img ? -1 : x->img > y->img);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The lookup tables, once every record is in. */
static int finish(layer_store__index *idx)
{
    size_t n = 0, nn = 0;

    if (idx->nrecs > 0) {
        idx->by_id = layer_trycalloc(idx->nrecs, sizeof(*idx->by_id));
        idx->by_alias = layer_trycalloc(idx->nrecs, sizeof(*idx->by_alias));
        idx->listed = layer_trycalloc(idx->nrecs, sizeof(*idx->listed));
        if (idx->by_id == NULL || idx->by_alias == NULL || idx->listed == NULL)
            return LAYER_ENOMEM;
    }
    for (size_t i = 0; i < idx->nrecs; i++) {
        if (idx->recs[i].id != NULL)
            idx->by_id[n++] = (uint32_t)i;
    }
    if (n > 1)
        qsort_r(idx->by_id, n, sizeof(*idx->by_id), cmp_rec_id, idx->recs);
    /* one record per id: the first in file order */
    idx->nby_id = 0;
    for (size_t i = 0; i < n; i++) {
        if (idx->nby_id > 0 && strcmp(idx->recs[idx->by_id[idx->nby_id - 1]].id,
                                      idx->recs[idx->by_id[i]].id) == 0)
            continue;
        idx->by_id[idx->nby_id++] = idx->by_id[i];
    }
    for (size_t i = 0; i < idx->nby_id; i++) {
        const layer_store__rec *r = &idx->recs[idx->by_id[i]];

        if (r->listed)
            idx->listed[idx->nlisted++] = (uint32_t)i;
        if (r->alias != NULL)
            idx->by_alias[idx->nby_alias++] = idx->by_id[i];
    }
    if (idx->nby_alias > 1)
        qsort_r(idx->by_alias, idx->nby_alias, sizeof(*idx->by_alias),
                cmp_rec_alias, idx->recs);
    /* each parent found once, so that a chain is walked without a search */
    for (size_t i = 0; i < idx->nrecs; i++) {
        layer_store__rec *r = &idx->recs[i];
        const layer_store__rec *p =
            r->parent != NULL ? layer_store__index_find(
                                    idx, r->parent, strlen(r->parent), false)
                              : NULL;

        r->parent_rec = p != NULL ? (uint32_t)(p - idx->recs) : UINT32_MAX;
    }
    if (idx->nimgs > 1)
        qsort(idx->imgs, idx->nimgs, sizeof(*idx->imgs), cmp_img);
    /* one image per id: the first in file order */
    n = 0;
    for (size_t i = 0; i < idx->nimgs; i++) {
        if (n > 0 && strcmp(idx->imgs[n - 1].id, idx->imgs[i].id) == 0)
            continue;
        idx->imgs[n++] = idx->imgs[i];
    }
    idx->nimgs = n;
    for (size_t i = 0; i < idx->nimgs; i++)
        nn += idx->imgs[i].nnames;
    if (nn > 0 &&
        (idx->names = layer_trycalloc(nn, sizeof(*idx->names))) == NULL)
        return LAYER_ENOMEM;
    for (size_t i = 0; i < idx->nimgs; i++) {
        layer_store__img *img = &idx->imgs[i];

        if (img->nnames > 1)
            qsort((void *)img->names, img->nnames, sizeof(*img->names),
                  cmp_str);
        for (size_t k = 0; k < img->nnames; k++)
            idx->names[idx->nnames++] =
                (name_ref){.name = img->names[k], .img = (uint32_t)i};
    }
    if (idx->nnames > 1)
        qsort(idx->names, idx->nnames, sizeof(*idx->names), cmp_name);
    return 0;
}

/* ---- building --------------------------------------------------------- */

static void index_free(layer_store__index *idx)
{
    block *blk, *next;

    if (idx == NULL)
        return;
    for (blk = idx->blocks; blk != NULL; blk = next) {
        next = blk->next;
        layer_free(blk);
    }
    layer_free(idx->recs);
    layer_free(idx->by_id);
    layer_free(idx->by_alias);
    layer_free(idx->listed);
    layer_free(idx->imgs);
    layer_free(idx->names);
    layer_free(idx->stamps);
    layer_free(idx);
}

int layer_store__index_build(layer_store__index **out,
                             const layer_store__backend *be,
                             const layer_store__root *root)
{
    layer_store__builder b = {0};
    layer_store__index *idx;
    int rc;

    if ((idx = layer_trycalloc(1, sizeof(*idx))) == NULL)
        return LAYER_ENOMEM;
    atomic_init(&idx->refs, 1);
    b.idx = idx;
    b.root_fd = root->fd;
    rc = be->build(&b, root);
    if (b.oom || rc == LAYER_ENOMEM) {
        index_free(idx);
        return layer_error_set(LAYER_ENOMEM, "out of memory indexing %s",
                               root->path);
    }
    if (rc < 0) {
        /* The whole store is broken: keep the stamps (a change makes it
         * built again) and the error, nothing else. */
        idx->err = rc;
        if ((idx->errmsg = layer_store__bstr(&b, layer_error_last())) == NULL) {
            index_free(idx);
            return LAYER_ENOMEM;
        }
        idx->nrecs = 0;
        idx->nimgs = 0;
    }
    if (finish(idx) < 0) {
        index_free(idx);
        return layer_error_set(LAYER_ENOMEM, "out of memory indexing %s",
                               root->path);
    }
    *out = idx;
    return 0;
}

void layer_store__index_ref(layer_store__index *idx)
{
    atomic_fetch_add_explicit(&idx->refs, 1, memory_order_relaxed);
}

void layer_store__index_unref(layer_store__index *idx)
{
    if (idx != NULL &&
        atomic_fetch_sub_explicit(&idx->refs, 1, memory_order_acq_rel) == 1)
        index_free(idx);
}

int layer_store__index_error(const layer_store__index *idx, const char **msg)
{
    *msg = idx->errmsg;
    return idx->err;
}

bool layer_store__index_stale(const layer_store__index *idx, int root_fd)
{
    for (size_t i = 0; i < idx->nstamps; i++) {
        stamp now = idx->stamps[i];

        stamp_take(&now, root_fd);
        if (!stamp_same(&now, &idx->stamps[i]))
            return true;
    }
    return false;
}

void layer_store__index_watch(const layer_store__index *idx, int inotify_fd,
                              int root_fd)
{
    const uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                          IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF |
                          IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW;
    char path[PATH_MAX];
    size_t added = 0;

    for (size_t i = 0; i < idx->nstamps && added < WATCHES_MAX; i++) {
        const stamp *s = &idx->stamps[i];
        const char *slash = strrchr(s->rel, '/');
        int n;

        /* a directory's entries: the directory; a file: its directory */
        if (s->dir)
            n = snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", root_fd,
                         s->rel);
        else if (slash != NULL)
            n = snprintf(path, sizeof(path), "/proc/self/fd/%d/%.*s", root_fd,
                         (int)(slash - s->rel), s->rel);
        else
            n = snprintf(path, sizeof(path), "/proc/self/fd/%d", root_fd);
        if (n < 0 || (size_t)n >= sizeof(path))
            continue;
        /* a directory watched already keeps its one watch */
        if (inotify_add_watch(inotify_fd, path, mask) >= 0)
            added++;
        else if (errno == ENOSPC)
            break; /* out of watches: the stamp check covers the rest */
    }
}

/* ---- lookups ---------------------------------------------------------- */

/* Compare a NUL-terminated string with len bytes of key. */
static int cmp_key(const char *s, const char *key, size_t len)
{
    int c = strncmp(s, key, len);

    if (c != 0)
        return c;
    return s[len] != '\0';
}

const layer_store__rec *layer_store__index_find(const layer_store__index *idx,
                                                const char *id, size_t len,
                                                bool aliases)
{
    size_t lo = 0, hi = idx->nby_id;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_key(idx->recs[idx->by_id[mid]].id, id, len);

        if (c == 0)
            return &idx->recs[idx->by_id[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!aliases)
        return NULL;
    /* the first of the records with this alias */
    lo = 0;
    hi = idx->nby_alias;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (cmp_key(idx->recs[idx->by_alias[mid]].alias, id, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < idx->nby_alias &&
        cmp_key(idx->recs[idx->by_alias[lo]].alias, id, len) == 0)
        return &idx->recs[idx->by_alias[lo]];
    return NULL;
}

const layer_store__rec *layer_store__index_parent(const layer_store__index *idx,
                                                  const layer_store__rec *rec)
{
    return rec->parent_rec == UINT32_MAX ? NULL : &idx->recs[rec->parent_rec];
}

void layer_store__index_range(const layer_store__index *idx, const char *after,
                              size_t *out_first, size_t *out_count)
{
    size_t lo = 0, hi = idx->nlisted;

    while (after != NULL && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const layer_store__rec *r = &idx->recs[idx->by_id[idx->listed[mid]]];

        if (strcmp(r->id, after) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *out_first = lo;
    *out_count = idx->nlisted;
}

const layer_store__rec *layer_store__index_at(const layer_store__index *idx,
                                              size_t pos)
{
    return &idx->recs[idx->by_id[idx->listed[pos]]];
}

int layer_store__index_images_error(const layer_store__index *idx,
                                    const char **msg)
{
    *msg = idx->images_errmsg;
    return idx->images_err;
}

size_t layer_store__index_images(const layer_store__index *idx,
                                 const layer_store__img **out)
{
    *out = idx->imgs;
    return idx->nimgs;
}

const layer_store__img *
layer_store__index_image_find(const layer_store__index *idx, const char *ref)
{
    size_t lo = 0, hi = idx->nimgs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(idx->imgs[mid].id, ref);

        if (c == 0)
            return &idx->imgs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    lo = 0;
    hi = idx->nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(idx->names[mid].name, ref) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < idx->nnames && strcmp(idx->names[lo].name, ref) == 0)
        return &idx->imgs[idx->names[lo].img];
    return NULL;
}
