/*
 * Tests for lib/trace.c: the JSON line a span becomes (read back with
 * jansson), ids and parentage, attributes and their caps, error wrapping,
 * escaping, the text form, sinks (none, stderr, file, reopen after a
 * rename, many threads) and W3C traceparent parsing.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/trace.h"

/* --- helpers ------------------------------------------------------- */

static char tmpdir[4096];

static void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(tmpdir, sizeof(tmpdir), "%s/test_trace.XXXXXX",
                     base && base[0] ? base : "/tmp");

    ck_assert_int_lt(n, (int)sizeof(tmpdir));
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void)
{
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", tmpdir, name);

    ck_assert_int_lt(n, (int)cap);
}

/* The whole file, NUL-terminated; free with layer_free(). */
static char *slurp(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    ck_assert_msg(f != NULL, "cannot open %s", path);
    do {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 65536;
            buf = layer_tryarray(buf, cap + 1, 1);
            ck_assert_ptr_nonnull(buf);
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;

    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* Open a JSON sink on a fresh file in tmpdir. */
static layer_trace_sink *json_sink(char *path, size_t cap, const char *name)
{
    layer_trace_sink *sink = NULL;

    tmp_path(path, cap, name);
    ck_assert_int_eq(layer_trace_sink_open(&sink, path, LAYER_TRACE_JSON), 0);
    return sink;
}

/* The only line of a file, parsed. */
static json_t *only_line(const char *path, char **raw)
{
    json_error_t jerr;
    size_t len;
    char *text = slurp(path, &len);
    json_t *j;

    ck_assert_uint_eq(count_lines(text), 1);
    ck_assert_int_eq(text[len - 1], '\n');
    j = json_loads(text, 0, &jerr);
    ck_assert_msg(j != NULL, "line does not parse: %s: %s", jerr.text, text);
    if (raw)
        *raw = text;
    else
        layer_free(text);
    return j;
}

/* Run one span through a file sink and return its line. */
static json_t *span_line(layer_span *span, layer_trace_sink *sink,
                         const char *path, char **raw)
{
    json_t *j;

    layer_span_end(span);
    j = only_line(path, raw);
    layer_trace_sink_free(sink);
    return j;
}

static const char *jstr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    ck_assert_msg(json_is_string(v), "%s is not a string", key);
    return json_string_value(v);
}

static bool is_lower_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* --- line shape ---------------------------------------------------- */

START_TEST(test_line_has_every_field_in_documented_order)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    char *raw = NULL;
    json_t *j;
    const char *order[] = {"\"trace_id\"",      "\"span_id\"",
                           "\"name\"",          "\"start_unix_nano\"",
                           "\"end_unix_nano\"", "\"duration_ms\"",
                           "\"status\"",        "\"attributes\""};
    const char *prev = NULL;

    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "http.request"), 0);
    layer_span_set_str(span, "http.request.method", "GET");
    j = span_line(span, sink, path, &raw);

    ck_assert(is_lower_hex(jstr(j, "trace_id"), 32));
    ck_assert(is_lower_hex(jstr(j, "span_id"), 16));
    ck_assert_ptr_null(json_object_get(j, "parent_span_id"));
    ck_assert_str_eq(jstr(j, "name"), "http.request");
    ck_assert(json_is_integer(json_object_get(j, "start_unix_nano")));
    ck_assert(json_is_integer(json_object_get(j, "end_unix_nano")));
    ck_assert(json_is_real(json_object_get(j, "duration_ms")));
    ck_assert_str_eq(jstr(j, "status"), "ok");
    ck_assert_ptr_null(json_object_get(j, "status_message"));
    ck_assert_ptr_null(json_object_get(j, "dropped_attributes_count"));
    ck_assert(json_is_object(json_object_get(j, "attributes")));
    ck_assert_uint_eq(json_object_size(j), 8);
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *at = strstr(raw, order[i]);

        ck_assert_msg(at != NULL, "%s missing", order[i]);
        ck_assert_msg(prev == NULL || at > prev, "%s out of order", order[i]);
        prev = at;
    }
    json_decref(j);
    layer_free(raw);
}
END_TEST

START_TEST(test_times_are_unix_nanos_and_duration_matches_them)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    struct timespec before, pause = {0, 20 * 1000 * 1000};
    json_t *j;
    json_int_t start, end;
    double dur;

    clock_gettime(CLOCK_REALTIME, &before);
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "sleep"), 0);
    nanosleep(&pause, NULL);
    j = span_line(span, sink, path, NULL);
    start = json_integer_value(json_object_get(j, "start_unix_nano"));
    end = json_integer_value(json_object_get(j, "end_unix_nano"));
    dur = json_real_value(json_object_get(j, "duration_ms"));

    /* Started after `before`, within a minute of it. */
    ck_assert_int_ge(start,
                     (json_int_t)before.tv_sec * 1000000000 + before.tv_nsec);
    ck_assert_int_lt(start, ((json_int_t)before.tv_sec + 60) * 1000000000);
    ck_assert_int_ge(end, start);
    ck_assert(dur >= 20.0);
    ck_assert(dur < 10000.0);
    /* duration_ms has microsecond precision and equals end - start. */
    ck_assert(abs((int)((double)(end - start) / 1000.0 - dur * 1000.0)) <= 1);
    json_decref(j);
}
END_TEST

START_TEST(test_child_shares_trace_id_and_names_its_parent)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *root = NULL, *child = NULL, *grandchild = NULL;
    char root_tid[33], root_sid[17], child_sid[17], other_tid[33];
    layer_span *other = NULL;
    json_error_t jerr;
    char *text, *line2, *line3;
    json_t *jc, *jg, *jr;

    ck_assert_int_eq(layer_span_start(&root, sink, NULL, "http.request"), 0);
    /* A NULL sink inherits the parent's. */
    ck_assert_int_eq(layer_span_start(&child, NULL, root, "layer.export"), 0);
    ck_assert_int_eq(layer_span_start(&grandchild, sink, child, "layer.reader"),
                     0);
    ck_assert_int_eq(layer_span_start(&other, NULL, NULL, "x"), 0);
    layer_span_trace_id_hex(root, root_tid);
    layer_span_id_hex(root, root_sid);
    layer_span_id_hex(child, child_sid);
    layer_span_trace_id_hex(other, other_tid);
    ck_assert_str_ne(root_sid, child_sid);
    ck_assert_str_ne(root_tid, other_tid);
    layer_span_end(other); /* NULL sink, no parent: written nowhere */
    layer_span_end(grandchild);
    layer_span_end(child);
    layer_span_end(root);
    layer_trace_sink_free(sink);

    text = slurp(path, NULL);
    ck_assert_uint_eq(count_lines(text), 3);
    line2 = strchr(text, '\n') + 1;
    line3 = strchr(line2, '\n') + 1;
    jg = json_loads(text, JSON_DISABLE_EOF_CHECK, &jerr);
    jc = json_loads(line2, JSON_DISABLE_EOF_CHECK, &jerr);
    jr = json_loads(line3, JSON_DISABLE_EOF_CHECK, &jerr);
    ck_assert(jg && jc && jr);
    ck_assert_str_eq(jstr(jg, "name"), "layer.reader");
    ck_assert_str_eq(jstr(jc, "name"), "layer.export");
    ck_assert_str_eq(jstr(jr, "name"), "http.request");
    ck_assert_str_eq(jstr(jr, "trace_id"), root_tid);
    ck_assert_str_eq(jstr(jc, "trace_id"), root_tid);
    ck_assert_str_eq(jstr(jg, "trace_id"), root_tid);
    ck_assert_str_eq(jstr(jr, "span_id"), root_sid);
    ck_assert_str_eq(jstr(jc, "parent_span_id"), root_sid);
    ck_assert_str_eq(jstr(jg, "parent_span_id"), child_sid);
    ck_assert_ptr_null(json_object_get(jr, "parent_span_id"));
    json_decref(jg);
    json_decref(jc);
    json_decref(jr);
    layer_free(text);
}
END_TEST

START_TEST(test_ids_are_random_and_never_zero)
{
    char seen[64][17], zero[17];
    layer_span *s = NULL;

    memset(zero, '0', 16);
    zero[16] = '\0';
    for (int i = 0; i < 64; i++) {
        char tid[33];

        ck_assert_int_eq(layer_span_start(&s, NULL, NULL, "id"), 0);
        layer_span_id_hex(s, seen[i]);
        layer_span_trace_id_hex(s, tid);
        ck_assert_str_ne(seen[i], zero);
        ck_assert(is_lower_hex(tid, 32));
        ck_assert_str_ne(tid, "00000000000000000000000000000000");
        for (int k = 0; k < i; k++)
            ck_assert_str_ne(seen[i], seen[k]);
        layer_span_end(s);
    }
}
END_TEST

/* --- attributes ---------------------------------------------------- */

START_TEST(test_attributes_keep_their_types_and_last_value)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    json_t *j, *a;

    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "attrs"), 0);
    layer_span_set_str(span, "url.path", "/layers/abc/export");
    layer_span_set_int(span, "http.response.status_code", 200);
    layer_span_set_int(span, "min", INT64_MIN);
    layer_span_set_int(span, "max", INT64_MAX);
    layer_span_set_bool(span, "yes", true);
    layer_span_set_bool(span, "no", false);
    layer_span_set_str(span, "empty", "");
    /* A later value replaces the earlier one, whatever its type. */
    layer_span_set_str(span, "replaced", "first");
    layer_span_set_int(span, "replaced", 7);
    layer_span_set_int(span, "http.response.status_code", 404);
    /* NULL key or value: nothing happens. */
    layer_span_set_str(span, NULL, "v");
    layer_span_set_str(span, "k", NULL);
    j = span_line(span, sink, path, NULL);
    a = json_object_get(j, "attributes");
    ck_assert_uint_eq(json_object_size(a), 8);
    ck_assert_str_eq(jstr(a, "url.path"), "/layers/abc/export");
    ck_assert_int_eq(
        json_integer_value(json_object_get(a, "http.response.status_code")),
        404);
    ck_assert(json_integer_value(json_object_get(a, "min")) == INT64_MIN);
    ck_assert(json_integer_value(json_object_get(a, "max")) == INT64_MAX);
    ck_assert(json_is_true(json_object_get(a, "yes")));
    ck_assert(json_is_false(json_object_get(a, "no")));
    ck_assert_str_eq(jstr(a, "empty"), "");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "replaced")), 7);
    json_decref(j);
}
END_TEST

START_TEST(test_attributes_past_32_are_dropped_and_counted)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    json_t *j, *a;

    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "many"), 0);
    for (int i = 0; i < 40; i++) {
        char key[16];

        snprintf(key, sizeof(key), "k%d", i);
        layer_span_set_int(span, key, i);
    }
    /* Replacing an existing key still works when full. */
    layer_span_set_int(span, "k0", 100);
    j = span_line(span, sink, path, NULL);
    a = json_object_get(j, "attributes");
    ck_assert_uint_eq(json_object_size(a), 32);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "k0")), 100);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "k31")), 31);
    ck_assert_ptr_null(json_object_get(a, "k32"));
    ck_assert_int_eq(
        json_integer_value(json_object_get(j, "dropped_attributes_count")), 8);
    json_decref(j);
}
END_TEST

START_TEST(test_long_values_are_cut_at_a_character_with_an_ellipsis)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    size_t n = 3000; /* 3000 x "é" = 6000 bytes */
    char *big = layer_trymalloc(2 * n + 1), *ascii = layer_trymalloc(5001);
    const char *v;
    json_t *j, *a;

    for (size_t i = 0; i < n; i++)
        memcpy(big + 2 * i, "\xc3\xa9", 2);
    big[2 * n] = '\0';
    memset(ascii, 'a', 5000);
    ascii[5000] = '\0';
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, ascii), 0);
    layer_span_set_str(span, "utf8", big);
    layer_span_set_str(span, "ascii", ascii);
    layer_span_set_str(span, "exact", ascii + 5000 - 4096);
    /* A long key is cut too, and setting it again replaces its value. */
    layer_span_set_str(span, ascii + 5000 - 200, "first");
    layer_span_set_str(span, ascii + 5000 - 200, "second");
    j = span_line(span, sink, path, NULL);
    a = json_object_get(j, "attributes");

    /* 4093 bytes would split an "é": 4092 bytes of text, then "...". */
    v = jstr(a, "utf8");
    ck_assert_uint_eq(strlen(v), 4092 + 3);
    ck_assert_mem_eq(v, big, 4092);
    ck_assert_str_eq(v + 4092, "...");
    v = jstr(a, "ascii");
    ck_assert_uint_eq(strlen(v), 4096);
    ck_assert_str_eq(v + 4093, "...");
    ck_assert_uint_eq(strlen(jstr(a, "exact")), 4096);
    ck_assert_str_eq(jstr(a, "exact"), ascii + 5000 - 4096);
    ck_assert_uint_eq(json_object_size(a), 4);
    {
        const char *key;
        json_t *val;
        bool found = false;

        json_object_foreach(a, key, val)
        {
            if (strlen(key) == 128 && strcmp(key + 125, "...") == 0 &&
                strncmp(key, ascii, 125) == 0) {
                ck_assert_str_eq(json_string_value(val), "second");
                found = true;
            }
        }
        ck_assert(found);
    }
    v = jstr(j, "name");
    ck_assert_uint_eq(strlen(v), 256);
    ck_assert_str_eq(v + 253, "...");
    json_decref(j);
    layer_free(big);
    layer_free(ascii);
}
END_TEST

START_TEST(test_line_never_exceeds_64k_and_drops_what_does_not_fit)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    char *ctl = layer_trymalloc(4097), *raw = NULL;
    json_t *j, *a;
    size_t kept;

    /* Each value escapes to 6 x 4096 bytes: only two fit in 64 KiB. */
    memset(ctl, '\x01', 4096);
    ctl[4096] = '\0';
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "huge"), 0);
    for (int i = 0; i < 32; i++) {
        char key[16];

        snprintf(key, sizeof(key), "v%d", i);
        layer_span_set_str(span, key, i == 5 ? "small" : ctl);
    }
    j = span_line(span, sink, path, &raw);
    ck_assert_uint_le(strlen(raw), 65536);
    a = json_object_get(j, "attributes");
    kept = json_object_size(a);
    ck_assert_uint_eq(kept, 3);
    /* The small one after the big ones still made it in. */
    ck_assert_str_eq(jstr(a, "v5"), "small");
    ck_assert_uint_eq(strlen(jstr(a, "v0")), 4096);
    ck_assert_int_eq(
        json_integer_value(json_object_get(j, "dropped_attributes_count")),
        32 - (json_int_t)kept);
    json_decref(j);
    layer_free(raw);
    layer_free(ctl);
}
END_TEST

/* --- escaping ------------------------------------------------------ */

START_TEST(test_control_characters_and_quotes_round_trip)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    const char *nasty = "a\"b\\c\n\t\r\x01\x1f\x7f/\xc3\xa9\xe2\x82\xac"
                        "\xf0\x9f\x98\x80 end";
    char *raw = NULL;
    json_t *j;

    ck_assert_int_eq(layer_span_start(&span, sink, NULL, nasty), 0);
    layer_span_set_str(span, nasty, nasty);
    j = span_line(span, sink, path, &raw);
    ck_assert_str_eq(jstr(j, "name"), nasty);
    ck_assert_str_eq(jstr(json_object_get(j, "attributes"), nasty), nasty);
    ck_assert_ptr_nonnull(strstr(raw, "\\u0001\\u001f\\u007f"));
    ck_assert_ptr_nonnull(strstr(raw, "\\u000a\\u0009\\u000d"));
    /* No raw control byte reaches the file; one line only. */
    for (const char *p = raw; *p; p++)
        ck_assert(*p == '\n' || (unsigned char)*p >= 0x20);
    json_decref(j);
    layer_free(raw);
}
END_TEST

START_TEST(test_invalid_utf8_bytes_become_backslash_x_hex)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"a\xff"
         "b",
         "a\\xffb"},
        {"\xc3", "\\xc3"},                            /* truncated sequence */
        {"\xc0\xaf", "\\xc0\\xaf"},                   /* overlong '/' */
        {"\xe0\x80\xaf", "\\xe0\\x80\\xaf"},          /* overlong, 3 bytes */
        {"\xed\xa0\x80", "\\xed\\xa0\\x80"},          /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"}, /* > U+10FFFF */
        {"\xf5", "\\xf5"},
        {"\x80x", "\\x80x"}, /* stray continuation byte */
        {"\xc3\xa9\xff\xc3\xa9", "\xc3\xa9\\xff\xc3\xa9"},
        {"\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"}, /* U+10FFFF is valid */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[4200], name[32];
        layer_trace_sink *sink;
        layer_span *span = NULL;
        json_t *j;

        snprintf(name, sizeof(name), "u%zu.jsonl", i);
        sink = json_sink(path, sizeof(path), name);
        ck_assert_int_eq(layer_span_start(&span, sink, NULL, "utf8"), 0);
        layer_span_set_str(span, "v", cases[i].in);
        j = span_line(span, sink, path, NULL);
        ck_assert_msg(strcmp(jstr(json_object_get(j, "attributes"), "v"),
                             cases[i].out) == 0,
                      "case %zu", i);
        json_decref(j);
    }
}
END_TEST

/* --- errors -------------------------------------------------------- */

START_TEST(test_error_is_wrapped_once_with_errno_name)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    char expect[512];
    json_t *j;

    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "layer.export"), 0);
    layer_error_set_errno(LAYER_ENOTFOUND, ENOENT, "cannot open %s",
                          "/var/lib/x");
    snprintf(expect, sizeof(expect), "layer.export failed: %s (ENOENT)",
             layer_error_last());
    layer_span_set_error(span, "layer.export", LAYER_ENOTFOUND);
    /* The thread's error is left alone. */
    ck_assert_int_eq(layer_error_last_code(), LAYER_ENOTFOUND);
    ck_assert_int_eq(layer_error_errno(), ENOENT);
    /* A second failure up the chain keeps the first message. */
    layer_error_set(LAYER_EINVALID, "something else");
    layer_span_set_error(span, "outer", LAYER_EINVALID);
    layer_span_set_error_message(span, "custom");
    j = span_line(span, sink, path, NULL);
    ck_assert_str_eq(jstr(j, "status"), "error");
    ck_assert_str_eq(jstr(j, "status_message"), expect);
    ck_assert_str_eq(
        expect, "layer.export failed: cannot open /var/lib/x: No such file or "
                "directory (ENOENT)");
    ck_assert_str_eq(jstr(json_object_get(j, "attributes"), "error.type"),
                     "LAYER_ENOTFOUND");
    json_decref(j);
}
END_TEST

START_TEST(test_error_without_errno_has_no_errno_part)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    json_t *j;

    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "store.resolve"), 0);
    layer_error_set(LAYER_EINVALID, "bad layer id '%s'", "..");
    layer_span_set_error(span, NULL, LAYER_EINVALID); /* title: span name */
    j = span_line(span, sink, path, NULL);
    ck_assert_str_eq(jstr(j, "status_message"),
                     "store.resolve failed: bad layer id '..'");
    json_decref(j);
}
END_TEST

START_TEST(test_error_with_stale_message_names_the_code)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    json_t *j;

    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "op"), 0);
    layer_error_set_errno(LAYER_ERROR, EIO, "old failure");
    layer_span_set_error(span, "layer.export", 0); /* success: ignored */
    layer_span_set_error(span, "layer.export", LAYER_ECANCELED);
    j = span_line(span, sink, path, NULL);
    ck_assert_str_eq(jstr(j, "status_message"),
                     "layer.export failed: LAYER_ECANCELED");
    json_decref(j);
}
END_TEST

START_TEST(test_long_error_message_is_cut_with_an_ellipsis)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL, *span2 = NULL;
    char title[3001];
    const char *msg;
    json_t *j;

    memset(title, 't', 3000);
    title[3000] = '\0';
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "op"), 0);
    ck_assert_int_eq(layer_span_start(&span2, sink, span, "op2"), 0);
    layer_error_set(LAYER_EINVALID, "bad");
    layer_span_set_error(span2, title, LAYER_EINVALID);
    layer_span_set_error_message(span, title);
    layer_span_end(span2);
    layer_span_end(span);
    layer_trace_sink_free(sink);
    {
        char *text = slurp(path, NULL);
        char *nl = strchr(text, '\n');
        json_error_t jerr;

        for (int k = 0; k < 2; k++) {
            j = json_loads(k == 0 ? text : nl + 1, JSON_DISABLE_EOF_CHECK,
                           &jerr);
            ck_assert_ptr_nonnull(j);
            msg = jstr(j, "status_message");
            ck_assert_uint_eq(strlen(msg), 2048);
            ck_assert_str_eq(msg + 2045, "...");
            ck_assert(strncmp(msg, title, 2045) == 0);
            json_decref(j);
        }
        layer_free(text);
    }
}
END_TEST

START_TEST(test_custom_error_message_is_kept)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    json_t *j;

    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "http.request"), 0);
    layer_span_set_error_message(span, "client went away");
    layer_span_set_error_message(span, "second");
    j = span_line(span, sink, path, NULL);
    ck_assert_str_eq(jstr(j, "status"), "error");
    ck_assert_str_eq(jstr(j, "status_message"), "client went away");
    json_decref(j);
}
END_TEST

START_TEST(test_tracing_leaves_error_state_and_errno_alone)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    layer_span *span = NULL;
    char before[1024];

    layer_error_set_errno(LAYER_EBROKEN, EIO, "layer %s is broken", "x");
    snprintf(before, sizeof(before), "%s", layer_error_last());
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "t"), 0);
    /* An allocation failure inside a setter is absorbed. */
    layer_alloc_fail_after(1);
    layer_span_set_str(span, "a", "value");
    layer_alloc_fail_after(0);
    ck_assert_str_eq(layer_error_last(), before);
    ck_assert_int_eq(layer_error_last_code(), LAYER_EBROKEN);
    ck_assert_int_eq(layer_error_errno(), EIO);
    errno = EXDEV;
    layer_span_set_int(span, "b", 1);
    layer_span_end(span);
    ck_assert_int_eq(errno, EXDEV);
    ck_assert_str_eq(layer_error_last(), before);
    ck_assert_int_eq(layer_error_errno(), EIO);
    layer_trace_sink_free(sink);
}
END_TEST

START_TEST(test_span_start_reports_enomem)
{
    layer_span *span = NULL;

    layer_alloc_fail_after(1);
    ck_assert_int_eq(layer_span_start(&span, NULL, NULL, "x"), LAYER_ENOMEM);
    ck_assert_ptr_null(span);
    layer_alloc_fail_after(2);
    ck_assert_int_eq(layer_span_start(&span, NULL, NULL, "x"), LAYER_ENOMEM);
    ck_assert_ptr_null(span);
    layer_alloc_fail_after(0);
}
END_TEST

START_TEST(test_null_span_is_accepted_everywhere)
{
    char tid[33], sid[17], tp[56];

    layer_span_set_str(NULL, "k", "v");
    layer_span_set_int(NULL, "k", 1);
    layer_span_set_bool(NULL, "k", true);
    layer_span_set_error(NULL, "t", LAYER_ERROR);
    layer_span_set_error_message(NULL, "m");
    layer_span_end(NULL);
    layer_trace_sink_free(NULL);
    layer_span_trace_id_hex(NULL, tid);
    layer_span_id_hex(NULL, sid);
    layer_traceparent_format(NULL, tp);
    ck_assert_str_eq(tid, "00000000000000000000000000000000");
    ck_assert_str_eq(sid, "0000000000000000");
    ck_assert_str_eq(tp,
                     "00-00000000000000000000000000000000-0000000000000000-00");
    ck_assert_int_eq(layer_trace_sink_reopen(NULL), 0);
    ck_assert(layer_trace_sink_is_null(NULL));
}
END_TEST

/* --- sinks --------------------------------------------------------- */

START_TEST(test_none_sink_discards_but_spans_still_have_ids)
{
    layer_trace_sink *sink = NULL;
    layer_span *span = NULL;
    char tid[33];

    ck_assert_int_eq(layer_trace_sink_open(&sink, "none", LAYER_TRACE_JSON), 0);
    ck_assert(layer_trace_sink_is_null(sink));
    ck_assert_int_eq(layer_trace_sink_reopen(sink), 0);
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "x"), 0);
    layer_span_trace_id_hex(span, tid);
    ck_assert(is_lower_hex(tid, 32));
    ck_assert_str_ne(tid, "00000000000000000000000000000000");
    layer_span_set_str(span, "k", "v");
    layer_span_end(span);
    layer_trace_sink_free(sink);
}
END_TEST

START_TEST(test_dash_sink_writes_to_stderr)
{
    char path[4200];
    layer_trace_sink *sink = NULL;
    layer_span *span = NULL;
    int fd, saved;
    json_t *j;

    tmp_path(path, sizeof(path), "stderr.txt");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    ck_assert_int_eq(layer_trace_sink_open(&sink, "-", LAYER_TRACE_JSON), 0);
    ck_assert(!layer_trace_sink_is_null(sink));
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "to.stderr"), 0);
    layer_span_end(span);
    ck_assert_int_eq(layer_trace_sink_reopen(sink), 0); /* a no-op */
    layer_trace_sink_free(sink);
    /* Freeing the sink does not close stderr. */
    ck_assert_int_ne(fcntl(STDERR_FILENO, F_GETFD), -1);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    j = only_line(path, NULL);
    ck_assert_str_eq(jstr(j, "name"), "to.stderr");
    json_decref(j);
}
END_TEST

START_TEST(test_sink_open_rejects_bad_specs)
{
    layer_trace_sink *sink = NULL;
    char path[4200];

    ck_assert_int_eq(layer_trace_sink_open(&sink, "", LAYER_TRACE_JSON),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_trace_sink_open(&sink, NULL, LAYER_TRACE_JSON),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_trace_sink_open(&sink, "-", (layer_trace_format)7),
                     LAYER_EINVALID);
    tmp_path(path, sizeof(path), "no/such/dir/t.jsonl");
    ck_assert_int_eq(layer_trace_sink_open(&sink, path, LAYER_TRACE_JSON),
                     LAYER_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "t.jsonl"));
    ck_assert_int_eq(layer_error_errno(), ENOENT);
    /* A directory cannot be a trace file. */
    ck_assert_int_eq(layer_trace_sink_open(&sink, tmpdir, LAYER_TRACE_JSON),
                     LAYER_ERROR);
    ck_assert_int_eq(layer_error_errno(), EISDIR);
    ck_assert_ptr_null(sink);
}
END_TEST

START_TEST(test_file_sink_appends_and_creates_mode_0640)
{
    char path[4200];
    layer_trace_sink *sink = NULL;
    layer_span *span = NULL;
    struct stat st;
    char *text;
    FILE *f;

    tmp_path(path, sizeof(path), "append.jsonl");
    f = fopen(path, "w");
    fputs("existing line\n", f);
    fclose(f);
    ck_assert_int_eq(layer_trace_sink_open(&sink, path, LAYER_TRACE_JSON), 0);
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "x"), 0);
    layer_span_end(span);
    layer_trace_sink_free(sink);
    text = slurp(path, NULL);
    ck_assert_uint_eq(count_lines(text), 2);
    ck_assert(strncmp(text, "existing line\n{\"trace_id\"", 25) == 0);
    layer_free(text);

    tmp_path(path, sizeof(path), "fresh.jsonl");
    umask(0);
    ck_assert_int_eq(layer_trace_sink_open(&sink, path, LAYER_TRACE_JSON), 0);
    layer_trace_sink_free(sink);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
}
END_TEST

START_TEST(test_reopen_after_rename_writes_to_the_new_file)
{
    char path[4200], rotated[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "rot.jsonl");
    layer_span *span = NULL;
    char *text;

    tmp_path(rotated, sizeof(rotated), "rot.jsonl.1");
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "before"), 0);
    layer_span_end(span);
    ck_assert_int_eq(rename(path, rotated), 0);
    /* Until the reopen, lines follow the renamed file. */
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "between"), 0);
    layer_span_end(span);
    ck_assert_int_eq(layer_trace_sink_reopen(sink), 0);
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "after"), 0);
    layer_span_end(span);
    layer_trace_sink_free(sink);

    text = slurp(rotated, NULL);
    ck_assert_uint_eq(count_lines(text), 2);
    ck_assert_ptr_nonnull(strstr(text, "\"name\":\"before\""));
    ck_assert_ptr_nonnull(strstr(text, "\"name\":\"between\""));
    layer_free(text);
    text = slurp(path, NULL);
    ck_assert_uint_eq(count_lines(text), 1);
    ck_assert_ptr_nonnull(strstr(text, "\"name\":\"after\""));
    layer_free(text);
}
END_TEST

START_TEST(test_reopen_failure_keeps_the_old_file)
{
    char dir[4200], path[4200];
    layer_trace_sink *sink = NULL;
    layer_span *span = NULL;
    char *text;

    tmp_path(dir, sizeof(dir), "sub");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    tmp_path(path, sizeof(path), "sub/t.jsonl");
    ck_assert_int_eq(layer_trace_sink_open(&sink, path, LAYER_TRACE_JSON), 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    ck_assert_int_eq(layer_trace_sink_reopen(sink), LAYER_ENOTFOUND);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "x"), 0);
    layer_span_end(span); /* goes to the unlinked file, no crash */
    ck_assert_int_eq(layer_trace_sink_reopen(sink), 0);
    ck_assert_int_eq(layer_span_start(&span, sink, NULL, "y"), 0);
    layer_span_end(span);
    layer_trace_sink_free(sink);
    text = slurp(path, NULL);
    ck_assert_uint_eq(count_lines(text), 1);
    ck_assert_ptr_nonnull(strstr(text, "\"name\":\"y\""));
    layer_free(text);
}
END_TEST

#define NTHREADS 32
#define NSPANS   200

typedef struct writer_arg {
    layer_trace_sink *sink;
    int id;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    char pad[600];

    /* Lines of a few hundred bytes up to ~1.5 KiB, so a torn write would
     * show. */
    memset(pad, 'a' + a->id % 26, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < NSPANS; i++) {
        layer_span *root = NULL, *child = NULL;

        if (layer_span_start(&root, a->sink, NULL, "worker") < 0)
            return p;
        layer_span_set_int(root, "thread", a->id);
        layer_span_set_int(root, "i", i);
        layer_span_set_str(root, "pad", pad + (i % 7) * 80);
        if (i % 2 == 0 && layer_span_start(&child, NULL, root, "child") == 0)
            layer_span_end(child);
        layer_span_end(root);
    }
    return NULL;
}

/* Every line parses, names its thread and index, and each (thread, i)
 * root appears exactly once across the given files. */
static void check_worker_lines(char **paths, size_t npaths)
{
    static unsigned char seen[NTHREADS][NSPANS];
    size_t roots = 0, children = 0;

    memset(seen, 0, sizeof(seen));
    for (size_t f = 0; f < npaths; f++) {
        char *text = slurp(paths[f], NULL);
        char *line = text, *nl;

        while ((nl = strchr(line, '\n')) != NULL) {
            json_error_t jerr;
            json_t *j, *a;

            *nl = '\0';
            j = json_loads(line, 0, &jerr);
            ck_assert_msg(j != NULL, "torn line: %s (%.80s)", jerr.text, line);
            if (strcmp(jstr(j, "name"), "worker") == 0) {
                json_int_t t, i;

                a = json_object_get(j, "attributes");
                t = json_integer_value(json_object_get(a, "thread"));
                i = json_integer_value(json_object_get(a, "i"));
                ck_assert(t >= 0 && t < NTHREADS && i >= 0 && i < NSPANS);
                ck_assert_int_eq(seen[t][i], 0);
                seen[t][i] = 1;
                roots++;
            } else {
                ck_assert_str_eq(jstr(j, "name"), "child");
                children++;
            }
            json_decref(j);
            line = nl + 1;
        }
        ck_assert_str_eq(line, ""); /* ends with a newline */
        layer_free(text);
    }
    ck_assert_uint_eq(roots, NTHREADS * NSPANS);
    ck_assert_uint_eq(children, NTHREADS * NSPANS / 2);
}

START_TEST(test_concurrent_spans_never_interleave)
{
    char path[4200];
    char *paths[1] = {path};
    layer_trace_sink *sink = json_sink(path, sizeof(path), "mt.jsonl");
    pthread_t th[NTHREADS];
    writer_arg args[NTHREADS];

    for (int i = 0; i < NTHREADS; i++) {
        args[i].sink = sink;
        args[i].id = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        void *r;

        pthread_join(th[i], &r);
        ck_assert_ptr_null(r);
    }
    layer_trace_sink_free(sink);
    check_worker_lines(paths, 1);
}
END_TEST

START_TEST(test_reopen_while_writing_loses_no_line)
{
    char path[4200];
    char rotated[8][4200];
    char *paths[9];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "live.jsonl");
    pthread_t th[NTHREADS];
    writer_arg args[NTHREADS];
    struct timespec pause = {0, 2 * 1000 * 1000};

    for (int i = 0; i < NTHREADS; i++) {
        args[i].sink = sink;
        args[i].id = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    /* logrotate's dance, eight times, while the writers run. */
    for (int r = 0; r < 8; r++) {
        char name[32];

        nanosleep(&pause, NULL);
        snprintf(name, sizeof(name), "live.jsonl.%d", r);
        tmp_path(rotated[r], sizeof(rotated[r]), name);
        ck_assert_int_eq(rename(path, rotated[r]), 0);
        ck_assert_int_eq(layer_trace_sink_reopen(sink), 0);
        paths[r] = rotated[r];
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    layer_trace_sink_free(sink);
    paths[8] = path;
    check_worker_lines(paths, 9);
}
END_TEST

typedef struct fifo_reader {
    const char *path;
    char *buf;
    size_t len;
} fifo_reader;

static void *read_fifo(void *p)
{
    fifo_reader *r = p;
    size_t cap = 0;
    ssize_t n;
    int fd = open(r->path, O_RDONLY);

    if (fd < 0)
        return p;
    do {
        if (cap - r->len < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            r->buf = layer_tryarray(r->buf, cap + 1, 1);
            if (r->buf == NULL)
                break;
        }
        n = read(fd, r->buf + r->len, cap - r->len);
        if (n > 0)
            r->len += (size_t)n;
    } while (n > 0 || (n < 0 && errno == EINTR));
    close(fd);
    if (r->buf != NULL)
        r->buf[r->len] = '\0';
    return NULL;
}

#define NPIPE_THREADS 8
#define NPIPE_SPANS   50

static void *long_writer(void *p)
{
    layer_trace_sink *sink = p;
    char *big = layer_trymalloc(4001);

    /* 3 x 4000 bytes: each line is several times PIPE_BUF. */
    if (big == NULL)
        return p;
    memset(big, 'z', 4000);
    big[4000] = '\0';
    for (int i = 0; i < NPIPE_SPANS; i++) {
        layer_span *span = NULL;

        if (layer_span_start(&span, sink, NULL, "long") < 0)
            break;
        layer_span_set_str(span, "a", big);
        layer_span_set_str(span, "b", big);
        layer_span_set_str(span, "c", big);
        layer_span_end(span);
    }
    layer_free(big);
    return NULL;
}

START_TEST(test_long_lines_to_a_pipe_never_interleave)
{
    char path[4200];
    layer_trace_sink *sink = NULL;
    fifo_reader r = {path, NULL, 0};
    pthread_t reader, th[NPIPE_THREADS];
    size_t lines = 0;
    char *line, *nl;

    tmp_path(path, sizeof(path), "fifo");
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_int_eq(pthread_create(&reader, NULL, read_fifo, &r), 0);
    ck_assert_int_eq(layer_trace_sink_open(&sink, path, LAYER_TRACE_JSON), 0);
    for (int i = 0; i < NPIPE_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, long_writer, sink), 0);
    for (int i = 0; i < NPIPE_THREADS; i++)
        pthread_join(th[i], NULL);
    layer_trace_sink_free(sink); /* the reader sees EOF */
    pthread_join(reader, NULL);
    ck_assert_ptr_nonnull(r.buf);
    for (line = r.buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)(nl - line), 0, &jerr);

        ck_assert_msg(j != NULL, "torn line: %s", jerr.text);
        ck_assert_uint_eq(strlen(jstr(json_object_get(j, "attributes"), "c")),
                          4000);
        json_decref(j);
        lines++;
    }
    ck_assert_uint_eq(lines, NPIPE_THREADS * NPIPE_SPANS);
    layer_free(r.buf);
}
END_TEST

START_TEST(test_text_format_is_one_readable_line)
{
    char path[4200];
    layer_trace_sink *sink = NULL;
    layer_span *root = NULL, *span = NULL;
    char tid[33], sid[17], pid[17], expect[256];
    char *text;
    const char *rest;

    tmp_path(path, sizeof(path), "t.txt");
    ck_assert_int_eq(layer_trace_sink_open(&sink, path, LAYER_TRACE_TEXT), 0);
    ck_assert_int_eq(layer_span_start(&root, sink, NULL, "http.request"), 0);
    ck_assert_int_eq(layer_span_start(&span, sink, root, "layer.export"), 0);
    layer_span_set_str(span, "url.path", "/layers/a b");
    layer_span_set_int(span, "n", 42);
    layer_span_set_bool(span, "ok", true);
    layer_span_set_str(span, "plain", "gzip");
    layer_span_set_str(span, "empty", "");
    layer_error_set(LAYER_EINVALID, "line\nbreak");
    layer_span_set_error(span, "layer.export", LAYER_EINVALID);
    layer_span_trace_id_hex(span, tid);
    layer_span_id_hex(span, sid);
    layer_span_id_hex(root, pid);
    layer_span_end(span);
    layer_span_end(root);
    layer_trace_sink_free(sink);

    text = slurp(path, NULL);
    ck_assert_uint_eq(count_lines(text), 2);
    /* 2024-01-02T03:04:05.678Z */
    ck_assert_int_eq(text[4], '-');
    ck_assert_int_eq(text[10], 'T');
    ck_assert_int_eq(text[19], '.');
    ck_assert_int_eq(text[23], 'Z');
    rest = text + 24;
    ck_assert(strncmp(rest, " layer.export error ", 20) == 0);
    rest = strstr(rest, "ms trace=");
    ck_assert_ptr_nonnull(rest);
    snprintf(expect, sizeof(expect),
             "ms trace=%s span=%s parent=%s error=\"layer.export failed: "
             "line\\u000abreak\" url.path=\"/layers/a b\" n=42 ok=true "
             "plain=gzip empty=\"\" error.type=LAYER_EINVALID\n",
             tid, sid, pid);
    ck_assert(strncmp(rest, expect, strlen(expect)) == 0);
    rest = strchr(text, '\n') + 1;
    ck_assert_ptr_nonnull(strstr(rest, " http.request ok "));
    layer_free(text);
}
END_TEST

/* --- W3C traceparent ----------------------------------------------- */

START_TEST(test_traceparent_parse_table)
{
    static const struct {
        const char *value;
        bool valid;
    } cases[] = {
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", true},
        {" \t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", true},
        /* future versions: 55 characters, or more after a '-' */
        {"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
        {"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", true},
        {"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01xyz", false},
        {"fe-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-", true},
        /* version 00 is exactly 55 characters */
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", false},
        {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
        {"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
        {"0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
        /* uppercase hex */
        {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A", false},
        /* all-zero ids */
        {"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
        /* wrong lengths and separators */
        {"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-701", false},
        {"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736--00f067aa0ba902b7-01", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0 ", false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r", false},
        {"00- bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
        {"", false},
        {"   ", false},
        {"00", false},
        {"garbage", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t tid[16], pid[8];
        static const uint8_t want_tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3,
                                             0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d,
                                             0x0e, 0x0e, 0x47, 0x36};
        static const uint8_t want_pid[8] = {0x00, 0xf0, 0x67, 0xaa,
                                            0x0b, 0xa9, 0x02, 0xb7};
        int rc = layer_traceparent_parse(tid, pid, cases[i].value);

        if (cases[i].valid) {
            ck_assert_msg(rc == 0, "case %zu '%s' should parse: %s", i,
                          cases[i].value, layer_error_last());
            ck_assert_mem_eq(tid, want_tid, 16);
            ck_assert_mem_eq(pid, want_pid, 8);
        } else {
            ck_assert_msg(rc == LAYER_EINVALID, "case %zu '%s' should fail", i,
                          cases[i].value);
        }
    }
    ck_assert_int_eq(layer_traceparent_parse(NULL, NULL, NULL), LAYER_EINVALID);
}
END_TEST

START_TEST(test_remote_parent_continues_the_trace)
{
    char path[4200];
    layer_trace_sink *sink = json_sink(path, sizeof(path), "t.jsonl");
    const char *in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    uint8_t tid[16], pid[8], tid2[16], pid2[8];
    layer_span *span = NULL;
    char tp[56], sid[17];
    json_t *j;

    ck_assert_int_eq(layer_traceparent_parse(tid, pid, in), 0);
    ck_assert_int_eq(
        layer_span_start_remote(&span, sink, tid, pid, "http.request"), 0);
    layer_traceparent_format(span, tp);
    layer_span_id_hex(span, sid);
    ck_assert_uint_eq(strlen(tp), 55);
    ck_assert(strncmp(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36) == 0);
    ck_assert(strncmp(tp + 36, sid, 16) == 0);
    ck_assert_str_eq(tp + 52, "-01");
    /* What we send parses back to our own ids. */
    ck_assert_int_eq(layer_traceparent_parse(tid2, pid2, tp), 0);
    ck_assert_mem_eq(tid2, tid, 16);
    j = span_line(span, sink, path, NULL);
    ck_assert_str_eq(jstr(j, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(jstr(j, "parent_span_id"), "00f067aa0ba902b7");
    ck_assert_str_eq(jstr(j, "span_id"), sid);
    json_decref(j);
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *line = tcase_create("line");
    TCase *attrs = tcase_create("attributes");
    TCase *errors = tcase_create("errors");
    TCase *sinks = tcase_create("sinks");
    TCase *w3c = tcase_create("traceparent");

    tcase_add_checked_fixture(line, make_tmpdir, remove_tmpdir);
    tcase_add_checked_fixture(attrs, make_tmpdir, remove_tmpdir);
    tcase_add_checked_fixture(errors, make_tmpdir, remove_tmpdir);
    tcase_add_checked_fixture(sinks, make_tmpdir, remove_tmpdir);
    tcase_add_checked_fixture(w3c, make_tmpdir, remove_tmpdir);
    tcase_add_test(line, test_line_has_every_field_in_documented_order);
    tcase_add_test(line, test_times_are_unix_nanos_and_duration_matches_them);
    tcase_add_test(line, test_child_shares_trace_id_and_names_its_parent);
    tcase_add_test(line, test_ids_are_random_and_never_zero);
    tcase_add_test(line, test_control_characters_and_quotes_round_trip);
    tcase_add_test(line, test_invalid_utf8_bytes_become_backslash_x_hex);
    tcase_add_test(line, test_text_format_is_one_readable_line);
    tcase_add_test(attrs, test_attributes_keep_their_types_and_last_value);
    tcase_add_test(attrs, test_attributes_past_32_are_dropped_and_counted);
    tcase_add_test(attrs,
                   test_long_values_are_cut_at_a_character_with_an_ellipsis);
    tcase_add_test(attrs,
                   test_line_never_exceeds_64k_and_drops_what_does_not_fit);
    tcase_add_test(errors, test_error_is_wrapped_once_with_errno_name);
    tcase_add_test(errors, test_error_without_errno_has_no_errno_part);
    tcase_add_test(errors, test_error_with_stale_message_names_the_code);
    tcase_add_test(errors, test_custom_error_message_is_kept);
    tcase_add_test(errors, test_long_error_message_is_cut_with_an_ellipsis);
    tcase_add_test(errors, test_tracing_leaves_error_state_and_errno_alone);
    tcase_add_test(errors, test_span_start_reports_enomem);
    tcase_add_test(errors, test_null_span_is_accepted_everywhere);
    tcase_add_test(sinks, test_none_sink_discards_but_spans_still_have_ids);
    tcase_add_test(sinks, test_dash_sink_writes_to_stderr);
    tcase_add_test(sinks, test_sink_open_rejects_bad_specs);
    tcase_add_test(sinks, test_file_sink_appends_and_creates_mode_0640);
    tcase_add_test(sinks, test_reopen_after_rename_writes_to_the_new_file);
    tcase_add_test(sinks, test_reopen_failure_keeps_the_old_file);
    tcase_add_test(sinks, test_concurrent_spans_never_interleave);
    tcase_add_test(sinks, test_reopen_while_writing_loses_no_line);
    tcase_add_test(sinks, test_long_lines_to_a_pipe_never_interleave);
    tcase_set_timeout(sinks, 120);
    tcase_add_test(w3c, test_traceparent_parse_table);
    tcase_add_test(w3c, test_remote_parent_continues_the_trace);
    suite_add_tcase(s, line);
    suite_add_tcase(s, attrs);
    suite_add_tcase(s, errors);
    suite_add_tcase(s, sinks);
    suite_add_tcase(s, w3c);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(trace_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
