#ifndef LAYER_STORE_INT_H
#define LAYER_STORE_INT_H

/*
 * Private interface between the store front end (store.c: id checks, the
 * parent chain walk, pagination) and the store back ends (store_dir.c,
 * store_cs.c, store_docker.c). A back end only answers "what is layer X"
 * and "which layers exist" from a per-call snapshot of its metadata; the
 * front end does the rest, the same way for every store.
 */

#include <stdbool.h>
#include <stddef.h>

#include "layer/store.h"

struct layer_json;

/** One layer as a back end describes it. All strings owned. */
typedef struct layer_store__node {
    char *id;          /**< canonical id (a valid id) */
    char *parent;      /**< canonical parent id (a valid id), or NULL */
    char *path;        /**< data directory */
    layer_kind kind;   /**< how the data directory holds the layer */
    char *created;     /**< RFC 3339 time, or NULL */
    char *diff_digest; /**< "sha256:<64 hex>", or NULL */
    bool mutable_;     /**< may still change */
} layer_store__node;

/** Release a node's strings and zero it. */
void layer_store__node_dispose(layer_store__node *node);

/** A growable array of owned strings. Zero-initialise. */
typedef struct layer_store__strv {
    char **v;
    size_t n;
    size_t cap;
} layer_store__strv;

/** Append a copy of len bytes of s. @return 0 or LAYER_ENOMEM */
int layer_store__strv_add(layer_store__strv *sv, const char *s, size_t len);

/** Free the strings and the array, and zero sv. */
void layer_store__strv_dispose(layer_store__strv *sv);

/** Lookup flags for layer_store__backend.lookup. */
enum {
    /** The id came from a client: aliases (digests) are accepted. A
     * parent reference from metadata is always a canonical id. */
    LAYER_STORE__ALIASES = 1u << 0
};

/** A store back end. */
typedef struct layer_store__backend {
    const char *prefix; /**< spec prefix, with the colon: "dir:" */
    const char *name;   /**< layer_info.store: "dir" */
    /**
     * Load a snapshot of the store's metadata for one call.
     * @param[out] out_ctx the snapshot, released with end()
     * @param root the store's root directory fd
     * @param root_path its path, for building data paths and messages
     */
    int (*begin)(void **out_ctx, int root, const char *root_path);
    /** Release a snapshot; NULL is accepted. */
    void (*end)(void *ctx);
    /**
     * Describe a layer. id is valid (layer_id_valid()).
     * @return 0, LAYER_ENOTFOUND (no message needed), LAYER_EBROKEN, ...
     */
    int (*lookup)(layer_store__node *out, void *ctx, const char *id,
                  unsigned flags);
    /** Append the canonical ids of all layers, in any order. */
    int (*list)(layer_store__strv *ids, void *ctx);
} layer_store__backend;

extern const layer_store__backend layer_store__dir;
extern const layer_store__backend layer_store__cs;
extern const layer_store__backend layer_store__docker;

/** Largest metadata file read whole (layer.json, layers.json). */
#define LAYER_STORE__FILE_MAX (16u * 1024u * 1024u)

/**
 * Read a whole regular file below a directory fd, without following a
 * symlink in its last component, and NUL-terminate it.
 *
 * @param[out] out the bytes (owned; len + 1 allocated)
 * @param[out] out_len the length
 * @param dirfd directory the name is relative to
 * @param name a relative name built only from validated components
 * @param cap the largest size accepted
 * @param what the file's description for messages
 * @return 0, LAYER_ENOTFOUND if it does not exist (message recorded),
 *         LAYER_EBROKEN if it is not a regular file or larger than cap,
 *         LAYER_ERROR for I/O errors
 */
int layer_store__read_file(char **out, size_t *out_len, int dirfd,
                           const char *name, size_t cap, const char *what);

/**
 * Join path components with '/', checking the total against PATH_MAX.
 * The list ends with NULL.
 * @param[out] out the path (owned)
 * @return 0, LAYER_ETOOBIG, LAYER_ENOMEM
 */
int layer_store__path(char **out, const char *first, ...)
    __attribute__((sentinel));

/**
 * Check that a directory exists below dirfd and is a real directory (not
 * a symlink).
 * @return 0, LAYER_EBROKEN (message names what) or LAYER_ERROR
 */
int layer_store__check_dir(int dirfd, const char *name, const char *what);

/**
 * The names in a directory below dirfd (without "." and ".."), unsorted.
 * @param[out] out names are appended here
 * @param name the directory, relative to dirfd ("." for dirfd itself);
 *        opened without following a symlink
 * @param what its description for messages
 * @return 0, LAYER_ENOTFOUND if it does not exist (message recorded),
 *         LAYER_ERROR, LAYER_ENOMEM
 */
int layer_store__dir_names(layer_store__strv *out, int dirfd, const char *name,
                           const char *what);

/** True if s (len bytes) is "sha256:" followed by 64 lowercase hex. */
bool layer_store__is_digest(const char *s, size_t len);

/** True if s (len bytes) is 64 lowercase hex. */
bool layer_store__is_hex64(const char *s, size_t len);

/**
 * Check an RFC 3339 date-time ("2024-01-02T03:04:05.123Z",
 * "...+02:00"). Only the shape and field ranges are checked.
 */
bool layer_store__rfc3339_valid(const char *s, size_t len);

/**
 * Read an optional string member of a JSON object.
 * @param[out] out a copy (owned) or NULL if the member is absent or null
 * @param[out] out_len its length; may be NULL
 * @return 0, LAYER_EBROKEN if the member has another type (the message
 *         says "<what>: \"key\" is not a string"), LAYER_ENOMEM
 */
int layer_store__json_string(char **out, size_t *out_len,
                             const struct layer_json *obj, const char *key,
                             const char *what);

#endif
