/*
 * Fuzz target for lib/tarsplit.c. An input that starts with the gzip
 * magic is read as it is (the gzip framing is fuzzed: truncation,
 * members, trailing bytes); any other input is gzip-compressed first, so
 * the mutations reach the JSON lines instead of failing the gzip CRC.
 *
 * Oracle: the reader ends with LAYER_ITEROVER or a clear error (EBROKEN,
 * ETOOBIG, ENOMEM, with a message that names the line), repeats that end
 * on the next call, and every entry it yields keeps the header's
 * promises: positions 0, 1, 2, ...; file names non-empty, relative,
 * without ".." components or NUL bytes, within the name cap; a CRC for
 * every file with content; segments within the line cap. When a stream
 * is read to its end, its entries are written back out as tar-split
 * lines and read again: the second reading must give the same entries
 * (a parser that accepts one thing and yields another fails here).
 *
 * Then the same stream rebuilds a tar (layer_tarsplit_asm) over a small
 * fixed layer directory (files "a" = "hello\n" and "d/b" = "x", made once
 * in a temporary directory, removed at exit). Oracle: it ends with
 * LAYER_ITEROVER exactly when the reader did and every file it names
 * matched (then it gave out the segments' and files' bytes, no more, no
 * less), else with the reader's error or LAYER_ECHANGED for a file that
 * differs; it never gives out more bytes than the entries describe.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "layer/error.h"
#include "layer/tarsplit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small, so that the cap is reached often. */
#define FUZZ_MAX_LINE    (64u * 1024u)
#define FUZZ_MAX_ENTRIES 4096u

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        unsigned char *p = realloc(b->p, cap);

        if (p == NULL)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void put_b64(buf *b, const unsigned char *s, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        char q[4];

        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        q[0] = a[(v >> 18) & 63];
        q[1] = a[(v >> 12) & 63];
        q[2] = i + 1 < n ? a[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? a[v & 63] : '=';
        put(b, q, 4);
    }
}

static void put_json_string(buf *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(b, esc, 6);
        } else {
            put(b, &s[i], 1);
        }
    }
    put(b, "\"", 1);
}

static void gzip_into(buf *out, const unsigned char *data, size_t len)
{
    z_stream z;
    unsigned char chunk[16384];
    int zrc;

    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    z.next_in = (unsigned char *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof(chunk);
        zrc = deflate(&z, Z_FINISH);
        if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR)
            abort();
        put(out, chunk, sizeof(chunk) - z.avail_out);
    } while (zrc != Z_STREAM_END);
    deflateEnd(&z);
}

static int memfd_of(const unsigned char *p, size_t len)
{
    int fd = memfd_create("fuzz_tarsplit", MFD_CLOEXEC);
    size_t off = 0;

    if (fd < 0)
        abort();
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);

        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) != 0)
        abort();
    return fd;
}

static int has_dotdot(const char *n, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t j = i;

        while (j < len && n[j] != '/')
            j++;
        if (j - i == 2 && n[i] == '.' && n[i + 1] == '.')
            return 1;
        i = j + 1;
    }
    return 0;
}

static void check_entry(const layer_tarsplit_entry *e, uint64_t pos)
{
    if (e->position != pos)
        abort();
    if (e->type == LAYER_TARSPLIT_FILE) {
        if (e->name == NULL || e->name_len == 0 ||
            e->name_len > LAYER_TARSPLIT_MAX_NAME ||
            strlen(e->name) != e->name_len || e->name[0] == '/' ||
            has_dotdot(e->name, e->name_len))
            abort();
        if (e->size > 0 && !e->has_crc)
            abort();
    } else if (e->type == LAYER_TARSPLIT_SEGMENT) {
        if (e->len > FUZZ_MAX_LINE || (e->len > 0 && e->data == NULL))
            abort();
    } else {
        abort();
    }
}

/* Append e as a tar-split line, as Go's packer would write it. */
static void reencode(buf *b, const layer_tarsplit_entry *e)
{
    char num[64];

    snprintf(num, sizeof(num), "{\"type\":%d", (int)e->type);
    put(b, num, strlen(num));
    if (e->type == LAYER_TARSPLIT_FILE) {
        if (e->name_raw) {
            put(b, ",\"name_raw\":\"", 13);
            put_b64(b, (const unsigned char *)e->name, e->name_len);
            put(b, "\"", 1);
        } else {
            put(b, ",\"name\":", 8);
            put_json_string(b, e->name, e->name_len);
        }
        if (e->size > 0) {
            snprintf(num, sizeof(num), ",\"size\":%llu",
                     (unsigned long long)e->size);
            put(b, num, strlen(num));
        }
        if (e->has_crc) {
            unsigned char c[8];

            for (int i = 0; i < 8; i++)
                c[i] = (unsigned char)(e->crc >> (56 - 8 * i));
            put(b, ",\"payload\":\"", 12);
            put_b64(b, c, 8);
            put(b, "\"", 1);
        } else {
            put(b, ",\"payload\":null", 15);
        }
    } else {
        put(b, ",\"payload\":\"", 12);
        put_b64(b, e->data, e->len);
        put(b, "\"", 1);
    }
    snprintf(num, sizeof(num), ",\"position\":%llu}\n",
             (unsigned long long)e->position);
    put(b, num, strlen(num));
}

/* Read the stream in gz; when lines is not NULL, append each entry
 * re-encoded; when want is not NULL, compare with those lines instead;
 * when bytes is not NULL, add up the tar bytes the entries describe.
 * Returns the final code. */
static int read_all(const buf *gz, buf *lines, const buf *want, uint64_t *bytes)
{
    layer_tarsplit_opts o = {.max_line = FUZZ_MAX_LINE, .label = "fuzz"};
    const layer_tarsplit_entry *e;
    layer_tarsplit *ts = NULL;
    buf again = {0};
    uint64_t n = 0;
    int fd = memfd_of(gz->p, gz->len), rc, rc2;

    if (layer_tarsplit_open(&ts, fd, &o) != 0)
        abort();
    while (n < FUZZ_MAX_ENTRIES && (rc = layer_tarsplit_next(&e, ts)) == 0) {
        check_entry(e, n++);
        if (bytes)
            *bytes += e->type == LAYER_TARSPLIT_FILE ? e->size : e->len;
        if (lines)
            reencode(lines, e);
        if (want)
            reencode(&again, e);
    }
    if (n == FUZZ_MAX_ENTRIES)
        rc = LAYER_ECANCELED; /* long enough; no round trip */
    if (rc != LAYER_ITEROVER && rc != LAYER_ECANCELED) {
        if (rc != LAYER_EBROKEN && rc != LAYER_ETOOBIG && rc != LAYER_ENOMEM)
            abort();
        if (strncmp(layer_error_last(), "fuzz: line ", 11) != 0)
            abort();
    }
    if (rc != LAYER_ECANCELED) {
        rc2 = layer_tarsplit_next(&e, ts);
        if (rc2 != rc)
            abort();
    }
    if (want && (rc != LAYER_ITEROVER || again.len != want->len ||
                 memcmp(again.p, want->p, want->len) != 0))
        abort();
    layer_tarsplit_free(ts);
    close(fd);
    free(again.p);
    return rc;
}

/* ---- rebuilding over a fixed layer ---- */

static char layer_dir[64];

static void remove_layer(void)
{
    char p[128];

    snprintf(p, sizeof(p), "%s/d/b", layer_dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/d", layer_dir);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/a", layer_dir);
    unlink(p);
    rmdir(layer_dir);
}

static void put_file(const char *rel, const char *content)
{
    char p[128];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", layer_dir, rel);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 ||
        write(fd, content, strlen(content)) != (ssize_t)strlen(content))
        abort();
    close(fd);
}

/* The layer directory, made on first use. */
static int layer_fd(void)
{
    static int fd = -1;
    char p[128];

    if (fd >= 0)
        return fd;
    snprintf(layer_dir, sizeof(layer_dir), "/tmp/fuzz_tarsplit.XXXXXX");
    if (mkdtemp(layer_dir) == NULL)
        abort();
    atexit(remove_layer);
    put_file("a", "hello\n");
    snprintf(p, sizeof(p), "%s/d", layer_dir);
    if (mkdir(p, 0755) < 0)
        abort();
    put_file("d/b", "x");
    fd = open(layer_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        abort();
    return fd;
}

/* Rebuild from gz; check the end against the reader's (read_rc, and the
 * bytes its entries describe). */
static void rebuild(const buf *gz, int read_rc, uint64_t want_bytes)
{
    layer_tarsplit_opts o = {.max_line = FUZZ_MAX_LINE, .label = "fuzz"};
    layer_tarsplit_asm *a = NULL;
    layer_tarsplit_asm_stats st;
    unsigned char out[4096];
    uint64_t got = 0;
    int fd = memfd_of(gz->p, gz->len), rc;
    size_t n;

    if (layer_tarsplit_asm_open(&a, fd, layer_fd(), &o) != 0)
        abort();
    while ((rc = layer_tarsplit_asm_read(&n, a, out, sizeof(out))) == 0) {
        if (n == 0 || n > sizeof(out))
            abort();
        got += n;
        if (got > want_bytes && read_rc != LAYER_ECANCELED)
            abort();
    }
    layer_tarsplit_asm_stats_get(&st, a);
    if (st.bytes != got)
        abort();
    if (read_rc == LAYER_ITEROVER) {
        if (rc != LAYER_ITEROVER && rc != LAYER_ECHANGED)
            abort();
        if (rc == LAYER_ITEROVER && got != want_bytes)
            abort();
    } else if (read_rc != LAYER_ECANCELED && rc != read_rc &&
               rc != LAYER_ECHANGED) {
        abort();
    }
    /* errors are final */
    if (rc != LAYER_ECANCELED &&
        layer_tarsplit_asm_read(&n, a, out, sizeof(out)) != rc)
        abort();
    layer_tarsplit_asm_free(a);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf gz = {0}, lines = {0}, gz2 = {0};
    uint64_t bytes = 0;
    int rc;

    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
        put(&gz, data, size);
    else
        gzip_into(&gz, data, size);
    rc = read_all(&gz, &lines, NULL, &bytes);
    if (rc == LAYER_ITEROVER) {
        gzip_into(&gz2, lines.p, lines.len);
        read_all(&gz2, NULL, &lines, NULL);
    }
    rebuild(&gz, rc, bytes);
    free(gz.p);
    free(lines.p);
    free(gz2.p);
    return 0;
}
