/*
 * Opening beneath a directory (lib/beneath.c), through openat2 and
 * through the component walk alike: files at any depth open; malformed
 * paths are refused before any system call; a symlink anywhere on the
 * path (to a file outside, to a sibling inside, or as a middle directory)
 * is refused rather than followed; missing names are ENOTFOUND.
 */
#include <check.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "layer/beneath.h"
#include "layer/error.h"

static char *top;  /* holds root/ and outside.txt */
static char *root; /* the directory opened beneath */
static int root_fd = -1;

static void tree_setup(void)
{
    char *outside;

    top = fx_tmpdir();
    fx_file(top, "outside.txt", "secret\n", 0644);
    fx_mkdir(top, "root", 0755);
    root = fx_path(top, "root");
    outside = fx_path(top, "outside.txt");
    fx_file(root, "index.html", "<!doctype html>\n", 0644);
    fx_mkdir(root, "assets", 0755);
    fx_file(root, "assets/app.js", "export {};\n", 0644);
    fx_mkdir(root, "assets/deep", 0755);
    fx_file(root, "assets/deep/x.css", "a{}\n", 0644);
    fx_symlink(root, "assets/out.txt", outside);
    fx_symlink(root, "assets/up.txt", "../../outside.txt");
    fx_symlink(root, "assets/sibling.js", "app.js");
    fx_symlink(root, "linkdir", "assets");
    fx_symlink(root, "topdir", "..");
    root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(root_fd, 0);
    free(outside);
}

static void tree_teardown(void)
{
    close(root_fd);
    fx_rm_rf(top);
    free(root);
    free(top);
}

/* The content of path opened beneath the root, or NULL with *rc set. */
static char *read_beneath(int *rc, const char *path, unsigned how)
{
    static char buf[256];
    int fd = -1;
    ssize_t n;

    *rc = layer_beneath_open(&fd, root_fd, path, O_RDONLY, how);
    if (*rc < 0) {
        ck_assert_int_eq(fd, -1);
        return NULL;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    close(fd);
    return buf;
}

static void files_open_at_any_depth(unsigned how)
{
    int rc;

    ck_assert_str_eq(read_beneath(&rc, "index.html", how), "<!doctype html>\n");
    ck_assert_str_eq(read_beneath(&rc, "assets/app.js", how), "export {};\n");
    ck_assert_str_eq(read_beneath(&rc, "assets/deep/x.css", how), "a{}\n");
}

static void expect_refused(const char *path, unsigned how, int want)
{
    int rc;

    ck_assert_msg(read_beneath(&rc, path, how) == NULL, "%s was opened", path);
    ck_assert_msg(rc == want, "%s: code %d, want %d (%s)", path, rc, want,
                  layer_error_last());
}

static void symlinks_are_never_followed(unsigned how)
{
    expect_refused("assets/out.txt", how, LAYER_EINVALID);
    expect_refused("assets/up.txt", how, LAYER_EINVALID);
    expect_refused("assets/sibling.js", how, LAYER_EINVALID);
    expect_refused("linkdir/app.js", how, LAYER_EINVALID);
    expect_refused("topdir/outside.txt", how, LAYER_EINVALID);
}

static void missing_names_are_not_found(unsigned how)
{
    expect_refused("nope.html", how, LAYER_ENOTFOUND);
    expect_refused("assets/nope/x.js", how, LAYER_ENOTFOUND);
    /* a file used as a directory */
    expect_refused("index.html/x", how, LAYER_ENOTFOUND);
}

START_TEST(test_files_open_at_any_depth)
{
    files_open_at_any_depth(0);
    files_open_at_any_depth(LAYER_BENEATH_WALK);
}
END_TEST

START_TEST(test_malformed_paths_are_refused_before_opening)
{
    static const char *const bad[] = {
        "",
        "/etc/passwd",
        "../outside.txt",
        "assets/../index.html",
        "./index.html",
        "assets//app.js",
        "assets/",
        ".",
        "..",
        "assets/deep/..",
    };
    char *longp = malloc(LAYER_BENEATH_PATH_MAX + 2);
    int fd = -1;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_refused(bad[i], 0, LAYER_EINVALID);
        expect_refused(bad[i], LAYER_BENEATH_WALK, LAYER_EINVALID);
    }
    memset(longp, 'a', LAYER_BENEATH_PATH_MAX + 1);
    longp[LAYER_BENEATH_PATH_MAX + 1] = '\0';
    ck_assert_int_eq(layer_beneath_open(&fd, root_fd, longp, O_RDONLY, 0),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_beneath_open(&fd, root_fd, NULL, O_RDONLY, 0),
                     LAYER_EINVALID);
    ck_assert_int_eq(fd, -1);
    free(longp);
}
END_TEST

START_TEST(test_symlinks_are_never_followed)
{
    symlinks_are_never_followed(0);
    symlinks_are_never_followed(LAYER_BENEATH_WALK);
}
END_TEST

START_TEST(test_missing_names_are_not_found)
{
    missing_names_are_not_found(0);
    missing_names_are_not_found(LAYER_BENEATH_WALK);
}
END_TEST

/* Directories (O_DIRECTORY): a symlink as the last component is a
 * symlink (EINVALID), not "missing" (the kernel says ENOTDIR there), and
 * a regular file is not a directory (ENOTFOUND). */
static void directories_open_and_symlinks_are_named(unsigned how)
{
    int fd = -1, rc;

    ck_assert_int_eq(layer_beneath_open(&fd, root_fd, "assets/deep",
                                        O_RDONLY | O_DIRECTORY, how),
                     0);
    ck_assert_int_ge(fd, 0);
    close(fd);
    fd = -1;
    rc = layer_beneath_open(&fd, root_fd, "linkdir", O_RDONLY | O_DIRECTORY,
                            how);
    ck_assert_msg(rc == LAYER_EINVALID, "linkdir: %d (%s)", rc,
                  layer_error_last());
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "symlink"));
    rc =
        layer_beneath_open(&fd, root_fd, "topdir", O_RDONLY | O_DIRECTORY, how);
    ck_assert_int_eq(rc, LAYER_EINVALID);
    rc = layer_beneath_open(&fd, root_fd, "index.html", O_RDONLY | O_DIRECTORY,
                            how);
    ck_assert_int_eq(rc, LAYER_ENOTFOUND);
    ck_assert_int_eq(fd, -1);
}

START_TEST(test_directories_open_and_symlinks_are_named)
{
    directories_open_and_symlinks_are_named(0);
    directories_open_and_symlinks_are_named(LAYER_BENEATH_WALK);
}
END_TEST

START_TEST(test_canonical_paths)
{
    static const struct {
        const char *p;
        size_t len; /* 0: strlen */
        bool ok;
    } cases[] = {
        {"a", 0, true},        {"a/b/c", 0, true}, {".wh..wh..opq", 0, true},
        {"a/.b/..c", 0, true}, {"...", 0, true},   {"", 0, false},
        {".", 0, false},       {"..", 0, false},   {"etc/.", 0, false},
        {"a/./b", 0, false},   {"a//b", 0, false}, {"/a", 0, false},
        {"a/", 0, false},      {"a/..", 0, false}, {"../a", 0, false},
        {"a\0b", 3, false},
    };
    char *longp = malloc(LAYER_BENEATH_PATH_MAX + 1);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].p);

        ck_assert_msg(layer_beneath_path_valid(cases[i].p, len) == cases[i].ok,
                      "\"%s\"", cases[i].p);
    }
    memset(longp, 'a', LAYER_BENEATH_PATH_MAX + 1);
    ck_assert(layer_beneath_path_valid(longp, LAYER_BENEATH_PATH_MAX));
    ck_assert(!layer_beneath_path_valid(longp, LAYER_BENEATH_PATH_MAX + 1));
    ck_assert(!layer_beneath_path_valid(NULL, 1));
    free(longp);
}
END_TEST

static Suite *beneath_suite(void)
{
    Suite *s = suite_create("beneath");
    TCase *tc = tcase_create("open");

    tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
    tcase_add_test(tc, test_files_open_at_any_depth);
    tcase_add_test(tc, test_malformed_paths_are_refused_before_opening);
    tcase_add_test(tc, test_symlinks_are_never_followed);
    tcase_add_test(tc, test_missing_names_are_not_found);
    tcase_add_test(tc, test_directories_open_and_symlinks_are_named);
    tcase_add_test(tc, test_canonical_paths);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int failed;
    SRunner *sr = srunner_create(beneath_suite());

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
