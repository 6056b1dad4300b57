/*
 * The server-wide context (api/api.h): the handlers' options and the
 * things request threads change while they run: the running exports and
 * the memory they reserved, the running streams, and the readiness flag.
 * Only this file touches them. A context always has an access policy:
 * the server's, or the default one made here when it gives none.
 *
 * Exports: a count and a byte total that must pass their caps together,
 * so one mutex serialises their changes; it is taken twice per export,
 * which costs nothing next to the export. Both are atomics as well, so
 * that the getters read them without the lock (a momentary value).
 *
 * Streams and readiness: C11 atomics, relaxed, because neither value
 * hands any other memory from one thread to another. The stream count
 * only bounds a number: every change is a read-modify-write on the one
 * object, and those are totally ordered whatever the memory order, so the
 * count is exact and a compare-and-swap never lets it pass the cap. The
 * readiness flag is a hint to load balancers; a request thread that sees
 * a change a moment late answers as it would have a moment earlier. The
 * options are written once, before the server starts its threads
 * (pthread_create orders them before anything a request thread reads).
 */
#include "api_int.h"
#include "blobs_int.h"

#include <assert.h>

#include "layer/alloc.h"
#include "layer/error.h"

int api_context_new(api_context **out, const api_context_opts *opts)
{
    api_context *ctx = layer_trycalloc(1, sizeof(*ctx));
    api_policy *policy = NULL;
    int rc;

    if (ctx == NULL)
        return LAYER_ENOMEM;
    ctx->auth = opts->auth;
    if (ctx->auth == NULL) {
        /* No policy given: the default one, never none at all. */
        if ((rc = api_policy_new_default(&policy)) < 0 ||
            (rc = api_auth_new(&ctx->own_auth, policy)) < 0) {
            layer_free(ctx);
            return rc;
        }
        ctx->auth = ctx->own_auth;
    }
    ctx->hosts = opts->hosts;
    ctx->store = opts->store;
    ctx->trace = opts->trace;
    ctx->metrics = opts->metrics;
    ctx->cache = opts->cache;
    ctx->openapi_path = opts->openapi_path;
    ctx->ui = opts->ui;
    ctx->max_exports = opts->max_exports;
    ctx->export_retry_after = opts->export_retry_after;
    ctx->export_tar = opts->export_tar;
    ctx->registry_compression = opts->registry_compression;
    ctx->allow_changing = opts->allow_changing;
    ctx->max_export_memory = opts->max_export_memory;
    ctx->max_streams = opts->max_streams;
    ctx->max_level = opts->max_level;
    ctx->max_header_bytes = opts->max_header_bytes;
    ctx->reader_fds = opts->reader_fds;
    if (pthread_mutex_init(&ctx->exports_lock, NULL) != 0) {
        api_auth_free(ctx->own_auth);
        layer_free(ctx);
        return layer_error_set(LAYER_ENOMEM, "pthread_mutex_init failed");
    }
    atomic_init(&ctx->active_exports, 0);
    atomic_init(&ctx->export_memory, 0);
    atomic_init(&ctx->active_streams, 0);
    atomic_init(&ctx->fds_held, 0);
    atomic_init(&ctx->ready, false);
    if (pthread_mutex_init(&ctx->bg_lock, NULL) != 0) {
        api_auth_free(ctx->own_auth);
        layer_free(ctx);
        return layer_error_set(LAYER_ENOMEM, "cannot create a lock");
    }
    if (pthread_cond_init(&ctx->bg_cond, NULL) != 0) {
        pthread_mutex_destroy(&ctx->bg_lock);
        api_auth_free(ctx->own_auth);
        layer_free(ctx);
        return layer_error_set(LAYER_ENOMEM, "cannot create a condition");
    }
    ctx->bg_init = true;
    *out = ctx;
    return 0;
}

void api_context_free(api_context *ctx)
{
    if (ctx == NULL)
        return;
    api_blobs__drain(ctx);
    pthread_cond_destroy(&ctx->bg_cond);
    pthread_mutex_destroy(&ctx->bg_lock);
    api_auth_free(ctx->own_auth);
    pthread_mutex_destroy(&ctx->exports_lock);
    layer_free(ctx);
}

void api_set_ready(api_context *ctx, bool ready)
{
    atomic_store_explicit(&ctx->ready, ready, memory_order_relaxed);
}

bool api_is_ready(const api_context *ctx)
{
    return atomic_load_explicit(&ctx->ready, memory_order_relaxed);
}

int api_exports_acquire(api_context *ctx, uint64_t bytes)
{
    unsigned n;
    uint64_t used;
    int rc = 0;

    pthread_mutex_lock(&ctx->exports_lock);
    n = atomic_load_explicit(&ctx->active_exports, memory_order_relaxed);
    used = atomic_load_explicit(&ctx->export_memory, memory_order_relaxed);
    if ((ctx->max_exports > 0 && n >= ctx->max_exports) ||
        (ctx->max_export_memory > 0 && bytes > ctx->max_export_memory - used)) {
        rc = LAYER_EBUSY;
    } else {
        atomic_store_explicit(&ctx->active_exports, n + 1,
                              memory_order_relaxed);
        atomic_store_explicit(&ctx->export_memory, used + bytes,
                              memory_order_relaxed);
    }
    pthread_mutex_unlock(&ctx->exports_lock);
    return rc;
}

void api_exports_release(api_context *ctx, uint64_t bytes)
{
    unsigned n;
    uint64_t used;

    pthread_mutex_lock(&ctx->exports_lock);
    n = atomic_load_explicit(&ctx->active_exports, memory_order_relaxed);
    used = atomic_load_explicit(&ctx->export_memory, memory_order_relaxed);
    assert(n > 0 && used >= bytes);
    atomic_store_explicit(&ctx->active_exports, n - 1, memory_order_relaxed);
    atomic_store_explicit(&ctx->export_memory, used - bytes,
                          memory_order_relaxed);
    pthread_mutex_unlock(&ctx->exports_lock);
}

unsigned api_exports_active(const api_context *ctx)
{
    return atomic_load_explicit(&ctx->active_exports, memory_order_relaxed);
}

uint64_t api_exports_memory(const api_context *ctx)
{
    return atomic_load_explicit(&ctx->export_memory, memory_order_relaxed);
}

int api_streams_acquire(api_context *ctx)
{
    unsigned n =
        atomic_load_explicit(&ctx->active_streams, memory_order_relaxed);

    do {
        if (ctx->max_streams > 0 && n >= ctx->max_streams)
            return LAYER_EBUSY;
    } while (!atomic_compare_exchange_weak_explicit(&ctx->active_streams, &n,
                                                    n + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 0;
}

void api_streams_release(api_context *ctx)
{
    unsigned was = atomic_fetch_sub_explicit(&ctx->active_streams, 1,
                                             memory_order_relaxed);

    assert(was > 0);
    (void)was;
}

int api_fds_acquire(api_context *ctx, uint64_t n)
{
    uint64_t held = atomic_load_explicit(&ctx->fds_held, memory_order_relaxed);

    do {
        if (ctx->reader_fds > 0 && n > ctx->reader_fds - held)
            return LAYER_EBUSY;
    } while (!atomic_compare_exchange_weak_explicit(
        &ctx->fds_held, &held, held + n, memory_order_relaxed,
        memory_order_relaxed));
    return 0;
}

void api_fds_release(api_context *ctx, uint64_t n)
{
    uint64_t was =
        atomic_fetch_sub_explicit(&ctx->fds_held, n, memory_order_relaxed);

    assert(was >= n);
    (void)was;
}

uint64_t api_fds_held(const api_context *ctx)
{
    return atomic_load_explicit(&ctx->fds_held, memory_order_relaxed);
}

unsigned api_streams_active(const api_context *ctx)
{
    return atomic_load_explicit(&ctx->active_streams, memory_order_relaxed);
}
