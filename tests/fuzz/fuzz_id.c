/*
 * Fuzz target for layer_id_valid(), the gate every id from the network
 * and every id-like value read from disk passes before it may become a
 * path component. The input is checked against an independent,
 * deliberately plain reading of the rule in layer/store.h, and every
 * accepted id must be a safe single path component: no '/', no NUL, no
 * '%', no "..", not "." or "..", at most LAYER_ID_MAX bytes. The check is
 * by length, so the same bytes with a NUL appended must be refused.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool oracle(const char *s, size_t n)
{
    static const char prefix[] = "sha256:";

    if (n < 1 || n > 128)
        return false;
    if (n >= 7 && strncmp(s, prefix, 7) == 0) {
        if (n != 71)
            return false;
        for (size_t i = 7; i < n; i++)
            if (strchr("0123456789abcdef", s[i]) == NULL || s[i] == '\0')
                return false;
        return true;
    }
    if (memchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
               s[0], 62) == NULL)
        return false;
    for (size_t i = 1; i < n; i++) {
        if (memchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789_.:-",
                   s[i], 66) == NULL)
            return false;
        if (s[i] == '.' && s[i - 1] == '.')
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    bool valid = layer_id_valid(s, size);

    if (valid != oracle(s, size))
        abort();
    if (valid) {
        char *copy;

        if (size > LAYER_ID_MAX || memchr(s, '/', size) ||
            memchr(s, '\0', size) || memchr(s, '%', size))
            abort();
        for (size_t i = 0; i + 1 < size; i++)
            if (s[i] == '.' && s[i + 1] == '.')
                abort();
        if ((size == 1 && s[0] == '.') ||
            (size == 2 && s[0] == '.' && s[1] == '.'))
            abort();
        /* The same bytes followed by a NUL are a different, invalid id. */
        copy = malloc(size + 1);
        if (copy == NULL)
            abort();
        memcpy(copy, s, size);
        copy[size] = '\0';
        if (layer_id_valid(copy, size + 1))
            abort();
        free(copy);
    }
    return 0;
}
