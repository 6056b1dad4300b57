/*
 * Fuzz target: W3C traceparent parsing and the span line writer.
 *
 * The input is a traceparent header value. Invariants checked:
 * - a value that parses has non-zero ids, and the span continuing it
 *   carries its trace id and formats a traceparent that parses back to
 *   the same trace id and to the span's own id;
 * - whatever the bytes, a span named after them, with them as an
 *   attribute and as its error message, ends as exactly one line that
 *   jansson parses (JSON sink) and as exactly one line (text sink), each
 *   at most 64 KiB.
 * Lines go to a memfd through its /proc/self/fd path, so the target
 * needs no temporary files.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "layer/error.h"
#include "layer/trace.h"

#define INPUT_MAX      8192
#define LINE_MAX_BYTES 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_traceparent: invariant broken: %s\n", what);
        abort();
    }
}

typedef struct memsink {
    int fd;
    layer_trace_sink *sink;
} memsink;

static void memsink_open(memsink *ms, layer_trace_format format)
{
    char path[64];

    ms->fd = memfd_create("fuzz_traceparent", MFD_CLOEXEC);
    check(ms->fd >= 0, "memfd_create");
    snprintf(path, sizeof(path), "/proc/self/fd/%d", ms->fd);
    check(layer_trace_sink_open(&ms->sink, path, format) == 0, "sink open");
}

/* What the sink received since the last call, NUL-terminated. */
static size_t memsink_take(memsink *ms, char *buf, size_t cap)
{
    ssize_t n = pread(ms->fd, buf, cap - 1, 0);

    check(n >= 0, "pread");
    buf[n] = '\0';
    check(ftruncate(ms->fd, 0) == 0, "ftruncate");
    return (size_t)n;
}

static size_t count_newlines(const char *s, size_t n)
{
    size_t c = 0;

    for (size_t i = 0; i < n; i++)
        c += s[i] == '\n';
    return c;
}

/* The line of a span continuing a remote trace names both ids. */
static void check_remote_line(memsink *ms, const char *trace_hex,
                              const uint8_t pid[8])
{
    static char buf[2 * LINE_MAX_BYTES];
    static const char digits[] = "0123456789abcdef";
    char pid_hex[17];
    json_error_t err;
    size_t n = memsink_take(ms, buf, sizeof(buf));
    json_t *j = json_loadb(buf, n, 0, &err);
    const char *s;

    for (size_t i = 0; i < 8; i++) {
        pid_hex[2 * i] = digits[pid[i] >> 4];
        pid_hex[2 * i + 1] = digits[pid[i] & 0xf];
    }
    pid_hex[16] = '\0';
    check(j != NULL, "remote span line is not JSON");
    s = json_string_value(json_object_get(j, "trace_id"));
    check(s != NULL && strcmp(s, trace_hex) == 0, "line trace_id");
    s = json_string_value(json_object_get(j, "parent_span_id"));
    check(s != NULL && strcmp(s, pid_hex) == 0, "line parent_span_id");
    json_decref(j);
}

static void check_round_trip(const char *value, memsink *ms)
{
    uint8_t tid[16], pid[8], tid2[16], pid2[8];
    static const uint8_t zero[16];
    layer_span *span = NULL;
    char tp[56], sid[17], hex[33];

    if (layer_traceparent_parse(tid, pid, value) != 0)
        return;
    check(memcmp(tid, zero, 16) != 0, "zero trace id accepted");
    check(memcmp(pid, zero, 8) != 0, "zero parent id accepted");
    check(layer_span_start_remote(&span, ms->sink, tid, pid, "fuzz") == 0,
          "start_remote");
    layer_traceparent_format(span, tp);
    check(strlen(tp) == 55, "traceparent length");
    check(layer_traceparent_parse(tid2, pid2, tp) == 0, "own traceparent");
    check(memcmp(tid, tid2, 16) == 0, "trace id changed");
    layer_span_id_hex(span, sid);
    check(memcmp(tp + 36, sid, 16) == 0, "span id not in traceparent");
    layer_span_trace_id_hex(span, hex);
    check(memcmp(tp + 3, hex, 32) == 0, "trace id hex");
    layer_span_end(span);
    check_remote_line(ms, hex, pid);
}

static void check_line(const char *value, memsink *ms, bool json)
{
    static char buf[2 * LINE_MAX_BYTES];
    layer_span *span = NULL, *child = NULL;
    size_t n;

    check(layer_span_start(&span, ms->sink, NULL, value) == 0, "start");
    layer_span_set_str(span, value, value);
    layer_span_set_str(span, "http.request.header.traceparent", value);
    layer_span_set_error_message(span, value);
    check(layer_span_start(&child, NULL, span, value) == 0, "child");
    layer_error_set(LAYER_EINVALID, "%s", value);
    layer_span_set_error(child, value, LAYER_EINVALID);
    layer_span_end(child);
    n = memsink_take(ms, buf, sizeof(buf));
    check(n > 0 && n <= LINE_MAX_BYTES && buf[n - 1] == '\n', "child line");
    check(count_newlines(buf, n) == 1, "child is one line");
    layer_span_end(span);
    n = memsink_take(ms, buf, sizeof(buf));
    check(n > 0 && n <= LINE_MAX_BYTES && buf[n - 1] == '\n', "root line");
    check(count_newlines(buf, n) == 1, "root is one line");
    if (json) {
        json_error_t err;
        json_t *j = json_loadb(buf, n, 0, &err);

        check(j != NULL, "line is not JSON");
        check(json_is_string(json_object_get(j, "name")), "name");
        check(json_is_object(json_object_get(j, "attributes")), "attrs");
        json_decref(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static memsink json_sink = {-1, NULL}, text_sink = {-1, NULL};
    static char value[INPUT_MAX + 1];

    if (json_sink.sink == NULL) {
        memsink_open(&json_sink, LAYER_TRACE_JSON);
        memsink_open(&text_sink, LAYER_TRACE_TEXT);
    }
    if (size > INPUT_MAX)
        size = INPUT_MAX;
    memcpy(value, data, size);
    value[size] = '\0';

    check_round_trip(value, &json_sink);
    check_line(value, &json_sink, true);
    check_line(value, &text_sink, false);
    return 0;
}
