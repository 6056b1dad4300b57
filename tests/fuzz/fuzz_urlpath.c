/*
 * Fuzz target: URL path decoding and validation (api/urlpath.c) and the
 * route matcher in front of them (api_handle()).
 *
 * The input is a raw, still-encoded request path. Invariants checked:
 * - api_urlpath_escapes_valid() agrees with api_urlpath_decode();
 * - a decoded path holds no NUL, is no longer than its input, and
 *   encoding it again (every byte as %XX) and decoding gives it back:
 *   decoding happens exactly once, nothing is decoded twice;
 * - a path api_urlpath_check() accepts has no empty, "." or ".." segment;
 * - api_handle() answers any path, as is and under /layers/x/files/,
 *   with a status from 200 to 599, a route that is a template or
 *   "unmatched", and, for errors, a problem+json body that parses and
 *   carries the same status. The store is an empty dir: store made once
 *   under $TMPDIR (removed at exit), so every id is unknown.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "fuzz_api.h"
#include "api/urlpath.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/store.h"

#define INPUT_MAX (API_URLPATH_MAX + 64)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_urlpath: invariant broken: %s\n", what);
        abort();
    }
}

static api_context *ctx;

static void open_store(void)
{
    api_context_opts opts;

    memset(&opts, 0, sizeof(opts));
    opts.max_exports = 1;
    ctx = fuzz_api_open("fuzz_urlpath", &opts);
}

static void check_decode(const char *in, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = NULL, *again = NULL, *enc;
    size_t n = 0, n2 = 0;
    int rc = api_urlpath_decode(&out, &n, in, len);

    if (len > API_URLPATH_MAX) {
        check(rc == LAYER_ETOOBIG, "overlong input accepted");
        return;
    }
    check((rc == 0) == api_urlpath_escapes_valid(in, len),
          "escape check disagrees with the decoder");
    if (rc != 0) {
        check(out == NULL, "output on failure");
        return;
    }
    check(n <= len, "decoding grew the input");
    check(memchr(out, '\0', n) == NULL && out[n] == '\0', "NUL in output");

    /* encode every byte and decode once more: the same bytes */
    enc = malloc(3 * n + 1);
    check(enc != NULL, "malloc");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];

        enc[3 * i] = '%';
        enc[3 * i + 1] = hex[c >> 4];
        enc[3 * i + 2] = hex[c & 15];
    }
    if (3 * n <= API_URLPATH_MAX) {
        check(api_urlpath_decode(&again, &n2, enc, 3 * n) == 0,
              "re-encoded path refused");
        check(n2 == n && memcmp(again, out, n) == 0, "round trip");
    }
    free(enc);
    layer_free(again);

    if (api_urlpath_check(out, n) == 0) {
        size_t seg = 0;

        check(n > 0 && out[0] != '/' && out[n - 1] != '/', "edge slash");
        for (size_t i = 0; i <= n; i++) {
            if (i < n && out[i] != '/')
                continue;
            check(i > seg, "empty segment accepted");
            check(!(i - seg == 1 && out[seg] == '.'), "'.' accepted");
            check(!(i - seg == 2 && out[seg] == '.' && out[seg + 1] == '.'),
                  "'..' accepted");
            seg = i + 1;
        }
    }
    layer_free(out);
}

static const char *no_value(void *conn, const char *name)
{
    (void)conn;
    (void)name;
    return NULL;
}

static void check_handle(const char *path)
{
    static const char *const routes[] = {
        "unmatched",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.yaml",
        "/layers",
        "/layers/{id}",
        "/layers/{id}/export",
        "/layers/{id}/entries",
        "/layers/{id}/entries/{path}",
        "/layers/{id}/files/{path}",
    };
    api_request req;
    api_response res;
    bool known = false;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.raw_path = path;
    req.header = no_value;
    req.query = no_value;
    api_handle(&res, ctx, &req);
    check(res.status >= 200 && res.status <= 599, "status");
    check(res.route != NULL, "route");
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        known |= strcmp(res.route, routes[i]) == 0;
    check(known, "route is not a template");
    if (res.status >= 400) {
        json_t *j = json_loadb(res.body, res.body_len, 0, NULL);

        check(j != NULL, "problem is not JSON");
        check(json_integer_value(json_object_get(j, "status")) == res.status,
              "problem status");
        json_decref(j);
    }
    api_response_dispose(&res);
    check(api_exports_active(ctx) == 0, "export slot leaked");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char in[INPUT_MAX + 1];
    static char prefixed[INPUT_MAX + 32];

    if (ctx == NULL)
        open_store();
    if (size > INPUT_MAX)
        size = INPUT_MAX;
    memcpy(in, data, size);
    in[size] = '\0';
    check_decode(in, size);
    check_handle(in);
    snprintf(prefixed, sizeof(prefixed), "/layers/x/files/%s", in);
    check_handle(prefixed);
    return 0;
}
