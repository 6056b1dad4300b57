/*
 * Fuzz target for containers-storage's images.json:
 * layer_store__cs_parse_each(), then every record through
 * layer_store__cs_parse_image(), and the file name of its config
 * (layer_store__cs_big_data_name()). Any input must either fail with
 * LAYER_EBROKEN or LAYER_ENOMEM, recorded with a message, or give images
 * whose values passed their checks: a 64-hex id, names that are UTF-8
 * without controls, a top layer that is a valid id (a safe path
 * component), sha256 digests, RFC 3339 times; and a config file name that
 * is one path component.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_meta_check.h"
#include "layer/alloc.h"
#include "layer/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_image(const layer_store__image_node *n)
{
    char *file = NULL;

    if (n->id == NULL || !layer_store__is_hex64(n->id, strlen(n->id)))
        abort();
    for (size_t i = 0; i < n->names.n; i++) {
        size_t len = strlen(n->names.v[i]);

        if (len == 0 || !layer_text_utf8_valid(n->names.v[i], len))
            abort();
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)n->names.v[i][k] < 0x20)
                abort();
    }
    if (n->top_layer != NULL &&
        !layer_id_valid(n->top_layer, strlen(n->top_layer)))
        abort();
    if (n->created != NULL &&
        !layer_store__rfc3339_valid(n->created, strlen(n->created)))
        abort();
    if (n->manifest_digest != NULL &&
        !layer_store__is_digest(n->manifest_digest, strlen(n->manifest_digest)))
        abort();
    if (n->config_digest == NULL)
        return;
    if (!layer_store__is_digest(n->config_digest, strlen(n->config_digest)))
        abort();
    if (layer_store__cs_big_data_name(&file, n->config_digest) < 0)
        return; /* out of memory */
    if (file[0] != '=' || strchr(file, '/') != NULL)
        abort();
    layer_free(file);
}

static int on_record(void *arg, const json_t *rec, size_t index)
{
    layer_store__image_node node = {0};
    size_t *count = arg;
    int rc;

    if (!json_is_object(rec) || index != *count)
        abort();
    (*count)++;
    rc = layer_store__cs_parse_image(&node, rec);
    if (rc < 0)
        check_failure(rc);
    else
        check_image(&node);
    layer_store__image_node_dispose(&node);
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
