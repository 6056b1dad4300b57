/*
 * Tests of lib/compare.c: continuity's sameFile rules one by one on
 * made-up stats (identity, mode/owner/rdev/capability, directories,
 * size and seconds, nanoseconds, the content case), the copied-up
 * directory check, and the content compare on real files.
 */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/compare_int.h"
#include "fixture.h"
#include "layer/error.h"

#define SAME      LAYER_COMPARE__SAME
#define DIFFERENT LAYER_COMPARE__DIFFERENT
#define CONTENT   LAYER_COMPARE__CONTENT

static const layer_xattr__list none;

/* A regular file as a tar leaves it: 1000.0, 4 bytes, 0644, root. */
static struct statx file_st(unsigned long long ino)
{
    struct statx st;

    memset(&st, 0, sizeof(st));
    st.stx_mode = S_IFREG | 0644;
    st.stx_size = 4;
    st.stx_mtime.tv_sec = 1000;
    st.stx_ino = ino;
    st.stx_dev_major = 8;
    st.stx_dev_minor = 1;
    st.stx_nlink = 1;
    return st;
}

static layer_compare__verdict meta(const struct statx *u, const struct statx *l)
{
    return layer_compare__meta(u, l, &none, &none);
}

START_TEST(test_compare_meta__same_inode_is_unchanged)
{
    struct statx u = file_st(7), l = file_st(7);

    u.stx_mode = S_IFREG | 0600; /* nothing else is looked at */
    u.stx_size = 99;
    ck_assert_int_eq(meta(&u, &l), SAME);
    l.stx_dev_minor = 2; /* same inode number on another device */
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
}
END_TEST

START_TEST(test_compare_meta__mode_owner_rdev_must_match)
{
    struct statx l = file_st(2), u;

    u = file_st(1);
    u.stx_mode = S_IFREG | 0600;
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
    u = file_st(1);
    u.stx_uid = 1000;
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
    u = file_st(1);
    u.stx_gid = 1000;
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
    u = file_st(1);
    u.stx_rdev_minor = 3;
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
    u = file_st(1);
    u.stx_rdev_major = 1;
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
}
END_TEST

START_TEST(test_compare_meta__capability_must_match)
{
    struct statx u = file_st(1), l = file_st(2);
    layer_xattr ca[] = {
        {"security.capability", (const unsigned char *)"AB", 2}};
    layer_xattr cb[] = {
        {"security.capability", (const unsigned char *)"AC", 2}};
    layer_xattr other[] = {{"user.x", (const unsigned char *)"AB", 2}};
    layer_xattr__list a = {.items = ca, .n = 1}, b = {.items = cb, .n = 1};
    layer_xattr__list o = {.items = other, .n = 1};

    u.stx_size = l.stx_size = 0; /* else the content would decide */
    ck_assert_int_eq(layer_compare__meta(&u, &l, &a, &a), SAME);
    ck_assert_int_eq(layer_compare__meta(&u, &l, &a, &b), DIFFERENT);
    ck_assert_int_eq(layer_compare__meta(&u, &l, &a, &none), DIFFERENT);
    ck_assert_int_eq(layer_compare__meta(&u, &l, &none, &a), DIFFERENT);
    /* other attributes do not count */
    ck_assert_int_eq(layer_compare__meta(&u, &l, &o, &none), SAME);
    ck_assert(layer_compare__same_cap(&a, &a));
    ck_assert(!layer_compare__same_cap(&a, &b));
    ck_assert(layer_compare__same_cap(&none, &o));
}
END_TEST

START_TEST(test_compare_meta__directories_compare_no_more)
{
    struct statx u = file_st(1), l = file_st(2);

    u.stx_mode = l.stx_mode = S_IFDIR | 0755;
    u.stx_size = 4096;
    u.stx_mtime.tv_sec = 5;
    u.stx_mtime.tv_nsec = 3;
    ck_assert_int_eq(meta(&u, &l), SAME);
    u.stx_mode = S_IFDIR | 0700;
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
}
END_TEST

START_TEST(test_compare_meta__size_and_seconds)
{
    struct statx l = file_st(2), u;

    u = file_st(1);
    u.stx_size = 5;
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
    u = file_st(1);
    u.stx_mtime.tv_sec = 1001;
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
}
END_TEST

START_TEST(test_compare_meta__nanoseconds_decide_unless_both_zero)
{
    struct statx u = file_st(1), l = file_st(2);

    u.stx_mtime.tv_nsec = l.stx_mtime.tv_nsec = 7; /* bytes not looked at */
    ck_assert_int_eq(meta(&u, &l), SAME);
    u.stx_mtime.tv_nsec = 8;
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
    u.stx_mtime.tv_nsec = 0; /* one side only */
    ck_assert_int_eq(meta(&u, &l), DIFFERENT);
    l.stx_mtime.tv_nsec = 0; /* both 0: from a tar, the content decides */
    ck_assert_int_eq(meta(&u, &l), CONTENT);
}
END_TEST

START_TEST(test_compare_meta__content_only_for_symlinks_and_data)
{
    struct statx u = file_st(1), l = file_st(2);

    u.stx_mode = l.stx_mode = S_IFLNK | 0777;
    ck_assert_int_eq(meta(&u, &l), CONTENT);
    u.stx_mode = l.stx_mode = S_IFIFO | 0644;
    ck_assert_int_eq(meta(&u, &l), SAME);
    u.stx_mode = l.stx_mode = S_IFCHR | 0644;
    ck_assert_int_eq(meta(&u, &l), SAME);
    u.stx_mode = l.stx_mode = S_IFREG | 0644;
    u.stx_size = l.stx_size = 0;
    ck_assert_int_eq(meta(&u, &l), SAME);
}
END_TEST

START_TEST(test_compare_same_dir__mode_owner_capability)
{
    struct statx u = file_st(1), l = file_st(2);
    layer_xattr ca[] = {{"security.capability", (const unsigned char *)"A", 1}};
    layer_xattr__list a = {.items = ca, .n = 1};

    u.stx_mode = l.stx_mode = S_IFDIR | 0755;
    u.stx_mtime.tv_sec = 1; /* times and size do not count */
    u.stx_size = 1;
    ck_assert(layer_compare__same_dir(&u, &l, &none, &none));
    ck_assert(!layer_compare__same_dir(&u, &l, &a, &none));
    u.stx_uid = 1;
    ck_assert(!layer_compare__same_dir(&u, &l, &none, &none));
    u.stx_uid = 0;
    u.stx_gid = 1;
    ck_assert(!layer_compare__same_dir(&u, &l, &none, &none));
    u.stx_gid = 0;
    u.stx_mode = S_IFDIR | 0700;
    ck_assert(!layer_compare__same_dir(&u, &l, &none, &none));
}
END_TEST

/* The content compare works on two directories, u (the layer) and l
 * (the parent), fresh for each test. */
static char *tmp;
static char *udir, *ldir;
static int ufd = -1, lfd = -1;

static int open_dir(char **out_path, const char *name)
{
    int fd;

    fx_mkdir(tmp, name, 0755);
    *out_path = fx_path(tmp, name);
    fd = open(*out_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static void setup(void)
{
    tmp = fx_tmpdir();
    ufd = open_dir(&udir, "u");
    lfd = open_dir(&ldir, "l");
}

static void teardown(void)
{
    close(ufd);
    close(lfd);
    free(udir);
    free(ldir);
    fx_rm_rf(tmp);
    free(tmp);
}

static struct statx stat_in(int dirfd, const char *name)
{
    struct statx st;

    ck_assert_int_eq(
        statx(dirfd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &st), 0);
    return st;
}

/* same_file of name in u and l, with stats taken before change() runs. */
static int same_after(bool *out, const char *name, void (*change)(void))
{
    struct statx us = stat_in(ufd, name), ls = stat_in(lfd, name);

    if (change != NULL)
        change();
    return layer_compare__same_file(out, ufd, lfd, name, &us, &ls, &none, &none,
                                    true);
}

/* name with the same bytes in u and l, as a tar leaves it (1000.0) */
static void tar_file(const char *name, const char *ucontent,
                     const char *lcontent)
{
    fx_file(udir, name, ucontent, 0644);
    fx_file(ldir, name, lcontent, 0644);
    fx_mtime(udir, name, 1000, 0);
    fx_mtime(ldir, name, 1000, 0);
}

START_TEST(test_compare_same_file__content_when_times_say_nothing)
{
    size_t big = 3 * 65536 + 10;
    char *a = malloc(big), *b = malloc(big);
    bool out = true;

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    memset(a, 'a', big);
    memcpy(b, a, big);
    b[big - 1] = 'b'; /* differs in the last piece only */
    tar_file("eq", "same", "same");
    tar_file("ne", "bbbb", "aaaa");
    fx_file_bytes(udir, "big", a, big, 0644);
    fx_file_bytes(ldir, "big", b, big, 0644);
    fx_file_bytes(udir, "bigeq", a, big, 0644);
    fx_file_bytes(ldir, "bigeq", a, big, 0644);
    fx_symlink(udir, "s", "x");
    fx_symlink(ldir, "s", "y");
    fx_symlink(udir, "seq", "x");
    fx_symlink(ldir, "seq", "x");
    for (int i = 0; i < 2; i++) {
        const char *d = i ? ldir : udir;
        const char *names[] = {"big", "bigeq", "s", "seq"};

        for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++)
            fx_mtime(d, names[j], 1000, 0);
    }
    ck_assert_int_eq(same_after(&out, "eq", NULL), 0);
    ck_assert(out);
    ck_assert_int_eq(same_after(&out, "ne", NULL), 0);
    ck_assert(!out);
    ck_assert_int_eq(same_after(&out, "big", NULL), 0);
    ck_assert(!out);
    ck_assert_int_eq(same_after(&out, "bigeq", NULL), 0);
    ck_assert(out);
    ck_assert_int_eq(same_after(&out, "s", NULL), 0);
    ck_assert(!out);
    ck_assert_int_eq(same_after(&out, "seq", NULL), 0);
    ck_assert(out);
    free(a);
    free(b);
}
END_TEST

static void truncate_lower(void)
{
    int fd = openat(lfd, "f", O_WRONLY | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 2), 0);
    close(fd);
}

START_TEST(test_compare_same_file__shorter_than_listed_is_changed)
{
    bool out = true;

    tar_file("f", "abcd", "abcd");
    ck_assert_int_eq(same_after(&out, "f", truncate_lower), 0);
    ck_assert(!out);
}
END_TEST

static void remove_lower(void)
{
    fx_unlink(ldir, "f");
}

START_TEST(test_compare_same_file__vanished_file_is_an_error)
{
    bool out = true;

    tar_file("f", "abcd", "abcd");
    ck_assert_int_eq(same_after(&out, "f", remove_lower), LAYER_ERROR);
    ck_assert_str_eq(layer_error_last(),
                     "f: open to compare: No such file or directory");
}
END_TEST

static Suite *compare_suite(void)
{
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("compare");
    TCase *files = tcase_create("compare files");

    tcase_add_test(tc, test_compare_meta__same_inode_is_unchanged);
    tcase_add_test(tc, test_compare_meta__mode_owner_rdev_must_match);
    tcase_add_test(tc, test_compare_meta__capability_must_match);
    tcase_add_test(tc, test_compare_meta__directories_compare_no_more);
    tcase_add_test(tc, test_compare_meta__size_and_seconds);
    tcase_add_test(tc, test_compare_meta__nanoseconds_decide_unless_both_zero);
    tcase_add_test(tc, test_compare_meta__content_only_for_symlinks_and_data);
    tcase_add_test(tc, test_compare_same_dir__mode_owner_capability);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(files, setup, teardown);
    tcase_add_test(files,
                   test_compare_same_file__content_when_times_say_nothing);
    tcase_add_test(files,
                   test_compare_same_file__shorter_than_listed_is_changed);
    tcase_add_test(files, test_compare_same_file__vanished_file_is_an_error);
    suite_add_tcase(s, files);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(compare_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
