/*
 * A strict RFC 8259 JSON reader for the stores' metadata files.
 *
 * Recursive descent over a bounded buffer into a compact tree: every value
 * is a 24-byte node; arrays and objects own one contiguous array of child
 * nodes (objects also a parallel array of keys); strings are decoded once
 * into NUL-terminated UTF-8. Recursion is bounded by LAYER_JSON_MAX_DEPTH,
 * so the C stack use is too. At every point of the parse the tree is in a
 * freeable state (a container counts only children that were zeroed), so
 * an error anywhere is cleaned up by freeing the root. Errors name the
 * document and the byte offset of the offending byte.
 *
 * Numbers are checked against the RFC grammar here, then converted with
 * strtod_l() in the C locale, so a process that calls setlocale() still
 * reads "1.5" correctly. Integers without fraction or exponent are also
 * kept exactly as int64_t when they fit.
 */
#include "json_int.h"

#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer/alloc.h"
#include "layer/error.h"

struct member {
    char *key;
    uint32_t len;
};

struct layer_json {
    uint8_t type;   /* layer_json_type */
    uint8_t is_int; /* numbers: u.num.i is exact */
    uint32_t len;   /* strings: bytes; arrays and objects: children */
    union {
        bool b;
        struct {
            double d;
            int64_t i;
        } num;
        char *s;
        struct {
            layer_json *items;
            struct member *keys; /* objects only */
        } agg;
    } u;
};

typedef struct parser {
    const unsigned char *start;
    const unsigned char *p;
    const unsigned char *end;
    const char *name;
} parser;

static int fail(const parser *ps, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(const parser *ps, const unsigned char *at, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return layer_error_set(LAYER_EBROKEN, "%s%sinvalid JSON at byte %zu: %s",
                           ps->name ? ps->name : "", ps->name ? ": " : "",
                           (size_t)(at - ps->start), what);
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Describe the byte at p for an error message. */
static const char *describe(const parser *ps, const unsigned char *p, char *buf,
                            size_t cap)
{
    if (p >= ps->end)
        return "end of input";
    if (*p >= 0x20 && *p < 0x7f)
        snprintf(buf, cap, "'%c'", *p);
    else
        snprintf(buf, cap, "byte 0x%02x", *p);
    return buf;
}

static int unexpected(const parser *ps, const char *wanted)
{
    char buf[16];

    return fail(ps, ps->p, "expected %s, found %s", wanted,
                describe(ps, ps->p, buf, sizeof(buf)));
}

/* ---- strings ---- */

static int hex4(unsigned *out, const unsigned char *p)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;

        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629 table 3: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    size_t avail = (size_t)(end - p);
    unsigned c = p[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return avail >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80;
        unsigned hi = c == 0xed ? 0x9f : 0xbf;

        if (avail < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80;
        unsigned hi = c == 0xf4 ? 0x8f : 0xbf;

        if (avail < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xc0) != 0x80 ||
            (p[3] & 0xc0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}

/* Decode the escape after a backslash at ps->p (which points at the
 * backslash) into o; advance ps->p past it. */
static int unescape(size_t *out_n, parser *ps, char *o)
{
    const unsigned char *at = ps->p;
    unsigned cp, lo;

    if (ps->end - ps->p < 2)
        return fail(ps, at, "unterminated escape");
    switch (ps->p[1]) {
    case '"':
    case '\\':
    case '/':
        *o = (char)ps->p[1];
        break;
    case 'b':
        *o = '\b';
        break;
    case 'f':
        *o = '\f';
        break;
    case 'n':
        *o = '\n';
        break;
    case 'r':
        *o = '\r';
        break;
    case 't':
        *o = '\t';
        break;
    case 'u':
        if (ps->end - ps->p < 6 || hex4(&cp, ps->p + 2) < 0)
            return fail(ps, at, "\\u needs four hex digits");
        ps->p += 6;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return fail(ps, at, "lone low surrogate \\u%04x", cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
                hex4(&lo, ps->p + 2) < 0 || lo < 0xdc00 || lo > 0xdfff)
                return fail(ps, at,
                            "high surrogate \\u%04x not followed by a low "
                            "surrogate",
                            cp);
            ps->p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        *out_n = put_utf8(o, cp);
        return 0;
    default:
        return fail(ps, at, "invalid escape '\\%c'",
                    ps->p[1] >= 0x20 && ps->p[1] < 0x7f ? ps->p[1] : '?');
    }
    ps->p += 2;
    *out_n = 1;
    return 0;
}

/* Parse a string at ps->p (an opening quote) into a new buffer. */
static int parse_string(char **out, uint32_t *out_len, parser *ps)
{
    const unsigned char *q = ps->p + 1;
    char *buf = NULL, *o;
    size_t n = 0;
    int rc = 0;

    /* Find the closing quote; the decoded string is never longer than the
     * raw one, so that bounds the buffer. */
    while (q < ps->end && *q != '"') {
        if (*q == '\\' && ps->end - q < 2)
            break;
        q += *q == '\\' ? 2 : 1;
    }
    if (q >= ps->end || *q != '"') {
        rc = fail(ps, ps->p, "unterminated string");
        goto out;
    }
    buf = layer_trymalloc((size_t)(q - ps->p));
    if (buf == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    o = buf;
    ps->p++;
    while (ps->p < q) {
        if (*ps->p == '\\') {
            if ((rc = unescape(&n, ps, o)) < 0)
                goto out;
        } else if (*ps->p < 0x20) {
            rc = fail(ps, ps->p, "control character 0x%02x in string", *ps->p);
            goto out;
        } else {
            n = utf8_len(ps->p, q);
            if (n == 0) {
                rc = fail(ps, ps->p, "invalid UTF-8 in string");
                goto out;
            }
            memcpy(o, ps->p, n);
            ps->p += n;
        }
        o += n;
    }
    /* An escape may not swallow the closing quote ("\"" is found above by
     * skipping two bytes, so ps->p lands exactly on q). */
    ps->p = q + 1;
    *o = '\0';
    *out_len = (uint32_t)(o - buf);
    *out = buf;
    buf = NULL;
out:
    layer_free(buf);
    return rc;
}

/* ---- numbers ---- */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

static size_t digits(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *s = p;

    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return (size_t)(p - s);
}

static int parse_number(layer_json *v, parser *ps)
{
    const unsigned char *s = ps->p, *p = ps->p, *int_start;
    char tok[LAYER_JSON_MAX_NUMBER + 1];
    bool neg = false, is_int = true;
    size_t nd;
    char *endp;

    if (p < ps->end && *p == '-') {
        neg = true;
        p++;
    }
    int_start = p;
    nd = digits(p, ps->end);
    if (nd == 0)
        return fail(ps, p, "expected a digit");
    if (*p == '0' && nd > 1)
        return fail(ps, p, "leading zero in number");
    p += nd;
    if (p < ps->end && *p == '.') {
        is_int = false;
        p++;
        nd = digits(p, ps->end);
        if (nd == 0)
            return fail(ps, p, "expected a digit after '.'");
        p += nd;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        is_int = false;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        nd = digits(p, ps->end);
        if (nd == 0)
            return fail(ps, p, "expected a digit in exponent");
        p += nd;
    }
    if ((size_t)(p - s) > LAYER_JSON_MAX_NUMBER)
        return fail(ps, s, "number longer than %d characters",
                    LAYER_JSON_MAX_NUMBER);

    v->type = LAYER_JSON_NUMBER;
    v->is_int = 0;
    if (is_int) {
        /* Exact magnitude; 2^63 is allowed only for the negative side. */
        uint64_t mag = 0;
        bool fits = true;

        for (const unsigned char *d = int_start; d < p; d++) {
            unsigned dv = (unsigned)(*d - '0');

            if (mag > (UINT64_MAX - dv) / 10) {
                fits = false;
                break;
            }
            mag = mag * 10 + dv;
        }
        if (fits && !neg && mag <= (uint64_t)INT64_MAX) {
            v->u.num.i = (int64_t)mag;
            v->is_int = 1;
        } else if (fits && neg && mag <= (uint64_t)INT64_MAX + 1) {
            v->u.num.i =
                mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
            v->is_int = 1;
        }
    }
    memcpy(tok, s, (size_t)(p - s));
    tok[p - s] = '\0';
    pthread_once(&c_locale_once, make_c_locale);
    if (c_locale == (locale_t)0)
        return layer_error_set(LAYER_ENOMEM, "cannot create the C locale");
    v->u.num.d = strtod_l(tok, &endp, c_locale);
    if (endp != tok + (p - s))
        return fail(ps, s, "number not understood");
    ps->p = p;
    return 0;
}

/* ---- values ---- */

static int parse_value(layer_json *v, parser *ps, int depth);

static int grow(layer_json *v, size_t *cap, bool with_keys)
{
    size_t ncap;
    layer_json *items;

    if (v->len < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 4;
    items = layer_tryarray(v->u.agg.items, ncap, sizeof(*items));
    if (items == NULL)
        return LAYER_ENOMEM;
    v->u.agg.items = items;
    if (with_keys) {
        struct member *keys =
            layer_tryarray(v->u.agg.keys, ncap, sizeof(*keys));
        if (keys == NULL)
            return LAYER_ENOMEM;
        v->u.agg.keys = keys;
    }
    *cap = ncap;
    return 0;
}

static int parse_array(layer_json *v, parser *ps, int depth)
{
    size_t cap = 0;
    int rc;

    v->type = LAYER_JSON_ARRAY;
    ps->p++; /* '[' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return 0;
    }
    for (;;) {
        if ((rc = grow(v, &cap, false)) < 0)
            return rc;
        memset(&v->u.agg.items[v->len], 0, sizeof(layer_json));
        v->len++;
        if ((rc = parse_value(&v->u.agg.items[v->len - 1], ps, depth)) < 0)
            return rc;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return 0;
        }
        return unexpected(ps, "',' or ']'");
    }
}

static int parse_object(layer_json *v, parser *ps, int depth)
{
    size_t cap = 0;
    char *key;
    uint32_t klen;
    int rc;

    v->type = LAYER_JSON_OBJECT;
    ps->p++; /* '{' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return 0;
    }
    for (;;) {
        if (ps->p >= ps->end || *ps->p != '"')
            return unexpected(ps, "a string key");
        if ((rc = grow(v, &cap, true)) < 0)
            return rc;
        if ((rc = parse_string(&key, &klen, ps)) < 0)
            return rc;
        v->u.agg.keys[v->len].key = key;
        v->u.agg.keys[v->len].len = klen;
        memset(&v->u.agg.items[v->len], 0, sizeof(layer_json));
        v->len++;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return unexpected(ps, "':'");
        ps->p++;
        if ((rc = parse_value(&v->u.agg.items[v->len - 1], ps, depth)) < 0)
            return rc;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return 0;
        }
        return unexpected(ps, "',' or '}'");
    }
}

static int literal(parser *ps, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return unexpected(ps, "a value");
    ps->p += n;
    return 0;
}

static int parse_value(layer_json *v, parser *ps, int depth)
{
    int rc;

    skip_ws(ps);
    if (ps->p >= ps->end)
        return unexpected(ps, "a value");
    switch (*ps->p) {
    case '{':
    case '[':
        if (depth >= LAYER_JSON_MAX_DEPTH)
            return fail(ps, ps->p, "nesting deeper than %d",
                        LAYER_JSON_MAX_DEPTH);
        return *ps->p == '{' ? parse_object(v, ps, depth + 1)
                             : parse_array(v, ps, depth + 1);
    case '"':
        if ((rc = parse_string(&v->u.s, &v->len, ps)) < 0)
            return rc;
        v->type = LAYER_JSON_STRING;
        return 0;
    case 't':
        if ((rc = literal(ps, "true")) < 0)
            return rc;
        v->type = LAYER_JSON_BOOL;
        v->u.b = true;
        return 0;
    case 'f':
        if ((rc = literal(ps, "false")) < 0)
            return rc;
        v->type = LAYER_JSON_BOOL;
        v->u.b = false;
        return 0;
    case 'n':
        if ((rc = literal(ps, "null")) < 0)
            return rc;
        v->type = LAYER_JSON_NULL;
        return 0;
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(v, ps);
        return unexpected(ps, "a value");
    }
}

static void dispose(layer_json *v)
{
    switch (v->type) {
    case LAYER_JSON_STRING:
        layer_free(v->u.s);
        break;
    case LAYER_JSON_ARRAY:
    case LAYER_JSON_OBJECT:
        for (uint32_t i = 0; i < v->len; i++) {
            dispose(&v->u.agg.items[i]);
            if (v->type == LAYER_JSON_OBJECT)
                layer_free(v->u.agg.keys[i].key);
        }
        layer_free(v->u.agg.items);
        layer_free(v->u.agg.keys);
        break;
    default:
        break;
    }
}

int layer_json__parse(layer_json **out, const char *data, size_t len,
                      const char *name)
{
    parser ps;
    layer_json *root = NULL;
    int rc = 0;

    ps.start = ps.p = (const unsigned char *)data;
    ps.end = ps.start + len;
    ps.name = name;
    if (len > LAYER_JSON_MAX_SIZE) {
        rc = fail(&ps, ps.start + LAYER_JSON_MAX_SIZE,
                  "document of %zu bytes is larger than the %u allowed", len,
                  LAYER_JSON_MAX_SIZE);
        goto out;
    }
    root = layer_trycalloc(1, sizeof(*root));
    if (root == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    if ((rc = parse_value(root, &ps, 0)) < 0)
        goto out;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        rc = unexpected(&ps, "end of input");
        goto out;
    }
    *out = root;
    root = NULL;
out:
    layer_json__free(root);
    return rc;
}

void layer_json__free(layer_json *v)
{
    if (v == NULL)
        return;
    dispose(v);
    layer_free(v);
}

layer_json_type layer_json__type(const layer_json *v)
{
    return v ? (layer_json_type)v->type : LAYER_JSON_NULL;
}

const char *layer_json__type_name(layer_json_type type)
{
    switch (type) {
    case LAYER_JSON_NULL:
        return "null";
    case LAYER_JSON_BOOL:
        return "boolean";
    case LAYER_JSON_NUMBER:
        return "number";
    case LAYER_JSON_STRING:
        return "string";
    case LAYER_JSON_ARRAY:
        return "array";
    case LAYER_JSON_OBJECT:
        return "object";
    }
    return "?";
}

const layer_json *layer_json__get(const layer_json *obj, const char *key)
{
    size_t klen;

    if (obj == NULL || obj->type != LAYER_JSON_OBJECT)
        return NULL;
    klen = strlen(key);
    /* From the end: the last of repeated keys wins. */
    for (uint32_t i = obj->len; i-- > 0;) {
        const struct member *m = &obj->u.agg.keys[i];

        if (m->len == klen && memcmp(m->key, key, klen) == 0)
            return &obj->u.agg.items[i];
    }
    return NULL;
}

size_t layer_json__size(const layer_json *v)
{
    if (v == NULL ||
        (v->type != LAYER_JSON_ARRAY && v->type != LAYER_JSON_OBJECT))
        return 0;
    return v->len;
}

const layer_json *layer_json__at(const layer_json *v, size_t i)
{
    if (i >= layer_json__size(v))
        return NULL;
    return &v->u.agg.items[i];
}

const char *layer_json__key_at(const layer_json *obj, size_t i, size_t *out_len)
{
    if (obj == NULL || obj->type != LAYER_JSON_OBJECT || i >= obj->len)
        return NULL;
    if (out_len)
        *out_len = obj->u.agg.keys[i].len;
    return obj->u.agg.keys[i].key;
}

const char *layer_json__string(const layer_json *v, size_t *out_len)
{
    if (v == NULL || v->type != LAYER_JSON_STRING)
        return NULL;
    if (out_len)
        *out_len = v->len;
    return v->u.s;
}

int layer_json__bool(bool *out, const layer_json *v)
{
    if (v == NULL || v->type != LAYER_JSON_BOOL)
        return LAYER_EINVALID;
    *out = v->u.b;
    return 0;
}

int layer_json__number(double *out, const layer_json *v)
{
    if (v == NULL || v->type != LAYER_JSON_NUMBER)
        return LAYER_EINVALID;
    *out = v->u.num.d;
    return 0;
}

int layer_json__int(int64_t *out, const layer_json *v)
{
    if (v == NULL || v->type != LAYER_JSON_NUMBER || !v->is_int)
        return LAYER_EINVALID;
    *out = v->u.num.i;
    return 0;
}
