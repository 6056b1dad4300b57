/*
 * Fuzz target for containers-storage's containers.json and
 * volatile-containers.json: layer_store__cs_parse_list(), then
 * layer_store__cs_container_layers() (the layers still written to, which
 * the store calls mutable). Any input must either fail with LAYER_EBROKEN
 * or LAYER_ENOMEM, recorded with a message, or give at most one layer id
 * per record.
 */
#include <stdint.h>
#include <stdlib.h>

#include "store_meta_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    layer_store__strv layers = {0};
    json_t *list = NULL;
    int rc;

    rc = layer_store__cs_parse_list(&list, (const char *)data, size, "fuzz");
    if (rc < 0) {
        check_failure(rc);
        return 0;
    }
    rc = layer_store__cs_container_layers(&layers, list, "fuzz");
    if (rc < 0)
        check_failure(rc);
    else if (layers.n > json_array_size(list))
        abort();
    layer_store__strv_dispose(&layers);
    json_decref(list);
    return 0;
}
