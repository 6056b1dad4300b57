/*
 * Fuzz target for containers-storage's layers.json and
 * volatile-layers.json (one format, one parser):
 * layer_store__cs_parse_list(), then every record through
 * layer_store__cs_parse_layer(). Any input must either fail with
 * LAYER_EBROKEN or LAYER_ENOMEM, recorded with a message, or give an
 * array of objects whose records each fail the same way or give a node
 * with an id and values that passed their checks (ids, parent ids,
 * digests, RFC 3339 times).
 */
#include <stdint.h>
#include <stdlib.h>

#include "store_meta_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *list = NULL;
    int rc;

    rc = layer_store__cs_parse_list(&list, (const char *)data, size, "fuzz");
    if (rc < 0) {
        check_failure(rc);
        return 0;
    }
    if (!json_is_array(list))
        abort();
    for (size_t i = 0; i < json_array_size(list); i++) {
        layer_store__node node = {0};

        if (!json_is_object(json_array_get(list, i)))
            abort();
        rc = layer_store__cs_parse_layer(&node, json_array_get(list, i));
        if (rc < 0)
            check_failure(rc);
        else if (node.id == NULL)
            abort();
        else
            check_node(&node);
        layer_store__node_dispose(&node);
    }
    json_decref(list);
    return 0;
}
