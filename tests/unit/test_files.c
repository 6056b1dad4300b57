/*
 * Tests for api/files.c: GET /layers/{id}/files/{path} over a small dir:
 * store built with the fixture helpers, driven through the API harness
 * (api_harness.h). They pin the answer for a whole file (type, ranges,
 * validators), the Win32 backup framing (DATA then EA streams,
 * FILE_FULL_EA_INFORMATION offsets and padding), that every single range
 * is exactly the matching slice of the whole representation, raw or
 * backup, the 206/416/200 choices of RFC 9110 (several ranges, bad syntax,
 * If-Range, empty files), HEAD, 304, files a layer deleted or did not
 * change, that a range deep into a big file is reached by seeking,
 * not by reading forward, and that an ETag is an opaque hash that shows
 * no inode number yet changes with the file.
 */
#include <check.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/api.h"
#include "api_harness.h"
#include "fixture.h"

/* 20 MiB + a bit: more than the 16 MiB a read() may discard. */
#define BIG_SIZE (20u * 1024u * 1024u + 123u)

static char *root;
static ah_env env;

static unsigned char big_byte(size_t i)
{
    return (unsigned char)((i * 7u + i / 251u) % 251u);
}

/* l1: a base layer of every kind of entry; l2 on it deletes empty.txt and
 * adds new.txt. */
static void store_setup(void)
{
    char *fs, *big;
    char value[301];

    root = fx_tmpdir();
    fs = ah_layer(root, "l1", "{\"kind\": \"diff\"}\n");
    fx_file(fs, "xa.txt", "hello", 0644);
    memset(value, 'v', 300);
    value[300] = '\0';
    fx_xattr(fs, "xa.txt", "user.ccc", value);
    fx_xattr(fs, "xa.txt", "user.a", "1");
    fx_xattr(fs, "xa.txt", "user.bb", "xyz");
    fx_file(fs, "empty.txt", "", 0644);
    fx_file(fs, "h1", "linked data\n", 0644);
    fx_link(fs, "h1", "h2");
    fx_mkdir(fs, "dir", 0755);
    fx_symlink(fs, "sym", "xa.txt");
    fx_fifo(fs, "fifo");
    big = malloc(BIG_SIZE);
    for (size_t i = 0; i < BIG_SIZE; i++)
        big[i] = (char)big_byte(i);
    fx_file_bytes(fs, "big.bin", big, BIG_SIZE, 0644);
    free(big);
    free(fs);
    fs = ah_layer(root, "l2", "{\"kind\": \"diff\", \"parent\": \"l1\"}\n");
    fx_whiteout_chr(fs, "empty.txt");
    fx_file(fs, "new.txt", "new\n", 0644);
    free(fs);
    ah_open(&env, root, NULL);
}

static void store_teardown(void)
{
    ah_close(&env);
    fx_rm_rf(root);
    free(root);
}

static void request(api_response *res, const char *method, const char *path,
                    const ah_fake *f)
{
    ah_request(res, &env, method, path, f);
}

/* GET path; the status must be status; the body drained in reads of at
 * most cap bytes (free() it). */
static unsigned char *get_body(const char *path, const ah_fake *f, int status,
                               size_t cap, size_t *len)
{
    api_response res;
    unsigned char *body;

    request(&res, "GET", path, f);
    ck_assert_int_eq(res.status, status);
    body = (unsigned char *)ah_drain(&res, cap, len);
    api_response_dispose(&res);
    return body;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

START_TEST(test_whole_file_has_its_type_ranges_and_etag)
{
    ah_fake backup = {.query = {{"format", "win32-backup"}}};
    api_response res;
    size_t len;
    char *body;

    request(&res, "GET", "/layers/l1/files/xa.txt", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(res.route, "/layers/{id}/files/{path}");
    ck_assert(res.has_length);
    ck_assert_uint_eq(res.content_length, 5);
    ck_assert_str_eq(ah_header(&res, "Content-Type"),
                     "application/octet-stream");
    ck_assert_str_eq(ah_header(&res, "Accept-Ranges"), "bytes");
    ck_assert_ptr_nonnull(ah_header(&res, "ETag"));
    ck_assert_int_eq(ah_header(&res, "ETag")[0], '"');
    /* reads smaller than the file are rejoined */
    body = ah_drain(&res, 2, &len);
    ck_assert_str_eq(body, "hello");
    free(body);
    api_response_dispose(&res);

    request(&res, "GET", "/layers/l1/files/xa.txt", &backup);
    ck_assert_int_eq(res.status, 200);
    ck_assert_str_eq(ah_header(&res, "Content-Type"),
                     "application/vnd.layerd.win32-backup");
    api_response_dispose(&res);

    /* a query that slipped into the path is not part of the name */
    request(&res, "GET", "/layers/l1/files/xa.txt?x", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_uint_eq(res.content_length, 5);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_backup_ea_entries_are_aligned_and_chained)
{
    ah_fake f = {.query = {{"format", "win32-backup"}}};
    size_t len;
    unsigned char *b = get_body("/layers/l1/files/xa.txt", &f, 200, 4096, &len);
    const unsigned char *ea, *e;
    /* 8 + name + NUL + value, each padded to 4: 16, 20, 320 */
    static const struct {
        const char *name;
        size_t vlen;
        uint32_t next;
    } want[] = {{"user.a", 1, 16}, {"user.bb", 3, 20}, {"user.ccc", 300, 0}};

    ck_assert_uint_eq(le32(b), 1);
    ck_assert_uint_eq(le64(b + 8), 5);
    ck_assert_mem_eq(b + 20, "hello", 5);
    ck_assert_uint_eq(le32(b + 25), 2);
    ck_assert_uint_eq(le32(b + 25 + 4), 0);
    ck_assert_uint_eq(le64(b + 25 + 8), 16 + 20 + 320);
    ck_assert_uint_eq(le32(b + 25 + 16), 0);
    ck_assert_uint_eq(len, 20 + 5 + 20 + 356);
    ea = b + 45;
    e = ea;
    for (size_t i = 0; i < 3; i++) {
        size_t nlen = strlen(want[i].name);
        size_t used = 8 + nlen + 1 + want[i].vlen;
        size_t padded = (used + 3) & ~(size_t)3;

        ck_assert_uint_eq(le32(e), want[i].next);
        ck_assert_uint_eq(e[4], 0);
        ck_assert_uint_eq(e[5], nlen);
        ck_assert_uint_eq(e[6] | e[7] << 8, want[i].vlen);
        ck_assert_mem_eq(e + 8, want[i].name, nlen);
        ck_assert_uint_eq(e[8 + nlen], 0);
        for (size_t k = used; k < padded; k++)
            ck_assert_uint_eq(e[k], 0);
        e += padded;
    }
    ck_assert_ptr_eq(e, b + len);
    free(b);
}
END_TEST

START_TEST(test_backup_without_xattrs_has_only_data)
{
    ah_fake f = {.query = {{"format", "win32-backup"}}};
    size_t len;
    unsigned char *b =
        get_body("/layers/l1/files/empty.txt", &f, 200, 64, &len);

    ck_assert_uint_eq(len, 20);
    ck_assert_uint_eq(le32(b), 1);
    ck_assert_uint_eq(le64(b + 8), 0);
    free(b);
}
END_TEST

/* Every range [first, last] (sampled) is the slice of the whole. */
static void check_ranges(const char *path, const char *format)
{
    ah_fake whole = {.query = {{"format", format}}};
    size_t total;
    unsigned char *all = get_body(path, &whole, 200, 4096, &total);

    for (size_t first = 0; first < total; first += 7) {
        for (size_t last = first; last < total; last += 13) {
            char range[64], want_cr[96];
            ah_fake f = {.headers = {{"Range", range}},
                         .query = {{"format", format}}};
            api_response res;
            size_t len;
            unsigned char *b;

            snprintf(range, sizeof(range), "bytes=%zu-%zu", first, last);
            snprintf(want_cr, sizeof(want_cr), "bytes %zu-%zu/%zu", first, last,
                     total);
            request(&res, "GET", path, &f);
            ck_assert_int_eq(res.status, 206);
            ck_assert_str_eq(ah_header(&res, "Content-Range"), want_cr);
            b = (unsigned char *)ah_drain(&res, 5, &len);
            ck_assert_uint_eq(len, last - first + 1);
            ck_assert_mem_eq(b, all + first, len);
            free(b);
            api_response_dispose(&res);
        }
    }
    free(all);
}

START_TEST(test_every_range_is_the_slice_of_the_whole)
{
    check_ranges("/layers/l1/files/xa.txt", "raw");
    check_ranges("/layers/l1/files/xa.txt", "win32-backup");
    check_ranges("/layers/l1/files/h2", "win32-backup");
}
END_TEST

START_TEST(test_deep_range_seeks_to_its_start)
{
    ah_fake f = {.headers = {{"Range", "bytes=18000000-"}}};
    api_response res;
    ah_drained d;
    const unsigned char *b;

    request(&res, "GET", "/layers/l1/files/big.bin", &f);
    ck_assert_int_eq(res.status, 206);
    ck_assert_uint_eq(res.content_length, BIG_SIZE - 18000000u);
    ah_drain_result(&d, &res, 65536);
    ck_assert_int_eq(d.result, API_PRODUCE_END);
    /* the reader seeks: nothing to wait for, no discarded reads */
    ck_assert_uint_eq(d.agains, 0);
    ck_assert_uint_eq(d.len, BIG_SIZE - 18000000u);
    b = (const unsigned char *)d.body;
    for (size_t i = 0; i < d.len; i++) {
        if (b[i] != big_byte(18000000u + i))
            ck_abort_msg("byte %zu differs", i);
    }
    free(d.body);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_suffix_range_longer_than_the_file_is_all_of_it)
{
    ah_fake f = {.headers = {{"Range", "bytes=-100"}}};
    api_response res;

    request(&res, "GET", "/layers/l1/files/xa.txt", &f);
    ck_assert_int_eq(res.status, 206);
    ck_assert_str_eq(ah_header(&res, "Content-Range"), "bytes 0-4/5");
    api_response_dispose(&res);
    f.headers[0][1] = "bytes=3-999";
    request(&res, "GET", "/layers/l1/files/xa.txt", &f);
    ck_assert_int_eq(res.status, 206);
    ck_assert_str_eq(ah_header(&res, "Content-Range"), "bytes 3-4/5");
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_unsatisfiable_ranges_are_416)
{
    static const char *const bad[] = {"bytes=5-", "bytes=5-9", "bytes=-0",
                                      "bytes=99-100"};

    for (size_t i = 0; i < 4; i++) {
        ah_fake f = {.headers = {{"Range", bad[i]}}};
        api_response res;

        request(&res, "GET", "/layers/l1/files/xa.txt", &f);
        ck_assert_msg(res.status == 416, "%s gave %d", bad[i], res.status);
        ck_assert_str_eq(ah_header(&res, "Content-Range"), "bytes */5");
        ah_assert_problem(&env, &res, 416, NULL, "/layers/l1/files/xa.txt");
        api_response_dispose(&res);
    }
}
END_TEST

START_TEST(test_ignored_ranges_send_everything)
{
    static const char *const ignored[] = {
        "bytes=0-1,3-4", "bytes=a-b", "bytes=3-1", "items=0-1",
        "bytes=",        "bytes=1",   "bytes=--1", "bytes=1-2-3"};

    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        ah_fake f = {.headers = {{"Range", ignored[i]}}};
        api_response res;

        request(&res, "GET", "/layers/l1/files/xa.txt", &f);
        ck_assert_msg(res.status == 200, "%s gave %d", ignored[i], res.status);
        ck_assert_ptr_null(ah_header(&res, "Content-Range"));
        ck_assert_uint_eq(res.content_length, 5);
        api_response_dispose(&res);
    }
}
END_TEST

START_TEST(test_range_on_an_empty_file_is_ignored)
{
    ah_fake f = {.headers = {{"Range", "bytes=0-"}}};
    api_response res;

    request(&res, "GET", "/layers/l1/files/empty.txt", &f);
    ck_assert_int_eq(res.status, 200);
    ck_assert(res.has_length);
    ck_assert_uint_eq(res.content_length, 0);
    ck_assert_ptr_null(res.producer.read);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_if_range_must_match_the_etag)
{
    ah_fake f = {
        .headers = {{"Range", "bytes=0-1"}, {"If-Range", "\"stale\""}}};
    char etag[128];
    api_response res;

    request(&res, "GET", "/layers/l1/files/xa.txt", &f);
    ck_assert_int_eq(res.status, 200);
    snprintf(etag, sizeof(etag), "%s", ah_header(&res, "ETag"));
    api_response_dispose(&res);
    f.headers[1][1] = etag;
    request(&res, "GET", "/layers/l1/files/xa.txt", &f);
    ck_assert_int_eq(res.status, 206);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_etags_differ_between_formats_and_files)
{
    ah_fake b = {.query = {{"format", "win32-backup"}}};
    ah_fake nm = {.headers = {{"If-None-Match", NULL}}};
    char raw[128], backup[128], other[128], list[300];
    api_response res;

    request(&res, "GET", "/layers/l1/files/xa.txt", NULL);
    snprintf(raw, sizeof(raw), "%s", ah_header(&res, "ETag"));
    api_response_dispose(&res);
    request(&res, "GET", "/layers/l1/files/xa.txt", &b);
    snprintf(backup, sizeof(backup), "%s", ah_header(&res, "ETag"));
    api_response_dispose(&res);
    request(&res, "GET", "/layers/l1/files/h1", NULL);
    snprintf(other, sizeof(other), "%s", ah_header(&res, "ETag"));
    api_response_dispose(&res);
    ck_assert_str_ne(raw, backup);
    ck_assert_str_ne(raw, other);

    snprintf(list, sizeof(list), "%s, W/%s", other, raw);
    nm.headers[0][1] = list;
    request(&res, "GET", "/layers/l1/files/xa.txt", &nm);
    ck_assert_int_eq(res.status, 304);
    /* a 304 names the representation it stands for, and has no body */
    ck_assert_str_eq(ah_header(&res, "ETag"), raw);
    ck_assert_ptr_null(res.producer.read);
    api_response_dispose(&res);
    nm.headers[0][1] = other;
    request(&res, "GET", "/layers/l1/files/xa.txt", &nm);
    ck_assert_int_eq(res.status, 200);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_head_has_the_length_and_no_body)
{
    ah_fake f = {.headers = {{"Range", "bytes=1-"}}};
    api_response res;

    request(&res, "HEAD", "/layers/l1/files/big.bin", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert(res.head);
    ck_assert(res.has_length);
    ck_assert_uint_eq(res.content_length, BIG_SIZE);
    ck_assert_ptr_null(res.producer.read);
    api_response_dispose(&res);
    request(&res, "HEAD", "/layers/l1/files/big.bin", &f);
    ck_assert_int_eq(res.status, 206);
    ck_assert_uint_eq(res.content_length, BIG_SIZE - 1);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_hard_link_serves_its_groups_data)
{
    size_t len;
    unsigned char *b = get_body("/layers/l1/files/h2", NULL, 200, 3, &len);

    ck_assert_uint_eq(len, 12);
    ck_assert_mem_eq(b, "linked data\n", 12);
    free(b);
}
END_TEST

START_TEST(test_non_files_and_bad_formats_are_refused)
{
    static const char *const others[] = {"/layers/l1/files/dir",
                                         "/layers/l1/files/sym",
                                         "/layers/l1/files/fifo"};
    ah_fake bogus = {.query = {{"format", "tar"}}};
    api_response res;

    for (size_t i = 0; i < 3; i++) {
        request(&res, "GET", others[i], NULL);
        ah_assert_problem(&env, &res, 409, "not-a-file", others[i]);
        api_response_dispose(&res);
    }
    request(&res, "GET", "/layers/l1/files/xa.txt", &bogus);
    ah_assert_problem(&env, &res, 400, "invalid-parameter",
                      "/layers/l1/files/xa.txt");
    api_response_dispose(&res);
    request(&res, "GET", "/layers/l1/files/missing", NULL);
    ah_assert_problem(&env, &res, 404, "not-found", "/layers/l1/files/missing");
    api_response_dispose(&res);
    request(&res, "GET", "/layers/l1/files/dir/../xa.txt", NULL);
    ah_assert_problem(&env, &res, 400, "invalid-path",
                      "/layers/l1/files/dir/../xa.txt");
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_a_layer_serves_only_what_it_changed)
{
    api_response res;
    size_t len;
    unsigned char *b;

    b = get_body("/layers/l2/files/new.txt", NULL, 200, 64, &len);
    ck_assert_uint_eq(len, 4);
    ck_assert_mem_eq(b, "new\n", 4);
    free(b);
    request(&res, "GET", "/layers/l2/files/empty.txt", NULL);
    ah_assert_problem(&env, &res, 404, "deleted", "/layers/l2/files/empty.txt");
    api_response_dispose(&res);
    /* unchanged in l2: its parent's file is not l2's to serve */
    request(&res, "GET", "/layers/l2/files/xa.txt", NULL);
    ah_assert_problem(&env, &res, 404, "not-found", "/layers/l2/files/xa.txt");
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_client_abort_midway_releases_the_reader)
{
    api_response res;
    char buf[4096];

    request(&res, "GET", "/layers/l1/files/big.bin", NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_int_eq(res.producer.read(res.producer.ctx, buf, sizeof(buf)),
                     (ssize_t)sizeof(buf));
    /* the server disposes without reading further (ASan: no leak) */
    api_response_dispose(&res);
    ck_assert_ptr_null(res.producer.read);
}
END_TEST

/* The ETag of GET path (copied into out). */
static void etag_of(char *out, size_t cap, const char *path)
{
    api_response res;

    request(&res, "GET", path, NULL);
    ck_assert_int_eq(res.status, 200);
    ck_assert_ptr_nonnull(ah_header(&res, "ETag"));
    snprintf(out, cap, "%s", ah_header(&res, "ETag"));
    api_response_dispose(&res);
}

START_TEST(test_etag_is_an_opaque_hash_that_follows_the_file)
{
    char before[128], after[128], ino_dec[32], ino[32];
    char *path = fx_path(root, "l1/fs/xa.txt");
    struct timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 5}};
    struct stat st;

    etag_of(before, sizeof(before), "/layers/l1/files/xa.txt");
    /* a quoted 128-bit hex digest, nothing else */
    ck_assert_uint_eq(strlen(before), 34);
    ck_assert_int_eq(before[0], '"');
    ck_assert_int_eq(before[33], '"');
    for (size_t i = 1; i < 33; i++)
        ck_assert_msg(isxdigit((unsigned char)before[i]) &&
                          !isupper((unsigned char)before[i]),
                      "ETag %s", before);
    /* the inode does not show, in hex or decimal */
    ck_assert_int_eq(stat(path, &st), 0);
    snprintf(ino, sizeof(ino), "%llx", (unsigned long long)st.st_ino);
    snprintf(ino_dec, sizeof(ino_dec), "%llu", (unsigned long long)st.st_ino);
    ck_assert_ptr_null(strstr(before, ino));
    ck_assert_ptr_null(strstr(before, ino_dec));
    /* the same file answers the same ETag; a new mtime, a new one */
    etag_of(after, sizeof(after), "/layers/l1/files/xa.txt");
    ck_assert_str_eq(before, after);
    ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    etag_of(after, sizeof(after), "/layers/l1/files/xa.txt");
    ck_assert_str_ne(before, after);
    free(path);
}
END_TEST

static Suite *files_suite(void)
{
    Suite *s = suite_create("files");
    TCase *tc = tcase_create("files");

    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, store_setup, store_teardown);
    tcase_add_test(tc, test_whole_file_has_its_type_ranges_and_etag);
    tcase_add_test(tc, test_backup_ea_entries_are_aligned_and_chained);
    tcase_add_test(tc, test_backup_without_xattrs_has_only_data);
    tcase_add_test(tc, test_every_range_is_the_slice_of_the_whole);
    tcase_add_test(tc, test_deep_range_seeks_to_its_start);
    tcase_add_test(tc, test_suffix_range_longer_than_the_file_is_all_of_it);
    tcase_add_test(tc, test_unsatisfiable_ranges_are_416);
    tcase_add_test(tc, test_ignored_ranges_send_everything);
    tcase_add_test(tc, test_range_on_an_empty_file_is_ignored);
    tcase_add_test(tc, test_if_range_must_match_the_etag);
    tcase_add_test(tc, test_etags_differ_between_formats_and_files);
    tcase_add_test(tc, test_etag_is_an_opaque_hash_that_follows_the_file);
    tcase_add_test(tc, test_head_has_the_length_and_no_body);
    tcase_add_test(tc, test_hard_link_serves_its_groups_data);
    tcase_add_test(tc, test_non_files_and_bad_formats_are_refused);
    tcase_add_test(tc, test_a_layer_serves_only_what_it_changed);
    tcase_add_test(tc, test_client_abort_midway_releases_the_reader);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(files_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
