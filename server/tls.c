/*
 * The server's certificate and key. libmicrohttpd's TLS is GnuTLS and
 * takes PEM text in memory; OpenSSL does everything before that: it
 * generates the ephemeral certificate, parses and checks configured ones
 * (so a wrong key fails at start-up with a clear message rather than at
 * the first handshake), re-encodes the key as unencrypted PKCS#8 (a form
 * GnuTLS always reads), and computes the fingerprint an operator compares
 * with `openssl s_client | openssl x509 -fingerprint -sha256`.
 *
 * Key material is checked before it is used. The key file is opened
 * once, without blocking (a FIFO or device under the name is refused at
 * once, not waited on), checked on that descriptor (a regular file; not
 * readable or writable by its group or others, like sshd's host keys,
 * unless the caller allows it) and read from it. Weak keys are refused:
 * RSA under 2048 bits and elliptic curves under 256 (NIST SP 800-57's
 * 112-bit security floor, which TLS 1.3 deployments and browsers hold
 * to); Ed25519 and Ed448 are accepted; DSA and anything else is refused
 * (TLS 1.3 has no use for them).
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/file.h"

/* Record the oldest queued OpenSSL error after "what". */
static int ossl_error(const char *what)
{
    char buf[256] = "unknown OpenSSL error";
    unsigned long e = ERR_get_error();

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return layer_error_set(LAYER_ERROR, "%s: %s", what, buf);
}

/* Copy a memory BIO's contents into a new NUL-terminated string. */
static int bio_to_string(char **out, BIO *bio)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *copy;

    if (len <= 0 || data == NULL)
        return layer_error_set(LAYER_ERROR, "empty PEM output");
    if ((copy = layer_trystrndup(data, (size_t)len)) == NULL)
        return LAYER_ENOMEM;
    *out = copy;
    return 0;
}

static int encode_key(char **out, EVP_PKEY *pkey)
{
    int rc = 0;
    BIO *bio = BIO_new(BIO_s_secmem());

    if (bio == NULL) {
        rc = ossl_error("cannot allocate a BIO");
        goto out;
    }
    if (!PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)) {
        rc = ossl_error("cannot PEM-encode the private key");
        goto out;
    }
    rc = bio_to_string(out, bio);
out:
    BIO_free(bio);
    return rc;
}

static int fingerprint(char out[SRV_TLS_FINGERPRINT_LEN], X509 *cert)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (!X509_digest(cert, EVP_sha256(), md, &len) || len != 32)
        return ossl_error("cannot compute the certificate fingerprint");
    for (unsigned i = 0; i < len; i++) {
        out[i * 3] = hex[md[i] >> 4];
        out[i * 3 + 1] = hex[md[i] & 0xf];
        out[i * 3 + 2] = i + 1 < len ? ':' : '\0';
    }
    return 0;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
        return ossl_error("cannot build a certificate extension");
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    if (!ok)
        return ossl_error("cannot add a certificate extension");
    return 0;
}

static int random_serial(X509 *cert)
{
    int rc = 0;
    unsigned char raw[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        rc = ossl_error("cannot draw a random serial");
        goto out;
    }
    /* Positive and of full length (RFC 5280 4.1.2.2: at most 20 bytes). */
    raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
    if ((bn = BN_bin2bn(raw, sizeof(raw), NULL)) == NULL ||
        (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        !X509_set_serialNumber(cert, serial)) {
        rc = ossl_error("cannot set the serial number");
        goto out;
    }
out:
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return rc;
}

/*
 * Make the identity of a certificate chain: cert_pem (taken, even on
 * failure) whose leaf certificate is leaf, with the private key pkey
 * re-encoded and the leaf's fingerprint. Returns 0 or a negative code.
 */
static int identity_new(srv_tls **out, char *cert_pem, X509 *leaf,
                        EVP_PKEY *pkey, bool ephemeral)
{
    int rc;
    srv_tls *tls = layer_trycalloc(1, sizeof(*tls));

    if (tls == NULL) {
        layer_free(cert_pem);
        return LAYER_ENOMEM;
    }
    tls->cert_pem = cert_pem;
    tls->ephemeral = ephemeral;
    if ((rc = encode_key(&tls->key_pem, pkey)) < 0 ||
        (rc = fingerprint(tls->fingerprint, leaf)) < 0) {
        srv_tls_free(tls);
        return rc;
    }
    *out = tls;
    return 0;
}

int srv_tls_generate(srv_tls **out, unsigned valid_days)
{
    int rc = 0;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    X509_NAME *name;
    BIO *bio = NULL;
    char *pem = NULL;

    if ((pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL) {
        rc = ossl_error("cannot generate an EC P-256 key");
        goto out;
    }
    if ((cert = X509_new()) == NULL || !X509_set_version(cert, 2)) {
        rc = ossl_error("cannot allocate a certificate");
        goto out;
    }
    if ((rc = random_serial(cert)) < 0)
        goto out;
    /* An hour of slack for clients whose clock lags. */
    if (!X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), (int)valid_days, 0, NULL)) {
        rc = ossl_error("cannot set the validity period");
        goto out;
    }
    name = X509_get_subject_name(cert);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"layerd ephemeral",
                                    -1, -1, 0) ||
        !X509_set_issuer_name(cert, name) || !X509_set_pubkey(cert, pkey)) {
        rc = ossl_error("cannot set the certificate's names");
        goto out;
    }
    if ((rc = add_ext(cert, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
        (rc = add_ext(cert, NID_key_usage, "critical,digitalSignature")) < 0 ||
        (rc = add_ext(cert, NID_ext_key_usage, "serverAuth")) < 0 ||
        (rc = add_ext(cert, NID_subject_key_identifier, "hash")) < 0 ||
        (rc = add_ext(cert, NID_subject_alt_name,
                      "DNS:localhost,IP:127.0.0.1,IP:::1")) < 0)
        goto out;
    if (X509_sign(cert, pkey, EVP_sha256()) <= 0) {
        rc = ossl_error("cannot sign the certificate");
        goto out;
    }
    if ((bio = BIO_new(BIO_s_mem())) == NULL ||
        !PEM_write_bio_X509(bio, cert)) {
        rc = ossl_error("cannot PEM-encode the certificate");
        goto out;
    }
    if ((rc = bio_to_string(&pem, bio)) < 0)
        goto out;
    rc = identity_new(out, pem, cert, pkey, true);
out:
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(pkey);
    return rc;
}

/* Move buf (len bytes, from layer_file_read*()) into a secure-memory BIO;
 * buf is wiped and freed in any case. */
static int buf_to_bio(BIO **out, char *buf, size_t len)
{
    int rc = 0;

    if ((*out = BIO_new(BIO_s_secmem())) == NULL ||
        BIO_write(*out, buf, (int)len) != (int)len) {
        BIO_free(*out);
        *out = NULL;
        rc = ossl_error("cannot buffer a PEM file");
    }
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len);
        layer_free(buf);
    }
    return rc;
}

/* Read a whole PEM file (at most SRV_TLS_FILE_MAX bytes) into a BIO. */
static int read_pem(BIO **out, const char *path, const char *what)
{
    int rc;
    char *buf = NULL;
    size_t len = 0;

    if ((rc = srv_read_file(&buf, &len, path, what, SRV_TLS_FILE_MAX)) < 0)
        return rc;
    return buf_to_bio(out, buf, len);
}

/* Read the private key file: a regular file, private unless allowed. */
static int read_key(BIO **out, const char *path, bool allow_insecure)
{
    int rc = 0;
    int fd;
    struct stat st;
    char *buf = NULL;
    char what[4160];
    size_t len = 0;

    snprintf(what, sizeof(what), "key file %s", path);
    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0) {
        int err = errno;

        return layer_error_set_errno(
            err == ENOENT || err == ENOTDIR ? LAYER_ENOTFOUND : LAYER_ERROR,
            err, "cannot open %s", what);
    }
    if (fstat(fd, &st) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "cannot stat %s", what);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = layer_error_set(LAYER_EINVALID, "%s is not a regular file", what);
        goto out;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 && !allow_insecure) {
        rc = layer_error_set(LAYER_EINVALID,
                             "%s has mode %04o: its group or others can "
                             "read or write it; make it private (chmod 600, "
                             "or 0400 in a Kubernetes secret's defaultMode) "
                             "or give --allow-insecure-key-permissions",
                             what, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if ((rc = layer_file_read_fd(&buf, &len, fd, SRV_TLS_FILE_MAX, what)) == 0)
        rc = buf_to_bio(out, buf, len);
out:
    close(fd);
    return rc;
}

/* Refuse keys too weak for a server that faces a network. */
static int check_key_strength(EVP_PKEY *pkey, const char *path)
{
    int type = EVP_PKEY_get_base_id(pkey);
    int bits = EVP_PKEY_get_bits(pkey);

    switch (type) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        if (bits < SRV_TLS_RSA_MIN_BITS)
            return layer_error_set(LAYER_EINVALID,
                                   "the key in %s is RSA with %d bits; at "
                                   "least %d are required",
                                   path, bits, SRV_TLS_RSA_MIN_BITS);
        return 0;
    case EVP_PKEY_EC:
        if (bits < SRV_TLS_EC_MIN_BITS)
            return layer_error_set(LAYER_EINVALID,
                                   "the key in %s is on a %d-bit elliptic "
                                   "curve; at least %d bits are required "
                                   "(e.g. P-256)",
                                   path, bits, SRV_TLS_EC_MIN_BITS);
        return 0;
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
        return 0;
    default:
        return layer_error_set(LAYER_EINVALID,
                               "the key in %s is of type %s; use RSA (2048 "
                               "bits or more), ECDSA (P-256 or larger) or "
                               "Ed25519",
                               path, OBJ_nid2sn(type));
    }
}

/* A passphrase callback that refuses: encrypted keys are not supported. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Re-encode every certificate of a PEM chain, leaf first. */
static int load_chain(char **out_pem, X509 **out_leaf, BIO *in,
                      const char *path)
{
    int rc = 0;
    BIO *pem = NULL;
    X509 *cert = NULL;
    X509 *leaf = NULL;
    unsigned n = 0;

    if ((pem = BIO_new(BIO_s_mem())) == NULL) {
        rc = ossl_error("cannot allocate a BIO");
        goto out;
    }
    while ((cert = PEM_read_bio_X509(in, NULL, no_passphrase, NULL)) != NULL) {
        if (!PEM_write_bio_X509(pem, cert)) {
            rc = ossl_error("cannot PEM-encode a certificate");
            goto out;
        }
        if (leaf == NULL) {
            leaf = cert;
        } else {
            X509_free(cert);
        }
        cert = NULL;
        n++;
    }
    /* Reading stops with "no start line" at the end of the file. */
    ERR_clear_error();
    if (n == 0) {
        rc = layer_error_set(LAYER_EINVALID,
                             "certificate file %s holds no PEM certificate",
                             path);
        goto out;
    }
    if ((rc = bio_to_string(out_pem, pem)) < 0)
        goto out;
    *out_leaf = leaf;
    leaf = NULL;
out:
    X509_free(cert);
    X509_free(leaf);
    BIO_free(pem);
    return rc;
}

int srv_tls_load(srv_tls **out, const char *cert_path, const char *key_path,
                 bool allow_insecure_key_permissions)
{
    int rc = 0;
    BIO *cert_in = NULL;
    BIO *key_in = NULL;
    X509 *leaf = NULL;
    EVP_PKEY *pkey = NULL;
    char *chain = NULL;

    if ((rc = read_pem(&cert_in, cert_path, "certificate")) < 0 ||
        (rc = read_key(&key_in, key_path, allow_insecure_key_permissions)) < 0)
        goto out;
    if ((rc = load_chain(&chain, &leaf, cert_in, cert_path)) < 0)
        goto out;
    if ((pkey = PEM_read_bio_PrivateKey(key_in, NULL, no_passphrase, NULL)) ==
        NULL) {
        char why[200] = "";
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof(why));
        ERR_clear_error();
        rc = layer_error_set(LAYER_EINVALID,
                             "key file %s holds no usable private key "
                             "(encrypted keys are not supported): %s",
                             key_path, why);
        goto out;
    }
    if ((rc = check_key_strength(pkey, key_path)) < 0)
        goto out;
    if (X509_check_private_key(leaf, pkey) != 1) {
        ERR_clear_error();
        rc = layer_error_set(LAYER_EINVALID,
                             "the key in %s does not match the certificate "
                             "in %s",
                             key_path, cert_path);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
        rc = layer_error_set(LAYER_EINVALID,
                             "the certificate in %s has expired", cert_path);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
        rc = layer_error_set(LAYER_EINVALID,
                             "the certificate in %s is not valid yet",
                             cert_path);
        goto out;
    }
    rc = identity_new(out, chain, leaf, pkey, false);
    chain = NULL;
out:
    layer_free(chain);
    EVP_PKEY_free(pkey);
    X509_free(leaf);
    BIO_free(key_in);
    BIO_free(cert_in);
    return rc;
}

void srv_tls_free(srv_tls *tls)
{
    if (tls == NULL)
        return;
    if (tls->key_pem != NULL) {
        OPENSSL_cleanse(tls->key_pem, strlen(tls->key_pem));
        layer_free(tls->key_pem);
    }
    layer_free(tls->cert_pem);
    layer_free(tls);
}
