/*
 * Fuzz target for an image config (layer_store__image_config_parse()),
 * read from docker's image database to find an image's top layer: the
 * config's rootfs.diff_ids give the chain id. Any input must either fail
 * with LAYER_EBROKEN or LAYER_ENOMEM, recorded with a message, or give a
 * chain id that is "" (no layers) or a sha256 digest, and a creation time
 * that is RFC 3339 or none. A config with one diff id has that diff id as
 * its chain id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_meta_check.h"
#include "layer/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char chain[72];
    char *created = NULL;
    json_t *doc, *ids;
    int rc;

    rc = layer_store__image_config_parse(chain, &created, (const char *)data,
                                         size, "fuzz");
    if (rc < 0) {
        check_failure(rc);
        return 0;
    }
    if (chain[0] != '\0' && !layer_store__is_digest(chain, strlen(chain)))
        abort();
    if (created != NULL &&
        !layer_store__rfc3339_valid(created, strlen(created)))
        abort();
    layer_free(created);
    /* the oracle for one layer: its chain id is its diff id */
    doc = json_loadb((const char *)data, size,
                     JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                     NULL);
    ids = json_object_get(json_object_get(doc, "rootfs"), "diff_ids");
    if (json_array_size(ids) == 1 &&
        strcmp(json_string_value(json_array_get(ids, 0)), chain) != 0)
        abort();
    if (json_array_size(ids) == 0 && chain[0] != '\0')
        abort();
    json_decref(doc);
    return 0;
}
