/*
 * Tests of server/tls.c's checks on configured key material: RSA and EC
 * keys of at least 2048 and 256 bits (and Ed25519) load, weaker ones are
 * refused with a message that says why; a key file its group or others
 * may read or write is refused unless allowed; a certificate or key path
 * that is not a regular file (a FIFO, a directory) is refused at once,
 * without blocking. The key pairs and self-signed certificates are made
 * here with OpenSSL.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fixture.h"
#include "layer/error.h"
#include "tls.h"

/* A test that would block fails by this alarm instead of hanging. */
#define HANG_GUARD_SECONDS 10

static char *dir;

static void setup(void)
{
    dir = fx_tmpdir();
}

static void teardown(void)
{
    fx_rm_rf(dir);
    free(dir);
}

/* Write DIR/NAME.key (mode key_mode) and a self-signed DIR/NAME.crt for
 * pkey (taken). */
static void write_pair(const char *name, EVP_PKEY *pkey, mode_t key_mode)
{
    char path[4096];
    X509 *cert = X509_new();
    const EVP_MD *md;
    FILE *f;
    int fd;

    ck_assert_ptr_nonnull(pkey);
    ck_assert_ptr_nonnull(cert);
    ck_assert(X509_set_version(cert, 2));
    ck_assert(ASN1_INTEGER_set(X509_get_serialNumber(cert), 1));
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(cert), -3600));
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(cert), 86400));
    ck_assert(X509_NAME_add_entry_by_txt(
        X509_get_subject_name(cert), "CN", MBSTRING_ASC,
        (const unsigned char *)"localhost", -1, -1, 0));
    ck_assert(X509_set_issuer_name(cert, X509_get_subject_name(cert)));
    ck_assert(X509_set_pubkey(cert, pkey));
    /* EdDSA signs without a separate digest */
    md = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    ck_assert_int_gt(X509_sign(cert, pkey, md), 0);

    snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert(PEM_write_X509(f, cert));
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    ck_assert_int_eq(chmod(path, key_mode), 0);
    X509_free(cert);
    EVP_PKEY_free(pkey);
}

/* srv_tls_load() of DIR/CERT and DIR/KEY. */
static int load(const char *cert, const char *key, bool allow)
{
    char cp[4096], kp[4096];
    srv_tls *tls = NULL;
    int rc;

    snprintf(cp, sizeof(cp), "%s/%s", dir, cert);
    snprintf(kp, sizeof(kp), "%s/%s", dir, key);
    rc = srv_tls_load(&tls, cp, kp, allow);
    if (rc == 0) {
        ck_assert_ptr_nonnull(tls);
        ck_assert_ptr_nonnull(strstr(tls->key_pem, "PRIVATE KEY"));
        srv_tls_free(tls);
    }
    return rc;
}

static void assert_refused(const char *cert, const char *key, bool allow,
                           const char *want)
{
    int rc = load(cert, key, allow);

    ck_assert_msg(rc == LAYER_EINVALID, "%s: %d (%s)", key, rc,
                  layer_error_last());
    ck_assert_msg(strstr(layer_error_last(), want) != NULL, "'%s' lacks '%s'",
                  layer_error_last(), want);
}

START_TEST(test_strong_keys_load)
{
    write_pair("rsa2048", EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
               0600);
    write_pair("p256", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), 0600);
    write_pair("p384", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"), 0400);
    write_pair("ed25519", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), 0600);
    ck_assert_int_eq(load("rsa2048.crt", "rsa2048.key", false), 0);
    ck_assert_int_eq(load("p256.crt", "p256.key", false), 0);
    ck_assert_int_eq(load("p384.crt", "p384.key", false), 0);
    ck_assert_int_eq(load("ed25519.crt", "ed25519.key", false), 0);
}
END_TEST

START_TEST(test_weak_keys_are_refused)
{
    EVP_PKEY *p192 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-192");

    write_pair("rsa1024", EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024),
               0600);
    assert_refused("rsa1024.crt", "rsa1024.key", false,
                   "is RSA with 1024 bits; at least 2048 are required");
    /* this OpenSSL still makes P-192 keys; the smallest curve it refuses
     * to make would do as well */
    ck_assert_ptr_nonnull(p192);
    write_pair("p192", p192, 0600);
    assert_refused("p192.crt", "p192.key", false,
                   "is on a 192-bit elliptic curve; at least 256 bits");
    /* allowing loose permissions does not allow weak keys */
    assert_refused("rsa1024.crt", "rsa1024.key", true, "1024 bits");
}
END_TEST

START_TEST(test_key_files_others_can_read_are_refused_unless_allowed)
{
    static const mode_t loose[] = {0644, 0640, 0604, 0620, 0602};
    char path[4096];

    write_pair("k", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), 0600);
    ck_assert_int_eq(load("k.crt", "k.key", false), 0);
    snprintf(path, sizeof(path), "%s/k.key", dir);
    for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
        char want[64];

        ck_assert_int_eq(chmod(path, loose[i]), 0);
        snprintf(want, sizeof(want), "has mode %04o: its group or others",
                 (unsigned)loose[i]);
        assert_refused("k.crt", "k.key", false, want);
        ck_assert_ptr_nonnull(
            strstr(layer_error_last(), "--allow-insecure-key-permissions"));
        ck_assert_int_eq(load("k.crt", "k.key", true), 0);
    }
    /* the certificate is public: its mode does not matter */
    snprintf(path, sizeof(path), "%s/k.crt", dir);
    ck_assert_int_eq(chmod(path, 0644), 0);
    snprintf(path, sizeof(path), "%s/k.key", dir);
    ck_assert_int_eq(chmod(path, 0400), 0);
    ck_assert_int_eq(load("k.crt", "k.key", false), 0);
}
END_TEST

START_TEST(test_paths_that_are_not_regular_files_are_refused_at_once)
{
    char path[4096];
    srv_tls *tls = NULL;

    write_pair("k", EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), 0600);
    fx_fifo(dir, "fifo");
    fx_mkdir(dir, "sub", 0700);
    /* a FIFO without a writer would block open() and read() */
    alarm(HANG_GUARD_SECONDS);
    assert_refused("k.crt", "fifo", false, "key file ");
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "is not a regular file"));
    assert_refused("fifo", "k.key", false, "certificate file ");
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "is not a regular file"));
    alarm(0);
    assert_refused("k.crt", "sub", true, "is not a regular file");
    snprintf(path, sizeof(path), "%s/missing.key", dir);
    ck_assert_int_eq(srv_tls_load(&tls, path, path, false), LAYER_ENOTFOUND);
    ck_assert_ptr_null(tls);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("keys");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_strong_keys_load);
    tcase_add_test(tc, test_weak_keys_are_refused);
    tcase_add_test(tc,
                   test_key_files_others_can_read_are_refused_unless_allowed);
    tcase_add_test(tc,
                   test_paths_that_are_not_regular_files_are_refused_at_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tls_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
