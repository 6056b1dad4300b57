/*
 * URL paths: decode percent-escapes exactly once, then validate.
 *
 * Decoding twice is the classic traversal bug ("%252e%252e" -> "%2e%2e" ->
 * ".."), so this module decodes once and the caller never decodes again:
 * what comes out is compared byte for byte with entry paths. Validation
 * then refuses what no changeset entry can be (empty, "." or ".."
 * segments, NUL), so a request is answered 400 rather than looked up.
 * Escapes that decode to NUL are refused outright because the result is
 * handed on as a C string.
 */
#include "api/urlpath.h"

#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/text.h"

/* Decode the escape at in[i] ('%'); -1 if malformed or NUL. */
static int escape_at(const char *in, size_t len, size_t i)
{
    int hi, lo;

    if (len - i < 3)
        return -1;
    hi = layer_text_hex_value((unsigned char)in[i + 1], 0);
    lo = layer_text_hex_value((unsigned char)in[i + 2], 0);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
        return -1;
    return hi * 16 + lo;
}

bool api_urlpath_escapes_valid(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\0')
            return false;
        if (in[i] != '%')
            continue;
        if (escape_at(in, len, i) < 0)
            return false;
        i += 2;
    }
    return true;
}

int api_urlpath_decode(char **out, size_t *out_len, const char *in, size_t len)
{
    int rc = 0;
    char *buf = NULL;
    size_t n = 0;

    if (len > API_URLPATH_MAX) {
        rc = layer_error_set(LAYER_ETOOBIG, "path is %zu bytes, longer than %d",
                             len, API_URLPATH_MAX);
        goto out;
    }
    if ((buf = layer_trymalloc(len + 1)) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];

        if (c == '\0') {
            rc = layer_error_set(LAYER_EINVALID, "path contains a NUL byte");
            goto out;
        }
        if (c == '%') {
            if ((c = escape_at(in, len, i)) < 0) {
                rc = layer_error_set(LAYER_EINVALID,
                                     "malformed percent-escape at offset "
                                     "%zu (or an escaped NUL)",
                                     i);
                goto out;
            }
            i += 2;
        }
        buf[n++] = (char)c;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    buf = NULL;
out:
    layer_free(buf);
    return rc;
}

int api_urlpath_check(const char *path, size_t len)
{
    size_t seg = 0; /* start of the current segment */

    if (len == 0)
        return layer_error_set(LAYER_EINVALID, "path is empty");
    if (len > API_URLPATH_MAX)
        return layer_error_set(LAYER_ETOOBIG,
                               "path is %zu bytes, longer than %d", len,
                               API_URLPATH_MAX);
    for (size_t i = 0; i <= len; i++) {
        size_t n;

        if (i < len && path[i] == '\0')
            return layer_error_set(LAYER_EINVALID, "path contains a NUL byte");
        if (i < len && path[i] != '/')
            continue;
        n = i - seg;
        if (n == 0)
            return layer_error_set(LAYER_EINVALID,
                                   "path has an empty segment (a leading, "
                                   "trailing or doubled '/')");
        if ((n == 1 && path[seg] == '.') ||
            (n == 2 && path[seg] == '.' && path[seg + 1] == '.'))
            return layer_error_set(LAYER_EINVALID,
                                   "path has a '.' or '..' segment");
        seg = i + 1;
    }
    return 0;
}
