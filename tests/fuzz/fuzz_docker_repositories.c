/*
 * Fuzz target for docker's repositories.json
 * (layer_store__docker_parse_repositories()): the names a docker store
 * gives its images. Any input must either fail with LAYER_EBROKEN or
 * LAYER_ENOMEM, recorded with a message, or give references that are
 * UTF-8 without controls, of at most LAYER_IMAGE_REF_MAX bytes, each
 * naming a sha256 image id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_meta_check.h"
#include "layer/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    layer_store__docker_ref *refs = NULL;
    size_t n = 0;
    int rc;

    rc = layer_store__docker_parse_repositories(&refs, &n, (const char *)data,
                                                size, "fuzz");
    if (rc < 0) {
        check_failure(rc);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(refs[i].name);

        if (len == 0 || len > LAYER_IMAGE_REF_MAX ||
            !layer_text_utf8_valid(refs[i].name, len) ||
            !layer_store__is_digest(refs[i].image_id, strlen(refs[i].image_id)))
            abort();
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)refs[i].name[k] < 0x20)
                abort();
    }
    layer_store__docker_refs_free(refs, n);
    return 0;
}
