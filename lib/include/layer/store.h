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
 *
 * A store keeps an index of its metadata (layers, their parents, kinds,
 * digests, and the images it knows), built once and shared read-only by
 * every call: an id, a diff digest or an image name is found in O(log n)
 * and a listing page costs its length, whatever the store's size. The
 * index is built again when a metadata file changes (its inode, size,
 * mtime or ctime): an unwatched store compares them on every call, so a
 * change is seen by the next call; a watched one (layer_store_watch())
 * has a thread that notices changes (inotify, and a check once a second)
 * and swaps a new index in when it is ready, so no call ever waits for a
 * build. A store handle may be shared by threads.
 */

#include <stdbool.h>
#include <stddef.h>
#include "layer/reader.h"

/** Longest id accepted (the digest form is "sha256:" + 64 hex). */
#define LAYER_ID_MAX 128

/* LAYER_CHAIN_MAX (layer/reader.h): the longest parent chain followed
 * before the store is called broken. */

/** Longest image reference accepted (a name or an id). */
#define LAYER_IMAGE_REF_MAX 4096

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
    /** has_root_fd: root_fd is the store's root, open (owned:
     * layer_info_free() closes it), for what the store located below it
     * (tarsplit), so nothing is looked up by path again. */
    bool has_root_fd;
    int root_fd;
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
 * Keep the store's index fresh from a thread of the store's own, for a
 * server: the index is built now (a store whose metadata is broken is not
 * an error here; its calls report it), then the thread rebuilds it when a
 * metadata file changes (inotify on the metadata directories, where the
 * kernel offers it, and a comparison of the files' inode, size, mtime and
 * ctime once a second) and swaps the new one in when it is ready. Calls
 * never look at the metadata files or wait for a build; a change is seen
 * within about a second. layer_store_free() stops the thread.
 *
 * @param store the store; calling this twice is harmless
 * @return 0, LAYER_ENOMEM, or LAYER_ERROR when the thread cannot start
 */
int layer_store_watch(layer_store *store);

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
 * What layer_store_resolve() says of a layer, from the index alone: the
 * ids, kinds, times and digests of the layer and its chain, checked the
 * same way, without the data directories (every path is NULL, has_fd
 * false) and without tarsplit or root. For listings: it costs no system
 * call.
 *
 * @param[out] out the layer; free with layer_info_free()
 * @return as layer_store_resolve(), but a missing data directory is only
 *         found when the layer is resolved
 */
int layer_store_describe(layer_info **out, layer_store *store, const char *id);

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
 * An image a store knows: containers-storage's images.json records and
 * their configs (big-data items), docker's image database and the names
 * repositories.json gives them. A dir: store knows none. Owned by the
 * caller; free with layer_image_free().
 */
typedef struct layer_image {
    /** the store's image id: 64 hex for containers-storage,
     * "sha256:<hex>" for docker */
    char *id;
    /** "sha256:<hex>": the digest of its config (the OCI image id) */
    char *config_digest;
    /** the config's file: the store's path and the file below it (for
     * messages; layer_store_image_config() reads it) */
    char *config_path;
    /** the store's id of its top layer, which layer_store_resolve() takes
     * (containers-storage: the record's "layer"; docker: the chain id of
     * the config's rootfs.diff_ids), or NULL for an image without layers */
    char *top_layer;
    char *created; /**< RFC 3339, or NULL */
    /** containers-storage: the digest of its stored manifest; else NULL */
    char *manifest_digest;
    /** the references the store gives it, sorted: "localhost/app:1",
     * "docker.io/library/alpine:3.19" (containers-storage), "app:1",
     * "alpine@sha256:..." (docker, as repositories.json keeps them) */
    char **names;
    size_t nnames;
} layer_image;

/**
 * The images a store knows, sorted by id.
 *
 * @param[out] out the images; free with layer_images_free()
 * @param[out] out_count their number
 * @return 0, LAYER_EBROKEN for broken metadata, LAYER_ENOMEM
 */
int layer_store_images(layer_image ***out, size_t *out_count,
                       layer_store *store);

/**
 * Find an image by one of its names (exactly as the store gives it) or by
 * its id.
 *
 * @param[out] out the image; free with layer_image_free()
 * @param ref the name or id, at most LAYER_IMAGE_REF_MAX bytes of UTF-8
 * @return 0; LAYER_EINVALID for a malformed reference; LAYER_ENOTFOUND;
 *         LAYER_EBROKEN when the store's record of it is broken (its
 *         config does not parse, names a layer that is not a valid id)
 */
int layer_store_image_resolve(layer_image **out, layer_store *store,
                              const char *ref);

/**
 * Read an image's config: the file at image->config_path, opened beneath
 * the store's root with no symlink on the way, whose bytes must hash to
 * image->config_digest.
 *
 * @param[out] out the bytes, NUL-terminated (owned; layer_free())
 * @param[out] out_len their number
 * @return 0; LAYER_ENOTFOUND if the file is gone; LAYER_EBROKEN if it is
 *         a symlink, not a regular file, too big, or hashes to another
 *         digest; LAYER_EINVALID for an image not from this store
 */
int layer_store_image_config(char **out, size_t *out_len, layer_store *store,
                             const layer_image *image);

/** Free an image; NULL is accepted. */
void layer_image_free(layer_image *image);

/** Free an array from layer_store_images(). */
void layer_images_free(layer_image **images, size_t count);

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
