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
 * gzip: ISA-L's igzip when the build has it (LAYER_HAVE_ISAL), levels 1-3;
 * otherwise zlib, levels 1-9. Both default to level 1, chosen for speed
 * (ISA-L level 1 is several times faster than zlib -1 at a similar
 * ratio). ISA-L's level 0 is not offered: level 0 means "the default" in
 * the export options, and its ratio is far below gzip -1. The 10-byte
 * gzip header is fixed: 1f 8b 08, no flags, MTIME 0, XFL 0, OS 255
 * ("unknown", as Go's compress/gzip writes). The two backends produce
 * different bytes for the same level, so a blob digest is stable for one
 * build (and ISA-L version), not across builds.
 *
 * zstd: libzstd, levels 1-19, default 3 (klauspost's SpeedDefault, which
 * containerd uses, is about level 3). Single-threaded: libzstd's
 * multithreaded frames differ from single-threaded ones, and the export
 * already keeps both cores busy. The frame has a content checksum and no
 * content size (the size is not known up front).
 */

#include <stdbool.h>
#include <stddef.h>

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
int layer_compress_new(layer_compress **out, layer_compression kind,
                       int level);

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
 * The library behind a compression in this build: "isa-l", "zlib",
 * "zstd" or "none". Static string.
 */
const char *layer_compress_backend(layer_compression kind);

/** Free a compressor. NULL is accepted. */
void layer_compress_free(layer_compress *c);

#endif
