/*
 * The export pipeline end to end over real trees: the tar parses with GNU
 * tar, the diff ID is the SHA-256 of the tar and the digest that of the
 * bytes produced, compressed output decompresses to the plain tar, runs
 * are byte-identical, freeing mid-stream stops cleanly, non-blocking
 * reads notify, errors are reported with their message (also to a thread
 * that asks while the export runs), and the export span carries its
 * attributes. The original tar (tar-split) over a made-up layer: the
 * bytes exactly, in every compression; a wrong diff ID or a changed file
 * fails the stream with no digest; which tar a layer gets.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "fixture.h"
#include "layer/compress.h"
#include "layer/crc64.h"
#include "layer/digest.h"
#include "layer/error.h"
#include "layer/export.h"
#include "layer/trace.h"

typedef struct blob {
    unsigned char *data;
    size_t len;
    size_t cap;
} blob;

static void blob_add(blob *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 4096;
        b->data = realloc(b->data, b->cap);
        ck_assert_ptr_nonnull(b->data);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static char *root;

static const layer_compression all_compressions[] = {
    LAYER_COMPRESSION_NONE, LAYER_COMPRESSION_GZIP, LAYER_COMPRESSION_ZSTD};

/* A base layer with every entry kind and a few multi-buffer files. */
static void make_tree(void)
{
    static unsigned char big[700000];
    unsigned s = 1;

    root = fx_tmpdir();
    for (size_t i = 0; i < sizeof(big); i++) {
        s = s * 1103515245u + 12345u;
        big[i] = (unsigned char)((i % 1000 < 600) ? 'a' + (s >> 28) : s >> 16);
    }
    fx_mkdir(root, "etc", 0755);
    fx_file(root, "etc/hostname", "layerd\n", 0644);
    fx_file(root, "etc/empty", "", 0600);
    fx_mkdir(root, "usr", 0755);
    fx_mkdir(root, "usr/bin", 0755);
    fx_file_bytes(root, "usr/bin/big", big, sizeof(big), 04755);
    fx_link(root, "usr/bin/big", "usr/bin/big-link");
    fx_file_bytes(root, "usr/bin/odd", big, 262144 + 511, 0755);
    fx_symlink(root, "usr/lib", "bin");
    fx_fifo(root, "usr/fifo");
    fx_mkdir(root, "usr/caf\xc3\xa9", 0700);
    fx_file(root,
            "usr/caf\xc3\xa9/a-name-that-is-quite-long-0123456789-"
            "0123456789-0123456789-0123456789-0123456789-0123456789-x",
            "long\n", 0644);
    for (int i = 0; i < 40; i++) {
        char rel[64];

        snprintf(rel, sizeof(rel), "etc/f%02d", i);
        fx_file_bytes(root, rel, big + i * 977, (size_t)i * 3001, 0644);
    }
    fx_mtime(root, "etc/hostname", 1700000000, 123456789);
}

static void drop_tree(void)
{
    fx_rm_rf(root);
    free(root);
}

static layer_dir base_layer(void)
{
    layer_dir d = {.path = root, .kind = LAYER_KIND_DIFF};
    return d;
}

/* Run an export of the tree at dir to the end with blocking reads of
 * varying sizes. */
static blob export_dir(const char *dir, layer_compression c, int level,
                       layer_export_summary *sum)
{
    layer_export_opts o = {.compression = c, .level = level};
    layer_dir l = {.path = dir, .kind = LAYER_KIND_DIFF};
    layer_export *x = NULL;
    blob b = {0};
    static unsigned char buf[100000];
    size_t caps[] = {1, 511, 4096, 65536, 100000, 7};
    int rc, i = 0;
    size_t n;

    rc = layer_export_start(&x, &l, NULL, 0, &o);
    ck_assert_msg(rc == 0, "start: %s", layer_error_last());
    while ((rc = layer_export_read(&n, x, buf, caps[i++ % 6], 0)) == 0) {
        ck_assert_uint_gt(n, 0);
        blob_add(&b, buf, n);
    }
    ck_assert_msg(rc == LAYER_ITEROVER, "read: %d %s", rc,
                  layer_export_error(x) ? layer_export_error(x) : "");
    /* the end is sticky */
    ck_assert_int_eq(layer_export_read(&n, x, buf, 10, 0), LAYER_ITEROVER);
    if (sum != NULL)
        layer_export_summary_get(sum, x);
    ck_assert_ptr_null(layer_export_error(x));
    layer_export_free(x);
    return b;
}

/* An export of dir with extra flags, to the end; its summary in *sum. */
static blob export_flags(const char *dir, layer_compression c, unsigned flags,
                         layer_export_summary *sum)
{
    layer_export_opts o = {.compression = c, .flags = flags};
    layer_dir l = {.path = dir, .kind = LAYER_KIND_DIFF};
    layer_export *x = NULL;
    blob b = {0};
    unsigned char buf[65536];
    size_t n;
    int rc;

    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), 0);
    while ((rc = layer_export_read(&n, x, buf, sizeof(buf), 0)) == 0)
        blob_add(&b, buf, n);
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    layer_export_summary_get(sum, x);
    layer_export_free(x);
    return b;
}

/* The same over the base layer. */
static blob export_all(layer_compression c, int level,
                       layer_export_summary *sum)
{
    return export_dir(root, c, level, sum);
}

static char *write_temp(const blob *b)
{
    char *p = fx_path(root, "../export-out.XXXXXX");
    int fd = mkstemp(p);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, b->data, b->len), (ssize_t)b->len);
    close(fd);
    return p;
}

static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    blob b = {0};
    char buf[4096];
    size_t n;

    ck_assert_ptr_nonnull(p);
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        blob_add(&b, buf, n);
    blob_add(&b, "", 1);
    ck_assert_int_eq(pclose(p), 0);
    return (char *)b.data;
}

START_TEST(test_plain_export_is_a_tar_gnu_tar_reads)
{
    layer_export_summary s;
    blob b = export_all(LAYER_COMPRESSION_NONE, 0, &s);
    char *file = write_temp(&b), cmd[512], *out;

    snprintf(cmd, sizeof(cmd), "TZ=UTC tar -tvf %s", file);
    out = run(cmd);
    ck_assert_ptr_nonnull(strstr(out, "drwxr-xr-x 0/0"));
    ck_assert_ptr_nonnull(strstr(out, " etc/\n"));
    ck_assert_ptr_nonnull(strstr(out, " etc/hostname\n"));
    ck_assert_ptr_nonnull(strstr(out, "-rwsr-xr-x 0/0"));
    ck_assert_ptr_nonnull(strstr(out, " 700000 "));
    ck_assert_ptr_nonnull(
        strstr(out, "usr/bin/big-link link to usr/bin/big\n"));
    ck_assert_ptr_nonnull(strstr(out, " usr/lib -> bin\n"));
    ck_assert_ptr_nonnull(strstr(out, "\np"));
    ck_assert_ptr_nonnull(strstr(out, " usr/fifo\n"));
    ck_assert_ptr_nonnull(strstr(out, "2023-11-14 22:13 etc/hostname"));
    ck_assert_ptr_nonnull(strstr(out, "0123456789-x\n"));
    ck_assert_ptr_null(strstr(out, "./")); /* no ./ prefix, no root */
    free(out);
    /* and the data round-trips through GNU tar */
    snprintf(cmd, sizeof(cmd), "tar -xOf %s usr/bin/big | cmp - %s/usr/bin/big",
             file, root);
    free(run(cmd));
    snprintf(cmd, sizeof(cmd),
             "tar -xOf %s usr/bin/odd | cmp -n 262655 - %s/usr/bin/big", file,
             root);
    free(run(cmd));
    unlink(file);
    free(file);
    free(b.data);
}
END_TEST

START_TEST(test_plain_diff_id_is_sha256_of_the_tar)
{
    layer_export_summary s;
    blob b = export_all(LAYER_COMPRESSION_NONE, 0, &s);
    char want[LAYER_DIGEST_STR_SIZE];

    ck_assert_int_eq(layer_digest_buffer(want, b.data, b.len), 0);
    ck_assert_str_eq(s.diff_id, want);
    ck_assert_str_eq(s.digest, want);
    ck_assert_uint_eq(s.size, b.len);
    ck_assert_uint_eq(s.tar_size, b.len);
    ck_assert_str_eq(s.media_type, "application/vnd.oci.image.layer.v1.tar");
    /* 4 directories, 42 files in etc, and big, big-link, odd, the
     * symlink, the fifo and the long name */
    ck_assert_uint_eq(s.entries, 4 + 42 + 6);
    ck_assert_uint_eq(s.warnings, 0);
    /* the tar ends with exactly two zero blocks, on a block boundary */
    ck_assert_uint_eq(b.len % 512, 0);
    for (size_t i = b.len - 1024; i < b.len; i++)
        ck_assert_uint_eq(b.data[i], 0);
    free(b.data);
}
END_TEST

static blob gunzip(const blob *in)
{
    z_stream z;
    blob out = {0};
    unsigned char buf[65536];
    int ret;

    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(inflateInit2(&z, 16 + 15), Z_OK);
    z.next_in = in->data;
    z.avail_in = (uInt)in->len;
    do {
        z.next_out = buf;
        z.avail_out = sizeof(buf);
        ret = inflate(&z, Z_NO_FLUSH);
        ck_assert(ret == Z_OK || ret == Z_STREAM_END);
        blob_add(&out, buf, sizeof(buf) - z.avail_out);
    } while (ret != Z_STREAM_END);
    ck_assert_uint_eq(z.avail_in, 0);
    inflateEnd(&z);
    return out;
}

static blob unzstd(const blob *in)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    ZSTD_inBuffer ib = {in->data, in->len, 0};
    blob out = {0};
    unsigned char buf[65536];
    size_t r = 1;

    while (ib.pos < ib.size || r != 0) {
        ZSTD_outBuffer ob = {buf, sizeof(buf), 0};

        r = ZSTD_decompressStream(d, &ob, &ib);
        ck_assert_msg(!ZSTD_isError(r), "%s", ZSTD_getErrorName(r));
        blob_add(&out, buf, ob.pos);
        if (ob.pos == 0 && ib.pos == ib.size)
            break;
    }
    ck_assert_uint_eq(r, 0);
    ZSTD_freeDCtx(d);
    return out;
}

static void check_compressed(layer_compression c)
{
    layer_export_summary plain_s, s;
    blob plain = export_all(LAYER_COMPRESSION_NONE, 0, &plain_s);
    blob z = export_all(c, 0, &s);
    blob tar = c == LAYER_COMPRESSION_GZIP ? gunzip(&z) : unzstd(&z);
    char want[LAYER_DIGEST_STR_SIZE];

    ck_assert_uint_eq(tar.len, plain.len);
    ck_assert(memcmp(tar.data, plain.data, tar.len) == 0);
    ck_assert_str_eq(s.diff_id, plain_s.diff_id);
    ck_assert_int_eq(layer_digest_buffer(want, z.data, z.len), 0);
    ck_assert_str_eq(s.digest, want);
    ck_assert_str_ne(s.digest, s.diff_id);
    ck_assert_uint_eq(s.size, z.len);
    ck_assert_uint_eq(s.tar_size, plain.len);
    ck_assert_uint_lt(z.len, plain.len);
    ck_assert_str_eq(s.media_type, layer_compression_media_type(c));
    free(plain.data);
    free(z.data);
    free(tar.data);
}

START_TEST(test_gzip_export_decompresses_to_the_plain_tar)
{
    check_compressed(LAYER_COMPRESSION_GZIP);
}
END_TEST

START_TEST(test_gzip_export_is_256k_chunks_of_its_tar)
{
    /* The format contract: the gzip blob is the tar cut in 256 KiB
     * chunks, each with the previous 32 KiB as dictionary. */
    blob plain = export_all(LAYER_COMPRESSION_NONE, 0, NULL);
    blob z = export_all(LAYER_COMPRESSION_GZIP, 0, NULL);
    blob want = {0};
    layer_gzip_chunker *c = NULL;
    const size_t chunk = 256 << 10;
    size_t n = (plain.len + chunk - 1) / chunk;
    unsigned char *part = malloc(layer_gzip_chunk_bound(chunk));
    unsigned char trailer[LAYER_GZIP_TRAILER_SIZE];
    uint32_t crc = 0, ccrc;
    size_t plen;

    ck_assert_uint_gt(n, 2);
    ck_assert_int_eq(layer_gzip_chunker_new(&c, 0), 0);
    for (size_t i = 0; i < n; i++) {
        size_t off = i * chunk;
        size_t m = plain.len - off < chunk ? plain.len - off : chunk;

        ck_assert_int_eq(layer_gzip_chunk(&plen, &ccrc, c,
                                          i ? plain.data + off - 32768 : NULL,
                                          i ? 32768 : 0, plain.data + off, m,
                                          i == 0, i == n - 1, part,
                                          layer_gzip_chunk_bound(chunk)),
                         0);
        blob_add(&want, part, plen);
        crc = i ? layer_gzip_crc_combine(crc, ccrc, m) : ccrc;
    }
    layer_gzip_trailer(trailer, crc, plain.len);
    blob_add(&want, trailer, sizeof(trailer));
    ck_assert_uint_eq(z.len, want.len);
    ck_assert(memcmp(z.data, want.data, z.len) == 0);
    layer_gzip_chunker_free(c);
    free(part);
    free(plain.data);
    free(z.data);
    free(want.data);
}
END_TEST

/* A tree whose 256 KiB chunks alternate between slow (text) and fast
 * (zeros) to compress, so that gzip workers finish out of order and
 * chunks get parked before their turn. */
static char *make_mixed_tree(void)
{
    const size_t chunk = 256 << 10, nchunks = 24;
    unsigned char *data = calloc(nchunks, chunk);
    char *dir = fx_tmpdir();
    unsigned s = 7;

    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < nchunks * chunk; i++) {
        s = s * 1103515245u + 12345u;
        if ((i / chunk) % 2 == 0)
            data[i] = (unsigned char)('a' + (s >> 27) % 20);
    }
    fx_file_bytes(dir, "mixed", data, nchunks * chunk, 0644);
    fx_file_bytes(dir, "tail", data, 12345, 0644);
    free(data);
    return dir;
}

START_TEST(test_gzip_chunks_done_out_of_order_are_published_in_order)
{
    char *dir = make_mixed_tree();
    layer_export_summary plain_s, s;
    blob plain = export_dir(dir, LAYER_COMPRESSION_NONE, 0, &plain_s);
    blob first = {0};
    char want[LAYER_DIGEST_STR_SIZE];

    for (int round = 0; round < 6; round++) {
        blob z = export_dir(dir, LAYER_COMPRESSION_GZIP, 0, &s);
        blob tar = gunzip(&z);

        ck_assert_uint_eq(tar.len, plain.len);
        ck_assert(memcmp(tar.data, plain.data, tar.len) == 0);
        ck_assert_str_eq(s.diff_id, plain_s.diff_id);
        ck_assert_int_eq(layer_digest_buffer(want, z.data, z.len), 0);
        ck_assert_str_eq(s.digest, want);
        if (round == 0) {
            first = z;
        } else {
            ck_assert_uint_eq(z.len, first.len);
            ck_assert(memcmp(z.data, first.data, z.len) == 0);
            free(z.data);
        }
        free(tar.data);
    }
    /* and freed at any point, parked chunks and all */
    for (int reads = 0; reads < 8; reads++) {
        layer_export_opts o = {.compression = LAYER_COMPRESSION_GZIP};
        layer_dir l = {.path = dir, .kind = LAYER_KIND_DIFF};
        layer_export *x = NULL;
        unsigned char buf[65536];
        size_t n;

        ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), 0);
        for (int i = 0; i < reads * 3; i++)
            ck_assert_int_eq(layer_export_read(&n, x, buf, sizeof(buf), 0), 0);
        if (reads % 2)
            usleep(20000);
        layer_export_free(x);
    }
    free(first.data);
    free(plain.data);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_no_digests_gives_the_same_bytes_and_fingerprint)
{
    const layer_compression *cs = all_compressions;

    for (int i = 0; i < 3; i++) {
        layer_export_summary a, b;
        blob x = export_flags(root, cs[i], 0, &a);
        blob y = export_flags(root, cs[i], LAYER_EXPORT_NO_DIGESTS, &b);

        ck_assert_uint_eq(x.len, y.len);
        ck_assert(memcmp(x.data, y.data, x.len) == 0);
        ck_assert_str_ne(a.digest, "");
        ck_assert_str_ne(a.diff_id, "");
        ck_assert_str_eq(b.digest, "");
        ck_assert_str_eq(b.diff_id, "");
        ck_assert_int_eq(strncmp(a.fingerprint, "sha256:", 7), 0);
        ck_assert_uint_eq(strlen(a.fingerprint), 71);
        ck_assert_str_eq(a.fingerprint, b.fingerprint);
        ck_assert_uint_eq(a.size, b.size);
        ck_assert_uint_eq(a.entries, b.entries);
        free(x.data);
        free(y.data);
    }
}
END_TEST

/* The fingerprint of a small tree, exported plain. */
static void fingerprint_of(char out[72], const char *dir)
{
    layer_export_summary s;
    blob b =
        export_flags(dir, LAYER_COMPRESSION_NONE, LAYER_EXPORT_NO_DIGESTS, &s);

    memcpy(out, s.fingerprint, 72);
    free(b.data);
}

START_TEST(test_fingerprint_follows_every_change)
{
    char *dir = fx_tmpdir();
    char *f;
    char a[72], b[72];
    struct timespec ts[2];
    struct stat st;

    fx_mkdir(dir, "d", 0755);
    fx_file(dir, "d/file", "0123456789", 0644);
    fx_symlink(dir, "link", "d/file");
    fingerprint_of(a, dir);
    fingerprint_of(b, dir);
    ck_assert_str_eq(a, b); /* stable */

    /* same size, mtime put back: only the ctime tells */
    f = fx_path(dir, "d/file");
    ck_assert_int_eq(stat(f, &st), 0);
    usleep(20000);
    fx_file(dir, "d/file", "9876543210", 0644);
    ts[0] = st.st_atim;
    ts[1] = st.st_mtim;
    ck_assert_int_eq(utimensat(AT_FDCWD, f, ts, 0), 0);
    fingerprint_of(b, dir);
    ck_assert_str_ne(a, b);

    memcpy(a, b, sizeof(a));
    fx_chmod(dir, "d/file", 0600);
    fingerprint_of(b, dir);
    ck_assert_str_ne(a, b);

    memcpy(a, b, sizeof(a));
    fx_file(dir, "d/new", "", 0644);
    fingerprint_of(b, dir);
    ck_assert_str_ne(a, b);

    memcpy(a, b, sizeof(a));
    fx_unlink(dir, "link");
    fx_symlink(dir, "link", "d/new");
    fingerprint_of(b, dir);
    ck_assert_str_ne(a, b);
    free(f);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_zstd_export_decompresses_to_the_plain_tar)
{
    check_compressed(LAYER_COMPRESSION_ZSTD);
}
END_TEST

START_TEST(test_two_runs_give_identical_bytes)
{
    const layer_compression *cs = all_compressions;

    for (int i = 0; i < 3; i++) {
        blob a = export_all(cs[i], 0, NULL);
        blob b = export_all(cs[i], 0, NULL);

        ck_assert_uint_eq(a.len, b.len);
        ck_assert_msg(memcmp(a.data, b.data, a.len) == 0,
                      "compression %d differs between runs", i);
        free(a.data);
        free(b.data);
    }
}
END_TEST

START_TEST(test_free_at_any_point_stops_cleanly)
{
    const layer_compression *cs = all_compressions;
    layer_dir l = base_layer();
    unsigned char buf[4096];

    for (int round = 0; round < 24; round++) {
        /* the second half without digests (plain: no stage 2 thread) */
        layer_export_opts o = {.compression = cs[round % 3],
                               .flags =
                                   round >= 12 ? LAYER_EXPORT_NO_DIGESTS : 0};
        layer_export *x = NULL;
        size_t n;

        ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), 0);
        /* 0, 1, 2 or 3 reads, then the client vanishes */
        for (int i = 0; i < (round % 12) / 3; i++)
            ck_assert_int_eq(layer_export_read(&n, x, buf, sizeof(buf), 0), 0);
        if (round % 2)
            usleep(20000); /* let the workers fill the rings and block */
        layer_export_free(x);
    }
    layer_export_free(NULL);
}
END_TEST

START_TEST(test_bad_level_is_refused_before_starting)
{
    layer_export_opts o = {.compression = LAYER_COMPRESSION_GZIP, .level = 99};
    layer_dir l = base_layer();
    layer_export *x = (layer_export *)&o; /* must stay untouched */

    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_EINVALID);
    ck_assert_ptr_eq(x, (layer_export *)&o);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "99"));
    o.compression = LAYER_COMPRESSION_ZSTD;
    o.level = 20;
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_EINVALID);
    o.compression = LAYER_COMPRESSION_NONE;
    o.level = 3;
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_EINVALID);
    o.level = 0;
    o.flags = 1u << 7;
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_EINVALID);
}
END_TEST

START_TEST(test_missing_layer_is_not_found)
{
    layer_dir l = {.path = "/nonexistent/layerd-layer",
                   .kind = LAYER_KIND_DIFF};
    layer_export *x = NULL;

    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, NULL),
                     LAYER_ENOTFOUND);
    ck_assert_ptr_null(x);
}
END_TEST

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
} waiter;

static void on_notify(void *arg)
{
    waiter *w = arg;

    pthread_mutex_lock(&w->lock);
    w->calls++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

START_TEST(test_nonblocking_reads_are_notified)
{
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    layer_export_opts o = {.compression = LAYER_COMPRESSION_GZIP};
    layer_dir l = base_layer();
    blob want = export_all(LAYER_COMPRESSION_GZIP, 0, NULL);
    blob got = {0};
    layer_export *x = NULL;
    unsigned char buf[8192];
    int again = 0, seen = 0, rc;
    size_t n;

    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), 0);
    layer_export_set_notify(x, on_notify, &w);
    for (;;) {
        rc = layer_export_read(&n, x, buf, sizeof(buf), LAYER_EXPORT_NONBLOCK);
        if (rc == 0) {
            blob_add(&got, buf, n);
            continue;
        }
        if (rc != LAYER_EAGAIN)
            break;
        again++;
        /* every EAGAIN is followed by exactly one callback */
        pthread_mutex_lock(&w.lock);
        while (w.calls == seen)
            pthread_cond_wait(&w.cond, &w.lock);
        seen = w.calls;
        pthread_mutex_unlock(&w.lock);
    }
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    /* The reader here drains far faster than gzip fills, so EAGAIN comes
     * many times in practice; exactly one callback answered each. */
    ck_assert_int_eq(w.calls, again);
    ck_assert_uint_eq(got.len, want.len);
    ck_assert(memcmp(got.data, want.data, got.len) == 0);
    layer_export_free(x);
    free(want.data);
    free(got.data);
}
END_TEST

START_TEST(test_notify_installed_after_eagain_still_fires)
{
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    layer_dir l = base_layer();
    layer_export_summary s;
    layer_export *x = NULL;
    unsigned char buf[16];
    size_t n;
    int rc, calls;

    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, NULL), 0);
    rc = layer_export_read(&n, x, buf, sizeof(buf), LAYER_EXPORT_NONBLOCK);
    if (rc == LAYER_EAGAIN) {
        /* data arrives before anyone listens (the summary counts
         * published bytes)... */
        for (int i = 0; i < 60000; i++) {
            layer_export_summary_get(&s, x);
            if (s.size > 0)
                break;
            usleep(1000);
        }
        ck_assert_uint_gt(s.size, 0);
        pthread_mutex_lock(&w.lock);
        ck_assert_int_eq(w.calls, 0);
        pthread_mutex_unlock(&w.lock);
        /* ...so installing the callback fires it at once, on this thread */
        layer_export_set_notify(x, on_notify, &w);
        pthread_mutex_lock(&w.lock);
        calls = w.calls;
        pthread_mutex_unlock(&w.lock);
        ck_assert_int_eq(calls, 1);
        rc = layer_export_read(&n, x, buf, sizeof(buf), LAYER_EXPORT_NONBLOCK);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_gt(n, 0);
    layer_export_free(x);
}
END_TEST

START_TEST(test_reader_failure_is_reported_with_its_message)
{
    char *bad = fx_tmpdir();
    layer_dir l = {.path = bad, .kind = LAYER_KIND_DIFF};
    layer_export *x = NULL;
    unsigned char buf[4096];
    const char *msg;
    size_t n;
    int rc;

    fx_mkdir(bad, "a", 0755);
    fx_file(bad, "a/x", "x", 0644);
    fx_mkdir(bad, "b", 0755);
    fx_xattr(bad, "b", "trusted.overlay.redirect", "/elsewhere");
    rc = layer_export_start(&x, &l, NULL, 0, NULL);
    if (rc == 0) {
        while ((rc = layer_export_read(&n, x, buf, sizeof(buf), 0)) == 0)
            ;
        ck_assert_int_lt(rc, 0);
        ck_assert_int_ne(rc, LAYER_ITEROVER);
        msg = layer_export_error(x);
        ck_assert_ptr_nonnull(msg);
        ck_assert_msg(strncmp(msg, "layer.export failed: ", 21) == 0, "%s",
                      msg);
        ck_assert_ptr_nonnull(strstr(msg, "redirect"));
        /* the reading thread gets the message too */
        ck_assert_ptr_nonnull(strstr(layer_error_last(), "redirect"));
        /* and the failure is sticky */
        ck_assert_int_eq(layer_export_read(&n, x, buf, sizeof(buf), 0), rc);
        layer_export_free(x);
    } else {
        ck_assert_ptr_nonnull(strstr(layer_error_last(), "redirect"));
    }
    fx_rm_rf(bad);
    free(bad);
}
END_TEST

/* A thread that is not reading (a progress display, a watchdog) may ask
 * for the error while the workers run; under ThreadSanitizer this pins
 * that the question takes the export's lock. */
START_TEST(test_error_can_be_asked_while_the_export_runs)
{
    char *bad = fx_tmpdir();
    layer_dir l = {.path = bad, .kind = LAYER_KIND_DIFF};
    layer_export *x = NULL;
    const char *msg = NULL;

    fx_mkdir(bad, "a", 0755);
    fx_file(bad, "a/x", "x", 0644);
    fx_mkdir(bad, "b", 0755);
    fx_xattr(bad, "b", "trusted.overlay.redirect", "/elsewhere");
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, NULL), 0);
    /* no read: the producer fails on its own, at b */
    for (int i = 0; i < 60000 && msg == NULL; i++) {
        msg = layer_export_error(x);
        if (msg == NULL)
            usleep(1000);
    }
    ck_assert_ptr_nonnull(msg);
    ck_assert_ptr_nonnull(strstr(msg, "redirect"));
    layer_export_free(x);
    fx_rm_rf(bad);
    free(bad);
}
END_TEST

START_TEST(test_whiteouts_and_clamped_mtimes)
{
    char *lower = fx_tmpdir(), *upper = fx_tmpdir();
    layer_dir l = {.path = upper, .kind = LAYER_KIND_DIFF};
    layer_dir p = {.path = lower, .kind = LAYER_KIND_DIFF};
    layer_export_opts o = {.flags = LAYER_EXPORT_CLAMP_MTIME,
                           .epoch = 1500000000};
    layer_export *x = NULL;
    blob b = {0};
    unsigned char buf[65536];
    char *file, cmd[512], *out;
    size_t n;
    int rc;

    fx_mkdir(lower, "etc", 0755);
    fx_file(lower, "etc/passwd", "root\n", 0644);
    fx_file(lower, "etc/group", "root\n", 0644);
    fx_mkdir(upper, "etc", 0755);
    fx_whiteout_chr(upper, "etc/passwd");
    fx_file(upper, "etc/new", "new\n", 0644);
    fx_mtime(upper, "etc/new", 1700000000, 0);
    ck_assert_int_eq(layer_export_start(&x, &l, &p, 1, &o), 0);
    while ((rc = layer_export_read(&n, x, buf, sizeof(buf), 0)) == 0)
        blob_add(&b, buf, n);
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    layer_export_free(x);
    file = write_temp(&b);
    snprintf(cmd, sizeof(cmd), "TZ=UTC tar --numeric-owner -tvf %s", file);
    out = run(cmd);
    ck_assert_msg(strncmp(out, "drwxr-xr-x 0/0 ", 15) == 0, "%s", out);
    ck_assert_msg(strstr(out, "\n---------- 0/0 ") != NULL, "%s", out);
    ck_assert_msg(strstr(out, " 0 1970-01-01 00:00 etc/.wh.passwd\n") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "2017-07-14 02:40 etc/new\n") != NULL, "%s", out);
    ck_assert_ptr_null(strstr(out, "group"));
    free(out);
    unlink(file);
    free(file);
    free(b.data);
    fx_rm_rf(lower);
    fx_rm_rf(upper);
    free(lower);
    free(upper);
}
END_TEST

START_TEST(test_large_pax_headers_across_buffers)
{
    /* Headers of ~4 KiB (a 3000-byte xattr; ext4 keeps all of a file's
     * xattrs in one block) cross ring buffer boundaries several times; GNU
     * tar must still read every entry, and the xattrs must come back. */
    char *dir = fx_tmpdir(), *out = fx_tmpdir();
    layer_dir l = {.path = dir, .kind = LAYER_KIND_DIFF};
    layer_export_opts o = {.flags = LAYER_EXPORT_ALL_XATTRS};
    static char value[3001];
    layer_export *x = NULL;
    unsigned char buf[65536];
    blob b = {0};
    char *file, cmd[1024], *text, got[3100];
    size_t n;
    int rc;

    memset(value, 'v', 3000);
    for (int i = 0; i < 400; i++) {
        char rel[32];

        snprintf(rel, sizeof(rel), "f%03d", i);
        fx_file(dir, rel, "payload\n", 0644);
        value[0] = (char)('a' + i % 26);
        fx_xattr(dir, rel, "user.x", value);
    }
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), 0);
    while ((rc = layer_export_read(&n, x, buf, sizeof(buf), 0)) == 0)
        blob_add(&b, buf, n);
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    layer_export_free(x);
    ck_assert_uint_gt(b.len, 5 * (256u << 10));
    file = write_temp(&b);
    snprintf(cmd, sizeof(cmd), "tar -tf %s | wc -l", file);
    text = run(cmd);
    ck_assert_int_eq(strtol(text, NULL, 10), 400);
    free(text);
    snprintf(cmd, sizeof(cmd),
             "tar --xattrs --xattrs-include='user.*' -xf %s -C %s", file, out);
    free(run(cmd));
    {
        char *p = fx_path(out, "f077");
        ssize_t len = getxattr(p, "user.x", got, sizeof(got));

        ck_assert_int_eq(len, 3000);
        ck_assert_int_eq(got[0], 'a' + 77 % 26);
        ck_assert_int_eq(got[2999], 'v');
        free(p);
    }
    unlink(file);
    free(file);
    free(b.data);
    fx_rm_rf(dir);
    fx_rm_rf(out);
    free(dir);
    free(out);
}
END_TEST

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    blob b = {0};
    char buf[4096];
    size_t n;

    ck_assert_ptr_nonnull(f);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        blob_add(&b, buf, n);
    blob_add(&b, "", 1);
    fclose(f);
    return (char *)b.data;
}

START_TEST(test_export_span_carries_results)
{
    char *dir = fx_tmpdir();
    char *spans = fx_path(dir, "spans.jsonl");
    layer_trace_sink *sink = NULL;
    layer_span *parent = NULL;
    layer_export_opts o = {.compression = LAYER_COMPRESSION_GZIP};
    layer_export_summary s;
    layer_dir l = base_layer();
    layer_export *x = NULL;
    unsigned char buf[65536];
    char *text, *line, want[128];
    size_t n;

    ck_assert_int_eq(layer_trace_sink_open(&sink, spans, LAYER_TRACE_JSON), 0);
    ck_assert_int_eq(layer_span_start(&parent, sink, NULL, "test"), 0);
    o.span = parent;
    /* one complete export... */
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), 0);
    while (layer_export_read(&n, x, buf, sizeof(buf), 0) == 0)
        ;
    layer_export_summary_get(&s, x);
    layer_export_free(x);
    /* ...and one the client abandons */
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), 0);
    layer_export_free(x);
    layer_span_end(parent);
    layer_trace_sink_free(sink);

    text = read_file(spans);
    line = strstr(text, "\"name\":\"layer.export\"");
    ck_assert_msg(line != NULL, "%s", text);
    snprintf(want, sizeof(want), "\"export.diff_id\":\"%s\"", s.diff_id);
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    snprintf(want, sizeof(want), "\"export.digest\":\"%s\"", s.digest);
    ck_assert_ptr_nonnull(strstr(text, want));
    ck_assert_ptr_nonnull(strstr(text, "\"export.format\":\"gzip\""));
    ck_assert_ptr_nonnull(strstr(text, "\"export.level\":"));
    ck_assert_ptr_nonnull(strstr(text, "\"layer.path\":\""));
    ck_assert_ptr_nonnull(strstr(text, "\"export.entries\":"));
    ck_assert_ptr_nonnull(strstr(text, "\"export.outcome\":\"aborted\""));
    free(text);
    unlink(spans);
    free(spans);
    fx_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- the original tar (tar-split) ---------------------------------- */

/* A layer with its tar-split data, made up: root/layer/ holds the
 * files, root/meta/ts.gz the data (segments of arbitrary bytes: the
 * export does not parse them), want the tar they describe. */
typedef struct orig_fixture {
    char *root, *layer;
    blob want;
    char diff_id[LAYER_DIGEST_STR_SIZE];
    unsigned pos;
    gzFile gz;
} orig_fixture;

static void of_b64(char *out, const unsigned char *s, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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

static void of_seg(orig_fixture *f, const void *bytes, size_t n)
{
    char *enc = malloc(n / 3 * 4 + 8);

    ck_assert_ptr_nonnull(enc);
    of_b64(enc, bytes, n);
    ck_assert_int_gt(gzprintf(f->gz,
                              "{\"type\":2,\"payload\":\"%s\",\"position\":%u}"
                              "\n",
                              enc, f->pos++),
                     0);
    blob_add(&f->want, bytes, n);
    free(enc);
}

/* A file of the layer: written to layer/name and described. */
static void of_file(orig_fixture *f, const char *name, const void *data,
                    size_t n)
{
    unsigned char crc[8];
    char enc[16];

    fx_file_bytes(f->layer, name, data, n, 0644);
    layer_crc64_put(crc, layer_crc64_update(0, data, n));
    of_b64(enc, crc, 8);
    ck_assert_int_gt(gzprintf(f->gz,
                              "{\"type\":1,\"name\":\"%s\",\"size\":%zu,"
                              "\"payload\":\"%s\",\"position\":%u}\n",
                              name, n, enc, f->pos++),
                     0);
    blob_add(&f->want, data, n);
}

static orig_fixture of_make(void)
{
    static unsigned char big[700000];
    orig_fixture f = {0};
    char *ts;
    unsigned s = 7;

    for (size_t i = 0; i < sizeof(big); i++) {
        s = s * 1103515245u + 12345u;
        big[i] = (unsigned char)((i % 1000 < 600) ? 'a' + (s >> 28) : s >> 16);
    }
    f.root = fx_tmpdir();
    f.layer = fx_path(f.root, "layer");
    fx_mkdir(f.root, "layer", 0755);
    fx_mkdir(f.root, "meta", 0700);
    fx_mkdir(f.layer, "etc", 0755);
    ts = fx_path(f.root, "meta/ts.gz");
    f.gz = gzopen(ts, "wb1");
    ck_assert_ptr_nonnull(f.gz);
    of_seg(&f, "header of etc/", 14);
    ck_assert_int_gt(gzprintf(f.gz,
                              "{\"type\":1,\"name\":\"etc/\",\"payload\":null,"
                              "\"position\":%u}\n",
                              f.pos++),
                     0);
    of_seg(&f, "header of etc/hostname", 22);
    of_file(&f, "etc/hostname", "layerd\n", 7);
    of_seg(&f, "padding, header of big", 22);
    of_file(&f, "big", big, sizeof(big));
    of_seg(&f, big, 3000); /* a segment over several reads */
    of_file(&f, "etc/last", "last\n", 5);
    of_seg(&f, "end of archive", 14);
    ck_assert_int_eq(gzclose(f.gz), Z_OK);
    free(ts);
    ck_assert_int_eq(layer_digest_buffer(f.diff_id, f.want.data, f.want.len),
                     0);
    return f;
}

static void of_free(orig_fixture *f)
{
    fx_rm_rf(f->root);
    free(f->root);
    free(f->layer);
    free(f->want.data);
}

/* Export the original tar; *rc_out gets how it ended. */
static blob export_original(const orig_fixture *f, const char *diff_id,
                            layer_compression c, unsigned flags,
                            layer_export_summary *sum, int *rc_out)
{
    layer_export_original orig = {
        .root = f->root, .tarsplit = "meta/ts.gz", .diff_id = diff_id};
    layer_export_opts o = {.compression = c, .flags = flags, .original = &orig};
    layer_dir l = {.path = f->layer, .kind = LAYER_KIND_DIFF};
    layer_export *x = NULL;
    unsigned char buf[100000];
    size_t caps[] = {1, 511, 4096, 65536, 100000, 7};
    blob b = {0};
    size_t n;
    int rc, i = 0;

    rc = layer_export_start(&x, &l, NULL, 0, &o);
    ck_assert_msg(rc == 0, "start: %s", layer_error_last());
    while ((rc = layer_export_read(&n, x, buf, caps[i++ % 6], 0)) == 0)
        blob_add(&b, buf, n);
    *rc_out = rc;
    layer_export_summary_get(sum, x);
    if (rc != LAYER_ITEROVER) {
        ck_assert_ptr_nonnull(layer_export_error(x));
        ck_assert_str_eq(layer_error_last(),
                         layer_export_error(x) + strlen("layer.export "
                                                        "failed: "));
    }
    layer_export_free(x);
    return b;
}

START_TEST(test_original_tar_is_rebuilt_byte_for_byte)
{
    orig_fixture f = of_make();

    for (size_t i = 0; i < 3; i++) {
        layer_compression c = all_compressions[i];
        layer_export_summary s;
        blob b, tar;
        int rc;

        b = export_original(&f, f.diff_id, c, 0, &s, &rc);
        ck_assert_msg(rc == LAYER_ITEROVER, "%d: %s", (int)c,
                      layer_error_last());
        tar = c == LAYER_COMPRESSION_GZIP   ? gunzip(&b)
              : c == LAYER_COMPRESSION_ZSTD ? unzstd(&b)
                                            : b;
        ck_assert_uint_eq(tar.len, f.want.len);
        ck_assert_mem_eq(tar.data, f.want.data, f.want.len);
        ck_assert_int_eq(s.tar, LAYER_EXPORT_TAR_ORIGINAL);
        ck_assert_str_eq(s.diff_id, f.diff_id);
        ck_assert_str_eq(s.fingerprint, f.diff_id);
        {
            char digest[LAYER_DIGEST_STR_SIZE];

            ck_assert_int_eq(layer_digest_buffer(digest, b.data, b.len), 0);
            ck_assert_str_eq(s.digest, digest);
        }
        ck_assert_uint_eq(s.tar_size, f.want.len);
        ck_assert_uint_eq(s.size, b.len);
        ck_assert_uint_eq(s.entries, 4);
        ck_assert_uint_eq(s.warnings, 0);
        if (tar.data != b.data)
            free(tar.data);
        free(b.data);
    }
    of_free(&f);
}
END_TEST

/* Given descriptors (as a store hands them over), the original tar is
 * read through them: the layer directory and the root swapped for others
 * after the lookup change nothing. */
START_TEST(test_original_tar_is_read_through_descriptors)
{
    orig_fixture f = of_make();
    int lfd = open(f.layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rfd = open(f.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    layer_export_original orig = {.root = f.root,
                                  .has_root_fd = true,
                                  .root_fd = rfd,
                                  .tarsplit = "meta/ts.gz",
                                  .diff_id = f.diff_id};
    layer_export_opts o = {.original = &orig};
    layer_dir l = {
        .path = f.layer, .kind = LAYER_KIND_DIFF, .has_fd = true, .fd = lfd};
    char *moved_layer = fx_path(f.root, "layer.moved");
    char *moved_root = NULL;
    layer_export *x = NULL;
    unsigned char buf[65536];
    blob b = {0};
    size_t n;
    int rc;

    ck_assert(lfd >= 0 && rfd >= 0);
    /* the layer directory replaced by an empty one, the root by another
     * directory: by path, nothing would match the diff ID */
    ck_assert_int_eq(rename(f.layer, moved_layer), 0);
    fx_mkdir(f.root, "layer", 0755);
    ck_assert(asprintf(&moved_root, "%s.moved", f.root) > 0);
    ck_assert_int_eq(rename(f.root, moved_root), 0);
    ck_assert_int_eq(mkdir(f.root, 0755), 0);
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), 0);
    while ((rc = layer_export_read(&n, x, buf, sizeof(buf), 0)) == 0)
        blob_add(&b, buf, n);
    ck_assert_msg(rc == LAYER_ITEROVER, "%s", layer_error_last());
    ck_assert_uint_eq(b.len, f.want.len);
    ck_assert_mem_eq(b.data, f.want.data, f.want.len);
    layer_export_free(x);
    free(b.data);
    close(lfd);
    close(rfd);
    ck_assert_int_eq(rmdir(f.root), 0);
    ck_assert_int_eq(rename(moved_root, f.root), 0);
    fx_rm_rf(f.layer);
    ck_assert_int_eq(rename(moved_layer, f.layer), 0);
    free(moved_root);
    free(moved_layer);
    of_free(&f);
}
END_TEST

/* A tar that does not hash to the diff ID given fails at the end, with
 * no digest, whatever the compression; so does a changed file, named. */
START_TEST(test_original_tar_mismatches_cut_the_stream)
{
    orig_fixture f = of_make();
    char wrong[LAYER_DIGEST_STR_SIZE];

    snprintf(wrong, sizeof(wrong), "%s", f.diff_id);
    wrong[7] = wrong[7] == '0' ? '1' : '0';
    for (size_t i = 0; i < 3; i++) {
        layer_export_summary s;
        blob b;
        int rc;

        b = export_original(&f, wrong, all_compressions[i], 0, &s, &rc);
        ck_assert_int_eq(rc, LAYER_ECHANGED);
        ck_assert_msg(strstr(layer_error_last(), "the rebuilt tar hashes to") &&
                          strstr(layer_error_last(), f.diff_id) &&
                          strstr(layer_error_last(), wrong),
                      "%s", layer_error_last());
        ck_assert_str_eq(s.diff_id, "");
        ck_assert_str_eq(s.digest, "");
        free(b.data);
        /* without digests too: the diff ID is still checked */
        b = export_original(&f, wrong, all_compressions[i],
                            LAYER_EXPORT_NO_DIGESTS, &s, &rc);
        ck_assert_int_eq(rc, LAYER_ECHANGED);
        free(b.data);
    }
    fx_file(f.layer, "etc/last", "LAST\n", 0644);
    for (size_t i = 0; i < 3; i++) {
        layer_export_summary s;
        blob b;
        int rc;

        b = export_original(&f, f.diff_id, all_compressions[i], 0, &s, &rc);
        ck_assert_int_eq(rc, LAYER_ECHANGED);
        ck_assert_msg(strstr(layer_error_last(), "etc/last: other content") !=
                          NULL,
                      "%s", layer_error_last());
        ck_assert_str_eq(s.diff_id, "");
        free(b.data);
    }
    of_free(&f);
}
END_TEST

START_TEST(test_original_tar_without_digests_still_ends)
{
    orig_fixture f = of_make();
    layer_export_summary s;
    blob b, tar;
    int rc;

    b = export_original(&f, f.diff_id, LAYER_COMPRESSION_GZIP,
                        LAYER_EXPORT_NO_DIGESTS, &s, &rc);
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    tar = gunzip(&b);
    ck_assert_uint_eq(tar.len, f.want.len);
    ck_assert_mem_eq(tar.data, f.want.data, f.want.len);
    ck_assert_str_eq(s.digest, "");
    ck_assert_str_eq(s.fingerprint, f.diff_id);
    free(tar.data);
    free(b.data);
    of_free(&f);
}
END_TEST

START_TEST(test_original_tar_start_refusals)
{
    orig_fixture f = of_make();
    layer_export_original orig = {
        .root = f.root, .tarsplit = "meta/ts.gz", .diff_id = f.diff_id};
    layer_export_opts o = {.original = &orig};
    layer_dir l = {.path = f.layer, .kind = LAYER_KIND_DIFF};
    layer_export *x = NULL;
    char *link = fx_path(f.root, "meta/link.gz");

    o.flags = LAYER_EXPORT_CLAMP_MTIME;
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_EINVALID);
    o.flags = LAYER_EXPORT_ALL_XATTRS;
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_EINVALID);
    o.flags = 0;
    orig.diff_id = "sha256:abc";
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_EINVALID);
    orig.diff_id = f.diff_id;
    orig.tarsplit = "meta/none.gz";
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "meta/none.gz"));
    /* a symlink, a path leaving the root, a directory */
    ck_assert_int_eq(symlink("ts.gz", link), 0);
    orig.tarsplit = "meta/link.gz";
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_EBROKEN);
    orig.tarsplit = "../etc/passwd";
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "leaving the store"));
    orig.tarsplit = "meta";
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_EBROKEN);
    orig.tarsplit = "meta/ts.gz";
    l.path = "/nonexistent/layerd-layer";
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), LAYER_ENOTFOUND);
    ck_assert_ptr_null(x);
    free(link);
    of_free(&f);
}
END_TEST

START_TEST(test_choose_tar_follows_what_the_store_has)
{
    layer_info info = {0};
    layer_export_original o;
    layer_export_tar t;
    char id[] = "top", root_dir[] = "/store", ts[] = "vfs-layers/top.gz";
    char diff[] = "sha256:"
                  "0000000000000000000000000000000000000000000000000000000000"
                  "000000";

    info.id = id;
    /* nothing kept: auto is canonical, original refused */
    ck_assert_int_eq(
        layer_export_choose_tar(&t, &o, &info, LAYER_EXPORT_TAR_AUTO, 0), 0);
    ck_assert_int_eq(t, LAYER_EXPORT_TAR_CANONICAL);
    ck_assert_ptr_null(o.tarsplit);
    ck_assert_int_eq(
        layer_export_choose_tar(&t, &o, &info, LAYER_EXPORT_TAR_ORIGINAL, 0),
        LAYER_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "no tar-split data"));
    /* tar-split data without a diff ID */
    info.root = root_dir;
    info.tarsplit = ts;
    ck_assert_int_eq(
        layer_export_choose_tar(&t, &o, &info, LAYER_EXPORT_TAR_ORIGINAL, 0),
        LAYER_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "no sha256 diff ID"));
    /* both: auto is original */
    info.diff_digest = diff;
    ck_assert_int_eq(
        layer_export_choose_tar(&t, &o, &info, LAYER_EXPORT_TAR_AUTO, 0), 0);
    ck_assert_int_eq(t, LAYER_EXPORT_TAR_ORIGINAL);
    ck_assert_str_eq(o.root, "/store");
    ck_assert_str_eq(o.tarsplit, ts);
    ck_assert_str_eq(o.diff_id, diff);
    ck_assert_int_eq(
        layer_export_choose_tar(&t, &o, &info, LAYER_EXPORT_TAR_CANONICAL, 0),
        0);
    ck_assert_int_eq(t, LAYER_EXPORT_TAR_CANONICAL);
    /* flags of the canonical tar: auto takes it, original refuses */
    ck_assert_int_eq(layer_export_choose_tar(&t, &o, &info,
                                             LAYER_EXPORT_TAR_AUTO,
                                             LAYER_EXPORT_CLAMP_MTIME),
                     0);
    ck_assert_int_eq(t, LAYER_EXPORT_TAR_CANONICAL);
    ck_assert_int_eq(layer_export_choose_tar(&t, &o, &info,
                                             LAYER_EXPORT_TAR_ORIGINAL,
                                             LAYER_EXPORT_ALL_XATTRS),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_export_choose_tar(&t, &o, &info,
                                             LAYER_EXPORT_TAR_ORIGINAL,
                                             LAYER_EXPORT_NO_DIGESTS),
                     0);
    /* a mutable layer has none */
    info.mutable_ = true;
    ck_assert_int_eq(
        layer_export_choose_tar(&t, &o, &info, LAYER_EXPORT_TAR_AUTO, 0), 0);
    ck_assert_int_eq(t, LAYER_EXPORT_TAR_CANONICAL);
    ck_assert_int_eq(
        layer_export_choose_tar(&t, &o, &info, LAYER_EXPORT_TAR_ORIGINAL, 0),
        LAYER_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "mutable"));
    ck_assert_int_eq(
        layer_export_choose_tar(&t, &o, &info, (layer_export_tar)7, 0),
        LAYER_EINVALID);
    /* names */
    ck_assert_int_eq(layer_export_tar_parse(&t, "original"), 0);
    ck_assert_int_eq(t, LAYER_EXPORT_TAR_ORIGINAL);
    ck_assert_int_eq(layer_export_tar_parse(&t, "auto"), 0);
    ck_assert_int_eq(t, LAYER_EXPORT_TAR_AUTO);
    ck_assert_int_eq(layer_export_tar_parse(&t, "canonical"), 0);
    ck_assert_int_eq(t, LAYER_EXPORT_TAR_CANONICAL);
    ck_assert_int_eq(layer_export_tar_parse(&t, "Original"), LAYER_EINVALID);
    ck_assert_int_eq(layer_export_tar_parse(&t, NULL), LAYER_EINVALID);
    ck_assert_str_eq(layer_export_tar_name(LAYER_EXPORT_TAR_CANONICAL),
                     "canonical");
}
END_TEST

START_TEST(test_original_export_span_says_so)
{
    orig_fixture f = of_make();
    char *spans = fx_path(f.root, "spans.jsonl");
    layer_export_original orig = {
        .root = f.root, .tarsplit = "meta/ts.gz", .diff_id = f.diff_id};
    layer_export_opts o = {.original = &orig};
    layer_dir l = {.path = f.layer, .kind = LAYER_KIND_DIFF};
    layer_trace_sink *sink = NULL;
    layer_span *parent = NULL;
    layer_export *x = NULL;
    unsigned char buf[65536];
    char *text;
    size_t n;

    ck_assert_int_eq(layer_trace_sink_open(&sink, spans, LAYER_TRACE_JSON), 0);
    ck_assert_int_eq(layer_span_start(&parent, sink, NULL, "test"), 0);
    o.span = parent;
    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), 0);
    while (layer_export_read(&n, x, buf, sizeof(buf), 0) == 0)
        ;
    layer_export_free(x);
    layer_span_end(parent);
    layer_trace_sink_free(sink);
    text = read_file(spans);
    ck_assert_msg(strstr(text, "\"export.tar\":\"original\"") != NULL, "%s",
                  text);
    ck_assert_ptr_nonnull(strstr(text, "\"layer.tarsplit\":\"meta/ts.gz\""));
    {
        char want[64];

        snprintf(want, sizeof(want), "\"export.crc64\":\"%s\"",
                 layer_crc64_method());
        ck_assert_ptr_nonnull(strstr(text, want));
    }
    ck_assert_ptr_nonnull(strstr(text, f.diff_id));
    free(text);
    free(spans);
    of_free(&f);
}
END_TEST

/* At most LAYER_CHAIN_MAX parents, checked before any work. */
START_TEST(test_chain_cap_is_checked_first)
{
    layer_dir l = base_layer();
    layer_dir gone = {.path = "/nonexistent/layerd-layer",
                      .kind = LAYER_KIND_DIFF};
    layer_dir *pd = calloc(LAYER_CHAIN_MAX + 1, sizeof(*pd));
    layer_export *x = NULL;
    unsigned char buf[65536];
    size_t n;
    int rc;

    ck_assert_ptr_nonnull(pd);
    for (int i = 0; i <= LAYER_CHAIN_MAX; i++)
        pd[i] = base_layer();
    ck_assert_int_eq(layer_export_start(&x, &l, pd, LAYER_CHAIN_MAX, NULL), 0);
    while ((rc = layer_export_read(&n, x, buf, sizeof(buf), 0)) == 0)
        ;
    ck_assert_int_eq(rc, LAYER_ITEROVER);
    layer_export_free(x);
    x = NULL;
    ck_assert_int_eq(
        layer_export_start(&x, &gone, pd, LAYER_CHAIN_MAX + 1, NULL),
        LAYER_EINVALID);
    ck_assert_ptr_null(x);
    ck_assert_str_eq(layer_error_last(),
                     "129 parents: a layer has at most 128 (LAYER_CHAIN_MAX)");
    free(pd);
}
END_TEST

static int export_warnings;

static void on_export_warning(void *arg, const char *message)
{
    (void)arg;
    ck_assert_ptr_nonnull(strstr(message, "big: file "));
    export_warnings++;
}

/* A layer with one 16 MiB file, which the export has started to read
 * when the first buffer comes out (the rings hold 2 MiB at most). */
static char *changing_tree(void)
{
    char *dir = fx_tmpdir();
    char *p = fx_path(dir, "big");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    ck_assert(fd >= 0 && ftruncate(fd, 16 << 20) == 0);
    close(fd);
    free(p);
    return dir;
}

/* Start an export of dir, take its first buffer, change big with how
 * ("truncate", "grow"), drain; the last read's code. */
static int export_while_changing(const char *dir, const char *how,
                                 unsigned reader_flags,
                                 layer_export_summary *sum)
{
    layer_export_opts o = {.reader_flags = reader_flags,
                           .on_warning = on_export_warning};
    layer_dir l = {.path = dir, .kind = LAYER_KIND_DIFF};
    layer_export *x = NULL;
    static unsigned char buf[262144];
    char *p = fx_path(dir, "big");
    size_t n;
    int rc;

    ck_assert_int_eq(layer_export_start(&x, &l, NULL, 0, &o), 0);
    ck_assert_int_eq(layer_export_read(&n, x, buf, sizeof(buf), 0), 0);
    if (strcmp(how, "truncate") == 0) {
        ck_assert(truncate(p, 1000) == 0);
    } else {
        int fd = open(p, O_WRONLY | O_APPEND);

        ck_assert(fd >= 0 && write(fd, "more", 4) == 4);
        close(fd);
    }
    while ((rc = layer_export_read(&n, x, buf, sizeof(buf), 0)) == 0)
        ;
    layer_export_summary_get(sum, x);
    if (rc != LAYER_ITEROVER)
        ck_assert_ptr_nonnull(strstr(layer_export_error(x), "big: file "));
    layer_export_free(x);
    free(p);
    return rc;
}

/* A file that changes while it is exported fails the export: no end of
 * stream, so no digest is ever claimed; allowed, it completes with a
 * warning per file. */
START_TEST(test_changing_file_fails_the_export)
{
    static const char *const hows[] = {"truncate", "grow"};
    layer_export_summary sum;

    for (size_t i = 0; i < 2; i++) {
        char *dir = changing_tree();

        export_warnings = 0;
        ck_assert_int_eq(export_while_changing(dir, hows[i], 0, &sum),
                         LAYER_ECHANGED);
        ck_assert_str_eq(sum.diff_id, "");
        ck_assert_str_eq(sum.digest, "");
        ck_assert_int_eq(export_warnings, 0);
        fx_rm_rf(dir);
        free(dir);

        dir = changing_tree();
        ck_assert_int_eq(export_while_changing(
                             dir, hows[i], LAYER_READER_ALLOW_CHANGING, &sum),
                         LAYER_ITEROVER);
        ck_assert_uint_eq(sum.warnings, 1);
        ck_assert_int_eq(export_warnings, 1);
        ck_assert_ptr_nonnull(sum.last_warning);
        ck_assert_uint_eq(sum.tar_size, 512 + (16u << 20) + 1024);
        fx_rm_rf(dir);
        free(dir);
    }
}
END_TEST

START_TEST(test_memory_estimates_order_the_formats)
{
    size_t none = layer_export_memory(LAYER_COMPRESSION_NONE, 0);
    size_t gz = layer_export_memory(LAYER_COMPRESSION_GZIP, 0);
    size_t z3 = layer_export_memory(LAYER_COMPRESSION_ZSTD, 3);
    size_t z19 = layer_export_memory(LAYER_COMPRESSION_ZSTD, 19);

    /* plain: two rings of 4 x 288 KiB and the allowance; gzip: deeper
     * rings and a compressor per worker; zstd: its contexts dominate */
    ck_assert_uint_ge(none, 8 * (288u << 10));
    ck_assert_uint_gt(gz, none);
    ck_assert_uint_gt(z3, gz);
    ck_assert_uint_eq(layer_export_memory(LAYER_COMPRESSION_ZSTD, 0), z3);
    ck_assert_uint_eq(z19 - none,
                      layer_compress_memory(LAYER_COMPRESSION_ZSTD, 19));
    /* a level the format refuses has no estimate */
    ck_assert_uint_eq(layer_export_memory(LAYER_COMPRESSION_NONE, 3), 0);
    ck_assert_uint_eq(layer_export_memory(LAYER_COMPRESSION_ZSTD, 23), 0);
}
END_TEST

static Suite *export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("pipeline");
    TCase *orig = tcase_create("original");
    TCase *est = tcase_create("estimates");

    tcase_add_unchecked_fixture(tc, make_tree, drop_tree);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_plain_export_is_a_tar_gnu_tar_reads);
    tcase_add_test(tc, test_plain_diff_id_is_sha256_of_the_tar);
    tcase_add_test(tc, test_gzip_export_decompresses_to_the_plain_tar);
    tcase_add_test(tc, test_gzip_export_is_256k_chunks_of_its_tar);
    tcase_add_test(tc,
                   test_gzip_chunks_done_out_of_order_are_published_in_order);
    tcase_add_test(tc, test_zstd_export_decompresses_to_the_plain_tar);
    tcase_add_test(tc, test_no_digests_gives_the_same_bytes_and_fingerprint);
    tcase_add_test(tc, test_fingerprint_follows_every_change);
    tcase_add_test(tc, test_two_runs_give_identical_bytes);
    tcase_add_test(tc, test_free_at_any_point_stops_cleanly);
    tcase_add_test(tc, test_bad_level_is_refused_before_starting);
    tcase_add_test(tc, test_missing_layer_is_not_found);
    tcase_add_test(tc, test_nonblocking_reads_are_notified);
    tcase_add_test(tc, test_notify_installed_after_eagain_still_fires);
    tcase_add_test(tc, test_reader_failure_is_reported_with_its_message);
    tcase_add_test(tc, test_error_can_be_asked_while_the_export_runs);
    tcase_add_test(tc, test_whiteouts_and_clamped_mtimes);
    tcase_add_test(tc, test_export_span_carries_results);
    tcase_add_test(tc, test_large_pax_headers_across_buffers);
    tcase_add_test(tc, test_chain_cap_is_checked_first);
    tcase_add_test(tc, test_changing_file_fails_the_export);
    suite_add_tcase(s, tc);
    tcase_set_timeout(orig, 120);
    tcase_add_test(orig, test_original_tar_is_rebuilt_byte_for_byte);
    tcase_add_test(orig, test_original_tar_is_read_through_descriptors);
    tcase_add_test(orig, test_original_tar_mismatches_cut_the_stream);
    tcase_add_test(orig, test_original_tar_without_digests_still_ends);
    tcase_add_test(orig, test_original_tar_start_refusals);
    tcase_add_test(orig, test_choose_tar_follows_what_the_store_has);
    tcase_add_test(orig, test_original_export_span_says_so);
    suite_add_tcase(s, orig);
    tcase_add_test(est, test_memory_estimates_order_the_formats);
    suite_add_tcase(s, est);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(export_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
