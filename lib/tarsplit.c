/*
 * The tar-split reader (layer/tarsplit.h): gzip-compressed JSON lines in,
 * one validated entry out per call.
 *
 * Data flow: read() 64 KiB of the descriptor -> zlib inflate (gzip
 * wrapper; further gzip members are read on, anything else after the
 * first member is an error, as Go's gzip reader has it) into a 64 KiB
 * window -> bytes are copied into the line buffer up to the next '\n'
 * -> jansson parses the line -> the fields are checked and decoded.
 *
 * Memory is bounded: the two 64 KiB windows, the line buffer (at most
 * the line cap), jansson's tree of that one line and the decoded payload
 * (three quarters of the line at most). A line is refused as soon as it
 * passes the cap, before more of it is inflated, so a gzip bomb of one
 * endless line costs no more than the cap.
 *
 * The current entry borrows from the reader: the name of a "name" field
 * points into the line's jansson tree, which is kept until the next
 * call; a decoded name_raw or payload lives in buffers owned by the
 * reader.
 *
 * Errors are final: the first one is kept (code and message) and
 * repeated by every later call, so a caller that ignored it cannot read
 * on past a hole in the tar.
 *
 * The second half rebuilds the original tar (layer_tarsplit_asm): a pull
 * source over the reader that hands out each segment, then each file's
 * bytes read straight into the caller's buffer (no copy: a large file
 * costs read() and the CRC-64, which folds with PCLMULQDQ at several
 * times SHA-256's speed, see crc64.c). A file is opened beneath the
 * layer's directory fd when its entry comes up and closed when its last
 * byte is out, so one file is open at a time. Its size is checked against
 * fstat() before the first byte, its CRC before the last bytes are given
 * out: a caller never receives the whole of a file that differs.
 */
#include "layer/tarsplit.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "layer/alloc.h"
#include "layer/beneath.h"
#include "layer/crc64.h"
#include "layer/error.h"

/* Read and inflate in 64 KiB steps: big enough that the syscalls and
 * zlib calls cost little next to the parsing, small enough to not
 * matter per reader. */
#define TS_CHUNK     (64u * 1024u)
#define TS_LABEL_MAX 256u
#define TS_ERR_MAX   1024u

struct layer_tarsplit {
    int fd;
    size_t max_line;
    char label[TS_LABEL_MAX];

    z_stream z;
    int z_live;        /* inflateInit2 succeeded */
    int eof_in;        /* read() returned 0 */
    int member_done;   /* inflate finished a gzip member */
    int finished;      /* all input consumed, cleanly */
    uint64_t bytes_in; /* bytes read from fd */
    unsigned char *in;
    unsigned char *out;
    size_t out_pos, out_len; /* unconsumed inflated bytes in out */

    char *line;
    size_t line_len, line_cap;
    uint64_t lineno;

    json_t *cur; /* the current line's tree; entry.name may point in */
    unsigned char *payload;
    size_t payload_cap;
    unsigned char *name; /* a decoded name_raw */
    size_t name_cap;

    uint64_t next_pos;
    int final_rc; /* 0 while reading; then LAYER_ITEROVER or the error */
    char final_msg[TS_ERR_MAX];
    layer_tarsplit_entry entry;
};

int layer_tarsplit_open(layer_tarsplit **out, int fd,
                        const layer_tarsplit_opts *opts)
{
    layer_tarsplit *ts = NULL;
    const char *label = opts && opts->label ? opts->label : "tar-split";
    int rc = 0, zrc;

    if (fd < 0) {
        rc =
            layer_error_set(LAYER_EINVALID, "tar-split: bad descriptor %d", fd);
        goto out;
    }
    ts = layer_trycalloc(1, sizeof(*ts));
    if (ts == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    ts->fd = fd;
    ts->max_line =
        opts && opts->max_line ? opts->max_line : LAYER_TARSPLIT_MAX_LINE;
    snprintf(ts->label, sizeof(ts->label), "%s", label);
    ts->in = layer_trymalloc(TS_CHUNK);
    ts->out = layer_trymalloc(TS_CHUNK);
    if (ts->in == NULL || ts->out == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    /* 16 + 15: a gzip wrapper, the largest window. */
    zrc = inflateInit2(&ts->z, 16 + MAX_WBITS);
    if (zrc != Z_OK) {
        rc = layer_error_set(zrc == Z_MEM_ERROR ? LAYER_ENOMEM : LAYER_ERROR,
                             "%s: inflateInit2 failed (%d)", ts->label, zrc);
        goto out;
    }
    ts->z_live = 1;
    *out = ts;
    ts = NULL;
out:
    layer_tarsplit_free(ts);
    return rc;
}

void layer_tarsplit_free(layer_tarsplit *ts)
{
    if (ts == NULL)
        return;
    if (ts->z_live)
        inflateEnd(&ts->z);
    json_decref(ts->cur);
    layer_free(ts->in);
    layer_free(ts->out);
    layer_free(ts->line);
    layer_free(ts->payload);
    layer_free(ts->name);
    layer_free(ts);
}

uint64_t layer_tarsplit_line(const layer_tarsplit *ts)
{
    return ts->lineno;
}

/* Record an error of the line being read (lineno + 1 while it is being
 * assembled, lineno once it is complete). */
static int ts_fail(layer_tarsplit *ts, int code, uint64_t line, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static int ts_fail(layer_tarsplit *ts, int code, uint64_t line, const char *fmt,
                   ...)
{
    char what[TS_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return layer_error_set(code, "%s: line %llu: %s", ts->label,
                           (unsigned long long)line, what);
}

/* Read more input; 0 at end of file, 1 with bytes, negative on error. */
static int read_more(layer_tarsplit *ts)
{
    ssize_t n;

    do {
        n = read(ts->fd, ts->in, TS_CHUNK);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: line %llu: read",
                                     ts->label,
                                     (unsigned long long)ts->lineno + 1);
    if (n == 0) {
        ts->eof_in = 1;
        return 0;
    }
    ts->bytes_in += (uint64_t)n;
    ts->z.next_in = ts->in;
    ts->z.avail_in = (uInt)n;
    return 1;
}

/* Inflate more bytes into out. 1 with bytes, 0 at the clean end of the
 * input, negative on error. */
static int fill(layer_tarsplit *ts)
{
    uint64_t line = ts->lineno + 1;
    int rc, zrc;

    for (;;) {
        if (ts->finished)
            return 0;
        if (ts->z.avail_in == 0 && !ts->eof_in) {
            if ((rc = read_more(ts)) < 0)
                return rc;
            continue;
        }
        if (ts->member_done) {
            /* Between members: only the end or another member may come. */
            if (ts->z.avail_in == 0) {
                ts->finished = 1;
                return 0;
            }
            if (ts->z.next_in[0] != 0x1f)
                return ts_fail(ts, LAYER_EBROKEN, line,
                               "bytes after the end of the gzip data");
            if (inflateReset(&ts->z) != Z_OK)
                return ts_fail(ts, LAYER_ERROR, line, "inflateReset failed");
            ts->member_done = 0;
        }
        if (ts->z.avail_in == 0) /* and eof_in */
            return ts_fail(ts, LAYER_EBROKEN, line,
                           ts->bytes_in == 0 ? "empty input, not gzip data"
                                             : "truncated gzip data");
        ts->z.next_out = ts->out;
        ts->z.avail_out = TS_CHUNK;
        zrc = inflate(&ts->z, Z_NO_FLUSH);
        switch (zrc) {
        case Z_STREAM_END:
            ts->member_done = 1;
            break;
        case Z_OK:
            break;
        case Z_BUF_ERROR:
            /* No progress: fine when the input ran dry (read above). */
            if (ts->z.avail_in > 0)
                return ts_fail(ts, LAYER_EBROKEN, line,
                               "corrupt gzip data (no progress)");
            break;
        case Z_MEM_ERROR:
            return ts_fail(ts, LAYER_ENOMEM, line, "out of memory in inflate");
        default:
            return ts_fail(ts, LAYER_EBROKEN, line, "corrupt gzip data (%s)",
                           ts->z.msg ? ts->z.msg : "unknown zlib error");
        }
        if (ts->z.avail_out < TS_CHUNK) {
            ts->out_pos = 0;
            ts->out_len = TS_CHUNK - ts->z.avail_out;
            return 1;
        }
    }
}

/* Append n bytes to the line, within the cap. */
static int line_append(layer_tarsplit *ts, const unsigned char *p, size_t n)
{
    size_t need = ts->line_len + n + 1;
    void *line = ts->line;

    if (ts->line_len + n > ts->max_line)
        return ts_fail(ts, LAYER_ETOOBIG, ts->lineno + 1,
                       "longer than the cap of %zu bytes", ts->max_line);
    if (layer_trygrow(&line, &ts->line_cap, need, 1, 4096, ts->max_line + 1) <
        0)
        return LAYER_ENOMEM;
    ts->line = line;
    memcpy(ts->line + ts->line_len, p, n);
    ts->line_len += n;
    ts->line[ts->line_len] = '\0';
    return 0;
}

/* The next line into ts->line: 1, 0 at the end, negative on error. A last
 * line without its '\n' counts (Go's decoder accepts it too). */
static int read_line(layer_tarsplit *ts)
{
    int rc;

    ts->line_len = 0;
    for (;;) {
        const unsigned char *start, *nl;
        size_t avail, take;

        if (ts->out_pos == ts->out_len) {
            rc = fill(ts);
            if (rc < 0)
                return rc;
            if (rc == 0) {
                if (ts->line_len == 0)
                    return 0;
                ts->lineno++;
                return 1;
            }
        }
        start = ts->out + ts->out_pos;
        avail = ts->out_len - ts->out_pos;
        nl = memchr(start, '\n', avail);
        take = nl ? (size_t)(nl - start) : avail;
        if ((rc = line_append(ts, start, take)) < 0)
            return rc;
        ts->out_pos += take + (nl ? 1 : 0);
        if (nl) {
            ts->lineno++;
            return 1;
        }
    }
}

/* The value of each base64 character, -1 for the others. */
static signed char b64_table[256];
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void b64_init(void)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    memset(b64_table, -1, sizeof(b64_table));
    for (int i = 0; i < 64; i++)
        b64_table[(unsigned char)a[i]] = (signed char)i;
}

/* Standard base64 with padding (Go's base64.StdEncoding, which
 * encoding/json uses for []byte). out needs len / 4 * 3 bytes. */
static int b64_decode(unsigned char *out, size_t *out_len, const char *in,
                      size_t len)
{
    const unsigned char *u = (const unsigned char *)in;
    size_t o = 0, body;

    if (len % 4 != 0)
        return -1;
    pthread_once(&b64_once, b64_init);
    /* Every quad but the last has no padding: four table lookups. */
    body = len >= 4 ? len - 4 : 0;
    for (size_t i = 0; i < body; i += 4) {
        int a = b64_table[u[i]], b = b64_table[u[i + 1]];
        int c = b64_table[u[i + 2]], d = b64_table[u[i + 3]];

        if ((a | b | c | d) < 0)
            return -1;
        out[o++] = (unsigned char)((a << 2) | (b >> 4));
        out[o++] = (unsigned char)(((b & 15) << 4) | (c >> 2));
        out[o++] = (unsigned char)(((c & 3) << 6) | d);
    }
    for (size_t i = body; i < len; i += 4) {
        int v[4], pad = 0;

        for (int k = 0; k < 4; k++) {
            unsigned char c = u[i + k];

            if (c == '=' && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad) /* data after '=' */
                return -1;
            v[k] = b64_table[c];
            if (v[k] < 0)
                return -1;
        }
        out[o++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
        if (pad < 2)
            out[o++] = (unsigned char)(((v[1] & 15) << 4) | (v[2] >> 2));
        if (pad < 1)
            out[o++] = (unsigned char)(((v[2] & 3) << 6) | v[3]);
    }
    *out_len = o;
    return 0;
}

/* Make sure *buf holds at least need bytes. */
static int reserve(unsigned char **buf, size_t *cap, size_t need)
{
    unsigned char *nb;

    if (need <= *cap)
        return 0;
    nb = layer_tryarray(*buf, need, 1);
    if (nb == NULL)
        return LAYER_ENOMEM;
    *buf = nb;
    *cap = need;
    return 0;
}

/* A name for messages: printable ASCII kept, the rest as \xNN, cut at
 * 200 bytes. */
static void quote_name(char *out, size_t cap, const char *name, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)name[i];

        if (i == 200) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* What is wrong with a name, or NULL. */
static const char *name_problem(const char *n, size_t len)
{
    if (len == 0)
        return "an empty name";
    if (len > LAYER_TARSPLIT_MAX_NAME)
        return "a name longer than 4095 bytes";
    if (memchr(n, '\0', len) != NULL)
        return "a NUL byte in the name";
    if (n[0] == '/')
        return "an absolute name";
    for (size_t i = 0; i < len;) {
        size_t j = i;

        while (j < len && n[j] != '/')
            j++;
        if (j - i == 2 && n[i] == '.' && n[i + 1] == '.')
            return "a \"..\" component in the name";
        i = j + 1;
    }
    return NULL;
}

/* The members of a line the format has, whichever parser read them. */
typedef enum field_kind {
    FIELD_ABSENT = 0,
    FIELD_NULL,
    FIELD_STRING,
    FIELD_INTEGER,
    FIELD_OTHER /* a number that is not an integer, a boolean, ... */
} field_kind;

typedef struct field {
    field_kind kind;
    const char *s; /* FIELD_STRING: NUL-terminated */
    size_t len;
    long long i; /* FIELD_INTEGER */
} field;

typedef struct line_fields {
    field type, name, name_raw, size, payload, position;
} line_fields;

/* An optional non-negative integer member; absent or null gives 0. */
static int get_uint(layer_tarsplit *ts, const field *f, const char *key,
                    int required, uint64_t *out, int *present)
{
    *out = 0;
    if (present)
        *present = 0;
    if (f->kind == FIELD_ABSENT || f->kind == FIELD_NULL) {
        if (required)
            return ts_fail(ts, LAYER_EBROKEN, ts->lineno, "no \"%s\"", key);
        return 0;
    }
    if (f->kind != FIELD_INTEGER)
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno,
                       "\"%s\" is not an integer", key);
    if (f->i < 0)
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno, "negative \"%s\" %lld",
                       key, f->i);
    *out = (uint64_t)f->i;
    if (present)
        *present = 1;
    return 0;
}

/* An optional string member; absent or null gives NULL. */
static int get_string(layer_tarsplit *ts, const field *f, const char *key,
                      const char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (f->kind == FIELD_ABSENT || f->kind == FIELD_NULL)
        return 0;
    if (f->kind != FIELD_STRING)
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno, "\"%s\" is not a string",
                       key);
    *out = f->s;
    *len = f->len;
    return 0;
}

/* Decode the base64 member key into *buf; sets *len. */
static int get_base64(layer_tarsplit *ts, const char *key, const char *s,
                      size_t slen, unsigned char **buf, size_t *cap,
                      size_t *len)
{
    int rc;

    if ((rc = reserve(buf, cap, slen / 4 * 3 + 1)) < 0)
        return rc;
    if (b64_decode(*buf, len, s, slen) < 0)
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno,
                       "\"%s\" is not valid base64", key);
    return 0;
}

static int parse_file(layer_tarsplit *ts, const line_fields *f,
                      layer_tarsplit_entry *e)
{
    const char *name, *raw, *payload;
    size_t name_len, raw_len, payload_len, n;
    const char *problem;
    char quoted[TS_ERR_MAX / 2];
    int rc;

    if ((rc = get_string(ts, &f->name, "name", &name, &name_len)) < 0 ||
        (rc = get_string(ts, &f->name_raw, "name_raw", &raw, &raw_len)) < 0 ||
        (rc = get_string(ts, &f->payload, "payload", &payload, &payload_len)) <
            0 ||
        (rc = get_uint(ts, &f->size, "size", 0, &e->size, NULL)) < 0)
        return rc;
    if (raw != NULL && raw_len > 0) {
        if ((rc = get_base64(ts, "name_raw", raw, raw_len, &ts->name,
                             &ts->name_cap, &n)) < 0)
            return rc;
        ts->name[n] = '\0';
        e->name = (const char *)ts->name;
        e->name_len = n;
        e->name_raw = 1;
    } else {
        e->name = name ? name : "";
        e->name_len = name_len;
    }
    if ((problem = name_problem(e->name, e->name_len)) != NULL) {
        quote_name(quoted, sizeof(quoted), e->name, e->name_len);
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno, "%s: \"%s\"", problem,
                       quoted);
    }
    if (payload != NULL) {
        if ((rc = get_base64(ts, "payload", payload, payload_len, &ts->payload,
                             &ts->payload_cap, &n)) < 0)
            return rc;
        if (n != LAYER_CRC64_SIZE) {
            quote_name(quoted, sizeof(quoted), e->name, e->name_len);
            return ts_fail(ts, LAYER_EBROKEN, ts->lineno,
                           "the CRC of \"%s\" has %zu bytes, not 8", quoted, n);
        }
        e->has_crc = 1;
        e->crc = layer_crc64_get(ts->payload);
    } else if (e->size > 0) {
        quote_name(quoted, sizeof(quoted), e->name, e->name_len);
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno,
                       "\"%s\" has %llu bytes but no CRC", quoted,
                       (unsigned long long)e->size);
    }
    return 0;
}

static int parse_segment(layer_tarsplit *ts, const line_fields *f,
                         layer_tarsplit_entry *e)
{
    const char *s;
    size_t slen, n = 0;
    uint64_t size;
    int rc, has_size;

    if ((rc = get_string(ts, &f->name, "name", &s, &slen)) < 0)
        return rc;
    if (slen > 0)
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno, "a segment with a name");
    if ((rc = get_string(ts, &f->name_raw, "name_raw", &s, &slen)) < 0)
        return rc;
    if (slen > 0)
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno, "a segment with a name");
    if ((rc = get_uint(ts, &f->size, "size", 0, &size, &has_size)) < 0)
        return rc;
    if (size > 0)
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno, "a segment with a size");
    if ((rc = get_string(ts, &f->payload, "payload", &s, &slen)) < 0)
        return rc;
    if (s != NULL && slen > 0) {
        if ((rc = get_base64(ts, "payload", s, slen, &ts->payload,
                             &ts->payload_cap, &n)) < 0)
            return rc;
        e->data = ts->payload;
    }
    e->len = n;
    return 0;
}

/* The member of f named by the key k (klen bytes), and its bit; NULL for
 * a key the format does not have. */
static field *field_named(line_fields *f, const char *k, size_t klen,
                          unsigned *bit)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {
        {"type", offsetof(line_fields, type)},
        {"name", offsetof(line_fields, name)},
        {"name_raw", offsetof(line_fields, name_raw)},
        {"size", offsetof(line_fields, size)},
        {"payload", offsetof(line_fields, payload)},
        {"position", offsetof(line_fields, position)},
    };

    for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strlen(keys[i].key) == klen && memcmp(keys[i].key, k, klen) == 0) {
            *bit = 1u << i;
            return (field *)((char *)f + keys[i].off);
        }
    }
    return NULL;
}

/* The fast path: the lines Go's encoder writes, read without jansson.
 * Accepted: one flat object, no white space, each key of the format at
 * most once, values that are strings of printable ASCII without escapes
 * (a payload: any bytes without escapes, its base64 decoding refuses
 * what is not base64), integers of at most 18 digits without sign or
 * leading zero, or null.
 * Those lines mean the same to jansson, which reads everything else
 * (names with escapes or UTF-8, unknown keys, nested values, negative
 * numbers, ...) and reports the errors. Returns 1 with f filled and the
 * strings NUL-terminated in place, or 0 with the line untouched. */
static int fast_fields(line_fields *f, char *line, size_t len)
{
    char *p = line, *end = line + len, *ends[6];
    unsigned seen = 0, nends = 0;

    memset(f, 0, sizeof(*f));
    if (p == end || *p++ != '{')
        return 0;
    for (;;) {
        const char *k;
        unsigned bit;
        field *fl;

        if (p == end || *p++ != '"')
            return 0;
        for (k = p; p < end && *p != '"'; p++)
            if (*p == '\\' || (unsigned char)*p < 0x20 ||
                (unsigned char)*p > 0x7e)
                return 0;
        if (p == end ||
            (fl = field_named(f, k, (size_t)(p - k), &bit)) == NULL ||
            (seen & bit))
            return 0;
        seen |= bit;
        if (++p == end || *p++ != ':' || p == end)
            return 0;
        if (*p == '"' && fl == &f->payload) {
            /* Most of a line: found with memchr. Its characters are
             * checked by the base64 decoder, which takes nothing but
             * the alphabet; an escape would mean otherwise to jansson. */
            const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));

            p++;
            if (q == NULL || memchr(p, '\\', (size_t)(q - p)) != NULL)
                return 0;
            fl->s = p;
            p = (char *)q;
            fl->kind = FIELD_STRING;
            fl->len = (size_t)(p - fl->s);
            ends[nends++] = p++;
        } else if (*p == '"') {
            fl->s = ++p;
            for (; p < end && *p != '"'; p++)
                if (*p == '\\' || (unsigned char)*p < 0x20 ||
                    (unsigned char)*p > 0x7e)
                    return 0;
            if (p == end)
                return 0;
            fl->kind = FIELD_STRING;
            fl->len = (size_t)(p - fl->s);
            ends[nends++] = p++;
        } else if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
            fl->kind = FIELD_NULL;
            p += 4;
        } else if (*p >= '0' && *p <= '9') {
            const char *d = p;

            if (*p == '0' && end - p > 1 && p[1] >= '0' && p[1] <= '9')
                return 0;
            for (; p < end && *p >= '0' && *p <= '9'; p++) {
                if (p - d == 18) /* more could overflow: jansson's */
                    return 0;
                fl->i = fl->i * 10 + (*p - '0');
            }
            if (p == end || *p == '.' || *p == 'e' || *p == 'E')
                return 0;
            fl->kind = FIELD_INTEGER;
        } else {
            return 0;
        }
        if (p == end)
            return 0;
        if (*p == '}')
            break;
        if (*p++ != ',')
            return 0;
    }
    if (p + 1 != end)
        return 0;
    for (unsigned i = 0; i < nends; i++)
        *ends[i] = '\0';
    return 1;
}

/* A member of a jansson object as a field. */
static void field_of(field *f, const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    memset(f, 0, sizeof(*f));
    if (v == NULL) {
        f->kind = FIELD_ABSENT;
    } else if (json_is_null(v)) {
        f->kind = FIELD_NULL;
    } else if (json_is_string(v)) {
        f->kind = FIELD_STRING;
        f->s = json_string_value(v);
        f->len = json_string_length(v);
    } else if (json_is_integer(v)) {
        f->kind = FIELD_INTEGER;
        f->i = (long long)json_integer_value(v);
    } else {
        f->kind = FIELD_OTHER;
    }
}

/* The line's members: the fast path, else jansson (whose tree the
 * strings then point into, kept in ts->cur until the next line). */
static int line_fields_of(line_fields *f, layer_tarsplit *ts)
{
    json_error_t jerr;

    json_decref(ts->cur);
    ts->cur = NULL;
    if (fast_fields(f, ts->line, ts->line_len))
        return 0;
    ts->cur = json_loadb(ts->line, ts->line_len, JSON_REJECT_DUPLICATES, &jerr);
    if (ts->cur == NULL)
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno,
                       "not JSON: %s (column %d)", jerr.text, jerr.column);
    if (!json_is_object(ts->cur))
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno, "not a JSON object");
    field_of(&f->type, ts->cur, "type");
    field_of(&f->name, ts->cur, "name");
    field_of(&f->name_raw, ts->cur, "name_raw");
    field_of(&f->size, ts->cur, "size");
    field_of(&f->payload, ts->cur, "payload");
    field_of(&f->position, ts->cur, "position");
    return 0;
}

static int parse_line(layer_tarsplit *ts)
{
    layer_tarsplit_entry *e = &ts->entry;
    line_fields f;
    uint64_t type, pos;
    int rc;

    memset(e, 0, sizeof(*e));
    if (ts->line_len == 0)
        return ts_fail(ts, LAYER_EBROKEN, ts->lineno, "an empty line");
    if ((rc = line_fields_of(&f, ts)) < 0)
        return rc;
    if ((rc = get_uint(ts, &f.type, "type", 1, &type, NULL)) < 0 ||
        (rc = get_uint(ts, &f.position, "position", 1, &pos, NULL)) < 0)
        return rc;
    if (pos != ts->next_pos)
        return ts_fail(
            ts, LAYER_EBROKEN, ts->lineno, "position %llu where %llu was due",
            (unsigned long long)pos, (unsigned long long)ts->next_pos);
    e->position = pos;
    if (type == LAYER_TARSPLIT_FILE) {
        e->type = LAYER_TARSPLIT_FILE;
        rc = parse_file(ts, &f, e);
    } else if (type == LAYER_TARSPLIT_SEGMENT) {
        e->type = LAYER_TARSPLIT_SEGMENT;
        rc = parse_segment(ts, &f, e);
    } else {
        rc = ts_fail(ts, LAYER_EBROKEN, ts->lineno, "unknown entry type %llu",
                     (unsigned long long)type);
    }
    if (rc < 0)
        return rc;
    ts->next_pos++;
    return 0;
}

int layer_tarsplit_next(const layer_tarsplit_entry **out, layer_tarsplit *ts)
{
    int rc;

    if (ts->final_rc != 0) {
        if (ts->final_rc == LAYER_ITEROVER)
            return LAYER_ITEROVER;
        return layer_error_set(ts->final_rc, "%s", ts->final_msg);
    }
    rc = read_line(ts);
    if (rc == 0) {
        if (ts->next_pos == 0) {
            rc = ts_fail(ts, LAYER_EBROKEN, 1, "no entries");
        } else {
            ts->final_rc = LAYER_ITEROVER;
            return LAYER_ITEROVER;
        }
    } else if (rc > 0) {
        rc = parse_line(ts);
    }
    if (rc < 0) {
        ts->final_rc = rc;
        snprintf(ts->final_msg, sizeof(ts->final_msg), "%s",
                 layer_error_last());
        return rc;
    }
    *out = &ts->entry;
    return 0;
}

/* ---- rebuilding the original tar ------------------------------------ */

typedef enum asm_phase {
    ASM_NEXT,    /* between entries */
    ASM_SEGMENT, /* giving out the current segment's bytes */
    ASM_FILE,    /* giving out the current file's bytes */
    ASM_END      /* everything given out, or failed (final_rc) */
} asm_phase;

struct layer_tarsplit_asm {
    layer_tarsplit *ts;
    int layer_fd; /* borrowed */
    asm_phase phase;
    bool noatime; /* try O_NOATIME (dropped after an EPERM) */

    const unsigned char *seg; /* the segment, borrowed from ts */
    size_t seg_len, seg_off;

    int file_fd;                            /* -1 when none is open */
    char name[LAYER_TARSPLIT_MAX_NAME + 1]; /* the file, as opened */
    char quoted[TS_ERR_MAX / 2];            /* the same, for messages */
    uint64_t file_size, file_left, crc, crc_want;

    layer_tarsplit_asm_stats stats;
    int final_rc; /* with ASM_END: LAYER_ITEROVER or the error */
    layer_error_state final_err;
};

int layer_tarsplit_asm_open(layer_tarsplit_asm **out, int ts_fd, int layer_fd,
                            const layer_tarsplit_opts *opts)
{
    layer_tarsplit_asm *a = NULL;
    int rc = 0;

    if (layer_fd < 0) {
        rc = layer_error_set(LAYER_EINVALID,
                             "tar-split: bad layer descriptor %d", layer_fd);
        goto out;
    }
    a = layer_trycalloc(1, sizeof(*a));
    if (a == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    a->file_fd = -1;
    a->layer_fd = layer_fd;
    a->noatime = true;
    if ((rc = layer_tarsplit_open(&a->ts, ts_fd, opts)) < 0)
        goto out;
    *out = a;
    a = NULL;
out:
    layer_tarsplit_asm_free(a);
    return rc;
}

void layer_tarsplit_asm_free(layer_tarsplit_asm *a)
{
    if (a == NULL)
        return;
    if (a->file_fd >= 0)
        close(a->file_fd);
    layer_tarsplit_free(a->ts);
    layer_free(a);
}

void layer_tarsplit_asm_stats_get(layer_tarsplit_asm_stats *out,
                                  const layer_tarsplit_asm *a)
{
    *out = a->stats;
}

/* The name as a path beneath the layer: "." and empty components
 * dropped (the reader refused "..", a leading '/' and NUL). 0, or -1
 * when nothing is left. */
static int clean_name(char *out, const char *name, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len;) {
        size_t j = i;

        while (j < len && name[j] != '/')
            j++;
        if (j > i && !(j - i == 1 && name[i] == '.')) {
            if (o > 0)
                out[o++] = '/';
            memcpy(out + o, name + i, j - i);
            o += j - i;
        }
        i = j + 1;
    }
    out[o] = '\0';
    return o > 0 ? 0 : -1;
}

/* Open the current file entry's file and check what it is. */
static int asm_open_file(layer_tarsplit_asm *a, const layer_tarsplit_entry *e)
{
    struct stat st;
    int fd = -1, rc;

    if (clean_name(a->name, e->name, e->name_len) < 0) {
        quote_name(a->quoted, sizeof(a->quoted), e->name, e->name_len);
        return ts_fail(a->ts, LAYER_EBROKEN, a->ts->lineno,
                       "\"%s\" has content but names no file", a->quoted);
    }
    /* messages name the file as it is in the layer directory */
    quote_name(a->quoted, sizeof(a->quoted), a->name, strlen(a->name));
    for (;;) {
        int flags = O_RDONLY | O_NONBLOCK | (a->noatime ? O_NOATIME : 0);

        rc = layer_beneath_open(&fd, a->layer_fd, a->name, flags, 0);
        /* O_NOATIME needs the file's owner or CAP_FOWNER */
        if (rc == LAYER_ERROR && layer_error_errno() == EPERM && a->noatime) {
            a->noatime = false;
            continue;
        }
        break;
    }
    /* a component longer than a file name can be is no file either */
    if (rc == LAYER_ENOTFOUND ||
        (rc == LAYER_ERROR && layer_error_errno() == ENAMETOOLONG))
        return layer_error_set(LAYER_ECHANGED,
                               "%s: missing from the layer directory (the "
                               "original tar has %llu bytes of it)",
                               a->quoted, (unsigned long long)e->size);
    if (rc == LAYER_EINVALID)
        return layer_error_set(LAYER_ECHANGED,
                               "%s: a symlink in the layer directory, not the "
                               "file of the original tar",
                               a->quoted);
    if (rc < 0)
        return rc;
    if (fstat(fd, &st) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: fstat", a->quoted);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = layer_error_set(LAYER_ECHANGED,
                             "%s: not a regular file in the layer directory, "
                             "as it was in the original tar",
                             a->quoted);
        goto out;
    }
    if ((uint64_t)st.st_size != e->size) {
        rc = layer_error_set(LAYER_ECHANGED,
                             "%s: %llu bytes in the layer directory, %llu in "
                             "the original tar",
                             a->quoted, (unsigned long long)st.st_size,
                             (unsigned long long)e->size);
        goto out;
    }
    a->file_fd = fd;
    fd = -1;
    a->file_size = a->file_left = e->size;
    a->crc = 0;
    a->crc_want = e->crc;
    a->stats.files++;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Move to the next entry that has bytes to give: 0 (phase SEGMENT or
 * FILE), LAYER_ITEROVER, or an error. */
static int asm_next(layer_tarsplit_asm *a)
{
    const layer_tarsplit_entry *e;
    int rc;

    for (;;) {
        if ((rc = layer_tarsplit_next(&e, a->ts)) < 0)
            return rc;
        if (e->type == LAYER_TARSPLIT_SEGMENT) {
            if (e->len == 0)
                continue;
            a->seg = e->data;
            a->seg_len = e->len;
            a->seg_off = 0;
            a->phase = ASM_SEGMENT;
            return 0;
        }
        a->stats.entries++;
        if (e->size == 0)
            continue;
        if ((rc = asm_open_file(a, e)) < 0)
            return rc;
        a->phase = ASM_FILE;
        return 0;
    }
}

/* Up to cap bytes of the open file; its CRC is checked before the last
 * of them are given out. */
static int asm_read_file(size_t *out_n, layer_tarsplit_asm *a,
                         unsigned char *buf, size_t cap)
{
    size_t want = cap;
    ssize_t n;

    if (want > a->file_left)
        want = (size_t)a->file_left;
    do {
        n = read(a->file_fd, buf, want);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: read", a->quoted);
    if (n == 0)
        return layer_error_set(
            LAYER_ECHANGED,
            "%s: ended after %llu of its %llu bytes (it shrank while read)",
            a->quoted, (unsigned long long)(a->file_size - a->file_left),
            (unsigned long long)a->file_size);
    a->crc = layer_crc64_update(a->crc, buf, (size_t)n);
    a->file_left -= (uint64_t)n;
    if (a->file_left == 0) {
        if (a->crc != a->crc_want)
            return layer_error_set(LAYER_ECHANGED,
                                   "%s: other content than in the original "
                                   "tar (CRC-64 %016llx, recorded %016llx)",
                                   a->quoted, (unsigned long long)a->crc,
                                   (unsigned long long)a->crc_want);
        close(a->file_fd);
        a->file_fd = -1;
        a->phase = ASM_NEXT;
    }
    *out_n = (size_t)n;
    return 0;
}

int layer_tarsplit_asm_read(size_t *out_n, layer_tarsplit_asm *a, void *buf,
                            size_t cap)
{
    size_t n = 0;
    int rc = 0;

    if (cap == 0)
        return layer_error_set(LAYER_EINVALID, "tar-split: read of 0 bytes");
    if (a->phase == ASM_END) {
        if (a->final_rc != LAYER_ITEROVER)
            layer_error_restore(&a->final_err);
        return a->final_rc;
    }
    if (a->phase == ASM_NEXT)
        rc = asm_next(a);
    if (rc == 0 && a->phase == ASM_SEGMENT) {
        n = a->seg_len - a->seg_off;
        if (n > cap)
            n = cap;
        memcpy(buf, a->seg + a->seg_off, n);
        a->seg_off += n;
        if (a->seg_off == a->seg_len)
            a->phase = ASM_NEXT;
    } else if (rc == 0) {
        rc = asm_read_file(&n, a, buf, cap);
    }
    if (rc < 0) {
        if (a->file_fd >= 0)
            close(a->file_fd);
        a->file_fd = -1;
        a->phase = ASM_END;
        a->final_rc = rc;
        if (rc != LAYER_ITEROVER)
            layer_error_save(&a->final_err);
        return rc;
    }
    a->stats.bytes += n;
    *out_n = n;
    return 0;
}
