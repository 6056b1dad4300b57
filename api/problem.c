/*
 * Problem details (RFC 9457) and THE mapping from liblayer error codes to
 * HTTP statuses: every handler that fails goes through here, so a code
 * means the same status on every route.
 *
 * A problem body is {"type", "title", "status", "detail", "instance",
 * "trace_id"}. "type" is https://layerd.dev/problems/<slug> when the
 * problem has layerd-specific meaning, else "about:blank" with the
 * status's reason phrase as title (RFC 9457 section 4.2.1). "instance" is
 * the request path as received (bytes outside printable ASCII escaped),
 * "trace_id" the request's trace id, so a user can quote it to an
 * operator. Server-side failures (5xx) never put liblayer's message in
 * the body: it may name host paths; it goes to the request span instead.
 * Client errors carry liblayer's message with the store's root directory
 * replaced by "<store>".
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

#include "api/json_bytes.h"
#include "layer/error.h"
#include "layer/trace.h"

/* Longest "instance" echoed back (the path may be 8 KiB). */
#define INSTANCE_MAX 1024
/* Longest detail kept. */
#define DETAIL_MAX 1024

typedef struct problem_kind {
    int code;
    int status;
    const char *slug;
    const char *title;
} problem_kind;

/*
 * The mapping. Choices:
 * - ETOOBIG (a cap of the reader: depth, path length, chain) and
 *   EUNSUPPORTED (e.g. overlay redirect or metacopy layers) are 422: the
 *   request is well formed, this layer cannot be served; retrying will
 *   not help.
 * - ECHANGED and EEXISTS are 409 Conflict with the layer's current state.
 * - EBROKEN is 500 with its own title: the store's metadata is wrong, an
 *   operator must look; 502 would blame an upstream that does not exist.
 * - EBUSY, ENOMEM, EAGAIN and ECANCELED are 503: transient, retry later.
 */
static const problem_kind kinds[] = {
    {LAYER_ENOTFOUND, 404, "not-found", "Not found"},
    {LAYER_EINVALID, 400, "invalid-request", "Invalid request"},
    {LAYER_ETOOBIG, 422, "limit-exceeded", "A limit was exceeded"},
    {LAYER_ECHANGED, 409, "layer-changed", "Layer changed while read"},
    {LAYER_EUNSUPPORTED, 422, "unsupported-layer", "Layer not supported"},
    {LAYER_EEXISTS, 409, "conflict", "Conflict"},
    {LAYER_EBROKEN, 500, "broken-store", "Layer store is broken"},
    {LAYER_EBUSY, 503, "busy", "Server busy"},
    {LAYER_ENOMEM, 503, "out-of-memory", "Server out of memory"},
    {LAYER_EAGAIN, 503, "busy", "Server busy"},
    {LAYER_ECANCELED, 503, "canceled", "Operation canceled"},
};

static const problem_kind internal_kind = {LAYER_ERROR, 500, "internal-error",
                                           "Internal server error"};

static const problem_kind *kind_of(int code)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (kinds[i].code == code)
            return &kinds[i];
    }
    return &internal_kind;
}

int api_problem__status(int code)
{
    return kind_of(code)->status;
}

const char *api_problem__reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 421:
        return "Misdirected Request";
    case 422:
        return "Unprocessable Content";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    }
    return "Unknown";
}

/* The request path with bytes outside printable ASCII percent-encoded. */
static json_t *instance_of(const char *raw)
{
    static const char hex[] = "0123456789ABCDEF";
    char buf[INSTANCE_MAX + 4];
    size_t n = 0;

    if (raw == NULL)
        return NULL;
    for (size_t i = 0; raw[i] != '\0' && raw[i] != '?' && raw[i] != '#'; i++) {
        unsigned char c = (unsigned char)raw[i];

        if (n + 3 > INSTANCE_MAX) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        if (c > 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf[n++] = (char)c;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[c >> 4];
            buf[n++] = hex[c & 15];
        }
    }
    return json_stringn(buf, n);
}

void api_problem__set(api_call *call, int status, const char *slug,
                      const char *title, const char *detail)
{
    api_response *res = call->res;
    char detail_copy[DETAIL_MAX];
    char type[96];
    char trace[33];
    char retry[24];
    json_t *doc;

    /* detail may be layer_error_last(): copy it before anything else can
     * record an error. */
    if (detail != NULL)
        snprintf(detail_copy, sizeof(detail_copy), "%s", detail);
    api_response__reset(res);
    if (slug != NULL)
        snprintf(type, sizeof(type), "%s%s", API_PROBLEM_BASE, slug);
    else
        snprintf(type, sizeof(type), "about:blank");
    if (title == NULL)
        title = api_problem__reason(status);

    doc = json_object();
    if (doc != NULL) {
        json_object_set_new(doc, "type", json_string(type));
        json_object_set_new(doc, "title", json_string(title));
        json_object_set_new(doc, "status", json_integer(status));
        if (detail != NULL)
            json_object_set_new(
                doc, "detail",
                api_json_string_bytes(detail_copy, strlen(detail_copy), NULL));
        json_object_set_new(doc, "instance", instance_of(call->req->raw_path));
        if (call->req->span != NULL) {
            layer_span_trace_id_hex(call->req->span, trace);
            json_object_set_new(doc, "trace_id", json_string(trace));
        }
    }
    if (api_response__json(res, status, API_TYPE_PROBLEM, doc) < 0) {
        /* Out of memory: still answer with the status, without a body. */
        api_response__reset(res);
        res->status = status;
        res->has_length = true;
        res->content_length = 0;
        return;
    }
    if (status == 503 && call->ctx != NULL &&
        call->ctx->export_retry_after > 0) {
        snprintf(retry, sizeof(retry), "%u", call->ctx->export_retry_after);
        (void)api_response_add_header(res, "Retry-After", retry);
    }
}

/*
 * Copy msg to out with every occurrence of the store's root directory
 * replaced by "<store>": liblayer's messages name host paths, which a
 * client has no business seeing.
 */
static void scrub(char *out, size_t cap, const char *msg,
                  const api_context *ctx)
{
    const char *spec =
        ctx != NULL && ctx->store != NULL ? layer_store_spec(ctx->store) : NULL;
    const char *root = spec != NULL ? strchr(spec, ':') : NULL;
    size_t rlen, n = 0;

    if (root == NULL || (rlen = strlen(++root)) == 0) {
        snprintf(out, cap, "%s", msg);
        return;
    }
    while (*msg != '\0' && n + 1 < cap) {
        if (strncmp(msg, root, rlen) == 0) {
            int w = snprintf(out + n, cap - n, "<store>");

            if (w < 0 || (size_t)w >= cap - n)
                break;
            n += (size_t)w;
            msg += rlen;
            continue;
        }
        out[n++] = *msg++;
    }
    out[n < cap ? n : cap - 1] = '\0';
}

int api_problem__recode(int code)
{
    char msg[DETAIL_MAX];

    snprintf(msg, sizeof(msg), "%s", layer_error_last());
    return layer_error_set(code, "%s", msg);
}

void api_problem__from_error(api_call *call, int code)
{
    const problem_kind *k = kind_of(code);
    char detail[DETAIL_MAX];

    if (k->status >= 500) {
        /* The message stays server-side: record it on the request span. */
        layer_span_set_error(call->req->span, call->route, code);
        if (call->req->span != NULL)
            snprintf(detail, sizeof(detail),
                     "%s (%s); the server log has the details under this "
                     "trace id",
                     k->title, layer_error_name(code));
        else
            snprintf(detail, sizeof(detail), "%s (%s)", k->title,
                     layer_error_name(code));
    } else {
        scrub(detail, sizeof(detail), layer_error_last(), call->ctx);
    }
    api_problem__set(call, k->status, k->slug, k->title, detail);
}
