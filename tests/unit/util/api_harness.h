#ifndef TEST_API_HARNESS_H
#define TEST_API_HARNESS_H

/*
 * Driving api_handle() without sockets: a dir: store and an api_context
 * over it, fake requests (headers and query arguments from small tables),
 * and producers drained the way the server drains them (bounded reads,
 * AGAIN answered by waiting for the wake, finish() at the end). Every
 * helper fails the current Check test on error.
 */

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "api/api.h"
#include "layer/store.h"
#include "layer/trace.h"

/* Most headers, and most query arguments, of one fake request. */
#define AH_FAKE_MAX 8

/*
 * A fake request's headers (names matched case-insensitively) and query
 * arguments (exactly): {name, value} pairs, ended by the first NULL name.
 */
typedef struct ah_fake {
    const char *headers[AH_FAKE_MAX][2];
    const char *query[AH_FAKE_MAX][2];
    /* The client certificate the TLS layer would hand over, or NULL. */
    const struct api_client_cert *cert;
    size_t header_bytes; /* api_request.header_bytes (0: unknown) */
} ah_fake;

/* A store, a context over it, and the request span of the running test. */
typedef struct ah_env {
    char *store_dir; /* the dir: store's directory */
    layer_store *store;
    api_context *ctx; /* ready */
    layer_span *span; /* passed with each request, or NULL; set by the test */
} ah_env;

/*
 * A new temporary directory holding the demo store of
 * tests/fixtures/mkdemo.sh as ROOT/store. Returns ROOT; free() it.
 */
char *ah_demo_store(void);

/*
 * Make layer ID of the dir: store at ROOT: ROOT/ID/layer.json holding
 * layer_json, and an empty ROOT/ID/fs. Returns the fs path; free() it.
 */
char *ah_layer(const char *root, const char *id, const char *layer_json);

/*
 * Open the dir: store at store_dir and a ready context over it.
 * opts: the context's options but for the store (NULL: defaults).
 */
void ah_open(ah_env *env, const char *store_dir, const api_context_opts *opts);

/* Free the context and the store (not what opts pointed to). */
void ah_close(ah_env *env);

/* Handle METHOD PATH with the fake's headers and query (f may be NULL). */
void ah_request(api_response *res, const ah_env *env, const char *method,
                const char *path, const ah_fake *f);

/* A header of the response (case-insensitive), or NULL. */
const char *ah_header(const api_response *res, const char *name);

/* A trailer of a producer that has ended, or NULL. */
const char *ah_trailer(api_response *res, const char *name);

/*
 * One read of at most cap bytes from the response's producer, as the
 * server makes it: AGAIN is answered by waiting (30 s at most) for the
 * wake and reading again. Returns the byte count, API_PRODUCE_END or
 * API_PRODUCE_ERROR. For a client that goes away midway: call the
 * producer's finish(ctx, false), then api_response_dispose().
 */
ssize_t ah_read(api_response *res, char *buf, size_t cap);

/* What ah_drain_result() saw. */
typedef struct ah_drained {
    char *body; /* malloc()ed, NUL-terminated beyond len */
    size_t len;
    int result;      /* API_PRODUCE_END or API_PRODUCE_ERROR */
    unsigned agains; /* reads that answered API_PRODUCE_AGAIN */
} ah_drained;

/*
 * The body of a response: its bytes, or everything its producer yields in
 * reads of at most cap bytes, each checked against cap (and the total
 * against Content-Length when the response has one). The producer's
 * finish() is called with the outcome; api_response_dispose() is still
 * the caller's.
 */
void ah_drain_result(ah_drained *out, api_response *res, size_t cap);

/* ah_drain_result() that must end with API_PRODUCE_END; returns the body
 * (free() it). */
char *ah_drain(api_response *res, size_t cap, size_t *out_len);

/* The body as JSON (json_decref() it). */
json_t *ah_body_json(api_response *res);

/* Is j equal to the JSON text want? */
bool ah_json_is(const json_t *j, const char *want);

/* A string member of a JSON object, or NULL. */
const char *ah_jstr(const json_t *obj, const char *key);

/*
 * Check a problem answer: status, application/problem+json with its
 * length, the type URI from slug (NULL: about:blank), a title and a
 * detail, the instance, the trace id of env's span (when it has one), and
 * no trace of the store's directory in the detail.
 */
void ah_assert_problem(const ah_env *env, api_response *res, int status,
                       const char *slug, const char *instance);

#endif
