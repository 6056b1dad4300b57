/*
 * SHA-256 through OpenSSL 3's EVP interface. The EVP_MD is fetched once
 * (EVP_MD_fetch is a provider lookup with locking; doing it per digest
 * would cost more than hashing a small file) and kept for the life of the
 * process. Each digest owns one EVP_MD_CTX, so concurrent exports never
 * share state. The OCI form "sha256:<hex>" is produced here so no caller
 * formats digests by hand.
 */
#include "layer/digest.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "layer/error.h"
#include "layer/text.h"

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;

static void md_fetch(void)
{
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int layer_digest_init(layer_digest *d)
{
    EVP_MD_CTX *ctx = d->ctx;

    pthread_once(&md_once, md_fetch);
    if (md_sha256 == NULL)
        return layer_error_set(LAYER_ERROR,
                               "OpenSSL has no SHA256 implementation");
    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL)
            return layer_error_set(LAYER_ENOMEM,
                                   "out of memory for a SHA-256 context");
        d->ctx = ctx;
    }
    if (EVP_DigestInit_ex2(ctx, md_sha256, NULL) != 1)
        return layer_error_set(LAYER_ERROR, "EVP_DigestInit_ex2 failed");
    return 0;
}

int layer_digest_update(layer_digest *d, const void *data, size_t len)
{
    if (d->ctx == NULL)
        return layer_error_set(LAYER_ERROR, "digest used before init");
    if (len == 0)
        return 0;
    if (EVP_DigestUpdate(d->ctx, data, len) != 1)
        return layer_error_set(LAYER_ERROR, "EVP_DigestUpdate failed");
    return 0;
}

int layer_digest_final(char out[LAYER_DIGEST_STR_SIZE], layer_digest *d)
{
    static const char prefix[] = "sha256:";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (d->ctx == NULL)
        return layer_error_set(LAYER_ERROR, "digest used before init");
    if (EVP_DigestFinal_ex(d->ctx, md, &n) != 1 || n != 32)
        return layer_error_set(LAYER_ERROR, "EVP_DigestFinal_ex failed");
    memcpy(out, prefix, sizeof(prefix) - 1);
    layer_text_hex_encode(out + sizeof(prefix) - 1, md, n);
    return 0;
}

void layer_digest_dispose(layer_digest *d)
{
    EVP_MD_CTX_free(d->ctx);
    d->ctx = NULL;
}

int layer_digest_buffer(char out[LAYER_DIGEST_STR_SIZE], const void *data,
                        size_t len)
{
    layer_digest d = LAYER_DIGEST_INIT;
    int rc;

    if ((rc = layer_digest_init(&d)) < 0)
        goto out;
    if ((rc = layer_digest_update(&d, data, len)) < 0)
        goto out;
    rc = layer_digest_final(out, &d);
out:
    layer_digest_dispose(&d);
    return rc;
}
