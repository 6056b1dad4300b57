/*
 * Fuzz target for the files of a docker layerdb entry
 * (image/overlay2/layerdb/sha256/<chain>/): layer_store__docker_parse().
 * The first byte says which file the rest is: 'i' cache-id (a directory
 * name the store builds a path from), anything else diff or parent (a
 * sha256 digest). Any input must either fail with LAYER_EBROKEN or
 * LAYER_ENOMEM, recorded with a message, or give the file's bytes (less
 * one trailing newline) that passed the file's check: a valid id, so a
 * single safe path component, or a canonical digest.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_meta_check.h"
#include "layer/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    layer_store__docker_file kind;
    const char *p = (const char *)data + 1;
    size_t n = size - 1, len = 0;
    char *tok = NULL;
    int rc;

    if (size == 0)
        return 0;
    kind = data[0] == 'i' ? LAYER_STORE__DOCKER_CACHE_ID
                          : LAYER_STORE__DOCKER_DIGEST;
    rc = layer_store__docker_parse(&tok, &len, p, n, kind, "fuzz");
    if (rc < 0) {
        check_failure(rc);
        return 0;
    }
    if (len > n || tok[len] != '\0' || memcmp(tok, p, len) != 0 ||
        memchr(tok, '/', len) != NULL)
        abort();
    if (kind == LAYER_STORE__DOCKER_CACHE_ID
            ? !layer_id_valid(tok, len)
            : !layer_store__is_digest(tok, len))
        abort();
    layer_free(tok);
    return 0;
}
