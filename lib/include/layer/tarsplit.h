#ifndef LAYER_TARSPLIT_H
#define LAYER_TARSPLIT_H

/**
 * @file layer/tarsplit.h
 * @brief A streamed reader of tar-split metadata: the record container
 * engines keep of a layer's original tar, so that the tar can be rebuilt
 * byte for byte from it and the layer's files.
 *
 * The input is what containers-storage (`<driver>-layers/<id>.tar-split.gz`)
 * and Docker (`image/<driver>/layerdb/sha256/<chain>/tar-split.json.gz`)
 * write: gzip-compressed JSON, one object per line, as vbatts/tar-split's
 * storage packer encodes its Entry:
 *
 *     {"type":2,"payload":"<base64 raw tar bytes>","position":0}
 *     {"type":1,"name":"etc/new","size":4,"payload":"YVqy3bAAAAA=","position":1}
 *
 * - type 2, a segment: raw bytes of the tar (headers, extension headers,
 *   padding, the end-of-archive blocks, trailing bytes), verbatim;
 * - type 1, a file: a member's name (`name`, or `name_raw`, the base64 of
 *   a name that is not UTF-8; `name_raw` wins when both are present),
 *   its size (absent when 0) and in `payload` the CRC-64 of its content
 *   (layer/crc64.h) as 8 big-endian bytes in base64, or null when the
 *   member has no content. Every member is a type-1 entry, whatever its
 *   type (directories, links, whiteouts: all size 0);
 * - `position` counts the entries from 0, one by one.
 *
 * The tar is the concatenation, in order, of every segment and of each
 * file entry's `size` bytes of content.
 *
 * The reader inflates the input as it goes and yields one entry at a
 * time: memory stays bounded by one line (a cap, LAYER_TARSPLIT_MAX_LINE
 * by default) whatever the size of the input. Everything is validated and
 * anything malformed is an error naming the line: truncated or corrupt
 * gzip data, bytes after it that are not another gzip member, a line over
 * the cap, a line that is not one JSON object, an unknown type, a missing
 * or mistyped field, a negative size, a position out of sequence, invalid
 * base64, a CRC that is not 8 bytes, a file with content but no CRC, a
 * name that is empty, absolute, has a ".." component or a NUL byte, or is
 * longer than LAYER_TARSPLIT_MAX_NAME. Members that are not in the
 * format (unknown keys) are ignored, as Go's decoder does.
 *
 * Names are given as stored; the reader does not open files. Whoever
 * does must resolve them beneath the layer's root.
 *
 * A reader is not thread-safe; one thread at a time may use it.
 */

#include <stddef.h>
#include <stdint.h>

/**
 * Default cap on one line (and so on one segment). Go's archive/tar,
 * which the disassembler reads tars with, refuses PAX and GNU long-name
 * data over 1 MiB each, and the disassembler stores trailing bytes in
 * 1 MiB pieces; a segment is therefore under 2.1 MiB, under 2.8 MiB as
 * base64. 4 MiB leaves room and still bounds memory.
 */
#define LAYER_TARSPLIT_MAX_LINE (4u * 1024u * 1024u)

/** Longest file name accepted, in bytes (PATH_MAX without the NUL). */
#define LAYER_TARSPLIT_MAX_NAME 4095u

/** Entry types, as tar-split numbers them. */
typedef enum layer_tarsplit_type {
    LAYER_TARSPLIT_FILE = 1,   /**< a member: name, size, CRC */
    LAYER_TARSPLIT_SEGMENT = 2 /**< raw tar bytes */
} layer_tarsplit_type;

/** One entry. Pointers are borrowed until the next call on the reader. */
typedef struct layer_tarsplit_entry {
    layer_tarsplit_type type;
    uint64_t position; /**< 0 for the first entry, then +1 each */

    /* LAYER_TARSPLIT_FILE: */
    const char *name; /**< the member's name, NUL-terminated */
    size_t name_len;  /**< its length in bytes */
    int name_raw;     /**< nonzero: it came from `name_raw` (not UTF-8) */
    uint64_t size;    /**< content bytes in the tar */
    int has_crc;      /**< nonzero: crc is set (always when size > 0) */
    uint64_t crc;     /**< CRC-64/ISO of the content (layer/crc64.h) */

    /* LAYER_TARSPLIT_SEGMENT: */
    const unsigned char *data; /**< the raw bytes (NULL when len is 0) */
    size_t len;                /**< how many */
} layer_tarsplit_entry;

/** Options for layer_tarsplit_open(). Zero-initialise, then set fields. */
typedef struct layer_tarsplit_opts {
    /** Cap on one decompressed line, in bytes; 0 = LAYER_TARSPLIT_MAX_LINE. */
    size_t max_line;
    /** What the errors call the input (e.g. its path); NULL = "tar-split". */
    const char *label;
} layer_tarsplit_opts;

typedef struct layer_tarsplit layer_tarsplit;

/**
 * Start reading tar-split data from a descriptor.
 *
 * Nothing is read yet. The reader reads fd sequentially from its current
 * offset (a pipe works), never seeks, and does not close it: the caller
 * closes fd after layer_tarsplit_free().
 *
 * @param[out] out the reader; release it with layer_tarsplit_free()
 * @param fd a readable descriptor, positioned at the gzip data
 * @param opts options, or NULL for the defaults
 * @return 0, LAYER_EINVALID for a negative fd, LAYER_ENOMEM
 */
int layer_tarsplit_open(layer_tarsplit **out, int fd,
                        const layer_tarsplit_opts *opts);

/**
 * The next entry.
 *
 * @param[out] out the entry, borrowed until the next call or free
 * @param ts the reader
 * @return 0; LAYER_ITEROVER after the last entry (and on every later
 *         call); LAYER_EBROKEN for malformed data (the message names the
 *         line); LAYER_ETOOBIG for a line over the cap; LAYER_ERROR when
 *         reading fd fails; LAYER_ENOMEM. Errors are final: every later
 *         call returns the same code and message.
 */
int layer_tarsplit_next(const layer_tarsplit_entry **out, layer_tarsplit *ts);

/**
 * The number of lines read so far (the line of the last entry returned,
 * or of the error).
 *
 * @param ts the reader
 * @return the count
 */
uint64_t layer_tarsplit_line(const layer_tarsplit *ts);

/**
 * Release the reader (not its descriptor).
 *
 * @param ts the reader, or NULL
 */
void layer_tarsplit_free(layer_tarsplit *ts);

/* ---- rebuilding the original tar ------------------------------------ */

/**
 * The original tar of a layer, rebuilt from its tar-split data and the
 * layer's directory, as a byte stream: every segment verbatim and, for
 * each file entry with content, the file's bytes read from the layer's
 * directory (what `tar-split asm` and the engines' own exports do).
 *
 * Files are opened only beneath the layer directory's descriptor
 * (layer/beneath.h: no symlink followed, nothing outside reached), by
 * their tar-split name with "." and empty components dropped ("./etc/x"
 * is etc/x); entries without content (directories, links, whiteouts,
 * empty files) open nothing. Each file is checked as it streams: it must
 * be a regular file of exactly the recorded size, and the CRC-64 of the
 * bytes read must be the recorded one. The first file that fails is an
 * error naming it (LAYER_ECHANGED: the layer's directory no longer holds
 * what the tar had), returned before the file's last bytes are given out.
 * Checking the SHA-256 of the whole stream against the recorded diff ID
 * is the caller's part (layer/export.h does it).
 *
 * A source is not thread-safe; one thread at a time may use it.
 */
typedef struct layer_tarsplit_asm layer_tarsplit_asm;

/**
 * Start rebuilding.
 *
 * Nothing is read yet. Both descriptors are borrowed: the caller closes
 * them after layer_tarsplit_asm_free().
 *
 * @param[out] out the source; release it with layer_tarsplit_asm_free()
 * @param ts_fd the tar-split data, as for layer_tarsplit_open()
 * @param layer_fd the layer's directory (O_PATH is enough)
 * @param opts options of the tar-split reader (its label names the data
 *        in errors), or NULL
 * @return 0, LAYER_EINVALID for a negative descriptor, LAYER_ENOMEM
 */
int layer_tarsplit_asm_open(layer_tarsplit_asm **out, int ts_fd, int layer_fd,
                            const layer_tarsplit_opts *opts);

/**
 * The next bytes of the tar.
 *
 * @param[out] out_n bytes stored in buf, more than 0 on success
 * @param a the source
 * @param buf where to put them
 * @param cap room in buf, more than 0
 * @return 0; LAYER_ITEROVER after the last byte (and on every later
 *         call); LAYER_ECHANGED for a file of the tar that is missing, is
 *         not a regular file (a symlink included), has another size or
 *         other content (the message names the file); the tar-split
 *         reader's errors for malformed data (LAYER_EBROKEN,
 *         LAYER_ETOOBIG); LAYER_EINVALID for cap 0; LAYER_ERROR when
 *         reading fails; LAYER_ENOMEM. Errors are final: every later call
 *         returns the same code and message.
 */
int layer_tarsplit_asm_read(size_t *out_n, layer_tarsplit_asm *a, void *buf,
                            size_t cap);

/** What a source has done so far. */
typedef struct layer_tarsplit_asm_stats {
    uint64_t entries; /**< members of the tar (file entries) passed */
    uint64_t files;   /**< of those, files read (with content) */
    uint64_t bytes;   /**< bytes of the tar given out */
} layer_tarsplit_asm_stats;

/**
 * The counters so far.
 *
 * @param[out] out the counters
 * @param a the source
 */
void layer_tarsplit_asm_stats_get(layer_tarsplit_asm_stats *out,
                                  const layer_tarsplit_asm *a);

/**
 * Release the source and the file it has open (not the descriptors it
 * was given).
 *
 * @param a the source, or NULL
 */
void layer_tarsplit_asm_free(layer_tarsplit_asm *a);

#endif
