/*
 * The entry object: one layer_entry as JSON. Shared by the CLI and every
 * endpoint that shows entries, so all of them print the same bytes.
 *
 * api_entry_json_write() is the only serialiser: it writes the compact
 * JSON straight into a caller buffer, with no allocation and no jansson
 * object, because building and dumping a jansson object cost more than
 * reading the entry from disk (about 60% of `layerd entries`). Its output
 * is byte-identical to what json_dumps(JSON_COMPACT) made of the object
 * this module used to build: the same key order, integers in decimal,
 * strings escaped as jansson escapes them (\" \\ \b \f \n \r \t, other
 * bytes below 0x20 as \u00XX with upper-case hex, '/' and DEL raw, valid
 * UTF-8 raw). api_entry_json() parses that output back into an object for
 * the callers that want one (/entries/{path}), so the field order and
 * rules live in one place.
 */
#include "api/entry_json.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "layer/alloc.h"
#include "layer/error.h"

static const char b64_tbl[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Length of the valid UTF-8 sequence at s, or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        min = 0x80;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        min = 0x800;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        min = 0x10000;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Is s[0, len) valid UTF-8 without NUL (a JSON string as it stands)? */
static bool utf8_clean(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < len;) {
        size_t n = u[i] != 0 ? utf8_seq(u + i, len - i) : 0;

        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Base64 of len bytes into dst (room for (len + 2) / 3 * 4 bytes). */
static size_t b64_encode(char *dst, const unsigned char *data, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16;

        if (i + 1 < len)
            v |= (unsigned)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        dst[o++] = b64_tbl[(v >> 18) & 63];
        dst[o++] = b64_tbl[(v >> 12) & 63];
        dst[o++] = i + 1 < len ? b64_tbl[(v >> 6) & 63] : '=';
        dst[o++] = i + 2 < len ? b64_tbl[v & 63] : '=';
    }
    return o;
}

json_t *api_json_string_bytes(const char *s, size_t len, int *out_lossy)
{
    const unsigned char *u = (const unsigned char *)s;
    char *buf;
    size_t o = 0;
    json_t *j;
    int lossy = !utf8_clean(s, len);

    if (out_lossy)
        *out_lossy = lossy;
    if (!lossy)
        return json_stringn(s, len);
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    buf = layer_trymalloc(len * 3 + 1);
    if (buf == NULL)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t n = u[i] != 0 ? utf8_seq(u + i, len - i) : 0;

        if (n == 0) {
            memcpy(buf + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
            o += 3;
            i++;
        } else {
            memcpy(buf + o, s + i, n);
            o += n;
            i += n;
        }
    }
    j = json_stringn(buf, o);
    layer_free(buf);
    return j;
}

json_t *api_json_base64(const unsigned char *data, size_t len)
{
    char *buf;
    size_t o;
    json_t *j;

    if (len > (SIZE_MAX - 3) / 4 * 3)
        return NULL;
    buf = layer_trymalloc((len + 2) / 3 * 4 + 1);
    if (buf == NULL)
        return NULL;
    o = b64_encode(buf, data, len);
    j = json_stringn(buf, o);
    layer_free(buf);
    return j;
}

/* Length of api_time_format()'s output: "YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ". */
#define TIME_LEN 30

static const char digit_pairs[] = "00010203040506070809"
                                  "10111213141516171819"
                                  "20212223242526272829"
                                  "30313233343536373839"
                                  "40414243444546474849"
                                  "50515253545556575859"
                                  "60616263646566676869"
                                  "70717273747576777879"
                                  "80818283848586878889"
                                  "90919293949596979899";

/* Write n decimal digits of v (< 10^n), zero-padded, two at a time: the
 * times are four per entry and this was their main cost. */
static char *digits(char *p, unsigned long v, int n)
{
    int i = n;

    while (i >= 2) {
        i -= 2;
        memcpy(p + i, digit_pairs + (v % 100) * 2, 2);
        v /= 100;
    }
    if (i == 1)
        p[0] = (char)('0' + v % 10);
    return p + n;
}

int api_time_format(char out[40], const layer_time *t)
{
    /* Civil date from days since 1970-01-01 (Howard Hinnant's
     * days_from_civil, inverted): pure arithmetic, no locale and no lock,
     * which matters at four times per entry. */
    int64_t days = t->sec >= 0 ? t->sec / 86400 : -((-t->sec + 86399) / 86400);
    int64_t secs = t->sec - days * 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    char *p = out;

    if (y < 0 || y > 9999)
        return -1;
    p = digits(p, (unsigned long)y, 4);
    *p++ = '-';
    p = digits(p, (unsigned long)m, 2);
    *p++ = '-';
    p = digits(p, (unsigned long)d, 2);
    *p++ = 'T';
    p = digits(p, (unsigned long)(secs / 3600), 2);
    *p++ = ':';
    p = digits(p, (unsigned long)(secs / 60 % 60), 2);
    *p++ = ':';
    p = digits(p, (unsigned long)(secs % 60), 2);
    *p++ = '.';
    p = digits(p, t->nsec % 1000000000u, 9);
    *p++ = 'Z';
    *p = '\0';
    return 0;
}

/* ---- the writer ---------------------------------------------------------
 *
 * Like snprintf: bytes go to buf while they fit, len counts all of them,
 * so a caller whose buffer was too small learns the size it needs. */

typedef struct writer {
    char *buf;
    size_t cap;
    size_t len;    /* bytes the whole output needs so far */
    bool overflow; /* len would have wrapped */
} writer;

static void put(writer *w, const void *s, size_t n)
{
    if (n > SIZE_MAX - w->len) {
        w->overflow = true;
        return;
    }
    if (n != 0 && n <= w->cap && w->len <= w->cap - n)
        memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* A string literal, its length known at compile time. */
#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

static void put_str(writer *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_u64(writer *w, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(w, tmp + i, sizeof(tmp) - i);
}

/* A json_int_t as jansson prints it (signed: a uint64 above INT64_MAX
 * went in as a negative json_integer). */
static void put_i64(writer *w, uint64_t bits)
{
    if (bits > (uint64_t)INT64_MAX) {
        put(w, "-", 1);
        bits = (uint64_t)0 - bits;
    }
    put_u64(w, bits);
}

/* The body of a JSON string: invalid UTF-8 bytes and NUL become U+FFFD.
 * Returns true when bytes were replaced. */
static bool put_text(writer *w, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0; /* start of the bytes not yet written */
    bool lossy = false;

    for (size_t i = 0; i < len;) {
        unsigned c = u[i];
        char esc[6];
        size_t n;

        if (c >= 0x20 && c != '"' && c != '\\') {
            if (c < 0x80) {
                i++;
                continue;
            }
            if ((n = utf8_seq(u + i, len - i)) != 0) {
                i += n;
                continue;
            }
        }
        put(w, s + run, i - run);
        if (c >= 0x80 || c == 0) {
            put(w, "\xEF\xBF\xBD", 3); /* U+FFFD */
            lossy = true;
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(w, esc, 2);
        } else if (c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
                   c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\b'   ? 'b'
                     : c == '\f' ? 'f'
                     : c == '\n' ? 'n'
                     : c == '\r' ? 'r'
                                 : 't';
            put(w, esc, 2);
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            put(w, esc, 6);
        }
        i++;
        run = i;
    }
    put(w, s + run, len - run);
    return lossy;
}

/* The body of a base64 string, through a small stack buffer. */
static void put_b64(writer *w, const unsigned char *data, size_t len)
{
    char chunk[256]; /* 4/3 of 192 input bytes */

    for (size_t i = 0; i < len; i += 192) {
        size_t n = len - i < 192 ? len - i : 192;

        put(w, chunk, b64_encode(chunk, data + i, n));
    }
}

/* A time as a string field ("mtime" and the like); out of range:
 * omitted. `key` is the literal ,"name":" . */
#define PUT_TIME(w, key, t)                                                    \
    do {                                                                       \
        char tbuf_[40];                                                        \
        if (api_time_format(tbuf_, (t)) == 0) {                                \
            PUT_LIT((w), key);                                                 \
            put((w), tbuf_, TIME_LEN);                                         \
            PUT_LIT((w), "\"");                                                \
        }                                                                      \
    } while (0)

/* Raw bytes as a string field, and when they are not UTF-8 also base64
 * as a second field. `key` and `b64key` are the literals ,"name":" . */
#define PUT_BYTES(w, key, b64key, s, len)                                      \
    do {                                                                       \
        PUT_LIT((w), key);                                                     \
        if (put_text((w), (s), (len))) {                                       \
            PUT_LIT((w), "\"" b64key);                                         \
            put_b64((w), (const unsigned char *)(s), (len));                   \
        }                                                                      \
        PUT_LIT((w), "\"");                                                    \
    } while (0)

/* "xattrs":{name: base64 value}; a name that is not UTF-8 is listed as
 * "b64:" + base64(name). */
static void put_xattrs(writer *w, const layer_entry *e)
{
    PUT_LIT(w, ",\"xattrs\":{");
    for (size_t i = 0; i < e->xattr_count; i++) {
        const layer_xattr *a = &e->xattrs[i];
        size_t nl = strlen(a->name);

        put(w, i == 0 ? "\"" : ",\"", i == 0 ? 1 : 2);
        if (utf8_clean(a->name, nl)) {
            put_text(w, a->name, nl);
        } else {
            put(w, "b64:", 4);
            put_b64(w, (const unsigned char *)a->name, nl);
        }
        put(w, "\":\"", 3);
        put_b64(w, a->value, a->len);
        put(w, "\"", 1);
    }
    put(w, "}", 1);
}

int api_entry_json_write(size_t *out_len, char *buf, size_t cap,
                         const layer_entry *e)
{
    writer w = {buf, cap, 0, false};

    PUT_BYTES(&w, "{\"path\":\"", ",\"path_b64\":\"", e->path, e->path_len);
    PUT_LIT(&w, ",\"change\":\"");
    put_str(&w, layer_change_name(e->change));
    if (e->change == LAYER_CHANGE_DELETE) {
        PUT_LIT(&w, "\"}");
        goto out;
    }
    PUT_LIT(&w, "\",\"type\":\"");
    put_str(&w, layer_type_name(e->type));
    PUT_LIT(&w, "\",\"mode\":");
    put_u64(&w, e->mode);
    PUT_LIT(&w, ",\"uid\":");
    put_u64(&w, e->uid);
    PUT_LIT(&w, ",\"gid\":");
    put_u64(&w, e->gid);
    if (e->type == LAYER_TYPE_FILE) {
        PUT_LIT(&w, ",\"size\":");
        put_i64(&w, e->size);
    }
    PUT_TIME(&w, ",\"mtime\":\"", &e->mtime);
    PUT_TIME(&w, ",\"atime\":\"", &e->atime);
    PUT_TIME(&w, ",\"ctime\":\"", &e->ctime);
    if (e->has_btime)
        PUT_TIME(&w, ",\"btime\":\"", &e->btime);
    PUT_LIT(&w, ",\"nlink\":");
    put_i64(&w, e->nlink);
    PUT_LIT(&w, ",\"file_id\":\"");
    put_u64(&w, e->file_id.dev);
    PUT_LIT(&w, ":");
    put_u64(&w, e->file_id.ino);
    PUT_LIT(&w, "\"");
    if (e->link_target)
        PUT_BYTES(&w, ",\"link_target\":\"", ",\"link_target_b64\":\"",
                  e->link_target, e->link_target_len);
    if (e->type == LAYER_TYPE_CHAR || e->type == LAYER_TYPE_BLOCK) {
        PUT_LIT(&w, ",\"rdev\":\"");
        put_u64(&w, e->rdev_major);
        PUT_LIT(&w, ":");
        put_u64(&w, e->rdev_minor);
        PUT_LIT(&w, "\"");
    }
    if (e->xattr_count > 0)
        put_xattrs(&w, e);
    if (e->type == LAYER_TYPE_DIR && e->opaque)
        PUT_LIT(&w, ",\"opaque\":true");
    PUT_LIT(&w, "}");
out:
    if (w.overflow)
        return layer_error_set(LAYER_ETOOBIG,
                               "an entry's JSON does not fit in memory");
    *out_len = w.len;
    return 0;
}

json_t *api_entry_json(const layer_entry *e)
{
    char stack[4096];
    char *buf = stack;
    size_t need = 0, again = 0;
    json_t *j = NULL;

    if (api_entry_json_write(&need, stack, sizeof(stack), e) < 0)
        goto out;
    if (need > sizeof(stack)) {
        if (need > API_ENTRY_JSON_MAX ||
            (buf = layer_trymalloc(need)) == NULL ||
            api_entry_json_write(&again, buf, need, e) < 0 || again != need)
            goto out;
    }
    j = json_loadb(buf, need, 0, NULL);
out:
    if (buf != stack)
        layer_free(buf);
    return j;
}
