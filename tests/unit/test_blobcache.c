/*
 * The blob cache (lib/blobcache.c): a fill is then a hit, also after a
 * reopen; concurrent first requests make exactly one filler, and the
 * others read the same bytes from the growing file while the filler is
 * slow (blocking and through the notify protocol); an abort wakes them
 * with an error and a retry fills; eviction keeps to the cap in LRU
 * order (across reopens too) and never takes a blob being read; a reopen
 * after crashes (leftover fills, a killed filler, records without blob,
 * blobs of the wrong size, torn or corrupt journal lines, orphans) loads
 * what is sound; Range reads; hostile contents (symlinks, fifos,
 * directories where files belong) are never followed; two handles on one
 * directory (as two processes) see each other's commits and evictions.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "fixture.h"
#include "layer/alloc.h"
#include "layer/blobcache.h"
#include "layer/digest.h"
#include "layer/error.h"

static char *top;  /* holds cache/ and outside files */
static char *cdir; /* the cache directory */

static void setup(void)
{
    top = fx_tmpdir();
    cdir = fx_path(top, "cache");
}

static void teardown(void)
{
    fx_rm_rf(top);
    free(cdir);
    free(top);
}

/* ---- helpers ------------------------------------------------------- */

static layer_blobcache *open_cache(uint64_t max)
{
    layer_blobcache_opts o = {.max_bytes = max};
    layer_blobcache *c = NULL;
    int rc = layer_blobcache_open(&c, cdir, &o);

    ck_assert_msg(rc == 0, "open: %s", layer_error_last());
    return c;
}

static layer_blobcache_key key_of(const char *layer, const char *fp)
{
    layer_blobcache_key k = {.layer = layer,
                             .fingerprint = fp,
                             .tar = LAYER_BLOBCACHE_TAR_CANONICAL,
                             .compression = LAYER_COMPRESSION_NONE,
                             .level = 0};
    return k;
}

/* Deterministic bytes: a blob's content from a seed. */
static unsigned char *make_bytes(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

static void digest_of(char out[LAYER_DIGEST_STR_SIZE], const void *p, size_t n)
{
    ck_assert_int_eq(layer_digest_buffer(out, p, n), 0);
}

/* Fill key with the bytes (in chunks) and commit; returns the info. */
static layer_blobcache_info fill_key(layer_blobcache *c,
                                     const layer_blobcache_key *k,
                                     const unsigned char *p, size_t n)
{
    layer_blobcache_lookup lk;
    layer_blobcache_info info = {0};
    int rc;

    rc = layer_blobcache_get(&lk, c, k, 0);
    ck_assert_msg(rc == 0, "get: %s", layer_error_last());
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_FILL);
    for (size_t off = 0; off < n; off += 4096) {
        size_t m = n - off < 4096 ? n - off : 4096;

        ck_assert_int_eq(layer_blobcache_write(lk.writer, p + off, m), 0);
    }
    info.size = n;
    rc = layer_blobcache_commit(lk.writer, &info);
    ck_assert_msg(rc == 0, "commit: %s", layer_error_last());
    digest_of(info.digest, p, n);
    return info;
}

/* Read a reader to its end (blocking); returns the bytes. */
static unsigned char *read_all(layer_blobcache_reader *r, size_t *out_n,
                               int *out_rc)
{
    size_t cap = 1 << 16, len = 0;
    unsigned char *p = malloc(cap);
    int rc;

    for (;;) {
        size_t n = 0;

        if (len + 1000 > cap)
            p = realloc(p, cap *= 2);
        rc = layer_blobcache_read(&n, r, p + len, 1000, 0);
        if (rc != 0)
            break;
        ck_assert_uint_gt(n, 0);
        len += n;
    }
    *out_n = len;
    *out_rc = rc;
    return p;
}

static void expect_hit(layer_blobcache *c, const layer_blobcache_key *k,
                       const unsigned char *p, size_t n)
{
    layer_blobcache_lookup lk;
    layer_blobcache_info info;
    char digest[LAYER_DIGEST_STR_SIZE];
    unsigned char *got;
    size_t len;
    int rc;

    rc = layer_blobcache_get(&lk, c, k, LAYER_BLOBCACHE_GET_NOFILL);
    ck_assert_msg(rc == 0, "get %s: %s", k->layer, layer_error_last());
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_HIT);
    /* a hit knows its size and digests before the first byte */
    ck_assert_int_eq(layer_blobcache_reader_info(&info, lk.reader), 0);
    digest_of(digest, p, n);
    ck_assert_str_eq(info.digest, digest);
    ck_assert_uint_eq(info.size, n);
    got = read_all(lk.reader, &len, &rc);
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    ck_assert_uint_eq(len, n);
    ck_assert(memcmp(got, p, n) == 0);
    free(got);
    layer_blobcache_reader_free(lk.reader);
}

static void expect_missing(layer_blobcache *c, const layer_blobcache_key *k)
{
    layer_blobcache_lookup lk;

    ck_assert_int_eq(layer_blobcache_get(&lk, c, k, LAYER_BLOBCACHE_GET_NOFILL),
                     LAYER_ENOTFOUND);
    ck_assert_ptr_null(lk.reader);
    ck_assert_ptr_null(lk.writer);
}

static char *blob_file(const char *digest)
{
    char rel[128];

    snprintf(rel, sizeof(rel), "cache/blobs/sha256/%.64s", digest + 7);
    return fx_path(top, rel);
}

static bool exists_nofollow(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* Number of entries in cache/tmp. */
static int count_tmp(void)
{
    char *p = fx_path(top, "cache/tmp");
    char cmd[4200];
    FILE *f;
    int n = -1;

    snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", p);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%d", &n), 1);
    pclose(f);
    free(p);
    return n;
}

static void append_file(const char *path, const char *text, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static char *journal_text(size_t *out_n)
{
    char *p = fx_path(top, "cache/journal");
    FILE *f = fopen(p, "rb");
    char *buf = calloc(1, 1 << 20);
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    free(p);
    *out_n = n;
    return buf;
}

/* ---- fill and hit ---------------------------------------------------- */

START_TEST(test_fill_then_hit)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k = key_of("dir:/srv/store app", "fp-1");
    unsigned char *p = make_bytes(100000, 1);
    layer_blobcache_info info;
    layer_blobcache_stats st;
    char *path;

    info = fill_key(c, &k, p, 100000);
    path = blob_file(info.digest);
    ck_assert(exists_nofollow(path));
    expect_hit(c, &k, p, 100000);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.fills, 1);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.commits, 1);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.blobs, 1);
    ck_assert_uint_eq(st.records, 1);
    ck_assert_uint_eq(st.bytes, 100000);
    ck_assert_uint_eq(st.bytes_written, 100000);
    ck_assert_uint_eq(st.bytes_read, 100000);
    ck_assert_int_eq(count_tmp(), 0);
    layer_blobcache_free(c);

    /* the record and the blob survive a reopen */
    c = open_cache(0);
    expect_hit(c, &k, p, 100000);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.torn_lines, 0);
    ck_assert_uint_eq(st.dropped_records, 0);
    ck_assert_uint_eq(st.removed_orphans, 0);
    layer_blobcache_free(c);
    free(path);
    free(p);
}
END_TEST

START_TEST(test_info_of_a_compressed_fill)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k = key_of("L", "F");
    layer_blobcache_lookup lk;
    layer_blobcache_info info = {0}, got;
    unsigned char *p = make_bytes(5000, 2);

    k.compression = LAYER_COMPRESSION_GZIP;
    k.level = 6;
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, p, 5000), 0);
    info.size = 5000;
    /* a compressed blob needs its diff ID */
    ck_assert_int_eq(layer_blobcache_commit(lk.writer, &info), LAYER_EINVALID);

    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_FILL);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, p, 5000), 0);
    snprintf(info.diff_id, sizeof(info.diff_id), "sha256:%064d", 7);
    ck_assert_int_eq(layer_blobcache_commit(lk.writer, &info), 0);
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_HIT);
    ck_assert_int_eq(layer_blobcache_reader_info(&got, lk.reader), 0);
    ck_assert_str_eq(got.diff_id, info.diff_id);
    ck_assert_str_eq(got.media_type,
                     "application/vnd.oci.image.layer.v1.tar+gzip");
    layer_blobcache_reader_free(lk.reader);

    /* the same layer at another level is another key */
    k.level = 9;
    expect_missing(c, &k);
    layer_blobcache_free(c);
    free(p);
}
END_TEST

START_TEST(test_commit_checks_the_bytes)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k = key_of("L", "F");
    layer_blobcache_lookup lk, wl;
    layer_blobcache_info info = {0};
    unsigned char *p = make_bytes(3000, 3);
    size_t n;
    int rc;

    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(layer_blobcache_get(&wl, c, &k, 0), 0);
    ck_assert_int_eq(wl.role, LAYER_BLOBCACHE_WAIT);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, p, 3000), 0);
    info.size = 2999;
    ck_assert_int_eq(layer_blobcache_commit(lk.writer, &info), LAYER_EINVALID);
    free(read_all(wl.reader, &n, &rc));
    ck_assert_int_eq(rc, LAYER_ECANCELED);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "abandoned"));
    layer_blobcache_reader_free(wl.reader);

    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_FILL);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, p, 3000), 0);
    info.size = 3000;
    digest_of(info.digest, p, 2999); /* not the bytes written */
    ck_assert_int_eq(layer_blobcache_commit(lk.writer, &info), LAYER_EINVALID);
    expect_missing(c, &k);
    ck_assert_int_eq(count_tmp(), 0);

    digest_of(info.digest, p, 3000);
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, p, 3000), 0);
    ck_assert_int_eq(layer_blobcache_commit(lk.writer, &info), 0);
    expect_hit(c, &k, p, 3000);
    layer_blobcache_free(c);
    free(p);
}
END_TEST

/* A fill whose digest the caller gives: taken as it is at the commit,
 * required there, and only before the first byte. */
START_TEST(test_given_digest)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k = key_of("L", "F");
    layer_blobcache_lookup lk, wl;
    layer_blobcache_info info = {0};
    unsigned char *p = make_bytes(3000, 4);
    size_t n;
    int rc;

    /* no digest at the commit: refused, the waiter cut, nothing kept */
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(layer_blobcache_writer_given(lk.writer), 0);
    ck_assert_int_eq(layer_blobcache_get(&wl, c, &k, 0), 0);
    ck_assert_int_eq(wl.role, LAYER_BLOBCACHE_WAIT);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, p, 3000), 0);
    info.size = 3000;
    ck_assert_int_eq(layer_blobcache_commit(lk.writer, &info), LAYER_EINVALID);
    free(read_all(wl.reader, &n, &rc));
    ck_assert_int_eq(rc, LAYER_ECANCELED);
    layer_blobcache_reader_free(wl.reader);
    expect_missing(c, &k);
    ck_assert_int_eq(count_tmp(), 0);

    /* too late once a byte is written; the fill goes on hashing */
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, p, 1), 0);
    ck_assert_int_eq(layer_blobcache_writer_given(lk.writer), LAYER_EINVALID);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, p + 1, 2999), 0);
    digest_of(info.digest, p, 2999); /* checked: not the bytes */
    ck_assert_int_eq(layer_blobcache_commit(lk.writer, &info), LAYER_EINVALID);
    expect_missing(c, &k);

    /* given: the blob is kept under the digest given */
    digest_of(info.digest, p, 3000);
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(layer_blobcache_writer_given(lk.writer), 0);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, p, 1000), 0);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, p + 1000, 2000), 0);
    ck_assert_int_eq(layer_blobcache_commit(lk.writer, &info), 0);
    expect_hit(c, &k, p, 3000);
    ck_assert_int_eq(layer_blobcache_open_digest(&wl.reader, c, info.digest),
                     0);
    layer_blobcache_reader_free(wl.reader);
    layer_blobcache_free(c);
    free(p);
}
END_TEST

START_TEST(test_bypass_and_bad_keys)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k = key_of("L", "F");
    layer_blobcache_lookup lk;
    layer_blobcache_stats st;
    char *longs = malloc(LAYER_BLOBCACHE_LAYER_MAX + 2);

    ck_assert_int_eq(layer_blobcache_get(&lk, NULL, &k, 0), 0);
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_BYPASS);
    ck_assert_int_eq(
        layer_blobcache_get(&lk, c, &k, LAYER_BLOBCACHE_GET_BYPASS), 0);
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_BYPASS);
    ck_assert_ptr_null(lk.reader);
    ck_assert_ptr_null(lk.writer);
    ck_assert_str_eq(layer_blobcache_role_name(lk.role), "bypass");
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.bypasses, 1);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_int_eq(count_tmp(), 0);

    k.layer = "";
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), LAYER_EINVALID);
    memset(longs, 'a', LAYER_BLOBCACHE_LAYER_MAX + 1);
    longs[LAYER_BLOBCACHE_LAYER_MAX + 1] = '\0';
    k.layer = longs;
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), LAYER_EINVALID);
    k = key_of("L", NULL);
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), LAYER_EINVALID);
    k = key_of("L", "F");
    k.compression = (layer_compression)7;
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), LAYER_EINVALID);
    layer_blobcache_free(c);
    free(longs);
}
END_TEST

START_TEST(test_keys_round_trip_through_the_journal)
{
    static const char *const layers[] = {
        "containers-storage:/var/lib/my store@id one",
        "100% \"odd\"\nname\ttab",
        "\xc3\xa9t\xc3\xa9",
    };
    layer_blobcache *c = open_cache(0);
    layer_blobcache_item *items;
    unsigned char *p[3];
    size_t n;

    for (int i = 0; i < 3; i++) {
        layer_blobcache_key k = key_of(layers[i], "fp with space");

        k.tar = i == 1 ? LAYER_BLOBCACHE_TAR_ORIGINAL
                       : LAYER_BLOBCACHE_TAR_CANONICAL;
        k.level = -i;
        p[i] = make_bytes(1000 + (size_t)i, 10 + (unsigned)i);
        fill_key(c, &k, p[i], 1000 + (size_t)i);
    }
    layer_blobcache_free(c);
    c = open_cache(0);
    for (int i = 0; i < 3; i++) {
        layer_blobcache_key k = key_of(layers[i], "fp with space");

        k.tar = i == 1 ? LAYER_BLOBCACHE_TAR_ORIGINAL
                       : LAYER_BLOBCACHE_TAR_CANONICAL;
        k.level = -i;
        expect_hit(c, &k, p[i], 1000 + (size_t)i);
    }
    ck_assert_int_eq(layer_blobcache_list(&items, &n, c), 0);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        int j = items[i].info.size == 1000   ? 0
                : items[i].info.size == 1001 ? 1
                                             : 2;

        ck_assert_str_eq(items[i].layer, layers[j]);
        ck_assert_str_eq(items[i].fingerprint, "fp with space");
        ck_assert_int_eq(items[i].level, -j);
        ck_assert_int_eq(items[i].tar, j == 1 ? LAYER_BLOBCACHE_TAR_ORIGINAL
                                              : LAYER_BLOBCACHE_TAR_CANONICAL);
        ck_assert_int_eq(items[i].compression, LAYER_COMPRESSION_NONE);
        ck_assert_uint_eq(items[i].readers, 0);
    }
    layer_blobcache_list_free(items, n);
    layer_blobcache_free(c);
    for (int i = 0; i < 3; i++)
        free(p[i]);
}
END_TEST

START_TEST(test_new_fingerprint_is_a_new_key)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k1 = key_of("L", "fp-1"), k2 = key_of("L", "fp-2");
    unsigned char *a = make_bytes(2000, 4), *b = make_bytes(2100, 5);
    layer_blobcache_info ia;
    layer_blobcache_reader *r;
    unsigned char *got;
    size_t n;
    int rc;

    ia = fill_key(c, &k1, a, 2000);
    expect_missing(c, &k2);
    fill_key(c, &k2, b, 2100);
    expect_hit(c, &k2, b, 2100);
    /* the old blob stays valid for its digest */
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, ia.digest), 0);
    got = read_all(r, &n, &rc);
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    ck_assert_uint_eq(n, 2000);
    ck_assert(memcmp(got, a, 2000) == 0);
    free(got);
    layer_blobcache_reader_free(r);
    layer_blobcache_free(c);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_same_bytes_under_two_keys_are_one_blob)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k1 = key_of("A", "x"), k2 = key_of("B", "y");
    unsigned char *p = make_bytes(4000, 6);
    layer_blobcache_stats st;

    fill_key(c, &k1, p, 4000);
    fill_key(c, &k2, p, 4000);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.blobs, 1);
    ck_assert_uint_eq(st.records, 2);
    ck_assert_uint_eq(st.bytes, 4000);
    ck_assert_int_eq(count_tmp(), 0);
    layer_blobcache_free(c);
    c = open_cache(0);
    expect_hit(c, &k1, p, 4000);
    expect_hit(c, &k2, p, 4000);
    layer_blobcache_free(c);
    free(p);
}
END_TEST

/* ---- single flight ---------------------------------------------------- */

#define NTHREADS 8
#define CHUNK    (32 << 10)
#define NCHUNKS  24
#define SLOW_US  3000

typedef struct shared {
    layer_blobcache *c;
    layer_blobcache_key key;
    const unsigned char *bytes;
    size_t len;
    pthread_barrier_t start;
    atomic_int fillers;
    atomic_bool committed;
    atomic_int abort_instead;
} shared;

typedef struct waiter {
    shared *s;
    int index;
    layer_blobcache_role role;
    unsigned char *got;
    size_t n;
    size_t before_commit; /* bytes read before the filler committed */
    int end_rc;
    char end_msg[256];
    layer_blobcache_info info;
    int info_rc;
    /* notify */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool woken;
    int calls;
} waiter;

static void on_notify(void *arg)
{
    waiter *w = arg;

    pthread_mutex_lock(&w->mu);
    w->woken = true;
    w->calls++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void filler_run(waiter *w, layer_blobcache_writer *wr)
{
    shared *s = w->s;
    layer_blobcache_info info = {0};

    atomic_fetch_add(&s->fillers, 1);
    for (size_t i = 0; i < NCHUNKS; i++) {
        if (atomic_load(&s->abort_instead) && i == NCHUNKS / 2) {
            atomic_store(&s->committed, true);
            layer_blobcache_abort(wr, "the export failed: disk on fire");
            w->end_rc = LAYER_ECANCELED;
            return;
        }
        if ((w->end_rc =
                 layer_blobcache_write(wr, s->bytes + i * CHUNK, CHUNK)) != 0) {
            layer_blobcache_abort(wr, "test write failed");
            return;
        }
        usleep(SLOW_US); /* a slow export */
    }
    info.size = s->len;
    atomic_store(&s->committed, true);
    w->end_rc = layer_blobcache_commit(wr, &info);
}

/* Read the fill to its end: odd-numbered waiters without blocking,
 * through the notify callback. */
static void waiter_run(waiter *w, layer_blobcache_reader *r)
{
    shared *s = w->s;
    bool nonblock = w->index % 2 == 1;
    size_t cap = s->len + 1;
    int rc;

    w->got = malloc(cap);
    if (nonblock)
        layer_blobcache_reader_set_notify(r, on_notify, w);
    for (;;) {
        size_t n = 0, room = cap - w->n < 7001 ? cap - w->n : 7001;
        bool before = !atomic_load(&s->committed);

        rc = layer_blobcache_read(&n, r, w->got + w->n, room,
                                  nonblock ? LAYER_BLOBCACHE_NONBLOCK : 0);
        if (rc == LAYER_EAGAIN) {
            pthread_mutex_lock(&w->mu);
            while (!w->woken)
                pthread_cond_wait(&w->cv, &w->mu);
            w->woken = false;
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (rc != 0)
            break;
        if (before)
            w->before_commit += n;
        w->n += n;
    }
    w->end_rc = rc;
    snprintf(w->end_msg, sizeof(w->end_msg), "%s", layer_error_last());
    w->info_rc = layer_blobcache_reader_info(&w->info, r);
    layer_blobcache_reader_free(r);
}

static void *flight_thread(void *arg)
{
    waiter *w = arg;
    shared *s = w->s;
    layer_blobcache_lookup lk;

    pthread_barrier_wait(&s->start);
    w->end_rc = layer_blobcache_get(&lk, s->c, &s->key, 0);
    if (w->end_rc != 0)
        return NULL;
    w->role = lk.role;
    if (lk.role == LAYER_BLOBCACHE_FILL)
        filler_run(w, lk.writer);
    else if (lk.reader != NULL)
        waiter_run(w, lk.reader);
    return NULL;
}

static void run_flight(shared *s, waiter *w)
{
    pthread_t t[NTHREADS];

    pthread_barrier_init(&s->start, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].s = s;
        w[i].index = i;
        pthread_mutex_init(&w[i].mu, NULL);
        pthread_cond_init(&w[i].cv, NULL);
        ck_assert_int_eq(pthread_create(&t[i], NULL, flight_thread, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&s->start);
}

static void flight_dispose(waiter *w)
{
    for (int i = 0; i < NTHREADS; i++) {
        free(w[i].got);
        pthread_mutex_destroy(&w[i].mu);
        pthread_cond_destroy(&w[i].cv);
    }
}

START_TEST(test_concurrent_first_requests_make_one_filler)
{
    shared s = {0};
    waiter w[NTHREADS];
    layer_blobcache_stats st;
    char digest[LAYER_DIGEST_STR_SIZE];
    int nfill = 0, nwait = 0, nearly = 0, notified = 0;

    s.c = open_cache(0);
    s.key = key_of("L", "F");
    s.len = (size_t)CHUNK * NCHUNKS;
    s.bytes = make_bytes(s.len, 8);
    digest_of(digest, s.bytes, s.len);
    run_flight(&s, w);
    ck_assert_int_eq(atomic_load(&s.fillers), 1);
    for (int i = 0; i < NTHREADS; i++) {
        ck_assert_msg(
            w[i].end_rc ==
                (w[i].role == LAYER_BLOBCACHE_FILL ? 0 : LAYER_ITEROVER),
            "thread %d (%s): %d %s", i, layer_blobcache_role_name(w[i].role),
            w[i].end_rc, w[i].end_msg);
        if (w[i].role == LAYER_BLOBCACHE_FILL) {
            nfill++;
            continue;
        }
        /* a late thread may find the blob committed: a hit */
        ck_assert(w[i].role == LAYER_BLOBCACHE_WAIT ||
                  w[i].role == LAYER_BLOBCACHE_HIT);
        nwait += w[i].role == LAYER_BLOBCACHE_WAIT;
        ck_assert_uint_eq(w[i].n, s.len);
        ck_assert(memcmp(w[i].got, s.bytes, s.len) == 0);
        ck_assert_int_eq(w[i].info_rc, 0);
        ck_assert_str_eq(w[i].info.digest, digest);
        ck_assert_str_eq(w[i].info.diff_id, digest);
        ck_assert_uint_eq(w[i].info.size, s.len);
        if (w[i].before_commit > 0)
            nearly++;
        notified += w[i].calls;
    }
    ck_assert_int_eq(nfill, 1);
    ck_assert_int_ge(nwait, 1);
    /* waiters were served from the growing file, not after the end */
    ck_assert_int_ge(nearly, 1);
    /* the non-blocking ones waited through the notify callback */
    ck_assert_int_ge(notified, 1);
    layer_blobcache_stats_get(&st, s.c);
    ck_assert_uint_eq(st.fills, 1);
    ck_assert_uint_eq(st.commits, 1);
    ck_assert_uint_eq(st.waits, (uint64_t)nwait);
    ck_assert_uint_eq(st.bytes_written, s.len);
    expect_hit(s.c, &s.key, s.bytes, s.len);
    ck_assert_int_eq(count_tmp(), 0);
    flight_dispose(w);
    layer_blobcache_free(s.c);
    free((void *)s.bytes);
}
END_TEST

START_TEST(test_abort_wakes_waiters_and_a_retry_fills)
{
    shared s = {0};
    waiter w[NTHREADS];
    layer_blobcache_stats st;
    int nwait = 0;

    s.c = open_cache(0);
    s.key = key_of("L", "F");
    s.len = (size_t)CHUNK * NCHUNKS;
    s.bytes = make_bytes(s.len, 9);
    atomic_store(&s.abort_instead, 1);
    run_flight(&s, w);
    ck_assert_int_eq(atomic_load(&s.fillers), 1);
    for (int i = 0; i < NTHREADS; i++) {
        if (w[i].role == LAYER_BLOBCACHE_FILL)
            continue;
        /* a thread later than the abort becomes a filler itself: there
         * is only one filler here, so every other thread waited */
        ck_assert_int_eq(w[i].role, LAYER_BLOBCACHE_WAIT);
        nwait++;
        ck_assert_int_eq(w[i].end_rc, LAYER_ECANCELED);
        ck_assert_ptr_nonnull(strstr(w[i].end_msg, "disk on fire"));
        ck_assert_int_eq(w[i].info_rc, LAYER_ECANCELED);
        ck_assert(memcmp(w[i].got, s.bytes, w[i].n) == 0);
    }
    ck_assert_int_eq(nwait, NTHREADS - 1);
    ck_assert_int_eq(count_tmp(), 0);
    layer_blobcache_stats_get(&st, s.c);
    ck_assert_uint_eq(st.aborts, 1);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.blobs, 0);

    /* nothing is left: the next request fills */
    fill_key(s.c, &s.key, s.bytes, s.len);
    expect_hit(s.c, &s.key, s.bytes, s.len);
    flight_dispose(w);
    layer_blobcache_free(s.c);
    free((void *)s.bytes);
}
END_TEST

START_TEST(test_notify_protocol)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k = key_of("L", "F");
    layer_blobcache_lookup fl, wl;
    layer_blobcache_info info = {0}, got;
    waiter w;
    char buf[64];
    size_t n;

    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    ck_assert_int_eq(layer_blobcache_get(&fl, c, &k, 0), 0);
    ck_assert_int_eq(fl.role, LAYER_BLOBCACHE_FILL);
    ck_assert_int_eq(layer_blobcache_get(&wl, c, &k, 0), 0);
    ck_assert_int_eq(wl.role, LAYER_BLOBCACHE_WAIT);
    ck_assert_str_eq(layer_blobcache_role_name(wl.role), "wait");
    ck_assert_uint_eq(layer_blobcache_writer_readers(fl.writer), 1);
    ck_assert_int_eq(layer_blobcache_reader_info(&got, wl.reader),
                     LAYER_EAGAIN);

    /* armed with no callback installed: the event is kept for it */
    ck_assert_int_eq(layer_blobcache_read(&n, wl.reader, buf, sizeof(buf),
                                          LAYER_BLOBCACHE_NONBLOCK),
                     LAYER_EAGAIN);
    ck_assert_int_eq(layer_blobcache_write(fl.writer, "0123456789", 10), 0);
    ck_assert_int_eq(w.calls, 0);
    layer_blobcache_reader_set_notify(wl.reader, on_notify, &w);
    ck_assert_int_eq(w.calls, 1);
    ck_assert_int_eq(layer_blobcache_read(&n, wl.reader, buf, sizeof(buf),
                                          LAYER_BLOBCACHE_NONBLOCK),
                     0);
    ck_assert_uint_eq(n, 10);
    ck_assert(memcmp(buf, "0123456789", 10) == 0);

    /* a read that returned data armed nothing */
    ck_assert_int_eq(layer_blobcache_write(fl.writer, "abcde", 5), 0);
    ck_assert_int_eq(w.calls, 1);
    ck_assert_int_eq(
        layer_blobcache_read(&n, wl.reader, buf, 3, LAYER_BLOBCACHE_NONBLOCK),
        0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(layer_blobcache_read(&n, wl.reader, buf, sizeof(buf),
                                          LAYER_BLOBCACHE_NONBLOCK),
                     0);
    ck_assert_uint_eq(n, 2);
    ck_assert(memcmp(buf, "de", 2) == 0);

    /* EAGAIN arms once; the commit calls the callback exactly once */
    ck_assert_int_eq(layer_blobcache_read(&n, wl.reader, buf, sizeof(buf),
                                          LAYER_BLOBCACHE_NONBLOCK),
                     LAYER_EAGAIN);
    ck_assert_int_eq(layer_blobcache_read(&n, wl.reader, buf, sizeof(buf),
                                          LAYER_BLOBCACHE_NONBLOCK),
                     LAYER_EAGAIN);
    info.size = 15;
    ck_assert_int_eq(layer_blobcache_commit(fl.writer, &info), 0);
    ck_assert_int_eq(w.calls, 2);
    ck_assert_int_eq(layer_blobcache_read(&n, wl.reader, buf, sizeof(buf),
                                          LAYER_BLOBCACHE_NONBLOCK),
                     LAYER_ITEROVER);
    ck_assert_int_eq(layer_blobcache_reader_info(&got, wl.reader), 0);
    ck_assert_uint_eq(got.size, 15);
    ck_assert_int_eq(layer_blobcache_read(&n, wl.reader, buf, 0, 0),
                     LAYER_EINVALID);
    layer_blobcache_reader_free(wl.reader);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    layer_blobcache_free(c);
}
END_TEST

START_TEST(test_blob_larger_than_the_cap_is_served_not_kept)
{
    layer_blobcache *c = open_cache(1000);
    layer_blobcache_key k = key_of("big", "F");
    layer_blobcache_lookup fl, wl;
    layer_blobcache_info info = {0};
    layer_blobcache_stats st;
    unsigned char *p = make_bytes(1500, 11), *got;
    size_t n;
    int rc;

    ck_assert_int_eq(layer_blobcache_get(&fl, c, &k, 0), 0);
    ck_assert_int_eq(layer_blobcache_get(&wl, c, &k, 0), 0);
    ck_assert_int_eq(layer_blobcache_write(fl.writer, p, 1500), 0);
    info.size = 1500;
    ck_assert_int_eq(layer_blobcache_commit(fl.writer, &info), 0);
    got = read_all(wl.reader, &n, &rc);
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    ck_assert_uint_eq(n, 1500);
    ck_assert(memcmp(got, p, 1500) == 0);
    ck_assert_int_eq(layer_blobcache_reader_info(&info, wl.reader), 0);
    ck_assert_uint_eq(info.size, 1500);
    layer_blobcache_reader_free(wl.reader);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.too_big, 1);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.blobs, 0);
    expect_missing(c, &k);
    ck_assert_int_eq(count_tmp(), 0);
    free(got);
    free(p);
    layer_blobcache_free(c);
}
END_TEST

/* ---- eviction ----------------------------------------------------------- */

START_TEST(test_eviction_is_lru_and_spares_readers)
{
    layer_blobcache *c = open_cache(3000);
    layer_blobcache_key ka = key_of("A", "f"), kb = key_of("B", "f"),
                        kc = key_of("C", "f"), kd = key_of("D", "f"),
                        ke = key_of("E", "f");
    unsigned char *a = make_bytes(1000, 20), *b = make_bytes(1000, 21),
                  *cc = make_bytes(1000, 22), *d = make_bytes(1000, 23),
                  *e = make_bytes(1000, 24), *got;
    layer_blobcache_info ib, ic;
    layer_blobcache_lookup held;
    layer_blobcache_stats st;
    char *pb, *pc;
    size_t n;
    int rc;

    fill_key(c, &ka, a, 1000);
    ib = fill_key(c, &kb, b, 1000);
    ic = fill_key(c, &kc, cc, 1000);
    /* hold A, then use C and B: A is the oldest, but being read */
    ck_assert_int_eq(layer_blobcache_get(&held, c, &ka, 0), 0);
    ck_assert_int_eq(held.role, LAYER_BLOBCACHE_HIT);
    expect_hit(c, &kc, cc, 1000);
    expect_hit(c, &kb, b, 1000);
    fill_key(c, &kd, d, 1000);
    expect_missing(c, &kc);
    pc = blob_file(ic.digest);
    ck_assert(!exists_nofollow(pc));
    got = read_all(held.reader, &n, &rc);
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    ck_assert_uint_eq(n, 1000);
    ck_assert(memcmp(got, a, 1000) == 0);
    free(got);
    ck_assert_int_eq(layer_blobcache_evict(NULL, c, 0), LAYER_EBUSY);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.bytes, 1000); /* A, held, stays */
    layer_blobcache_reader_free(held.reader);
    layer_blobcache_free(c);

    c = open_cache(3000);
    expect_hit(c, &ka, a, 1000);
    expect_missing(c, &kb);
    pb = blob_file(ib.digest);
    ck_assert(!exists_nofollow(pb));

    /* B, C, D went; now A, E, then more: the oldest goes first */
    fill_key(c, &kb, b, 1000);
    fill_key(c, &kd, d, 1000);
    expect_hit(c, &ka, a, 1000); /* order: B D A */
    fill_key(c, &ke, e, 1000);
    expect_missing(c, &kb);
    expect_hit(c, &kd, d, 1000);
    expect_hit(c, &ka, a, 1000);
    expect_hit(c, &ke, e, 1000);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.evictions, 1);
    ck_assert_uint_eq(st.bytes, 3000);
    ck_assert_uint_eq(st.blobs, 3);
    layer_blobcache_free(c);
    free(pb);
    free(pc);
    free(a);
    free(b);
    free(cc);
    free(d);
    free(e);
}
END_TEST

START_TEST(test_last_use_survives_a_reopen)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k[3] = {key_of("A", "f"), key_of("B", "f"),
                                key_of("C", "f")};
    static const int age[3] = {100, 300, 200};
    unsigned char *p[3];
    layer_blobcache_item *items;
    layer_blobcache_stats st;
    time_t now = time(NULL);
    size_t n;

    for (int i = 0; i < 3; i++) {
        layer_blobcache_info info;
        struct timespec ts[2] = {{now, 0}, {now - age[i], 0}};
        char *path;

        p[i] = make_bytes(1000, 30 + (unsigned)i);
        info = fill_key(c, &k[i], p[i], 1000);
        path = blob_file(info.digest);
        ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
        free(path);
    }
    layer_blobcache_free(c);
    c = open_cache(0);
    ck_assert_int_eq(layer_blobcache_list(&items, &n, c), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(items[0].layer, "B");
    ck_assert_str_eq(items[1].layer, "C");
    ck_assert_str_eq(items[2].layer, "A");
    ck_assert_int_eq(items[0].last_used, (int64_t)(now - 300));
    layer_blobcache_list_free(items, n);
    /* a hit is a use, written to the file for the next run */
    expect_hit(c, &k[1], p[1], 1000);
    layer_blobcache_free(c);
    c = open_cache(0);
    ck_assert_int_eq(layer_blobcache_list(&items, &n, c), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(items[0].layer, "C");
    ck_assert_str_eq(items[1].layer, "A");
    ck_assert_str_eq(items[2].layer, "B");
    ck_assert_int_ge(items[2].last_used, (int64_t)now);
    layer_blobcache_list_free(items, n);
    layer_blobcache_free(c);
    /* back to B, C, A */
    for (int i = 0; i < 3; i++) {
        struct timespec ts[2] = {{now, 0}, {now - age[i], 0}};
        char digest[LAYER_DIGEST_STR_SIZE], *path;

        digest_of(digest, p[i], 1000);
        path = blob_file(digest);
        ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
        free(path);
    }

    c = open_cache(2000); /* a lower cap: the oldest goes at open */
    expect_missing(c, &k[1]);
    expect_hit(c, &k[0], p[0], 1000);
    expect_hit(c, &k[2], p[2], 1000);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.blobs, 2);
    layer_blobcache_free(c);
    for (int i = 0; i < 3; i++)
        free(p[i]);
}
END_TEST

/* ---- crashes ------------------------------------------------------------- */

START_TEST(test_reopen_removes_dead_fills)
{
    layer_blobcache_key k = key_of("L", "F");
    unsigned char *p = make_bytes(50000, 40);
    layer_blobcache *c = open_cache(0);
    layer_blobcache_stats st;
    char *outside, *live;
    int status, lfd;
    pid_t pid;

    layer_blobcache_free(c);
    /* a filler killed mid-fill */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        layer_blobcache_lookup lk;

        c = NULL;
        if (layer_blobcache_open(&c, cdir, NULL) != 0 ||
            layer_blobcache_get(&lk, c, &k, 0) != 0 ||
            lk.role != LAYER_BLOBCACHE_FILL ||
            layer_blobcache_write(lk.writer, p, 50000) != 0)
            _exit(2);
        raise(SIGKILL);
        _exit(3);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    ck_assert_int_eq(count_tmp(), 1);
    /* junk of all kinds, and a live fill (its file locked) */
    fx_file(top, "outside.txt", "keep me\n", 0644);
    outside = fx_path(top, "outside.txt");
    fx_file(top, "cache/tmp/junk.fill", "x", 0600);
    fx_mkdir(top, "cache/tmp/adir", 0700);
    fx_symlink(top, "cache/tmp/link.fill", outside);
    fx_fifo(top, "cache/tmp/fifo.fill");
    fx_file(top, "cache/tmp/live.fill", "partial", 0600);
    live = fx_path(top, "cache/tmp/live.fill");
    lfd = open(live, O_RDONLY);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(flock(lfd, LOCK_EX), 0);

    c = open_cache(0);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.removed_temps, 5);
    ck_assert_int_eq(count_tmp(), 1);
    ck_assert(exists_nofollow(live));
    expect_missing(c, &k);
    fill_key(c, &k, p, 50000);
    expect_hit(c, &k, p, 50000);
    layer_blobcache_free(c);
    close(lfd);

    /* the lock died with its holder: now it goes */
    c = open_cache(0);
    ck_assert_int_eq(count_tmp(), 0);
    layer_blobcache_free(c);
    {
        FILE *f = fopen(outside, "r");
        char buf[16] = {0};

        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
        fclose(f);
        ck_assert_str_eq(buf, "keep me\n");
    }
    free(live);
    free(outside);
    free(p);
}
END_TEST

START_TEST(test_kill_after_commit_keeps_the_blob)
{
    layer_blobcache_key k = key_of("L", "F");
    unsigned char *p = make_bytes(30000, 41);
    layer_blobcache *c;
    int status;
    pid_t pid;

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        layer_blobcache_lookup lk;
        layer_blobcache_info info = {0};

        c = NULL;
        info.size = 30000;
        if (layer_blobcache_open(&c, cdir, NULL) != 0 ||
            layer_blobcache_get(&lk, c, &k, 0) != 0 ||
            layer_blobcache_write(lk.writer, p, 30000) != 0 ||
            layer_blobcache_commit(lk.writer, &info) != 0)
            _exit(2);
        raise(SIGKILL);
        _exit(3);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    c = open_cache(0);
    expect_hit(c, &k, p, 30000);
    layer_blobcache_free(c);
    free(p);
}
END_TEST

START_TEST(test_reopen_drops_records_of_bad_blobs)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k[4] = {key_of("A", "f"), key_of("B", "f"),
                                key_of("C", "f"), key_of("D", "f")};
    layer_blobcache_info info[4];
    layer_blobcache_stats st;
    unsigned char *p[4];
    char *path[4];

    for (int i = 0; i < 4; i++) {
        p[i] = make_bytes(2000, 50 + (unsigned)i);
        info[i] = fill_key(c, &k[i], p[i], 2000);
        path[i] = blob_file(info[i].digest);
    }
    layer_blobcache_free(c);
    ck_assert_int_eq(unlink(path[0]), 0);         /* record without blob */
    ck_assert_int_eq(truncate(path[1], 1999), 0); /* wrong size */
    fx_file(top,
            "cache/blobs/sha256/"
            "0000000000000000000000000000000000000000000000000000000000000000",
            "orphan", 0600);
    fx_file(top, "cache/blobs/sha256/README", "junk", 0600);

    c = open_cache(0);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.dropped_records, 2);
    ck_assert_uint_eq(st.removed_orphans, 3); /* B's, the zeros, README */
    ck_assert_uint_eq(st.records, 2);
    ck_assert_uint_eq(st.bytes, 4000);
    expect_missing(c, &k[0]);
    expect_missing(c, &k[1]);
    ck_assert(!exists_nofollow(path[1]));
    expect_hit(c, &k[2], p[2], 2000);
    expect_hit(c, &k[3], p[3], 2000);
    fill_key(c, &k[0], p[0], 2000);
    fill_key(c, &k[1], p[1], 2000);
    layer_blobcache_free(c);
    c = open_cache(0);
    for (int i = 0; i < 4; i++)
        expect_hit(c, &k[i], p[i], 2000);
    layer_blobcache_free(c);
    for (int i = 0; i < 4; i++) {
        free(p[i]);
        free(path[i]);
    }
}
END_TEST

START_TEST(test_torn_and_corrupt_journal_lines_are_ignored)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key ka = key_of("A", "f"), kb = key_of("B", "f"),
                        kc = key_of("C", "f");
    unsigned char *a = make_bytes(1000, 60), *b = make_bytes(1000, 61),
                  *cc = make_bytes(1000, 62);
    layer_blobcache_stats st;
    char *text, *jpath = fx_path(top, "cache/journal"), *la, *lb, *garbage;
    size_t n, lblen;
    FILE *f;

    fill_key(c, &ka, a, 1000);
    fill_key(c, &kb, b, 1000);
    layer_blobcache_free(c);
    text = journal_text(&n);
    ck_assert(strncmp(text, "layerd-blobcache 1\n", 19) == 0);
    la = strstr(text, "\nR canonical none 0 A f ");
    lb = strstr(text, "\nR canonical none 0 B f ");
    ck_assert_ptr_nonnull(la);
    ck_assert_ptr_nonnull(lb);
    lblen = (size_t)(strchr(lb + 1, '\n') - lb);
    lb = strndup(lb, lblen);
    /* A's line: one letter of its media type changed, which parses but
     * fails the CRC */
    la = strstr(la, "application/");
    ck_assert_ptr_nonnull(la);
    la[0] = 'A';
    f = fopen(jpath, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, n, f), n);
    /* a line far longer than any written, then B's line torn in half */
    garbage = malloc(100000);
    memset(garbage, 'R', 100000);
    ck_assert_uint_eq(fwrite(garbage, 1, 100000, f), 100000);
    ck_assert_uint_eq(fwrite("\n", 1, 1, f), 1);
    ck_assert_uint_eq(fwrite(lb + 1, 1, lblen / 2, f), lblen / 2);
    fclose(f);

    c = open_cache(0);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.torn_lines, 2); /* A's, the long one */
    expect_missing(c, &ka);
    expect_hit(c, &kb, b, 1000);
    layer_blobcache_free(c);
    free(text);
    /* rewritten: the header and B's record */
    text = journal_text(&n);
    ck_assert(
        strncmp(text, "layerd-blobcache 1\nR canonical none 0 B f ", 42) == 0);
    ck_assert_int_eq(text[n - 1], '\n');
    ck_assert_ptr_eq(strchr(strchr(text, '\n') + 1, '\n'), text + n - 1);
    free(text);

    /* a torn tail left by a dead writer while a handle is open: the next
     * append starts on a line of its own */
    c = open_cache(0);
    append_file(jpath, lb + 1, lblen / 3);
    fill_key(c, &kc, cc, 1000);
    layer_blobcache_free(c);
    c = open_cache(0);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.torn_lines, 1);
    expect_hit(c, &kb, b, 1000);
    expect_hit(c, &kc, cc, 1000);
    layer_blobcache_free(c);
    free(garbage);
    free(lb);
    free(jpath);
    free(a);
    free(b);
    free(cc);
}
END_TEST

START_TEST(test_unknown_journal_version_is_refused)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k = key_of("A", "f");
    unsigned char *a = make_bytes(1000, 63);
    char *jpath = fx_path(top, "cache/journal");
    FILE *f;

    fill_key(c, &k, a, 1000);
    layer_blobcache_free(c);
    f = fopen(jpath, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("layerd-blobcache 2\nwhatever a newer version writes\n", f);
    fclose(f);
    c = NULL;
    ck_assert_int_eq(layer_blobcache_open(&c, cdir, NULL), LAYER_EBROKEN);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "unknown format"));
    /* and nothing was removed */
    {
        char *blobs = fx_path(top, "cache/blobs/sha256");
        char cmd[4200];
        FILE *ls;
        int count = 0;

        snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", blobs);
        ls = popen(cmd, "r");
        ck_assert_int_eq(fscanf(ls, "%d", &count), 1);
        pclose(ls);
        ck_assert_int_eq(count, 1);
        free(blobs);
    }
    free(jpath);
    free(a);
}
END_TEST

/* ---- ranges ----------------------------------------------------------------
 */

static void expect_range(layer_blobcache_reader *r, const unsigned char *p,
                         uint64_t off, size_t want)
{
    unsigned char *got;
    size_t n;
    int rc;

    got = read_all(r, &n, &rc);
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    ck_assert_uint_eq(n, want);
    ck_assert(memcmp(got, p + off, want) == 0);
    free(got);
    layer_blobcache_reader_free(r);
}

START_TEST(test_range_reads)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k = key_of("L", "F"), k2 = key_of("L2", "F");
    unsigned char *p = make_bytes(10000, 70);
    layer_blobcache_lookup lk, fl, w1, w2, w3;
    layer_blobcache_reader *r;
    layer_blobcache_info info;
    layer_blobcache_stats st;
    char zero[LAYER_DIGEST_STR_SIZE];
    size_t n;

    info = fill_key(c, &k, p, 10000);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, info.digest), 0);
    expect_range(r, p, 0, 10000);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, info.digest), 0);
    ck_assert_int_eq(layer_blobcache_reader_range(r, 100, 50), 0);
    expect_range(r, p, 100, 50);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, info.digest), 0);
    ck_assert_int_eq(layer_blobcache_reader_range(r, 9000, UINT64_MAX), 0);
    expect_range(r, p, 9000, 1000);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, info.digest), 0);
    ck_assert_int_eq(layer_blobcache_reader_range(r, 9990, 500), 0);
    expect_range(r, p, 9990, 10);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, info.digest), 0);
    ck_assert_int_eq(layer_blobcache_reader_range(r, 10000, 1), 0);
    expect_range(r, p, 10000, 0);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, info.digest), 0);
    ck_assert_int_eq(layer_blobcache_reader_range(r, 10001, 1), LAYER_EINVALID);
    ck_assert_int_eq(layer_blobcache_read(&n, r, zero, 10, 0), 0);
    ck_assert_int_eq(layer_blobcache_reader_range(r, 0, 1), LAYER_EINVALID);
    layer_blobcache_reader_free(r);

    /* a hit by key takes a range too */
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_HIT);
    ck_assert_int_eq(layer_blobcache_reader_range(lk.reader, 5000, 2000), 0);
    expect_range(lk.reader, p, 5000, 2000);

    /* unknown and malformed digests */
    snprintf(zero, sizeof(zero), "sha256:%064d", 0);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, zero), LAYER_ENOTFOUND);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, "sha256:abc"),
                     LAYER_EINVALID);
    zero[10] = 'A';
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, zero), LAYER_EINVALID);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.digest_hits, 6);
    ck_assert_uint_eq(st.digest_misses, 1);

    /* readers of a fill: a range inside it, one past its end */
    ck_assert_int_eq(layer_blobcache_get(&fl, c, &k2, 0), 0);
    ck_assert_int_eq(fl.role, LAYER_BLOBCACHE_FILL);
    ck_assert_int_eq(layer_blobcache_get(&w1, c, &k2, 0), 0);
    ck_assert_int_eq(layer_blobcache_get(&w2, c, &k2, 0), 0);
    ck_assert_int_eq(layer_blobcache_get(&w3, c, &k2, 0), 0);
    ck_assert_int_eq(layer_blobcache_reader_range(w1.reader, 3000, 100), 0);
    ck_assert_int_eq(layer_blobcache_reader_range(w2.reader, 20000, 1), 0);
    ck_assert_int_eq(layer_blobcache_reader_range(w3.reader, 9500, 999999), 0);
    ck_assert_int_eq(layer_blobcache_write(fl.writer, p, 5000), 0);
    /* the first range is complete before the fill is */
    expect_range(w1.reader, p, 3000, 100);
    ck_assert_int_eq(layer_blobcache_write(fl.writer, p + 5000, 5000), 0);
    memset(&info, 0, sizeof(info));
    info.size = 10000;
    ck_assert_int_eq(layer_blobcache_commit(fl.writer, &info), 0);
    ck_assert_int_eq(layer_blobcache_read(&n, w2.reader, zero, 10, 0),
                     LAYER_EINVALID);
    layer_blobcache_reader_free(w2.reader);
    expect_range(w3.reader, p, 9500, 500);
    layer_blobcache_free(c);
    free(p);
}
END_TEST

/* ---- hostile contents ------------------------------------------------------
 */

static char *read_text(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(test_symlink_where_a_blob_belongs_is_not_followed)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key ka = key_of("A", "f"), kb = key_of("B", "f");
    unsigned char *a = make_bytes(1000, 80), *b = make_bytes(1000, 81);
    layer_blobcache_info ia, ib;
    layer_blobcache_lookup lk;
    layer_blobcache_reader *r;
    char *pa, *pb, *outside;
    char secret[1001];

    /* an outside file of the very size recorded */
    memset(secret, 's', 1000);
    secret[1000] = '\0';
    fx_file(top, "secret", secret, 0600);
    outside = fx_path(top, "secret");
    ia = fill_key(c, &ka, a, 1000);
    ib = fill_key(c, &kb, b, 1000);
    pa = blob_file(ia.digest);
    pb = blob_file(ib.digest);

    /* while open: the symlink is refused, the record dropped, a miss */
    ck_assert_int_eq(unlink(pb), 0);
    ck_assert_int_eq(symlink(outside, pb), 0);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c, ib.digest),
                     LAYER_ENOTFOUND);
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &kb, 0), 0);
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_FILL);
    layer_blobcache_abort(lk.writer, "test");
    ck_assert(!exists_nofollow(pb)); /* the link was removed */
    layer_blobcache_free(c);

    /* at open */
    ck_assert_int_eq(unlink(pa), 0);
    ck_assert_int_eq(symlink(outside, pa), 0);
    c = open_cache(0);
    expect_missing(c, &ka);
    ck_assert(!exists_nofollow(pa));
    ck_assert_str_eq(read_text(outside), secret);
    layer_blobcache_free(c);
    free(pa);
    free(pb);
    free(outside);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_non_regular_file_where_a_blob_belongs)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k[3] = {key_of("A", "f"), key_of("B", "f"),
                                key_of("C", "f")};
    layer_blobcache_info info[3];
    layer_blobcache_lookup lk;
    unsigned char *p[3];
    char *path[3];

    for (int i = 0; i < 3; i++) {
        p[i] = make_bytes(1000, 90 + (unsigned)i);
        info[i] = fill_key(c, &k[i], p[i], 1000);
        path[i] = blob_file(info[i].digest);
    }
    /* while open: a fifo must not block a hit */
    ck_assert_int_eq(unlink(path[2]), 0);
    ck_assert_int_eq(mkfifo(path[2], 0600), 0);
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k[2], 0), 0);
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_FILL);
    layer_blobcache_abort(lk.writer, "test");
    layer_blobcache_free(c);

    ck_assert_int_eq(unlink(path[0]), 0);
    ck_assert_int_eq(mkfifo(path[0], 0600), 0);
    ck_assert_int_eq(unlink(path[1]), 0);
    ck_assert_int_eq(mkdir(path[1], 0700), 0);
    c = open_cache(0);
    expect_missing(c, &k[0]);
    expect_missing(c, &k[1]);
    ck_assert(!exists_nofollow(path[0]));
    ck_assert(!exists_nofollow(path[1]));
    fill_key(c, &k[0], p[0], 1000);
    fill_key(c, &k[1], p[1], 1000);
    expect_hit(c, &k[1], p[1], 1000);
    layer_blobcache_free(c);
    for (int i = 0; i < 3; i++) {
        free(p[i]);
        free(path[i]);
    }
}
END_TEST

static void expect_open_refused(int want, const char *needle)
{
    layer_blobcache *c = NULL;
    int rc = layer_blobcache_open(&c, cdir, NULL);

    ck_assert_msg(rc == want, "open: %d, want %d (%s)", rc, want,
                  layer_error_last());
    ck_assert_ptr_null(c);
    if (needle != NULL)
        ck_assert_msg(strstr(layer_error_last(), needle) != NULL, "%s",
                      layer_error_last());
}

START_TEST(test_hostile_layout_is_refused)
{
    layer_blobcache *c = open_cache(0);
    char *elsewhere, *precious, *p;

    layer_blobcache_free(c);
    fx_mkdir(top, "elsewhere", 0700);
    fx_file(top, "elsewhere/precious.fill", "mine", 0600);
    elsewhere = fx_path(top, "elsewhere");
    precious = fx_path(top, "elsewhere/precious.fill");

    /* tmp/ replaced by a symlink to a directory with files */
    fx_rm_rf(p = fx_path(top, "cache/tmp"));
    ck_assert_int_eq(symlink(elsewhere, p), 0);
    expect_open_refused(LAYER_EBROKEN, "tmp is not a directory");
    ck_assert_str_eq(read_text(precious), "mine");
    unlink(p);
    free(p);
    c = open_cache(0);
    layer_blobcache_free(c);

    /* blobs/ as a symlink */
    fx_rm_rf(p = fx_path(top, "cache/blobs"));
    ck_assert_int_eq(symlink(elsewhere, p), 0);
    expect_open_refused(LAYER_EBROKEN, "blobs is not a directory");
    unlink(p);
    free(p);

    /* the journal and the lock file as symlinks */
    p = fx_path(top, "cache/journal");
    unlink(p);
    ck_assert_int_eq(symlink("../elsewhere/precious.fill", p), 0);
    expect_open_refused(LAYER_EBROKEN, "journal");
    ck_assert_str_eq(read_text(precious), "mine");
    unlink(p);
    free(p);
    p = fx_path(top, "cache/lock");
    unlink(p);
    ck_assert_int_eq(symlink("../elsewhere/precious.fill", p), 0);
    expect_open_refused(LAYER_EBROKEN, "lock");
    unlink(p);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    expect_open_refused(LAYER_EBROKEN, "lock");
    unlink(p);
    free(p);
    c = open_cache(0);
    layer_blobcache_free(c);

    /* a directory others may write to */
    ck_assert_int_eq(chmod(cdir, 0777), 0);
    expect_open_refused(LAYER_EBROKEN, "not writable by group or others");
    ck_assert_int_eq(chmod(cdir, 0700), 0);
    /* not a directory at all, and a missing parent */
    fx_rm_rf(cdir);
    fx_file(top, "cache", "file", 0600);
    expect_open_refused(LAYER_EBROKEN, NULL);
    unlink(cdir);
    free(cdir);
    cdir = fx_path(top, "no/such/cache");
    expect_open_refused(LAYER_ENOTFOUND, NULL);
    ck_assert_int_eq(layer_blobcache_open(&c, "", NULL), LAYER_EINVALID);
    free(precious);
    free(elsewhere);
}
END_TEST

START_TEST(test_new_cache_dir_is_private)
{
    layer_blobcache *c = open_cache(0);
    struct stat st;
    layer_blobcache_info info;
    unsigned char *p = make_bytes(100, 99);
    layer_blobcache_key k = key_of("A", "f");
    char *path;

    ck_assert_int_eq(stat(cdir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    info = fill_key(c, &k, p, 100);
    path = blob_file(info.digest);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    layer_blobcache_free(c);
    free(path);
    free(p);
}
END_TEST

/* ---- two handles, as two processes ------------------------------------- */

START_TEST(test_two_handles_see_each_other)
{
    layer_blobcache *c1 = open_cache(0), *c2 = open_cache(0), *c3;
    layer_blobcache_key ka = key_of("A", "f"), kb = key_of("B", "f"),
                        kc = key_of("C", "f");
    unsigned char *a = make_bytes(3000, 100), *b = make_bytes(3000, 101);
    layer_blobcache_reader *r;
    layer_blobcache_info ia, ib, info = {0};
    layer_blobcache_lookup lk, lk2;
    layer_blobcache_stats st;
    uint64_t evicted = 0;
    char *pa;

    ia = fill_key(c1, &ka, a, 3000);
    /* c2 learns of it from the journal on its miss */
    expect_hit(c2, &ka, a, 3000);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c2, ia.digest), 0);
    layer_blobcache_reader_free(r);
    ib = fill_key(c2, &kb, b, 3000);
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c1, ib.digest), 0);
    layer_blobcache_reader_free(r);

    /* c2 prunes; c1 notices, whether it looks by key or by digest */
    ck_assert_int_eq(layer_blobcache_evict(&evicted, c2, 0), 0);
    ck_assert_uint_eq(evicted, 2);
    pa = blob_file(ia.digest);
    ck_assert(!exists_nofollow(pa));
    ck_assert_int_eq(layer_blobcache_get(&lk, c1, &ka, 0), 0);
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_FILL);
    layer_blobcache_abort(lk.writer, "test");
    ck_assert_int_eq(layer_blobcache_open_digest(&r, c1, ib.digest),
                     LAYER_ENOTFOUND);

    /* a third opener rewrites the journal (it held E lines): both of the
     * others reload it and go on appending to the new one */
    c3 = open_cache(0);
    fill_key(c1, &ka, a, 3000);
    expect_hit(c2, &ka, a, 3000);
    expect_hit(c3, &ka, a, 3000);
    fill_key(c2, &kb, b, 3000);
    expect_hit(c1, &kb, b, 3000);

    /* single flight is per process: both fill the same key, and the
     * second commit keeps the first blob */
    ck_assert_int_eq(layer_blobcache_get(&lk, c1, &kc, 0), 0);
    ck_assert_int_eq(lk.role, LAYER_BLOBCACHE_FILL);
    ck_assert_int_eq(layer_blobcache_get(&lk2, c3, &kc, 0), 0);
    ck_assert_int_eq(lk2.role, LAYER_BLOBCACHE_FILL);
    ck_assert_int_eq(layer_blobcache_write(lk.writer, a + 1, 2999), 0);
    ck_assert_int_eq(layer_blobcache_write(lk2.writer, a + 1, 2999), 0);
    info.size = 2999;
    ck_assert_int_eq(layer_blobcache_commit(lk2.writer, &info), 0);
    ck_assert_int_eq(layer_blobcache_commit(lk.writer, &info), 0);
    expect_hit(c1, &kc, a + 1, 2999);
    expect_hit(c2, &kc, a + 1, 2999);
    expect_hit(c3, &kc, a + 1, 2999);
    layer_blobcache_stats_get(&st, c1);
    ck_assert_uint_eq(st.blobs, 3);
    ck_assert_uint_eq(st.bytes, 3000 + 3000 + 2999);
    ck_assert_int_eq(count_tmp(), 0);
    layer_blobcache_free(c3);
    layer_blobcache_free(c2);
    layer_blobcache_free(c1);
    c1 = open_cache(0);
    expect_hit(c1, &ka, a, 3000);
    expect_hit(c1, &kb, b, 3000);
    expect_hit(c1, &kc, a + 1, 2999);
    layer_blobcache_free(c1);
    free(pa);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_handles_outlive_the_cache)
{
    layer_blobcache *c = open_cache(0);
    layer_blobcache_key k = key_of("A", "f"), k2 = key_of("B", "f");
    unsigned char *a = make_bytes(5000, 110), *got;
    layer_blobcache_lookup lk, fl;
    layer_blobcache_info info = {0};
    size_t n;
    int rc;

    fill_key(c, &k, a, 5000);
    ck_assert_int_eq(layer_blobcache_get(&lk, c, &k, 0), 0);
    ck_assert_int_eq(layer_blobcache_get(&fl, c, &k2, 0), 0);
    layer_blobcache_free(c); /* the owner lets go first */
    got = read_all(lk.reader, &n, &rc);
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    ck_assert_uint_eq(n, 5000);
    ck_assert(memcmp(got, a, 5000) == 0);
    layer_blobcache_reader_free(lk.reader);
    ck_assert_int_eq(layer_blobcache_write(fl.writer, a, 100), 0);
    info.size = 100;
    ck_assert_int_eq(layer_blobcache_commit(fl.writer, &info), 0);
    free(got);
    free(a);
}
END_TEST

/* Lines another process appended count too: past 2 * records + 1024
 * lines the journal is rewritten while the cache runs (after the next
 * commit), and a second handle follows the new file. */
START_TEST(test_journal_is_rewritten_while_running)
{
    layer_blobcache *c = open_cache(0), *other = open_cache(0);
    layer_blobcache_key ka = key_of("A", "f"), kb = key_of("B", "f");
    unsigned char *a = make_bytes(600, 130), *b = make_bytes(700, 131);
    char *jpath = fx_path(top, "cache/journal"), *text, line[128];
    layer_blobcache_stats st;
    size_t n, lines = 0;
    FILE *f;

    fill_key(c, &ka, a, 600);
    f = fopen(jpath, "ab");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 1100; i++) {
        int len = snprintf(line, sizeof(line), "E sha256:%064x", i);

        fprintf(f, "%s %08lx\n", line,
                crc32(0L, (const unsigned char *)line, (unsigned)len));
    }
    fclose(f);
    fill_key(c, &kb, b, 700);
    text = journal_text(&n);
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    free(text);
    ck_assert_uint_eq(lines, 3); /* the header and the two records */
    expect_hit(other, &ka, a, 600);
    expect_hit(other, &kb, b, 700);
    layer_blobcache_free(other);
    layer_blobcache_free(c);
    c = open_cache(0);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.torn_lines, 0);
    ck_assert_uint_eq(st.dropped_records, 0);
    ck_assert_uint_eq(st.removed_orphans, 0);
    ck_assert_uint_eq(st.records, 2);
    layer_blobcache_free(c);
    free(jpath);
    free(a);
    free(b);
}
END_TEST

/* One pass over most of the API; any step may fail (it runs with
 * allocations failing). Returns 0 when every step succeeded. */
static int api_pass(const unsigned char *p, size_t n)
{
    layer_blobcache_opts o = {.max_bytes = 2 * n};
    layer_blobcache_key k = key_of("L a", "F"), k2 = key_of("L2", "F");
    layer_blobcache_lookup fl = {0}, wl = {0}, hl = {0};
    layer_blobcache_info info = {0};
    layer_blobcache_reader *r = NULL;
    layer_blobcache_item *items = NULL;
    layer_blobcache *c = NULL;
    unsigned char buf[512];
    size_t m, nitems = 0;
    int rc;

    if ((rc = layer_blobcache_open(&c, cdir, &o)) < 0)
        return rc;
    if ((rc = layer_blobcache_get(&fl, c, &k, 0)) < 0)
        goto out;
    ck_assert_int_eq(fl.role, LAYER_BLOBCACHE_FILL);
    if ((rc = layer_blobcache_get(&wl, c, &k, 0)) < 0) {
        layer_blobcache_abort(fl.writer, "no memory");
        goto out;
    }
    if ((rc = layer_blobcache_write(fl.writer, p, n)) < 0) {
        layer_blobcache_abort(fl.writer, "no memory");
        goto out;
    }
    info.size = n;
    if ((rc = layer_blobcache_commit(fl.writer, &info)) < 0)
        goto out;
    while ((rc = layer_blobcache_read(&m, wl.reader, buf, sizeof(buf), 0)) == 0)
        ;
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    if ((rc = layer_blobcache_get(&hl, c, &k, 0)) < 0)
        goto out;
    if (hl.role != LAYER_BLOBCACHE_HIT) {
        /* the commit could not index the blob (no memory): journaled,
         * not in memory */
        ck_assert_int_eq(hl.role, LAYER_BLOBCACHE_FILL);
        layer_blobcache_abort(hl.writer, "test");
        hl.writer = NULL;
        rc = LAYER_ENOMEM;
        goto out;
    }
    if ((rc = layer_blobcache_reader_info(&info, hl.reader)) < 0 ||
        (rc = layer_blobcache_open_digest(&r, c, info.digest)) < 0 ||
        (rc = layer_blobcache_list(&items, &nitems, c)) < 0)
        goto out;
    layer_blobcache_reader_free(r);
    r = NULL;
    /* a second fill, over the cap with the first: an eviction */
    if ((rc = layer_blobcache_get(&fl, c, &k2, 0)) < 0)
        goto out;
    if ((rc = layer_blobcache_write(fl.writer, p, n / 2 + 1)) < 0) {
        layer_blobcache_abort(fl.writer, "no memory");
        goto out;
    }
    info.size = n / 2 + 1;
    info.digest[0] = '\0';
    rc = layer_blobcache_commit(fl.writer, &info);
out:
    layer_blobcache_list_free(items, nitems);
    layer_blobcache_reader_free(r);
    layer_blobcache_reader_free(hl.reader);
    layer_blobcache_reader_free(wl.reader);
    layer_blobcache_free(c);
    return rc;
}

START_TEST(test_allocation_failures_leave_a_sound_cache)
{
    unsigned char *p = make_bytes(3000, 120);
    layer_blobcache_key k = key_of("L a", "F");
    int rc = -1, n;

    for (n = 1; n < 400 && rc != 0; n++) {
        layer_blobcache *c;
        layer_blobcache_lookup lk;
        layer_blobcache_stats st;

        fx_rm_rf(cdir);
        layer_alloc_fail_after((unsigned long)n);
        rc = api_pass(p, 3000);
        layer_alloc_fail_after(0);
        if (rc == 0)
            break;
        /* whatever failed, the directory opens cleanly: no leftover
         * fill, and the key is either there or not */
        if (access(cdir, F_OK) != 0)
            continue;
        ck_assert_int_eq(count_tmp(), 0);
        c = open_cache(0);
        layer_blobcache_stats_get(&st, c);
        ck_assert_uint_eq(st.removed_temps, 0);
        ck_assert_uint_eq(st.dropped_records, 0);
        rc = layer_blobcache_get(&lk, c, &k, LAYER_BLOBCACHE_GET_NOFILL);
        ck_assert(rc == 0 || rc == LAYER_ENOTFOUND);
        if (rc == 0) {
            layer_blobcache_reader_free(lk.reader);
            expect_hit(c, &k, p, 3000);
        }
        rc = -1;
        layer_blobcache_free(c);
    }
    ck_assert_msg(rc == 0, "the pass never succeeded (%s)", layer_error_last());
    ck_assert_int_gt(n, 10); /* failures were injected on the way */
    free(p);
}
END_TEST

typedef struct release_arg {
    layer_blobcache_reader *r;
    pthread_barrier_t *go;
    const unsigned char *want;
    size_t got;
    int rc;
    bool same;
} release_arg;

static void *release_thread(void *p)
{
    release_arg *a = p;
    unsigned char *got;

    pthread_barrier_wait(a->go);
    got = read_all(a->r, &a->got, &a->rc);
    a->same = a->got == 1000 && memcmp(got, a->want, 1000) == 0;
    free(got);
    layer_blobcache_reader_free(a->r); /* evicts, reaps, maybe the last */
    return NULL;
}

/* Readers released on several threads after the owner let go: their
 * releases evict (the cache is over its cap, every blob held) and the
 * last one frees the cache. */
START_TEST(test_readers_released_on_threads_after_the_owner)
{
    layer_blobcache *c = open_cache(2000);
    pthread_barrier_t go;
    pthread_t t[4];
    release_arg a[4];
    unsigned char *p[4];
    layer_blobcache_stats st;

    pthread_barrier_init(&go, NULL, 4);
    for (int i = 0; i < 4; i++) {
        char layer[8];
        layer_blobcache_key k;
        layer_blobcache_lookup fl, wl;
        layer_blobcache_info info = {0};

        snprintf(layer, sizeof(layer), "L%d", i);
        k = key_of(layer, "f");
        p[i] = make_bytes(1000, 140 + (unsigned)i);
        ck_assert_int_eq(layer_blobcache_get(&fl, c, &k, 0), 0);
        ck_assert_int_eq(layer_blobcache_get(&wl, c, &k, 0), 0);
        ck_assert_int_eq(wl.role, LAYER_BLOBCACHE_WAIT);
        ck_assert_int_eq(layer_blobcache_write(fl.writer, p[i], 1000), 0);
        info.size = 1000;
        ck_assert_int_eq(layer_blobcache_commit(fl.writer, &info), 0);
        a[i] = (release_arg){.r = wl.reader, .go = &go, .want = p[i]};
    }
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.bytes, 4000); /* all held: over the cap */
    ck_assert_uint_eq(st.evictions, 0);
    layer_blobcache_free(c);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, release_thread, &a[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].rc, LAYER_ITEROVER);
        ck_assert(a[i].same);
    }
    pthread_barrier_destroy(&go);
    c = open_cache(2000);
    layer_blobcache_stats_get(&st, c);
    ck_assert_uint_eq(st.blobs, 2);
    ck_assert_uint_eq(st.bytes, 2000);
    ck_assert_uint_eq(st.removed_orphans, 0);
    layer_blobcache_free(c);
    for (int i = 0; i < 4; i++)
        free(p[i]);
}
END_TEST

static Suite *blobcache_suite(void)
{
    Suite *s = suite_create("blobcache");
    TCase *tc = tcase_create("fill");
    TCase *fl = tcase_create("flight");
    TCase *ev = tcase_create("eviction");
    TCase *cr = tcase_create("crash");
    TCase *rg = tcase_create("range");
    TCase *ho = tcase_create("hostile");
    TCase *pr = tcase_create("processes");
    TCase *al = tcase_create("alloc");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_fill_then_hit);
    tcase_add_test(tc, test_info_of_a_compressed_fill);
    tcase_add_test(tc, test_commit_checks_the_bytes);
    tcase_add_test(tc, test_given_digest);
    tcase_add_test(tc, test_bypass_and_bad_keys);
    tcase_add_test(tc, test_keys_round_trip_through_the_journal);
    tcase_add_test(tc, test_new_fingerprint_is_a_new_key);
    tcase_add_test(tc, test_same_bytes_under_two_keys_are_one_blob);
    tcase_add_test(tc, test_new_cache_dir_is_private);
    tcase_add_test(tc, test_handles_outlive_the_cache);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(fl, setup, teardown);
    tcase_add_test(fl, test_concurrent_first_requests_make_one_filler);
    tcase_add_test(fl, test_abort_wakes_waiters_and_a_retry_fills);
    tcase_add_test(fl, test_notify_protocol);
    tcase_add_test(fl, test_blob_larger_than_the_cap_is_served_not_kept);
    suite_add_tcase(s, fl);

    tcase_add_checked_fixture(ev, setup, teardown);
    tcase_add_test(ev, test_eviction_is_lru_and_spares_readers);
    tcase_add_test(ev, test_last_use_survives_a_reopen);
    tcase_add_test(ev, test_readers_released_on_threads_after_the_owner);
    suite_add_tcase(s, ev);

    tcase_add_checked_fixture(cr, setup, teardown);
    tcase_add_test(cr, test_reopen_removes_dead_fills);
    tcase_add_test(cr, test_kill_after_commit_keeps_the_blob);
    tcase_add_test(cr, test_reopen_drops_records_of_bad_blobs);
    tcase_add_test(cr, test_torn_and_corrupt_journal_lines_are_ignored);
    tcase_add_test(cr, test_unknown_journal_version_is_refused);
    suite_add_tcase(s, cr);

    tcase_add_checked_fixture(rg, setup, teardown);
    tcase_add_test(rg, test_range_reads);
    suite_add_tcase(s, rg);

    tcase_add_checked_fixture(ho, setup, teardown);
    tcase_add_test(ho, test_symlink_where_a_blob_belongs_is_not_followed);
    tcase_add_test(ho, test_non_regular_file_where_a_blob_belongs);
    tcase_add_test(ho, test_hostile_layout_is_refused);
    suite_add_tcase(s, ho);

    tcase_add_checked_fixture(pr, setup, teardown);
    tcase_add_test(pr, test_two_handles_see_each_other);
    tcase_add_test(pr, test_journal_is_rewritten_while_running);
    suite_add_tcase(s, pr);

    /* some twenty passes, each opening a cache and committing twice
     * (a dozen fsyncs): seconds on a busy disk */
    tcase_add_checked_fixture(al, setup, teardown);
    tcase_set_timeout(al, 60);
    tcase_add_test(al, test_allocation_failures_leave_a_sound_cache);
    suite_add_tcase(s, al);
    return s;
}

int main(void)
{
    int failed;
    SRunner *sr = srunner_create(blobcache_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
