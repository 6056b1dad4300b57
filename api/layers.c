/*
 * /layers and /layers/{id}: what the store holds.
 *
 * Layer objects never carry host paths (those stay in the trace): a
 * client learns ids, kinds, parent ids, creation times and digests, and
 * from /layers/{id} the diff ID the store recorded ("diff_id") and
 * whether the layer's original tar can be exported ("original_tar":
 * the store kept its tar-split data and the layer is not mutable). The
 * list is paginated by id in bytewise order: `after` is the last id of
 * the previous page and `limit` the page size; when more ids follow, the
 * body carries "next" (the cursor to pass as `after`) and a Link header
 * with rel="next" (RFC 8288). A layer whose metadata cannot be resolved
 * does not fail the whole list; it is listed with an "error" string.
 *
 * api_layers__resolve() is what every /layers/{id}/... route uses to go
 * from the id to a layer, inside the "store.resolve" span; it is also
 * where access is decided again on what the store resolved (api/auth.h).
 *
 * The list shows only the layers the request may list: a page holds
 * `limit` of those, and its cursor is the last one shown, so neither the
 * page nor the cursor names a layer the request may not see.
 */
#include "api_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/export.h"
#include "layer/trace.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000
/* Ids asked of the store at a time while filling a page. */
#define LIST_BATCH 256
static void set_parents_attr(layer_span *span, const layer_info *info)
{
    char *paths;

    if (span == NULL || (paths = layer_info_parent_paths(info)) == NULL)
        return;
    layer_span_set_str(span, "layer.parents", paths);
    layer_free(paths);
}

/* Reserve the descriptors a reader of info may hold (its roots are open
 * already) for the rest of the call, once a call. */
static int reserve_fds(api_call *call, const layer_info *info)
{
    uint64_t n = LAYER_READER_FDS((uint64_t)info->nparents);
    char detail[160];

    if (call->fds > 0)
        return 0;
    if (api_fds_acquire(call->ctx, n) == 0) {
        call->fds = n;
        return 0;
    }
    snprintf(detail, sizeof(detail),
             "a reader of this layer may hold %" PRIu64
             " descriptors, and the running requests hold all but %" PRIu64
             " of the %" PRIu64 " this server gives them",
             n, call->ctx->reader_fds - api_fds_held(call->ctx),
             call->ctx->reader_fds);
    api_problem__set(call, 503, "too-many-streams", "Too many streams", detail);
    return LAYER_EBUSY;
}

int api_layers__resolve(layer_info **out, api_call *call)
{
    layer_span *span = NULL;
    layer_info *info = NULL;
    int rc;

    (void)layer_span_start(&span, NULL, call->req->span, "store.resolve");
    layer_span_set_str(span, "layer.id", call->id);
    layer_span_set_str(span, "layer.store", layer_store_spec(call->ctx->store));
    if ((rc = layer_store_resolve(&info, call->ctx->store, call->id)) < 0) {
        layer_span_set_error(span, "store.resolve", rc);
        layer_span_end(span);
        api_problem__from_error(call, rc);
        return rc;
    }
    layer_span_set_str(span, "layer.path", info->layer.path);
    layer_span_set_str(span, "layer.kind", layer_kind_name(info->layer.kind));
    layer_span_set_int(span, "layer.parents.count", (int64_t)info->nparents);
    layer_span_set_bool(span, "layer.mutable", info->mutable_);
    set_parents_attr(span, info);
    layer_span_end(span);
    /* Access again, on what the store says: the canonical id (the
     * request may have named an alias) and the mutability. */
    if ((rc = api_auth__check_layer(call, info)) < 0) {
        layer_info_free(info);
        return rc;
    }
    if ((rc = reserve_fds(call, info)) < 0) {
        layer_info_free(info);
        return rc;
    }
    *out = info;
    return 0;
}

/* Set key to a string, skipping NULL (absent fields are omitted). */
static void set_opt_str(json_t *obj, const char *key, const char *value)
{
    if (value != NULL)
        json_object_set_new(obj, key, json_string(value));
}

/* The fields /layers and /layers/{id} share. */
static json_t *layer_object(const layer_info *info)
{
    json_t *obj = json_object();

    if (obj == NULL)
        return NULL;
    set_opt_str(obj, "id", info->id);
    if (info->nparents > 0)
        set_opt_str(obj, "parent", info->parent_ids[0]);
    json_object_set_new(obj, "kind",
                        json_string(layer_kind_name(info->layer.kind)));
    set_opt_str(obj, "store", info->store);
    set_opt_str(obj, "created", info->created);
    json_object_set_new(obj, "mutable", json_boolean(info->mutable_));
    return obj;
}

/* An entry of the list for an id whose metadata failed to resolve. */
static json_t *broken_object(const char *id, const api_context *ctx, int rc)
{
    json_t *obj = json_object();
    const char *spec = layer_store_spec(ctx->store);
    size_t kind_len = spec != NULL ? strcspn(spec, ":") : 0;

    if (obj == NULL)
        return NULL;
    json_object_set_new(obj, "id", json_string(id));
    if (kind_len > 0)
        json_object_set_new(obj, "store", json_stringn(spec, kind_len));
    json_object_set_new(obj, "error",
                        json_string(api_problem__status(rc) >= 500
                                        ? "layer metadata is broken"
                                        : "layer cannot be resolved"));
    return obj;
}

/*
 * Fill list with up to want layers after `after` that the request may
 * see, in id order: batches of ids from the store, each id first checked
 * against the grants by name alone (no store access for ids no grant
 * could show), then resolved and checked with its mutability. A layer
 * whose metadata cannot be read shows with its error when a grant lists
 * its id (its mutability unknown, it counts as immutable).
 */
static int visible_page(json_t *list, size_t *count, api_call *call,
                        const char *after, size_t want)
{
    char **ids = NULL;
    size_t n = 0, batch = want < LIST_BATCH ? LIST_BATCH : want;
    char *cursor = NULL;
    int rc = 0;

    *count = 0;
    if (after != NULL && (cursor = layer_trystrdup(after)) == NULL)
        return LAYER_ENOMEM;
    while (*count < want) {
        if ((rc = layer_store_list(&ids, &n, call->ctx->store, cursor, batch)) <
            0)
            goto out;
        for (size_t i = 0; i < n && *count < want; i++) {
            layer_info *info = NULL;
            json_t *obj;
            int r;

            if (!api_auth__may_list(call, ids[i], API_LAYER_UNKNOWN))
                continue;
            /* from the store's index: no file is opened for a listing */
            r = layer_store_describe(&info, call->ctx->store, ids[i]);
            if (r == LAYER_ENOTFOUND)
                continue; /* removed since it was listed */
            if (r == 0 &&
                !api_auth__may_list(call, info->id,
                                    info->mutable_ ? API_LAYER_MUTABLE
                                                   : API_LAYER_IMMUTABLE)) {
                layer_info_free(info);
                continue;
            }
            obj = r < 0 ? broken_object(ids[i], call->ctx, r)
                        : layer_object(info);
            layer_info_free(info);
            if (obj == NULL || json_array_append_new(list, obj) < 0) {
                rc = LAYER_ENOMEM;
                goto out;
            }
            (*count)++;
        }
        if (n < batch)
            break; /* the store has no more */
        layer_free(cursor);
        if ((cursor = layer_trystrdup(ids[n - 1])) == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
        layer_store_ids_free(ids, n);
        ids = NULL;
        n = 0;
    }
out:
    layer_store_ids_free(ids, n);
    layer_free(cursor);
    return rc;
}

void api_layers__list(api_call *call)
{
    uint64_t limit;
    const char *after = NULL;
    size_t count = 0;
    json_t *doc = NULL, *list = NULL, *next = NULL;
    char link[LAYER_ID_MAX + 96];
    int rc;

    if ((rc = api_query__uint(&limit, call, "limit", LIST_DEFAULT, 1,
                              LIST_MAX)) < 0 ||
        (rc = api_query__get(&after, call, "after")) < 0)
        goto out;
    if (after != NULL && !layer_id_valid(after, strlen(after))) {
        rc = LAYER_EINVALID;
        api_problem__set(call, 400, "invalid-parameter", "Invalid parameter",
                         "query parameter 'after' must be a layer id");
        goto out;
    }
    rc = LAYER_ENOMEM;
    if ((doc = json_object()) == NULL || (list = json_array()) == NULL ||
        json_object_set(doc, "layers", list) < 0)
        goto out;
    /* One more than asked tells whether there is a next page. */
    if ((rc = visible_page(list, &count, call, after, (size_t)limit + 1)) < 0)
        goto out;
    if (count > limit) {
        /* The cursor is the last layer shown, never one the request may
         * not see. */
        next = json_object_get(json_array_get(list, (size_t)limit - 1), "id");
        if (!json_is_string(next) ||
            json_array_remove(list, (size_t)limit) < 0) {
            rc = layer_error_set(LAYER_ERROR, "cannot cut the page");
            goto out;
        }
        json_object_set(doc, "next", next);
        snprintf(link, sizeof(link),
                 "</layers?limit=%llu&after=%s>; rel=\"next\"",
                 (unsigned long long)limit, json_string_value(next));
    }
    rc = api_response__json(call->res, 200, API_TYPE_JSON, doc);
    doc = NULL;
    if (rc == 0 && count > limit)
        rc = api_response_add_header(call->res, "Link", link);
out:
    if (rc < 0 && call->res->status == 0)
        api_problem__from_error(call, rc);
    json_decref(list);
    json_decref(doc);
}

void api_layers__get(api_call *call)
{
    layer_info *info = NULL;
    json_t *doc = NULL, *parents;
    int rc;

    if ((rc = api_layers__resolve(&info, call)) < 0)
        goto out;
    rc = LAYER_ENOMEM;
    if ((doc = layer_object(info)) == NULL ||
        (parents = json_array()) == NULL ||
        json_object_set_new(doc, "parents", parents) < 0)
        goto out;
    for (size_t i = 0; i < info->nparents; i++) {
        if (json_array_append_new(parents, json_string(info->parent_ids[i])) <
            0)
            goto out;
    }
    set_opt_str(doc, "diff_digest", info->diff_digest);
    set_opt_str(doc, "diff_id", info->diff_digest);
    {
        layer_export_original orig;
        layer_export_tar tar;
        bool has = layer_export_choose_tar(&tar, &orig, info,
                                           LAYER_EXPORT_TAR_AUTO, 0) == 0 &&
                   tar == LAYER_EXPORT_TAR_ORIGINAL;

        json_object_set_new(doc, "original_tar", json_boolean(has));
    }
    rc = api_response__json(call->res, 200, API_TYPE_JSON, doc);
    doc = NULL;
out:
    if (rc < 0 && call->res->status == 0)
        api_problem__from_error(call, rc);
    json_decref(doc);
    layer_info_free(info);
}
