/*
 * The "dir:PATH" store: one directory per layer.
 *
 *   PATH/<id>/layer.json  {"parent": "<id>", "kind": "diff"|"snapshot"|
 *                          "folder", "created": "<RFC 3339>",
 *                          "mutable": true|false}
 *   PATH/<id>/fs/         the layer's data
 *
 * Every member is optional: no "parent" (or null) is a base layer, "kind"
 * defaults to "diff". Unknown members are ignored so the format can grow;
 * a member given twice is refused (which one would count is ambiguous).
 * The directory name is the layer id; a directory whose name is not a
 * valid id, or that has no layer.json, is not a layer. The index holds
 * every layer.json, read when it is built; its stamps are the root (layers
 * added or removed), each layer's directory (layer.json created or
 * renamed over) and each layer.json (rewritten in place). <id>/ and fs/
 * must be real directories (no symlink), and fs/ is handed to the reader
 * open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "store_int.h"

/* layer.json is a handful of members; anything bigger is not ours. */
#define LAYER_JSON_FILE_MAX (64u * 1024u)

int layer_store__dir_parse(layer_store__node *node, const char *data,
                           size_t len, const char *what)
{
    json_t *doc = NULL;
    const json_t *v;
    char *kind = NULL;
    size_t n;
    int rc = 0;

    /* Our own format: a repeated member is a mistake, not a choice. */
    if ((rc = layer_store__json_parse(&doc, data, len,
                                      LAYER_STORE__JSON_UNIQUE_KEYS, what)) < 0)
        goto out;
    if (!json_is_object(doc)) {
        rc = layer_error_set(LAYER_EBROKEN, "%s: not a JSON object", what);
        goto out;
    }
    if ((rc = layer_store__json_string(&node->parent, &n, doc, "parent",
                                       what)) < 0)
        goto out;
    if (node->parent != NULL && !layer_id_valid(node->parent, n)) {
        rc = layer_error_set(LAYER_EBROKEN, "%s: invalid parent id", what);
        goto out;
    }
    if ((rc = layer_store__json_string(&kind, NULL, doc, "kind", what)) < 0)
        goto out;
    node->kind = LAYER_KIND_DIFF;
    if (kind != NULL && layer_kind_parse(&node->kind, kind) < 0) {
        rc = layer_error_set(LAYER_EBROKEN, "%s: unknown kind \"%.32s\"", what,
                             kind);
        goto out;
    }
    if ((rc = layer_store__json_string(&node->created, &n, doc, "created",
                                       what)) < 0)
        goto out;
    if (node->created != NULL &&
        !layer_store__rfc3339_valid(node->created, n)) {
        rc = layer_error_set(LAYER_EBROKEN,
                             "%s: \"created\" is not an RFC 3339 time", what);
        goto out;
    }
    v = json_object_get(doc, "mutable");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "%s: \"mutable\" is not a boolean", what);
            goto out;
        }
        node->mutable_ = json_is_true(v);
    }
out:
    layer_free(kind);
    json_decref(doc);
    return rc;
}

/* One candidate layer directory, name (a valid id), into the index. */
static int dir_add(layer_store__builder *b, const layer_store__root *root,
                   const char *name)
{
    layer_store__rec rec = {0};
    layer_store__node node = {0};
    char what[LAYER_ID_MAX + 32], rel[LAYER_ID_MAX + 16];
    struct stat st;
    char *data = NULL;
    size_t len;
    int rc = 0;

    if (fstatat(root->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0; /* gone since the listing */
    if ((rec.id = layer_store__bstr(b, name)) == NULL)
        return LAYER_ENOMEM;
    if (!S_ISDIR(st.st_mode)) {
        /* not listed, and refused by name */
        layer_error_set(LAYER_EBROKEN, "layer %s: not a directory in the store",
                        name);
        layer_store__brec_error(b, &rec, LAYER_EBROKEN);
        return layer_store__badd_layer(b, &rec);
    }
    snprintf(rel, sizeof(rel), "%s/layer.json", name);
    /* the directory's entries (layer.json created, renamed over) and the
     * file itself (rewritten in place) */
    if ((rc = layer_store__bstamp(b, name, true)) < 0 ||
        (rc = layer_store__bstamp(b, rel, false)) < 0)
        return rc;
    snprintf(what, sizeof(what), "layer %s: layer.json", name);
    rc = layer_store__read_file(&data, &len, root->fd, rel, LAYER_JSON_FILE_MAX,
                                what);
    if (rc == LAYER_ENOTFOUND)
        return 0; /* not a layer */
    rec.listed = fstatat(root->fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                 S_ISREG(st.st_mode);
    if (rc == 0)
        rc = layer_store__dir_parse(&node, data, len, what);
    layer_free(data);
    if (rc == LAYER_ENOMEM)
        goto out;
    if (rc < 0) {
        layer_store__brec_error(b, &rec, rc);
    } else {
        rec.parent = layer_store__bstr(b, node.parent);
        rec.created = layer_store__bstr(b, node.created);
        rec.kind = node.kind;
        rec.mutable_ = node.mutable_;
        rec.data = layer_store__bfmt(b, "%s/fs", name);
    }
    rc = layer_store__badd_layer(b, &rec);
out:
    layer_store__node_dispose(&node);
    return rc;
}

/* Every directory of the root whose name is a valid id and that holds a
 * layer.json. */
static int dir_build(layer_store__builder *b, const layer_store__root *root)
{
    layer_store__strv names = {0};
    int rc;

    if ((rc = layer_store__bstamp(b, ".", true)) < 0)
        return rc;
    if ((rc = layer_store__dir_names(&names, root->fd, ".", "store root")) < 0)
        goto out;
    for (size_t i = 0; i < names.n && rc == 0; i++) {
        if (layer_id_valid(names.v[i], strlen(names.v[i])))
            rc = dir_add(b, root, names.v[i]);
    }
out:
    layer_store__strv_dispose(&names);
    return rc;
}

const layer_store__backend layer_store__dir = {
    .prefix = "dir:",
    .name = "dir",
    .what = "layer ",
    .build = dir_build,
};
