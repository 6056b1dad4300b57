#ifndef LAYER_CRC64_INT_H
#define LAYER_CRC64_INT_H

/*
 * The CRC-64 implementations behind layer_crc64_update(), for the tests
 * that check they agree. All take and return the sum in the same form as
 * layer_crc64_update().
 */

#include <stddef.h>
#include <stdint.h>

/* Slicing-by-8 tables; always available. */
uint64_t layer_crc64__update_table(uint64_t crc, const void *data, size_t len);

/* Nonzero when this CPU and build can run layer_crc64__update_clmul(). */
int layer_crc64__have_clmul(void);

/* PCLMULQDQ folding when layer_crc64__have_clmul() says so, else the
 * tables. */
uint64_t layer_crc64__update_clmul(uint64_t crc, const void *data, size_t len);

/* Nonzero when this CPU also has AVX-512F and VPCLMULQDQ. */
int layer_crc64__have_vclmul(void);

/* VPCLMULQDQ folding when layer_crc64__have_vclmul() says so, else
 * layer_crc64__update_clmul(): what layer_crc64_update() runs. */
uint64_t layer_crc64__update_vclmul(uint64_t crc, const void *data, size_t len);

#endif
