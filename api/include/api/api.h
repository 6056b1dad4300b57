#ifndef API_API_H
#define API_API_H

/**
 * @file api/api.h
 * @brief The REST API as plain HTTP semantics, with no HTTP library.
 *
 * The server turns each HTTP request into an api_request, calls
 * api_handle(), and sends the api_response it gets back: a status, headers
 * and a body that is either bytes or a pull producer. api/ never calls
 * libmicrohttpd; server/ never builds JSON or maps errors to statuses.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "layer/export.h"
#include "layer/store.h"
#include "layer/blobcache.h"
#include "layer/export.h"
#include "layer/trace.h"

struct api_metrics;
struct api_ui;
struct api_auth;
struct api_hostnames;
struct api_client_cert;

/** What the handlers are given to work with. Borrowed pointers: each must
 * outlive the context. */
typedef struct api_context_opts {
    layer_store *store;
    layer_trace_sink *trace;     /**< may be NULL */
    struct api_metrics *metrics; /**< may be NULL */
    /** The blob cache exports of immutable layers are served from and
     * kept in (layer/blobcache.h); NULL: every export runs and nothing
     * is kept. */
    struct layer_blobcache *cache;
    const char *openapi_path; /**< file served at /openapi.yaml */
    /** The dashboard's files (api/ui.h); NULL: /ui/ answers 404. */
    const struct api_ui *ui;
    unsigned max_exports;        /**< cap on concurrent exports; 0: none */
    unsigned export_retry_after; /**< seconds, for 503 answers */
    /** The tar an export gives when the request does not say (its `tar`
     * parameter); 0 is LAYER_EXPORT_TAR_AUTO. */
    layer_export_tar export_tar;
    /** How the registry view (/v2/) compresses the layer blobs its
     * manifests name; 0 is LAYER_COMPRESSION_NONE. */
    layer_compression registry_compression;
    /** The access policy in force (api/auth.h); NULL: the default policy
     * (anonymous may list and read the immutable layers and read the
     * metrics). */
    struct api_auth *auth;
    /** The server's names for the Host check (api/auth.h); NULL: no
     * check. */
    const struct api_hostnames *hosts;
    /** Files that change while read are padded or cut with a warning
     * (LAYER_READER_ALLOW_CHANGING) instead of cutting the response. */
    bool allow_changing;
    /** Cap on the memory running exports hold, by layer_export_memory()'s
     * estimate, in bytes; 0: none. */
    uint64_t max_export_memory;
    /** Cap on concurrent streamed responses of every kind (exports, entry
     * listings, summaries, file bytes); 0: none. */
    unsigned max_streams;
    /** Highest compression level a request may ask for; gzip is also held
     * to its backend's top level. 0: the formats' own ranges. */
    unsigned max_level;
    /** Descriptors the layers requests open may hold in all: each request
     * that resolves a layer reserves its reader's budget
     * (LAYER_READER_FDS(parents), layer/reader.h) until its response is
     * freed, and gets 503 when the rest of the pool is short. 0: no cap. */
    uint64_t reader_fds;
    /** Largest request line plus headers accepted, bytes (431 beyond);
     * 0: no check here (the transport's buffer still bounds them). */
    size_t max_header_bytes;
} api_context_opts;

/**
 * Server-wide state the handlers share: the options above and the state
 * that request threads change while they run (the running exports, the
 * readiness). Those are C11 atomics inside the context, reached only
 * through the functions below, so any thread may call them.
 */
typedef struct api_context api_context;

/**
 * Create a context. It starts not ready (api_set_ready()) with no export
 * running.
 *
 * @param[out] out the context; free with api_context_free()
 * @param opts the options (copied; what they point to is borrowed)
 * @return 0 or LAYER_ENOMEM
 */
int api_context_new(api_context **out, const api_context_opts *opts);

/** Free a context (NULL is accepted). No request may be running on it;
 * fills still finishing in the background are stopped and waited for. */
void api_context_free(api_context *ctx);

/** Set the /readyz answer: the server clears it while it starts and while
 * it drains. */
void api_set_ready(api_context *ctx, bool ready);

/** The /readyz answer. */
bool api_is_ready(const api_context *ctx);

/**
 * Take an export slot and reserve its memory estimate.
 * @param bytes the export's estimate (layer_export_memory())
 * @return 0, or LAYER_EBUSY when max_exports exports are running or the
 *         reservations would pass max_export_memory (nothing is taken
 *         then). An export alone larger than the cap is refused too.
 */
int api_exports_acquire(api_context *ctx, uint64_t bytes);

/** Give back a slot and the bytes that api_exports_acquire() took. */
void api_exports_release(api_context *ctx, uint64_t bytes);

/** Exports running now (slots taken and not yet given back). */
unsigned api_exports_active(const api_context *ctx);

/** Memory reserved by the running exports, bytes. */
uint64_t api_exports_memory(const api_context *ctx);

/**
 * Take a stream slot: every streamed response holds one from its handler
 * until its producer is freed (api_handle() does both).
 * @return 0, or LAYER_EBUSY when max_streams streams are running
 */
int api_streams_acquire(api_context *ctx);

/** Give back a slot that api_streams_acquire() gave. */
void api_streams_release(api_context *ctx);

/**
 * Reserve n descriptors of the pool (api_context_opts.reader_fds).
 * @return 0, or LAYER_EBUSY when fewer than n are left
 */
int api_fds_acquire(api_context *ctx, uint64_t n);

/** Give back descriptors that api_fds_acquire() reserved. */
void api_fds_release(api_context *ctx, uint64_t n);

/** Descriptors reserved now. */
uint64_t api_fds_held(const api_context *ctx);

/** Streamed responses running now. */
unsigned api_streams_active(const api_context *ctx);

/**
 * Make the blob of layer id as /layers/{id}/export would (the same cache
 * key), or find it kept, and wait for it: for `layerd cache warm`. Runs
 * the export on a background thread of ctx and blocks the caller.
 *
 * @param[out] out its digests, size and media type
 * @param[out] out_tar the tar it is (want resolved)
 * @param ctx a context with a store and, for anything to be kept, a cache
 * @param id the layer
 * @param want the tar asked for (AUTO as the server's default)
 * @param compression the format
 * @param level the level (0: the format's default)
 * @return 0; the store's errors (LAYER_ENOTFOUND); LAYER_EUNSUPPORTED for
 *         an original tar the store did not keep; the export's errors
 */
int api_blob_warm(layer_blobcache_info *out, layer_export_tar *out_tar,
                  api_context *ctx, const char *id, layer_export_tar want,
                  layer_compression compression, int level);

/** A request, as the server hands it over. Strings are borrowed. */
typedef struct api_request {
    const char *method; /**< "GET", "HEAD", ... */
    /** The request-target's path, still percent-encoded (api decodes it
     * exactly once). */
    const char *raw_path;
    /** Look up a header (case-insensitive name); NULL if absent. */
    const char *(*header)(void *conn, const char *name);
    /** Every value of a header that may come on several lines (Accept):
     * up to max borrowed values in out, in the order received; returns
     * their number. May be NULL: header() then gives the one value. */
    size_t (*header_values)(void *conn, const char *name, const char **out,
                            size_t max);
    /** Look up a query argument (already decoded by the server); NULL if
     * absent. */
    const char *(*query)(void *conn, const char *name);
    void *conn; /**< passed back to header() and query() */
    const char *client_address;
    /** Bytes of the request line and headers as received (0: unknown);
     * more than api_context_opts.max_header_bytes is answered 431. */
    size_t header_bytes;
    /** The request's root span ("http.request"); children hang off it. */
    layer_span *span;
    /** The client certificate the TLS layer saw (api/auth.h), or NULL
     * when none was presented (or none is asked for). */
    const struct api_client_cert *client_cert;
} api_request;

/** Results of a producer's read(). Positive values are byte counts. */
enum api_produce_result {
    API_PRODUCE_AGAIN = 0, /**< nothing now; wake() will be called */
    API_PRODUCE_END = -1,  /**< the body is complete */
    API_PRODUCE_ERROR = -2 /**< failed: cut the stream, never end it */
};

/** One header or trailer. Strings owned by the response. */
typedef struct api_header {
    char *name;
    char *value;
} api_header;

/**
 * A streaming body: a bounded pull source (STYLE.md rule 12).
 * read() returns at most cap bytes, or an api_produce_result. It never
 * blocks. When it returns API_PRODUCE_AGAIN, the producer calls the wake
 * function installed with set_wake() once data is ready (possibly from
 * another thread, possibly before read() even returned). free() is called
 * exactly once, after the normal end and after a client abort alike.
 */
typedef struct api_producer {
    ssize_t (*read)(void *ctx, char *buf, size_t cap);
    void (*set_wake)(void *ctx, void (*wake)(void *arg), void *arg);
    /** Trailers, valid after read() returned API_PRODUCE_END; may be
     * NULL. Returns the number of trailers and a borrowed array. */
    size_t (*trailers)(void *ctx, const api_header **out);
    /** Called when the stream ends: completed or aborted by the client. */
    void (*finish)(void *ctx, bool completed);
    void (*free)(void *ctx);
    void *ctx;
} api_producer;

#define API_MAX_HEADERS 24

/** A response. Release with api_response_dispose(). */
typedef struct api_response {
    int status;
    api_header headers[API_MAX_HEADERS];
    size_t nheaders;
    char *body; /**< owned bytes, or NULL */
    size_t body_len;
    /** When producer.read is set, the body is streamed from it. */
    api_producer producer;
    /** Total body length if known (Content-Length), else chunked. */
    bool has_length;
    uint64_t content_length;
    /** HEAD: send the headers (incl. Content-Length) without a body. */
    bool head;
    /** Route template for logs and metrics, e.g. "/layers/{id}/export". */
    const char *route;
} api_response;

/**
 * Handle one request.
 *
 * Always fills *out (errors become problem+json responses); the caller
 * sends it and then calls api_response_dispose().
 *
 * @param[out] out the response
 * @param ctx server state
 * @param req the request
 */
void api_handle(api_response *out, api_context *ctx, const api_request *req);

/**
 * Add a header (both strings copied).
 * @return 0, or LAYER_ETOOBIG when API_MAX_HEADERS are used
 */
int api_response_add_header(api_response *res, const char *name,
                            const char *value);

/** Release a response's headers and body, and its producer if it was never
 * handed to a transport (res->producer.free is called once). */
void api_response_dispose(api_response *res);

#endif
