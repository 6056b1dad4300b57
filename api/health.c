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

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "api/metrics.h"
#include "layer/alloc.h"
#include "layer/error.h"

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

/* Read a whole file of at most OPENAPI_MAX bytes. */
static int read_file(char **out, size_t *out_len, const char *path)
{
    int rc = 0, fd = -1;
    char *buf = NULL, *grown;
    size_t len = 0, cap = 0;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = layer_error_set_errno(errno == ENOENT ? LAYER_ENOTFOUND
                                                   : LAYER_ERROR,
                                   errno, "cannot open the OpenAPI document");
        goto out;
    }
    for (;;) {
        ssize_t n;

        if (len == cap) {
            if (cap == OPENAPI_MAX) {
                rc = layer_error_set(LAYER_ETOOBIG,
                                     "the OpenAPI document is larger than "
                                     "%u bytes",
                                     OPENAPI_MAX);
                goto out;
            }
            cap = cap == 0 ? 64 * 1024 : cap * 2;
            if (cap > OPENAPI_MAX)
                cap = OPENAPI_MAX;
            if ((grown = layer_tryarray(buf, cap + 1, 1)) == NULL) {
                rc = LAYER_ENOMEM;
                goto out;
            }
            buf = grown;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno,
                                       "cannot read the OpenAPI document");
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    layer_free(buf);
    return rc;
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
    if ((rc = read_file(&buf, &len, call->ctx->openapi_path)) < 0) {
        /* A missing contract is the server's fault, not the client's. */
        api_problem__from_error(call, rc == LAYER_ENOTFOUND ? LAYER_ERROR : rc);
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
