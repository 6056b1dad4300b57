/*
 * Tests of lib/xattr.c: the overlay markers told apart from the other
 * attributes (trusted.* and user.* forms, opaque "y" versus "x"), the
 * refusal of redirect and metacopy, whiteout detection, and reading a
 * file's attributes sorted, through an fd or by name without following
 * symlinks, the same way through the /proc fallback.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../../lib/xattr_int.h"
#include "fixture.h"
#include "layer/error.h"

static char *tmp;
static int tmpfd = -1;

static void setup(void)
{
    tmp = fx_tmpdir();
    tmpfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(tmpfd, 0);
}

static void teardown(void)
{
    layer_xattr__xattrat_set(true);
    close(tmpfd);
    fx_rm_rf(tmp);
    free(tmp);
}

/* A list over fixed items (what layer_xattr__markers() looks at). */
#define LIST(...)                                                              \
    (layer_xattr__list)                                                        \
    {                                                                          \
        .items = (layer_xattr[]){__VA_ARGS__},                                 \
        .n = sizeof((layer_xattr[]){__VA_ARGS__}) / sizeof(layer_xattr)        \
    }
#define ITEM(name, value)                                                      \
    {                                                                          \
        (name), (const unsigned char *)(value), sizeof(value) - 1              \
    }

static struct statx stat_of(const char *rel)
{
    struct statx st;

    ck_assert_int_eq(
        statx(tmpfd, rel, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &st), 0);
    return st;
}

/* "name=value name=value" of a list, in its order. */
static char *listing(const layer_xattr__list *x)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < x->n; i++)
        fprintf(f, "%s%s=%.*s", i ? " " : "", x->items[i].name,
                (int)x->items[i].len, (const char *)x->items[i].value);
    fclose(f);
    return out;
}

#define ASSERT_LISTING(x, want)                                                \
    do {                                                                       \
        char *g_ = listing(x);                                                 \
        ck_assert_str_eq(g_, (want));                                          \
        free(g_);                                                              \
    } while (0)

START_TEST(test_xattr_markers__both_namespaces)
{
    layer_xattr__list a = LIST(ITEM("trusted.overlay.whiteout", "y"));
    layer_xattr__list b = LIST(ITEM("user.overlay.whiteout", ""));
    layer_xattr__list c =
        LIST(ITEM("user.a", "1"), ITEM("user.overlay.opaque", "y"),
             ITEM("user.z", "2"));
    layer_xattr__list d = LIST(ITEM("trusted.overlay.redirect", "/x"),
                               ITEM("user.overlay.metacopy", ""));

    ck_assert_uint_eq(layer_xattr__markers(&a), LAYER_XATTR__WHITEOUT);
    ck_assert_uint_eq(layer_xattr__markers(&b), LAYER_XATTR__WHITEOUT);
    ck_assert_uint_eq(layer_xattr__markers(&c), LAYER_XATTR__OPAQUE);
    ck_assert_uint_eq(layer_xattr__markers(&d),
                      LAYER_XATTR__REDIRECT | LAYER_XATTR__METACOPY);
}
END_TEST

START_TEST(test_xattr_markers__opaque_only_for_y)
{
    layer_xattr__list y = LIST(ITEM("trusted.overlay.opaque", "y"));
    layer_xattr__list x = LIST(ITEM("trusted.overlay.opaque", "x"));
    layer_xattr__list yy = LIST(ITEM("trusted.overlay.opaque", "yy"));
    layer_xattr__list empty = LIST(ITEM("user.overlay.opaque", ""));

    ck_assert_uint_eq(layer_xattr__markers(&y), LAYER_XATTR__OPAQUE);
    /* "x": a merge directory holding xattr whiteouts, not opaque */
    ck_assert_uint_eq(layer_xattr__markers(&x), 0);
    ck_assert_uint_eq(layer_xattr__markers(&yy), 0);
    ck_assert_uint_eq(layer_xattr__markers(&empty), 0);
}
END_TEST

START_TEST(test_xattr_markers__other_names_are_not_markers)
{
    layer_xattr__list x = LIST(
        ITEM("security.overlay.opaque", "y"),
        ITEM("trusted.overlayopaque", "y"), ITEM("trusted.overlay.origin", "o"),
        ITEM("trusted.overlay.opaque.x", "y"),
        ITEM("user.overlay.whiteouts", "y"), ITEM("user.whiteout", "y"));
    layer_xattr__list none = {0};

    ck_assert_uint_eq(layer_xattr__markers(&x), 0);
    ck_assert_uint_eq(layer_xattr__markers(&none), 0);
}
END_TEST

START_TEST(test_xattr_check_exportable__refuses_redirect_and_metacopy)
{
    ck_assert_int_eq(layer_xattr__check_exportable(
                         LAYER_XATTR__WHITEOUT | LAYER_XATTR__OPAQUE, "a"),
                     0);
    ck_assert_int_eq(
        layer_xattr__check_exportable(LAYER_XATTR__REDIRECT, "a/d"),
        LAYER_EUNSUPPORTED);
    ck_assert_str_eq(layer_error_last(),
                     "a/d: overlay redirect (redirect_dir) cannot be "
                     "exported from the layer directory");
    ck_assert_int_eq(layer_xattr__check_exportable(LAYER_XATTR__METACOPY, "f"),
                     LAYER_EUNSUPPORTED);
    ck_assert_str_eq(layer_error_last(), "f: overlay metacopy file holds no "
                                         "data in the layer directory");
    /* both: the redirect is named */
    ck_assert_int_eq(layer_xattr__check_exportable(
                         LAYER_XATTR__REDIRECT | LAYER_XATTR__METACOPY, "b"),
                     LAYER_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "redirect"));
}
END_TEST

START_TEST(test_xattr_strip_overlay__keeps_the_rest_in_order)
{
    layer_xattr__list x =
        LIST(ITEM("security.capability", "c"),
             ITEM("trusted.overlay.opaque", "y"), ITEM("trusted.x", "1"),
             ITEM("user.overlay.redirect", "/r"), ITEM("user.y", "2"));

    layer_xattr__strip_overlay(&x);
    ASSERT_LISTING(&x, "security.capability=c trusted.x=1 user.y=2");
}
END_TEST

START_TEST(test_xattr_is_whiteout__char_00_and_marked_empty_files)
{
    layer_xattr__list scratch = {0};
    struct statx st;
    bool wh, read;

    fx_whiteout_chr(tmp, "c00");
    fx_mknod(tmp, "c13", S_IFCHR, 1, 3);
    fx_whiteout_xattr(tmp, "t", "trusted");
    fx_whiteout_xattr(tmp, "u", "user");
    fx_file(tmp, "plain", "", 0644);
    fx_file(tmp, "full", "data", 0644);
    fx_xattr(tmp, "full", "user.overlay.whiteout", "y");

    st = stat_of("c00"); /* no xattrs needed */
    ck_assert_int_eq(layer_xattr__is_whiteout(&wh, &read, tmpfd, "c00", "c00",
                                              &st, &scratch),
                     0);
    ck_assert(wh);
    ck_assert(!read);
    st = stat_of("c13");
    ck_assert_int_eq(layer_xattr__is_whiteout(&wh, &read, tmpfd, "c13", "c13",
                                              &st, &scratch),
                     0);
    ck_assert(!wh);
    ck_assert(!read);
    st = stat_of("t");
    ck_assert_int_eq(
        layer_xattr__is_whiteout(&wh, &read, tmpfd, "t", "t", &st, &scratch),
        0);
    ck_assert(wh);
    ck_assert(read); /* scratch holds t's attributes */
    ASSERT_LISTING(&scratch, "trusted.overlay.whiteout=");
    st = stat_of("u");
    ck_assert_int_eq(
        layer_xattr__is_whiteout(&wh, NULL, tmpfd, "u", "u", &st, &scratch), 0);
    ck_assert(wh);
    st = stat_of("plain");
    ck_assert_int_eq(layer_xattr__is_whiteout(&wh, &read, tmpfd, "plain",
                                              "plain", &st, &scratch),
                     0);
    ck_assert(!wh);
    ck_assert(read);
    ck_assert_uint_eq(scratch.n, 0);
    /* a marker on a file with data is not a whiteout (not even read) */
    st = stat_of("full");
    ck_assert_int_eq(layer_xattr__is_whiteout(&wh, &read, tmpfd, "full", "full",
                                              &st, &scratch),
                     0);
    ck_assert(!wh);
    ck_assert(!read);
    layer_xattr__dispose(&scratch);
}
END_TEST

/* Read rel's attributes by name, with the *xattrat path on or off. */
static char *read_by_name(const char *rel, bool xattrat)
{
    layer_xattr__list x = {0};
    char *out;

    layer_xattr__xattrat_set(xattrat);
    ck_assert_int_eq(layer_xattr__read(&x, -1, tmpfd, rel, rel), 0);
    out = listing(&x);
    layer_xattr__dispose(&x);
    return out;
}

START_TEST(test_xattr_read__sorted_by_name_through_both_paths)
{
    static const char want[] = "trusted.a=3 trusted.b=4 user.a=2 user.z=1";
    char *fast, *slow;
    layer_xattr__list x = {0};
    int fd;

    fx_file(tmp, "f", "data", 0644);
    fx_xattr(tmp, "f", "user.z", "1");
    fx_xattr(tmp, "f", "user.a", "2");
    fx_xattr(tmp, "f", "trusted.a", "3");
    fx_xattr(tmp, "f", "trusted.b", "4");
    fast = read_by_name("f", true);
    slow = read_by_name("f", false);
    ck_assert_str_eq(fast, want);
    ck_assert_str_eq(slow, want);
    free(fast);
    free(slow);
    /* and through an open fd */
    fd = openat(tmpfd, "f", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(layer_xattr__read(&x, fd, -1, NULL, "f"), 0);
    ASSERT_LISTING(&x, want);
    close(fd);
    layer_xattr__dispose(&x);
}
END_TEST

START_TEST(test_xattr_read__symlink_not_followed)
{
    char *fast, *slow;

    fx_file(tmp, "target", "data", 0644);
    fx_xattr(tmp, "target", "user.t", "target's");
    fx_symlink(tmp, "link", "target");
    fx_xattr(tmp, "link", "trusted.l", "link's");
    fx_symlink(tmp, "dangling", "/nonexistent");
    fast = read_by_name("link", true);
    slow = read_by_name("link", false);
    ck_assert_str_eq(fast, "trusted.l=link's");
    ck_assert_str_eq(slow, "trusted.l=link's");
    free(fast);
    free(slow);
    fast = read_by_name("dangling", true);
    slow = read_by_name("dangling", false);
    ck_assert_str_eq(fast, "");
    ck_assert_str_eq(slow, "");
    free(fast);
    free(slow);
}
END_TEST

START_TEST(test_xattr_read__values_and_lists_past_the_first_buffer)
{
    /* more than the 256 bytes asked first: the ERANGE retry */
    char big[1500], name[64];
    layer_xattr__list x = {0};
    int fd;

    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fx_file(tmp, "f", "", 0644);
    fx_xattr(tmp, "f", "user.big", big);
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "user.a-rather-long-attribute-name-%02d",
                 i);
        fx_xattr(tmp, "f", name, "x");
    }
    for (int pass = 0; pass < 2; pass++) {
        layer_xattr__xattrat_set(pass == 0);
        ck_assert_int_eq(layer_xattr__read(&x, -1, tmpfd, "f", "f"), 0);
        ck_assert_uint_eq(x.n, 13);
        ck_assert_str_eq(x.items[0].name,
                         "user.a-rather-long-attribute-name-00");
        ck_assert_str_eq(x.items[12].name, "user.big");
        ck_assert_uint_eq(x.items[12].len, sizeof(big) - 1);
        ck_assert(memcmp(x.items[12].value, big, sizeof(big) - 1) == 0);
    }
    /* the list is reused: a smaller read leaves nothing behind */
    fd = openat(tmpfd, "f", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fremovexattr(fd, "user.big"), 0);
    close(fd);
    fx_file(tmp, "g", "", 0644);
    fx_xattr(tmp, "g", "user.only", "1");
    ck_assert_int_eq(layer_xattr__read(&x, -1, tmpfd, "g", "g"), 0);
    ASSERT_LISTING(&x, "user.only=1");
    layer_xattr__dispose(&x);
}
END_TEST

START_TEST(test_xattr_read__missing_file_has_none)
{
    layer_xattr__list x = {0};

    fx_file(tmp, "f", "", 0644);
    fx_xattr(tmp, "f", "user.a", "1");
    ck_assert_int_eq(layer_xattr__read(&x, -1, tmpfd, "f", "f"), 0);
    ck_assert_uint_eq(x.n, 1);
    /* removed between the listing and the read: no attributes */
    ck_assert_int_eq(layer_xattr__read(&x, -1, tmpfd, "gone", "gone"), 0);
    ck_assert_uint_eq(x.n, 0);
    layer_xattr__dispose(&x);
}
END_TEST

START_TEST(test_xattr_copy__is_independent)
{
    layer_xattr__list a = {0}, b = {0}, empty = {0}, c;

    fx_file(tmp, "f", "", 0644);
    fx_xattr(tmp, "f", "user.b", "22");
    fx_xattr(tmp, "f", "user.a", "1");
    ck_assert_int_eq(layer_xattr__read(&a, -1, tmpfd, "f", "f"), 0);
    ck_assert_int_eq(layer_xattr__copy(&b, &a), 0);
    layer_xattr__dispose(&a);
    ASSERT_LISTING(&b, "user.a=1 user.b=22");
    ck_assert_ptr_nonnull(layer_xattr__find(&b, "user.b"));
    ck_assert_uint_eq(layer_xattr__find(&b, "user.b")->len, 2);
    ck_assert_ptr_null(layer_xattr__find(&b, "user.c"));
    layer_xattr__dispose(&b);
    ck_assert_int_eq(layer_xattr__copy(&c, &empty), 0);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_ptr_null(c.items);
    layer_xattr__dispose(&c);
}
END_TEST

static Suite *xattr_suite(void)
{
    Suite *s = suite_create("xattr");
    TCase *tc = tcase_create("xattr");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_xattr_markers__both_namespaces);
    tcase_add_test(tc, test_xattr_markers__opaque_only_for_y);
    tcase_add_test(tc, test_xattr_markers__other_names_are_not_markers);
    tcase_add_test(tc,
                   test_xattr_check_exportable__refuses_redirect_and_metacopy);
    tcase_add_test(tc, test_xattr_strip_overlay__keeps_the_rest_in_order);
    tcase_add_test(tc, test_xattr_is_whiteout__char_00_and_marked_empty_files);
    tcase_add_test(tc, test_xattr_read__sorted_by_name_through_both_paths);
    tcase_add_test(tc, test_xattr_read__symlink_not_followed);
    tcase_add_test(tc, test_xattr_read__values_and_lists_past_the_first_buffer);
    tcase_add_test(tc, test_xattr_read__missing_file_has_none);
    tcase_add_test(tc, test_xattr_copy__is_independent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(xattr_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
