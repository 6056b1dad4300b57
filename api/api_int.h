#ifndef API_API_INT_H
#define API_API_INT_H

/*
 * Private to api/: what the route table hands a handler, and the helpers
 * handlers share to build responses. Every handler fills the response it
 * is given; on failure it answers with a problem (api_problem__*), which
 * discards whatever it had already put there.
 */

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "api/auth.h"
#include "layer/blobcache.h"
#include "layer/entry.h"
#include "layer/store.h"

/** The media types served. */
#define API_TYPE_JSON         "application/json"
#define API_TYPE_NDJSON       "application/x-ndjson"
#define API_TYPE_PROBLEM      "application/problem+json"
#define API_TYPE_YAML         "application/yaml"
#define API_TYPE_OCTETS       "application/octet-stream"
#define API_TYPE_WIN32_BACKUP "application/vnd.layerd.win32-backup"
#define API_TYPE_METRICS      "text/plain; version=0.0.4; charset=utf-8"

/** Prefix of the problem type URIs (RFC 9457 "type"). */
#define API_PROBLEM_BASE "https://layerd.dev/problems/"

/** Longest query value accepted (bytes). */
#define API_QUERY_MAX 8192

/**
 * The server-wide context (api/context.c): the options, copied, then the
 * state request threads share, which only api/context.c touches.
 */
struct api_context {
    layer_store *store;
    layer_trace_sink *trace;
    struct api_metrics *metrics;
    layer_blobcache *cache; /* NULL: no cache (api/blobs_int.h) */
    const char *openapi_path;
    const struct api_ui *ui;
    unsigned max_exports;
    unsigned export_retry_after;
    layer_export_tar export_tar;
    layer_compression registry_compression;
    api_auth *auth;     /* the policy in force (opts.auth or own_auth) */
    api_auth *own_auth; /* the default policy, when opts.auth was NULL */
    const api_hostnames *hosts; /* NULL: no Host check */
    bool allow_changing;
    uint64_t max_export_memory;
    unsigned max_streams;
    unsigned max_level;
    size_t max_header_bytes;
    uint64_t reader_fds; /* the descriptor pool; 0: no cap */

    /* The running exports and the memory they reserved: two numbers
     * checked and changed together, so under one mutex; atomics so that
     * they can be read without it. */
    pthread_mutex_t exports_lock;
    atomic_uint active_exports;
    _Atomic uint64_t export_memory;
    atomic_uint active_streams;
    _Atomic uint64_t fds_held;
    atomic_bool ready;

    /* Fills finishing on background threads (api/blobs.c), under
     * bg_lock; api_blobs__drain() sets bg_stopping and waits for none. */
    pthread_mutex_t bg_lock;
    pthread_cond_t bg_cond;
    unsigned bg_running;
    bool bg_stopping;
    bool bg_init;
};

/** One routed request, as a handler sees it. */
typedef struct api_call {
    api_context *ctx;
    const api_request *req;
    api_response *res;
    const char *route; /**< the matched template, static */
    char *id;          /**< decoded and valid layer id, or NULL */
    char *path;        /**< decoded and checked entry path, or NULL */
    size_t path_len;
    /** Who the request is (api/auth.h), once a protected route asked. */
    api_identity who;
    bool identified;
    /** Descriptors reserved for the layer's reader (api_layers__resolve()),
     * given back when the call ends or, for a stream, by its producer. */
    uint64_t fds;
} api_call;

/** Who may use a route (api/auth_rest.c). */
typedef enum api_access {
    API_ACCESS_OPEN,    /**< everyone; credentials are not looked at */
    API_ACCESS_METRICS, /**< the metrics op */
    API_ACCESS_LIST,    /**< the list op: the collection of layers */
    API_ACCESS_LAYER    /**< the read op on the route's {id} */
} api_access;

/** A route handler: always fills call->res. */
typedef void (*api_handler_fn)(api_call *call);

/* ---- responses (api.c) ---- */

/**
 * Release everything a response holds and zero it, keeping its route and
 * head flag: used before a handler answers differently (a problem).
 */
void api_response__reset(api_response *res);

/**
 * Set an in-memory body. Takes ownership of body (layer_alloc memory) even
 * on failure. Adds Content-Type and sets the length.
 * @return 0 or LAYER_ETOOBIG (headers full)
 */
int api_response__set_body(api_response *res, int status, const char *ctype,
                           char *body, size_t len);

/**
 * Serialise doc (compact, plus a final newline) as the body. Steals the
 * reference to doc (even on failure).
 * @return 0, LAYER_ENOMEM, LAYER_ETOOBIG
 */
int api_response__json(api_response *res, int status, const char *ctype,
                       json_t *doc);

/**
 * Serialise a JSON value compactly into layer_alloc memory.
 * @param[out] out the bytes (not NUL-terminated beyond len; one spare
 *             byte is allocated and set to NUL); release with layer_free()
 * @param[out] out_len their length
 * @param doc the value (borrowed)
 * @param extra bytes to reserve after the JSON text (e.g. for "\n")
 * @return 0 or LAYER_ENOMEM
 */
int api_json__dump(char **out, size_t *out_len, const json_t *doc,
                   size_t extra);

/**
 * Look up a query argument, refusing values longer than API_QUERY_MAX.
 * @param[out] out the value (borrowed from the request) or NULL if absent
 * @return 0, or LAYER_ETOOBIG (a problem was set)
 */
int api_query__get(const char **out, api_call *call, const char *name);

/**
 * Parse an optional decimal query argument in [min, max].
 * @param[out] out the value, or def when absent
 * @return 0, or LAYER_EINVALID (a 400 problem was set)
 */
int api_query__uint(uint64_t *out, api_call *call, const char *name,
                    uint64_t def, uint64_t min, uint64_t max);

/**
 * Parse an optional path query argument (prefix, after): decoded already
 * by the server, then checked like a URL path. A trailing '/' is dropped.
 * @param[out] out a copy (layer_free()) or NULL when absent
 * @param[out] out_len its length
 * @return 0, or a negative code (a 400 problem was set)
 */
int api_query__path(char **out, size_t *out_len, api_call *call,
                    const char *name);

/**
 * Does an If-None-Match value list etag (weak comparison, RFC 9110
 * section 13.1.2: a W/ prefix is ignored) or "*"?
 */
bool api_etag__listed(const char *list, const char *etag);

/** What a Range header asks of a representation. */
typedef enum api_range {
    API_RANGE_NONE,         /**< no usable Range: send everything (200) */
    API_RANGE_OK,           /**< bytes [*first, *last] (206) */
    API_RANGE_UNSATISFIABLE /**< 416 */
} api_range;

/**
 * Evaluate a Range header value against a representation of size bytes
 * (RFC 9110 section 14): one range of bytes, "a-b", "a-" or "-n"; several
 * ranges, another unit or bad syntax are ignored (API_RANGE_NONE), as is
 * any Range on an empty representation.
 * @param[out] first the first byte, for API_RANGE_OK
 * @param[out] last the last byte (inclusive), for API_RANGE_OK
 * @param v the header value, or NULL
 * @param size the representation's length
 */
api_range api_range__parse(uint64_t *first, uint64_t *last, const char *v,
                           uint64_t size);

/* ---- problems (problem.c) ---- */

/** The one mapping from a liblayer error code to an HTTP status. */
int api_problem__status(int code);

/**
 * Answer with a problem: res is reset first. slug NULL gives
 * "about:blank" with the status's reason phrase as title; detail may be
 * NULL. Adds Retry-After for 503 when the context has one.
 */
void api_problem__set(api_call *call, int status, const char *slug,
                      const char *title, const char *detail);

/**
 * Answer with the problem for a liblayer error code, taking the detail
 * from layer_error_last() for client errors; server errors get a generic
 * detail (the message goes to the trace, not to the client, since it may
 * name host paths).
 */
void api_problem__from_error(api_call *call, int code);

/**
 * Re-record the thread's last error message under another code (e.g. a
 * directory the store resolved but that is gone: ENOTFOUND becomes
 * EBROKEN), so the message and its code stay together.
 * @return code
 */
int api_problem__recode(int code);

/** The reason phrase of a status ("Not Found"), or "Unknown". */
const char *api_problem__reason(int status);

/* ---- access control (auth_rest.c) ---- */

/**
 * The Host check: 0, or a negative code with the problem set (421 for a
 * name that is not the server's, 400 for a malformed Host).
 */
int api_auth__check_host(api_call *call);

/**
 * Identify the request and decide the route's access before any store is
 * asked.
 * @return 0 when allowed, or a negative code with the problem set (401
 *         with its challenges, 403, or the 404 of a missing layer)
 */
int api_auth__enforce(api_call *call, api_access access);

/**
 * Decide read access again on the layer the store resolved (its canonical
 * id and its mutability).
 * @return 0, or a negative code with the problem set
 */
int api_auth__check_layer(api_call *call, const layer_info *info);

/**
 * Identify the request once (Authorization header, client certificate)
 * into call->who, and put auth.method, enduser.id and any certificate
 * failure on its span. The REST routes and the registry view share it.
 */
void api_auth__identify(api_call *call);

/** Identify the request and decide the read op on the layer the store
 * resolved (its canonical id and mutability); refuses nothing itself. */
api_verdict api_auth__decide_read(api_call *call, const layer_info *info);

/** May the request see layer id in a list? */
bool api_auth__may_list(api_call *call, const char *id, api_mutability m);

/** Answer a refusal of op (v is not API_ALLOW): the problem, the
 * challenges, the span attributes and the failure counter. */
void api_auth__refuse(api_call *call, api_verdict v, api_op op);

/* ---- layers (layers.c) ---- */

/**
 * Resolve call->id in the store inside a "store.resolve" span (a child of
 * the request span) with the layer's id, path, parents and kind.
 * @param[out] out the layer (layer_info_free())
 * @return 0, or a negative code (the problem was set)
 */
int api_layers__resolve(layer_info **out, api_call *call);

void api_layers__list(api_call *call);
void api_layers__get(api_call *call);

/* ---- entries (entries.c) ---- */

/**
 * Open a reader over a resolved layer. A missing directory of a layer the
 * store resolved is reported as LAYER_EBROKEN.
 * @param[out] out the reader (layer_reader_free())
 * @param span the tracing parent (NULL: the request span)
 * @return 0 or a negative code (no problem is set)
 */
int api_entries__open(layer_reader **out, api_call *call,
                      const layer_info *info, layer_span *span);

/**
 * Check that a layer can be read at all: open a reader and take its first
 * entry. Answers that stream (an export) call this before their status
 * goes out, so a layer refused at once gets a problem, not a cut stream.
 * @return 0 or a negative code (no problem is set)
 */
int api_entries__probe(const layer_info *info);

/**
 * Walk a layer's changeset to the entry at path, stopping as soon as the
 * walk passes where it would sort.
 * @param[out] out_reader the reader, positioned on the entry
 *             (layer_reader_free())
 * @param[out] out the entry, borrowed from the reader
 * @return 0, LAYER_ENOTFOUND, or another negative code (no problem is
 *         set)
 */
int api_entries__find(layer_reader **out_reader, const layer_entry **out,
                      api_call *call, const layer_info *info, const char *path,
                      size_t len);

/** Largest `depth` accepted (a path of 4096 bytes has fewer levels). */
#define API_DEPTH_MAX 4096

/** Where an entry stands against a listing's prefix and depth. */
typedef enum api_scope {
    API_SCOPE_IN,  /**< listed */
    API_SCOPE_OUT, /**< not listed; later entries may be */
    API_SCOPE_PAST /**< past the prefix's run: no later entry is listed */
} api_scope;

/**
 * Test an entry against a prefix (NULL: the whole layer) and a depth (0:
 * any; else at most that many levels below the prefix, whose own entry is
 * level 0). Relies on the changeset order for API_SCOPE_PAST.
 */
api_scope api_entries__scope(const char *prefix, size_t prefix_len,
                             uint64_t depth, const layer_entry *e);

/* ---- other handlers ---- */

void api_entries__list(api_call *call);
void api_entries__get(api_call *call);
void api_summary__get(api_call *call);
void api_ui__root(api_call *call);
void api_ui__redirect(api_call *call);
void api_ui__index(api_call *call);
void api_ui__file(api_call *call);
void api_export__get(api_call *call);

void api_files__get(api_call *call);
void api_health__healthz(api_call *call);
void api_health__readyz(api_call *call);
void api_health__openapi(api_call *call);
void api_health__metrics(api_call *call);

/* ---- content negotiation (api.c) ---- */

/**
 * Choose a media type from an Accept header value (RFC 9110 section
 * 12.5.1). For each candidate the most specific matching range gives its
 * weight (an exact "type/sub" over "type/" + '*' over a full wildcard);
 * q=0 excludes. The
 * highest weight wins; ties go to the more specific match, then to the
 * range listed first in the header, then to the earlier candidate.
 * Parameters other than q are ignored.
 *
 * @param[out] out_index the chosen candidate
 * @param accept the header value, or NULL (absent: the first candidate)
 * @param types candidate media types, in server preference order
 * @param ntypes their number
 * @return 0, or LAYER_ENOTFOUND when no candidate is acceptable (406)
 */
int api_accept__choose(size_t *out_index, const char *accept,
                       const char *const *types, size_t ntypes);

#endif
