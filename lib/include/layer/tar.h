#ifndef LAYER_TAR_H
#define LAYER_TAR_H

/**
 * @file layer/tar.h
 * @brief Tar headers for changeset entries, byte-compatible with Go's
 * archive/tar as containerd drives it.
 *
 * The writer is a set of pure functions over caller buffers: it produces
 * the header bytes of one entry (an optional PAX 'x' block with its
 * records, then the ustar block), and says how much data and padding
 * follow. It never allocates, so a streaming exporter can write headers
 * and copy file data straight into its output buffers.
 *
 * Profile (containerd's ChangeWriter with hdr.Format = FormatPAX):
 * ustar blocks with magic "ustar\0" and version "00"; numeric uid/gid and
 * empty uname/gname; mode = permission plus setuid/setgid/sticky bits;
 * mtime truncated to whole seconds (optionally clamped to an epoch); no
 * atime/ctime; directory names end in '/'. Names longer than 100 bytes are
 * split into the ustar prefix/name fields when possible; a PAX header is
 * written only when a field cannot be encoded in ustar (non-ASCII or
 * unsplittable name, linkname longer than 100 bytes or non-ASCII, uid/gid
 * >= 8^7, size >= 8 GiB, mtime before 1970 or after 8^11-1) or for
 * exported xattrs ("SCHILY.xattr.<name>"), with records sorted by key.
 * Tombstones become containerd whiteouts: empty regular files named
 * "<dir>/.wh.<base>" with mode 0, uid/gid 0 and mtime 0.
 */

#include <stddef.h>
#include <stdint.h>

#include "layer/entry.h"

/** Size of a tar block. */
#define LAYER_TAR_BLOCK_SIZE 512
/** The end-of-archive marker: two zero blocks (Go's Writer.Close). */
#define LAYER_TAR_TRAILER_SIZE 1024
/** Largest PAX record data Go's writer accepts (maxSpecialFileSize). */
#define LAYER_TAR_PAX_MAX (1u << 20)
/** Upper bound of layer_tar_header_size(): PAX block, its data, ustar. */
#define LAYER_TAR_HEADER_MAX                                                   \
    (LAYER_TAR_BLOCK_SIZE + LAYER_TAR_PAX_MAX + LAYER_TAR_BLOCK_SIZE)

/** Tar writer option flags. */
enum layer_tar_flags {
    /** Export every xattr of an entry, not only security.capability. */
    LAYER_TAR_ALL_XATTRS = 1u << 0,
    /** Clamp mtimes later than layer_tar_opts.epoch to it. */
    LAYER_TAR_CLAMP_MTIME = 1u << 1
};

/** Tar writer options. Zero-initialise, then set what differs. */
typedef struct layer_tar_opts {
    unsigned flags; /**< layer_tar_flags */
    int64_t epoch;  /**< upper bound for mtimes, with LAYER_TAR_CLAMP_MTIME */
} layer_tar_opts;

/**
 * The number of header bytes layer_tar_header() writes for an entry.
 *
 * @param[out] out_size the size, a multiple of LAYER_TAR_BLOCK_SIZE and at
 *             most LAYER_TAR_HEADER_MAX
 * @param entry the entry
 * @param opts options, or NULL for the defaults
 * @return 0; LAYER_EINVALID for an entry that cannot be a tar member (empty
 *         path, unknown type, device numbers that do not fit, an exported
 *         xattr name containing '='); LAYER_ETOOBIG when the PAX records
 *         exceed LAYER_TAR_PAX_MAX
 */
int layer_tar_header_size(size_t *out_size, const layer_entry *entry,
                          const layer_tar_opts *opts);

/**
 * Write the header blocks of an entry: a PAX 'x' block plus its padded
 * records when needed, then the ustar block.
 *
 * @param[out] out_n bytes written (as layer_tar_header_size() reports)
 * @param buf destination
 * @param cap capacity of buf
 * @param entry the entry; a tombstone (change LAYER_CHANGE_DELETE) gives
 *        its whiteout header
 * @param opts options, or NULL for the defaults
 * @return 0; LAYER_ETOOBIG when cap is smaller than the header (nothing
 *         useful is written then), or the errors of layer_tar_header_size()
 */
int layer_tar_header(size_t *out_n, void *buf, size_t cap,
                     const layer_entry *entry, const layer_tar_opts *opts);

/**
 * The number of data bytes that follow an entry's header: entry->size for
 * a regular file that is not a tombstone, otherwise 0.
 */
uint64_t layer_tar_data_size(const layer_entry *entry);

/**
 * The number of zero bytes that pad size data bytes to a whole block.
 * @return 0..511
 */
size_t layer_tar_padding(uint64_t size);

/**
 * Write the end-of-archive marker (LAYER_TAR_TRAILER_SIZE zero bytes).
 *
 * @param[out] out_n bytes written
 * @param buf destination
 * @param cap capacity of buf
 * @return 0 or LAYER_ETOOBIG when cap is too small
 */
int layer_tar_trailer(size_t *out_n, void *buf, size_t cap);

#endif
