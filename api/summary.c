/*
 * /layers/{id}/summary: counts over a layer's changeset, or over the part
 * of it that `prefix` and `depth` select (the same scope as /entries,
 * api_entries__scope()): how many entries, how many of each change and
 * type, and the bytes of the regular files' data. The dashboard asks for
 * it beside a listing, to show totals before (or without) streaming
 * every entry.
 *
 * The counts need the whole walk, so the answer is one small JSON object
 * sent at the end of a streamed body. The producer walks at most
 * VISIT_BUDGET entries per read() and, while it has nothing to send yet,
 * wakes itself and returns AGAIN, so a layer of millions of entries never
 * holds a server thread for the whole walk. Like /entries, the layer's
 * first entry is read before the status goes out, so a layer that cannot
 * be read at all gets a problem; a failure later in the walk cuts the
 * stream (no JSON is ever half-sent: the object is built only after the
 * last entry).
 *
 * The "layer.summary" span (a child of the request span, parent of the
 * reader's) records the scope and the entries counted.
 */
#include "api_int.h"

#include <string.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/reader.h"
#include "layer/trace.h"

/* Entries visited per read() before yielding to other connections. */
#define VISIT_BUDGET 4096

/* The types in the "types" object, indexed by layer_type. */
static const char *const type_names[] = {
    [LAYER_TYPE_FILE] = "file",       [LAYER_TYPE_DIR] = "dir",
    [LAYER_TYPE_SYMLINK] = "symlink", [LAYER_TYPE_HARDLINK] = "hardlink",
    [LAYER_TYPE_CHAR] = "char",       [LAYER_TYPE_BLOCK] = "block",
    [LAYER_TYPE_FIFO] = "fifo",
};
#define NTYPES (sizeof(type_names) / sizeof(type_names[0]))

typedef struct summary_stream {
    layer_info *info;
    layer_reader *reader;
    layer_span *span;
    const layer_entry *current; /* fetched but not yet counted */
    char *prefix;
    size_t prefix_len;
    uint64_t depth;
    uint64_t entries;
    uint64_t changes[3]; /* by layer_change */
    uint64_t types[NTYPES];
    uint64_t size;
    bool walked; /* every entry in scope was counted */
    bool failed; /* the walk failed: cut the stream */
    char *body;  /* the JSON, once walked */
    size_t body_len, body_off;
    void (*wake)(void *arg);
    void *wake_arg;
    bool finished;
} summary_stream;

static void count(summary_stream *s, const layer_entry *e)
{
    s->entries++;
    if ((unsigned)e->change < 3)
        s->changes[e->change]++;
    if (e->change != LAYER_CHANGE_DELETE && (size_t)e->type < NTYPES &&
        type_names[e->type] != NULL)
        s->types[e->type]++;
    if (e->change != LAYER_CHANGE_DELETE && e->type == LAYER_TYPE_FILE)
        s->size += e->size;
}

/* Count up to *budget entries; sets s->walked at the end of the scope. */
static int walk(summary_stream *s, unsigned budget)
{
    const layer_entry *e;
    int rc;

    while (budget-- > 0) {
        api_scope scope;

        if (s->current != NULL) {
            e = s->current;
            s->current = NULL;
        } else if ((rc = layer_reader_next(&e, s->reader)) < 0) {
            if (rc != LAYER_ITEROVER)
                return rc;
            s->walked = true;
            return 0;
        }
        scope = api_entries__scope(s->prefix, s->prefix_len, s->depth, e);
        if (scope == API_SCOPE_PAST) {
            s->walked = true;
            return 0;
        }
        if (scope == API_SCOPE_IN)
            count(s, e);
    }
    return 0;
}

/* The JSON object of the counts, with a final newline. */
static int render(summary_stream *s)
{
    json_t *doc = NULL, *changes = NULL, *types = NULL;
    int rc = LAYER_ENOMEM;

    if ((doc = json_object()) == NULL || (changes = json_object()) == NULL ||
        (types = json_object()) == NULL)
        goto out;
    if (s->prefix != NULL)
        json_object_set_new(doc, "prefix",
                            json_stringn(s->prefix, s->prefix_len));
    if (s->depth != 0)
        json_object_set_new(doc, "depth", json_integer((json_int_t)s->depth));
    json_object_set_new(doc, "entries", json_integer((json_int_t)s->entries));
    json_object_set_new(changes, "add",
                        json_integer((json_int_t)s->changes[0]));
    json_object_set_new(changes, "modify",
                        json_integer((json_int_t)s->changes[1]));
    json_object_set_new(changes, "delete",
                        json_integer((json_int_t)s->changes[2]));
    for (size_t t = 0; t < NTYPES; t++) {
        if (type_names[t] != NULL)
            json_object_set_new(types, type_names[t],
                                json_integer((json_int_t)s->types[t]));
    }
    if (json_object_set(doc, "changes", changes) < 0 ||
        json_object_set(doc, "types", types) < 0)
        goto out;
    json_object_set_new(doc, "size", json_integer((json_int_t)s->size));
    if ((rc = api_json__dump(&s->body, &s->body_len, doc, 1)) < 0)
        goto out;
    s->body[s->body_len++] = '\n';
    s->body[s->body_len] = '\0';
out:
    json_decref(types);
    json_decref(changes);
    json_decref(doc);
    return rc;
}

/* Close the reader and end the span; idempotent. */
static void summary_finish(summary_stream *s, bool completed)
{
    if (s->finished)
        return;
    s->finished = true;
    layer_reader_free(s->reader);
    s->reader = NULL;
    layer_span_set_int(s->span, "layer.summary.entries", (int64_t)s->entries);
    layer_span_set_bool(s->span, "layer.summary.completed", completed);
    if (!completed && !s->failed)
        layer_span_set_str(s->span, "layer.summary.outcome", "client_aborted");
    layer_span_end(s->span);
    s->span = NULL;
}

static ssize_t summary_read(void *ctx, char *buf, size_t cap)
{
    summary_stream *s = ctx;
    size_t n;
    int rc;

    if (s->failed)
        return API_PRODUCE_ERROR;
    while (!s->walked) {
        if ((rc = walk(s, VISIT_BUDGET)) < 0) {
            s->failed = true;
            layer_span_set_error(s->span, "layer.summary", rc);
            return API_PRODUCE_ERROR;
        }
        if (!s->walked && s->wake != NULL) {
            /* Let the server serve others, and come back at once. */
            s->wake(s->wake_arg);
            return API_PRODUCE_AGAIN;
        }
    }
    if (s->body == NULL && (rc = render(s)) < 0) {
        s->failed = true;
        layer_span_set_error(s->span, "layer.summary", rc);
        return API_PRODUCE_ERROR;
    }
    if (s->body_off == s->body_len) {
        summary_finish(s, true);
        return API_PRODUCE_END;
    }
    n = s->body_len - s->body_off;
    if (n > cap)
        n = cap;
    memcpy(buf, s->body + s->body_off, n);
    s->body_off += n;
    return (ssize_t)n;
}

static void summary_set_wake(void *ctx, void (*wake)(void *arg), void *arg)
{
    summary_stream *s = ctx;

    s->wake = wake;
    s->wake_arg = arg;
}

static void summary_on_finish(void *ctx, bool completed)
{
    summary_stream *s = ctx;

    summary_finish(s,
                   completed && s->body != NULL && s->body_off == s->body_len);
}

static void summary_free(void *ctx)
{
    summary_stream *s = ctx;

    if (s == NULL)
        return;
    summary_finish(s, s->body != NULL && s->body_off == s->body_len);
    layer_info_free(s->info);
    layer_free(s->prefix);
    layer_free(s->body);
    layer_free(s);
}

void api_summary__get(api_call *call)
{
    summary_stream *s = NULL;
    int rc;

    if ((s = layer_trycalloc(1, sizeof(*s))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    if ((rc = api_query__path(&s->prefix, &s->prefix_len, call, "prefix")) <
            0 ||
        (rc = api_query__uint(&s->depth, call, "depth", 0, 1, API_DEPTH_MAX)) <
            0)
        goto out;
    if ((rc = api_layers__resolve(&s->info, call)) < 0)
        goto out;
    (void)layer_span_start(&s->span, NULL, call->req->span, "layer.summary");
    layer_span_set_str(s->span, "layer.id", s->info->id);
    if (s->prefix != NULL)
        layer_span_set_str(s->span, "layer.summary.prefix", s->prefix);
    if (s->depth != 0)
        layer_span_set_int(s->span, "layer.summary.depth", (int64_t)s->depth);
    if ((rc = api_entries__open(&s->reader, call, s->info, s->span)) < 0)
        goto out;
    /* The first entry now: a layer that cannot be read at all is a
     * problem, not a cut stream. */
    rc = layer_reader_next(&s->current, s->reader);
    if (rc == LAYER_ITEROVER) {
        s->current = NULL;
        s->walked = true;
    } else if (rc < 0) {
        goto out;
    }
    if ((rc = api_response_add_header(call->res, "Content-Type",
                                      API_TYPE_JSON)) < 0 ||
        (rc = api_response_add_header(call->res, "Cache-Control", "no-store")) <
            0)
        goto out;
    call->res->status = 200;
    call->res->has_length = false;
    if (call->res->head) {
        summary_finish(s, true); /* the headers are the whole answer */
        goto out;
    }
    call->res->producer.read = summary_read;
    call->res->producer.set_wake = summary_set_wake;
    call->res->producer.finish = summary_on_finish;
    call->res->producer.free = summary_free;
    call->res->producer.ctx = s;
    s = NULL;
out:
    if (rc < 0 && s != NULL) {
        s->failed = true;
        layer_span_set_error(s->span, "layer.summary", rc);
    }
    if (rc < 0 && call->res->status == 0)
        api_problem__from_error(call, rc);
    summary_free(s);
}
