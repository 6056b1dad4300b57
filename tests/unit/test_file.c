/*
 * Tests of lib/file.c: the capped whole-file reader (the cap, exactly at
 * and one past it, files whose st_size says nothing, non-regular files
 * refused without blocking, symlinks under LAYER_FILE_NOFOLLOW, messages
 * that name the file), the same reader on a descriptor the caller opened,
 * and the bounded line reader (lines split across
 * reads, the last line without '\n', a line one byte too long refused
 * with its number, however long it is in the file).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/file.h"

/* A test that would block fails by this alarm instead of hanging. */
#define HANG_GUARD_SECONDS 10

static void read_ok(const char *dir, const char *name, size_t cap,
                    const char *want, size_t want_len)
{
    char *path = fx_path(dir, name), *buf = NULL;
    size_t len = 99;
    int rc = layer_file_read(&buf, &len, AT_FDCWD, path, cap, 0, NULL);

    ck_assert_msg(rc == 0, "%s: %s", path, layer_error_last());
    ck_assert_uint_eq(len, want_len);
    ck_assert_mem_eq(buf, want, want_len);
    ck_assert_int_eq(buf[len], '\0');
    layer_free(buf);
    free(path);
}

START_TEST(whole_files_up_to_the_cap_are_read)
{
    char *dir = fx_tmpdir();

    fx_file(dir, "empty", "", 0644);
    fx_file(dir, "ten", "0123456789", 0644);
    fx_file_bytes(dir, "nul", "a\0b", 3, 0644);
    read_ok(dir, "empty", 0, "", 0);
    read_ok(dir, "ten", 10, "0123456789", 10); /* exactly the cap */
    read_ok(dir, "ten", 1 << 20, "0123456789", 10);
    read_ok(dir, "nul", 3, "a\0b", 3);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(a_file_over_the_cap_is_refused_and_named)
{
    char *dir = fx_tmpdir(), *buf = NULL;
    size_t len = 0;
    int dfd;

    fx_file(dir, "ten", "0123456789", 0644);
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(dfd, 0);
    ck_assert_int_eq(
        layer_file_read(&buf, &len, dfd, "ten", 9, 0, "the test file"),
        LAYER_ETOOBIG);
    ck_assert_str_eq(layer_error_last(),
                     "the test file is larger than 9 bytes");
    ck_assert_ptr_null(buf);
    /* without a description, the name says which file */
    ck_assert_int_eq(layer_file_read(&buf, &len, dfd, "ten", 0, 0, NULL),
                     LAYER_ETOOBIG);
    ck_assert_str_eq(layer_error_last(), "ten is larger than 0 bytes");
    close(dfd);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

/* /proc files say st_size 0: the cap is enforced while reading. */
START_TEST(a_file_that_grows_past_its_size_is_capped_while_read)
{
    char *buf = NULL;
    size_t len = 0;

    ck_assert_int_eq(
        layer_file_read(&buf, &len, AT_FDCWD, "/proc/self/status", 16, 0, NULL),
        LAYER_ETOOBIG);
    ck_assert_ptr_null(buf);
    ck_assert_int_eq(layer_file_read(&buf, &len, AT_FDCWD, "/proc/self/status",
                                     1 << 20, 0, NULL),
                     0);
    ck_assert_uint_gt(len, 16);
    ck_assert_uint_eq(strlen(buf), len);
    ck_assert_ptr_nonnull(strstr(buf, "Name:"));
    layer_free(buf);
}
END_TEST

START_TEST(missing_files_are_not_found_with_errno)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "nope/deeper"), *buf = NULL;
    size_t len = 0;
    char want[4200];

    ck_assert_int_eq(
        layer_file_read(&buf, &len, AT_FDCWD, path, 10, 0, "config file"),
        LAYER_ENOTFOUND);
    ck_assert_str_eq(layer_error_last(),
                     "cannot open config file: No such file or directory");
    ck_assert_int_eq(layer_error_errno(), ENOENT);
    fx_file(dir, "plain", "x", 0644);
    free(path);
    path = fx_path(dir, "plain/below"); /* a file as a directory */
    ck_assert_int_eq(layer_file_read(&buf, &len, AT_FDCWD, path, 10, 0, NULL),
                     LAYER_ENOTFOUND);
    snprintf(want, sizeof(want), "cannot open %s: Not a directory", path);
    ck_assert_str_eq(layer_error_last(), want);
    ck_assert_int_eq(layer_error_errno(), ENOTDIR);
    free(path);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

/* A FIFO without a writer would block a plain open() or read(). */
START_TEST(non_regular_files_are_refused_without_blocking)
{
    char *dir = fx_tmpdir(), *buf = NULL;
    size_t len = 0;
    int dfd;

    fx_fifo(dir, "fifo");
    fx_mkdir(dir, "sub", 0755);
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(dfd, 0);
    alarm(HANG_GUARD_SECONDS);
    ck_assert_int_eq(layer_file_read(&buf, &len, dfd, "fifo", 10, 0, "fifo"),
                     LAYER_EINVALID);
    ck_assert_str_eq(layer_error_last(), "fifo is not a regular file");
    ck_assert_int_eq(
        layer_file_read(&buf, &len, dfd, "fifo", 10, LAYER_FILE_NOFOLLOW, NULL),
        LAYER_EINVALID);
    alarm(0);
    ck_assert_int_eq(layer_file_read(&buf, &len, dfd, "sub", 10, 0, NULL),
                     LAYER_EINVALID);
    ck_assert_str_eq(layer_error_last(), "sub is not a regular file");
    ck_assert_int_eq(
        layer_file_read(&buf, &len, AT_FDCWD, "/dev/null", 10, 0, NULL),
        LAYER_EINVALID);
    ck_assert_ptr_null(buf);
    close(dfd);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

/* layer_file_read_fd(): the caller's descriptor, from its offset, left
 * open; the same refusals. */
START_TEST(an_open_descriptor_is_read_with_the_same_checks)
{
    char *dir = fx_tmpdir(), *path, *buf = NULL;
    size_t len = 0;
    int fd;

    fx_file(dir, "ten", "0123456789", 0600);
    path = fx_path(dir, "ten");
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(layer_file_read_fd(&buf, &len, fd, 10, "key ten"), 0);
    ck_assert_uint_eq(len, 10);
    ck_assert_str_eq(buf, "0123456789");
    layer_free(buf);
    buf = NULL;
    /* from the current offset; the descriptor stays open */
    ck_assert_int_eq(lseek(fd, 4, SEEK_SET), 4);
    ck_assert_int_eq(layer_file_read_fd(&buf, &len, fd, 10, NULL), 0);
    ck_assert_str_eq(buf, "456789");
    layer_free(buf);
    buf = NULL;
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(layer_file_read_fd(&buf, &len, fd, 9, "key ten"),
                     LAYER_ETOOBIG);
    ck_assert_str_eq(layer_error_last(), "key ten is larger than 9 bytes");
    close(fd);
    free(path);

    fx_fifo(dir, "fifo");
    path = fx_path(dir, "fifo");
    alarm(HANG_GUARD_SECONDS);
    fd = open(path, O_RDONLY | O_NONBLOCK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(layer_file_read_fd(&buf, &len, fd, 10, NULL),
                     LAYER_EINVALID);
    ck_assert_str_eq(layer_error_last(), "the file is not a regular file");
    alarm(0);
    ck_assert_ptr_null(buf);
    close(fd);
    free(path);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(symlinks_are_followed_unless_refused)
{
    char *dir = fx_tmpdir(), *buf = NULL;
    size_t len = 0;
    int dfd;

    fx_file(dir, "target", "data", 0644);
    fx_symlink(dir, "link", "target");
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(dfd, 0);
    ck_assert_int_eq(layer_file_read(&buf, &len, dfd, "link", 10, 0, NULL), 0);
    ck_assert_str_eq(buf, "data");
    layer_free(buf);
    buf = NULL;
    ck_assert_int_eq(layer_file_read(&buf, &len, dfd, "link", 10,
                                     LAYER_FILE_NOFOLLOW, "layer.json"),
                     LAYER_EINVALID);
    ck_assert_str_eq(layer_error_last(), "layer.json is a symlink");
    ck_assert_ptr_null(buf);
    close(dfd);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- lines ---- */

/* A pipe holding text, read end returned; the writer is closed. */
static int pipe_of(const char *text, size_t len)
{
    int fds[2];

    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], text, len), (ssize_t)len);
    close(fds[1]);
    return fds[0];
}

static void next_is(layer_file_lines *l, const char *want)
{
    char *line;
    size_t len;
    int rc = layer_file_lines_next(&line, &len, l);

    ck_assert_msg(rc == 0, "%s", layer_error_last());
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_str_eq(line, want);
}

START_TEST(lines_are_split_and_the_last_may_lack_a_newline)
{
    static const char text[] = "first\n\nthird\r\nlast";
    layer_file_lines l;
    char *line;
    size_t len;
    int fd = pipe_of(text, sizeof(text) - 1);

    ck_assert_int_eq(layer_file_lines_init(&l, fd, 6, "t.txt"), 0);
    next_is(&l, "first");
    next_is(&l, "");
    next_is(&l, "third\r"); /* the CR is the caller's business */
    next_is(&l, "last");
    ck_assert_int_eq(layer_file_lines_next(&line, &len, &l), LAYER_ITEROVER);
    ck_assert_int_eq(layer_file_lines_next(&line, &len, &l), LAYER_ITEROVER);
    layer_file_lines_dispose(&l);
    layer_file_lines_dispose(NULL);
    close(fd);
}
END_TEST

START_TEST(a_line_longer_than_max_is_refused_with_its_number)
{
    layer_file_lines l;
    char *line;
    size_t len;
    int fd = pipe_of("ok\nabcdef\n", 10);

    ck_assert_int_eq(layer_file_lines_init(&l, fd, 5, "t.txt"), 0);
    next_is(&l, "ok");
    ck_assert_int_eq(layer_file_lines_next(&line, &len, &l), LAYER_ETOOBIG);
    ck_assert_str_eq(layer_error_last(),
                     "t.txt: line 2 is longer than 5 bytes");
    layer_file_lines_dispose(&l);
    close(fd);

    /* the same at the end of the file, without a newline */
    fd = pipe_of("abcdef", 6);
    ck_assert_int_eq(layer_file_lines_init(&l, fd, 5, "t.txt"), 0);
    ck_assert_int_eq(layer_file_lines_next(&line, &len, &l), LAYER_ETOOBIG);
    layer_file_lines_dispose(&l);
    close(fd);
}
END_TEST

/* A 4 MiB line with a 64 KiB cap: refused after reading about 64 KiB,
 * with one 64 KiB buffer. */
START_TEST(a_huge_line_costs_only_max)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "huge"), *line;
    size_t len, big = 4u << 20;
    char *data = malloc(big);
    layer_file_lines l;
    int fd;

    ck_assert_ptr_nonnull(data);
    memset(data, 'x', big);
    fx_file_bytes(dir, "huge", data, big, 0644);
    free(data);
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(layer_file_lines_init(&l, fd, 65535, "huge"), 0);
    ck_assert_uint_eq(l.cap, 65537);
    ck_assert_int_eq(layer_file_lines_next(&line, &len, &l), LAYER_ETOOBIG);
    ck_assert_int_le(lseek(fd, 0, SEEK_CUR), 2 * 65536);
    layer_file_lines_dispose(&l);
    close(fd);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(lines_of_exactly_max_bytes_fit_across_reads)
{
    char text[4 * 7 + 1];
    layer_file_lines l;
    char *line;
    size_t len;
    int fd;

    /* Four 6-byte lines with max 6: the buffer (8 bytes) never holds two,
     * so every line but the first is assembled across read()s. */
    snprintf(text, sizeof(text), "aaaaaa\nbbbbbb\ncccccc\ndddddd\n");
    fd = pipe_of(text, strlen(text));
    ck_assert_int_eq(layer_file_lines_init(&l, fd, 6, "t"), 0);
    next_is(&l, "aaaaaa");
    next_is(&l, "bbbbbb");
    next_is(&l, "cccccc");
    next_is(&l, "dddddd");
    ck_assert_int_eq(layer_file_lines_next(&line, &len, &l), LAYER_ITEROVER);
    layer_file_lines_dispose(&l);
    close(fd);
}
END_TEST

static Suite *file_suite(void)
{
    Suite *s = suite_create("file");
    TCase *whole = tcase_create("whole");
    TCase *lines = tcase_create("lines");

    tcase_set_timeout(whole, 30);
    tcase_add_test(whole, whole_files_up_to_the_cap_are_read);
    tcase_add_test(whole, a_file_over_the_cap_is_refused_and_named);
    tcase_add_test(whole, a_file_that_grows_past_its_size_is_capped_while_read);
    tcase_add_test(whole, missing_files_are_not_found_with_errno);
    tcase_add_test(whole, non_regular_files_are_refused_without_blocking);
    tcase_add_test(whole, symlinks_are_followed_unless_refused);
    tcase_add_test(whole, an_open_descriptor_is_read_with_the_same_checks);
    suite_add_tcase(s, whole);
    tcase_set_timeout(lines, 30);
    tcase_add_test(lines, lines_are_split_and_the_last_may_lack_a_newline);
    tcase_add_test(lines, a_line_longer_than_max_is_refused_with_its_number);
    tcase_add_test(lines, a_huge_line_costs_only_max);
    tcase_add_test(lines, lines_of_exactly_max_bytes_fit_across_reads);
    suite_add_tcase(s, lines);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(file_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
