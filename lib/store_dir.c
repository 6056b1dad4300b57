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
 * valid id, or that has no layer.json, is not a layer. Nothing is cached:
 * each call reads the layer.json files it needs. <id>/ and fs/ must be
 * real directories (no symlink), and fs/ is handed to the reader open.
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

/* No snapshot: ctx is the store's root (begin is NULL). */
static int dir_lookup(layer_store__node *out, void *ctx, const char *id,
                      size_t id_len, unsigned flags)
{
    const layer_store__root *root = ctx;
    layer_store__node node = {0};
    char what[LAYER_ID_MAX + 32];
    char *data = NULL;
    size_t len;
    int fd = -1, rc = 0;

    (void)id_len; /* the id is the directory name as it stands */
    (void)flags;  /* a dir store has no aliases */
    memset(out, 0, sizeof(*out));
    fd = openat(root->fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            rc = LAYER_ENOTFOUND;
        else if (errno == ENOTDIR || errno == ELOOP)
            rc = layer_error_set(LAYER_EBROKEN,
                                 "layer %s: not a directory in the store", id);
        else
            rc = layer_error_set_errno(LAYER_ERROR, errno, "layer %s", id);
        goto out;
    }
    snprintf(what, sizeof(what), "layer %s: layer.json", id);
    if ((rc = layer_store__read_file(&data, &len, fd, "layer.json",
                                     LAYER_JSON_FILE_MAX, what)) < 0)
        goto out;
    if ((rc = layer_store__dir_parse(&node, data, len, what)) < 0)
        goto out;
    snprintf(what, sizeof(what), "layer %s", id);
    if ((rc = layer_store__data_dir(&node, root, id, "fs", what)) < 0)
        goto out;
    node.id = layer_trystrdup(id);
    if (node.id == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    *out = node;
    memset(&node, 0, sizeof(node));
out:
    layer_store__node_dispose(&node);
    layer_free(data);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int dir_list(layer_store__strv *ids, void *ctx)
{
    const layer_store__root *root = ctx;
    layer_store__strv names = {0};
    int rc;

    if ((rc = layer_store__dir_names(&names, root->fd, ".", "store root")) < 0)
        goto out;
    for (size_t i = 0; i < names.n; i++) {
        const char *name = names.v[i];
        struct stat st;
        int fd;

        if (!layer_id_valid(name, strlen(name)))
            continue;
        fd = openat(root->fd, name,
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue; /* not a directory, or gone since readdir */
        if (fstatat(fd, "layer.json", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode))
            rc = layer_store__strv_add(ids, name, strlen(name));
        close(fd);
        if (rc < 0)
            goto out;
    }
out:
    layer_store__strv_dispose(&names);
    return rc;
}

const layer_store__backend layer_store__dir = {
    .prefix = "dir:",
    .name = "dir",
    .ctx_size = 0,
    .lookup = dir_lookup,
    .list = dir_list,
};
