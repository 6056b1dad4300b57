#ifndef LAYER_DIGEST_H
#define LAYER_DIGEST_H

/**
 * @file layer/digest.h
 * @brief SHA-256 digests in OCI form ("sha256:<64 lowercase hex>").
 *
 * A thin streaming wrapper over OpenSSL's EVP interface. The digest
 * algorithm is fetched once per process and shared; each layer_digest
 * holds one EVP_MD_CTX. A layer_digest lives on the caller's stack or in
 * a struct: initialise it with LAYER_DIGEST_INIT, start it with
 * layer_digest_init(), release it with layer_digest_dispose().
 * One layer_digest must not be used by two threads at once.
 */

#include <stddef.h>

/** Bytes of "sha256:" + 64 hex digits + NUL. */
#define LAYER_DIGEST_STR_SIZE 72

/** A running SHA-256. Fields are private. */
typedef struct layer_digest {
    void *ctx; /**< EVP_MD_CTX, or NULL when not started */
} layer_digest;

/** Static initialiser: a digest that is not started. */
#define LAYER_DIGEST_INIT                                                      \
    {                                                                          \
        NULL                                                                   \
    }

/**
 * Start (or restart) a SHA-256.
 *
 * @param d the digest (LAYER_DIGEST_INIT or used before)
 * @return 0, LAYER_ENOMEM, or LAYER_ERROR when OpenSSL fails
 */
int layer_digest_init(layer_digest *d);

/**
 * Hash more bytes.
 *
 * @param d a started digest
 * @param data the bytes (may be NULL when len is 0)
 * @param len number of bytes
 * @return 0, or LAYER_ERROR when OpenSSL fails or d is not started
 */
int layer_digest_update(layer_digest *d, const void *data, size_t len);

/**
 * Finish the digest and format it. The digest can then be restarted with
 * layer_digest_init() or released.
 *
 * @param[out] out "sha256:<64 lowercase hex>" and a NUL
 * @param d a started digest
 * @return 0, or LAYER_ERROR when OpenSSL fails or d is not started
 */
int layer_digest_final(char out[LAYER_DIGEST_STR_SIZE], layer_digest *d);

/**
 * Release what the digest holds. Safe on LAYER_DIGEST_INIT and twice.
 */
void layer_digest_dispose(layer_digest *d);

/**
 * The digest of one buffer, in one call.
 *
 * @param[out] out "sha256:<64 lowercase hex>" and a NUL
 * @param data the bytes
 * @param len number of bytes
 * @return 0 or a negative code as layer_digest_init()
 */
int layer_digest_buffer(char out[LAYER_DIGEST_STR_SIZE], const void *data,
                        size_t len);

#endif
