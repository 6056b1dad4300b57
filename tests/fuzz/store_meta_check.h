/*
 * What the store-metadata fuzz targets share: the oracle for a failure
 * (one of the documented codes, recorded with a message) and for a parsed
 * node (every value it got passed its check). Static functions: each
 * target is one translation unit with replay.c.
 */
#ifndef LAYERD_FUZZ_STORE_META_CHECK_H
#define LAYERD_FUZZ_STORE_META_CHECK_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/store_int.h"
#include "layer/error.h"

/* A failure must be LAYER_EBROKEN or LAYER_ENOMEM, recorded as such with
 * a message. */
static inline void check_failure(int rc)
{
    if ((rc != LAYER_EBROKEN && rc != LAYER_ENOMEM) ||
        layer_error_last_code() != rc || layer_error_last()[0] == '\0')
        abort();
}

static inline bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The values a node got passed their checks. */
static inline void check_node(const layer_store__node *n)
{
    if (n->id != NULL && !layer_id_valid(n->id, strlen(n->id)))
        abort();
    if (n->parent != NULL && !layer_id_valid(n->parent, strlen(n->parent)))
        abort();
    if (n->created != NULL &&
        !layer_store__rfc3339_valid(n->created, strlen(n->created)))
        abort();
    if (n->diff_digest != NULL &&
        !layer_store__is_digest(n->diff_digest, strlen(n->diff_digest)))
        abort();
    if (n->kind != LAYER_KIND_DIFF && n->kind != LAYER_KIND_SNAPSHOT &&
        n->kind != LAYER_KIND_FOLDER)
        abort();
}

/*
 * The oracle of layer_store__cs_parse_each(): when the whole document
 * parses with jansson as an array of objects, the record-by-record parse
 * must succeed and give as many records. (The other way round, a record
 * may be one level deeper than jansson's whole-document limit.)
 */
static inline void check_each_matches_whole(const uint8_t *data, size_t size,
                                            int rc, size_t records)
{
    json_t *doc = json_loadb((const char *)data, size,
                             JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
    bool objects = json_is_array(doc);

    for (size_t i = 0; objects && i < json_array_size(doc); i++)
        objects = json_is_object(json_array_get(doc, i));
    if (objects && size > 0 && rc != LAYER_ENOMEM &&
        (rc < 0 || records != json_array_size(doc)))
        abort();
    json_decref(doc);
}

#endif
