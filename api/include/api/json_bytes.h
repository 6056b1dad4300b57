#ifndef API_JSON_BYTES_H
#define API_JSON_BYTES_H

/**
 * @file api/json_bytes.h
 * @brief JSON strings from raw bytes, for the documents api and the CLI
 * build with jansson (problem details, export summaries): file names and
 * messages need not be UTF-8, and JSON strings must be.
 */

#include <jansson.h>

#include <stddef.h>

/**
 * Make a JSON string from raw bytes: valid UTF-8 is kept, each invalid
 * byte and each NUL becomes U+FFFD.
 *
 * @param s bytes
 * @param len their length
 * @param[out] out_lossy set to 1 when bytes were replaced (may be NULL)
 * @return a new reference, or NULL when out of memory
 */
json_t *api_json_string_bytes(const char *s, size_t len, int *out_lossy);

/**
 * Base64-encode bytes (standard alphabet, padded) as a JSON string.
 *
 * @param data the bytes
 * @param len their number
 * @return a new reference, or NULL when out of memory
 */
json_t *api_json_base64(const unsigned char *data, size_t len);

#endif
