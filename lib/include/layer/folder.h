#ifndef LAYER_FOLDER_H
#define LAYER_FOLDER_H

/**
 * @file layer/folder.h
 * @brief Transport folders: a layer's changeset as a directory tree (the
 * seed's ExportLayer(path, exportFolderPath, parentLayerPaths)).
 *
 * Layout of a folder DIR:
 *   - DIR/Files/<path> for every added or modified entry, with its
 *     metadata: mode (with setuid/setgid/sticky), uid/gid, mtime and atime
 *     to the nanosecond, every xattr the reader yields; devices and FIFOs
 *     as nodes, symlinks as symlinks, hard links as real links to the
 *     first name of the group. Directory times are applied after their
 *     children are written, so they survive.
 *   - DIR/tombstones.txt: the first line is exactly "Version 1.0"; each
 *     further line is one deleted path, relative and '/'-separated, in
 *     reader order. Every line ends with '\n'. A name may hold any byte
 *     but NUL, so three bytes are escaped: '\\' is written as the two
 *     characters "\\\\", a newline as "\\n" and a carriage return as
 *     "\\r" (so that no line carries a raw CR, which readers strip as a
 *     Windows line end); a backslash followed by anything else is invalid.
 *     The folder reader (LAYER_KIND_FOLDER) undoes this.
 *
 * The folder is built as "DEST.tmp-<16 hex>" next to DEST and renamed
 * into place only when complete; any failure removes the temporary tree
 * (through directory fds, never following symlinks), so a failed export
 * leaves nothing behind. The data is not fsync'ed: after a crash a folder
 * may be incomplete, like any file written without fsync.
 */

#include <stddef.h>
#include <stdint.h>

#include "layer/reader.h"

/** The first line of tombstones.txt. */
#define LAYER_FOLDER_TOMBSTONES_VERSION "Version 1.0"

/** What layer_folder_export() wrote. */
typedef struct layer_folder_summary {
    uint64_t entries;    /**< entries read from the layer */
    uint64_t files;      /**< entries written under Files/ */
    uint64_t tombstones; /**< lines after the version line */
    uint64_t bytes;      /**< file data bytes written */
    uint64_t warnings;   /**< files that changed while they were read */
} layer_folder_summary;

/**
 * Export a layer's changeset as a transport folder.
 *
 * @param layer the layer
 * @param parents its parents, nearest first (NULL when nparents is 0)
 * @param nparents number of parents, at most LAYER_CHAIN_MAX
 * @param dest the folder to create; it must not exist, its parent must
 * @param opts reader options, or NULL (then a file that changes while it
 *        is read fails the export with LAYER_ECHANGED and nothing is left)
 * @param[out] out what was written (may be NULL); set only on success
 * @return 0; LAYER_EEXISTS if dest exists; LAYER_ENOTFOUND if dest's
 *         parent or a layer directory does not exist; LAYER_EINVALID for
 *         a bad dest or more than LAYER_CHAIN_MAX parents (checked before
 *         anything is made); the reader's errors; LAYER_ERROR for I/O failures
 */
int layer_folder_export(const layer_dir *layer, const layer_dir *parents,
                        size_t nparents, const char *dest,
                        const layer_reader_opts *opts,
                        layer_folder_summary *out);

#endif
