#ifndef SRV_TLS_H
#define SRV_TLS_H

/*
 * The server's TLS identity: a certificate chain and its private key as
 * PEM text for libmicrohttpd (which hands them to GnuTLS), and the leaf
 * certificate's SHA-256 fingerprint for the log. Either loaded from files
 * (checked with OpenSSL: the key must match the certificate, which must
 * be currently valid) or generated at start-up as an ephemeral
 * self-signed ECDSA P-256 certificate.
 */

#include <stdbool.h>
#include <stddef.h>

/*
 * GnuTLS priority string: TLS 1.3 and 1.2 only, AEAD ciphers only
 * (AES-GCM, ChaCha20-Poly1305), forward-secret ECDHE key exchange for 1.2,
 * the server's preference order.
 */
#define SRV_TLS_PRIORITIES                                                     \
    "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"                \
    "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:"                \
    "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

/* Length of a SHA-256 fingerprint "AB:CD:...:EF" plus NUL. */
#define SRV_TLS_FINGERPRINT_LEN (32 * 3)

/* Longest certificate or key file read. */
#define SRV_TLS_FILE_MAX (1u << 20)

/* The weakest keys loaded (112-bit security, NIST SP 800-57). */
#define SRV_TLS_RSA_MIN_BITS 2048
#define SRV_TLS_EC_MIN_BITS  256

typedef struct srv_tls {
    char *cert_pem; /* NUL-terminated PEM, the chain, leaf first */
    char *key_pem;  /* NUL-terminated unencrypted PKCS#8 PEM */
    /* SHA-256 of the leaf certificate (DER), colon-separated upper-case
     * hex, as `openssl x509 -fingerprint -sha256` prints it. */
    char fingerprint[SRV_TLS_FINGERPRINT_LEN];
    bool ephemeral; /* generated at start-up */
} srv_tls;

/*
 * Generate an ephemeral self-signed ECDSA P-256 certificate for
 * DNS:localhost, IP:127.0.0.1 and IP:::1, valid from an hour ago for
 * valid_days days, with a random serial.
 *
 * @param[out] out the identity; free with srv_tls_free()
 * @return 0, LAYER_ERROR (OpenSSL failure, reason recorded) or
 *         LAYER_ENOMEM
 */
int srv_tls_generate(srv_tls **out, unsigned valid_days);

/*
 * Load a certificate chain and its private key from PEM files. Both must
 * be regular files (a FIFO or a device is refused without waiting on it);
 * the key file must not be readable or writable by its group or others
 * unless allow_insecure_key_permissions. The key must not be encrypted,
 * must be RSA of at least SRV_TLS_RSA_MIN_BITS, EC of at least
 * SRV_TLS_EC_MIN_BITS, Ed25519 or Ed448, and must match the leaf
 * certificate; the leaf must be valid now.
 *
 * @param[out] out the identity; free with srv_tls_free()
 * @return 0, LAYER_ENOTFOUND (no such file), LAYER_EINVALID (not a
 *         regular file, a key others can read, a weak key; unparsable,
 *         mismatched, expired or encrypted) or LAYER_ERROR, with the
 *         reason recorded
 */
int srv_tls_load(srv_tls **out, const char *cert_path, const char *key_path,
                 bool allow_insecure_key_permissions);

/* Free an identity, wiping the key from memory. NULL is accepted. */
void srv_tls_free(srv_tls *tls);

#endif
