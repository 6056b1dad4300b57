#ifndef LAYER_TEXT_H
#define LAYER_TEXT_H

/**
 * @file layer/text.h
 * @brief Small text helpers, written once for lib, api and server: UTF-8
 * validation, hex, base64, RFC 3339 times and a capped growable buffer.
 *
 * Nothing here allocates except the buffer, and nothing depends on the C
 * locale. Only the buffer records errors (layer_error_set()); the other
 * functions report a failure in their return value alone.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- UTF-8 ------------------------------------------------------------ */

/**
 * Length of the valid UTF-8 sequence that starts at s (RFC 3629, section
 * 4: no overlong forms, no surrogates, nothing above U+10FFFF).
 *
 * @param s the bytes (at least len of them)
 * @param len how many bytes are available at s; at least 1
 * @return 1 to 4, or 0 when s does not start a valid sequence (a stray
 *         continuation byte, an overlong or truncated sequence, ...)
 */
size_t layer_text_utf8_len(const void *s, size_t len);

/**
 * Whether len bytes at s are valid UTF-8 as a whole. A NUL byte is valid
 * UTF-8 (U+0000); callers that cannot carry one check for it themselves.
 *
 * @return true when every sequence is valid; true for len 0
 */
bool layer_text_utf8_valid(const void *s, size_t len);

/* ---- hex -------------------------------------------------------------- */

/** layer_text_hex_decode() flag: refuse 'A'-'F' (W3C Trace Context). */
#define LAYER_TEXT_HEX_LOWER 1u

/**
 * The value of one hex digit.
 *
 * @param c a character
 * @param flags 0 or LAYER_TEXT_HEX_LOWER
 * @return 0 to 15, or -1 when c is not a hex digit (or is upper case under
 *         LAYER_TEXT_HEX_LOWER)
 */
int layer_text_hex_value(int c, unsigned flags);

/**
 * Lower-case hex of n bytes, NUL-terminated.
 *
 * @param[out] out room for 2 * n + 1 characters
 * @param data the bytes
 * @param n their number
 */
void layer_text_hex_encode(char *out, const void *data, size_t n);

/**
 * Decode exactly 2 * n hex digits into n bytes.
 *
 * @param[out] out room for n bytes; undefined contents on failure
 * @param hex the digits (at least 2 * n characters are read, fewer if a
 *        non-digit comes first)
 * @param n the number of bytes to produce
 * @param flags 0 or LAYER_TEXT_HEX_LOWER
 * @return true, or false when a character is not an accepted hex digit
 */
bool layer_text_hex_decode(void *out, const char *hex, size_t n,
                           unsigned flags);

/* ---- base64 ----------------------------------------------------------- */

/** Characters layer_text_base64() writes for n bytes (no NUL). */
#define LAYER_TEXT_BASE64_LEN(n) (((n) + 2) / 3 * 4)

/**
 * Standard base64 (RFC 4648 section 4, padded) of n bytes. No NUL is
 * written.
 *
 * @param[out] out room for LAYER_TEXT_BASE64_LEN(n) characters
 * @param data the bytes
 * @param n their number; at most SIZE_MAX / 4 * 3 - 2, so that the
 *        length does not overflow (the caller checks)
 * @return the number of characters written
 */
size_t layer_text_base64(char *out, const void *data, size_t n);

/* ---- RFC 3339 times --------------------------------------------------- */

/** Room for the longest layer_text_rfc3339() output and its NUL. */
#define LAYER_TEXT_RFC3339_MAX 31

/**
 * Format a Unix time as an RFC 3339 UTC date-time, e.g.
 * "2026-11-28T19:46:20.647821366Z" (digits 9) or
 * "2026-11-28T19:46:20.647Z" (digits 3). The fraction is cut, not
 * rounded, so a time never moves into the next second. Pure arithmetic:
 * no gmtime(), no locale, no lock.
 *
 * @param[out] out room for LAYER_TEXT_RFC3339_MAX characters
 * @param sec seconds since 1970-01-01T00:00:00Z (negative before)
 * @param nsec nanoseconds after sec, below 1000000000
 * @param digits digits of the fraction, 0 to 9 (0: no '.' at all)
 * @return the length written (without the NUL), or -1 when the year is
 *         outside 0000-9999, nsec is out of range or digits above 9
 *         (out is then an empty string)
 */
int layer_text_rfc3339(char *out, int64_t sec, uint32_t nsec, unsigned digits);

/* ---- capped growable buffer ------------------------------------------- */

/**
 * A growable byte buffer with a cap, in the style of curl's dynbuf: every
 * append is checked against max before any arithmetic can overflow, and
 * the first failure sticks, so a caller may append many pieces and check
 * once at the end. While p is not NULL it is NUL-terminated (the NUL is
 * not counted in len and does not count against max).
 *
 * Set up with LAYER_TEXT_BUF_INIT, release with layer_text_buf_dispose().
 * The fields may be read. len is lowered only through
 * layer_text_buf_truncate(); max may be changed between calls (a buffer
 * already longer than a lowered max refuses every append).
 */
typedef struct layer_text_buf {
    char *p;          /**< the bytes; owned; NULL until the first growth */
    size_t len;       /**< bytes held */
    size_t alloc;     /**< bytes allocated at p */
    size_t max;       /**< the cap on len; below SIZE_MAX */
    const char *what; /**< what the buffer holds, for error messages */
    int err;          /**< first failure (LAYER_ETOOBIG, LAYER_ENOMEM) */
} layer_text_buf;

/** An empty buffer that may hold up to max bytes of `what`. */
#define LAYER_TEXT_BUF_INIT(max, what)                                         \
    {                                                                          \
        NULL, 0, 0, (max), (what), 0                                           \
    }

/**
 * Make room for n more bytes (plus the NUL), growing geometrically.
 *
 * @return 0; LAYER_ETOOBIG when len + n would pass max (the message names
 *         `what` and the cap), LAYER_ENOMEM; or the earlier failure if
 *         one stuck. A failure sticks and the contents are kept.
 */
int layer_text_buf_reserve(layer_text_buf *b, size_t n);

/**
 * Append n bytes.
 * @return 0, or as layer_text_buf_reserve() (then nothing is appended)
 */
int layer_text_buf_add(layer_text_buf *b, const void *data, size_t n);

/**
 * Append a NUL-terminated string.
 * @return as layer_text_buf_add()
 */
int layer_text_buf_adds(layer_text_buf *b, const char *s);

/**
 * Append printf-style formatted text.
 * @return as layer_text_buf_add(); LAYER_ERROR if the format fails
 */
int layer_text_buf_addf(layer_text_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Cut the contents back to len bytes (len <= b->len) and forget a
 * LAYER_ETOOBIG failure, so that a caller can drop a piece that did not
 * fit and go on; LAYER_ENOMEM sticks. The memory is kept for reuse.
 */
void layer_text_buf_truncate(layer_text_buf *b, size_t len);

/**
 * Take the bytes out of the buffer, which is left empty (and still
 * usable).
 *
 * @param[out] out_len their length; may be NULL
 * @return the NUL-terminated bytes, owned by the caller (layer_free());
 *         NULL when nothing was ever allocated, or when the buffer failed
 *         (its memory is then released)
 */
char *layer_text_buf_detach(layer_text_buf *b, size_t *out_len);

/** Release the memory and empty the buffer; NULL is accepted. */
void layer_text_buf_dispose(layer_text_buf *b);

#endif
