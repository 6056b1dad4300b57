/*
 * Fuzz target: the registry view's parsing of what a client sends
 * (api/registry*.c): repository names, tags and digests against the
 * spec's grammars, the /v2/ path split, the Accept values, n and last.
 *
 * The first byte picks what the rest is:
 * - 0: a string for the grammars. Invariants: a valid name is at most
 *   255 bytes of [a-z0-9._/-], every '/'-separated piece a valid
 *   component; a valid tag is at most 128 bytes of [A-Za-z0-9._-]; a
 *   sha256 digest passes the general digest grammar.
 * - 1: a path after "/v2/", asked with GET, HEAD and DELETE;
 * - 2: an Accept value (split at the first NUL into several header
 *   lines), for GET /v2/layers/x/manifests/latest;
 * - 3: the value of n, then (after a NUL) last, for /v2/_catalog.
 * api_handle() must answer each with a status from 200 to 599; under
 * /v2 with Docker-Distribution-API-Version (but for the checks every
 * request meets first: 400, 414); a registry error's body must parse and
 * name its code; every method but GET and HEAD is 405. The store is an
 * empty dir: store made once under $TMPDIR (removed at exit).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../../api/registry_int.h"
#include "api/api.h"
#include "fuzz_api.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/store.h"

#define INPUT_MAX 4096
#define LINES_MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_registry: invariant broken: %s\n", what);
        abort();
    }
}

static api_context *ctx;

static void open_store(void)
{
    api_context_opts opts;

    memset(&opts, 0, sizeof(opts));
    ctx = fuzz_api_open("fuzz_registry", &opts);
    api_set_ready(ctx, true);
}

/* A fake request's headers and query. */
typedef struct fake {
    const char *accept[LINES_MAX];
    size_t naccept;
    const char *n, *last;
} fake;

static const char *fake_header(void *conn, const char *name)
{
    fake *f = conn;

    if (strcasecmp(name, "Accept") == 0 && f->naccept > 0)
        return f->accept[0];
    return NULL;
}

static size_t fake_values(void *conn, const char *name, const char **out,
                          size_t max)
{
    fake *f = conn;
    size_t n = 0;

    if (strcasecmp(name, "Accept") != 0)
        return 0;
    for (; n < f->naccept && n < max; n++)
        out[n] = f->accept[n];
    return n;
}

static const char *fake_query(void *conn, const char *name)
{
    fake *f = conn;

    if (strcmp(name, "n") == 0)
        return f->n;
    if (strcmp(name, "last") == 0)
        return f->last;
    return NULL;
}

static const char *res_header(const api_response *res, const char *name)
{
    for (size_t i = 0; i < res->nheaders; i++) {
        if (strcasecmp(res->headers[i].name, name) == 0)
            return res->headers[i].value;
    }
    return NULL;
}

static void ask(const char *method, const char *path, fake *f)
{
    api_request req;
    api_response res;
    const char *ctype;

    memset(&req, 0, sizeof(req));
    req.method = method;
    req.raw_path = path;
    req.header = fake_header;
    req.header_values = fake_values;
    req.query = fake_query;
    req.conn = f;
    req.client_address = "127.0.0.1";
    api_handle(&res, ctx, &req);
    check(res.status >= 200 && res.status <= 599, "status out of range");
    ctype = res_header(&res, "Content-Type");
    if (res_header(&res, "Docker-Distribution-API-Version") == NULL)
        check(res.status == 400 || res.status == 414 || res.status == 431,
              "a /v2 answer without Docker-Distribution-API-Version");
    else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        check(res.status == 405, "a push method not refused with 405");
    if (res.status >= 400 && ctype != NULL &&
        strcmp(ctype, "application/json") == 0 && res.body != NULL) {
        json_error_t jerr;
        json_t *doc = json_loadb(res.body, res.body_len, 0, &jerr);
        json_t *e = json_array_get(json_object_get(doc, "errors"), 0);

        check(doc != NULL, "an error body that does not parse");
        check(json_is_string(json_object_get(e, "code")),
              "an error without a code");
        json_decref(doc);
    }
    api_response_dispose(&res);
}

static void grammars(const char *s, size_t len)
{
    if (api_registry__name_valid(s, len)) {
        size_t start = 0;

        check(len > 0 && len <= REG_NAME_MAX, "name length");
        for (size_t i = 0; i <= len; i++) {
            if (i < len && s[i] != '/') {
                check(strchr("abcdefghijklmnopqrstuvwxyz0123456789._-", s[i]) !=
                          NULL,
                      "name byte");
                continue;
            }
            check(api_registry__component_valid(s + start, i - start),
                  "a component of a valid name is not valid");
            start = i + 1;
        }
    }
    if (api_registry__tag_valid(s, len)) {
        check(len > 0 && len <= REG_TAG_MAX, "tag length");
        for (size_t i = 0; i < len; i++)
            check(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789._-",
                         s[i]) != NULL,
                  "tag byte");
    }
    if (api_registry__digest_sha256(s, len))
        check(api_registry__digest_syntax(s, len),
              "a sha256 digest that breaks the digest grammar");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[INPUT_MAX + 8];
    char path[INPUT_MAX + 16];
    fake f;
    size_t len;

    if (ctx == NULL)
        open_store();
    if (size < 1 || size > INPUT_MAX)
        return 0;
    len = size - 1;
    memcpy(buf, data + 1, len);
    buf[len] = '\0';
    memset(&f, 0, sizeof(f));
    switch (data[0] % 4) {
    case 0:
        grammars(buf, len);
        break;
    case 1:
        if (memchr(buf, '\0', len) != NULL)
            break;
        snprintf(path, sizeof(path), "/v2/%s", buf);
        ask("GET", path, &f);
        ask("HEAD", path, &f);
        ask("DELETE", path, &f);
        break;
    case 2: {
        char *p = buf;

        while (f.naccept < LINES_MAX && p <= buf + len) {
            f.accept[f.naccept++] = p;
            p += strlen(p) + 1;
        }
        ask("GET", "/v2/layers/x/manifests/latest", &f);
        break;
    }
    default:
        f.n = buf;
        f.last = strlen(buf) < len ? buf + strlen(buf) + 1 : NULL;
        ask("GET", "/v2/_catalog", &f);
        break;
    }
    return 0;
}
