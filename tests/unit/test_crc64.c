/*
 * CRC-64/ISO (lib/crc64.c): the values Go's hash/crc64 gives, the stored
 * big-endian form, continuing a sum over pieces, and agreement of the
 * PCLMULQDQ and table paths on every length up to a few KiB at every
 * alignment. Prints the speed of both paths (one line, for reports).
 *
 * Where the expected values come from: CRC-64/GO-ISO's catalogue check
 * value for "123456789"; the payloads tar-split stored for "new\n" and
 * "café\n" in real container-storage layers; and, for the lengths around
 * the folding block sizes, `tar-split disasm` (Go) over a tar of files
 * whose byte i is (i * 7 + (i >> 8)) & 0xff.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../lib/crc64_int.h"
#include "layer/crc64.h"

static unsigned char *pattern(size_t n)
{
    unsigned char *b = malloc(n ? n : 1);

    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 7 + (i >> 8));
    return b;
}

START_TEST(test_check_value_is_go_iso)
{
    ck_assert_uint_eq(layer_crc64_update(0, "123456789", 9),
                      0xb90956c775a41001ULL);
}
END_TEST

START_TEST(test_empty_input_keeps_the_sum)
{
    ck_assert_uint_eq(layer_crc64_update(0, NULL, 0), 0);
    ck_assert_uint_eq(layer_crc64_update(0x1234, NULL, 0), 0x1234);
    ck_assert_uint_eq(layer_crc64__update_table(0x1234, NULL, 0), 0x1234);
}
END_TEST

START_TEST(test_stored_form_matches_tar_split_payloads)
{
    /* "YVqy3bAAAAA=" and "Yf15cAQXQAA=" decoded */
    static const unsigned char new_sum[8] = {0x61, 0x5a, 0xb2, 0xdd,
                                             0xb0, 0x00, 0x00, 0x00};
    static const unsigned char cafe_sum[8] = {0x61, 0xfd, 0x79, 0x70,
                                              0x04, 0x17, 0x40, 0x00};
    unsigned char out[LAYER_CRC64_SIZE];

    layer_crc64_put(out, layer_crc64_update(0, "new\n", 4));
    ck_assert_mem_eq(out, new_sum, 8);
    layer_crc64_put(out, layer_crc64_update(0, "caf\xc3\xa9\n", 6));
    ck_assert_mem_eq(out, cafe_sum, 8);
    ck_assert_uint_eq(layer_crc64_get(cafe_sum), 0x61fd797004174000ULL);
}
END_TEST

START_TEST(test_lengths_around_the_block_sizes_match_go)
{
    static const struct {
        size_t len;
        uint64_t crc;
    } v[] = {
        {1, 0x6f90000000000000ULL},      {7, 0x572b3fa387dbef90ULL},
        {8, 0x80772b3fa387dbefULL},      {15, 0x73ceaa256acb9400ULL},
        {16, 0x39d3ceaa256acb94ULL},     {63, 0x6a51326221e912c2ULL},
        {64, 0x21aa51326221e912ULL},     {65, 0xc3d1aa51326221e9ULL},
        {127, 0x075e5ed633f1ed08ULL},    {128, 0x2f275e5ed633f1edULL},
        {1000, 0x56032513afe8356cULL},   {4096, 0xfc9e6752ead44f45ULL},
        {100003, 0x6acb39a02652502dULL},
    };
    unsigned char *b = pattern(100003);

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        ck_assert_msg(layer_crc64_update(0, b, v[i].len) == v[i].crc,
                      "length %zu", v[i].len);
        ck_assert_msg(layer_crc64__update_table(0, b, v[i].len) == v[i].crc,
                      "table, length %zu", v[i].len);
    }
    free(b);
}
END_TEST

START_TEST(test_pieces_give_the_same_sum)
{
    unsigned char *b = pattern(100003);
    uint64_t whole = layer_crc64_update(0, b, 100003), sum = 0;
    size_t off = 0, step = 1;

    while (off < 100003) {
        size_t n = step < 100003 - off ? step : 100003 - off;

        sum = layer_crc64_update(sum, b + off, n);
        off += n;
        step = step * 3 + 1; /* 1, 4, 13, 40, ...: every size class */
    }
    ck_assert_uint_eq(sum, whole);
    free(b);
}
END_TEST

START_TEST(test_clmul_and_table_agree_everywhere)
{
    size_t cap = 4200 + 16;
    unsigned char *b = malloc(cap);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;

    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < cap; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        b[i] = (unsigned char)seed;
    }
    for (size_t len = 0; len <= 4200; len++) {
        for (size_t off = 0; off < 16; off++) {
            uint64_t init = len * 0x100000001b3ULL;
            uint64_t t = layer_crc64__update_table(init, b + off, len);
            uint64_t c = layer_crc64__update_clmul(init, b + off, len);
            uint64_t v = layer_crc64__update_vclmul(init, b + off, len);

            if (t != c || t != v)
                ck_abort_msg("length %zu offset %zu: table %016llx, "
                             "pclmul %016llx, %s %016llx",
                             len, off, (unsigned long long)t,
                             (unsigned long long)c, layer_crc64_method(),
                             (unsigned long long)v);
        }
    }
    free(b);
}
END_TEST

START_TEST(test_put_and_get_round_trip)
{
    unsigned char out[LAYER_CRC64_SIZE];

    layer_crc64_put(out, 0x0102030405060708ULL);
    ck_assert_uint_eq(out[0], 1);
    ck_assert_uint_eq(out[7], 8);
    ck_assert_uint_eq(layer_crc64_get(out), 0x0102030405060708ULL);
}
END_TEST

START_TEST(test_method_is_named)
{
    const char *m = layer_crc64_method();

    ck_assert(strcmp(m, "vpclmul") == 0 || strcmp(m, "pclmul") == 0 ||
              strcmp(m, "slicing-by-8") == 0);
    ck_assert_int_eq(strcmp(m, "vpclmul") == 0,
                     layer_crc64__have_vclmul() != 0);
    ck_assert_int_eq(strcmp(m, "slicing-by-8") != 0,
                     layer_crc64__have_clmul() != 0);
}
END_TEST

static double mb_per_s(uint64_t (*f)(uint64_t, const void *, size_t),
                       const unsigned char *b, size_t n, int rounds,
                       uint64_t *sum)
{
    struct timespec t0, t1;
    uint64_t c = 0;
    double secs;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < rounds; r++)
        c = f(c, b, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    *sum = c;
    return secs > 0 ? (double)n * rounds / secs / 1e6 : 0;
}

/* 8 x 8 MiB through each path: the sums agree, and the speeds are
 * printed for the record (not asserted: machines and sanitizers vary). */
START_TEST(test_speed_of_both_paths)
{
    size_t n = 8u << 20;
    unsigned char *b = pattern(n);
    uint64_t st, sc, sv;
    double table = mb_per_s(layer_crc64__update_table, b, n, 8, &st);
    double fast = mb_per_s(layer_crc64__update_clmul, b, n, 8, &sc);
    double wide = mb_per_s(layer_crc64__update_vclmul, b, n, 8, &sv);

    ck_assert_uint_eq(st, sc);
    ck_assert_uint_eq(st, sv);
    printf("crc64: in use %s; vpclmul%s %.0f MB/s, pclmul%s %.0f MB/s, "
           "slicing-by-8 %.0f MB/s\n",
           layer_crc64_method(),
           layer_crc64__have_vclmul() ? "" : " (not here: pclmul)", wide,
           layer_crc64__have_clmul() ? "" : " (not here: tables)", fast, table);
    free(b);
}
END_TEST

static Suite *crc64_suite(void)
{
    Suite *s = suite_create("crc64");
    TCase *tc = tcase_create("crc64");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_check_value_is_go_iso);
    tcase_add_test(tc, test_empty_input_keeps_the_sum);
    tcase_add_test(tc, test_stored_form_matches_tar_split_payloads);
    tcase_add_test(tc, test_lengths_around_the_block_sizes_match_go);
    tcase_add_test(tc, test_pieces_give_the_same_sum);
    tcase_add_test(tc, test_clmul_and_table_agree_everywhere);
    tcase_add_test(tc, test_put_and_get_round_trip);
    tcase_add_test(tc, test_method_is_named);
    tcase_add_test(tc, test_speed_of_both_paths);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(crc64_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
