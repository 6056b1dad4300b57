/*
 * JSON strings from raw bytes (json_bytes.h). jansson refuses a string
 * that is not UTF-8, and names from a filesystem or messages that quote
 * them need not be: invalid bytes and NUL are shown as U+FFFD, so a
 * document can always be built, and callers that must keep the exact
 * bytes add them in base64 (api_json_base64()).
 */
#include "api/json_bytes.h"

#include <stdint.h>
#include <string.h>

#include "layer/alloc.h"
#include "layer/text.h"

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
#define REPLACEMENT     "\xEF\xBF\xBD"
#define REPLACEMENT_LEN 3

json_t *api_json_string_bytes(const char *s, size_t len, int *out_lossy)
{
    const unsigned char *u = (const unsigned char *)s;
    int lossy = !layer_text_utf8_valid(s, len) || memchr(s, '\0', len);
    char *buf;
    size_t o = 0;
    json_t *j;

    if (out_lossy)
        *out_lossy = lossy;
    if (!lossy)
        return json_stringn(s, len);
    if (len > (SIZE_MAX - 1) / REPLACEMENT_LEN)
        return NULL;
    buf = layer_trymalloc(len * REPLACEMENT_LEN + 1);
    if (buf == NULL)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t n = u[i] != 0 ? layer_text_utf8_len(u + i, len - i) : 0;

        if (n == 0) {
            memcpy(buf + o, REPLACEMENT, REPLACEMENT_LEN);
            o += REPLACEMENT_LEN;
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
    buf = layer_trymalloc(LAYER_TEXT_BASE64_LEN(len) + 1);
    if (buf == NULL)
        return NULL;
    o = layer_text_base64(buf, data, len);
    j = json_stringn(buf, o);
    layer_free(buf);
    return j;
}
