#ifndef LAYER_ALLOC_H
#define LAYER_ALLOC_H

/**
 * @file layer/alloc.h
 * @brief The one allocation wrapper. The policy is in the name:
 * layer_try*() return NULL on exhaustion and record LAYER_ENOMEM; there is
 * no aborting variant, because a server must survive a failed request.
 *
 * Memory from these functions is released with layer_free(). Size
 * arithmetic is checked: layer_tryarray() fails on overflow.
 */

#include <stddef.h>

/**
 * Allocate size bytes (uninitialised).
 * @return the block, or NULL with LAYER_ENOMEM recorded
 */
void *layer_trymalloc(size_t size);

/**
 * Allocate n * size zeroed bytes, checking the multiplication.
 * @return the block, or NULL with LAYER_ENOMEM recorded
 */
void *layer_trycalloc(size_t n, size_t size);

/**
 * Resize a block to n * size bytes, checking the multiplication. On
 * failure the old block is left untouched.
 * @return the new block, or NULL with LAYER_ENOMEM recorded
 */
void *layer_tryarray(void *ptr, size_t n, size_t size);

/**
 * Grow the array *p of *cap elements of size bytes to hold at least need:
 * the capacity doubles from first (or from *cap), and stops at max
 * (need <= max). Nothing changes when *cap already holds need; on failure
 * *p and *cap are left untouched.
 * @return 0, or LAYER_ENOMEM (recorded)
 */
int layer_trygrow(void **p, size_t *cap, size_t need, size_t size, size_t first,
                  size_t max);

/**
 * Duplicate len bytes of s into a new NUL-terminated string.
 * @return the copy, or NULL with LAYER_ENOMEM recorded
 */
char *layer_trystrndup(const char *s, size_t len);

/**
 * Duplicate a NUL-terminated string.
 * @return the copy, or NULL with LAYER_ENOMEM recorded
 */
char *layer_trystrdup(const char *s);

/**
 * Release memory from the functions above. NULL is accepted.
 */
void layer_free(void *ptr);

/**
 * Test hook: make the n-th allocation from now (1 = the next one) fail;
 * 0 disables. Used by tests that check every failure path releases what
 * it took. Tests only; any thread may call it (with other threads
 * allocating, which allocation is the n-th is theirs to decide).
 */
void layer_alloc_fail_after(unsigned long n);

#endif
