/*
 * Tests for lib/alloc.c: the allocation wrapper reports out-of-memory as
 * LAYER_ENOMEM with a message, refuses sizes that overflow, grows arrays
 * by doubling up to a cap, and its test hook fails exactly the n-th
 * allocation, counted across every thread.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "layer/alloc.h"
#include "layer/error.h"

#define THREADS 4
#define ROUNDS  5000

START_TEST(test_overflowing_sizes_are_refused_with_enomem)
{
    layer_error_clear();
    ck_assert_ptr_null(layer_trycalloc(SIZE_MAX / 2, 4));
    ck_assert_int_eq(layer_error_last_code(), LAYER_ENOMEM);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "out of memory"));
    layer_error_clear();
    ck_assert_ptr_null(layer_tryarray(NULL, SIZE_MAX / 2, 4));
    ck_assert_int_eq(layer_error_last_code(), LAYER_ENOMEM);
}
END_TEST

START_TEST(test_arrays_grow_by_doubling_up_to_the_cap)
{
    void *p = NULL;
    size_t cap = 0;

    ck_assert_int_eq(layer_trygrow(&p, &cap, 5, 4, 4, 100), 0);
    ck_assert_uint_eq(cap, 8);
    memset(p, 0xab, 8 * 4);
    /* enough already: nothing moves */
    ck_assert_int_eq(layer_trygrow(&p, &cap, 8, 4, 4, 100), 0);
    ck_assert_uint_eq(cap, 8);
    ck_assert_int_eq(layer_trygrow(&p, &cap, 9, 4, 4, 100), 0);
    ck_assert_uint_eq(cap, 16);
    ck_assert_uint_eq(((unsigned char *)p)[31], 0xab);
    /* doubling stops at the cap */
    ck_assert_int_eq(layer_trygrow(&p, &cap, 90, 4, 4, 100), 0);
    ck_assert_uint_eq(cap, 100);
    /* a failure leaves the array as it was */
    layer_alloc_fail_after(1);
    ck_assert_int_eq(layer_trygrow(&p, &cap, 100, 4, 4, 100), 0);
    ck_assert_int_eq(layer_trygrow(&p, &cap, 101, 4, 4, 200), LAYER_ENOMEM);
    layer_alloc_fail_after(0);
    ck_assert_uint_eq(cap, 100);
    ck_assert_uint_eq(((unsigned char *)p)[31], 0xab);
    layer_free(p);
}
END_TEST

START_TEST(test_the_nth_allocation_fails_once)
{
    void *p[3];

    layer_alloc_fail_after(3);
    p[0] = layer_trymalloc(8);
    p[1] = layer_trystrdup("abc");
    p[2] = layer_trycalloc(2, 8);
    ck_assert_ptr_nonnull(p[0]);
    ck_assert_ptr_nonnull(p[1]);
    ck_assert_ptr_null(p[2]);
    ck_assert_int_eq(layer_error_last_code(), LAYER_ENOMEM);
    /* once only: the hook is off again */
    p[2] = layer_trymalloc(8);
    ck_assert_ptr_nonnull(p[2]);
    for (int i = 0; i < 3; i++)
        layer_free(p[i]);
}
END_TEST

static atomic_uint failures;

static void *allocate_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        void *q = layer_trymalloc(16);

        if (q == NULL)
            atomic_fetch_add(&failures, 1);
        layer_free(q);
    }
    return NULL;
}

START_TEST(test_the_countdown_is_shared_by_every_thread)
{
    pthread_t t[THREADS];

    atomic_init(&failures, 0);
    /* well within the THREADS * ROUNDS allocations to come */
    layer_alloc_fail_after(ROUNDS);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, allocate_many, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(atomic_load(&failures), 1);
}
END_TEST

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("alloc");

    tcase_add_test(tc, test_overflowing_sizes_are_refused_with_enomem);
    tcase_add_test(tc, test_arrays_grow_by_doubling_up_to_the_cap);
    tcase_add_test(tc, test_the_nth_allocation_fails_once);
    tcase_add_test(tc, test_the_countdown_is_shared_by_every_thread);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(alloc_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
