/*
 * The REST front door: the route table, request checks common to every
 * route, and the helpers that build responses.
 *
 * api_handle() matches the still-encoded path against the route templates
 * segment by segment ("{id}" is one segment, "{path}" the rest), so an
 * escaped '/' inside an id can never change which route is taken. Each
 * captured piece is then percent-decoded exactly once (api/urlpath.h) and
 * validated: ids with layer_id_valid(), entry paths with
 * api_urlpath_check(). Only GET and HEAD exist; HEAD runs the GET handler
 * with res->head set and the server drops the body. Every response, errors
 * included, carries the request's traceparent.
 *
 * Order of the checks: the size of the request line and headers (431
 * past max_header_bytes) and the Host (421) first, for every request;
 * then the path, the route and the method; then, for every route that is
 * not open, access control (api/auth_rest.c), which decides from the
 * credentials and the id alone, before any handler runs and so before any
 * store is asked; last, for a GET of a streamed resource (export,
 * entries, summary, file bytes), a stream slot, or 503 with Retry-After
 * when max_streams streams are running. A handler that answers with a
 * producer keeps the slot until the producer is freed (the producer is
 * wrapped so that its free gives the slot back); any other answer gives
 * it back at once. Taking the slot before the handler bounds what concurrent
 * streams hold (readers, their descriptors, buffers) whatever the handler
 * opens.
 */
#include "api_int.h"
#include "registry_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/urlpath.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/store.h"
#include "layer/text.h"
#include "layer/trace.h"

typedef struct route_def {
    const char *template;
    api_handler_fn fn;
    api_access access; /* who may use it (api/auth_rest.c) */
    bool stream;       /* a GET answers with a producer: takes a stream slot */
} route_def;

/* Longer templates after shorter ones is fine: matching is exact. The
 * dashboard's files, the health checks and the contract hold no data
 * and are open; what the page fetches from the API is checked like any
 * other request. */
static const route_def routes[] = {
    {"/", api_ui__root, API_ACCESS_OPEN, false},
    {"/ui", api_ui__redirect, API_ACCESS_OPEN, false},
    {"/ui/", api_ui__index, API_ACCESS_OPEN, false},
    {"/ui/{path}", api_ui__file, API_ACCESS_OPEN, false},
    {"/healthz", api_health__healthz, API_ACCESS_OPEN, false},
    {"/readyz", api_health__readyz, API_ACCESS_OPEN, false},
    {"/metrics", api_health__metrics, API_ACCESS_METRICS, false},
    {"/openapi.yaml", api_health__openapi, API_ACCESS_OPEN, false},
    {"/layers", api_layers__list, API_ACCESS_LIST, false},
    {"/layers/{id}", api_layers__get, API_ACCESS_LAYER, false},
    {"/layers/{id}/export", api_export__get, API_ACCESS_LAYER, true},
    {"/layers/{id}/entries", api_entries__list, API_ACCESS_LAYER, true},
    {"/layers/{id}/entries/{path}", api_entries__get, API_ACCESS_LAYER, false},
    {"/layers/{id}/summary", api_summary__get, API_ACCESS_LAYER, true},
    {"/layers/{id}/files/{path}", api_files__get, API_ACCESS_LAYER, true},
};

/* A producer wrapped to give its stream slot back when it is freed. */
typedef struct slot_producer {
    api_producer inner;
    api_context *ctx;
    uint64_t fds; /* the reader's descriptors, given back with the slot */
} slot_producer;

static ssize_t slot_read(void *ctx, char *buf, size_t cap)
{
    slot_producer *p = ctx;

    return p->inner.read(p->inner.ctx, buf, cap);
}

static void slot_set_wake(void *ctx, void (*wake)(void *arg), void *arg)
{
    slot_producer *p = ctx;

    p->inner.set_wake(p->inner.ctx, wake, arg);
}

static size_t slot_trailers(void *ctx, const api_header **out)
{
    slot_producer *p = ctx;

    return p->inner.trailers(p->inner.ctx, out);
}

static void slot_finish(void *ctx, bool completed)
{
    slot_producer *p = ctx;

    p->inner.finish(p->inner.ctx, completed);
}

static void slot_free(void *ctx)
{
    slot_producer *p = ctx;

    if (p->inner.free != NULL)
        p->inner.free(p->inner.ctx);
    api_streams_release(p->ctx);
    if (p->fds > 0)
        api_fds_release(p->ctx, p->fds);
    layer_free(p);
}

/* Hand the stream slot taken for res to its producer, or give it back
 * when res has none. Without memory for the wrapper the answer becomes
 * a 503 (and the slot is given back). */
static void keep_slot(api_call *call)
{
    api_response *res = call->res;
    slot_producer *p;

    if (res->producer.read == NULL) {
        api_streams_release(call->ctx);
        return;
    }
    if ((p = layer_trycalloc(1, sizeof(*p))) == NULL) {
        api_streams_release(call->ctx);
        api_problem__from_error(call, LAYER_ENOMEM);
        return;
    }
    p->inner = res->producer;
    p->ctx = call->ctx;
    p->fds = call->fds;
    call->fds = 0;
    res->producer.read = slot_read;
    res->producer.set_wake = p->inner.set_wake != NULL ? slot_set_wake : NULL;
    res->producer.trailers = p->inner.trailers != NULL ? slot_trailers : NULL;
    res->producer.finish = p->inner.finish != NULL ? slot_finish : NULL;
    res->producer.free = slot_free;
    res->producer.ctx = p;
}

/*
 * The registry view (api/registry.c) has its own routing, methods and
 * error bodies; a GET that may stream (a blob, a manifest waiting for its
 * blobs) takes a stream slot as the REST streams do.
 */
static void registry(api_call *call, bool get, size_t len)
{
    bool stream = get && api_registry__streams(call->req->raw_path, len);

    call->route = "/v2/";
    call->res->route = "/v2/";
    if (stream && api_streams_acquire(call->ctx) < 0) {
        api_registry__busy(call);
        return;
    }
    api_registry__handle(call);
    if (stream)
        keep_slot(call);
}

/* Route label for requests that match nothing (bounded metric labels). */
static const char unmatched_route[] = "unmatched";

/* Longest literal segment of a template, decoded. */
#define LITERAL_MAX 32

/* The captures of a matched route, still encoded. */
typedef struct match {
    const char *id;
    size_t id_len;
    const char *path;
    size_t path_len;
} match;

/* Does the encoded segment seg decode to the literal lit? */
static bool literal_matches(const char *seg, size_t len, const char *lit,
                            size_t lit_len)
{
    char buf[LITERAL_MAX];
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)seg[i];

        if (n == sizeof(buf))
            return false;
        if (c == '%') {
            unsigned char v;

            /* The whole path's escapes were checked already
             * (api_urlpath_escapes_valid()), so this cannot fail. */
            if (i + 2 >= len || !layer_text_hex_decode(&v, seg + i + 1, 1, 0))
                return false;
            c = v;
            i += 2;
        }
        buf[n++] = (char)c;
    }
    return n == lit_len && memcmp(buf, lit, n) == 0;
}

/* Match path (len bytes, leading '/') against a template. */
static bool route_match(match *m, const char *tpl, const char *path, size_t len)
{
    size_t pi = 0;

    memset(m, 0, sizeof(*m));
    while (*tpl != '\0') {
        const char *tend;
        size_t tlen, send;

        if (*tpl != '/' || pi >= len || path[pi] != '/')
            return false;
        tpl++;
        pi++;
        tend = strchr(tpl, '/');
        tlen = tend != NULL ? (size_t)(tend - tpl) : strlen(tpl);
        if (tlen == 6 && memcmp(tpl, "{path}", 6) == 0) {
            if (pi >= len)
                return false;
            m->path = path + pi;
            m->path_len = len - pi;
            return tpl[tlen] == '\0';
        }
        for (send = pi; send < len && path[send] != '/'; send++)
            ;
        if (tlen == 4 && memcmp(tpl, "{id}", 4) == 0) {
            if (send == pi)
                return false;
            m->id = path + pi;
            m->id_len = send - pi;
        } else if (!literal_matches(path + pi, send - pi, tpl, tlen)) {
            return false;
        }
        pi = send;
        tpl += tlen;
    }
    return pi == len;
}

static void add_traceparent(api_response *res, const api_request *req)
{
    char tp[56];

    if (req->span == NULL)
        return;
    layer_traceparent_format(req->span, tp);
    (void)api_response_add_header(res, "traceparent", tp);
}

/* Decode and validate the captures into call; sets a problem on error. */
static int bind_captures(api_call *call, const match *m)
{
    int rc = 0;
    size_t n = 0;
    bool in_path = false;

    if (m->id != NULL) {
        if ((rc = api_urlpath_decode(&call->id, &n, m->id, m->id_len)) < 0)
            goto out;
        if (!layer_id_valid(call->id, n)) {
            rc = layer_error_set(LAYER_EINVALID,
                                 "malformed layer id (expected "
                                 "[A-Za-z0-9][A-Za-z0-9_.:-]{0,127} or "
                                 "sha256:<64 hex>)");
            goto out;
        }
    }
    if (m->path != NULL) {
        in_path = true;
        if ((rc = api_urlpath_decode(&call->path, &call->path_len, m->path,
                                     m->path_len)) < 0 ||
            (rc = api_urlpath_check(call->path, call->path_len)) < 0)
            goto out;
    }
out:
    if (rc == LAYER_ETOOBIG)
        api_problem__set(call, 414, "uri-too-long", "URI Too Long",
                         layer_error_last());
    else if (rc == LAYER_EINVALID && in_path)
        api_problem__set(call, 400, "invalid-path", "Invalid entry path",
                         layer_error_last());
    else if (rc == LAYER_EINVALID)
        api_problem__set(call, 400, "invalid-id", "Invalid layer id",
                         layer_error_last());
    else if (rc < 0)
        api_problem__from_error(call, rc);
    return rc;
}

void api_handle(api_response *out, api_context *ctx, const api_request *req)
{
    api_call call;
    const route_def *found = NULL;
    match m;
    size_t len;
    bool get, head;

    memset(out, 0, sizeof(*out));
    memset(&call, 0, sizeof(call));
    call.ctx = ctx;
    call.req = req;
    call.res = out;
    call.route = unmatched_route;
    call.who = (api_identity)API_IDENTITY_INIT;
    out->route = unmatched_route;

    get = req->method != NULL && strcmp(req->method, "GET") == 0;
    head = req->method != NULL && strcmp(req->method, "HEAD") == 0;
    out->head = head;

    if (ctx->max_header_bytes > 0 &&
        req->header_bytes > ctx->max_header_bytes) {
        char detail[128];

        snprintf(detail, sizeof(detail),
                 "the request line and headers take %zu bytes; this server "
                 "accepts at most %zu",
                 req->header_bytes, ctx->max_header_bytes);
        api_problem__set(&call, 431, "headers-too-large",
                         "Request Header Fields Too Large", detail);
        goto out;
    }

    if (api_auth__check_host(&call) < 0)
        goto out;
    /* The server passes the path alone; be safe if a query slipped in. */
    len = req->raw_path != NULL ? strcspn(req->raw_path, "?#") : 0;
    if (len > API_URLPATH_MAX) {
        api_problem__set(&call, 414, "uri-too-long", "URI Too Long",
                         "the request path is longer than 8192 bytes");
        goto out;
    }
    if (len == 0 || req->raw_path[0] != '/' ||
        !api_urlpath_escapes_valid(req->raw_path, len)) {
        api_problem__set(&call, 400, "invalid-request", "Invalid request path",
                         "the path must start with '/' and its "
                         "percent-escapes must be well formed and not "
                         "encode NUL");
        goto out;
    }
    if (len >= 3 && memcmp(req->raw_path, "/v2", 3) == 0 &&
        (len == 3 || req->raw_path[3] == '/')) {
        registry(&call, get, len);
        goto out;
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (route_match(&m, routes[i].template, req->raw_path, len)) {
            found = &routes[i];
            break;
        }
    }
    if (found == NULL) {
        api_problem__set(&call, 404, NULL, NULL,
                         "no resource at this path; see /openapi.yaml");
        goto out;
    }
    call.route = found->template;
    out->route = found->template;
    if (!get && !head) {
        api_problem__set(&call, 405, NULL, NULL,
                         "only GET and HEAD are supported");
        (void)api_response_add_header(out, "Allow", "GET, HEAD");
        goto out;
    }
    if (bind_captures(&call, &m) < 0 ||
        api_auth__enforce(&call, found->access) < 0)
        goto out;
    if (found->stream && get) {
        if (api_streams_acquire(ctx) < 0) {
            char detail[96];

            snprintf(detail, sizeof(detail),
                     "%u streamed responses are running, the most this "
                     "server allows",
                     ctx->max_streams);
            api_problem__set(&call, 503, "too-many-streams", "Too many streams",
                             detail);
            goto out;
        }
        found->fn(&call);
        keep_slot(&call);
        goto out;
    }
    found->fn(&call);
out:
    if (call.fds > 0)
        api_fds_release(ctx, call.fds);
    add_traceparent(out, req);
    api_identity_dispose(&call.who);
    layer_free(call.id);
    layer_free(call.path);
}

int api_response_add_header(api_response *res, const char *name,
                            const char *value)
{
    char *n = NULL, *v = NULL;

    if (res->nheaders == API_MAX_HEADERS)
        return layer_error_set(LAYER_ETOOBIG, "too many response headers");
    if ((n = layer_trystrdup(name)) == NULL ||
        (v = layer_trystrdup(value)) == NULL) {
        layer_free(n);
        return LAYER_ENOMEM;
    }
    res->headers[res->nheaders].name = n;
    res->headers[res->nheaders].value = v;
    res->nheaders++;
    return 0;
}

void api_response_dispose(api_response *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->nheaders; i++) {
        layer_free(res->headers[i].name);
        layer_free(res->headers[i].value);
    }
    res->nheaders = 0;
    layer_free(res->body);
    res->body = NULL;
    res->body_len = 0;
    if (res->producer.free != NULL)
        res->producer.free(res->producer.ctx);
    memset(&res->producer, 0, sizeof(res->producer));
}

void api_response__reset(api_response *res)
{
    const char *route = res->route;
    bool head = res->head;

    api_response_dispose(res);
    memset(res, 0, sizeof(*res));
    res->route = route;
    res->head = head;
}

int api_response__set_body(api_response *res, int status, const char *ctype,
                           char *body, size_t len)
{
    int rc;

    if ((rc = api_response_add_header(res, "Content-Type", ctype)) < 0) {
        layer_free(body);
        return rc;
    }
    layer_free(res->body);
    res->body = body;
    res->body_len = len;
    res->status = status;
    res->has_length = true;
    res->content_length = len;
    return 0;
}

int api_json__dump(char **out, size_t *out_len, const json_t *doc, size_t extra)
{
    size_t need = json_dumpb(doc, NULL, 0, JSON_COMPACT);
    char *buf;

    if (need == 0 || need > SIZE_MAX - extra - 1)
        return layer_error_set(LAYER_ENOMEM, "cannot serialise JSON");
    if ((buf = layer_trymalloc(need + extra + 1)) == NULL)
        return LAYER_ENOMEM;
    if (json_dumpb(doc, buf, need, JSON_COMPACT) != need) {
        layer_free(buf);
        return layer_error_set(LAYER_ERROR, "JSON serialisation changed size");
    }
    buf[need] = '\0';
    *out = buf;
    *out_len = need;
    return 0;
}

int api_response__json(api_response *res, int status, const char *ctype,
                       json_t *doc)
{
    int rc = 0;
    char *buf = NULL;
    size_t len = 0;

    if (doc == NULL) {
        rc = layer_error_set(LAYER_ENOMEM, "out of memory building JSON");
        goto out;
    }
    if ((rc = api_json__dump(&buf, &len, doc, 1)) < 0)
        goto out;
    buf[len++] = '\n';
    buf[len] = '\0';
    rc = api_response__set_body(res, status, ctype, buf, len);
out:
    json_decref(doc);
    return rc;
}

int api_query__get(const char **out, api_call *call, const char *name)
{
    const char *v = NULL;
    char detail[96];

    if (call->req->query != NULL)
        v = call->req->query(call->req->conn, name);
    if (v != NULL && strnlen(v, API_QUERY_MAX + 1) > API_QUERY_MAX) {
        snprintf(detail, sizeof(detail),
                 "query parameter '%s' is longer than %d bytes", name,
                 API_QUERY_MAX);
        api_problem__set(call, 414, "uri-too-long", "URI Too Long", detail);
        return LAYER_ETOOBIG;
    }
    *out = v;
    return 0;
}

int api_query__uint(uint64_t *out, api_call *call, const char *name,
                    uint64_t def, uint64_t min, uint64_t max)
{
    const char *v;
    uint64_t n = 0;
    char detail[160];
    bool ok;
    int rc;

    if ((rc = api_query__get(&v, call, name)) < 0)
        return rc;
    if (v == NULL) {
        *out = def;
        return 0;
    }
    ok = v[0] != '\0';
    for (size_t i = 0; v[i] != '\0'; i++) {
        /* 19 digits always fit in 64 bits. */
        if (v[i] < '0' || v[i] > '9' || i >= 19) {
            ok = false;
            break;
        }
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    if (!ok || n < min || n > max) {
        snprintf(detail, sizeof(detail),
                 "query parameter '%s' must be an integer from %llu to %llu",
                 name, (unsigned long long)min, (unsigned long long)max);
        api_problem__set(call, 400, "invalid-parameter", "Invalid parameter",
                         detail);
        return LAYER_EINVALID;
    }
    *out = n;
    return 0;
}

int api_query__path(char **out, size_t *out_len, api_call *call,
                    const char *name)
{
    const char *v;
    size_t len;
    char *copy = NULL;
    char detail[256];
    int rc;

    if ((rc = api_query__get(&v, call, name)) < 0)
        return rc;
    *out = NULL;
    *out_len = 0;
    if (v == NULL)
        return 0;
    len = strlen(v);
    if (len > 0 && v[len - 1] == '/')
        len--;
    if ((rc = api_urlpath_check(v, len)) < 0) {
        snprintf(detail, sizeof(detail), "query parameter '%s': %s", name,
                 layer_error_last());
        api_problem__set(call, 400, "invalid-parameter", "Invalid parameter",
                         detail);
        return rc;
    }
    if ((copy = layer_trystrndup(v, len)) == NULL) {
        api_problem__from_error(call, LAYER_ENOMEM);
        return LAYER_ENOMEM;
    }
    *out = copy;
    *out_len = len;
    return 0;
}

/* Does an If-None-Match list contain etag (weak comparison) or "*"? */
bool api_etag__listed(const char *list, const char *etag)
{
    size_t elen = strlen(etag);

    for (const char *p = list; *p != '\0';) {
        size_t n;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == elen && memcmp(p, etag, n) == 0)
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

/* One media range of an Accept header. */
typedef struct accept_range {
    const char *type; /* "type/sub", not NUL-terminated */
    size_t type_len;
    unsigned q; /* weight in thousandths, 0..1000 */
} accept_range;

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Parse a qvalue ("0", "0.5", "1.000"); false if malformed. */
static bool parse_qvalue(unsigned *out, const char *s, size_t len)
{
    unsigned v = 0, scale = 1000;

    if (len == 0 || (s[0] != '0' && s[0] != '1'))
        return false;
    v = (unsigned)(s[0] - '0') * 1000;
    if (len > 1) {
        if (s[1] != '.' || len > 5)
            return false;
        for (size_t i = 2; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            scale /= 10;
            v += (unsigned)(s[i] - '0') * scale;
        }
    }
    if (v > 1000)
        return false;
    *out = v;
    return true;
}

/*
 * Parse the element s[0..len) ("type/sub;p=v;q=0.5") into r; false for
 * an element to ignore (empty or malformed).
 */
static bool parse_range(accept_range *r, const char *s, size_t len)
{
    size_t i = 0, end;

    while (i < len && is_ows(s[i]))
        i++;
    for (end = i; end < len && s[end] != ';' && !is_ows(s[end]); end++)
        ;
    if (end == i || memchr(s + i, '/', end - i) == NULL)
        return false;
    r->type = s + i;
    r->type_len = end - i;
    r->q = 1000;
    while (end < len) {
        size_t p, pend;

        while (end < len && (is_ows(s[end]) || s[end] == ';'))
            end++;
        p = end;
        for (pend = p; pend < len && s[pend] != ';'; pend++)
            ;
        end = pend;
        while (pend > p && is_ows(s[pend - 1]))
            pend--;
        if (pend - p >= 2 && (s[p] == 'q' || s[p] == 'Q') && s[p + 1] == '=') {
            if (!parse_qvalue(&r->q, s + p + 2, pend - p - 2))
                return false;
        }
    }
    return true;
}

/* How specifically range r matches type t: 3 exact, 2 "t/ *", 1 any,
 * 0 no match. */
static int range_specificity(const accept_range *r, const char *t)
{
    size_t tlen = strlen(t);
    const char *slash = strchr(t, '/');
    size_t major = slash != NULL ? (size_t)(slash - t) : tlen;

    if (r->type_len == tlen && strncasecmp(r->type, t, tlen) == 0)
        return 3;
    if (r->type_len == 3 && memcmp(r->type, "*/*", 3) == 0)
        return 1;
    if (r->type_len == major + 2 && strncasecmp(r->type, t, major) == 0 &&
        r->type[major] == '/' && r->type[major + 1] == '*')
        return 2;
    return 0;
}

int api_accept__choose(size_t *out_index, const char *accept,
                       const char *const *types, size_t ntypes)
{
    /* Per candidate: the best match so far. */
    int best_spec[8] = {0};
    unsigned best_q[8] = {0};
    size_t best_pos[8] = {0};
    size_t pos = 0, winner = SIZE_MAX;

    if (ntypes == 0 || ntypes > 8)
        return layer_error_set(LAYER_EINVALID, "bad candidate list");
    if (accept == NULL || accept[strspn(accept, " \t")] == '\0') {
        *out_index = 0;
        return 0;
    }
    for (const char *s = accept; *s != '\0'; pos++) {
        size_t len = 0;
        bool quoted = false;
        accept_range r;

        while (s[len] != '\0' && (quoted || s[len] != ',')) {
            if (s[len] == '"')
                quoted = !quoted;
            len++;
        }
        if (parse_range(&r, s, len)) {
            for (size_t i = 0; i < ntypes; i++) {
                int spec = range_specificity(&r, types[i]);

                if (spec > best_spec[i]) {
                    best_spec[i] = spec;
                    best_q[i] = r.q;
                    best_pos[i] = pos;
                }
            }
        }
        s += len;
        if (*s == ',')
            s++;
    }
    for (size_t i = 0; i < ntypes; i++) {
        if (best_spec[i] == 0 || best_q[i] == 0)
            continue;
        if (winner == SIZE_MAX || best_q[i] > best_q[winner] ||
            (best_q[i] == best_q[winner] &&
             (best_spec[i] > best_spec[winner] ||
              (best_spec[i] == best_spec[winner] &&
               best_pos[i] < best_pos[winner]))))
            winner = i;
    }
    if (winner == SIZE_MAX)
        return layer_error_set(LAYER_ENOTFOUND,
                               "no acceptable media type in Accept");
    *out_index = winner;
    return 0;
}

/* ---- byte ranges ---- */

static bool parse_u64(uint64_t *out, const char *s, size_t len)
{
    uint64_t v = 0;

    if (len == 0 || len > 19)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

api_range api_range__parse(uint64_t *first, uint64_t *last, const char *v,
                           uint64_t size)
{
    const char *dash;
    size_t len;
    uint64_t a, b;

    if (v == NULL || size == 0)
        return API_RANGE_NONE; /* an empty file: 200, as Go's ServeContent */
    while (*v == ' ' || *v == '\t')
        v++;
    if (strncasecmp(v, "bytes=", 6) != 0)
        return API_RANGE_NONE;
    v += 6;
    if (strchr(v, ',') != NULL)
        return API_RANGE_NONE; /* several ranges: ignored, see the top */
    while (*v == ' ' || *v == '\t')
        v++;
    len = strlen(v);
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if ((dash = memchr(v, '-', len)) == NULL)
        return API_RANGE_NONE;
    if (dash == v) {
        /* suffix: the last b bytes */
        if (!parse_u64(&b, v + 1, len - 1))
            return API_RANGE_NONE;
        if (b == 0)
            return API_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return API_RANGE_OK;
    }
    if (!parse_u64(&a, v, (size_t)(dash - v)))
        return API_RANGE_NONE;
    if ((size_t)(dash - v) + 1 == len) {
        b = size - 1;
    } else if (!parse_u64(&b, dash + 1, len - (size_t)(dash - v) - 1) ||
               b < a) {
        return API_RANGE_NONE;
    }
    if (a >= size)
        return API_RANGE_UNSATISFIABLE;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return API_RANGE_OK;
}
