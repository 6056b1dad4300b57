/*
 * The API test harness (api_harness.h): fake requests and producer
 * draining for the tests of api/, shared so that each behaviour is pinned
 * by one test and each test file reads as requests and answers.
 */
#include "api_harness.h"

#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fixture.h"

/* How long a drain waits for a producer's wake before failing. */
#define WAKE_WAIT_MS 30000

char *ah_demo_store(void)
{
    const char *src = getenv("LAYERD_SOURCE_DIR");
    char *root, *cmd;

    ck_assert_msg(src != NULL, "LAYERD_SOURCE_DIR is not set");
    root = fx_tmpdir();
    ck_assert(asprintf(&cmd,
                       "bash '%s/tests/fixtures/mkdemo.sh' '%s/store' "
                       ">/dev/null",
                       src, root) > 0);
    ck_assert_msg(system(cmd) == 0, "mkdemo.sh failed");
    free(cmd);
    return root;
}

char *ah_layer(const char *root, const char *id, const char *layer_json)
{
    char *dir = fx_path(root, id), *fs;

    fx_mkdir(root, id, 0755);
    fx_file(dir, "layer.json", layer_json, 0644);
    fx_mkdir(dir, "fs", 0755);
    fs = fx_path(dir, "fs");
    free(dir);
    return fs;
}

void ah_open(ah_env *env, const char *store_dir, const api_context_opts *opts)
{
    api_context_opts o;
    char *spec;

    memset(env, 0, sizeof(*env));
    if (opts != NULL)
        o = *opts;
    else
        memset(&o, 0, sizeof(o));
    env->store_dir = strdup(store_dir);
    ck_assert(asprintf(&spec, "dir:%s", store_dir) > 0);
    ck_assert_int_eq(layer_store_open(&env->store, spec), 0);
    free(spec);
    o.store = env->store;
    ck_assert_int_eq(api_context_new(&env->ctx, &o), 0);
    api_set_ready(env->ctx, true);
}

void ah_close(ah_env *env)
{
    api_context_free(env->ctx);
    layer_store_free(env->store);
    free(env->store_dir);
    memset(env, 0, sizeof(*env));
}

/* ---- fake requests ---- */

static const char *lookup(const char *const table[AH_FAKE_MAX][2],
                          const char *name, bool fold)
{
    for (size_t i = 0; i < AH_FAKE_MAX && table[i][0] != NULL; i++) {
        if (fold ? strcasecmp(table[i][0], name) == 0
                 : strcmp(table[i][0], name) == 0)
            return table[i][1];
    }
    return NULL;
}

static const char *fake_header(void *conn, const char *name)
{
    const ah_fake *f = conn;

    return lookup(f->headers, name, true);
}

static size_t fake_header_values(void *conn, const char *name, const char **out,
                                 size_t max)
{
    const ah_fake *f = conn;
    size_t n = 0;

    for (size_t i = 0; i < AH_FAKE_MAX && f->headers[i][0] != NULL; i++) {
        if (strcasecmp(f->headers[i][0], name) == 0 && n < max)
            out[n++] = f->headers[i][1];
    }
    return n;
}

static const char *fake_query(void *conn, const char *name)
{
    const ah_fake *f = conn;

    return lookup(f->query, name, false);
}

void ah_request(api_response *res, const ah_env *env, const char *method,
                const char *path, const ah_fake *f)
{
    static const ah_fake none;
    api_request req;

    memset(&req, 0, sizeof(req));
    req.method = method;
    req.raw_path = path;
    req.header = fake_header;
    req.header_values = fake_header_values;
    req.query = fake_query;
    req.conn = (void *)(f != NULL ? f : &none);
    req.client_address = "127.0.0.1";
    req.span = env->span;
    req.client_cert = f != NULL ? f->cert : NULL;
    req.header_bytes = f != NULL ? f->header_bytes : 0;
    api_handle(res, env->ctx, &req);
}

const char *ah_header(const api_response *res, const char *name)
{
    for (size_t i = 0; i < res->nheaders; i++) {
        if (strcasecmp(res->headers[i].name, name) == 0)
            return res->headers[i].value;
    }
    return NULL;
}

const char *ah_trailer(api_response *res, const char *name)
{
    const api_header *t = NULL;
    size_t n;

    ck_assert_ptr_nonnull(res->producer.trailers);
    n = res->producer.trailers(res->producer.ctx, &t);
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(t[i].name, name) == 0)
            return t[i].value;
    }
    return NULL;
}

/* ---- draining ---- */

/* Set by the wake callback, which may run on a producer's worker thread.
 * Static: a producer abandoned midway may still call its wake until it is
 * freed, after the read that installed it has returned. */
static atomic_int woken;

static void woke(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
}

static void wait_woken(void)
{
    struct timespec ts = {0, 1000000};

    for (int i = 0; i < WAKE_WAIT_MS; i++) {
        if (atomic_load(&woken))
            return;
        nanosleep(&ts, NULL);
    }
    ck_abort_msg("the producer never called its wake");
}

/* One read; AGAIN is answered by waiting for the wake and reading again.
 * *agains counts those. */
static ssize_t read_waiting(api_producer *p, char *buf, size_t cap,
                            unsigned *agains)
{
    for (;;) {
        ssize_t n;

        atomic_store(&woken, 0);
        n = p->read(p->ctx, buf, cap);
        if (n != API_PRODUCE_AGAIN)
            return n;
        ck_assert_ptr_nonnull(p->set_wake);
        (*agains)++;
        wait_woken();
    }
}

ssize_t ah_read(api_response *res, char *buf, size_t cap)
{
    api_producer *p = &res->producer;
    unsigned agains = 0;
    ssize_t n;

    ck_assert_ptr_nonnull(p->read);
    if (p->set_wake != NULL)
        p->set_wake(p->ctx, woke, &woken);
    n = read_waiting(p, buf, cap, &agains);
    ck_assert(n == API_PRODUCE_END || n == API_PRODUCE_ERROR ||
              (n > 0 && (size_t)n <= cap));
    return n;
}

void ah_drain_result(ah_drained *out, api_response *res, size_t cap)
{
    api_producer *p = &res->producer;
    char *buf;

    memset(out, 0, sizeof(*out));
    out->result = API_PRODUCE_END;
    if (p->read == NULL) {
        out->body = malloc(res->body_len + 1);
        ck_assert_ptr_nonnull(out->body);
        if (res->body_len > 0)
            memcpy(out->body, res->body, res->body_len);
        out->body[res->body_len] = '\0';
        out->len = res->body_len;
        return;
    }
    buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    if (p->set_wake != NULL)
        p->set_wake(p->ctx, woke, &woken);
    for (;;) {
        ssize_t n = read_waiting(p, buf, cap, &out->agains);

        if (n > 0) {
            ck_assert_uint_le((size_t)n, cap);
            out->body = realloc(out->body, out->len + (size_t)n + 1);
            ck_assert_ptr_nonnull(out->body);
            memcpy(out->body + out->len, buf, (size_t)n);
            out->len += (size_t)n;
            continue;
        }
        ck_assert_msg(n == API_PRODUCE_END || n == API_PRODUCE_ERROR,
                      "read() returned %zd", n);
        out->result = (int)n;
        break;
    }
    if (p->finish != NULL)
        p->finish(p->ctx, out->result == API_PRODUCE_END);
    free(buf);
    if (out->body == NULL) {
        out->body = malloc(1);
        ck_assert_ptr_nonnull(out->body);
    }
    out->body[out->len] = '\0';
    if (res->has_length && out->result == API_PRODUCE_END)
        ck_assert_uint_eq(out->len, res->content_length);
}

char *ah_drain(api_response *res, size_t cap, size_t *out_len)
{
    ah_drained d;

    ah_drain_result(&d, res, cap);
    ck_assert_int_eq(d.result, API_PRODUCE_END);
    *out_len = d.len;
    return d.body;
}

json_t *ah_body_json(api_response *res)
{
    size_t len;
    char *body = ah_drain(res, 65536, &len);
    json_error_t err;
    json_t *j = json_loadb(body, len, 0, &err);

    ck_assert_msg(j != NULL, "not JSON (%s): %s", err.text, body);
    free(body);
    return j;
}

bool ah_json_is(const json_t *j, const char *want)
{
    json_t *w = json_loads(want, 0, NULL);
    bool eq;

    ck_assert_msg(w != NULL, "bad JSON in a test: %s", want);
    eq = json_equal(j, w);
    json_decref(w);
    return eq;
}

const char *ah_jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

void ah_assert_problem(const ah_env *env, api_response *res, int status,
                       const char *slug, const char *instance)
{
    json_t *j;
    char want[128], trace[33];

    ck_assert_int_eq(res->status, status);
    ck_assert_str_eq(ah_header(res, "Content-Type"),
                     "application/problem+json");
    ck_assert(res->has_length);
    ck_assert_uint_eq(res->content_length, res->body_len);
    j = ah_body_json(res);
    if (slug != NULL)
        snprintf(want, sizeof(want), "https://layerd.dev/problems/%s", slug);
    else
        snprintf(want, sizeof(want), "about:blank");
    ck_assert_str_eq(ah_jstr(j, "type"), want);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), status);
    ck_assert_ptr_nonnull(ah_jstr(j, "title"));
    ck_assert_ptr_nonnull(ah_jstr(j, "detail"));
    ck_assert_str_eq(ah_jstr(j, "instance"), instance);
    if (env->span != NULL) {
        layer_span_trace_id_hex(env->span, trace);
        ck_assert_str_eq(ah_jstr(j, "trace_id"), trace);
    }
    /* problems never show host paths */
    ck_assert_ptr_null(strstr(ah_jstr(j, "detail"), env->store_dir));
    json_decref(j);
}
