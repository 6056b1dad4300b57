/*
 * Fuzz target for containers-storage's layers.json and
 * volatile-layers.json (one format, one parser):
 * layer_store__cs_parse_each(), then every record through
 * layer_store__cs_parse_layer(). Any input must either fail with
 * LAYER_EBROKEN or LAYER_ENOMEM, recorded with a message, or give an
 * array of objects whose records each fail the same way or give a node
 * with an id and values that passed their checks (ids, parent ids,
 * digests, RFC 3339 times). The record-by-record parse must agree with
 * a whole-document parse.
 */
#include <stdint.h>
#include <stdlib.h>

#include "store_meta_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_record(void *arg, const json_t *rec, size_t index)
{
    layer_store__node node = {0};
    size_t *count = arg;
    int rc;

    if (!json_is_object(rec) || index != *count)
        abort();
    (*count)++;
    rc = layer_store__cs_parse_layer(&node, rec);
    if (rc < 0)
        check_failure(rc);
    else if (node.id == NULL)
        abort();
    else
        check_node(&node);
    layer_store__node_dispose(&node);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t count = 0;
    int rc = layer_store__cs_parse_each((const char *)data, size, "fuzz",
                                        on_record, &count);

    if (rc < 0)
        check_failure(rc);
    check_each_matches_whole(data, size, rc, count);
    return 0;
}
