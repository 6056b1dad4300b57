/*
 * Tests for api/metrics.c: the rendered exposition text after a known
 * sequence of updates, exact counter movements, overflow to "other",
 * label escaping, histogram buckets, thread safety, and a round trip
 * through the real Prometheus parser (python3-prometheus-client).
 */
#include <check.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/metrics.h"
#include "fixture.h"
#include "layer/alloc.h"
#include "layer/error.h"

static const api_metrics_build test_build = {"0.1.0", "0.9.75", "3.0.11",
                                             "2.30.0", "1.5.4"};

static api_metrics *new_metrics(void)
{
    api_metrics *m = NULL;

    ck_assert_int_eq(api_metrics_new(&m, &test_build), 0);
    ck_assert_ptr_nonnull(m);
    return m;
}

/* The rendered text; the caller frees it with layer_free(). */
static char *render(api_metrics *m)
{
    char *text = NULL;
    size_t len = 0;

    ck_assert_int_eq(api_metrics_render(&text, &len, m), 0);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    ck_assert_int_eq(text[len - 1], '\n');
    return text;
}

/* True if `line` is a whole line of `text`. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    }
    return false;
}

#define ck_assert_line(text, line)                                             \
    ck_assert_msg(has_line(text, line), "missing line: %s\n--- in:\n%s", line, \
                  text)

/* The value of the sample whose name and labels are exactly `series`
 * (e.g. `layerd_exports_active` or `x{a="b"}`); -1 if absent. */
static long long sample(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *p = text; (p = strstr(p, series)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    }
    return -1;
}

START_TEST(test_fresh_registry_renders_every_family_at_zero)
{
    api_metrics *m = new_metrics();
    char *text = render(m);
    static const char *const families[][2] = {
        {"layerd_http_requests_total", "counter"},
        {"layerd_http_response_bytes_total", "counter"},
        {"layerd_http_client_aborts_total", "counter"},
        {"layerd_http_dropped_total", "counter"},
        {"layerd_exports_active", "gauge"},
        {"layerd_entry_streams_active", "gauge"},
        {"layerd_export_duration_seconds", "histogram"},
        {"layerd_exports_total", "counter"},
        {"layerd_export_bytes_total", "counter"},
        {"layerd_auth_failures_total", "counter"},
        {"layerd_build_info", "gauge"},
    };

    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char line[128];
        const char *help;

        snprintf(line, sizeof(line), "# TYPE %s %s", families[i][0],
                 families[i][1]);
        ck_assert_line(text, line);
        snprintf(line, sizeof(line), "# HELP %s ", families[i][0]);
        help = strstr(text, line);
        ck_assert_msg(help != NULL, "no HELP for %s", families[i][0]);
        /* HELP comes right before TYPE. */
        ck_assert(strncmp(strchr(help, '\n') + 1, "# TYPE ", 7) == 0);
    }
    ck_assert_line(text, "layerd_exports_active 0");
    ck_assert_line(text, "layerd_entry_streams_active 0");
    ck_assert_line(text,
                   "layerd_http_dropped_total{reason=\"header_timeout\"} 0");
    ck_assert_line(text,
                   "layerd_http_dropped_total{reason=\"send_timeout\"} 0");
    ck_assert_line(text,
                   "layerd_export_duration_seconds_bucket{le=\"+Inf\"} 0");
    ck_assert_line(text, "layerd_export_duration_seconds_sum 0");
    ck_assert_line(text, "layerd_export_duration_seconds_count 0");
    ck_assert_line(text, "layerd_build_info{version=\"0.1.0\",microhttpd="
                         "\"0.9.75\",openssl=\"3.0.11\",isal=\"2.30.0\","
                         "zstd=\"1.5.4\"} 1");
    ck_assert_ptr_null(strstr(text, "layerd_http_requests_total{"));
    /* every reason, from the start */
    ck_assert_line(text, "layerd_auth_failures_total{reason=\"missing\"} 0");
    ck_assert_line(text, "layerd_auth_failures_total{reason=\"forbidden\"} 0");
    layer_free(text);
    api_metrics_free(m);
}
END_TEST

START_TEST(test_worker_connections_and_refusals)
{
    api_metrics *m = new_metrics();
    char *text = render(m);

    /* No workers announced: no family. */
    ck_assert_ptr_null(strstr(text, "layerd_http_connections"));
    ck_assert_line(text,
                   "layerd_http_dropped_total{reason=\"max_connections\"} 0");
    ck_assert_line(text,
                   "layerd_http_dropped_total{reason=\"max_per_client\"} 0");
    layer_free(text);

    api_metrics_set_workers(m, 3);
    api_metrics_worker_connections(m, 0, 1);
    api_metrics_worker_connections(m, 0, 1);
    api_metrics_worker_connections(m, 2, 1);
    api_metrics_worker_connections(m, 0, -1);
    api_metrics_worker_connections(m, API_METRICS_MAX_WORKERS, 1); /* ignored */
    api_metrics_dropped(m, API_METRICS_DROP_MAX_PER_CLIENT);
    api_metrics_dropped(m, API_METRICS_DROP_MAX_PER_CLIENT);
    api_metrics_dropped(m, API_METRICS_DROP_MAX_CONNECTIONS);
    text = render(m);
    ck_assert_line(text, "# TYPE layerd_http_connections gauge");
    ck_assert_line(text, "layerd_http_connections{worker=\"0\"} 1");
    ck_assert_line(text, "layerd_http_connections{worker=\"1\"} 0");
    ck_assert_line(text, "layerd_http_connections{worker=\"2\"} 1");
    ck_assert_ptr_null(strstr(text, "worker=\"3\""));
    ck_assert_line(text,
                   "layerd_http_dropped_total{reason=\"max_connections\"} 1");
    ck_assert_line(text,
                   "layerd_http_dropped_total{reason=\"max_per_client\"} 2");
    layer_free(text);
    api_metrics_free(m);
}
END_TEST

START_TEST(test_auth_failures_are_counted_by_reason_only)
{
    api_metrics *m = new_metrics();
    char *text;

    api_metrics_auth_failure(m, API_AUTH_FAIL_INVALID_TOKEN);
    api_metrics_auth_failure(m, API_AUTH_FAIL_INVALID_TOKEN);
    api_metrics_auth_failure(m, API_AUTH_FAIL_BAD_CERTIFICATE);
    /* not failures, or not reasons: ignored */
    api_metrics_auth_failure(m, API_AUTH_FAIL_NONE);
    api_metrics_auth_failure(m, API_AUTH_FAIL_COUNT);
    api_metrics_auth_failure(m, (api_auth_failure)-3);
    api_metrics_auth_failure(NULL, API_AUTH_FAIL_MISSING);
    text = render(m);
    ck_assert_line(text,
                   "layerd_auth_failures_total{reason=\"invalid_token\"} 2");
    ck_assert_line(text,
                   "layerd_auth_failures_total{reason=\"bad_certificate\"} 1");
    ck_assert_line(text, "layerd_auth_failures_total{reason=\"missing\"} 0");
    ck_assert_line(text, "layerd_auth_failures_total{reason=\"malformed\"} 0");
    ck_assert_line(
        text, "layerd_auth_failures_total{reason=\"unknown_certificate\"} 0");
    ck_assert_ptr_null(strstr(text, "reason=\"none\""));
    layer_free(text);
    api_metrics_free(m);
}
END_TEST

START_TEST(test_known_sequence_renders_exact_samples)
{
    api_metrics *m = new_metrics();
    char *text;

    for (int i = 0; i < 3; i++)
        api_metrics_request(m, "/layers", 200, 100);
    api_metrics_request(m, "/layers/{id}/export", 200, 5000);
    api_metrics_request(m, "/layers/{id}/export", 503, 0);
    api_metrics_request(m, NULL, 404, 50);
    api_metrics_client_abort(m, "/layers/{id}/export");
    api_metrics_export_started(m, "gzip");
    api_metrics_export_started(m, "gzip");
    api_metrics_export_started(m, "zstd");
    api_metrics_export_finished(m, "gzip", 0.2, 1000, true);
    api_metrics_export_finished(m, "zstd", 1.5, 300, false);
    api_metrics_entry_stream_started(m);
    api_metrics_entry_stream_started(m);
    api_metrics_entry_stream_started(m);
    api_metrics_entry_stream_finished(m);
    api_metrics_dropped(m, API_METRICS_DROP_HEADER_TIMEOUT);
    api_metrics_dropped(m, API_METRICS_DROP_HEADER_TIMEOUT);
    api_metrics_dropped(m, API_METRICS_DROP_SEND_TIMEOUT);
    api_metrics_dropped(m, API_METRICS_DROP_N); /* not a reason: ignored */
    text = render(m);

    ck_assert_line(text,
                   "layerd_http_requests_total{route=\"/layers\",code=\"200\"}"
                   " 3");
    ck_assert_line(text, "layerd_http_requests_total{route=\"/layers/{id}/"
                         "export\",code=\"200\"} 1");
    ck_assert_line(text, "layerd_http_requests_total{route=\"/layers/{id}/"
                         "export\",code=\"503\"} 1");
    ck_assert_line(
        text, "layerd_http_requests_total{route=\"unmatched\",code=\"404\"} 1");
    ck_assert_line(text,
                   "layerd_http_response_bytes_total{route=\"/layers\"} 300");
    ck_assert_line(text, "layerd_http_response_bytes_total{route=\"/layers/"
                         "{id}/export\"} 5000");
    ck_assert_line(text,
                   "layerd_http_response_bytes_total{route=\"unmatched\"} 50");
    ck_assert_line(text, "layerd_http_client_aborts_total{route=\"/layers/"
                         "{id}/export\"} 1");
    ck_assert_line(text,
                   "layerd_http_client_aborts_total{route=\"/layers\"} 0");
    ck_assert_line(text, "layerd_exports_active 1");
    ck_assert_line(text, "layerd_entry_streams_active 2");
    ck_assert_line(text,
                   "layerd_http_dropped_total{reason=\"header_timeout\"} 2");
    ck_assert_line(text,
                   "layerd_http_dropped_total{reason=\"send_timeout\"} 1");
    ck_assert_line(text, "layerd_export_duration_seconds_bucket{le=\"0.1\"} 0");
    ck_assert_line(text, "layerd_export_duration_seconds_bucket{le=\"0.5\"} 1");
    ck_assert_line(text, "layerd_export_duration_seconds_bucket{le=\"1\"} 1");
    ck_assert_line(text, "layerd_export_duration_seconds_bucket{le=\"5\"} 2");
    ck_assert_line(text,
                   "layerd_export_duration_seconds_bucket{le=\"+Inf\"} 2");
    ck_assert_line(text, "layerd_export_duration_seconds_sum 1.7");
    ck_assert_line(text, "layerd_export_duration_seconds_count 2");
    ck_assert_line(text,
                   "layerd_exports_total{format=\"gzip\",result=\"ok\"} 1");
    ck_assert_line(text,
                   "layerd_exports_total{format=\"gzip\",result=\"error\"} 0");
    ck_assert_line(text,
                   "layerd_exports_total{format=\"zstd\",result=\"error\"} 1");
    ck_assert_line(text, "layerd_export_bytes_total{format=\"gzip\"} 1000");
    ck_assert_line(text, "layerd_export_bytes_total{format=\"zstd\"} 300");
    layer_free(text);
    api_metrics_free(m);
}
END_TEST

START_TEST(test_counters_move_by_exactly_what_was_recorded)
{
    api_metrics *m = new_metrics();
    const char *req = "layerd_http_requests_total{route=\"/layers/{id}\","
                      "code=\"200\"}";
    const char *bytes = "layerd_http_response_bytes_total{route=\"/layers/"
                        "{id}\"}";
    const char *exp = "layerd_export_bytes_total{format=\"none\"}";
    char *before, *after;

    api_metrics_request(m, "/layers/{id}", 200, 10);
    api_metrics_export_started(m, "none");
    api_metrics_export_finished(m, "none", 0.001, 7, true);
    before = render(m);
    for (int i = 0; i < 17; i++)
        api_metrics_request(m, "/layers/{id}", 200, 1000);
    api_metrics_request(m, "/layers/{id}", 304, 0);
    api_metrics_export_started(m, "none");
    api_metrics_export_finished(m, "none", 0.001, UINT64_C(5000000000), true);
    after = render(m);
    ck_assert_int_eq(sample(after, req) - sample(before, req), 17);
    ck_assert_int_eq(sample(after, bytes) - sample(before, bytes), 17000);
    ck_assert_int_eq(sample(after, exp) - sample(before, exp), 5000000000LL);
    ck_assert_int_eq(sample(after, "layerd_export_duration_seconds_count") -
                         sample(before, "layerd_export_duration_seconds_count"),
                     1);
    ck_assert_int_eq(sample(after, "layerd_exports_active"), 0);
    ck_assert_int_eq(sample(before, "layerd_exports_active"), 0);
    ck_assert_line(after, "layerd_export_duration_seconds_sum 0.002");
    layer_free(before);
    layer_free(after);
    api_metrics_free(m);
}
END_TEST

START_TEST(test_histogram_buckets_are_cumulative_and_le_inclusive)
{
    api_metrics *m = new_metrics();
    static const double obs[] = {0.005, 0.01, 0.05,          0.07,     2.0,
                                 1000,  -3,   299.999999999, 0.0000005};
    char *text;

    for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
        api_metrics_export_started(m, "gzip");
        api_metrics_export_finished(m, "gzip", obs[i], 1, true);
    }
    text = render(m);
    /* 0.005, 0.01, -3 (as 0), 0.0000005 are <= 0.01 */
    ck_assert_line(text,
                   "layerd_export_duration_seconds_bucket{le=\"0.01\"} 4");
    ck_assert_line(text,
                   "layerd_export_duration_seconds_bucket{le=\"0.05\"} 5");
    ck_assert_line(text, "layerd_export_duration_seconds_bucket{le=\"0.1\"} 6");
    ck_assert_line(text, "layerd_export_duration_seconds_bucket{le=\"1\"} 6");
    ck_assert_line(text, "layerd_export_duration_seconds_bucket{le=\"5\"} 7");
    ck_assert_line(text, "layerd_export_duration_seconds_bucket{le=\"120\"} 7");
    ck_assert_line(text, "layerd_export_duration_seconds_bucket{le=\"300\"} 8");
    ck_assert_line(text,
                   "layerd_export_duration_seconds_bucket{le=\"+Inf\"} 9");
    ck_assert_line(text, "layerd_export_duration_seconds_count 9");
    /* 0.005+0.01+0.05+0.07+2+1000+0+299.999999999+0.0000005 */
    ck_assert_line(text, "layerd_export_duration_seconds_sum 1302.135000499");
    layer_free(text);
    api_metrics_free(m);
}
END_TEST

START_TEST(test_label_values_are_escaped)
{
    api_metrics *m = new_metrics();
    api_metrics_build b = {"1\"2", "a\\b", "line\nbreak", NULL, "\xff"};
    char *text;

    api_metrics_request(m, "/r\"q\\\n", 200, 1);
    api_metrics_client_abort(m, "/bad\xc3(\x01");
    text = render(m);
    ck_assert_line(text, "layerd_http_requests_total{route=\"/r\\\"q\\\\\\n\","
                         "code=\"200\"} 1");
    ck_assert_line(text, "layerd_http_client_aborts_total{route=\"/bad"
                         "\xef\xbf\xbd(\xef\xbf\xbd\"} 1");
    layer_free(text);
    api_metrics_free(m);

    ck_assert_int_eq(api_metrics_new(&m, &b), 0);
    text = render(m);
    ck_assert_line(text, "layerd_build_info{version=\"1\\\"2\",microhttpd="
                         "\"a\\\\b\",openssl=\"line\\nbreak\",isal=\"unknown"
                         "\",zstd=\"\xef\xbf\xbd\"} 1");
    layer_free(text);
    api_metrics_free(m);
    ck_assert_int_eq(api_metrics_new(&m, NULL), 0);
    text = render(m);
    ck_assert_ptr_nonnull(strstr(text, "{version=\"unknown\","));
    layer_free(text);
    api_metrics_free(m);
}
END_TEST

START_TEST(test_overflowing_label_sets_go_to_other_and_totals_stay_exact)
{
    api_metrics *m = new_metrics();
    char *text;
    long long sum = 0;

    for (int i = 0; i < 300; i++) {
        char route[32];

        snprintf(route, sizeof(route), "/r%d", i);
        api_metrics_request(m, route, 200, 2);
        api_metrics_client_abort(m, route);
    }
    /* A route literally named "other" is the overflow series. */
    api_metrics_request(m, "other", 200, 2);
    for (int i = 0; i < 20; i++) {
        char fmt[16];

        snprintf(fmt, sizeof(fmt), "f%d", i);
        api_metrics_export_started(m, fmt);
        api_metrics_export_finished(m, fmt, 1, 10, true);
    }
    text = render(m);
    ck_assert_line(text,
                   "layerd_http_requests_total{route=\"/r0\",code=\"200\"} 1");
    ck_assert_line(text,
                   "layerd_http_requests_total{route=\"/r255\",code=\"200\"} "
                   "1");
    ck_assert_ptr_null(strstr(text, "route=\"/r256\""));
    ck_assert_line(
        text, "layerd_http_requests_total{route=\"other\",code=\"200\"} 45");
    ck_assert_line(text,
                   "layerd_http_response_bytes_total{route=\"other\"} 90");
    ck_assert_line(text, "layerd_http_client_aborts_total{route=\"other\"} 44");
    ck_assert_line(text, "layerd_export_bytes_total{format=\"f15\"} 10");
    ck_assert_ptr_null(strstr(text, "format=\"f16\""));
    ck_assert_line(text, "layerd_export_bytes_total{format=\"other\"} 40");
    ck_assert_line(text,
                   "layerd_exports_total{format=\"other\",result=\"ok\"} 4");
    /* Every request is counted once, somewhere. */
    for (const char *p = text;
         (p = strstr(p, "\nlayerd_http_requests_total{")) != NULL; p++)
        sum += strtoll(strchr(p, '}') + 2, NULL, 10);
    ck_assert_int_eq(sum, 301);
    layer_free(text);
    api_metrics_free(m);
}
END_TEST

START_TEST(test_bad_status_codes_are_counted_as_code_0)
{
    api_metrics *m = new_metrics();
    char *text;

    api_metrics_request(m, "/x", 42, 0);
    api_metrics_request(m, "/x", 600, 0);
    api_metrics_request(m, "/x", 599, 0);
    text = render(m);
    ck_assert_line(text,
                   "layerd_http_requests_total{route=\"/x\",code=\"0\"} 2");
    ck_assert_line(text,
                   "layerd_http_requests_total{route=\"/x\",code=\"599\"} 1");
    layer_free(text);
    api_metrics_free(m);
}
END_TEST

START_TEST(test_null_registry_is_a_no_op)
{
    char *text = NULL;
    size_t len = 0;

    api_metrics_request(NULL, "/", 200, 1);
    api_metrics_client_abort(NULL, "/");
    api_metrics_export_started(NULL, "gzip");
    api_metrics_export_finished(NULL, "gzip", 1, 1, true);
    api_metrics_entry_stream_started(NULL);
    api_metrics_entry_stream_finished(NULL);
    api_metrics_auth_failure(NULL, API_AUTH_FAIL_MISSING);
    api_metrics_dropped(NULL, API_METRICS_DROP_SEND_TIMEOUT);
    api_metrics_free(NULL);
    ck_assert_int_eq(api_metrics_render(&text, &len, NULL), LAYER_EINVALID);
    ck_assert_ptr_null(text);
}
END_TEST

START_TEST(test_out_of_memory_is_reported_and_leaves_errors_alone)
{
    api_metrics *m = NULL;
    char *text = NULL;
    size_t len = 0;

    layer_alloc_fail_after(1);
    ck_assert_int_eq(api_metrics_new(&m, &test_build), LAYER_ENOMEM);
    ck_assert_ptr_null(m);
    layer_alloc_fail_after(3);
    ck_assert_int_eq(api_metrics_new(&m, &test_build), LAYER_ENOMEM);
    ck_assert_ptr_null(m);
    layer_alloc_fail_after(0);
    m = new_metrics();
    /* A route copy that cannot be made is counted under "other", and the
     * caller's error message survives. */
    layer_error_set(LAYER_EBUSY, "too many exports");
    layer_alloc_fail_after(1);
    api_metrics_request(m, "/new", 503, 5);
    layer_alloc_fail_after(0);
    ck_assert_int_eq(layer_error_last_code(), LAYER_EBUSY);
    ck_assert_str_eq(layer_error_last(), "too many exports");
    layer_alloc_fail_after(1);
    ck_assert_int_eq(api_metrics_render(&text, &len, m), LAYER_ENOMEM);
    layer_alloc_fail_after(0);
    ck_assert_ptr_null(text);
    text = render(m);
    ck_assert_line(
        text, "layerd_http_requests_total{route=\"other\",code=\"503\"} 1");
    layer_free(text);
    api_metrics_free(m);
}
END_TEST

#define NTHREADS 8
#define NOPS     2000

static void *hammer(void *p)
{
    api_metrics *m = p;

    for (int i = 0; i < NOPS; i++) {
        api_metrics_request(m, i % 2 ? "/a" : "/b", 200, 3);
        api_metrics_export_started(m, "gzip");
        api_metrics_entry_stream_started(m);
        if (i % 100 == 0) {
            char *text = NULL;
            size_t len;

            if (api_metrics_render(&text, &len, m) == 0)
                layer_free(text);
        }
        api_metrics_entry_stream_finished(m);
        api_metrics_export_finished(m, "gzip", 0.02, 1, true);
    }
    return NULL;
}

START_TEST(test_concurrent_updates_are_all_counted)
{
    api_metrics *m = new_metrics();
    pthread_t th[NTHREADS];
    char *text;

    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, m), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    text = render(m);
    ck_assert_int_eq(
        sample(text, "layerd_http_requests_total{route=\"/a\",code=\"200\"}") +
            sample(text,
                   "layerd_http_requests_total{route=\"/b\",code=\"200\"}"),
        NTHREADS * NOPS);
    ck_assert_int_eq(sample(text, "layerd_export_duration_seconds_count"),
                     NTHREADS * NOPS);
    ck_assert_int_eq(sample(text, "layerd_export_bytes_total{format=\"gzip\"}"),
                     NTHREADS * NOPS);
    ck_assert_int_eq(sample(text, "layerd_exports_active"), 0);
    ck_assert_int_eq(sample(text, "layerd_entry_streams_active"), 0);
    layer_free(text);
    api_metrics_free(m);
}
END_TEST

/* --- the real parser ----------------------------------------------- */

static char tmpdir[4096];

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* Prints one line per sample: `name{k=v,...} value`, labels sorted. */
static const char parse_script[] =
    "import sys\n"
    "from prometheus_client.parser import text_string_to_metric_families\n"
    "text = open(sys.argv[1], encoding='utf-8').read()\n"
    "for fam in text_string_to_metric_families(text):\n"
    "    print('family %s %s' % (fam.name, fam.type))\n"
    "    for s in fam.samples:\n"
    "        ls = ','.join('%s=%s' % (k, s.labels[k].replace('\\n', '<NL>'))\n"
    "                      for k in sorted(s.labels))\n"
    "        print('sample %s{%s} %r' % (s.name, ls, s.value))\n";

/* The first python3 that has prometheus_client: $LAYERD_PYTHON, the one
 * on PATH, then Debian's (where python3-prometheus-client installs).
 * NULL and *any_python false when there is no python3 at all. */
static const char *find_python(bool *any_python)
{
    static const char *const candidates[] = {NULL, "python3",
                                             "/usr/bin/python3"};
    static char chosen[256];

    *any_python = false;
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        const char *py = i == 0 ? getenv("LAYERD_PYTHON") : candidates[i];
        char cmd[512];
        int st;

        if (py == NULL || py[0] == '\0')
            continue;
        snprintf(cmd, sizeof(cmd), "'%s' -c 'import sys' >/dev/null 2>&1", py);
        st = system(cmd);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            continue;
        *any_python = true;
        snprintf(cmd, sizeof(cmd),
                 "'%s' -c 'import prometheus_client.parser' >/dev/null 2>&1",
                 py);
        st = system(cmd);
        if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            snprintf(chosen, sizeof(chosen), "%s", py);
            return chosen;
        }
    }
    return NULL;
}

START_TEST(test_output_parses_with_prometheus_client)
{
    const char *base = getenv("TMPDIR");
    char script[4200], data[4200], cmd[9000], line[4096];
    api_metrics *m = new_metrics();
    size_t nlines = 0, nfam = 0;
    bool any_python, seen_req = false, seen_inf = false, seen_esc = false;
    bool seen_build = false, seen_bytes = false, seen_auth = false;
    const char *py = find_python(&any_python);
    char *text;
    FILE *p;
    int st;

    if (py == NULL && !any_python) {
        FX_SKIP("python3 not found");
        api_metrics_free(m);
        return;
    }
    ck_assert_msg(py != NULL, "python3 found, but not prometheus_client "
                              "(install python3-prometheus-client)");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_metrics.XXXXXX",
             base && base[0] ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(script, sizeof(script), "%s/parse.py", tmpdir);
    snprintf(data, sizeof(data), "%s/metrics.txt", tmpdir);

    api_metrics_request(m, "/layers/{id}/export", 200, 123456);
    api_metrics_request(m, "/we\"ird\\\n", 500, 1);
    api_metrics_request(m, NULL, 404, 0);
    api_metrics_client_abort(m, "/layers/{id}/entries");
    api_metrics_export_started(m, "zstd");
    api_metrics_export_finished(m, "zstd", 0.25, 42, true);
    api_metrics_entry_stream_started(m);
    api_metrics_auth_failure(m, API_AUTH_FAIL_FORBIDDEN);
    text = render(m);
    write_file(script, parse_script);
    write_file(data, text);
    snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' 2>&1", py, script, data);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    while (fgets(line, sizeof(line), p) != NULL) {
        nlines++;
        if (strncmp(line, "family ", 7) == 0)
            nfam++;
        if (strcmp(line, "sample layerd_http_requests_total{code=200,route=/"
                         "layers/{id}/export} 1.0\n") == 0)
            seen_req = true;
        if (strcmp(line, "sample layerd_export_duration_seconds_bucket{le="
                         "+Inf} 1.0\n") == 0)
            seen_inf = true;
        if (strcmp(line, "sample layerd_http_response_bytes_total{route=/"
                         "layers/{id}/export} 123456.0\n") == 0)
            seen_bytes = true;
        if (strcmp(line, "sample layerd_http_requests_total{code=500,route=/"
                         "we\"ird\\<NL>} 1.0\n") == 0)
            seen_esc = true;
        if (strcmp(line, "sample layerd_auth_failures_total{reason="
                         "forbidden} 1.0\n") == 0)
            seen_auth = true;
        if (strcmp(line, "sample layerd_build_info{isal=2.30.0,microhttpd="
                         "0.9.75,openssl=3.0.11,version=0.1.0,zstd=1.5.4}"
                         " 1.0\n") == 0)
            seen_build = true;
        ck_assert_msg(strstr(line, "Error") == NULL, "parser: %s", line);
    }
    st = pclose(p);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "the parser rejected the text:\n%s", text);
    ck_assert_uint_eq(nfam, 11);
    ck_assert(seen_auth);
    ck_assert(nlines > nfam);
    ck_assert(seen_req);
    ck_assert(seen_inf);
    ck_assert_msg(seen_esc, "escaped label did not round-trip");
    ck_assert(seen_build);
    ck_assert(seen_bytes);
    layer_free(text);
    api_metrics_free(m);
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("registry");
    TCase *parser = tcase_create("parser");

    tcase_add_test(tc, test_fresh_registry_renders_every_family_at_zero);
    tcase_add_test(tc, test_known_sequence_renders_exact_samples);
    tcase_add_test(tc, test_worker_connections_and_refusals);
    tcase_add_test(tc, test_auth_failures_are_counted_by_reason_only);
    tcase_add_test(tc, test_counters_move_by_exactly_what_was_recorded);
    tcase_add_test(tc, test_histogram_buckets_are_cumulative_and_le_inclusive);
    tcase_add_test(tc, test_label_values_are_escaped);
    tcase_add_test(
        tc, test_overflowing_label_sets_go_to_other_and_totals_stay_exact);
    tcase_add_test(tc, test_bad_status_codes_are_counted_as_code_0);
    tcase_add_test(tc, test_null_registry_is_a_no_op);
    tcase_add_test(tc, test_out_of_memory_is_reported_and_leaves_errors_alone);
    tcase_add_test(tc, test_concurrent_updates_are_all_counted);
    tcase_add_test(parser, test_output_parses_with_prometheus_client);
    tcase_set_timeout(parser, 60);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, parser);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
