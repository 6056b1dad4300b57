/*
 * /layers/{id}/export: the layer's changeset as an OCI layer tar, plain or
 * compressed, streamed chunked.
 *
 * The compression comes from the `compression` query parameter, or else
 * from content negotiation on Accept over the OCI layer media types (plus
 * Docker's gzip type, which clients such as containerd still ask for);
 * the response's Content-Type is the negotiated type.
 *
 * The tar comes from the `tar` query parameter (auto, canonical,
 * original), else from the server's setting (auto by default): auto is
 * the layer's original tar where its store kept the tar-split data and
 * the layer is not mutable, the canonical tar otherwise
 * (layer_export_choose_tar()). X-Layer-Tar says which, on GET and HEAD
 * alike, and so does the request span's "export.tar". An original tar
 * that turns out to differ from what was stored (a file changed, the
 * diff ID does not match) cuts the stream like any other failure after
 * the status line.
 *
 * The blob comes from api/blobs_int.h, which serves immutable layers
 * through the blob cache (layer/blobcache.h): a kept blob (cache hit) is
 * answered with Content-Length, ETag, Accept-Ranges and its digests as
 * headers (Docker-Content-Digest, X-Layer-Diff-Id), and a single byte
 * Range gives 206 or 416; a miss runs the one export of the key, whose
 * bytes go to the cache as they are sent, and concurrent requests read
 * that growing file; mutable layers (and a server without a cache) are
 * exported without it. Those three learn their digests only once the last
 * byte is out, so they travel as trailers (Docker-Content-Digest over the
 * bytes sent, X-Layer-Diff-Id over the tar), announced up front with a
 * Trailer header; Range is ignored there (200). The request span's
 * "cache.result" says which: hit, fill, wait or bypass. The export runs
 * on its own worker thread; the producer drains it without blocking.
 *
 * A file that changes while it is read fails the export (LAYER_ECHANGED
 * from the reader): the stream is cut before its last chunk, so no
 * trailer claims a digest, and the cache keeps nothing. The server's
 * --allow-changing (api_context_opts.allow_changing) passes
 * LAYER_READER_ALLOW_CHANGING instead; an export with warnings is then
 * sent whole but never kept.
 *
 * Server-wide caps bound concurrent exports: their number
 * (api_context_opts.max_exports) and the memory they hold, counted with
 * layer_export_memory()'s estimate for the format and level
 * (max_export_memory), so a few zstd exports at a high level weigh as
 * much as many plain ones. Past either the answer is 503 with
 * Retry-After. The slot and its bytes (api_exports_acquire()) are taken
 * before the export starts and given back at the end of the export (which, for
 * a fill, may outlive its client). A hit or a wait takes no slot. HEAD starts
 * nothing: it answers a kept blob's headers, or the streamed form's.
 *
 * The level a client may ask for is capped (max_level; gzip also at its
 * backend's top level): compression cost grows steeply with it (zstd 19
 * takes about 80 times the CPU of the default level and 10 times the
 * memory), so higher levels are a 400 naming the allowed range, not a
 * silent downgrade. A request without a level gets the format's default,
 * or the cap if that is lower.
 */
#include "api_int.h"
#include "blobs_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/metrics.h"
#include "layer/alloc.h"
#include "layer/compress.h"
#include "layer/error.h"
#include "layer/export.h"
#include "layer/trace.h"

/* The media types an export is offered as, in server preference order. */
static const char *const export_types[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
};
static const layer_compression export_compressions[] = {
    LAYER_COMPRESSION_NONE,
    LAYER_COMPRESSION_GZIP,
    LAYER_COMPRESSION_ZSTD,
    LAYER_COMPRESSION_GZIP,
};
#define NTYPES (sizeof(export_types) / sizeof(export_types[0]))

/* Bounds of the `level` parameter before the exporter checks it against
 * the chosen format (zstd goes down to negative "fast" levels). */
#define LEVEL_MIN (-131072)
#define LEVEL_MAX 22

/* Parse `level`: absent or 0 is the format's default. */
static int parse_level(int *out, api_call *call)
{
    const char *v;
    long n = 0;
    size_t i = 0;
    bool neg = false;
    int rc;

    if ((rc = api_query__get(&v, call, "level")) < 0)
        return rc;
    *out = 0;
    if (v == NULL)
        return 0;
    if (v[0] == '-') {
        neg = true;
        i = 1;
    }
    for (; v[i] != '\0' && i < 8; i++) {
        if (v[i] < '0' || v[i] > '9')
            break;
        n = n * 10 + (v[i] - '0');
    }
    if (neg)
        n = -n;
    if (v[i] != '\0' || i == (neg ? 1u : 0u) || n < LEVEL_MIN ||
        n > LEVEL_MAX) {
        api_problem__set(call, 400, "invalid-parameter", "Invalid parameter",
                         "query parameter 'level' must be an integer from "
                         "-131072 to 22 that the compression supports (0: "
                         "its default)");
        return LAYER_EINVALID;
    }
    *out = (int)n;
    return 0;
}

/* The tar asked for: the `tar` parameter, else the server's setting. */
static int parse_tar(layer_export_tar *out, api_call *call)
{
    const char *v;
    char detail[160];
    int rc;

    if ((rc = api_query__get(&v, call, "tar")) < 0)
        return rc;
    *out = call->ctx->export_tar;
    if (v == NULL)
        return 0;
    if (layer_export_tar_parse(out, v) < 0) {
        snprintf(detail, sizeof(detail),
                 "query parameter 'tar' must be auto, canonical or original, "
                 "not '%.64s'",
                 v);
        api_problem__set(call, 400, "invalid-parameter", "Invalid parameter",
                         detail);
        return LAYER_EINVALID;
    }
    return 0;
}

/* Decide the compression and the Content-Type; sets a problem on error. */
static int choose_format(layer_compression *out_c, const char **out_type,
                         api_call *call)
{
    const char *v = NULL, *accept = NULL;
    size_t i = 0;
    char detail[160];
    int rc;

    if ((rc = api_query__get(&v, call, "compression")) < 0)
        return rc;
    if (v != NULL) {
        for (i = 0; i < 3; i++) {
            if (strcmp(v, layer_compression_name(export_compressions[i])) == 0)
                break;
        }
        if (i == 3) {
            snprintf(detail, sizeof(detail),
                     "query parameter 'compression' must be none, gzip or "
                     "zstd, not '%.64s'",
                     v);
            api_problem__set(call, 400, "unsupported-compression",
                             "Unsupported compression", detail);
            return LAYER_EINVALID;
        }
    } else {
        if (call->req->header != NULL)
            accept = call->req->header(call->req->conn, "Accept");
        if (api_accept__choose(&i, accept, export_types, NTYPES) < 0) {
            api_problem__set(call, 406, NULL, NULL,
                             "a layer is served as "
                             "application/vnd.oci.image.layer.v1.tar, "
                             "+gzip or +zstd (or "
                             "application/vnd.docker.image.rootfs.diff.tar."
                             "gzip)");
            return LAYER_ENOTFOUND;
        }
    }
    *out_c = export_compressions[i];
    *out_type = export_types[i];
    return 0;
}

/* The highest level of c a request may ask for. */
static int level_ceiling(const api_context *ctx, layer_compression c)
{
    int top = layer_compress_max_level(c);

    if (ctx->max_level > 0 && (unsigned)top > ctx->max_level)
        top = (int)ctx->max_level;
    return top;
}

/* Hold the level to the server's ceiling; 0 (the default) becomes the
 * format's default or the ceiling, whichever is lower. Sets a problem
 * when the level asked for is above it. */
static int check_level(int *level, api_call *call, layer_compression c)
{
    int top, def = 0;
    char detail[192];

    if (c == LAYER_COMPRESSION_NONE)
        return 0;
    top = level_ceiling(call->ctx, c);
    if (*level == 0) {
        if (layer_compress_level(&def, c, 0) == 0 && def > top)
            *level = top;
        return 0;
    }
    if (*level > top) {
        snprintf(detail, sizeof(detail),
                 "%s level %d is above what this server allows: ask for "
                 "1 to %d, or leave 'level' out for the default",
                 layer_compression_name(c), *level, top);
        api_problem__set(call, 400, "level-not-allowed",
                         "Compression level not allowed", detail);
        return LAYER_EINVALID;
    }
    return 0;
}

void api_export__get(api_call *call)
{
    api_response *res = call->res;
    api_blob_spec spec;
    api_blob *b = NULL;
    layer_export_original orig;
    layer_compression comp = LAYER_COMPRESSION_NONE;
    layer_export_tar want = LAYER_EXPORT_TAR_AUTO, tar;
    const char *type = NULL;
    int level = 0, rc;

    memset(&spec, 0, sizeof(spec));
    if ((rc = choose_format(&comp, &type, call)) < 0 ||
        (rc = parse_level(&level, call)) < 0 ||
        (rc = parse_tar(&want, call)) < 0)
        goto out;
    if (level != 0 && comp == LAYER_COMPRESSION_NONE) {
        rc = LAYER_EINVALID;
        api_problem__set(call, 400, "invalid-parameter", "Invalid parameter",
                         "query parameter 'level' needs gzip or zstd "
                         "compression");
        goto out;
    }
    if ((rc = check_level(&level, call, comp)) < 0)
        goto out;
    if ((rc = api_layers__resolve(&spec.info, call)) < 0)
        goto out;
    spec.fds = call->fds; /* the blob gives them back */
    call->fds = 0;
    if ((rc = layer_export_choose_tar(&tar, &orig, spec.info, want, 0)) < 0) {
        if (rc == LAYER_EUNSUPPORTED)
            api_problem__set(call, 422, "no-original-tar", "No original tar",
                             layer_error_last());
        goto out;
    }
    layer_span_set_str(call->req->span, "export.tar",
                       layer_export_tar_name(tar));
    /* The canonical tar's reader finds an unexportable layer now, while
     * a status can still say so; the original tar's files are checked
     * as they stream. */
    if (tar == LAYER_EXPORT_TAR_CANONICAL &&
        (rc = api_entries__probe(spec.info)) < 0)
        goto out;
    spec.tar = tar;
    spec.compression = comp;
    spec.level = level;
    rc = api_blob__open(&b, call->ctx, &spec, call->req->span,
                        res->head ? API_BLOB_NOFILL : 0);
    if (rc == LAYER_ENOTFOUND && res->head) {
        /* Headers only: the length and digests are unknown until an
         * export has run, and HEAD does not run one. */
        if ((rc = api_response_add_header(res, "Content-Type", type)) < 0 ||
            (rc = api_response_add_header(res, "X-Layer-Tar",
                                          layer_export_tar_name(tar))) < 0 ||
            (rc = api_response_add_header(res, "Vary", "Accept")) < 0 ||
            (rc = api_response_add_header(res, "Trailer",
                                          "Docker-Content-Digest, "
                                          "X-Layer-Diff-Id")) < 0)
            goto out;
        res->status = 200;
        res->has_length = false;
        goto out;
    }
    if (rc == LAYER_EBUSY) {
        char detail[160];

        snprintf(detail, sizeof(detail),
                 "the running exports use what this server allows (%u "
                 "exports, %llu MiB of memory); retry later",
                 call->ctx->max_exports,
                 (unsigned long long)(call->ctx->max_export_memory >> 20));
        api_problem__set(call, 503, "too-many-exports", "Too many exports",
                         detail);
        goto out;
    }
    if (rc < 0) {
        if (rc == LAYER_ENOTFOUND)
            rc = api_problem__recode(LAYER_EBROKEN); /* resolved, yet gone */
        goto out;
    }
    rc = api_blob__respond(call, b, type, layer_export_tar_name(tar));
    b = NULL;
out:
    if (rc < 0 && res->status == 0)
        api_problem__from_error(call, rc);
    if (spec.info != NULL || spec.fds > 0) {
        layer_info_free(spec.info);
        if (spec.fds > 0)
            api_fds_release(call->ctx, spec.fds);
    }
}
