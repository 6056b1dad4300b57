/*
 * Fuzz target for containers-storage's containers.json and
 * volatile-containers.json: layer_store__cs_parse_each(), and each
 * record through layer_store__cs_container_layer() (the layers still
 * written to, which the store calls mutable). Any input must either fail
 * with LAYER_EBROKEN or LAYER_ENOMEM, recorded with a message, or give at
 * most one layer id per record.
 */
#include <stdint.h>
#include <stdlib.h>

#include "store_meta_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    layer_store__strv layers;
    size_t records;
} seen;

static int on_record(void *arg, const json_t *rec, size_t index)
{
    seen *s = arg;
    size_t before = s->layers.n;
    int rc;

    if (!json_is_object(rec) || index != s->records)
        abort();
    s->records++;
    rc = layer_store__cs_container_layer(&s->layers, rec, index, "fuzz");
    if (rc < 0)
        return rc;
    if (s->layers.n > before + 1)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seen s = {{0}, 0};
    int rc = layer_store__cs_parse_each((const char *)data, size, "fuzz",
                                        on_record, &s);

    if (rc < 0)
        check_failure(rc);
    else
        check_each_matches_whole(data, size, rc, s.records);
    layer_store__strv_dispose(&s.layers);
    return 0;
}
