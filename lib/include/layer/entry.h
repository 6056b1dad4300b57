#ifndef LAYER_ENTRY_H
#define LAYER_ENTRY_H

/**
 * @file layer/entry.h
 * @brief One entry of a layer changeset, as the reader yields it.
 *
 * An entry describes one path of the changeset: an addition, a
 * modification, or a deletion (a tombstone). Paths are relative,
 * '/'-separated, with no leading "./" and no trailing '/'; the root of the
 * layer is never an entry. Strings are raw bytes from the filesystem and
 * need not be valid UTF-8.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What happened to the path in this layer. */
typedef enum layer_change {
    LAYER_CHANGE_ADD = 0,
    LAYER_CHANGE_MODIFY = 1,
    LAYER_CHANGE_DELETE = 2
} layer_change;

/** File type. Sockets are never yielded. */
typedef enum layer_type {
    LAYER_TYPE_NONE = 0, /**< tombstones only */
    LAYER_TYPE_FILE,
    LAYER_TYPE_DIR,
    LAYER_TYPE_SYMLINK,
    LAYER_TYPE_HARDLINK, /**< link_target names the entry with the data */
    LAYER_TYPE_CHAR,
    LAYER_TYPE_BLOCK,
    LAYER_TYPE_FIFO
} layer_type;

/** A point in time, seconds and nanoseconds since the Unix epoch. */
typedef struct layer_time {
    int64_t sec;
    uint32_t nsec;
} layer_time;

/** One extended attribute: a name and raw value bytes. */
typedef struct layer_xattr {
    const char *name;
    const unsigned char *value;
    size_t len;
} layer_xattr;

/** Identity of a file: the device and inode it lives on. */
typedef struct layer_file_id {
    uint64_t dev;
    uint64_t ino;
} layer_file_id;

/**
 * A changeset entry. All pointers are borrowed from the reader and stay
 * valid until the next call of layer_reader_next() or layer_reader_close().
 * For a tombstone only path, path_len and change are meaningful.
 */
typedef struct layer_entry {
    const char *path; /**< relative path, NUL-terminated */
    size_t path_len;  /**< strlen(path) (paths may not contain NUL) */
    layer_change change;
    layer_type type;
    uint32_t mode; /**< permission bits plus setuid/setgid/sticky */
    uint32_t uid;
    uint32_t gid;
    uint64_t size; /**< bytes layer_reader_read() yields; 0 if none */
    layer_time mtime;
    layer_time atime;
    layer_time ctime;
    layer_time btime; /**< valid only if has_btime */
    bool has_btime;
    uint32_t rdev_major; /**< char and block devices */
    uint32_t rdev_minor;
    const char *link_target; /**< symlink target or hardlink target path */
    size_t link_target_len;
    uint64_t nlink;
    layer_file_id file_id;
    const layer_xattr *xattrs; /**< sorted by name; overlay.* excluded */
    size_t xattr_count;
    bool opaque; /**< directories: the layer marks it opaque */
} layer_entry;

/**
 * Name of a change kind: "add", "modify" or "delete".
 * @return a static string
 */
const char *layer_change_name(layer_change change);

/**
 * Name of a type: "file", "dir", "symlink", "hardlink", "char", "block",
 * "fifo"; "none" for tombstones.
 * @return a static string
 */
const char *layer_type_name(layer_type type);

/**
 * Find an extended attribute of an entry by name.
 * @return a borrowed pointer into the entry, or NULL
 */
const layer_xattr *layer_entry_xattr(const layer_entry *entry,
                                     const char *name);

/**
 * Compare two relative paths in changeset order: bytewise, with '/'
 * lower than every other byte (depth-first pre-order with sorted
 * children).
 * @return <0, 0 or >0 like strcmp
 */
int layer_path_compare(const char *a, size_t alen, const char *b, size_t blen);

#endif
