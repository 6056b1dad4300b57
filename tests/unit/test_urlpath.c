/*
 * Tests for api/urlpath.c: a URL path is percent-decoded exactly once
 * ("%252e" stays the literal "%2e"), malformed escapes and escaped NULs
 * are refused, and decoded entry paths with "..", ".", empty segments or
 * NUL bytes never get past the check.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "api/urlpath.h"
#include "layer/alloc.h"
#include "layer/error.h"

/* Decode s; returns the code, and the result in *out (layer_free()). */
static int decode(char **out, size_t *len, const char *s)
{
    *out = NULL;
    *len = 0;
    return api_urlpath_decode(out, len, s, strlen(s));
}

static void assert_decodes(const char *in, const char *want, size_t want_len)
{
    char *out;
    size_t len;

    ck_assert_int_eq(decode(&out, &len, in), 0);
    ck_assert_uint_eq(len, want_len);
    ck_assert_mem_eq(out, want, want_len);
    ck_assert_int_eq(out[len], '\0');
    layer_free(out);
}

static void assert_refused(const char *in, int code)
{
    char *out;
    size_t len;

    ck_assert_int_eq(decode(&out, &len, in), code);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(layer_error_last_code(), code);
}

START_TEST(test_plain_bytes_pass_unchanged)
{
    assert_decodes("usr/bin/ls", "usr/bin/ls", 10);
    assert_decodes("a+b c", "a+b c", 5); /* '+' is not a space in paths */
    assert_decodes("", "", 0);
}
END_TEST

START_TEST(test_escapes_decode_in_either_case)
{
    assert_decodes("%5B%5d", "[]", 2);
    assert_decodes("caf%C3%A9", "caf\xc3\xa9", 5);
    assert_decodes("%ff%FE", "\xff\xfe", 2); /* bytes, not text */
    assert_decodes("a%2Fb", "a/b", 3);
}
END_TEST

START_TEST(test_decoding_happens_exactly_once)
{
    /* %25 is '%': the result is the literal text "%2e", never "." */
    assert_decodes("%252e%252e", "%2e%2e", 6);
    assert_decodes("%2525", "%25", 3);
}
END_TEST

START_TEST(test_malformed_escapes_are_refused)
{
    assert_refused("%", LAYER_EINVALID);
    assert_refused("abc%4", LAYER_EINVALID);
    assert_refused("%zz", LAYER_EINVALID);
    assert_refused("%g0", LAYER_EINVALID);
    assert_refused("a%%41", LAYER_EINVALID);
}
END_TEST

START_TEST(test_escaped_nul_is_refused)
{
    assert_refused("etc/passwd%00.png", LAYER_EINVALID);
    ck_assert(!api_urlpath_escapes_valid("a%00", 4));
}
END_TEST

START_TEST(test_raw_nul_byte_is_refused)
{
    char *out = NULL;
    size_t len = 0;

    ck_assert_int_eq(api_urlpath_decode(&out, &len, "a\0b", 3), LAYER_EINVALID);
    ck_assert_ptr_null(out);
    ck_assert(!api_urlpath_escapes_valid("a\0b", 3));
}
END_TEST

START_TEST(test_overlong_input_is_too_big)
{
    size_t n = API_URLPATH_MAX + 1;
    char *s = malloc(n + 1);
    char *out = NULL;
    size_t len = 0;

    memset(s, 'a', n);
    s[n] = '\0';
    ck_assert_int_eq(api_urlpath_decode(&out, &len, s, n), LAYER_ETOOBIG);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(api_urlpath_check(s, n), LAYER_ETOOBIG);
    /* exactly at the cap is fine */
    ck_assert_int_eq(api_urlpath_decode(&out, &len, s, n - 1), 0);
    ck_assert_uint_eq(len, n - 1);
    layer_free(out);
    free(s);
}
END_TEST

START_TEST(test_escape_check_agrees_with_decoder)
{
    static const char *const cases[] = {"a",   "%41",   "%",  "%4",   "%4x",
                                        "%00", "x%2Fy", "%%", "%252e"};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        size_t len = 0;
        int rc = decode(&out, &len, cases[i]);

        ck_assert_msg((rc == 0) ==
                          api_urlpath_escapes_valid(cases[i], strlen(cases[i])),
                      "disagree on '%s'", cases[i]);
        layer_free(out);
    }
}
END_TEST

static int check(const char *p)
{
    return api_urlpath_check(p, strlen(p));
}

START_TEST(test_clean_paths_pass_the_check)
{
    ck_assert_int_eq(check("etc"), 0);
    ck_assert_int_eq(check("usr/bin/ls"), 0);
    ck_assert_int_eq(check(".profile"), 0);
    ck_assert_int_eq(check("a/..b/c.."), 0); /* dots inside names are fine */
    ck_assert_int_eq(check("%2e%2e"), 0);    /* a literal name after one
                                                decode */
    ck_assert_int_eq(check("..."), 0);
}
END_TEST

START_TEST(test_dot_segments_are_refused)
{
    ck_assert_int_eq(check(".."), LAYER_EINVALID);
    ck_assert_int_eq(check("../etc/passwd"), LAYER_EINVALID);
    ck_assert_int_eq(check("usr/../../etc"), LAYER_EINVALID);
    ck_assert_int_eq(check("usr/.."), LAYER_EINVALID);
    ck_assert_int_eq(check("."), LAYER_EINVALID);
    ck_assert_int_eq(check("usr/./bin"), LAYER_EINVALID);
}
END_TEST

START_TEST(test_decoded_dot_dot_is_refused)
{
    char *out = NULL;
    size_t len = 0;

    ck_assert_int_eq(decode(&out, &len, "%2e%2e/etc"), 0);
    ck_assert_str_eq(out, "../etc");
    ck_assert_int_eq(api_urlpath_check(out, len), LAYER_EINVALID);
    layer_free(out);
    ck_assert_int_eq(decode(&out, &len, "a/%2E%2E"), 0);
    ck_assert_int_eq(api_urlpath_check(out, len), LAYER_EINVALID);
    layer_free(out);
}
END_TEST

START_TEST(test_empty_segments_are_refused)
{
    ck_assert_int_eq(check(""), LAYER_EINVALID);
    ck_assert_int_eq(check("/etc"), LAYER_EINVALID);
    ck_assert_int_eq(check("etc/"), LAYER_EINVALID);
    ck_assert_int_eq(check("etc//passwd"), LAYER_EINVALID);
    ck_assert_int_eq(check("/"), LAYER_EINVALID);
}
END_TEST

START_TEST(test_nul_inside_a_path_is_refused)
{
    ck_assert_int_eq(api_urlpath_check("etc\0passwd", 10), LAYER_EINVALID);
}
END_TEST

static Suite *urlpath_suite(void)
{
    Suite *s = suite_create("urlpath");
    TCase *tc = tcase_create("decode");

    tcase_add_test(tc, test_plain_bytes_pass_unchanged);
    tcase_add_test(tc, test_escapes_decode_in_either_case);
    tcase_add_test(tc, test_decoding_happens_exactly_once);
    tcase_add_test(tc, test_malformed_escapes_are_refused);
    tcase_add_test(tc, test_escaped_nul_is_refused);
    tcase_add_test(tc, test_raw_nul_byte_is_refused);
    tcase_add_test(tc, test_overlong_input_is_too_big);
    tcase_add_test(tc, test_escape_check_agrees_with_decoder);
    suite_add_tcase(s, tc);
    tc = tcase_create("check");
    tcase_add_test(tc, test_clean_paths_pass_the_check);
    tcase_add_test(tc, test_dot_segments_are_refused);
    tcase_add_test(tc, test_decoded_dot_dot_is_refused);
    tcase_add_test(tc, test_empty_segments_are_refused);
    tcase_add_test(tc, test_nul_inside_a_path_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(urlpath_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
