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
 * layers and the layers of containers are reported mutable.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json_int.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "store_int.h"

/* The Go zero time.Time, which "created,omitempty" still writes. */
#define GO_ZERO_TIME "0001-01-01T00:00:00Z"

/* Room for "<store path, cut>/<driver>-layers/<file>" in messages. */
#define WHAT_MAX 320

typedef struct record {
    const layer_json *obj;
    const char *id; /* borrowed from obj; may be invalid */
    size_t id_len;
    size_t order;   /* position in file order */
    bool volatile_; /* from volatile-layers.json */
    bool dup;       /* an earlier record has the same id: ignored */
} record;

typedef struct cs_ctx {
    int root;
    const char *root_path;
    const char *driver; /* "overlay" or "vfs" */
    layer_json *docs[2];
    record *recs;   /* file order, stable file first */
    record **by_id; /* the same, sorted by id, then file order */
    size_t nrecs;
    layer_store__strv container_layers;
} cs_ctx;

static void cs_end(void *ctx)
{
    cs_ctx *c = ctx;

    if (c == NULL)
        return;
    for (size_t i = 0; i < 2; i++)
        layer_json__free(c->docs[i]);
    layer_free(c->recs);
    layer_free(c->by_id);
    layer_store__strv_dispose(&c->container_layers);
    layer_free(c);
}

/* Parse dir/file as a JSON array of objects; a missing or empty file is
 * NULL (no records). */
static int load_array(layer_json **out, int root, const char *dir,
                      const char *file, const char *root_path)
{
    char rel[64], what[WHAT_MAX];
    char *data = NULL;
    size_t len;
    int rc = 0;

    *out = NULL;
    snprintf(rel, sizeof(rel), "%s/%s", dir, file);
    snprintf(what, sizeof(what), "%.200s/%s", root_path, rel);
    rc = layer_store__read_file(&data, &len, root, rel, LAYER_STORE__FILE_MAX,
                                what);
    if (rc == LAYER_ENOTFOUND) {
        rc = 0;
        goto out;
    }
    if (rc < 0 || len == 0)
        goto out;
    if ((rc = layer_json__parse(out, data, len, what)) < 0)
        goto out;
    if (layer_json__type(*out) != LAYER_JSON_ARRAY) {
        rc = layer_error_set(LAYER_EBROKEN, "%s: not a JSON array", what);
        goto out;
    }
    for (size_t i = 0; i < layer_json__size(*out); i++) {
        if (layer_json__type(layer_json__at(*out, i)) != LAYER_JSON_OBJECT) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "%s: item %zu is not a JSON object", what, i);
            goto out;
        }
    }
out:
    if (rc < 0) {
        layer_json__free(*out);
        *out = NULL;
    }
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

/* The "layer" of every container: those layers are still written to. */
static int load_containers(cs_ctx *c)
{
    static const char *const files[] = {"containers.json",
                                        "volatile-containers.json"};
    char dir[32];
    int rc = 0;

    snprintf(dir, sizeof(dir), "%s-containers", c->driver);
    for (size_t f = 0; f < 2; f++) {
        layer_json *doc = NULL;
        char what[WHAT_MAX];

        snprintf(what, sizeof(what), "%.200s/%s/%s", c->root_path, dir,
                 files[f]);
        if ((rc = load_array(&doc, c->root, dir, files[f], c->root_path)) < 0)
            return rc;
        for (size_t i = 0; i < layer_json__size(doc); i++) {
            const layer_json *v =
                layer_json__get(layer_json__at(doc, i), "layer");
            const char *s;
            size_t len;

            if (v == NULL)
                continue;
            s = layer_json__string(v, &len);
            if (s == NULL) {
                rc = layer_error_set(LAYER_EBROKEN,
                                     "%s: item %zu: \"layer\" is not a string",
                                     what, i);
                break;
            }
            if ((rc = layer_store__strv_add(&c->container_layers, s, len)) < 0)
                break;
        }
        layer_json__free(doc);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cs_begin(void **out_ctx, int root, const char *root_path)
{
    static const char *const drivers[] = {"overlay", "vfs"};
    static const char *const unsupported[] = {"btrfs", "zfs", "aufs",
                                              "devmapper"};
    static const char *const files[] = {"layers.json", "volatile-layers.json"};
    cs_ctx *c = NULL;
    char dir[32];
    struct stat st;
    int rc = 0;

    c = layer_trycalloc(1, sizeof(*c));
    if (c == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    c->root = root;
    c->root_path = root_path;
    for (size_t i = 0; i < 2 && c->driver == NULL; i++) {
        snprintf(dir, sizeof(dir), "%s-layers", drivers[i]);
        if (fstatat(root, dir, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISDIR(st.st_mode))
            c->driver = drivers[i];
    }
    if (c->driver == NULL) {
        for (size_t i = 0; i < 4; i++) {
            snprintf(dir, sizeof(dir), "%s-layers", unsupported[i]);
            if (fstatat(root, dir, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                rc = layer_error_set(LAYER_EUNSUPPORTED,
                                     "containers-storage:%.200s: the %s "
                                     "driver is not supported (overlay and "
                                     "vfs are)",
                                     root_path, unsupported[i]);
                goto out;
            }
        }
        rc = layer_error_set(LAYER_EBROKEN,
                             "containers-storage:%.200s: neither "
                             "overlay-layers/ nor vfs-layers/ exists",
                             root_path);
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s-layers", c->driver);
    for (size_t f = 0; f < 2; f++) {
        if ((rc = load_array(&c->docs[f], root, dir, files[f], root_path)) < 0)
            goto out;
    }
    {
        size_t total =
            layer_json__size(c->docs[0]) + layer_json__size(c->docs[1]);

        c->recs = layer_trycalloc(total ? total : 1, sizeof(*c->recs));
        c->by_id = layer_trycalloc(total ? total : 1, sizeof(*c->by_id));
        if (c->recs == NULL || c->by_id == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
    }
    for (size_t f = 0; f < 2; f++) {
        for (size_t i = 0; i < layer_json__size(c->docs[f]); i++) {
            const layer_json *obj = layer_json__at(c->docs[f], i);
            record *r = &c->recs[c->nrecs];

            r->id = layer_json__string(layer_json__get(obj, "id"), &r->id_len);
            if (r->id == NULL) {
                rc = layer_error_set(LAYER_EBROKEN,
                                     "%.200s/%s/%s: item %zu has no string "
                                     "\"id\"",
                                     root_path, dir, files[f], i);
                goto out;
            }
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
    if ((rc = load_containers(c)) < 0)
        goto out;
    *out_ctx = c;
    c = NULL;
out:
    cs_end(c);
    return rc;
}

static bool incomplete(const record *r)
{
    const layer_json *flags = layer_json__get(r->obj, "flags");
    bool b = false;

    return layer_json__bool(&b, layer_json__get(flags, "incomplete")) == 0 && b;
}

static int node_from(layer_store__node *out, const cs_ctx *c, const record *r)
{
    layer_store__node node = {0};
    char what[LAYER_ID_MAX + 64], *digest = NULL;
    size_t n;
    int rc = 0;

    if (!layer_id_valid(r->id, r->id_len)) {
        rc = layer_error_set(LAYER_EBROKEN,
                             "containers-storage: a layer record has an "
                             "invalid id");
        goto out;
    }
    node.id = layer_trystrndup(r->id, r->id_len);
    if (node.id == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    snprintf(what, sizeof(what), "containers-storage layer %s", node.id);
    if (incomplete(r)) {
        rc = layer_error_set(
            LAYER_EBROKEN, "%s is incomplete (being created or deleted)", what);
        goto out;
    }
    if ((rc = layer_store__json_string(&node.parent, &n, r->obj, "parent",
                                       what)) < 0)
        goto out;
    if (node.parent != NULL && n == 0) {
        /* "parent,omitempty": an empty string is no parent. */
        layer_free(node.parent);
        node.parent = NULL;
    }
    if (node.parent != NULL && !layer_id_valid(node.parent, n)) {
        rc = layer_error_set(LAYER_EBROKEN, "%s: invalid parent id", what);
        goto out;
    }
    if ((rc = layer_store__json_string(&node.created, &n, r->obj, "created",
                                       what)) < 0)
        goto out;
    if (node.created != NULL && strcmp(node.created, GO_ZERO_TIME) == 0) {
        layer_free(node.created);
        node.created = NULL;
    }
    if (node.created != NULL && !layer_store__rfc3339_valid(node.created, n)) {
        rc = layer_error_set(LAYER_EBROKEN,
                             "%s: \"created\" is not an RFC 3339 time", what);
        goto out;
    }
    if ((rc = layer_store__json_string(&digest, &n, r->obj, "diff-digest",
                                       what)) < 0)
        goto out;
    /* Other algorithms (sha512:...) are valid there but not reported. */
    if (digest != NULL && layer_store__is_digest(digest, n)) {
        node.diff_digest = digest;
        digest = NULL;
    }
    node.mutable_ = r->volatile_;
    for (size_t i = 0; i < c->container_layers.n && !node.mutable_; i++)
        if (strcmp(c->container_layers.v[i], node.id) == 0)
            node.mutable_ = true;

    if (strcmp(c->driver, "overlay") == 0) {
        int fd;

        node.kind = LAYER_KIND_DIFF;
        fd = openat(c->root, "overlay",
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            rc =
                layer_error_set(LAYER_EBROKEN, "%s: overlay/ is missing", what);
            goto out;
        }
        {
            char sub[LAYER_ID_MAX + 8], w2[LAYER_ID_MAX + 96];

            snprintf(sub, sizeof(sub), "%s/diff", node.id);
            snprintf(w2, sizeof(w2), "%s: overlay/%s/diff", what, node.id);
            rc = layer_store__check_dir(fd, sub, w2);
        }
        close(fd);
        if (rc < 0)
            goto out;
        if ((rc = layer_store__path(&node.path, c->root_path, "overlay",
                                    node.id, "diff", (char *)NULL)) < 0)
            goto out;
    } else {
        int fd;

        node.kind = LAYER_KIND_SNAPSHOT;
        fd = openat(c->root, "vfs",
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            char sub[LAYER_ID_MAX + 8], w2[LAYER_ID_MAX + 96];

            snprintf(sub, sizeof(sub), "dir/%s", node.id);
            snprintf(w2, sizeof(w2), "%s: vfs/dir/%s", what, node.id);
            rc = layer_store__check_dir(fd, sub, w2);
            close(fd);
        } else {
            rc = layer_error_set(LAYER_EBROKEN, "%s: vfs/ is missing", what);
        }
        if (rc < 0)
            goto out;
        if ((rc = layer_store__path(&node.path, c->root_path, "vfs", "dir",
                                    node.id, (char *)NULL)) < 0)
            goto out;
    }
    *out = node;
    memset(&node, 0, sizeof(node));
out:
    layer_free(digest);
    layer_store__node_dispose(&node);
    return rc;
}

static int cs_lookup(layer_store__node *out, void *ctx, const char *id,
                     unsigned flags)
{
    cs_ctx *c = ctx;
    size_t len = strlen(id);
    const record *r;

    memset(out, 0, sizeof(*out));
    if ((r = find_id(c, id, len)) != NULL)
        return node_from(out, c, r);
    if ((flags & LAYER_STORE__ALIASES) && layer_store__is_digest(id, len)) {
        for (size_t i = 0; i < c->nrecs; i++) {
            size_t dlen;
            const char *d = layer_json__string(
                layer_json__get(c->recs[i].obj, "diff-digest"), &dlen);

            if (!c->recs[i].dup && d != NULL && dlen == len &&
                memcmp(d, id, len) == 0)
                return node_from(out, c, &c->recs[i]);
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

        if (r->dup || !layer_id_valid(r->id, r->id_len) || incomplete(r))
            continue;
        if ((rc = layer_store__strv_add(ids, r->id, r->id_len)) < 0)
            return rc;
    }
    return 0;
}

const layer_store__backend layer_store__cs = {
    .prefix = "containers-storage:",
    .name = "containers-storage",
    .begin = cs_begin,
    .end = cs_end,
    .lookup = cs_lookup,
    .list = cs_list,
};
