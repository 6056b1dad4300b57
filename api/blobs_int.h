#ifndef API_BLOBS_INT_H
#define API_BLOBS_INT_H

/*
 * Private to api/: layer blobs (api/blobs.c). The one place that turns a
 * layer, a tar kind, a compression and a level into a blob: its bytes,
 * its size and its digests, served from the blob cache (layer/blobcache.h)
 * when it is there and made by one export when it is not.
 *
 * Three ways in:
 *   - api_blob__open(): a blob to stream to one client. A cache HIT
 *     knows its size and digests before the first byte (Content-Length,
 *     Range, digests as headers); a FILL runs the one export of the key
 *     and tees its bytes into the cache as this client is served; a WAIT
 *     reads another request's fill as it grows; a BYPASS (mutable layer,
 *     no cache) runs an export that keeps nothing. FILL, WAIT and BYPASS
 *     learn their digests at the end (trailers).
 *   - api_blob__open_digest(): a committed blob by its digest (the
 *     registry's /v2/<name>/blobs/<digest>), with Range.
 *   - api_blob__describe(): a blob's digest, size, diff ID and media type
 *     without streaming it (the registry's manifests): at once on a hit,
 *     otherwise after a fill that runs on a background thread; the caller
 *     is told through the same notify protocol as layer/export.h, so a
 *     handler never blocks a server thread on an export.
 *
 * api_blob__respond() turns an open blob into a whole response (headers,
 * status, Range, HEAD, the producer), for /layers/{id}/export and the
 * registry alike.
 *
 * Threads: every function may be called from any thread; one blob or
 * describe handle is used by one thread at a time (set_notify excepted).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api_int.h"
#include "layer/blobcache.h"
#include "layer/export.h"
#include "layer/store.h"
#include "layer/trace.h"

/** Room for a key fingerprint: "sha256:" + 64 hex, or "diff:" + a diff
 * ID, and the NUL. */
#define API_BLOB_FINGERPRINT_SIZE 80

/** What blob to make: one export of one layer. */
typedef struct api_blob_spec {
    /** The resolved layer: taken over by the call it is passed to (freed
     * by it, on failure too); a fill keeps it for as long as its export
     * runs, which may be after the request is gone. */
    layer_info *info;
    /** Descriptors reserved for reading the layer (api_fds_acquire(),
     * e.g. the call's from api_layers__resolve()), or 0: taken over with
     * info, and given back when the layer is released (at once for a
     * hit or a wait, when its export ends for a fill). */
    uint64_t fds;
    /** LAYER_EXPORT_TAR_CANONICAL or LAYER_EXPORT_TAR_ORIGINAL, as
     * layer_export_choose_tar() decided (not AUTO). */
    layer_export_tar tar;
    layer_compression compression;
    int level; /**< 0: the format's default (the same blob as naming it) */
} api_blob_spec;

/** A blob being served to one client. */
typedef struct api_blob api_blob;

/** api_blob__open() flags. */
enum api_blob_open_flags {
    /** Never start an export (HEAD): a committed blob is a HIT, a fill in
     * flight is joined (WAIT), anything else is LAYER_ENOTFOUND. */
    API_BLOB_NOFILL = 1u << 0
};

/**
 * Open a blob for one client.
 *
 * Immutable layers go through the cache, under a key made of the layer's
 * identity (store and id), the export's options and a fingerprint
 * (api_blob__fingerprint()); mutable layers, and every layer when the
 * context has no cache, are exported without it (BYPASS). A FILL or
 * BYPASS takes an export slot (api_exports_acquire()) and gives it back
 * when its export ends; a HIT or WAIT takes none. Sets the span's
 * "cache.result" (hit|fill|wait|bypass) and "export.tar".
 *
 * @param[out] out the blob; release with api_blob__free()
 * @param ctx the context (its cache may be NULL)
 * @param spec what to make; spec->info is taken over
 * @param span the request's span (the parent of the export's), or NULL
 * @param flags api_blob_open_flags
 * @return 0; LAYER_EBUSY when an export would be needed and every slot is
 *         taken (503); LAYER_ENOTFOUND under API_BLOB_NOFILL for a blob
 *         that is not there; LAYER_EINVALID for a bad level; the export's
 *         start errors (LAYER_ENOTFOUND: the layer's directory is gone);
 *         LAYER_ERROR, LAYER_ENOMEM
 */
int api_blob__open(api_blob **out, api_context *ctx, api_blob_spec *spec,
                   layer_span *span, unsigned flags);

/**
 * Open the committed blob with this digest (any key's).
 *
 * @param[out] out the blob (a HIT); release with api_blob__free()
 * @param ctx the context
 * @param digest "sha256:<64 lowercase hex>"
 * @param span the request's span ("cache.result" is set), or NULL
 * @return 0; LAYER_ENOTFOUND when no such blob is kept (or there is no
 *         cache); LAYER_EINVALID for a malformed digest; LAYER_ERROR,
 *         LAYER_ENOMEM
 */
int api_blob__open_digest(api_blob **out, api_context *ctx, const char *digest,
                          layer_span *span);

/** How the blob is served: hit, fill, wait or bypass. */
layer_blobcache_role api_blob__role(const api_blob *b);

/**
 * The blob's digests, size and media type.
 * @return 0 (a HIT always; the others once the stream ended);
 *         LAYER_EAGAIN before that
 */
int api_blob__info(layer_blobcache_info *out, const api_blob *b);

/**
 * Serve only bytes [offset, offset + length) of a HIT (HTTP Range).
 * Before the first read only.
 * @return 0; LAYER_EINVALID for an offset past the end, for a blob that
 *         is not a HIT, or after the first read
 */
int api_blob__range(api_blob *b, uint64_t offset, uint64_t length);

/**
 * Take up to cap bytes without blocking.
 *
 * @param[out] out_n bytes stored, at least 1 when 0 is returned
 * @param b the blob
 * @param buf destination
 * @param cap its capacity, at least 1
 * @return 0; LAYER_ITEROVER at the end (api_blob__info() then answers);
 *         LAYER_EAGAIN: nothing now, the notify callback will be called
 *         once there is (exactly the layer_export_read() protocol);
 *         another negative code when the blob cannot be completed (the
 *         export failed, the layer changed while it was read, the fill
 *         this reader waited on was aborted): cut the stream
 */
int api_blob__read(size_t *out_n, api_blob *b, void *buf, size_t cap);

/**
 * Install the callback for api_blob__read()'s LAYER_EAGAIN (any thread,
 * possibly before the read returned; an event that came while none was
 * installed calls the new one at once). NULL uninstalls: once that
 * returns, no call of the old callback is running or will start.
 */
void api_blob__set_notify(api_blob *b, void (*fn)(void *arg), void *arg);

/**
 * Release a blob, at its end or in the middle (the client went away). A
 * FILL left in the middle goes on, on a background thread, for as long
 * as other clients wait on it, and is aborted (nothing kept) once none
 * does. NULL is accepted.
 */
void api_blob__free(api_blob *b);

/**
 * Answer call with blob b (taken over, freed on failure too): status,
 * Content-Type (type), Vary, X-Layer-Tar when tar_header is set, and
 *   - for a HIT: Content-Length, Accept-Ranges, ETag (the quoted
 *     digest), Docker-Content-Digest, X-Layer-Diff-Id as headers; a
 *     single byte Range (If-Range honoured; HEAD as GET) gives 206 with
 * Content-Range or 416; If-None-Match with the ETag gives 304;
 *   - otherwise a chunked stream whose digests come as trailers
 *     (announced by a Trailer header); Range is ignored (200).
 * HEAD gets the headers alone.
 *
 * @return 0; a negative code with a problem set (headers full)
 */
int api_blob__respond(api_call *call, api_blob *b, const char *type,
                      const char *tar_header);

/** A describe in progress. */
typedef struct api_blob_describe api_blob_describe;

/**
 * Learn a blob's digest, size, diff ID and media type, making it if it
 * must: a hit answers at once; a fill in flight is waited on; a miss
 * starts a fill on a background thread (it takes an export slot); a
 * BYPASS (mutable layer, or no cache) runs an export on a background
 * thread that keeps no bytes, only their digests. Never blocks on an
 * export.
 *
 * @param[out] out the describe; release with api_blob_describe__free()
 * @param ctx the context
 * @param spec what to make; spec->info is taken over
 * @param span the request's span, or NULL
 * @return 0; LAYER_EBUSY when an export is needed and no slot is free;
 *         LAYER_EINVALID for a bad level; LAYER_ERROR, LAYER_ENOMEM
 */
int api_blob__describe(api_blob_describe **out, api_context *ctx,
                       api_blob_spec *spec, layer_span *span);

/**
 * The answer of a describe.
 * @param[out] out the info, once 0 is returned
 * @param d the describe
 * @return 0; LAYER_EAGAIN (the notify callback is called once the answer
 *         is there, as for api_blob__read()); another negative code when
 *         the blob could not be made (the message says why)
 */
int api_blob_describe__result(layer_blobcache_info *out, api_blob_describe *d);

/** As api_blob__set_notify(), for a describe. */
void api_blob_describe__set_notify(api_blob_describe *d, void (*fn)(void *arg),
                                   void *arg);

/**
 * Release a describe. A fill it started goes on while anyone waits on it
 * (it is aborted when nobody does). NULL is accepted.
 */
void api_blob_describe__free(api_blob_describe *d);

/**
 * The cache key's fingerprint of a layer: what must change for the
 * export's bytes to change, known without reading the layer.
 *   - An original tar: "diff:" + the diff ID the store recorded. Its
 *     bytes are that tar, checked against the diff ID as it streams, so
 *     nothing else can change them.
 *   - A canonical tar: "sha256:" + the SHA-256 of the store's metadata
 *     of the layer (kind, id, created, diff ID, mutability) and, for the
 *     layer's directory and each parent's, its path and statx identity
 *     (device, inode, birth, change and modification times). A layer
 *     recreated under the same id, or a directory replaced, renamed,
 *     or given entries at its top level, gets a new fingerprint. An edit
 *     in place below the top level of an immutable layer's directory does
 *     not move it (that needs a walk of the whole tree): such an edit is
 *     caught while a fill runs (the export's warnings, and this
 *     fingerprint taken again at its end, abort the fill), not by a hit.
 *     It also says whether this process can read trusted.* xattrs
 *     (CAP_SYS_ADMIN), which an overlay layer's export depends on.
 *
 * @param[out] out the fingerprint
 * @param info the layer
 * @param tar CANONICAL or ORIGINAL
 * @return 0; LAYER_ENOTFOUND when a directory is gone; LAYER_EINVALID for
 *         an original tar without a recorded diff ID; LAYER_ERROR
 */
int api_blob__fingerprint(char out[API_BLOB_FINGERPRINT_SIZE],
                          const layer_info *info, layer_export_tar tar);

/**
 * Wait until no fill runs on a background thread of ctx (they are told
 * to stop: drains abort, commits finish). For shutdown, after the server
 * stopped; api_context_free() calls it.
 */
void api_blobs__drain(api_context *ctx);

#endif
