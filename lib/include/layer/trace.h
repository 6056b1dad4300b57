#ifndef LAYER_TRACE_H
#define LAYER_TRACE_H

/**
 * @file layer/trace.h
 * @brief Span-like tracing: each ended span is one JSON line.
 *
 * A trace is a tree of spans sharing a 16-byte trace id; each span has an
 * 8-byte id and its parent's. Spans are carried explicitly down the call
 * chain. The only process-wide state is the sink a span writes to, passed
 * in when the root span starts. Every function accepts a NULL span and
 * then does nothing, so callers never test for tracing being on.
 *
 * Line format (fields in this order):
 *   {"trace_id":"<32 hex>","span_id":"<16 hex>","parent_span_id":"<16
 *   hex>"|omitted,"name":"...","start_unix_nano":N,"end_unix_nano":N,
 *   "duration_ms":F,"status":"ok"|"error","status_message":"..."|omitted,
 *   "attributes":{...}}
 * Each line is written with a single write() to an O_APPEND descriptor, so
 * concurrent spans never interleave.
 *
 * Strings in a line: valid UTF-8 is kept as is; '"' and '\' are escaped;
 * control characters (and DEL) become \u00XX; each byte that is not part
 * of valid UTF-8 becomes the JSON text `\\xHH`, so the decoded string
 * holds a literal backslash, 'x' and two lowercase hex digits (a string
 * that already contains a backslash followed by "xHH" reads the same).
 *
 * Caps: 32 attributes per span; a name is cut at 256 bytes, a key at 128,
 * a string value at 4096 and a status message at 2048, each ending in
 * "..." when cut (never inside a UTF-8 character). A line is at most
 * 64 KiB: attributes that do not fit, or come past the 32nd, are left out
 * and counted in a trailing "dropped_attributes_count":N (present only
 * when N > 0). end_unix_nano is start_unix_nano plus the monotonic
 * duration; duration_ms has three decimals (microseconds).
 *
 * The text form is one line:
 *   <RFC 3339 UTC start, ms> <name> ok|error <duration>ms trace=<id>
 *   span=<id> [parent=<id>] [error="<message>"] [key=value ...]
 * with names, keys and values quoted and escaped as above when they are
 * empty or hold a space, '"', '=', '\', a control or a non-ASCII byte.
 *
 * A span is used by one thread at a time. Its ids never change after it
 * starts, so children may be started from other threads while the
 * parent lives. Tracing calls leave the thread's error state
 * (layer_error_last()) and errno as they found them.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct layer_span layer_span;
typedef struct layer_trace_sink layer_trace_sink;

/** Output form of a sink. */
typedef enum layer_trace_format {
    LAYER_TRACE_JSON = 0, /**< one JSON object per line */
    LAYER_TRACE_TEXT = 1  /**< one human-readable line per span */
} layer_trace_format;

/**
 * Open a sink.
 *
 * @param[out] out the sink; free with layer_trace_sink_free()
 * @param spec "-" for stderr, "none" to discard, else a file path opened
 *        with O_APPEND|O_CREAT
 * @param format line format
 * @return 0 or a negative code
 */
int layer_trace_sink_open(layer_trace_sink **out, const char *spec,
                          layer_trace_format format);

/**
 * Reopen a file sink (after logrotate moved it). Safe to call from any
 * thread while spans are being written; a no-op for "-" and "none".
 * Not async-signal-safe: call it from the thread that takes SIGHUP
 * (sigwait, signalfd), not from a signal handler.
 * @return 0 or a negative code (the old descriptor is kept on failure)
 */
int layer_trace_sink_reopen(layer_trace_sink *sink);

/** True if the sink discards everything (spec "none"). */
bool layer_trace_sink_is_null(const layer_trace_sink *sink);

/** Free a sink. NULL is accepted. All spans using it must have ended. */
void layer_trace_sink_free(layer_trace_sink *sink);

/**
 * Start a span.
 *
 * @param[out] out the span; it is freed by layer_span_end()
 * @param sink where the span is written when it ends; NULL means the
 *        parent's sink (and, without a parent, nowhere)
 * @param parent the parent span, or NULL to start a new trace
 * @param name span name, e.g. "layer.export"
 * @return 0 or LAYER_ENOMEM
 */
int layer_span_start(layer_span **out, layer_trace_sink *sink,
                     const layer_span *parent, const char *name);

/**
 * Start a root span that continues a remote trace (W3C traceparent).
 *
 * @param[out] out the span
 * @param sink where it is written
 * @param trace_id the remote trace id
 * @param parent_span_id the remote parent's span id
 * @param name span name
 * @return 0 or LAYER_ENOMEM
 */
int layer_span_start_remote(layer_span **out, layer_trace_sink *sink,
                            const uint8_t trace_id[16],
                            const uint8_t parent_span_id[8], const char *name);

/** Set a string attribute (copied). Replaces an earlier value. */
void layer_span_set_str(layer_span *span, const char *key, const char *value);

/** Set an integer attribute. */
void layer_span_set_int(layer_span *span, const char *key, int64_t value);

/** Set a boolean attribute. */
void layer_span_set_bool(layer_span *span, const char *key, bool value);

/**
 * Mark the span failed. The status message is
 * "<title> failed: <layer_error_last()> (<errno name>)", the errno part
 * only when the error came from a system call; like hcsshim's hcserror,
 * an error is wrapped once: a second call keeps the first message.
 *
 * @param span the span
 * @param title the operation, e.g. "layer.export" (NULL: the span name)
 * @param code the error code being returned; a code >= 0 is ignored. If
 *        the thread's last error has another code, the message is the
 *        code's name (layer_error_name()) instead. The attribute
 *        "error.type" is set to the code's name.
 */
void layer_span_set_error(layer_span *span, const char *title, int code);

/** Set a custom error status message (copied). Like
 * layer_span_set_error(), the first error status of a span is kept. */
void layer_span_set_error_message(layer_span *span, const char *message);

/**
 * The trace id in 32 lowercase hex digits plus NUL.
 * @param span the span (NULL gives an all-zero id)
 * @param[out] out 33 bytes
 */
void layer_span_trace_id_hex(const layer_span *span, char out[33]);

/**
 * The span id in 16 lowercase hex digits plus NUL.
 * @param span the span (NULL gives an all-zero id)
 * @param[out] out 17 bytes
 */
void layer_span_id_hex(const layer_span *span, char out[17]);

/**
 * End the span: write its line to the sink and free it. NULL is
 * accepted.
 */
void layer_span_end(layer_span *span);

/**
 * Parse a W3C traceparent header value ("00-<32 hex>-<16 hex>-<2 hex>").
 *
 * @param[out] trace_id the trace id
 * @param[out] parent_span_id the parent span id
 * @param value the header value
 * @return 0, or LAYER_EINVALID for a malformed value (all-zero ids,
 *         version ff, wrong lengths, uppercase hex)
 */
int layer_traceparent_parse(uint8_t trace_id[16], uint8_t parent_span_id[8],
                            const char *value);

/**
 * Format the traceparent of a span: "00-<trace>-<span>-01".
 * @param span the span
 * @param[out] out 56 bytes
 */
void layer_traceparent_format(const layer_span *span, char out[56]);

#endif
