/*
 * Manifests and configs of the registry view.
 *
 * An image's manifest names its config and its layer blobs. The layer
 * blobs are the layers' exports through the blob cache (api/blobs_int.h):
 * the original tar where the store kept it (so its diff ID is the one the
 * store recorded), else the canonical one, compressed as
 * --registry-compression says. Their digests are known once each blob
 * was made; a manifest whose blobs are not all known yet is answered by
 * a producer that waits on the blobs' descriptions (the notify
 * protocol), so no request thread ever blocks on an export.
 *
 * The config:
 * - "layers/<id>" images get a minimal one: os, the host's architecture,
 *   rootfs.diff_ids of the blobs, and one history entry per layer with
 *   the store's created time;
 * - images the store knows get their own config, byte for byte, when its
 *   rootfs.diff_ids equal the diff IDs of the blobs served (the image ID
 *   a client computes is then the store's); where they differ (a layer
 *   served in the canonical tar), a copy with the new diff_ids and all
 *   else kept, and the manifest says so in the annotations
 *   dev.layerd.config.rewritten (why) and dev.layerd.config.source (the
 *   digest of the store's config).
 *
 * Everything is serialised by jansson, compact, keys in insertion order,
 * so the same image gives the same bytes and digests on every request.
 *
 * Flavours: an OCI image manifest by default; the Docker schema 2
 * manifest (its own media types for the manifest, the config and gzip or
 * plain layers) when the request's Accept values list Docker schema 2
 * and not the OCI manifest. Accept may come on several header lines
 * (containers/image, docker) or as one comma list (containerd): every
 * value is split, parameters ignored.
 */
#include "registry_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "layer/alloc.h"
#include "layer/error.h"

const char *api_registry__arch(const char **variant)
{
    *variant = NULL;
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    *variant = "v8";
    return "arm64";
#elif defined(__i386__)
    return "386";
#elif defined(__arm__)
    *variant = "v7";
    return "arm";
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
    return "ppc64le";
#elif defined(__s390x__)
    return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64";
#else
    return "unknown";
#endif
}

void api_registry__manifest_dispose(reg_manifest *m)
{
    layer_free(m->config);
    layer_free(m->body);
    memset(m, 0, sizeof(*m));
}

static json_t *diff_ids_json(const reg_blob_desc *descs, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n && a != NULL; i++) {
        if (json_array_append_new(a, json_string(descs[i].diff_id)) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* The minimal config of a "layers/<id>" image. */
static json_t *minimal_config(const reg_image *img, const reg_blob_desc *descs)
{
    const char *variant;
    const char *arch = api_registry__arch(&variant);
    const char *top_created = img->created[img->nlayers - 1];
    json_t *c = json_object(), *hist = json_array();

    if (c == NULL || hist == NULL)
        goto fail;
    json_object_set_new(c, "architecture", json_string(arch));
    if (variant != NULL)
        json_object_set_new(c, "variant", json_string(variant));
    json_object_set_new(c, "os", json_string("linux"));
    if (top_created != NULL)
        json_object_set_new(c, "created", json_string(top_created));
    json_object_set_new(c, "rootfs",
                        json_pack("{s:s, s:o}", "type", "layers", "diff_ids",
                                  diff_ids_json(descs, img->nlayers)));
    for (size_t i = 0; i < img->nlayers; i++) {
        json_t *h = json_object();
        char by[LAYER_ID_MAX + 32];

        if (h == NULL)
            goto fail;
        if (img->created[i] != NULL)
            json_object_set_new(h, "created", json_string(img->created[i]));
        snprintf(by, sizeof(by), "layerd: layer %s", img->ids[i]);
        json_object_set_new(h, "created_by", json_string(by));
        json_array_append_new(hist, h);
    }
    json_object_set_new(c, "history", hist);
    if (json_object_get(json_object_get(c, "rootfs"), "diff_ids") == NULL)
        goto fail_c;
    return c;
fail:
    json_decref(hist);
fail_c:
    json_decref(c);
    return NULL;
}

/* Do the config's rootfs.diff_ids equal the blobs'? */
static bool same_diff_ids(const json_t *config, const reg_blob_desc *descs,
                          size_t n)
{
    const json_t *ids =
        json_object_get(json_object_get(config, "rootfs"), "diff_ids");

    if (!json_is_array(ids) || json_array_size(ids) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(ids, i));

        if (s == NULL || strcmp(s, descs[i].diff_id) != 0)
            return false;
    }
    return true;
}

static const char *blob_media_type(layer_compression c, reg_flavour f)
{
    if (f == REG_FLAVOUR_DOCKER && c == LAYER_COMPRESSION_GZIP)
        return REG_TYPE_DOCKER_LAYER_GZIP;
    if (f == REG_FLAVOUR_DOCKER && c == LAYER_COMPRESSION_NONE)
        return REG_TYPE_DOCKER_LAYER_TAR;
    /* zstd has no Docker type: the OCI one (containerd, docker 23+ and
     * containers/image take it in either manifest). */
    return layer_compression_media_type(c);
}

int api_registry__manifest_build(reg_manifest *out, const reg_image *img,
                                 const reg_blob_desc *descs,
                                 reg_flavour flavour)
{
    json_t *config = NULL, *m = NULL, *layers = NULL, *ann = NULL;
    reg_manifest r;
    int rc = 0;

    memset(&r, 0, sizeof(r));
    r.flavour = flavour;
    if (img->source == REG_CONFIG_OWN) {
        json_error_t jerr;

        config = json_loadb(img->config, img->config_len, 0, &jerr);
        if (!json_is_object(config)) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "the image's config %s is not a JSON "
                                 "object: %s",
                                 img->config_digest, jerr.text);
            goto out;
        }
        if (same_diff_ids(config, descs, img->nlayers)) {
            if ((r.config = layer_trymalloc(img->config_len + 1)) == NULL) {
                rc = LAYER_ENOMEM;
                goto out;
            }
            memcpy(r.config, img->config, img->config_len);
            r.config[img->config_len] = '\0';
            r.config_len = img->config_len;
        } else {
            json_t *rootfs = json_object_get(config, "rootfs");

            if (!json_is_object(rootfs)) {
                rootfs = json_object();
                json_object_set_new(config, "rootfs", rootfs);
                json_object_set_new(rootfs, "type", json_string("layers"));
            }
            if (rootfs == NULL ||
                json_object_set_new(rootfs, "diff_ids",
                                    diff_ids_json(descs, img->nlayers)) < 0) {
                rc = layer_error_set(LAYER_ENOMEM, "cannot build a config");
                goto out;
            }
            r.rewritten = true;
        }
    } else {
        if ((config = minimal_config(img, descs)) == NULL) {
            rc = layer_error_set(LAYER_ENOMEM, "cannot build a config");
            goto out;
        }
    }
    if (r.config == NULL &&
        (rc = api_json__dump(&r.config, &r.config_len, config, 0)) < 0)
        goto out;
    if ((rc = layer_digest_buffer(r.config_digest, r.config, r.config_len)) < 0)
        goto out;

    if ((layers = json_array()) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < img->nlayers; i++) {
        json_t *d =
            json_pack("{s:s, s:s, s:I}", "mediaType",
                      blob_media_type(descs[i].compression, flavour), "digest",
                      descs[i].digest, "size", (json_int_t)descs[i].size);

        if (d == NULL || json_array_append_new(layers, d) < 0) {
            rc = layer_error_set(LAYER_ENOMEM, "cannot build a manifest");
            goto out;
        }
    }
    m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2,
                  "mediaType",
                  flavour == REG_FLAVOUR_DOCKER ? REG_TYPE_DOCKER_MANIFEST
                                                : REG_TYPE_OCI_MANIFEST,
                  "config", "mediaType",
                  flavour == REG_FLAVOUR_DOCKER ? REG_TYPE_DOCKER_CONFIG
                                                : REG_TYPE_OCI_CONFIG,
                  "digest", r.config_digest, "size", (json_int_t)r.config_len,
                  "layers", layers);
    if (m == NULL) {
        rc = layer_error_set(LAYER_ENOMEM, "cannot build a manifest");
        goto out;
    }
    if (r.rewritten) {
        ann = json_pack("{s:s, s:s}", REG_ANNOTATION_REWRITTEN,
                        "rootfs.diff_ids: the layers are served in layerd's "
                        "canonical tar, not the store's original bytes",
                        REG_ANNOTATION_SOURCE, img->config_digest);
        if (ann == NULL || json_object_set_new(m, "annotations", ann) < 0) {
            rc = layer_error_set(LAYER_ENOMEM, "cannot build a manifest");
            goto out;
        }
    }
    if ((rc = api_json__dump(&r.body, &r.body_len, m, 0)) < 0 ||
        (rc = layer_digest_buffer(r.digest, r.body, r.body_len)) < 0)
        goto out;
    *out = r;
    memset(&r, 0, sizeof(r));
out:
    api_registry__manifest_dispose(&r);
    json_decref(config);
    json_decref(layers);
    json_decref(m);
    return rc;
}

/* Most Accept header lines looked at. */
#define ACCEPT_LINES_MAX 32

/* Does the comma list v name type t (parameters ignored)? Sets
 * *wildcard for "* / *" and "application/ *". */
static bool lists(const char *v, const char *t, bool *wildcard)
{
    size_t tlen = strlen(t);
    bool found = false;

    while (*v != '\0') {
        size_t n, end;

        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        n = strcspn(v, ",");
        end = strcspn(v, ";,");
        while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end == tlen && strncasecmp(v, t, tlen) == 0)
            found = true;
        if ((end == 3 && memcmp(v, "*/*", 3) == 0) ||
            (end == 13 && strncasecmp(v, "application/*", 13) == 0))
            *wildcard = true;
        v += n;
    }
    return found;
}

int api_registry__flavour(reg_flavour *out, api_call *call)
{
    const char *vals[ACCEPT_LINES_MAX];
    size_t n = 0;
    bool oci = false, docker = false, wildcard = false;

    if (call->req->header_values != NULL)
        n = call->req->header_values(call->req->conn, "Accept", vals,
                                     ACCEPT_LINES_MAX);
    else if (call->req->header != NULL &&
             (vals[0] = call->req->header(call->req->conn, "Accept")) != NULL)
        n = 1;
    for (size_t i = 0; i < n; i++) {
        bool w = false;

        oci = lists(vals[i], REG_TYPE_OCI_MANIFEST, &w) || oci;
        docker = lists(vals[i], REG_TYPE_DOCKER_MANIFEST, &w) || docker;
        wildcard = wildcard || w;
    }
    if (oci || n == 0 || (wildcard && !docker)) {
        *out = REG_FLAVOUR_OCI;
        return 0;
    }
    if (docker) {
        *out = REG_FLAVOUR_DOCKER;
        return 0;
    }
    return layer_error_set(LAYER_ENOTFOUND,
                           "the Accept header lists neither the OCI image "
                           "manifest nor the Docker schema 2 manifest");
}

static const char *manifest_type(reg_flavour f)
{
    return f == REG_FLAVOUR_DOCKER ? REG_TYPE_DOCKER_MANIFEST
                                   : REG_TYPE_OCI_MANIFEST;
}

/* Find the manifest to answer among the described images: the first
 * image's (a tag) or, for a digest, the one of any image in either
 * flavour whose digest it is (the wanted flavour first). */
static int pick(reg_manifest *out, reg_image **imgs, size_t n,
                const reg_describes *d, reg_flavour flavour, const char *want,
                bool any_flavour)
{
    for (size_t pass = 0; pass < (any_flavour ? 2u : 1u); pass++) {
        reg_flavour f = pass == 0 ? flavour : (reg_flavour)(1 - flavour);

        for (size_t i = 0; i < n; i++) {
            reg_manifest m;
            int rc;

            if ((rc = api_registry__manifest_build(
                     &m, imgs[i], api_registry__describe_descs(d, i), f)) < 0)
                return rc;
            if (want == NULL || strcmp(m.digest, want) == 0) {
                *out = m;
                return 0;
            }
            api_registry__manifest_dispose(&m);
        }
    }
    return layer_error_set(LAYER_ENOTFOUND, "no manifest of this repository "
                                            "has that digest");
}

/* Answer a built manifest (taken over). */
static void answer(api_call *call, reg_manifest *m, bool by_digest)
{
    api_response *res = call->res;
    char etag[LAYER_DIGEST_STR_SIZE + 2];
    char digest[LAYER_DIGEST_STR_SIZE];
    const char *inm = call->req->header != NULL
                          ? call->req->header(call->req->conn, "If-None-Match")
                          : NULL;
    int rc;

    snprintf(digest, sizeof(digest), "%s", m->digest);
    snprintf(etag, sizeof(etag), "\"%s\"", digest);
    if (inm != NULL && api_etag__listed(inm, etag)) {
        res->status = 304;
        res->has_length = true;
        api_registry__manifest_dispose(m);
    } else {
        rc = api_response__set_body(res, 200, manifest_type(m->flavour),
                                    m->body, m->body_len);
        m->body = NULL;
        api_registry__manifest_dispose(m);
        if (rc < 0)
            goto fail;
    }
    if (api_response_add_header(res, "Docker-Content-Digest", digest) < 0 ||
        api_response_add_header(res, "ETag", etag) < 0 ||
        (by_digest &&
         api_response_add_header(res, "Cache-Control",
                                 "max-age=31536000, immutable") < 0))
        goto fail;
    return;
fail:
    api_registry__from_error(call, LAYER_ENOMEM, "MANIFEST_UNKNOWN");
}

/* A manifest request waiting for its blobs' describes. */
typedef struct manifest_wait {
    reg_image **imgs;
    size_t nimgs;
    reg_describes *d;
    reg_flavour flavour;
    bool by_digest;
    char want[LAYER_DIGEST_STR_SIZE];
    void (*wake)(void *arg);
    void *wake_arg;
    reg_manifest m;
    bool built;
    size_t pos;
    api_header trailer;
    char trailer_value[LAYER_DIGEST_STR_SIZE];
    layer_span *span;
} manifest_wait;

static void wait_set_wake(void *ctx, void (*wake)(void *arg), void *arg)
{
    manifest_wait *w = ctx;

    w->wake = wake;
    w->wake_arg = arg;
}

static ssize_t wait_read(void *ctx, char *buf, size_t cap)
{
    manifest_wait *w = ctx;
    size_t n;
    int rc;

    if (!w->built) {
        rc = api_registry__describe_poll(w->d, w->wake, w->wake_arg);
        if (rc == LAYER_EAGAIN)
            return API_PRODUCE_AGAIN;
        if (rc == 0)
            rc = pick(&w->m, w->imgs, w->nimgs, w->d, w->flavour,
                      w->by_digest ? w->want : NULL, false);
        if (rc < 0) {
            /* The status went out: cutting the stream is all that is
             * left, so the client never takes a part for a manifest. */
            layer_span_set_error(w->span, "registry.manifest", rc);
            return API_PRODUCE_ERROR;
        }
        w->built = true;
        snprintf(w->trailer_value, sizeof(w->trailer_value), "%s", w->m.digest);
    }
    if (w->pos == w->m.body_len)
        return API_PRODUCE_END;
    n = w->m.body_len - w->pos < cap ? w->m.body_len - w->pos : cap;
    memcpy(buf, w->m.body + w->pos, n);
    w->pos += n;
    return (ssize_t)n;
}

static size_t wait_trailers(void *ctx, const api_header **out)
{
    manifest_wait *w = ctx;

    if (!w->built)
        return 0;
    w->trailer.name = "Docker-Content-Digest";
    w->trailer.value = w->trailer_value;
    *out = &w->trailer;
    return 1;
}

static void wait_free(void *ctx)
{
    manifest_wait *w = ctx;

    api_registry__describe_free(w->d);
    api_registry__images_free(w->imgs, w->nimgs);
    api_registry__manifest_dispose(&w->m);
    layer_free(w);
}

/* Answer with a stream that sends the manifest once its blobs are
 * described (imgs and d taken over). Its digest comes as a trailer. */
static void answer_waiting(api_call *call, reg_image **imgs, size_t n,
                           reg_describes *d, reg_flavour flavour,
                           const char *want)
{
    manifest_wait *w = layer_trycalloc(1, sizeof(*w));
    api_response *res = call->res;

    if (w == NULL) {
        api_registry__describe_free(d);
        api_registry__images_free(imgs, n);
        api_registry__from_error(call, LAYER_ENOMEM, "MANIFEST_UNKNOWN");
        return;
    }
    w->imgs = imgs;
    w->nimgs = n;
    w->d = d;
    w->flavour = flavour;
    w->by_digest = want != NULL;
    if (want != NULL)
        snprintf(w->want, sizeof(w->want), "%s", want);
    w->span = call->req->span;
    res->status = 200;
    res->producer.read = wait_read;
    res->producer.set_wake = wait_set_wake;
    res->producer.trailers = wait_trailers;
    res->producer.free = wait_free;
    res->producer.ctx = w;
    if (api_response_add_header(res, "Content-Type", manifest_type(flavour)) <
            0 ||
        (want != NULL &&
         api_response_add_header(res, "Docker-Content-Digest", want) < 0) ||
        (want == NULL &&
         api_response_add_header(res, "Trailer", "Docker-Content-Digest") < 0))
        api_registry__from_error(call, LAYER_ENOMEM, "MANIFEST_UNKNOWN");
}

void api_registry__manifest(api_call *call, const char *name,
                            const char *reference)
{
    reg_image **imgs = NULL;
    size_t n = 0;
    reg_describes *d = NULL;
    reg_manifest m;
    reg_flavour flavour;
    bool by_digest = strchr(reference, ':') != NULL;
    int rc;

    call->res->route = "/v2/{name}/manifests/{reference}";
    if (by_digest &&
        !api_registry__digest_syntax(reference, strlen(reference))) {
        api_registry__error(call, 400, "DIGEST_INVALID",
                            "provided digest is not a digest",
                            json_pack("{s:s}", "digest", reference));
        return;
    }
    if (!by_digest && !api_registry__tag_valid(reference, strlen(reference))) {
        api_registry__error(call, 400, "TAG_INVALID",
                            "manifest tag did not match URI",
                            json_pack("{s:s}", "tag", reference));
        return;
    }
    if (api_registry__flavour(&flavour, call) < 0) {
        api_registry__error(call, 404, "MANIFEST_UNKNOWN",
                            "manifest unknown: the Accept header lists "
                            "neither the OCI image manifest nor the Docker "
                            "schema 2 manifest",
                            NULL);
        return;
    }
    if (by_digest) {
        if ((rc = api_registry__repo_images(&imgs, &n, call, name)) < 0)
            return;
    } else {
        if ((imgs = layer_trycalloc(1, sizeof(*imgs))) == NULL) {
            api_registry__from_error(call, LAYER_ENOMEM, "MANIFEST_UNKNOWN");
            return;
        }
        if ((rc = api_registry__resolve(&imgs[0], call, name, reference)) < 0)
            goto out;
        n = 1;
    }
    if (by_digest &&
        !api_registry__digest_sha256(reference, strlen(reference))) {
        api_registry__error(call, 404, "MANIFEST_UNKNOWN", "manifest unknown",
                            json_pack("{s:s}", "digest", reference));
        goto out;
    }
    if ((rc = api_registry__describe_start(&d, call, imgs, n)) < 0)
        goto out;
    rc = api_registry__describe_poll(d, NULL, NULL);
    if (rc == LAYER_EAGAIN) {
        /* Before the status goes out: a layer that cannot be read at
         * all is an error now, not a cut stream later. */
        if ((rc = api_registry__describe_probe(d, call->ctx, imgs)) < 0) {
            api_registry__from_error(call, rc, "MANIFEST_UNKNOWN");
            goto out;
        }
        if (call->res->head) {
            /* The blobs are being made: the digest and length are not
             * known yet; a GET waits for them. */
            call->res->status = 200;
            (void)api_response_add_header(call->res, "Content-Type",
                                          manifest_type(flavour));
            goto out;
        }
        answer_waiting(call, imgs, n, d, flavour, by_digest ? reference : NULL);
        return;
    }
    if (rc < 0) {
        api_registry__from_error(call, rc, "MANIFEST_UNKNOWN");
        goto out;
    }
    rc = pick(&m, imgs, n, d, flavour, by_digest ? reference : NULL, by_digest);
    if (rc == LAYER_ENOTFOUND)
        api_registry__error(call, 404, "MANIFEST_UNKNOWN", "manifest unknown",
                            json_pack("{s:s}", "digest", reference));
    else if (rc < 0)
        api_registry__from_error(call, rc, "MANIFEST_UNKNOWN");
    else
        answer(call, &m, by_digest);
out:
    api_registry__describe_free(d);
    api_registry__images_free(imgs, n);
}
