/*
 * Operational resources: liveness (/healthz), readiness (/readyz), the
 * Prometheus metrics (/metrics) and the API contract (/openapi.yaml).
 *
 * /healthz answers 200 as long as the process can answer at all; /readyz
 * follows api_is_ready() (the server clears it while starting and
 * draining), so an orchestrator stops routing to a draining instance.
 * /openapi.yaml is read from disk on each request (capped), so the served
 * contract is always the installed file.
 */
#include "api_int.h"

#include <fcntl.h>

#include "api/metrics.h"
#include "layer/error.h"
#include "layer/file.h"

/* The contract is ~50 KiB; anything near this cap is not our file. */
#define OPENAPI_MAX (4u * 1024u * 1024u)

static void status_doc(api_call *call, const char *status)
{
    json_t *doc = json_pack("{s:s}", "status", status);

    if (api_response__json(call->res, 200, API_TYPE_JSON, doc) < 0)
        api_problem__from_error(call, LAYER_ENOMEM);
    else
        (void)api_response_add_header(call->res, "Cache-Control", "no-store");
}

void api_health__healthz(api_call *call)
{
    status_doc(call, "ok");
}

void api_health__readyz(api_call *call)
{
    if (!api_is_ready(call->ctx)) {
        api_problem__set(call, 503, "not-ready", "Not ready",
                         "the server is starting or draining");
        (void)api_response_add_header(call->res, "Cache-Control", "no-store");
        return;
    }
    status_doc(call, "ready");
}

void api_health__openapi(api_call *call)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    if (call->ctx->openapi_path == NULL) {
        api_problem__set(call, 404, NULL, NULL,
                         "no OpenAPI document is configured");
        return;
    }
    if ((rc = layer_file_read(&buf, &len, AT_FDCWD, call->ctx->openapi_path,
                              OPENAPI_MAX, 0, "the OpenAPI document")) < 0) {
        /* A missing or odd contract file is the server's fault, not the
         * client's. */
        if (rc == LAYER_ENOTFOUND || rc == LAYER_EINVALID)
            rc = layer_error_recode(LAYER_ERROR);
        api_problem__from_error(call, rc);
        return;
    }
    if (api_response__set_body(call->res, 200, API_TYPE_YAML, buf, len) < 0)
        api_problem__from_error(call, LAYER_ETOOBIG);
}

void api_health__metrics(api_call *call)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (call->ctx->metrics == NULL) {
        api_problem__set(call, 404, NULL, NULL, "metrics are disabled");
        return;
    }
    if ((rc = api_metrics_render(&text, &len, call->ctx->metrics)) < 0) {
        api_problem__from_error(call, rc);
        return;
    }
    if (api_response__set_body(call->res, 200, API_TYPE_METRICS, text, len) <
        0) {
        api_problem__from_error(call, LAYER_ETOOBIG);
        return;
    }
    (void)api_response_add_header(call->res, "Cache-Control", "no-store");
}
