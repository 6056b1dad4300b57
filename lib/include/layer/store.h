#ifndef LAYER_STORE_H
#define LAYER_STORE_H

/**
 * @file layer/store.h
 * @brief Layer stores: map layer ids to directories and parent chains.
 *
 * A store is named by a spec string:
 *   - "dir:PATH": PATH/<id>/layer.json ({"parent": ID, "kind":
 *     "diff"|"snapshot", "created": RFC3339}) and PATH/<id>/fs/;
 *   - "containers-storage:PATH": podman/buildah/CRI-O (vfs or overlay);
 *   - "docker:PATH": Docker's overlay2 (/var/lib/docker).
 * Ids are validated with layer_id_valid() before any filesystem access;
 * a store never builds a path from an unvalidated string. Every path
 * below the store's root (metadata files, data directories) is resolved
 * from the root's descriptor with no symlink on the way (layer/beneath.h);
 * the root itself may be reached through symlinks (the operator named
 * it). A resolved layer carries its directories open, so what is read is
 * what was looked up, whatever the store's writers rename meanwhile.
 * Stores re-read their metadata on each call, so layers created after
 * open are seen. A store handle may be shared by threads.
 */

#include <stdbool.h>
#include <stddef.h>
#include "layer/reader.h"

/** Longest id accepted (the digest form is "sha256:" + 64 hex). */
#define LAYER_ID_MAX 128

/* LAYER_CHAIN_MAX (layer/reader.h): the longest parent chain followed
 * before the store is called broken. */

typedef struct layer_store layer_store;

/** A resolved layer. Owned by the caller; free with layer_info_free(). */
typedef struct layer_info {
    char *id;      /**< the store's canonical id */
    char *store;   /**< the store spec's kind: "dir", ... */
    char *created; /**< RFC 3339 time, or NULL if unknown */
    /** The layer's diff ID as the store recorded it (the SHA-256 of the
     * tar the layer was made from), "sha256:...", or NULL. */
    char *diff_digest;
    bool mutable_; /**< the layer may still change (a container layer) */
    /** Where the store keeps the layer's tar-split data (DESIGN.md
     * section 10), relative to root: a regular file when the layer was
     * resolved; NULL when there is none. */
    char *tarsplit;
    /** The store's root directory, canonical; NULL outside a store. */
    char *root;
    /** path (owned), kind, and for a layer a store resolved, the
     * directory open (has_fd; owned: layer_info_free() closes it) */
    layer_dir layer;
    size_t nparents;    /**< at most LAYER_CHAIN_MAX */
    layer_dir *parents; /**< nearest parent first; as layer */
    char **parent_ids;  /**< ids of the parents, same order */
} layer_info;

/**
 * Check that a string from the network is a valid layer id:
 * [A-Za-z0-9][A-Za-z0-9_.:-]{0,127}, not "." or "..", or "sha256:" + 64
 * lowercase hex. Ids containing "..", "/", NUL or '%' are refused.
 *
 * @param id the candidate, len bytes (need not be NUL-terminated)
 * @param len its length
 * @return true if valid
 */
bool layer_id_valid(const char *id, size_t len);

/**
 * Open a store.
 *
 * @param[out] out the store; free with layer_store_free()
 * @param spec "dir:PATH", "containers-storage:PATH" or "docker:PATH"
 * @return 0, LAYER_EINVALID for an unknown spec, LAYER_ENOTFOUND if PATH
 *         does not exist
 */
int layer_store_open(layer_store **out, const char *spec);

/**
 * The spec the store was opened with. Borrowed.
 */
const char *layer_store_spec(const layer_store *store);

/**
 * Resolve a layer id (or another id the store accepts, such as a
 * diff digest) to the layer and its parent chain.
 *
 * @param[out] out the layer; free with layer_info_free()
 * @param store the store
 * @param id the id, NUL-terminated; validated first
 * @return 0, LAYER_EINVALID for a malformed id, LAYER_ENOTFOUND for an
 *         unknown one, LAYER_EBROKEN for broken metadata (a missing
 *         parent, a cycle, a chain longer than LAYER_CHAIN_MAX)
 */
int layer_store_resolve(layer_info **out, layer_store *store, const char *id);

/**
 * List layer ids in bytewise order, for pagination.
 *
 * @param[out] out_ids array of ids; free with layer_store_ids_free()
 * @param[out] out_count number of ids
 * @param store the store
 * @param after only ids sorting after this one (NULL: from the start)
 * @param limit the most ids to return (0: no limit)
 * @return 0 or a negative code
 */
int layer_store_list(char ***out_ids, size_t *out_count, layer_store *store,
                     const char *after, size_t limit);

/** Free an id array from layer_store_list(). */
void layer_store_ids_free(char **ids, size_t count);

/**
 * The parent paths of a layer joined with ", ", nearest first (the form
 * hcsshim gives its parentLayerPaths span attribute).
 *
 * @param info the layer
 * @return a new string (layer_free() it), "" for a base layer, or NULL
 *         when out of memory
 */
char *layer_info_parent_paths(const layer_info *info);

/** Free a layer_info. NULL is accepted. */
void layer_info_free(layer_info *info);

/** Free a store. NULL is accepted. */
void layer_store_free(layer_store *store);

#endif
