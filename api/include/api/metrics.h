#ifndef API_METRICS_H
#define API_METRICS_H

/**
 * @file api/metrics.h
 * @brief The server's Prometheus metrics, rendered for GET /metrics.
 *
 * A fixed set of metrics, safe to update from any thread:
 *
 *   layerd_http_requests_total{route,code}      counter
 *   layerd_http_response_bytes_total{route}     counter
 *   layerd_http_client_aborts_total{route}      counter
 *   layerd_exports_active                       gauge
 *   layerd_entry_streams_active                 gauge
 *   layerd_http_connections{worker}             gauge
 *   layerd_export_duration_seconds              histogram
 *   layerd_exports_total{format,result}         counter (result ok|error)
 *   layerd_export_bytes_total{format}           counter
 *   layerd_auth_failures_total{reason}          counter (401 and 403)
 *   layerd_build_info{version,microhttpd,openssl,isal,zstd}  gauge, 1
 *
 * Routes are the API's route templates ("/layers/{id}/export"), never raw
 * paths, so label sets stay few. The registry holds at most
 * API_METRICS_MAX_SERIES (route, code) pairs, API_METRICS_MAX_SERIES
 * routes and API_METRICS_MAX_FORMATS formats; past a cap, updates are
 * counted under route="other" or format="other". A NULL route is counted
 * as route="unmatched" (no route matched the request).
 *
 * Every update function accepts a NULL registry and does nothing, like
 * api_context_opts.metrics being NULL.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/auth.h"

/** Cap on distinct (route, code) pairs, and on distinct routes. */
#define API_METRICS_MAX_SERIES 256
/** Cap on distinct export formats. */
#define API_METRICS_MAX_FORMATS 16
/** Label values longer than this are cut (bytes). */
#define API_METRICS_MAX_LABEL 256
/** Cap on the rendered text. */
#define API_METRICS_MAX_TEXT (1024 * 1024)

struct layer_blobcache;

typedef struct api_metrics api_metrics;

/** Versions reported by layerd_build_info. Strings are borrowed for the
 * call and copied; NULL is rendered as "unknown". */
typedef struct api_metrics_build {
    const char *version;    /**< layerd's own version */
    const char *microhttpd; /**< MHD_get_version() */
    const char *openssl;    /**< OpenSSL_version(OPENSSL_VERSION_STRING) */
    const char *isal;       /**< ISA-L, or "none" when built without it */
    const char *zstd;       /**< ZSTD_versionString() */
} api_metrics_build;

/**
 * Create a registry with every counter at zero.
 *
 * @param[out] out the registry; free with api_metrics_free()
 * @param build the versions for layerd_build_info (NULL: all "unknown")
 * @return 0 or LAYER_ENOMEM
 */
int api_metrics_new(api_metrics **out, const api_metrics_build *build);

/** Free a registry. NULL is accepted. */
void api_metrics_free(api_metrics *m);

/**
 * Count one answered request.
 *
 * @param m the registry
 * @param route the route template (NULL: "unmatched")
 * @param status the HTTP status sent
 * @param response_bytes body bytes sent
 */
void api_metrics_request(api_metrics *m, const char *route, int status,
                         uint64_t response_bytes);

/**
 * Count a response the client abandoned before its end.
 *
 * @param m the registry
 * @param route the route template (NULL: "unmatched")
 */
void api_metrics_client_abort(api_metrics *m, const char *route);

/**
 * An export starts: layerd_exports_active goes up by one. Every call is
 * paired with one api_metrics_export_finished().
 *
 * @param m the registry
 * @param format the export format ("none", "gzip", "zstd", ...)
 */
void api_metrics_export_started(api_metrics *m, const char *format);

/**
 * An export ends (completed, failed or aborted): layerd_exports_active
 * goes down by one, the duration is observed in the histogram, bytes are
 * added to layerd_export_bytes_total{format} and one is added to
 * layerd_exports_total{format,result}.
 *
 * @param m the registry
 * @param format the export format, as given to export_started
 * @param seconds how long the export ran (negative values count as 0)
 * @param bytes bytes of the changeset produced (after compression)
 * @param ok true when the export completed
 */
void api_metrics_export_finished(api_metrics *m, const char *format,
                                 double seconds, uint64_t bytes, bool ok);

/** An entries stream starts: layerd_entry_streams_active goes up. */
void api_metrics_entry_stream_started(api_metrics *m);

/** An entries stream ends (completed or aborted): the gauge goes down. */
void api_metrics_entry_stream_finished(api_metrics *m);

/** Why the server dropped a client (layerd_http_dropped_total{reason}). */
typedef enum api_metrics_drop {
    API_METRICS_DROP_HEADER_TIMEOUT,  /**< headers not complete in time */
    API_METRICS_DROP_SEND_TIMEOUT,    /**< a response made no progress */
    API_METRICS_DROP_MAX_CONNECTIONS, /**< refused: --max-connections */
    API_METRICS_DROP_MAX_PER_CLIENT,  /**< refused: --max-per-client */
    API_METRICS_DROP_N
} api_metrics_drop;

/** Count a connection the server dropped for reason. */
void api_metrics_dropped(api_metrics *m, api_metrics_drop reason);

/** Most HTTP workers layerd_http_connections tells apart. */
#define API_METRICS_MAX_WORKERS 64

/** The server runs n HTTP workers (at most API_METRICS_MAX_WORKERS):
 * each is rendered from then on, at 0 until it has connections. */
void api_metrics_set_workers(api_metrics *m, unsigned n);

/** A connection was handed to worker (delta 1) or closed (-1). */
void api_metrics_worker_connections(api_metrics *m, unsigned worker, int delta);

/**
 * Count a request refused with 401 or 403. The reasons are a fixed set
 * (api_auth_failure_name()), never a principal or anything the client
 * sent; every one is rendered from the start, at 0.
 *
 * @param m the registry
 * @param reason why (API_AUTH_FAIL_NONE is ignored)
 */
void api_metrics_auth_failure(api_metrics *m, api_auth_failure reason);

/**
 * Render every metric in the Prometheus text exposition format 0.0.4
 * (Content-Type "text/plain; version=0.0.4; charset=utf-8"), with HELP
 * and TYPE lines, label values escaped.
 *
 * @param[out] out the text, NUL-terminated; free with layer_free()
 * @param[out] len its length without the NUL
 * @param m the registry
 * @return 0, LAYER_ENOMEM, or LAYER_ETOOBIG past API_METRICS_MAX_TEXT
 */
int api_metrics_render(char **out, size_t *len, api_metrics *m);

/**
 * Render the blob cache's counters too (layerd_cache_*: hits, misses,
 * waits, bypasses, evictions, bytes read and written, bytes and blobs
 * kept). The cache must outlive the registry's renders. NULL: none.
 */
void api_metrics_set_cache(api_metrics *m, struct layer_blobcache *cache);

#endif
