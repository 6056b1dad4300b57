#ifndef API_ENTRY_JSON_H
#define API_ENTRY_JSON_H

/**
 * @file api/entry_json.h
 * @brief The entry object (DESIGN.md section 4) that `layerd entries`,
 * GET /layers/{id}/entries and /entries/{path} all print.
 *
 * Absent fields are omitted, never null. A tombstone is
 * {"path": ..., "change": "delete"}. Times are RFC 3339 UTC with
 * nanoseconds. xattr values are base64 (RFC 4648, padded).
 *
 * Names that are not valid UTF-8: JSON strings must be Unicode, so
 * "path" (and "link_target") then hold the name with each invalid byte
 * replaced by U+FFFD, for display, and "path_b64" ("link_target_b64")
 * hold the exact bytes in base64. A client that needs the real name uses
 * the _b64 field when present. An xattr whose name is not valid UTF-8 is
 * listed under "b64:" + base64(name).
 */

#include <jansson.h>

#include "layer/entry.h"

/**
 * Build the JSON object of an entry.
 *
 * @param entry the entry
 * @return a new reference (the caller json_decref()s it), or NULL when
 *         out of memory
 */
json_t *api_entry_json(const layer_entry *entry);

/**
 * Format a time as RFC 3339 UTC with nanoseconds,
 * "2026-11-28T19:46:20.647821366Z".
 *
 * @param[out] out buffer of at least 40 bytes
 * @param t the time
 * @return 0, or -1 if the time cannot be represented
 */
int api_time_format(char out[40], const layer_time *t);

/**
 * Make a JSON string from raw bytes: valid UTF-8 is kept, invalid bytes
 * become U+FFFD.
 *
 * @param s bytes
 * @param len their length
 * @param[out] out_lossy set to 1 when bytes were replaced (may be NULL)
 * @return a new reference, or NULL when out of memory
 */
json_t *api_json_string_bytes(const char *s, size_t len, int *out_lossy);

/**
 * Base64-encode bytes (standard alphabet, padded) as a JSON string.
 * @return a new reference, or NULL when out of memory
 */
json_t *api_json_base64(const unsigned char *data, size_t len);

#endif
