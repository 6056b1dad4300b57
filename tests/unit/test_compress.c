/*
 * gzip and zstd compressors: determinism, a fixed gzip header, round
 * trips through zlib and libzstd, tiny output buffers, empty input, level
 * checks and the media-type helpers.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "layer/compress.h"
#include "layer/error.h"

#define INPUT_SIZE (3u << 20)

static unsigned char *input;

/* Text-like input with repeats, so compression has something to find. */
static void make_input(void)
{
    static const char *words[] = {"layer ",   "tar ", "usr/lib/",
                                  "0000644 ", "\n",   "x86_64-linux-gnu ",
                                  "\0\0\0\0"};
    uint32_t s = 12345;
    size_t n = 0;

    input = malloc(INPUT_SIZE);
    ck_assert_ptr_nonnull(input);
    while (n < INPUT_SIZE) {
        s = s * 1103515245u + 12345u;
        if ((s >> 16) % 5 == 0) {
            input[n++] = (unsigned char)(s >> 24);
            continue;
        }
        const char *w = words[(s >> 16) % 7];
        size_t len = (s >> 16) % 7 == 6 ? 4 : strlen(w);
        for (size_t i = 0; i < len && n < INPUT_SIZE; i++)
            input[n++] = (unsigned char)w[i];
    }
}

/* Compress in (in_chunk)-sized pieces into (out_chunk)-sized windows. */
static unsigned char *compress_all(size_t *out_len, layer_compression kind,
                                   int level, const unsigned char *in,
                                   size_t in_len, size_t in_chunk,
                                   size_t out_chunk)
{
    layer_compress *c = NULL;
    size_t cap = in_len + in_len / 8 + (1u << 16), len = 0, off = 0;
    unsigned char *out = malloc(cap);
    bool done = false;

    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(layer_compress_new(&c, kind, level), 0);
    while (off < in_len) {
        size_t n = in_len - off < in_chunk ? in_len - off : in_chunk;
        size_t consumed = 0, produced = 0;
        size_t room = cap - len < out_chunk ? cap - len : out_chunk;

        ck_assert_int_eq(layer_compress_update(&consumed, &produced, c,
                                               in + off, n, out + len, room),
                         0);
        off += consumed;
        len += produced;
        ck_assert_uint_lt(len, cap);
    }
    while (!done) {
        size_t produced = 0;
        size_t room = cap - len < out_chunk ? cap - len : out_chunk;

        ck_assert_int_eq(
            layer_compress_finish(&produced, &done, c, out + len, room), 0);
        len += produced;
        ck_assert_uint_lt(len, cap);
    }
    layer_compress_free(c);
    *out_len = len;
    return out;
}

static void assert_gunzips_to(const unsigned char *gz, size_t gz_len,
                              const unsigned char *want, size_t want_len)
{
    z_stream z;
    unsigned char *buf = malloc(want_len + 16);

    ck_assert_ptr_nonnull(buf);
    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(inflateInit2(&z, 16 + 15), Z_OK); /* gzip only */
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)gz_len;
    z.next_out = buf;
    z.avail_out = (uInt)(want_len + 16);
    ck_assert_int_eq(inflate(&z, Z_FINISH), Z_STREAM_END); /* CRC checked */
    ck_assert_uint_eq(z.total_out, want_len);
    ck_assert_uint_eq(z.avail_in, 0); /* one member, nothing after it */
    ck_assert(memcmp(buf, want, want_len) == 0);
    inflateEnd(&z);
    free(buf);
}

static void assert_unzstds_to(const unsigned char *zs, size_t zs_len,
                              const unsigned char *want, size_t want_len)
{
    unsigned char *buf = malloc(want_len + 16);
    size_t n;

    ck_assert_ptr_nonnull(buf);
    n = ZSTD_decompress(buf, want_len + 16, zs, zs_len);
    ck_assert_msg(!ZSTD_isError(n), "ZSTD_decompress: %s",
                  ZSTD_getErrorName(n));
    ck_assert_uint_eq(n, want_len);
    ck_assert(memcmp(buf, want, want_len) == 0);
    free(buf);
}

START_TEST(test_gzip_is_deterministic_and_round_trips)
{
    size_t a_len, b_len;
    unsigned char *a = compress_all(&a_len, LAYER_COMPRESSION_GZIP, 0, input,
                                    INPUT_SIZE, 256 << 10, 256 << 10);
    unsigned char *b = compress_all(&b_len, LAYER_COMPRESSION_GZIP, 0, input,
                                    INPUT_SIZE, 256 << 10, 256 << 10);

    ck_assert_uint_eq(a_len, b_len);
    ck_assert(memcmp(a, b, a_len) == 0);
    ck_assert_uint_lt(a_len, INPUT_SIZE / 2);
    assert_gunzips_to(a, a_len, input, INPUT_SIZE);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_gzip_header_has_no_mtime_and_no_name)
{
    static const unsigned char want[10] = {0x1f, 0x8b, 8, 0, 0,
                                           0,    0,    0, 0, 0xff};
    size_t len;
    unsigned char *gz = compress_all(&len, LAYER_COMPRESSION_GZIP, 0, input,
                                     1000, 1000, 1 << 16);

    ck_assert_mem_eq(gz, want, 10);
    ck_assert_uint_eq(gz[3] & 0x08, 0); /* no FNAME */
    /* the trailer's ISIZE is the input length */
    ck_assert_uint_eq(gz[len - 4] | gz[len - 3] << 8, 1000);
    free(gz);
}
END_TEST

START_TEST(test_gzip_every_level_round_trips)
{
    int lvl = 0;

    ck_assert_int_eq(layer_compress_level(&lvl, LAYER_COMPRESSION_GZIP, 0), 0);
    /* ISA-L: level 2 stays within 3% of pigz -1; zlib: its fastest */
    ck_assert_int_eq(lvl, strcmp(layer_compress_backend(LAYER_COMPRESSION_GZIP),
                                 "isa-l") == 0
                              ? 2
                              : 1);
    for (int level = 1;; level++) {
        size_t len;
        unsigned char *gz;

        if (layer_compress_level(&lvl, LAYER_COMPRESSION_GZIP, level) < 0)
            break;
        gz = compress_all(&len, LAYER_COMPRESSION_GZIP, level, input, 1 << 20,
                          100000, 65536);
        assert_gunzips_to(gz, len, input, 1 << 20);
        free(gz);
    }
}
END_TEST

START_TEST(test_zstd_is_deterministic_and_round_trips)
{
    size_t a_len, b_len;
    unsigned char *a = compress_all(&a_len, LAYER_COMPRESSION_ZSTD, 0, input,
                                    INPUT_SIZE, 256 << 10, 256 << 10);
    unsigned char *b = compress_all(&b_len, LAYER_COMPRESSION_ZSTD, 0, input,
                                    INPUT_SIZE, 256 << 10, 256 << 10);

    ck_assert_uint_eq(a_len, b_len);
    ck_assert(memcmp(a, b, a_len) == 0);
    ck_assert_mem_eq(a, "\x28\xb5\x2f\xfd", 4);
    ck_assert_uint_lt(a_len, INPUT_SIZE / 2);
    assert_unzstds_to(a, a_len, input, INPUT_SIZE);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_tiny_output_windows_still_give_valid_streams)
{
    size_t len;
    unsigned char *gz =
        compress_all(&len, LAYER_COMPRESSION_GZIP, 0, input, 200000, 4096, 1);
    unsigned char *zs;

    assert_gunzips_to(gz, len, input, 200000);
    free(gz);
    zs = compress_all(&len, LAYER_COMPRESSION_ZSTD, 0, input, 200000, 4096, 1);
    assert_unzstds_to(zs, len, input, 200000);
    free(zs);
}
END_TEST

START_TEST(test_empty_input_gives_valid_streams)
{
    size_t len;
    unsigned char *gz =
        compress_all(&len, LAYER_COMPRESSION_GZIP, 0, input, 0, 1, 1 << 16);
    unsigned char *zs;

    assert_gunzips_to(gz, len, input, 0);
    free(gz);
    zs = compress_all(&len, LAYER_COMPRESSION_ZSTD, 0, input, 0, 1, 1 << 16);
    assert_unzstds_to(zs, len, input, 0);
    free(zs);
}
END_TEST

START_TEST(test_none_copies_input)
{
    size_t len;
    unsigned char *out =
        compress_all(&len, LAYER_COMPRESSION_NONE, 0, input, 70000, 3000, 1000);

    ck_assert_uint_eq(len, 70000);
    ck_assert(memcmp(out, input, len) == 0);
    free(out);
}
END_TEST

START_TEST(test_levels_out_of_range_are_refused)
{
    layer_compress *c = NULL;
    int lvl = 0;

    ck_assert_int_eq(layer_compress_new(&c, LAYER_COMPRESSION_GZIP, 10),
                     LAYER_EINVALID);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "out of range"));
    ck_assert_int_eq(layer_compress_new(&c, LAYER_COMPRESSION_GZIP, -1),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_compress_new(&c, LAYER_COMPRESSION_ZSTD, 20),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_compress_new(&c, LAYER_COMPRESSION_ZSTD, -3),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_compress_new(&c, LAYER_COMPRESSION_NONE, 1),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_compress_new(&c, (layer_compression)7, 0),
                     LAYER_EINVALID);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(layer_compress_level(&lvl, LAYER_COMPRESSION_ZSTD, 0), 0);
    ck_assert_int_eq(lvl, 3);
    ck_assert_int_eq(layer_compress_level(&lvl, LAYER_COMPRESSION_ZSTD, 19), 0);
    ck_assert_int_eq(lvl, 19);
}
END_TEST

START_TEST(test_update_after_finish_is_refused)
{
    layer_compress *c = NULL;
    unsigned char out[256];
    size_t consumed, produced;
    bool done = false;

    ck_assert_int_eq(layer_compress_new(&c, LAYER_COMPRESSION_ZSTD, 1), 0);
    ck_assert_int_eq(
        layer_compress_finish(&produced, &done, c, out, sizeof(out)), 0);
    ck_assert(done);
    ck_assert_int_eq(layer_compress_update(&consumed, &produced, c, "x", 1, out,
                                           sizeof(out)),
                     LAYER_EINVALID);
    layer_compress_free(c);
    layer_compress_free(NULL);
}
END_TEST

START_TEST(test_media_types_and_names)
{
    layer_compression c;

    ck_assert_str_eq(layer_compression_media_type(LAYER_COMPRESSION_NONE),
                     "application/vnd.oci.image.layer.v1.tar");
    ck_assert_str_eq(layer_compression_media_type(LAYER_COMPRESSION_GZIP),
                     "application/vnd.oci.image.layer.v1.tar+gzip");
    ck_assert_str_eq(layer_compression_media_type(LAYER_COMPRESSION_ZSTD),
                     "application/vnd.oci.image.layer.v1.tar+zstd");
    ck_assert_int_eq(layer_compression_parse(&c, "zstd"), 0);
    ck_assert_int_eq(c, LAYER_COMPRESSION_ZSTD);
    ck_assert_int_eq(layer_compression_parse(&c, "gzip"), 0);
    ck_assert_int_eq(c, LAYER_COMPRESSION_GZIP);
    ck_assert_int_eq(layer_compression_parse(&c, "none"), 0);
    ck_assert_int_eq(c, LAYER_COMPRESSION_NONE);
    ck_assert_int_eq(layer_compression_parse(&c, "bzip2"), LAYER_EINVALID);
    ck_assert_int_eq(layer_compression_parse(&c, "GZIP"), LAYER_EINVALID);
    /* names parse back to their compression */
    for (int k = LAYER_COMPRESSION_NONE; k <= LAYER_COMPRESSION_ZSTD; k++) {
        ck_assert_int_eq(layer_compression_parse(&c, layer_compression_name(k)),
                         0);
        ck_assert_int_eq(c, k);
    }
}
END_TEST

/* Compress input as chunks of chunk bytes, in the given order of chunk
 * indices, and assemble the member. */
static unsigned char *chunked(size_t *out_len, const unsigned char *in,
                              size_t in_len, size_t chunk, bool reverse)
{
    size_t n = (in_len + chunk - 1) / chunk, len = 0;
    unsigned char **parts = calloc(n, sizeof(*parts));
    size_t *plen = calloc(n, sizeof(*plen));
    uint32_t *crcs = calloc(n, sizeof(*crcs));
    unsigned char *out;
    layer_gzip_chunker *c = NULL;
    uint32_t crc = 0;

    ck_assert_int_eq(layer_gzip_chunker_new(&c, 0), 0);
    for (size_t k = 0; k < n; k++) {
        size_t i = reverse ? n - 1 - k : k;
        size_t off = i * chunk;
        size_t m = in_len - off < chunk ? in_len - off : chunk;
        size_t cap = layer_gzip_chunk_bound(m);

        parts[i] = malloc(cap);
        ck_assert_int_eq(layer_gzip_chunk(&plen[i], &crcs[i], c,
                                          i ? in + off - 32768 : NULL,
                                          i ? 32768 : 0, in + off, m, i == 0,
                                          i == n - 1, parts[i], cap),
                         0);
    }
    layer_gzip_chunker_free(c);
    out = malloc(in_len + in_len / 8 + 4096);
    for (size_t i = 0; i < n; i++) {
        size_t m = in_len - i * chunk < chunk ? in_len - i * chunk : chunk;

        memcpy(out + len, parts[i], plen[i]);
        len += plen[i];
        crc = i ? layer_gzip_crc_combine(crc, crcs[i], m) : crcs[i];
        free(parts[i]);
    }
    layer_gzip_trailer(out + len, crc, in_len);
    len += LAYER_GZIP_TRAILER_SIZE;
    free(parts);
    free(plen);
    free(crcs);
    *out_len = len;
    return out;
}

START_TEST(test_gzip_chunks_form_one_member_in_any_order)
{
    size_t a_len, b_len;
    unsigned char *a = chunked(&a_len, input, INPUT_SIZE, 256 << 10, false);
    unsigned char *b = chunked(&b_len, input, INPUT_SIZE, 256 << 10, true);

    /* which thread compressed which chunk, when, does not matter */
    ck_assert_uint_eq(a_len, b_len);
    ck_assert(memcmp(a, b, a_len) == 0);
    ck_assert_mem_eq(a, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
    assert_gunzips_to(a, a_len, input, INPUT_SIZE);
    ck_assert_uint_lt(a_len, INPUT_SIZE / 2);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_gzip_single_chunk_and_incompressible_data)
{
    unsigned char *noise = malloc(300000);
    unsigned char *gz;
    uint32_t s = 99;
    size_t len;

    for (size_t i = 0; i < 300000; i++) {
        s = s * 1664525u + 1013904223u;
        noise[i] = (unsigned char)(s >> 24);
    }
    /* incompressible data stays within the bound */
    gz = chunked(&len, noise, 300000, 256 << 10, false);
    assert_gunzips_to(gz, len, noise, 300000);
    free(gz);
    /* one chunk is first and last at once */
    gz = chunked(&len, input, 1000, 256 << 10, false);
    assert_gunzips_to(gz, len, input, 1000);
    free(gz);
    free(noise);
}
END_TEST

START_TEST(test_gzip_chunk_output_too_small_is_refused)
{
    layer_gzip_chunker *c = NULL;
    unsigned char out[64];
    uint32_t crc;
    size_t n;

    ck_assert_int_eq(layer_gzip_chunker_new(&c, 0), 0);
    ck_assert_int_eq(layer_gzip_chunk(&n, &crc, c, NULL, 0, input, 100000, true,
                                      true, out, sizeof(out)),
                     LAYER_ETOOBIG);
    layer_gzip_chunker_free(c);
    c = NULL;
    ck_assert_int_eq(layer_gzip_chunker_new(&c, 42), LAYER_EINVALID);
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_top_levels_and_memory_estimates)
{
    const char *gz = layer_compress_backend(LAYER_COMPRESSION_GZIP);
    size_t z1, z3, z9, z19;

    ck_assert_int_eq(layer_compress_max_level(LAYER_COMPRESSION_ZSTD), 19);
    ck_assert_int_eq(layer_compress_max_level(LAYER_COMPRESSION_GZIP),
                     strcmp(gz, "isa-l") == 0 ? 3 : 9);
    ck_assert_int_eq(layer_compress_max_level(LAYER_COMPRESSION_NONE), 0);
    /* the top level is a valid level, one more is not */
    for (int k = LAYER_COMPRESSION_GZIP; k <= LAYER_COMPRESSION_ZSTD; k++) {
        int top = layer_compress_max_level((layer_compression)k), lvl;

        ck_assert_int_eq(layer_compress_level(&lvl, (layer_compression)k, top),
                         0);
        ck_assert_int_eq(
            layer_compress_level(&lvl, (layer_compression)k, top + 1),
            LAYER_EINVALID);
    }
    /* zstd's estimate grows with the level: two worker contexts, the
     * window and the job buffers (measured peaks: 16, 17, 39 and 185 MiB
     * over a whole export) */
    z1 = layer_compress_memory(LAYER_COMPRESSION_ZSTD, 1);
    z3 = layer_compress_memory(LAYER_COMPRESSION_ZSTD, 3);
    z9 = layer_compress_memory(LAYER_COMPRESSION_ZSTD, 9);
    z19 = layer_compress_memory(LAYER_COMPRESSION_ZSTD, 19);
    ck_assert_uint_gt(z1, 12u << 20);
    ck_assert_uint_lt(z1, z3);
    ck_assert_uint_lt(z3, z9);
    ck_assert_uint_lt(z9, z19);
    ck_assert_uint_gt(z19, 175u << 20);
    ck_assert_uint_eq(layer_compress_memory(LAYER_COMPRESSION_ZSTD, 0), z3);
    /* gzip: a chunk compressor's state, well under a MiB */
    ck_assert_uint_gt(layer_compress_memory(LAYER_COMPRESSION_GZIP, 0), 0);
    ck_assert_uint_lt(layer_compress_memory(LAYER_COMPRESSION_GZIP, 0),
                      1u << 20);
    ck_assert_uint_eq(layer_compress_memory(LAYER_COMPRESSION_NONE, 0), 0);
    ck_assert_uint_eq(layer_compress_memory(LAYER_COMPRESSION_ZSTD, 20), 0);
}
END_TEST

static Suite *compress_suite(void)
{
    Suite *s = suite_create("compress");
    TCase *tc = tcase_create("streams");

    tcase_add_unchecked_fixture(tc, make_input, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gzip_is_deterministic_and_round_trips);
    tcase_add_test(tc, test_gzip_header_has_no_mtime_and_no_name);
    tcase_add_test(tc, test_gzip_every_level_round_trips);
    tcase_add_test(tc, test_zstd_is_deterministic_and_round_trips);
    tcase_add_test(tc, test_tiny_output_windows_still_give_valid_streams);
    tcase_add_test(tc, test_empty_input_gives_valid_streams);
    tcase_add_test(tc, test_none_copies_input);
    tcase_add_test(tc, test_levels_out_of_range_are_refused);
    tcase_add_test(tc, test_update_after_finish_is_refused);
    tcase_add_test(tc, test_media_types_and_names);
    tcase_add_test(tc, test_gzip_chunks_form_one_member_in_any_order);
    tcase_add_test(tc, test_gzip_single_chunk_and_incompressible_data);
    tcase_add_test(tc, test_gzip_chunk_output_too_small_is_refused);
    tcase_add_test(tc, test_top_levels_and_memory_estimates);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(compress_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(input);
    return failed != 0;
}
