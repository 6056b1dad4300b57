/*
 * Layer blobs (api/blobs_int.h): the blob cache (layer/blobcache.h) and
 * the exporter (layer/export.h) joined, for every route that serves a
 * layer's bytes.
 *
 * Keys. A blob's cache key is the layer's identity ("<store kind>:<store
 * root> <id>"), a fingerprint known before any export
 * (api_blob__fingerprint(); see blobs_int.h for what it sees and what it
 * does not), the tar kind, the compression and the effective level (0 is
 * resolved, so "the default" and naming it are one blob). Mutable layers
 * and a context without a cache never touch the cache (BYPASS).
 *
 * Jobs. An export that makes a blob is a job: the export, the cache
 * writer it fills (none for a BYPASS), the layer it reads (owned: a job
 * may outlive its request), the export slot and the export metrics. A job
 * is driven either by a client's reads (api_blob__read(): each chunk the
 * export gives is written to the cache file, then handed to the client:
 * one export, one copy into the page cache) or by a background thread.
 * The background thread takes over
 *   - when the filling client goes away mid-stream while other clients
 *     wait on the fill (WAIT readers of the growing file): it drains the
 *     export into the cache for them, checking before every chunk that
 *     someone still waits; once nobody does (or the server stops), it
 *     aborts the fill and nothing is kept, so an abandoned fill costs at
 *     most one chunk of work after its last reader left;
 *   - when the filling client reached the end: the commit (fsync, rename,
 *     journal) runs there, so the client gets its last chunk and trailers
 *     without waiting for the disk; the waiters learn the digests when
 *     the commit is done;
 *   - for a describe: a miss starts the fill on its own thread at once.
 * Background threads are counted in the context; api_blobs__drain() tells
 * them to stop and waits for them.
 *
 * Stale exports. A fill is committed only when the export ended cleanly
 * with no warning (no file changed while it was read) and, for the
 * canonical tar, the key's fingerprint taken again at the end equals the
 * one taken at the start. Otherwise the fill is aborted and its waiters
 * read an error and cut their streams. The filling client keeps its
 * stream when only the fingerprint moved (a directory of the chain was
 * renamed or touched: every file was read through descriptors and
 * checked, so its bytes are an export of what it read, just not one to
 * keep under the old key); it is cut when a file changed (without
 * --allow-changing the export itself fails). The next request fills
 * anew under the new fingerprint. An original tar is checked against its
 * diff ID by the export itself. The fingerprint also says whether this
 * process can read trusted.* xattrs (CAP_SYS_ADMIN): without them an
 * overlay layer's opaque directories are missed, so the bytes differ.
 *
 * Notify. The export's notify callback is a trampoline into the job, which
 * calls the client's callback under the job's notify_lock; uninstalling it
 * (api_blob__set_notify(NULL), done before a background thread takes a
 * job over) takes that lock, so no callback into a finished request runs
 * after. Cache readers have the same guarantee from layer/blobcache.h.
 *
 * Describe. A describe waits for a fill through a WAIT reader whose range
 * starts past any end (layer_blobcache_reader_range(): such a reader reads
 * nothing and learns the fill's end, committed or aborted, through the
 * notify protocol); for a miss it becomes the filler, attaches such a
 * reader to its own fill, hands the export to a background thread and
 * keeps the job: a fill that ends unkept answers with the job's error
 * (the export's own, e.g. 422 for an overlay redirect) rather than the
 * reader's "abandoned".
 * A BYPASS describe exports on a background thread and keeps only the
 * digests.
 */
#include "blobs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "api/metrics.h"
#include "layer/alloc.h"
#include "layer/compress.h"
#include "layer/digest.h"
#include "layer/error.h"
#include "layer/text.h"

/* A background thread's read size: the export's own buffers are 256 KiB
 * (STREAM_BLOCK in server/http.c asks for as much). */
#define DRAIN_CHUNK (256u * 1024u)

/* Room for a key's layer identity. */
#define LAYER_KEY_MAX LAYER_BLOBCACHE_LAYER_MAX

typedef enum job_state { JOB_RUNNING, JOB_ENDED, JOB_FAILED } job_state;

typedef struct job {
    api_context *ctx;
    pthread_mutex_t lock; /* refs, state, result, err */
    unsigned refs;        /* the client's blob or describe; the thread */
    layer_info *info;
    layer_export_original orig; /* borrows from info */
    layer_export *x;
    layer_blobcache_writer *w; /* the fill, or NULL */
    layer_export_tar tar;
    char fp[API_BLOB_FINGERPRINT_SIZE];
    const char *format;  /* metrics label */
    bool slot;           /* holds an export slot ... */
    uint64_t slot_bytes; /* ... and this memory estimate */
    uint64_t fds;        /* descriptors reserved (api_fds_acquire()) */
    bool metrics;        /* export_started was counted */
    bool ended;          /* the export gave LAYER_ITEROVER */
    bool ok;             /* ... and its result holds */
    struct timespec started;
    uint64_t bytes;
    job_state state;
    layer_blobcache_info result;
    layer_error_state err;
    bool abandoned; /* a BYPASS describe's owner went away */

    /* The consumer's callback (trampoline, see the top). */
    pthread_mutex_t notify_lock;
    void (*fn)(void *arg);
    void *arg;
    bool pending;
} job;

struct api_blob {
    api_context *ctx;
    layer_blobcache_role role;
    layer_blobcache_reader *reader; /* HIT, WAIT */
    job *job;                       /* FILL, BYPASS */
    layer_export_tar tar;
    layer_blobcache_info info;
    bool have_info;
    bool started; /* a read happened */
    /* api_blob__respond(): the trailers */
    char names[2][32];
    char values[2][LAYER_DIGEST_STR_SIZE];
    api_header trailers[2];
};

struct api_blob_describe {
    layer_blobcache_reader *reader; /* waits on a fill */
    job *job; /* a BYPASS export, or the fill this describe started */
    layer_error_state unkept; /* why that fill was not kept */
    layer_blobcache_info info;
    bool have_info;
};

/* ---- fingerprints ------------------------------------------------------ */

static void add_str(layer_digest *d, const char *s)
{
    /* with its NUL, so that fields cannot run into each other */
    if (s == NULL)
        s = "";
    (void)layer_digest_update(d, s, strlen(s) + 1);
}

static int add_dir(layer_digest *d, const layer_dir *dir)
{
    const char *path = dir->path != NULL ? dir->path : "";
    struct statx st;
    char buf[256];

    if (statx(dir->has_fd ? dir->fd : AT_FDCWD, dir->has_fd ? "" : path,
              dir->has_fd ? AT_EMPTY_PATH : AT_SYMLINK_NOFOLLOW,
              STATX_TYPE | STATX_INO | STATX_MTIME | STATX_CTIME | STATX_BTIME,
              &st) < 0)
        return layer_error_set_errno(
            errno == ENOENT ? LAYER_ENOTFOUND : LAYER_ERROR, errno,
            "cannot stat layer directory %s", path);
    add_str(d, path);
    snprintf(buf, sizeof(buf),
             "%o %" PRIu32 ":%" PRIu32 " %" PRIu64 " b%" PRId64 ".%" PRIu32
             " c%" PRId64 ".%" PRIu32 " m%" PRId64 ".%" PRIu32,
             (unsigned)st.stx_mode, st.stx_dev_major, st.stx_dev_minor,
             (uint64_t)st.stx_ino,
             (st.stx_mask & STATX_BTIME) ? (int64_t)st.stx_btime.tv_sec : 0,
             (st.stx_mask & STATX_BTIME) ? st.stx_btime.tv_nsec : 0,
             (int64_t)st.stx_ctime.tv_sec, st.stx_ctime.tv_nsec,
             (int64_t)st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec);
    add_str(d, buf);
    return 0;
}

/* Can this process read trusted.* xattrs (CAP_SYS_ADMIN in effect)? */
static bool trusted_xattrs(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

    memset(d, 0, sizeof(d));
    if (syscall(SYS_capget, &h, d) != 0)
        return false;
    return (d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &
            CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
}

int api_blob__fingerprint(char out[API_BLOB_FINGERPRINT_SIZE],
                          const layer_info *info, layer_export_tar tar)
{
    layer_digest d = LAYER_DIGEST_INIT;
    char hex[LAYER_DIGEST_STR_SIZE];
    int rc;

    if (tar == LAYER_EXPORT_TAR_ORIGINAL) {
        if (info->diff_digest == NULL ||
            strlen(info->diff_digest) >= API_BLOB_FINGERPRINT_SIZE - 6)
            return layer_error_set(
                LAYER_EINVALID, "layer %s has no recorded diff ID", info->id);
        snprintf(out, API_BLOB_FINGERPRINT_SIZE, "diff:%s", info->diff_digest);
        return 0;
    }
    if ((rc = layer_digest_init(&d)) < 0)
        goto out;
    add_str(&d, "layerd canonical 1");
    add_str(&d, info->store);
    add_str(&d, info->id);
    add_str(&d, info->created);
    add_str(&d, info->diff_digest);
    add_str(&d, info->mutable_ ? "mutable" : "immutable");
    add_str(&d, layer_kind_name(info->layer.kind));
    add_str(&d, trusted_xattrs() ? "trusted xattrs" : "no trusted xattrs");
    if ((rc = add_dir(&d, &info->layer)) < 0)
        goto out;
    for (size_t i = 0; i < info->nparents; i++) {
        add_str(&d, info->parent_ids != NULL ? info->parent_ids[i] : "");
        add_str(&d, layer_kind_name(info->parents[i].kind));
        if ((rc = add_dir(&d, &info->parents[i])) < 0)
            goto out;
    }
    if ((rc = layer_digest_final(hex, &d)) < 0)
        goto out;
    snprintf(out, API_BLOB_FINGERPRINT_SIZE, "%s", hex);
out:
    layer_digest_dispose(&d);
    return rc;
}

/* The key's layer identity: where the store is and the layer's id. */
static int layer_key(char *out, size_t cap, const api_context *ctx,
                     const layer_info *info)
{
    const char *where = info->root;
    int n;

    if (where == NULL)
        where = ctx->store != NULL ? layer_store_spec(ctx->store) : "";
    n = snprintf(out, cap, "%s:%s %s", info->store != NULL ? info->store : "",
                 where, info->id);
    if (n < 0 || (size_t)n >= cap)
        return layer_error_set(LAYER_ETOOBIG,
                               "layer %s: its store path is too long for a "
                               "cache key",
                               info->id);
    return 0;
}

/* Release what a spec holds: its layer and its descriptors. */
static void spec_release(api_context *ctx, api_blob_spec *spec)
{
    layer_info_free(spec->info);
    spec->info = NULL;
    if (spec->fds > 0)
        api_fds_release(ctx, spec->fds);
    spec->fds = 0;
}

/* ---- background threads ---------------------------------------------- */

static bool bg_enter(api_context *ctx)
{
    bool ok;

    pthread_mutex_lock(&ctx->bg_lock);
    ok = !ctx->bg_stopping;
    if (ok)
        ctx->bg_running++;
    pthread_mutex_unlock(&ctx->bg_lock);
    return ok;
}

static void bg_leave(api_context *ctx)
{
    pthread_mutex_lock(&ctx->bg_lock);
    if (--ctx->bg_running == 0)
        pthread_cond_broadcast(&ctx->bg_cond);
    pthread_mutex_unlock(&ctx->bg_lock);
}

static bool bg_stopping(api_context *ctx)
{
    bool stop;

    pthread_mutex_lock(&ctx->bg_lock);
    stop = ctx->bg_stopping;
    pthread_mutex_unlock(&ctx->bg_lock);
    return stop;
}

void api_blobs__drain(api_context *ctx)
{
    if (ctx == NULL || !ctx->bg_init)
        return;
    pthread_mutex_lock(&ctx->bg_lock);
    ctx->bg_stopping = true;
    while (ctx->bg_running > 0)
        pthread_cond_wait(&ctx->bg_cond, &ctx->bg_lock);
    pthread_mutex_unlock(&ctx->bg_lock);
}

/* ---- jobs ------------------------------------------------------------ */

/* The export's notify callback: into the consumer's, under notify_lock. */
static void job_event(void *arg)
{
    job *j = arg;

    pthread_mutex_lock(&j->notify_lock);
    if (j->fn != NULL)
        j->fn(j->arg);
    else
        j->pending = true;
    pthread_mutex_unlock(&j->notify_lock);
}

static void job_set_notify(job *j, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&j->notify_lock);
    j->fn = fn;
    j->arg = arg;
    if (fn != NULL && j->pending) {
        j->pending = false;
        fn(arg);
    }
    pthread_mutex_unlock(&j->notify_lock);
}

static void job_unref(job *j)
{
    struct timespec now;
    bool last;

    if (j == NULL)
        return;
    pthread_mutex_lock(&j->lock);
    last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (!last)
        return;
    layer_export_free(j->x); /* joins its workers: no event after this */
    if (j->w != NULL)
        layer_blobcache_abort(j->w, "the export was abandoned");
    if (j->metrics) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        api_metrics_export_finished(
            j->ctx->metrics, j->format,
            (double)(now.tv_sec - j->started.tv_sec) +
                (double)(now.tv_nsec - j->started.tv_nsec) / 1e9,
            j->bytes, j->ended && j->ok);
    }
    if (j->slot)
        api_exports_release(j->ctx, j->slot_bytes);
    layer_info_free(j->info);
    if (j->fds > 0)
        api_fds_release(j->ctx, j->fds);
    pthread_mutex_destroy(&j->notify_lock);
    pthread_mutex_destroy(&j->lock);
    layer_free(j);
}

/* Start the export of spec (whose info the job takes over). w is the
 * fill to feed, or NULL; the slot, when given, is the job's to release.
 * On failure w is aborted and everything given is released. */
static int job_start(job **out, api_context *ctx, api_blob_spec *spec,
                     int level, const char *fp, layer_blobcache_writer *w,
                     bool slot, layer_span *span)
{
    layer_export_opts opts;
    job *j = NULL;
    int rc = 0;

    if ((j = layer_trycalloc(1, sizeof(*j))) == NULL) {
        rc = LAYER_ENOMEM;
        goto fail;
    }
    if (pthread_mutex_init(&j->lock, NULL) != 0) {
        layer_free(j);
        j = NULL;
        rc = layer_error_set(LAYER_ENOMEM, "cannot create a lock");
        goto fail;
    }
    if (pthread_mutex_init(&j->notify_lock, NULL) != 0) {
        pthread_mutex_destroy(&j->lock);
        layer_free(j);
        j = NULL;
        rc = layer_error_set(LAYER_ENOMEM, "cannot create a lock");
        goto fail;
    }
    j->ctx = ctx;
    j->refs = 1;
    j->info = spec->info;
    spec->info = NULL;
    j->w = w;
    w = NULL;
    j->slot = slot;
    j->slot_bytes = layer_export_memory(spec->compression, level);
    slot = false;
    j->fds = spec->fds;
    spec->fds = 0;
    j->tar = spec->tar;
    j->format = layer_compression_name(spec->compression);
    snprintf(j->fp, sizeof(j->fp), "%s", fp != NULL ? fp : "");
    memset(&opts, 0, sizeof(opts));
    opts.compression = spec->compression;
    opts.level = level;
    opts.span = span;
    if (ctx->allow_changing)
        opts.reader_flags |= LAYER_READER_ALLOW_CHANGING;
    if (j->tar == LAYER_EXPORT_TAR_ORIGINAL) {
        layer_export_tar got;

        if ((rc = layer_export_choose_tar(&got, &j->orig, j->info,
                                          LAYER_EXPORT_TAR_ORIGINAL, 0)) < 0)
            goto fail;
        opts.original = &j->orig;
    }
    if ((rc = layer_export_start(&j->x, &j->info->layer, j->info->parents,
                                 j->info->nparents, &opts)) < 0)
        goto fail;
    /* the export hashes its output for the trailers: the fill takes that
     * digest rather than hashing the same bytes again */
    if (j->w != NULL && (rc = layer_blobcache_writer_given(j->w)) < 0)
        goto fail;
    layer_export_set_notify(j->x, job_event, j);
    clock_gettime(CLOCK_MONOTONIC, &j->started);
    api_metrics_export_started(ctx->metrics, j->format);
    j->metrics = true;
    *out = j;
    return 0;
fail:
    if (j != NULL) {
        if (j->w != NULL) {
            layer_blobcache_abort(j->w, layer_error_last());
            j->w = NULL;
        }
        job_unref(j);
    } else {
        if (w != NULL)
            layer_blobcache_abort(w, layer_error_last());
        if (slot)
            api_exports_release(ctx,
                                layer_export_memory(spec->compression, level));
        spec_release(ctx, spec);
    }
    return rc;
}

/* Abort the job's fill, if it still has one. */
static void job_drop_fill(job *j, const char *why)
{
    if (j->w == NULL)
        return;
    layer_blobcache_abort(j->w, why);
    j->w = NULL;
}

/* One read of the export; its bytes go to the fill first. */
static int job_read(size_t *out_n, job *j, void *buf, size_t cap,
                    unsigned flags)
{
    int rc = layer_export_read(out_n, j->x, buf, cap, flags);

    if (rc == 0) {
        j->bytes += *out_n;
        if (j->w != NULL && layer_blobcache_write(j->w, buf, *out_n) < 0) {
            /* The disk failed the cache (full?): the waiters lose, the
             * client reading the export does not. */
            char why[LAYER_ERROR_MSG_MAX];

            snprintf(why, sizeof(why), "cannot write the cache: %s",
                     layer_error_last());
            job_drop_fill(j, why);
        }
        return 0;
    }
    if (rc == LAYER_ITEROVER) {
        j->ended = true;
        return rc;
    }
    if (rc != LAYER_EAGAIN) {
        const char *msg = layer_export_error(j->x);

        job_drop_fill(j, msg != NULL ? msg : layer_error_last());
    }
    return rc;
}

/* The export ended: fill in the result and decide whether it holds.
 * Returns 0, or LAYER_ECHANGED (recorded) when the layer changed under
 * the export; the fill is then aborted. */
static int job_conclude(job *j)
{
    layer_export_summary sum;
    char fp[API_BLOB_FINGERPRINT_SIZE];
    char why[LAYER_ERROR_MSG_MAX];
    int rc = 0;

    layer_export_summary_get(&sum, j->x);
    pthread_mutex_lock(&j->lock);
    memset(&j->result, 0, sizeof(j->result));
    snprintf(j->result.digest, sizeof(j->result.digest), "%s", sum.digest);
    snprintf(j->result.diff_id, sizeof(j->result.diff_id), "%s", sum.diff_id);
    snprintf(j->result.media_type, sizeof(j->result.media_type), "%s",
             sum.media_type);
    j->result.size = sum.size;
    pthread_mutex_unlock(&j->lock);
    if (j->w == NULL && j->fp[0] == '\0') {
        j->ok = true; /* a BYPASS: the digests are of the bytes given */
        return 0;
    }
    why[0] = '\0';
    if (sum.warnings != 0) {
        snprintf(why, sizeof(why),
                 "the layer changed while it was exported (%s)",
                 sum.last_warning != NULL ? sum.last_warning : "a file");
    } else if (j->tar != LAYER_EXPORT_TAR_ORIGINAL) {
        rc = api_blob__fingerprint(fp, j->info, j->tar);
        if (rc < 0 || strcmp(fp, j->fp) != 0)
            snprintf(why, sizeof(why),
                     "the layer changed while it was exported (its "
                     "fingerprint moved)");
    }
    if (why[0] != '\0') {
        job_drop_fill(j, why);
        if (sum.warnings == 0 || j->ctx->allow_changing) {
            /* only the fingerprint moved, or --allow-changing: the
             * client gets what was read, with its digests; the cache
             * keeps nothing (see the top) */
            j->ok = true;
            return 0;
        }
        return layer_error_set(LAYER_ECHANGED, "%s", why);
    }
    j->ok = true;
    return 0;
}

/* Commit the job's fill with its result. */
static void job_commit(job *j)
{
    layer_blobcache_info info;
    layer_blobcache_writer *w = j->w;

    if (w == NULL)
        return;
    j->w = NULL;
    pthread_mutex_lock(&j->lock);
    info = j->result;
    pthread_mutex_unlock(&j->lock);
    if (layer_blobcache_commit(w, &info) < 0)
        fprintf(stderr, "layerd: blob %s not kept in the cache: %s\n",
                info.digest, layer_error_last());
}

/* Record the job's end for a describe and wake it. */
static void job_settle(job *j, int code)
{
    pthread_mutex_lock(&j->lock);
    if (code < 0) {
        layer_error_save(&j->err);
        j->state = JOB_FAILED;
    } else {
        j->state = JOB_ENDED;
    }
    pthread_mutex_unlock(&j->lock);
    job_event(j);
}

/* Does anyone still want the job's result? */
static bool job_wanted(job *j)
{
    bool abandoned;

    if (bg_stopping(j->ctx))
        return false;
    if (j->w != NULL)
        return layer_blobcache_writer_readers(j->w) > 0;
    pthread_mutex_lock(&j->lock);
    abandoned = j->abandoned;
    pthread_mutex_unlock(&j->lock);
    return !abandoned;
}

/* A background thread: drain the export (unless it ended) into the fill
 * while anyone waits, then conclude and commit. */
static void *job_main(void *arg)
{
    job *j = arg;
    api_context *ctx = j->ctx;
    char *buf = NULL;
    size_t n;
    int rc = 0;

    if (!j->ended && (buf = layer_trymalloc(DRAIN_CHUNK)) == NULL) {
        job_drop_fill(j, "out of memory");
        rc = layer_error_set(LAYER_ENOMEM, "out of memory");
    }
    while (rc == 0 && !j->ended) {
        if (!job_wanted(j)) {
            job_drop_fill(j, bg_stopping(ctx)
                                 ? "the server is stopping"
                                 : "the client went away and nobody waits");
            rc = layer_error_set(LAYER_ECANCELED, "nobody waits for the blob");
            break;
        }
        rc = job_read(&n, j, buf, DRAIN_CHUNK, 0);
        if (rc == LAYER_ITEROVER)
            rc = 0;
        else if (rc < 0 && layer_export_error(j->x) != NULL)
            rc = layer_error_set(rc, "%s", layer_export_error(j->x));
    }
    if (rc == 0 && !j->ok)
        rc = job_conclude(j);
    if (rc == 0)
        job_commit(j);
    job_settle(j, rc);
    layer_free(buf);
    job_unref(j);
    bg_leave(ctx);
    return NULL;
}

/* Hand the job to a background thread (which takes a reference). When no
 * thread can be had, an ended job is committed here and a running one
 * loses its fill. */
static void job_background(job *j)
{
    pthread_attr_t attr;
    pthread_t t;
    bool started = false;

    if (bg_enter(j->ctx)) {
        pthread_mutex_lock(&j->lock);
        j->refs++;
        pthread_mutex_unlock(&j->lock);
        if (pthread_attr_init(&attr) == 0) {
            (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            started = pthread_create(&t, &attr, job_main, j) == 0;
            pthread_attr_destroy(&attr);
        }
        if (!started) {
            pthread_mutex_lock(&j->lock);
            j->refs--;
            pthread_mutex_unlock(&j->lock);
            bg_leave(j->ctx);
        }
    }
    if (started)
        return;
    if (j->ended && j->ok) {
        job_commit(j);
        job_settle(j, 0);
    } else {
        job_drop_fill(j, "no thread to finish the fill");
        job_settle(j, layer_error_set(LAYER_ECANCELED,
                                      "no thread to finish the fill"));
    }
}

/* ---- opening blobs ------------------------------------------------------ */

static void set_result(layer_span *span, layer_blobcache_role role)
{
    layer_span_set_str(span, "cache.result", layer_blobcache_role_name(role));
}

/* The key of spec: identity, fingerprint, options. */
static int make_key(layer_blobcache_key *key, char *lk, size_t lk_cap,
                    char fp[API_BLOB_FINGERPRINT_SIZE], api_context *ctx,
                    const api_blob_spec *spec, int level)
{
    int rc;

    if ((rc = layer_key(lk, lk_cap, ctx, spec->info)) < 0 ||
        (rc = api_blob__fingerprint(fp, spec->info, spec->tar)) < 0)
        return rc;
    memset(key, 0, sizeof(*key));
    key->layer = lk;
    key->fingerprint = fp;
    key->tar = spec->tar == LAYER_EXPORT_TAR_ORIGINAL
                   ? LAYER_BLOBCACHE_TAR_ORIGINAL
                   : LAYER_BLOBCACHE_TAR_CANONICAL;
    key->compression = spec->compression;
    key->level = level;
    return 0;
}

static api_blob *blob_new(api_context *ctx)
{
    api_blob *b = layer_trycalloc(1, sizeof(*b));

    if (b != NULL)
        b->ctx = ctx;
    return b;
}

int api_blob__open(api_blob **out, api_context *ctx, api_blob_spec *spec,
                   layer_span *span, unsigned flags)
{
    layer_blobcache_lookup look;
    layer_blobcache_key key;
    char lk[LAYER_KEY_MAX], fp[API_BLOB_FINGERPRINT_SIZE];
    bool cached, slot = false;
    unsigned gflags = 0;
    api_blob *b = NULL;
    int level, rc;

    memset(&look, 0, sizeof(look));
    fp[0] = '\0';
    if ((rc = layer_compress_level(&level, spec->compression, spec->level)) < 0)
        goto out;
    if ((b = blob_new(ctx)) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    b->tar = spec->tar;
    layer_span_set_str(span, "export.tar", layer_export_tar_name(spec->tar));
    cached = ctx->cache != NULL && !spec->info->mutable_;
    if (cached) {
        if ((rc = make_key(&key, lk, sizeof(lk), fp, ctx, spec, level)) < 0)
            goto out;
    } else {
        gflags |= LAYER_BLOBCACHE_GET_BYPASS;
    }
    /* A slot first: a filler must not have to give up its fill for want
     * of one. Without one, only a hit or a fill in flight can serve. */
    if (!(flags & API_BLOB_NOFILL) &&
        api_exports_acquire(ctx,
                            layer_export_memory(spec->compression, level)) == 0)
        slot = true;
    if (!slot)
        gflags |= LAYER_BLOBCACHE_GET_NOFILL;
    if (!cached) {
        look.role = LAYER_BLOBCACHE_BYPASS;
        if (ctx->cache != NULL)
            (void)layer_blobcache_get(&look, ctx->cache, NULL,
                                      LAYER_BLOBCACHE_GET_BYPASS); /* count */
    } else if ((rc = layer_blobcache_get(&look, ctx->cache, &key, gflags)) <
               0) {
        if (rc == LAYER_ENOTFOUND && !(flags & API_BLOB_NOFILL))
            rc = layer_error_set(LAYER_EBUSY, "every export slot is taken");
        goto out;
    }
    b->role = look.role;
    switch (look.role) {
    case LAYER_BLOBCACHE_HIT:
    case LAYER_BLOBCACHE_WAIT:
        b->reader = look.reader;
        look.reader = NULL;
        if (look.role == LAYER_BLOBCACHE_HIT &&
            layer_blobcache_reader_info(&b->info, b->reader) == 0)
            b->have_info = true;
        break;
    case LAYER_BLOBCACHE_FILL:
    case LAYER_BLOBCACHE_BYPASS:
        if (flags & API_BLOB_NOFILL) {
            rc = layer_error_set(LAYER_ENOTFOUND, "the blob is not made yet");
            goto out;
        }
        if (!slot) {
            rc = layer_error_set(LAYER_EBUSY, "every export slot is taken");
            goto out;
        }
        slot = false;
        rc = job_start(&b->job, ctx, spec, level,
                       look.role == LAYER_BLOBCACHE_FILL ? fp : NULL,
                       look.writer, true, span);
        look.writer = NULL;
        if (rc < 0)
            goto out;
        break;
    }
    set_result(span, b->role);
    *out = b;
    b = NULL;
out:
    if (look.writer != NULL)
        layer_blobcache_abort(look.writer, "the export could not start");
    layer_blobcache_reader_free(look.reader);
    if (slot)
        api_exports_release(ctx, layer_export_memory(spec->compression, level));
    spec_release(ctx, spec);
    api_blob__free(b);
    return rc;
}

int api_blob__open_digest(api_blob **out, api_context *ctx, const char *digest,
                          layer_span *span)
{
    api_blob *b = NULL;
    int rc;

    if (ctx->cache == NULL)
        return layer_error_set(
            LAYER_ENOTFOUND, "blob %.80s: this server keeps no blobs", digest);
    if ((b = blob_new(ctx)) == NULL)
        return LAYER_ENOMEM;
    if ((rc = layer_blobcache_open_digest(&b->reader, ctx->cache, digest)) <
        0) {
        layer_free(b);
        return rc;
    }
    b->role = LAYER_BLOBCACHE_HIT;
    (void)layer_blobcache_reader_info(&b->info, b->reader);
    b->have_info = true;
    set_result(span, b->role);
    *out = b;
    return 0;
}

layer_blobcache_role api_blob__role(const api_blob *b)
{
    return b->role;
}

int api_blob__info(layer_blobcache_info *out, const api_blob *b)
{
    if (!b->have_info)
        return LAYER_EAGAIN;
    *out = b->info;
    return 0;
}

int api_blob__range(api_blob *b, uint64_t offset, uint64_t length)
{
    if (b->role != LAYER_BLOBCACHE_HIT || b->started)
        return layer_error_set(LAYER_EINVALID,
                               "a range is for a kept blob, before its "
                               "first byte");
    return layer_blobcache_reader_range(b->reader, offset, length);
}

/* The end of a FILL or BYPASS stream. */
static int job_stream_end(api_blob *b)
{
    job *j = b->job;
    int rc;

    if ((rc = job_conclude(j)) < 0)
        return rc;
    pthread_mutex_lock(&j->lock);
    b->info = j->result;
    pthread_mutex_unlock(&j->lock);
    b->have_info = true;
    if (j->w != NULL) {
        /* the commit's fsync runs off the client's way */
        job_set_notify(j, NULL, NULL);
        job_background(j);
    }
    return LAYER_ITEROVER;
}

int api_blob__read(size_t *out_n, api_blob *b, void *buf, size_t cap)
{
    int rc;

    b->started = true;
    if (b->reader != NULL) {
        rc = layer_blobcache_read(out_n, b->reader, buf, cap,
                                  LAYER_BLOBCACHE_NONBLOCK);
        if (rc == LAYER_ITEROVER && !b->have_info &&
            layer_blobcache_reader_info(&b->info, b->reader) == 0)
            b->have_info = true;
        return rc;
    }
    if (b->job == NULL)
        return layer_error_set(LAYER_ECLOSED, "the blob has no source");
    if (b->have_info)
        return LAYER_ITEROVER;
    rc = job_read(out_n, b->job, buf, cap, LAYER_EXPORT_NONBLOCK);
    if (rc == LAYER_ITEROVER)
        return job_stream_end(b);
    if (rc < 0 && rc != LAYER_EAGAIN && layer_export_error(b->job->x) != NULL)
        layer_error_set(rc, "%s", layer_export_error(b->job->x));
    return rc;
}

void api_blob__set_notify(api_blob *b, void (*fn)(void *arg), void *arg)
{
    if (b->reader != NULL)
        layer_blobcache_reader_set_notify(b->reader, fn, arg);
    else if (b->job != NULL)
        job_set_notify(b->job, fn, arg);
}

void api_blob__free(api_blob *b)
{
    job *j;

    if (b == NULL)
        return;
    layer_blobcache_reader_free(b->reader);
    if ((j = b->job) != NULL) {
        job_set_notify(j, NULL, NULL);
        if (!j->ended && j->w != NULL) {
            /* The client went away mid-fill: finish it for the waiters,
             * if there are any (the thread checks before every chunk). */
            if (layer_blobcache_writer_readers(j->w) > 0)
                job_background(j);
            else
                job_drop_fill(j, "the client went away and nobody waits");
        }
        job_unref(j);
    }
    layer_free(b);
}

/* ---- describe --------------------------------------------------------- */

/* A reader of a fill that reads nothing and learns its end. */
static int park_reader(layer_blobcache_reader *r)
{
    return layer_blobcache_reader_range(r, UINT64_MAX - 1, 1);
}

int api_blob__describe(api_blob_describe **out, api_context *ctx,
                       api_blob_spec *spec, layer_span *span)
{
    layer_blobcache_lookup look, again;
    layer_blobcache_key key;
    char lk[LAYER_KEY_MAX], fp[API_BLOB_FINGERPRINT_SIZE];
    api_blob_describe *d = NULL;
    job *j = NULL;
    bool cached, slot = false;
    int level, rc;

    memset(&look, 0, sizeof(look));
    memset(&again, 0, sizeof(again));
    if ((rc = layer_compress_level(&level, spec->compression, spec->level)) < 0)
        goto out;
    if ((d = layer_trycalloc(1, sizeof(*d))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    cached = ctx->cache != NULL && !spec->info->mutable_;
    if (cached) {
        if ((rc = make_key(&key, lk, sizeof(lk), fp, ctx, spec, level)) < 0)
            goto out;
        slot = api_exports_acquire(
                   ctx, layer_export_memory(spec->compression, level)) == 0;
        if ((rc = layer_blobcache_get(&look, ctx->cache, &key,
                                      slot ? 0 : LAYER_BLOBCACHE_GET_NOFILL)) <
            0) {
            if (rc == LAYER_ENOTFOUND)
                rc = layer_error_set(LAYER_EBUSY, "every export slot is taken");
            goto out;
        }
    } else {
        look.role = LAYER_BLOBCACHE_BYPASS;
        if (ctx->cache != NULL)
            (void)layer_blobcache_get(&look, ctx->cache, NULL,
                                      LAYER_BLOBCACHE_GET_BYPASS);
        if (!(slot = api_exports_acquire(
                         ctx, layer_export_memory(spec->compression, level)) ==
                     0)) {
            rc = layer_error_set(LAYER_EBUSY, "every export slot is taken");
            goto out;
        }
    }
    set_result(span, look.role);
    switch (look.role) {
    case LAYER_BLOBCACHE_HIT:
        (void)layer_blobcache_reader_info(&d->info, look.reader);
        d->have_info = true;
        break;
    case LAYER_BLOBCACHE_WAIT:
        if ((rc = park_reader(look.reader)) < 0)
            goto out;
        d->reader = look.reader;
        look.reader = NULL;
        break;
    case LAYER_BLOBCACHE_FILL:
        slot = false;
        rc = job_start(&j, ctx, spec, level, fp, look.writer, true, span);
        look.writer = NULL;
        if (rc < 0)
            goto out;
        /* Wait on our own fill, then let a thread make it. */
        if ((rc = layer_blobcache_get(&again, ctx->cache, &key,
                                      LAYER_BLOBCACHE_GET_NOFILL)) < 0 ||
            again.role != LAYER_BLOBCACHE_WAIT ||
            (rc = park_reader(again.reader)) < 0) {
            if (rc == 0)
                rc = layer_error_set(LAYER_ERROR, "the fill was not found");
            job_drop_fill(j, "the describe could not wait on it");
            goto out;
        }
        d->reader = again.reader;
        again.reader = NULL;
        /* the job too: a fill aborted by the export's error reads as
         * cancelled, and the describe answers with that error */
        d->job = j;
        j = NULL;
        job_background(d->job);
        break;
    case LAYER_BLOBCACHE_BYPASS:
        slot = false;
        if ((rc = job_start(&j, ctx, spec, level, NULL, NULL, true, span)) < 0)
            goto out;
        d->job = j;
        j = NULL;
        job_background(d->job);
        break;
    }
    *out = d;
    d = NULL;
out:
    job_unref(j);
    if (look.writer != NULL)
        layer_blobcache_abort(look.writer, "the export could not start");
    layer_blobcache_reader_free(look.reader);
    layer_blobcache_reader_free(again.reader);
    if (slot)
        api_exports_release(ctx, layer_export_memory(spec->compression, level));
    spec_release(ctx, spec);
    api_blob_describe__free(d);
    return rc;
}

int api_blob_describe__result(layer_blobcache_info *out, api_blob_describe *d)
{
    char byte;
    size_t n;
    int rc, unkept = 0;

    if (d->have_info) {
        *out = d->info;
        return 0;
    }
    if (d->reader != NULL) {
        rc = layer_blobcache_read(&n, d->reader, &byte, 1,
                                  LAYER_BLOBCACHE_NONBLOCK);
        if (rc == LAYER_EAGAIN)
            return rc;
        /* The fill ended: committed (the range is past its end) or not.
         * Not committed: our own job's end says why (the fill is aborted
         * before the job settles: wait for that). */
        if ((rc = layer_blobcache_reader_info(&d->info, d->reader)) == 0) {
            d->have_info = true;
            *out = d->info;
            return 0;
        }
        if (d->job == NULL)
            return rc;
        layer_error_save(&d->unkept);
        unkept = rc;
    }
    pthread_mutex_lock(&d->job->lock);
    switch (d->job->state) {
    case JOB_RUNNING:
        rc = LAYER_EAGAIN;
        break;
    case JOB_ENDED:
        if (unkept < 0) {
            /* the export ended well but its blob was not kept (the layer
             * moved, or the disk failed): a digest nobody can fetch */
            layer_error_restore(&d->unkept);
            rc = unkept;
            break;
        }
        d->info = d->job->result;
        d->have_info = true;
        *out = d->info;
        rc = 0;
        break;
    default:
        layer_error_restore(&d->job->err);
        rc = d->job->err.code < 0 ? d->job->err.code : LAYER_ERROR;
        break;
    }
    pthread_mutex_unlock(&d->job->lock);
    return rc;
}

void api_blob_describe__set_notify(api_blob_describe *d, void (*fn)(void *arg),
                                   void *arg)
{
    if (d->reader != NULL)
        layer_blobcache_reader_set_notify(d->reader, fn, arg);
    if (d->job != NULL)
        job_set_notify(d->job, fn, arg);
}

void api_blob_describe__free(api_blob_describe *d)
{
    if (d == NULL)
        return;
    layer_blobcache_reader_free(d->reader);
    if (d->job != NULL) {
        job_set_notify(d->job, NULL, NULL);
        pthread_mutex_lock(&d->job->lock);
        d->job->abandoned = true;
        pthread_mutex_unlock(&d->job->lock);
        job_unref(d->job);
    }
    layer_free(d);
}

/* ---- responses -------------------------------------------------------- */

static ssize_t blob_produce(void *ctx, char *buf, size_t cap)
{
    api_blob *b = ctx;
    size_t n = 0;
    int rc = api_blob__read(&n, b, buf, cap);

    if (rc == 0 && n > 0)
        return (ssize_t)n;
    if (rc == LAYER_EAGAIN)
        return API_PRODUCE_AGAIN;
    if (rc == LAYER_ITEROVER) {
        if (b->have_info) {
            snprintf(b->values[0], sizeof(b->values[0]), "%s", b->info.digest);
            snprintf(b->values[1], sizeof(b->values[1]), "%s", b->info.diff_id);
        }
        return API_PRODUCE_END;
    }
    /* A failure, or a read that returned nothing: never spin on it. */
    return API_PRODUCE_ERROR;
}

static size_t blob_trailers(void *ctx, const api_header **out)
{
    api_blob *b = ctx;

    if (!b->have_info || b->role == LAYER_BLOBCACHE_HIT) {
        *out = NULL;
        return 0;
    }
    *out = b->trailers;
    return 2;
}

static void blob_set_wake(void *ctx, void (*wake)(void *arg), void *arg)
{
    api_blob__set_notify(ctx, wake, arg);
}

static void blob_finish(void *ctx, bool completed)
{
    (void)ctx;
    (void)completed;
}

static void blob_free(void *ctx)
{
    api_blob__free(ctx);
}

static const char *req_header(api_call *call, const char *name)
{
    if (call->req->header == NULL)
        return NULL;
    return call->req->header(call->req->conn, name);
}

int api_blob__respond(api_call *call, api_blob *b, const char *type,
                      const char *tar_header)
{
    api_response *res = call->res;
    uint64_t first = 0, last = 0;
    api_range range = API_RANGE_NONE;
    char etag[LAYER_DIGEST_STR_SIZE + 2], buf[96];
    const char *v;
    int rc;

    snprintf(b->names[0], sizeof(b->names[0]), "Docker-Content-Digest");
    snprintf(b->names[1], sizeof(b->names[1]), "X-Layer-Diff-Id");
    for (size_t i = 0; i < 2; i++) {
        b->trailers[i].name = b->names[i];
        b->trailers[i].value = b->values[i];
    }
    if ((rc = api_response_add_header(res, "Content-Type", type)) < 0 ||
        (rc = api_response_add_header(res, "Vary", "Accept")) < 0 ||
        (tar_header != NULL &&
         (rc = api_response_add_header(res, "X-Layer-Tar", tar_header)) < 0))
        goto out;
    if (b->role != LAYER_BLOBCACHE_HIT) {
        if ((rc = api_response_add_header(res, "Trailer",
                                          "Docker-Content-Digest, "
                                          "X-Layer-Diff-Id")) < 0)
            goto out;
        res->status = 200;
        res->has_length = false;
        if (res->head)
            goto out;
        goto stream;
    }
    snprintf(etag, sizeof(etag), "\"%s\"", b->info.digest);
    if ((rc = api_response_add_header(res, "ETag", etag)) < 0 ||
        (rc = api_response_add_header(res, "Accept-Ranges", "bytes")) < 0 ||
        (rc = api_response_add_header(res, "Docker-Content-Digest",
                                      b->info.digest)) < 0 ||
        (b->info.diff_id[0] != '\0' &&
         (rc = api_response_add_header(res, "X-Layer-Diff-Id",
                                       b->info.diff_id)) < 0))
        goto out;
    v = req_header(call, "If-None-Match");
    if (v != NULL && api_etag__listed(v, etag)) {
        res->status = 304;
        res->has_length = false;
        goto out;
    }
    v = req_header(call, "If-Range");
    if (v == NULL || strcmp(v, etag) == 0)
        range = api_range__parse(&first, &last, req_header(call, "Range"),
                                 b->info.size);
    if (range == API_RANGE_UNSATISFIABLE) {
        rc = LAYER_EINVALID;
        snprintf(buf, sizeof(buf), "the blob is %llu bytes long",
                 (unsigned long long)b->info.size);
        api_problem__set(call, 416, NULL, NULL, buf);
        snprintf(buf, sizeof(buf), "bytes */%llu",
                 (unsigned long long)b->info.size);
        (void)api_response_add_header(res, "Content-Range", buf);
        (void)api_response_add_header(res, "Accept-Ranges", "bytes");
        goto out;
    }
    if (range == API_RANGE_OK) {
        if ((rc = api_blob__range(b, first, last - first + 1)) < 0)
            goto out;
        snprintf(buf, sizeof(buf), "bytes %llu-%llu/%llu",
                 (unsigned long long)first, (unsigned long long)last,
                 (unsigned long long)b->info.size);
        if ((rc = api_response_add_header(res, "Content-Range", buf)) < 0)
            goto out;
        res->status = 206;
        res->content_length = last - first + 1;
    } else {
        res->status = 200;
        res->content_length = b->info.size;
    }
    res->has_length = true;
    if (res->head || res->content_length == 0)
        goto out;
stream:
    res->producer.read = blob_produce;
    res->producer.set_wake = blob_set_wake;
    res->producer.trailers = blob_trailers;
    res->producer.finish = blob_finish;
    res->producer.free = blob_free;
    res->producer.ctx = b;
    b = NULL;
out:
    if (rc < 0 && res->status == 0)
        api_problem__from_error(call, rc);
    api_blob__free(b);
    return rc;
}

/* ---- warming ---------------------------------------------------------- */

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool woken;
} waiter;

static void waiter_wake(void *arg)
{
    waiter *w = arg;

    pthread_mutex_lock(&w->lock);
    w->woken = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int api_blob_warm(layer_blobcache_info *out, layer_export_tar *out_tar,
                  api_context *ctx, const char *id, layer_export_tar want,
                  layer_compression compression, int level)
{
    api_blob_spec spec;
    api_blob_describe *d = NULL;
    layer_export_original orig;
    layer_export_tar tar;
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    int rc;

    memset(&spec, 0, sizeof(spec));
    if ((rc = layer_store_resolve(&spec.info, ctx->store, id)) < 0 ||
        (rc = layer_export_choose_tar(&tar, &orig, spec.info, want, 0)) < 0)
        goto out;
    spec.tar = tar;
    spec.compression = compression;
    spec.level = level;
    if ((rc = api_blob__describe(&d, ctx, &spec, NULL)) < 0)
        goto out;
    api_blob_describe__set_notify(d, waiter_wake, &w);
    for (;;) {
        pthread_mutex_lock(&w.lock);
        w.woken = false;
        pthread_mutex_unlock(&w.lock);
        if ((rc = api_blob_describe__result(out, d)) != LAYER_EAGAIN)
            break;
        pthread_mutex_lock(&w.lock);
        while (!w.woken)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
    }
    api_blob_describe__set_notify(d, NULL, NULL);
    if (rc == 0)
        *out_tar = tar;
out:
    api_blob_describe__free(d);
    spec_release(ctx, &spec);
    return rc;
}
