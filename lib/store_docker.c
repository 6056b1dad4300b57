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
 *
 * Images:
 *   PATH/image/overlay2/repositories.json       {"Repositories": {"<repo>":
 *                                               {"<ref>": "sha256:<id>"}}}
 *   PATH/image/overlay2/imagedb/content/sha256/<id hex>   the config
 * An image's top layer is the chain id its config's rootfs.diff_ids give.
 *
 * The index holds every layerdb entry and image; its stamps are the
 * layerdb and imagedb directories (docker adds and removes entries by
 * rename, and never rewrites one) and repositories.json.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/beneath.h"
#include "layer/digest.h"
#include "layer/error.h"
#include "layer/text.h"
#include "store_int.h"

#define LAYERDB "image/overlay2/layerdb/sha256"
#define IMAGEDB "image/overlay2/imagedb/content/sha256"
#define REPOS   "image/overlay2/repositories.json"

/* cache-id, diff and parent hold one short token each. */
#define SMALL_FILE_MAX 4096u
/* Room for "docker:<store path, cut>: <metadata path>" in messages. */
#define WHAT_MAX 320

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

/* Read and check the file `file` of the layerdb entry hex, named in
 * messages after what; a missing one is a broken store unless optional
 * (then *out stays NULL). */
static int read_entry_file(char **out, int layerdb, const char *hex,
                           const char *file, layer_store__docker_file kind,
                           const char *what, bool optional)
{
    char fwhat[256], rel[80];
    size_t len;
    int rc;

    snprintf(rel, sizeof(rel), "%s/%s", hex, file);
    snprintf(fwhat, sizeof(fwhat), "%s: %s", what, file);
    rc = read_token(out, &len, layerdb, rel, kind, fwhat);
    if (rc == LAYER_ENOTFOUND)
        rc = optional ? 0
                      : layer_error_set(LAYER_EBROKEN, "%s is missing", fwhat);
    return rc;
}

/* One layerdb entry, hex (a directory of layerdb), into the index. */
static int add_layer(layer_store__builder *b, int layerdb, const char *hex)
{
    layer_store__rec rec = {0};
    char what[128];
    char *cache = NULL, *diff = NULL, *parent = NULL;
    struct stat st;
    int rc = 0;

    if (fstatat(layerdb, hex, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0; /* gone since the listing */
    snprintf(what, sizeof(what), "docker layer sha256:%s", hex);
    if ((rec.id = layer_store__bfmt(b, "sha256:%s", hex)) == NULL)
        return LAYER_ENOMEM;
    if (!S_ISDIR(st.st_mode)) {
        layer_error_set(LAYER_EBROKEN, "%s: not a directory in the layerdb",
                        what);
        layer_store__brec_error(b, &rec, LAYER_EBROKEN);
        return layer_store__badd_layer(b, &rec);
    }
    rec.listed = true;
    if ((rc = read_entry_file(&cache, layerdb, hex, "cache-id",
                              LAYER_STORE__DOCKER_CACHE_ID, what, false)) < 0 ||
        (rc = read_entry_file(&diff, layerdb, hex, "diff",
                              LAYER_STORE__DOCKER_DIGEST, what, false)) < 0 ||
        /* a base layer has no parent */
        (rc = read_entry_file(&parent, layerdb, hex, "parent",
                              LAYER_STORE__DOCKER_DIGEST, what, true)) < 0)
        goto fail;
    rec.kind = LAYER_KIND_DIFF;
    rec.diff_digest = layer_store__bstr(b, diff);
    /* a client may name a layer by its DiffID; of chains sharing one, the
     * bytewise smallest chain id answers (order is 0 for all) */
    rec.alias = rec.diff_digest;
    rec.parent = layer_store__bstr(b, parent);
    rec.data = layer_store__bfmt(b, "overlay2/%s/diff", cache);
    rec.tarsplit = layer_store__bfmt(b, LAYERDB "/%s/tar-split.json.gz", hex);
    goto out;
fail:
    if (rc != LAYER_ENOMEM) {
        layer_store__brec_error(b, &rec, rc);
        rc = 0;
    }
out:
    if (rc == 0)
        rc = layer_store__badd_layer(b, &rec);
    layer_free(cache);
    layer_free(diff);
    layer_free(parent);
    return rc;
}

static int build_layers(layer_store__builder *b, const layer_store__root *root)
{
    layer_store__strv names = {0};
    int layerdb = -1, rc;

    rc = layer_beneath_open(&layerdb, root->fd, LAYERDB, O_RDONLY | O_DIRECTORY,
                            0);
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
    if (rc < 0)
        return layer_error_set_errno(LAYER_ERROR, layer_error_errno(),
                                     "docker:%.200s: " LAYERDB, root->path);
    if ((rc = layer_store__dir_names(&names, layerdb, ".", LAYERDB)) < 0)
        goto out;
    for (size_t i = 0; i < names.n && rc == 0; i++) {
        if (layer_store__is_hex64(names.v[i], strlen(names.v[i])))
            rc = add_layer(b, layerdb, names.v[i]);
    }
out:
    layer_store__strv_dispose(&names);
    close(layerdb);
    return rc;
}

/* ---- images ---------------------------------------------------------- */

void layer_store__docker_refs_free(layer_store__docker_ref *refs, size_t n)
{
    if (refs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        layer_free(refs[i].name);
        layer_free(refs[i].image_id);
    }
    layer_free(refs);
}

/* A reference as docker keeps it: UTF-8 without controls, bounded. */
static bool ref_ok(const char *s, size_t len)
{
    if (len == 0 || len > LAYER_IMAGE_REF_MAX || !layer_text_utf8_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Parse a JSON document that must be an object. */
static int parse_object(json_t **out, const char *data, size_t len,
                        const char *what)
{
    int rc = layer_store__json_parse(out, data, len, 0, what);

    if (rc == 0 && !json_is_object(*out))
        rc = layer_error_set(LAYER_EBROKEN, "%s: not a JSON object", what);
    return rc;
}

int layer_store__docker_parse_repositories(layer_store__docker_ref **out,
                                           size_t *out_count, const char *data,
                                           size_t len, const char *what)
{
    layer_store__docker_ref *refs = NULL;
    json_t *doc = NULL;
    const json_t *repos, *repo, *v;
    const char *rname, *ref;
    size_t n = 0, cap = 0;
    int rc;

    /* moby's reference store, written by Go's encoding/json */
    if ((rc = parse_object(&doc, data, len, what)) < 0)
        goto out;
    repos = json_object_get(doc, "Repositories");
    if (repos != NULL && !json_is_null(repos) && !json_is_object(repos)) {
        rc = layer_error_set(LAYER_EBROKEN,
                             "%s: \"Repositories\" is not an object", what);
        goto out;
    }
    json_object_foreach((json_t *)repos, rname, repo)
    {
        if (!json_is_object(repo)) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "%s: a repository is not an object", what);
            goto out;
        }
        json_object_foreach((json_t *)repo, ref, v)
        {
            size_t rlen = strlen(ref);

            if (!ref_ok(ref, rlen) || !json_is_string(v) ||
                !layer_store__is_digest(json_string_value(v),
                                        json_string_length(v))) {
                rc = layer_error_set(LAYER_EBROKEN,
                                     "%s: a reference is not a name with a "
                                     "sha256 image id",
                                     what);
                goto out;
            }
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                layer_store__docker_ref *nr =
                    layer_tryarray(refs, ncap, sizeof(*nr));

                if (nr == NULL) {
                    rc = LAYER_ENOMEM;
                    goto out;
                }
                refs = nr;
                cap = ncap;
            }
            refs[n].name = layer_trystrndup(ref, rlen);
            refs[n].image_id = layer_trystrdup(json_string_value(v));
            n++;
            if (refs[n - 1].name == NULL || refs[n - 1].image_id == NULL) {
                rc = LAYER_ENOMEM;
                goto out;
            }
        }
    }
    *out = refs;
    *out_count = n;
    refs = NULL;
out:
    layer_store__docker_refs_free(refs, n);
    json_decref(doc);
    return rc;
}

int layer_store__image_config_parse(char out_chain[72], char **out_created,
                                    const char *data, size_t len,
                                    const char *what)
{
    json_t *doc = NULL;
    const json_t *rootfs, *ids, *type;
    char chain[LAYER_DIGEST_STR_SIZE] = "";
    char *created = NULL;
    size_t n;
    int rc;

    if ((rc = parse_object(&doc, data, len, what)) < 0)
        goto out;
    rootfs = json_object_get(doc, "rootfs");
    type = json_object_get(rootfs, "type");
    ids = json_object_get(rootfs, "diff_ids");
    if (!json_is_object(rootfs) || !json_is_string(type) ||
        strcmp(json_string_value(type), "layers") != 0 ||
        (ids != NULL && !json_is_null(ids) && !json_is_array(ids))) {
        rc = layer_error_set(LAYER_EBROKEN,
                             "%s: no rootfs of type \"layers\" with diff_ids",
                             what);
        goto out;
    }
    if (json_array_size(ids) > LAYER_STORE__IMAGE_LAYERS_MAX) {
        rc = layer_error_set(LAYER_EBROKEN, "%s: more than %d layers", what,
                             LAYER_STORE__IMAGE_LAYERS_MAX);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const json_t *v = json_array_get(ids, i);
        char joined[2 * LAYER_DIGEST_STR_SIZE];

        if (!json_is_string(v) ||
            !layer_store__is_digest(json_string_value(v),
                                    json_string_length(v))) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "%s: diff_ids[%zu] is not a sha256 digest",
                                 what, i);
            goto out;
        }
        if (i == 0) {
            memcpy(chain, json_string_value(v), 72);
            continue;
        }
        /* ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)) */
        snprintf(joined, sizeof(joined), "%s %s", chain, json_string_value(v));
        if ((rc = layer_digest_buffer(chain, joined, 71 + 1 + 71)) < 0)
            goto out;
    }
    if ((rc = layer_store__json_string(&created, &n, doc, "created", what)) < 0)
        goto out;
    if (created != NULL && !layer_store__rfc3339_valid(created, n)) {
        layer_free(created);
        created = NULL;
    }
    memcpy(out_chain, chain, 72);
    *out_created = created;
    created = NULL;
out:
    layer_free(created);
    json_decref(doc);
    return rc;
}

static int cmp_ref(const void *a, const void *b)
{
    const layer_store__docker_ref *x = a, *y = b;

    return strcmp(x->image_id, y->image_id);
}

/* One image of the image database (hex, a config file) into the index,
 * with its names (refs sorted by image id). */
static int add_image(layer_store__builder *b, const layer_store__root *root,
                     const char *hex, const layer_store__docker_ref *refs,
                     size_t nrefs)
{
    layer_store__img img = {0};
    char what[128], chain[72], id[72], *created = NULL, *data = NULL;
    size_t len, first, count = 0;
    int rc;

    snprintf(id, sizeof(id), "sha256:%s", hex);
    snprintf(what, sizeof(what), "docker image %s: config", id);
    img.id = layer_store__bstr(b, id);
    img.config_digest = img.id;
    img.config = layer_store__bfmt(b, IMAGEDB "/%s", hex);
    /* its names: the refs of this id, adjacent once sorted */
    {
        size_t lo = 0, hi = nrefs;

        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (strcmp(refs[mid].image_id, id) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        first = lo;
        while (first + count < nrefs &&
               strcmp(refs[first + count].image_id, id) == 0)
            count++;
    }
    if (count > 0 && (img.names = layer_store__balloc(
                          b, count * sizeof(*img.names))) != NULL)
        for (; img.nnames < count; img.nnames++)
            img.names[img.nnames] =
                layer_store__bstr(b, refs[first + img.nnames].name);
    rc = layer_store__read_file(&data, &len, root->fd, img.config,
                                LAYER_STORE__FILE_MAX, what);
    if (rc == 0)
        rc = layer_store__image_config_parse(chain, &created, data, len, what);
    if (rc == LAYER_ENOMEM)
        goto out;
    if (rc < 0) {
        layer_store__bimg_error(b, &img, rc);
    } else {
        img.top_layer = chain[0] ? layer_store__bstr(b, chain) : NULL;
        img.created = layer_store__bstr(b, created);
    }
    rc = layer_store__badd_image(b, &img);
out:
    layer_free(created);
    layer_free(data);
    return rc;
}

static int build_images(layer_store__builder *b, const layer_store__root *root)
{
    layer_store__docker_ref *refs = NULL;
    layer_store__strv names = {0};
    size_t nrefs = 0, len;
    char what[WHAT_MAX], *data = NULL;
    int rc;

    snprintf(what, sizeof(what), "docker:%.200s: " REPOS, root->path);
    rc = layer_store__read_file(&data, &len, root->fd, REPOS,
                                LAYER_STORE__FILE_MAX, what);
    if (rc == LAYER_ENOTFOUND)
        rc = 0; /* no names */
    else if (rc == 0)
        rc = layer_store__docker_parse_repositories(&refs, &nrefs, data, len,
                                                    what);
    if (rc < 0)
        goto out;
    if (nrefs > 1)
        qsort(refs, nrefs, sizeof(*refs), cmp_ref);
    rc = layer_store__dir_names(&names, root->fd, IMAGEDB, IMAGEDB);
    if (rc == LAYER_ENOTFOUND) {
        rc = 0; /* no images yet */
        goto out;
    }
    for (size_t i = 0; i < names.n && rc == 0; i++) {
        if (layer_store__is_hex64(names.v[i], strlen(names.v[i])))
            rc = add_image(b, root, names.v[i], refs, nrefs);
    }
out:
    layer_free(data);
    layer_store__docker_refs_free(refs, nrefs);
    layer_store__strv_dispose(&names);
    return rc;
}

static int docker_build(layer_store__builder *b, const layer_store__root *root)
{
    int rc;

    if ((rc = layer_store__bstamp(b, LAYERDB, true)) < 0 ||
        (rc = layer_store__bstamp(b, IMAGEDB, true)) < 0 ||
        (rc = layer_store__bstamp(b, REPOS, false)) < 0)
        return rc;
    if ((rc = build_layers(b, root)) < 0)
        return rc;
    /* broken image metadata leaves the layers served */
    if ((rc = build_images(b, root)) < 0 && rc != LAYER_ENOMEM) {
        layer_store__bimages_error(b, rc);
        rc = 0;
    }
    return rc;
}

const layer_store__backend layer_store__docker = {
    .prefix = "docker:",
    .name = "docker",
    .what = "docker layer ",
    .hex_ids = true,
    .build = docker_build,
};
