/*
 * Fuzz target for the stores' metadata parsers (lib/store_int.h): the
 * bytes of files that anyone who can write a store controls. The first
 * byte picks the parser, the rest is the file:
 *
 *   'd'  a dir store's layer.json            layer_store__dir_parse()
 *   'c'  containers-storage layers.json      layer_store__cs_parse_list(),
 *                                            then each record through
 *                                            layer_store__cs_parse_layer()
 *   'k'  containers-storage containers.json  layer_store__cs_parse_list(),
 *                                            layer_store__cs_container_layers()
 *   'i'  a docker layerdb cache-id           layer_store__docker_parse()
 *   'g'  a docker layerdb diff or parent     layer_store__docker_parse()
 *
 * (any other byte picks by its value modulo 5). Any input must either
 * fail with LAYER_EBROKEN or LAYER_ENOMEM, the code recorded with a
 * message, or give values that passed their checks: valid ids, sha256
 * digests, RFC 3339 times. A parsed layer.json is written back out with
 * jansson and parsed again, and must give the same node: the oracle for
 * a parser that accepts one thing and keeps another.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/store_int.h"
#include "layer/alloc.h"
#include "layer/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char selectors[] = "dckig";

/* A failure must be one of the documented codes, recorded as such. */
static void check_failure(int rc)
{
    if ((rc != LAYER_EBROKEN && rc != LAYER_ENOMEM) ||
        layer_error_last_code() != rc || layer_error_last()[0] == '\0')
        abort();
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The values a node got passed their checks. */
static void check_node(const layer_store__node *n)
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

/* layer.json: parse, write back, parse again, compare. */
static void fuzz_dir(const char *p, size_t n)
{
    layer_store__node a = {0}, b = {0};
    json_t *doc = NULL;
    char *text = NULL;
    int rc;

    rc = layer_store__dir_parse(&a, p, n, "fuzz");
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
}

/* layers.json or containers.json. */
static void fuzz_cs(const char *p, size_t n, bool containers)
{
    layer_store__strv layers = {0};
    json_t *list = NULL;
    int rc;

    rc = layer_store__cs_parse_list(&list, p, n, "fuzz");
    if (rc < 0) {
        check_failure(rc);
        return;
    }
    if (!json_is_array(list))
        abort();
    for (size_t i = 0; i < json_array_size(list); i++) {
        layer_store__node node = {0};

        if (!json_is_object(json_array_get(list, i)))
            abort();
        if (containers)
            continue;
        rc = layer_store__cs_parse_layer(&node, json_array_get(list, i));
        if (rc < 0)
            check_failure(rc);
        else if (node.id == NULL)
            abort();
        else
            check_node(&node);
        layer_store__node_dispose(&node);
    }
    if (containers) {
        rc = layer_store__cs_container_layers(&layers, list, "fuzz");
        if (rc < 0)
            check_failure(rc);
        else if (layers.n > json_array_size(list))
            abort();
        layer_store__strv_dispose(&layers);
    }
    json_decref(list);
}

/* A docker layerdb token. */
static void fuzz_docker(const char *p, size_t n, layer_store__docker_file kind)
{
    char *tok = NULL;
    size_t len = 0;
    int rc = layer_store__docker_parse(&tok, &len, p, n, kind, "fuzz");

    if (rc < 0) {
        check_failure(rc);
        return;
    }
    if (len > n || tok[len] != '\0' || memcmp(tok, p, len) != 0)
        abort();
    if (kind == LAYER_STORE__DOCKER_CACHE_ID
            ? !layer_id_valid(tok, len)
            : !layer_store__is_digest(tok, len))
        abort();
    layer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sel, *p = (const char *)data + 1;
    size_t n = size - 1;

    if (size == 0)
        return 0;
    sel = strchr(selectors, data[0]);
    switch (sel != NULL && data[0] != '\0' ? *sel : selectors[data[0] % 5]) {
    case 'd':
        fuzz_dir(p, n);
        break;
    case 'c':
        fuzz_cs(p, n, false);
        break;
    case 'k':
        fuzz_cs(p, n, true);
        break;
    case 'i':
        fuzz_docker(p, n, LAYER_STORE__DOCKER_CACHE_ID);
        break;
    default:
        fuzz_docker(p, n, LAYER_STORE__DOCKER_DIGEST);
        break;
    }
    return 0;
}
