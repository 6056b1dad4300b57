/*
 * The registry view's front door: layerd as a read-only OCI registry
 * (distribution-spec v1.1, pull side) at /v2/, over the same layers the
 * REST routes serve (DESIGN.md section 9).
 *
 * api_handle() hands every path under /v2 here whatever its method. The
 * path is split at its last "/manifests/", "/blobs/" or "/tags/list"
 * (a repository name holds '/'), decoded once, and each piece checked
 * against the spec's grammar before anything is looked up: a name that
 * breaks it is NAME_INVALID, a digest DIGEST_INVALID. Every method but
 * GET and HEAD is a push or a delete, which a read-only registry refuses
 * with 405 UNSUPPORTED (and Allow: GET, HEAD) before anything else.
 *
 * Access control asks the one decision the REST routes ask
 * (api_auth_decide(), API_OP_READ on every layer an answer shows;
 * API_OP_LIST for _catalog) and only formats refusals its own way: 401
 * UNAUTHORIZED with a Basic challenge (what registry clients answer with
 * the token as the password), 403 DENIED, and a layer hidden from the
 * request is NAME_UNKNOWN, as if it did not exist. GET /v2/ is 200 for
 * anonymous requests the policy lets read, and for every request with
 * valid credentials; else 401, so that `docker login` checks the token.
 *
 * The request span says which repository and reference were asked for
 * (registry.repository, registry.reference; the blob layer says
 * cache.result).
 *
 * Errors are the spec's JSON ({"errors":[{"code","message","detail"}]}),
 * and every answer carries Docker-Distribution-API-Version: registry/2.0
 * (docker checks it on /v2/ to tell a v2 registry).
 */
#include "registry_int.h"

#include <stdio.h>
#include <string.h>

#include "api/auth.h"
#include "api/metrics.h"
#include "api/urlpath.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/text.h"
#include "layer/trace.h"

#define API_VERSION_HEADER "Docker-Distribution-API-Version"
#define API_VERSION        "registry/2.0"

static void add_version(api_call *call)
{
    (void)api_response_add_header(call->res, API_VERSION_HEADER, API_VERSION);
}

void api_registry__error(api_call *call, int status, const char *code,
                         const char *message, json_t *detail)
{
    json_t *err, *doc;

    api_response__reset(call->res);
    err = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (err != NULL && detail != NULL)
        json_object_set_new(err, "detail", detail);
    else
        json_decref(detail);
    doc = err != NULL ? json_pack("{s:[o]}", "errors", err) : NULL;
    if (api_response__json(call->res, status, API_TYPE_JSON, doc) < 0) {
        /* Out of memory or headers full: a bare status still tells. */
        api_response__reset(call->res);
        call->res->status = status;
        call->res->has_length = true;
    }
    if (status >= 500)
        layer_span_set_error_message(call->req->span, message);
}

void api_registry__from_error(api_call *call, int code, const char *notfound)
{
    const char *msg = layer_error_last();
    char line[LAYER_ERROR_MSG_MAX + 64];

    switch (code) {
    case LAYER_ENOTFOUND:
        api_registry__error(call, 404, notfound,
                            strcmp(notfound, "BLOB_UNKNOWN") == 0
                                ? "blob unknown to registry"
                            : strcmp(notfound, "MANIFEST_UNKNOWN") == 0
                                ? "manifest unknown"
                                : "repository name not known to registry",
                            json_string(msg));
        return;
    case LAYER_EINVALID:
        api_registry__error(call, 400, "NAME_INVALID",
                            "invalid repository name", json_string(msg));
        return;
    case LAYER_EBUSY:
    case LAYER_EAGAIN:
    case LAYER_ENOMEM:
        api_registry__error(call, 503, "UNAVAILABLE",
                            "service unavailable, retry later", NULL);
        (void)api_response_add_header(call->res, "Retry-After", "1");
        return;
    case LAYER_ETOOBIG:
    case LAYER_EUNSUPPORTED:
        /* The layer cannot be served as a blob: a client error that a
         * retry will not mend (the REST routes answer 422). */
        api_registry__error(call, 422, "UNSUPPORTED",
                            "the layer cannot be served", json_string(msg));
        return;
    default:
        /* A server error: the message may name host paths; it goes to
         * the trace, not to the client. */
        snprintf(line, sizeof(line), "registry failed: %s", msg);
        layer_span_set_error(call->req->span, "registry", code);
        api_registry__error(call, 500, "UNKNOWN", "unknown error", NULL);
        layer_span_set_error_message(call->req->span, line);
        return;
    }
}

/* Answer a refusal the registry's way. */
static void refuse(api_call *call, api_verdict v, const char *what)
{
    api_auth_failure reason = api_auth_reason(&call->who, v);

    if (v == API_DENY_HIDDEN) {
        api_registry__error(call, 404, "NAME_UNKNOWN",
                            "repository name not known to registry",
                            json_pack("{s:s}", "name", what));
        return;
    }
    layer_span_set_str(call->req->span, "auth.failure",
                       api_auth_failure_name(reason));
    api_metrics_auth_failure(call->ctx->metrics, reason);
    if (v == API_DENY_FORBIDDEN) {
        api_registry__error(call, 403, "DENIED",
                            "requested access to the resource is denied",
                            json_pack("{s:s}", "name", what));
        return;
    }
    api_registry__error(call, 401, "UNAUTHORIZED",
                        reason == API_AUTH_FAIL_INVALID_TOKEN
                            ? "authentication required: the token is not "
                              "valid on this server"
                        : reason == API_AUTH_FAIL_MALFORMED
                            ? "authentication required: the Authorization "
                              "header is malformed"
                            : "authentication required: the token as the "
                              "password of Basic credentials (any user "
                              "name), or a client certificate",
                        NULL);
    (void)api_response_add_header(call->res, "WWW-Authenticate",
                                  "Basic realm=\"" API_AUTH_REALM
                                  "\", charset=\"UTF-8\"");
}

int api_registry__may_read(api_call *call, const layer_info *info)
{
    api_verdict v = api_auth__decide_read(call, info);

    if (v == API_ALLOW)
        return 0;
    refuse(call, v, info->id);
    return LAYER_EINVALID;
}

bool api_registry__may_list(api_call *call, const char *id, bool mutable_)
{
    return api_auth__may_list(
        call, id, mutable_ ? API_LAYER_MUTABLE : API_LAYER_IMMUTABLE);
}

/* Refuse early what the credentials alone decide: refused credentials,
 * and anonymous requests under a policy that gives anonymous nothing to
 * read or list. */
static int check_credentials(api_call *call, api_op op)
{
    api_verdict v;

    api_auth__identify(call);
    if (call->who.failure != API_AUTH_FAIL_NONE) {
        refuse(call, API_DENY_UNAUTHENTICATED, "");
        return LAYER_EINVALID;
    }
    if (call->who.principal != SIZE_MAX)
        return 0;
    v = api_auth_decide(&call->who, op, NULL, API_LAYER_UNKNOWN);
    if (v == API_ALLOW)
        return 0;
    refuse(call, v, "");
    return LAYER_EINVALID;
}

/* GET /v2/ */
static void base(api_call *call)
{
    if (check_credentials(call, API_OP_READ) < 0)
        return;
    if (api_response__set_body(call->res, 200, API_TYPE_JSON,
                               layer_trystrdup("{}"), 2) < 0)
        api_registry__from_error(call, LAYER_ENOMEM, "NAME_UNKNOWN");
}

void api_registry__strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        layer_free(v[i]);
    layer_free(v);
}

/* Append to t the URL query escaping of s (unreserved bytes as they are,
 * every other byte %XX). */
static void query_escape(layer_text_buf *t, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~')
            (void)layer_text_buf_add(t, &c, 1);
        else
            (void)layer_text_buf_addf(t, "%%%02X", c);
    }
}

/* The n and last of a page; false when an answer (400) was set. */
static bool page_args(api_call *call, uint64_t *n, const char **last)
{
    const char *nv = NULL;
    size_t len;

    *n = REG_PAGE_MAX;
    *last = NULL;
    if (api_query__get(&nv, call, "n") < 0 ||
        api_query__get(last, call, "last") < 0) {
        api_registry__error(call, 414, "PAGINATION_NUMBER_INVALID",
                            "query parameter too long", NULL);
        return false;
    }
    if (nv == NULL)
        return true;
    len = strlen(nv);
    if (len == 0 || len > 9 || strspn(nv, "0123456789") != len) {
        api_registry__error(call, 400, "PAGINATION_NUMBER_INVALID",
                            "invalid number of results requested",
                            json_pack("{s:s}", "n", nv));
        return false;
    }
    *n = 0;
    for (size_t i = 0; i < len; i++)
        *n = *n * 10 + (uint64_t)(nv[i] - '0');
    if (*n > REG_PAGE_MAX)
        *n = REG_PAGE_MAX;
    return true;
}

/*
 * Answer one page: items[0..count) as {key: [...]} (plus "name" for
 * tags), with a Link to the next page when more remain after them
 * (never for n=0).
 */
static void page(api_call *call, char *const *items, size_t count, bool more,
                 uint64_t n, const char *key, const char *name,
                 const char *path)
{
    json_t *doc = NULL, *arr;
    layer_text_buf link = LAYER_TEXT_BUF_INIT(4096, "Link header");

    arr = json_array();
    for (size_t i = 0; i < count && arr != NULL; i++)
        json_array_append_new(arr, json_string(items[i]));
    if (arr != NULL)
        doc = name != NULL ? json_pack("{s:s, s:o}", "name", name, key, arr)
                           : json_pack("{s:o}", key, arr);
    if (api_response__json(call->res, 200, API_TYPE_JSON, doc) < 0) {
        api_registry__from_error(call, LAYER_ENOMEM, "NAME_UNKNOWN");
        return;
    }
    if (n > 0 && more && count > 0) {
        (void)layer_text_buf_adds(&link, "<");
        (void)layer_text_buf_adds(&link, path);
        (void)layer_text_buf_adds(&link, "?last=");
        query_escape(&link, items[count - 1]);
        if (layer_text_buf_addf(&link, "&n=%llu>; rel=\"next\"",
                                (unsigned long long)n) == 0)
            (void)api_response_add_header(call->res, "Link", link.p);
    }
    layer_text_buf_dispose(&link);
}

/* GET /v2/_catalog */
static void catalog(api_call *call)
{
    char **repos = NULL;
    size_t count = 0;
    uint64_t n;
    const char *last;
    bool more = false;

    if (check_credentials(call, API_OP_LIST) < 0 || !page_args(call, &n, &last))
        return;
    if (api_registry__repositories(&repos, &count, &more, call, last,
                                   (size_t)n) < 0)
        return;
    page(call, repos, count, more, n, "repositories", NULL, "/v2/_catalog");
    api_registry__strv_free(repos, count);
}

/* GET /v2/<name>/tags/list */
static void tags(api_call *call, const char *name)
{
    char **tags = NULL;
    size_t count = 0, start = 0, end;
    uint64_t n;
    const char *last;
    layer_text_buf path = LAYER_TEXT_BUF_INIT(REG_NAME_MAX + 32, "path");

    if (check_credentials(call, API_OP_READ) < 0 || !page_args(call, &n, &last))
        return;
    if (api_registry__tags(&tags, &count, call, name) < 0)
        return;
    /* last is exclusive: the page starts after it. */
    while (last != NULL && start < count && strcmp(tags[start], last) <= 0)
        start++;
    end = count - start > n ? start + (size_t)n : count;
    if (layer_text_buf_addf(&path, "/v2/%s/tags/list", name) < 0)
        api_registry__from_error(call, LAYER_ENOMEM, "NAME_UNKNOWN");
    else
        page(call, tags + start, end - start, end < count, n, "tags", name,
             path.p);
    layer_text_buf_dispose(&path);
    api_registry__strv_free(tags, count);
}

/* The kinds of path under /v2/. */
typedef enum reg_kind {
    REG_BASE,
    REG_CATALOG,
    REG_MANIFEST,
    REG_BLOB,
    REG_TAGS,
    REG_UPLOAD, /* /blobs/uploads/...: push only */
    REG_OTHER
} reg_kind;

/* Find the last occurrence of needle in s[0..len). */
static const char *rfind(const char *s, size_t len, const char *needle)
{
    size_t nl = strlen(needle);

    if (len < nl)
        return NULL;
    for (size_t i = len - nl + 1; i-- > 0;) {
        if (memcmp(s + i, needle, nl) == 0)
            return s + i;
    }
    return NULL;
}

bool api_registry__streams(const char *raw_path, size_t len)
{
    return rfind(raw_path, len, "/blobs/") != NULL ||
           rfind(raw_path, len, "/manifests/") != NULL;
}

void api_registry__busy(api_call *call)
{
    api_registry__error(call, 503, "UNAVAILABLE",
                        "service unavailable: every stream slot is taken, "
                        "retry later",
                        NULL);
    (void)api_response_add_header(call->res, "Retry-After", "1");
    add_version(call);
}

/*
 * Split the decoded path after "/v2/" into its kind, name and reference
 * (borrowed pointers into p, which is cut with NULs).
 */
static reg_kind split(char *p, size_t len, char **name, char **ref)
{
    const char *m;
    size_t at;

    *name = NULL;
    *ref = NULL;
    if (len == 0)
        return REG_BASE;
    if (strcmp(p, "_catalog") == 0)
        return REG_CATALOG;
    if (len > 10 && strcmp(p + len - 10, "/tags/list") == 0) {
        p[len - 10] = '\0';
        *name = p;
        return REG_TAGS;
    }
    if ((m = rfind(p, len, "/blobs/uploads")) != NULL &&
        (m[14] == '\0' || m[14] == '/')) {
        p[m - p] = '\0';
        *name = p;
        return REG_UPLOAD;
    }
    {
        const char *mm = rfind(p, len, "/manifests/");
        const char *mb = rfind(p, len, "/blobs/");

        if (mm == NULL && mb == NULL)
            return REG_OTHER;
        if (mm != NULL && (mb == NULL || mm > mb)) {
            at = (size_t)(mm - p);
            p[at] = '\0';
            *name = p;
            *ref = p + at + 11;
            return REG_MANIFEST;
        }
        at = (size_t)(mb - p);
        p[at] = '\0';
        *name = p;
        *ref = p + at + 7;
        return REG_BLOB;
    }
}

static bool name_ok(api_call *call, const char *name)
{
    if (name != NULL && api_registry__name_valid(name, strlen(name)))
        return true;
    api_registry__error(call, 400, "NAME_INVALID", "invalid repository name",
                        json_pack("{s:s}", "name", name != NULL ? name : ""));
    return false;
}

void api_registry__handle(api_call *call)
{
    const char *raw = call->req->raw_path;
    size_t len = strcspn(raw, "?#");
    char *path = NULL, *name, *ref;
    size_t plen = 0;
    bool get = strcmp(call->req->method, "GET") == 0;
    bool head = strcmp(call->req->method, "HEAD") == 0;
    reg_kind kind;
    int rc;

    /* "/v2" and "/v2/..." only (the route table sends both). */
    raw += 3;
    len -= 3;
    if (len > 0) {
        raw++;
        len--;
    }
    if ((rc = api_urlpath_decode(&path, &plen, raw, len)) < 0) {
        api_registry__error(call, 400, "NAME_INVALID",
                            "invalid repository name",
                            json_string(layer_error_last()));
        goto out;
    }
    kind = split(path, plen, &name, &ref);
    if (name != NULL && strlen(name) <= REG_NAME_MAX)
        layer_span_set_str(call->req->span, "registry.repository", name);
    if (ref != NULL && strlen(ref) <= REG_TAG_MAX + 72)
        layer_span_set_str(call->req->span, "registry.reference", ref);
    if (!get && !head) {
        api_registry__error(call, 405, "UNSUPPORTED",
                            "The operation is unsupported: this registry "
                            "is read-only (GET and HEAD only)",
                            json_pack("{s:s}", "method", call->req->method));
        (void)api_response_add_header(call->res, "Allow", "GET, HEAD");
        goto out;
    }
    switch (kind) {
    case REG_BASE:
        base(call);
        break;
    case REG_CATALOG:
        catalog(call);
        break;
    case REG_TAGS:
        if (name_ok(call, name))
            tags(call, name);
        break;
    case REG_MANIFEST:
        if (!name_ok(call, name))
            break;
        if (check_credentials(call, API_OP_READ) < 0)
            break;
        api_registry__manifest(call, name, ref);
        break;
    case REG_BLOB:
        if (!name_ok(call, name))
            break;
        if (!api_registry__digest_syntax(ref, strlen(ref))) {
            api_registry__error(call, 400, "DIGEST_INVALID",
                                "provided digest is not a digest",
                                json_pack("{s:s}", "digest", ref));
            break;
        }
        if (check_credentials(call, API_OP_READ) < 0)
            break;
        api_registry__blob(call, name, ref);
        break;
    case REG_UPLOAD:
        /* GET of an upload's status: there are never uploads. */
        api_registry__error(call, 404, "BLOB_UPLOAD_UNKNOWN",
                            "blob upload unknown to registry", NULL);
        break;
    case REG_OTHER:
    default:
        api_registry__error(call, 404, "NAME_UNKNOWN",
                            "no registry resource at this path", NULL);
        break;
    }
out:
    add_version(call);
    layer_free(path);
}
