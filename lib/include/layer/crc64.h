#ifndef LAYER_CRC64_H
#define LAYER_CRC64_H

/**
 * @file layer/crc64.h
 * @brief CRC-64 with the ISO polynomial, exactly as Go's hash/crc64
 * computes it with crc64.MakeTable(crc64.ISO).
 *
 * tar-split stores one of these per file (layer/tarsplit.h): the
 * reflected polynomial 0xD800000000000000 (x^64 + x^4 + x^3 + x + 1),
 * register started at all ones and inverted at the end, the 8-byte sum
 * written big-endian. So the CRC of "new\n" is 0x615ab2ddb0000000 and its
 * stored form is the base64 of 61 5a b2 dd b0 00 00 00 ("YVqy3bAAAAA=").
 *
 * Thread-safe: the tables are built once, on first use.
 */

#include <stddef.h>
#include <stdint.h>

/** Bytes of a CRC-64 sum in its stored (big-endian) form. */
#define LAYER_CRC64_SIZE 8

/**
 * Continue a CRC-64 over more bytes, like Go's crc64.Update().
 *
 * Start with crc = 0; feeding the data in pieces, each call given the
 * previous result, gives the same value as one call over all of it.
 *
 * @param crc 0 to start, or the result of the previous call
 * @param data the bytes (may be NULL when len is 0)
 * @param len number of bytes
 * @return the CRC-64 of everything fed so far
 */
uint64_t layer_crc64_update(uint64_t crc, const void *data, size_t len);

/**
 * The stored form of a sum: 8 bytes, most significant first (Go's
 * hash.Hash64 Sum()).
 *
 * @param[out] out the 8 bytes
 * @param crc the sum
 */
void layer_crc64_put(unsigned char out[LAYER_CRC64_SIZE], uint64_t crc);

/**
 * The sum a stored form holds (the inverse of layer_crc64_put()).
 *
 * @param in 8 bytes, most significant first
 * @return the sum
 */
uint64_t layer_crc64_get(const unsigned char in[LAYER_CRC64_SIZE]);

/**
 * How this process computes the CRC: "vpclmul" (carry-less
 * multiplication folding on 512-bit registers, where the CPU has AVX-512F
 * and VPCLMULQDQ), "pclmul" (the same on 128-bit registers, where it has
 * PCLMULQDQ) or "slicing-by-8" (tables).
 *
 * @return a static string
 */
const char *layer_crc64_method(void);

#endif
