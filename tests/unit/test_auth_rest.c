/*
 * Tests for api/auth_rest.c: access control on every route, through
 * api_handle() with fake requests. Every route against {no credentials,
 * a wrong token, a token without the grant, the right token}, with the
 * exact status; 401 with both challenges (Bearer only for a page's
 * fetch()); a layer nobody may see answers the very bytes a missing one
 * does; /layers shows only what may be listed and its cursor never names
 * a hidden layer; mutable layers need a grant that says so; the open
 * routes ignore credentials; the Host check; the failure counter.
 */
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/metrics.h"
#include "api_harness.h"
#include "fixture.h"
#include "layer/error.h"
#include "layer/trace.h"

static char *root;
static api_metrics *metrics;
static api_auth *auth;
static api_hostnames *hosts;
static char *openapi;
static ah_env env;

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

/*
 * The store: base <- app-1, app-2, secret (immutable), live (mutable,
 * parent base); each with a file "hello". The policy:
 *   agent  (token "t-agent"): list, read on base and app-*; metrics
 *   lister (token "t-lister"): list on everything
 *   other  (token "t-other"): read on "other" only
 *   admin  (token "t-admin"): everything, mutable layers too
 *   anonymous: nothing
 */
static void setup(void)
{
    static const char *const names[] = {"localhost", "127.0.0.1",
                                        "layerd.example"};
    const char *ids[] = {"base", "app-1", "app-2", "secret", "live"};
    char d[4][65], *doc = NULL, *store;
    api_policy *p = NULL;
    api_context_opts opts;

    root = fx_tmpdir();
    store = fx_path(root, "store");
    fx_mkdir(root, "store", 0755);
    for (size_t i = 0; i < 5; i++) {
        char json[128], *fs;

        snprintf(json, sizeof(json), "{\"kind\": \"diff\"%s%s}",
                 i > 0 ? ", \"parent\": \"base\"" : "",
                 i == 4 ? ", \"mutable\": true" : "");
        fs = ah_layer(store, ids[i], json);
        fx_file(fs, "hello", ids[i], 0644);
        free(fs);
    }
    digest_hex(d[0], "t-agent");
    digest_hex(d[1], "t-lister");
    digest_hex(d[2], "t-other");
    digest_hex(d[3], "t-admin");
    ck_assert(
        asprintf(
            &doc,
            "{\"principals\": ["
            "{\"name\": \"agent\", \"tokens_sha256\": [\"%s\"], \"grants\": "
            "[{\"layers\": [\"base\", \"app-*\"], \"ops\": [\"list\", "
            "\"read\"]}, {\"layers\": [\"*\"], \"ops\": [\"metrics\"]}]},"
            "{\"name\": \"lister\", \"tokens_sha256\": [\"%s\"], \"grants\": "
            "[{\"layers\": [\"*\"], \"ops\": [\"list\"]}]},"
            "{\"name\": \"other\", \"tokens_sha256\": [\"%s\"], \"grants\": "
            "[{\"layers\": [\"other\"], \"ops\": [\"read\"]}]},"
            "{\"name\": \"admin\", \"tokens_sha256\": [\"%s\"], \"grants\": "
            "[{\"layers\": [\"*\"], \"ops\": [\"list\", \"read\", "
            "\"metrics\"], \"mutable\": true}]}]}",
            d[0], d[1], d[2], d[3]) > 0);
    ck_assert_int_eq(api_policy_parse(&p, doc, strlen(doc), NULL), 0);
    free(doc);
    ck_assert_int_eq(api_auth_new(&auth, p), 0);
    ck_assert_int_eq(api_hostnames_new(&hosts, names, 3), 0);
    ck_assert_int_eq(api_metrics_new(&metrics, NULL), 0);
    ck_assert(
        asprintf(&openapi, "%s/openapi.yaml", getenv("LAYERD_SOURCE_DIR")) > 0);
    memset(&opts, 0, sizeof(opts));
    opts.metrics = metrics;
    opts.openapi_path = openapi;
    opts.auth = auth;
    opts.hosts = hosts;
    ah_open(&env, store, &opts);
    free(store);
    ck_assert_int_eq(layer_span_start(&env.span, NULL, NULL, "http.request"),
                     0);
}

static void teardown(void)
{
    layer_span_end(env.span);
    ah_close(&env);
    api_auth_free(auth);
    api_hostnames_free(hosts);
    api_metrics_free(metrics);
    free(openapi);
    fx_rm_rf(root);
    free(root);
}

/* GET path with an Authorization header (NULL: none) and maybe more. */
static int get_as(api_response *res, const char *path, const char *authz)
{
    ah_fake f;

    memset(&f, 0, sizeof(f));
    if (authz != NULL) {
        f.headers[0][0] = "Authorization";
        f.headers[0][1] = authz;
    }
    ah_request(res, &env, "GET", path, &f);
    return res->status;
}

/* The status of GET path; a streamed body is drained. */
static int status_of(const char *path, const char *authz)
{
    api_response res;
    int status = get_as(&res, path, authz);

    if (res.producer.read != NULL) {
        size_t len;

        free(ah_drain(&res, 65536, &len));
    }
    api_response_dispose(&res);
    return status;
}

START_TEST(test_every_route_by_credentials)
{
    static const struct {
        const char *path;
        int none, wrong, nogrant, right;
    } routes[] = {
        {"/layers", 401, 401, 403, 200},
        {"/layers/base", 401, 401, 404, 200},
        {"/layers/base/export", 401, 401, 404, 200},
        {"/layers/base/entries", 401, 401, 404, 200},
        {"/layers/base/entries/hello", 401, 401, 404, 200},
        {"/layers/base/summary", 401, 401, 404, 200},
        {"/layers/base/files/hello", 401, 401, 404, 200},
        {"/metrics", 401, 401, 403, 200},
        /* open: credentials are not even looked at */
        {"/healthz", 200, 200, 200, 200},
        {"/readyz", 200, 200, 200, 200},
        {"/openapi.yaml", 200, 200, 200, 200},
        {"/ui/", 404, 404, 404, 404}, /* no dashboard configured here */
        {"/", 404, 404, 404, 404},    /* not a browser */
    };

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const char *p = routes[i].path;

        ck_assert_msg(status_of(p, NULL) == routes[i].none, "%s none", p);
        ck_assert_msg(status_of(p, "Bearer wrong") == routes[i].wrong,
                      "%s wrong", p);
        ck_assert_msg(status_of(p, "Bearer t-other") == routes[i].nogrant,
                      "%s no grant", p);
        ck_assert_msg(status_of(p, "Bearer t-agent") == routes[i].right,
                      "%s right", p);
    }
    /* listed but not readable: 403 on the layer, 200 on the list */
    ck_assert_int_eq(status_of("/layers/base/entries", "Bearer t-lister"), 403);
    ck_assert_int_eq(status_of("/layers", "Bearer t-lister"), 200);
    /* Basic with the token as the password, any user name */
    ck_assert_int_eq(status_of("/layers/base", "Basic dXNlcjp0LWFnZW50"), 200);
    ck_assert_int_eq(status_of("/layers/base", "Basic dXNlcjp0LWFnZW5"), 401);
    /* HEAD answers like GET */
    {
        api_response res;

        ah_request(&res, &env, "HEAD", "/layers/base", NULL);
        ck_assert_int_eq(res.status, 401);
        api_response_dispose(&res);
    }
}
END_TEST

START_TEST(test_401_has_both_challenges_and_never_echoes_the_token)
{
    api_response res;
    size_t n = 0;
    char *body;

    get_as(&res, "/layers/base", "Bearer some-secret-token");
    ah_assert_problem(&env, &res, 401, "unauthorized", "/layers/base");
    for (size_t i = 0; i < res.nheaders; i++) {
        if (strcasecmp(res.headers[i].name, "WWW-Authenticate") != 0)
            continue;
        ck_assert(n < 2);
        ck_assert_str_eq(res.headers[i].value,
                         n == 0 ? "Bearer realm=\"layerd\", "
                                  "error=\"invalid_token\""
                                : "Basic realm=\"layerd\", charset=\"UTF-8\"");
        n++;
    }
    ck_assert_uint_eq(n, 2);
    body = strndup(res.body, res.body_len);
    ck_assert(strstr(body, "some-secret") == NULL);
    ck_assert(strstr(body, "the token is not valid") != NULL);
    free(body);
    api_response_dispose(&res);

    /* No credentials: a plain Bearer challenge and what to send. */
    get_as(&res, "/metrics", NULL);
    ck_assert_int_eq(res.status, 401);
    ck_assert_str_eq(ah_header(&res, "WWW-Authenticate"),
                     "Bearer realm=\"layerd\"");
    api_response_dispose(&res);

    /* A page's fetch() gets no Basic challenge (the browser would open
     * its own login dialog over the page's). */
    {
        ah_fake f = {.headers = {{"Sec-Fetch-Mode", "cors"}}};

        ah_request(&res, &env, "GET", "/layers", &f);
        ck_assert_int_eq(res.status, 401);
        n = 0;
        for (size_t i = 0; i < res.nheaders; i++)
            n += strcasecmp(res.headers[i].name, "WWW-Authenticate") == 0;
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(ah_header(&res, "WWW-Authenticate"),
                         "Bearer realm=\"layerd\"");
        api_response_dispose(&res);
    }
}
END_TEST

/* The problem body without its trace id and instance. */
static json_t *problem_core(api_response *res)
{
    json_t *j = ah_body_json(res);

    json_object_del(j, "trace_id");
    json_object_del(j, "instance");
    return j;
}

START_TEST(test_a_hidden_layer_looks_exactly_like_a_missing_one)
{
    api_response a, b;
    json_t *ja, *jb;
    char *da, *db;

    /* "secret" exists, "nosuch" does not: same answer to "agent" */
    ck_assert_int_eq(get_as(&a, "/layers/secret", "Bearer t-agent"), 404);
    ck_assert_int_eq(get_as(&b, "/layers/nosuch", "Bearer t-admin"), 404);
    ja = problem_core(&a);
    jb = problem_core(&b);
    da = json_dumps(ja, JSON_SORT_KEYS);
    db = json_dumps(jb, JSON_SORT_KEYS);
    /* the id differs; the rest must not */
    ck_assert_ptr_nonnull(strstr(da, "secret"));
    {
        char *p = strstr(db, "nosuch"); /* same length as "secret" */

        ck_assert_ptr_nonnull(p);
        memcpy(p, "secret", 6);
    }
    ck_assert_str_eq(da, db);
    ck_assert_uint_eq(a.nheaders, b.nheaders);
    free(da);
    free(db);
    json_decref(ja);
    json_decref(jb);
    api_response_dispose(&a);
    api_response_dispose(&b);

    /* a mutable layer, to a grant without "mutable": the same 404 */
    ck_assert_int_eq(get_as(&a, "/layers/live/files/hello", "Bearer t-admin"),
                     200);
    api_response_dispose(&a);
    ck_assert_int_eq(status_of("/layers/live", "Bearer t-agent"), 404);
    /* the lister is refused from the id alone, before the store is asked,
     * with the 403 it gets for any id: nothing said of "live" itself */
    ck_assert_int_eq(status_of("/layers/live/files/hello", "Bearer t-lister"),
                     403);
    ck_assert_int_eq(status_of("/layers/nosuch/files/hello", "Bearer t-lister"),
                     403);
}
END_TEST

/* The ids of a /layers page (limit, after: NULL for none), comma-joined,
 * into ids; its "next" ("-" when none) into next, checked against the
 * Link header. */
static void page(char *ids, size_t cap, char *next, const char *limit,
                 const char *after, const char *authz)
{
    api_response res;
    ah_fake f = {.headers = {{"Authorization", authz}}};
    size_t k = 0, i;
    json_t *j, *l;

    if (limit != NULL) {
        f.query[k][0] = "limit";
        f.query[k++][1] = limit;
    }
    if (after != NULL) {
        f.query[k][0] = "after";
        f.query[k++][1] = after;
    }
    ah_request(&res, &env, "GET", "/layers", &f);
    ck_assert_int_eq(res.status, 200);
    j = ah_body_json(&res);
    ids[0] = '\0';
    json_array_foreach(json_object_get(j, "layers"), i, l)
    {
        if (i > 0)
            strncat(ids, ",", cap - strlen(ids) - 1);
        strncat(ids, json_string_value(json_object_get(l, "id")),
                cap - strlen(ids) - 1);
    }
    snprintf(next, 64, "%s",
             json_object_get(j, "next") != NULL
                 ? json_string_value(json_object_get(j, "next"))
                 : "-");
    if (strcmp(next, "-") != 0) {
        char link[160];

        snprintf(link, sizeof(link),
                 "</layers?limit=%s&after=%s>; rel=\"next\"", limit, next);
        ck_assert_str_eq(ah_header(&res, "Link"), link);
    } else {
        ck_assert_ptr_null(ah_header(&res, "Link"));
    }
    json_decref(j);
    api_response_dispose(&res);
}

START_TEST(test_the_list_shows_only_what_may_be_listed)
{
    char ids[256], next[64];

    page(ids, sizeof(ids), next, NULL, NULL, "Bearer t-agent");
    ck_assert_str_eq(ids, "app-1,app-2,base");
    ck_assert_str_eq(next, "-");
    page(ids, sizeof(ids), next, NULL, NULL, "Bearer t-lister");
    ck_assert_str_eq(ids, "app-1,app-2,base,secret");
    page(ids, sizeof(ids), next, NULL, NULL, "Bearer t-admin");
    ck_assert_str_eq(ids, "app-1,app-2,base,live,secret");
    /* pages of visible layers; the cursor is the last one shown */
    page(ids, sizeof(ids), next, "2", NULL, "Bearer t-agent");
    ck_assert_str_eq(ids, "app-1,app-2");
    ck_assert_str_eq(next, "app-2");
    page(ids, sizeof(ids), next, "2", "app-2", "Bearer t-agent");
    ck_assert_str_eq(ids, "base");
    ck_assert_str_eq(next, "-");
    page(ids, sizeof(ids), next, "3", NULL, "Bearer t-lister");
    ck_assert_str_eq(ids, "app-1,app-2,base");
    ck_assert_str_eq(next, "base");
    /* past "base" only "live" (mutable) and "secret" remain: for the
     * lister, "secret" alone, and no cursor naming "live" */
    page(ids, sizeof(ids), next, "1", "base", "Bearer t-lister");
    ck_assert_str_eq(ids, "secret");
    ck_assert_str_eq(next, "-");
    page(ids, sizeof(ids), next, "1", "base", "Bearer t-agent");
    ck_assert_str_eq(ids, "");
    ck_assert_str_eq(next, "-");
    /* the admin's page of one after "base" is "live", then "secret" */
    page(ids, sizeof(ids), next, "1", "base", "Bearer t-admin");
    ck_assert_str_eq(ids, "live");
    ck_assert_str_eq(next, "live");
}
END_TEST

START_TEST(test_the_default_policy_hides_mutable_layers)
{
    ah_env def;
    api_response res;
    json_t *j, *l;
    size_t i;
    char *store = fx_path(root, "store");

    /* No policy given to the context: anonymous reads immutable layers. */
    ah_open(&def, store, NULL);
    free(store);
    ah_request(&res, &def, "GET", "/layers", NULL);
    ck_assert_int_eq(res.status, 200);
    j = ah_body_json(&res);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "layers")), 4);
    json_array_foreach(json_object_get(j, "layers"), i, l)
        ck_assert_str_ne(json_string_value(json_object_get(l, "id")), "live");
    json_decref(j);
    api_response_dispose(&res);
    ah_request(&res, &def, "GET", "/layers/live", NULL);
    ck_assert_int_eq(res.status, 404);
    api_response_dispose(&res);
    ah_request(&res, &def, "GET", "/layers/secret", NULL);
    ck_assert_int_eq(res.status, 200);
    api_response_dispose(&res);
    ah_request(&res, &def, "GET", "/metrics", NULL);
    ck_assert_int_eq(res.status, 404); /* no registry here, but allowed */
    api_response_dispose(&res);
    ah_close(&def);
}
END_TEST

START_TEST(test_host_must_name_the_server)
{
    static const char *const good[] = {"localhost:8443", "127.0.0.1",
                                       "LAYERD.example:443"};
    api_response res;

    for (size_t i = 0; i < 3; i++) {
        ah_fake f = {.headers = {{"Host", good[i]}}};

        ah_request(&res, &env, "GET", "/healthz", &f);
        ck_assert_msg(res.status == 200, "%s: %d", good[i], res.status);
        api_response_dispose(&res);
    }
    {
        /* before anything else: a valid token changes nothing */
        ah_fake f = {.headers = {{"Host", "rebound.example:8443"},
                                 {"Authorization", "Bearer t-admin"}}};

        ah_request(&res, &env, "GET", "/layers/base/files/hello", &f);
        ah_assert_problem(&env, &res, 421, "misdirected-request",
                          "/layers/base/files/hello");
        api_response_dispose(&res);
        f.headers[0][1] = "rebound.example";
        ah_request(&res, &env, "GET", "/healthz", &f);
        ck_assert_int_eq(res.status, 421);
        api_response_dispose(&res);
        f.headers[0][1] = "local host";
        ah_request(&res, &env, "GET", "/healthz", &f);
        ah_assert_problem(&env, &res, 400, "invalid-host", "/healthz");
        api_response_dispose(&res);
    }
}
END_TEST

START_TEST(test_refusals_are_counted_by_reason)
{
    char *text = NULL;
    size_t len = 0;

    ck_assert_int_eq(status_of("/layers", NULL), 401);
    ck_assert_int_eq(status_of("/layers", "Bearer nope"), 401);
    ck_assert_int_eq(status_of("/layers", "Bearer nope"), 401);
    ck_assert_int_eq(status_of("/layers", "Bearer"), 401);
    ck_assert_int_eq(status_of("/metrics", "Bearer t-lister"), 403);
    ck_assert_int_eq(status_of("/layers/secret", "Bearer t-agent"), 404);
    ck_assert_int_eq(api_metrics_render(&text, &len, metrics), 0);
    ck_assert(
        strstr(text, "layerd_auth_failures_total{reason=\"missing\"} 1\n"));
    ck_assert(strstr(text,
                     "layerd_auth_failures_total{reason=\"invalid_token\"} "
                     "2\n"));
    ck_assert(
        strstr(text, "layerd_auth_failures_total{reason=\"malformed\"} 1\n"));
    ck_assert(
        strstr(text, "layerd_auth_failures_total{reason=\"forbidden\"} 1\n"));
    ck_assert(strstr(text,
                     "layerd_auth_failures_total{reason=\"bad_certificate\"} "
                     "0\n"));
    ck_assert(strstr(text, "nope") == NULL);
    free(text);
}
END_TEST

START_TEST(test_a_failed_client_certificate_is_refused)
{
    api_client_cert c;
    api_response res;

    memset(&c, 0, sizeof(c));
    c.verified = false;
    c.failure = "The certificate is NOT trusted.";
    {
        ah_fake f = {.headers = {{"Authorization", "Bearer t-admin"}},
                     .cert = &c};

        ah_request(&res, &env, "GET", "/layers/base", &f);
        ah_assert_problem(&env, &res, 401, "unauthorized", "/layers/base");
        api_response_dispose(&res);
        /* open routes still answer */
        ah_request(&res, &env, "GET", "/healthz", &f);
        ck_assert_int_eq(res.status, 200);
        api_response_dispose(&res);
    }
}
END_TEST

static Suite *rest_suite(void)
{
    Suite *s = suite_create("auth_rest");
    TCase *tc = tcase_create("routes");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_every_route_by_credentials);
    tcase_add_test(tc, test_401_has_both_challenges_and_never_echoes_the_token);
    tcase_add_test(tc, test_a_hidden_layer_looks_exactly_like_a_missing_one);
    tcase_add_test(tc, test_the_list_shows_only_what_may_be_listed);
    tcase_add_test(tc, test_the_default_policy_hides_mutable_layers);
    tcase_add_test(tc, test_host_must_name_the_server);
    tcase_add_test(tc, test_refusals_are_counted_by_reason);
    tcase_add_test(tc, test_a_failed_client_certificate_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rest_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
