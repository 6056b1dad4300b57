/*
 * The export pipeline: reader -> tar -> compressor -> consumer, as a
 * bounded pull producer (export.h). The original tar (tar-split) takes
 * the place of reader -> tar: its source (layer_tarsplit_asm) reads the
 * segments and the files' bytes straight into the tar ring, and the rest
 * of the pipeline is the same.
 *
 * Threads and rings. Two rings of buffers sit between three
 * roles:
 *
 *   producer:  reader entries -> tar headers, file data read straight
 *              into the tar ring's buffer, padding, trailer; with
 *              zstd also the diff ID over each tar buffer
 *   stage 2:   tar ring -> output ring, plus the digest of the output:
 *                none: one thread hashes each tar buffer once (diff ID ==
 *                      digest) and moves it into the output ring by
 *                      swapping buffer pointers, so bytes are never copied
 *                      (without digests there is no stage 2: the producer
 *                      swaps its buffers into the output ring itself);
 *                zstd: one thread streams the tar through libzstd;
 *                gzip: GZIP_WORKERS threads compress whole tar buffers as
 *                      independent chunks (layer/compress.h, pigz style)
 *                      and publish them strictly in order: a chunk done
 *                      before its turn is parked, and the worker whose
 *                      chunk is next publishes it after its own, so no
 *                      worker idles waiting for a slower one; the
 *                      publisher also feeds the diff ID, so the producer
 *                      only reads and packs
 *   consumer:  layer_export_read() copies out of the output ring
 *
 * so reading and tar work run apart from compression and hashing, and
 * gzip, the slowest stage, uses every core. A ring is a fixed array of
 * buffer pointers with head/count under the export's one mutex; a buffer
 * belongs to one side at a time (the producer owns slot head+count while
 * filling it, the consumer owns slot head while draining it), so buffer
 * contents are read and written outside the lock.
 *
 * Every ring buffer is BUF_ALLOC bytes: tar data starts at TAR_OFF, after
 * room for the gzip dictionary (the last 32 KiB of the previous tar
 * buffer, copied there by the producer so that each chunk can be
 * compressed on its own); a compressed chunk, header and trailer included,
 * fits in a whole buffer. Equal sizes let stages swap buffers freely.
 *
 * Determinism: tar buffers are published only when full (the last one
 * excepted), so the compressors always see the same input chunking; zstd
 * output buffers are also published full, and gzip chunks are published
 * in chunk order. The bytes are a function of the tree and the options
 * (and the chunk size, RING_BUF_SIZE, which is therefore part of the
 * output format: changing it changes gzip digests), never of timing.
 *
 * The original tar's diff ID check: the SHA-256 of the tar is computed
 * where it always is (stage 2 for a plain tar, the producer for zstd,
 * the gzip turn holder), always in that mode, and compared with the
 * recorded diff ID right after it is finalised, before the end of the
 * output is signalled: a mismatch fails the export instead of ending it,
 * so the consumer sees an error where the end would be (the stream is
 * cut), and no digest is set.
 *
 * Cancellation: layer_export_free() sets an atomic flag and broadcasts
 * every condition; workers test the flag between buffers and at every
 * wait, so they stop within one buffer's worth of work (a read() call on
 * a slow disk is not interrupted). Errors on a worker are recorded once
 * (the message copied out of the worker's thread-local error) and wake
 * everyone; the consumer's next read returns the code.
 *
 * Notify protocol (LAYER_EXPORT_NONBLOCK): a read that finds no data arms
 * the notification under the lock, atomically with the emptiness check,
 * and returns LAYER_EAGAIN. The next event (a published buffer, the end,
 * an error) disarms it and calls the callback once, from a worker thread,
 * with no lock held (possibly before the read has returned to its
 * caller). If no callback is installed at that moment, the event is
 * remembered and layer_export_set_notify() calls the new callback at
 * once, on the caller's thread; a wakeup is never lost.
 */
#include "layer/export.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/beneath.h"
#include "layer/compress.h"
#include "layer/crc64.h"
#include "layer/digest.h"
#include "layer/error.h"
#include "layer/tar.h"
#include "layer/tarsplit.h"

/* Ring depth: 4 buffers per ring, 8 with gzip. gzip chunks finish out of
 * order (text takes longer than random data); the deeper rings let a
 * worker that finished early go on with the next chunks, and let the
 * producer run ahead, while a slow chunk is still being compressed. */
#define RING_SLOTS      4
#define RING_SLOTS_GZIP 8
#define RING_SLOTS_MAX  RING_SLOTS_GZIP
/* Tar bytes per buffer, and so the gzip chunk size. 256 KiB: per-buffer
 * costs (lock, hash call, a chunk's dictionary setup, the consumer's
 * syscall) vanish, and pigz's 128 KiB chunks show the ratio loss from
 * chunking is already small there. */
#define RING_BUF_SIZE (256u << 10)
#define TAR_OFF       LAYER_GZIP_DICT_SIZE
/* Dictionary room + tar data; also holds a compressed chunk (checked in
 * layer_export_start() against layer_gzip_chunk_bound()). */
#define BUF_ALLOC (TAR_OFF + RING_BUF_SIZE)
/* gzip compression threads. Chunks are independent, so the bytes do not
 * depend on this; 2 matches the 2-core machines we run on (the producer
 * needs far less than a core). */
#define GZIP_WORKERS     2
#define WARNING_MAX      512
#define PARENTS_ATTR_MAX 4096

typedef struct ring {
    unsigned char *buf[RING_SLOTS_MAX];
    size_t off[RING_SLOTS_MAX]; /* where the data starts */
    size_t len[RING_SLOTS_MAX];
    unsigned slots; /* buffers in use: RING_SLOTS or RING_SLOTS_GZIP */
    unsigned head;  /* oldest filled slot */
    unsigned count; /* filled slots */
    unsigned taken; /* gzip: filled slots from head claimed by workers */
    bool closed;    /* the producing side will publish nothing more */
} ring;

typedef struct layer_export layer_export;

/* A compressed chunk, parked until its turn to be published. */
typedef struct gz_done {
    unsigned char *buf;       /* the compressed bytes, from 0 */
    const unsigned char *tar; /* its tar bytes, in the tar ring */
    size_t olen;              /* compressed bytes in buf */
    size_t len;               /* tar bytes it holds */
    uint32_t crc;             /* CRC-32 of those tar bytes */
    bool last;                /* the final chunk (gets the gzip trailer) */
    bool ready;               /* parked here, not yet published */
} gz_done;

/* Spare output buffers: every buffer beyond the rings and the workers'
 * own is one that was parked, and at most RING_SLOTS_MAX can be. */
#define GZ_SPARE_MAX (2 * RING_SLOTS_MAX + GZIP_WORKERS)

typedef struct gz_worker {
    layer_export *x;
    layer_gzip_chunker *chunker;
    unsigned char *buf; /* the worker's output buffer (swapped into the
                           output ring when published) */
    pthread_t thread;
    bool started;
} gz_worker;

struct layer_export {
    pthread_mutex_t lock;
    pthread_cond_t tar_space; /* producer waits: tar ring full */
    pthread_cond_t tar_data;  /* stage 2 waits: tar ring empty */
    pthread_cond_t out_space; /* stage 2 (or the gzip turn holder) waits:
                                 output ring full */
    pthread_cond_t out_data;  /* consumer waits: output ring empty */
    ring tarq;
    ring outq;
    atomic_bool cancel;
    bool sync_init;
    pthread_t producer;
    pthread_t stage;
    bool producer_started;
    bool stage_started;
    gz_worker gz[GZIP_WORKERS];

    /* configuration */
    layer_compression compression;
    int level;
    bool digests;   /* compute the diff ID and digest (not NO_DIGESTS) */
    bool hash_diff; /* compute the diff ID: digests, or an original tar */
    layer_tar_opts tar_opts;
    layer_reader *reader; /* the canonical tar's source, or NULL */
    /* the original tar's source, or NULL, its descriptors and the diff
     * ID it must hash to */
    layer_tarsplit_asm *orig;
    int orig_ts_fd;
    int orig_layer_fd;
    char orig_diff_id[LAYER_DIGEST_STR_SIZE];
    layer_compress *comp; /* zstd */
    layer_span *span;

    /* the diff ID, when it differs from the digest: the producer's (zstd)
     * or the gzip turn holder's */
    layer_digest diff;

    /* producer-private */
    layer_digest fp; /* the fingerprint (layer_export_summary) */
    unsigned char *scratch;
    size_t scratch_cap;

    /* stage 2: the output digest; gzip workers take turns on it */
    layer_digest dig;

    /* shared, under lock */
    uint64_t gz_claim_seq;           /* next chunk to claim */
    uint64_t gz_pub_seq;             /* next chunk to publish */
    gz_done gz_done[RING_SLOTS_MAX]; /* parked chunks, by seq % slots */
    unsigned char *gz_spare[GZ_SPARE_MAX];
    unsigned gz_nspare;
    uint32_t gz_crc; /* CRC-32 of the chunks published so far */
    uint64_t gz_in;  /* tar bytes of those chunks */
    int err;
    layer_error_state err_state; /* the failing worker's, whole */
    char err_msg[LAYER_ERROR_MSG_MAX + 32];
    void (*notify_fn)(void *arg);
    void *notify_arg;
    bool notify_armed;   /* an EAGAIN is waiting for its callback */
    bool notify_pending; /* an armed event happened before a callback */
    uint64_t entries;
    uint64_t warnings;
    uint64_t tar_size;
    uint64_t size;
    char last_warning[WARNING_MAX];
    char diff_id[LAYER_DIGEST_STR_SIZE];
    char digest[LAYER_DIGEST_STR_SIZE];
    char fingerprint[LAYER_DIGEST_STR_SIZE];

    /* consumer-private */
    size_t read_off;
    bool ended; /* the consumer saw the end */
};

/* ---- shared helpers ------------------------------------------------- */

static bool stopping_locked(const layer_export *x)
{
    return atomic_load_explicit(&x->cancel, memory_order_relaxed) ||
           x->err != 0;
}

static void broadcast_all_locked(layer_export *x)
{
    pthread_cond_broadcast(&x->tar_space);
    pthread_cond_broadcast(&x->tar_data);
    pthread_cond_broadcast(&x->out_space);
    pthread_cond_broadcast(&x->out_data);
}

/* Wake-ups decided under the lock and delivered after it is released
 * (wakeups_fire()), so that a woken thread does not at once block again
 * on the mutex its waker still holds, and the consumer's callback runs
 * with no lock held. */
typedef struct wakeups {
    bool tar_space;
    bool tar_data;
    bool out_space;
    bool out_data;
    void (*fn)(void *arg); /* the consumer's notify callback, or NULL */
    void *arg;
} wakeups;

static void wakeups_fire(layer_export *x, const wakeups *w)
{
    if (w->tar_space)
        pthread_cond_signal(&x->tar_space);
    if (w->tar_data)
        pthread_cond_signal(&x->tar_data);
    if (w->out_space)
        pthread_cond_signal(&x->out_space);
    if (w->out_data)
        pthread_cond_signal(&x->out_data);
    if (w->fn != NULL)
        w->fn(w->arg);
}

/* The consumer may have data, an end or an error now: wake it and
 * disarm a pending notification. A blocked reader is woken once half the
 * output ring is full (or at the end, or on an error) rather than for
 * every buffer: it then drains several buffers per wake-up, and the
 * threads switch a few times less per MiB. A non-blocking reader's
 * callback fires at once. */
static void wake_consumer_locked(layer_export *x, wakeups *w)
{
    if (x->outq.count >= x->outq.slots / 2 || x->outq.closed || x->err != 0)
        w->out_data = true;
    if (!x->notify_armed)
        return;
    x->notify_armed = false;
    if (x->notify_fn == NULL) {
        x->notify_pending = true;
        return;
    }
    w->fn = x->notify_fn;
    w->arg = x->notify_arg;
}

/* Record a worker's failure (its thread-local message) once and wake all
 * sides. Returns code. */
static int fail(layer_export *x, int code)
{
    wakeups w = {0};

    pthread_mutex_lock(&x->lock);
    if (x->err == 0 &&
        !atomic_load_explicit(&x->cancel, memory_order_relaxed)) {
        x->err = code;
        layer_error_save(&x->err_state);
        snprintf(x->err_msg, sizeof(x->err_msg), "layer.export failed: %s",
                 x->err_state.msg);
        wake_consumer_locked(x, &w);
    }
    broadcast_all_locked(x);
    pthread_mutex_unlock(&x->lock);
    wakeups_fire(x, &w);
    return code;
}

/* Put a filled buffer at the tail of the output ring (lock held). */
static void push_out_locked(layer_export *x, unsigned slot, size_t off,
                            size_t len, wakeups *w)
{
    x->outq.off[slot] = off;
    x->outq.len[slot] = len;
    x->outq.count++;
    x->size += len;
    wake_consumer_locked(x, w);
}

/* Mark the end of the output (lock held). */
static void close_out_locked(layer_export *x, const char *digest, wakeups *w)
{
    memcpy(x->digest, digest, sizeof(x->digest));
    if (x->compression == LAYER_COMPRESSION_NONE)
        memcpy(x->diff_id, digest, sizeof(x->diff_id));
    x->outq.closed = true;
    wake_consumer_locked(x, w);
}

/* Drop the head tar buffer once stage 2 is done with it (lock held). */
static void release_tar_locked(layer_export *x, wakeups *w)
{
    x->tarq.head = (x->tarq.head + 1) % x->tarq.slots;
    x->tarq.count--;
    if (x->tarq.taken > 0)
        x->tarq.taken--;
    /* The producer waits only on a full ring; wake it once half is free,
     * so that it fills several buffers per wake-up. */
    if (x->tarq.count == x->tarq.slots / 2)
        w->tar_space = true;
}

/* Does the producer publish straight into the output ring (a plain tar
 * without digests: there is nothing for stage 2 to do)? */
static bool export_direct(const layer_export *x)
{
    return x->compression == LAYER_COMPRESSION_NONE && !x->hash_diff;
}

/* An original tar must hash to its recorded diff ID; the caller has just
 * finalised diff_id and publishes nothing if this fails. */
static int check_diff_id(const layer_export *x, const char *diff_id)
{
    if (x->orig == NULL || strcmp(diff_id, x->orig_diff_id) == 0)
        return 0;
    return layer_error_set(LAYER_ECHANGED,
                           "the rebuilt tar hashes to %s, not to the diff ID "
                           "%s the store recorded (the layer or its tar-split "
                           "data changed since it was stored)",
                           diff_id, x->orig_diff_id);
}

/* ---- producer: reader -> tar ---------------------------------------- */

typedef struct producer {
    layer_export *x;
    unsigned char *cur;  /* the tar buffer being filled, or NULL */
    unsigned char *prev; /* the last published one (gzip dictionary) */
    unsigned slot;
    size_t len;       /* tar bytes in cur, from TAR_OFF */
    bool hash;        /* the producer computes the diff ID */
    bool direct;      /* no stage 2: publish into the output ring */
    bool dict;        /* copy the gzip dictionary into each buffer */
    uint64_t entries; /* entries written so far */
} producer;

static void refresh_stats(layer_export *x)
{
    layer_reader_stats st;
    const char *w;

    if (x->reader == NULL || layer_reader_stats_get(&st, x->reader) < 0)
        return;
    if (st.warnings != x->warnings) {
        w = layer_reader_last_warning(x->reader);
        if (w != NULL)
            snprintf(x->last_warning, sizeof(x->last_warning), "%s", w);
    }
    x->warnings = st.warnings;
}

/* Wait for a free tar slot and make it current. */
static int prod_acquire(producer *p)
{
    layer_export *x = p->x;
    int rc = 0;

    pthread_mutex_lock(&x->lock);
    while (x->tarq.count == x->tarq.slots && !stopping_locked(x))
        pthread_cond_wait(&x->tar_space, &x->lock);
    if (stopping_locked(x)) {
        rc = LAYER_ECANCELED;
    } else {
        p->slot = (x->tarq.head + x->tarq.count) % x->tarq.slots;
        p->cur = x->tarq.buf[p->slot];
        p->len = 0;
    }
    pthread_mutex_unlock(&x->lock);
    /* The previous buffer is full and only read by stage 2 now. */
    if (rc == 0 && p->dict && p->prev != NULL)
        memcpy(p->cur, p->prev + TAR_OFF + RING_BUF_SIZE - LAYER_GZIP_DICT_SIZE,
               LAYER_GZIP_DICT_SIZE);
    return rc;
}

/* Hand the current buffer to stage 2; the final one also closes the tar
 * ring, in the same critical section, so a gzip worker that claims it
 * knows it is the last chunk. */
static int out_slot_locked(unsigned *out_slot, layer_export *x);

/* Plain tar without digests: stage 2 would only move buffers, so the
 * producer moves its buffer into the output ring itself (one thread hop
 * less per buffer). The tar ring stays empty: its slot gets the output
 * ring's free buffer in exchange. */
static int prod_publish_direct(producer *p, bool final)
{
    layer_export *x = p->x;
    wakeups w = {0};
    unsigned slot;
    int rc;

    pthread_mutex_lock(&x->lock);
    rc = out_slot_locked(&slot, x);
    if (rc == 0) {
        x->tarq.buf[p->slot] = x->outq.buf[slot];
        x->outq.buf[slot] = p->cur;
        x->tar_size += p->len;
        x->entries = p->entries;
        refresh_stats(x);
        push_out_locked(x, slot, TAR_OFF, p->len, &w);
        if (final) {
            static const char no_digest[LAYER_DIGEST_STR_SIZE];

            close_out_locked(x, no_digest, &w);
        }
    }
    pthread_mutex_unlock(&x->lock);
    wakeups_fire(x, &w);
    p->cur = NULL;
    return rc;
}

static int prod_publish(producer *p, bool final)
{
    layer_export *x = p->x;
    char diff_id[LAYER_DIGEST_STR_SIZE];
    int rc;

    if (p->direct)
        return prod_publish_direct(p, final);
    if (p->hash &&
        (rc = layer_digest_update(&x->diff, p->cur + TAR_OFF, p->len)) < 0)
        return rc;
    if (final && p->hash &&
        ((rc = layer_digest_final(diff_id, &x->diff)) < 0 ||
         (rc = check_diff_id(x, diff_id)) < 0))
        return rc;
    pthread_mutex_lock(&x->lock);
    x->tarq.off[p->slot] = TAR_OFF;
    x->tarq.len[p->slot] = p->len;
    x->tarq.count++;
    x->tar_size += p->len;
    x->entries = p->entries;
    refresh_stats(x);
    if (final) {
        if (p->hash)
            memcpy(x->diff_id, diff_id, sizeof(diff_id));
        x->tarq.closed = true;
    }
    pthread_mutex_unlock(&x->lock);
    /* one buffer feeds one waiter; the end concerns them all */
    if (final)
        pthread_cond_broadcast(&x->tar_data);
    else
        pthread_cond_signal(&x->tar_data);
    p->prev = p->cur;
    p->cur = NULL;
    return 0;
}

/* Make sure the current buffer has room. */
static int prod_room(producer *p)
{
    int rc;

    if (p->cur != NULL && p->len < RING_BUF_SIZE)
        return 0;
    if (p->cur != NULL && (rc = prod_publish(p, false)) < 0)
        return rc;
    return prod_acquire(p);
}

/* Append n bytes of src (zeros when src is NULL) across buffers. */
static int prod_write(producer *p, const unsigned char *src, size_t n)
{
    int rc;

    while (n > 0) {
        unsigned char *dst;
        size_t take;

        if ((rc = prod_room(p)) < 0)
            return rc;
        dst = p->cur + TAR_OFF + p->len;
        take = RING_BUF_SIZE - p->len;
        if (take > n)
            take = n;
        if (src != NULL) {
            memcpy(dst, src, take);
            src += take;
        } else {
            memset(dst, 0, take);
        }
        p->len += take;
        n -= take;
    }
    return 0;
}

static int prod_header(producer *p, const layer_entry *e)
{
    layer_export *x = p->x;
    size_t need, n;
    int rc;

    if ((rc = layer_tar_header_size(&need, e, &x->tar_opts)) < 0)
        return rc;
    if ((rc = prod_room(p)) < 0)
        return rc;
    if (need <= RING_BUF_SIZE - p->len) {
        /* the common case: straight into the ring buffer */
        if ((rc = layer_tar_header(&n, p->cur + TAR_OFF + p->len,
                                   RING_BUF_SIZE - p->len, e, &x->tar_opts)) <
            0)
            return rc;
        p->len += n;
        return 0;
    }
    if (need > x->scratch_cap) {
        unsigned char *s = layer_tryarray(x->scratch, need, 1);

        if (s == NULL)
            return LAYER_ENOMEM;
        x->scratch = s;
        x->scratch_cap = need;
    }
    if ((rc = layer_tar_header(&n, x->scratch, x->scratch_cap, e,
                               &x->tar_opts)) < 0)
        return rc;
    return prod_write(p, x->scratch, n);
}

static int prod_data(producer *p, const layer_entry *e)
{
    layer_export *x = p->x;
    uint64_t left = layer_tar_data_size(e);
    int rc;

    while (left > 0) {
        size_t want, got = 0;

        if ((rc = prod_room(p)) < 0)
            return rc;
        want = RING_BUF_SIZE - p->len;
        if (want > left)
            want = (size_t)left;
        if ((rc = layer_reader_read(&got, x->reader, p->cur + TAR_OFF + p->len,
                                    want)) < 0)
            return rc;
        if (got == 0)
            return layer_error_set(LAYER_ERROR,
                                   "%s: reader ended %llu bytes early", e->path,
                                   (unsigned long long)left);
        p->len += got;
        left -= got;
    }
    return prod_write(p, NULL, layer_tar_padding(layer_tar_data_size(e)));
}

/* Feed an entry's metadata to the fingerprint. Fixed-width fields in
 * host order (a fingerprint is compared on the host that made it), then
 * the variable-length path and link target. */
static int fingerprint_entry(layer_digest *d, const layer_entry *e)
{
    uint64_t f[20];
    size_t n = 0;
    int rc;

    f[n++] = e->path_len;
    f[n++] = e->link_target != NULL ? e->link_target_len : 0;
    f[n++] = (uint64_t)e->change;
    f[n++] = (uint64_t)e->type;
    f[n++] = e->mode;
    f[n++] = ((uint64_t)e->uid << 32) | e->gid;
    f[n++] = e->size;
    f[n++] = (uint64_t)e->mtime.sec;
    f[n++] = e->mtime.nsec;
    f[n++] = (uint64_t)e->ctime.sec;
    f[n++] = e->ctime.nsec;
    f[n++] = e->file_id.dev;
    f[n++] = e->file_id.ino;
    f[n++] = e->nlink;
    f[n++] = ((uint64_t)e->rdev_major << 32) | e->rdev_minor;
    f[n++] = e->opaque;
    if ((rc = layer_digest_update(d, f, n * sizeof(f[0]))) < 0 ||
        (rc = layer_digest_update(d, e->path, e->path_len)) < 0)
        return rc;
    if (e->link_target != NULL &&
        (rc = layer_digest_update(d, e->link_target, e->link_target_len)) < 0)
        return rc;
    return 0;
}

static int produce(producer *p)
{
    layer_export *x = p->x;
    char fp[LAYER_DIGEST_STR_SIZE];
    const layer_entry *e;
    int rc;

    for (;;) {
        if (atomic_load_explicit(&x->cancel, memory_order_relaxed))
            return LAYER_ECANCELED;
        rc = layer_reader_next(&e, x->reader);
        if (rc == LAYER_ITEROVER)
            break;
        if (rc < 0)
            return rc;
        if ((rc = fingerprint_entry(&x->fp, e)) < 0)
            return rc;
        if ((rc = prod_header(p, e)) < 0)
            return rc;
        if ((rc = prod_data(p, e)) < 0)
            return rc;
        p->entries++;
    }
    /* The trailer leaves the current buffer non-empty: publish it last. */
    if ((rc = prod_write(p, NULL, LAYER_TAR_TRAILER_SIZE)) < 0)
        return rc;
    /* Take the reader's final counters, then release its files and end
     * its span before the last publish, so that its span closes inside
     * the export's (which may end as soon as the output does). The handle
     * stays until free. */
    if ((rc = layer_digest_final(fp, &x->fp)) < 0)
        return rc;
    pthread_mutex_lock(&x->lock);
    refresh_stats(x);
    memcpy(x->fingerprint, fp, sizeof(fp));
    pthread_mutex_unlock(&x->lock);
    layer_reader_close(x->reader);
    return prod_publish(p, true);
}

/* The original tar: the source fills the tar buffers directly. It checks
 * each file; the diff ID is checked where the tar's SHA-256 ends. */
static int produce_original(producer *p)
{
    layer_export *x = p->x;
    layer_tarsplit_asm_stats st;
    int rc;

    for (;;) {
        size_t n = 0;

        if (atomic_load_explicit(&x->cancel, memory_order_relaxed))
            return LAYER_ECANCELED;
        if ((rc = prod_room(p)) < 0)
            return rc;
        rc = layer_tarsplit_asm_read(&n, x->orig, p->cur + TAR_OFF + p->len,
                                     RING_BUF_SIZE - p->len);
        if (rc == LAYER_ITEROVER)
            break;
        if (rc < 0)
            return rc;
        p->len += n;
        layer_tarsplit_asm_stats_get(&st, x->orig);
        p->entries = st.entries;
    }
    /* prod_room() above left a current buffer, possibly empty: the last */
    pthread_mutex_lock(&x->lock);
    memcpy(x->fingerprint, x->orig_diff_id, sizeof(x->fingerprint));
    pthread_mutex_unlock(&x->lock);
    return prod_publish(p, true);
}

static void *producer_main(void *arg)
{
    producer p = {.x = arg};
    int rc;

    /* none: stage 2's digest is the diff ID; gzip: the workers hash */
    p.hash = p.x->compression == LAYER_COMPRESSION_ZSTD && p.x->hash_diff;
    p.dict = p.x->compression == LAYER_COMPRESSION_GZIP;
    p.direct = export_direct(p.x);
    rc = p.x->orig != NULL ? produce_original(&p) : produce(&p);
    if (rc < 0 && rc != LAYER_ECANCELED)
        fail(p.x, rc);
    return NULL;
}

/* ---- stage 2, none and zstd: one thread ----------------------------- */

typedef struct stage {
    layer_export *x;
    unsigned char *cur; /* the output buffer being filled, or NULL */
    unsigned slot;
    size_t len;
} stage;

/* Wait for a filled tar buffer; *out_buf is NULL at the end. */
static int take_tar(unsigned char **out_buf, size_t *out_len, layer_export *x)
{
    int rc = 0;

    pthread_mutex_lock(&x->lock);
    while (x->tarq.count == 0 && !x->tarq.closed && !stopping_locked(x))
        pthread_cond_wait(&x->tar_data, &x->lock);
    if (stopping_locked(x)) {
        rc = LAYER_ECANCELED;
    } else if (x->tarq.count == 0) {
        *out_buf = NULL;
        *out_len = 0;
    } else {
        *out_buf = x->tarq.buf[x->tarq.head];
        *out_len = x->tarq.len[x->tarq.head];
    }
    pthread_mutex_unlock(&x->lock);
    return rc;
}

/* Wait for a free output slot (lock held). */
static int out_slot_locked(unsigned *out_slot, layer_export *x)
{
    while (x->outq.count == x->outq.slots && !stopping_locked(x))
        pthread_cond_wait(&x->out_space, &x->lock);
    if (stopping_locked(x))
        return LAYER_ECANCELED;
    *out_slot = (x->outq.head + x->outq.count) % x->outq.slots;
    return 0;
}

static int stage_acquire(stage *s)
{
    layer_export *x = s->x;
    int rc;

    pthread_mutex_lock(&x->lock);
    rc = out_slot_locked(&s->slot, x);
    if (rc == 0) {
        s->cur = x->outq.buf[s->slot];
        s->len = 0;
    }
    pthread_mutex_unlock(&x->lock);
    return rc;
}

static int stage_publish(stage *s)
{
    layer_export *x = s->x;
    wakeups w = {0};
    int rc;

    if (x->digests && (rc = layer_digest_update(&x->dig, s->cur, s->len)) < 0)
        return rc;
    pthread_mutex_lock(&x->lock);
    push_out_locked(x, s->slot, 0, s->len, &w);
    pthread_mutex_unlock(&x->lock);
    s->cur = NULL;
    wakeups_fire(x, &w);
    return 0;
}

/* No compression: hash the tar buffer and move it to the output ring. */
static int pass_through(layer_export *x, unsigned char *buf, size_t len)
{
    wakeups w = {0};
    unsigned slot;
    int rc;

    /* the output digest is the diff ID */
    if (x->hash_diff &&
        (rc = layer_digest_update(&x->dig, buf + TAR_OFF, len)) < 0)
        return rc;
    pthread_mutex_lock(&x->lock);
    rc = out_slot_locked(&slot, x);
    if (rc == 0) {
        /* swap: the tar slot gets the free output buffer */
        x->tarq.buf[x->tarq.head] = x->outq.buf[slot];
        x->outq.buf[slot] = buf;
        push_out_locked(x, slot, TAR_OFF, len, &w);
        release_tar_locked(x, &w);
    }
    pthread_mutex_unlock(&x->lock);
    wakeups_fire(x, &w);
    return rc;
}

static int compress_buffer(stage *s, const unsigned char *in, size_t len)
{
    size_t off = 0;
    int rc;

    while (off < len) {
        size_t consumed = 0, produced = 0;

        if (s->cur == NULL && (rc = stage_acquire(s)) < 0)
            return rc;
        if ((rc = layer_compress_update(&consumed, &produced, s->x->comp,
                                        in + off, len - off, s->cur + s->len,
                                        RING_BUF_SIZE - s->len)) < 0)
            return rc;
        if (consumed == 0 && produced == 0)
            return layer_error_set(LAYER_ERROR, "compressor made no "
                                                "progress");
        off += consumed;
        s->len += produced;
        if (s->len == RING_BUF_SIZE && (rc = stage_publish(s)) < 0)
            return rc;
    }
    return 0;
}

static int compress_finish(stage *s)
{
    bool done = false;
    int rc;

    while (!done) {
        size_t produced = 0;

        if (s->cur == NULL && (rc = stage_acquire(s)) < 0)
            return rc;
        if ((rc = layer_compress_finish(&produced, &done, s->x->comp,
                                        s->cur + s->len,
                                        RING_BUF_SIZE - s->len)) < 0)
            return rc;
        s->len += produced;
        if (!done && produced == 0 && s->len < RING_BUF_SIZE)
            return layer_error_set(LAYER_ERROR, "compressor made no "
                                                "progress");
        if (s->len == RING_BUF_SIZE && (rc = stage_publish(s)) < 0)
            return rc;
    }
    if (s->cur != NULL && s->len > 0)
        return stage_publish(s);
    return 0;
}

static int run_stage(stage *s)
{
    layer_export *x = s->x;
    char digest[LAYER_DIGEST_STR_SIZE];
    wakeups w = {0};
    int rc;

    for (;;) {
        unsigned char *buf;
        size_t len;

        if ((rc = take_tar(&buf, &len, x)) < 0)
            return rc;
        if (buf == NULL)
            break;
        if (x->compression == LAYER_COMPRESSION_NONE) {
            if ((rc = pass_through(x, buf, len)) < 0)
                return rc;
            continue;
        }
        if ((rc = compress_buffer(s, buf + TAR_OFF, len)) < 0)
            return rc;
        pthread_mutex_lock(&x->lock);
        release_tar_locked(x, &w);
        pthread_mutex_unlock(&x->lock);
        wakeups_fire(x, &w);
        w.tar_space = false;
    }
    if (x->compression != LAYER_COMPRESSION_NONE &&
        (rc = compress_finish(s)) < 0)
        return rc;
    digest[0] = '\0';
    if (x->compression == LAYER_COMPRESSION_NONE && x->hash_diff) {
        /* the output digest is the diff ID */
        if ((rc = layer_digest_final(digest, &x->dig)) < 0 ||
            (rc = check_diff_id(x, digest)) < 0)
            return rc;
    } else if (x->digests && (rc = layer_digest_final(digest, &x->dig)) < 0) {
        return rc;
    }
    pthread_mutex_lock(&x->lock);
    close_out_locked(x, digest, &w);
    pthread_mutex_unlock(&x->lock);
    wakeups_fire(x, &w);
    return 0;
}

static void *stage_main(void *arg)
{
    stage s = {.x = arg};
    int rc = run_stage(&s);

    if (rc < 0 && rc != LAYER_ECANCELED)
        fail(s.x, rc);
    return NULL;
}

/* ---- stage 2, gzip: parallel chunks --------------------------------- */

/* One chunk: claim the oldest unclaimed tar buffer, compress it into the
 * worker's buffer, wait for its turn, hash and publish it. *out_done is
 * set when no chunk is left. */
/* A spare output buffer for a worker whose own buffer was parked: from
 * the pool, else a new one (parking is bounded by the tar ring, so the
 * pool stays small). */
static int gz_spare_take(unsigned char **out, layer_export *x)
{
    unsigned char *b = NULL;

    pthread_mutex_lock(&x->lock);
    if (x->gz_nspare > 0)
        b = x->gz_spare[--x->gz_nspare];
    pthread_mutex_unlock(&x->lock);
    if (b == NULL && (b = layer_trymalloc(BUF_ALLOC)) == NULL)
        return LAYER_ENOMEM;
    *out = b;
    return 0;
}

/* Keep a buffer the turn holder got back from the output ring: as the
 * worker's own when it has none, else in the pool (lock held). */
static void gz_keep_locked(layer_export *x, gz_worker *w, unsigned char *b)
{
    if (w->buf == NULL)
        w->buf = b;
    else if (x->gz_nspare < GZ_SPARE_MAX)
        x->gz_spare[x->gz_nspare++] = b;
    else
        layer_free(b); /* cannot happen: the pool outsizes the rings */
}

/* Publish chunk gz_pub_seq, which is in *c, and then every parked chunk
 * that follows it in order. Only the worker holding the turn (the one
 * whose chunk is gz_pub_seq) gets here, so the output digest, the CRC and
 * the output ring's tail are its alone; the lock is held on entry and on
 * return. */
static int gz_publish_locked(layer_export *x, gz_worker *w, gz_done c)
{
    char digest[LAYER_DIGEST_STR_SIZE];
    char diff_id[LAYER_DIGEST_STR_SIZE];
    int rc = 0;

    for (;;) {
        wakeups wk = {0};
        gz_done *next;
        unsigned oslot;

        while (x->outq.count == x->outq.slots && !stopping_locked(x))
            pthread_cond_wait(&x->out_space, &x->lock);
        if (stopping_locked(x)) {
            gz_keep_locked(x, w, c.buf);
            return LAYER_ECANCELED;
        }
        x->gz_crc = x->gz_pub_seq == 0
                        ? c.crc
                        : layer_gzip_crc_combine(x->gz_crc, c.crc, c.len);
        x->gz_in += c.len;
        pthread_mutex_unlock(&x->lock);

        if (c.last) {
            layer_gzip_trailer(c.buf + c.olen, x->gz_crc, x->gz_in);
            c.olen += LAYER_GZIP_TRAILER_SIZE;
        }
        /* Both digests in chunk order: the diff ID over the tar bytes
         * (still in the ring: the slot is released below), the digest
         * over the gzip bytes. Here rather than on the producer, which is
         * then free to read ahead while the workers hash. */
        diff_id[0] = digest[0] = '\0';
        if (x->hash_diff) {
            rc = layer_digest_update(&x->diff, c.tar, c.len);
            if (rc == 0 && c.last)
                rc = layer_digest_final(diff_id, &x->diff);
            if (rc == 0 && c.last)
                rc = check_diff_id(x, diff_id);
        }
        if (rc == 0 && x->digests) {
            rc = layer_digest_update(&x->dig, c.buf, c.olen);
            if (rc == 0 && c.last)
                rc = layer_digest_final(digest, &x->dig);
        }

        pthread_mutex_lock(&x->lock);
        if (rc < 0) {
            gz_keep_locked(x, w, c.buf);
            return rc;
        }
        /* space was checked above and only the turn holder fills the ring */
        oslot = (x->outq.head + x->outq.count) % x->outq.slots;
        gz_keep_locked(x, w, x->outq.buf[oslot]);
        x->outq.buf[oslot] = c.buf;
        push_out_locked(x, oslot, 0, c.olen, &wk);
        release_tar_locked(x, &wk);
        x->gz_pub_seq++;
        if (c.last) {
            memcpy(x->diff_id, diff_id, sizeof(diff_id));
            close_out_locked(x, digest, &wk);
        }
        pthread_mutex_unlock(&x->lock);
        wakeups_fire(x, &wk);
        pthread_mutex_lock(&x->lock);
        if (c.last)
            return 0;
        next = &x->gz_done[x->gz_pub_seq % x->tarq.slots];
        if (!next->ready)
            return 0; /* the turn passes to whoever finishes that chunk */
        c = *next;
        next->ready = false;
    }
}

/* One chunk: claim the next tar buffer, compress it, then publish it if
 * it is its turn, or else park it for the turn holder and move on. */
static int gz_chunk(bool *out_done, gz_worker *w)
{
    layer_export *x = w->x;
    const unsigned char *tar;
    unsigned slot;
    uint64_t seq;
    gz_done c = {.ready = true};
    int rc;

    if (w->buf == NULL && (rc = gz_spare_take(&w->buf, x)) < 0)
        return rc;

    pthread_mutex_lock(&x->lock);
    while (x->tarq.taken == x->tarq.count && !x->tarq.closed &&
           !stopping_locked(x))
        pthread_cond_wait(&x->tar_data, &x->lock);
    if (stopping_locked(x)) {
        pthread_mutex_unlock(&x->lock);
        return LAYER_ECANCELED;
    }
    if (x->tarq.taken == x->tarq.count) {
        pthread_mutex_unlock(&x->lock);
        *out_done = true;
        return 0;
    }
    slot = (x->tarq.head + x->tarq.taken) % x->tarq.slots;
    x->tarq.taken++;
    seq = x->gz_claim_seq++;
    c.last = x->tarq.closed && x->tarq.taken == x->tarq.count;
    tar = x->tarq.buf[slot];
    c.len = x->tarq.len[slot];
    c.tar = tar + TAR_OFF;
    pthread_mutex_unlock(&x->lock);

    /* tar[0, TAR_OFF) holds the previous chunk's last bytes (producer) */
    if ((rc = layer_gzip_chunk(&c.olen, &c.crc, w->chunker,
                               seq > 0 ? tar : NULL, seq > 0 ? TAR_OFF : 0,
                               tar + TAR_OFF, c.len, seq == 0, c.last, w->buf,
                               BUF_ALLOC - LAYER_GZIP_TRAILER_SIZE)) < 0)
        return rc;
    c.buf = w->buf;

    pthread_mutex_lock(&x->lock);
    if (stopping_locked(x)) {
        rc = LAYER_ECANCELED;
    } else if (x->gz_pub_seq != seq) {
        /* Not our turn: at most tarq.slots chunks are claimed and not yet
         * published, so seq's place in the table is free. */
        x->gz_done[seq % x->tarq.slots] = c;
        w->buf = NULL;
    } else {
        w->buf = NULL;
        rc = gz_publish_locked(x, w, c);
    }
    pthread_mutex_unlock(&x->lock);
    *out_done = rc == 0 && c.last;
    return rc;
}

static void *gz_main(void *arg)
{
    gz_worker *w = arg;
    bool done = false;
    int rc = 0;

    while (!done && (rc = gz_chunk(&done, w)) == 0)
        ;
    if (rc < 0 && rc != LAYER_ECANCELED)
        fail(w->x, rc);
    return NULL;
}

/* ---- tracing -------------------------------------------------------- */

static void span_begin(layer_export *x, const layer_dir *layer,
                       const layer_dir *parents, size_t nparents,
                       const layer_export_original *original,
                       layer_span *parent)
{
    char *joined = NULL;
    size_t len = 0;

    if (parent == NULL ||
        layer_span_start(&x->span, NULL, parent, "layer.export") < 0) {
        x->span = NULL;
        return;
    }
    layer_span_set_str(x->span, "layer.path", layer->path);
    joined = layer_trymalloc(PARENTS_ATTR_MAX);
    if (joined != NULL) {
        joined[0] = '\0';
        for (size_t i = 0; i < nparents && len < PARENTS_ATTR_MAX - 1; i++) {
            int n = snprintf(joined + len, PARENTS_ATTR_MAX - len, "%s%s",
                             i ? ", " : "", parents[i].path);
            if (n < 0)
                break;
            len += (size_t)n;
        }
        layer_span_set_str(x->span, "layer.parents", joined);
        layer_free(joined);
    }
    layer_span_set_str(x->span, "export.format",
                       layer_compression_name(x->compression));
    layer_span_set_int(x->span, "export.level", x->level);
    layer_span_set_str(x->span, "export.tar",
                       layer_export_tar_name(original != NULL
                                                 ? LAYER_EXPORT_TAR_ORIGINAL
                                                 : LAYER_EXPORT_TAR_CANONICAL));
    if (original != NULL) {
        layer_span_set_str(x->span, "layer.tarsplit", original->tarsplit);
        layer_span_set_str(x->span, "layer.diff_id", original->diff_id);
        layer_span_set_str(x->span, "export.crc64", layer_crc64_method());
    }
}

/* End the span with the counters. Called by the consumer with the lock
 * held, or from free() once the workers are gone. outcome: NULL, or e.g.
 * "aborted". */
static void span_finish(layer_export *x, const char *outcome)
{
    char msg[sizeof(x->err_msg) + 48];

    if (x->span == NULL)
        return;
    layer_span_set_int(x->span, "export.entries", (int64_t)x->entries);
    layer_span_set_int(x->span, "export.tar_bytes", (int64_t)x->tar_size);
    layer_span_set_int(x->span, "export.output_bytes", (int64_t)x->size);
    layer_span_set_int(x->span, "export.warnings", (int64_t)x->warnings);
    if (x->diff_id[0] != '\0')
        layer_span_set_str(x->span, "export.diff_id", x->diff_id);
    if (x->digest[0] != '\0')
        layer_span_set_str(x->span, "export.digest", x->digest);
    if (outcome != NULL)
        layer_span_set_str(x->span, "export.outcome", outcome);
    if (x->err != 0) {
        if (x->err_state.err != 0)
            snprintf(msg, sizeof(msg), "%s (%s)", x->err_msg,
                     layer_errno_name(x->err_state.err));
        else
            snprintf(msg, sizeof(msg), "%s", x->err_msg);
        layer_span_set_error_message(x->span, msg);
    }
    layer_span_end(x->span);
    x->span = NULL;
}

/* ---- public API ----------------------------------------------------- */

static int export_sync_init(layer_export *x)
{
    if (pthread_mutex_init(&x->lock, NULL) != 0)
        return layer_error_set(LAYER_ERROR, "pthread_mutex_init failed");
    pthread_cond_init(&x->tar_space, NULL);
    pthread_cond_init(&x->tar_data, NULL);
    pthread_cond_init(&x->out_space, NULL);
    pthread_cond_init(&x->out_data, NULL);
    x->sync_init = true;
    return 0;
}

static int start_thread(pthread_t *t, bool *started, void *(*fn)(void *),
                        void *arg)
{
    int err = pthread_create(t, NULL, fn, arg);

    if (err != 0)
        return layer_error_set_errno(LAYER_ERROR, err,
                                     "cannot start an export thread");
    *started = true;
    return 0;
}

/* Buffers, compressors and digests. */
static int export_alloc_work(layer_export *x)
{
    int rc;

    if (layer_gzip_chunk_bound(RING_BUF_SIZE) > BUF_ALLOC)
        return layer_error_set(LAYER_ERROR,
                               "export buffers too small for a gzip chunk");
    x->tarq.slots = x->outq.slots =
        x->compression == LAYER_COMPRESSION_GZIP ? RING_SLOTS_GZIP : RING_SLOTS;
    for (unsigned i = 0; i < x->tarq.slots; i++) {
        x->tarq.buf[i] = layer_trymalloc(BUF_ALLOC);
        x->outq.buf[i] = layer_trymalloc(BUF_ALLOC);
        if (x->tarq.buf[i] == NULL || x->outq.buf[i] == NULL)
            return LAYER_ENOMEM;
    }
    if (x->compression == LAYER_COMPRESSION_GZIP) {
        for (int i = 0; i < GZIP_WORKERS; i++) {
            x->gz[i].x = x;
            x->gz[i].buf = layer_trymalloc(BUF_ALLOC);
            if (x->gz[i].buf == NULL)
                return LAYER_ENOMEM;
            if ((rc = layer_gzip_chunker_new(&x->gz[i].chunker, x->level)) < 0)
                return rc;
        }
    } else if (x->compression == LAYER_COMPRESSION_ZSTD &&
               (rc = layer_compress_new(&x->comp, x->compression, x->level)) <
                   0) {
        return rc;
    }
    if ((rc = layer_digest_init(&x->dig)) < 0 ||
        (rc = layer_digest_init(&x->fp)) < 0)
        return rc;
    if (x->compression != LAYER_COMPRESSION_NONE &&
        (rc = layer_digest_init(&x->diff)) < 0)
        return rc;
    return 0;
}

static bool is_sha256_digest(const char *s)
{
    if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 71)
        return false;
    for (size_t i = 7; i < 71; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* A directory by its path, for reading (O_NOATIME where allowed). */
/* Open a directory: a description of our own of an open one (dirfd >= 0,
 * as a store hands them over: nothing is looked up by path again), or
 * else by path. */
static int open_dir(int *out, int dirfd, const char *path, int flags,
                    const char *what)
{
    int at = dirfd >= 0 ? dirfd : AT_FDCWD;
    const char *name = dirfd >= 0 ? "." : path;
    int fd = openat(at, name, flags | O_DIRECTORY | O_CLOEXEC | O_NOATIME);

    /* O_NOATIME needs the owner or CAP_FOWNER */
    if (fd < 0 && errno == EPERM)
        fd = openat(at, name, flags | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return layer_error_set_errno(errno == ENOENT ? LAYER_ENOTFOUND
                                                     : LAYER_ERROR,
                                     errno, "%s %s", what, path);
    *out = fd;
    return 0;
}

/* Open what an original tar is rebuilt from: the layer's directory, the
 * tar-split data beneath its root, and the source over both. */
static int open_original(layer_export *x, const layer_dir *layer,
                         const layer_export_original *o)
{
    layer_tarsplit_opts tso;
    struct stat st;
    int root = -1, rc;

    if (o->root == NULL || o->tarsplit == NULL || o->diff_id == NULL ||
        !is_sha256_digest(o->diff_id))
        return layer_error_set(LAYER_EINVALID,
                               "an original tar needs tar-split data and a "
                               "sha256 diff ID");
    snprintf(x->orig_diff_id, sizeof(x->orig_diff_id), "%s", o->diff_id);
    if ((rc = open_dir(&x->orig_layer_fd, layer->has_fd ? layer->fd : -1,
                       layer->path, O_RDONLY, "layer directory")) < 0 ||
        (rc = open_dir(&root, o->has_root_fd ? o->root_fd : -1, o->root, O_PATH,
                       "directory")) < 0)
        goto out;
    rc = layer_beneath_open(&x->orig_ts_fd, root, o->tarsplit,
                            O_RDONLY | O_NONBLOCK, 0);
    if (rc == LAYER_EINVALID)
        rc = layer_error_set(LAYER_EBROKEN,
                             "tar-split data %s: a symlink, or a path "
                             "leaving the store",
                             o->tarsplit);
    else if (rc == LAYER_ENOTFOUND)
        rc = layer_error_set(LAYER_ENOTFOUND, "tar-split data %s is gone",
                             o->tarsplit);
    if (rc < 0)
        goto out;
    if (fstat(x->orig_ts_fd, &st) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "tar-split data %s",
                                   o->tarsplit);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = layer_error_set(LAYER_EBROKEN,
                             "tar-split data %s is not a regular file",
                             o->tarsplit);
        goto out;
    }
    memset(&tso, 0, sizeof(tso));
    tso.label = o->tarsplit;
    rc = layer_tarsplit_asm_open(&x->orig, x->orig_ts_fd, x->orig_layer_fd,
                                 &tso);
out:
    if (root >= 0)
        close(root);
    return rc;
}

int layer_export_start(layer_export **out, const layer_dir *layer,
                       const layer_dir *parents, size_t nparents,
                       const layer_export_opts *opts)
{
    static const layer_export_opts no_opts;
    layer_reader_opts ropts;
    layer_export *x = NULL;
    int rc;

    if (opts == NULL)
        opts = &no_opts;
    if (layer == NULL || layer->path == NULL)
        return layer_error_set(LAYER_EINVALID, "export without a layer");
    if (nparents > LAYER_CHAIN_MAX)
        return layer_error_set(LAYER_EINVALID,
                               "%zu parents: a layer has at most %d "
                               "(LAYER_CHAIN_MAX)",
                               nparents, LAYER_CHAIN_MAX);
    if (opts->flags &
        ~(unsigned)(LAYER_EXPORT_ALL_XATTRS | LAYER_EXPORT_CLAMP_MTIME |
                    LAYER_EXPORT_NO_DIGESTS))
        return layer_error_set(LAYER_EINVALID, "unknown export flags 0x%x",
                               opts->flags);
    if (opts->original != NULL &&
        (opts->flags & (LAYER_EXPORT_ALL_XATTRS | LAYER_EXPORT_CLAMP_MTIME)))
        return layer_error_set(LAYER_EINVALID,
                               "exporting every xattr and clamping mtimes "
                               "apply to the canonical tar; the original "
                               "tar is given as it was");
    x = layer_trycalloc(1, sizeof(*x));
    if (x == NULL)
        return LAYER_ENOMEM;
    x->orig_ts_fd = x->orig_layer_fd = -1;
    atomic_init(&x->cancel, false);
    x->compression = opts->compression;
    x->level = opts->level;
    x->digests = !(opts->flags & LAYER_EXPORT_NO_DIGESTS);
    /* an original tar's diff ID is always checked */
    x->hash_diff = x->digests || opts->original != NULL;
    span_begin(x, layer, parents, opts->original ? 0 : nparents, opts->original,
               opts->span);
    if ((rc = layer_compress_level(&x->level, opts->compression, opts->level)) <
        0)
        goto out;
    layer_span_set_int(x->span, "export.level", x->level);
    if ((rc = export_sync_init(x)) < 0)
        goto out;
    if (opts->flags & LAYER_EXPORT_ALL_XATTRS)
        x->tar_opts.flags |= LAYER_TAR_ALL_XATTRS;
    if (opts->flags & LAYER_EXPORT_CLAMP_MTIME) {
        x->tar_opts.flags |= LAYER_TAR_CLAMP_MTIME;
        x->tar_opts.epoch = opts->epoch;
    }
    if ((rc = export_alloc_work(x)) < 0)
        goto out;
    if (opts->original != NULL) {
        if ((rc = open_original(x, layer, opts->original)) < 0)
            goto out;
    } else {
        memset(&ropts, 0, sizeof(ropts));
        ropts.flags = opts->reader_flags;
        ropts.span = x->span;
        ropts.on_warning = opts->on_warning;
        ropts.warning_arg = opts->warning_arg;
        if ((rc = layer_reader_open(&x->reader, layer, parents, nparents,
                                    &ropts)) < 0)
            goto out;
    }
    if ((rc = start_thread(&x->producer, &x->producer_started, producer_main,
                           x)) < 0)
        goto out;
    if (x->compression == LAYER_COMPRESSION_GZIP) {
        for (int i = 0; i < GZIP_WORKERS; i++) {
            if ((rc = start_thread(&x->gz[i].thread, &x->gz[i].started, gz_main,
                                   &x->gz[i])) < 0)
                goto out;
        }
    } else if (!export_direct(x) &&
               (rc = start_thread(&x->stage, &x->stage_started, stage_main,
                                  x)) < 0) {
        goto out;
    }
    *out = x;
    x = NULL;
out:
    if (x != NULL && x->span != NULL && rc < 0) {
        layer_span_set_error(x->span, "layer.export", rc);
        layer_span_end(x->span);
        x->span = NULL;
    }
    layer_export_free(x);
    return rc;
}

/* What an export holds besides its buffers and compressors: the
 * reader's state (a directory listing per open level) or the original
 * tar's source (its tar-split decoder), the tar scratch,
 * the digest contexts, the touched part of three thread stacks, and the
 * allocator's slack. */
#define EXPORT_OVERHEAD (2u << 20)

size_t layer_export_memory(layer_compression compression, int level)
{
    size_t bufs, comp = 0;

    if (layer_compress_level(&level, compression, level) < 0)
        return 0;
    switch (compression) {
    case LAYER_COMPRESSION_GZIP:
        /* both rings, each worker's output buffer, and at most a ring's
         * worth of parked chunks (GZ_SPARE_MAX counts them) */
        bufs = 2 * RING_SLOTS_GZIP + GZIP_WORKERS + RING_SLOTS_MAX;
        comp = GZIP_WORKERS * layer_compress_memory(compression, level);
        break;
    case LAYER_COMPRESSION_ZSTD:
        bufs = 2 * RING_SLOTS;
        comp = layer_compress_memory(compression, level);
        break;
    case LAYER_COMPRESSION_NONE:
    default:
        bufs = 2 * RING_SLOTS;
        break;
    }
    return bufs * (size_t)BUF_ALLOC + comp + EXPORT_OVERHEAD;
}

int layer_export_read(size_t *out_n, layer_export *x, void *buf, size_t cap,
                      unsigned flags)
{
    const unsigned char *src;
    unsigned head;
    size_t n;
    int rc;

    if (cap == 0)
        return layer_error_set(LAYER_EINVALID, "export read of 0 bytes");
    pthread_mutex_lock(&x->lock);
    for (;;) {
        if (x->err != 0) {
            /* The span ends in free(), once the workers and the reader
             * (whose span is a child) are gone. */
            /* The worker's error, as it recorded it, on this thread. */
            rc = x->err;
            layer_error_restore(&x->err_state);
            layer_error_recode(rc);
            pthread_mutex_unlock(&x->lock);
            return rc;
        }
        if (x->outq.count > 0)
            break;
        if (x->outq.closed) {
            x->ended = true;
            span_finish(x, NULL);
            pthread_mutex_unlock(&x->lock);
            return LAYER_ITEROVER;
        }
        if (flags & LAYER_EXPORT_NONBLOCK) {
            x->notify_armed = true;
            pthread_mutex_unlock(&x->lock);
            return LAYER_EAGAIN;
        }
        pthread_cond_wait(&x->out_data, &x->lock);
    }
    head = x->outq.head;
    src = x->outq.buf[head] + x->outq.off[head] + x->read_off;
    n = x->outq.len[head] - x->read_off;
    pthread_mutex_unlock(&x->lock);

    /* The head buffer is ours until released: copy without the lock. */
    if (n > cap)
        n = cap;
    memcpy(buf, src, n);
    x->read_off += n;
    *out_n = n;
    if (x->read_off == x->outq.len[head]) {
        bool wake;

        pthread_mutex_lock(&x->lock);
        x->read_off = 0;
        x->outq.head = (head + 1) % x->outq.slots;
        x->outq.count--;
        /* One waiter at most (the stage thread or the gzip turn holder),
         * and only on a full ring: wake it once half is free. */
        wake = x->outq.count == x->outq.slots / 2;
        pthread_mutex_unlock(&x->lock);
        if (wake)
            pthread_cond_signal(&x->out_space);
    }
    return 0;
}

void layer_export_set_notify(layer_export *x, void (*fn)(void *arg), void *arg)
{
    bool fire;

    pthread_mutex_lock(&x->lock);
    x->notify_fn = fn;
    x->notify_arg = arg;
    fire = fn != NULL && x->notify_pending;
    if (fire)
        x->notify_pending = false;
    pthread_mutex_unlock(&x->lock);
    if (fire)
        fn(arg);
}

void layer_export_summary_get(layer_export_summary *out, const layer_export *cx)
{
    /* The lock is the only thing mutated; the export itself is const. */
    layer_export *x = (layer_export *)cx;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&x->lock);
    snprintf(out->media_type, sizeof(out->media_type), "%s",
             layer_compression_media_type(x->compression));
    memcpy(out->diff_id, x->diff_id, sizeof(out->diff_id));
    memcpy(out->digest, x->digest, sizeof(out->digest));
    memcpy(out->fingerprint, x->fingerprint, sizeof(out->fingerprint));
    out->size = x->size;
    out->tar_size = x->tar_size;
    out->entries = x->entries;
    out->warnings = x->warnings;
    out->tar = x->orig_diff_id[0] != '\0' ? LAYER_EXPORT_TAR_ORIGINAL
                                          : LAYER_EXPORT_TAR_CANONICAL;
    /* The producer rewrites the buffer under the lock until the output is
     * closed; after that it is never written again, so it can be lent. */
    out->last_warning =
        x->outq.closed && x->last_warning[0] ? x->last_warning : NULL;
    pthread_mutex_unlock(&x->lock);
}

const char *layer_export_error(const layer_export *cx)
{
    /* err_msg is written once, under the lock, together with err, and
     * never changes after: only err needs the lock to be read. */
    layer_export *x = (layer_export *)cx;
    bool failed;

    pthread_mutex_lock(&x->lock);
    failed = x->err != 0;
    pthread_mutex_unlock(&x->lock);
    return failed ? x->err_msg : NULL;
}

void layer_export_free(layer_export *x)
{
    if (x == NULL)
        return;
    if (x->sync_init) {
        pthread_mutex_lock(&x->lock);
        atomic_store(&x->cancel, true);
        broadcast_all_locked(x);
        pthread_mutex_unlock(&x->lock);
    }
    if (x->producer_started)
        pthread_join(x->producer, NULL);
    if (x->stage_started)
        pthread_join(x->stage, NULL);
    for (int i = 0; i < GZIP_WORKERS; i++) {
        if (x->gz[i].started)
            pthread_join(x->gz[i].thread, NULL);
        layer_gzip_chunker_free(x->gz[i].chunker);
        layer_free(x->gz[i].buf);
    }
    /* Workers are gone: no lock needed from here on. The reader's span
     * (a child) ends before ours. */
    layer_reader_free(x->reader);
    layer_tarsplit_asm_free(x->orig);
    if (x->orig_ts_fd >= 0)
        close(x->orig_ts_fd);
    if (x->orig_layer_fd >= 0)
        close(x->orig_layer_fd);
    span_finish(x, x->ended || x->err != 0 ? NULL : "aborted");
    layer_compress_free(x->comp);
    layer_digest_dispose(&x->diff);
    layer_digest_dispose(&x->dig);
    layer_digest_dispose(&x->fp);
    for (unsigned i = 0; i < RING_SLOTS_MAX; i++) {
        layer_free(x->tarq.buf[i]);
        layer_free(x->outq.buf[i]);
        if (x->gz_done[i].ready)
            layer_free(x->gz_done[i].buf);
    }
    for (unsigned i = 0; i < x->gz_nspare; i++)
        layer_free(x->gz_spare[i]);
    layer_free(x->scratch);
    if (x->sync_init) {
        pthread_cond_destroy(&x->tar_space);
        pthread_cond_destroy(&x->tar_data);
        pthread_cond_destroy(&x->out_space);
        pthread_cond_destroy(&x->out_data);
        pthread_mutex_destroy(&x->lock);
    }
    layer_free(x);
}

const char *layer_export_tar_name(layer_export_tar tar)
{
    switch (tar) {
    case LAYER_EXPORT_TAR_AUTO:
        return "auto";
    case LAYER_EXPORT_TAR_CANONICAL:
        return "canonical";
    case LAYER_EXPORT_TAR_ORIGINAL:
        return "original";
    }
    return "unknown";
}

int layer_export_tar_parse(layer_export_tar *out, const char *name)
{
    static const layer_export_tar all[] = {LAYER_EXPORT_TAR_AUTO,
                                           LAYER_EXPORT_TAR_CANONICAL,
                                           LAYER_EXPORT_TAR_ORIGINAL};

    for (size_t i = 0; name != NULL && i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, layer_export_tar_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return layer_error_set(LAYER_EINVALID,
                           "the tar is auto, canonical or original, not "
                           "'%.64s'",
                           name != NULL ? name : "");
}

/* Why a layer has no original tar, or NULL when it has one. */
static const char *no_original(const layer_info *info)
{
    if (info->mutable_)
        return "it is mutable (its directory may still change)";
    if (info->tarsplit == NULL || info->root == NULL)
        return "its store kept no tar-split data for it";
    if (info->diff_digest == NULL || !is_sha256_digest(info->diff_digest))
        return "its store recorded no sha256 diff ID for it";
    return NULL;
}

int layer_export_choose_tar(layer_export_tar *out_tar,
                            layer_export_original *out_original,
                            const layer_info *info, layer_export_tar want,
                            unsigned flags)
{
    const char *why = no_original(info);
    bool canonical_flags =
        (flags & (LAYER_EXPORT_ALL_XATTRS | LAYER_EXPORT_CLAMP_MTIME)) != 0;

    memset(out_original, 0, sizeof(*out_original));
    switch (want) {
    case LAYER_EXPORT_TAR_CANONICAL:
        *out_tar = LAYER_EXPORT_TAR_CANONICAL;
        return 0;
    case LAYER_EXPORT_TAR_AUTO:
        if (why != NULL || canonical_flags) {
            *out_tar = LAYER_EXPORT_TAR_CANONICAL;
            return 0;
        }
        break;
    case LAYER_EXPORT_TAR_ORIGINAL:
        if (why != NULL)
            return layer_error_set(LAYER_EUNSUPPORTED,
                                   "layer %s has no original tar: %s",
                                   info->id ? info->id : "(unnamed)", why);
        if (canonical_flags)
            return layer_error_set(LAYER_EINVALID,
                                   "exporting every xattr and clamping "
                                   "mtimes apply to the canonical tar; the "
                                   "original tar is given as it was");
        break;
    default:
        return layer_error_set(LAYER_EINVALID, "unknown tar kind %d",
                               (int)want);
    }
    out_original->root = info->root;
    out_original->has_root_fd = info->has_root_fd;
    out_original->root_fd = info->root_fd;
    out_original->tarsplit = info->tarsplit;
    out_original->diff_id = info->diff_digest;
    *out_tar = LAYER_EXPORT_TAR_ORIGINAL;
    return 0;
}
