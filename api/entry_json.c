/*
 * The entry object: one layer_entry as JSON. Shared by the CLI and every
 * endpoint that shows entries, so all of them print the same thing. Field
 * order is fixed (jansson keeps insertion order), which keeps the output
 * stable for diffs and tests.
 */
#include "api/entry_json.h"

#include <stdio.h>
#include <string.h>

#include "layer/alloc.h"

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

json_t *api_json_string_bytes(const char *s, size_t len, int *out_lossy)
{
    const unsigned char *u = (const unsigned char *)s;
    char *buf;
    size_t o = 0;
    json_t *j;
    int lossy = 0;

    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(u + i, len - i);

        if (n == 0 || u[i] == 0) {
            lossy = 1;
            break;
        }
        i += n;
    }
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
        size_t n = utf8_seq(u + i, len - i);

        if (n == 0 || u[i] == 0) {
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
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t olen;
    char *buf;
    size_t o = 0;
    json_t *j;

    if (len > (SIZE_MAX - 3) / 4 * 3)
        return NULL;
    olen = (len + 2) / 3 * 4;
    buf = layer_trymalloc(olen + 1);
    if (buf == NULL)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16;

        if (i + 1 < len)
            v |= (unsigned)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        buf[o++] = tbl[(v >> 18) & 63];
        buf[o++] = tbl[(v >> 12) & 63];
        buf[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        buf[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    j = json_stringn(buf, o);
    layer_free(buf);
    return j;
}

/* Write n decimal digits of v, zero-padded. */
static char *digits(char *p, unsigned long v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
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

/* Set key to a new value; a NULL value (OOM) fails the whole object. */
static int set(json_t *obj, const char *key, json_t *value)
{
    return value == NULL ? -1 : json_object_set_new(obj, key, value);
}

static int set_time(json_t *obj, const char *key, const layer_time *t)
{
    char buf[40];

    if (api_time_format(buf, t) < 0)
        return 0; /* out of range: omitted */
    return set(obj, key, json_string(buf));
}

static int set_bytes(json_t *obj, const char *key, const char *b64key,
                     const char *s, size_t len)
{
    int lossy = 0;

    if (set(obj, key, api_json_string_bytes(s, len, &lossy)) < 0)
        return -1;
    if (lossy)
        return set(obj, b64key, api_json_base64((const unsigned char *)s, len));
    return 0;
}

static int set_xattrs(json_t *obj, const layer_entry *e)
{
    json_t *x = json_object();

    if (x == NULL)
        return -1;
    for (size_t i = 0; i < e->xattr_count; i++) {
        const layer_xattr *a = &e->xattrs[i];
        int lossy = 0;
        json_t *name = api_json_string_bytes(a->name, strlen(a->name), &lossy);
        json_t *val = api_json_base64(a->value, a->len);
        int rc;

        if (name == NULL || val == NULL) {
            json_decref(name);
            json_decref(val);
            json_decref(x);
            return -1;
        }
        if (lossy) {
            json_t *b = api_json_base64((const unsigned char *)a->name,
                                        strlen(a->name));
            char key[512];

            if (b == NULL) {
                json_decref(name);
                json_decref(val);
                json_decref(x);
                return -1;
            }
            snprintf(key, sizeof(key), "b64:%s", json_string_value(b));
            json_decref(b);
            rc = json_object_set_new(x, key, val);
        } else {
            rc = json_object_set_new(x, json_string_value(name), val);
        }
        json_decref(name);
        if (rc < 0) {
            json_decref(x);
            return -1;
        }
    }
    return json_object_set_new(obj, "xattrs", x);
}

json_t *api_entry_json(const layer_entry *e)
{
    json_t *o = json_object();
    char buf[64];
    int rc = 0;

    if (o == NULL)
        return NULL;
    rc |= set_bytes(o, "path", "path_b64", e->path, e->path_len);
    rc |= set(o, "change", json_string(layer_change_name(e->change)));
    if (e->change == LAYER_CHANGE_DELETE)
        goto out;
    rc |= set(o, "type", json_string(layer_type_name(e->type)));
    rc |= set(o, "mode", json_integer(e->mode));
    rc |= set(o, "uid", json_integer(e->uid));
    rc |= set(o, "gid", json_integer(e->gid));
    if (e->type == LAYER_TYPE_FILE)
        rc |= set(o, "size", json_integer((json_int_t)e->size));
    rc |= set_time(o, "mtime", &e->mtime);
    rc |= set_time(o, "atime", &e->atime);
    rc |= set_time(o, "ctime", &e->ctime);
    if (e->has_btime)
        rc |= set_time(o, "btime", &e->btime);
    rc |= set(o, "nlink", json_integer((json_int_t)e->nlink));
    snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long)e->file_id.dev,
             (unsigned long long)e->file_id.ino);
    rc |= set(o, "file_id", json_string(buf));
    if (e->link_target)
        rc |= set_bytes(o, "link_target", "link_target_b64", e->link_target,
                        e->link_target_len);
    if (e->type == LAYER_TYPE_CHAR || e->type == LAYER_TYPE_BLOCK) {
        snprintf(buf, sizeof(buf), "%u:%u", e->rdev_major, e->rdev_minor);
        rc |= set(o, "rdev", json_string(buf));
    }
    if (e->xattr_count > 0)
        rc |= set_xattrs(o, e);
    if (e->type == LAYER_TYPE_DIR && e->opaque)
        rc |= set(o, "opaque", json_true());
out:
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
