#ifndef LAYER_STORE_INT_H
#define LAYER_STORE_INT_H

/*
 * Private interface between the store front end (store.c: id checks, the
 * parent chain walk, pagination, images), the index (store_index.c: what
 * a store knows, built once and shared read-only, rebuilt when the
 * metadata files change) and the store back ends (store_dir.c,
 * store_cs.c, store_docker.c). A back end only turns its metadata into
 * index records (layers, images, and the files whose change calls for a
 * new index); the front end answers every question from the index, the
 * same way for every store.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "layer/store.h"

/** One layer as a metadata parser describes it. All strings owned. */
typedef struct layer_store__node {
    char *id;          /**< canonical id (a valid id) */
    char *parent;      /**< canonical parent id (a valid id), or NULL */
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

/** A store's root: its directory, open since the store was opened (so a
 * rename of one of its ancestors after start moves nothing), and its
 * path. */
typedef struct layer_store__root {
    int fd;           /**< the root directory, open */
    const char *path; /**< its canonical path, for data paths and messages */
} layer_store__root;

/* ---- the index -------------------------------------------------------- */

/** One layer record of the index. Strings live in the index. */
typedef struct layer_store__rec {
    const char *id;          /**< canonical id (a valid id) */
    const char *parent;      /**< canonical parent id, or NULL */
    const char *created;     /**< RFC 3339, or NULL */
    const char *diff_digest; /**< "sha256:<64 hex>", or NULL */
    /** another id a client may give for it (a diff digest), or NULL;
     * among the records with one alias, the lowest order wins, then the
     * bytewise lowest id */
    const char *alias;
    uint32_t order;
    const char *data; /**< its data directory, relative to the root */
    /** where the store would keep its tar-split data (DESIGN.md section
     * 10), relative to the root, or NULL: looked for when the layer is
     * resolved (layer_info.tarsplit) */
    const char *tarsplit;
    /** the parent's record (an index of the index's records), found once
     * when the index is built; UINT32_MAX when there is none */
    uint32_t parent_rec;
    layer_kind kind;
    bool mutable_;
    bool listed;        /**< layer_store_list() shows it */
    int err;            /**< 0, or resolving it fails with this code ... */
    const char *errmsg; /**< ... and this message */
} layer_store__rec;

/** One image record of the index. Strings live in the index. */
typedef struct layer_store__img {
    const char *id;              /**< the store's image id */
    const char *config_digest;   /**< "sha256:<hex>" of its config, or NULL */
    const char *config;          /**< its config file, relative to the root */
    const char *top_layer;       /**< its top layer's id, or NULL */
    const char *created;         /**< RFC 3339, or NULL */
    const char *manifest_digest; /**< the stored manifest's digest, or NULL */
    const char **names;          /**< references, sorted */
    size_t nnames;
    uint32_t order;     /**< of two records of one id, the lower wins */
    int err;            /**< 0, or resolving it fails with this code ... */
    const char *errmsg; /**< ... and this message */
} layer_store__img;

typedef struct layer_store__index layer_store__index;
typedef struct layer_store__builder layer_store__builder;

/* Building: a back end's build() fills a builder. Every function that
 * allocates returns NULL (or LAYER_ENOMEM) when out of memory and marks the
 * builder, whose build then fails with LAYER_ENOMEM. */

/** Copy len bytes of s into the index (NUL-terminated); NULL stays NULL. */
const char *layer_store__bstrn(layer_store__builder *b, const char *s,
                               size_t len);

/** Copy a NUL-terminated string (or NULL) into the index. */
const char *layer_store__bstr(layer_store__builder *b, const char *s);

/** A formatted string in the index. */
const char *layer_store__bfmt(layer_store__builder *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** n zeroed bytes in the index, aligned for any type. */
void *layer_store__balloc(layer_store__builder *b, size_t n);

/** Add a layer record (its strings already in the index). */
int layer_store__badd_layer(layer_store__builder *b,
                            const layer_store__rec *rec);

/** Add an image record (its strings already in the index). */
int layer_store__badd_image(layer_store__builder *b,
                            const layer_store__img *img);

/** The image metadata as a whole is broken (code, this thread's last
 * message): image calls fail so, layer calls are not concerned. */
void layer_store__bimages_error(layer_store__builder *b, int code);

/** Make rec (or img) fail with code and this thread's last message. */
void layer_store__brec_error(layer_store__builder *b, layer_store__rec *rec,
                             int code);
void layer_store__bimg_error(layer_store__builder *b, layer_store__img *img,
                             int code);

/**
 * Remember the state of a metadata file or directory below the root
 * (device, inode, size, mtime, ctime, or its absence), before reading it:
 * the index is rebuilt once one of them differs. A directory's state
 * changes when names are added to it or removed. What to watch is
 * watched for changes too (inotify): a directory itself, a file through
 * its directory.
 * @param rel its path below the root
 * @param dir true for a directory whose entries are the metadata
 */
int layer_store__bstamp(layer_store__builder *b, const char *rel, bool dir);

/** A store back end. */
typedef struct layer_store__backend {
    const char *prefix; /**< spec prefix, with the colon: "dir:" */
    const char *name;   /**< layer_info.store: "dir" */
    /** how messages name a layer: this, then its id */
    const char *what;
    /** a client's 64-hex id means "sha256:" and it (docker chain ids) */
    bool hex_ids;
    /**
     * Turn the store's metadata into index records. Records that cannot
     * be served carry their error (layer_store__brec_error()); a failure
     * of the whole store (metadata that does not parse, no driver) is a
     * negative return with the message recorded, and every call then
     * fails with it until the metadata changes.
     */
    int (*build)(layer_store__builder *b, const layer_store__root *root);
} layer_store__backend;

extern const layer_store__backend layer_store__dir;
extern const layer_store__backend layer_store__cs;
extern const layer_store__backend layer_store__docker;

/**
 * Build an index of a store. A failure of the whole store is kept in the
 * index (layer_store__index_error()), not returned.
 * @param[out] out the index, one reference held
 * @return 0 or LAYER_ENOMEM
 */
int layer_store__index_build(layer_store__index **out,
                             const layer_store__backend *be,
                             const layer_store__root *root);

/** Take one more reference. */
void layer_store__index_ref(layer_store__index *idx);

/** Drop a reference; the last one frees the index. NULL is accepted. */
void layer_store__index_unref(layer_store__index *idx);

/** The failure of the whole store (its message in *msg), or 0. */
int layer_store__index_error(const layer_store__index *idx, const char **msg);

/** True when a metadata file the index was built from has changed. */
bool layer_store__index_stale(const layer_store__index *idx, int root_fd);

/** Add inotify watches on what the index's stamps ask to watch. */
void layer_store__index_watch(const layer_store__index *idx, int inotify_fd,
                              int root_fd);

/**
 * The record of a canonical id (len bytes), or with aliases, also of an
 * alias (a diff digest); NULL when the store has none.
 */
const layer_store__rec *layer_store__index_find(const layer_store__index *idx,
                                                const char *id, size_t len,
                                                bool aliases);

/** The record of rec's parent, or NULL when it has none or the store
 * does not know it. */
const layer_store__rec *layer_store__index_parent(const layer_store__index *idx,
                                                  const layer_store__rec *rec);

/** The records listed, in bytewise id order: *out_first is the first
 * position after `after` (NULL: the start); positions run to count. */
void layer_store__index_range(const layer_store__index *idx, const char *after,
                              size_t *out_first, size_t *out_count);

/** The record at a position of the id order (see _range()). */
const layer_store__rec *layer_store__index_at(const layer_store__index *idx,
                                              size_t pos);

/** The images, in id order. */
size_t layer_store__index_images(const layer_store__index *idx,
                                 const layer_store__img **out);

/** The failure of the image metadata as a whole (message in *msg), or 0. */
int layer_store__index_images_error(const layer_store__index *idx,
                                    const char **msg);

/** The image with this id, or with this name; NULL if none. */
const layer_store__img *
layer_store__index_image_find(const layer_store__index *idx, const char *ref);

/** Largest metadata file read whole (layers.json, images.json,
 * repositories.json, an image config), and the largest JSON document
 * parsed: no limit below what the biggest real stores need. */
#define LAYER_STORE__FILE_MAX (256u * 1024u * 1024u)

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
 *         LAYER_EBROKEN if it is a symlink, LAYER_ERROR, LAYER_ENOMEM
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
 * fuzz targets (tests/fuzz/fuzz_*.c) call them with any bytes. On success
 * every value has been checked (ids with layer_id_valid(), digests, RFC
 * 3339 times).
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

/** A containers-storage record, as layer_store__cs_parse_each() gives it:
 * its index in the file. A negative return stops the parse with it. */
typedef int (*layer_store__cs_each_fn)(void *arg, const json_t *rec,
                                       size_t index);

/**
 * Parse a containers-storage list (layers.json, containers.json,
 * images.json and their volatile- twins): a JSON array of objects, handed
 * to fn one record at a time. The array is scanned here and each record
 * parsed by jansson as its own document (strict RFC 8259, a repeated key
 * keeping its last value as in Go), so memory is one record's whatever the
 * file's size, and a store of tens of thousands of layers is read in a
 * fraction of the time a whole-document parse takes.
 *
 * @param fn called for each record, in file order
 * @return 0; LAYER_EBROKEN for a document that is too big, not an array,
 *         holds an item that is not an object, or is not valid JSON (the
 *         message names the document, the line, column and byte offset
 *         and what was wrong); what fn returned; LAYER_ENOMEM
 */
int layer_store__cs_parse_each(const char *data, size_t len, const char *what,
                               layer_store__cs_each_fn fn, void *arg);

/**
 * The metadata of one containers-storage layer record: "id", "parent",
 * "created" (the Go zero time is no time), "diff-digest" (kept only when
 * it is a sha256 digest) and "flags.incomplete", which is refused.
 *
 * @param[out] node id, parent, created and diff_digest are set (the
 *             caller disposes node whatever the result)
 * @param rec a record from layer_store__cs_parse_each()
 * @return 0, LAYER_EBROKEN, LAYER_ENOMEM
 */
int layer_store__cs_parse_layer(layer_store__node *node, const json_t *rec);

/**
 * The layer of one containers.json record: its "layer" string, if any.
 *
 * @param[out] out the id is appended here (not checked: only compared)
 * @param rec a record from layer_store__cs_parse_each(), index its index
 * @return 0, LAYER_EBROKEN for a "layer" that is not a string,
 *         LAYER_ENOMEM
 */
int layer_store__cs_container_layer(layer_store__strv *out, const json_t *rec,
                                    size_t index, const char *what);

/** An image as a metadata parser describes it. All strings owned. */
typedef struct layer_store__image_node {
    char *id;                /**< the store's image id */
    layer_store__strv names; /**< its references, as the store gives them */
    char *top_layer;         /**< its top layer's id (a valid id), or NULL */
    char *created;           /**< RFC 3339, or NULL */
    char *manifest_digest;   /**< "sha256:<hex>", or NULL */
    char *config_digest;     /**< "sha256:<hex>" of its config, or NULL */
} layer_store__image_node;

/** Release an image node's strings and zero it. */
void layer_store__image_node_dispose(layer_store__image_node *node);

/**
 * One containers-storage images.json record: "id" (64 hex), "names"
 * (strings), "layer" (the top layer, a valid id), "created" (the Go zero
 * time is no time), "digest" (the manifest's) and the config's digest,
 * the "big-data-names" key that is a sha256 digest.
 *
 * @param[out] node filled (the caller disposes it whatever the result)
 * @param rec a record from layer_store__cs_parse_each()
 * @return 0, LAYER_EBROKEN (the message names the record), LAYER_ENOMEM
 */
int layer_store__cs_parse_image(layer_store__image_node *node,
                                const json_t *rec);

/**
 * The name of the file containers-storage keeps an image's big-data item
 * under: the key itself if every byte is in [.0-9a-z], else "=" and the
 * key's standard base64.
 * @param[out] out a new string (layer_free())
 * @return 0 or LAYER_ENOMEM
 */
int layer_store__cs_big_data_name(char **out, const char *key);

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

/** A name and the image it names, from repositories.json. */
typedef struct layer_store__docker_ref {
    char *name; /**< "repo:tag" or "repo@sha256:<hex>", as docker keeps it */
    char *image_id; /**< "sha256:<hex>" */
} layer_store__docker_ref;

/**
 * Parse docker's repositories.json: {"Repositories": {"<repo>":
 * {"<ref>": "sha256:<image id>"}}}. A reference must be a string without
 * NUL or control characters of at most 4096 bytes whose image id is a
 * sha256 digest; anything else is refused.
 *
 * @param[out] out the references, in file order (free with
 *             layer_store__docker_refs_free())
 * @param[out] out_count their number
 * @return 0, LAYER_EBROKEN (the message starts with what), LAYER_ENOMEM
 */
int layer_store__docker_parse_repositories(layer_store__docker_ref **out,
                                           size_t *out_count, const char *data,
                                           size_t len, const char *what);

/** Free references from layer_store__docker_parse_repositories(). */
void layer_store__docker_refs_free(layer_store__docker_ref *refs, size_t n);

/** Most layers an image config may list (no real image comes near). */
#define LAYER_STORE__IMAGE_LAYERS_MAX 1024

/**
 * Parse an OCI / docker image config: "rootfs" ({"type": "layers",
 * "diff_ids": [sha256 digests]}, at most LAYER_STORE__IMAGE_LAYERS_MAX)
 * and "created"; other members are ignored. The image's top layer chain
 * id follows from the diff ids (OCI image-spec: ChainID(L0) = DiffID(L0),
 * ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))).
 *
 * @param[out] out_chain the top layer's chain id ("sha256:<hex>", 72
 *             bytes with the NUL), or "" for an image without layers
 * @param[out] out_created "created", owned, or NULL
 * @return 0, LAYER_EBROKEN (the message starts with what), LAYER_ENOMEM
 */
int layer_store__image_config_parse(char out_chain[72], char **out_created,
                                    const char *data, size_t len,
                                    const char *what);

#endif
