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
#include "layer/text.h"

#include <stddef.h>

/**
 * Largest entry JSON the callers of api_entry_json_append() accept (16 MiB):
 * xattrs make entries big (Linux allows 64 KiB per value, and the reader
 * keeps up to 1 MiB of them per entry, which base64 turns into 1.4 MiB).
 */
#define API_ENTRY_JSON_MAX (16u * 1024u * 1024u)

/**
 * Write the compact JSON of an entry (no newline, no NUL) into a caller
 * buffer. This is the one serialiser of the entry object: the bytes are
 * what json_dumps(api_entry_json(entry), JSON_COMPACT) gives, with the
 * fields in the order of DESIGN.md section 4.
 *
 * Like snprintf, the output is cut at cap and *out_len is the length the
 * whole JSON needs: when *out_len > cap, buf holds an incomplete prefix
 * and the caller writes again into a buffer of *out_len bytes (the same
 * entry gives the same bytes; api_entry_json_append() does this).
 * Nothing is allocated.
 *
 * @param[out] out_len the length of the whole JSON
 * @param buf where the bytes go (may be NULL when cap is 0); not owned
 * @param cap the room in buf
 * @param entry the entry (borrowed)
 * @return 0, or LAYER_ETOOBIG if the length does not fit in a size_t
 */
int api_entry_json_write(size_t *out_len, char *buf, size_t cap,
                         const layer_entry *entry);

/**
 * Append the compact JSON of an entry (no newline) to a capped buffer:
 * api_entry_json_write() into the buffer's spare room, and when that was
 * too small, once more into room grown to the size it reported. This is
 * the one place that loop lives; the CLI and the endpoints all call it.
 *
 * @param buf the buffer (its max bounds the entry, e.g.
 *        API_ENTRY_JSON_MAX plus the caller's framing)
 * @param entry the entry (borrowed)
 * @return 0; LAYER_ETOOBIG when the JSON does not fit under buf->max (the
 *         message names the entry; the buffer is unchanged and usable),
 *         LAYER_ENOMEM, or the buffer's earlier failure
 */
int api_entry_json_append(layer_text_buf *buf, const layer_entry *entry);

/**
 * Build the JSON object of an entry: api_entry_json_write()'s output
 * parsed back, for callers that want a jansson object.
 *
 * @param entry the entry
 * @return a new reference (the caller json_decref()s it), or NULL when
 *         out of memory or when the JSON exceeds API_ENTRY_JSON_MAX
 */
json_t *api_entry_json(const layer_entry *entry);

#endif
