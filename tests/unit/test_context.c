/*
 * Tests for api/context.c: the context copies its options, starts not
 * ready with no export running, and its export slots never pass the cap,
 * not even when several threads take and give them back at once (the
 * same run under ThreadSanitizer checks the atomics themselves); the
 * export memory reservations stop at their cap with the count, and the
 * stream slots stop at theirs.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "api/api.h"
#include "layer/error.h"

#define THREADS 4
#define ROUNDS  20000

START_TEST(test_a_new_context_is_not_ready_and_runs_nothing)
{
    api_context_opts opts;
    api_context *ctx = NULL;

    memset(&opts, 0, sizeof(opts));
    opts.max_exports = 2;
    ck_assert_int_eq(api_context_new(&ctx, &opts), 0);
    ck_assert(!api_is_ready(ctx));
    ck_assert_uint_eq(api_exports_active(ctx), 0);
    api_set_ready(ctx, true);
    ck_assert(api_is_ready(ctx));
    api_set_ready(ctx, false);
    ck_assert(!api_is_ready(ctx));
    api_context_free(ctx);
    api_context_free(NULL);
}
END_TEST

START_TEST(test_slots_stop_at_the_cap_and_come_back)
{
    api_context_opts opts;
    api_context *ctx = NULL;

    memset(&opts, 0, sizeof(opts));
    opts.max_exports = 2;
    ck_assert_int_eq(api_context_new(&ctx, &opts), 0);
    ck_assert_int_eq(api_exports_acquire(ctx, 0), 0);
    ck_assert_int_eq(api_exports_acquire(ctx, 0), 0);
    ck_assert_int_eq(api_exports_acquire(ctx, 0), LAYER_EBUSY);
    /* a refused acquire takes nothing */
    ck_assert_uint_eq(api_exports_active(ctx), 2);
    api_exports_release(ctx, 0);
    ck_assert_uint_eq(api_exports_active(ctx), 1);
    ck_assert_int_eq(api_exports_acquire(ctx, 0), 0);
    api_exports_release(ctx, 0);
    api_exports_release(ctx, 0);
    ck_assert_uint_eq(api_exports_active(ctx), 0);
    api_context_free(ctx);
}
END_TEST

START_TEST(test_no_cap_counts_every_export)
{
    api_context_opts opts;
    api_context *ctx = NULL;

    memset(&opts, 0, sizeof(opts));
    ck_assert_int_eq(api_context_new(&ctx, &opts), 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(api_exports_acquire(ctx, 0), 0);
    ck_assert_uint_eq(api_exports_active(ctx), 1000);
    for (int i = 0; i < 1000; i++)
        api_exports_release(ctx, 0);
    ck_assert_uint_eq(api_exports_active(ctx), 0);
    api_context_free(ctx);
}
END_TEST

START_TEST(test_export_memory_is_reserved_and_capped)
{
    api_context_opts opts;
    api_context *ctx = NULL;

    memset(&opts, 0, sizeof(opts));
    opts.max_exports = 10;
    opts.max_export_memory = 100;
    ck_assert_int_eq(api_context_new(&ctx, &opts), 0);
    ck_assert_int_eq(api_exports_acquire(ctx, 60), 0);
    ck_assert_uint_eq(api_exports_memory(ctx), 60);
    /* 60 + 41 > 100: refused, nothing taken; 40 still fits */
    ck_assert_int_eq(api_exports_acquire(ctx, 41), LAYER_EBUSY);
    ck_assert_uint_eq(api_exports_active(ctx), 1);
    ck_assert_uint_eq(api_exports_memory(ctx), 60);
    ck_assert_int_eq(api_exports_acquire(ctx, 40), 0);
    ck_assert_uint_eq(api_exports_memory(ctx), 100);
    ck_assert_int_eq(api_exports_acquire(ctx, 1), LAYER_EBUSY);
    /* an estimate of 0 (a level the export will refuse) still counts */
    ck_assert_int_eq(api_exports_acquire(ctx, 0), 0);
    ck_assert_uint_eq(api_exports_active(ctx), 3);
    api_exports_release(ctx, 0);
    api_exports_release(ctx, 60);
    ck_assert_uint_eq(api_exports_memory(ctx), 40);
    /* one export larger than the whole cap never runs */
    ck_assert_int_eq(api_exports_acquire(ctx, 101), LAYER_EBUSY);
    api_exports_release(ctx, 40);
    ck_assert_int_eq(api_exports_acquire(ctx, 101), LAYER_EBUSY);
    ck_assert_uint_eq(api_exports_active(ctx), 0);
    ck_assert_uint_eq(api_exports_memory(ctx), 0);
    api_context_free(ctx);
}
END_TEST

START_TEST(test_stream_slots_stop_at_the_cap)
{
    api_context_opts opts;
    api_context *ctx = NULL;

    memset(&opts, 0, sizeof(opts));
    opts.max_streams = 3;
    ck_assert_int_eq(api_context_new(&ctx, &opts), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(api_streams_acquire(ctx), 0);
    ck_assert_int_eq(api_streams_acquire(ctx), LAYER_EBUSY);
    ck_assert_uint_eq(api_streams_active(ctx), 3);
    api_streams_release(ctx);
    ck_assert_int_eq(api_streams_acquire(ctx), 0);
    for (int i = 0; i < 3; i++)
        api_streams_release(ctx);
    ck_assert_uint_eq(api_streams_active(ctx), 0);
    api_context_free(ctx);
}
END_TEST

typedef struct racer {
    api_context *ctx;
    atomic_uint *holding; /* slots held right now, counted by the racers */
    unsigned most;        /* the most this racer saw held at once */
    unsigned taken;
} racer;

static void *race(void *arg)
{
    racer *r = arg;

    for (int i = 0; i < ROUNDS; i++) {
        unsigned now;

        if (api_exports_acquire(r->ctx, 0) != 0)
            continue;
        r->taken++;
        now = atomic_fetch_add(r->holding, 1) + 1;
        if (now > r->most)
            r->most = now;
        atomic_fetch_sub(r->holding, 1);
        api_exports_release(r->ctx, 0);
    }
    return NULL;
}

START_TEST(test_racing_threads_never_pass_the_cap)
{
    api_context_opts opts;
    api_context *ctx = NULL;
    pthread_t t[THREADS];
    racer r[THREADS];
    atomic_uint holding;
    unsigned taken = 0;

    atomic_init(&holding, 0);
    memset(&opts, 0, sizeof(opts));
    opts.max_exports = 2;
    ck_assert_int_eq(api_context_new(&ctx, &opts), 0);
    for (int i = 0; i < THREADS; i++) {
        r[i] = (racer){.ctx = ctx, .holding = &holding};
        ck_assert_int_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_uint_le(r[i].most, 2);
        taken += r[i].taken;
    }
    ck_assert_uint_gt(taken, 0);
    ck_assert_uint_eq(api_exports_active(ctx), 0);
    api_context_free(ctx);
}
END_TEST

static Suite *context_suite(void)
{
    Suite *s = suite_create("context");
    TCase *tc = tcase_create("context");

    tcase_add_test(tc, test_a_new_context_is_not_ready_and_runs_nothing);
    tcase_add_test(tc, test_slots_stop_at_the_cap_and_come_back);
    tcase_add_test(tc, test_no_cap_counts_every_export);
    tcase_add_test(tc, test_racing_threads_never_pass_the_cap);
    tcase_add_test(tc, test_export_memory_is_reserved_and_capped);
    tcase_add_test(tc, test_stream_slots_stop_at_the_cap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(context_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
