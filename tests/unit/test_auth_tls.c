/*
 * Tests for server/auth_tls.c that need no TLS connection: the --client-ca
 * bundle is read and checked with GnuTLS before the server starts, and a
 * connection without a session has no certificate. Verification of real
 * client certificates (good, expired, of another CA, none) is tested over
 * TLS in tests/integration/test_auth_mtls.sh.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "fixture.h"
#include "layer/alloc.h"
#include "layer/error.h"

START_TEST(test_the_client_ca_bundle_is_checked)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "ca.pem"), *cmd;
    char *pem = NULL;
    unsigned n = 0;

    ck_assert_int_eq(srv_auth_load_client_ca(&pem, &n, path), LAYER_ENOTFOUND);
    ck_assert(strstr(layer_error_last(), path) != NULL);
    fx_file(dir, "ca.pem", "not a certificate\n", 0644);
    ck_assert_int_eq(srv_auth_load_client_ca(&pem, &n, path), LAYER_EINVALID);
    ck_assert(strstr(layer_error_last(), "no PEM certificates") != NULL);
    ck_assert(asprintf(&cmd,
                       "cd '%s' && for i in 1 2; do openssl req -x509 "
                       "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                       "-keyout k$i.pem -out c$i.pem -days 1 -subj /CN=ca$i "
                       ">/dev/null 2>&1 || exit 1; done && cat c1.pem c2.pem "
                       ">ca.pem",
                       dir) > 0);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    ck_assert_int_eq(srv_auth_load_client_ca(&pem, &n, path), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert(strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) == 0);
    layer_free(pem);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_no_session_means_no_certificate)
{
    srv_peer peer = SRV_PEER_INIT;

    ck_assert_ptr_null(srv_peer_cert(&peer, NULL));
    ck_assert(peer.done);
    ck_assert_ptr_null(srv_peer_cert(&peer, NULL)); /* cached */
    srv_peer_dispose(&peer);
    ck_assert(!peer.done);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("auth_tls");
    TCase *tc = tcase_create("client_ca");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_the_client_ca_bundle_is_checked);
    tcase_add_test(tc, test_no_session_means_no_certificate);
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
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
