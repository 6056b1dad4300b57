/*
 * Tests for the digest memo (api/digest_memo.c): records come back as
 * put, a put replaces the record of its key, drop forgets one, a full
 * memo forgets its least recently used record (a get counts as a use),
 * a NULL memo is inert, and threads can share one.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../../api/api_int.h"
#include "api/digest_memo.h"

static api_digest_rec rec(const char *key, unsigned n)
{
    api_digest_rec r;

    memset(&r, 0, sizeof(r));
    snprintf(r.key, sizeof(r.key), "%s", key);
    snprintf(r.digest, sizeof(r.digest), "sha256:%064u", n);
    snprintf(r.diff_id, sizeof(r.diff_id), "sha256:%064u", n + 1);
    snprintf(r.fingerprint, sizeof(r.fingerprint), "sha256:%064u", n + 2);
    r.size = n;
    return r;
}

START_TEST(test_a_record_comes_back_as_put_and_is_replaced_by_its_key)
{
    api_digest_memo *m = NULL;
    api_digest_rec a = rec("layer\nnone\n0", 7), b = rec("layer\nnone\n0", 9);
    api_digest_rec got;

    ck_assert_int_eq(api_digest_memo_new(&m, 4), 0);
    ck_assert(!api_digest_memo__get(m, a.key, &got));
    api_digest_memo__put(m, &a);
    ck_assert(api_digest_memo__get(m, a.key, &got));
    ck_assert_str_eq(got.digest, a.digest);
    ck_assert_str_eq(got.diff_id, a.diff_id);
    ck_assert_str_eq(got.fingerprint, a.fingerprint);
    ck_assert_uint_eq(got.size, 7);
    api_digest_memo__put(m, &b);
    ck_assert(api_digest_memo__get(m, a.key, &got));
    ck_assert_uint_eq(got.size, 9);
    ck_assert(!api_digest_memo__get(m, "layer\ngzip\n0", &got));
    api_digest_memo__drop(m, a.key);
    ck_assert(!api_digest_memo__get(m, a.key, &got));
    api_digest_memo_free(m);
}
END_TEST

START_TEST(test_a_full_memo_forgets_the_least_recently_used)
{
    api_digest_memo *m = NULL;
    api_digest_rec got;
    char key[16];

    ck_assert_int_eq(api_digest_memo_new(&m, 3), 0);
    for (unsigned i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        api_digest_rec r = rec(key, i);
        api_digest_memo__put(m, &r);
    }
    /* k0 used again: k1 is now the oldest */
    ck_assert(api_digest_memo__get(m, "k0", &got));
    api_digest_rec r3 = rec("k3", 3);
    api_digest_memo__put(m, &r3);
    ck_assert(api_digest_memo__get(m, "k0", &got));
    ck_assert(!api_digest_memo__get(m, "k1", &got));
    ck_assert(api_digest_memo__get(m, "k2", &got));
    ck_assert(api_digest_memo__get(m, "k3", &got));
    ck_assert_uint_eq(got.size, 3);
    /* a dropped slot is reused before anything is evicted */
    api_digest_memo__drop(m, "k0");
    api_digest_rec r4 = rec("k4", 4);
    api_digest_memo__put(m, &r4);
    ck_assert(api_digest_memo__get(m, "k2", &got));
    ck_assert(api_digest_memo__get(m, "k3", &got));
    ck_assert(api_digest_memo__get(m, "k4", &got));
    api_digest_memo_free(m);
}
END_TEST

START_TEST(test_a_null_memo_keeps_nothing)
{
    api_digest_rec r = rec("k", 1), got;

    api_digest_memo__put(NULL, &r);
    ck_assert(!api_digest_memo__get(NULL, "k", &got));
    api_digest_memo__drop(NULL, "k");
    api_digest_memo_free(NULL);
}
END_TEST

static void *hammer(void *arg)
{
    api_digest_memo *m = arg;
    api_digest_rec got;
    char key[16];

    for (unsigned i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%u", i % 40);
        api_digest_rec r = rec(key, i % 40);
        if (i % 3 == 0)
            api_digest_memo__put(m, &r);
        else if (i % 7 == 0)
            api_digest_memo__drop(m, key);
        else if (api_digest_memo__get(m, key, &got) &&
                 (strcmp(got.key, key) != 0 || got.size != i % 40))
            return (void *)1;
    }
    return NULL;
}

START_TEST(test_threads_share_one_memo)
{
    api_digest_memo *m = NULL;
    pthread_t t[4];
    void *res;

    ck_assert_int_eq(api_digest_memo_new(&m, 16), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, m), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(t[i], &res), 0);
        ck_assert_ptr_null(res); /* no torn or mismatched record */
    }
    api_digest_memo_free(m);
}
END_TEST

static Suite *memo_suite(void)
{
    Suite *s = suite_create("digest_memo");
    TCase *tc = tcase_create("memo");

    tcase_add_test(tc,
                   test_a_record_comes_back_as_put_and_is_replaced_by_its_key);
    tcase_add_test(tc, test_a_full_memo_forgets_the_least_recently_used);
    tcase_add_test(tc, test_a_null_memo_keeps_nothing);
    tcase_add_test(tc, test_threads_share_one_memo);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(memo_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
