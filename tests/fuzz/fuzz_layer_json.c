/*
 * Fuzz target for a dir: store's layer.json (layer_store__dir_parse()),
 * which whoever can write the store controls. Any input must either fail
 * with LAYER_EBROKEN or LAYER_ENOMEM, recorded with a message, or give a
 * node whose values passed their checks (a valid parent id, a known kind,
 * an RFC 3339 time). A parsed node is written back out with jansson and
 * parsed again, and must come back the same: the oracle for a parser that
 * accepts one thing and keeps another.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_meta_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    layer_store__node a = {0}, b = {0};
    json_t *doc = NULL;
    char *text = NULL;
    int rc;

    rc = layer_store__dir_parse(&a, (const char *)data, size, "fuzz");
    if (rc < 0) {
        check_failure(rc);
        goto out;
    }
    check_node(&a);
    doc = json_pack("{s:s?,s:s,s:s?,s:b}", "parent", a.parent, "kind",
                    layer_kind_name(a.kind), "created", a.created, "mutable",
                    a.mutable_);
    if (doc == NULL || (text = json_dumps(doc, JSON_COMPACT)) == NULL)
        goto out; /* out of memory */
    if (layer_store__dir_parse(&b, text, strlen(text), "again") < 0 ||
        !same_str(a.parent, b.parent) || a.kind != b.kind ||
        !same_str(a.created, b.created) || a.mutable_ != b.mutable_)
        abort();
out:
    free(text);
    json_decref(doc);
    layer_store__node_dispose(&a);
    layer_store__node_dispose(&b);
    return 0;
}
