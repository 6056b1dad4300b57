/*
 * Tests of lib/hardlink.c: the (dev, ino) -> first path table through
 * its growth, and the waiting members of link groups: taken out by
 * group, newest first, with their ancestors' emitted flags kept up to
 * date.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "../../lib/hardlink_int.h"
#include "layer/error.h"

static layer_file_id fid(uint64_t dev, uint64_t ino)
{
    layer_file_id id = {.dev = dev, .ino = ino};

    return id;
}

START_TEST(test_hardlink_map__finds_every_path_through_growth)
{
    layer_hardlink__map m = {0};
    char path[32];

    ck_assert_ptr_null(layer_hardlink__find(&m, fid(1, 1)));
    /* far past the first 64 slots, half full at most: several rehashes */
    for (uint64_t i = 0; i < 1000; i++) {
        snprintf(path, sizeof(path), "d/f%llu", (unsigned long long)i);
        ck_assert_int_eq(
            layer_hardlink__insert(&m, fid(2049, i * 4096), path, strlen(path)),
            0);
    }
    ck_assert_uint_eq(m.n, 1000);
    ck_assert_uint_ge(m.cap, 2000);
    for (uint64_t i = 0; i < 1000; i++) {
        snprintf(path, sizeof(path), "d/f%llu", (unsigned long long)i);
        ck_assert_str_eq(layer_hardlink__find(&m, fid(2049, i * 4096)), path);
    }
    /* the same inode number on another device is another file */
    ck_assert_ptr_null(layer_hardlink__find(&m, fid(2050, 0)));
    ck_assert_ptr_null(layer_hardlink__find(&m, fid(2049, 1)));
    layer_hardlink__dispose(&m);
    ck_assert_uint_eq(m.n, 0);
    ck_assert_ptr_null(layer_hardlink__find(&m, fid(2049, 0)));
}
END_TEST

START_TEST(test_hardlink_map__stores_only_len_bytes)
{
    layer_hardlink__map m = {0};

    ck_assert_int_eq(layer_hardlink__insert(&m, fid(1, 2), "a/b/c", 3), 0);
    ck_assert_str_eq(layer_hardlink__find(&m, fid(1, 2)), "a/b");
    layer_hardlink__dispose(&m);
}
END_TEST

/* A waiting record for inode ino at path, under nancs ancestors whose
 * serials are 10, 11, ... */
static layer_hardlink__pending *pending(uint64_t ino, const char *path,
                                        size_t nancs)
{
    layer_hardlink__pending *p = NULL;
    struct statx st;

    memset(&st, 0, sizeof(st));
    st.stx_dev_major = 8;
    st.stx_dev_minor = 1;
    st.stx_ino = ino;
    st.stx_nlink = 2;
    ck_assert_int_eq(
        layer_hardlink__pending_new(&p, &st, path, strlen(path), nancs), 0);
    for (size_t i = 0; i < nancs; i++)
        p->ancs[i].serial = 10 + i;
    return p;
}

START_TEST(test_hardlink_pending__taken_by_group_newest_first)
{
    layer_hardlink__map m = {0};
    layer_file_id a = fid(makedev(8, 1), 5), b = fid(makedev(8, 1), 6);
    layer_hardlink__pending *p;

    ck_assert_ptr_null(layer_hardlink__take(&m, a));
    layer_hardlink__defer(&m, pending(5, "x/a1", 1));
    layer_hardlink__defer(&m, pending(6, "x/b1", 1));
    layer_hardlink__defer(&m, pending(5, "y/a2", 2));
    p = layer_hardlink__take(&m, a);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->path, "y/a2");
    ck_assert(p->id.dev == a.dev && p->id.ino == a.ino);
    ck_assert_ptr_null(p->next);
    layer_hardlink__pending_free(p);
    p = layer_hardlink__take(&m, a);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->path, "x/a1");
    layer_hardlink__pending_free(p);
    ck_assert_ptr_null(layer_hardlink__take(&m, a));
    /* the other group is still there */
    p = layer_hardlink__take(&m, b);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->path, "x/b1");
    layer_hardlink__pending_free(p);
    ck_assert_ptr_null(m.pend);
    /* a group that never changes is dropped with the tracker */
    layer_hardlink__defer(&m, pending(7, "z", 0));
    layer_hardlink__dispose(&m);
    ck_assert_ptr_null(m.pend);
}
END_TEST

START_TEST(test_hardlink_pending__ancestors_marked_emitted)
{
    layer_hardlink__map m = {0};
    layer_hardlink__pending *p1 = pending(5, "a/b/f", 2);
    layer_hardlink__pending *p2 = pending(6, "a/g", 1);

    layer_hardlink__defer(&m, p1);
    layer_hardlink__defer(&m, p2);
    layer_hardlink__mark_emitted(&m, 10); /* "a": both have it */
    ck_assert(p1->ancs[0].emitted);
    ck_assert(!p1->ancs[1].emitted);
    ck_assert(p2->ancs[0].emitted);
    layer_hardlink__mark_emitted(&m, 11);
    ck_assert(p1->ancs[1].emitted);
    layer_hardlink__mark_emitted(&m, 99); /* no one's: nothing changes */
    ck_assert_uint_eq(p1->nancs, 2);
    ck_assert_uint_eq(p2->nancs, 1);
    layer_hardlink__dispose(&m);
}
END_TEST

START_TEST(test_hardlink_id_of__dev_and_ino)
{
    struct statx st;
    layer_file_id id;

    memset(&st, 0, sizeof(st));
    st.stx_dev_major = 259;
    st.stx_dev_minor = 3;
    st.stx_ino = 1234567;
    id = layer_hardlink__id_of(&st);
    ck_assert(id.dev == makedev(259, 3));
    ck_assert_uint_eq(id.ino, 1234567);
}
END_TEST

static Suite *hardlink_suite(void)
{
    Suite *s = suite_create("hardlink");
    TCase *tc = tcase_create("hardlink");

    tcase_add_test(tc, test_hardlink_map__finds_every_path_through_growth);
    tcase_add_test(tc, test_hardlink_map__stores_only_len_bytes);
    tcase_add_test(tc, test_hardlink_pending__taken_by_group_newest_first);
    tcase_add_test(tc, test_hardlink_pending__ancestors_marked_emitted);
    tcase_add_test(tc, test_hardlink_id_of__dev_and_ino);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hardlink_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
