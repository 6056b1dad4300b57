/*
 * Tests for server/auth_names.c: which listen addresses are loopback ones
 * (the safe defaults depend on it), and the names the Host check accepts:
 * localhost, the listen hosts and their addresses (every interface's for
 * a wildcard), the certificate's DNS and IP names, --server-name.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "auth.h"
#include "fixture.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "tls.h"

/* A list of listen addresses or names from a NULL-terminated array. */
static srv_config_listen list_of(const char *const *v)
{
    srv_config_listen l;

    memset(&l, 0, sizeof(l));
    for (; *v != NULL; v++)
        l.v[l.n++] = (char *)*v;
    return l;
}

static void loopback_is(bool want, const char *want_which,
                        const char *const *specs)
{
    srv_config_listen l = list_of(specs);
    bool lo = !want;
    const char *which = NULL;

    ck_assert_msg(srv_auth_listen_loopback(&lo, &which, &l) == 0, "%s",
                  layer_error_last());
    ck_assert_msg(lo == want, "%s: loopback %d", specs[0], lo);
    if (want_which == NULL)
        ck_assert_ptr_null(which);
    else
        ck_assert_str_eq(which, want_which);
}

START_TEST(test_only_loopback_addresses_are_loopback)
{
    loopback_is(true, NULL, (const char *[]){"127.0.0.1:0", NULL});
    loopback_is(true, NULL,
                (const char *[]){"127.3.2.1:8443", "[::1]:0", NULL});
    loopback_is(true, NULL, (const char *[]){"localhost:0", NULL});
    loopback_is(false, "0.0.0.0:8443",
                (const char *[]){"127.0.0.1:0", "0.0.0.0:8443", NULL});
    loopback_is(false, "[::]:0", (const char *[]){"[::]:0", NULL});
    loopback_is(false, "*:0", (const char *[]){"*:0", NULL});
    loopback_is(false, ":8443", (const char *[]){":8443", NULL});
    loopback_is(false, "10.255.255.1:0",
                (const char *[]){"10.255.255.1:0", NULL});
    loopback_is(false, "[::ffff:10.0.0.1]:0",
                (const char *[]){"[::ffff:10.0.0.1]:0", NULL});
    loopback_is(true, NULL, (const char *[]){"[::ffff:127.0.0.1]:0", NULL});
    {
        srv_config_listen l =
            list_of((const char *[]){"nohost.invalid:1", NULL});
        bool lo;
        const char *which;

        ck_assert_int_eq(srv_auth_listen_loopback(&lo, &which, &l),
                         LAYER_EINVALID);
        ck_assert(strstr(layer_error_last(),
                         "cannot resolve nohost.invalid:1") != NULL);
    }
}
END_TEST

static bool has(const api_hostnames *h, const char *host)
{
    return api_hostnames_check(h, host) == 0;
}

START_TEST(test_names_are_localhost_the_listen_hosts_and_given_ones)
{
    srv_config_listen l =
        list_of((const char *[]){"127.0.0.1:0", "[::1]:8443", NULL});
    srv_config_listen n =
        list_of((const char *[]){"layerd.example", "*.svc.local", NULL});
    api_hostnames *h = NULL;

    ck_assert_int_eq(srv_auth_hostnames(&h, &l, &n, NULL), 0);
    ck_assert(has(h, "localhost:8443"));
    ck_assert(has(h, "127.0.0.1:1234"));
    ck_assert(has(h, "[::1]"));
    ck_assert(has(h, "layerd.example"));
    ck_assert(has(h, "x.svc.local"));
    ck_assert(!has(h, "127.0.0.2"));
    ck_assert(!has(h, "evil.example"));
    api_hostnames_free(h);

    /* a wildcard listener: every interface address, loopback included */
    l = list_of((const char *[]){"0.0.0.0:0", NULL});
    ck_assert_int_eq(srv_auth_hostnames(&h, &l, NULL, NULL), 0);
    ck_assert(has(h, "127.0.0.1"));
    ck_assert(!has(h, "0.0.0.0"));
    ck_assert(!has(h, "evil.example"));
    api_hostnames_free(h);

    /* a name listens under its name and its addresses */
    l = list_of((const char *[]){"localhost:0", NULL});
    ck_assert_int_eq(srv_auth_hostnames(&h, &l, NULL, NULL), 0);
    ck_assert(has(h, "127.0.0.1"));
    api_hostnames_free(h);
}
END_TEST

START_TEST(test_the_certificate_names_are_names_of_the_server)
{
    srv_config_listen l = list_of((const char *[]){"127.0.0.1:0", NULL});
    srv_tls *tls = NULL;
    api_hostnames *h = NULL;
    char *dir = fx_tmpdir(), *cmd, *crt, *key;

    /* the ephemeral certificate: localhost, 127.0.0.1, ::1 */
    ck_assert_int_eq(srv_tls_generate(&tls, 1), 0);
    ck_assert_int_eq(srv_auth_hostnames(&h, &l, NULL, tls->cert_pem), 0);
    ck_assert(has(h, "[::1]:8443"));
    api_hostnames_free(h);
    srv_tls_free(tls);

    crt = fx_path(dir, "c.pem");
    key = fx_path(dir, "k.pem");
    ck_assert(asprintf(&cmd,
                       "openssl req -x509 -newkey ec -pkeyopt "
                       "ec_paramgen_curve:P-256 -nodes -keyout '%s' -out '%s' "
                       "-days 1 -subj /CN=ignored.example -addext "
                       "subjectAltName=DNS:layerd.example,DNS:*.layers."
                       "example,IP:10.9.8.7,email:a@b.example "
                       ">/dev/null 2>&1",
                       key, crt) > 0);
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
    ck_assert_int_eq(srv_tls_load(&tls, crt, key, false), 0);
    ck_assert_int_eq(srv_auth_hostnames(&h, &l, NULL, tls->cert_pem), 0);
    ck_assert(has(h, "layerd.example"));
    ck_assert(has(h, "eu.layers.example:443"));
    ck_assert(has(h, "10.9.8.7"));
    /* the CN is not a name when there are SANs; an email never is */
    ck_assert(!has(h, "ignored.example"));
    ck_assert(!has(h, "b.example"));
    api_hostnames_free(h);
    srv_tls_free(tls);
    /* what is not a certificate is refused */
    ck_assert_int_eq(srv_auth_hostnames(&h, &l, NULL, "not a PEM"),
                     LAYER_EINVALID);
    fx_rm_rf(dir);
    free(crt);
    free(key);
    free(dir);
}
END_TEST

static Suite *names_suite(void)
{
    Suite *s = suite_create("auth_names");
    TCase *tc = tcase_create("names");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_only_loopback_addresses_are_loopback);
    tcase_add_test(tc,
                   test_names_are_localhost_the_listen_hosts_and_given_ones);
    tcase_add_test(tc, test_the_certificate_names_are_names_of_the_server);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(names_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
