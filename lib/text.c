/*
 * Text helpers shared by lib, api and server (text.h): UTF-8 validation,
 * hex, base64, RFC 3339 times and the capped growable buffer. Each
 * existed in several hand-written copies before; these are the ones the
 * hot paths (entry JSON, span lines) were tuned with.
 *
 * Invariants: nothing reads past the length it is given; nothing depends
 * on the C locale; the buffer never holds more than its cap and checks
 * every size before adding to it.
 */
#include "layer/text.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "layer/alloc.h"
#include "layer/error.h"

/* ---- UTF-8 ------------------------------------------------------------ */

/*
 * RFC 3629 section 4: the second byte's range depends on the first
 * (E0: A0-BF excludes overlongs, ED: 80-9F excludes surrogates, F0: 90-BF
 * excludes overlongs, F4: 80-8F stops at U+10FFFF); later bytes are
 * 80-BF. C0, C1 and F5-FF never start a sequence.
 */
size_t layer_text_utf8_len(const void *s, size_t len)
{
    const unsigned char *u = s;
    unsigned char c = u[0], lo = 0x80, hi = 0xbf;
    size_t need;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (len <= need || u[1] < lo || u[1] > hi)
        return 0;
    for (size_t i = 2; i <= need; i++) {
        if (u[i] < 0x80 || u[i] > 0xbf)
            return 0;
    }
    return need + 1;
}

bool layer_text_utf8_valid(const void *s, size_t len)
{
    const unsigned char *u = s;

    for (size_t i = 0; i < len;) {
        size_t n;

        if (u[i] < 0x80) {
            i++;
            continue;
        }
        if ((n = layer_text_utf8_len(u + i, len - i)) == 0)
            return false;
        i += n;
    }
    return true;
}

/* ---- hex -------------------------------------------------------------- */

int layer_text_hex_value(int c, unsigned flags)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F' && !(flags & LAYER_TEXT_HEX_LOWER))
        return c - 'A' + 10;
    return -1;
}

void layer_text_hex_encode(char *out, const void *data, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0xf];
    }
    out[2 * n] = '\0';
}

bool layer_text_hex_decode(void *out, const char *hex, size_t n, unsigned flags)
{
    unsigned char *o = out;

    for (size_t i = 0; i < n; i++) {
        int hi = layer_text_hex_value((unsigned char)hex[2 * i], flags);
        int lo;

        if (hi < 0)
            return false;
        lo = layer_text_hex_value((unsigned char)hex[2 * i + 1], flags);
        if (lo < 0)
            return false;
        o[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* ---- base64 ----------------------------------------------------------- */

size_t layer_text_base64(char *out, const void *data, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *d = data;
    size_t o = 0;

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16;

        if (i + 1 < n)
            v |= (unsigned)d[i + 1] << 8;
        if (i + 2 < n)
            v |= d[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    return o;
}

/* ---- RFC 3339 times --------------------------------------------------- */

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the years RFC 3339's
 * four-digit date-fullyear can hold. Checking them first also keeps the
 * arithmetic below far from int64_t's limits. */
#define RFC3339_MIN_SEC (-62167219200LL)
#define RFC3339_MAX_SEC 253402300799LL

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

/* Write n decimal digits of v (< 10^n), zero-padded, two at a time: an
 * entry has four times and they were the main cost of its JSON. */
static char *put_digits(char *p, unsigned long v, unsigned n)
{
    unsigned i = n;

    while (i >= 2) {
        i -= 2;
        memcpy(p + i, digit_pairs + (v % 100) * 2, 2);
        v /= 100;
    }
    if (i == 1)
        p[0] = (char)('0' + v % 10);
    return p + n;
}

int layer_text_rfc3339(char *out, int64_t sec, uint32_t nsec, unsigned digits)
{
    /* Civil date from days since 1970-01-01 (Howard Hinnant's
     * civil_from_days). */
    int64_t days, secs, z, era, doe, yoe, doy, mp, d, m, y;
    char *p = out;

    out[0] = '\0';
    if (sec < RFC3339_MIN_SEC || sec > RFC3339_MAX_SEC || nsec >= 1000000000u ||
        digits > 9)
        return -1;
    days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
    secs = sec - days * 86400;
    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = yoe + era * 400 + (m <= 2);
    p = put_digits(p, (unsigned long)y, 4);
    *p++ = '-';
    p = put_digits(p, (unsigned long)m, 2);
    *p++ = '-';
    p = put_digits(p, (unsigned long)d, 2);
    *p++ = 'T';
    p = put_digits(p, (unsigned long)(secs / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (unsigned long)(secs / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (unsigned long)(secs % 60), 2);
    if (digits > 0) {
        unsigned long frac = nsec;

        for (unsigned i = digits; i < 9; i++)
            frac /= 10;
        *p++ = '.';
        p = put_digits(p, frac, digits);
    }
    *p++ = 'Z';
    *p = '\0';
    return (int)(p - out);
}

/* ---- capped growable buffer ------------------------------------------- */

/* First allocation: most users write a line or a small document. */
#define BUF_FIRST_ALLOC 256

static int buf_fail(layer_text_buf *b, int code)
{
    if (code == LAYER_ETOOBIG)
        layer_error_set(LAYER_ETOOBIG, "%s is larger than %zu bytes",
                        b->what != NULL ? b->what : "text", b->max);
    b->err = code;
    return code;
}

int layer_text_buf_reserve(layer_text_buf *b, size_t n)
{
    size_t want, alloc;
    char *np;

    assert(b->max < SIZE_MAX);
    if (b->err != 0)
        return b->err;
    if (b->len > b->max || n > b->max - b->len)
        return buf_fail(b, LAYER_ETOOBIG);
    want = b->len + n + 1; /* <= max + 1: no overflow */
    if (want <= b->alloc)
        return 0;
    alloc = b->alloc != 0 ? b->alloc : BUF_FIRST_ALLOC;
    while (alloc < want && alloc <= SIZE_MAX / 2)
        alloc *= 2;
    if (alloc < want || alloc > b->max + 1)
        alloc = alloc < want ? want : b->max + 1;
    if ((np = layer_tryarray(b->p, alloc, 1)) == NULL)
        return buf_fail(b, LAYER_ENOMEM);
    if (b->p == NULL)
        np[0] = '\0';
    b->p = np;
    b->alloc = alloc;
    return 0;
}

int layer_text_buf_add(layer_text_buf *b, const void *data, size_t n)
{
    int rc;

    if ((rc = layer_text_buf_reserve(b, n)) < 0)
        return rc;
    if (n > 0)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int layer_text_buf_adds(layer_text_buf *b, const char *s)
{
    return layer_text_buf_add(b, s, strlen(s));
}

int layer_text_buf_addf(layer_text_buf *b, const char *fmt, ...)
{
    size_t room;
    va_list ap;
    int n, rc;

    /* Format straight into the spare room; when it is short, grow to the
     * length vsnprintf() reported and format again. */
    if ((rc = layer_text_buf_reserve(b, 0)) < 0)
        return rc;
    room = b->alloc - b->len;
    va_start(ap, fmt);
    n = vsnprintf(b->p + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->p[b->len] = '\0';
        layer_error_set(LAYER_ERROR, "cannot format %s",
                        b->what != NULL ? b->what : "text");
        return buf_fail(b, LAYER_ERROR);
    }
    if ((size_t)n >= room) {
        b->p[b->len] = '\0';
        if ((rc = layer_text_buf_reserve(b, (size_t)n)) < 0)
            return rc;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

void layer_text_buf_truncate(layer_text_buf *b, size_t len)
{
    assert(len <= b->len);
    b->len = len;
    if (b->p != NULL)
        b->p[len] = '\0';
    if (b->err == LAYER_ETOOBIG)
        b->err = 0;
}

char *layer_text_buf_detach(layer_text_buf *b, size_t *out_len)
{
    char *p = b->err == 0 ? b->p : NULL;

    if (out_len != NULL)
        *out_len = p != NULL ? b->len : 0;
    if (p == NULL)
        layer_free(b->p);
    b->p = NULL;
    b->len = b->alloc = 0;
    b->err = 0;
    return p;
}

void layer_text_buf_dispose(layer_text_buf *b)
{
    if (b == NULL)
        return;
    layer_free(b->p);
    b->p = NULL;
    b->len = b->alloc = 0;
    b->err = 0;
}
