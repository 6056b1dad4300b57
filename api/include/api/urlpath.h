#ifndef API_URLPATH_H
#define API_URLPATH_H

/**
 * @file api/urlpath.h
 * @brief Paths taken from URLs: percent-decoded exactly once, then
 * validated before anything looks them up.
 *
 * A request path such as "/layers/abc/files/usr/bin/%5B" carries an entry
 * path ("usr/bin/[") percent-encoded. It is decoded once: "%252e" becomes
 * the literal three bytes "%2e", never ".". The decoded path must then be
 * a clean relative path (api_urlpath_check()) before it is compared with
 * the entries of a layer.
 */

#include <stdbool.h>
#include <stddef.h>

/** Longest raw request path accepted (bytes, before decoding); longer
 * requests are answered with 414 URI Too Long. */
#define API_URLPATH_MAX 8192

/**
 * Percent-decode a string once.
 *
 * Every "%XY" (two hex digits, either case) becomes the byte 0xXY; every
 * other byte is copied as it is ('+' stays '+': this is a path, not a
 * form).
 *
 * @param[out] out the decoded bytes, NUL-terminated; owned by the caller,
 *             release with layer_free()
 * @param[out] out_len the decoded length (excluding the NUL)
 * @param in the encoded bytes
 * @param len their length
 * @return 0; LAYER_EINVALID for a truncated or non-hex escape, or an
 *         escape that decodes to NUL; LAYER_ETOOBIG if len exceeds
 *         API_URLPATH_MAX; LAYER_ENOMEM
 */
int api_urlpath_decode(char **out, size_t *out_len, const char *in, size_t len);

/**
 * Check that a decoded string is a clean relative entry path: not empty,
 * at most API_URLPATH_MAX bytes, no NUL byte, no leading or trailing '/',
 * no empty segment ("a//b"), and no "." or ".." segment.
 *
 * @param path the path (need not be NUL-terminated)
 * @param len its length
 * @return 0, LAYER_EINVALID (with the reason recorded) or LAYER_ETOOBIG
 */
int api_urlpath_check(const char *path, size_t len);

/**
 * Check that the escapes of a raw (still encoded) string are well formed
 * and none of them decodes to NUL, without decoding it.
 *
 * @param in the encoded bytes
 * @param len their length
 * @return true if api_urlpath_decode() would accept it
 */
bool api_urlpath_escapes_valid(const char *in, size_t len);

#endif
