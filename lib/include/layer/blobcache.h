#ifndef LAYER_BLOBCACHE_H
#define LAYER_BLOBCACHE_H

/**
 * @file layer/blobcache.h
 * @brief A content-addressed cache of layer blobs on disk: blobs stored
 * once under their digest, records that map an export's key to its
 * blob, single flight for concurrent misses, LRU eviction under a byte
 * cap, and a layout that survives a crash at any point.
 *
 * A key names one export of one layer: the layer's identity and a
 * fingerprint of its content (both chosen by the caller), the tar kind,
 * the compression and its level. layer_blobcache_get() answers a key in
 * one of four roles:
 *   - HIT: a reader over the committed blob, its size and digests known
 *     at once (so Content-Length, Range and digest headers can be sent
 *     before the body);
 *   - FILL: the key is missing and this caller is the only one to make
 *     it: a writer it feeds the export's bytes into, then commits with
 *     the final digests (or aborts);
 *   - WAIT: another caller is filling the key: a reader served from the
 *     growing file as the filler writes it, which learns the digests at
 *     its end; never a second export;
 *   - BYPASS: nothing is cached (no cache, or the caller said the layer
 *     may change: mutable layers are never cached).
 * layer_blobcache_open_digest() finds a committed blob by its digest
 * (the registry's /v2/<name>/blobs/<digest>), and a reader can start at
 * an offset and stop after a length (HTTP Range).
 *
 * Readers are bounded pull producers with the same notify protocol as
 * layer/export.h. A blob being read is never evicted by this process
 * (another process sharing the directory may remove its file, but a
 * reader reads through its own descriptor and is not cut short); a blob
 * larger than the cap is served to the readers of its fill and then
 * dropped. Several processes may use one cache directory at once (a
 * server and `layerd cache ...`): see the top of lib/blobcache.c for the
 * on-disk format, the crash-safety argument and the locking between
 * processes.
 *
 * Every function may be called from any thread; a reader or a writer is
 * used by one thread at a time (set_notify excepted, as for exports).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layer/digest.h"
#include "layer/export.h"

/** Byte cap when layer_blobcache_opts.max_bytes is 0: 10 GiB. */
#define LAYER_BLOBCACHE_DEFAULT_MAX (10ull << 30)

/** Longest layer identity in a key, in bytes. */
#define LAYER_BLOBCACHE_LAYER_MAX 1024

/** Longest fingerprint in a key, in bytes. */
#define LAYER_BLOBCACHE_FINGERPRINT_MAX 256

/** Room for a media type and its NUL. */
#define LAYER_BLOBCACHE_MEDIA_TYPE_SIZE 128

/** Most records kept; commits past it serve their readers, keep nothing. */
#define LAYER_BLOBCACHE_RECORDS_MAX 1000000

typedef struct layer_blobcache layer_blobcache;
typedef struct layer_blobcache_reader layer_blobcache_reader;
typedef struct layer_blobcache_writer layer_blobcache_writer;

/** Which tar an export produced (see DESIGN section 10). */
typedef enum layer_blobcache_tar {
    LAYER_BLOBCACHE_TAR_CANONICAL = 0, /**< layerd's canonical profile */
    LAYER_BLOBCACHE_TAR_ORIGINAL = 1   /**< the original bytes (tar-split) */
} layer_blobcache_tar;

/**
 * What a blob is the export of. The strings are any bytes but NUL, of
 * 1 to LAYER_BLOBCACHE_LAYER_MAX / LAYER_BLOBCACHE_FINGERPRINT_MAX bytes;
 * they are stored escaped, so spaces and newlines are fine.
 */
typedef struct layer_blobcache_key {
    /** The layer's identity, e.g. the store spec and the layer id. */
    const char *layer;
    /** What changes whenever the layer's bytes may have changed, known
     * before the export runs (e.g. the store's metadata of the layer and
     * its parents). A new fingerprint is a new key: the old blob stays
     * valid for its digest until it is evicted. */
    const char *fingerprint;
    layer_blobcache_tar tar;
    layer_compression compression;
    int level; /**< the compression level the export used */
} layer_blobcache_key;

/** A blob's digests, size and media type. */
typedef struct layer_blobcache_info {
    char diff_id[LAYER_DIGEST_STR_SIZE]; /**< "sha256:<hex>" of the tar */
    char digest[LAYER_DIGEST_STR_SIZE];  /**< "sha256:<hex>" of the blob */
    uint64_t size;                       /**< bytes of the blob */
    char media_type[LAYER_BLOBCACHE_MEDIA_TYPE_SIZE];
} layer_blobcache_info;

/** Cache options. Zero-initialise, then set what differs. */
typedef struct layer_blobcache_opts {
    /** The byte cap of the blobs kept (0: LAYER_BLOBCACHE_DEFAULT_MAX). */
    uint64_t max_bytes;
} layer_blobcache_opts;

/**
 * Open (and create) a cache directory.
 *
 * The directory is created with mode 0700 if it is missing (its parent
 * must exist); it must be owned by the effective user and not writable
 * by group or others. The path itself may be a symlink (systemd's
 * DynamicUser= makes one); nothing below it is ever followed. Opening
 * recovers from any crash: temporary files of dead fills are removed,
 * journal lines that are torn or fail their checksum are ignored,
 * records whose blob is missing, not a regular file or of the wrong size
 * are dropped, blobs no record names are removed, the journal is
 * rewritten, and blobs past the cap are evicted.
 *
 * @param[out] out the cache; release with layer_blobcache_free()
 * @param dir the directory
 * @param opts options, or NULL for the defaults
 * @return 0; LAYER_EBROKEN when the directory, its layout or its journal
 *         is not what this version writes (a symlink or a non-directory
 *         where a directory belongs, an unknown journal format, wrong
 *         owner or mode); LAYER_ENOTFOUND when the parent is missing;
 *         LAYER_ERROR (with the errno) or LAYER_ENOMEM otherwise
 */
int layer_blobcache_open(layer_blobcache **out, const char *dir,
                         const layer_blobcache_opts *opts);

/**
 * Let go of the cache. Readers and writers still open keep it alive;
 * the last one to be released frees it. NULL is accepted.
 */
void layer_blobcache_free(layer_blobcache *c);

/** How layer_blobcache_get() answered. */
typedef enum layer_blobcache_role {
    LAYER_BLOBCACHE_BYPASS = 0, /**< not cached: export without the cache */
    LAYER_BLOBCACHE_HIT = 1,    /**< reader over a committed blob */
    LAYER_BLOBCACHE_FILL = 2,   /**< writer: this caller makes the blob */
    LAYER_BLOBCACHE_WAIT = 3    /**< reader over another caller's fill */
} layer_blobcache_role;

/** "bypass", "hit", "fill" or "wait" (for spans). Static string. */
const char *layer_blobcache_role_name(layer_blobcache_role role);

/** layer_blobcache_get() flags. */
enum layer_blobcache_get_flags {
    /** The layer may change (a mutable layer): answer BYPASS, counted in
     * the stats, and touch nothing. */
    LAYER_BLOBCACHE_GET_BYPASS = 1u << 0,
    /** Never become the filler: a missing key is LAYER_ENOTFOUND (for
     * HEAD, or listing what is there). A fill in flight is still
     * joined. */
    LAYER_BLOBCACHE_GET_NOFILL = 1u << 1
};

/** The answer of layer_blobcache_get(). */
typedef struct layer_blobcache_lookup {
    layer_blobcache_role role;
    /** HIT and WAIT: the reader; free with layer_blobcache_reader_free() */
    layer_blobcache_reader *reader;
    /** FILL: the writer; ends with layer_blobcache_commit() or
     * layer_blobcache_abort() */
    layer_blobcache_writer *writer;
} layer_blobcache_lookup;

/**
 * Look a key up, join its fill, or become its filler.
 *
 * Single flight: of all the callers that miss the same key at once in
 * this process, exactly one gets FILL; the others get WAIT readers of
 * that fill. If the fill is aborted they read an error, and the next
 * get() of the key may fill it anew.
 *
 * @param[out] out the role and the reader or writer
 * @param c the cache, or NULL (no cache: always BYPASS)
 * @param key the key (ignored for BYPASS)
 * @param flags layer_blobcache_get_flags
 * @return 0; LAYER_EINVALID for a malformed key; LAYER_ENOTFOUND for a
 *         miss under LAYER_BLOBCACHE_GET_NOFILL; LAYER_ERROR (with the
 *         errno: cannot create the fill's file) or LAYER_ENOMEM
 */
int layer_blobcache_get(layer_blobcache_lookup *out, layer_blobcache *c,
                        const layer_blobcache_key *key, unsigned flags);

/**
 * A reader over the committed blob with this digest, whichever key made
 * it.
 *
 * @param[out] out the reader; free with layer_blobcache_reader_free()
 * @param c the cache
 * @param digest "sha256:<64 lowercase hex>"
 * @return 0; LAYER_EINVALID for a malformed digest; LAYER_ENOTFOUND when
 *         no such blob is committed (a fill in flight does not count:
 *         its digest is not known yet); LAYER_ERROR or LAYER_ENOMEM
 */
int layer_blobcache_open_digest(layer_blobcache_reader **out,
                                layer_blobcache *c, const char *digest);

/**
 * Read only bytes [offset, offset + length) of the blob (HTTP Range).
 * Before the first read only.
 *
 * For a committed blob the range is checked at once; for a fill's
 * reader it is checked at the fill's end (a read then fails with
 * LAYER_EINVALID if offset lies past the end).
 *
 * @param r the reader
 * @param offset the first byte
 * @param length bytes at most (UINT64_MAX: to the end); past the end of
 *        the blob the range is cut at the end
 * @return 0; LAYER_EINVALID when offset is past the end of a committed
 *         blob (an offset equal to the size gives an empty range), or
 *         after the first read
 */
int layer_blobcache_reader_range(layer_blobcache_reader *r, uint64_t offset,
                                 uint64_t length);

/** layer_blobcache_read() flags. */
enum layer_blobcache_read_flags {
    /** Return LAYER_EAGAIN instead of waiting for the filler. */
    LAYER_BLOBCACHE_NONBLOCK = 1u << 0
};

/**
 * Take up to cap bytes.
 *
 * A HIT or open_digest reader never waits. A WAIT reader reads what the
 * filler has written so far and then waits for more (or, with
 * LAYER_BLOBCACHE_NONBLOCK, returns LAYER_EAGAIN and arms the notify
 * callback exactly as layer_export_read() does: the next write, commit
 * or abort calls it once, from the filler's thread, with no cache lock
 * held; an event that comes while no callback is installed is kept for
 * layer_blobcache_reader_set_notify()).
 *
 * @param[out] out_n bytes stored, at least 1 when 0 is returned
 * @param r the reader
 * @param buf destination
 * @param cap its capacity, at least 1
 * @param flags layer_blobcache_read_flags
 * @return 0; LAYER_ITEROVER at the end of the blob or of the range (for
 *         a WAIT reader, layer_blobcache_reader_info() is complete once
 *         the whole blob was read); LAYER_EAGAIN (NONBLOCK only);
 *         LAYER_ECANCELED when the fill was aborted (the message says
 *         why; the bytes read so far are not a blob); LAYER_EBROKEN when
 *         the file changed under the cache; LAYER_EINVALID for a range
 *         past the end; LAYER_ERROR for an I/O error
 */
int layer_blobcache_read(size_t *out_n, layer_blobcache_reader *r, void *buf,
                         size_t cap, unsigned flags);

/**
 * Install the callback for LAYER_BLOBCACHE_NONBLOCK reads (see
 * layer_blobcache_read()). The callback must not free the reader, nor
 * any other reader of the same fill (it runs under that fill's notify
 * lock); it may read from it. NULL uninstalls. Harmless on HIT readers
 * (they never return LAYER_EAGAIN).
 */
void layer_blobcache_reader_set_notify(layer_blobcache_reader *r,
                                       void (*fn)(void *arg), void *arg);

/**
 * The blob's digests, size and media type.
 *
 * @param[out] out the info
 * @param r the reader
 * @return 0 (always for HIT and open_digest readers; for a WAIT reader
 *         once its fill was committed); LAYER_EAGAIN while the fill runs;
 *         LAYER_ECANCELED when the fill was aborted
 */
int layer_blobcache_reader_info(layer_blobcache_info *out,
                                layer_blobcache_reader *r);

/** Release a reader (NULL is accepted); no callback is called after. */
void layer_blobcache_reader_free(layer_blobcache_reader *r);

/**
 * Append bytes to a fill. They are visible to the fill's readers when
 * this returns.
 *
 * @param w the writer
 * @param buf the bytes
 * @param len their number (0 is a no-op)
 * @return 0; LAYER_ERROR with the errno when the file cannot be written
 *         (e.g. ENOSPC; the caller then aborts); LAYER_ECLOSED after an
 *         earlier failure
 */
int layer_blobcache_write(layer_blobcache_writer *w, const void *buf,
                          size_t len);

/**
 * The caller computes the digest of exactly the bytes it writes (an
 * export does, for its trailers) and gives it to the commit: the cache
 * does not hash them a second time. Call before the first write; the
 * commit then needs info->digest.
 *
 * @param w the writer
 * @return 0; LAYER_EINVALID after the first byte was written
 */
int layer_blobcache_writer_given(layer_blobcache_writer *w);

/**
 * How many readers follow the fill now (a filler whose own client went
 * away may still finish the fill for them).
 */
unsigned layer_blobcache_writer_readers(layer_blobcache_writer *w);

/**
 * Finish a fill: check the bytes, make the blob durable (fsync, rename
 * under its digest, fsync the directory), append its record to the
 * journal (fsynced), and wake the readers, which then learn the info.
 * The writer is released whatever the outcome.
 *
 * A blob larger than the cap, or past LAYER_BLOBCACHE_RECORDS_MAX
 * records, completes for its readers but is not kept (stats.too_big).
 * If a blob with that digest is already committed, the record points at
 * it and the new file is dropped.
 *
 * @param w the writer
 * @param info what the bytes are: digest ("" for the one the cache
 *        computed while they were written; otherwise they must match;
 *        required, and taken as it is, after
 *        layer_blobcache_writer_given()),
 *        size (must equal the bytes written), diff_id ("" is allowed
 *        only for LAYER_COMPRESSION_NONE: the digest), media_type (""
 *        for layer_compression_media_type() of the key's compression)
 * @return 0; LAYER_EINVALID when info does not match the bytes; LAYER_ERROR
 *         when the blob cannot be made durable. On failure the fill is
 *         aborted: its readers read LAYER_ECANCELED.
 */
int layer_blobcache_commit(layer_blobcache_writer *w,
                           const layer_blobcache_info *info);

/**
 * Abandon a fill: its file is removed, its readers read LAYER_ECANCELED
 * with `why` in the message, and the key is missing again, so the next
 * get() fills it. The writer is released; the calling thread's last
 * error is kept. NULL is accepted.
 *
 * @param w the writer
 * @param why one line for the readers' error, e.g. the export's error
 */
void layer_blobcache_abort(layer_blobcache_writer *w, const char *why);

/** Counters since open, and the current contents. */
typedef struct layer_blobcache_stats {
    uint64_t hits;          /**< get() answered HIT */
    uint64_t misses;        /**< get() found neither blob nor fill */
    uint64_t fills;         /**< get() answered FILL */
    uint64_t waits;         /**< get() answered WAIT */
    uint64_t bypasses;      /**< get() answered BYPASS */
    uint64_t commits;       /**< fills committed */
    uint64_t aborts;        /**< fills aborted (by the caller or a failure) */
    uint64_t too_big;       /**< fills completed but not kept */
    uint64_t digest_hits;   /**< open_digest() found the blob */
    uint64_t digest_misses; /**< open_digest() did not */
    uint64_t evictions;     /**< blobs evicted (the cap, evict()) */
    uint64_t bytes_read;    /**< bytes readers took from the cache */
    uint64_t bytes_written; /**< bytes fills wrote */
    uint64_t bytes;         /**< bytes on disk now: blobs and fills */
    uint64_t blobs;         /**< blobs kept now */
    uint64_t records;       /**< records kept now */
    uint64_t max_bytes;     /**< the cap */
    /* What recovery found since open (at open, when another process's
     * journal was replayed, when a blob's file turned out bad): */
    uint64_t torn_lines;      /**< journal lines ignored */
    uint64_t dropped_records; /**< records whose blob was bad or missing */
    uint64_t removed_temps;   /**< files of dead fills removed */
    uint64_t removed_orphans; /**< files in blobs/ no record named */
} layer_blobcache_stats;

/** The counters. */
void layer_blobcache_stats_get(layer_blobcache_stats *out, layer_blobcache *c);

/**
 * Evict the least recently used blobs that no reader holds until the
 * cache holds at most max_bytes (`layerd cache prune`).
 *
 * @param[out] out_evicted blobs evicted; may be NULL
 * @param c the cache
 * @param max_bytes the target
 * @return 0; LAYER_EBUSY when blobs being read keep it above the target
 *         (those that could go are gone)
 */
int layer_blobcache_evict(uint64_t *out_evicted, layer_blobcache *c,
                          uint64_t max_bytes);

/** One record, as layer_blobcache_list() gives it. */
typedef struct layer_blobcache_item {
    char *layer;       /**< owned by the list */
    char *fingerprint; /**< owned by the list */
    layer_blobcache_tar tar;
    layer_compression compression;
    int level;
    layer_blobcache_info info;
    int64_t last_used; /**< Unix time of the blob's last use */
    unsigned readers;  /**< readers holding the blob now */
} layer_blobcache_item;

/**
 * The records, least recently used blob first (`layerd cache ls`).
 *
 * @param[out] out the items; free with layer_blobcache_list_free()
 * @param[out] out_n their number
 * @param c the cache
 * @return 0 or LAYER_ENOMEM
 */
int layer_blobcache_list(layer_blobcache_item **out, size_t *out_n,
                         layer_blobcache *c);

/** Release a list (NULL is accepted). */
void layer_blobcache_list_free(layer_blobcache_item *items, size_t n);

#endif
