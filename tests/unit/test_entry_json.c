/*
 * Tests of the entry object (api/entry_json.c): time formatting and the
 * lossless form of names that are not UTF-8.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "api/entry_json.h"

START_TEST(test_entry_json_time__rfc3339_with_nanoseconds)
{
    static const struct {
        int64_t sec;
        uint32_t nsec;
        const char *want;
    } cases[] = {
        {0, 0, "1970-01-01T00:00:00.000000000Z"},
        {-1, 5, "1969-12-31T23:59:59.000000005Z"},
        {-86401, 0, "1969-12-30T23:59:59.000000000Z"},
        {951782400, 0, "2000-02-29T00:00:00.000000000Z"},
        {1583020800, 0, "2020-03-01T00:00:00.000000000Z"},
        {1700000000, 123456789, "2023-11-14T22:13:20.123456789Z"},
        {4102444800, 0, "2100-01-01T00:00:00.000000000Z"},
        {253402300799, 999999999, "9999-12-31T23:59:59.999999999Z"},
    };
    char buf[40];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        layer_time t = {cases[i].sec, cases[i].nsec};

        ck_assert_int_eq(api_time_format(buf, &t), 0);
        ck_assert_str_eq(buf, cases[i].want);
    }
}
END_TEST

START_TEST(test_entry_json_time__out_of_range_is_refused)
{
    layer_time big = {253402300800, 0};   /* year 10000 */
    layer_time small = {-62167219201, 0}; /* year -1 */
    char buf[40];

    ck_assert_int_eq(api_time_format(buf, &big), -1);
    ck_assert_int_eq(api_time_format(buf, &small), -1);
}
END_TEST

START_TEST(test_entry_json__invalid_utf8_name_has_exact_base64)
{
    layer_entry e;
    json_t *j;

    memset(&e, 0, sizeof(e));
    e.path = "a\xff";
    e.path_len = 2;
    e.change = LAYER_CHANGE_DELETE;
    j = api_entry_json(&e);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")),
                     "a\xEF\xBF\xBD");
    ck_assert_str_eq(json_string_value(json_object_get(j, "path_b64")), "Yf8=");
    ck_assert_str_eq(json_string_value(json_object_get(j, "change")), "delete");
    ck_assert_ptr_null(json_object_get(j, "type"));
    json_decref(j);
}
END_TEST

START_TEST(test_entry_json__valid_utf8_name_has_no_base64)
{
    layer_entry e;
    json_t *j;

    memset(&e, 0, sizeof(e));
    e.path = "caf\xc3\xa9";
    e.path_len = 5;
    e.type = LAYER_TYPE_FILE;
    e.size = 3;
    j = api_entry_json(&e);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")),
                     "caf\xc3\xa9");
    ck_assert_ptr_null(json_object_get(j, "path_b64"));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "size")), 3);
    json_decref(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("entry_json");
    TCase *tc = tcase_create("entry_json");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_entry_json_time__rfc3339_with_nanoseconds);
    tcase_add_test(tc, test_entry_json_time__out_of_range_is_refused);
    tcase_add_test(tc, test_entry_json__invalid_utf8_name_has_exact_base64);
    tcase_add_test(tc, test_entry_json__valid_utf8_name_has_no_base64);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
