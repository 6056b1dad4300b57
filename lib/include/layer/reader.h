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
 * The reader is not thread-safe; one thread at a time may use it.
 */

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

/** A layer directory and how to read it. */
typedef struct layer_dir {
    const char *path;
    layer_kind kind;
} layer_dir;

/** Reader option flags. */
enum layer_reader_flags {
    /** A file whose size or identity changes while it is read makes
     * layer_reader_read() fail with LAYER_ECHANGED instead of being
     * padded with zeros or cut to the promised size. */
    LAYER_READER_STRICT = 1u << 0
};

struct layer_span;

/** Options for layer_reader_open(). Zero-initialise, then set fields. */
typedef struct layer_reader_opts {
    unsigned flags; /**< layer_reader_flags */
    /** Optional tracing parent; the reader's span is its child. */
    struct layer_span *span;
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
 * @param nparents number of parents
 * @param opts options, or NULL for the defaults
 * @return 0, LAYER_ENOTFOUND if a directory does not exist,
 *         LAYER_EINVALID for bad arguments, LAYER_EUNSUPPORTED for an
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
 * A file that shrinks while it is read is padded with zeros, one that grows
 * is cut, and both are counted as warnings (unless LAYER_READER_STRICT).
 *
 * @param[out] out_read bytes stored in buf; 0 at the end of the data
 * @param r the reader
 * @param buf destination
 * @param cap capacity of buf
 * @return 0, LAYER_ECHANGED (strict mode), LAYER_ECLOSED, or another
 *         negative code
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
