/*
 * Tests for api/blobs.c: the fingerprint of a layer and what moves it;
 * a blob without a cache is a bypass whose digests are its bytes'; with
 * one, a fill, then a hit (by key and by digest, with a range); a second
 * request during a fill waits on it and reads the same bytes; a fill
 * whose client leaves goes on for a waiter and is dropped without one;
 * mutable layers bypass; HEAD (NOFILL) of a missing blob; a describe
 * answers through the notify protocol; the export slot cap.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../api/blobs_int.h"
#include "api_harness.h"
#include "fixture.h"
#include "layer/digest.h"
#include "layer/error.h"

#define BIG (3u << 20)

static char *root;
static char *cache_dir;
static ah_env env;
static layer_blobcache *cache;

static void make_store(void)
{
    unsigned char *data = malloc(BIG);
    char *fs;

    ck_assert_ptr_nonnull(data);
    srand(7);
    for (size_t i = 0; i < BIG; i++)
        data[i] = (unsigned char)(rand() >> 7);
    root = fx_tmpdir();
    fx_mkdir(root, "store", 0755);
    fs = fx_path(root, "store");
    free(ah_layer(fs, "big", "{\"kind\": \"diff\"}"));
    free(ah_layer(fs, "small", "{\"kind\": \"diff\"}"));
    free(ah_layer(fs, "live", "{\"kind\": \"diff\", \"mutable\": true}"));
    free(ah_layer(fs, "redir", "{\"kind\": \"diff\"}"));
    free(fs);
    fx_file_bytes(root, "store/big/fs/data", data, BIG, 0644);
    /* the export fails at z, after 3 MiB: a fill cut by the export */
    fx_file_bytes(root, "store/redir/fs/a", data, BIG, 0644);
    fx_mkdir(root, "store/redir/fs/z", 0755);
    fx_xattr(root, "store/redir/fs/z", "trusted.overlay.redirect",
             "/elsewhere");
    fx_file(root, "store/small/fs/hello", "hello\n", 0644);
    fx_file(root, "store/live/fs/file", "live\n", 0644);
    free(data);
}

static void setup_with(bool with_cache, unsigned max_exports)
{
    api_context_opts opts;
    char *store;

    make_store();
    cache_dir = fx_path(root, "cache");
    cache = NULL;
    if (with_cache)
        ck_assert_int_eq(layer_blobcache_open(&cache, cache_dir, NULL), 0);
    memset(&opts, 0, sizeof(opts));
    opts.cache = cache;
    opts.max_exports = max_exports;
    store = fx_path(root, "store");
    ah_open(&env, store, &opts);
    free(store);
}

static void setup_cache(void)
{
    setup_with(true, 0);
}

static void setup_nocache(void)
{
    setup_with(false, 0);
}

static void setup_one_slot(void)
{
    setup_with(true, 1);
}

static void teardown(void)
{
    ah_close(&env);
    layer_blobcache_free(cache);
    fx_rm_rf(root);
    free(root);
    free(cache_dir);
}

static void spec_of(api_blob_spec *spec, const char *id, layer_compression c)
{
    memset(spec, 0, sizeof(*spec));
    ck_assert_int_eq(layer_store_resolve(&spec->info, env.store, id), 0);
    spec->tar = LAYER_EXPORT_TAR_CANONICAL;
    spec->compression = c;
}

/* ---- reading with the notify protocol ---- */

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool woken;
} waiter;

static void wake(void *arg)
{
    waiter *w = arg;

    pthread_mutex_lock(&w->lock);
    w->woken = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void wait_for(waiter *w)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&w->lock);
    while (!w->woken)
        ck_assert_int_eq(pthread_cond_timedwait(&w->cond, &w->lock, &until), 0);
    w->woken = false;
    pthread_mutex_unlock(&w->lock);
}

/* Read up to max bytes (SIZE_MAX: to the end) into *buf (appended);
 * returns the last code. */
static int read_some(api_blob *b, char **buf, size_t *len, size_t max)
{
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    char chunk[65536];
    size_t n;
    int rc;

    api_blob__set_notify(b, wake, &w);
    for (;;) {
        if (*len >= max) {
            rc = 0;
            break;
        }
        rc = api_blob__read(&n, b, chunk, sizeof(chunk));
        if (rc == LAYER_EAGAIN) {
            wait_for(&w);
            continue;
        }
        if (rc < 0)
            break;
        ck_assert_uint_gt(n, 0);
        *buf = realloc(*buf, *len + n + 1);
        ck_assert_ptr_nonnull(*buf);
        memcpy(*buf + *len, chunk, n);
        *len += n;
    }
    api_blob__set_notify(b, NULL, NULL);
    return rc;
}

static void digest_of(char out[LAYER_DIGEST_STR_SIZE], const char *buf,
                      size_t len)
{
    layer_digest d = LAYER_DIGEST_INIT;

    ck_assert_int_eq(layer_digest_init(&d), 0);
    ck_assert_int_eq(layer_digest_update(&d, buf, len), 0);
    ck_assert_int_eq(layer_digest_final(out, &d), 0);
    layer_digest_dispose(&d);
}

/* Open id's blob and read it whole; checks the digests. */
static layer_blobcache_role fetch(const char *id, layer_compression c,
                                  char **buf, size_t *len,
                                  layer_blobcache_info *info)
{
    api_blob_spec spec;
    api_blob *b = NULL;
    layer_blobcache_role role;
    char d[LAYER_DIGEST_STR_SIZE];

    spec_of(&spec, id, c);
    ck_assert_int_eq(api_blob__open(&b, env.ctx, &spec, NULL, 0), 0);
    ck_assert_ptr_null(spec.info);
    role = api_blob__role(b);
    *buf = NULL;
    *len = 0;
    ck_assert_int_eq(read_some(b, buf, len, SIZE_MAX), LAYER_ITEROVER);
    ck_assert_int_eq(api_blob__info(info, b), 0);
    digest_of(d, *buf, *len);
    ck_assert_str_eq(info->digest, d);
    ck_assert_uint_eq(info->size, *len);
    api_blob__free(b);
    return role;
}

/* Wait (5 s at most) until id's blob is kept: a NOFILL open is a hit. */
static void wait_kept(const char *id, layer_compression c)
{
    for (int i = 0; i < 500; i++) {
        api_blob_spec spec;
        api_blob *b = NULL;
        bool hit;

        spec_of(&spec, id, c);
        if (api_blob__open(&b, env.ctx, &spec, NULL, API_BLOB_NOFILL) == 0) {
            hit = api_blob__role(b) == LAYER_BLOBCACHE_HIT;
            api_blob__free(b);
            if (hit)
                return;
        }
        usleep(10000);
    }
    ck_abort_msg("blob %s never kept", id);
}

/* ---- fingerprints ---- */

START_TEST(test_fingerprint_moves_with_the_layer)
{
    layer_info *info = NULL;
    char a[API_BLOB_FINGERPRINT_SIZE], b[API_BLOB_FINGERPRINT_SIZE];

    ck_assert_int_eq(layer_store_resolve(&info, env.store, "small"), 0);
    ck_assert_int_eq(api_blob__fingerprint(a, info, LAYER_EXPORT_TAR_CANONICAL),
                     0);
    ck_assert_int_eq(api_blob__fingerprint(b, info, LAYER_EXPORT_TAR_CANONICAL),
                     0);
    ck_assert_str_eq(a, b);
    ck_assert_int_eq(strncmp(a, "sha256:", 7), 0);
    /* no recorded diff ID: no original tar */
    ck_assert_int_eq(api_blob__fingerprint(b, info, LAYER_EXPORT_TAR_ORIGINAL),
                     LAYER_EINVALID);
    layer_info_free(info);
    /* a new entry at the top of the layer moves it */
    usleep(20000);
    fx_file(root, "store/small/fs/new", "x", 0644);
    ck_assert_int_eq(layer_store_resolve(&info, env.store, "small"), 0);
    ck_assert_int_eq(api_blob__fingerprint(b, info, LAYER_EXPORT_TAR_CANONICAL),
                     0);
    ck_assert_str_ne(a, b);
    layer_info_free(info);
}
END_TEST

/* ---- without a cache ---- */

START_TEST(test_without_a_cache_every_blob_bypasses)
{
    layer_blobcache_info i1, i2;
    char *b1 = NULL, *b2 = NULL;
    size_t n1, n2;
    api_blob *b = NULL;

    ck_assert_int_eq(fetch("small", LAYER_COMPRESSION_GZIP, &b1, &n1, &i1),
                     LAYER_BLOBCACHE_BYPASS);
    ck_assert_int_eq(fetch("small", LAYER_COMPRESSION_GZIP, &b2, &n2, &i2),
                     LAYER_BLOBCACHE_BYPASS);
    ck_assert_str_eq(i1.digest, i2.digest);
    ck_assert_str_eq(i1.media_type,
                     "application/vnd.oci.image.layer.v1.tar+gzip");
    ck_assert_int_eq(api_blob__open_digest(&b, env.ctx, i1.digest, NULL),
                     LAYER_ENOTFOUND);
    free(b1);
    free(b2);
}
END_TEST

/* ---- with a cache ---- */

START_TEST(test_fill_then_hit_by_key_digest_and_range)
{
    layer_blobcache_info i1, i2, i3;
    char *b1 = NULL, *b2 = NULL, *b3 = NULL;
    size_t n1, n2, n3 = 0;
    api_blob *b = NULL;

    ck_assert_int_eq(fetch("big", LAYER_COMPRESSION_GZIP, &b1, &n1, &i1),
                     LAYER_BLOBCACHE_FILL);
    wait_kept("big", LAYER_COMPRESSION_GZIP);
    ck_assert_int_eq(fetch("big", LAYER_COMPRESSION_GZIP, &b2, &n2, &i2),
                     LAYER_BLOBCACHE_HIT);
    ck_assert_uint_eq(n1, n2);
    ck_assert(memcmp(b1, b2, n1) == 0);
    ck_assert_str_eq(i1.diff_id, i2.diff_id);
    /* by digest, a range */
    ck_assert_int_eq(api_blob__open_digest(&b, env.ctx, i1.digest, NULL), 0);
    ck_assert_int_eq(api_blob__role(b), LAYER_BLOBCACHE_HIT);
    ck_assert_int_eq(api_blob__info(&i3, b), 0);
    ck_assert_str_eq(i3.digest, i1.digest);
    ck_assert_int_eq(api_blob__range(b, 1000, 5000), 0);
    ck_assert_int_eq(read_some(b, &b3, &n3, SIZE_MAX), LAYER_ITEROVER);
    ck_assert_uint_eq(n3, 5000);
    ck_assert(memcmp(b3, b1 + 1000, 5000) == 0);
    /* after the first read, no range */
    ck_assert_int_eq(api_blob__range(b, 0, 1), LAYER_EINVALID);
    api_blob__free(b);
    b = NULL;
    ck_assert_int_eq(api_blob__open_digest(&b, env.ctx, "sha256:nope", NULL),
                     LAYER_EINVALID);
    ck_assert_int_eq(
        api_blob__open_digest(&b, env.ctx,
                              "sha256:00000000000000000000000000000000000000"
                              "00000000000000000000000000",
                              NULL),
        LAYER_ENOTFOUND);
    free(b1);
    free(b2);
    free(b3);
}
END_TEST

START_TEST(test_a_second_request_waits_on_the_fill)
{
    api_blob_spec s1, s2;
    api_blob *fill = NULL, *wait = NULL;
    layer_blobcache_info i1, i2;
    char *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;

    spec_of(&s1, "big", LAYER_COMPRESSION_NONE);
    spec_of(&s2, "big", LAYER_COMPRESSION_NONE);
    ck_assert_int_eq(api_blob__open(&fill, env.ctx, &s1, NULL, 0), 0);
    ck_assert_int_eq(api_blob__role(fill), LAYER_BLOBCACHE_FILL);
    ck_assert_int_eq(api_blob__open(&wait, env.ctx, &s2, NULL, 0), 0);
    ck_assert_int_eq(api_blob__role(wait), LAYER_BLOBCACHE_WAIT);
    /* a WAIT is no HIT: no range */
    ck_assert_int_eq(api_blob__range(wait, 0, 10), LAYER_EINVALID);
    ck_assert_int_eq(api_blob__info(&i2, wait), LAYER_EAGAIN);
    ck_assert_int_eq(read_some(fill, &b1, &n1, SIZE_MAX), LAYER_ITEROVER);
    ck_assert_int_eq(read_some(wait, &b2, &n2, SIZE_MAX), LAYER_ITEROVER);
    ck_assert_uint_eq(n1, n2);
    ck_assert(memcmp(b1, b2, n1) == 0);
    ck_assert_int_eq(api_blob__info(&i1, fill), 0);
    ck_assert_int_eq(api_blob__info(&i2, wait), 0);
    ck_assert_str_eq(i1.digest, i2.digest);
    api_blob__free(fill);
    api_blob__free(wait);
    free(b1);
    free(b2);
}
END_TEST

START_TEST(test_a_fill_goes_on_for_its_waiter)
{
    api_blob_spec s1, s2;
    api_blob *fill = NULL, *wait = NULL;
    layer_blobcache_info i2, i3;
    char *b1 = NULL, *b2 = NULL, *b3 = NULL;
    size_t n1 = 0, n2 = 0, n3;

    spec_of(&s1, "big", LAYER_COMPRESSION_GZIP);
    spec_of(&s2, "big", LAYER_COMPRESSION_GZIP);
    ck_assert_int_eq(api_blob__open(&fill, env.ctx, &s1, NULL, 0), 0);
    ck_assert_int_eq(api_blob__open(&wait, env.ctx, &s2, NULL, 0), 0);
    ck_assert_int_eq(api_blob__role(wait), LAYER_BLOBCACHE_WAIT);
    ck_assert_int_eq(read_some(fill, &b1, &n1, 100000), 0);
    api_blob__free(fill); /* the client went away */
    ck_assert_int_eq(read_some(wait, &b2, &n2, SIZE_MAX), LAYER_ITEROVER);
    ck_assert_int_eq(api_blob__info(&i2, wait), 0);
    api_blob__free(wait);
    ck_assert(memcmp(b1, b2, n1) == 0);
    wait_kept("big", LAYER_COMPRESSION_GZIP);
    ck_assert_int_eq(fetch("big", LAYER_COMPRESSION_GZIP, &b3, &n3, &i3),
                     LAYER_BLOBCACHE_HIT);
    ck_assert_str_eq(i2.digest, i3.digest);
    free(b1);
    free(b2);
    free(b3);
}
END_TEST

START_TEST(test_an_abandoned_fill_keeps_nothing)
{
    api_blob_spec s;
    api_blob *fill = NULL;
    layer_blobcache_stats st;
    char *b1 = NULL;
    size_t n1 = 0;

    spec_of(&s, "big", LAYER_COMPRESSION_ZSTD);
    ck_assert_int_eq(api_blob__open(&fill, env.ctx, &s, NULL, 0), 0);
    ck_assert_int_eq(api_blob__role(fill), LAYER_BLOBCACHE_FILL);
    ck_assert_int_eq(read_some(fill, &b1, &n1, 10000), 0);
    api_blob__free(fill);
    layer_blobcache_stats_get(&st, cache);
    ck_assert_uint_eq(st.aborts, 1);
    ck_assert_uint_eq(st.commits, 0);
    ck_assert_uint_eq(st.blobs, 0);
    /* the next one fills anew */
    spec_of(&s, "big", LAYER_COMPRESSION_ZSTD);
    ck_assert_int_eq(api_blob__open(&fill, env.ctx, &s, NULL, 0), 0);
    ck_assert_int_eq(api_blob__role(fill), LAYER_BLOBCACHE_FILL);
    api_blob__free(fill);
    free(b1);
}
END_TEST

START_TEST(test_mutable_layers_bypass_and_head_fills_nothing)
{
    layer_blobcache_info i;
    layer_blobcache_stats st;
    api_blob_spec s;
    api_blob *b = NULL;
    char *buf = NULL;
    size_t n;

    ck_assert_int_eq(fetch("live", LAYER_COMPRESSION_NONE, &buf, &n, &i),
                     LAYER_BLOBCACHE_BYPASS);
    free(buf);
    ck_assert_int_eq(fetch("live", LAYER_COMPRESSION_NONE, &buf, &n, &i),
                     LAYER_BLOBCACHE_BYPASS);
    free(buf);
    layer_blobcache_stats_get(&st, cache);
    ck_assert_uint_eq(st.bypasses, 2);
    ck_assert_uint_eq(st.blobs, 0);
    spec_of(&s, "small", LAYER_COMPRESSION_NONE);
    ck_assert_int_eq(api_blob__open(&b, env.ctx, &s, NULL, API_BLOB_NOFILL),
                     LAYER_ENOTFOUND);
    ck_assert_ptr_null(s.info);
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
}
END_TEST

START_TEST(test_describe_answers_through_notify)
{
    api_blob_spec s;
    api_blob_describe *d = NULL;
    layer_blobcache_info i1, i2;
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    char *buf = NULL;
    size_t n;
    int rc;

    spec_of(&s, "big", LAYER_COMPRESSION_GZIP);
    ck_assert_int_eq(api_blob__describe(&d, env.ctx, &s, NULL), 0);
    ck_assert_ptr_null(s.info);
    api_blob_describe__set_notify(d, wake, &w);
    while ((rc = api_blob_describe__result(&i1, d)) == LAYER_EAGAIN)
        wait_for(&w);
    ck_assert_int_eq(rc, 0);
    api_blob_describe__set_notify(d, NULL, NULL);
    api_blob_describe__free(d);
    ck_assert_str_eq(i1.media_type,
                     "application/vnd.oci.image.layer.v1.tar+gzip");
    /* the describe kept the blob: the stream is a hit with its bytes */
    ck_assert_int_eq(fetch("big", LAYER_COMPRESSION_GZIP, &buf, &n, &i2),
                     LAYER_BLOBCACHE_HIT);
    ck_assert_str_eq(i1.digest, i2.digest);
    ck_assert_str_eq(i1.diff_id, i2.diff_id);
    ck_assert_uint_eq(i1.size, n);
    free(buf);
    /* and a describe of a kept blob answers at once */
    spec_of(&s, "big", LAYER_COMPRESSION_GZIP);
    ck_assert_int_eq(api_blob__describe(&d, env.ctx, &s, NULL), 0);
    ck_assert_int_eq(api_blob_describe__result(&i1, d), 0);
    ck_assert_str_eq(i1.digest, i2.digest);
    api_blob_describe__free(d);
}
END_TEST

/* A describe whose own fill the export's error cuts answers with that
 * error (not as a cancelled wait), and keeps nothing; again the same. */
START_TEST(test_describe_of_a_failing_export_gives_its_error)
{
    api_blob_spec s;
    api_blob_describe *d = NULL;
    layer_blobcache_info info;
    layer_blobcache_stats st;
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    int rc;

    for (int i = 0; i < 2; i++) {
        spec_of(&s, "redir", LAYER_COMPRESSION_GZIP);
        rc = api_blob__describe(&d, env.ctx, &s, NULL);
        if (rc == 0) {
            api_blob_describe__set_notify(d, wake, &w);
            while ((rc = api_blob_describe__result(&info, d)) == LAYER_EAGAIN)
                wait_for(&w);
            api_blob_describe__set_notify(d, NULL, NULL);
            api_blob_describe__free(d);
        }
        ck_assert_msg(rc == LAYER_EUNSUPPORTED, "round %d: %d (%s)", i, rc,
                      layer_error_last());
        ck_assert_ptr_nonnull(strstr(layer_error_last(), "overlay redirect"));
    }
    layer_blobcache_stats_get(&st, cache);
    ck_assert_uint_eq(st.commits, 0);
    ck_assert_uint_eq(st.blobs, 0);
}
END_TEST

START_TEST(test_without_a_slot_only_a_hit_or_a_wait_serves)
{
    api_blob_spec s1, s2, s3;
    api_blob *fill = NULL, *other = NULL, *wait = NULL;

    spec_of(&s1, "big", LAYER_COMPRESSION_NONE);
    ck_assert_int_eq(api_blob__open(&fill, env.ctx, &s1, NULL, 0), 0);
    ck_assert_uint_eq(api_exports_active(env.ctx), 1);
    /* another key needs an export: refused */
    spec_of(&s2, "small", LAYER_COMPRESSION_NONE);
    ck_assert_int_eq(api_blob__open(&other, env.ctx, &s2, NULL, 0),
                     LAYER_EBUSY);
    ck_assert_ptr_null(s2.info);
    /* the same key joins the fill */
    spec_of(&s3, "big", LAYER_COMPRESSION_NONE);
    ck_assert_int_eq(api_blob__open(&wait, env.ctx, &s3, NULL, 0), 0);
    ck_assert_int_eq(api_blob__role(wait), LAYER_BLOBCACHE_WAIT);
    api_blob__free(wait);
    api_blob__free(fill); /* nobody waits now: aborted, the slot is back */
    ck_assert_uint_eq(api_exports_active(env.ctx), 0);
}
END_TEST

static Suite *blobs_suite(void)
{
    Suite *s = suite_create("blobs");
    TCase *c;

    c = tcase_create("cache");
    tcase_add_checked_fixture(c, setup_cache, teardown);
    tcase_set_timeout(c, 120);
    tcase_add_test(c, test_fingerprint_moves_with_the_layer);
    tcase_add_test(c, test_fill_then_hit_by_key_digest_and_range);
    tcase_add_test(c, test_a_second_request_waits_on_the_fill);
    tcase_add_test(c, test_a_fill_goes_on_for_its_waiter);
    tcase_add_test(c, test_an_abandoned_fill_keeps_nothing);
    tcase_add_test(c, test_mutable_layers_bypass_and_head_fills_nothing);
    tcase_add_test(c, test_describe_answers_through_notify);
    tcase_add_test(c, test_describe_of_a_failing_export_gives_its_error);
    suite_add_tcase(s, c);

    c = tcase_create("nocache");
    tcase_add_checked_fixture(c, setup_nocache, teardown);
    tcase_set_timeout(c, 60);
    tcase_add_test(c, test_without_a_cache_every_blob_bypasses);
    suite_add_tcase(s, c);

    c = tcase_create("slots");
    tcase_add_checked_fixture(c, setup_one_slot, teardown);
    tcase_set_timeout(c, 60);
    tcase_add_test(c, test_without_a_slot_only_a_hit_or_a_wait_serves);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(blobs_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
