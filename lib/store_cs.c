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
 *
 *   PATH/<driver>-images/images.json           images: "id", "names",
 *                                              "layer" (the top layer),
 *                                              "big-data-names"
 *   PATH/<driver>-images/<id>/<big-data file>  the config, under the key
 *                                              "sha256:<config hex>"
 *
 * The index is built from these files, once each, and its stamps are the
 * files themselves (containers/storage replaces them by rename) and the
 * driver directories.
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
#include "layer/text.h"
#include "store_int.h"

/* The Go zero time.Time, which "created,omitempty" still writes. */
#define GO_ZERO_TIME "0001-01-01T00:00:00Z"

/* Room for "<store path, cut>/<driver>-layers/<file>" in messages. */
#define WHAT_MAX 320

/* The line (from 1) and column (bytes before pos on its line) of
 * data[pos], as jansson counts them. */
static void line_col(size_t *line, size_t *col, const char *data, size_t pos)
{
    size_t l = 1, start = 0;

    for (size_t i = 0; i < pos; i++) {
        if (data[i] == '\n') {
            l++;
            start = i + 1;
        }
    }
    *line = l;
    *col = pos - start;
}

static int syntax_error(const char *what, const char *data, size_t pos,
                        const char *why)
{
    size_t line, col;

    line_col(&line, &col, data, pos);
    return layer_error_set(LAYER_EBROKEN,
                           "%s: invalid JSON at line %zu, column %zu (byte "
                           "%zu): %s",
                           what, line, col, pos, why);
}

static size_t skip_ws(const char *data, size_t len, size_t i)
{
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' ||
                       data[i] == '\r'))
        i++;
    return i;
}

/* The end (one past the closing brace) of the object starting at
 * data[start], or 0 when the data ends first. Strings are stepped over,
 * escapes included; jansson then checks the object itself strictly. */
static size_t object_end(const char *data, size_t len, size_t start)
{
    size_t depth = 0;
    bool in_string = false;

    for (size_t i = start; i < len; i++) {
        char c = data[i];

        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return i + 1;
    }
    return 0;
}

int layer_store__cs_parse_each(const char *data, size_t len, const char *what,
                               layer_store__cs_each_fn fn, void *arg)
{
    /* Go's encoding/json writes these; a repeated key keeps its last
     * value there, and here. */
    const size_t jflags = JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL;
    size_t i, n = 0;
    int rc;

    if (len > LAYER_STORE__FILE_MAX)
        return layer_error_set(LAYER_EBROKEN,
                               "%s: document of %zu bytes is larger than the "
                               "%u allowed",
                               what, len, LAYER_STORE__FILE_MAX);
    i = skip_ws(data, len, 0);
    if (i == len || data[i] != '[')
        return layer_error_set(LAYER_EBROKEN, "%s: not a JSON array", what);
    i = skip_ws(data, len, i + 1);
    if (i < len && data[i] == ']') {
        i = skip_ws(data, len, i + 1);
        return i == len ? 0
                        : syntax_error(what, data, i, "end of file expected");
    }
    for (;;) {
        json_error_t err;
        json_t *rec;
        size_t end;

        if (i == len)
            return syntax_error(what, data, i, "']' expected near end of file");
        if (data[i] != '{')
            return layer_error_set(
                LAYER_EBROKEN, "%s: item %zu is not a JSON object", what, n);
        if ((end = object_end(data, len, i)) == 0)
            return syntax_error(what, data, len,
                                "'}' expected near end of file");
        /* one record at a time: memory is one record's, not the file's */
        if ((rec = json_loadb(data + i, end - i, jflags, &err)) == NULL) {
            if (json_error_code(&err) == json_error_out_of_memory)
                return layer_error_set(LAYER_ENOMEM, "%s: out of memory", what);
            return syntax_error(what, data, i + (size_t)err.position, err.text);
        }
        rc = fn(arg, rec, n++);
        json_decref(rec);
        if (rc < 0)
            return rc;
        i = skip_ws(data, len, end);
        if (i < len && data[i] == ',') {
            i = skip_ws(data, len, i + 1);
            continue;
        }
        if (i < len && data[i] == ']')
            break;
        return syntax_error(what, data, i,
                            i == len ? "']' expected near end of file"
                                     : "',' or ']' expected");
    }
    i = skip_ws(data, len, i + 1);
    return i == len ? 0 : syntax_error(what, data, i, "end of file expected");
}

/* Read dir/file and hand each record to fn; a missing or empty file has
 * none. */
static int load_each(const layer_store__root *root, const char *dir,
                     const char *file, layer_store__cs_each_fn fn, void *arg)
{
    char rel[64], what[WHAT_MAX];
    char *data = NULL;
    size_t len;
    int rc = 0;

    snprintf(rel, sizeof(rel), "%s/%s", dir, file);
    snprintf(what, sizeof(what), "%.200s/%s", root->path, rel);
    rc = layer_store__read_file(&data, &len, root->fd, rel,
                                LAYER_STORE__FILE_MAX, what);
    if (rc == LAYER_ENOTFOUND)
        rc = 0;
    else if (rc == 0 && len > 0)
        rc = layer_store__cs_parse_each(data, len, what, fn, arg);
    layer_free(data);
    return rc;
}

int layer_store__cs_container_layer(layer_store__strv *out, const json_t *rec,
                                    size_t index, const char *what)
{
    const json_t *v = json_object_get(rec, "layer");

    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return layer_error_set(LAYER_EBROKEN,
                               "%s: item %zu: \"layer\" is not a string", what,
                               index);
    return layer_store__strv_add(out, json_string_value(v),
                                 json_string_length(v));
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

/* The files the index is built from. */
static const char *const layer_files[] = {"layers.json",
                                          "volatile-layers.json"};
static const char *const container_files[] = {"containers.json",
                                              "volatile-containers.json"};

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Which driver: the one whose <driver>-layers directory exists, overlay
 * first. */
static int find_driver(const char **out, const layer_store__root *root)
{
    static const char *const drivers[] = {"overlay", "vfs"};
    static const char *const unsupported[] = {"btrfs", "zfs", "aufs",
                                              "devmapper"};
    char dir[32];
    struct stat st;

    for (size_t i = 0; i < 2; i++) {
        snprintf(dir, sizeof(dir), "%s-layers", drivers[i]);
        if (fstatat(root->fd, dir, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (!S_ISDIR(st.st_mode))
            return layer_error_set(LAYER_EBROKEN,
                                   "containers-storage:%.200s: %s is %s "
                                   "(refused)",
                                   root->path, dir,
                                   S_ISLNK(st.st_mode) ? "a symlink"
                                                       : "not a directory");
        *out = drivers[i];
        return 0;
    }
    for (size_t i = 0; i < 4; i++) {
        snprintf(dir, sizeof(dir), "%s-layers", unsupported[i]);
        if (fstatat(root->fd, dir, &st, AT_SYMLINK_NOFOLLOW) == 0)
            return layer_error_set(LAYER_EUNSUPPORTED,
                                   "containers-storage:%.200s: the %s "
                                   "driver is not supported (overlay and "
                                   "vfs are)",
                                   root->path, unsupported[i]);
    }
    return layer_error_set(LAYER_EBROKEN,
                           "containers-storage:%.200s: neither "
                           "overlay-layers/ nor vfs-layers/ exists",
                           root->path);
}

typedef struct containers_ctx {
    layer_store__strv *out;
    const char *what;
} containers_ctx;

static int on_container(void *arg, const json_t *rec, size_t index)
{
    containers_ctx *c = arg;

    return layer_store__cs_container_layer(c->out, rec, index, c->what);
}

/* The "layer" of every container, sorted: those layers are still written
 * to. */
static int load_containers(layer_store__strv *out,
                           const layer_store__root *root, const char *driver)
{
    char dir[32], what[WHAT_MAX];
    int rc = 0;

    snprintf(dir, sizeof(dir), "%s-containers", driver);
    for (size_t f = 0; f < 2 && rc == 0; f++) {
        containers_ctx c = {out, what};

        snprintf(what, sizeof(what), "%.200s/%s/%s", root->path, dir,
                 container_files[f]);
        rc = load_each(root, dir, container_files[f], on_container, &c);
    }
    if (rc == 0 && out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_strp);
    return rc;
}

static bool in_sorted(const layer_store__strv *sv, const char *s)
{
    return sv->n > 0 &&
           bsearch(&s, sv->v, sv->n, sizeof(*sv->v), cmp_strp) != NULL;
}

/* One record of layers.json (or volatile-layers.json) into the index. */
static int add_layer(layer_store__builder *b, const json_t *obj,
                     const char *driver, uint32_t order, bool volatile_,
                     const layer_store__strv *containers)
{
    const json_t *idv = json_object_get(obj, "id");
    const json_t *dv = json_object_get(obj, "diff-digest");
    layer_store__rec rec = {0};
    layer_store__node node = {0};
    int rc;

    if (!layer_id_valid(json_string_value(idv), json_string_length(idv)))
        return 0; /* nothing can name it */
    rec.id =
        layer_store__bstrn(b, json_string_value(idv), json_string_length(idv));
    rec.order = order;
    rec.listed = !incomplete(obj);
    /* the alias is the raw "diff-digest", as containers/storage matches */
    if (json_is_string(dv) &&
        layer_store__is_digest(json_string_value(dv), json_string_length(dv)))
        rec.alias = layer_store__bstr(b, json_string_value(dv));
    rc = layer_store__cs_parse_layer(&node, obj);
    if (rc == LAYER_ENOMEM)
        goto out;
    if (rc < 0) {
        layer_store__brec_error(b, &rec, rc);
    } else {
        rec.parent = layer_store__bstr(b, node.parent);
        rec.created = layer_store__bstr(b, node.created);
        rec.diff_digest = layer_store__bstr(b, node.diff_digest);
        rec.mutable_ = volatile_ || in_sorted(containers, node.id);
        /* <driver>-layers/<id>.tar-split.gz (containers/storage
         * layers.go) */
        rec.tarsplit =
            layer_store__bfmt(b, "%s-layers/%s.tar-split.gz", driver, node.id);
        if (strcmp(driver, "overlay") == 0) {
            rec.kind = LAYER_KIND_DIFF;
            rec.data = layer_store__bfmt(b, "overlay/%s/diff", node.id);
        } else {
            rec.kind = LAYER_KIND_SNAPSHOT;
            rec.data = layer_store__bfmt(b, "vfs/dir/%s", node.id);
        }
    }
    rc = layer_store__badd_layer(b, &rec);
out:
    layer_store__node_dispose(&node);
    return rc;
}

typedef struct layers_ctx {
    layer_store__builder *b;
    const layer_store__root *root;
    const char *driver;
    const char *dir;
    size_t file;
    uint32_t order;
    const layer_store__strv *containers;
} layers_ctx;

static int on_layer(void *arg, const json_t *obj, size_t index)
{
    layers_ctx *c = arg;

    if (!json_is_string(json_object_get(obj, "id")))
        return layer_error_set(
            LAYER_EBROKEN, "%.200s/%s/%s: item %zu has no string \"id\"",
            c->root->path, c->dir, layer_files[c->file], index);
    return add_layer(c->b, obj, c->driver, c->order++, c->file == 1,
                     c->containers);
}

/* The layer records, stable file first, then volatile, in file order. */
static int build_layers(layer_store__builder *b, const layer_store__root *root,
                        const char *driver)
{
    layer_store__strv containers = {0};
    char dir[32];
    layers_ctx c = {b, root, driver, dir, 0, 0, &containers};
    int rc;

    snprintf(dir, sizeof(dir), "%s-layers", driver);
    if ((rc = load_containers(&containers, root, driver)) < 0)
        goto out;
    for (c.file = 0; c.file < 2 && rc == 0; c.file++)
        rc = load_each(root, dir, layer_files[c.file], on_layer, &c);
out:
    layer_store__strv_dispose(&containers);
    return rc;
}

void layer_store__image_node_dispose(layer_store__image_node *node)
{
    layer_free(node->id);
    layer_store__strv_dispose(&node->names);
    layer_free(node->top_layer);
    layer_free(node->created);
    layer_free(node->manifest_digest);
    layer_free(node->config_digest);
    memset(node, 0, sizeof(*node));
}

/* Longest image name kept (a reference: host, path and tag). */
#define NAME_MAX_LEN 4096

/* A name as an image reference must be: UTF-8 without controls. */
static bool name_ok(const char *s, size_t len)
{
    if (len == 0 || len > NAME_MAX_LEN || !layer_text_utf8_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

int layer_store__cs_parse_image(layer_store__image_node *node,
                                const json_t *rec)
{
    const json_t *idv = json_object_get(rec, "id");
    const json_t *names = json_object_get(rec, "names");
    const json_t *bd = json_object_get(rec, "big-data-names");
    char what[128];
    size_t n;
    int rc = 0;

    if (!json_is_string(idv) ||
        !layer_store__is_hex64(json_string_value(idv), json_string_length(idv)))
        return layer_error_set(LAYER_EBROKEN,
                               "containers-storage: an image record has an "
                               "invalid id");
    if ((node->id = layer_trystrdup(json_string_value(idv))) == NULL)
        return LAYER_ENOMEM;
    snprintf(what, sizeof(what), "containers-storage image %s", node->id);
    if (names != NULL && !json_is_null(names)) {
        if (!json_is_array(names))
            return layer_error_set(LAYER_EBROKEN,
                                   "%s: \"names\" is not an array", what);
        for (size_t i = 0; i < json_array_size(names); i++) {
            const json_t *v = json_array_get(names, i);

            if (!json_is_string(v) ||
                !name_ok(json_string_value(v), json_string_length(v)))
                return layer_error_set(
                    LAYER_EBROKEN, "%s: name %zu is not a reference", what, i);
            if ((rc = layer_store__strv_add(&node->names, json_string_value(v),
                                            json_string_length(v))) < 0)
                return rc;
        }
    }
    if ((rc = layer_store__json_string(&node->top_layer, &n, rec, "layer",
                                       what)) < 0)
        return rc;
    if (node->top_layer != NULL && n == 0) {
        layer_free(node->top_layer); /* "layer,omitempty" */
        node->top_layer = NULL;
    }
    if (node->top_layer != NULL && !layer_id_valid(node->top_layer, n))
        return layer_error_set(LAYER_EBROKEN, "%s: invalid top layer id", what);
    if ((rc = layer_store__json_string(&node->created, &n, rec, "created",
                                       what)) < 0)
        return rc;
    if (node->created != NULL &&
        (strcmp(node->created, GO_ZERO_TIME) == 0 ||
         !layer_store__rfc3339_valid(node->created, n))) {
        layer_free(node->created);
        node->created = NULL;
    }
    if ((rc = layer_store__json_string(&node->manifest_digest, &n, rec,
                                       "digest", what)) < 0)
        return rc;
    if (node->manifest_digest != NULL &&
        !layer_store__is_digest(node->manifest_digest, n)) {
        layer_free(node->manifest_digest); /* sha512 and others: not ours */
        node->manifest_digest = NULL;
    }
    /* the config: the big-data item whose key is a sha256 digest */
    if (bd != NULL && !json_is_null(bd) && !json_is_array(bd))
        return layer_error_set(LAYER_EBROKEN,
                               "%s: \"big-data-names\" is not an array", what);
    for (size_t i = 0; i < json_array_size(bd); i++) {
        const json_t *v = json_array_get(bd, i);

        if (!json_is_string(v))
            return layer_error_set(LAYER_EBROKEN,
                                   "%s: big-data name %zu is not a string",
                                   what, i);
        if (node->config_digest == NULL &&
            layer_store__is_digest(json_string_value(v),
                                   json_string_length(v)) &&
            (node->config_digest = layer_trystrdup(json_string_value(v))) ==
                NULL)
            return LAYER_ENOMEM;
    }
    return 0;
}

int layer_store__cs_big_data_name(char **out, const char *key)
{
    size_t len = strlen(key), i;
    char *name;

    for (i = 0; i < len; i++) {
        char c = key[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '.'))
            break;
    }
    if (i == len && len > 0)
        return (*out = layer_trystrdup(key)) != NULL ? 0 : LAYER_ENOMEM;
    if ((name = layer_trymalloc(2 + LAYER_TEXT_BASE64_LEN(len))) == NULL)
        return LAYER_ENOMEM;
    name[0] = '=';
    name[1 + layer_text_base64(name + 1, key, len)] = '\0';
    *out = name;
    return 0;
}

/* One record of images.json into the index. */
static int add_image(layer_store__builder *b, const json_t *obj,
                     const char *driver, uint32_t order)
{
    layer_store__image_node node = {0};
    layer_store__img img = {0};
    const json_t *idv = json_object_get(obj, "id");
    char *file = NULL;
    int rc;

    if (!json_is_string(idv) ||
        !layer_store__is_hex64(json_string_value(idv), json_string_length(idv)))
        return 0; /* nothing can name it */
    img.id = layer_store__bstr(b, json_string_value(idv));
    img.order = order;
    rc = layer_store__cs_parse_image(&node, obj);
    if (rc == LAYER_ENOMEM)
        goto out;
    if (rc < 0) {
        layer_store__bimg_error(b, &img, rc);
        rc = layer_store__badd_image(b, &img);
        goto out;
    }
    img.top_layer = layer_store__bstr(b, node.top_layer);
    img.created = layer_store__bstr(b, node.created);
    img.manifest_digest = layer_store__bstr(b, node.manifest_digest);
    img.config_digest = layer_store__bstr(b, node.config_digest);
    if (node.config_digest != NULL) {
        if ((rc = layer_store__cs_big_data_name(&file, node.config_digest)) < 0)
            goto out;
        img.config =
            layer_store__bfmt(b, "%s-images/%s/%s", driver, node.id, file);
    }
    if (node.names.n > 0 && (img.names = layer_store__balloc(
                                 b, node.names.n * sizeof(*img.names))) != NULL)
        for (; img.nnames < node.names.n; img.nnames++)
            img.names[img.nnames] =
                layer_store__bstr(b, node.names.v[img.nnames]);
    rc = layer_store__badd_image(b, &img);
out:
    layer_free(file);
    layer_store__image_node_dispose(&node);
    return rc;
}

typedef struct images_ctx {
    layer_store__builder *b;
    const char *driver;
} images_ctx;

static int on_image(void *arg, const json_t *obj, size_t index)
{
    images_ctx *c = arg;

    return add_image(c->b, obj, c->driver, (uint32_t)index);
}

static int build_images(layer_store__builder *b, const layer_store__root *root,
                        const char *driver)
{
    images_ctx c = {b, driver};
    char dir[32];

    snprintf(dir, sizeof(dir), "%s-images", driver);
    return load_each(root, dir, "images.json", on_image, &c);
}

static int cs_build(layer_store__builder *b, const layer_store__root *root)
{
    const char *driver = NULL;
    char rel[64];
    int rc;

    /* a driver directory made or removed */
    if ((rc = layer_store__bstamp(b, "overlay-layers", true)) < 0 ||
        (rc = layer_store__bstamp(b, "vfs-layers", true)) < 0)
        return rc;
    if ((rc = find_driver(&driver, root)) < 0)
        return rc;
    for (size_t f = 0; f < 2; f++) {
        snprintf(rel, sizeof(rel), "%s-layers/%s", driver, layer_files[f]);
        if ((rc = layer_store__bstamp(b, rel, false)) < 0)
            return rc;
        snprintf(rel, sizeof(rel), "%s-containers/%s", driver,
                 container_files[f]);
        if ((rc = layer_store__bstamp(b, rel, false)) < 0)
            return rc;
    }
    snprintf(rel, sizeof(rel), "%s-images/images.json", driver);
    if ((rc = layer_store__bstamp(b, rel, false)) < 0)
        return rc;
    if ((rc = build_layers(b, root, driver)) < 0)
        return rc;
    /* broken image metadata leaves the layers served */
    if ((rc = build_images(b, root, driver)) < 0 && rc != LAYER_ENOMEM) {
        layer_store__bimages_error(b, rc);
        rc = 0;
    }
    return rc;
}

const layer_store__backend layer_store__cs = {
    .prefix = "containers-storage:",
    .name = "containers-storage",
    .what = "containers-storage layer ",
    .build = cs_build,
};
