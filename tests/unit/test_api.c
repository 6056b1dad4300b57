/*
 * Tests for api/: api_handle() driven with fake requests (header and
 * query callbacks over small tables, no sockets) against the demo store
 * that tests/fixtures/mkdemo.sh builds. They pin statuses, media types,
 * problem bodies, the 405 Allow header, export negotiation (400/406),
 * the export concurrency cap, pagination of /layers, the entries stream
 * (NDJSON and array, byte-exact against the reader, prefix/after/limit),
 * and single entries (api/files.c has its own tests, test_files.c).
 * Requests and draining go through the shared harness (api_harness.h).
 */
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/api_int.h"
#include "api/api.h"
#include "api/entry_json.h"
#include "api/metrics.h"
#include "api/urlpath.h"
#include "api_harness.h"
#include "layer/export.h"
#include "fixture.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/reader.h"
#include "layer/store.h"
#include "layer/trace.h"

/* ---- the demo store, built once per test case ---- */

static char *demo_root;
static api_metrics *metrics;
static char *openapi;
static ah_env env;

static void demo_setup(void)
{
    api_context_opts opts;
    char *store_path;

    demo_root = ah_demo_store();
    store_path = fx_path(demo_root, "store");
    ck_assert_int_eq(api_metrics_new(&metrics, NULL), 0);
    ck_assert(
        asprintf(&openapi, "%s/openapi.yaml", getenv("LAYERD_SOURCE_DIR")) > 0);
    memset(&opts, 0, sizeof(opts));
    opts.metrics = metrics;
    opts.openapi_path = openapi;
    opts.max_exports = 4;
    opts.export_retry_after = 7;
    ah_open(&env, store_path, &opts);
    free(store_path);
}

static void demo_teardown(void)
{
    ah_close(&env);
    api_metrics_free(metrics);
    free(openapi);
    fx_rm_rf(demo_root);
    free(demo_root);
}

/* Each test runs with a request span of its own, on a ready server. */
static void span_setup(void)
{
    ck_assert_int_eq(layer_span_start(&env.span, NULL, NULL, "http.request"),
                     0);
    api_set_ready(env.ctx, true);
}

static void span_teardown(void)
{
    layer_span_end(env.span);
    env.span = NULL;
}

static void request(api_response *res, const char *method, const char *path,
                    const ah_fake *f)
{
    ah_request(res, &env, method, path, f);
}

static void get(api_response *res, const char *path, const ah_fake *f)
{
    ah_request(res, &env, "GET", path, f);
}

/* ---- the expected changeset, straight from the reader ---- */

typedef struct expected {
    char **lines; /* compact JSON of each entry, no newline */
    char **paths;
    size_t n;
} expected;

static void expected_free(expected *x);

static void expected_load_once(expected *x, const char *id)
{
    layer_info *info = NULL;
    layer_reader *r = NULL;
    const layer_entry *e;
    int rc;

    memset(x, 0, sizeof(*x));
    ck_assert_int_eq(layer_store_resolve(&info, env.store, id), 0);
    ck_assert_int_eq(layer_reader_open(&r, &info->layer, info->parents,
                                       info->nparents, NULL),
                     0);
    while ((rc = layer_reader_next(&e, r)) == 0) {
        json_t *j = api_entry_json(e);

        ck_assert_ptr_nonnull(j);
        x->lines = realloc(x->lines, (x->n + 1) * sizeof(char *));
        x->paths = realloc(x->paths, (x->n + 1) * sizeof(char *));
        x->lines[x->n] = json_dumps(j, JSON_COMPACT);
        x->paths[x->n] = strdup(e->path);
        x->n++;
        json_decref(j);
    }
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    layer_reader_free(r);
    layer_info_free(info);
    ck_assert_uint_gt(x->n, 0);
}

/*
 * The first walk of a fresh tree moves the atime of its symlinks and
 * directories (readlink and getdents under relatime), so the entries are
 * read twice and the second, stable, walk is what the API must match.
 */
static void expected_load(expected *x, const char *id)
{
    expected_load_once(x, id);
    expected_free(x);
    expected_load_once(x, id);
}

static void expected_free(expected *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->lines[i]);
        free(x->paths[i]);
    }
    free(x->lines);
    free(x->paths);
}

/* NDJSON of the expected entries i with keep(i) true. */
static char *expected_ndjson(const expected *x, bool (*keep)(const char *),
                             size_t max)
{
    size_t len = 0, count = 0;
    char *out = malloc(1);

    out[0] = '\0';
    for (size_t i = 0; i < x->n && (max == 0 || count < max); i++) {
        size_t n = strlen(x->lines[i]);

        if (keep != NULL && !keep(x->paths[i]))
            continue;
        out = realloc(out, len + n + 2);
        memcpy(out + len, x->lines[i], n);
        out[len + n] = '\n';
        len += n + 1;
        out[len] = '\0';
        count++;
    }
    return out;
}

/* Like ck_assert_str_eq, but reports where long texts first differ
 * (Check cannot carry messages of many kilobytes). */
static void assert_same_text(const char *got, const char *want)
{
    size_t i = 0;

    while (got[i] != '\0' && got[i] == want[i])
        i++;
    ck_assert_msg(got[i] == want[i],
                  "texts differ at byte %zu (lengths %zu, %zu):\n got: "
                  "%.160s\nwant: %.160s",
                  i, strlen(got), strlen(want), got + (i > 40 ? i - 40 : 0),
                  want + (i > 40 ? i - 40 : 0));
}

static size_t count_lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* ---- health, routing, problems ---- */

START_TEST(test_healthz_answers_ok_json)
{
    api_response res;
    json_t *j;
    char tp[56];

    get(&res, "/healthz", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Content-Type"), "application/json");
    ck_assert_str_eq(res.route, "/healthz");
    layer_traceparent_format(env.span, tp);
    ck_assert_str_eq(ah_header(&res, "traceparent"), tp);
    j = ah_body_json(&res);
    ck_assert_str_eq(ah_jstr(j, "status"), "ok");
    json_decref(j);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_readyz_follows_the_ready_flag)
{
    api_response res;

    get(&res, "/readyz", NULL);
    ck_assert_int_eq(res.status, 200);
    api_response_dispose(&res);
    api_set_ready(env.ctx, false);
    get(&res, "/readyz", NULL);
    ah_assert_problem(&env, &res, 503, "not-ready", "/readyz");
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_openapi_is_served_as_yaml)
{
    api_response res;

    get(&res, "/openapi.yaml", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Content-Type"), "application/yaml");
    ck_assert_uint_gt(res.body_len, 1000);
    ck_assert_int_eq(strncmp(res.body, "openapi: 3.1", 12), 0);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_metrics_are_prometheus_text)
{
    api_response res;

    get(&res, "/metrics", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Content-Type"),
                     "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(res.body, "layerd_exports_active"));
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_unknown_path_is_a_404_problem)
{
    api_response res;

    get(&res, "/nope", NULL);
    ah_assert_problem(&env, &res, 404, NULL, "/nope");
    ck_assert_str_eq(res.route, "unmatched");
    ck_assert_ptr_nonnull(ah_header(&res, "traceparent"));
    api_response_dispose(&res);
    get(&res, "/layers/", NULL);
    ah_assert_problem(&env, &res, 404, NULL, "/layers/");
    api_response_dispose(&res);
    get(&res, "/layers/base/bogus", NULL);
    ah_assert_problem(&env, &res, 404, NULL, "/layers/base/bogus");
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_other_methods_get_405_with_allow)
{
    static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH",
                                          "OPTIONS"};

    for (size_t i = 0; i < 5; i++) {
        api_response res;

        request(&res, methods[i], "/layers/base", NULL);
        ah_assert_problem(&env, &res, 405, NULL, "/layers/base");
        ck_assert_str_eq(ah_header(&res, "Allow"), "GET, HEAD");
        ck_assert_str_eq(res.route, "/layers/{id}");
        api_response_dispose(&res);
    }
}
END_TEST

START_TEST(test_head_answers_like_get_with_head_set)
{
    api_response res;

    request(&res, "HEAD", "/layers/base", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert(res.head);
    ck_assert(res.has_length);
    ck_assert_str_eq(ah_header(&res, "Content-Type"), "application/json");
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_malformed_paths_are_400)
{
    api_response res;

    get(&res, "/layers/%zz", NULL);
    ah_assert_problem(&env, &res, 400, "invalid-request", "/layers/%zz");
    api_response_dispose(&res);
    get(&res, "/layers/a%00b", NULL);
    ah_assert_problem(&env, &res, 400, "invalid-request", "/layers/a%00b");
    api_response_dispose(&res);
    /* an escaped '/' never splits an id: it is one malformed id */
    get(&res, "/layers/a%2Fb", NULL);
    ah_assert_problem(&env, &res, 400, "invalid-id", "/layers/a%2Fb");
    api_response_dispose(&res);
    get(&res, "/layers/..", NULL);
    ah_assert_problem(&env, &res, 400, "invalid-id", "/layers/..");
    api_response_dispose(&res);
    get(&res, "/layers/%2e%2e/entries", NULL);
    ah_assert_problem(&env, &res, 400, "invalid-id", "/layers/%2e%2e/entries");
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_overlong_paths_are_414)
{
    size_t n = API_URLPATH_MAX + 16;
    char *p = malloc(n + 1);
    api_response res;

    memcpy(p, "/layers/base/files/", 19);
    memset(p + 19, 'a', n - 19);
    p[n] = '\0';
    get(&res, p, NULL);
    ck_assert_int_eq(res.status, 414);
    ck_assert_str_eq(ah_header(&res, "Content-Type"),
                     "application/problem+json");
    api_response_dispose(&res);
    free(p);
}
END_TEST

START_TEST(test_literal_segments_match_after_one_decode)
{
    api_response res;

    get(&res, "/l%61yers/base", NULL);
    ck_assert_int_eq(res.status, 200);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_error_codes_map_to_statuses_in_one_place)
{
    ck_assert_int_eq(api_problem__status(LAYER_ENOTFOUND), 404);
    ck_assert_int_eq(api_problem__status(LAYER_EINVALID), 400);
    ck_assert_int_eq(api_problem__status(LAYER_EUNSUPPORTED), 422);
    ck_assert_int_eq(api_problem__status(LAYER_ETOOBIG), 422);
    ck_assert_int_eq(api_problem__status(LAYER_EBROKEN), 500);
    ck_assert_int_eq(api_problem__status(LAYER_EBUSY), 503);
    ck_assert_int_eq(api_problem__status(LAYER_ECHANGED), 409);
    ck_assert_int_eq(api_problem__status(LAYER_ERROR), 500);
    ck_assert_int_eq(api_problem__status(-999), 500);
}
END_TEST

/* ---- /layers ---- */

static json_t *layer_ids(json_t *doc)
{
    json_t *ids = json_array(), *l;
    size_t i;

    json_array_foreach(json_object_get(doc, "layers"), i, l)
        json_array_append_new(ids, json_string(ah_jstr(l, "id")));
    return ids;
}

START_TEST(test_layers_are_paginated_in_id_order)
{
    api_response res;
    ah_fake f = {.query = {{"limit", "2"}}};
    json_t *j, *ids;

    get(&res, "/layers", &f);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Link"),
                     "</layers?limit=2&after=base>; rel=\"next\"");
    j = ah_body_json(&res);
    ids = layer_ids(j);
    ck_assert(ah_json_is(ids, "[\"app\", \"base\"]"));
    ck_assert_str_eq(ah_jstr(j, "next"), "base");
    json_decref(ids);
    json_decref(j);
    api_response_dispose(&res);

    f.query[1][0] = "after";
    f.query[1][1] = "base";
    get(&res, "/layers", &f);
    j = ah_body_json(&res);
    ids = layer_ids(j);
    ck_assert(ah_json_is(ids, "[\"patch\", \"snap-base\"]"));
    ck_assert_str_eq(ah_jstr(j, "next"), "snap-base");
    json_decref(ids);
    json_decref(j);
    api_response_dispose(&res);

    f.query[1][1] = "snap-base";
    get(&res, "/layers", &f);
    ck_assert_ptr_null(ah_header(&res, "Link"));
    j = ah_body_json(&res);
    ids = layer_ids(j);
    ck_assert(ah_json_is(ids, "[\"snap-top\"]"));
    ck_assert_ptr_null(json_object_get(j, "next"));
    json_decref(ids);
    json_decref(j);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_layer_list_objects_omit_absent_fields)
{
    api_response res;
    json_t *j, *l;
    size_t i;

    get(&res, "/layers", NULL);
    j = ah_body_json(&res);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "layers")), 5);
    json_array_foreach(json_object_get(j, "layers"), i, l)
    {
        const char *id = ah_jstr(l, "id");
        bool base = strcmp(id, "base") == 0 || strcmp(id, "snap-base") == 0;

        ck_assert_str_eq(ah_jstr(l, "store"), "dir");
        ck_assert(json_is_false(json_object_get(l, "mutable")));
        ck_assert_ptr_nonnull(ah_jstr(l, "created"));
        ck_assert_str_eq(ah_jstr(l, "kind"),
                         strncmp(id, "snap", 4) == 0 ? "snapshot" : "diff");
        /* base layers have no parent member at all, never null */
        ck_assert(base == (json_object_get(l, "parent") == NULL));
    }
    json_decref(j);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_layer_list_parameters_are_validated)
{
    static const char *const bad_limits[] = {
        "0", "1001", "abc", "", "-1", "99999999999999999999"};
    api_response res;

    for (size_t i = 0; i < 6; i++) {
        ah_fake f = {.query = {{"limit", bad_limits[i]}}};

        get(&res, "/layers", &f);
        ah_assert_problem(&env, &res, 400, "invalid-parameter", "/layers");
        api_response_dispose(&res);
    }
    ah_fake f = {.query = {{"after", "../x"}}};
    get(&res, "/layers", &f);
    ah_assert_problem(&env, &res, 400, "invalid-parameter", "/layers");
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_one_layer_shows_its_parent_chain)
{
    api_response res;
    json_t *j;
    size_t len;
    char *raw;

    get(&res, "/layers/patch", NULL);
    ck_assert_int_eq(res.status, 200);
    raw = ah_drain(&res, 4096, &len);
    ck_assert_ptr_null(strstr(raw, demo_root)); /* no host paths */
    j = json_loads(raw, 0, NULL);
    ck_assert_str_eq(ah_jstr(j, "id"), "patch");
    ck_assert_str_eq(ah_jstr(j, "parent"), "app");
    ck_assert(ah_json_is(json_object_get(j, "parents"), "[\"app\", \"base\"]"));
    ck_assert_str_eq(ah_jstr(j, "kind"), "diff");
    ck_assert_str_eq(ah_jstr(j, "store"), "dir");
    ck_assert_str_eq(ah_jstr(j, "created"), "2023-11-15T00:13:20Z");
    ck_assert(json_is_false(json_object_get(j, "mutable")));
    json_decref(j);
    free(raw);
    api_response_dispose(&res);

    get(&res, "/layers/base", NULL);
    j = ah_body_json(&res);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "parents")), 0);
    ck_assert_ptr_null(json_object_get(j, "parent"));
    json_decref(j);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_unknown_layer_is_404)
{
    api_response res;

    get(&res, "/layers/nope", NULL);
    ah_assert_problem(&env, &res, 404, "not-found", "/layers/nope");
    api_response_dispose(&res);
    get(&res, "/layers/nope/entries", NULL);
    ah_assert_problem(&env, &res, 404, "not-found", "/layers/nope/entries");
    api_response_dispose(&res);
}
END_TEST

/* ---- content negotiation ---- */

static const char *const export_types[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
};

static int choose(const char *accept)
{
    size_t i = 99;

    if (api_accept__choose(&i, accept, export_types, 4) < 0)
        return -1;
    return (int)i;
}

START_TEST(test_accept_picks_by_weight_then_specificity)
{
    ck_assert_int_eq(choose(NULL), 0);
    ck_assert_int_eq(choose("*/*"), 0);
    ck_assert_int_eq(choose("application/*"), 0);
    ck_assert_int_eq(choose("application/vnd.oci.image.layer.v1.tar+gzip"), 1);
    /* containerd's Accept: the exact type beats the wildcard */
    ck_assert_int_eq(
        choose("application/vnd.docker.image.rootfs.diff.tar.gzip, */*"), 3);
    ck_assert_int_eq(choose("application/vnd.oci.image.layer.v1.tar+zstd;"
                            "q=0.9, application/vnd.oci.image.layer.v1.tar+"
                            "gzip;q=0.5"),
                     2);
    ck_assert_int_eq(choose("application/vnd.oci.image.layer.v1.tar+gzip ; "
                            "q=0.2, */*;q=0.1"),
                     1);
    /* q=0 excludes a type even when a wildcard would allow it */
    ck_assert_int_eq(choose("application/vnd.oci.image.layer.v1.tar;q=0, */*"),
                     1);
    /* the first listed of equal weight and specificity wins */
    ck_assert_int_eq(choose("application/vnd.oci.image.layer.v1.tar+zstd, "
                            "application/vnd.oci.image.layer.v1.tar+gzip"),
                     2);
    ck_assert_int_eq(choose("APPLICATION/VND.OCI.IMAGE.LAYER.V1.TAR"), 0);
}
END_TEST

START_TEST(test_accept_without_a_match_is_refused)
{
    ck_assert_int_eq(choose("application/json"), -1);
    ck_assert_int_eq(choose("text/*"), -1);
    ck_assert_int_eq(choose("*/*;q=0"), -1);
    ck_assert_int_eq(choose("application/vnd.oci.image.layer.v1.tar;q=x"), -1);
}
END_TEST

/* ---- export ---- */

static void sha256_hex(char out[72], const void *data, size_t len)
{
    unsigned char md[32];
    unsigned int n = 0;

    ck_assert(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) == 1);
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

START_TEST(test_export_streams_a_tar_with_digest_trailers)
{
    api_response res;
    size_t len;
    char *body, want[72];
    static const char zeros[1024];

    get(&res, "/layers/base/export", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Content-Type"),
                     "application/vnd.oci.image.layer.v1.tar");
    ck_assert_str_eq(ah_header(&res, "Trailer"),
                     "Docker-Content-Digest, X-Layer-Diff-Id");
    ck_assert(!res.has_length);
    ck_assert_uint_eq(api_exports_active(env.ctx), 1);
    body = ah_drain(&res, 16384, &len);
    ck_assert_uint_gt(len, 312000);
    ck_assert_uint_eq(len % 512, 0);
    ck_assert_mem_eq(body + len - 1024, zeros, 1024);
    ck_assert_mem_eq(body + 257, "ustar\0", 6);
    sha256_hex(want, body, len);
    ck_assert_str_eq(ah_trailer(&res, "Docker-Content-Digest"), want);
    ck_assert_str_eq(ah_trailer(&res, "X-Layer-Diff-Id"), want);
    free(body);
    api_response_dispose(&res);
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
}
END_TEST

START_TEST(test_export_compression_comes_from_query_or_accept)
{
    api_response res;
    ah_fake q = {.query = {{"compression", "gzip"}}};
    ah_fake a = {
        .headers = {{"Accept", "application/vnd.oci.image.layer.v1.tar+zstd"}}};
    ah_fake d = {.headers = {{"accept", "application/vnd.docker.image.rootfs."
                                        "diff.tar.gzip, */*"}}};
    size_t len;
    char *body, want[72];

    get(&res, "/layers/app/export", &q);
    ck_assert_str_eq(ah_header(&res, "Content-Type"),
                     "application/vnd.oci.image.layer.v1.tar+gzip");
    body = ah_drain(&res, 65536, &len);
    ck_assert_uint_gt(len, 18);
    ck_assert_int_eq((unsigned char)body[0], 0x1f);
    ck_assert_int_eq((unsigned char)body[1], 0x8b);
    sha256_hex(want, body, len);
    ck_assert_str_eq(ah_trailer(&res, "Docker-Content-Digest"), want);
    ck_assert_str_ne(ah_trailer(&res, "X-Layer-Diff-Id"), want);
    free(body);
    api_response_dispose(&res);

    get(&res, "/layers/app/export", &a);
    ck_assert_str_eq(ah_header(&res, "Content-Type"),
                     "application/vnd.oci.image.layer.v1.tar+zstd");
    body = ah_drain(&res, 65536, &len);
    ck_assert_mem_eq(body, "\x28\xb5\x2f\xfd", 4);
    free(body);
    api_response_dispose(&res);

    get(&res, "/layers/app/export", &d);
    ck_assert_str_eq(ah_header(&res, "Content-Type"),
                     "application/vnd.docker.image.rootfs.diff.tar.gzip");
    body = ah_drain(&res, 65536, &len);
    ck_assert_int_eq((unsigned char)body[0], 0x1f);
    free(body);
    api_response_dispose(&res);
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
}
END_TEST

START_TEST(test_export_refuses_bad_compression_and_unmatched_accept)
{
    api_response res;
    ah_fake bad = {.query = {{"compression", "lz4"}}};
    ah_fake json = {.headers = {{"Accept", "application/json"}}};
    ah_fake lvl = {.query = {{"level", "3"}}};
    ah_fake lvl2 = {.query = {{"compression", "gzip"}, {"level", "fast"}}};

    get(&res, "/layers/base/export", &bad);
    ah_assert_problem(&env, &res, 400, "unsupported-compression",
                      "/layers/base/export");
    api_response_dispose(&res);
    get(&res, "/layers/base/export", &json);
    ah_assert_problem(&env, &res, 406, NULL, "/layers/base/export");
    api_response_dispose(&res);
    get(&res, "/layers/base/export", &lvl);
    ah_assert_problem(&env, &res, 400, "invalid-parameter",
                      "/layers/base/export");
    api_response_dispose(&res);
    get(&res, "/layers/base/export", &lvl2);
    ah_assert_problem(&env, &res, 400, "invalid-parameter",
                      "/layers/base/export");
    api_response_dispose(&res);
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
}
END_TEST

START_TEST(test_export_past_the_cap_is_503_with_retry_after)
{
    api_response res;

    /* the cap is 4: take every slot */
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(api_exports_acquire(env.ctx, 0), 0);
    ck_assert_int_eq(api_exports_acquire(env.ctx, 0), LAYER_EBUSY);
    get(&res, "/layers/base/export", NULL);
    ah_assert_problem(&env, &res, 503, "too-many-exports",
                      "/layers/base/export");
    ck_assert_str_eq(ah_header(&res, "Retry-After"), "7");
    api_response_dispose(&res);
    /* the refused export took no slot */
    ck_assert_uint_eq(api_exports_active(env.ctx), 4);
    api_exports_release(env.ctx, 0);
    get(&res, "/layers/base/export", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_uint_eq(api_exports_active(env.ctx), 4);
    api_response_dispose(&res);
    ck_assert_uint_eq(api_exports_active(env.ctx), 3);
}
END_TEST

START_TEST(test_export_head_starts_nothing)
{
    api_response res;

    request(&res, "HEAD", "/layers/patch/export", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert(res.head);
    ck_assert(!res.has_length);
    ck_assert_ptr_null(res.producer.read);
    ck_assert_str_eq(ah_header(&res, "Content-Type"),
                     "application/vnd.oci.image.layer.v1.tar");
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_export_abort_releases_the_slot)
{
    api_response res;
    char buf[512];

    get(&res, "/layers/base/export", NULL);
    ck_assert_uint_eq(api_exports_active(env.ctx), 1);
    /* one read, then the client goes away */
    ck_assert_int_gt(ah_read(&res, buf, sizeof(buf)), 0);
    res.producer.finish(res.producer.ctx, false);
    api_response_dispose(&res);
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
}
END_TEST

/* ---- entries ---- */

static const char *keep_prefix;
static bool keep_under(const char *p)
{
    size_t n = strlen(keep_prefix);

    return strncmp(p, keep_prefix, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static const char *keep_after;
static bool keep_past(const char *p)
{
    return layer_path_compare(p, strlen(p), keep_after, strlen(keep_after)) > 0;
}

static bool keep_under_and_past(const char *p)
{
    return keep_under(p) && keep_past(p);
}

START_TEST(test_entries_ndjson_matches_the_reader_byte_for_byte)
{
    static const char *const layers[] = {"base", "app", "patch", "snap-top"};

    for (size_t k = 0; k < 4; k++) {
        expected x;
        api_response res;
        char path[64], *want, *got;
        size_t len;

        expected_load(&x, layers[k]);
        want = expected_ndjson(&x, NULL, 0);
        snprintf(path, sizeof(path), "/layers/%s/entries", layers[k]);
        get(&res, path, NULL);
        ck_assert_int_eq(res.status, 200);
        ck_assert_str_eq(ah_header(&res, "Content-Type"),
                         "application/x-ndjson");
        ck_assert(!res.has_length);
        /* a tiny buffer: entries are cut across reads and rejoined */
        got = ah_drain(&res, 7, &len);
        assert_same_text(got, want);
        ck_assert_uint_eq(count_lines(got), x.n);
        free(got);
        api_response_dispose(&res);

        get(&res, path, NULL);
        got = ah_drain(&res, 1 << 20, &len);
        assert_same_text(got, want);
        free(got);
        api_response_dispose(&res);
        free(want);
        expected_free(&x);
    }
}
END_TEST

START_TEST(test_entries_as_one_json_array)
{
    expected x;
    api_response res;
    ah_fake f = {.headers = {{"Accept", "application/json"}}};
    json_t *arr;

    expected_load(&x, "app");
    get(&res, "/layers/app/entries", &f);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Content-Type"), "application/json");
    arr = ah_body_json(&res);
    ck_assert(json_is_array(arr));
    ck_assert_uint_eq(json_array_size(arr), x.n);
    for (size_t i = 0; i < x.n; i++) {
        json_t *want = json_loads(x.lines[i], 0, NULL);

        ck_assert(json_equal(json_array_get(arr, i), want));
        json_decref(want);
    }
    json_decref(arr);
    api_response_dispose(&res);
    expected_free(&x);

    /* an empty selection is still one valid array */
    f.query[0][0] = "prefix";
    f.query[0][1] = "no/such/dir";
    get(&res, "/layers/app/entries", &f);
    arr = ah_body_json(&res);
    ck_assert(json_is_array(arr));
    ck_assert_uint_eq(json_array_size(arr), 0);
    json_decref(arr);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_entries_prefix_after_and_limit_select_a_run)
{
    expected x;
    api_response res;
    char *want, *got;
    size_t len;

    expected_load(&x, "base");

    keep_prefix = "usr";
    {
        ah_fake f = {.query = {{"prefix", "usr"}}};

        want = expected_ndjson(&x, keep_under, 0);
        get(&res, "/layers/base/entries", &f);
        got = ah_drain(&res, 100, &len);
        assert_same_text(got, want);
        ck_assert_uint_gt(count_lines(got), 5);
        free(got);
        free(want);
        api_response_dispose(&res);
    }
    keep_after = "etc/hostname";
    {
        ah_fake f = {.query = {{"after", "etc/hostname"}}};

        want = expected_ndjson(&x, keep_past, 0);
        get(&res, "/layers/base/entries", &f);
        got = ah_drain(&res, 4096, &len);
        assert_same_text(got, want);
        free(got);
        free(want);
        api_response_dispose(&res);
    }
    {
        ah_fake f = {.query = {{"limit", "3"}}};

        want = expected_ndjson(&x, NULL, 3);
        get(&res, "/layers/base/entries", &f);
        got = ah_drain(&res, 4096, &len);
        assert_same_text(got, want);
        ck_assert_uint_eq(count_lines(got), 3);
        free(got);
        free(want);
        api_response_dispose(&res);
    }
    keep_prefix = "etc";
    {
        ah_fake f = {.query = {{"prefix", "etc/"},
                               {"after", "etc/hostname"},
                               {"limit", "2"}}};

        want = expected_ndjson(&x, keep_under_and_past, 2);
        get(&res, "/layers/base/entries", &f);
        got = ah_drain(&res, 4096, &len);
        assert_same_text(got, want);
        ck_assert_uint_eq(count_lines(got), 2);
        free(got);
        free(want);
        api_response_dispose(&res);
    }
    expected_free(&x);
}
END_TEST

START_TEST(test_entries_paging_with_after_visits_everything_once)
{
    expected x;
    char *all, *joined = calloc(1, 1), after[4096] = "";
    size_t jlen = 0;

    expected_load(&x, "patch");
    all = expected_ndjson(&x, NULL, 0);
    for (int page = 0; page < 100; page++) {
        ah_fake f = {.query = {{"limit", "2"}, {"after", after}}};
        api_response res;
        size_t len;
        char *got;
        const char *last;

        if (after[0] == '\0')
            f.query[1][0] = NULL;
        get(&res, "/layers/patch/entries", &f);
        got = ah_drain(&res, 333, &len);
        api_response_dispose(&res);
        if (len == 0) {
            free(got);
            break;
        }
        joined = realloc(joined, jlen + len + 1);
        memcpy(joined + jlen, got, len + 1);
        jlen += len;
        /* the cursor is the last path seen */
        got[len - 1] = '\0';
        last = strrchr(got, '\n') != NULL ? strrchr(got, '\n') + 1 : got;
        {
            json_t *e = json_loads(last, 0, NULL);

            snprintf(after, sizeof(after), "%s", ah_jstr(e, "path"));
            json_decref(e);
        }
        free(got);
    }
    assert_same_text(joined, all);
    free(joined);
    free(all);
    expected_free(&x);
}
END_TEST

START_TEST(test_entries_parameters_are_validated)
{
    static const char *const bad[][2] = {
        {"limit", "0"},     {"limit", "x"},    {"prefix", "../etc"},
        {"prefix", "a//b"}, {"after", "/etc"}, {"after", "a/./b"},
    };
    api_response res;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ah_fake f = {.query = {{bad[i][0], bad[i][1]}}};

        get(&res, "/layers/base/entries", &f);
        ah_assert_problem(&env, &res, 400, "invalid-parameter",
                          "/layers/base/entries");
        api_response_dispose(&res);
    }
    {
        ah_fake f = {.headers = {{"Accept", "text/html"}}};

        get(&res, "/layers/base/entries", &f);
        ah_assert_problem(&env, &res, 406, NULL, "/layers/base/entries");
        api_response_dispose(&res);
    }
}
END_TEST

START_TEST(test_entries_abandoned_midway_release_everything)
{
    api_response res;
    char buf[64];

    get(&res, "/layers/base/entries", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_int_gt(res.producer.read(res.producer.ctx, buf, sizeof(buf)), 0);
    res.producer.finish(res.producer.ctx, false);
    api_response_dispose(&res); /* ASan checks nothing leaks */
    request(&res, "HEAD", "/layers/base/entries", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_ptr_null(res.producer.read);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_one_entry_is_the_same_object)
{
    expected x;
    api_response res;
    json_t *got, *want = NULL;

    expected_load(&x, "base");
    for (size_t i = 0; i < x.n; i++) {
        if (strcmp(x.paths[i], "etc/os-release") == 0)
            want = json_loads(x.lines[i], 0, NULL);
    }
    ck_assert_ptr_nonnull(want);
    get(&res, "/layers/base/entries/etc/os-release", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Content-Type"), "application/json");
    ck_assert_str_eq(res.route, "/layers/{id}/entries/{path}");
    got = ah_body_json(&res);
    ck_assert(json_equal(got, want));
    ck_assert_ptr_nonnull(json_object_get(got, "xattrs"));
    json_decref(got);
    json_decref(want);
    api_response_dispose(&res);
    expected_free(&x);

    /* a tombstone is an entry too */
    get(&res, "/layers/app/entries/etc/motd", NULL);
    got = ah_body_json(&res);
    ck_assert_str_eq(ah_jstr(got, "change"), "delete");
    json_decref(got);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_missing_or_bad_entry_paths)
{
    api_response res;

    get(&res, "/layers/base/entries/etc/nope", NULL);
    ah_assert_problem(&env, &res, 404, "not-found",
                      "/layers/base/entries/etc/nope");
    api_response_dispose(&res);
    get(&res, "/layers/base/entries/etc//hostname", NULL);
    ah_assert_problem(&env, &res, 400, "invalid-path",
                      "/layers/base/entries/etc//hostname");
    api_response_dispose(&res);
    get(&res, "/layers/base/entries/%2e%2e/etc", NULL);
    ah_assert_problem(&env, &res, 400, "invalid-path",
                      "/layers/base/entries/%2e%2e/etc");
    api_response_dispose(&res);
    get(&res, "/layers/base/entries/etc/", NULL);
    ah_assert_problem(&env, &res, 400, "invalid-path",
                      "/layers/base/entries/etc/");
    api_response_dispose(&res);
    /* once decoded, %252e%252e is a literal name: simply absent */
    get(&res, "/layers/base/entries/%252e%252e", NULL);
    ah_assert_problem(&env, &res, 404, "not-found",
                      "/layers/base/entries/%252e%252e");
    api_response_dispose(&res);
}
END_TEST

/* A layer wider than one read()'s visit budget (4096 entries). */
static void wide_setup(void)
{
    char *fs;

    demo_root = fx_tmpdir();
    fs = ah_layer(demo_root, "wide", "{\"kind\": \"diff\"}\n");
    fx_mkdir(fs, "a", 0755);
    for (int i = 0; i < 5000; i++) {
        char name[32];

        snprintf(name, sizeof(name), "a/f%05d", i);
        fx_file(fs, name, "", 0644);
    }
    fx_file(fs, "z", "last\n", 0644);
    free(fs);
    ah_open(&env, demo_root, NULL);
}

static void wide_teardown(void)
{
    ah_close(&env);
    fx_rm_rf(demo_root);
    free(demo_root);
}

START_TEST(test_entries_skipping_a_wide_run_yields_between_reads)
{
    ah_fake f = {.query = {{"prefix", "z"}}};
    api_response res;
    ah_drained d;
    size_t len;
    char *got;
    json_t *j;

    get(&res, "/layers/wide/entries", &f);
    ck_assert_int_eq(res.status, 200);
    ah_drain_result(&d, &res, 65536);
    ck_assert_int_eq(d.result, API_PRODUCE_END);
    /* 5002 entries precede z: more than one budget, so the producer
     * woke itself and returned AGAIN instead of blocking the server */
    ck_assert_uint_ge(d.agains, 1);
    ck_assert_uint_eq(count_lines(d.body), 1);
    j = json_loads(d.body, 0, NULL);
    ck_assert_str_eq(ah_jstr(j, "path"), "z");
    json_decref(j);
    free(d.body);
    api_response_dispose(&res);

    /* and from a cursor deep inside the run */
    f.query[0][0] = "after";
    f.query[0][1] = "a/f04998";
    get(&res, "/layers/wide/entries", &f);
    got = ah_drain(&res, 65536, &len);
    ck_assert_uint_eq(count_lines(got), 2); /* a/f04999 and z */
    free(got);
    api_response_dispose(&res);
}
END_TEST

/* ---- one level at a time, and counts ---- */

/* keep_level(): under keep_prefix ("" for the root) and at most
 * keep_depth levels below it. */
static size_t keep_depth;
static bool keep_level(const char *p)
{
    size_t n = strlen(keep_prefix), level = 1;
    const char *rest = p;

    if (n > 0) {
        if (!keep_under(p))
            return false;
        if (p[n] == '\0')
            return true; /* the prefix itself: level 0 */
        rest = p + n + 1;
    }
    for (; *rest != '\0'; rest++)
        level += *rest == '/';
    return level <= keep_depth;
}

START_TEST(test_entries_depth_lists_levels_below_the_prefix)
{
    static const struct {
        const char *id, *prefix, *depth;
        size_t want_lines;
    } cases[] = {
        {"base", "", "1", 7},     /* bin dev etc home run tmp usr var */
        {"base", "usr", "1", 4},  /* usr, usr/bin, usr/lib, ... */
        {"base", "usr/", "2", 0}, /* usr, its children, theirs */
        {"base", "var/lib", "1", 0},  {"patch", "", "2", 0},
        {"snap-top", "data", "1", 0},
    };
    expected x;
    api_response res;
    char *want, *got;
    size_t len;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ah_fake f = {
            .query = {{"depth", cases[i].depth}, {"prefix", cases[i].prefix}}};
        char prefix[64];

        snprintf(prefix, sizeof(prefix), "%s", cases[i].prefix);
        if (prefix[0] != '\0' && prefix[strlen(prefix) - 1] == '/')
            prefix[strlen(prefix) - 1] = '\0';
        if (prefix[0] == '\0')
            f.query[1][0] = NULL;
        keep_prefix = prefix;
        keep_depth = (size_t)strtoul(cases[i].depth, NULL, 10);
        expected_load(&x, cases[i].id);
        want = expected_ndjson(&x, keep_level, 0);
        get(&res,
            cases[i].id[0] == 'b'   ? "/layers/base/entries"
            : cases[i].id[0] == 'p' ? "/layers/patch/entries"
                                    : "/layers/snap-top/entries",
            &f);
        ck_assert_int_eq(res.status, 200);
        got = ah_drain(&res, 200, &len);
        assert_same_text(got, want);
        ck_assert_uint_gt(count_lines(got), 1);
        ck_assert_uint_lt(count_lines(got), x.n);
        if (cases[i].want_lines > 0)
            ck_assert_uint_ge(count_lines(got), cases[i].want_lines);
        free(got);
        free(want);
        api_response_dispose(&res);
        expected_free(&x);
    }
}
END_TEST

START_TEST(test_entries_depth_pages_with_the_same_cursor)
{
    expected x;
    char *all, *joined = calloc(1, 1), after[4096] = "";
    size_t jlen = 0;
    int pages = 0;

    keep_prefix = "";
    keep_depth = 1;
    expected_load(&x, "base");
    all = expected_ndjson(&x, keep_level, 0);
    for (; pages < 100; pages++) {
        ah_fake f = {
            .query = {{"depth", "1"}, {"limit", "3"}, {"after", after}}};
        api_response res;
        size_t len;
        char *got, *last;
        json_t *e;

        if (after[0] == '\0')
            f.query[2][0] = NULL;
        get(&res, "/layers/base/entries", &f);
        got = ah_drain(&res, 333, &len);
        api_response_dispose(&res);
        if (len == 0) {
            free(got);
            break;
        }
        ck_assert_uint_le(count_lines(got), 3);
        joined = realloc(joined, jlen + len + 1);
        memcpy(joined + jlen, got, len + 1);
        jlen += len;
        got[len - 1] = '\0';
        last = strrchr(got, '\n') != NULL ? strrchr(got, '\n') + 1 : got;
        e = json_loads(last, 0, NULL);
        snprintf(after, sizeof(after), "%s", ah_jstr(e, "path"));
        json_decref(e);
        free(got);
    }
    assert_same_text(joined, all);
    ck_assert_int_ge(pages, 3);
    free(joined);
    free(all);
    expected_free(&x);
}
END_TEST

START_TEST(test_entries_depth_is_validated)
{
    static const char *const bad[] = {"0", "4097", "x", "-1", ""};
    api_response res;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ah_fake f = {.query = {{"depth", bad[i]}}};

        get(&res, "/layers/base/entries", &f);
        ah_assert_problem(&env, &res, 400, "invalid-parameter",
                          "/layers/base/entries");
        api_response_dispose(&res);
        get(&res, "/layers/base/summary", &f);
        ah_assert_problem(&env, &res, 400, "invalid-parameter",
                          "/layers/base/summary");
        api_response_dispose(&res);
    }
}
END_TEST

/* The counts of the expected entries i with keep(i), as a Summary. */
static json_t *expected_summary(const expected *x, bool (*keep)(const char *))
{
    json_int_t entries = 0, size = 0;
    json_t *changes =
        json_pack("{s:i,s:i,s:i}", "add", 0, "modify", 0, "delete", 0);
    json_t *types = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "file", 0, "dir",
                              0, "symlink", 0, "hardlink", 0, "char", 0,
                              "block", 0, "fifo", 0);

    for (size_t i = 0; i < x->n; i++) {
        json_t *e;
        const char *change, *type;

        if (keep != NULL && !keep(x->paths[i]))
            continue;
        e = json_loads(x->lines[i], 0, NULL);
        change = ah_jstr(e, "change");
        type = ah_jstr(e, "type");
        entries++;
        json_object_set_new(
            changes, change,
            json_integer(json_integer_value(json_object_get(changes, change)) +
                         1));
        if (type != NULL)
            json_object_set_new(
                types, type,
                json_integer(json_integer_value(json_object_get(types, type)) +
                             1));
        if (type != NULL && strcmp(type, "file") == 0)
            size += json_integer_value(json_object_get(e, "size"));
        json_decref(e);
    }
    return json_pack("{s:I,s:o,s:o,s:I}", "entries", entries, "changes",
                     changes, "types", types, "size", size);
}

START_TEST(test_summary_counts_what_the_entries_list)
{
    static const char *const ids[] = {"base", "app", "patch", "snap-base",
                                      "snap-top"};
    expected x;
    api_response res;
    char path[64];
    json_t *got, *want;

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        expected_load(&x, ids[i]);
        snprintf(path, sizeof(path), "/layers/%s/summary", ids[i]);
        get(&res, path, NULL);
        ck_assert_int_eq(res.status, 200);
        ck_assert_str_eq(ah_header(&res, "Content-Type"), "application/json");
        ck_assert(!res.has_length);
        got = ah_body_json(&res);
        want = expected_summary(&x, NULL);
        ck_assert_msg(json_equal(got, want), "%s: %s", ids[i],
                      json_dumps(got, JSON_COMPACT));
        ck_assert_int_eq(json_integer_value(json_object_get(got, "entries")),
                         (json_int_t)x.n);
        json_decref(got);
        json_decref(want);
        api_response_dispose(&res);
        expected_free(&x);
    }
    /* the scope of prefix and depth, echoed back */
    keep_prefix = "usr";
    keep_depth = 2;
    expected_load(&x, "base");
    {
        ah_fake f = {.query = {{"prefix", "usr/"}, {"depth", "2"}}};

        get(&res, "/layers/base/summary", &f);
        got = ah_body_json(&res);
        want = expected_summary(&x, keep_level);
        json_object_set_new(want, "prefix", json_string("usr"));
        json_object_set_new(want, "depth", json_integer(2));
        ck_assert_msg(json_equal(got, want), "%s",
                      json_dumps(got, JSON_COMPACT));
        ck_assert_int_lt(json_integer_value(json_object_get(got, "entries")),
                         (json_int_t)x.n);
        json_decref(got);
        json_decref(want);
        api_response_dispose(&res);
    }
    expected_free(&x);
    /* the patch layer deletes and modifies: those are counted apart */
    get(&res, "/layers/patch/summary", NULL);
    got = ah_body_json(&res);
    ck_assert_int_gt(json_integer_value(json_object_get(
                         json_object_get(got, "changes"), "delete")),
                     0);
    ck_assert_int_gt(json_integer_value(json_object_get(
                         json_object_get(got, "changes"), "modify")),
                     0);
    json_decref(got);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_summary_head_and_problems)
{
    api_response res;
    char buf[64];

    request(&res, "HEAD", "/layers/base/summary", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_ptr_null(res.producer.read);
    api_response_dispose(&res);
    get(&res, "/layers/nope/summary", NULL);
    ah_assert_problem(&env, &res, 404, "not-found", "/layers/nope/summary");
    api_response_dispose(&res);
    {
        ah_fake f = {.query = {{"prefix", "a//b"}}};

        get(&res, "/layers/base/summary", &f);
        ah_assert_problem(&env, &res, 400, "invalid-parameter",
                          "/layers/base/summary");
        api_response_dispose(&res);
    }
    /* an empty scope counts nothing */
    {
        ah_fake f = {.query = {{"prefix", "no/such"}}};
        json_t *j;

        get(&res, "/layers/base/summary", &f);
        j = ah_body_json(&res);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "entries")), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "size")), 0);
        json_decref(j);
        api_response_dispose(&res);
    }
    /* abandoned before the counts: everything released (ASan) */
    get(&res, "/layers/base/summary", NULL);
    ck_assert_int_eq(res.status, 200);
    res.producer.finish(res.producer.ctx, false);
    (void)buf;
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_summary_of_a_wide_layer_yields_between_reads)
{
    api_response res;
    ah_drained d;
    json_t *j;

    get(&res, "/layers/wide/summary", NULL);
    ck_assert_int_eq(res.status, 200);
    ah_drain_result(&d, &res, 65536);
    ck_assert_int_eq(d.result, API_PRODUCE_END);
    /* more than one budget of entries: the producer yielded */
    ck_assert_uint_ge(d.agains, 1);
    j = json_loads(d.body, 0, NULL);
    free(d.body);
    /* a, its 5000 files, z */
    ck_assert_int_eq(json_integer_value(json_object_get(j, "entries")), 5002);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "size")), 5);
    json_decref(j);
    api_response_dispose(&res);
    {
        ah_fake f = {.query = {{"depth", "1"}}};

        get(&res, "/layers/wide/summary", &f);
        j = ah_body_json(&res);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "entries")), 2);
        json_decref(j);
        api_response_dispose(&res);
    }
}
END_TEST

/* ---- limits: header size, streams, levels, export memory ---- */

/* The demo store under a context with opts. */
static void open_demo_with(const api_context_opts *opts)
{
    char *store_path;

    demo_root = ah_demo_store();
    store_path = fx_path(demo_root, "store");
    ah_open(&env, store_path, opts);
    free(store_path);
}

/* The demo store under a context with small limits. */
static void limits_setup(void)
{
    api_context_opts opts;

    memset(&opts, 0, sizeof(opts));
    opts.max_exports = 8;
    opts.export_retry_after = 3;
    opts.max_streams = 2;
    opts.max_level = 5;
    opts.max_header_bytes = 1000;
    /* a zstd export at the ceiling fits, and with it less than a plain
     * one */
    opts.max_export_memory = layer_export_memory(LAYER_COMPRESSION_ZSTD, 5) +
                             layer_export_memory(LAYER_COMPRESSION_NONE, 0) / 2;
    open_demo_with(&opts);
}

static void limits_teardown(void)
{
    ah_close(&env);
    fx_rm_rf(demo_root);
    free(demo_root);
}

START_TEST(test_headers_over_the_cap_are_431)
{
    ah_fake big = {.header_bytes = 1001};
    ah_fake fits = {.header_bytes = 1000};
    api_response res;

    get(&res, "/healthz", &big);
    ah_assert_problem(&env, &res, 431, "headers-too-large", "/healthz");
    api_response_dispose(&res);
    /* before any route: an export is refused the same way, taking
     * nothing */
    get(&res, "/layers/base/export", &big);
    ah_assert_problem(&env, &res, 431, "headers-too-large",
                      "/layers/base/export");
    ck_assert_uint_eq(api_streams_active(env.ctx), 0);
    api_response_dispose(&res);
    get(&res, "/healthz", &fits);
    ck_assert_int_eq(res.status, 200);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_streams_past_the_cap_are_503_with_retry_after)
{
    api_response a, b, c;

    get(&a, "/layers/base/entries", NULL);
    ck_assert_int_eq(a.status, 200);
    get(&b, "/layers/base/files/etc/hostname", NULL);
    ck_assert_int_eq(b.status, 200);
    ck_assert_uint_eq(api_streams_active(env.ctx), 2);
    /* a third stream of any kind is refused before its handler runs */
    get(&c, "/layers/base/summary", NULL);
    ah_assert_problem(&env, &c, 503, "too-many-streams",
                      "/layers/base/summary");
    ck_assert_str_eq(ah_header(&c, "Retry-After"), "3");
    api_response_dispose(&c);
    get(&c, "/layers/base/export", NULL);
    ah_assert_problem(&env, &c, 503, "too-many-streams", "/layers/base/export");
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
    api_response_dispose(&c);
    /* what does not stream still answers: health, listings, HEAD */
    get(&c, "/healthz", NULL);
    ck_assert_int_eq(c.status, 200);
    api_response_dispose(&c);
    get(&c, "/layers", NULL);
    ck_assert_int_eq(c.status, 200);
    api_response_dispose(&c);
    request(&c, "HEAD", "/layers/base/export", NULL);
    ck_assert_int_eq(c.status, 200);
    api_response_dispose(&c);
    ck_assert_uint_eq(api_streams_active(env.ctx), 2);
    /* a stream that ends gives its slot back */
    api_response_dispose(&a);
    ck_assert_uint_eq(api_streams_active(env.ctx), 1);
    /* an answer without a stream gives the slot back at once */
    get(&c, "/layers/nope/entries", NULL);
    ck_assert_int_eq(c.status, 404);
    ck_assert_uint_eq(api_streams_active(env.ctx), 1);
    api_response_dispose(&c);
    get(&c, "/layers/base/summary", NULL);
    ck_assert_int_eq(c.status, 200);
    ck_assert_uint_eq(api_streams_active(env.ctx), 2);
    api_response_dispose(&c);
    api_response_dispose(&b);
    ck_assert_uint_eq(api_streams_active(env.ctx), 0);
}
END_TEST

/* The demo store with a descriptor pool for a reader of base and one of
 * app (one parent). */
static void fds_setup(void)
{
    api_context_opts opts;

    memset(&opts, 0, sizeof(opts));
    opts.reader_fds = LAYER_READER_FDS(0) + LAYER_READER_FDS(1);
    open_demo_with(&opts);
}

START_TEST(test_readers_past_the_descriptor_pool_are_503)
{
    api_response a, b, c;

    get(&a, "/layers/base/entries", NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_uint_eq(api_fds_held(env.ctx), LAYER_READER_FDS(0));
    get(&b, "/layers/app/entries", NULL);
    ck_assert_int_eq(b.status, 200);
    ck_assert_uint_eq(api_fds_held(env.ctx),
                      LAYER_READER_FDS(0) + LAYER_READER_FDS(1));
    /* the pool is spent: a third reader of any kind waits its turn */
    get(&c, "/layers/patch/export", NULL);
    ah_assert_problem(&env, &c, 503, "too-many-streams",
                      "/layers/patch/export");
    ck_assert_ptr_nonnull(strstr(c.body, "may hold 74 descriptors"));
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
    api_response_dispose(&c);
    get(&c, "/layers/base/files/etc/hostname", NULL);
    ah_assert_problem(&env, &c, 503, "too-many-streams",
                      "/layers/base/files/etc/hostname");
    api_response_dispose(&c);
    /* what opens no layer still answers */
    get(&c, "/healthz", NULL);
    ck_assert_int_eq(c.status, 200);
    api_response_dispose(&c);
    get(&c, "/layers", NULL);
    ck_assert_int_eq(c.status, 200);
    api_response_dispose(&c);
    /* a stream that ends gives its descriptors back; a request that does
     * not stream holds them only while it is handled */
    api_response_dispose(&a);
    ck_assert_uint_eq(api_fds_held(env.ctx), LAYER_READER_FDS(1));
    get(&c, "/layers/base", NULL);
    ck_assert_int_eq(c.status, 200);
    ck_assert_uint_eq(api_fds_held(env.ctx), LAYER_READER_FDS(1));
    api_response_dispose(&c);
    get(&c, "/layers/base/files/etc/hostname", NULL);
    ck_assert_int_eq(c.status, 200);
    api_response_dispose(&c);
    /* an error before the stream gives them back too */
    get(&c, "/layers/base/files/no/such/file", NULL);
    ck_assert_int_eq(c.status, 404);
    ck_assert_uint_eq(api_fds_held(env.ctx), LAYER_READER_FDS(1));
    api_response_dispose(&c);
    api_response_dispose(&b);
    ck_assert_uint_eq(api_fds_held(env.ctx), 0);
}
END_TEST

START_TEST(test_levels_above_the_ceiling_are_400)
{
    ah_fake z6 = {.query = {{"compression", "zstd"}, {"level", "6"}}};
    ah_fake z5 = {.query = {{"compression", "zstd"}, {"level", "5"}}};
    ah_fake g6 = {.query = {{"compression", "gzip"}, {"level", "6"}}};
    ah_fake zd = {.query = {{"compression", "zstd"}}};
    api_response res;
    const char *detail;

    get(&res, "/layers/base/export", &z6);
    ah_assert_problem(&env, &res, 400, "level-not-allowed",
                      "/layers/base/export");
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
    ck_assert_uint_eq(api_streams_active(env.ctx), 0);
    detail = strstr(res.body, "\"detail\"");
    ck_assert_ptr_nonnull(detail);
    ck_assert_ptr_nonnull(strstr(detail, "ask for 1 to 5"));
    api_response_dispose(&res);
    /* gzip: the server's ceiling or the backend's top, the lower */
    get(&res, "/layers/base/export", &g6);
    ah_assert_problem(&env, &res, 400, "level-not-allowed",
                      "/layers/base/export");
    api_response_dispose(&res);
    get(&res, "/layers/base/export", &z5);
    ck_assert_int_eq(res.status, 200);
    api_response_dispose(&res);
    get(&res, "/layers/base/export", &zd);
    ck_assert_int_eq(res.status, 200);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_export_memory_past_the_cap_is_503)
{
    ah_fake z5 = {.query = {{"compression", "zstd"}, {"level", "5"}}};
    api_response a, b;

    get(&a, "/layers/base/export", &z5);
    ck_assert_int_eq(a.status, 200);
    ck_assert_uint_eq(api_exports_memory(env.ctx),
                      layer_export_memory(LAYER_COMPRESSION_ZSTD, 5));
    /* a plain export would pass the memory cap, not the count */
    get(&b, "/layers/app/export", NULL);
    ah_assert_problem(&env, &b, 503, "too-many-exports", "/layers/app/export");
    ck_assert_ptr_nonnull(ah_header(&b, "Retry-After"));
    api_response_dispose(&b);
    ck_assert_uint_eq(api_exports_active(env.ctx), 1);
    api_response_dispose(&a);
    ck_assert_uint_eq(api_exports_memory(env.ctx), 0);
    /* with the memory back, it runs */
    get(&b, "/layers/app/export", NULL);
    ck_assert_int_eq(b.status, 200);
    api_response_dispose(&b);
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
    ck_assert_uint_eq(api_streams_active(env.ctx), 0);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc;

    tc = tcase_create("routing");
    tcase_add_unchecked_fixture(tc, demo_setup, demo_teardown);
    tcase_add_checked_fixture(tc, span_setup, span_teardown);
    tcase_add_test(tc, test_healthz_answers_ok_json);
    tcase_add_test(tc, test_readyz_follows_the_ready_flag);
    tcase_add_test(tc, test_openapi_is_served_as_yaml);
    tcase_add_test(tc, test_metrics_are_prometheus_text);
    tcase_add_test(tc, test_unknown_path_is_a_404_problem);
    tcase_add_test(tc, test_other_methods_get_405_with_allow);
    tcase_add_test(tc, test_head_answers_like_get_with_head_set);
    tcase_add_test(tc, test_malformed_paths_are_400);
    tcase_add_test(tc, test_overlong_paths_are_414);
    tcase_add_test(tc, test_literal_segments_match_after_one_decode);
    tcase_add_test(tc, test_error_codes_map_to_statuses_in_one_place);
    suite_add_tcase(s, tc);

    tc = tcase_create("layers");
    tcase_add_unchecked_fixture(tc, demo_setup, demo_teardown);
    tcase_add_checked_fixture(tc, span_setup, span_teardown);
    tcase_add_test(tc, test_layers_are_paginated_in_id_order);
    tcase_add_test(tc, test_layer_list_objects_omit_absent_fields);
    tcase_add_test(tc, test_layer_list_parameters_are_validated);
    tcase_add_test(tc, test_one_layer_shows_its_parent_chain);
    tcase_add_test(tc, test_unknown_layer_is_404);
    suite_add_tcase(s, tc);

    tc = tcase_create("export");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, demo_setup, demo_teardown);
    tcase_add_checked_fixture(tc, span_setup, span_teardown);
    tcase_add_test(tc, test_accept_picks_by_weight_then_specificity);
    tcase_add_test(tc, test_accept_without_a_match_is_refused);
    tcase_add_test(tc, test_export_streams_a_tar_with_digest_trailers);
    tcase_add_test(tc, test_export_compression_comes_from_query_or_accept);
    tcase_add_test(tc,
                   test_export_refuses_bad_compression_and_unmatched_accept);
    tcase_add_test(tc, test_export_past_the_cap_is_503_with_retry_after);
    tcase_add_test(tc, test_export_head_starts_nothing);
    tcase_add_test(tc, test_export_abort_releases_the_slot);
    suite_add_tcase(s, tc);

    tc = tcase_create("entries");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, demo_setup, demo_teardown);
    tcase_add_checked_fixture(tc, span_setup, span_teardown);
    tcase_add_test(tc, test_entries_ndjson_matches_the_reader_byte_for_byte);
    tcase_add_test(tc, test_entries_as_one_json_array);
    tcase_add_test(tc, test_entries_prefix_after_and_limit_select_a_run);
    tcase_add_test(tc, test_entries_paging_with_after_visits_everything_once);
    tcase_add_test(tc, test_entries_parameters_are_validated);
    tcase_add_test(tc, test_entries_abandoned_midway_release_everything);
    tcase_add_test(tc, test_one_entry_is_the_same_object);
    tcase_add_test(tc, test_missing_or_bad_entry_paths);
    suite_add_tcase(s, tc);

    tc = tcase_create("entries-wide");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, wide_setup, wide_teardown);
    tcase_add_checked_fixture(tc, span_setup, span_teardown);
    tcase_add_test(tc, test_entries_skipping_a_wide_run_yields_between_reads);
    tcase_add_test(tc, test_summary_of_a_wide_layer_yields_between_reads);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, limits_setup, limits_teardown);
    tcase_add_checked_fixture(tc, span_setup, span_teardown);
    tcase_add_test(tc, test_headers_over_the_cap_are_431);
    tcase_add_test(tc, test_streams_past_the_cap_are_503_with_retry_after);
    tcase_add_test(tc, test_levels_above_the_ceiling_are_400);
    tcase_add_test(tc, test_export_memory_past_the_cap_is_503);
    suite_add_tcase(s, tc);

    tc = tcase_create("descriptors");
    tcase_add_unchecked_fixture(tc, fds_setup, limits_teardown);
    tcase_add_checked_fixture(tc, span_setup, span_teardown);
    tcase_add_test(tc, test_readers_past_the_descriptor_pool_are_503);
    suite_add_tcase(s, tc);

    tc = tcase_create("levels");
    tcase_add_unchecked_fixture(tc, demo_setup, demo_teardown);
    tcase_add_checked_fixture(tc, span_setup, span_teardown);
    tcase_add_test(tc, test_entries_depth_lists_levels_below_the_prefix);
    tcase_add_test(tc, test_entries_depth_pages_with_the_same_cursor);
    tcase_add_test(tc, test_entries_depth_is_validated);
    tcase_add_test(tc, test_summary_counts_what_the_entries_list);
    tcase_add_test(tc, test_summary_head_and_problems);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(api_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
