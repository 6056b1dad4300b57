#ifndef LAYER_COMPRESS_H
#define LAYER_COMPRESS_H

/**
 * @file layer/compress.h
 * @brief Streaming, deterministic gzip and zstd compressors.
 *
 * A compressor takes input and output buffers from the caller (no
 * internal output queue beyond a few header bytes) and produces a single
 * gzip member or zstd frame. The output depends only on the input bytes,
 * the level and the library build; it carries no timestamp or name.
 *
 * gzip: ISA-L's igzip when the build has it (LAYER_HAVE_ISAL), levels 1-3,
 * default 2 (about 5x faster than zlib -1 per core, and within 3% of
 * pigz -1's size, which level 1 misses on binaries); otherwise zlib,
 * levels 1-9, default 1 (its fastest). ISA-L's level 0 is not offered:
 * level 0 means "the default" in the export options, and its ratio is far
 * below gzip -1. The 10-byte
 * gzip header is fixed: 1f 8b 08, no flags, MTIME 0, XFL 0, OS 255
 * ("unknown", as Go's compress/gzip writes). The two backends produce
 * different bytes for the same level, so a blob digest is stable for one
 * build (and ISA-L version), not across builds.
 *
 * zstd: libzstd, levels 1-19, default 3 (klauspost's SpeedDefault, which
 * containerd uses, is about level 3), with 2 libzstd worker threads.
 * libzstd's multithreaded frames do not depend on the worker count (1, 2
 * or 4 give the same bytes), only on the level; they differ from its
 * single-threaded frames, which a libzstd without thread support would
 * produce instead. The frame has a content checksum and no content size
 * (the size is not known up front).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layer/export.h"

typedef struct layer_compress layer_compress;

/**
 * Check a level and resolve 0 to the format's default.
 *
 * @param[out] out_level the effective level
 * @param kind the compression
 * @param level 0 for the default, or a level of that format
 * @return 0, or LAYER_EINVALID with a message naming the valid range
 *         (LAYER_COMPRESSION_NONE accepts only 0)
 */
int layer_compress_level(int *out_level, layer_compression kind, int level);

/**
 * Create a compressor.
 *
 * @param[out] out the compressor; free with layer_compress_free()
 * @param kind the compression; LAYER_COMPRESSION_NONE copies input to
 *        output unchanged
 * @param level 0 for the default, or a level (see layer_compress_level())
 * @return 0, LAYER_EINVALID for a bad kind or level, LAYER_ENOMEM, or
 *         LAYER_ERROR when the library fails
 */
int layer_compress_new(layer_compress **out, layer_compression kind, int level);

/**
 * Compress some input. Consumes as much input as fits and stops when the
 * input is used up or the output is full; call again with the rest.
 *
 * @param[out] out_consumed input bytes taken
 * @param[out] out_produced output bytes written
 * @param c the compressor (not finished)
 * @param in input bytes
 * @param in_len number of input bytes
 * @param out output buffer
 * @param out_cap its capacity
 * @return 0, LAYER_EINVALID after finish, or LAYER_ERROR when the library
 *         fails (the compressor is then unusable)
 */
int layer_compress_update(size_t *out_consumed, size_t *out_produced,
                          layer_compress *c, const void *in, size_t in_len,
                          void *out, size_t out_cap);

/**
 * End the stream: flush what is buffered and write the trailer. Call
 * until *out_done is true, with fresh output space each time.
 *
 * @param[out] out_produced output bytes written
 * @param[out] out_done true once the whole stream has been written
 * @param c the compressor
 * @param out output buffer
 * @param out_cap its capacity
 * @return 0, or LAYER_ERROR when the library fails
 */
int layer_compress_finish(size_t *out_produced, bool *out_done,
                          layer_compress *c, void *out, size_t out_cap);

/**
 * The highest level of a compression in this build: 19 for zstd; for
 * gzip 3 with ISA-L, 9 with zlib; 0 for LAYER_COMPRESSION_NONE.
 */
int layer_compress_max_level(layer_compression kind);

/**
 * An estimate of the memory one compressor of this kind and level holds
 * while it runs, in bytes: libzstd's estimate of its contexts plus the
 * window and job buffers of its worker threads; ISA-L's or zlib's state.
 * For gzip this is one chunk compressor (layer_gzip_chunker); an export
 * runs several (layer_export_memory() counts them).
 *
 * @param level 0 for the default, or a level of that format
 * @return bytes; 0 for LAYER_COMPRESSION_NONE or an invalid level
 */
size_t layer_compress_memory(layer_compression kind, int level);

/**
 * The library behind a compression in this build: "isa-l", "zlib",
 * "zstd" or "none". Static string.
 */
const char *layer_compress_backend(layer_compression kind);

/**
 * Versions of the compression libraries this build uses, for build info:
 * out->gzip is "isa-l <x.y.z>" or "zlib <x.y.z>", out->isal the ISA-L
 * version or "none" when built without it, out->zstd libzstd's runtime
 * version. All static strings.
 */
typedef struct layer_compress_versions {
    const char *gzip;
    const char *isal;
    const char *zstd;
} layer_compress_versions;

/** Fill in the library versions (see layer_compress_versions). */
void layer_compress_versions_get(layer_compress_versions *out);

/** Free a compressor. NULL is accepted. */
void layer_compress_free(layer_compress *c);

/*
 * Chunked gzip, pigz style: the input is cut into chunks that are
 * compressed independently (each may run on its own thread), each seeded
 * with the last LAYER_GZIP_DICT_SIZE bytes of the previous chunk as its
 * dictionary and ended with a sync flush (the last one with the final
 * block), so the concatenation header + chunks + trailer is one standard
 * gzip member. The bytes depend only on the input, the chunk size and the
 * level, never on which thread compressed what or when.
 */

/** Bytes of history a chunk takes from the previous chunk (deflate's
 * window). */
#define LAYER_GZIP_DICT_SIZE 32768
/** Bytes of the gzip header and trailer. */
#define LAYER_GZIP_HEADER_SIZE  10
#define LAYER_GZIP_TRAILER_SIZE 8

typedef struct layer_gzip_chunker layer_gzip_chunker;

/**
 * Largest output of one chunk of in_len bytes, header and trailer
 * included (incompressible data grows by a few bytes per 64 KiB).
 */
size_t layer_gzip_chunk_bound(size_t in_len);

/**
 * Create the state one thread uses to compress chunks.
 *
 * @param[out] out the chunker; free with layer_gzip_chunker_free()
 * @param level 0 for the default, or a gzip level (layer_compress_level())
 * @return 0, LAYER_EINVALID for a bad level, LAYER_ENOMEM, LAYER_ERROR
 */
int layer_gzip_chunker_new(layer_gzip_chunker **out, int level);

/**
 * Compress one chunk.
 *
 * @param[out] out_len bytes written to out
 * @param[out] out_crc CRC-32 of the chunk's input (combine them with
 *             layer_gzip_crc_combine() for the trailer)
 * @param c the chunker
 * @param dict the last bytes of the previous chunk (at most
 *        LAYER_GZIP_DICT_SIZE are used), or NULL for the first chunk
 * @param dict_len bytes of dict
 * @param in the chunk
 * @param in_len its length (at most UINT32_MAX)
 * @param first write the gzip header before the data
 * @param last end the deflate stream with this chunk (the trailer is not
 *        written; see layer_gzip_trailer())
 * @param out destination
 * @param out_cap its capacity; layer_gzip_chunk_bound(in_len) is enough
 * @return 0, LAYER_ETOOBIG if out_cap is too small, LAYER_ERROR
 */
int layer_gzip_chunk(size_t *out_len, uint32_t *out_crc, layer_gzip_chunker *c,
                     const void *dict, size_t dict_len, const void *in,
                     size_t in_len, bool first, bool last, void *out,
                     size_t out_cap);

/**
 * CRC-32 of A followed by B, from crc(A), crc(B) and len(B).
 */
uint32_t layer_gzip_crc_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/**
 * The gzip trailer: CRC-32 and length mod 2^32, little-endian.
 * @param[out] out 8 bytes
 * @param crc CRC-32 of all input
 * @param total_len bytes of all input
 */
void layer_gzip_trailer(unsigned char out[LAYER_GZIP_TRAILER_SIZE],
                        uint32_t crc, uint64_t total_len);

/** Free a chunker. NULL is accepted. */
void layer_gzip_chunker_free(layer_gzip_chunker *c);

#endif
