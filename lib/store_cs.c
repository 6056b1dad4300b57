/*
 * The "containers-storage:PATH" store: podman, buildah and CRI-O
 * (github.com/containers/storage), read-only.
 *
 *   PATH/<driver>-layers/layers.json           stable layer records
 *   PATH/<driver>-layers/volatile-layers.json  records written without
 *                                              fsync (container layers)
 *   PATH/<driver>-containers/containers.json   containers; their "layer"
 *   PATH/<driver>-containers/volatile-containers.json
 *   PATH/overlay/<id>/diff                     overlay data (kind diff)
 *   PATH/vfs/dir/<id>                          vfs data (kind snapshot)
 *   PATH/<driver>-layers/<id>.tar-split.gz     the original tar's
 *                                              tar-split data
 *
 * A layer record is a JSON object with the members of the Layer struct of
 * containers/storage layers.go: "id", "names", "parent", "created" (Go
 * time.Time, RFC 3339 with nanoseconds; the zero time means unknown),
 * "diff-digest" (the DiffID), "compressed-diff-digest", "diff-size",
 * "flags" ({"incomplete": true} while a layer is created or deleted), ...
 * As in containers/storage, a record whose id was already seen is skipped,
 * and an empty or missing file is an empty list.
 *
 * The driver is the one whose <driver>-layers directory exists, overlay
 * first. A layer is found by its exact id or, for a client id, by its
 * "diff-digest" (the first record in file order that has it). Volatile
 * layers and the layers of containers are reported mutable. The metadata
 * files and overlay/<id>/diff (vfs/dir/<id>) are reached from the root's
 * descriptor with no symlink on the way: an overlay/<id> that is a
 * symlink is refused, naming the path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "store_int.h"

/* The Go zero time.Time, which "created,omitempty" still writes. */
#define GO_ZERO_TIME "0001-01-01T00:00:00Z"

/* Room for "<store path, cut>/<driver>-layers/<file>" in messages. */
#define WHAT_MAX 320

typedef struct record {
    const json_t *obj;
    const char *id; /* borrowed from obj; may be invalid */
    size_t id_len;
    size_t order;   /* position in file order */
    bool volatile_; /* from volatile-layers.json */
    bool dup;       /* an earlier record has the same id: ignored */
} record;

typedef struct cs_ctx {
    const layer_store__root *root;
    const char *driver; /* "overlay" or "vfs" */
    json_t *docs[2];
    record *recs;   /* file order, stable file first */
    record **by_id; /* the same, sorted by id, then file order */
    size_t nrecs;
    layer_store__strv container_layers;
} cs_ctx;

static void cs_end(void *ctx)
{
    cs_ctx *c = ctx;

    for (size_t i = 0; i < 2; i++)
        json_decref(c->docs[i]);
    layer_free(c->recs);
    layer_free(c->by_id);
    layer_store__strv_dispose(&c->container_layers);
}

int layer_store__cs_parse_list(json_t **out, const char *data, size_t len,
                               const char *what)
{
    json_t *doc = NULL;
    int rc;

    /* Go's encoding/json writes these; a repeated key keeps its last
     * value there, and here. */
    if ((rc = layer_store__json_parse(&doc, data, len, 0, what)) < 0)
        goto out;
    if (!json_is_array(doc)) {
        rc = layer_error_set(LAYER_EBROKEN, "%s: not a JSON array", what);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(doc); i++) {
        if (!json_is_object(json_array_get(doc, i))) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "%s: item %zu is not a JSON object", what, i);
            goto out;
        }
    }
    *out = doc;
    doc = NULL;
out:
    json_decref(doc);
    return rc;
}

/* Read and parse dir/file; a missing or empty file is NULL (no records). */
static int load_list(json_t **out, const layer_store__root *root,
                     const char *dir, const char *file)
{
    char rel[64], what[WHAT_MAX];
    char *data = NULL;
    size_t len;
    int rc = 0;

    *out = NULL;
    snprintf(rel, sizeof(rel), "%s/%s", dir, file);
    snprintf(what, sizeof(what), "%.200s/%s", root->path, rel);
    rc = layer_store__read_file(&data, &len, root->fd, rel,
                                LAYER_STORE__FILE_MAX, what);
    if (rc == LAYER_ENOTFOUND)
        rc = 0;
    else if (rc == 0 && len > 0)
        rc = layer_store__cs_parse_list(out, data, len, what);
    layer_free(data);
    return rc;
}

static int cmp_id(const char *a, size_t alen, const char *b, size_t blen)
{
    int d = memcmp(a, b, alen < blen ? alen : blen);

    if (d != 0)
        return d;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_rec(const void *pa, const void *pb)
{
    const record *a = *(record *const *)pa, *b = *(record *const *)pb;
    int d = cmp_id(a->id, a->id_len, b->id, b->id_len);

    if (d != 0)
        return d;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* The first record (in file order) with this id, or NULL. */
static const record *find_id(const cs_ctx *c, const char *id, size_t len)
{
    size_t lo = 0, hi = c->nrecs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const record *r = c->by_id[mid];

        if (cmp_id(r->id, r->id_len, id, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->nrecs &&
        cmp_id(c->by_id[lo]->id, c->by_id[lo]->id_len, id, len) == 0)
        return c->by_id[lo];
    return NULL;
}

int layer_store__cs_container_layers(layer_store__strv *out, const json_t *list,
                                     const char *what)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *v = json_object_get(json_array_get(list, i), "layer");
        int rc;

        if (v == NULL)
            continue;
        if (!json_is_string(v))
            return layer_error_set(LAYER_EBROKEN,
                                   "%s: item %zu: \"layer\" is not a string",
                                   what, i);
        if ((rc = layer_store__strv_add(out, json_string_value(v),
                                        json_string_length(v))) < 0)
            return rc;
    }
    return 0;
}

/* The "layer" of every container: those layers are still written to. */
static int load_containers(cs_ctx *c)
{
    static const char *const files[] = {"containers.json",
                                        "volatile-containers.json"};
    char dir[32];
    int rc = 0;

    snprintf(dir, sizeof(dir), "%s-containers", c->driver);
    for (size_t f = 0; f < 2 && rc == 0; f++) {
        json_t *doc = NULL;
        char what[WHAT_MAX];

        snprintf(what, sizeof(what), "%.200s/%s/%s", c->root->path, dir,
                 files[f]);
        if ((rc = load_list(&doc, c->root, dir, files[f])) < 0)
            return rc;
        rc = layer_store__cs_container_layers(&c->container_layers, doc, what);
        json_decref(doc);
    }
    return rc;
}

static int cs_begin(void *ctx, const layer_store__root *root)
{
    static const char *const drivers[] = {"overlay", "vfs"};
    static const char *const unsupported[] = {"btrfs", "zfs", "aufs",
                                              "devmapper"};
    static const char *const files[] = {"layers.json", "volatile-layers.json"};
    cs_ctx *c = ctx;
    char dir[32];
    struct stat st;
    int rc = 0;

    c->root = root;
    for (size_t i = 0; i < 2 && c->driver == NULL; i++) {
        snprintf(dir, sizeof(dir), "%s-layers", drivers[i]);
        if (fstatat(root->fd, dir, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (!S_ISDIR(st.st_mode)) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "containers-storage:%.200s: %s is %s "
                                 "(refused)",
                                 root->path, dir,
                                 S_ISLNK(st.st_mode) ? "a symlink"
                                                     : "not a directory");
            goto out;
        }
        c->driver = drivers[i];
    }
    if (c->driver == NULL) {
        for (size_t i = 0; i < 4; i++) {
            snprintf(dir, sizeof(dir), "%s-layers", unsupported[i]);
            if (fstatat(root->fd, dir, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                rc = layer_error_set(LAYER_EUNSUPPORTED,
                                     "containers-storage:%.200s: the %s "
                                     "driver is not supported (overlay and "
                                     "vfs are)",
                                     root->path, unsupported[i]);
                goto out;
            }
        }
        rc = layer_error_set(LAYER_EBROKEN,
                             "containers-storage:%.200s: neither "
                             "overlay-layers/ nor vfs-layers/ exists",
                             root->path);
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s-layers", c->driver);
    for (size_t f = 0; f < 2; f++) {
        if ((rc = load_list(&c->docs[f], root, dir, files[f])) < 0)
            goto out;
    }
    {
        size_t total =
            json_array_size(c->docs[0]) + json_array_size(c->docs[1]);

        c->recs = layer_trycalloc(total ? total : 1, sizeof(*c->recs));
        c->by_id = layer_trycalloc(total ? total : 1, sizeof(*c->by_id));
        if (c->recs == NULL || c->by_id == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
    }
    for (size_t f = 0; f < 2; f++) {
        for (size_t i = 0; i < json_array_size(c->docs[f]); i++) {
            const json_t *obj = json_array_get(c->docs[f], i);
            const json_t *id = json_object_get(obj, "id");
            record *r = &c->recs[c->nrecs];

            if (!json_is_string(id)) {
                rc = layer_error_set(LAYER_EBROKEN,
                                     "%.200s/%s/%s: item %zu has no string "
                                     "\"id\"",
                                     root->path, dir, files[f], i);
                goto out;
            }
            r->id = json_string_value(id);
            r->id_len = json_string_length(id);
            r->obj = obj;
            r->order = c->nrecs;
            r->volatile_ = f == 1;
            c->by_id[c->nrecs] = r;
            c->nrecs++;
        }
    }
    /* As containers/storage does, the first record of an id wins. */
    if (c->nrecs > 1)
        qsort(c->by_id, c->nrecs, sizeof(*c->by_id), cmp_rec);
    for (size_t i = 1; i < c->nrecs; i++)
        if (cmp_id(c->by_id[i]->id, c->by_id[i]->id_len, c->by_id[i - 1]->id,
                   c->by_id[i - 1]->id_len) == 0)
            c->by_id[i]->dup = true;
    rc = load_containers(c);
out:
    return rc;
}

static bool incomplete(const json_t *rec)
{
    return json_is_true(
        json_object_get(json_object_get(rec, "flags"), "incomplete"));
}

int layer_store__cs_parse_layer(layer_store__node *node, const json_t *rec)
{
    const json_t *idv = json_object_get(rec, "id");
    const char *id = json_string_value(idv);
    size_t idlen = json_string_length(idv);
    char what[LAYER_ID_MAX + 64], *digest = NULL;
    size_t n;
    int rc = 0;

    if (id == NULL || !layer_id_valid(id, idlen)) {
        rc = layer_error_set(LAYER_EBROKEN,
                             "containers-storage: a layer record has an "
                             "invalid id");
        goto out;
    }
    if ((node->id = layer_trystrndup(id, idlen)) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    snprintf(what, sizeof(what), "containers-storage layer %s", node->id);
    if (incomplete(rec)) {
        rc = layer_error_set(
            LAYER_EBROKEN, "%s is incomplete (being created or deleted)", what);
        goto out;
    }
    if ((rc = layer_store__json_string(&node->parent, &n, rec, "parent",
                                       what)) < 0)
        goto out;
    if (node->parent != NULL && n == 0) {
        /* "parent,omitempty": an empty string is no parent. */
        layer_free(node->parent);
        node->parent = NULL;
    }
    if (node->parent != NULL && !layer_id_valid(node->parent, n)) {
        rc = layer_error_set(LAYER_EBROKEN, "%s: invalid parent id", what);
        goto out;
    }
    if ((rc = layer_store__json_string(&node->created, &n, rec, "created",
                                       what)) < 0)
        goto out;
    if (node->created != NULL && strcmp(node->created, GO_ZERO_TIME) == 0) {
        layer_free(node->created);
        node->created = NULL;
    }
    if (node->created != NULL &&
        !layer_store__rfc3339_valid(node->created, n)) {
        rc = layer_error_set(LAYER_EBROKEN,
                             "%s: \"created\" is not an RFC 3339 time", what);
        goto out;
    }
    if ((rc = layer_store__json_string(&digest, &n, rec, "diff-digest", what)) <
        0)
        goto out;
    /* Other algorithms (sha512:...) are valid there but not reported. */
    if (digest != NULL && layer_store__is_digest(digest, n)) {
        node->diff_digest = digest;
        digest = NULL;
    }
out:
    layer_free(digest);
    return rc;
}

static int node_from(layer_store__node *out, const cs_ctx *c, const record *r,
                     unsigned flags)
{
    layer_store__node node = {0};
    char what[LAYER_ID_MAX + 64], rel[LAYER_ID_MAX + 8];
    int rc = 0;

    if ((rc = layer_store__cs_parse_layer(&node, r->obj)) < 0)
        goto out;
    node.mutable_ = r->volatile_;
    for (size_t i = 0; i < c->container_layers.n && !node.mutable_; i++)
        if (strcmp(c->container_layers.v[i], node.id) == 0)
            node.mutable_ = true;
    snprintf(what, sizeof(what), "containers-storage layer %s", node.id);
    if (strcmp(c->driver, "overlay") == 0) {
        node.kind = LAYER_KIND_DIFF;
        snprintf(rel, sizeof(rel), "%s/diff", node.id);
        rc = layer_store__data_dir(&node, c->root, "overlay", rel, what);
    } else {
        node.kind = LAYER_KIND_SNAPSHOT;
        snprintf(rel, sizeof(rel), "dir/%s", node.id);
        rc = layer_store__data_dir(&node, c->root, "vfs", rel, what);
    }
    if (rc < 0)
        goto out;
    /* <driver>-layers/<id>.tar-split.gz (containers/storage layers.go) */
    if (flags & LAYER_STORE__TARSPLIT) {
        char ts[LAYER_ID_MAX + 48];

        snprintf(ts, sizeof(ts), "%s-layers/%s.tar-split.gz", c->driver,
                 node.id);
        if ((rc = layer_store__tarsplit(&node.tarsplit, c->root->fd, "", ts)) <
            0)
            goto out;
    }
    *out = node;
    memset(&node, 0, sizeof(node));
out:
    layer_store__node_dispose(&node);
    return rc;
}

static int cs_lookup(layer_store__node *out, void *ctx, const char *id,
                     size_t len, unsigned flags)
{
    const cs_ctx *c = ctx;
    const record *r;

    memset(out, 0, sizeof(*out));
    if ((r = find_id(c, id, len)) != NULL)
        return node_from(out, c, r, flags);
    if ((flags & LAYER_STORE__ALIASES) && layer_store__is_digest(id, len)) {
        for (size_t i = 0; i < c->nrecs; i++) {
            size_t dlen;
            const json_t *dv = json_object_get(c->recs[i].obj, "diff-digest");
            const char *d = json_string_value(dv);

            dlen = json_string_length(dv);

            if (!c->recs[i].dup && d != NULL && dlen == len &&
                memcmp(d, id, len) == 0)
                return node_from(out, c, &c->recs[i], flags);
        }
    }
    return LAYER_ENOTFOUND;
}

static int cs_list(layer_store__strv *ids, void *ctx)
{
    cs_ctx *c = ctx;
    int rc;

    for (size_t i = 0; i < c->nrecs; i++) {
        const record *r = &c->recs[i];

        if (r->dup || !layer_id_valid(r->id, r->id_len) || incomplete(r->obj))
            continue;
        if ((rc = layer_store__strv_add(ids, r->id, r->id_len)) < 0)
            return rc;
    }
    return 0;
}

const layer_store__backend layer_store__cs = {
    .prefix = "containers-storage:",
    .name = "containers-storage",
    .ctx_size = sizeof(cs_ctx),
    .begin = cs_begin,
    .end = cs_end,
    .lookup = cs_lookup,
    .list = cs_list,
};
