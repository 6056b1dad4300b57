/*
 * The tar-split reader (lib/tarsplit.c): crafted streams, hostile ones,
 * and the real metadata the engines wrote.
 *
 * The real data comes from tests/fixtures/mkengines.sh (`--cached`: built
 * once and shared with the other tests): buildah's vfs and overlay stores
 * and dockerd's overlay2 store of one four-layer image. For each of their
 * layers the test rebuilds the original tar the way an engine does
 * (segments verbatim, each file's bytes from the layer's own directory,
 * each file's CRC-64 checked) and compares it byte for byte with the
 * engine's own export of the layer (skopeo copy, docker save), and its
 * SHA-256 with the diff ID the store recorded; then again through
 * layer_tarsplit_asm, the source the export uses.
 *
 * The source is also tested on crafted layers: exact bytes whatever the
 * read size, each way a layer's file can differ from the original tar
 * (named in the error, never given out whole), hostile tar-split data.
 *
 * Crafted streams are written as gzip files with zlib, each test in its
 * own forked process and scratch directory.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fixture.h"
#include "layer/alloc.h"
#include "layer/crc64.h"
#include "layer/digest.h"
#include "layer/error.h"
#include "layer/tarsplit.h"

static char engines[PATH_MAX]; /* mkengines.sh --cached output */

static void xfmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* snprintf that fails the test instead of truncating. */
static void xfmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < cap, "path too long");
}

/* ---- gzip helpers ---- */

typedef struct gzw {
    FILE *f;
    z_stream z;
} gzw;

static void gzw_open(gzw *g, const char *path)
{
    memset(g, 0, sizeof(*g));
    g->f = fopen(path, "wb");
    ck_assert_msg(g->f != NULL, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(deflateInit2(&g->z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8,
                                  Z_DEFAULT_STRATEGY),
                     Z_OK);
}

static void gzw_run(gzw *g, const void *data, size_t len, int flush)
{
    unsigned char out[65536];
    int zrc;

    g->z.next_in = (unsigned char *)(uintptr_t)data;
    g->z.avail_in = (uInt)len;
    do {
        g->z.next_out = out;
        g->z.avail_out = sizeof(out);
        zrc = deflate(&g->z, flush);
        ck_assert(zrc == Z_OK || zrc == Z_STREAM_END || zrc == Z_BUF_ERROR);
        ck_assert_uint_eq(fwrite(out, 1, sizeof(out) - g->z.avail_out, g->f),
                          sizeof(out) - g->z.avail_out);
    } while (g->z.avail_out == 0 || (flush == Z_FINISH && zrc != Z_STREAM_END));
}

static void gzw_close(gzw *g)
{
    gzw_run(g, NULL, 0, Z_FINISH);
    deflateEnd(&g->z);
    ck_assert_int_eq(fclose(g->f), 0);
}

/* path = gzip(text) */
static void write_gz(const char *path, const char *text)
{
    gzw g;

    gzw_open(&g, path);
    gzw_run(&g, text, strlen(text), Z_NO_FLUSH);
    gzw_close(&g);
}

static void *slurp(const char *path, size_t *len)
{
    struct stat st;
    unsigned char *b;
    FILE *f = fopen(path, "rb");

    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(fstat(fileno(f), &st), 0);
    b = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    *len = (size_t)st.st_size;
    return b;
}

static void spill(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- reading ---- */

typedef struct opened {
    int fd;
    layer_tarsplit *ts;
} opened;

static opened open_ts(const char *path, size_t max_line)
{
    layer_tarsplit_opts o = {.max_line = max_line, .label = "t.gz"};
    opened r;

    r.fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(r.fd >= 0, "open %s: %s", path, strerror(errno));
    r.ts = NULL;
    ck_assert_int_eq(layer_tarsplit_open(&r.ts, r.fd, &o), 0);
    return r;
}

static void close_ts(opened *r)
{
    layer_tarsplit_free(r->ts);
    close(r->fd);
}

/* Read every entry; returns the final code (LAYER_ITEROVER on success)
 * and the number of entries. */
static int drain(const char *path, size_t max_line, size_t *count)
{
    const layer_tarsplit_entry *e;
    opened r = open_ts(path, max_line);
    int rc;

    *count = 0;
    while ((rc = layer_tarsplit_next(&e, r.ts)) == 0)
        (*count)++;
    close_ts(&r);
    return rc;
}

/* text (JSON lines) must fail with code, a message that names line and
 * contains what. */
static void expect_fail(const char *text, int code, unsigned line,
                        const char *what)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz"), want[64];
    size_t n;
    int rc;

    write_gz(path, text);
    rc = drain(path, 0, &n);
    ck_assert_msg(rc == code, "want %s, got %s (%s) for:\n%s",
                  layer_error_name(code), layer_error_name(rc),
                  layer_error_last(), text);
    snprintf(want, sizeof(want), "t.gz: line %u: ", line);
    ck_assert_msg(strstr(layer_error_last(), want) != NULL &&
                      strstr(layer_error_last(), what) != NULL,
                  "message '%s' lacks '%s' or '%s'", layer_error_last(), want,
                  what);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}

#define SEG0 "{\"type\":2,\"payload\":\"AAAA\",\"position\":0}\n"

START_TEST(test_reads_segments_and_files)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    const layer_tarsplit_entry *e;
    opened r;

    write_gz(path,
             "{\"type\":2,\"payload\":\"aGVhZGVy\",\"position\":0}\n"
             "{\"type\":1,\"name\":\"etc/new\",\"size\":4,"
             "\"payload\":\"YVqy3bAAAAA=\",\"position\":1}\n"
             "{\"type\":1,\"name\":\"etc/\",\"payload\":null,\"position\":2}\n"
             "{\"type\":2,\"payload\":\"\",\"position\":3}\n");
    r = open_ts(path, 0);
    ck_assert_int_eq(layer_tarsplit_next(&e, r.ts), 0);
    ck_assert_int_eq(e->type, LAYER_TARSPLIT_SEGMENT);
    ck_assert_uint_eq(e->position, 0);
    ck_assert_uint_eq(e->len, 6);
    ck_assert_mem_eq(e->data, "header", 6);
    ck_assert_int_eq(layer_tarsplit_next(&e, r.ts), 0);
    ck_assert_int_eq(e->type, LAYER_TARSPLIT_FILE);
    ck_assert_str_eq(e->name, "etc/new");
    ck_assert_uint_eq(e->name_len, 7);
    ck_assert_int_eq(e->name_raw, 0);
    ck_assert_uint_eq(e->size, 4);
    ck_assert_int_eq(e->has_crc, 1);
    ck_assert_uint_eq(e->crc, layer_crc64_update(0, "new\n", 4));
    ck_assert_int_eq(layer_tarsplit_next(&e, r.ts), 0);
    ck_assert_str_eq(e->name, "etc/");
    ck_assert_uint_eq(e->size, 0);
    ck_assert_int_eq(e->has_crc, 0);
    ck_assert_int_eq(layer_tarsplit_next(&e, r.ts), 0);
    ck_assert_int_eq(e->type, LAYER_TARSPLIT_SEGMENT);
    ck_assert_uint_eq(e->len, 0);
    ck_assert_uint_eq(e->position, 3);
    ck_assert_uint_eq(layer_tarsplit_line(r.ts), 4);
    ck_assert_int_eq(layer_tarsplit_next(&e, r.ts), LAYER_ITEROVER);
    ck_assert_int_eq(layer_tarsplit_next(&e, r.ts), LAYER_ITEROVER);
    close_ts(&r);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_name_raw_gives_the_raw_bytes)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    const layer_tarsplit_entry *e;
    opened r;

    /* "opt/lat\xe9n", as buildah and dockerd stored it; name_raw wins
     * over name, as tar-split's GetName() has it */
    write_gz(path, "{\"type\":1,\"name\":\"ignored\",\"name_raw\":"
                   "\"b3B0L2xhdOlu\",\"size\":8,\"payload\":\"zjNzXYmIZB4=\","
                   "\"position\":0}\n");
    r = open_ts(path, 0);
    ck_assert_int_eq(layer_tarsplit_next(&e, r.ts), 0);
    ck_assert_int_eq(e->name_raw, 1);
    ck_assert_uint_eq(e->name_len, 9);
    ck_assert_str_eq(e->name, "opt/lat\xe9n");
    ck_assert_uint_eq(e->crc, layer_crc64_update(0, "latin-1\n", 8));
    close_ts(&r);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_last_line_may_lack_its_newline)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    size_t n;

    write_gz(path, SEG0 "{\"type\":2,\"payload\":\"\",\"position\":1}");
    ck_assert_int_eq(drain(path, 0, &n), LAYER_ITEROVER);
    ck_assert_uint_eq(n, 2);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_unknown_keys_are_ignored)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    size_t n;

    write_gz(path, "{\"type\":2,\"payload\":\"\",\"position\":0,"
                   "\"future\":{\"a\":[1,2]}}\n");
    ck_assert_int_eq(drain(path, 0, &n), LAYER_ITEROVER);
    ck_assert_uint_eq(n, 1);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_two_gzip_members_read_as_one_stream)
{
    char *dir = fx_tmpdir(), *a = fx_path(dir, "a.gz"),
         *b = fx_path(dir, "b.gz");
    char *ab = fx_path(dir, "ab.gz");
    unsigned char *pa, *pb, *both;
    size_t la, lb, n;

    write_gz(a, SEG0);
    write_gz(b, "{\"type\":2,\"payload\":\"\",\"position\":1}\n");
    pa = slurp(a, &la);
    pb = slurp(b, &lb);
    both = malloc(la + lb);
    ck_assert_ptr_nonnull(both);
    memcpy(both, pa, la);
    memcpy(both + la, pb, lb);
    spill(ab, both, la + lb);
    ck_assert_int_eq(drain(ab, 0, &n), LAYER_ITEROVER);
    ck_assert_uint_eq(n, 2);
    free(pa);
    free(pb);
    free(both);
    fx_rm_rf(dir);
    free(a);
    free(b);
    free(ab);
    free(dir);
}
END_TEST

/* The lines Go writes are read without jansson; the same entries
 * written any other way JSON allows (spaces, another key order,
 * escapes, unknown keys) are read by jansson: both give the same. */
START_TEST(test_go_lines_and_other_json_read_the_same)
{
    static const char *const go =
        "{\"type\":2,\"payload\":\"aGVhZGVy\",\"position\":0}\n"
        "{\"type\":1,\"name\":\"etc/new\",\"size\":4,"
        "\"payload\":\"YVqy3bAAAAA=\",\"position\":1}\n"
        "{\"type\":1,\"name\":\"etc/\",\"payload\":null,\"position\":2}\n"
        "{\"type\":2,\"payload\":\"\",\"position\":3}\n";
    static const char *const other =
        "{ \"position\": 0, \"type\": 2, \"payload\": \"aGVhZGVy\" }\n"
        "{\"type\":1,\"name\":\"etc\\/n\\u0065w\",\"size\":4,"
        "\"payload\":\"YVqy3bAAAAA=\",\"position\":1,\"x\":[1]}\n"
        "{\"type\":1,\"name\":\"etc/\",\"payload\":null,"
        "\"position\":2}\t\n"
        "{\"type\":2,\"payload\":\"\",\"size\":0,\"position\":3}\n";
    char *dir = fx_tmpdir(), *a = fx_path(dir, "a.gz"),
         *b = fx_path(dir, "b.gz");
    const layer_tarsplit_entry *e;
    char seen[2][512];
    opened r;

    write_gz(a, go);
    write_gz(b, other);
    for (int k = 0; k < 2; k++) {
        size_t o = 0;
        int rc;

        r = open_ts(k == 0 ? a : b, 0);
        while ((rc = layer_tarsplit_next(&e, r.ts)) == 0) {
            int n =
                snprintf(seen[k] + o, sizeof(seen[k]) - o,
                         "%d %llu %s %llu %d %llx %zu|", (int)e->type,
                         (unsigned long long)e->position,
                         e->name ? e->name : "-", (unsigned long long)e->size,
                         e->has_crc, (unsigned long long)e->crc, e->len);

            ck_assert(n > 0 && (size_t)n < sizeof(seen[k]) - o);
            o += (size_t)n;
        }
        ck_assert_msg(rc == LAYER_ITEROVER, "%s", layer_error_last());
        close_ts(&r);
    }
    ck_assert_str_eq(seen[0], seen[1]);
    ck_assert_ptr_nonnull(strstr(seen[0], "1 1 etc/new 4 1 "));
    /* what the fast path leaves to jansson still fails as before */
    expect_fail("{\"type\":2,\"payload\":\"\",\"position\":01}\n",
                LAYER_EBROKEN, 1, "not JSON");
    expect_fail("{\"type\":2,\"payload\":\"\",\"position\":0.5}\n",
                LAYER_EBROKEN, 1, "\"position\" is not an integer");
    expect_fail("{\"type\":2,\"payload\":\"\",\"position\":"
                "99999999999999999999}\n",
                LAYER_EBROKEN, 1, "not JSON");
    expect_fail("{\"type\":2,\"payload\":\"\",\"position\":0,\"type\":2}\n",
                LAYER_EBROKEN, 1, "not JSON");
    expect_fail("{\"type\":2,\"payload\":\"\\u0041AAA\",\"position\":0}\n"
                "{\"type\":2,\"payload\":\"A\x01"
                "AA\",\"position\":1}\n",
                LAYER_EBROKEN, 2, "");
    fx_rm_rf(dir);
    free(a);
    free(b);
    free(dir);
}
END_TEST

START_TEST(test_positions_must_count_from_zero)
{
    expect_fail("{\"type\":2,\"payload\":\"\",\"position\":1}\n", LAYER_EBROKEN,
                1, "position 1 where 0 was due");
    expect_fail(SEG0 "{\"type\":2,\"payload\":\"\",\"position\":2}\n",
                LAYER_EBROKEN, 2, "position 2 where 1 was due");
    expect_fail(SEG0 "{\"type\":2,\"payload\":\"\",\"position\":0}\n",
                LAYER_EBROKEN, 2, "position 0 where 1 was due");
    expect_fail("{\"type\":2,\"payload\":\"\",\"position\":-1}\n",
                LAYER_EBROKEN, 1, "negative \"position\" -1");
    expect_fail("{\"type\":2,\"payload\":\"\"}\n", LAYER_EBROKEN, 1,
                "no \"position\"");
    expect_fail("{\"type\":2,\"payload\":\"\",\"position\":\"0\"}\n",
                LAYER_EBROKEN, 1, "\"position\" is not an integer");
}
END_TEST

START_TEST(test_hostile_names_are_refused)
{
    expect_fail(SEG0 "{\"type\":1,\"name\":\"../etc/passwd\",\"payload\":null,"
                     "\"position\":1}\n",
                LAYER_EBROKEN, 2, "a \"..\" component in the name");
    expect_fail("{\"type\":1,\"name\":\"a/b/../../..\",\"payload\":null,"
                "\"position\":0}\n",
                LAYER_EBROKEN, 1, "a \"..\" component");
    expect_fail("{\"type\":1,\"name\":\"..\",\"payload\":null,"
                "\"position\":0}\n",
                LAYER_EBROKEN, 1, "a \"..\" component");
    expect_fail("{\"type\":1,\"name\":\"/etc/shadow\",\"payload\":null,"
                "\"position\":0}\n",
                LAYER_EBROKEN, 1, "an absolute name: \"/etc/shadow\"");
    expect_fail("{\"type\":1,\"payload\":null,\"position\":0}\n", LAYER_EBROKEN,
                1, "an empty name");
    /* name_raw of "a\0b" */
    expect_fail("{\"type\":1,\"name_raw\":\"YQBi\",\"payload\":null,"
                "\"position\":0}\n",
                LAYER_EBROKEN, 1, "a NUL byte in the name: \"a\\x00b\"");
    /* name_raw of "/x" */
    expect_fail("{\"type\":1,\"name_raw\":\"L3g=\",\"payload\":null,"
                "\"position\":0}\n",
                LAYER_EBROKEN, 1, "an absolute name");
    expect_fail("{\"type\":1,\"name\":5,\"payload\":null,\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"name\" is not a string");
}
END_TEST

START_TEST(test_dots_that_stay_inside_are_names)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    size_t n;

    write_gz(path,
             "{\"type\":1,\"name\":\"./\",\"payload\":null,\"position\":0}\n"
             "{\"type\":1,\"name\":\"./a/..b/c..\",\"payload\":null,"
             "\"position\":1}\n"
             "{\"type\":1,\"name\":\"...\",\"payload\":null,\"position\":2}\n");
    ck_assert_int_eq(drain(path, 0, &n), LAYER_ITEROVER);
    ck_assert_uint_eq(n, 3);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

/* {"type":1,"name":"aaa...","payload":null,"position":0} with a name of
 * len bytes; free() the result. */
static char *long_name_line(size_t len)
{
    static const char head[] = "{\"type\":1,\"name\":\"";
    static const char tail[] = "\",\"payload\":null,\"position\":0}\n";
    char *text = malloc(sizeof(head) + len + sizeof(tail));

    ck_assert_ptr_nonnull(text);
    memcpy(text, head, sizeof(head) - 1);
    memset(text + sizeof(head) - 1, 'a', len);
    memcpy(text + sizeof(head) - 1 + len, tail, sizeof(tail));
    return text;
}

START_TEST(test_long_names_are_refused)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    char *text = long_name_line(LAYER_TARSPLIT_MAX_NAME + 1);
    size_t n;

    expect_fail(text, LAYER_EBROKEN, 1, "a name longer than 4095 bytes");
    free(text);
    /* exactly at the limit it is a name */
    text = long_name_line(LAYER_TARSPLIT_MAX_NAME);
    write_gz(path, text);
    ck_assert_int_eq(drain(path, 0, &n), LAYER_ITEROVER);
    free(text);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_bad_base64_is_refused)
{
    expect_fail("{\"type\":2,\"payload\":\"@@@@\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"payload\" is not valid base64");
    expect_fail("{\"type\":2,\"payload\":\"YWJ\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"payload\" is not valid base64");
    expect_fail("{\"type\":2,\"payload\":\"YQ==YQ==\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"payload\" is not valid base64");
    expect_fail("{\"type\":2,\"payload\":\"Y===\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"payload\" is not valid base64");
    expect_fail("{\"type\":2,\"payload\":\"YW=j\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"payload\" is not valid base64");
    expect_fail("{\"type\":1,\"name_raw\":\"b3B0L2xhdOlu!\",\"payload\":null,"
                "\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"name_raw\" is not valid base64");
    expect_fail("{\"type\":1,\"name\":\"f\",\"size\":1,\"payload\":"
                "\"YVqy3bAAAA\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"payload\" is not valid base64");
}
END_TEST

START_TEST(test_file_fields_are_checked)
{
    expect_fail("{\"type\":1,\"name\":\"f\",\"size\":-4,\"payload\":"
                "\"YVqy3bAAAAA=\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "negative \"size\" -4");
    expect_fail("{\"type\":1,\"name\":\"f\",\"size\":4.0,\"payload\":"
                "\"YVqy3bAAAAA=\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"size\" is not an integer");
    expect_fail("{\"type\":1,\"name\":\"f\",\"size\":4,\"payload\":null,"
                "\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"f\" has 4 bytes but no CRC");
    expect_fail("{\"type\":1,\"name\":\"f\",\"size\":4,\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"f\" has 4 bytes but no CRC");
    expect_fail("{\"type\":1,\"name\":\"f\",\"size\":4,\"payload\":\"YWJj\","
                "\"position\":0}\n",
                LAYER_EBROKEN, 1, "the CRC of \"f\" has 3 bytes, not 8");
    expect_fail("{\"type\":1,\"name\":\"f\",\"size\":4,\"payload\":7,"
                "\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"payload\" is not a string");
    expect_fail("{\"type\":1,\"name\":\"f\",\"size\":99999999999999999999,"
                "\"payload\":\"YVqy3bAAAAA=\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "not JSON");
}
END_TEST

START_TEST(test_segment_fields_are_checked)
{
    expect_fail("{\"type\":2,\"name\":\"x\",\"payload\":\"\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "a segment with a name");
    expect_fail("{\"type\":2,\"size\":3,\"payload\":\"\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "a segment with a size");
    expect_fail("{\"type\":2,\"payload\":[1],\"position\":0}\n", LAYER_EBROKEN,
                1, "\"payload\" is not a string");
}
END_TEST

START_TEST(test_lines_must_be_known_objects)
{
    expect_fail(SEG0 "{\"type\":3,\"payload\":\"\",\"position\":1}\n",
                LAYER_EBROKEN, 2, "unknown entry type 3");
    expect_fail("{\"type\":0,\"payload\":\"\",\"position\":0}\n", LAYER_EBROKEN,
                1, "unknown entry type 0");
    expect_fail("{\"payload\":\"\",\"position\":0}\n", LAYER_EBROKEN, 1,
                "no \"type\"");
    expect_fail("{\"type\":\"2\",\"payload\":\"\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "\"type\" is not an integer");
    expect_fail("[2,\"\",0]\n", LAYER_EBROKEN, 1, "not a JSON object");
    expect_fail(SEG0 "{\"type\":2,\n", LAYER_EBROKEN, 2, "not JSON");
    expect_fail(SEG0 "{\"type\":2,\"payload\":\"\",\"position\":1} x\n",
                LAYER_EBROKEN, 2, "not JSON");
    expect_fail(SEG0 "\n", LAYER_EBROKEN, 2, "an empty line");
    expect_fail("{\"type\":2,\"type\":1,\"payload\":\"\",\"position\":0}\n",
                LAYER_EBROKEN, 1, "not JSON");
    expect_fail("", LAYER_EBROKEN, 1, "no entries");
}
END_TEST

START_TEST(test_truncated_gzip_is_an_error)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    char *cut = fx_path(dir, "cut.gz");
    unsigned char *b;
    size_t len, n;

    write_gz(path, SEG0 "{\"type\":2,\"payload\":\"\",\"position\":1}\n");
    b = slurp(path, &len);
    /* without its trailer, without half, with only the header */
    spill(cut, b, len - 1);
    ck_assert_int_eq(drain(cut, 0, &n), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "truncated gzip data"));
    spill(cut, b, len / 2);
    ck_assert_int_eq(drain(cut, 0, &n), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "truncated gzip data"));
    spill(cut, b, 10);
    ck_assert_int_eq(drain(cut, 0, &n), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "truncated gzip data"));
    ck_assert_uint_eq(n, 0);
    spill(cut, b, 0);
    ck_assert_int_eq(drain(cut, 0, &n), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "empty input"));
    /* a flipped byte in the data fails the gzip CRC or the inflate */
    b[len / 2] ^= 0x55;
    spill(cut, b, len);
    ck_assert_int_eq(drain(cut, 0, &n), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "gzip data"));
    free(b);
    fx_rm_rf(dir);
    free(path);
    free(cut);
    free(dir);
}
END_TEST

START_TEST(test_trailing_garbage_is_an_error)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    char *bad = fx_path(dir, "bad.gz");
    unsigned char *b, *c;
    size_t len, n;

    write_gz(path, SEG0);
    b = slurp(path, &len);
    c = malloc(len + 8);
    ck_assert_ptr_nonnull(c);
    memcpy(c, b, len);
    memcpy(c + len, "garbage!", 8);
    spill(bad, c, len + 8);
    ck_assert_int_eq(drain(bad, 0, &n), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(
        strstr(layer_error_last(), "bytes after the end of the gzip data"));
    /* something that starts like a gzip member but is not one */
    memcpy(c + len, "\x1f\x8b\x00\x00rest", 8);
    spill(bad, c, len + 8);
    ck_assert_int_eq(drain(bad, 0, &n), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "gzip data"));
    /* not gzip at all */
    spill(bad, SEG0, strlen(SEG0));
    ck_assert_int_eq(drain(bad, 0, &n), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "corrupt gzip data"));
    free(b);
    free(c);
    fx_rm_rf(dir);
    free(path);
    free(bad);
    free(dir);
}
END_TEST

/* A 64 MiB line (compressed: a few hundred KiB) is refused at the cap
 * without being held: the reader fails once the cap is passed. */
START_TEST(test_a_64_mib_line_is_refused)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    static char chunk[1 << 20];
    const char *head = "{\"type\":2,\"payload\":\"";
    gzw g;
    size_t n;

    memset(chunk, 'A', sizeof(chunk));
    gzw_open(&g, path);
    gzw_run(&g, SEG0, strlen(SEG0), Z_NO_FLUSH);
    gzw_run(&g, head, strlen(head), Z_NO_FLUSH);
    for (int i = 0; i < 64; i++)
        gzw_run(&g, chunk, sizeof(chunk), Z_NO_FLUSH);
    gzw_run(&g, "\",\"position\":1}\n", 16, Z_NO_FLUSH);
    gzw_close(&g);
    ck_assert_int_eq(drain(path, 0, &n), LAYER_ETOOBIG);
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_nonnull(
        strstr(layer_error_last(),
               "t.gz: line 2: longer than the cap of 4194304 bytes"));
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_the_line_cap_is_exact)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    const char *line = "{\"type\":2,\"payload\":\"YWJj\",\"position\":0}";
    size_t n, len = strlen(line);

    write_gz(path, "{\"type\":2,\"payload\":\"YWJj\",\"position\":0}\n");
    ck_assert_int_eq(drain(path, len, &n), LAYER_ITEROVER);
    ck_assert_int_eq(drain(path, len - 1, &n), LAYER_ETOOBIG);
    ck_assert_uint_eq(n, 0);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_errors_are_final)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    const layer_tarsplit_entry *e;
    char first[512];
    opened r;

    write_gz(path, SEG0 "{\"type\":9,\"position\":1}\n" SEG0);
    r = open_ts(path, 0);
    ck_assert_int_eq(layer_tarsplit_next(&e, r.ts), 0);
    ck_assert_int_eq(layer_tarsplit_next(&e, r.ts), LAYER_EBROKEN);
    snprintf(first, sizeof(first), "%s", layer_error_last());
    layer_error_clear();
    ck_assert_int_eq(layer_tarsplit_next(&e, r.ts), LAYER_EBROKEN);
    ck_assert_str_eq(layer_error_last(), first);
    close_ts(&r);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_read_errors_and_bad_arguments)
{
    char *dir = fx_tmpdir();
    const layer_tarsplit_entry *e;
    layer_tarsplit *ts = NULL;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(layer_tarsplit_open(&ts, -1, NULL), LAYER_EINVALID);
    ck_assert_ptr_null(ts);
    ck_assert_int_eq(layer_tarsplit_open(&ts, fd, NULL), 0);
    ck_assert_int_eq(layer_tarsplit_next(&e, ts), LAYER_ERROR);
    ck_assert_int_eq(layer_error_errno(), EISDIR);
    ck_assert_ptr_nonnull(
        strstr(layer_error_last(), "tar-split: line 1: read"));
    layer_tarsplit_free(ts);
    layer_tarsplit_free(NULL);
    close(fd);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

/* Every allocation failure is an ENOMEM that leaks nothing (the
 * sanitizer build checks the leaks). */
START_TEST(test_allocation_failures_are_clean)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "t.gz");
    int ok = 0;

    write_gz(path, "{\"type\":2,\"payload\":\"aGVhZGVy\",\"position\":0}\n"
                   "{\"type\":1,\"name_raw\":\"b3B0L2xhdOlu\",\"size\":8,"
                   "\"payload\":\"zjNzXYmIZB4=\",\"position\":1}\n");
    for (unsigned long n = 1; n < 64 && !ok; n++) {
        const layer_tarsplit_entry *e;
        layer_tarsplit *ts = NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

        ck_assert_int_ge(fd, 0);
        layer_alloc_fail_after(n);
        rc = layer_tarsplit_open(&ts, fd, NULL);
        if (rc == 0) {
            while ((rc = layer_tarsplit_next(&e, ts)) == 0)
                ;
        }
        layer_alloc_fail_after(0);
        ck_assert_msg(rc == LAYER_ITEROVER || rc == LAYER_ENOMEM,
                      "failing allocation %lu: %s", n, layer_error_name(rc));
        ok = rc == LAYER_ITEROVER;
        layer_tarsplit_free(ts);
        close(fd);
    }
    ck_assert_int_eq(ok, 1);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

/* ---- rebuilding the original tar (layer_tarsplit_asm) ---- */

/* Standard base64 with padding. */
static void b64(char *out, const void *data, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = data;
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;

        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = '\0';
}

/* tar-split lines being written, and the tar they describe. */
typedef struct tsw {
    char text[16384];
    unsigned char tar[131072];
    size_t tar_len;
    unsigned pos;
} tsw;

static void tsw_append(tsw *w, const char *line)
{
    size_t len = strlen(w->text);

    ck_assert_uint_lt(len + strlen(line), sizeof(w->text));
    memcpy(w->text + len, line, strlen(line) + 1);
}

static void tsw_seg(tsw *w, const char *bytes)
{
    char enc[4096], line[4200];
    size_t n = strlen(bytes);

    b64(enc, bytes, n);
    xfmt(line, sizeof(line),
         "{\"type\":2,\"payload\":\"%s\",\"position\":%u}\n", enc, w->pos++);
    tsw_append(w, line);
    ck_assert_uint_lt(w->tar_len + n, sizeof(w->tar));
    memcpy(w->tar + w->tar_len, bytes, n);
    w->tar_len += n;
}

/* A file entry for name holding content (NULL: no content, as for a
 * directory); raw: the name goes in name_raw. */
static void tsw_file(tsw *w, const char *name, const char *content, int raw)
{
    unsigned char crc[8];
    char enc[64], nm[4200], line[4400];
    size_t n = content ? strlen(content) : 0;

    if (raw) {
        char e[4096];

        b64(e, name, strlen(name));
        xfmt(nm, sizeof(nm), "\"name_raw\":\"%s\"", e);
    } else {
        xfmt(nm, sizeof(nm), "\"name\":\"%s\"", name);
    }
    if (n > 0) {
        layer_crc64_put(crc, layer_crc64_update(0, content, n));
        b64(enc, crc, 8);
        xfmt(line, sizeof(line),
             "{\"type\":1,%s,\"size\":%zu,\"payload\":\"%s\",\"position\":%u}"
             "\n",
             nm, n, enc, w->pos++);
        ck_assert_uint_lt(w->tar_len + n, sizeof(w->tar));
        memcpy(w->tar + w->tar_len, content, n);
        w->tar_len += n;
    } else {
        xfmt(line, sizeof(line),
             "{\"type\":1,%s,\"payload\":null,\"position\":%u}\n", nm,
             w->pos++);
    }
    tsw_append(w, line);
}

typedef struct asm_run {
    int rc;
    unsigned char *out;
    size_t len;
    layer_tarsplit_asm_stats stats;
    char msg[1024];
} asm_run;

/* Rebuild from the tar-split file ts over the directory layer, cap bytes
 * per read. */
static asm_run asm_all(const char *ts, const char *layer, size_t cap)
{
    layer_tarsplit_opts o = {.label = "t.gz"};
    layer_tarsplit_asm *a = NULL;
    unsigned char *buf = malloc(cap);
    asm_run r = {0};
    int tfd = open(ts, O_RDONLY | O_CLOEXEC);
    int lfd = open(layer, O_PATH | O_DIRECTORY | O_CLOEXEC);
    size_t n;

    ck_assert_ptr_nonnull(buf);
    ck_assert_int_ge(tfd, 0);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(layer_tarsplit_asm_open(&a, tfd, lfd, &o), 0);
    while ((r.rc = layer_tarsplit_asm_read(&n, a, buf, cap)) == 0) {
        ck_assert_uint_gt(n, 0);
        ck_assert_uint_le(n, cap);
        r.out = realloc(r.out, r.len + n);
        ck_assert_ptr_nonnull(r.out);
        memcpy(r.out + r.len, buf, n);
        r.len += n;
    }
    snprintf(r.msg, sizeof(r.msg), "%s", layer_error_last());
    layer_tarsplit_asm_stats_get(&r.stats, a);
    ck_assert_uint_eq(r.stats.bytes, r.len);
    layer_tarsplit_asm_free(a);
    close(tfd);
    close(lfd);
    free(buf);
    return r;
}

/* A scratch directory with layer/ and the tar-split file t.gz. */
typedef struct scratch {
    char *dir, *layer, *ts;
} scratch;

static scratch scratch_new(void)
{
    scratch s;

    s.dir = fx_tmpdir();
    s.layer = fx_path(s.dir, "layer");
    s.ts = fx_path(s.dir, "t.gz");
    fx_mkdir(s.dir, "layer", 0755);
    return s;
}

static void scratch_free(scratch *s)
{
    fx_rm_rf(s->dir);
    free(s->dir);
    free(s->layer);
    free(s->ts);
}

/* The small layer most tests use: etc/a, etc/b, opt/lat\xe9n. */
static void small_layer(scratch *s, tsw *w)
{
    fx_mkdir(s->layer, "etc", 0755);
    fx_file(s->layer, "etc/a", "hello\n", 0644);
    fx_file(s->layer, "etc/b", "second file\n", 0600);
    fx_file(s->layer, "etc/empty", "", 0644);
    fx_mkdir(s->layer, "opt", 0755);
    fx_file(s->layer, "opt/lat\xe9n", "latin-1\n", 0644);
    memset(w, 0, sizeof(*w));
    tsw_seg(w, "<header etc/>");
    tsw_file(w, "etc/", NULL, 0);
    tsw_seg(w, "<header etc/a>");
    tsw_file(w, "etc/a", "hello\n", 0);
    tsw_seg(w, "<pad><header etc/b>");
    /* "./" and doubled separators name the same file */
    tsw_file(w, "./etc//b", "second file\n", 0);
    tsw_seg(w, "<pad><header etc/empty>");
    tsw_file(w, "etc/empty", NULL, 0);
    tsw_seg(w, "<header etc/gone, a whiteout>");
    tsw_file(w, "etc/.wh.gone", NULL, 0);
    tsw_seg(w, "<header opt/lat\xc3\xa9n>");
    tsw_file(w, "opt/lat\xe9n", "latin-1\n", 1);
    tsw_seg(w, "<pad><end of archive>");
}

START_TEST(test_asm_rebuilds_segments_and_files)
{
    static const size_t caps[] = {1, 3, 7, 65536};
    scratch s = scratch_new();
    tsw w;

    small_layer(&s, &w);
    write_gz(s.ts, w.text);
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        asm_run r = asm_all(s.ts, s.layer, caps[i]);

        ck_assert_msg(r.rc == LAYER_ITEROVER, "cap %zu: %s", caps[i], r.msg);
        ck_assert_uint_eq(r.len, w.tar_len);
        ck_assert_mem_eq(r.out, w.tar, w.tar_len);
        ck_assert_uint_eq(r.stats.entries, 6);
        ck_assert_uint_eq(r.stats.files, 3);
        free(r.out);
    }
    scratch_free(&s);
}
END_TEST

/* The layer's file is changed in one way; the rebuild fails with
 * LAYER_ECHANGED and a message that names the file and says what. */
static void expect_changed(void (*change)(const char *layer), const char *what)
{
    scratch s = scratch_new();
    asm_run r;
    tsw w;

    small_layer(&s, &w);
    write_gz(s.ts, w.text);
    change(s.layer);
    r = asm_all(s.ts, s.layer, 65536);
    ck_assert_msg(r.rc == LAYER_ECHANGED, "want ECHANGED for '%s', got %s: %s",
                  what, layer_error_name(r.rc), r.msg);
    ck_assert_msg(strstr(r.msg, what) != NULL, "message '%s' lacks '%s'", r.msg,
                  what);
    /* etc/b (or a file before it) is never given out whole */
    {
        const unsigned char *b = memmem(w.tar, w.tar_len, "second file", 11);

        ck_assert_ptr_nonnull(b);
        ck_assert_uint_lt(r.len, (size_t)(b - w.tar) + 12);
        ck_assert_mem_eq(r.out, w.tar, r.len);
    }
    free(r.out);
    scratch_free(&s);
}

static void change_missing(const char *l)
{
    fx_unlink(l, "etc/b");
}
static void change_longer(const char *l)
{
    fx_file(l, "etc/b", "second file!\n", 0600);
}
static void change_content(const char *l)
{
    fx_file(l, "etc/b", "Second file\n", 0600);
}
static void change_symlink(const char *l)
{
    fx_unlink(l, "etc/b");
    fx_symlink(l, "etc/b", "a");
}
static void change_fifo(const char *l)
{
    fx_unlink(l, "etc/b");
    fx_fifo(l, "etc/b");
}
static void change_dir(const char *l)
{
    fx_unlink(l, "etc/b");
    fx_mkdir(l, "etc/b", 0755);
}
static void change_parent_symlink(const char *l)
{
    /* etc -> real, holding the same files: refused all the same, the
     * path meets a symlink */
    char *etc = fx_path(l, "etc");

    fx_mkdir(l, "real", 0755);
    fx_file(l, "real/a", "hello\n", 0644);
    fx_file(l, "real/b", "second file\n", 0600);
    fx_file(l, "real/empty", "", 0644);
    fx_rm_rf(etc);
    free(etc);
    fx_symlink(l, "etc", "real");
}

START_TEST(test_asm_changed_files_are_named)
{
    expect_changed(change_missing, "etc/b: missing from the layer directory");
    expect_changed(change_longer,
                   "etc/b: 13 bytes in the layer directory, 12 in the "
                   "original tar");
    expect_changed(change_content, "etc/b: other content than in the "
                                   "original tar (CRC-64 ");
    expect_changed(change_symlink, "etc/b: a symlink in the layer directory");
    expect_changed(change_fifo, "etc/b: not a regular file");
    expect_changed(change_dir, "etc/b: not a regular file");
    expect_changed(change_parent_symlink, "etc/a: a symlink in the layer");
}
END_TEST

/* A file cut short while it is read: the rebuild fails at the hole. */
START_TEST(test_asm_file_that_shrinks_while_read)
{
    static char big[100000];
    layer_tarsplit_opts o = {.label = "t.gz"};
    layer_tarsplit_asm *a = NULL;
    unsigned char buf[4096];
    scratch s = scratch_new();
    char *path = fx_path(s.layer, "big");
    tsw w = {0};
    size_t n, got = 0;
    int tfd, lfd, rc;

    memset(big, 'x', sizeof(big) - 1);
    fx_file(s.layer, "big", big, 0644);
    tsw_seg(&w, "H");
    tsw_file(&w, "big", big, 0);
    write_gz(s.ts, w.text);
    tfd = open(s.ts, O_RDONLY | O_CLOEXEC);
    lfd = open(s.layer, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_eq(layer_tarsplit_asm_open(&a, tfd, lfd, &o), 0);
    ck_assert_int_eq(layer_tarsplit_asm_read(&n, a, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(layer_tarsplit_asm_read(&n, a, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(n, sizeof(buf));
    ck_assert_int_eq(truncate(path, 5000), 0);
    while ((rc = layer_tarsplit_asm_read(&n, a, buf, sizeof(buf))) == 0)
        got += n;
    ck_assert_int_eq(rc, LAYER_ECHANGED);
    ck_assert_uint_eq(got, 5000 - sizeof(buf));
    ck_assert_ptr_nonnull(
        strstr(layer_error_last(), "big: ended after 5000 of its 99999 bytes"));
    layer_tarsplit_asm_free(a);
    close(tfd);
    close(lfd);
    free(path);
    scratch_free(&s);
}
END_TEST

/* Hostile tar-split data fails the rebuild with the reader's error; no
 * file outside the layer is read. */
static void expect_asm_broken(const char *text, int code, const char *what)
{
    scratch s = scratch_new();
    asm_run r;

    fx_file(s.dir, "outside", "secret\n", 0600);
    fx_file(s.layer, "inside", "secret\n", 0600);
    write_gz(s.ts, text);
    r = asm_all(s.ts, s.layer, 65536);
    ck_assert_msg(r.rc == code, "want %s, got %s: %s", layer_error_name(code),
                  layer_error_name(r.rc), r.msg);
    ck_assert_msg(strstr(r.msg, what) != NULL, "message '%s' lacks '%s'", r.msg,
                  what);
    ck_assert_msg(r.len == 0 || memmem(r.out, r.len, "secret", 6) == NULL,
                  "a file's bytes were given out");
    free(r.out);
    scratch_free(&s);
}

#define CRC_SECRET "\"payload\":\"YVhizcdyzEA=\""

START_TEST(test_asm_hostile_data_is_refused)
{
    unsigned char crc[8];
    char enc[16];

    /* the CRC-64 in CRC_SECRET is that of "secret\n" */
    layer_crc64_put(crc, layer_crc64_update(0, "secret\n", 7));
    b64(enc, crc, 8);
    ck_assert_ptr_nonnull(strstr(CRC_SECRET, enc));
    expect_asm_broken(
        "{\"type\":1,\"name\":\"../outside\",\"size\":7," CRC_SECRET
        ",\"position\":0}\n",
        LAYER_EBROKEN, "t.gz: line 1: a \"..\" component");
    expect_asm_broken(
        "{\"type\":1,\"name\":\"/etc/passwd\",\"size\":7," CRC_SECRET
        ",\"position\":0}\n",
        LAYER_EBROKEN, "t.gz: line 1: an absolute name");
    expect_asm_broken("{\"type\":1,\"name\":\"./\",\"size\":7," CRC_SECRET
                      ",\"position\":0}\n",
                      LAYER_EBROKEN,
                      "t.gz: line 1: \"./\" has content but "
                      "names no file");
    expect_asm_broken("{\"type\":1,\"name\":\"inside\",\"size\":7," CRC_SECRET
                      ",\"position\":-1}\n",
                      LAYER_EBROKEN, "t.gz: line 1: negative \"position\"");
    expect_asm_broken(
        "{\"type\":2,\"payload\":\"not base64!\",\"position\":0}\n",
        LAYER_EBROKEN,
        "t.gz: line 1: \"payload\" is not valid "
        "base64");
    /* a name no file can have (a component over 255 bytes) is missing */
    {
        char line[1024], name[301];

        memset(name, 'n', 300);
        name[300] = '\0';
        xfmt(line, sizeof(line),
             "{\"type\":1,\"name\":\"%s\",\"size\":7," CRC_SECRET
             ",\"position\":0}\n",
             name);
        expect_asm_broken(line, LAYER_ECHANGED,
                          "nnn...: missing from the layer directory");
    }
    /* a size that disagrees with the file */
    expect_asm_broken("{\"type\":1,\"name\":\"inside\",\"size\":8," CRC_SECRET
                      ",\"position\":0}\n",
                      LAYER_ECHANGED,
                      "inside: 7 bytes in the layer directory, "
                      "8 in the original tar");
}
END_TEST

START_TEST(test_asm_truncated_data_fails_after_what_it_had)
{
    scratch s = scratch_new();
    unsigned char *b;
    size_t len;
    asm_run r;
    tsw w;

    small_layer(&s, &w);
    write_gz(s.ts, w.text);
    b = slurp(s.ts, &len);
    /* without the end of its trailer: every byte, then the error */
    spill(s.ts, b, len - 4);
    r = asm_all(s.ts, s.layer, 65536);
    ck_assert_int_eq(r.rc, LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(r.msg, "t.gz: line "));
    ck_assert_ptr_nonnull(strstr(r.msg, "truncated gzip data"));
    ck_assert_uint_le(r.len, w.tar_len);
    ck_assert_mem_eq(r.out, w.tar, r.len);
    free(r.out);
    /* cut in half */
    spill(s.ts, b, len / 2);
    r = asm_all(s.ts, s.layer, 65536);
    ck_assert_int_eq(r.rc, LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(r.msg, "truncated gzip data"));
    ck_assert_uint_lt(r.len, w.tar_len);
    if (r.len > 0)
        ck_assert_mem_eq(r.out, w.tar, r.len);
    free(r.out);
    free(b);
    scratch_free(&s);
}
END_TEST

START_TEST(test_asm_errors_are_final_and_arguments_checked)
{
    layer_tarsplit_asm *a = NULL;
    scratch s = scratch_new();
    unsigned char buf[64];
    char first[1024];
    size_t n;
    int tfd, lfd;
    tsw w;

    small_layer(&s, &w);
    write_gz(s.ts, w.text);
    fx_unlink(s.layer, "etc/a");
    tfd = open(s.ts, O_RDONLY | O_CLOEXEC);
    lfd = open(s.layer, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_eq(layer_tarsplit_asm_open(&a, tfd, -1, NULL),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_tarsplit_asm_open(&a, -1, lfd, NULL),
                     LAYER_EINVALID);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(layer_tarsplit_asm_open(&a, tfd, lfd, NULL), 0);
    ck_assert_int_eq(layer_tarsplit_asm_read(&n, a, buf, 0), LAYER_EINVALID);
    while (layer_tarsplit_asm_read(&n, a, buf, sizeof(buf)) == 0)
        ;
    ck_assert_int_eq(layer_error_last_code(), LAYER_ECHANGED);
    snprintf(first, sizeof(first), "%s", layer_error_last());
    ck_assert_ptr_nonnull(strstr(first, "etc/a: missing"));
    layer_error_clear();
    ck_assert_int_eq(layer_tarsplit_asm_read(&n, a, buf, sizeof(buf)),
                     LAYER_ECHANGED);
    ck_assert_str_eq(layer_error_last(), first);
    layer_tarsplit_asm_free(a);
    layer_tarsplit_asm_free(NULL);
    close(tfd);
    close(lfd);
    scratch_free(&s);
}
END_TEST

/* ---- the engines' own data ---- */

typedef struct layer_row {
    char n[8], id[80], diff[80], ref[512], asm_[512], ts[512], dir[512];
} layer_row;

static int parse_row(layer_row *r, char *line)
{
    char *f[7], *p = line;
    int k = 0;

    line[strcspn(line, "\n")] = '\0';
    while (k < 7) {
        f[k++] = p;
        p = strchr(p, '\t');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    if (k != 7 || p != NULL)
        return -1;
    snprintf(r->n, sizeof(r->n), "%s", f[0]);
    snprintf(r->id, sizeof(r->id), "%s", f[1]);
    snprintf(r->diff, sizeof(r->diff), "%s", f[2]);
    snprintf(r->ref, sizeof(r->ref), "%s", f[3]);
    snprintf(r->asm_, sizeof(r->asm_), "%s", f[4]);
    snprintf(r->ts, sizeof(r->ts), "%s", f[5]);
    snprintf(r->dir, sizeof(r->dir), "%s", f[6]);
    return 0;
}

typedef struct seen {
    unsigned files, with_content, name_raw, opaque, whiteouts;
} seen;

/* Rebuild one layer's tar from its tar-split data and its directory,
 * compare it with the engine's export; the rebuilt bytes hash to the
 * recorded diff ID. */
static void rebuild_layer(const char *store, const layer_row *row, seen *s)
{
    char path[PATH_MAX], label[PATH_MAX + 64], digest[LAYER_DIGEST_STR_SIZE];
    layer_tarsplit_opts o = {0};
    const layer_tarsplit_entry *e;
    layer_digest d = LAYER_DIGEST_INIT;
    layer_tarsplit *ts = NULL;
    unsigned char *ref, *buf = NULL;
    size_t ref_len, off = 0;
    int fd, rc;

    xfmt(path, sizeof(path), "%s/%s", engines, row->ref);
    ref = slurp(path, &ref_len);
    xfmt(path, sizeof(path), "%s/%s", engines, row->ts);
    xfmt(label, sizeof(label), "%s layer %s", store, row->n);
    o.label = label;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(layer_tarsplit_open(&ts, fd, &o), 0);
    ck_assert_int_eq(layer_digest_init(&d), 0);
    while ((rc = layer_tarsplit_next(&e, ts)) == 0) {
        const unsigned char *p = e->data;
        size_t len = e->len;

        if (e->type == LAYER_TARSPLIT_FILE) {
            const char *base = strrchr(e->name, '/');

            base = base ? base + 1 : e->name;
            s->files++;
            s->name_raw += e->name_raw != 0;
            s->opaque += strcmp(base, ".wh..wh..opq") == 0;
            s->whiteouts += strncmp(base, ".wh.", 4) == 0;
            if (e->size == 0)
                continue;
            s->with_content++;
            /* the file as the engines read it: LAYER_DIR/name */
            xfmt(path, sizeof(path), "%s/%s/%s", engines, row->dir, e->name);
            buf = realloc(buf, e->size);
            ck_assert_ptr_nonnull(buf);
            {
                int ffd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                ssize_t got;

                ck_assert_msg(ffd >= 0, "open %s: %s", path, strerror(errno));
                got = read(ffd, buf, e->size);
                ck_assert_msg(got >= 0 && (uint64_t)got == e->size,
                              "%s: read %zd of %llu bytes", path, got,
                              (unsigned long long)e->size);
                close(ffd);
            }
            ck_assert_msg(layer_crc64_update(0, buf, e->size) == e->crc,
                          "%s: CRC-64 differs from the stored one", path);
            p = buf;
            len = e->size;
        }
        ck_assert_msg(off + len <= ref_len &&
                          (len == 0 || memcmp(ref + off, p, len) == 0),
                      "%s: rebuilt bytes differ from %s at or after offset "
                      "%zu",
                      label, row->ref, off);
        ck_assert_int_eq(layer_digest_update(&d, p, len), 0);
        off += len;
    }
    ck_assert_msg(rc == LAYER_ITEROVER, "%s: %s", label, layer_error_last());
    ck_assert_msg(off == ref_len, "%s: rebuilt %zu bytes, %s has %zu", label,
                  off, row->ref, ref_len);
    ck_assert_int_eq(layer_digest_final(digest, &d), 0);
    ck_assert_str_eq(digest, row->diff);
    layer_digest_dispose(&d);
    layer_tarsplit_free(ts);
    close(fd);
    free(buf);
    free(ref);
}

/* The same through layer_tarsplit_asm: the engine's bytes exactly. */
static void asm_layer(const layer_row *row)
{
    char ts[PATH_MAX], dir[PATH_MAX], digest[LAYER_DIGEST_STR_SIZE];
    layer_digest d = LAYER_DIGEST_INIT;
    unsigned char *ref;
    size_t ref_len;
    asm_run r;

    xfmt(ts, sizeof(ts), "%s/%s", engines, row->ref);
    ref = slurp(ts, &ref_len);
    xfmt(ts, sizeof(ts), "%s/%s", engines, row->ts);
    xfmt(dir, sizeof(dir), "%s/%s", engines, row->dir);
    r = asm_all(ts, dir, 256 * 1024);
    ck_assert_msg(r.rc == LAYER_ITEROVER, "%s: %s", row->ts, r.msg);
    ck_assert_uint_eq(r.len, ref_len);
    ck_assert_msg(memcmp(r.out, ref, ref_len) == 0, "%s differs from %s",
                  row->ts, row->ref);
    ck_assert_int_eq(layer_digest_init(&d), 0);
    ck_assert_int_eq(layer_digest_update(&d, r.out, r.len), 0);
    ck_assert_int_eq(layer_digest_final(digest, &d), 0);
    ck_assert_str_eq(digest, row->diff);
    layer_digest_dispose(&d);
    free(r.out);
    free(ref);
}

START_TEST(test_real_layers_rebuild_their_original_tars)
{
    static const char *const stores[] = {"cs-vfs", "cs-overlay", "docker"};
    unsigned layers = 0;

    for (size_t i = 0; i < 3; i++) {
        char path[PATH_MAX], line[4096];
        seen s = {0};
        FILE *f;

        xfmt(path, sizeof(path), "%s/%s/layers.tsv", engines, stores[i]);
        f = fopen(path, "r");
        ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f) != NULL) {
            layer_row row;

            ck_assert_int_eq(parse_row(&row, line), 0);
            rebuild_layer(stores[i], &row, &s);
            asm_layer(&row);
            layers++;
        }
        fclose(f);
        /* the image holds what the fixture promises: busybox and the
         * small files, the Latin-1 name, deletions; an opaque marker
         * where the engine diffs overlay upper directories */
        ck_assert_uint_ge(s.with_content, 10);
        ck_assert_uint_eq(s.name_raw, 1);
        ck_assert_uint_ge(s.whiteouts, 3);
        if (strcmp(stores[i], "cs-vfs") != 0)
            ck_assert_uint_eq(s.opaque, 1);
    }
    ck_assert_uint_eq(layers, 12);
}
END_TEST

static Suite *tarsplit_suite(void)
{
    Suite *s = suite_create("tarsplit");
    TCase *tc = tcase_create("crafted");
    TCase *real = tcase_create("engines");

    tcase_add_test(tc, test_reads_segments_and_files);
    tcase_add_test(tc, test_name_raw_gives_the_raw_bytes);
    tcase_add_test(tc, test_last_line_may_lack_its_newline);
    tcase_add_test(tc, test_unknown_keys_are_ignored);
    tcase_add_test(tc, test_two_gzip_members_read_as_one_stream);
    tcase_add_test(tc, test_go_lines_and_other_json_read_the_same);
    tcase_add_test(tc, test_positions_must_count_from_zero);
    tcase_add_test(tc, test_hostile_names_are_refused);
    tcase_add_test(tc, test_dots_that_stay_inside_are_names);
    tcase_add_test(tc, test_long_names_are_refused);
    tcase_add_test(tc, test_bad_base64_is_refused);
    tcase_add_test(tc, test_file_fields_are_checked);
    tcase_add_test(tc, test_segment_fields_are_checked);
    tcase_add_test(tc, test_lines_must_be_known_objects);
    tcase_add_test(tc, test_truncated_gzip_is_an_error);
    tcase_add_test(tc, test_trailing_garbage_is_an_error);
    tcase_add_test(tc, test_a_64_mib_line_is_refused);
    tcase_add_test(tc, test_the_line_cap_is_exact);
    tcase_add_test(tc, test_errors_are_final);
    tcase_add_test(tc, test_read_errors_and_bad_arguments);
    tcase_add_test(tc, test_allocation_failures_are_clean);
    tcase_add_test(tc, test_asm_rebuilds_segments_and_files);
    tcase_add_test(tc, test_asm_changed_files_are_named);
    tcase_add_test(tc, test_asm_file_that_shrinks_while_read);
    tcase_add_test(tc, test_asm_hostile_data_is_refused);
    tcase_add_test(tc, test_asm_truncated_data_fails_after_what_it_had);
    tcase_add_test(tc, test_asm_errors_are_final_and_arguments_checked);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tcase_add_test(real, test_real_layers_rebuild_their_original_tars);
    tcase_set_timeout(real, 120);
    suite_add_tcase(s, real);
    return s;
}

/* The engine stores: mkengines.sh --cached prints their directory. */
static int engine_fixtures(void)
{
    const char *src = getenv("LAYERD_SOURCE_DIR");
    char cmd[PATH_MAX + 64];
    FILE *p;
    int n;

    if (src == NULL || strchr(src, '\'') != NULL) {
        fprintf(stderr, "test_tarsplit: set LAYERD_SOURCE_DIR\n");
        return -1;
    }
    n = snprintf(cmd, sizeof(cmd),
                 "bash '%s/tests/fixtures/mkengines.sh' --cached", src);
    if (n < 0 || (size_t)n >= sizeof(cmd))
        return -1;
    p = popen(cmd, "r");
    if (p == NULL || fgets(engines, sizeof(engines), p) == NULL) {
        if (p)
            pclose(p);
        fprintf(stderr, "test_tarsplit: mkengines.sh --cached failed\n");
        return -1;
    }
    engines[strcspn(engines, "\n")] = '\0';
    if (pclose(p) != 0 || engines[0] != '/') {
        fprintf(stderr, "test_tarsplit: mkengines.sh --cached failed\n");
        return -1;
    }
    return 0;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (engine_fixtures() < 0)
        return 1;
    sr = srunner_create(tarsplit_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
