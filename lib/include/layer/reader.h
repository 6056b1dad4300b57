#ifndef LAYER_READER_H
#define LAYER_READER_H

/**
 * @file layer/reader.h
 * @brief The layer reader: a layer's changeset, one entry at a time.
 *
 * The Linux port of hcsshim's LayerReader. A layer is a directory, a kind
 * and a parent chain (nearest parent first, base last). The reader walks
 * the layer depth-first in pre-order with children sorted bytewise and
 * yields the changeset against the parents: additions, modifications and
 * tombstones, each changed path preceded by its parent directories once.
 * Memory is bounded by tree depth times directory width.
 *
 * Descriptors are bounded whatever the depth: a reader holds its layer's
 * and its parents' roots, the directory it is in and that directory's
 * lower view (the same directory in each parent), and at most 64 more for
 * the directories above; directories beyond that are closed and, when the
 * walk comes back to them, reopened beneath the roots with no symlink on
 * the way and checked to be the same directories (a replaced one fails
 * the walk with LAYER_ECHANGED). In all at most 2 * (n + 1) + 68, n the
 * parents in the lower view (at most LAYER_CHAIN_MAX); the 4 beyond the
 * 64 are the file being read, the two files a snapshot compares and a
 * folder's tombstones.txt.
 *
 * The reader is not thread-safe; one thread at a time may use it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "layer/entry.h"

/** How a layer directory holds its content. */
typedef enum layer_kind {
    /** Only the layer's changes, overlayfs upperdir style. */
    LAYER_KIND_DIFF = 0,
    /** A full tree; the changeset is the difference to the parent. */
    LAYER_KIND_SNAPSHOT = 1,
    /** A transport folder: Files/ plus tombstones.txt (layer/folder.h). */
    LAYER_KIND_FOLDER = 2
} layer_kind;

/**
 * The name of a kind: "diff", "snapshot" or "folder" (the values of
 * `--kind` and of a dir: store's layer.json "kind").
 *
 * @param kind the kind
 * @return a static string; "unknown" for a value outside the enum
 */
const char *layer_kind_name(layer_kind kind);

/**
 * Parse a kind name, as layer_kind_name() spells it (case-sensitive).
 *
 * @param[out] out the kind; untouched on failure
 * @param name the name, or NULL
 * @return 0, or LAYER_EINVALID for NULL or an unknown name
 */
int layer_kind_parse(layer_kind *out, const char *name);

/**
 * The longest parent chain: the most parents layer_reader_open(),
 * layer_export_start() and layer_folder_export() accept, the most a store
 * follows before it calls a chain broken, and the most `--parent` options
 * the command line takes. Checked before any work is done.
 */
#define LAYER_CHAIN_MAX 128

/**
 * The most descriptors a reader of a layer with n parents holds, the
 * handed-over roots included (see the top of this file).
 */
#define LAYER_READER_FDS(n) (2 * ((n) + 1) + 68)

/** The most descriptors one reader holds, at the longest chain: 326. */
#define LAYER_READER_FDS_MAX LAYER_READER_FDS(LAYER_CHAIN_MAX)

/**
 * A layer directory and how to read it.
 *
 * Given only a path, the reader opens it (symlinks in the path itself are
 * followed: whoever names the directory chose it) and reads everything
 * below through descriptors, never following a symlink. A store gives an
 * open descriptor too (has_fd), obtained beneath the store's root with no
 * symlink on the way; the reader then never opens the path at all, so a
 * store writer who swaps a directory for a symlink after the lookup
 * changes nothing. Zero-initialising leaves has_fd false.
 */
typedef struct layer_dir {
    const char *path; /**< the directory; with has_fd, for messages only */
    layer_kind kind;
    bool has_fd; /**< fd holds the directory */
    int fd;      /**< the directory, open; borrowed (the reader opens its
                      own descriptions of it with openat(fd, ".")) */
} layer_dir;

/** Reader option flags. */
enum layer_reader_flags {
    /**
     * Tolerate files that change while they are read, as GNU tar does: one
     * that shrinks is padded with zeros, one that grows is cut to its
     * listed size, one rewritten in place is passed on as read, and each
     * is a warning (layer_reader_opts.on_warning, the reader's span).
     * Without it (the default), a regular file whose size, mtime or ctime
     * moves between its listing and the end of its read, that is replaced,
     * or that yields fewer bytes than listed makes layer_reader_read()
     * (and layer_reader_seek()) fail with LAYER_ECHANGED: bytes that claim
     * to be the file are the file's.
     */
    LAYER_READER_ALLOW_CHANGING = 1u << 0
};

struct layer_span;

/** Options for layer_reader_open(). Zero-initialise, then set fields. */
typedef struct layer_reader_opts {
    unsigned flags; /**< layer_reader_flags */
    /** Optional tracing parent; the reader's span is its child, and each
     * warning is a child span "layer.file_changed" of the reader's. */
    struct layer_span *span;
    /** Optional: called with each warning's message (e.g. "usr/lib/x:
     * file shrank while read; padded with zeros"), once per file, on the
     * thread that reads; the message is borrowed for the call. */
    void (*on_warning)(void *arg, const char *message);
    void *warning_arg; /**< on_warning's argument */
} layer_reader_opts;

typedef struct layer_reader layer_reader;

/**
 * Open a reader over a layer.
 *
 * @param[out] out the reader; free it with layer_reader_free() (which
 *             closes it first)
 * @param layer the layer directory and its kind
 * @param parents the parent chain, nearest parent first; may be NULL when
 *        nparents is 0 (a base layer: every entry is an addition)
 * @param nparents number of parents, at most LAYER_CHAIN_MAX
 * @param opts options, or NULL for the defaults
 * @return 0, LAYER_ENOTFOUND if a directory does not exist,
 *         LAYER_EINVALID for bad arguments (more than LAYER_CHAIN_MAX
 *         parents, refused before anything is opened), LAYER_EUNSUPPORTED
 *         for an
 *         overlay redirect or metacopy marker on the layer's root or when
 *         /proc is not mounted, or another negative code. The message names the
 *         directory ("layer DIR: ...", "parent DIR: ..."); the caller adds
 *         the operation.
 */
int layer_reader_open(layer_reader **out, const layer_dir *layer,
                      const layer_dir *parents, size_t nparents,
                      const layer_reader_opts *opts);

/**
 * Advance to the next entry.
 *
 * @param[out] out the entry, borrowed until the next call or close
 * @param r the reader
 * @return 0, LAYER_ITEROVER at the end (and on every later call),
 *         LAYER_ECLOSED after close, or another negative code. After an
 *         error other than LAYER_ITEROVER the reader only accepts close.
 */
int layer_reader_next(const layer_entry **out, layer_reader *r);

/**
 * Link count and identity of the current entry.
 *
 * @param[out] out_nlink the number of links of the file
 * @param[out] out_id device and inode
 * @param r the reader
 * @return 0, LAYER_EINVALID if there is no current entry or it is a
 *         tombstone, LAYER_ECLOSED after close
 */
int layer_reader_link_info(uint64_t *out_nlink, layer_file_id *out_id,
                           layer_reader *r);

/**
 * Read the current entry's data.
 *
 * Yields exactly entry->size bytes in total over successive calls, then 0.
 * The file is checked against its listing when it is opened and after
 * every read from it: a change (size, mtime, ctime, identity, or fewer
 * bytes than listed) is LAYER_ECHANGED, after which the reader only
 * accepts close. With LAYER_READER_ALLOW_CHANGING a file that shrinks is
 * padded with zeros, one that grows is cut, and each such file is one
 * warning.
 *
 * @param[out] out_read bytes stored in buf; 0 at the end of the data
 * @param r the reader
 * @param buf destination
 * @param cap capacity of buf
 * @return 0, LAYER_ECHANGED (the file changed; not with
 *         LAYER_READER_ALLOW_CHANGING), LAYER_ECLOSED, or another negative
 *         code
 */
int layer_reader_read(size_t *out_read, layer_reader *r, void *buf, size_t cap);

/**
 * Skip ahead in the current entry's data: the next layer_reader_read()
 * yields the bytes from offset on (offset is counted from the start of
 * the data and may not go backwards past what was already read).
 *
 * @param r the reader
 * @param offset the new position, at most entry->size
 * @return 0, LAYER_EINVALID for an offset behind the position or past
 *         the end, or when the current entry has no data; LAYER_ECLOSED
 */
int layer_reader_seek(layer_reader *r, uint64_t offset);

/** Counters of a reader, for summaries and spans. */
typedef struct layer_reader_stats {
    uint64_t entries;    /**< entries yielded */
    uint64_t bytes_read; /**< data bytes yielded by read() */
    uint64_t warnings;   /**< files that changed while read */
} layer_reader_stats;

/**
 * Counters so far. Read them before layer_reader_close(): a closed reader
 * answers LAYER_ECLOSED (its span got the final counts at close).
 *
 * @param[out] out the counters
 * @param r the reader, open
 * @return 0, LAYER_EINVALID for NULL arguments, or LAYER_ECLOSED
 */
int layer_reader_stats_get(layer_reader_stats *out, const layer_reader *r);

/**
 * The message of the most recent warning (e.g. "usr/lib/x: file changed
 * as we read it"), or NULL if there was none. Borrowed until the next
 * call on the reader.
 */
const char *layer_reader_last_warning(const layer_reader *r);

/**
 * Close the reader and release everything it holds. The handle itself
 * stays allocated in a closed state, so later calls on it return
 * LAYER_ECLOSED instead of crashing; release it with layer_reader_free().
 * Closing twice is allowed.
 *
 * @param r the reader, or NULL
 */
void layer_reader_close(layer_reader *r);

/**
 * Close (if needed) and free the handle.
 * @param r the reader, or NULL
 */
void layer_reader_free(layer_reader *r);

#endif
