/*
 * Blobs of the registry view, and the describes that give manifests
 * their layer digests.
 *
 * A layer blob is the layer's export as the registry serves it: the tar
 * --tar says (auto by default: the original tar where the store kept its
 * tar-split data, else the canonical one; layer_export_choose_tar()),
 * compressed as --registry-compression says at the format's default
 * level. Every blob
 * comes from api/blobs_int.h, the one place that makes blobs: a describe
 * learns a blob's digests (at once when it is cached, after one export
 * otherwise, never blocking a request thread: the notify protocol), an
 * open serves its bytes.
 *
 * GET|HEAD /v2/<name>/blobs/<digest> answers only digests that belong to
 * the repository: the layers of its images (the request may read them:
 * the name was resolved under access control) and their configs. So a
 * digest seen under another name gives nothing away. The repository's
 * images are described; a layer whose blob has the digest is opened from
 * the cache by its digest and answered with its length, Range and HEAD
 * (api_blob__respond()). When a blob is not described yet (nobody asked
 * for the manifest, or the cache evicted it), the answer is a stream
 * that waits for the describes and then sends the blob as it is made
 * (no Range then: a resumed pull asks again once it is cached). A config
 * is made with the manifest (registry_manifest.c) and served from memory.
 */
#include "registry_int.h"

#include <stdio.h>
#include <string.h>

#include "blobs_int.h"
#include "layer/alloc.h"
#include "layer/error.h"

/* Most tags of one repository looked through for a digest. */
#define REG_DIGEST_TAGS_MAX 64

/* Most blobs one request describes: a digest looked for across a
 * repository's tags costs one cache lookup (and, cold, one export) per
 * layer of each image. */
#define REG_DESCRIBES_MAX 1024

struct reg_describes {
    api_context *ctx;
    size_t nimgs;
    size_t *first; /* index of image i's first layer in d and descs */
    size_t total;
    api_blob_describe **d;
    reg_blob_desc *descs;
    size_t done;
};

void api_registry__describe_free(reg_describes *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->total; i++) {
        if (d->d[i] == NULL)
            continue;
        api_blob_describe__set_notify(d->d[i], NULL, NULL);
        api_blob_describe__free(d->d[i]);
    }
    layer_free(d->d);
    layer_free(d->descs);
    layer_free(d->first);
    layer_free(d);
}

/* The spec of layer info's blob (info handed over, on failure too). */
static int blob_spec(api_blob_spec *spec, api_context *ctx, layer_info *info)
{
    layer_export_original orig;
    int rc;

    memset(spec, 0, sizeof(*spec));
    if ((rc = layer_export_choose_tar(&spec->tar, &orig, info, ctx->export_tar,
                                      0)) < 0) {
        layer_info_free(info);
        return rc;
    }
    /* The reader's descriptors come from the pool as for the REST
     * routes; a cached blob gives them back at once. */
    if (api_fds_acquire(ctx, LAYER_READER_FDS(info->nparents)) < 0) {
        layer_info_free(info);
        return layer_error_set(LAYER_EBUSY,
                               "the descriptors this server gives readers "
                               "are all held");
    }
    spec->fds = LAYER_READER_FDS(info->nparents);
    spec->info = info;
    spec->compression = ctx->registry_compression;
    spec->level = 0;
    return 0;
}

int api_registry__describe_start(reg_describes **out, api_call *call,
                                 reg_image **imgs, size_t n)
{
    reg_describes *d = NULL;
    size_t k = 0;
    int rc = 0;

    if ((d = layer_trycalloc(1, sizeof(*d))) == NULL ||
        (d->first = layer_trycalloc(n + 1, sizeof(*d->first))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    d->ctx = call->ctx;
    d->nimgs = n;
    for (size_t i = 0; i < n; i++) {
        d->first[i] = d->total;
        d->total += imgs[i]->nlayers;
    }
    d->first[n] = d->total;
    if (d->total > REG_DESCRIBES_MAX) {
        rc = layer_error_set(LAYER_ETOOBIG,
                             "the images hold %zu layers; a request "
                             "describes at most %d",
                             d->total, REG_DESCRIBES_MAX);
        goto out;
    }
    if ((d->d = layer_trycalloc(d->total + 1, sizeof(*d->d))) == NULL ||
        (d->descs = layer_trycalloc(d->total + 1, sizeof(*d->descs))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t l = 0; l < imgs[i]->nlayers; l++, k++) {
            api_blob_spec spec;
            layer_info *info = imgs[i]->layers[l];

            imgs[i]->layers[l] = NULL;
            if ((rc = blob_spec(&spec, call->ctx, info)) < 0 ||
                (rc = api_blob__describe(&d->d[k], call->ctx, &spec,
                                         call->req->span)) < 0)
                goto out;
            d->descs[k].compression = call->ctx->registry_compression;
        }
    }
    *out = d;
    d = NULL;
out:
    if (rc < 0)
        api_registry__from_error(call, rc, "BLOB_UNKNOWN");
    api_registry__describe_free(d);
    return rc;
}

int api_registry__describe_poll(reg_describes *d, void (*wake)(void *arg),
                                void *arg)
{
    while (d->done < d->total) {
        layer_blobcache_info info;
        reg_blob_desc *desc = &d->descs[d->done];
        int rc = api_blob_describe__result(&info, d->d[d->done]);

        if (rc == LAYER_EAGAIN && wake != NULL) {
            /* An answer that came before the callback was installed
             * calls it at once: nothing is lost between the two. */
            api_blob_describe__set_notify(d->d[d->done], wake, arg);
            rc = api_blob_describe__result(&info, d->d[d->done]);
        }
        if (rc < 0)
            return rc;
        memcpy(desc->digest, info.digest, sizeof(desc->digest));
        memcpy(desc->diff_id, info.diff_id, sizeof(desc->diff_id));
        desc->size = info.size;
        d->done++;
    }
    return 0;
}

int api_registry__describe_probe(reg_describes *d, api_context *ctx,
                                 reg_image *const *imgs)
{
    for (size_t i = 0; i < d->nimgs; i++) {
        for (size_t l = 0; l < imgs[i]->nlayers; l++) {
            size_t k = d->first[i] + l;
            layer_blobcache_info info;
            layer_info *layer = NULL;
            int rc;

            if (k < d->done ||
                api_blob_describe__result(&info, d->d[k]) != LAYER_EAGAIN)
                continue;
            rc = layer_store_resolve(&layer, ctx->store, imgs[i]->ids[l]);
            if (rc == LAYER_ENOTFOUND)
                rc = api_problem__recode(LAYER_EBROKEN);
            if (rc == 0)
                rc = api_entries__probe(layer);
            layer_info_free(layer);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

const reg_blob_desc *api_registry__describe_descs(const reg_describes *d,
                                                  size_t i)
{
    return d->descs + d->first[i];
}

/* ---- the images of a repository ---- */

int api_registry__repo_images(reg_image ***out, size_t *out_n, api_call *call,
                              const char *name)
{
    char **tags = NULL;
    size_t ntags = 0, n = 0;
    reg_image **imgs = NULL;
    int rc;

    if ((rc = api_registry__tags(&tags, &ntags, call, name)) < 0)
        return rc;
    if (ntags > REG_DIGEST_TAGS_MAX)
        ntags = REG_DIGEST_TAGS_MAX;
    if ((imgs = layer_trycalloc(ntags + 1, sizeof(*imgs))) == NULL) {
        rc = LAYER_ENOMEM;
        api_registry__from_error(call, rc, "BLOB_UNKNOWN");
        goto out;
    }
    for (size_t i = 0; i < ntags; i++) {
        if ((rc = api_registry__resolve(&imgs[n], call, name, tags[i])) < 0)
            goto out;
        n++;
    }
    *out = imgs;
    *out_n = n;
    imgs = NULL;
    n = 0;
out:
    for (size_t i = 0; i < n; i++)
        api_registry__image_free(imgs[i]);
    layer_free(imgs);
    api_registry__strv_free(tags, ntags);
    return rc;
}

void api_registry__images_free(reg_image **imgs, size_t n)
{
    if (imgs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        api_registry__image_free(imgs[i]);
    layer_free(imgs);
}

/* ---- blobs ---- */

/* What a blob request found, once every describe answered. */
typedef struct found {
    bool layer;                /* a layer blob: open it from the cache */
    char id[LAYER_ID_MAX + 1]; /* the layer's id, for a blob not kept */
    char *config;              /* a config: its bytes (layer_alloc) */
    size_t config_len;
} found;

/* Look for digest among the described images' layers and configs (both
 * flavours give the same config). */
static int find_digest(found *f, reg_image **imgs, size_t n,
                       const reg_describes *d, const char *digest)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        const reg_blob_desc *descs = api_registry__describe_descs(d, i);

        for (size_t l = 0; l < imgs[i]->nlayers; l++) {
            if (strcmp(descs[l].digest, digest) == 0) {
                f->layer = true;
                snprintf(f->id, sizeof(f->id), "%s", imgs[i]->ids[l]);
                return 0;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        reg_manifest m;
        int rc;

        if ((rc = api_registry__manifest_build(
                 &m, imgs[i], api_registry__describe_descs(d, i),
                 REG_FLAVOUR_OCI)) < 0)
            return rc;
        if (strcmp(m.config_digest, digest) == 0) {
            f->config = m.config;
            f->config_len = m.config_len;
            m.config = NULL;
            api_registry__manifest_dispose(&m);
            return 0;
        }
        api_registry__manifest_dispose(&m);
    }
    return LAYER_ENOTFOUND;
}

/*
 * Open a layer blob: from the cache by its digest, or, when the cache
 * does not keep it (no cache, or it was evicted since it was described),
 * by making it again from the layer (the same bytes: exports are
 * deterministic; its digest is checked at its end by the describe that
 * follows the next manifest).
 */
static int open_layer(api_blob **out, api_context *ctx, const found *f,
                      const char *digest, layer_span *span)
{
    layer_info *info = NULL;
    api_blob_spec spec;
    int rc;

    rc = api_blob__open_digest(out, ctx, digest, span);
    if (rc != LAYER_ENOTFOUND)
        return rc;
    if ((rc = layer_store_resolve(&info, ctx->store, f->id)) < 0)
        return rc == LAYER_ENOTFOUND ? api_problem__recode(LAYER_EBROKEN) : rc;
    if ((rc = blob_spec(&spec, ctx, info)) < 0)
        return rc;
    return api_blob__open(out, ctx, &spec, span, 0);
}

/* Is digest the blob of a layer whose describe has answered already
 * (whatever the others do)? */
static bool find_made(found *f, reg_describes *d, reg_image **imgs,
                      const char *digest)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < d->nimgs; i++) {
        for (size_t l = 0; l < imgs[i]->nlayers; l++) {
            layer_blobcache_info info;

            if (api_blob_describe__result(&info, d->d[d->first[i] + l]) == 0 &&
                strcmp(info.digest, digest) == 0) {
                f->layer = true;
                snprintf(f->id, sizeof(f->id), "%s", imgs[i]->ids[l]);
                return true;
            }
        }
    }
    return false;
}

static void blob_unknown(api_call *call, const char *digest)
{
    api_registry__error(call, 404, "BLOB_UNKNOWN", "blob unknown to registry",
                        json_pack("{s:s}", "digest", digest));
}

/* Answer the config bytes (taken over). */
static void answer_config(api_call *call, char *config, size_t len,
                          const char *digest)
{
    char etag[LAYER_DIGEST_STR_SIZE + 2];

    snprintf(etag, sizeof(etag), "\"%s\"", digest);
    if (api_response__set_body(call->res, 200, API_TYPE_OCTETS, config, len) <
            0 ||
        api_response_add_header(call->res, "Docker-Content-Digest", digest) <
            0 ||
        api_response_add_header(call->res, "ETag", etag) < 0 ||
        api_response_add_header(call->res, "Cache-Control",
                                "max-age=31536000, immutable") < 0)
        api_registry__from_error(call, LAYER_ENOMEM, "BLOB_UNKNOWN");
}

/* Answer a layer blob. */
static void answer_layer(api_call *call, const found *f, const char *digest)
{
    api_blob *b = NULL;
    int rc;

    if ((rc = open_layer(&b, call->ctx, f, digest, call->req->span)) < 0) {
        if (rc == LAYER_ENOTFOUND)
            blob_unknown(call, digest);
        else
            api_registry__from_error(call, rc, "BLOB_UNKNOWN");
        return;
    }
    if (api_blob__respond(call, b, API_TYPE_OCTETS, NULL) < 0)
        return;
    (void)api_response_add_header(call->res, "Cache-Control",
                                  "max-age=31536000, immutable");
}

/* A blob request waiting for its repository's describes. */
typedef struct blob_wait {
    api_context *ctx;
    reg_image **imgs;
    size_t nimgs;
    reg_describes *d;
    char digest[LAYER_DIGEST_STR_SIZE];
    void (*wake)(void *arg);
    void *wake_arg;
    api_blob *blob; /* the layer blob, once found */
    char *config;   /* or the config */
    size_t config_len, pos;
    layer_span *span;
} blob_wait;

static void blob_wait_set_wake(void *ctx, void (*wake)(void *arg), void *arg)
{
    blob_wait *w = ctx;

    w->wake = wake;
    w->wake_arg = arg;
    if (w->blob != NULL)
        api_blob__set_notify(w->blob, wake, arg);
}

static ssize_t blob_wait_fail(blob_wait *w, int rc)
{
    layer_span_set_error(w->span, "registry.blob", rc);
    return API_PRODUCE_ERROR;
}

static ssize_t blob_wait_read(void *ctx, char *buf, size_t cap)
{
    blob_wait *w = ctx;
    found f;
    size_t n;
    int rc;

    if (w->blob == NULL && w->config == NULL) {
        rc = api_registry__describe_poll(w->d, w->wake, w->wake_arg);
        if (rc == LAYER_EAGAIN)
            return API_PRODUCE_AGAIN;
        if (rc < 0)
            return blob_wait_fail(w, rc);
        if ((rc = find_digest(&f, w->imgs, w->nimgs, w->d, w->digest)) < 0)
            return blob_wait_fail(w, rc);
        if (f.config != NULL) {
            w->config = f.config;
            w->config_len = f.config_len;
        } else if ((rc = open_layer(&w->blob, w->ctx, &f, w->digest, w->span)) <
                   0) {
            return blob_wait_fail(w, rc);
        } else {
            api_blob__set_notify(w->blob, w->wake, w->wake_arg);
        }
    }
    if (w->config != NULL) {
        if (w->pos == w->config_len)
            return API_PRODUCE_END;
        n = w->config_len - w->pos < cap ? w->config_len - w->pos : cap;
        memcpy(buf, w->config + w->pos, n);
        w->pos += n;
        return (ssize_t)n;
    }
    rc = api_blob__read(&n, w->blob, buf, cap);
    if (rc == LAYER_EAGAIN)
        return API_PRODUCE_AGAIN;
    if (rc == LAYER_ITEROVER)
        return API_PRODUCE_END;
    if (rc < 0)
        return blob_wait_fail(w, rc);
    return (ssize_t)n;
}

static void blob_wait_free(void *ctx)
{
    blob_wait *w = ctx;

    if (w->blob != NULL) {
        api_blob__set_notify(w->blob, NULL, NULL);
        api_blob__free(w->blob);
    }
    api_registry__describe_free(w->d);
    api_registry__images_free(w->imgs, w->nimgs);
    layer_free(w->config);
    layer_free(w);
}

/* Answer with a stream that waits for the describes (taken over). */
static void answer_waiting(api_call *call, reg_image **imgs, size_t n,
                           reg_describes *d, const char *digest)
{
    blob_wait *w = layer_trycalloc(1, sizeof(*w));
    api_response *res = call->res;

    if (w == NULL) {
        api_registry__describe_free(d);
        api_registry__images_free(imgs, n);
        api_registry__from_error(call, LAYER_ENOMEM, "BLOB_UNKNOWN");
        return;
    }
    w->ctx = call->ctx;
    w->imgs = imgs;
    w->nimgs = n;
    w->d = d;
    w->span = call->req->span;
    snprintf(w->digest, sizeof(w->digest), "%s", digest);
    res->status = 200;
    res->producer.read = blob_wait_read;
    res->producer.set_wake = blob_wait_set_wake;
    res->producer.free = blob_wait_free;
    res->producer.ctx = w;
    if (api_response_add_header(res, "Content-Type", API_TYPE_OCTETS) < 0 ||
        api_response_add_header(res, "Docker-Content-Digest", digest) < 0)
        api_registry__from_error(call, LAYER_ENOMEM, "BLOB_UNKNOWN");
}

void api_registry__blob(api_call *call, const char *name, const char *digest)
{
    reg_image **imgs = NULL;
    size_t n = 0;
    reg_describes *d = NULL;
    found f;
    bool head = call->res->head;
    int rc;

    call->res->route = "/v2/{name}/blobs/{digest}";
    if ((rc = api_registry__repo_images(&imgs, &n, call, name)) < 0)
        return;
    if (!api_registry__digest_sha256(digest, strlen(digest))) {
        /* Another algorithm: well formed, but no blob here has it. */
        blob_unknown(call, digest);
        goto out;
    }
    if ((rc = api_registry__describe_start(&d, call, imgs, n)) < 0)
        goto out;
    rc = api_registry__describe_poll(d, NULL, NULL);
    if (rc == LAYER_EAGAIN && !head &&
        (rc = api_registry__describe_probe(d, call->ctx, imgs)) == 0) {
        answer_waiting(call, imgs, n, d, digest);
        return;
    }
    if (rc == LAYER_EAGAIN) {
        /* HEAD says only what is known now: a layer blob already made
         * among the repository's, or else unknown. */
        if (find_made(&f, d, imgs, digest))
            answer_layer(call, &f, digest);
        else
            blob_unknown(call, digest);
        goto out;
    }
    if (rc < 0) {
        api_registry__from_error(call, rc, "BLOB_UNKNOWN");
        goto out;
    }
    rc = find_digest(&f, imgs, n, d, digest);
    if (rc == LAYER_ENOTFOUND)
        blob_unknown(call, digest);
    else if (rc < 0)
        api_registry__from_error(call, rc, "BLOB_UNKNOWN");
    else if (f.config != NULL)
        answer_config(call, f.config, f.config_len, digest);
    else
        answer_layer(call, &f, digest);
out:
    api_registry__describe_free(d);
    api_registry__images_free(imgs, n);
}
