#ifndef API_DIGEST_MEMO_H
#define API_DIGEST_MEMO_H

/**
 * @file api/digest_memo.h
 * @brief The digests of earlier exports of immutable layers, so that the
 * next export of the same layer need not hash its bytes again.
 *
 * An export of a layer the store calls immutable records its diff ID,
 * digest, size and fingerprint (layer_export_summary) here, keyed by the
 * layer id and the export's options, once it ended cleanly with no
 * warning. A later export with the same key runs with
 * LAYER_EXPORT_NO_DIGESTS and sends the recorded digests as its
 * trailers, after checking that its own fingerprint and size equal the
 * recorded ones; if they do not (the layer changed after all), the
 * stream is cut, the record dropped, and the next export hashes again.
 * Only the SHA-256 work is saved: the bytes are read and packed anew
 * every time.
 *
 * A fixed number of records, the least recently used replaced first;
 * safe to use from any thread.
 */

#include <stddef.h>

/** Records kept when api_digest_memo_new() is given 0. */
#define API_DIGEST_MEMO_DEFAULT 256

typedef struct api_digest_memo api_digest_memo;

/**
 * Create an empty memo.
 *
 * @param[out] out the memo; free with api_digest_memo_free()
 * @param capacity records kept (0: API_DIGEST_MEMO_DEFAULT)
 * @return 0 or LAYER_ENOMEM
 */
int api_digest_memo_new(api_digest_memo **out, size_t capacity);

/** Release a memo (NULL is accepted). No export may still use it. */
void api_digest_memo_free(api_digest_memo *m);

#endif
