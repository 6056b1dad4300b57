/*
 * The metrics registry behind GET /metrics. One mutex guards everything:
 * updates are a few integer additions and a short linear search over a
 * handful of route templates, far cheaper than the request they count,
 * and render() sees one consistent snapshot.
 *
 * Label sets live in fixed tables (routes, (route, code) pairs, formats);
 * when a table is full, or a copy cannot be allocated, the update is
 * counted under "other" instead of lost, so totals stay exact. Durations
 * are summed in integer nanoseconds and printed without floating point,
 * so the output is exact and independent of the C locale.
 *
 * Output follows the Prometheus text exposition format 0.0.4: a HELP and
 * a TYPE line per family, then its samples; histogram buckets are
 * cumulative and end with le="+Inf", whose count equals _count.
 */
#include "api/metrics.h"

#include "layer/blobcache.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/auth.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/text.h"

/* The label value of overflowed and unknown label sets. */
#define OTHER     "other"
#define UNMATCHED "unmatched"

/* HTTP status codes are three digits (RFC 9110 section 15); anything
 * else is counted as code="0". */
#define STATUS_MIN 100
#define STATUS_MAX 599

/* Export duration buckets, seconds. Small layers export in milliseconds;
 * multi-GiB layers compressed with gzip take minutes on two cores. */
static const uint64_t bucket_ns[] = {
    10000000ULL,    50000000ULL,     100000000ULL,   500000000ULL,
    1000000000ULL,  5000000000ULL,   10000000000ULL, 30000000000ULL,
    60000000000ULL, 120000000000ULL, 300000000000ULL};
static const char *const bucket_le[] = {"0.01", "0.05", "0.1", "0.5", "1",  "5",
                                        "10",   "30",   "60",  "120", "300"};
#define NBUCKETS (sizeof(bucket_ns) / sizeof(bucket_ns[0]))

typedef struct route_stat {
    char *route;
    uint64_t bytes;
    uint64_t aborts;
} route_stat;

typedef struct request_stat {
    size_t route; /* index into routes */
    int code;
    uint64_t count;
} request_stat;

typedef struct format_stat {
    char *format;
    uint64_t bytes;
    uint64_t ok;
    uint64_t failed;
} format_stat;

struct api_metrics {
    pthread_mutex_t lock;
    layer_blobcache *cache; /* its counters are rendered; may be NULL */

    route_stat routes[API_METRICS_MAX_SERIES];
    size_t nroutes;
    route_stat other_route; /* route == NULL, rendered as "other" */

    request_stat requests[API_METRICS_MAX_SERIES];
    size_t nrequests;
    /* (route="other", code) counts, indexed by status; 0 = bad status */
    uint64_t other_requests[STATUS_MAX + 1];

    format_stat formats[API_METRICS_MAX_FORMATS];
    size_t nformats;
    format_stat other_format;

    int64_t exports_active;
    int64_t streams_active;
    uint64_t dropped[API_METRICS_DROP_N];
    int64_t worker_connections[API_METRICS_MAX_WORKERS];
    unsigned workers;

    uint64_t buckets[NBUCKETS]; /* per bucket, not cumulative */
    uint64_t duration_count;
    uint64_t duration_sum_ns;

    char *build[5]; /* version, microhttpd, openssl, isal, zstd */

    /* Refused requests by reason; index API_AUTH_FAIL_NONE unused. */
    uint64_t auth_failures[API_AUTH_FAIL_COUNT];
};

static const char *const build_labels[5] = {"version", "microhttpd", "openssl",
                                            "isal", "zstd"};

/* --- registry ------------------------------------------------------ */

int api_metrics_new(api_metrics **out, const api_metrics_build *build)
{
    api_metrics *m = NULL;
    const char *vals[5] = {NULL, NULL, NULL, NULL, NULL};
    bool lock_ok = false;
    int rc = 0;

    if (build != NULL) {
        vals[0] = build->version;
        vals[1] = build->microhttpd;
        vals[2] = build->openssl;
        vals[3] = build->isal;
        vals[4] = build->zstd;
    }
    m = layer_trycalloc(1, sizeof(*m));
    if (m == NULL)
        return LAYER_ENOMEM;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        rc = layer_error_set(LAYER_ERROR, "cannot create metrics lock");
        goto out;
    }
    lock_ok = true;
    for (size_t i = 0; i < 5; i++) {
        const char *v = vals[i] ? vals[i] : "unknown";

        m->build[i] = layer_trystrndup(v, strnlen(v, API_METRICS_MAX_LABEL));
        if (m->build[i] == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
    }
    *out = m;
    m = NULL;
out:
    if (m != NULL) {
        for (size_t i = 0; i < 5; i++)
            layer_free(m->build[i]);
        if (lock_ok)
            pthread_mutex_destroy(&m->lock);
        layer_free(m);
    }
    return rc;
}

void api_metrics_free(api_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nroutes; i++)
        layer_free(m->routes[i].route);
    for (size_t i = 0; i < m->nformats; i++)
        layer_free(m->formats[i].format);
    for (size_t i = 0; i < 5; i++)
        layer_free(m->build[i]);
    pthread_mutex_destroy(&m->lock);
    layer_free(m);
}

/* The route's entry, added if there is room; NULL means "other". Called
 * with the lock held. An allocation failure is not an error here: the
 * update is counted under "other"; the caller's error state is kept. */
static size_t route_index(api_metrics *m, const char *route, bool *other)
{
    char *copy;

    if (route == NULL)
        route = UNMATCHED;
    *other = false;
    for (size_t i = 0; i < m->nroutes; i++) {
        if (strncmp(m->routes[i].route, route, API_METRICS_MAX_LABEL) == 0)
            return i;
    }
    if (strcmp(route, OTHER) == 0 || m->nroutes == API_METRICS_MAX_SERIES)
        goto other;
    copy = layer_trystrndup(route, strnlen(route, API_METRICS_MAX_LABEL));
    if (copy == NULL)
        goto other;
    m->routes[m->nroutes].route = copy;
    return m->nroutes++;
other:
    *other = true;
    return 0;
}

static format_stat *format_entry(api_metrics *m, const char *format)
{
    char *copy;

    if (format == NULL)
        format = "unknown";
    for (size_t i = 0; i < m->nformats; i++) {
        if (strncmp(m->formats[i].format, format, API_METRICS_MAX_LABEL) == 0)
            return &m->formats[i];
    }
    if (strcmp(format, OTHER) == 0 || m->nformats == API_METRICS_MAX_FORMATS)
        return &m->other_format;
    copy = layer_trystrndup(format, strnlen(format, API_METRICS_MAX_LABEL));
    if (copy == NULL)
        return &m->other_format;
    m->formats[m->nformats].format = copy;
    return &m->formats[m->nformats++];
}

/* Allocation failures inside an update must not replace the caller's
 * error message: updates save the thread's error state around the locked
 * section (layer_error_save()). */

void api_metrics_request(api_metrics *m, const char *route, int status,
                         uint64_t response_bytes)
{
    layer_error_state se;
    bool other;
    size_t ri;
    int code = status >= STATUS_MIN && status <= STATUS_MAX ? status : 0;

    if (m == NULL)
        return;
    layer_error_save(&se);
    pthread_mutex_lock(&m->lock);
    ri = route_index(m, route, &other);
    if (other) {
        m->other_route.bytes += response_bytes;
        m->other_requests[code]++;
    } else {
        size_t i;

        m->routes[ri].bytes += response_bytes;
        for (i = 0; i < m->nrequests; i++) {
            if (m->requests[i].route == ri && m->requests[i].code == code)
                break;
        }
        if (i < m->nrequests) {
            m->requests[i].count++;
        } else if (m->nrequests < API_METRICS_MAX_SERIES) {
            m->requests[i].route = ri;
            m->requests[i].code = code;
            m->requests[i].count = 1;
            m->nrequests++;
        } else {
            m->other_requests[code]++;
        }
    }
    pthread_mutex_unlock(&m->lock);
    layer_error_restore(&se);
}

void api_metrics_client_abort(api_metrics *m, const char *route)
{
    layer_error_state se;
    bool other;
    size_t ri;

    if (m == NULL)
        return;
    layer_error_save(&se);
    pthread_mutex_lock(&m->lock);
    ri = route_index(m, route, &other);
    if (other)
        m->other_route.aborts++;
    else
        m->routes[ri].aborts++;
    pthread_mutex_unlock(&m->lock);
    layer_error_restore(&se);
}

void api_metrics_export_started(api_metrics *m, const char *format)
{
    (void)format; /* the gauge has no labels; format is for symmetry */
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->exports_active++;
    pthread_mutex_unlock(&m->lock);
}

void api_metrics_export_finished(api_metrics *m, const char *format,
                                 double seconds, uint64_t bytes, bool ok)
{
    layer_error_state se;
    format_stat *f;
    uint64_t ns;
    size_t b;

    if (m == NULL)
        return;
    /* NaN and negatives count as 0; more than ~584 years saturates. */
    if (!(seconds > 0))
        ns = 0;
    else if (seconds >= 1.8e10)
        ns = UINT64_MAX / 2;
    else
        ns = (uint64_t)(seconds * 1e9 + 0.5);
    for (b = 0; b < NBUCKETS && ns > bucket_ns[b]; b++)
        ;
    layer_error_save(&se);
    pthread_mutex_lock(&m->lock);
    m->exports_active--;
    if (b < NBUCKETS)
        m->buckets[b]++;
    m->duration_count++;
    m->duration_sum_ns += ns;
    f = format_entry(m, format);
    f->bytes += bytes;
    if (ok)
        f->ok++;
    else
        f->failed++;
    pthread_mutex_unlock(&m->lock);
    layer_error_restore(&se);
}

void api_metrics_entry_stream_started(api_metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->streams_active++;
    pthread_mutex_unlock(&m->lock);
}

void api_metrics_entry_stream_finished(api_metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->streams_active--;
    pthread_mutex_unlock(&m->lock);
}

void api_metrics_auth_failure(api_metrics *m, api_auth_failure reason)
{
    if (m == NULL || reason <= API_AUTH_FAIL_NONE ||
        reason >= API_AUTH_FAIL_COUNT)
        return;
    pthread_mutex_lock(&m->lock);
    m->auth_failures[reason]++;
    pthread_mutex_unlock(&m->lock);
}

void api_metrics_dropped(api_metrics *m, api_metrics_drop reason)
{
    if (m == NULL || (unsigned)reason >= API_METRICS_DROP_N)
        return;
    pthread_mutex_lock(&m->lock);
    m->dropped[reason]++;
    pthread_mutex_unlock(&m->lock);
}

void api_metrics_set_workers(api_metrics *m, unsigned n)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->workers = n < API_METRICS_MAX_WORKERS ? n : API_METRICS_MAX_WORKERS;
    pthread_mutex_unlock(&m->lock);
}

void api_metrics_worker_connections(api_metrics *m, unsigned worker, int delta)
{
    if (m == NULL || worker >= API_METRICS_MAX_WORKERS)
        return;
    pthread_mutex_lock(&m->lock);
    m->worker_connections[worker] += delta;
    pthread_mutex_unlock(&m->lock);
}

/* --- rendering ----------------------------------------------------- */

/* The text is rendered into one layer_text_buf capped at
 * API_METRICS_MAX_TEXT; its first failure sticks and is checked once at
 * the end. */

/* A label value per the exposition format: '\' '"' and newline escaped.
 * The format requires UTF-8, so invalid bytes and other control
 * characters become U+FFFD. */
static void tb_label_value(layer_text_buf *t, const char *value)
{
    const unsigned char *s = (const unsigned char *)value;
    size_t len = strlen(value);

    for (size_t i = 0; i < len;) {
        size_t n = layer_text_utf8_len(s + i, len - i);

        if (s[i] == '\\') {
            layer_text_buf_add(t, "\\\\", 2);
        } else if (s[i] == '"') {
            layer_text_buf_add(t, "\\\"", 2);
        } else if (s[i] == '\n') {
            layer_text_buf_add(t, "\\n", 2);
        } else if (n == 0 || s[i] < 0x20 || s[i] == 0x7f) {
            layer_text_buf_add(t, "\xef\xbf\xbd", 3);
            n = 1;
        } else {
            layer_text_buf_add(t, value + i, n);
        }
        i += n ? n : 1;
    }
}

static void tb_label(layer_text_buf *t, bool first, const char *name,
                     const char *value)
{
    layer_text_buf_adds(t, first ? "{" : ",");
    layer_text_buf_adds(t, name);
    layer_text_buf_adds(t, "=\"");
    tb_label_value(t, value);
    layer_text_buf_adds(t, "\"");
}

static void tb_family(layer_text_buf *t, const char *name, const char *type,
                      const char *help)
{
    layer_text_buf_adds(t, "# HELP ");
    layer_text_buf_adds(t, name);
    layer_text_buf_adds(t, " ");
    layer_text_buf_adds(t, help);
    layer_text_buf_adds(t, "\n# TYPE ");
    layer_text_buf_adds(t, name);
    layer_text_buf_adds(t, " ");
    layer_text_buf_adds(t, type);
    layer_text_buf_adds(t, "\n");
}

static void tb_u64_line(layer_text_buf *t, uint64_t v)
{
    layer_text_buf_addf(t, "} %" PRIu64 "\n", v);
}

/* Nanoseconds as decimal seconds, exact: "1.5", "0.000001", "3". */
static void tb_seconds(layer_text_buf *t, uint64_t ns)
{
    char frac[16];
    int n;

    layer_text_buf_addf(t, "%" PRIu64, ns / 1000000000);
    if (ns % 1000000000 == 0)
        return;
    n = snprintf(frac, sizeof(frac), ".%09" PRIu64, ns % 1000000000);
    while (n > 1 && frac[n - 1] == '0')
        n--;
    layer_text_buf_add(t, frac, (size_t)n);
}

static void render_requests(layer_text_buf *t, const api_metrics *m)
{
    char code[8];

    tb_family(t, "layerd_http_requests_total", "counter",
              "HTTP requests answered, by route template and status code.");
    for (size_t i = 0; i < m->nrequests; i++) {
        const request_stat *r = &m->requests[i];

        snprintf(code, sizeof(code), "%d", r->code);
        layer_text_buf_adds(t, "layerd_http_requests_total");
        tb_label(t, true, "route", m->routes[r->route].route);
        tb_label(t, false, "code", code);
        tb_u64_line(t, r->count);
    }
    for (int c = 0; c <= STATUS_MAX; c++) {
        if (m->other_requests[c] == 0)
            continue;
        snprintf(code, sizeof(code), "%d", c);
        layer_text_buf_adds(t, "layerd_http_requests_total");
        tb_label(t, true, "route", OTHER);
        tb_label(t, false, "code", code);
        tb_u64_line(t, m->other_requests[c]);
    }
}

static void render_routes(layer_text_buf *t, const api_metrics *m, bool aborts)
{
    const char *name = aborts ? "layerd_http_client_aborts_total"
                              : "layerd_http_response_bytes_total";
    bool other_used;

    if (aborts)
        tb_family(t, name, "counter",
                  "Responses the client abandoned before their end, "
                  "by route template.");
    else
        tb_family(t, name, "counter",
                  "HTTP response body bytes sent, by route template.");
    for (size_t i = 0; i < m->nroutes; i++) {
        layer_text_buf_adds(t, name);
        tb_label(t, true, "route", m->routes[i].route);
        tb_u64_line(t, aborts ? m->routes[i].aborts : m->routes[i].bytes);
    }
    other_used =
        aborts ? m->other_route.aborts != 0 : m->other_route.bytes != 0;
    if (other_used) {
        layer_text_buf_adds(t, name);
        tb_label(t, true, "route", OTHER);
        tb_u64_line(t, aborts ? m->other_route.aborts : m->other_route.bytes);
    }
}

static void render_dropped(layer_text_buf *t, const api_metrics *m)
{
    static const char *const reasons[API_METRICS_DROP_N] = {
        "header_timeout", "send_timeout", "max_connections", "max_per_client"};
    const char *name = "layerd_http_dropped_total";

    tb_family(t, name, "counter",
              "Connections the server dropped: headers not complete within "
              "--header-timeout, a response without progress for "
              "--send-timeout, or closed at accept past --max-connections "
              "or --max-per-client.");
    for (size_t i = 0; i < API_METRICS_DROP_N; i++) {
        layer_text_buf_adds(t, name);
        tb_label(t, true, "reason", reasons[i]);
        tb_u64_line(t, m->dropped[i]);
    }
}

static void render_workers(layer_text_buf *t, const api_metrics *m)
{
    const char *name = "layerd_http_connections";

    if (m->workers == 0)
        return;
    tb_family(t, name, "gauge",
              "Open connections of each HTTP worker thread (each accepted "
              "connection goes to the worker with the fewest).");
    for (unsigned i = 0; i < m->workers; i++) {
        char w[16];

        snprintf(w, sizeof(w), "%u", i);
        layer_text_buf_adds(t, name);
        tb_label(t, true, "worker", w);
        tb_u64_line(t, m->worker_connections[i] > 0
                           ? (uint64_t)m->worker_connections[i]
                           : 0);
    }
}

static void render_gauge(layer_text_buf *t, const char *name, const char *help,
                         int64_t v)
{
    tb_family(t, name, "gauge", help);
    layer_text_buf_addf(t, "%s %" PRId64 "\n", name, v);
}

static void render_counter(layer_text_buf *t, const char *name,
                           const char *help, uint64_t v)
{
    tb_family(t, name, "counter", help);
    layer_text_buf_addf(t, "%s %" PRIu64 "\n", name, v);
}

/* The blob cache's counters (layer/blobcache.h), read at render time. */
static void render_cache(layer_text_buf *t, layer_blobcache *c)
{
    layer_blobcache_stats st;

    if (c == NULL)
        return;
    layer_blobcache_stats_get(&st, c);
    render_counter(t, "layerd_cache_hits_total",
                   "Blob requests served from a blob the cache kept (by key "
                   "or by digest).",
                   st.hits + st.digest_hits);
    render_counter(t, "layerd_cache_misses_total",
                   "Blob requests that found neither a kept blob nor a fill "
                   "in flight.",
                   st.misses);
    render_counter(t, "layerd_cache_waits_total",
                   "Blob requests that joined another request's fill.",
                   st.waits);
    render_counter(t, "layerd_cache_bypasses_total",
                   "Blob requests of mutable layers, never cached.",
                   st.bypasses);
    render_counter(t, "layerd_cache_evictions_total",
                   "Blobs evicted to stay under --cache-max-bytes.",
                   st.evictions);
    render_counter(t, "layerd_cache_read_bytes_total",
                   "Bytes clients read from the cache.", st.bytes_read);
    render_counter(t, "layerd_cache_written_bytes_total",
                   "Bytes fills wrote into the cache.", st.bytes_written);
    render_gauge(t, "layerd_cache_bytes",
                 "Bytes the cache holds now (blobs and fills).",
                 (int64_t)st.bytes);
    render_gauge(t, "layerd_cache_blobs", "Blobs the cache keeps now.",
                 (int64_t)st.blobs);
    render_gauge(t, "layerd_cache_fills_active",
                 "Fills in flight, their commit included (a fill goes on "
                 "after its client has the last byte: the commit makes it "
                 "durable).",
                 (int64_t)(st.fills - st.commits - st.too_big - st.aborts));
}

void api_metrics_set_cache(api_metrics *m, layer_blobcache *cache)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->cache = cache;
    pthread_mutex_unlock(&m->lock);
}

static void render_histogram(layer_text_buf *t, const api_metrics *m)
{
    const char *name = "layerd_export_duration_seconds";
    uint64_t cum = 0;

    tb_family(t, name, "histogram",
              "Time from the start to the end of an export, in seconds.");
    for (size_t b = 0; b < NBUCKETS; b++) {
        cum += m->buckets[b];
        layer_text_buf_adds(t, "layerd_export_duration_seconds_bucket");
        tb_label(t, true, "le", bucket_le[b]);
        tb_u64_line(t, cum);
    }
    layer_text_buf_adds(t, "layerd_export_duration_seconds_bucket");
    tb_label(t, true, "le", "+Inf");
    tb_u64_line(t, m->duration_count);
    layer_text_buf_adds(t, "layerd_export_duration_seconds_sum ");
    tb_seconds(t, m->duration_sum_ns);
    layer_text_buf_addf(t,
                        "\nlayerd_export_duration_seconds_count %" PRIu64 "\n",
                        m->duration_count);
}

static void render_format_line(layer_text_buf *t, const char *name,
                               const char *format, const char *result,
                               uint64_t v)
{
    layer_text_buf_adds(t, name);
    tb_label(t, true, "format", format);
    if (result != NULL)
        tb_label(t, false, "result", result);
    tb_u64_line(t, v);
}

static void render_formats(layer_text_buf *t, const api_metrics *m)
{
    const format_stat *o = &m->other_format;
    bool other_used = o->ok || o->failed || o->bytes;

    tb_family(t, "layerd_exports_total", "counter",
              "Exports finished, by format and result (ok or error).");
    for (size_t i = 0; i < m->nformats; i++) {
        render_format_line(t, "layerd_exports_total", m->formats[i].format,
                           "ok", m->formats[i].ok);
        render_format_line(t, "layerd_exports_total", m->formats[i].format,
                           "error", m->formats[i].failed);
    }
    if (other_used) {
        render_format_line(t, "layerd_exports_total", OTHER, "ok", o->ok);
        render_format_line(t, "layerd_exports_total", OTHER, "error",
                           o->failed);
    }
    tb_family(t, "layerd_export_bytes_total", "counter",
              "Changeset bytes produced by exports, by format.");
    for (size_t i = 0; i < m->nformats; i++)
        render_format_line(t, "layerd_export_bytes_total", m->formats[i].format,
                           NULL, m->formats[i].bytes);
    if (other_used)
        render_format_line(t, "layerd_export_bytes_total", OTHER, NULL,
                           o->bytes);
}

/* Every reason, from the start at 0, so that a rate() has a baseline. */
static void render_auth(layer_text_buf *t, const api_metrics *m)
{
    tb_family(t, "layerd_auth_failures_total", "counter",
              "Requests refused with 401 or 403, by reason.");
    for (int r = API_AUTH_FAIL_NONE + 1; r < API_AUTH_FAIL_COUNT; r++) {
        layer_text_buf_adds(t, "layerd_auth_failures_total");
        tb_label(t, true, "reason", api_auth_failure_name((api_auth_failure)r));
        tb_u64_line(t, m->auth_failures[r]);
    }
}

static void render_build(layer_text_buf *t, const api_metrics *m)
{
    tb_family(t, "layerd_build_info", "gauge",
              "Versions of layerd and the libraries it runs with; always 1.");
    layer_text_buf_adds(t, "layerd_build_info");
    for (size_t i = 0; i < 5; i++)
        tb_label(t, i == 0, build_labels[i], m->build[i]);
    layer_text_buf_adds(t, "} 1\n");
}

int api_metrics_render(char **out, size_t *len, api_metrics *m)
{
    layer_text_buf t =
        LAYER_TEXT_BUF_INIT(API_METRICS_MAX_TEXT, "the metrics text");
    int rc = 0;

    if (m == NULL)
        return layer_error_set(LAYER_EINVALID, "no metrics registry");
    /* A few KiB in practice: one allocation up front. */
    (void)layer_text_buf_reserve(&t, 8192);
    pthread_mutex_lock(&m->lock);
    render_requests(&t, m);
    render_routes(&t, m, false);
    render_routes(&t, m, true);
    render_dropped(&t, m);
    render_workers(&t, m);
    render_gauge(&t, "layerd_exports_active",
                 "Exports running now (streams and folders).",
                 m->exports_active);
    render_gauge(&t, "layerd_entry_streams_active",
                 "Entry listing streams running now.", m->streams_active);
    render_histogram(&t, m);
    render_formats(&t, m);
    render_cache(&t, m->cache);
    render_auth(&t, m);
    render_build(&t, m);
    pthread_mutex_unlock(&m->lock);
    if ((rc = t.err) < 0)
        goto out;
    *out = layer_text_buf_detach(&t, len);
out:
    layer_text_buf_dispose(&t);
    return rc;
}
