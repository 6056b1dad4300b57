/*
 * Tests for the registry view (api/registry*.c) through api_handle() with
 * fake requests over the demo store: the grammars; GET /v2/; manifests by
 * tag and by digest in both flavours (Accept on one line or several), HEAD
 * with the GET's length and digest, If-None-Match; the minimal config and
 * its diff IDs equal to the exports' (decompressed) digests; blobs: layers
 * whose bytes hash to their digests, the config, Range, HEAD, a digest of
 * another repository; tags/list and _catalog with n/last and Link; every
 * error code; 405 UNSUPPORTED for push methods; and access control: 401
 * with a Basic challenge, the token as a Basic password, DENIED, hidden
 * layers as NAME_UNKNOWN.
 */
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/auth.h"
#include "api_harness.h"
#include "fixture.h"
#include "layer/blobcache.h"
#include "layer/digest.h"
#include "layer/error.h"
#include "../../api/registry_int.h"

#define OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

static char *root;
static ah_env env;
static layer_blobcache *cache;

/* The demo store, and a blob cache as the server has one. */
static void setup(void)
{
    char *store, *dir;
    api_context_opts opts;

    root = ah_demo_store();
    store = fx_path(root, "store");
    dir = fx_path(root, "cache");
    ck_assert_msg(layer_blobcache_open(&cache, dir, NULL) == 0, "%s",
                  layer_error_last());
    memset(&opts, 0, sizeof(opts));
    opts.cache = cache;
    opts.registry_compression = LAYER_COMPRESSION_GZIP;
    ah_open(&env, store, &opts);
    free(dir);
    free(store);
}

static void teardown(void)
{
    ah_close(&env);
    layer_blobcache_free(cache);
    fx_rm_rf(root);
    free(root);
}

/* METHOD path with up to two headers (NULL names: none). */
static void req2(api_response *res, const char *method, const char *path,
                 const char *h1, const char *v1, const char *h2, const char *v2)
{
    ah_fake f;

    memset(&f, 0, sizeof(f));
    f.headers[0][0] = h1;
    f.headers[0][1] = v1;
    if (h1 != NULL) {
        f.headers[1][0] = h2;
        f.headers[1][1] = v2;
    }
    ah_request(res, &env, method, path, &f);
}

static void get(api_response *res, const char *path)
{
    req2(res, "GET", path, NULL, NULL, NULL, NULL);
}

/* The body of a response (drained); free() it. */
static char *body_of(api_response *res, size_t *len)
{
    return ah_drain(res, 65536, len);
}

/* Check a registry error: status, JSON body with errors[0].code. */
static void assert_error(api_response *res, int status, const char *code)
{
    json_t *doc, *e;

    ck_assert_int_eq(res->status, status);
    ck_assert_str_eq(ah_header(res, "Content-Type"), "application/json");
    ck_assert_str_eq(ah_header(res, "Docker-Distribution-API-Version"),
                     "registry/2.0");
    doc = ah_body_json(res);
    e = json_array_get(json_object_get(doc, "errors"), 0);
    ck_assert_msg(e != NULL, "no errors[0]");
    ck_assert_str_eq(ah_jstr(e, "code"), code);
    ck_assert_ptr_nonnull(ah_jstr(e, "message"));
    json_decref(doc);
}

static void expect_error(const char *method, const char *path, int status,
                         const char *code)
{
    api_response res;

    req2(&res, method, path, NULL, NULL, NULL, NULL);
    assert_error(&res, status, code);
    api_response_dispose(&res);
}

/* The sha256 digest of bytes. */
static void digest_of(char out[LAYER_DIGEST_STR_SIZE], const void *p, size_t n)
{
    ck_assert_int_eq(layer_digest_buffer(out, p, n), 0);
}

/* GET a manifest; returns its JSON and its digest in out_digest. */
static json_t *manifest(const char *path, const char *accept,
                        const char *want_type, char *out_digest)
{
    api_response res;
    char *body, got[LAYER_DIGEST_STR_SIZE];
    const char *d;
    size_t len;
    json_t *doc;
    json_error_t jerr;

    req2(&res, "GET", path, accept != NULL ? "Accept" : NULL, accept, NULL,
         NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Content-Type"), want_type);
    body = body_of(&res, &len);
    digest_of(got, body, len);
    d = ah_header(&res, "Docker-Content-Digest");
    if (d == NULL)
        d = ah_trailer(&res, "Docker-Content-Digest");
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(d, got);
    doc = json_loadb(body, len, 0, &jerr);
    ck_assert_msg(doc != NULL, "manifest: %s", jerr.text);
    ck_assert_str_eq(ah_jstr(doc, "mediaType"), want_type);
    if (out_digest != NULL)
        snprintf(out_digest, LAYER_DIGEST_STR_SIZE, "%s", got);
    free(body);
    api_response_dispose(&res);
    return doc;
}

/* GET a blob; returns its bytes (free()) after checking its digest. */
static char *blob(const char *repo, const char *digest, size_t *len)
{
    api_response res;
    char path[512], got[LAYER_DIGEST_STR_SIZE], *body;

    snprintf(path, sizeof(path), "/v2/%s/blobs/%s", repo, digest);
    get(&res, path);
    ck_assert_msg(res.status == 200, "%s: %d", path, res.status);
    ck_assert_str_eq(ah_header(&res, "Content-Type"),
                     "application/octet-stream");
    body = body_of(&res, len);
    digest_of(got, body, *len);
    ck_assert_str_eq(got, digest);
    api_response_dispose(&res);
    return body;
}

START_TEST(test_grammars)
{
    static const char *const good_names[] = {
        "a", "layers/base", "docker.io/library/app", "a.b_c__d---e/f0"};
    static const char *const bad_names[] = {"",   "A",     "a/", "/a",   "a//b",
                                            "a_", "a___b", ".a", "a..b", "a/B"};

    for (size_t i = 0; i < sizeof(good_names) / sizeof(*good_names); i++)
        ck_assert_msg(
            api_registry__name_valid(good_names[i], strlen(good_names[i])),
            "%s", good_names[i]);
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++)
        ck_assert_msg(
            !api_registry__name_valid(bad_names[i], strlen(bad_names[i])), "%s",
            bad_names[i]);
    ck_assert(api_registry__tag_valid("latest", 6));
    ck_assert(api_registry__tag_valid("_A.b-1", 6));
    ck_assert(!api_registry__tag_valid(".x", 2));
    ck_assert(!api_registry__tag_valid("a:b", 3));
    {
        char t[130];

        memset(t, 'a', sizeof(t));
        ck_assert(api_registry__tag_valid(t, 128));
        ck_assert(!api_registry__tag_valid(t, 129));
    }
    ck_assert(api_registry__digest_syntax(
        "sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        71));
    ck_assert(!api_registry__digest_syntax(
        "sha256:"
        "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        71));
    ck_assert(!api_registry__digest_syntax("sha256:zz", 9));
    ck_assert(api_registry__digest_syntax("sha512+b64:AbC=", 15));
    ck_assert(!api_registry__digest_syntax("nocolon", 7));
    ck_assert(!api_registry__digest_syntax(":abc", 4));
}
END_TEST

START_TEST(test_base_answers_200_with_the_version)
{
    api_response res;
    size_t len;
    char *body;

    get(&res, "/v2/");
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Docker-Distribution-API-Version"),
                     "registry/2.0");
    body = body_of(&res, &len);
    ck_assert_str_eq(body, "{}");
    free(body);
    api_response_dispose(&res);
    get(&res, "/v2");
    ck_assert_int_eq(res.status, 200);
    api_response_dispose(&res);
}
END_TEST

/* The layers/app image: two gzip layers whose decompressed bytes are the
 * config's diff IDs, a minimal config, the same manifest on every
 * request, the Docker flavour for a Docker-only Accept. */
START_TEST(test_manifest_of_a_layer_image)
{
    json_t *m, *d, *layers, *config;
    char digest[LAYER_DIGEST_STR_SIZE], again[LAYER_DIGEST_STR_SIZE];
    char *cbytes;
    size_t clen;
    json_error_t jerr;

    m = manifest("/v2/layers/app/manifests/latest", NULL, OCI_MANIFEST, digest);
    layers = json_object_get(m, "layers");
    ck_assert_uint_eq(json_array_size(layers), 2);
    for (size_t i = 0; i < 2; i++)
        ck_assert_str_eq(ah_jstr(json_array_get(layers, i), "mediaType"),
                         "application/vnd.oci.image.layer.v1.tar+gzip");
    config = json_object_get(m, "config");
    ck_assert_str_eq(ah_jstr(config, "mediaType"),
                     "application/vnd.oci.image.config.v1+json");
    cbytes = blob("layers/app", ah_jstr(config, "digest"), &clen);
    ck_assert_int_eq(json_integer_value(json_object_get(config, "size")),
                     (json_int_t)clen);
    d = json_loadb(cbytes, clen, 0, &jerr);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(ah_jstr(d, "os"), "linux");
    ck_assert_ptr_nonnull(ah_jstr(d, "architecture"));
    ck_assert_str_eq(ah_jstr(json_object_get(d, "rootfs"), "type"), "layers");
    ck_assert_uint_eq(json_array_size(json_object_get(
                          json_object_get(d, "rootfs"), "diff_ids")),
                      2);
    ck_assert_uint_eq(json_array_size(json_object_get(d, "history")), 2);
    /* Each layer blob hashes to its digest; its tar's hash is the diff
     * ID (checked through the export route, which says it). */
    for (size_t i = 0; i < 2; i++) {
        const json_t *l = json_array_get(layers, i);
        const char *ids[] = {"base", "app"};
        char path[128], *b;
        size_t blen;
        api_response res;

        b = blob("layers/app", ah_jstr(l, "digest"), &blen);
        ck_assert_int_eq(json_integer_value(json_object_get(l, "size")),
                         (json_int_t)blen);
        free(b);
        snprintf(path, sizeof(path), "/layers/%s/export?compression=gzip",
                 ids[i]);
        get(&res, path);
        ck_assert_int_eq(res.status, 200);
        free(body_of(&res, &blen));
        ck_assert_str_eq(
            ah_trailer(&res, "X-Layer-Diff-Id") != NULL
                ? ah_trailer(&res, "X-Layer-Diff-Id")
                : ah_header(&res, "X-Layer-Diff-Id"),
            json_string_value(json_array_get(
                json_object_get(json_object_get(d, "rootfs"), "diff_ids"), i)));
        api_response_dispose(&res);
    }
    json_decref(d);
    free(cbytes);
    json_decref(m);

    m = manifest("/v2/layers/app/manifests/latest", NULL, OCI_MANIFEST, again);
    ck_assert_str_eq(digest, again);
    json_decref(m);

    m = manifest("/v2/layers/app/manifests/latest", DOCKER_MANIFEST,
                 DOCKER_MANIFEST, again);
    ck_assert_str_ne(digest, again);
    ck_assert_str_eq(
        ah_jstr(json_array_get(json_object_get(m, "layers"), 0), "mediaType"),
        "application/vnd.docker.image.rootfs.diff.tar.gzip");
    ck_assert_str_eq(ah_jstr(json_object_get(m, "config"), "mediaType"),
                     "application/vnd.docker.container.image.v1+json");
    json_decref(m);
    /* containerd's comma list, with OCI in it: OCI */
    m = manifest("/v2/layers/app/manifests/latest",
                 DOCKER_MANIFEST ", " OCI_MANIFEST ", */*", OCI_MANIFEST, NULL);
    json_decref(m);
}
END_TEST

/* Accept on several lines, as containers/image and docker send it. */
START_TEST(test_accept_on_several_lines)
{
    api_response res;
    size_t len;

    req2(&res, "GET", "/v2/layers/base/manifests/latest", "Accept",
         DOCKER_MANIFEST, "Accept", "application/vnd.oci.image.index.v1+json");
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Content-Type"), DOCKER_MANIFEST);
    free(body_of(&res, &len));
    api_response_dispose(&res);
    req2(&res, "GET", "/v2/layers/base/manifests/latest", "Accept",
         DOCKER_MANIFEST, "Accept", OCI_MANIFEST);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Content-Type"), OCI_MANIFEST);
    free(body_of(&res, &len));
    api_response_dispose(&res);
    req2(&res, "GET", "/v2/layers/base/manifests/latest", "Accept", "text/html",
         NULL, NULL);
    assert_error(&res, 404, "MANIFEST_UNKNOWN");
    api_response_dispose(&res);
}
END_TEST

/* By digest in both flavours; HEAD gives the GET's headers; a known
 * ETag gives 304; digest-addressed answers are immutable. */
START_TEST(test_manifest_by_digest_head_and_etag)
{
    char oci[LAYER_DIGEST_STR_SIZE], docker[LAYER_DIGEST_STR_SIZE];
    char path[256], etag[80], len_s[32];
    api_response res;
    json_t *m;
    size_t len;
    char *body;

    json_decref(
        manifest("/v2/layers/patch/manifests/latest", NULL, OCI_MANIFEST, oci));
    json_decref(manifest("/v2/layers/patch/manifests/latest", DOCKER_MANIFEST,
                         DOCKER_MANIFEST, docker));
    snprintf(path, sizeof(path), "/v2/layers/patch/manifests/%s", oci);
    m = manifest(path, NULL, OCI_MANIFEST, NULL);
    json_decref(m);
    get(&res, path);
    ck_assert_str_eq(ah_header(&res, "Cache-Control"),
                     "max-age=31536000, immutable");
    body = body_of(&res, &len);
    free(body);
    snprintf(len_s, sizeof(len_s), "%zu", len);
    api_response_dispose(&res);
    /* the Docker manifest's digest, whatever Accept says */
    snprintf(path, sizeof(path), "/v2/layers/patch/manifests/%s", docker);
    m = manifest(path, NULL, DOCKER_MANIFEST, NULL);
    json_decref(m);

    snprintf(path, sizeof(path), "/v2/layers/patch/manifests/%s", oci);
    req2(&res, "HEAD", path, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert(res.head);
    ck_assert(res.has_length);
    ck_assert_uint_eq(res.content_length, len);
    ck_assert_str_eq(ah_header(&res, "Docker-Content-Digest"), oci);
    api_response_dispose(&res);
    req2(&res, "HEAD", "/v2/layers/patch/manifests/latest", NULL, NULL, NULL,
         NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Docker-Content-Digest"), oci);
    ck_assert_ptr_null(ah_header(&res, "Cache-Control"));
    api_response_dispose(&res);

    snprintf(etag, sizeof(etag), "\"%s\"", oci);
    req2(&res, "GET", "/v2/layers/patch/manifests/latest", "If-None-Match",
         etag, NULL, NULL);
    ck_assert_int_eq(res.status, 304);
    api_response_dispose(&res);

    /* a digest of no manifest here; another algorithm */
    expect_error("GET",
                 "/v2/layers/patch/manifests/sha256:"
                 "0000000000000000000000000000000000000000000000000000000000"
                 "000000",
                 404, "MANIFEST_UNKNOWN");
    expect_error("GET", "/v2/layers/patch/manifests/sha512:abcd", 404,
                 "MANIFEST_UNKNOWN");
    expect_error("GET", "/v2/layers/patch/manifests/sha256:zz", 400,
                 "DIGEST_INVALID");
    expect_error("GET", "/v2/layers/patch/manifests/-bad", 400, "TAG_INVALID");
}
END_TEST

/* Range on a layer blob; HEAD; a blob of another repository is unknown
 * here. */
START_TEST(test_blob_range_head_and_scope)
{
    char digest[LAYER_DIGEST_STR_SIZE], path[256], expect_range[96];
    json_t *m;
    size_t len, plen;
    char *whole, *part;
    api_response res;

    m = manifest("/v2/layers/base/manifests/latest", NULL, OCI_MANIFEST, NULL);
    snprintf(
        digest, sizeof(digest), "%s",
        ah_jstr(json_array_get(json_object_get(m, "layers"), 0), "digest"));
    json_decref(m);
    whole = blob("layers/base", digest, &len);
    ck_assert_uint_gt(len, 100);
    snprintf(path, sizeof(path), "/v2/layers/base/blobs/%s", digest);

    req2(&res, "GET", path, "Range", "bytes=100-", NULL, NULL);
    ck_assert_int_eq(res.status, 206);
    snprintf(expect_range, sizeof(expect_range), "bytes 100-%zu/%zu", len - 1,
             len);
    ck_assert_str_eq(ah_header(&res, "Content-Range"), expect_range);
    part = body_of(&res, &plen);
    ck_assert_uint_eq(plen, len - 100);
    ck_assert_int_eq(memcmp(part, whole + 100, plen), 0);
    free(part);
    api_response_dispose(&res);

    req2(&res, "GET", path, "Range", "bytes=999999999-", NULL, NULL);
    ck_assert_int_eq(res.status, 416);
    api_response_dispose(&res);

    req2(&res, "HEAD", path, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert(res.has_length);
    ck_assert_uint_eq(res.content_length, len);
    ck_assert_str_eq(ah_header(&res, "Docker-Content-Digest"), digest);
    api_response_dispose(&res);
    free(whole);

    /* base's blob belongs to layers/app (its parent); app's own layer
     * does not belong to layers/base */
    free(blob("layers/app", digest, &len));
    m = manifest("/v2/layers/app/manifests/latest", NULL, OCI_MANIFEST, NULL);
    snprintf(
        path, sizeof(path), "/v2/layers/base/blobs/%s",
        ah_jstr(json_array_get(json_object_get(m, "layers"), 1), "digest"));
    json_decref(m);
    expect_error("GET", path, 404, "BLOB_UNKNOWN");
    expect_error("GET",
                 "/v2/layers/base/blobs/sha256:"
                 "00000000000000000000000000000000000000000000000000000000000"
                 "00000",
                 404, "BLOB_UNKNOWN");
    expect_error("GET", "/v2/layers/base/blobs/sha256:xyz", 400,
                 "DIGEST_INVALID");
    /* every reader's descriptors went back to the pool (a fill's, once
     * its background end is over) */
    for (int i = 0; i < 200 && api_fds_held(env.ctx) > 0; i++)
        usleep(10000);
    ck_assert_uint_eq(api_fds_held(env.ctx), 0);
    expect_error("GET", "/v2/layers/base/blobs/nodigest", 400,
                 "DIGEST_INVALID");
}
END_TEST

/* n and last: exclusive, Link only when more remain, never for n=0. */
START_TEST(test_catalog_and_tags_pagination)
{
    api_response res;
    json_t *doc;

    get(&res, "/v2/_catalog");
    ck_assert_int_eq(res.status, 200);
    doc = ah_body_json(&res);
    ck_assert(ah_json_is(doc, "{\"repositories\": [\"layers/app\", "
                              "\"layers/base\", \"layers/patch\", "
                              "\"layers/snap-base\", \"layers/snap-top\"]}"));
    json_decref(doc);
    ck_assert_ptr_null(ah_header(&res, "Link"));
    api_response_dispose(&res);

    {
        ah_fake f;

        memset(&f, 0, sizeof(f));
        f.query[0][0] = "n";
        f.query[0][1] = "2";
        ah_request(&res, &env, "GET", "/v2/_catalog", &f);
    }
    doc = ah_body_json(&res);
    ck_assert(ah_json_is(
        doc, "{\"repositories\": [\"layers/app\", \"layers/base\"]}"));
    json_decref(doc);
    ck_assert_str_eq(ah_header(&res, "Link"),
                     "</v2/_catalog?last=layers%2Fbase&n=2>; rel=\"next\"");
    api_response_dispose(&res);

    {
        ah_fake f;

        memset(&f, 0, sizeof(f));
        f.query[0][0] = "n";
        f.query[0][1] = "2";
        f.query[1][0] = "last";
        f.query[1][1] = "layers/patch";
        ah_request(&res, &env, "GET", "/v2/_catalog", &f);
        doc = ah_body_json(&res);
        ck_assert(ah_json_is(doc, "{\"repositories\": [\"layers/snap-base\", "
                                  "\"layers/snap-top\"]}"));
        json_decref(doc);
        ck_assert_ptr_null(ah_header(&res, "Link"));
        api_response_dispose(&res);

        f.query[0][1] = "0";
        ah_request(&res, &env, "GET", "/v2/_catalog", &f);
        doc = ah_body_json(&res);
        ck_assert(ah_json_is(doc, "{\"repositories\": []}"));
        json_decref(doc);
        ck_assert_ptr_null(ah_header(&res, "Link"));
        api_response_dispose(&res);

        f.query[0][1] = "-1";
        ah_request(&res, &env, "GET", "/v2/_catalog", &f);
        assert_error(&res, 400, "PAGINATION_NUMBER_INVALID");
        api_response_dispose(&res);

        f.query[0][1] = "1";
        f.query[1][1] = "latest";
        ah_request(&res, &env, "GET", "/v2/layers/app/tags/list", &f);
        doc = ah_body_json(&res);
        ck_assert(ah_json_is(doc, "{\"name\": \"layers/app\", \"tags\": []}"));
        json_decref(doc);
        api_response_dispose(&res);
    }
    get(&res, "/v2/layers/app/tags/list");
    doc = ah_body_json(&res);
    ck_assert(
        ah_json_is(doc, "{\"name\": \"layers/app\", \"tags\": [\"latest\"]}"));
    json_decref(doc);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_error_codes_and_push_methods)
{
    static const char *const push[] = {"POST", "PUT", "PATCH", "DELETE"};
    static const char *const paths[] = {
        "/v2/layers/app/blobs/uploads/", "/v2/layers/app/manifests/latest",
        "/v2/layers/app/blobs/sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000",
        "/v2/"};
    api_response res;

    expect_error("GET", "/v2/layers/nope/manifests/latest", 404,
                 "NAME_UNKNOWN");
    expect_error("GET", "/v2/nope/tags/list", 404, "NAME_UNKNOWN");
    expect_error("GET", "/v2/layers/app/manifests/v1", 404, "MANIFEST_UNKNOWN");
    expect_error("GET", "/v2/Layers/App/manifests/latest", 400, "NAME_INVALID");
    expect_error("GET", "/v2/a__-b/tags/list", 400, "NAME_INVALID");
    expect_error("GET", "/v2/layers/app/unknown", 404, "NAME_UNKNOWN");
    for (size_t m = 0; m < 4; m++) {
        for (size_t p = 0; p < 4; p++) {
            req2(&res, push[m], paths[p], NULL, NULL, NULL, NULL);
            assert_error(&res, 405, "UNSUPPORTED");
            ck_assert_str_eq(ah_header(&res, "Allow"), "GET, HEAD");
            api_response_dispose(&res);
        }
    }
    /* HEAD of an error: the GET's length, no body sent */
    req2(&res, "HEAD", "/v2/layers/nope/manifests/latest", NULL, NULL, NULL,
         NULL);
    ck_assert_int_eq(res.status, 404);
    ck_assert(res.has_length);
    ck_assert_uint_gt(res.content_length, 0);
    api_response_dispose(&res);
}
END_TEST

static void digest_hex(char out[65], const char *token)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[32];
    unsigned int n = 0;

    ck_assert(EVP_Digest(token, strlen(token), d, &n, EVP_sha256(), NULL));
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

/* Under a policy: anonymous gets 401 with a Basic challenge (on /v2/
 * too); the token as a Basic password works; a wrong one is 401; a
 * grant to list but not read is DENIED; a layer the principal may not
 * see is NAME_UNKNOWN, as a missing one. */
START_TEST(test_access_control)
{
    char hex[65], *doc = NULL, *store;
    api_policy *p = NULL;
    api_auth *auth = NULL;
    api_context_opts opts;
    api_response res;
    ah_env saved = env;
    /* base64("agent:t-agent"), base64("x:wrong"), base64("x:t-lister") */
    const char *good = "Basic YWdlbnQ6dC1hZ2VudA==";
    const char *bad = "Basic eDp3cm9uZw==";
    const char *lister = "Basic eDp0LWxpc3Rlcg==";
    char lister_hex[65];

    digest_hex(hex, "t-agent");
    digest_hex(lister_hex, "t-lister");
    ck_assert(asprintf(&doc,
                       "{\"principals\": ["
                       "{\"name\": \"agent\", \"tokens_sha256\": [\"%s\"], "
                       "\"grants\": [{\"layers\": [\"base\", \"app\"], "
                       "\"ops\": [\"list\", \"read\"]}]},"
                       "{\"name\": \"lister\", \"tokens_sha256\": [\"%s\"], "
                       "\"grants\": [{\"layers\": [\"*\"], "
                       "\"ops\": [\"list\"]}]}]}",
                       hex, lister_hex) > 0);
    ck_assert_int_eq(api_policy_parse(&p, doc, strlen(doc), NULL), 0);
    free(doc);
    ck_assert_int_eq(api_auth_new(&auth, p), 0);
    memset(&opts, 0, sizeof(opts));
    opts.auth = auth;
    opts.cache = cache;
    opts.registry_compression = LAYER_COMPRESSION_GZIP;
    store = fx_path(root, "store");
    ah_open(&env, store, &opts);
    free(store);

    req2(&res, "GET", "/v2/", NULL, NULL, NULL, NULL);
    assert_error(&res, 401, "UNAUTHORIZED");
    ck_assert_ptr_nonnull(ah_header(&res, "WWW-Authenticate"));
    ck_assert(
        strncmp(ah_header(&res, "WWW-Authenticate"), "Basic realm=", 12) == 0);
    api_response_dispose(&res);
    req2(&res, "GET", "/v2/", "Authorization", good, NULL, NULL);
    ck_assert_int_eq(res.status, 200);
    api_response_dispose(&res);
    req2(&res, "GET", "/v2/", "Authorization", bad, NULL, NULL);
    assert_error(&res, 401, "UNAUTHORIZED");
    api_response_dispose(&res);
    req2(&res, "GET", "/v2/layers/app/manifests/latest", "Authorization", bad,
         NULL, NULL);
    assert_error(&res, 401, "UNAUTHORIZED");
    api_response_dispose(&res);
    req2(&res, "GET", "/v2/layers/app/manifests/latest", NULL, NULL, NULL,
         NULL);
    assert_error(&res, 401, "UNAUTHORIZED");
    api_response_dispose(&res);

    req2(&res, "GET", "/v2/layers/app/manifests/latest", "Authorization", good,
         NULL, NULL);
    ck_assert_int_eq(res.status, 200);
    free(ah_drain(&res, 65536, &(size_t){0}));
    api_response_dispose(&res);
    /* patch's chain is readable but patch is not: hidden */
    req2(&res, "GET", "/v2/layers/patch/manifests/latest", "Authorization",
         good, NULL, NULL);
    assert_error(&res, 404, "NAME_UNKNOWN");
    api_response_dispose(&res);
    req2(&res, "GET", "/v2/_catalog", "Authorization", good, NULL, NULL);
    {
        json_t *j = ah_body_json(&res);

        ck_assert(ah_json_is(
            j, "{\"repositories\": [\"layers/app\", \"layers/base\"]}"));
        json_decref(j);
    }
    api_response_dispose(&res);
    req2(&res, "GET", "/v2/layers/app/manifests/latest", "Authorization",
         lister, NULL, NULL);
    assert_error(&res, 403, "DENIED");
    api_response_dispose(&res);

    ah_close(&env);
    env = saved;
    api_auth_free(auth);
}
END_TEST

/* Open env over store with an empty blob cache at dir: *c (any earlier
 * one freed, its files removed) becomes opts->cache. */
static void open_empty_cache(layer_blobcache **c, const char *dir,
                             api_context_opts *opts, const char *store)
{
    layer_blobcache_free(*c);
    *c = NULL;
    fx_rm_rf(dir);
    ck_assert_int_eq(layer_blobcache_open(c, dir, NULL), 0);
    opts->cache = *c;
    ah_open(&env, store, opts);
}

/* A blob asked for before its manifest (or after the cache lost it): the
 * repository's blobs are made and the one asked for streams once it is
 * known; a digest none of them has cuts the stream (its status went
 * out first). */
START_TEST(test_cold_blobs_stream_once_made)
{
    char ldigest[LAYER_DIGEST_STR_SIZE], cdigest[LAYER_DIGEST_STR_SIZE];
    char bdigest[LAYER_DIGEST_STR_SIZE];
    char path[256], got[LAYER_DIGEST_STR_SIZE], *dir, *store;
    layer_blobcache *fresh = NULL;
    api_context_opts opts;
    ah_env saved = env;
    ah_drained d;
    api_response res;
    json_t *m;

    m = manifest("/v2/layers/app/manifests/latest", NULL, OCI_MANIFEST, NULL);
    snprintf(
        ldigest, sizeof(ldigest), "%s",
        ah_jstr(json_array_get(json_object_get(m, "layers"), 1), "digest"));
    snprintf(cdigest, sizeof(cdigest), "%s",
             ah_jstr(json_object_get(m, "config"), "digest"));
    snprintf(
        bdigest, sizeof(bdigest), "%s",
        ah_jstr(json_array_get(json_object_get(m, "layers"), 0), "digest"));
    json_decref(m);

    /* the same store, an empty cache */
    dir = fx_path(root, "cache2");
    memset(&opts, 0, sizeof(opts));
    opts.registry_compression = LAYER_COMPRESSION_GZIP;
    store = fx_path(root, "store");
    open_empty_cache(&fresh, dir, &opts, store);

    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/v2/layers/app/blobs/%s",
                 i == 0 ? ldigest : cdigest);
        get(&res, path);
        ck_assert_int_eq(res.status, 200);
        ah_drain_result(&d, &res, 4096);
        ck_assert_int_eq(d.result, API_PRODUCE_END);
        digest_of(got, d.body, d.len);
        ck_assert_str_eq(got, i == 0 ? ldigest : cdigest);
        free(d.body);
        api_response_dispose(&res);
    }
    ah_close(&env);

    /* an unknown digest, cold: the stream is cut, never ended (or, when
     * the blobs were made by the time the handler looked, 404) */
    open_empty_cache(&fresh, dir, &opts, store);
    get(&res,
        "/v2/layers/app/blobs/"
        "sha256:"
        "0000000000000000000000000000000000000000000000000000000000000000");
    if (res.status == 404) {
        /* the blobs were made before the handler looked: known now */
        assert_error(&res, 404, "BLOB_UNKNOWN");
    } else {
        ck_assert_int_eq(res.status, 200);
        ah_drain_result(&d, &res, 4096);
        ck_assert_int_eq(d.result, API_PRODUCE_ERROR);
        free(d.body);
    }
    api_response_dispose(&res);
    ah_close(&env);

    open_empty_cache(&fresh, dir, &opts, store);
    /* HEAD, cold: a blob made already (base's, by base's manifest) is
     * known, whatever the others of the repository do */
    json_decref(
        manifest("/v2/layers/base/manifests/latest", NULL, OCI_MANIFEST, NULL));
    snprintf(path, sizeof(path), "/v2/layers/app/blobs/%s", bdigest);
    req2(&res, "HEAD", path, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert(res.has_length);
    ck_assert_str_eq(ah_header(&res, "Docker-Content-Digest"), bdigest);
    api_response_dispose(&res);
    /* app's own blob: unknown while it is made (or, if its fill was that
     * quick, known and right) */
    snprintf(path, sizeof(path), "/v2/layers/app/blobs/%s", ldigest);
    req2(&res, "HEAD", path, NULL, NULL, NULL, NULL);
    ck_assert_msg(
        res.status == 404 ||
            (res.status == 200 &&
             strcmp(ah_header(&res, "Docker-Content-Digest"), ldigest) == 0),
        "HEAD of a blob being made: %d", res.status);
    api_response_dispose(&res);
    ah_close(&env);
    layer_blobcache_free(fresh);
    free(dir);
    free(store);
    env = saved;
}
END_TEST

/*
 * A containers-storage store made by hand: layers l1 <- l2 (overlay
 * diffs, each with a file), one image named "docker.io/library/app:1.0"
 * and "localhost/other:2" whose config names diff IDs the canonical tars
 * do not have, and one named "layers/x:1" (the layer images' namespace:
 * not served). A context with a cache over it replaces env's.
 */
static void cs_images_store(ah_env *e,
                            char config_digest[LAYER_DIGEST_STR_SIZE])
{
    static const char *const config =
        "{\"architecture\":\"amd64\",\"os\":\"linux\","
        "\"config\":{\"Env\":[\"A=1\"]},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
        "\"sha256:"
        "1111111111111111111111111111111111111111111111111111111111111111\","
        "\"sha256:"
        "2222222222222222222222222222222222222222222222222222222222222222\"]}}";
    char *cs = fx_path(root, "cs"), *spec = NULL, *doc = NULL, *key = NULL;
    char file[256];
    unsigned char b64[160];
    api_context_opts opts;

    fx_mkdir(root, "cs", 0755);
    fx_mkdir(cs, "overlay-layers", 0755);
    fx_file(cs, "overlay-layers/layers.json",
            "[{\"id\":\"l1\",\"created\":\"2026-01-01T00:00:00Z\"},"
            "{\"id\":\"l2\",\"parent\":\"l1\"}]",
            0644);
    fx_mkdir(cs, "overlay", 0755);
    fx_mkdir(cs, "overlay/l1", 0755);
    fx_mkdir(cs, "overlay/l1/diff", 0755);
    fx_file(cs, "overlay/l1/diff/one", "1", 0644);
    fx_mkdir(cs, "overlay/l2", 0755);
    fx_mkdir(cs, "overlay/l2/diff", 0755);
    fx_file(cs, "overlay/l2/diff/two", "2", 0644);
    digest_of(config_digest, config, strlen(config));
    fx_mkdir(cs, "overlay-images", 0755);
    ck_assert(asprintf(&key, "overlay-images/%s", config_digest + 7) > 0);
    fx_mkdir(cs, key, 0700);
    EVP_EncodeBlock(b64, (const unsigned char *)config_digest,
                    (int)strlen(config_digest));
    snprintf(file, sizeof(file), "%s/=%s", key, b64);
    fx_file(cs, file, config, 0600);
    ck_assert(asprintf(&doc,
                       "[{\"id\":\"%s\",\"names\":[\"docker.io/library/"
                       "app:1.0\",\"localhost/other:2\",\"layers/x:1\"],"
                       "\"layer\":\"l2\",\"big-data-names\":[\"%s\"]}]",
                       config_digest + 7, config_digest) > 0);
    fx_file(cs, "overlay-images/images.json", doc, 0644);

    memset(e, 0, sizeof(*e));
    ck_assert(asprintf(&spec, "containers-storage:%s", cs) > 0);
    ck_assert_msg(layer_store_open(&e->store, spec) == 0, "%s",
                  layer_error_last());
    e->store_dir = strdup(cs);
    memset(&opts, 0, sizeof(opts));
    opts.store = e->store;
    opts.cache = cache;
    opts.registry_compression = LAYER_COMPRESSION_GZIP;
    ck_assert_int_eq(api_context_new(&e->ctx, &opts), 0);
    api_set_ready(e->ctx, true);
    free(spec);
    free(doc);
    free(key);
    free(cs);
}

/* The images a store knows: under their names and Docker's spellings;
 * their own config, rewritten with the served diff IDs (everything else
 * kept, the manifest saying so); not in the layer images' namespace. */
START_TEST(test_store_images_by_name)
{
    static const char *const spellings[] = {"app", "library/app",
                                            "docker.io/library/app"};
    char cdigest[LAYER_DIGEST_STR_SIZE], path[256];
    ah_env saved = env;
    api_response res;
    json_t *m, *doc, *c;
    char *bytes;
    size_t len;

    cs_images_store(&env, cdigest);
    get(&res, "/v2/_catalog");
    doc = ah_body_json(&res);
    ck_assert_msg(ah_json_is(doc, "{\"repositories\": ["
                                  "\"docker.io/library/app\", \"layers/l1\", "
                                  "\"layers/l2\", \"localhost/other\"]}"),
                  "%s", json_dumps(doc, 0));
    json_decref(doc);
    api_response_dispose(&res);
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/v2/%s/tags/list", spellings[i]);
        get(&res, path);
        ck_assert_int_eq(res.status, 200);
        doc = ah_body_json(&res);
        ck_assert_str_eq(ah_jstr(doc, "name"), spellings[i]);
        ck_assert_str_eq(
            json_string_value(json_array_get(json_object_get(doc, "tags"), 0)),
            "1.0");
        json_decref(doc);
        api_response_dispose(&res);
    }
    m = manifest("/v2/localhost/other/manifests/2", NULL, OCI_MANIFEST, NULL);
    json_decref(m);
    m = manifest("/v2/app/manifests/1.0", NULL, OCI_MANIFEST, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(m, "layers")), 2);
    ck_assert_str_ne(ah_jstr(json_object_get(m, "config"), "digest"), cdigest);
    ck_assert_str_eq(
        ah_jstr(json_object_get(m, "annotations"), REG_ANNOTATION_SOURCE),
        cdigest);
    ck_assert_ptr_nonnull(
        ah_jstr(json_object_get(m, "annotations"), REG_ANNOTATION_REWRITTEN));
    bytes = blob("app", ah_jstr(json_object_get(m, "config"), "digest"), &len);
    c = json_loadb(bytes, len, 0, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(ah_jstr(c, "architecture"), "amd64");
    ck_assert_str_eq(
        json_string_value(json_array_get(
            json_object_get(json_object_get(c, "config"), "Env"), 0)),
        "A=1");
    for (size_t i = 0; i < 2; i++) {
        const char *d = json_string_value(json_array_get(
            json_object_get(json_object_get(c, "rootfs"), "diff_ids"), i));

        ck_assert_ptr_nonnull(d);
        ck_assert(strncmp(d, "sha256:1111", 11) != 0 &&
                  strncmp(d, "sha256:2222", 11) != 0);
    }
    json_decref(c);
    free(bytes);
    json_decref(m);

    expect_error("GET", "/v2/app/manifests/2.0", 404, "MANIFEST_UNKNOWN");
    expect_error("GET", "/v2/nope/manifests/1.0", 404, "NAME_UNKNOWN");
    expect_error("GET", "/v2/layers/x/manifests/1", 404, "NAME_UNKNOWN");
    expect_error("GET", "/v2/layers/x/tags/list", 404, "NAME_UNKNOWN");
    ah_close(&env);
    env = saved;
}
END_TEST

static Suite *registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("v2");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_grammars);
    tcase_add_test(tc, test_base_answers_200_with_the_version);
    tcase_add_test(tc, test_manifest_of_a_layer_image);
    tcase_add_test(tc, test_accept_on_several_lines);
    tcase_add_test(tc, test_manifest_by_digest_head_and_etag);
    tcase_add_test(tc, test_blob_range_head_and_scope);
    tcase_add_test(tc, test_catalog_and_tags_pagination);
    tcase_add_test(tc, test_error_codes_and_push_methods);
    tcase_add_test(tc, test_access_control);
    tcase_add_test(tc, test_store_images_by_name);
    tcase_add_test(tc, test_cold_blobs_stream_once_made);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(registry_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
