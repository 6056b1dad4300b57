/*
 * Access control on the REST routes: the one place where a request's
 * Host is checked and its credentials turned into an identity and a
 * verdict (api/auth.h), before any handler runs and so before any store
 * is asked; and the answers a refusal gets: 421, 401 with its
 * challenges, 403, or the very 404 a missing layer gets.
 *
 * api_handle() calls api_auth__check_host() for every request and
 * api_auth__enforce() for every route that is not open (the route table
 * says which). A layer route is decided again on the layer the store
 * resolved (api_auth__check_layer(), from api_layers__resolve(), the one
 * path from an id to a layer): its canonical id and its mutability. The
 * list of layers asks api_auth__may_list() for each one.
 *
 * Another view of the same layers (a registry) asks api_auth_decide()
 * with its own operation and formats refusals its own way; what it shares
 * with these routes is the identity and the decision, not the answers.
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

#include "api/auth.h"
#include "api/metrics.h"
#include "layer/error.h"
#include "layer/trace.h"

static const char *op_name(api_op op)
{
    switch (op) {
    case API_OP_LIST:
        return "list";
    case API_OP_READ:
        return "read";
    case API_OP_METRICS:
        return "metrics";
    }
    return "unknown";
}

int api_auth__check_host(api_call *call)
{
    const char *host;
    int rc;

    if (call->ctx->hosts == NULL || call->req->header == NULL)
        return 0;
    host = call->req->header(call->req->conn, "Host");
    /* HTTP/1.0 has no Host; browsers, whom the check is for, always send
     * one. */
    if (host == NULL)
        return 0;
    if ((rc = api_hostnames_check(call->ctx->hosts, host)) == 0)
        return 0;
    if (rc == LAYER_ENOTFOUND)
        api_problem__set(call, 421, "misdirected-request",
                         "Misdirected Request",
                         "this server does not answer to the name in the "
                         "Host header (its names are localhost, its listen "
                         "addresses, its certificate's names and those "
                         "given with --server-name)");
    else
        api_problem__set(call, 400, "invalid-host", "Invalid Host header",
                         layer_error_last());
    return rc;
}

void api_auth__identify(api_call *call)
{
    const char *authz = NULL;
    const char *name;

    if (call->identified)
        return;
    if (call->req->header != NULL)
        authz = call->req->header(call->req->conn, "Authorization");
    api_auth_identify(&call->who, call->ctx->auth, authz,
                      call->req->client_cert);
    call->identified = true;
    layer_span_set_str(call->req->span, "auth.method",
                       api_auth_method_name(call->who.method));
    if ((name = api_identity_name(&call->who)) != NULL)
        layer_span_set_str(call->req->span, "enduser.id", name);
    if (call->who.failure == API_AUTH_FAIL_BAD_CERTIFICATE &&
        call->req->client_cert != NULL &&
        call->req->client_cert->failure != NULL)
        layer_span_set_str(call->req->span, "auth.certificate.failure",
                           call->req->client_cert->failure);
}

/* Does a script (fetch) rather than a person or a tool ask? A Basic
 * challenge would make a browser open its own login dialog over the
 * page, which asks for a token itself. */
static bool script_request(const api_call *call)
{
    const char *mode =
        call->req->header != NULL
            ? call->req->header(call->req->conn, "Sec-Fetch-Mode")
            : NULL;

    return mode != NULL && strcmp(mode, "navigate") != 0;
}

static const char *unauthorized_detail(api_auth_failure reason)
{
    switch (reason) {
    case API_AUTH_FAIL_MALFORMED:
        return "the Authorization header is malformed: expected 'Bearer "
               "<token>' or 'Basic <base64 of user:token>'";
    case API_AUTH_FAIL_INVALID_TOKEN:
        return "the token is not valid on this server";
    case API_AUTH_FAIL_BAD_CERTIFICATE:
        return "the client certificate did not verify against the "
               "server's client CAs";
    case API_AUTH_FAIL_UNKNOWN_CERTIFICATE:
        return "the client certificate verified but belongs to no "
               "principal of the server's policy";
    default:
        return "this resource needs credentials: a bearer token "
               "(Authorization: Bearer <token>), the token as the Basic "
               "password, or a client certificate";
    }
}

void api_auth__refuse(api_call *call, api_verdict v, api_op op)
{
    api_auth_failure reason = api_auth_reason(&call->who, v);
    char detail[256];
    const char *name;

    if (v == API_DENY_HIDDEN) {
        /* Exactly what the store says of a layer it does not have. */
        (void)layer_error_set(LAYER_ENOTFOUND, "layer %s not found in %s",
                              call->id != NULL ? call->id : "",
                              layer_store_spec(call->ctx->store));
        api_problem__from_error(call, LAYER_ENOTFOUND);
        return;
    }
    layer_span_set_str(call->req->span, "auth.failure",
                       api_auth_failure_name(reason));
    api_metrics_auth_failure(call->ctx->metrics, reason);
    if (v == API_DENY_FORBIDDEN) {
        name = api_identity_name(&call->who);
        if (name != NULL)
            snprintf(detail, sizeof(detail),
                     "principal '%s' has no '%s' grant for this %s", name,
                     op_name(op), op == API_OP_METRICS ? "server" : "resource");
        else
            snprintf(detail, sizeof(detail),
                     "anonymous requests have no '%s' grant for this %s",
                     op_name(op), op == API_OP_METRICS ? "server" : "resource");
        api_problem__set(call, 403, "forbidden", "Forbidden", detail);
        return;
    }
    api_problem__set(call, 401, "unauthorized", "Unauthorized",
                     unauthorized_detail(reason));
    (void)api_response_add_header(call->res, "WWW-Authenticate",
                                  reason == API_AUTH_FAIL_INVALID_TOKEN &&
                                          call->who.method == API_AUTH_TOKEN
                                      ? "Bearer realm=\"" API_AUTH_REALM
                                        "\", error=\"invalid_token\""
                                      : "Bearer realm=\"" API_AUTH_REALM "\"");
    if (!script_request(call))
        (void)api_response_add_header(call->res, "WWW-Authenticate",
                                      "Basic realm=\"" API_AUTH_REALM
                                      "\", charset=\"UTF-8\"");
}

int api_auth__enforce(api_call *call, api_access access)
{
    api_op op;
    api_verdict v;

    switch (access) {
    case API_ACCESS_OPEN:
        return 0;
    case API_ACCESS_METRICS:
        op = API_OP_METRICS;
        break;
    case API_ACCESS_LIST:
        op = API_OP_LIST;
        break;
    case API_ACCESS_LAYER:
    default:
        op = API_OP_READ;
        break;
    }
    api_auth__identify(call);
    v = api_auth_decide(&call->who, op,
                        access == API_ACCESS_LAYER ? call->id : NULL,
                        API_LAYER_UNKNOWN);
    if (v == API_ALLOW)
        return 0;
    api_auth__refuse(call, v, op);
    return LAYER_EINVALID;
}

api_verdict api_auth__decide_read(api_call *call, const layer_info *info)
{
    api_auth__identify(call);
    return api_auth_decide(&call->who, API_OP_READ, info->id,
                           info->mutable_ ? API_LAYER_MUTABLE
                                          : API_LAYER_IMMUTABLE);
}

int api_auth__check_layer(api_call *call, const layer_info *info)
{
    api_verdict v = api_auth__decide_read(call, info);

    if (v == API_ALLOW)
        return 0;
    api_auth__refuse(call, v, API_OP_READ);
    return LAYER_EINVALID;
}

bool api_auth__may_list(api_call *call, const char *id, api_mutability m)
{
    api_auth__identify(call);
    return api_auth_decide(&call->who, API_OP_LIST, id, m) == API_ALLOW;
}
