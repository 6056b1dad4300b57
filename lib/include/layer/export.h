#ifndef LAYER_EXPORT_H
#define LAYER_EXPORT_H

/**
 * @file layer/export.h
 * @brief A layer's changeset as an OCI layer tar (plain, gzip or zstd),
 * with its digests, as a bounded pull producer.
 *
 * The export owns a reader. A worker thread runs reader -> tar writer ->
 * compressor -> SHA-256 (diff ID over the tar, digest over the output)
 * and fills a small ring of buffers; layer_export_read() drains it on the
 * caller's thread. Memory per export is the ring plus the reader's.
 * The output is deterministic: the same tree and options give the same
 * bytes on every run.
 *
 * Two tars can be exported (layer_export_tar). The canonical one is
 * layerd's own profile, built by the reader and the tar writer from the
 * layer and its parents. The original one is the tar the layer was made
 * from, byte for byte, rebuilt from the tar-split data its store kept
 * (layer/tarsplit.h) and the files of the layer's directory, so that its
 * SHA-256 is the diff ID the store recorded: every file's size and CRC-64
 * is checked as it streams, and the SHA-256 of the whole tar is checked
 * against the recorded diff ID before the last bytes are given out. A
 * mismatch fails the export (LAYER_ECHANGED, naming the first file that
 * differs) and no digest is claimed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layer/reader.h"
#include "layer/store.h"
#include "layer/trace.h"

/** Output compression. */
typedef enum layer_compression {
    LAYER_COMPRESSION_NONE = 0,
    LAYER_COMPRESSION_GZIP = 1,
    LAYER_COMPRESSION_ZSTD = 2
} layer_compression;

/** Export option flags. */
enum layer_export_flags {
    /** Export every xattr as SCHILY.xattr.*, not only
     * security.capability. */
    LAYER_EXPORT_ALL_XATTRS = 1u << 0,
    /** Clamp mtimes to `epoch` (SOURCE_DATE_EPOCH). */
    LAYER_EXPORT_CLAMP_MTIME = 1u << 1,
    /** Compute no SHA-256 over the bytes: the summary's diff_id and digest
     * stay empty, its fingerprint is computed as always. For a caller
     * that holds the digests of an earlier export of the same layer with
     * the same options and the same fingerprint (see
     * layer_export_summary), and checks the fingerprint at the end.
     * An original tar's SHA-256 is still computed (it is checked against
     * the recorded diff ID); only the compressed output's is skipped. */
    LAYER_EXPORT_NO_DIGESTS = 1u << 2
};

/** Which tar an export gives. */
typedef enum layer_export_tar {
    /** The original where the store has it (layer_export_choose_tar()),
     * else the canonical one. */
    LAYER_EXPORT_TAR_AUTO = 0,
    /** layerd's own tar profile (DESIGN.md section 5). */
    LAYER_EXPORT_TAR_CANONICAL = 1,
    /** The layer's original tar, rebuilt from its tar-split data. */
    LAYER_EXPORT_TAR_ORIGINAL = 2
} layer_export_tar;

/** Where an original tar comes from. Strings are borrowed. */
typedef struct layer_export_original {
    /** A directory (a store's root): opened by this path, unless
     * has_root_fd, when root_fd is it and the path names it in messages. */
    const char *root;
    bool has_root_fd;
    int root_fd; /**< borrowed */
    /** The gzip-compressed tar-split data: a path relative to root,
     * opened beneath it (layer/beneath.h); also the name errors give. */
    const char *tarsplit;
    /** The diff ID recorded for the tar: "sha256:<64 lowercase hex>". */
    const char *diff_id;
} layer_export_original;

/** Export options. Zero-initialise, then set what differs. */
typedef struct layer_export_opts {
    layer_compression compression;
    int level;      /**< 0: the format's default */
    unsigned flags; /**< layer_export_flags */
    int64_t epoch;  /**< with LAYER_EXPORT_CLAMP_MTIME */
    /** passed to layer_reader_open(): LAYER_READER_ALLOW_CHANGING; without
     * it a file that changes while it is read fails the export with
     * LAYER_ECHANGED, before any digest is claimed */
    unsigned reader_flags;
    layer_span *span; /**< tracing parent, or NULL */
    /** Export the original tar from these (the layer's directory gives
     * the files' bytes; parents, reader_flags and the flags that shape
     * the canonical tar do not apply); NULL: the canonical tar. */
    const layer_export_original *original;
    /** passed to layer_reader_open(): called, on the export's worker
     * thread, with each warning (tolerant mode) */
    void (*on_warning)(void *arg, const char *message);
    void *warning_arg;
} layer_export_opts;

/** What an export produced; complete after the END of the stream. */
typedef struct layer_export_summary {
    char media_type[64]; /**< application/vnd.oci.image.layer.v1.tar... */
    char diff_id[72];    /**< "sha256:<hex>" of the tar */
    char digest[72];     /**< "sha256:<hex>" of the bytes produced */
    uint64_t size;       /**< bytes produced */
    uint64_t tar_size;   /**< bytes of the tar */
    uint64_t entries;
    uint64_t warnings;
    /** The last warning, borrowed from the export; NULL until the end of
     * the stream, or when there was none. */
    const char *last_warning;
    /** LAYER_EXPORT_TAR_CANONICAL or LAYER_EXPORT_TAR_ORIGINAL. */
    layer_export_tar tar;
    /** "sha256:<hex>" over the metadata of every entry exported, in order:
     * path, change, type, mode, owner, size, mtime, ctime, device and
     * inode, link count, device numbers, link target, opaque flag. The
     * kernel moves a file's ctime on every change to its data, xattrs or
     * metadata, so two exports of a tree with equal fingerprints (and
     * the same options) produced the same bytes, unless a file changed
     * while it was read (then warnings is not 0). An original tar's
     * fingerprint is its diff ID, checked at the end: an export that
     * ends has given exactly the recorded bytes. */
    char fingerprint[72];
} layer_export_summary;

typedef struct layer_export layer_export;

/**
 * Decide which tar an export of a layer gives.
 *
 * An original tar is possible when the store kept the layer's tar-split
 * data (layer_info.tarsplit) and recorded its diff ID, and the layer is
 * not mutable (its directory may change under a running container).
 * LAYER_EXPORT_ALL_XATTRS and LAYER_EXPORT_CLAMP_MTIME shape the
 * canonical tar: with either, auto chooses the canonical tar and
 * original is refused.
 *
 * @param[out] out_tar LAYER_EXPORT_TAR_CANONICAL or
 *             LAYER_EXPORT_TAR_ORIGINAL
 * @param[out] out_original for an original tar, where it comes from
 *             (borrowing from info), to pass as layer_export_opts.original
 * @param info the layer
 * @param want what was asked for
 * @param flags the export's flags (layer_export_flags)
 * @return 0; LAYER_EUNSUPPORTED when an original tar is asked for and the
 *         layer has none (the message says why); LAYER_EINVALID for an
 *         original tar with flags of the canonical one, or an unknown want
 */
int layer_export_choose_tar(layer_export_tar *out_tar,
                            layer_export_original *out_original,
                            const layer_info *info, layer_export_tar want,
                            unsigned flags);

/** The name of a tar kind: "auto", "canonical" or "original". Static. */
const char *layer_export_tar_name(layer_export_tar tar);

/**
 * Parse "auto", "canonical" or "original".
 * @return 0 or LAYER_EINVALID (message recorded)
 */
int layer_export_tar_parse(layer_export_tar *out, const char *name);

/**
 * Start an export of a layer.
 *
 * @param[out] out the export; free with layer_export_free()
 * @param layer the layer
 * @param parents its parents, nearest first
 * @param nparents number of parents, at most LAYER_CHAIN_MAX
 * @param opts options (NULL: plain tar, defaults)
 * @return 0 or a negative code (LAYER_ENOTFOUND, LAYER_EINVALID for a bad
 *         level or more than LAYER_CHAIN_MAX parents, checked before any
 *         work, ...; for an original tar: LAYER_EINVALID for a diff ID
 *         that is not a sha256 digest or flags of the canonical tar,
 *         LAYER_ENOTFOUND when the tar-split data or the layer directory
 *         is missing, LAYER_EBROKEN when the tar-split data is not a
 *         regular file beneath its root)
 */
int layer_export_start(layer_export **out, const layer_dir *layer,
                       const layer_dir *parents, size_t nparents,
                       const layer_export_opts *opts);

/**
 * An estimate of the memory one export holds while it runs, in bytes:
 * its ring buffers (more with gzip, whose chunks finish out of order),
 * its compressors (layer_compress_memory(): one zstd context with its
 * workers, or a gzip chunk compressor per worker) and a fixed allowance
 * for the reader, the tar writer and the digests. Measured peaks stay
 * within it (see lib/compress.c); a server can cap the sum over running
 * exports with it.
 *
 * @param compression the output format
 * @param level 0 for the format's default, or a level of that format
 * @return bytes, or 0 when the level is not valid for the format
 */
size_t layer_export_memory(layer_compression compression, int level);

/** layer_export_read() flags. */
enum layer_export_read_flags {
    /** Return LAYER_EAGAIN instead of waiting for the worker. */
    LAYER_EXPORT_NONBLOCK = 1u << 0
};

/**
 * Take up to cap bytes of output.
 *
 * @param[out] out_n bytes stored
 * @param x the export
 * @param buf destination
 * @param cap capacity
 * @param flags layer_export_read_flags
 * @return 0 with *out_n > 0; LAYER_ITEROVER at the end of the stream
 *         (the summary is then complete); LAYER_EAGAIN (NONBLOCK only):
 *         nothing yet, the notify callback will be called once there is;
 *         another negative code when the export failed (the message is in
 *         layer_export_error()).
 */
int layer_export_read(size_t *out_n, layer_export *x, void *buf, size_t cap,
                      unsigned flags);

/*
 * The notify protocol, exactly: a LAYER_EXPORT_NONBLOCK read that finds
 * nothing arms the notification, atomically with that check, and returns
 * LAYER_EAGAIN. The next event (data, the end or an error) calls the
 * callback exactly once, from a worker thread, with no export lock held;
 * this can happen before the read that returned LAYER_EAGAIN has returned
 * to its caller, so the callback must cope with coming "early" (e.g.
 * resume a connection that is only about to be suspended). If the event
 * happens while no callback is installed, layer_export_set_notify() calls
 * the new callback at once, on its caller's thread, so no wakeup is lost.
 * Reads that return data or an end arm nothing; layer_export_free() calls
 * nothing.
 */

/**
 * Install the callback the worker calls (from its thread) after a read
 * returned LAYER_EAGAIN, once data, the end or an error is ready.
 */
void layer_export_set_notify(layer_export *x, void (*fn)(void *arg), void *arg);

/**
 * The summary. Valid fields: all after LAYER_ITEROVER; counters so far
 * before.
 */
void layer_export_summary_get(layer_export_summary *out, const layer_export *x);

/** The error message of a failed export (borrowed, valid until
 * layer_export_free()), or NULL. Any thread may ask. */
const char *layer_export_error(const layer_export *x);

/**
 * Stop the worker (if running) and release everything. Safe at any point,
 * including mid-stream after a client vanished. NULL is accepted.
 */
void layer_export_free(layer_export *x);

/** The OCI media type of a compression. Static string. */
const char *layer_compression_media_type(layer_compression c);

/** The name of a compression: "none", "gzip" or "zstd". Static string. */
const char *layer_compression_name(layer_compression c);

/**
 * Parse "none", "gzip" or "zstd".
 * @return 0 or LAYER_EINVALID
 */
int layer_compression_parse(layer_compression *out, const char *name);

#endif
