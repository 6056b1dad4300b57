/*
 * Tests of the layer reader (lib/reader.c): each case builds layer trees
 * on disk and asserts the exact entry sequence.
 */
#include <check.h>
#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fixture.h"
#include "layer/error.h"
#include "layer/reader.h"
#include "../../lib/xattr_int.h"

static char *tmp;

static void setup(void)
{
    tmp = fx_tmpdir();
}

static void teardown(void)
{
    fx_rm_rf(tmp);
    free(tmp);
}

/* tmp/<name>, created */
static char *dir(const char *name)
{
    fx_mkdir(tmp, name, 0755);
    return fx_path(tmp, name);
}

#define ASSERT_ENTRIES(got, want)                                              \
    do {                                                                       \
        char *g_ = (got);                                                      \
        ck_assert_msg(strcmp(g_, (want)) == 0, "got:\n%s\nwant:\n%s", g_,      \
                      (want));                                                 \
        free(g_);                                                              \
    } while (0)

START_TEST(test_reader_base__every_entry_type)
{
    char *l = dir("l");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char *sock = fx_path(l, "s");
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);

    fx_mkdir(l, "d", 0755);
    fx_file(l, "d/f", "hello", 0644);
    fx_link(l, "d/f", "d/g");
    fx_symlink(l, "l", "d/f");
    fx_mknod(l, "c", S_IFCHR, 1, 3);
    fx_mknod(l, "b", S_IFBLK, 8, 1);
    fx_fifo(l, "p");
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    ck_assert(sfd >= 0);
    ck_assert(bind(sfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(sfd);
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, NULL, 0),
                   "add block b\n"
                   "add char c\n"
                   "add dir d\n"
                   "add file d/f\n"
                   "add hardlink d/g -> d/f\n"
                   "add symlink l -> d/f\n"
                   "add fifo p\n");
    free(sock);
    free(l);
}
END_TEST

START_TEST(test_reader_base__entry_fields)
{
    char *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;
    const layer_entry *e;
    uint64_t nlink;
    layer_file_id id;
    struct stat st;
    char *p;

    fx_file(l, "f", "data!", 04751);
    fx_chown(l, "f", 1234, 5678);
    fx_chmod(l, "f", 04751);
    fx_mtime(l, "f", 1700000000, 123456789);
    fx_xattr(l, "f", "user.note", "v1");
    fx_mknod(l, "g", S_IFBLK, 8, 17);
    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, NULL), 0);
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    ck_assert_str_eq(e->path, "f");
    ck_assert_int_eq(e->type, LAYER_TYPE_FILE);
    ck_assert_int_eq(e->change, LAYER_CHANGE_ADD);
    ck_assert_uint_eq(e->mode, 04751);
    ck_assert_uint_eq(e->uid, 1234);
    ck_assert_uint_eq(e->gid, 5678);
    ck_assert_uint_eq(e->size, 5);
    ck_assert_int_eq(e->mtime.sec, 1700000000);
    ck_assert_uint_eq(e->mtime.nsec, 123456789);
    ck_assert_uint_eq(e->nlink, 1);
    ck_assert_uint_eq(e->xattr_count, 1);
    ck_assert_str_eq(e->xattrs[0].name, "user.note");
    ck_assert_uint_eq(e->xattrs[0].len, 2);
    ck_assert(memcmp(e->xattrs[0].value, "v1", 2) == 0);
    p = fx_path(l, "f");
    ck_assert(lstat(p, &st) == 0);
    free(p);
    ck_assert_int_eq(layer_reader_link_info(&nlink, &id, r), 0);
    ck_assert_uint_eq(nlink, 1);
    ck_assert_uint_eq(id.ino, st.st_ino);
    ck_assert_uint_eq(id.dev, st.st_dev);
    ck_assert_uint_eq(e->file_id.ino, st.st_ino);
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    ck_assert_str_eq(e->path, "g");
    ck_assert_int_eq(e->type, LAYER_TYPE_BLOCK);
    ck_assert_uint_eq(e->rdev_major, 8);
    ck_assert_uint_eq(e->rdev_minor, 17);
    ck_assert_uint_eq(e->size, 0);
    ck_assert_int_eq(layer_reader_next(&e, r), LAYER_ITEROVER);
    ck_assert_int_eq(layer_reader_next(&e, r), LAYER_ITEROVER);
    layer_reader_free(r);
    free(l);
}
END_TEST

START_TEST(test_reader_diff__both_whiteout_forms)
{
    char *p = dir("p"), *l = dir("l");
    const char *parents[] = {p};

    fx_file(p, "a", "a", 0644);
    fx_file(p, "b", "b", 0644);
    fx_file(p, "c", "c", 0644);
    fx_mkdir(p, "d", 0755);
    fx_file(p, "d/x", "x", 0644);
    fx_whiteout_chr(l, "a");
    fx_whiteout_xattr(l, "b", "trusted");
    fx_whiteout_xattr(l, "c", "user");
    fx_whiteout_chr(l, "d");
    fx_whiteout_chr(l, "zz"); /* no parent has it: dropped */
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, parents, 1),
                   "delete none a\n"
                   "delete none b\n"
                   "delete none c\n"
                   "delete none d\n");
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_diff__whiteout_hides_grandparent_path)
{
    char *g = dir("g"), *p = dir("p"), *l = dir("l");
    const char *parents[] = {p, g};

    fx_file(g, "a", "a", 0644);
    fx_file(g, "b", "b", 0644);
    fx_whiteout_chr(p, "a"); /* already deleted by the parent */
    fx_whiteout_chr(l, "a"); /* so this one hides nothing */
    fx_whiteout_chr(l, "b");
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, parents, 2),
                   "delete none b\n");
    free(g);
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_diff__opaque_y_versus_x)
{
    char *p = dir("p"), *l = dir("l");
    const char *parents[] = {p};

    fx_mkdir(p, "o", 0755);
    fx_file(p, "o/keep", "k", 0644);
    fx_file(p, "o/old1", "o", 0644);
    fx_mkdir(p, "o/sub", 0755);
    fx_file(p, "o/sub/deep", "d", 0644);
    fx_mkdir(p, "x", 0755);
    fx_file(p, "x/old", "o", 0644);
    fx_mkdir(p, "u", 0755);
    fx_file(p, "u/old", "o", 0644);

    fx_mkdir(l, "o", 0755);
    fx_xattr(l, "o", "trusted.overlay.opaque", "y");
    fx_file(l, "o/new", "n", 0644);
    fx_mkdir(l, "o/sub", 0755); /* inside an opaque dir: replaces */
    fx_mkdir(l, "u", 0755);
    fx_xattr(l, "u", "user.overlay.opaque", "y");
    fx_mkdir(l, "x", 0755);
    fx_xattr(l, "x", "trusted.overlay.opaque", "x");
    fx_file(l, "x/new", "n", 0644);
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, parents, 1),
                   "modify dir o\n"
                   "delete none o/keep\n"
                   "add file o/new\n"
                   "delete none o/old1\n"
                   "modify dir o/sub\n"
                   "delete none o/sub/deep\n"
                   "modify dir u\n"
                   "delete none u/old\n"
                   "modify dir x\n"
                   "add file x/new\n");
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_diff__opaque_flag_on_entry)
{
    char *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;
    const layer_entry *e;

    fx_mkdir(l, "o", 0755);
    fx_xattr(l, "o", "trusted.overlay.opaque", "y");
    fx_mkdir(l, "x", 0755);
    fx_xattr(l, "x", "trusted.overlay.opaque", "x");
    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, NULL), 0);
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    ck_assert_str_eq(e->path, "o");
    ck_assert(e->opaque);
    ck_assert_uint_eq(e->xattr_count, 0); /* overlay.* are not data */
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    ck_assert_str_eq(e->path, "x");
    ck_assert(!e->opaque);
    layer_reader_free(r);
    free(l);
}
END_TEST

START_TEST(test_reader_diff__redirect_refused)
{
    char *l = dir("l");

    fx_mkdir(l, "r", 0755);
    fx_xattr(l, "r", "trusted.overlay.redirect", "/elsewhere");
    ASSERT_ENTRIES(
        fx_entries_kind(LAYER_KIND_DIFF, l, NULL, 0),
        "ERROR LAYER_EUNSUPPORTED: r: overlay redirect "
        "(redirect_dir) cannot be exported from the layer directory\n");
    free(l);
}
END_TEST

START_TEST(test_reader_diff__metacopy_refused)
{
    char *l = dir("l");

    fx_file(l, "a", "", 0644);
    fx_file(l, "m", "", 0644);
    fx_xattr(l, "m", "user.overlay.metacopy", "");
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, NULL, 0),
                   "add file a\n"
                   "ERROR LAYER_EUNSUPPORTED: m: overlay "
                   "metacopy file holds no data in the layer directory\n");
    free(l);
}
END_TEST

START_TEST(test_reader_diff__deleted_directory_is_one_tombstone)
{
    char *p = dir("p"), *l = dir("l");
    const char *parents[] = {p};

    fx_mkdir(p, "gone", 0755);
    fx_mkdir(p, "gone/sub", 0755);
    fx_file(p, "gone/sub/f", "f", 0644);
    fx_file(p, "gone/g", "g", 0644);
    fx_whiteout_chr(l, "gone");
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, parents, 1),
                   "delete none gone\n");
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_diff__parents_emitted_once)
{
    char *p = dir("p"), *l = dir("l");
    const char *parents[] = {p};

    fx_mkdir(p, "a", 0755);
    fx_mkdir(p, "a/b", 0755);
    fx_mkdir(p, "a/b/c", 0755);
    fx_file(p, "a/b/c/old", "o", 0644);
    fx_mkdir(l, "a", 0755);
    fx_mkdir(l, "a/b", 0755);
    fx_mkdir(l, "a/b/c", 0755);
    fx_file(l, "a/b/c/new1", "1", 0644);
    fx_file(l, "a/b/c/new2", "2", 0644);
    fx_whiteout_chr(l, "a/b/c/old");
    fx_mkdir(l, "a/b/d", 0700); /* a new dir: emitted as an addition */
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, parents, 1),
                   "modify dir a\n"
                   "modify dir a/b\n"
                   "modify dir a/b/c\n"
                   "add file a/b/c/new1\n"
                   "add file a/b/c/new2\n"
                   "delete none a/b/c/old\n"
                   "add dir a/b/d\n");
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_diff__unchanged_copied_up_dir_not_emitted)
{
    char *p = dir("p"), *l = dir("l");
    const char *parents[] = {p};

    fx_mkdir(p, "same", 0755);
    fx_mkdir(p, "chmod", 0755);
    fx_mkdir(l, "same", 0755);  /* copied up, nothing below changed */
    fx_mkdir(l, "chmod", 0700); /* metadata changed */
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, parents, 1),
                   "modify dir chmod\n");
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_base__order_is_bytewise_with_slash_lowest)
{
    char *l = dir("l");

    fx_mkdir(l, "a", 0755);
    fx_file(l, "a/b", "", 0644);
    fx_file(l, "a.txt", "", 0644);
    fx_file(l, "a-b", "", 0644);
    fx_file(l, "B", "", 0644);
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, NULL, 0),
                   "add file B\n"
                   "add dir a\n"
                   "add file a/b\n"
                   "add file a-b\n"
                   "add file a.txt\n");
    free(l);
}
END_TEST

START_TEST(test_reader_base__hardlinks_in_one_directory)
{
    char *l = dir("l");

    fx_mkdir(l, "d", 0755);
    fx_file(l, "d/x", "x", 0644);
    fx_link(l, "d/x", "d/y");
    fx_link(l, "d/x", "d/z");
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, NULL, 0),
                   "add dir d\n"
                   "add file d/x\n"
                   "add hardlink d/y -> d/x\n"
                   "add hardlink d/z -> d/x\n");
    free(l);
}
END_TEST

START_TEST(test_reader_base__hardlinks_across_directories)
{
    char *l = dir("l");

    fx_mkdir(l, "d1", 0755);
    fx_mkdir(l, "d2", 0755);
    fx_file(l, "d2/y", "y", 0644);
    fx_link(l, "d2/y", "d1/x");
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, NULL, 0),
                   "add dir d1\n"
                   "add file d1/x\n"
                   "add dir d2\n"
                   "add hardlink d2/y -> d1/x\n");
    free(l);
}
END_TEST

START_TEST(test_reader_snapshot__changed_link_group_reemits_unchanged)
{
    char *p = dir("p"), *l = dir("l");
    const char *parents[] = {p};

    fx_mkdir(p, "d1", 0755);
    fx_file(p, "d1/a", "A", 0644);
    fx_mtime(p, "d1/a", 1000, 5);
    fx_mkdir(l, "d1", 0755);
    fx_file(l, "d1/a", "A", 0644);
    fx_mtime(l, "d1/a", 1000, 5); /* unchanged from the parent */
    fx_mkdir(l, "d2", 0755);
    fx_link(l, "d1/a", "d2/c"); /* a new name in the same group */
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_SNAPSHOT, l, parents, 1),
                   "add dir d2\n"
                   "add file d2/c\n"
                   "modify dir d1\n"
                   "modify hardlink d1/a -> d2/c\n");
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_snapshot__unchanged_member_after_source)
{
    char *p = dir("p"), *l = dir("l");
    const char *parents[] = {p};

    fx_file(p, "b", "B", 0644);
    fx_mtime(p, "b", 1000, 5);
    fx_file(l, "b", "B", 0644);
    fx_mtime(l, "b", 1000, 5);
    fx_link(l, "b", "a"); /* "a" sorts first and is new */
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_SNAPSHOT, l, parents, 1),
                   "add file a\n"
                   "modify hardlink b -> a\n");
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_snapshot__comparisons)
{
    char *p = dir("p"), *l = dir("l");
    const char *parents[] = {p};
    const char *files[] = {"f1", "f2", "f3", "f4", "f5"};
    char *ps, *ls;

    for (int i = 0; i < 5; i++) {
        fx_file(p, files[i], "aaaa", 0644);
        fx_file(l, files[i], "aaaa", 0644);
    }
    fx_chmod(l, "f1", 0600);        /* chmod only */
    fx_chown(l, "f2", 1000, 1000);  /* chown only */
    fx_file(l, "f3", "bbbb", 0644); /* same size, same second */
    for (int i = 0; i < 5; i++) {
        fx_mtime(p, files[i], 1000, 0);
        fx_mtime(l, files[i], 1000, 0);
    }
    fx_mtime(p, "f4", 1000, 1); /* differing nanoseconds */
    fx_mtime(l, "f4", 1000, 2);
    ps = fx_path(p, "s");
    ls = fx_path(l, "s");
    fx_file(p, "s", "same inode", 0644);
    ck_assert(link(ps, ls) == 0);
    fx_symlink(p, "s1", "x");
    fx_symlink(l, "s1", "y");
    fx_mtime(p, "s1", 1000, 0);
    fx_mtime(l, "s1", 1000, 0);
    fx_file(p, "t1", "file", 0644); /* file -> dir */
    fx_mkdir(l, "t1", 0755);
    fx_file(l, "t1/in", "in", 0644);
    fx_mkdir(p, "t2", 0755); /* dir -> file */
    fx_file(p, "t2/z", "z", 0644);
    fx_file(l, "t2", "file", 0644);
    fx_file(p, "gone", "g", 0644);
    fx_mkdir(p, "gonedir", 0755);
    fx_file(p, "gonedir/x", "x", 0644);
    fx_file(l, "new", "n", 0644);
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_SNAPSHOT, l, parents, 1),
                   "modify file f1\n"
                   "modify file f2\n"
                   "modify file f3\n"
                   "modify file f4\n"
                   "delete none gone\n"
                   "delete none gonedir\n"
                   "add file new\n"
                   "modify symlink s1 -> y\n"
                   "modify dir t1\n"
                   "add file t1/in\n"
                   "modify file t2\n");
    free(ps);
    free(ls);
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_snapshot__content_compare_needs_both_nsec_zero)
{
    char *p = dir("p"), *l = dir("l");
    const char *parents[] = {p};

    /* same size, same second, same nsec != 0: taken as unchanged even
     * though the bytes differ (continuity's rule) */
    fx_file(p, "f", "aaaa", 0644);
    fx_file(l, "f", "bbbb", 0644);
    fx_mtime(p, "f", 1000, 7);
    fx_mtime(l, "f", 1000, 7);
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_SNAPSHOT, l, parents, 1), "");
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_snapshot__over_diff_chain)
{
    char *g = dir("g"), *p = dir("p"), *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_SNAPSHOT};
    layer_dir pd[] = {{.path = p, .kind = LAYER_KIND_DIFF},
                      {.path = g, .kind = LAYER_KIND_DIFF}};

    fx_file(g, "a", "a", 0644);
    fx_file(g, "b", "b", 0644);
    fx_mtime(g, "a", 1000, 0);
    fx_whiteout_chr(p, "b");
    fx_file(l, "a", "a", 0644);
    fx_mtime(l, "a", 1000, 0);
    fx_file(l, "c", "c", 0644);
    /* the merged parent view is {a}: l adds c and nothing else */
    ASSERT_ENTRIES(fx_entries(&ld, pd, 2), "add file c\n");
    free(g);
    free(p);
    free(l);
}
END_TEST

/* mkdir/openat chain deeper than PATH_MAX allows by absolute paths */
START_TEST(test_reader_base__paths_longer_than_4096_bytes)
{
    char *l = dir("l");
    char name[201];
    int fd = open(l, O_RDONLY | O_DIRECTORY);
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;
    const layer_entry *e;
    size_t n = 0, last = 0;
    int rc;

    memset(name, 'n', 200);
    name[200] = '\0';
    ck_assert(fd >= 0);
    for (int i = 0; i < 21; i++) {
        int next;

        ck_assert(mkdirat(fd, name, 0755) == 0);
        next = openat(fd, name, O_RDONLY | O_DIRECTORY);
        ck_assert(next >= 0);
        close(fd);
        fd = next;
    }
    {
        int f = openat(fd, "leaf", O_WRONLY | O_CREAT, 0644);
        ck_assert(f >= 0);
        ck_assert(write(f, "x", 1) == 1);
        close(f);
    }
    close(fd);
    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, NULL), 0);
    while ((rc = layer_reader_next(&e, r)) == 0) {
        n++;
        last = e->path_len;
        ck_assert_uint_eq(strlen(e->path), e->path_len);
    }
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    ck_assert_uint_eq(n, 22);
    ck_assert_uint_eq(last, 21 * 201 + 4);
    ck_assert_uint_gt(last, 4096);
    layer_reader_free(r);
    free(l);
}
END_TEST

START_TEST(test_reader_base__names_that_are_not_utf8)
{
    char *l = dir("l");

    fx_file(l, "\xff\xfe", "", 0644);
    fx_file(l, "ok\xc3\xa9", "", 0644);
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, NULL, 0),
                   "add file ok\xc3\xa9\n"
                   "add file \xff\xfe\n");
    free(l);
}
END_TEST

START_TEST(test_reader_base__empty_layer)
{
    char *l = dir("l");
    char *p = dir("p");
    const char *parents[] = {p};

    fx_file(p, "x", "x", 0644);
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, NULL, 0), "");
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, parents, 1), "");
    free(l);
    free(p);
}
END_TEST

START_TEST(test_reader_base__symlinks_outside_and_loops_not_followed)
{
    char *l = dir("l"), *p = dir("p");
    const char *parents[] = {p};

    fx_symlink(l, "abs", "/etc");
    fx_symlink(l, "rel", "../../../../etc");
    fx_symlink(l, "loop", "loop");
    fx_mkdir(l, "d", 0755);
    fx_symlink(l, "d/up", "..");
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, NULL, 0),
                   "add symlink abs -> /etc\n"
                   "add dir d\n"
                   "add symlink d/up -> ..\n"
                   "add symlink loop -> loop\n"
                   "add symlink rel -> ../../../../etc\n");
    /* a parent whose "etc" is a symlink to the host's /etc: the layer's
     * etc/ directory replaces it, nothing behind it is looked at */
    fx_symlink(p, "etc", "/etc");
    fx_mkdir(l, "etc", 0755);
    fx_file(l, "etc/passwd", "mine", 0644);
    fx_unlink(l, "abs");
    fx_unlink(l, "rel");
    fx_unlink(l, "loop");
    fx_unlink(l, "d/up");
    ASSERT_ENTRIES(fx_entries_kind(LAYER_KIND_DIFF, l, parents, 1),
                   "add dir d\n"
                   "modify dir etc\n"
                   "add file etc/passwd\n");
    free(l);
    free(p);
}
END_TEST

START_TEST(test_reader__use_after_close_is_an_error)
{
    char *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;
    const layer_entry *e;
    char buf[8];
    size_t n;
    uint64_t nlink;
    layer_file_id id;
    layer_reader_stats st;

    fx_file(l, "f", "x", 0644);
    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, NULL), 0);
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    layer_reader_close(r);
    ck_assert_int_eq(layer_reader_next(&e, r), LAYER_ECLOSED);
    ck_assert_int_eq(layer_reader_read(&n, r, buf, sizeof(buf)), LAYER_ECLOSED);
    ck_assert_int_eq(layer_reader_link_info(&nlink, &id, r), LAYER_ECLOSED);
    ck_assert_int_eq(layer_reader_stats_get(&st, r), LAYER_ECLOSED);
    layer_reader_close(r); /* twice is fine */
    layer_reader_free(r);
    free(l);
}
END_TEST

START_TEST(test_reader__missing_layer_directory)
{
    layer_dir ld = {.path = "/nonexistent/layerd/layer",
                    .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;

    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, NULL),
                     LAYER_ENOTFOUND);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(layer_error_last(), "layer /nonexistent/layerd/layer: "
                                         "No such file or directory");
}
END_TEST

/* Read the whole current entry; returns bytes read. */
static size_t read_all(layer_reader *r, char *buf, size_t cap, int *rc)
{
    size_t total = 0, n;

    for (;;) {
        *rc = layer_reader_read(&n, r, buf + total, cap - total);
        if (*rc < 0 || n == 0)
            return total;
        total += n;
    }
}

/* on_warning: counts the calls and keeps the last message. */
static int warnings_seen;
static char warning_text[512];

static void count_warning(void *arg, const char *message)
{
    (void)arg;
    warnings_seen++;
    snprintf(warning_text, sizeof(warning_text), "%s", message);
}

START_TEST(test_reader_read__allow_changing_pads_a_file_that_shrinks)
{
    char *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_reader_opts opts = {.flags = LAYER_READER_ALLOW_CHANGING,
                              .on_warning = count_warning};
    layer_reader *r = NULL;
    const layer_entry *e;
    layer_reader_stats st;
    char buf[64];
    int rc;
    char *p = fx_path(l, "f");

    warnings_seen = 0;
    fx_file(l, "f", "0123456789", 0644);
    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, &opts), 0);
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    ck_assert_uint_eq(e->size, 10);
    ck_assert(truncate(p, 4) == 0);
    ck_assert_uint_eq(read_all(r, buf, sizeof(buf), &rc), 10);
    ck_assert_int_eq(rc, 0);
    ck_assert(memcmp(buf, "0123\0\0\0\0\0\0", 10) == 0);
    ck_assert_int_eq(layer_reader_stats_get(&st, r), 0);
    ck_assert_uint_eq(st.warnings, 1);
    ck_assert(strstr(layer_reader_last_warning(r), "shrank") != NULL);
    /* one call per file, with the same message */
    ck_assert_int_eq(warnings_seen, 1);
    ck_assert_str_eq(warning_text, layer_reader_last_warning(r));
    layer_reader_free(r);
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_read__allow_changing_cuts_a_file_that_grows)
{
    char *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_reader_opts opts = {.flags = LAYER_READER_ALLOW_CHANGING};
    layer_reader *r = NULL;
    const layer_entry *e;
    layer_reader_stats st;
    char buf[64];
    int rc;

    fx_file(l, "f", "0123", 0644);
    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, &opts), 0);
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    fx_file(l, "f", "0123456789", 0644);
    ck_assert_uint_eq(read_all(r, buf, sizeof(buf), &rc), 4);
    ck_assert_int_eq(rc, 0);
    ck_assert(memcmp(buf, "0123", 4) == 0);
    ck_assert_int_eq(layer_reader_stats_get(&st, r), 0);
    ck_assert_uint_eq(st.warnings, 1);
    ck_assert(strstr(layer_reader_last_warning(r), "grew") != NULL);
    layer_reader_free(r);
    free(l);
}
END_TEST

/* How a file changes between its listing and the end of its read. */
typedef enum change_how {
    CHANGE_TRUNCATE, /* shrinks */
    CHANGE_GROW,     /* appended to */
    CHANGE_REWRITE,  /* same size, new bytes, mtime put back */
    CHANGE_CHMOD,    /* metadata only: ctime moves */
    CHANGE_REPLACE,  /* another file renamed over it */
    CHANGE_REMOVE    /* unlinked */
} change_how;

static void change_file(const char *l, const char *p, change_how how)
{
    struct stat st;
    struct timespec ts[2];
    int fd;

    ck_assert(stat(p, &st) == 0);
    switch (how) {
    case CHANGE_TRUNCATE:
        ck_assert(truncate(p, 2) == 0);
        break;
    case CHANGE_GROW:
        fd = open(p, O_WRONLY | O_APPEND);
        ck_assert(fd >= 0 && write(fd, "more", 4) == 4);
        close(fd);
        break;
    case CHANGE_REWRITE:
        fd = open(p, O_WRONLY);
        ck_assert(fd >= 0 && pwrite(fd, "XY", 2, 6) == 2);
        close(fd);
        ts[0] = st.st_atim;
        ts[1] = st.st_mtim;
        ck_assert(utimensat(AT_FDCWD, p, ts, 0) == 0);
        break;
    case CHANGE_CHMOD:
        ck_assert(chmod(p, 0600) == 0);
        break;
    case CHANGE_REPLACE:
        fx_file(l, "g", "9876543210", 0644);
        {
            char *g = fx_path(l, "g");

            ck_assert(rename(g, p) == 0);
            free(g);
        }
        break;
    case CHANGE_REMOVE:
        ck_assert(unlink(p) == 0);
        break;
    }
}

/* The default: any change after the listing, before or during the read,
 * is LAYER_ECHANGED, and the reader stays failed. */
static void assert_change_refused(change_how how, size_t first_read)
{
    char *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;
    const layer_entry *e;
    char buf[64];
    size_t n;
    int rc;
    char *p = fx_path(l, "f");

    fx_file(l, "f", "0123456789", 0644);
    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, NULL), 0);
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    if (first_read > 0) {
        ck_assert_int_eq(layer_reader_read(&n, r, buf, first_read), 0);
        ck_assert_uint_eq(n, first_read);
    }
    change_file(l, p, how);
    read_all(r, buf, sizeof(buf), &rc);
    ck_assert_msg(rc == LAYER_ECHANGED, "change %d after %zu bytes: rc %d",
                  (int)how, first_read, rc);
    ck_assert_int_eq(layer_error_last_code(), LAYER_ECHANGED);
    ck_assert(strstr(layer_error_last(), "f: file ") != NULL);
    ck_assert_int_eq(layer_reader_next(&e, r), LAYER_ECHANGED);
    layer_reader_free(r);
    free(p);
    fx_rm_rf(l);
    free(l);
}

START_TEST(test_reader_read__changed_file_is_refused_by_default)
{
    static const change_how hows[] = {CHANGE_TRUNCATE, CHANGE_GROW,
                                      CHANGE_REWRITE,  CHANGE_CHMOD,
                                      CHANGE_REPLACE,  CHANGE_REMOVE};

    for (size_t i = 0; i < sizeof(hows) / sizeof(hows[0]); i++) {
        /* between the listing and the open */
        assert_change_refused(hows[i], 0);
        /* in the middle of the read (replace and remove keep the open
         * file, which no longer is the layer's: only the others show) */
        if (hows[i] != CHANGE_REPLACE && hows[i] != CHANGE_REMOVE)
            assert_change_refused(hows[i], 3);
    }
}
END_TEST

/* A range that stops short of the end is checked too. */
START_TEST(test_reader_read__changed_file_is_refused_in_a_range)
{
    char *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;
    const layer_entry *e;
    char buf[4];
    size_t n;
    char *p = fx_path(l, "f");

    fx_file(l, "f", "0123456789", 0644);
    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, NULL), 0);
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    ck_assert_int_eq(layer_reader_seek(r, 2), 0);
    ck_assert_int_eq(layer_reader_read(&n, r, buf, 2), 0);
    ck_assert(n == 2 && memcmp(buf, "23", 2) == 0);
    change_file(l, p, CHANGE_REWRITE);
    ck_assert_int_eq(layer_reader_read(&n, r, buf, 2), LAYER_ECHANGED);
    layer_reader_free(r);
    free(p);
    free(l);
}
END_TEST

START_TEST(test_reader_read__yields_exact_bytes_in_small_reads)
{
    char *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;
    const layer_entry *e;
    char big[100000], got[100000];
    size_t total = 0, n;

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    fx_file_bytes(l, "big", big, sizeof(big), 0644);
    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, NULL), 0);
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    do {
        ck_assert_int_eq(layer_reader_read(&n, r, got + total, 777), 0);
        total += n;
    } while (n > 0);
    ck_assert_uint_eq(total, sizeof(big));
    ck_assert(memcmp(big, got, sizeof(big)) == 0);
    layer_reader_free(r);
    free(l);
}
END_TEST

START_TEST(test_reader_read__seek_skips_ahead_only)
{
    char *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;
    const layer_entry *e;
    char buf[16];
    size_t n;

    fx_file(l, "f", "0123456789", 0644);
    ck_assert_int_eq(layer_reader_open(&r, &ld, NULL, 0, NULL), 0);
    ck_assert_int_eq(layer_reader_next(&e, r), 0);
    ck_assert_int_eq(layer_reader_read(&n, r, buf, 2), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(layer_reader_seek(r, 1), LAYER_EINVALID);  /* back */
    ck_assert_int_eq(layer_reader_seek(r, 11), LAYER_EINVALID); /* past */
    ck_assert_int_eq(layer_reader_seek(r, 7), 0);
    ck_assert_int_eq(layer_reader_read(&n, r, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert(memcmp(buf, "789", 3) == 0);
    ck_assert_int_eq(layer_reader_read(&n, r, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(layer_reader_seek(r, 10), 0); /* at the end: fine */
    layer_reader_free(r);
    free(l);
}
END_TEST

START_TEST(test_reader__same_tree_same_sequence)
{
    char *p = dir("p"), *l = dir("l");
    const char *parents[] = {p};
    char *a, *b;

    for (int i = 0; i < 50; i++) {
        char n[32];

        snprintf(n, sizeof(n), "d%02d", (i * 37) % 50);
        fx_mkdir(l, n, 0755);
        snprintf(n, sizeof(n), "d%02d/f%d", (i * 37) % 50, i);
        fx_file(l, n, "x", 0644);
        snprintf(n, sizeof(n), "g%d", i);
        fx_file(p, n, "y", 0644);
        if (i % 3 == 0)
            fx_whiteout_chr(l, n);
    }
    a = fx_entries_kind(LAYER_KIND_DIFF, l, parents, 1);
    b = fx_entries_kind(LAYER_KIND_DIFF, l, parents, 1);
    ck_assert_str_eq(a, b);
    ck_assert(strstr(a, "ERROR") == NULL);
    free(a);
    free(b);
    free(p);
    free(l);
}
END_TEST

/* Entries with their xattrs: "change type path name=value ..." lines. */
static char *xattr_listing(const char *layer, const char *parent)
{
    layer_dir l = {.path = layer, .kind = LAYER_KIND_DIFF};
    layer_dir pd = {.path = parent, .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;
    const layer_entry *e;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    int rc;

    ck_assert(f != NULL);
    ck_assert_int_eq(layer_reader_open(&r, &l, &pd, 1, NULL), 0);
    while ((rc = layer_reader_next(&e, r)) == 0) {
        fprintf(f, "%s %s %s%s", layer_change_name(e->change),
                layer_type_name(e->type), e->path, e->opaque ? " opaque" : "");
        for (size_t i = 0; i < e->xattr_count; i++)
            fprintf(f, " %s=%.*s", e->xattrs[i].name, (int)e->xattrs[i].len,
                    (const char *)e->xattrs[i].value);
        fputc('\n', f);
    }
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    layer_reader_free(r);
    fclose(f);
    return out;
}

/*
 * Xattrs of every entry type (read with listxattrat/getxattrat on the
 * entry's name in its directory) come out the same through the fallback
 * over /proc/self/fd that kernels before 6.13 use, whiteouts and opaque
 * markers included; symlinks are not followed.
 */
START_TEST(test_reader_diff__xattrs_same_through_proc_fallback)
{
    char *p = dir("p"), *l = dir("l");
    static const char want[] = "delete none a\n"
                               "add block b trusted.b=6\n"
                               "add char c trusted.c=5\n"
                               "modify dir d opaque user.d=3\n"
                               "delete none d/x\n"
                               "add file f trusted.t=2 user.f=1\n"
                               "add fifo i trusted.i=7\n"
                               "add symlink s trusted.s=4\n"
                               "add symlink t trusted.t=9\n"
                               "add file z user.z=8\n";
    char *fast, *slow;

    fx_file(p, "a", "a", 0644);
    fx_mkdir(p, "d", 0755);
    fx_file(p, "d/x", "x", 0644);
    fx_whiteout_xattr(l, "a", "user");
    fx_mknod(l, "b", S_IFBLK, 8, 1);
    fx_xattr(l, "b", "trusted.b", "6");
    fx_mknod(l, "c", S_IFCHR, 1, 3);
    fx_xattr(l, "c", "trusted.c", "5");
    fx_mkdir(l, "d", 0755);
    fx_xattr(l, "d", "trusted.overlay.opaque", "y");
    fx_xattr(l, "d", "user.d", "3");
    fx_file(l, "f", "data", 0644);
    fx_xattr(l, "f", "user.f", "1");
    fx_xattr(l, "f", "trusted.t", "2");
    fx_fifo(l, "i");
    fx_xattr(l, "i", "trusted.i", "7");
    fx_symlink(l, "s", "f"); /* its target's xattrs must not show */
    fx_xattr(l, "s", "trusted.s", "4");
    fx_symlink(l, "t", "/nonexistent");
    fx_xattr(l, "t", "trusted.t", "9");
    fx_file(l, "z", "", 0644); /* empty: checked for whiteout first */
    fx_xattr(l, "z", "user.z", "8");
    fast = xattr_listing(l, p);
    layer_xattr__xattrat_set(false);
    slow = xattr_listing(l, p);
    layer_xattr__xattrat_set(true);
    ck_assert_msg(strcmp(fast, want) == 0, "got:\n%s\nwant:\n%s", fast, want);
    ck_assert_msg(strcmp(slow, want) == 0, "got:\n%s\nwant:\n%s", slow, want);
    free(slow);
    free(fast);
    free(p);
    free(l);
}
END_TEST

/* LAYER_CHAIN_MAX parents, each holding a name the layer's opaque root
 * hides: every name is a tombstone, the farthest parent's included (its
 * index must fit the reader's index type); one parent more is refused
 * before anything is opened. */
START_TEST(test_reader__chain_cap)
{
    char *l = dir("l");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_dir gone = {.path = "/nonexistent/layerd", .kind = LAYER_KIND_DIFF};
    layer_dir *pd = calloc(LAYER_CHAIN_MAX + 1, sizeof(*pd));
    layer_reader *r = NULL;
    const layer_entry *e;
    char name[32], want[32];
    size_t n = 0;
    int rc;

    ck_assert_ptr_nonnull(pd);
    for (int i = 0; i <= LAYER_CHAIN_MAX; i++) {
        char *p;

        snprintf(name, sizeof(name), "p%03d", i);
        p = dir(name);
        snprintf(name, sizeof(name), "f%03d", i);
        fx_file(p, name, "x", 0644);
        pd[i].path = p;
        pd[i].kind = LAYER_KIND_DIFF;
    }
    fx_xattr(l, ".", "trusted.overlay.opaque", "y");
    ck_assert_int_eq(layer_reader_open(&r, &ld, pd, LAYER_CHAIN_MAX, NULL), 0);
    while ((rc = layer_reader_next(&e, r)) == 0) {
        snprintf(want, sizeof(want), "f%03zu", n);
        ck_assert_str_eq(e->path, want);
        ck_assert_int_eq(e->change, LAYER_CHANGE_DELETE);
        n++;
    }
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    ck_assert_uint_eq(n, LAYER_CHAIN_MAX);
    layer_reader_free(r);
    r = NULL;
    ck_assert_int_eq(layer_reader_open(&r, &ld, pd, LAYER_CHAIN_MAX + 1, NULL),
                     LAYER_EINVALID);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(layer_error_last(),
                     "129 parents: a layer has at most 128 (LAYER_CHAIN_MAX)");
    /* checked first: a missing layer directory is not even looked at */
    ck_assert_int_eq(
        layer_reader_open(&r, &gone, pd, LAYER_CHAIN_MAX + 1, NULL),
        LAYER_EINVALID);
    for (int i = 0; i <= LAYER_CHAIN_MAX; i++)
        free((char *)pd[i].path);
    free(pd);
    free(l);
}
END_TEST

/* ---- the descriptor budget ---- */

/* Descriptors this process holds. */
static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the one opendir holds */
}

/* A chain of depth directories named name under root (through fds, as
 * the paths outgrow PATH_MAX); at every level, when asked, a file "z"
 * (what) and "y": a whiteout (layer) or a file (parent). */
static void deep_tree(const char *root, int depth, const char *name, bool z,
                      int y)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY);

    ck_assert_int_ge(fd, 0);
    for (int i = 0; i < depth; i++) {
        int next;

        ck_assert(mkdirat(fd, name, 0755) == 0);
        next = openat(fd, name, O_RDONLY | O_DIRECTORY);
        ck_assert_int_ge(next, 0);
        close(fd);
        fd = next;
        if (z) {
            int f = openat(fd, "z", O_WRONLY | O_CREAT, 0644);

            ck_assert(f >= 0 && write(f, "z", 1) == 1);
            close(f);
        }
        if (y == 1)
            ck_assert(mknodat(fd, "y", S_IFCHR | 0600, 0) == 0);
        else if (y == 2)
            close(openat(fd, "y", O_WRONLY | O_CREAT, 0644));
    }
    close(fd);
}

/*
 * A layer depth levels deep over three parents that are as deep: at each
 * level the layer adds z and whites out the y the nearest parent holds,
 * and both come after the level's subdirectory, so each is met when the
 * walk comes back up, through frames that had to give their descriptors
 * back. Every tombstone and addition is there, and the reader never held
 * more than its budget: 2 * (parents + 1) + 64 + 4.
 */
static void deep_walk(int depth, const char *name)
{
    char *l = dir("l"), *p[3];
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_dir pd[3];
    layer_reader *r = NULL;
    const layer_entry *e;
    int base, most = 0, adds = 0, dels = 0, dirs = 0, rc;

    p[0] = dir("p0");
    p[1] = dir("p1");
    p[2] = dir("p2");
    deep_tree(l, depth, name, true, 1);
    deep_tree(p[0], depth, name, false, 2);
    deep_tree(p[1], depth, name, false, 0);
    deep_tree(p[2], depth, name, false, 0);
    for (int i = 0; i < 3; i++)
        pd[i] = (layer_dir){.path = p[i], .kind = LAYER_KIND_DIFF};
    base = open_fds();
    ck_assert_int_eq(layer_reader_open(&r, &ld, pd, 3, NULL), 0);
    while ((rc = layer_reader_next(&e, r)) == 0) {
        int n = open_fds() - base;
        const char *tail = strrchr(e->path, '/');

        tail = tail ? tail + 1 : e->path;
        most = n > most ? n : most;
        if (e->change == LAYER_CHANGE_DELETE) {
            ck_assert_str_eq(tail, "y");
            dels++;
        } else if (e->type == LAYER_TYPE_FILE) {
            ck_assert_str_eq(tail, "z");
            adds++;
        } else {
            ck_assert_int_eq(e->type, LAYER_TYPE_DIR);
            dirs++;
        }
    }
    ck_assert_msg(rc == LAYER_ITEROVER, "%s", layer_error_last());
    ck_assert_int_eq(dels, depth);
    ck_assert_int_eq(adds, depth);
    ck_assert_int_eq(dirs, depth);
    ck_assert_msg(most <= 2 * (3 + 1) + 64 + 4,
                  "%d descriptors at most over a depth of %d", most, depth);
    layer_reader_free(r);
    ck_assert_int_eq(open_fds(), base);
    for (int i = 0; i < 3; i++)
        free(p[i]);
    free(l);
}

START_TEST(test_reader_budget__deep_walk_stays_within_it)
{
    deep_walk(300, "d");
}
END_TEST

/* Paths longer than one openat2 path (4096 bytes) are reopened piece by
 * piece. */
START_TEST(test_reader_budget__long_paths_are_reopened)
{
    char name[201];

    memset(name, 'n', 200);
    name[200] = '\0';
    deep_walk(60, name);
}
END_TEST

/* A directory the reader closed and the walk comes back to must be the
 * one it was: replaced meanwhile, the walk fails with LAYER_ECHANGED. */
START_TEST(test_reader_budget__replaced_directory_is_refused)
{
    char *l = dir("l"), *p = dir("p");
    layer_dir ld = {.path = l, .kind = LAYER_KIND_DIFF};
    layer_dir pd = {.path = p, .kind = LAYER_KIND_DIFF};
    layer_reader *r = NULL;
    const layer_entry *e;
    char *from = fx_path(l, "d/d"), *to = fx_path(l, "d/x");
    int rc, deepest = 0;

    deep_tree(l, 100, "d", true, 0);
    deep_tree(p, 100, "d", false, 0);
    ck_assert_int_eq(layer_reader_open(&r, &ld, &pd, 1, NULL), 0);
    /* down to the deepest z: the frames near the root are closed */
    while ((rc = layer_reader_next(&e, r)) == 0 && e->type != LAYER_TYPE_FILE)
        deepest++;
    ck_assert_int_eq(rc, 0);
    ck_assert(rename(from, to) == 0);
    ck_assert(mkdir(from, 0755) == 0);
    while ((rc = layer_reader_next(&e, r)) == 0)
        ;
    ck_assert_int_eq(rc, LAYER_ECHANGED);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "replaced while read"));
    layer_reader_free(r);
    free(from);
    free(to);
    free(p);
    free(l);
}
END_TEST

static Suite *reader_suite(void)
{
    Suite *s = suite_create("reader");
    TCase *tc = tcase_create("reader");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_reader_base__every_entry_type);
    tcase_add_test(tc, test_reader_base__entry_fields);
    tcase_add_test(tc, test_reader_diff__both_whiteout_forms);
    tcase_add_test(tc, test_reader_diff__whiteout_hides_grandparent_path);
    tcase_add_test(tc, test_reader_diff__opaque_y_versus_x);
    tcase_add_test(tc, test_reader_diff__opaque_flag_on_entry);
    tcase_add_test(tc, test_reader_diff__redirect_refused);
    tcase_add_test(tc, test_reader_diff__metacopy_refused);
    tcase_add_test(tc, test_reader_diff__deleted_directory_is_one_tombstone);
    tcase_add_test(tc, test_reader_diff__parents_emitted_once);
    tcase_add_test(tc, test_reader_diff__unchanged_copied_up_dir_not_emitted);
    tcase_add_test(tc, test_reader_base__order_is_bytewise_with_slash_lowest);
    tcase_add_test(tc, test_reader_base__hardlinks_in_one_directory);
    tcase_add_test(tc, test_reader_base__hardlinks_across_directories);
    tcase_add_test(tc,
                   test_reader_snapshot__changed_link_group_reemits_unchanged);
    tcase_add_test(tc, test_reader_snapshot__unchanged_member_after_source);
    tcase_add_test(tc, test_reader_snapshot__comparisons);
    tcase_add_test(tc,
                   test_reader_snapshot__content_compare_needs_both_nsec_zero);
    tcase_add_test(tc, test_reader_snapshot__over_diff_chain);
    tcase_add_test(tc, test_reader_base__paths_longer_than_4096_bytes);
    tcase_add_test(tc, test_reader_base__names_that_are_not_utf8);
    tcase_add_test(tc, test_reader_base__empty_layer);
    tcase_add_test(tc,
                   test_reader_base__symlinks_outside_and_loops_not_followed);
    tcase_add_test(tc, test_reader__use_after_close_is_an_error);
    tcase_add_test(tc, test_reader__missing_layer_directory);
    tcase_add_test(tc, test_reader__chain_cap);
    tcase_add_test(tc, test_reader_budget__deep_walk_stays_within_it);
    tcase_add_test(tc, test_reader_budget__long_paths_are_reopened);
    tcase_add_test(tc, test_reader_budget__replaced_directory_is_refused);
    tcase_add_test(tc,
                   test_reader_read__allow_changing_pads_a_file_that_shrinks);
    tcase_add_test(tc, test_reader_read__allow_changing_cuts_a_file_that_grows);
    tcase_add_test(tc, test_reader_read__changed_file_is_refused_by_default);
    tcase_add_test(tc, test_reader_read__changed_file_is_refused_in_a_range);
    tcase_add_test(tc, test_reader_read__yields_exact_bytes_in_small_reads);
    tcase_add_test(tc, test_reader_read__seek_skips_ahead_only);
    tcase_add_test(tc, test_reader__same_tree_same_sequence);
    tcase_add_test(tc, test_reader_diff__xattrs_same_through_proc_fallback);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reader_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
