#ifndef LAYER_STORE_INT_H
#define LAYER_STORE_INT_H

/*
 * Private interface between the store front end (store.c: id checks, the
 * parent chain walk, pagination) and the store back ends (store_dir.c,
 * store_cs.c, store_docker.c). A back end only answers "what is layer X"
 * and "which layers exist" from a per-call snapshot of its metadata; the
 * front end does the rest, the same way for every store.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "layer/store.h"

/** One layer as a back end describes it. All strings owned. */
typedef struct layer_store__node {
    char *id;     /**< canonical id (a valid id) */
    char *parent; /**< canonical parent id (a valid id), or NULL */
    char *path;   /**< data directory */
    bool has_fd;  /**< fd is the data directory, open (owned) */
    int fd;
    layer_kind kind;   /**< how the data directory holds the layer */
    char *created;     /**< RFC 3339 time, or NULL */
    char *diff_digest; /**< "sha256:<64 hex>", or NULL */
    bool mutable_;     /**< may still change */
    char *tarsplit;    /**< its tar-split file relative to the root (a
                            regular file), or NULL */
} layer_store__node;

/** Release a node's strings and descriptor, and zero it. */
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
    LAYER_STORE__ALIASES = 1u << 0,
    /** Say where the layer's tar-split data is (node.tarsplit), if the
     * store keeps any: asked for the layer resolved, not its parents. */
    LAYER_STORE__TARSPLIT = 1u << 1
};

/** A store's root: its directory, open since the store was opened (so a
 * rename of one of its ancestors after start moves nothing), and its
 * path. */
typedef struct layer_store__root {
    int fd;           /**< the root directory, open */
    const char *path; /**< its canonical path, for data paths and messages */
} layer_store__root;

/** A store back end. */
typedef struct layer_store__backend {
    const char *prefix; /**< spec prefix, with the colon: "dir:" */
    const char *name;   /**< layer_info.store: "dir" */
    /**
     * Bytes of the back end's snapshot for one call (its ctx), which the
     * front end allocates zeroed before begin() and frees after end(); 0
     * for a back end that keeps none: its ctx is then the
     * layer_store__root, and begin and end are NULL.
     */
    size_t ctx_size;
    /**
     * Load a snapshot of the store's metadata for one call.
     * @param ctx ctx_size zeroed bytes
     * @param root the store's root; outlives the snapshot
     */
    int (*begin)(void *ctx, const layer_store__root *root);
    /** Release what begin() took, also after it failed (not ctx itself). */
    void (*end)(void *ctx);
    /**
     * Describe a layer. id (len bytes, NUL-terminated) is valid
     * (layer_id_valid()).
     * @return 0, LAYER_ENOTFOUND (no message needed), LAYER_EBROKEN, ...
     */
    int (*lookup)(layer_store__node *out, void *ctx, const char *id, size_t len,
                  unsigned flags);
    /** Append the canonical ids of all layers, in any order. */
    int (*list)(layer_store__strv *ids, void *ctx);
} layer_store__backend;

extern const layer_store__backend layer_store__dir;
extern const layer_store__backend layer_store__cs;
extern const layer_store__backend layer_store__docker;

/** Largest metadata file read whole (layer.json, layers.json), and the
 * largest JSON document parsed. */
#define LAYER_STORE__FILE_MAX (16u * 1024u * 1024u)

/**
 * Read a whole regular file below a directory fd, with no symlink on its
 * path, and NUL-terminate it (layer_file_read() with LAYER_FILE_BENEATH;
 * a FIFO is refused, not waited on).
 *
 * @param[out] out the bytes (owned; len + 1 allocated)
 * @param[out] out_len the length
 * @param dirfd directory the name is relative to
 * @param name a relative path built only from validated components
 * @param cap the largest size accepted
 * @param what the file's description for messages
 * @return 0, LAYER_ENOTFOUND if it does not exist (message recorded),
 *         LAYER_EBROKEN if it is a symlink, not a regular file or larger
 *         than cap, LAYER_ERROR for I/O errors
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
 * The names in a directory below dirfd (without "." and ".."), unsorted.
 * @param[out] out names are appended here
 * @param name the directory, relative to dirfd ("." for dirfd itself);
 *        opened with no symlink on its path
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

/** layer_store__json_parse() flag: refuse a repeated object key. */
#define LAYER_STORE__JSON_UNIQUE_KEYS 1u

/**
 * Parse a metadata document with jansson: strict RFC 8259 (UTF-8 only, no
 * BOM, no comments, no trailing commas), any value at the top, "\u0000"
 * kept (members with NUL are refused by layer_store__json_string()),
 * integers read as doubles (Go writes uint64 values that int64 cannot
 * hold; no number is used), nesting up to jansson's 2048 levels. A
 * repeated key keeps its last value, as Go's encoding/json does, unless
 * flags say LAYER_STORE__JSON_UNIQUE_KEYS.
 *
 * @param[out] out the document, a new reference
 * @param data the bytes (need not be NUL-terminated)
 * @param len their number; at most LAYER_STORE__FILE_MAX
 * @param flags 0 or LAYER_STORE__JSON_UNIQUE_KEYS
 * @param what the document's name for messages
 * @return 0; LAYER_EBROKEN for a document that is too big or not valid
 *         JSON (the message names the document, the line, column and byte
 *         offset and what was wrong); LAYER_ENOMEM
 */
int layer_store__json_parse(json_t **out, const char *data, size_t len,
                            unsigned flags, const char *what);

/**
 * Read an optional string member of a JSON object.
 * @param[out] out a copy (owned) or NULL if the member is absent or null
 * @param[out] out_len its length; may be NULL
 * @return 0, LAYER_EBROKEN if the member has another type (the message
 *         says "<what>: \"key\" is a number, not a string") or contains
 *         NUL, LAYER_ENOMEM
 */
int layer_store__json_string(char **out, size_t *out_len, const json_t *obj,
                             const char *key, const char *what);

/* ---- metadata parsers ----------------------------------------------------
 *
 * Each store's metadata files, from bytes to checked values, apart from
 * the filesystem: the back ends read the files and call these, and the
 * fuzz target tests/fuzz/fuzz_store_meta.c calls them with any bytes. On
 * success every value a node gets has been checked (ids with
 * layer_id_valid(), digests, RFC 3339 times).
 */

/**
 * Parse a dir store's layer.json: "parent", "kind", "created",
 * "mutable"; unknown members are ignored, repeated ones refused.
 *
 * @param[out] node parent, kind, created and mutable_ are set (the
 *             caller disposes node whatever the result)
 * @return 0, LAYER_EBROKEN (the message starts with what), LAYER_ENOMEM
 */
int layer_store__dir_parse(layer_store__node *node, const char *data,
                           size_t len, const char *what);

/**
 * Parse a containers-storage list (layers.json, containers.json and
 * their volatile- twins): a JSON array of objects.
 *
 * @param[out] out the array, a new reference
 * @return 0, LAYER_EBROKEN, LAYER_ENOMEM
 */
int layer_store__cs_parse_list(json_t **out, const char *data, size_t len,
                               const char *what);

/**
 * The metadata of one containers-storage layer record: "id", "parent",
 * "created" (the Go zero time is no time), "diff-digest" (kept only when
 * it is a sha256 digest) and "flags.incomplete", which is refused.
 *
 * @param[out] node id, parent, created and diff_digest are set (the
 *             caller disposes node whatever the result)
 * @param rec a record from layer_store__cs_parse_list()
 * @return 0, LAYER_EBROKEN, LAYER_ENOMEM
 */
int layer_store__cs_parse_layer(layer_store__node *node, const json_t *rec);

/**
 * The layers of containers.json: each record's "layer" string.
 *
 * @param[out] out the ids are appended here (not checked: only compared)
 * @param list a list from layer_store__cs_parse_list()
 * @return 0, LAYER_EBROKEN for a "layer" that is not a string,
 *         LAYER_ENOMEM
 */
int layer_store__cs_container_layers(layer_store__strv *out, const json_t *list,
                                     const char *what);

/** What a docker layerdb file holds. */
typedef enum layer_store__docker_file {
    LAYER_STORE__DOCKER_CACHE_ID, /**< cache-id: a directory name */
    LAYER_STORE__DOCKER_DIGEST    /**< diff, parent: a sha256 digest */
} layer_store__docker_file;

/**
 * Parse a docker layerdb file: one token, with a trailing newline
 * tolerated, checked for what the file holds (a cache-id must be a valid
 * id, so that it is a safe path component).
 *
 * @param[out] out the token (owned, NUL-terminated)
 * @param[out] out_len its length
 * @return 0, LAYER_EBROKEN (the message starts with what), LAYER_ENOMEM
 */
int layer_store__docker_parse(char **out, size_t *out_len, const char *data,
                              size_t len, layer_store__docker_file kind,
                              const char *what);

/**
 * Open the data directory of a layer, top/rel below the store's root,
 * with no symlink on the way (layer_beneath_open()): the node keeps the
 * descriptor, and the reader reads through it, never by path.
 *
 * @param[in,out] node path (<root path>/top/rel, owned), fd and has_fd are
 *                set on success
 * @param what the layer, for messages ("<what>: <path> is missing or not
 *        a directory", "<what>: <path> is a symlink or has one on its
 *        path (refused)")
 * @return 0, LAYER_EBROKEN, LAYER_ETOOBIG, LAYER_ERROR, LAYER_ENOMEM
 */
int layer_store__data_dir(layer_store__node *node,
                          const layer_store__root *root, const char *top,
                          const char *rel, const char *what);

/**
 * Where a layer's tar-split data is, if it is there: rel (below the
 * root) when it names a regular file, not a symlink.
 *
 * @param[out] out a copy of rel (owned), or NULL when there is no such
 *             file
 * @param dirfd the directory rel is relative to (the root, or one below
 *        it whose path from the root is prefix)
 * @param prefix the path of dirfd below the root ("" for the root)
 * @param rel the file, built only from validated components
 * @return 0 or LAYER_ENOMEM
 */
int layer_store__tarsplit(char **out, int dirfd, const char *prefix,
                          const char *rel);

#endif
