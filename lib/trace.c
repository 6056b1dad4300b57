/*
 * Span tracing. A span is a heap object owned by whoever started it; it
 * records ids, times, a status and up to SPAN_MAX_ATTRS attributes, and
 * layer_span_end() renders it as one line and frees it. The only shared
 * state is the sink: an fd behind a rwlock. Writers hold the read side
 * for the one write() of a line; layer_trace_sink_reopen() opens the new
 * file first, swaps the fd under the write side and closes the old one
 * after, so a write never reaches a closed (or reused) descriptor.
 *
 * Invariants:
 * - every string a span keeps is copied and capped (SPAN_MAX_*), and a
 *   line never exceeds TRACE_LINE_MAX: attributes that do not fit are
 *   dropped and counted, never cut mid-token;
 * - tracing has no side effects on its caller: the thread's last error
 *   and errno are the same after any call here (an allocation failure
 *   inside would otherwise replace the caller's error with LAYER_ENOMEM):
 *   every entry point that may fail saves them with layer_error_save()
 *   and puts them back with layer_error_restore();
 * - ids come from getrandom() and are never all zero.
 *
 * JSON is written by hand into one capped buffer rather than built with
 * jansson, which would refuse the bytes a path may hold: valid UTF-8 passes
 * through, '"' and '\' are escaped, control characters become \u00XX,
 * and each byte that is not part of valid UTF-8 becomes the six JSON
 * characters `\\xHH`, i.e. the decoded string holds a literal backslash,
 * 'x' and two hex digits (see trace.h).
 */
#include "layer/trace.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/text.h"

/* Caps. Names are code literals; attribute values may be paths (PATH_MAX
 * is 4096). A status message is a title plus layer_error_last(), whose
 * buffer is 1 KiB, so 2 KiB never cuts one in practice. A line of 64 KiB
 * holds the worst case fixed part (escaped name and message, < 14 KiB)
 * with room for attributes. */
#define SPAN_MAX_ATTRS   32
#define SPAN_MAX_NAME    256
#define SPAN_MAX_KEY     128
#define SPAN_MAX_VALUE   4096
#define SPAN_MAX_MESSAGE 2048
#define TRACE_LINE_MAX   65536
/* Room kept free while attributes are rendered, for the closing
 * `},"dropped_attributes_count":NN}` and the newline. */
#define LINE_TAIL_RESERVE 64

/* Mode bits of a trace file created by the sink: traces carry client
 * addresses and paths, so they are not world-readable. */
#define TRACE_FILE_MODE 0640

struct layer_trace_sink {
    pthread_rwlock_t lock; /* read side: one write(); write side: swap */
    int fd;                /* -1 for "none" */
    bool owns_fd;          /* false for stderr */
    bool discard;          /* "none"; set once, read without the lock */
    /* The fd is not a regular file (pipe, socket, tty): the kernel does
     * not keep a long write() whole there, so writes take write_mu too.
     * Changed only under the write side of `lock`. */
    bool serialize;
    pthread_mutex_t write_mu;
    layer_trace_format format;
    char *path; /* the file of a file sink, else NULL */
};

typedef enum attr_type { ATTR_STR, ATTR_INT, ATTR_BOOL } attr_type;

typedef struct span_attr {
    char *key;
    attr_type type;
    union {
        char *s;
        int64_t i;
        bool b;
    } v;
} span_attr;

struct layer_span {
    layer_trace_sink *sink;
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8];
    bool has_parent;
    char *name;
    int64_t start_unix_ns;
    int64_t start_mono_ns;
    bool failed;
    char message[SPAN_MAX_MESSAGE + 1];
    span_attr attrs[SPAN_MAX_ATTRS];
    size_t nattrs;
    unsigned dropped;
};

/* --- small helpers ------------------------------------------------- */

static int64_t clock_ns(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Fill p with n random, not all-zero bytes. getrandom() never fails on a
 * 3.17+ kernel once the pool is ready; before that (GRND_NONBLOCK gives
 * EAGAIN) ids only need to be unique, so a clock-seeded mix of the
 * object's address and the thread id stands in. */
static void new_id(uint8_t *p, size_t n, const void *salt)
{
    do {
        size_t got = 0;

        while (got < n) {
            ssize_t r = getrandom(p + got, n - got, GRND_NONBLOCK);

            if (r < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            got += (size_t)r;
        }
        if (got < n) {
            uint64_t st = (uint64_t)clock_ns(CLOCK_MONOTONIC) ^
                          ((uint64_t)clock_ns(CLOCK_REALTIME) << 1) ^
                          (uint64_t)(uintptr_t)salt ^
                          ((uint64_t)gettid() << 40);

            for (size_t i = 0; i < n; i++) {
                uint64_t r = splitmix64(&st);
                p[i] = (uint8_t)(r >> 56);
            }
        }
    } while (all_zero(p, n));
}

/*
 * Where a string longer than cap is cut: after the returned number of
 * bytes, to which "..." is appended, so the result has at most cap bytes
 * and never ends inside a UTF-8 character. *len gets strnlen(s, cap + 1);
 * if it is <= cap the string is kept whole and the result is *len.
 */
static size_t cap_cut(const char *s, size_t cap, size_t *len)
{
    size_t cut, back = 0;

    assert(cap > 3);
    *len = strnlen(s, cap + 1);
    if (*len <= cap)
        return *len;
    cut = cap - 3;
    /* Step back over continuation bytes (at most 3; a longer run is not
     * UTF-8 anyway). */
    while (cut > 0 && back < 3 && ((unsigned char)s[cut] & 0xc0) == 0x80) {
        cut--;
        back++;
    }
    return cut;
}

/* Copy s into dst (cap + 1 bytes), cut as cap_cut() says. */
static void copy_capped_into(char *dst, size_t cap, const char *s)
{
    size_t len, cut = cap_cut(s, cap, &len);

    memcpy(dst, s, cut);
    if (cut < len)
        memcpy(dst + cut, "...", 4);
    else
        dst[cut] = '\0';
}

/* A heap copy of s, cut as cap_cut() says. */
static char *copy_capped(const char *s, size_t cap)
{
    size_t len, cut = cap_cut(s, cap, &len);
    char *p = layer_trymalloc(cut < len ? cut + 4 : len + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, s, cut);
    if (cut < len)
        memcpy(p + cut, "...", 4);
    else
        p[cut] = '\0';
    return p;
}

/* True if `stored` is what copy_capped(key, cap) gives. */
static bool capped_equal(const char *stored, const char *key, size_t cap)
{
    size_t len, cut = cap_cut(key, cap, &len);

    if (cut == len)
        return strcmp(stored, key) == 0;
    return strncmp(stored, key, cut) == 0 && strcmp(stored + cut, "...") == 0;
}

/* --- line rendering ------------------------------------------------ */

/* A span's line is rendered into a layer_text_buf capped at
 * TRACE_LINE_MAX; render_attrs() lowers the cap while attributes are
 * written and cuts back an attribute that did not fit. */

/* The body of a JSON string (no quotes); see the file comment. */
static void put_escaped(layer_text_buf *b, const char *str)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str);
    size_t i = 0;

    while (i < len && b->err == 0) {
        unsigned char c = s[i];
        size_t run = i;

        /* Copy the longest run needing no escape in one go. */
        while (run < len) {
            size_t n;

            c = s[run];
            if (c == '"' || c == '\\' || c < 0x20 || c == 0x7f)
                break;
            n = layer_text_utf8_len(s + run, len - run);
            if (n == 0)
                break;
            run += n;
        }
        layer_text_buf_add(b, str + i, run - i);
        i = run;
        if (i >= len)
            break;
        c = s[i];
        if (c == '"') {
            layer_text_buf_add(b, "\\\"", 2);
        } else if (c == '\\') {
            layer_text_buf_add(b, "\\\\", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', digits[c >> 4], digits[c & 0xf]};
            layer_text_buf_add(b, e, sizeof(e));
        } else {
            /* Not UTF-8: a literal backslash (escaped), 'x', two hex. */
            char e[5] = {'\\', '\\', 'x', digits[c >> 4], digits[c & 0xf]};
            layer_text_buf_add(b, e, sizeof(e));
        }
        i++;
    }
}

static void put_json_string(layer_text_buf *b, const char *s)
{
    layer_text_buf_add(b, "\"", 1);
    put_escaped(b, s);
    layer_text_buf_add(b, "\"", 1);
}

/* A text-format token: bare when it is plain, else a quoted, escaped
 * string (logfmt style), so the line stays one line. */
static void put_text_token(layer_text_buf *b, const char *s)
{
    bool plain = s[0] != '\0';

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f) {
            plain = false;
            break;
        }
    }
    if (plain)
        layer_text_buf_adds(b, s);
    else
        put_json_string(b, s);
}

/* --- sink ---------------------------------------------------------- */

static int sink_file_open(int *out, const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
                  TRACE_FILE_MODE);

    if (fd < 0) {
        int err = errno;
        return layer_error_set_errno(err == ENOENT ? LAYER_ENOTFOUND
                                                   : LAYER_ERROR,
                                     err, "cannot open trace file %s", path);
    }
    *out = fd;
    return 0;
}

/* Appends to a regular file are whole (O_APPEND, one inode lock per
 * write). Pipes only promise PIPE_BUF bytes, stream sockets nothing. */
static bool needs_serializing(int fd)
{
    struct stat st;

    return fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
}

int layer_trace_sink_open(layer_trace_sink **out, const char *spec,
                          layer_trace_format format)
{
    layer_trace_sink *sink = NULL;
    pthread_rwlockattr_t attr;
    bool lock_ok = false, mu_ok = false;
    int rc = 0;

    if (spec == NULL || spec[0] == '\0')
        return layer_error_set(LAYER_EINVALID, "empty trace sink");
    if (format != LAYER_TRACE_JSON && format != LAYER_TRACE_TEXT)
        return layer_error_set(LAYER_EINVALID, "unknown trace format %d",
                               (int)format);
    sink = layer_trycalloc(1, sizeof(*sink));
    if (sink == NULL)
        return LAYER_ENOMEM;
    sink->fd = -1;
    sink->format = format;
    /* Prefer the writer so a SIGHUP reopen is not starved by a steady
     * stream of spans (glibc's default prefers readers). */
    if (pthread_rwlockattr_init(&attr) != 0) {
        rc = layer_error_set(LAYER_ERROR, "cannot create trace sink lock");
        goto out;
    }
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    lock_ok = pthread_rwlock_init(&sink->lock, &attr) == 0;
    pthread_rwlockattr_destroy(&attr);
    mu_ok = lock_ok && pthread_mutex_init(&sink->write_mu, NULL) == 0;
    if (!mu_ok) {
        rc = layer_error_set(LAYER_ERROR, "cannot create trace sink lock");
        goto out;
    }
    if (strcmp(spec, "none") == 0) {
        sink->discard = true;
    } else if (strcmp(spec, "-") == 0) {
        sink->fd = STDERR_FILENO;
        sink->serialize = needs_serializing(sink->fd);
    } else {
        sink->path = layer_trystrdup(spec);
        if (sink->path == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
        if ((rc = sink_file_open(&sink->fd, spec)) < 0)
            goto out;
        sink->owns_fd = true;
        sink->serialize = needs_serializing(sink->fd);
    }
    *out = sink;
    sink = NULL;
out:
    if (sink != NULL) {
        if (mu_ok)
            pthread_mutex_destroy(&sink->write_mu);
        if (lock_ok)
            pthread_rwlock_destroy(&sink->lock);
        layer_free(sink->path);
        layer_free(sink);
    }
    return rc;
}

int layer_trace_sink_reopen(layer_trace_sink *sink)
{
    int fd = -1, old;
    bool serialize;
    int rc;

    if (sink == NULL || sink->path == NULL)
        return 0;
    if ((rc = sink_file_open(&fd, sink->path)) < 0)
        return rc;
    serialize = needs_serializing(fd);
    pthread_rwlock_wrlock(&sink->lock);
    old = sink->fd;
    sink->fd = fd;
    sink->serialize = serialize;
    pthread_rwlock_unlock(&sink->lock);
    close(old);
    return 0;
}

bool layer_trace_sink_is_null(const layer_trace_sink *sink)
{
    return sink == NULL || sink->discard;
}

void layer_trace_sink_free(layer_trace_sink *sink)
{
    if (sink == NULL)
        return;
    if (sink->owns_fd && sink->fd >= 0)
        close(sink->fd);
    pthread_mutex_destroy(&sink->write_mu);
    pthread_rwlock_destroy(&sink->lock);
    layer_free(sink->path);
    layer_free(sink);
}

/* One line, one write(). A regular file is O_APPEND (or stderr, where
 * writes on one open file description are serialised by the kernel), so
 * concurrent lines do not interleave; on a pipe, socket or tty the lines
 * of this process take turns (write_mu). A short write (disk full) is
 * finished with further write()s: a complete line beats atomicity. */
static void sink_write(layer_trace_sink *sink, const char *p, size_t n)
{
    bool serialize;

    pthread_rwlock_rdlock(&sink->lock);
    serialize = sink->serialize;
    if (serialize)
        pthread_mutex_lock(&sink->write_mu);
    while (n > 0 && sink->fd >= 0) {
        ssize_t w = write(sink->fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    if (serialize)
        pthread_mutex_unlock(&sink->write_mu);
    pthread_rwlock_unlock(&sink->lock);
}

/* --- spans --------------------------------------------------------- */

static int span_new(layer_span **out, layer_trace_sink *sink, const char *name)
{
    layer_span *span = NULL;
    int rc = 0;

    assert(name != NULL);
    span = layer_trycalloc(1, sizeof(*span));
    if (span == NULL)
        return LAYER_ENOMEM;
    span->name = copy_capped(name ? name : "", SPAN_MAX_NAME);
    if (span->name == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    span->sink = sink;
    span->start_unix_ns = clock_ns(CLOCK_REALTIME);
    span->start_mono_ns = clock_ns(CLOCK_MONOTONIC);
    new_id(span->span_id, sizeof(span->span_id), span);
    *out = span;
    span = NULL;
out:
    layer_free(span);
    return rc;
}

int layer_span_start(layer_span **out, layer_trace_sink *sink,
                     const layer_span *parent, const char *name)
{
    layer_span *span = NULL;
    int rc;

    /* A NULL sink inherits the parent's (trace.h). */
    if (sink == NULL && parent != NULL)
        sink = parent->sink;
    if ((rc = span_new(&span, sink, name)) < 0)
        return rc;
    if (parent != NULL) {
        memcpy(span->trace_id, parent->trace_id, sizeof(span->trace_id));
        memcpy(span->parent_id, parent->span_id, sizeof(span->parent_id));
        span->has_parent = true;
    } else {
        new_id(span->trace_id, sizeof(span->trace_id), span->name);
    }
    *out = span;
    return 0;
}

int layer_span_start_remote(layer_span **out, layer_trace_sink *sink,
                            const uint8_t trace_id[16],
                            const uint8_t parent_span_id[8], const char *name)
{
    layer_span *span = NULL;
    int rc;

    if ((rc = span_new(&span, sink, name)) < 0)
        return rc;
    /* The caller got these from layer_traceparent_parse(), which rejects
     * all-zero ids; guard anyway and start a fresh trace instead. */
    if (all_zero(trace_id, 16)) {
        new_id(span->trace_id, sizeof(span->trace_id), span->name);
    } else {
        memcpy(span->trace_id, trace_id, sizeof(span->trace_id));
        if (!all_zero(parent_span_id, 8)) {
            memcpy(span->parent_id, parent_span_id, sizeof(span->parent_id));
            span->has_parent = true;
        }
    }
    *out = span;
    return 0;
}

static span_attr *attr_slot(layer_span *span, const char *key, bool *fresh)
{
    for (size_t i = 0; i < span->nattrs; i++) {
        if (capped_equal(span->attrs[i].key, key, SPAN_MAX_KEY)) {
            *fresh = false;
            return &span->attrs[i];
        }
    }
    if (span->nattrs == SPAN_MAX_ATTRS)
        return NULL;
    *fresh = true;
    return &span->attrs[span->nattrs];
}

/*
 * Find or add the attribute `key` and give it `type`; for ATTR_STR,
 * `value` is copied in. Returns the attribute for the caller to fill in
 * (int, bool), or NULL when it was dropped (cap or memory) and counted.
 */
static span_attr *attr_set(layer_span *span, const char *key, attr_type type,
                           const char *value)
{
    bool fresh = false;
    span_attr *a = attr_slot(span, key, &fresh);
    span_attr *ret = NULL;
    char *k = NULL, *v = NULL;

    if (a == NULL)
        goto out;
    if (value != NULL && (v = copy_capped(value, SPAN_MAX_VALUE)) == NULL)
        goto out;
    if (fresh && (k = copy_capped(key, SPAN_MAX_KEY)) == NULL)
        goto out;
    if (fresh) {
        a->key = k;
        k = NULL;
        span->nattrs++;
    } else if (a->type == ATTR_STR) {
        layer_free(a->v.s);
    }
    a->type = type;
    if (type == ATTR_STR) {
        a->v.s = v;
        v = NULL;
    }
    ret = a;
out:
    if (ret == NULL)
        span->dropped++;
    layer_free(k);
    layer_free(v);
    return ret;
}

void layer_span_set_str(layer_span *span, const char *key, const char *value)
{
    layer_error_state st;

    if (span == NULL || key == NULL || value == NULL)
        return;
    layer_error_save(&st);
    attr_set(span, key, ATTR_STR, value);
    layer_error_restore(&st);
}

/* Set an int or bool attribute: one path for both scalar kinds. */
static void set_scalar(layer_span *span, const char *key, attr_type type,
                       int64_t i, bool b)
{
    layer_error_state st;
    span_attr *a;

    if (span == NULL || key == NULL)
        return;
    layer_error_save(&st);
    a = attr_set(span, key, type, NULL);
    if (a != NULL) {
        if (type == ATTR_INT)
            a->v.i = i;
        else
            a->v.b = b;
    }
    layer_error_restore(&st);
}

void layer_span_set_int(layer_span *span, const char *key, int64_t value)
{
    set_scalar(span, key, ATTR_INT, value, false);
}

void layer_span_set_bool(layer_span *span, const char *key, bool value)
{
    set_scalar(span, key, ATTR_BOOL, 0, value);
}

void layer_span_set_error(layer_span *span, const char *title, int code)
{
    /* One byte over the cap, so that a message snprintf() had to cut is
     * longer than the cap and gets its "..." below. */
    char buf[SPAN_MAX_MESSAGE + 2];
    const char *detail;
    int saved_errno = errno;
    int err = 0;

    /* Success is not an error; the first error wins (wrapped once). */
    if (span == NULL || code >= 0 || span->failed)
        return;
    if (title == NULL)
        title = span->name;
    if (layer_error_last_code() == code) {
        detail = layer_error_last();
        err = layer_error_errno();
    } else {
        /* The thread's message belongs to another failure: name the
         * code rather than attach an unrelated message. */
        detail = layer_error_name(code);
    }
    if (err != 0)
        snprintf(buf, sizeof(buf), "%s failed: %s (%s)", title, detail,
                 layer_errno_name(err));
    else
        snprintf(buf, sizeof(buf), "%s failed: %s", title, detail);
    copy_capped_into(span->message, SPAN_MAX_MESSAGE, buf);
    span->failed = true;
    layer_span_set_str(span, "error.type", layer_error_name(code));
    errno = saved_errno;
}

void layer_span_set_error_message(layer_span *span, const char *message)
{
    if (span == NULL || message == NULL || span->failed)
        return;
    copy_capped_into(span->message, SPAN_MAX_MESSAGE, message);
    span->failed = true;
}

void layer_span_trace_id_hex(const layer_span *span, char out[33])
{
    static const uint8_t zero[16];

    layer_text_hex_encode(out, span ? span->trace_id : zero, 16);
}

void layer_span_id_hex(const layer_span *span, char out[17])
{
    static const uint8_t zero[8];

    layer_text_hex_encode(out, span ? span->span_id : zero, 8);
}

/* ns as milliseconds with microsecond precision, without floating point
 * (no locale, no rounding surprises). */
static void put_duration_ms(layer_text_buf *b, int64_t ns)
{
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;

    layer_text_buf_addf(b, "%" PRIu64 ".%03u", us / 1000,
                        (unsigned)(us % 1000));
}

/* One attribute: "key":value in JSON lines, key=value in text lines;
 * strings are quoted the way the line's format wants. */
static void render_attr(layer_text_buf *b, const span_attr *a, bool json)
{
    void (*string)(layer_text_buf *, const char *) =
        json ? put_json_string : put_text_token;

    string(b, a->key);
    layer_text_buf_add(b, json ? ":" : "=", 1);
    switch (a->type) {
    case ATTR_STR:
        string(b, a->v.s);
        break;
    case ATTR_INT:
        layer_text_buf_addf(b, "%" PRId64, a->v.i);
        break;
    case ATTR_BOOL:
        layer_text_buf_adds(b, a->v.b ? "true" : "false");
        break;
    }
}

/* Attributes, each whole or not at all, within the attribute budget. */
static void render_attrs(layer_text_buf *b, const layer_span *span, bool json,
                         unsigned *dropped)
{
    size_t max = b->max;
    bool first = true;

    b->max = TRACE_LINE_MAX - LINE_TAIL_RESERVE;
    for (size_t i = 0; i < span->nattrs && b->len < b->max; i++) {
        size_t mark = b->len;

        if (json && !first)
            layer_text_buf_add(b, ",", 1);
        else if (!json)
            layer_text_buf_add(b, " ", 1);
        render_attr(b, &span->attrs[i], json);
        if (b->err == LAYER_ETOOBIG) {
            /* Over the budget: leave this one out, try the next. */
            layer_text_buf_truncate(b, mark);
            (*dropped)++;
            continue;
        }
        if (b->err != 0)
            break;
        first = false;
    }
    b->max = max;
}

static void render_json(layer_text_buf *b, const layer_span *span, int64_t dur)
{
    char tid[33], sid[17], pid[17];
    unsigned dropped = span->dropped;

    layer_text_hex_encode(tid, span->trace_id, 16);
    layer_text_hex_encode(sid, span->span_id, 8);
    layer_text_buf_addf(b, "{\"trace_id\":\"%s\",\"span_id\":\"%s\"", tid, sid);
    if (span->has_parent) {
        layer_text_hex_encode(pid, span->parent_id, 8);
        layer_text_buf_addf(b, ",\"parent_span_id\":\"%s\"", pid);
    }
    layer_text_buf_adds(b, ",\"name\":");
    put_json_string(b, span->name);
    layer_text_buf_addf(b, ",\"start_unix_nano\":%" PRId64,
                        span->start_unix_ns);
    layer_text_buf_addf(b, ",\"end_unix_nano\":%" PRId64,
                        span->start_unix_ns + dur);
    layer_text_buf_adds(b, ",\"duration_ms\":");
    put_duration_ms(b, dur);
    if (span->failed) {
        layer_text_buf_adds(b, ",\"status\":\"error\",\"status_message\":");
        put_json_string(b, span->message);
    } else {
        layer_text_buf_adds(b, ",\"status\":\"ok\"");
    }
    layer_text_buf_adds(b, ",\"attributes\":{");
    render_attrs(b, span, true, &dropped);
    layer_text_buf_add(b, "}", 1);
    if (dropped > 0)
        layer_text_buf_addf(b, ",\"dropped_attributes_count\":%u", dropped);
    layer_text_buf_add(b, "}\n", 2);
}

static void render_text(layer_text_buf *b, const layer_span *span, int64_t dur)
{
    char tid[33], sid[17], pid[17], when[LAYER_TEXT_RFC3339_MAX];
    int64_t secs = span->start_unix_ns / 1000000000;
    int64_t ns = span->start_unix_ns % 1000000000;
    unsigned dropped = span->dropped;

    if (ns < 0) { /* before 1970: floor, not truncation */
        secs--;
        ns += 1000000000;
    }
    /* Milliseconds: a log line's timestamp, not a measurement. */
    if (layer_text_rfc3339(when, secs, (uint32_t)ns, 3) < 0)
        memcpy(when, "0000-00-00T00:00:00.000Z", 25);
    layer_text_hex_encode(tid, span->trace_id, 16);
    layer_text_hex_encode(sid, span->span_id, 8);
    layer_text_buf_adds(b, when);
    layer_text_buf_add(b, " ", 1);
    put_text_token(b, span->name);
    layer_text_buf_adds(b, span->failed ? " error " : " ok ");
    put_duration_ms(b, dur);
    layer_text_buf_addf(b, "ms trace=%s span=%s", tid, sid);
    if (span->has_parent) {
        layer_text_hex_encode(pid, span->parent_id, 8);
        layer_text_buf_addf(b, " parent=%s", pid);
    }
    if (span->failed) {
        layer_text_buf_adds(b, " error=");
        put_json_string(b, span->message);
    }
    render_attrs(b, span, false, &dropped);
    if (dropped > 0)
        layer_text_buf_addf(b, " dropped_attributes=%u", dropped);
    layer_text_buf_add(b, "\n", 1);
}

static void span_free(layer_span *span)
{
    for (size_t i = 0; i < span->nattrs; i++) {
        layer_free(span->attrs[i].key);
        if (span->attrs[i].type == ATTR_STR)
            layer_free(span->attrs[i].v.s);
    }
    layer_free(span->name);
    layer_free(span);
}

void layer_span_end(layer_span *span)
{
    layer_error_state st;
    layer_text_buf b = LAYER_TEXT_BUF_INIT(TRACE_LINE_MAX, "trace line");
    int64_t dur;

    if (span == NULL)
        return;
    if (layer_trace_sink_is_null(span->sink))
        goto out;
    layer_error_save(&st);
    /* The end time is start + the monotonic duration, so end >= start
     * and end - start == duration even across a wall-clock step. */
    dur = clock_ns(CLOCK_MONOTONIC) - span->start_mono_ns;
    if (dur < 0)
        dur = 0;
    if (span->sink->format == LAYER_TRACE_TEXT)
        render_text(&b, span, dur);
    else
        render_json(&b, span, dur);
    if (b.err == 0)
        sink_write(span->sink, b.p, b.len);
    layer_text_buf_dispose(&b);
    layer_error_restore(&st);
out:
    span_free(span);
}

/* --- W3C Trace Context --------------------------------------------- */

/*
 * traceparent = version "-" trace-id "-" parent-id "-" trace-flags, all
 * lowercase hex (W3C Trace Context Level 1, section 3.2). Version 00 is
 * exactly 55 characters. A higher version (not ff) is parsed the same
 * way if it has at least 55 characters and the 56th, if any, is '-'.
 * Optional whitespace around the value (RFC 9110 OWS) is not part of it.
 */
#define TRACEPARENT_LEN 55

int layer_traceparent_parse(uint8_t trace_id[16], uint8_t parent_span_id[8],
                            const char *value)
{
    uint8_t tid[16], pid[8], version, flags;
    size_t len;

    if (value == NULL)
        return layer_error_set(LAYER_EINVALID, "no traceparent");
    while (*value == ' ' || *value == '\t')
        value++;
    len = strnlen(value, 4096);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (len < TRACEPARENT_LEN)
        return layer_error_set(LAYER_EINVALID, "traceparent too short");
    if (!layer_text_hex_decode(&version, value, 1, LAYER_TEXT_HEX_LOWER) ||
        value[2] != '-')
        return layer_error_set(LAYER_EINVALID, "bad traceparent version");
    if (version == 0xff)
        return layer_error_set(LAYER_EINVALID, "traceparent version ff");
    if (version == 0x00 && len != TRACEPARENT_LEN)
        return layer_error_set(LAYER_EINVALID,
                               "traceparent version 00 is 55 characters");
    if (len > TRACEPARENT_LEN && value[TRACEPARENT_LEN] != '-')
        return layer_error_set(LAYER_EINVALID, "bad traceparent suffix");
    if (!layer_text_hex_decode(tid, value + 3, 16, LAYER_TEXT_HEX_LOWER) ||
        value[35] != '-')
        return layer_error_set(LAYER_EINVALID, "bad traceparent trace-id");
    if (!layer_text_hex_decode(pid, value + 36, 8, LAYER_TEXT_HEX_LOWER) ||
        value[52] != '-')
        return layer_error_set(LAYER_EINVALID, "bad traceparent parent-id");
    if (!layer_text_hex_decode(&flags, value + 53, 1, LAYER_TEXT_HEX_LOWER))
        return layer_error_set(LAYER_EINVALID, "bad traceparent flags");
    if (all_zero(tid, 16) || all_zero(pid, 8))
        return layer_error_set(LAYER_EINVALID, "all-zero traceparent id");
    memcpy(trace_id, tid, 16);
    memcpy(parent_span_id, pid, 8);
    return 0;
}

void layer_traceparent_format(const layer_span *span, char out[56])
{
    static const uint8_t zero[16];

    memcpy(out, "00-", 3);
    layer_text_hex_encode(out + 3, span ? span->trace_id : zero, 16);
    out[35] = '-';
    layer_text_hex_encode(out + 36, span ? span->span_id : zero, 8);
    /* Sampled when there is a span; a NULL span gives an invalid header
     * (all-zero ids) that receivers ignore. */
    memcpy(out + 52, span ? "-01" : "-00", 4);
}
