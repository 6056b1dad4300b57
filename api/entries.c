/*
 * /layers/{id}/entries: the changeset as a stream of entry objects, and
 * /layers/{id}/entries/{path}: one of them.
 *
 * The listing is a bounded pull producer over a layer_reader: each read()
 * turns as many entries as fit into bytes, one entry at a time, so memory
 * is one serialised entry plus the reader's, however large the layer. An
 * entry bigger than the transport's buffer stays pending and is copied out
 * across calls. The JSON of an entry is api_entry_json_append()'s,
 * written straight into the pending buffer: the same bytes `layerd
 * entries` prints. NDJSON (one entry per line) is the default;
 * `Accept: application/json` gives one array instead.
 *
 * Filters rely on the changeset order (layer_path_compare()): the entries
 * under `prefix` form one contiguous run, so the stream ends as soon as it
 * passes it; `after` (the last path a client saw) skips everything up to
 * and including that path; `limit` caps the entries sent. A client pages
 * with after=<last path it received>. `depth` keeps only entries at most
 * that many levels below the prefix (the prefix's own entry is level 0,
 * a top-level name level 1 when there is no prefix): depth=1 lists one
 * directory's direct children, in the same order and with the same
 * cursor, which is how the dashboard browses a layer one level at a time
 * (api_entries__scope(), shared with /summary). Skipped entries still cost a
 * reader step each (there is no reader seek); a read() visits at most
 * VISIT_BUDGET entries, and when a call found nothing to send within that
 * budget it wakes itself and returns AGAIN so the server can serve other
 * connections in between.
 *
 * The stream's "layer.entries" span (a child of the request span, parent
 * of the reader's) ends with the stream and records the entries sent.
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>

#include "api/entry_json.h"
#include "api/metrics.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/reader.h"
#include "layer/trace.h"

/* Entries visited per read() before yielding to other connections. */
#define VISIT_BUDGET 4096
/* Largest pending piece: one serialised entry and its ",\n" and "\n". */
#define PEND_MAX (API_ENTRY_JSON_MAX + 3)

static const char *const entry_types[] = {API_TYPE_NDJSON, API_TYPE_JSON};

typedef enum phase {
    PHASE_HEAD,  /* array: "[" not yet queued */
    PHASE_BODY,  /* entries */
    PHASE_TAIL,  /* array: "]" not yet queued */
    PHASE_END,   /* everything queued */
    PHASE_FAILED /* the reader failed: cut the stream */
} phase;

typedef struct entries_stream {
    layer_info *info;
    layer_reader *reader;
    layer_span *span;
    api_metrics *metrics;
    const layer_entry *current; /* fetched but not yet filtered */
    bool reader_done;
    char *prefix;
    size_t prefix_len;
    char *after;
    size_t after_len;
    uint64_t depth; /* 0: any depth */
    uint64_t limit; /* 0: no limit */
    uint64_t count; /* entries queued */
    uint64_t visited;
    bool array;
    phase phase;
    layer_text_buf pend; /* queued bytes; those from pend_off on not yet
                            handed out */
    size_t pend_off;
    void (*wake)(void *arg);
    void *wake_arg;
    bool finished;
} entries_stream;

/* Queue bytes in the (drained) pending buffer. */
static int pend_set(entries_stream *s, const char *bytes, size_t n)
{
    layer_text_buf_truncate(&s->pend, 0);
    s->pend_off = 0;
    return layer_text_buf_add(&s->pend, bytes, n);
}

/* Queue one entry: ",\n" + JSON in an array, JSON + "\n" in NDJSON. On
 * failure nothing stays queued. */
static int queue_entry(entries_stream *s, const layer_entry *e)
{
    int rc = 0;

    layer_text_buf_truncate(&s->pend, 0);
    s->pend_off = 0;
    if (s->array)
        rc = layer_text_buf_adds(&s->pend, s->count == 0 ? "\n" : ",\n");
    if (rc == 0)
        rc = api_entry_json_append(&s->pend, e);
    if (rc == 0 && !s->array)
        rc = layer_text_buf_add(&s->pend, "\n", 1);
    if (rc < 0) {
        layer_text_buf_truncate(&s->pend, 0);
        return rc;
    }
    s->count++;
    return 0;
}

/* Is path under (or equal to) the prefix? */
static bool under_prefix(const char *prefix, size_t prefix_len,
                         const layer_entry *e)
{
    if (e->path_len < prefix_len || memcmp(e->path, prefix, prefix_len) != 0)
        return false;
    return e->path_len == prefix_len || e->path[prefix_len] == '/';
}

/* How many levels below the prefix (an entry under it) lies: 0 for the
 * prefix itself, 1 for its children. */
static uint64_t level_below(size_t prefix_len, const layer_entry *e)
{
    size_t start = prefix_len == 0 ? 0 : prefix_len + 1;
    uint64_t level = 1;

    if (prefix_len > 0 && e->path_len == prefix_len)
        return 0;
    for (size_t i = start; i < e->path_len; i++)
        level += e->path[i] == '/';
    return level;
}

api_scope api_entries__scope(const char *prefix, size_t prefix_len,
                             uint64_t depth, const layer_entry *e)
{
    if (prefix != NULL && !under_prefix(prefix, prefix_len, e))
        return layer_path_compare(e->path, e->path_len, prefix, prefix_len) > 0
                   ? API_SCOPE_PAST
                   : API_SCOPE_OUT;
    if (depth != 0 && level_below(prefix != NULL ? prefix_len : 0, e) > depth)
        return API_SCOPE_OUT;
    return API_SCOPE_IN;
}

/*
 * Queue the next matching entry, or move to the tail. *budget counts the
 * entries this call may still visit; at 0 it returns with nothing queued.
 */
static int advance(entries_stream *s, unsigned *budget)
{
    const layer_entry *e;
    api_scope scope;
    int rc;

    while (*budget > 0) {
        if (s->limit != 0 && s->count >= s->limit)
            break;
        if (s->current != NULL) {
            e = s->current;
            s->current = NULL;
        } else if (s->reader_done) {
            break;
        } else if ((rc = layer_reader_next(&e, s->reader)) < 0) {
            if (rc != LAYER_ITEROVER)
                return rc;
            s->reader_done = true;
            break;
        }
        (*budget)--;
        s->visited++;
        if (s->after != NULL && layer_path_compare(e->path, e->path_len,
                                                   s->after, s->after_len) <= 0)
            continue;
        scope = api_entries__scope(s->prefix, s->prefix_len, s->depth, e);
        if (scope == API_SCOPE_PAST)
            break; /* past the prefix's run: nothing more matches */
        if (scope == API_SCOPE_OUT)
            continue;
        return queue_entry(s, e);
    }
    if (*budget > 0)
        s->phase = s->array ? PHASE_TAIL : PHASE_END;
    return 0;
}

/* Close the reader and end the span; idempotent. */
static void stream_finish(entries_stream *s, bool completed)
{
    layer_reader_stats st;

    if (s->finished)
        return;
    s->finished = true;
    if (s->reader != NULL && layer_reader_stats_get(&st, s->reader) == 0)
        layer_span_set_int(s->span, "layer.entries.visited",
                           (int64_t)st.entries);
    layer_reader_free(s->reader);
    s->reader = NULL;
    layer_span_set_int(s->span, "layer.entries.count", (int64_t)s->count);
    layer_span_set_bool(s->span, "layer.entries.completed", completed);
    /* a client leaving is not a failure of the listing: the request span
     * says client_aborted, this one how far the listing got */
    if (!completed && s->phase != PHASE_FAILED)
        layer_span_set_str(s->span, "layer.entries.outcome", "client_aborted");
    layer_span_end(s->span);
    s->span = NULL;
}

/* A failure: bytes already copied go out first, the next call cuts the
 * stream. */
static ssize_t stream_fail(entries_stream *s, int rc, size_t used)
{
    s->phase = PHASE_FAILED;
    layer_span_set_error(s->span, "layer.entries", rc);
    return used > 0 ? (ssize_t)used : API_PRODUCE_ERROR;
}

static ssize_t stream_read(void *ctx, char *buf, size_t cap)
{
    entries_stream *s = ctx;
    size_t used = 0;
    unsigned budget = VISIT_BUDGET;
    int rc;

    while (used < cap) {
        if (s->pend_off < s->pend.len) {
            size_t n = s->pend.len - s->pend_off;

            if (n > cap - used)
                n = cap - used;
            memcpy(buf + used, s->pend.p + s->pend_off, n);
            s->pend_off += n;
            used += n;
            continue;
        }
        if (s->phase == PHASE_END || s->phase == PHASE_FAILED)
            break;
        if (s->phase == PHASE_HEAD) {
            s->phase = PHASE_BODY;
            if ((rc = pend_set(s, "[", 1)) < 0)
                return stream_fail(s, rc, used);
            continue;
        }
        if (s->phase == PHASE_TAIL) {
            s->phase = PHASE_END;
            if ((rc = s->count == 0 ? pend_set(s, "]\n", 2)
                                    : pend_set(s, "\n]\n", 3)) < 0)
                return stream_fail(s, rc, used);
            continue;
        }
        if (budget == 0) {
            if (used > 0 || s->wake == NULL)
                break;
            /* Visited a full budget without a match: let the server serve
             * others, and come back at once. */
            s->wake(s->wake_arg);
            return API_PRODUCE_AGAIN;
        }
        if ((rc = advance(s, &budget)) < 0)
            return stream_fail(s, rc, used);
        if (s->wake == NULL && budget == 0 && s->pend_off >= s->pend.len)
            budget = VISIT_BUDGET; /* no wake installed: keep going */
    }
    if (used > 0)
        return (ssize_t)used;
    if (s->phase == PHASE_FAILED)
        return API_PRODUCE_ERROR;
    stream_finish(s, true);
    return API_PRODUCE_END;
}

static void stream_set_wake(void *ctx, void (*wake)(void *arg), void *arg)
{
    entries_stream *s = ctx;

    s->wake = wake;
    s->wake_arg = arg;
}

static void stream_on_finish(void *ctx, bool completed)
{
    stream_finish(ctx,
                  completed && ((entries_stream *)ctx)->phase == PHASE_END);
}

static void stream_free(void *ctx)
{
    entries_stream *s = ctx;

    if (s == NULL)
        return;
    stream_finish(s, s->phase == PHASE_END);
    if (s->metrics != NULL)
        api_metrics_entry_stream_finished(s->metrics);
    layer_info_free(s->info);
    layer_free(s->prefix);
    layer_free(s->after);
    layer_text_buf_dispose(&s->pend);
    layer_free(s);
}

int api_entries__open(layer_reader **out, api_call *call,
                      const layer_info *info, layer_span *span)
{
    layer_reader_opts opts;
    int rc;

    memset(&opts, 0, sizeof(opts));
    opts.span = span != NULL ? span : call->req->span;
    if (call->ctx->allow_changing)
        opts.flags |= LAYER_READER_ALLOW_CHANGING;
    rc = layer_reader_open(out, &info->layer, info->parents, info->nparents,
                           &opts);
    if (rc == LAYER_ENOTFOUND) {
        /* The store resolved the id, so its directory should exist. */
        rc = api_problem__recode(LAYER_EBROKEN);
    }
    return rc;
}

int api_entries__probe(const layer_info *info)
{
    layer_reader *r = NULL;
    const layer_entry *e;
    int rc;

    rc = layer_reader_open(&r, &info->layer, info->parents, info->nparents,
                           NULL);
    if (rc == 0)
        rc = layer_reader_next(&e, r);
    layer_reader_free(r);
    if (rc == LAYER_ITEROVER)
        return 0;
    if (rc == LAYER_ENOTFOUND)
        rc = api_problem__recode(LAYER_EBROKEN);
    return rc;
}

int api_entries__find(layer_reader **out_reader, const layer_entry **out,
                      api_call *call, const layer_info *info, const char *path,
                      size_t len)
{
    layer_reader *r = NULL;
    const layer_entry *e = NULL;
    int rc;

    if ((rc = api_entries__open(&r, call, info, NULL)) < 0)
        goto out;
    for (;;) {
        int c;

        if ((rc = layer_reader_next(&e, r)) < 0)
            break;
        c = layer_path_compare(e->path, e->path_len, path, len);
        if (c == 0)
            break;
        if (c > 0) {
            rc = LAYER_ITEROVER;
            break;
        }
    }
    if (rc == LAYER_ITEROVER)
        rc = layer_error_set(LAYER_ENOTFOUND,
                             "no entry at this path in the layer's "
                             "changeset");
    if (rc < 0)
        goto out;
    *out_reader = r;
    *out = e;
    r = NULL;
out:
    layer_reader_free(r);
    return rc;
}

void api_entries__list(api_call *call)
{
    entries_stream *s = NULL;
    const char *accept = NULL;
    size_t type = 0;
    uint64_t limit;
    int rc;

    if (call->req->header != NULL)
        accept = call->req->header(call->req->conn, "Accept");
    if (api_accept__choose(&type, accept, entry_types, 2) < 0) {
        rc = LAYER_ENOTFOUND;
        api_problem__set(call, 406, NULL, NULL,
                         "entries are served as application/x-ndjson or "
                         "application/json");
        goto out;
    }
    if ((s = layer_trycalloc(1, sizeof(*s))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    s->pend = (layer_text_buf)LAYER_TEXT_BUF_INIT(PEND_MAX, "the entry stream");
    s->array = type == 1;
    s->phase = s->array ? PHASE_HEAD : PHASE_BODY;
    if ((rc = api_query__uint(&limit, call, "limit", 0, 1, UINT64_MAX / 2)) <
            0 ||
        (rc = api_query__path(&s->prefix, &s->prefix_len, call, "prefix")) <
            0 ||
        (rc = api_query__path(&s->after, &s->after_len, call, "after")) < 0 ||
        (rc = api_query__uint(&s->depth, call, "depth", 0, 1, API_DEPTH_MAX)) <
            0)
        goto out;
    s->limit = limit;
    if ((rc = api_layers__resolve(&s->info, call)) < 0)
        goto out;
    (void)layer_span_start(&s->span, NULL, call->req->span, "layer.entries");
    layer_span_set_str(s->span, "layer.id", s->info->id);
    layer_span_set_str(s->span, "layer.entries.format",
                       s->array ? "json" : "ndjson");
    if (s->prefix != NULL)
        layer_span_set_str(s->span, "layer.entries.prefix", s->prefix);
    if (s->after != NULL)
        layer_span_set_str(s->span, "layer.entries.after", s->after);
    if (s->limit != 0)
        layer_span_set_int(s->span, "layer.entries.limit", (int64_t)s->limit);
    if (s->depth != 0)
        layer_span_set_int(s->span, "layer.entries.depth", (int64_t)s->depth);
    if ((rc = api_entries__open(&s->reader, call, s->info, s->span)) < 0)
        goto out;
    /* Fetch the first entry now: a layer that cannot be read at all is
     * answered with a problem, not with a cut stream. */
    rc = layer_reader_next(&s->current, s->reader);
    if (rc == LAYER_ITEROVER) {
        s->current = NULL;
        s->reader_done = true;
    } else if (rc < 0) {
        goto out;
    }
    if ((rc = api_response_add_header(call->res, "Content-Type",
                                      entry_types[type])) < 0 ||
        (rc = api_response_add_header(call->res, "Vary", "Accept")) < 0 ||
        (rc = api_response_add_header(call->res, "Cache-Control", "no-store")) <
            0)
        goto out;
    call->res->status = 200;
    call->res->has_length = false;
    if (call->res->head) {
        s->phase = PHASE_END; /* the headers are the whole answer */
        goto out;
    }
    call->res->producer.read = stream_read;
    call->res->producer.set_wake = stream_set_wake;
    call->res->producer.finish = stream_on_finish;
    call->res->producer.free = stream_free;
    call->res->producer.ctx = s;
    s->metrics = call->ctx->metrics;
    if (s->metrics != NULL)
        api_metrics_entry_stream_started(s->metrics);
    s = NULL;
out:
    if (rc < 0 && s != NULL) {
        s->phase = PHASE_FAILED;
        layer_span_set_error(s->span, "layer.entries", rc);
    }
    if (rc < 0 && call->res->status == 0)
        api_problem__from_error(call, rc);
    stream_free(s);
}

void api_entries__get(api_call *call)
{
    layer_info *info = NULL;
    layer_reader *r = NULL;
    const layer_entry *e = NULL;
    int rc;

    if ((rc = api_layers__resolve(&info, call)) < 0)
        goto out;
    if ((rc = api_entries__find(&r, &e, call, info, call->path,
                                call->path_len)) < 0)
        goto out;
    rc = api_response__json(call->res, 200, API_TYPE_JSON, api_entry_json(e));
    if (rc == 0)
        rc = api_response_add_header(call->res, "Cache-Control", "no-store");
out:
    if (rc < 0 && call->res->status == 0)
        api_problem__from_error(call, rc);
    layer_reader_free(r);
    layer_info_free(info);
}
