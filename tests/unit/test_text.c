/*
 * Tests of lib/text.c: UTF-8 validation (every 1- to 3-byte sequence and
 * the 4-byte edges, against an independent decoder), hex, base64 (RFC
 * 4648 vectors), RFC 3339 times (before 1970, the year 0000 and 9999
 * limits, fractions of 0 to 9 digits) and the capped buffer (its cap,
 * sticky failures, overflow-sized requests, allocation failures).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/text.h"

/* ---- UTF-8 ---- */

/*
 * The oracle: decode one sequence by the bit layout alone, then apply the
 * three rules separately (shortest form, no surrogates, <= U+10FFFF).
 * Returns the length of a valid sequence or 0.
 */
static size_t oracle_utf8(const unsigned char *s, size_t len)
{
    size_t n;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
        (n == 4 && cp < 0x10000))
        return 0; /* overlong */
    if (cp >= 0xd800 && cp <= 0xdfff)
        return 0; /* surrogate */
    if (cp > 0x10ffff)
        return 0;
    return n;
}

START_TEST(utf8_every_short_sequence_matches_the_oracle)
{
    unsigned char s[4];

    /* All 1-, 2- and 3-byte prefixes, each with a fourth byte that
     * continues nothing. */
    for (unsigned a = 0; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            for (unsigned c = 0; c < 256; c++) {
                s[0] = (unsigned char)a;
                s[1] = (unsigned char)b;
                s[2] = (unsigned char)c;
                s[3] = 0x00;
                /* Plain comparisons: a Check assertion per case would
                 * cost more than the 16M cases themselves. */
                if (layer_text_utf8_len(s, 3) != oracle_utf8(s, 3) ||
                    (c == 0 && layer_text_utf8_len(s, 2) != oracle_utf8(s, 2)))
                    ck_abort_msg("%02x %02x %02x: %zu, want %zu", a, b, c,
                                 layer_text_utf8_len(s, 3), oracle_utf8(s, 3));
            }
        }
    }
}
END_TEST

START_TEST(utf8_four_byte_sequences_match_the_oracle)
{
    static const unsigned char lasts[] = {0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xff};
    unsigned char s[4];

    for (unsigned a = 0xf0; a <= 0xff; a++) {
        for (unsigned b = 0; b < 256; b++) {
            for (unsigned c = 0; c < 256; c++) {
                for (size_t d = 0; d < sizeof(lasts); d++) {
                    s[0] = (unsigned char)a;
                    s[1] = (unsigned char)b;
                    s[2] = (unsigned char)c;
                    s[3] = lasts[d];
                    /* one byte short is never valid */
                    if (layer_text_utf8_len(s, 4) != oracle_utf8(s, 4) ||
                        (oracle_utf8(s, 4) == 4 &&
                         layer_text_utf8_len(s, 3) != 0))
                        ck_abort_msg("%02x %02x %02x %02x", a, b, c, lasts[d]);
                }
            }
        }
    }
}
END_TEST

START_TEST(utf8_edges_by_name)
{
    static const struct {
        const char *bytes;
        size_t len;
        size_t want;
    } cases[] = {
        {"A", 1, 1},
        {"\xc2\x80", 2, 2},         /* U+0080 */
        {"\xc0\xaf", 2, 0},         /* overlong '/' */
        {"\xc1\xbf", 2, 0},         /* overlong */
        {"\xe0\x9f\xbf", 3, 0},     /* overlong U+07FF */
        {"\xe0\xa0\x80", 3, 3},     /* U+0800 */
        {"\xed\x9f\xbf", 3, 3},     /* U+D7FF */
        {"\xed\xa0\x80", 3, 0},     /* U+D800, a surrogate */
        {"\xed\xbf\xbf", 3, 0},     /* U+DFFF, a surrogate */
        {"\xee\x80\x80", 3, 3},     /* U+E000 */
        {"\xef\xbf\xbf", 3, 3},     /* U+FFFF */
        {"\xf0\x8f\xbf\xbf", 4, 0}, /* overlong U+FFFF */
        {"\xf0\x90\x80\x80", 4, 4}, /* U+10000 */
        {"\xf0\x9f\x98\x80", 4, 4}, /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", 4, 4}, /* U+10FFFF */
        {"\xf4\x90\x80\x80", 4, 0}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4, 0}, /* never a lead byte */
        {"\x80", 1, 0},             /* stray continuation */
        {"\xe2\x82", 2, 0},         /* truncated */
        {"\xf0\x9f\x98", 3, 0},     /* truncated */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(layer_text_utf8_len(cases[i].bytes, cases[i].len) ==
                          cases[i].want,
                      "case %zu", i);
}
END_TEST

START_TEST(utf8_valid_checks_whole_strings)
{
    ck_assert(layer_text_utf8_valid("", 0));
    ck_assert(layer_text_utf8_valid("plain ascii", 11));
    ck_assert(layer_text_utf8_valid("a\0b", 3)); /* NUL is U+0000 */
    ck_assert(layer_text_utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
    ck_assert(!layer_text_utf8_valid("caf\xc3", 4)); /* cut at the end */
    ck_assert(!layer_text_utf8_valid("a\xffz", 3));
    ck_assert(!layer_text_utf8_valid("\xed\xa0\x80\xed\xb0\x80", 6));
}
END_TEST

/* ---- hex and base64 ---- */

START_TEST(hex_round_trips_and_refuses_non_digits)
{
    const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    unsigned char back[6];
    char hex[13];

    layer_text_hex_encode(hex, bytes, sizeof(bytes));
    ck_assert_str_eq(hex, "00017f80abff");
    ck_assert(layer_text_hex_decode(back, hex, 6, 0));
    ck_assert_mem_eq(back, bytes, 6);
    ck_assert(layer_text_hex_decode(back, "00017F80ABFF", 6, 0));
    ck_assert_mem_eq(back, bytes, 6);
    /* W3C Trace Context wants lower case only */
    ck_assert(
        !layer_text_hex_decode(back, "00017F80ABFF", 6, LAYER_TEXT_HEX_LOWER));
    ck_assert(layer_text_hex_decode(back, hex, 6, LAYER_TEXT_HEX_LOWER));
    ck_assert(!layer_text_hex_decode(back, "0g", 1, 0));
    ck_assert(!layer_text_hex_decode(back, "0", 1, 0)); /* stops at NUL */
    ck_assert_int_eq(layer_text_hex_value('9', 0), 9);
    ck_assert_int_eq(layer_text_hex_value('F', 0), 15);
    ck_assert_int_eq(layer_text_hex_value('F', LAYER_TEXT_HEX_LOWER), -1);
    ck_assert_int_eq(layer_text_hex_value('/', 0), -1);
    ck_assert_int_eq(layer_text_hex_value(':', 0), -1);
    ck_assert_int_eq(layer_text_hex_value('@', 0), -1);
    ck_assert_int_eq(layer_text_hex_value('G', 0), -1);
    layer_text_hex_encode(hex, bytes, 0);
    ck_assert_str_eq(hex, "");
}
END_TEST

START_TEST(base64_matches_rfc4648_vectors)
{
    static const char *const in[] = {"",     "f",     "fo",    "foo",
                                     "foob", "fooba", "foobar"};
    static const char *const out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char buf[16];

    for (size_t i = 0; i < 7; i++) {
        size_t n = layer_text_base64(buf, in[i], strlen(in[i]));

        ck_assert_uint_eq(n, LAYER_TEXT_BASE64_LEN(strlen(in[i])));
        ck_assert_uint_eq(n, strlen(out[i]));
        ck_assert_mem_eq(buf, out[i], n);
    }
    ck_assert_uint_eq(layer_text_base64(buf, "\xff\xfe\x00", 3), 4);
    ck_assert_mem_eq(buf, "//4A", 4);
}
END_TEST

/* ---- RFC 3339 ---- */

START_TEST(rfc3339_formats_every_era_with_nanoseconds)
{
    static const struct {
        int64_t sec;
        uint32_t nsec;
        const char *want;
    } cases[] = {
        {0, 0, "1970-01-01T00:00:00.000000000Z"},
        {-1, 5, "1969-12-31T23:59:59.000000005Z"},
        {-86401, 0, "1969-12-30T23:59:59.000000000Z"},
        {-2208988800, 0, "1900-01-01T00:00:00.000000000Z"},  /* not leap */
        {-62135596800, 0, "0001-01-01T00:00:00.000000000Z"}, /* Go's zero */
        {-62167219200, 5, "0000-01-01T00:00:00.000000005Z"}, /* year 0 */
        {951782400, 0, "2000-02-29T00:00:00.000000000Z"},
        {1583020800, 0, "2020-03-01T00:00:00.000000000Z"},
        {1700000000, 123456789, "2023-11-14T22:13:20.123456789Z"},
        {4102444800, 0, "2100-01-01T00:00:00.000000000Z"},
        {253402300799, 999999999, "9999-12-31T23:59:59.999999999Z"},
    };
    char buf[LAYER_TEXT_RFC3339_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(
            layer_text_rfc3339(buf, cases[i].sec, cases[i].nsec, 9), 30);
        ck_assert_str_eq(buf, cases[i].want);
    }
}
END_TEST

START_TEST(rfc3339_fraction_digits_cut_without_rounding)
{
    char buf[LAYER_TEXT_RFC3339_MAX];

    ck_assert_int_eq(layer_text_rfc3339(buf, 1700000000, 999999999, 0), 20);
    ck_assert_str_eq(buf, "2023-11-14T22:13:20Z");
    ck_assert_int_eq(layer_text_rfc3339(buf, 1700000000, 999999999, 3), 24);
    ck_assert_str_eq(buf, "2023-11-14T22:13:20.999Z");
    ck_assert_int_eq(layer_text_rfc3339(buf, 1700000000, 7000000, 3), 24);
    ck_assert_str_eq(buf, "2023-11-14T22:13:20.007Z");
    ck_assert_int_eq(layer_text_rfc3339(buf, 1700000000, 123456789, 1), 22);
    ck_assert_str_eq(buf, "2023-11-14T22:13:20.1Z");
}
END_TEST

START_TEST(rfc3339_refuses_what_it_cannot_write)
{
    static const int64_t bad_secs[] = {253402300800, /* year 10000 */
                                       -62167219201, /* year -1 */
                                       INT64_MAX, INT64_MIN, INT64_MIN + 1};
    char buf[LAYER_TEXT_RFC3339_MAX];

    for (size_t i = 0; i < sizeof(bad_secs) / sizeof(bad_secs[0]); i++) {
        memset(buf, 'x', sizeof(buf));
        ck_assert_int_eq(layer_text_rfc3339(buf, bad_secs[i], 0, 9), -1);
        ck_assert_str_eq(buf, "");
    }
    ck_assert_int_eq(layer_text_rfc3339(buf, 0, 1000000000u, 9), -1);
    ck_assert_int_eq(layer_text_rfc3339(buf, 0, UINT32_MAX, 9), -1);
    ck_assert_int_eq(layer_text_rfc3339(buf, 0, 0, 10), -1);
}
END_TEST

/* ---- the capped buffer ---- */

START_TEST(buf_appends_up_to_its_cap_and_no_further)
{
    layer_text_buf b = LAYER_TEXT_BUF_INIT(10, "the test text");

    ck_assert_ptr_null(b.p);
    ck_assert_int_eq(layer_text_buf_adds(&b, "abc"), 0);
    ck_assert_int_eq(layer_text_buf_addf(&b, "%d-%s", 42, "xy"), 0);
    ck_assert_str_eq(b.p, "abc42-xy");
    ck_assert_int_eq(layer_text_buf_add(&b, "!!", 2), 0); /* exactly 10 */
    ck_assert_uint_eq(b.len, 10);
    ck_assert_int_eq(layer_text_buf_add(&b, "z", 1), LAYER_ETOOBIG);
    ck_assert_str_eq(layer_error_last(),
                     "the test text is larger than 10 bytes");
    ck_assert_str_eq(b.p, "abc42-xy!!"); /* kept, still terminated */
    ck_assert_uint_le(b.alloc, 11);
    /* sticky: even an empty append reports the failure */
    ck_assert_int_eq(layer_text_buf_add(&b, "", 0), LAYER_ETOOBIG);
    ck_assert_int_eq(b.err, LAYER_ETOOBIG);
    /* cutting back forgets it */
    layer_text_buf_truncate(&b, 3);
    ck_assert_int_eq(b.err, 0);
    ck_assert_str_eq(b.p, "abc");
    ck_assert_int_eq(layer_text_buf_addf(&b, "%s", "1234567"), 0);
    ck_assert_int_eq(layer_text_buf_addf(&b, "%s", "8"), LAYER_ETOOBIG);
    layer_text_buf_dispose(&b);
    ck_assert_ptr_null(b.p);
    layer_text_buf_dispose(NULL);
}
END_TEST

START_TEST(buf_refuses_sizes_that_would_overflow)
{
    layer_text_buf b = LAYER_TEXT_BUF_INIT(SIZE_MAX - 1, "huge");

    ck_assert_int_eq(layer_text_buf_adds(&b, "abc"), 0);
    ck_assert_int_eq(layer_text_buf_reserve(&b, SIZE_MAX), LAYER_ETOOBIG);
    layer_text_buf_truncate(&b, 3);
    ck_assert_int_eq(layer_text_buf_reserve(&b, SIZE_MAX - 3), LAYER_ETOOBIG);
    ck_assert_str_eq(b.p, "abc");
    layer_text_buf_dispose(&b);
}
END_TEST

START_TEST(buf_grows_for_long_formats_and_detaches)
{
    layer_text_buf b = LAYER_TEXT_BUF_INIT(1 << 20, "text");
    char *long_arg = malloc(5000), *p;
    size_t len = 0;

    ck_assert_ptr_nonnull(long_arg);
    memset(long_arg, 'q', 4999);
    long_arg[4999] = '\0';
    ck_assert_int_eq(layer_text_buf_addf(&b, "<%s>", long_arg), 0);
    ck_assert_uint_eq(b.len, 5001);
    ck_assert_int_eq(b.p[0], '<');
    ck_assert_int_eq(b.p[5000], '>');
    ck_assert_int_eq(b.p[5001], '\0');
    p = layer_text_buf_detach(&b, &len);
    ck_assert_uint_eq(len, 5001);
    ck_assert_uint_eq(strlen(p), 5001);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    /* the buffer is usable again */
    ck_assert_int_eq(layer_text_buf_adds(&b, "again"), 0);
    ck_assert_str_eq(b.p, "again");
    layer_free(p);
    layer_text_buf_dispose(&b);
    free(long_arg);
}
END_TEST

START_TEST(buf_out_of_memory_sticks)
{
    layer_text_buf b = LAYER_TEXT_BUF_INIT(1000, "text");
    size_t len = 1;

    layer_alloc_fail_after(1);
    ck_assert_int_eq(layer_text_buf_adds(&b, "x"), LAYER_ENOMEM);
    layer_alloc_fail_after(0);
    ck_assert_int_eq(layer_text_buf_adds(&b, "x"), LAYER_ENOMEM);
    layer_text_buf_truncate(&b, 0); /* does not forget ENOMEM */
    ck_assert_int_eq(layer_text_buf_adds(&b, "x"), LAYER_ENOMEM);
    ck_assert_ptr_null(layer_text_buf_detach(&b, &len));
    ck_assert_uint_eq(len, 0);
    /* detach resets the buffer */
    ck_assert_int_eq(layer_text_buf_adds(&b, "x"), 0);
    layer_text_buf_dispose(&b);
}
END_TEST

START_TEST(buf_with_a_lowered_cap_refuses_appends)
{
    layer_text_buf b = LAYER_TEXT_BUF_INIT(100, "text");

    ck_assert_int_eq(layer_text_buf_adds(&b, "0123456789"), 0);
    b.max = 5;
    ck_assert_int_eq(layer_text_buf_add(&b, "", 0), LAYER_ETOOBIG);
    layer_text_buf_truncate(&b, 4);
    ck_assert_int_eq(layer_text_buf_adds(&b, "x"), 0);
    ck_assert_str_eq(b.p, "0123x");
    layer_text_buf_dispose(&b);
}
END_TEST

static Suite *text_suite(void)
{
    Suite *s = suite_create("text");
    TCase *utf8 = tcase_create("utf8");
    TCase *codes = tcase_create("hex-base64");
    TCase *time = tcase_create("rfc3339");
    TCase *buf = tcase_create("buf");

    tcase_set_timeout(utf8, 120);
    tcase_add_test(utf8, utf8_every_short_sequence_matches_the_oracle);
    tcase_add_test(utf8, utf8_four_byte_sequences_match_the_oracle);
    tcase_add_test(utf8, utf8_edges_by_name);
    tcase_add_test(utf8, utf8_valid_checks_whole_strings);
    suite_add_tcase(s, utf8);
    tcase_add_test(codes, hex_round_trips_and_refuses_non_digits);
    tcase_add_test(codes, base64_matches_rfc4648_vectors);
    suite_add_tcase(s, codes);
    tcase_add_test(time, rfc3339_formats_every_era_with_nanoseconds);
    tcase_add_test(time, rfc3339_fraction_digits_cut_without_rounding);
    tcase_add_test(time, rfc3339_refuses_what_it_cannot_write);
    suite_add_tcase(s, time);
    tcase_add_test(buf, buf_appends_up_to_its_cap_and_no_further);
    tcase_add_test(buf, buf_refuses_sizes_that_would_overflow);
    tcase_add_test(buf, buf_grows_for_long_formats_and_detaches);
    tcase_add_test(buf, buf_out_of_memory_sticks);
    tcase_add_test(buf, buf_with_a_lowered_cap_refuses_appends);
    suite_add_tcase(s, buf);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(text_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
