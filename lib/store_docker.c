/*
 * The "docker:PATH" store: Docker's overlay2 graph driver
 * (/var/lib/docker), read-only.
 *
 *   PATH/image/overlay2/layerdb/sha256/<chainID hex>/
 *       cache-id   the overlay2 directory name of the layer (no newline)
 *       diff       "sha256:<hex>", the DiffID
 *       parent     "sha256:<hex>", the parent's chain ID (absent: base)
 *       tar-split.json.gz  the original tar's tar-split data
 *   PATH/overlay2/<cache-id>/diff   the layer's upperdir (kind diff)
 *
 * Ids: the chain ID, as "sha256:<hex>" or bare hex; a client may also give
 * a DiffID, found by scanning the layerdb's diff files (when several chains
 * share that DiffID, the bytewise smallest chain ID is taken, so the
 * answer does not depend on directory order). The canonical id is
 * "sha256:<chain hex>". Every value read from these files is checked
 * before it is used: digests must be canonical sha256 digests and the
 * cache-id must be a valid id (a safe single path component) before a
 * path is built from it. Docker's container layers (layerdb/mounts) are
 * not served. The layerdb and overlay2/<cache-id>/diff are reached from
 * the root's descriptor with no symlink on the way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/beneath.h"
#include "layer/error.h"
#include "store_int.h"

#define LAYERDB "image/overlay2/layerdb/sha256"

/* cache-id, diff and parent hold one short token each. */
#define SMALL_FILE_MAX 4096u

typedef struct docker_ctx {
    const layer_store__root *root;
    int layerdb;
} docker_ctx;

static void docker_end(void *ctx)
{
    const docker_ctx *c = ctx;

    if (c->layerdb >= 0)
        close(c->layerdb);
}

static int docker_begin(void *ctx, const layer_store__root *root)
{
    docker_ctx *c = ctx;
    int rc;

    c->root = root;
    c->layerdb = -1;
    rc = layer_beneath_open(&c->layerdb, root->fd, LAYERDB,
                            O_RDONLY | O_DIRECTORY, 0);
    if (rc == 0)
        return 0;
    if (rc == LAYER_ENOTFOUND)
        return layer_error_set(LAYER_EBROKEN,
                               "docker:%.200s: " LAYERDB " not found (only "
                               "the overlay2 storage driver is supported)",
                               root->path);
    if (rc == LAYER_EINVALID)
        return layer_error_set(LAYER_EBROKEN,
                               "docker:%.200s: " LAYERDB " is a symlink or "
                               "has one on its path (refused)",
                               root->path);
    return layer_error_set_errno(LAYER_ERROR, layer_error_errno(),
                                 "docker:%.200s: " LAYERDB, root->path);
}

int layer_store__docker_parse(char **out, size_t *out_len, const char *data,
                              size_t len, layer_store__docker_file kind,
                              const char *what)
{
    char *s;

    /* Docker writes no newline; a hand-made store may. */
    if (len > 0 && data[len - 1] == '\n')
        len--;
    if (kind == LAYER_STORE__DOCKER_CACHE_ID && !layer_id_valid(data, len))
        return layer_error_set(LAYER_EBROKEN,
                               "%s is not a valid directory name", what);
    if (kind == LAYER_STORE__DOCKER_DIGEST &&
        !layer_store__is_digest(data, len))
        return layer_error_set(LAYER_EBROKEN, "%s is not a sha256 digest",
                               what);
    if ((s = layer_trystrndup(data, len)) == NULL)
        return LAYER_ENOMEM;
    *out = s;
    *out_len = len;
    return 0;
}

/* Read and check the layerdb file `name` below dirfd. */
static int read_token(char **out, size_t *out_len, int dirfd, const char *name,
                      layer_store__docker_file kind, const char *what)
{
    char *data = NULL;
    size_t len;
    int rc;

    if ((rc = layer_store__read_file(&data, &len, dirfd, name, SMALL_FILE_MAX,
                                     what)) == 0)
        rc = layer_store__docker_parse(out, out_len, data, len, kind, what);
    layer_free(data);
    return rc;
}

/* Describe the chain whose layerdb directory is open as dfd. */
static int node_from(layer_store__node *out, const docker_ctx *c,
                     const char *hex, int dfd, unsigned flags)
{
    layer_store__node node = {0};
    char what[128], fwhat[256], rel[LAYER_ID_MAX + 8];
    char *cache = NULL, *diff = NULL, *parent = NULL;
    size_t len = 0;
    int rc = 0;

    snprintf(what, sizeof(what), "docker layer sha256:%s", hex);

    snprintf(fwhat, sizeof(fwhat), "%s: cache-id", what);
    rc = read_token(&cache, &len, dfd, "cache-id", LAYER_STORE__DOCKER_CACHE_ID,
                    fwhat);
    if (rc == LAYER_ENOTFOUND)
        rc = layer_error_set(LAYER_EBROKEN, "%s is missing", fwhat);
    if (rc < 0)
        goto out;

    snprintf(fwhat, sizeof(fwhat), "%s: diff", what);
    rc =
        read_token(&diff, &len, dfd, "diff", LAYER_STORE__DOCKER_DIGEST, fwhat);
    if (rc == LAYER_ENOTFOUND)
        rc = layer_error_set(LAYER_EBROKEN, "%s is missing", fwhat);
    if (rc < 0)
        goto out;

    snprintf(fwhat, sizeof(fwhat), "%s: parent", what);
    rc = read_token(&parent, &len, dfd, "parent", LAYER_STORE__DOCKER_DIGEST,
                    fwhat);
    if (rc == LAYER_ENOTFOUND)
        rc = 0; /* a base layer */
    if (rc < 0)
        goto out;

    snprintf(rel, sizeof(rel), "%s/diff", cache);
    if ((rc = layer_store__data_dir(&node, c->root, "overlay2", rel, what)) < 0)
        goto out;
    node.id = layer_trymalloc(72);
    if (node.id == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    snprintf(node.id, 72, "sha256:%s", hex);
    if (flags & LAYER_STORE__TARSPLIT) {
        char prefix[sizeof(LAYERDB) + 72];

        snprintf(prefix, sizeof(prefix), LAYERDB "/%s", hex);
        if ((rc = layer_store__tarsplit(&node.tarsplit, dfd, prefix,
                                        "tar-split.json.gz")) < 0)
            goto out;
    }
    node.kind = LAYER_KIND_DIFF;
    node.diff_digest = diff;
    node.parent = parent;
    diff = parent = NULL;
    *out = node;
    memset(&node, 0, sizeof(node));
out:
    layer_free(cache);
    layer_free(diff);
    layer_free(parent);
    layer_store__node_dispose(&node);
    return rc;
}

/* The bytewise smallest chain whose DiffID is digest, into best (65
 * bytes), or "" if none. */
static int find_by_diff(char *best, const docker_ctx *c, const char *digest)
{
    layer_store__strv names = {0};
    int rc;

    best[0] = '\0';
    if ((rc = layer_store__dir_names(&names, c->layerdb, ".", LAYERDB)) < 0)
        goto out;
    for (size_t i = 0; i < names.n; i++) {
        const char *name = names.v[i];
        char rel[80], *diff = NULL;
        size_t len;

        if (!layer_store__is_hex64(name, strlen(name)))
            continue;
        snprintf(rel, sizeof(rel), "%s/diff", name);
        rc = read_token(&diff, &len, c->layerdb, rel,
                        LAYER_STORE__DOCKER_DIGEST, rel);
        if (rc == LAYER_ENOTFOUND || rc == LAYER_EBROKEN) {
            /* Being created or deleted, or not ours: not a match. */
            rc = 0;
            continue;
        }
        if (rc < 0)
            goto out;
        if (len == strlen(digest) && memcmp(diff, digest, len) == 0 &&
            (best[0] == '\0' || strcmp(name, best) < 0))
            memcpy(best, name, 65);
        layer_free(diff);
    }
out:
    layer_store__strv_dispose(&names);
    return rc;
}

static int docker_lookup(layer_store__node *out, void *ctx, const char *id,
                         size_t len, unsigned flags)
{
    const docker_ctx *c = ctx;
    char hex[65], digest[72];
    int dfd = -1, rc = 0;

    memset(out, 0, sizeof(*out));
    if (layer_store__is_digest(id, len))
        memcpy(hex, id + 7, 65);
    else if (layer_store__is_hex64(id, len))
        memcpy(hex, id, 65);
    else
        return LAYER_ENOTFOUND; /* a valid id, but not a Docker one */
    dfd = openat(c->layerdb, hex,
                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT && (flags & LAYER_STORE__ALIASES)) {
        snprintf(digest, sizeof(digest), "sha256:%s", hex);
        if ((rc = find_by_diff(hex, c, digest)) < 0)
            goto out;
        if (hex[0] == '\0') {
            rc = LAYER_ENOTFOUND;
            goto out;
        }
        dfd = openat(c->layerdb, hex,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (dfd < 0) {
        if (errno == ENOENT)
            rc = LAYER_ENOTFOUND;
        else if (errno == ENOTDIR || errno == ELOOP)
            rc = layer_error_set(LAYER_EBROKEN,
                                 "docker layer sha256:%s: not a directory in "
                                 "the layerdb",
                                 hex);
        else
            rc = layer_error_set_errno(LAYER_ERROR, errno,
                                       "docker layer sha256:%s", hex);
        goto out;
    }
    rc = node_from(out, c, hex, dfd, flags);
out:
    if (dfd >= 0)
        close(dfd);
    return rc;
}

static int docker_list(layer_store__strv *ids, void *ctx)
{
    docker_ctx *c = ctx;
    layer_store__strv names = {0};
    int rc;

    if ((rc = layer_store__dir_names(&names, c->layerdb, ".", LAYERDB)) < 0)
        goto out;
    for (size_t i = 0; i < names.n; i++) {
        const char *name = names.v[i];
        char id[72];
        struct stat st;

        if (!layer_store__is_hex64(name, strlen(name)) ||
            fstatat(c->layerdb, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISDIR(st.st_mode))
            continue;
        snprintf(id, sizeof(id), "sha256:%s", name);
        if ((rc = layer_store__strv_add(ids, id, strlen(id))) < 0)
            goto out;
    }
out:
    layer_store__strv_dispose(&names);
    return rc;
}

const layer_store__backend layer_store__docker = {
    .prefix = "docker:",
    .name = "docker",
    .ctx_size = sizeof(docker_ctx),
    .begin = docker_begin,
    .end = docker_end,
    .lookup = docker_lookup,
    .list = docker_list,
};
