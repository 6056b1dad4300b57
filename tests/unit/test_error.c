/*
 * Tests of lib/error.c: the thread-local last error (message, code,
 * errno), its names, messages that quote the previous one, long messages
 * cut safely (NUL-terminated, not inside a UTF-8 character, the strerror
 * suffix kept), recoding, and saving and restoring the whole state,
 * nested and across threads.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "layer/error.h"
#include "layer/text.h"

START_TEST(set_records_message_code_and_no_errno)
{
    layer_error_clear();
    ck_assert_str_eq(layer_error_last(), "no error");
    ck_assert_int_eq(layer_error_last_code(), LAYER_OK);
    ck_assert_int_eq(layer_error_errno(), 0);
    ck_assert_int_eq(layer_error_set(LAYER_EINVALID, "bad %s %d", "id", 7),
                     LAYER_EINVALID);
    ck_assert_str_eq(layer_error_last(), "bad id 7");
    ck_assert_int_eq(layer_error_last_code(), LAYER_EINVALID);
    ck_assert_int_eq(layer_error_errno(), 0);
    layer_error_clear();
    ck_assert_str_eq(layer_error_last(), "no error");
    ck_assert_int_eq(layer_error_last_code(), LAYER_OK);
}
END_TEST

START_TEST(set_errno_appends_strerror_and_records_errno)
{
    errno = EACCES; /* the current errno is not what gets recorded */
    ck_assert_int_eq(
        layer_error_set_errno(LAYER_ENOTFOUND, ENOENT, "open %s", "/x"),
        LAYER_ENOTFOUND);
    ck_assert_str_eq(layer_error_last(), "open /x: No such file or directory");
    ck_assert_int_eq(layer_error_errno(), ENOENT);
    ck_assert_str_eq(layer_errno_name(layer_error_errno()), "ENOENT");
    ck_assert_str_eq(layer_error_name(layer_error_last_code()),
                     "LAYER_ENOTFOUND");
    ck_assert_str_eq(layer_error_name(-99), "LAYER_E?");
    ck_assert_str_eq(layer_errno_name(0), "E?");
    /* a plain set afterwards forgets the errno */
    layer_error_set(LAYER_ERROR, "other");
    ck_assert_int_eq(layer_error_errno(), 0);
}
END_TEST

START_TEST(a_message_may_quote_the_previous_one)
{
    layer_error_set(LAYER_EBROKEN, "inner %d", 1);
    layer_error_set(LAYER_EBROKEN, "outer: %s", layer_error_last());
    ck_assert_str_eq(layer_error_last(), "outer: inner 1");
    layer_error_set_errno(LAYER_ERROR, EIO, "again: %s", layer_error_last());
    ck_assert_str_eq(layer_error_last(),
                     "again: outer: inner 1: Input/output error");
}
END_TEST

START_TEST(long_messages_are_cut_safely)
{
    char big[5000];
    const char *m;
    size_t n;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    layer_error_set(LAYER_ERROR, "%s", big);
    m = layer_error_last();
    n = strlen(m);
    ck_assert_uint_eq(n, LAYER_ERROR_MSG_MAX - 1);
    ck_assert_str_eq(m + n - 3, "...");
    ck_assert_int_eq(m[0], 'a');

    /* The strerror suffix survives a long message. */
    layer_error_set_errno(LAYER_ERROR, ENOSPC, "write %s", big);
    m = layer_error_last();
    n = strlen(m);
    ck_assert_uint_le(n, LAYER_ERROR_MSG_MAX - 1);
    ck_assert_ptr_nonnull(strstr(m, "...: No space left on device"));
    ck_assert_str_eq(m + n - strlen(": No space left on device"),
                     ": No space left on device");
    ck_assert_int_eq(layer_error_errno(), ENOSPC);

    /* Two-, three- and four-byte characters at every alignment: never
     * cut inside one. */
    for (size_t shift = 0; shift < 4; shift++) {
        static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac",
                                            "\xf0\x9f\x98\x80"};

        for (size_t c = 0; c < 3; c++) {
            size_t w = strlen(chars[c]), len = shift;

            memset(big, 'x', shift);
            while (len + w < sizeof(big)) {
                memcpy(big + len, chars[c], w);
                len += w;
            }
            big[len] = '\0';
            layer_error_set(LAYER_ERROR, "%s", big);
            m = layer_error_last();
            n = strlen(m);
            ck_assert_uint_le(n, LAYER_ERROR_MSG_MAX - 1);
            ck_assert_str_eq(m + n - 3, "...");
            ck_assert_msg(layer_text_utf8_valid(m, n),
                          "cut inside a character (shift %zu, width %zu)",
                          shift, w);
        }
    }
}
END_TEST

START_TEST(recode_keeps_message_and_errno)
{
    layer_error_set_errno(LAYER_EINVALID, ELOOP, "layer.json");
    ck_assert_int_eq(layer_error_recode(LAYER_EBROKEN), LAYER_EBROKEN);
    ck_assert_int_eq(layer_error_last_code(), LAYER_EBROKEN);
    ck_assert_int_eq(layer_error_errno(), ELOOP);
    ck_assert_str_eq(layer_error_last(),
                     "layer.json: Too many levels of symbolic links");
}
END_TEST

START_TEST(save_and_restore_nest)
{
    layer_error_state outer, inner;

    layer_error_set_errno(LAYER_ENOTFOUND, ENOENT, "first");
    errno = EINTR;
    layer_error_save(&outer);
    ck_assert_int_eq(outer.code, LAYER_ENOTFOUND);
    ck_assert_int_eq(outer.err, ENOENT);
    ck_assert_str_eq(outer.msg, "first: No such file or directory");

    layer_error_set(LAYER_ENOMEM, "second");
    errno = EAGAIN;
    layer_error_save(&inner);
    layer_error_set(LAYER_EBUSY, "third");
    errno = 0;

    layer_error_restore(&inner);
    ck_assert_str_eq(layer_error_last(), "second");
    ck_assert_int_eq(layer_error_last_code(), LAYER_ENOMEM);
    ck_assert_int_eq(layer_error_errno(), 0);
    ck_assert_int_eq(errno, EAGAIN);

    layer_error_restore(&outer);
    /* exactly as it was: no second strerror suffix */
    ck_assert_str_eq(layer_error_last(), "first: No such file or directory");
    ck_assert_int_eq(layer_error_last_code(), LAYER_ENOTFOUND);
    ck_assert_int_eq(layer_error_errno(), ENOENT);
    ck_assert_int_eq(errno, EINTR);
}
END_TEST

START_TEST(restoring_a_clear_state_clears)
{
    layer_error_state s;

    layer_error_clear();
    layer_error_save(&s);
    layer_error_set_errno(LAYER_ERROR, EIO, "noise");
    layer_error_restore(&s);
    ck_assert_str_eq(layer_error_last(), "no error");
    ck_assert_int_eq(layer_error_last_code(), LAYER_OK);
    ck_assert_int_eq(layer_error_errno(), 0);
}
END_TEST

static void *fail_in_thread(void *arg)
{
    layer_error_state *out = arg;

    layer_error_set_errno(LAYER_ECHANGED, ESTALE, "file %s changed", "a/b");
    layer_error_save(out);
    return NULL;
}

START_TEST(a_state_moves_between_threads)
{
    layer_error_state s;
    pthread_t t;

    layer_error_set(LAYER_EINVALID, "this thread's own");
    ck_assert_int_eq(pthread_create(&t, NULL, fail_in_thread, &s), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    /* the other thread's error did not touch this one's */
    ck_assert_str_eq(layer_error_last(), "this thread's own");
    layer_error_restore(&s);
    ck_assert_int_eq(layer_error_last_code(), LAYER_ECHANGED);
    ck_assert_int_eq(layer_error_errno(), ESTALE);
    ck_assert_str_eq(layer_error_last(), "file a/b changed: Stale file handle");
}
END_TEST

static Suite *error_suite(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("error");

    tcase_add_test(tc, set_records_message_code_and_no_errno);
    tcase_add_test(tc, set_errno_appends_strerror_and_records_errno);
    tcase_add_test(tc, a_message_may_quote_the_previous_one);
    tcase_add_test(tc, long_messages_are_cut_safely);
    tcase_add_test(tc, recode_keeps_message_and_errno);
    tcase_add_test(tc, save_and_restore_nest);
    tcase_add_test(tc, restoring_a_clear_state_clears);
    tcase_add_test(tc, a_state_moves_between_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(error_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
