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
 * UTF-8 raw). api_entry_json_append() is how callers use it: it writes
 * into the spare room of a capped buffer and, when the entry did not fit,
 * grows the buffer to the size the writer reported and writes once more.
 * api_entry_json() parses that output back into an object for the callers
 * that want one (/entries/{path}), so the field order and rules live in
 * one place. UTF-8, base64 and the RFC 3339 times come from layer/text.h.
 */
#include "api/entry_json.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "layer/error.h"
#include "layer/text.h"

/* Is s[0, len) valid UTF-8 without NUL (a JSON string as it stands)? */
static bool utf8_clean(const char *s, size_t len)
{
    return layer_text_utf8_valid(s, len) && memchr(s, '\0', len) == NULL;
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
            if ((n = layer_text_utf8_len(u + i, len - i)) != 0) {
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

        put(w, chunk, layer_text_base64(chunk, data + i, n));
    }
}

/* A time as a string field ("mtime" and the like), RFC 3339 UTC with
 * nanoseconds; out of range: omitted. `key` is the literal ,"name":" . */
#define PUT_TIME(w, key, t)                                                    \
    do {                                                                       \
        char tbuf_[LAYER_TEXT_RFC3339_MAX];                                    \
        int tlen_ = layer_text_rfc3339(tbuf_, (t)->sec, (t)->nsec, 9);         \
        if (tlen_ >= 0) {                                                      \
            PUT_LIT((w), key);                                                 \
            put((w), tbuf_, (size_t)tlen_);                                    \
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

/* First room for an entry's JSON: most entries fit, so each is written
 * once; a larger one is written again into the room it said it needs. */
#define ENTRY_JSON_FIRST 4096

int api_entry_json_append(layer_text_buf *buf, const layer_entry *e)
{
    size_t first = buf->max > buf->len ? buf->max - buf->len : 0;
    size_t room, need = 0, again = 0;
    int rc;

    if (first > ENTRY_JSON_FIRST)
        first = ENTRY_JSON_FIRST;
    if ((rc = layer_text_buf_reserve(buf, first)) < 0)
        return rc;
    room = buf->alloc - buf->len - 1; /* the buffer keeps a NUL */
    rc = api_entry_json_write(&need, buf->p + buf->len, room, e);
    if (rc == 0 && need > room) {
        if (need > buf->max - buf->len)
            rc = layer_error_set(LAYER_ETOOBIG,
                                 "entry %s: its JSON (%zu bytes) does not fit "
                                 "in %s (%zu bytes)",
                                 e->path, need, buf->what, buf->max);
        else if ((rc = layer_text_buf_reserve(buf, need)) == 0 &&
                 (rc = api_entry_json_write(&again, buf->p + buf->len, need,
                                            e)) == 0 &&
                 again != need)
            rc = layer_error_set(LAYER_ERROR, "entry %s: its JSON changed size",
                                 e->path);
    }
    if (rc == 0)
        buf->len += need;
    /* On failure the bytes written past len are dropped. */
    buf->p[buf->len] = '\0';
    return rc;
}

json_t *api_entry_json(const layer_entry *e)
{
    layer_text_buf buf = LAYER_TEXT_BUF_INIT(API_ENTRY_JSON_MAX, "an entry");
    json_t *j = NULL;

    if (api_entry_json_append(&buf, e) == 0)
        j = json_loadb(buf.p, buf.len, 0, NULL);
    layer_text_buf_dispose(&buf);
    return j;
}
