/*
 * Fuzz target for lib/json.c. Any input must either fail with
 * LAYER_EBROKEN (or LAYER_ENOMEM) and a message, or give a tree that
 * (1) respects the caps and the accessors' contracts, and (2) survives a
 * round trip: written back out as canonical JSON and parsed again, it
 * gives an equal tree. The round trip is the oracle that catches a parser
 * accepting one thing and storing another (escapes, surrogates, numbers).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/json_int.h"
#include "layer/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);

        if (p == NULL)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put_string(buf *b, const char *s, size_t len)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
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
            put(b, (const char *)&s[i], 1);
        }
    }
    put(b, "\"", 1);
}

static void serialize(buf *b, const layer_json *v)
{
    char num[64];
    size_t len;
    const char *s;
    int64_t i;
    double d;
    bool t;

    switch (layer_json__type(v)) {
    case LAYER_JSON_NULL:
        put(b, "null", 4);
        break;
    case LAYER_JSON_BOOL:
        if (layer_json__bool(&t, v) != 0)
            abort();
        put(b, t ? "true" : "false", t ? 4 : 5);
        break;
    case LAYER_JSON_NUMBER:
        if (layer_json__int(&i, v) == 0) {
            snprintf(num, sizeof(num), "%lld", (long long)i);
        } else {
            if (layer_json__number(&d, v) != 0)
                abort();
            if (isinf(d))
                snprintf(num, sizeof(num), "%s1e999", d < 0 ? "-" : "");
            else if (isnan(d))
                abort(); /* JSON has no NaN */
            else
                snprintf(num, sizeof(num), "%.17g", d);
            /* "%.17g" may print an integer ("1e+20" is fine, "100" is
             * not a problem either: compared as doubles below). */
        }
        put(b, num, strlen(num));
        break;
    case LAYER_JSON_STRING:
        s = layer_json__string(v, &len);
        if (s == NULL || s[len] != '\0')
            abort();
        put_string(b, s, len);
        break;
    case LAYER_JSON_ARRAY:
        put(b, "[", 1);
        for (size_t k = 0; k < layer_json__size(v); k++) {
            if (k)
                put(b, ",", 1);
            serialize(b, layer_json__at(v, k));
        }
        put(b, "]", 1);
        break;
    case LAYER_JSON_OBJECT:
        put(b, "{", 1);
        for (size_t k = 0; k < layer_json__size(v); k++) {
            s = layer_json__key_at(v, k, &len);
            if (s == NULL || s[len] != '\0')
                abort();
            if (k)
                put(b, ",", 1);
            put_string(b, s, len);
            put(b, ":", 1);
            serialize(b, layer_json__at(v, k));
        }
        put(b, "}", 1);
        break;
    }
}

static void check_equal(const layer_json *a, const layer_json *b, int depth)
{
    layer_json_type t = layer_json__type(a);
    size_t la, lb;
    const char *sa, *sb;
    int64_t ia, ib;
    double da, db;
    bool ba, bb;

    if (depth > LAYER_JSON_MAX_DEPTH + 1 || t != layer_json__type(b))
        abort();
    switch (t) {
    case LAYER_JSON_NULL:
        break;
    case LAYER_JSON_BOOL:
        if (layer_json__bool(&ba, a) || layer_json__bool(&bb, b) || ba != bb)
            abort();
        break;
    case LAYER_JSON_NUMBER:
        if (layer_json__int(&ia, a) == 0) {
            if (layer_json__int(&ib, b) != 0 || ia != ib)
                abort();
        }
        if (layer_json__number(&da, a) || layer_json__number(&db, b) ||
            da != db)
            abort();
        break;
    case LAYER_JSON_STRING:
        sa = layer_json__string(a, &la);
        sb = layer_json__string(b, &lb);
        if (la != lb || memcmp(sa, sb, la) != 0)
            abort();
        break;
    case LAYER_JSON_ARRAY:
    case LAYER_JSON_OBJECT:
        if (layer_json__size(a) != layer_json__size(b))
            abort();
        for (size_t k = 0; k < layer_json__size(a); k++) {
            if (t == LAYER_JSON_OBJECT) {
                sa = layer_json__key_at(a, k, &la);
                sb = layer_json__key_at(b, k, &lb);
                if (la != lb || memcmp(sa, sb, la) != 0)
                    abort();
                /* get() finds some member with this key (the last). */
                if (memchr(sa, '\0', la) == NULL &&
                    layer_json__get(a, sa) == NULL)
                    abort();
            }
            check_equal(layer_json__at(a, k), layer_json__at(b, k), depth + 1);
        }
        if (layer_json__at(a, layer_json__size(a)) != NULL)
            abort();
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    layer_json *v = NULL, *again = NULL;
    buf out = {0};
    int rc;

    rc = layer_json__parse(&v, (const char *)data, size, "fuzz");
    if (rc != 0) {
        if ((rc != LAYER_EBROKEN && rc != LAYER_ENOMEM) || v != NULL ||
            strncmp(layer_error_last(), "fuzz: ", 6) != 0)
            abort();
        return 0;
    }
    serialize(&out, v);
    if (out.len <= LAYER_JSON_MAX_SIZE) {
        rc = layer_json__parse(&again, out.p, out.len, "again");
        if (rc != 0) {
            fprintf(stderr, "round trip failed: %s\n", layer_error_last());
            abort();
        }
        check_equal(v, again, 0);
    }
    layer_json__free(again);
    layer_json__free(v);
    free(out.p);
    return 0;
}
