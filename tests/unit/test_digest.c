/*
 * SHA-256 digests: the FIPS 180-2 vectors, agreement with sha256sum on a
 * file, and that feeding the bytes in pieces or restarting a digest gives
 * the same result as one call.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layer/digest.h"
#include "layer/error.h"

#define EMPTY_SHA256                                                           \
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_SHA256                                                             \
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

START_TEST(test_empty_input_has_known_digest)
{
    char out[LAYER_DIGEST_STR_SIZE];

    ck_assert_int_eq(layer_digest_buffer(out, NULL, 0), 0);
    ck_assert_str_eq(out, EMPTY_SHA256);
    ck_assert_uint_eq(strlen(out), LAYER_DIGEST_STR_SIZE - 1);
}
END_TEST

START_TEST(test_abc_has_known_digest)
{
    char out[LAYER_DIGEST_STR_SIZE];

    ck_assert_int_eq(layer_digest_buffer(out, "abc", 3), 0);
    ck_assert_str_eq(out, ABC_SHA256);
}
END_TEST

START_TEST(test_pieces_and_restart_give_the_same_digest)
{
    layer_digest d = LAYER_DIGEST_INIT;
    char one[LAYER_DIGEST_STR_SIZE], pieces[LAYER_DIGEST_STR_SIZE];
    char again[LAYER_DIGEST_STR_SIZE];
    static unsigned char buf[100003];

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 7 + (i >> 8));
    ck_assert_int_eq(layer_digest_buffer(one, buf, sizeof(buf)), 0);
    ck_assert_int_eq(layer_digest_init(&d), 0);
    for (size_t off = 0; off < sizeof(buf); off += 997) {
        size_t n = sizeof(buf) - off < 997 ? sizeof(buf) - off : 997;
        ck_assert_int_eq(layer_digest_update(&d, buf + off, n), 0);
    }
    ck_assert_int_eq(layer_digest_final(pieces, &d), 0);
    ck_assert_str_eq(one, pieces);
    /* a finished digest restarts cleanly */
    ck_assert_int_eq(layer_digest_init(&d), 0);
    ck_assert_int_eq(layer_digest_update(&d, "abc", 3), 0);
    ck_assert_int_eq(layer_digest_final(again, &d), 0);
    ck_assert_str_eq(again, ABC_SHA256);
    layer_digest_dispose(&d);
    layer_digest_dispose(&d);
}
END_TEST

START_TEST(test_matches_sha256sum_of_a_file)
{
    char path[] = "/tmp/test_digest_XXXXXX";
    char cmd[128], line[256], want[LAYER_DIGEST_STR_SIZE];
    char got[LAYER_DIGEST_STR_SIZE];
    layer_digest d = LAYER_DIGEST_INIT;
    static unsigned char buf[1 << 20];
    FILE *p;
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(layer_digest_init(&d), 0);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = (unsigned char)(rand() >> 7);
        ck_assert_int_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
        ck_assert_int_eq(layer_digest_update(&d, buf, sizeof(buf)), 0);
    }
    close(fd);
    ck_assert_int_eq(layer_digest_final(got, &d), 0);
    layer_digest_dispose(&d);

    snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), p));
    pclose(p);
    unlink(path);
    snprintf(want, sizeof(want), "sha256:%.64s", line);
    ck_assert_str_eq(got, want);
}
END_TEST

START_TEST(test_use_before_init_is_an_error)
{
    layer_digest d = LAYER_DIGEST_INIT;
    char out[LAYER_DIGEST_STR_SIZE];

    ck_assert_int_eq(layer_digest_update(&d, "x", 1), LAYER_ERROR);
    ck_assert_int_eq(layer_digest_final(out, &d), LAYER_ERROR);
    layer_digest_dispose(&d);
}
END_TEST

static Suite *digest_suite(void)
{
    Suite *s = suite_create("digest");
    TCase *tc = tcase_create("sha256");

    tcase_add_test(tc, test_empty_input_has_known_digest);
    tcase_add_test(tc, test_abc_has_known_digest);
    tcase_add_test(tc, test_pieces_and_restart_give_the_same_digest);
    tcase_add_test(tc, test_matches_sha256sum_of_a_file);
    tcase_add_test(tc, test_use_before_init_is_an_error);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(digest_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
