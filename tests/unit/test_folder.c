/*
 * Transport folders: a folder written from a layer reads back (as
 * LAYER_KIND_FOLDER) into the same changeset, byte for byte as a tar;
 * metadata down to nanosecond times survives; tombstones.txt has its
 * version line and escaped names; and a failed export leaves nothing
 * behind.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../../lib/folder_int.h"
#include "fixture.h"
#include "layer/error.h"
#include "layer/export.h"
#include "layer/folder.h"

/* The whole export of a layer as plain tar, every xattr included. */
static unsigned char *tar_of(size_t *out_len, const layer_dir *l,
                             const layer_dir *parents, size_t np)
{
    layer_export_opts o = {.flags = LAYER_EXPORT_ALL_XATTRS};
    layer_export *x = NULL;
    unsigned char *all = NULL, buf[65536];
    size_t len = 0, n;
    int rc;

    rc = layer_export_start(&x, l, parents, np, &o);
    ck_assert_msg(rc == 0, "%s", layer_error_last());
    while ((rc = layer_export_read(&n, x, buf, sizeof(buf), 0)) == 0) {
        all = realloc(all, len + n);
        ck_assert_ptr_nonnull(all);
        memcpy(all + len, buf, n);
        len += n;
    }
    ck_assert_msg(rc == LAYER_ITEROVER, "%s", layer_export_error(x));
    layer_export_free(x);
    *out_len = len;
    return all;
}

/* Names in a directory, sorted, one per line. */
static char *listing(const char *dir)
{
    struct dirent **names;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    int n = scandir(dir, &names, NULL, alphasort);

    ck_assert_int_ge(n, 0);
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, ".."))
            fprintf(f, "%s\n", names[i]->d_name);
        free(names[i]);
    }
    free(names);
    fclose(f);
    return out;
}

static void assert_same_mtime(const char *a, const char *b)
{
    struct stat sa, sb;

    ck_assert_int_eq(lstat(a, &sa), 0);
    ck_assert_int_eq(lstat(b, &sb), 0);
    ck_assert_int_eq(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
    ck_assert_int_eq(sa.st_mtim.tv_nsec, sb.st_mtim.tv_nsec);
    ck_assert_uint_eq(sa.st_mode, sb.st_mode);
    ck_assert_uint_eq(sa.st_uid, sb.st_uid);
    ck_assert_uint_eq(sa.st_gid, sb.st_gid);
}

START_TEST(test_base_layer_round_trips_through_a_folder)
{
    char *src = fx_tmpdir(), *work = fx_tmpdir();
    char *dest = fx_path(work, "out");
    layer_dir l = {.path = src, .kind = LAYER_KIND_DIFF};
    layer_dir fl = {.path = dest, .kind = LAYER_KIND_FOLDER};
    layer_folder_summary sum;
    unsigned char *want, *got;
    size_t want_len, got_len;
    char *a, *b, *text;
    struct stat s1, s2;
    int rc;

    fx_mkdir(src, "bin", 0755);
    fx_file(src, "bin/sh", "#!/bin/true\n", 04755);
    fx_link(src, "bin/sh", "bin/bash");
    fx_xattr(src, "bin/sh", "user.note", "v1");
    fx_mkdir(src, "dev", 0755);
    fx_mknod(src, "dev/null", S_IFCHR, 1, 3);
    fx_mknod(src, "dev/sda", S_IFBLK, 8, 0);
    fx_fifo(src, "dev/fifo");
    fx_symlink(src, "lib", "usr/lib");
    fx_mkdir(src, "ro", 0555);
    fx_file(src, "ro/inside", "x", 0400);
    fx_chown(src, "ro/inside", 1234, 5678);
    fx_mtime(src, "ro/inside", 1600000000, 987654321);
    fx_mtime(src, "ro", 1500000000, 123456789);
    fx_mtime(src, "bin", 1400000000, 5);
    fx_mtime(src, "lib", 1300000000, 7);
    fx_xattr(src, "ro", "user.dir", "d");

    rc = layer_folder_export(&l, NULL, 0, dest, NULL, &sum);
    ck_assert_msg(rc == 0, "%s", layer_error_last());
    ck_assert_uint_eq(sum.files, sum.entries);
    ck_assert_uint_eq(sum.tombstones, 0);
    ck_assert_uint_eq(sum.bytes, 12 + 1);

    /* the changeset read back from the folder is the same tar */
    want = tar_of(&want_len, &l, NULL, 0);
    got = tar_of(&got_len, &fl, NULL, 0);
    ck_assert_uint_eq(got_len, want_len);
    ck_assert(memcmp(got, want, want_len) == 0);
    free(want);
    free(got);

    /* nanosecond times, including directories written into */
    a = fx_path(src, "ro");
    b = fx_path(dest, "Files/ro");
    assert_same_mtime(a, b);
    free(a);
    free(b);
    a = fx_path(src, "ro/inside");
    b = fx_path(dest, "Files/ro/inside");
    assert_same_mtime(a, b);
    free(a);
    free(b);
    a = fx_path(src, "lib");
    b = fx_path(dest, "Files/lib");
    assert_same_mtime(a, b);
    free(a);
    free(b);
    /* a real hard link, devices with their numbers */
    a = fx_path(dest, "Files/bin/sh");
    b = fx_path(dest, "Files/bin/bash");
    ck_assert_int_eq(stat(a, &s1), 0);
    ck_assert_int_eq(stat(b, &s2), 0);
    ck_assert_uint_eq(s1.st_ino, s2.st_ino);
    ck_assert_uint_eq(s1.st_mode & 07777, 04755);
    free(a);
    free(b);
    a = fx_path(dest, "Files/dev/sda");
    ck_assert_int_eq(lstat(a, &s1), 0);
    ck_assert(S_ISBLK(s1.st_mode));
    ck_assert_uint_eq(major(s1.st_rdev), 8);
    free(a);
    /* tombstones.txt is just the version line */
    a = fx_path(dest, "tombstones.txt");
    {
        FILE *f = fopen(a, "r");
        char line[64] = "";

        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
        ck_assert_str_eq(line, "Version 1.0\n");
        ck_assert_ptr_null(fgets(line, sizeof(line), f));
        fclose(f);
    }
    free(a);
    /* nothing but the folder in its parent */
    text = listing(work);
    ck_assert_str_eq(text, "out\n");
    free(text);
    text = listing(dest);
    ck_assert_str_eq(text, "Files\ntombstones.txt\n");
    free(text);

    fx_rm_rf(src);
    fx_rm_rf(work);
    free(src);
    free(work);
    free(dest);
}
END_TEST

START_TEST(test_tombstones_are_escaped_and_read_back)
{
    char *lower = fx_tmpdir(), *upper = fx_tmpdir(), *work = fx_tmpdir();
    char *dest = fx_path(work, "layer");
    layer_dir l = {.path = upper, .kind = LAYER_KIND_DIFF};
    layer_dir p = {.path = lower, .kind = LAYER_KIND_DIFF};
    layer_dir fl = {.path = dest, .kind = LAYER_KIND_FOLDER};
    layer_folder_summary sum;
    unsigned char *want, *got;
    size_t want_len, got_len;
    char *tomb, *text, *direct, *back;

    fx_mkdir(lower, "etc", 0755);
    fx_file(lower, "etc/passwd", "root\n", 0644);
    fx_file(lower, "etc/we\nird\\name", "x", 0644);
    fx_file(lower, "etc/keep", "k", 0644);
    fx_mkdir(lower, "gone", 0755);
    fx_file(lower, "gone/child", "c", 0644);
    fx_mkdir(upper, "etc", 0755);
    fx_whiteout_chr(upper, "etc/passwd");
    fx_whiteout_chr(upper, "etc/we\nird\\name");
    fx_file(upper, "etc/added", "new\n", 0600);
    fx_whiteout_chr(upper, "gone");

    ck_assert_int_eq(layer_folder_export(&l, &p, 1, dest, NULL, &sum), 0);
    ck_assert_uint_eq(sum.tombstones, 3);

    tomb = fx_path(dest, "tombstones.txt");
    {
        FILE *f = fopen(tomb, "r");
        char buf[512];
        size_t n;

        ck_assert_ptr_nonnull(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        ck_assert_str_eq(buf, "Version 1.0\n"
                              "etc/passwd\n"
                              "etc/we\\nird\\\\name\n"
                              "gone\n");
    }
    free(tomb);

    /* the folder reads back into the same changeset */
    direct = fx_entries(&l, &p, 1);
    back = fx_entries(&fl, NULL, 0);
    ck_assert_ptr_null(strstr(back, "ERROR"));
    ck_assert_ptr_nonnull(strstr(back, "delete none etc/we\nird\\name\n"));
    want = tar_of(&want_len, &l, &p, 1);
    got = tar_of(&got_len, &fl, NULL, 0);
    ck_assert_uint_eq(got_len, want_len);
    ck_assert_msg(memcmp(got, want, want_len) == 0, "direct:\n%s\nback:\n%s",
                  direct, back);
    free(want);
    free(got);
    free(direct);
    free(back);
    text = listing(work);
    ck_assert_str_eq(text, "layer\n");
    free(text);

    fx_rm_rf(lower);
    fx_rm_rf(upper);
    fx_rm_rf(work);
    free(lower);
    free(upper);
    free(work);
    free(dest);
}
END_TEST

START_TEST(test_existing_destination_is_refused)
{
    char *src = fx_tmpdir(), *work = fx_tmpdir();
    char *dest = fx_path(work, "taken");
    layer_dir l = {.path = src, .kind = LAYER_KIND_DIFF};
    char *text;

    fx_file(src, "f", "f", 0644);
    fx_mkdir(work, "taken", 0755);
    ck_assert_int_eq(layer_folder_export(&l, NULL, 0, dest, NULL, NULL),
                     LAYER_EEXISTS);
    text = listing(work);
    ck_assert_str_eq(text, "taken\n");
    free(text);
    free(dest);
    dest = fx_path(work, "missing-parent/out");
    ck_assert_int_eq(layer_folder_export(&l, NULL, 0, dest, NULL, NULL),
                     LAYER_ENOTFOUND);
    ck_assert_int_eq(layer_folder_export(&l, NULL, 0, "", NULL, NULL),
                     LAYER_EINVALID);
    fx_rm_rf(src);
    fx_rm_rf(work);
    free(src);
    free(work);
    free(dest);
}
END_TEST

START_TEST(test_chain_cap_is_checked_before_anything_is_made)
{
    char *src = fx_tmpdir(), *work = fx_tmpdir();
    char *dest = fx_path(work, "out");
    layer_dir l = {.path = src, .kind = LAYER_KIND_DIFF};
    layer_dir *pd = calloc(LAYER_CHAIN_MAX + 1, sizeof(*pd));
    char *text;

    ck_assert_ptr_nonnull(pd);
    fx_file(src, "f", "f", 0644);
    for (int i = 0; i <= LAYER_CHAIN_MAX; i++)
        pd[i] = l;
    ck_assert_int_eq(
        layer_folder_export(&l, pd, LAYER_CHAIN_MAX + 1, dest, NULL, NULL),
        LAYER_EINVALID);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "LAYER_CHAIN_MAX"));
    text = listing(work);
    ck_assert_str_eq(text, "");
    free(text);
    ck_assert_int_eq(
        layer_folder_export(&l, pd, LAYER_CHAIN_MAX, dest, NULL, NULL), 0);
    fx_rm_rf(src);
    fx_rm_rf(work);
    free(src);
    free(work);
    free(dest);
    free(pd);
}
END_TEST

START_TEST(test_failed_export_leaves_no_temporary_folder)
{
    char *src = fx_tmpdir(), *work = fx_tmpdir();
    char *dest = fx_path(work, "out");
    layer_dir l = {.path = src, .kind = LAYER_KIND_DIFF};
    char *text;

    /* files are written before the reader meets the redirect it refuses */
    fx_mkdir(src, "a", 0755);
    fx_file(src, "a/x", "data", 0644);
    fx_mkdir(src, "a/ro", 0500);
    fx_symlink(src, "a/link", "/etc");
    fx_mkdir(src, "b", 0755);
    fx_xattr(src, "b", "trusted.overlay.redirect", "/elsewhere");
    ck_assert_int_lt(layer_folder_export(&l, NULL, 0, dest, NULL, NULL), 0);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "redirect"));
    text = listing(work);
    ck_assert_str_eq(text, "");
    free(text);
    fx_rm_rf(src);
    fx_rm_rf(work);
    free(src);
    free(work);
    free(dest);
}
END_TEST

START_TEST(test_escape_and_unescape_are_inverse)
{
    const char raw[] = "a\\b\nc\rd\\\\";
    char esc[64], back[64];
    size_t n = layer_folder__escape(esc, raw, sizeof(raw) - 1);

    esc[n] = '\0';
    ck_assert_str_eq(esc, "a\\\\b\\nc\\rd\\\\\\\\");
    memcpy(back, esc, n + 1);
    ck_assert_int_eq(layer_folder__unescape(back, &n), 0);
    ck_assert_uint_eq(n, sizeof(raw) - 1);
    ck_assert_str_eq(back, raw);
}
END_TEST

START_TEST(test_bad_escapes_are_refused)
{
    char a[] = "dir\\x";
    char b[] = "trailing\\";
    char c[] = "plain";
    size_t n = strlen(a);

    ck_assert_int_eq(layer_folder__unescape(a, &n), LAYER_EINVALID);
    n = strlen(b);
    ck_assert_int_eq(layer_folder__unescape(b, &n), LAYER_EINVALID);
    n = strlen(c);
    ck_assert_int_eq(layer_folder__unescape(c, &n), 0);
    ck_assert_uint_eq(n, 5);
}
END_TEST

/* A folder holding tombstones.txt = text (len bytes). */
static char *tomb_folder(const char *text, size_t len)
{
    char *dir = fx_tmpdir();

    fx_file_bytes(dir, "tombstones.txt", text, len, 0644);
    return dir;
}

static layer_folder__tombstones *tombs_open(const char *dir, int want_rc)
{
    layer_folder__tombstones *t = NULL;
    int fd = open(dir, O_RDONLY | O_DIRECTORY), rc;

    ck_assert_int_ge(fd, 0);
    rc = layer_folder__tombstones_open(&t, fd, dir);
    close(fd);
    ck_assert_msg(rc == want_rc, "open: %s", layer_error_last());
    return t;
}

static void tomb_is(layer_folder__tombstones *t, const char *want)
{
    const char *path;
    size_t len;
    int rc = layer_folder__tombstones_next(&path, &len, t);

    ck_assert_msg(rc == 0, "%s", layer_error_last());
    ck_assert_str_eq(path, want);
    ck_assert_uint_eq(len, strlen(want));
}

START_TEST(test_tombstones_are_read_back_line_by_line)
{
    static const char text[] = "\xEF\xBB\xBFVersion 1.0\r\n"
                               "etc/old\r\n\n"
                               "back\\\\slash\n"
                               "new\\nline\\rcr\n"
                               "last";
    char *dir = tomb_folder(text, sizeof(text) - 1);
    layer_folder__tombstones *t = tombs_open(dir, 0);
    const char *path;
    size_t len;

    ck_assert_ptr_nonnull(t);
    tomb_is(t, "etc/old");
    tomb_is(t, "back\\slash");
    tomb_is(t, "new\nline\rcr");
    tomb_is(t, "last");
    ck_assert_int_eq(layer_folder__tombstones_next(&path, &len, t),
                     LAYER_ITEROVER);
    layer_folder__tombstones_free(t);
    layer_folder__tombstones_free(NULL);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_bad_tombstones_files_are_broken_and_named)
{
    static const struct {
        const char *text;
        const char *msg; /* after "<dir>/tombstones.txt" */
    } cases[] = {
        {"", " is empty"},
        {"Version 1.1\n", " does not start with \"Version 1.0\""},
        {"Version 1.0x\n", " does not start with \"Version 1.0\""},
        {"Version 1.0\nok\nbad\\escape\n", ": line 3: bad escape"},
#define NOT_CANONICAL                                                          \
    "not a canonical relative path (no leading or trailing '/', no empty, "    \
    "'.' or '..' component)"
        {"Version 1.0\n/abs\n", ": line 2: " NOT_CANONICAL},
        {"Version 1.0\na/../../b\n", ": line 2: " NOT_CANONICAL},
        {"Version 1.0\na//b\n", ": line 2: " NOT_CANONICAL},
        {"Version 1.0\n..\n", ": line 2: " NOT_CANONICAL},
        /* each would become another tar name than its own: "." and
         * "etc/." the whiteouts ".wh.." and "etc/.wh.." */
        {"Version 1.0\n.\n", ": line 2: " NOT_CANONICAL},
        {"Version 1.0\nok\netc/.\n", ": line 3: " NOT_CANONICAL},
        {"Version 1.0\na/./b\n", ": line 2: " NOT_CANONICAL},
        {"Version 1.0\na/\n", ": line 2: " NOT_CANONICAL},
        {"Version 1.0\n\nx\na/b/\r\n", ": line 4: " NOT_CANONICAL},
        {"Version 1.0\n./a\n", ": line 2: " NOT_CANONICAL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *dir = tomb_folder(cases[i].text, strlen(cases[i].text));
        layer_folder__tombstones *t;
        char want[PATH_MAX + 128];
        const char *path;
        size_t len;
        int rc;

        snprintf(want, sizeof(want), "%s/tombstones.txt%s", dir, cases[i].msg);
        if (strncmp(cases[i].msg, ": line", 6) != 0) {
            t = tombs_open(dir, LAYER_EBROKEN);
            ck_assert_ptr_null(t);
        } else {
            t = tombs_open(dir, 0);
            while ((rc = layer_folder__tombstones_next(&path, &len, t)) == 0)
                ;
            ck_assert_int_eq(rc, LAYER_EBROKEN);
            layer_folder__tombstones_free(t);
        }
        ck_assert_str_eq(layer_error_last(), want);
        fx_rm_rf(dir);
        free(dir);
    }
}
END_TEST

START_TEST(test_tombstones_file_odd_cases)
{
    char *dir = fx_tmpdir(), *text;
    layer_folder__tombstones *t;
    const char *path;
    size_t len, n = 70000;

    /* none: nothing was deleted */
    t = tombs_open(dir, 0);
    ck_assert_ptr_null(t);
    /* a FIFO is refused at once, not waited on */
    fx_fifo(dir, "tombstones.txt");
    alarm(10);
    t = tombs_open(dir, LAYER_EBROKEN);
    alarm(0);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "not a regular file"));
    fx_unlink(dir, "tombstones.txt");
    /* a line over 64 KiB */
    text = malloc(n);
    ck_assert_ptr_nonnull(text);
    memcpy(text, "Version 1.0\n", 12);
    memset(text + 12, 'a', n - 13);
    text[n - 1] = '\n';
    fx_file_bytes(dir, "tombstones.txt", text, n, 0644);
    free(text);
    t = tombs_open(dir, 0);
    ck_assert_int_eq(layer_folder__tombstones_next(&path, &len, t),
                     LAYER_EBROKEN);
    ck_assert_ptr_nonnull(
        strstr(layer_error_last(), "line 2 is longer than 65535 bytes"));
    layer_folder__tombstones_free(t);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

static Suite *folder_suite(void)
{
    Suite *s = suite_create("folder");
    TCase *tc = tcase_create("export");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_base_layer_round_trips_through_a_folder);
    tcase_add_test(tc, test_tombstones_are_escaped_and_read_back);
    tcase_add_test(tc, test_existing_destination_is_refused);
    tcase_add_test(tc, test_failed_export_leaves_no_temporary_folder);
    tcase_add_test(tc, test_chain_cap_is_checked_before_anything_is_made);
    tcase_add_test(tc, test_escape_and_unescape_are_inverse);
    tcase_add_test(tc, test_bad_escapes_are_refused);
    tcase_add_test(tc, test_tombstones_are_read_back_line_by_line);
    tcase_add_test(tc, test_bad_tombstones_files_are_broken_and_named);
    tcase_add_test(tc, test_tombstones_file_odd_cases);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(folder_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
