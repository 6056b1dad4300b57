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
 * The export itself
 * (layer/export.h) runs on its own worker thread; this producer drains it
 * without blocking: LAYER_EAGAIN becomes API_PRODUCE_AGAIN and the
 * server's wake is the export's notify callback. The digests are only
 * known once the last byte is out, so they travel as trailers
 * (Docker-Content-Digest over the bytes sent, X-Layer-Diff-Id over the
 * tar), announced up front with a Trailer header.
 *
 * Digests of immutable layers are remembered (api/digest_memo.h), keyed
 * on the layer, the tar kind, the format and the level: a repeated export
 * of such a layer skips the SHA-256 work (of an original tar, only the
 * compressed output's: its diff ID is always checked) and sends the
 * remembered digests, once its fingerprint showed the layer unchanged; a
 * changed layer gets its stream cut (the digests it would send are not
 * known) and its record dropped, so the client's retry hashes afresh.
 * The request span's "export.digests" says which: computed, memo or
 * stale.
 *
 * A file that changes while it is read fails the export (LAYER_ECHANGED
 * from the reader): the stream is cut before its last chunk, so no
 * trailer claims a digest, and nothing is remembered. The server's
 * --allow-changing (api_context_opts.allow_changing) passes
 * LAYER_READER_ALLOW_CHANGING instead; an export with warnings is then
 * sent whole but never remembered.
 *
 * Server-wide caps bound concurrent exports: their number
 * (api_context_opts.max_exports) and the memory they hold, counted with
 * layer_export_memory()'s estimate for the format and level
 * (max_export_memory), so a few zstd exports at a high level weigh as
 * much as many plain ones. Past either the answer is 503 with
 * Retry-After. The slot and its bytes (api_exports_acquire()) are taken
 * before the export starts and given back in the producer's free, which
 * the normal end and a client abort both reach. HEAD answers with the
 * headers and starts nothing.
 *
 * The level a client may ask for is capped (max_level; gzip also at its
 * backend's top level): compression cost grows steeply with it (zstd 19
 * takes about 80 times the CPU of the default level and 10 times the
 * memory), so higher levels are a 400 naming the allowed range, not a
 * silent downgrade. A request without a level gets the format's default,
 * or the cap if that is lower.
 */
#include "api_int.h"

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

typedef struct export_stream {
    layer_export *x;
    layer_info *info;
    layer_export_original orig; /* borrows from info */
    api_context *slot;          /* holds an export slot to give back, or NULL */
    uint64_t slot_bytes;        /* the memory reserved with the slot */
    api_metrics *metrics;
    layer_span *span;      /* the request's */
    api_digest_memo *memo; /* set when the layer's digests may be kept */
    api_digest_rec rec;    /* its key; with memo_hit, the digests */
    bool memo_hit;         /* the export runs without digests */
    const char *format;    /* "none", "gzip", "zstd" (metrics label) */
    struct timespec started;
    uint64_t bytes;
    bool ended;    /* LAYER_ITEROVER seen: the summary is complete */
    bool finished; /* metrics recorded */
    char names[2][32];
    char values[2][72];
    api_header trailers[2];
} export_stream;

static const char *format_name(layer_compression c)
{
    switch (c) {
    case LAYER_COMPRESSION_NONE:
        return "none";
    case LAYER_COMPRESSION_GZIP:
        return "gzip";
    case LAYER_COMPRESSION_ZSTD:
        return "zstd";
    }
    return "other";
}

/* The end of an export that ran without digests: the remembered ones
 * hold only if the layer is what it was when they were computed. */
static ssize_t memo_end(export_stream *s, const layer_export_summary *sum)
{
    if (sum->warnings != 0 || sum->size != s->rec.size ||
        strcmp(sum->fingerprint, s->rec.fingerprint) != 0) {
        api_digest_memo__drop(s->memo, s->rec.key);
        layer_span_set_str(s->span, "export.digests", "stale");
        layer_span_set_error_message(s->span,
                                     "layer.export failed: the layer changed "
                                     "since its digests were computed; they "
                                     "are unknown, so the stream is cut (a "
                                     "retry computes them)");
        return API_PRODUCE_ERROR;
    }
    snprintf(s->values[0], sizeof(s->values[0]), "%s", s->rec.digest);
    snprintf(s->values[1], sizeof(s->values[1]), "%s", s->rec.diff_id);
    s->ended = true;
    return API_PRODUCE_END;
}

static ssize_t stream_read(void *ctx, char *buf, size_t cap)
{
    export_stream *s = ctx;
    layer_export_summary sum;
    size_t n = 0;
    int rc;

    if (s->ended)
        return API_PRODUCE_END;
    rc = layer_export_read(&n, s->x, buf, cap, LAYER_EXPORT_NONBLOCK);
    if (rc == 0 && n > 0) {
        s->bytes += n;
        return (ssize_t)n;
    }
    if (rc == LAYER_EAGAIN)
        return API_PRODUCE_AGAIN;
    if (rc == LAYER_ITEROVER) {
        layer_export_summary_get(&sum, s->x);
        if (s->memo_hit)
            return memo_end(s, &sum);
        snprintf(s->values[0], sizeof(s->values[0]), "%s", sum.digest);
        snprintf(s->values[1], sizeof(s->values[1]), "%s", sum.diff_id);
        if (s->memo != NULL && sum.warnings == 0) {
            snprintf(s->rec.digest, sizeof(s->rec.digest), "%s", sum.digest);
            snprintf(s->rec.diff_id, sizeof(s->rec.diff_id), "%s", sum.diff_id);
            snprintf(s->rec.fingerprint, sizeof(s->rec.fingerprint), "%s",
                     sum.fingerprint);
            s->rec.size = sum.size;
            api_digest_memo__put(s->memo, &s->rec);
        }
        s->ended = true;
        return API_PRODUCE_END;
    }
    /* A failure (the export's span holds the message), or a read that
     * broke its contract by returning nothing: never spin on it. */
    return API_PRODUCE_ERROR;
}

static size_t stream_trailers(void *ctx, const api_header **out)
{
    export_stream *s = ctx;

    if (!s->ended) {
        *out = NULL;
        return 0;
    }
    *out = s->trailers;
    return 2;
}

static void stream_set_wake(void *ctx, void (*wake)(void *arg), void *arg)
{
    export_stream *s = ctx;

    layer_export_set_notify(s->x, wake, arg);
}

static void stream_finish(void *ctx, bool completed)
{
    export_stream *s = ctx;
    struct timespec now;
    double secs;

    if (s->finished)
        return;
    s->finished = true;
    clock_gettime(CLOCK_MONOTONIC, &now);
    secs = (double)(now.tv_sec - s->started.tv_sec) +
           (double)(now.tv_nsec - s->started.tv_nsec) / 1e9;
    api_metrics_export_finished(s->metrics, s->format, secs, s->bytes,
                                completed && s->ended);
}

static void stream_free(void *ctx)
{
    export_stream *s = ctx;

    if (s == NULL)
        return;
    if (s->x != NULL)
        stream_finish(s, false);
    layer_export_free(s->x);
    layer_info_free(s->info);
    if (s->slot != NULL)
        api_exports_release(s->slot, s->slot_bytes);
    layer_free(s);
}

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
            if (strcmp(v, format_name(export_compressions[i])) == 0)
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
                 format_name(c), *level, top);
        api_problem__set(call, 400, "level-not-allowed",
                         "Compression level not allowed", detail);
        return LAYER_EINVALID;
    }
    return 0;
}

void api_export__get(api_call *call)
{
    api_response *res = call->res;
    export_stream *s = NULL;
    layer_export_opts opts;
    layer_compression comp = LAYER_COMPRESSION_NONE;
    layer_export_tar want = LAYER_EXPORT_TAR_AUTO, tar;
    const char *type = NULL;
    int level = 0, rc;

    memset(&opts, 0, sizeof(opts));
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
    if ((s = layer_trycalloc(1, sizeof(*s))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    snprintf(s->names[0], sizeof(s->names[0]), "Docker-Content-Digest");
    snprintf(s->names[1], sizeof(s->names[1]), "X-Layer-Diff-Id");
    for (size_t i = 0; i < 2; i++) {
        s->trailers[i].name = s->names[i];
        s->trailers[i].value = s->values[i];
    }
    s->format = format_name(comp);
    if ((rc = api_layers__resolve(&s->info, call)) < 0)
        goto out;
    if ((rc = layer_export_choose_tar(&tar, &s->orig, s->info, want, 0)) < 0) {
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
        (rc = api_entries__probe(s->info)) < 0)
        goto out;
    if ((rc = api_response_add_header(res, "Content-Type", type)) < 0 ||
        (rc = api_response_add_header(res, "X-Layer-Tar",
                                      layer_export_tar_name(tar))) < 0 ||
        (rc = api_response_add_header(res, "Vary", "Accept")) < 0 ||
        (rc = api_response_add_header(res, "Trailer",
                                      "Docker-Content-Digest, "
                                      "X-Layer-Diff-Id")) < 0)
        goto out;
    if (res->head) {
        /* Headers only: the length and digests are unknown until an
         * export has run, and HEAD does not run one. */
        res->status = 200;
        res->has_length = false;
        goto out;
    }
    /* A level the format refuses is answered by the export's start below;
     * its estimate is 0 and takes nothing. */
    s->slot_bytes = layer_export_memory(comp, level);
    if (api_exports_acquire(call->ctx, s->slot_bytes) < 0) {
        char detail[160];

        snprintf(detail, sizeof(detail),
                 "the running exports use what this server allows (%u "
                 "exports, %llu MiB of memory); retry later",
                 call->ctx->max_exports,
                 (unsigned long long)(call->ctx->max_export_memory >> 20));
        rc = LAYER_EBUSY;
        api_problem__set(call, 503, "too-many-exports", "Too many exports",
                         detail);
        goto out;
    }
    s->slot = call->ctx;
    opts.compression = comp;
    opts.level = level;
    opts.span = call->req->span;
    if (tar == LAYER_EXPORT_TAR_ORIGINAL)
        opts.original = &s->orig;
    if (call->ctx->allow_changing)
        opts.reader_flags |= LAYER_READER_ALLOW_CHANGING;
    s->span = call->req->span;
    if (call->ctx->digests != NULL && !s->info->mutable_) {
        int n =
            snprintf(s->rec.key, sizeof(s->rec.key), "%s\n%s\n%s\n%d",
                     s->info->id, layer_export_tar_name(tar), s->format, level);

        if (n > 0 && (size_t)n < sizeof(s->rec.key))
            s->memo = call->ctx->digests;
    }
    if (s->memo != NULL && api_digest_memo__get(s->memo, s->rec.key, &s->rec)) {
        s->memo_hit = true;
        opts.flags |= LAYER_EXPORT_NO_DIGESTS;
    }
    layer_span_set_str(s->span, "export.digests",
                       s->memo_hit ? "memo" : "computed");
    if ((rc = layer_export_start(&s->x, &s->info->layer, s->info->parents,
                                 s->info->nparents, &opts)) < 0)
        goto out;
    clock_gettime(CLOCK_MONOTONIC, &s->started);
    s->metrics = call->ctx->metrics;
    api_metrics_export_started(s->metrics, s->format);
    res->status = 200;
    res->has_length = false;
    res->producer.read = stream_read;
    res->producer.set_wake = stream_set_wake;
    res->producer.trailers = stream_trailers;
    res->producer.finish = stream_finish;
    res->producer.free = stream_free;
    res->producer.ctx = s;
    s = NULL;
out:
    if (rc == LAYER_ENOTFOUND && s != NULL && s->info != NULL)
        rc = api_problem__recode(LAYER_EBROKEN); /* resolved, yet gone */
    if (rc < 0 && res->status == 0)
        api_problem__from_error(call, rc);
    stream_free(s);
}
