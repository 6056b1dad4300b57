/*
 * Unit tests for lib/json.c, the strict JSON reader behind the stores'
 * metadata: values, escapes and surrogates, numbers, the caps (size,
 * depth, number length), error offsets, and that every allocation failure
 * is reported and cleaned up.
 */
#include <check.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/json_int.h"
#include "fixture.h"
#include "layer/alloc.h"
#include "layer/error.h"

static layer_json *parse_ok(const char *text)
{
    layer_json *v = NULL;
    int rc = layer_json__parse(&v, text, strlen(text), "t");

    ck_assert_msg(rc == 0, "parse of '%s' failed: %s", text,
                  layer_error_last());
    ck_assert_ptr_nonnull(v);
    return v;
}

static void parse_bad(const char *text, size_t len, const char *needle)
{
    layer_json *v = NULL;
    int rc = layer_json__parse(&v, text, len, "doc.json");

    ck_assert_msg(rc == LAYER_EBROKEN, "'%.*s' was accepted (rc %d)", (int)len,
                  text, rc);
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(layer_error_last(), needle) != NULL,
                  "message '%s' lacks '%s'", layer_error_last(), needle);
    ck_assert_msg(strncmp(layer_error_last(),
                          "doc.json: invalid JSON at "
                          "byte ",
                          30) == 0,
                  "message '%s' does not name the document and offset",
                  layer_error_last());
}

#define BAD(text, needle) parse_bad(text, sizeof(text) - 1, needle)

START_TEST(literals_parse_to_their_types)
{
    layer_json *v;
    bool b = false;

    v = parse_ok(" true ");
    ck_assert_int_eq(layer_json__type(v), LAYER_JSON_BOOL);
    ck_assert_int_eq(layer_json__bool(&b, v), 0);
    ck_assert(b);
    layer_json__free(v);

    v = parse_ok("false");
    ck_assert_int_eq(layer_json__bool(&b, v), 0);
    ck_assert(!b);
    layer_json__free(v);

    v = parse_ok("\r\n\tnull");
    ck_assert_int_eq(layer_json__type(v), LAYER_JSON_NULL);
    ck_assert_int_eq(layer_json__bool(&b, v), LAYER_EINVALID);
    layer_json__free(v);
}
END_TEST

START_TEST(integers_are_exact_within_int64)
{
    static const struct {
        const char *text;
        int64_t value;
    } cases[] = {
        {"0", 0},
        {"-0", 0},
        {"123", 123},
        {"-42", -42},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        layer_json *v = parse_ok(cases[i].text);
        int64_t n = 1;
        double d = 0;

        ck_assert_int_eq(layer_json__type(v), LAYER_JSON_NUMBER);
        ck_assert_int_eq(layer_json__int(&n, v), 0);
        ck_assert_msg(n == cases[i].value, "%s gave %lld", cases[i].text,
                      (long long)n);
        ck_assert_int_eq(layer_json__number(&d, v), 0);
        ck_assert(d == (double)cases[i].value);
        layer_json__free(v);
    }
}
END_TEST

START_TEST(non_integers_are_doubles_only)
{
    static const struct {
        const char *text;
        double value;
    } cases[] = {
        {"1.5", 1.5},
        {"1e3", 1000.0},
        {"1E+3", 1000.0},
        {"-1.25e-2", -0.0125},
        {"9223372036854775808", 9223372036854775808.0},
        {"-9223372036854775809", -9223372036854775809.0},
        {"100000000000000000000000", 1e23},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        layer_json *v = parse_ok(cases[i].text);
        int64_t n;
        double d = 0;

        ck_assert_int_eq(layer_json__number(&d, v), 0);
        ck_assert_msg(d == cases[i].value, "%s gave %g", cases[i].text, d);
        ck_assert_int_eq(layer_json__int(&n, v), LAYER_EINVALID);
        layer_json__free(v);
    }
}
END_TEST

START_TEST(numbers_follow_the_rfc_grammar)
{
    BAD("01", "leading zero");
    BAD("-01", "leading zero");
    BAD("-", "expected a digit");
    BAD("1.", "after '.'");
    BAD(".5", "expected a value");
    BAD("1e", "exponent");
    BAD("1e+", "exponent");
    BAD("+1", "expected a value");
    BAD("0x10", "expected end of input");
    BAD("1.2.3", "byte 3");
    BAD("NaN", "expected a value");
    BAD("Infinity", "expected a value");
    BAD("-Infinity", "expected a digit");
}
END_TEST

START_TEST(number_length_is_capped)
{
    char buf[LAYER_JSON_MAX_NUMBER + 2];
    layer_json *v = NULL;

    memset(buf, '7', sizeof(buf));
    ck_assert_int_eq(layer_json__parse(&v, buf, LAYER_JSON_MAX_NUMBER, "n"), 0);
    layer_json__free(v);
    v = NULL;
    ck_assert_int_eq(layer_json__parse(&v, buf, LAYER_JSON_MAX_NUMBER + 1, "n"),
                     LAYER_EBROKEN);
    ck_assert_ptr_null(v);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "number longer than"));
}
END_TEST

START_TEST(numbers_ignore_the_process_locale)
{
    layer_json *v;
    double d = 0;

    /* A locale with a decimal comma, if the machine has one. */
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") == NULL &&
        setlocale(LC_NUMERIC, "fr_FR.UTF-8") == NULL) {
        FX_SKIP("no locale with a decimal comma (de_DE.UTF-8, fr_FR.UTF-8)");
        return;
    }
    v = parse_ok("2.75");
    ck_assert_int_eq(layer_json__number(&d, v), 0);
    ck_assert(d == 2.75);
    layer_json__free(v);
    setlocale(LC_NUMERIC, "C");
}
END_TEST

static void check_string(const char *text, const char *want, size_t want_len)
{
    layer_json *v = parse_ok(text);
    size_t len = 0;
    const char *s = layer_json__string(v, &len);

    ck_assert_ptr_nonnull(s);
    ck_assert_msg(len == want_len, "%s: length %zu, want %zu", text, len,
                  want_len);
    ck_assert_msg(memcmp(s, want, len) == 0, "%s: wrong bytes", text);
    ck_assert_int_eq(s[len], '\0');
    layer_json__free(v);
}

#define STR(text, want) check_string(text, want, sizeof(want) - 1)

START_TEST(string_escapes_decode)
{
    STR("\"\"", "");
    STR("\"plain\"", "plain");
    STR("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t");
    STR("\"\\u0041\"", "A");
    STR("\"\\u00e9\\u00E9\"", "\xc3\xa9\xc3\xa9");
    STR("\"\\u20ac\"", "\xe2\x82\xac");
    STR("\"\\uffff\"", "\xef\xbf\xbf");
    STR("\"a\\u0000b\"", "a\0b");
    STR("\"raw \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        "raw \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}
END_TEST

START_TEST(surrogate_pairs_become_one_code_point)
{
    STR("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80");
    STR("\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80");
    STR("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf");
    BAD("\"\\ud800\"", "not followed by a low surrogate");
    BAD("\"\\ud800x\"", "not followed by a low surrogate");
    BAD("\"\\ud800\\u0041\"", "not followed by a low surrogate");
    BAD("\"\\ud800\\ud800\"", "not followed by a low surrogate");
    BAD("\"\\udc00\"", "lone low surrogate");
}
END_TEST

START_TEST(bad_strings_are_refused)
{
    BAD("\"abc", "unterminated string");
    BAD("\"abc\\", "unterminated string");
    BAD("\"\\x\"", "invalid escape");
    BAD("\"\\u12\"", "four hex digits");
    BAD("\"\\u12g4\"", "four hex digits");
    BAD("\"a\nb\"", "control character 0x0a");
    BAD("\"\x01\"", "control character 0x01");
    BAD("\"\xff\"", "invalid UTF-8");
    BAD("\"\xc0\x80\"", "invalid UTF-8");         /* overlong NUL */
    BAD("\"\xe0\x80\xaf\"", "invalid UTF-8");     /* overlong '/' */
    BAD("\"\xed\xa0\x80\"", "invalid UTF-8");     /* UTF-8 surrogate */
    BAD("\"\xf4\x90\x80\x80\"", "invalid UTF-8"); /* above U+10FFFF */
    BAD("\"\xe2\x82\"", "invalid UTF-8");         /* truncated */
    BAD("\"\x80\"", "invalid UTF-8");             /* lone continuation */
    BAD("'single'", "expected a value");
}
END_TEST

START_TEST(objects_keep_order_and_last_duplicate_wins)
{
    layer_json *v =
        parse_ok("{\"b\": 1, \"a\": {\"x\": [true, null]}, \"b\": \"two\"}");
    const layer_json *a, *b;
    size_t klen;

    ck_assert_int_eq(layer_json__type(v), LAYER_JSON_OBJECT);
    ck_assert_uint_eq(layer_json__size(v), 3);
    ck_assert_str_eq(layer_json__key_at(v, 0, &klen), "b");
    ck_assert_uint_eq(klen, 1);
    ck_assert_str_eq(layer_json__key_at(v, 1, NULL), "a");
    ck_assert_ptr_null(layer_json__key_at(v, 3, NULL));
    b = layer_json__get(v, "b");
    ck_assert_str_eq(layer_json__string(b, NULL), "two");
    a = layer_json__get(v, "a");
    ck_assert_int_eq(layer_json__type(a), LAYER_JSON_OBJECT);
    a = layer_json__get(a, "x");
    ck_assert_int_eq(layer_json__type(a), LAYER_JSON_ARRAY);
    ck_assert_uint_eq(layer_json__size(a), 2);
    ck_assert_int_eq(layer_json__type(layer_json__at(a, 0)), LAYER_JSON_BOOL);
    ck_assert_int_eq(layer_json__type(layer_json__at(a, 1)), LAYER_JSON_NULL);
    ck_assert_ptr_null(layer_json__at(a, 2));
    ck_assert_ptr_null(layer_json__get(v, "missing"));
    ck_assert_ptr_null(layer_json__get(a, "x")); /* not an object */
    layer_json__free(v);
}
END_TEST

START_TEST(keys_with_nul_do_not_match_shorter_keys)
{
    layer_json *v = parse_ok("{\"id\\u0000x\": 1}");
    size_t klen = 0;

    ck_assert_ptr_null(layer_json__get(v, "id"));
    ck_assert_ptr_nonnull(layer_json__key_at(v, 0, &klen));
    ck_assert_uint_eq(klen, 4);
    layer_json__free(v);
}
END_TEST

START_TEST(empty_containers_parse)
{
    layer_json *v = parse_ok("[ [ ] , { } ]");

    ck_assert_uint_eq(layer_json__size(v), 2);
    ck_assert_uint_eq(layer_json__size(layer_json__at(v, 0)), 0);
    ck_assert_int_eq(layer_json__type(layer_json__at(v, 1)), LAYER_JSON_OBJECT);
    ck_assert_uint_eq(layer_json__size(layer_json__at(v, 1)), 0);
    layer_json__free(v);
}
END_TEST

START_TEST(bad_structure_is_refused_with_offsets)
{
    BAD("", "byte 0: expected a value, found end of input");
    BAD("   ", "byte 3: expected a value");
    BAD("\xef\xbb\xbf{}", "byte 0"); /* BOM */
    BAD("[1,]", "byte 3: expected a value, found ']'");
    BAD("[1 2]", "byte 3: expected ',' or ']'");
    BAD("[1", "byte 2: expected ',' or ']', found end of input");
    BAD("{", "byte 1: expected a string key");
    BAD("{\"a\":1,}", "byte 7: expected a string key");
    BAD("{\"a\" 1}", "byte 5: expected ':'");
    BAD("{1:2}", "byte 1: expected a string key");
    BAD("{\"a\":}", "byte 5: expected a value");
    BAD("{} x", "byte 3: expected end of input, found 'x'");
    BAD("{}{}", "byte 2: expected end of input");
    BAD("tru", "byte 0");
    BAD("nul", "byte 0");
    BAD("[true false]", "byte 6");
    BAD("/* c */ 1", "byte 0");
    BAD("[\x00]", "found byte 0x00");
}
END_TEST

static char *nested(int depth, size_t *out_len)
{
    char *buf = malloc((size_t)depth * 2 + 1);

    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < depth; i++) {
        buf[i] = '[';
        buf[depth * 2 - 1 - i] = ']';
    }
    buf[depth * 2] = '\0';
    *out_len = (size_t)depth * 2;
    return buf;
}

START_TEST(nesting_is_capped_at_64)
{
    layer_json *v = NULL;
    size_t len;
    char *doc = nested(LAYER_JSON_MAX_DEPTH, &len);

    ck_assert_int_eq(layer_json__parse(&v, doc, len, "deep"), 0);
    layer_json__free(v);
    v = NULL;
    free(doc);

    doc = nested(LAYER_JSON_MAX_DEPTH + 1, &len);
    ck_assert_int_eq(layer_json__parse(&v, doc, len, "deep"), LAYER_EBROKEN);
    ck_assert_ptr_null(v);
    ck_assert_str_eq(layer_error_last(),
                     "deep: invalid JSON at byte 64: nesting deeper than 64");
    free(doc);

    /* Objects count the same as arrays. */
    {
        char obj[LAYER_JSON_MAX_DEPTH * 8];
        size_t n = 0;

        for (int i = 0; i <= LAYER_JSON_MAX_DEPTH; i++) {
            memcpy(obj + n, "{\"a\":", 5);
            n += 5;
        }
        obj[n++] = '1';
        ck_assert_int_eq(layer_json__parse(&v, obj, n, "deep"), LAYER_EBROKEN);
        ck_assert_ptr_nonnull(strstr(layer_error_last(), "nesting deeper"));
    }
}
END_TEST

START_TEST(document_size_is_capped_at_16_mib)
{
    size_t max = LAYER_JSON_MAX_SIZE;
    char *doc = malloc(max + 1);
    layer_json *v = NULL;
    size_t len;

    ck_assert_ptr_nonnull(doc);
    /* Exactly the cap: a string filling it is accepted. */
    memset(doc, 'a', max + 1);
    doc[0] = '"';
    doc[max - 1] = '"';
    ck_assert_int_eq(layer_json__parse(&v, doc, max, "big"), 0);
    ck_assert_ptr_nonnull(layer_json__string(v, &len));
    ck_assert_uint_eq(len, max - 2);
    layer_json__free(v);
    v = NULL;

    /* One byte more is refused before anything is parsed. */
    memset(doc, ' ', max + 1);
    doc[max] = '0';
    ck_assert_int_eq(layer_json__parse(&v, doc, max + 1, "big"), LAYER_EBROKEN);
    ck_assert_ptr_null(v);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "larger than"));
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "byte 16777216"));
    free(doc);
}
END_TEST

START_TEST(accessors_reject_other_types)
{
    layer_json *v = parse_ok("[\"s\", 1, {}]");
    const layer_json *s = layer_json__at(v, 0);
    bool b;
    double d;
    int64_t n;

    ck_assert_ptr_null(layer_json__string(layer_json__at(v, 1), NULL));
    ck_assert_int_eq(layer_json__number(&d, s), LAYER_EINVALID);
    ck_assert_int_eq(layer_json__int(&n, s), LAYER_EINVALID);
    ck_assert_int_eq(layer_json__bool(&b, s), LAYER_EINVALID);
    ck_assert_uint_eq(layer_json__size(s), 0);
    ck_assert_ptr_null(layer_json__at(s, 0));
    ck_assert_ptr_null(layer_json__get(v, "x"));
    ck_assert_ptr_null(layer_json__key_at(v, 0, NULL));
    ck_assert_int_eq(layer_json__type(NULL), LAYER_JSON_NULL);
    ck_assert_str_eq(layer_json__type_name(LAYER_JSON_OBJECT), "object");
    layer_json__free(v);
    layer_json__free(NULL);
}
END_TEST

START_TEST(every_allocation_failure_is_reported)
{
    static const char doc[] =
        "{\"layers\": [{\"id\": \"a\", \"names\": [\"x\", \"y\", \"z\", "
        "\"w\", \"v\"]}, {\"id\": \"b\\u00e9\", \"n\": 1.5}], \"k\": null}";
    unsigned long n;

    for (n = 1; n < 1000; n++) {
        layer_json *v = NULL;
        int rc;

        layer_alloc_fail_after(n);
        rc = layer_json__parse(&v, doc, sizeof(doc) - 1, "oom");
        layer_alloc_fail_after(0);
        if (rc == 0) {
            ck_assert_ptr_nonnull(v);
            layer_json__free(v);
            break;
        }
        ck_assert_int_eq(rc, LAYER_ENOMEM);
        ck_assert_ptr_null(v);
    }
    ck_assert_msg(n > 5 && n < 1000, "parse never succeeded (n=%lu)", n);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("parse");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, literals_parse_to_their_types);
    tcase_add_test(tc, integers_are_exact_within_int64);
    tcase_add_test(tc, non_integers_are_doubles_only);
    tcase_add_test(tc, numbers_follow_the_rfc_grammar);
    tcase_add_test(tc, number_length_is_capped);
    tcase_add_test(tc, numbers_ignore_the_process_locale);
    tcase_add_test(tc, string_escapes_decode);
    tcase_add_test(tc, surrogate_pairs_become_one_code_point);
    tcase_add_test(tc, bad_strings_are_refused);
    tcase_add_test(tc, objects_keep_order_and_last_duplicate_wins);
    tcase_add_test(tc, keys_with_nul_do_not_match_shorter_keys);
    tcase_add_test(tc, empty_containers_parse);
    tcase_add_test(tc, bad_structure_is_refused_with_offsets);
    tcase_add_test(tc, nesting_is_capped_at_64);
    tcase_add_test(tc, document_size_is_capped_at_16_mib);
    tcase_add_test(tc, accessors_reject_other_types);
    tcase_add_test(tc, every_allocation_failure_is_reported);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
