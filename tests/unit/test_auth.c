/*
 * Tests for api/auth.c and api/auth_host.c: Authorization headers (Bearer,
 * Basic, malformed, very long), identities from tokens and client
 * certificates, the decision table (grants, the mutable rule, hidden
 * layers, anonymous requests), atomic policy replacement, and the Host
 * names.
 */
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "layer/error.h"

/* The hex SHA-256 of a token, as `layerd token new` prints it. */
static void digest_hex(char out[65], const char *token)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[32];
    unsigned int n = 0;

    ck_assert(EVP_Digest(token, strlen(token), d, &n, EVP_sha256(), NULL));
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

static api_policy *policy_of(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* A policy from a printf format (token digests substituted by caller). */
static api_policy *policy_of(const char *fmt, ...)
{
    char *doc = NULL;
    va_list ap;
    api_policy *p = NULL;

    va_start(ap, fmt);
    ck_assert(vasprintf(&doc, fmt, ap) > 0);
    va_end(ap);
    ck_assert_msg(api_policy_parse(&p, doc, strlen(doc), "test") == 0, "%s",
                  layer_error_last());
    free(doc);
    return p;
}

/* ---- the header ---- */

static void header_ok(const char *value, api_auth_method want_method,
                      const char *want_token)
{
    char scratch[API_AUTH_HEADER_MAX];
    api_auth_method m = API_AUTH_ANONYMOUS;
    const char *tok = NULL;
    size_t len = 0;

    ck_assert_msg(api_auth_parse_header(&m, &tok, &len, value, scratch) == 0,
                  "'%s': %s", value, layer_error_last());
    ck_assert_int_eq(m, want_method);
    ck_assert_uint_eq(len, strlen(want_token));
    ck_assert(memcmp(tok, want_token, len) == 0);
}

static void header_bad(const char *value, const char *why)
{
    char scratch[API_AUTH_HEADER_MAX];
    api_auth_method m = API_AUTH_ANONYMOUS;
    const char *tok = NULL;
    size_t len = 0;

    ck_assert_msg(api_auth_parse_header(&m, &tok, &len, value, scratch) ==
                      LAYER_EINVALID,
                  "'%s' was accepted", value);
    ck_assert_str_eq(layer_error_last(), why);
}

START_TEST(test_bearer_headers_are_parsed)
{
    header_ok("Bearer abc-DEF_123.~+/", API_AUTH_TOKEN, "abc-DEF_123.~+/");
    header_ok("bearer  abc==", API_AUTH_TOKEN, "abc==");
    header_ok("BEARER abc \t", API_AUTH_TOKEN, "abc");
    header_bad("Bearer", "the Authorization header has no credentials");
    header_bad("Bearer ", "the Authorization header has no credentials");
    header_bad("Bearerabc", "the Authorization scheme is not Bearer or Basic");
    header_bad("Digest abc", "the Authorization scheme is not Bearer or Basic");
    header_bad("", "the Authorization scheme is not Bearer or Basic");
    header_bad("Bearer a b",
               "the Authorization credentials are not a single token");
    header_bad("Bearer a=b",
               "the Authorization credentials are not a single token");
    header_bad("Bearer =abc", "the Authorization credentials are not a token");
    header_bad("Bearer ab\"c",
               "the Authorization credentials are not a single token");
    header_bad("Bearer t\xc3\xa9",
               "the Authorization credentials are not a single token");
}
END_TEST

START_TEST(test_basic_headers_carry_the_token_as_password)
{
    /* "user:tok-1", ":tok-1", "u:p:q" (the password is all after the first
     * colon), unpadded "u:pw" */
    header_ok("Basic dXNlcjp0b2stMQ==", API_AUTH_BASIC, "tok-1");
    header_ok("basic OnRvay0x", API_AUTH_BASIC, "tok-1");
    header_ok("Basic dTpwOnE=", API_AUTH_BASIC, "p:q");
    header_ok("Basic dTpwdw", API_AUTH_BASIC, "pw");
    header_bad("Basic dXNlcg==", "the Basic credentials are not user:password");
    header_bad("Basic dTo=", "the Basic password (the token) is empty");
    header_bad("Basic dXNlcjp0b2stMQ=", "the Basic credentials are not base64");
    header_bad("Basic dXNlcjp0b2stMQ===",
               "the Basic credentials are not base64");
    header_bad("Basic d", "the Basic credentials are not base64");
    /* "dTpwdx": the unused low bits of the last character are not 0 */
    header_bad("Basic dTpwdx", "the Basic credentials are not base64");
    header_bad("Basic dXNl-jp0", "the Basic credentials are not base64");
}
END_TEST

START_TEST(test_very_long_headers_are_malformed_at_once)
{
    size_t n = API_AUTH_HEADER_MAX + 1;
    char *v = malloc(n + 1);

    memcpy(v, "Bearer ", 7);
    memset(v + 7, 'a', n - 7);
    v[n] = '\0';
    header_bad(v, "the Authorization header is longer than 4096 bytes");
    v[API_AUTH_HEADER_MAX] = '\0';
    header_ok(v, API_AUTH_TOKEN, v + 7);
    /* A very long Basic header decodes into the caller's scratch. */
    memcpy(v, "Basic ", 6);
    memset(v + 6, 'Q', API_AUTH_HEADER_MAX - 6);
    memcpy(v + 6, "dTo6", 4); /* "u::" then 0x41... */
    v[API_AUTH_HEADER_MAX - 2] = '\0';
    {
        char scratch[API_AUTH_HEADER_MAX];
        api_auth_method m;
        const char *tok;
        size_t len;

        ck_assert_int_eq(api_auth_parse_header(&m, &tok, &len, v, scratch), 0);
        ck_assert_uint_gt(len, 2000);
    }
    free(v);
}
END_TEST

/* ---- identities ---- */

static char dig_a[65], dig_b[65], dig_c[65];

static api_policy *test_policy(void)
{
    digest_hex(dig_a, "token-a");
    digest_hex(dig_b, "token-b");
    digest_hex(dig_c, "token-c");
    return policy_of(
        "{\"principals\": ["
        " {\"name\": \"agent\", \"tokens_sha256\": [\"%s\", \"%s\"],"
        "  \"grants\": [{\"layers\": [\"base\", \"app-*\"], \"ops\": "
        "[\"list\", \"read\"]}, {\"layers\": [\"*\"], \"ops\": "
        "[\"metrics\"]}]},"
        " {\"name\": \"lister\", \"tokens_sha256\": [\"%s\"],"
        "  \"grants\": [{\"layers\": [\"*\"], \"ops\": [\"list\"]}]},"
        " {\"name\": \"ci\", \"certificates\": [{\"subject_cn\": "
        "\"ci-runner\"},"
        "  {\"san_dns\": \"ci.example\", \"san_uri\": \"spiffe://x/ci\"}],"
        "  \"grants\": [{\"layers\": [\"*\"], \"ops\": [\"list\", \"read\"], "
        "\"mutable\": true}]},"
        " {\"name\": \"pinned\", \"certificates\": [{\"sha256\": "
        "\"0101010101010101010101010101010101010101010101010101010101010101\""
        "}, {\"san_email\": \"ops@example.com\"}]}],"
        " \"anonymous\": {\"grants\": [{\"layers\": [\"pub*\"], \"ops\": "
        "[\"read\"]}]}}",
        dig_a, dig_b, dig_c);
}

static void identify(api_identity *id, api_auth *auth, const char *header,
                     const api_client_cert *cert, const char *want_name,
                     api_auth_method want_method, api_auth_failure want_fail)
{
    api_auth_identify(id, auth, header, cert);
    ck_assert_int_eq(id->method, want_method);
    ck_assert_int_eq(id->failure, want_fail);
    if (want_name == NULL)
        ck_assert_ptr_null(api_identity_name(id));
    else
        ck_assert_str_eq(api_identity_name(id), want_name);
}

START_TEST(test_tokens_name_their_principal)
{
    api_auth *auth = NULL;
    api_identity id;

    ck_assert_int_eq(api_auth_new(&auth, test_policy()), 0);
    identify(&id, auth, "Bearer token-a", NULL, "agent", API_AUTH_TOKEN,
             API_AUTH_FAIL_NONE);
    api_identity_dispose(&id);
    identify(&id, auth, "Bearer token-b", NULL, "agent", API_AUTH_TOKEN,
             API_AUTH_FAIL_NONE);
    api_identity_dispose(&id);
    identify(&id, auth, "Basic dTp0b2tlbi1j", NULL, "lister", API_AUTH_BASIC,
             API_AUTH_FAIL_NONE); /* u:token-c */
    api_identity_dispose(&id);
    identify(&id, auth, "Bearer token-d", NULL, NULL, API_AUTH_TOKEN,
             API_AUTH_FAIL_INVALID_TOKEN);
    api_identity_dispose(&id);
    identify(&id, auth, "Bearer token-a ", NULL, "agent", API_AUTH_TOKEN,
             API_AUTH_FAIL_NONE);
    api_identity_dispose(&id);
    identify(&id, auth, "Bearer token-", NULL, NULL, API_AUTH_TOKEN,
             API_AUTH_FAIL_INVALID_TOKEN);
    api_identity_dispose(&id);
    identify(&id, auth, "Basic dTp0b2tlbi1k", NULL, NULL, API_AUTH_BASIC,
             API_AUTH_FAIL_INVALID_TOKEN);
    api_identity_dispose(&id);
    identify(&id, auth, "Token token-a", NULL, NULL, API_AUTH_ANONYMOUS,
             API_AUTH_FAIL_MALFORMED);
    api_identity_dispose(&id);
    identify(&id, auth, "Basic !!", NULL, NULL, API_AUTH_BASIC,
             API_AUTH_FAIL_MALFORMED);
    api_identity_dispose(&id);
    identify(&id, auth, NULL, NULL, NULL, API_AUTH_ANONYMOUS,
             API_AUTH_FAIL_NONE);
    ck_assert_uint_eq(id.principal, SIZE_MAX);
    api_identity_dispose(&id);
    api_auth_free(auth);
}
END_TEST

START_TEST(test_certificates_map_to_principals)
{
    api_auth *auth = NULL;
    api_identity id;
    api_san sans[] = {{API_SAN_DNS, "CI.Example"},
                      {API_SAN_URI, "spiffe://x/ci"},
                      {API_SAN_EMAIL, "ops@example.com"}};
    api_client_cert c;

    ck_assert_int_eq(api_auth_new(&auth, test_policy()), 0);
    memset(&c, 0, sizeof(c));
    c.verified = true;
    c.subject_cn = "ci-runner";
    identify(&id, auth, NULL, &c, "ci", API_AUTH_MTLS, API_AUTH_FAIL_NONE);
    api_identity_dispose(&id);
    /* The header decides when there is one. */
    identify(&id, auth, "Bearer token-a", &c, "agent", API_AUTH_TOKEN,
             API_AUTH_FAIL_NONE);
    api_identity_dispose(&id);
    identify(&id, auth, "Bearer nope", &c, NULL, API_AUTH_TOKEN,
             API_AUTH_FAIL_INVALID_TOKEN);
    api_identity_dispose(&id);
    /* Every field of a rule must match: the DNS name alone is not enough. */
    c.subject_cn = "someone";
    c.sans = sans;
    c.nsans = 1;
    identify(&id, auth, NULL, &c, NULL, API_AUTH_MTLS,
             API_AUTH_FAIL_UNKNOWN_CERTIFICATE);
    api_identity_dispose(&id);
    c.nsans = 2; /* DNS names compare without case, URIs exactly */
    identify(&id, auth, NULL, &c, "ci", API_AUTH_MTLS, API_AUTH_FAIL_NONE);
    api_identity_dispose(&id);
    sans[1].value = "SPIFFE://x/ci";
    identify(&id, auth, NULL, &c, NULL, API_AUTH_MTLS,
             API_AUTH_FAIL_UNKNOWN_CERTIFICATE);
    api_identity_dispose(&id);
    c.nsans = 3;
    identify(&id, auth, NULL, &c, "pinned", API_AUTH_MTLS, API_AUTH_FAIL_NONE);
    api_identity_dispose(&id);
    c.nsans = 0;
    memset(c.sha256, 1, 32);
    identify(&id, auth, NULL, &c, "pinned", API_AUTH_MTLS, API_AUTH_FAIL_NONE);
    api_identity_dispose(&id);
    /* A certificate that did not verify is refused, token or not. */
    c.verified = false;
    c.subject_cn = "ci-runner";
    identify(&id, auth, NULL, &c, NULL, API_AUTH_MTLS,
             API_AUTH_FAIL_BAD_CERTIFICATE);
    api_identity_dispose(&id);
    identify(&id, auth, "Bearer token-a", &c, NULL, API_AUTH_MTLS,
             API_AUTH_FAIL_BAD_CERTIFICATE);
    api_identity_dispose(&id);
    api_auth_free(auth);
}
END_TEST

/* ---- decisions ---- */

static api_verdict decide(api_auth *auth, const char *header, api_op op,
                          const char *layer, api_mutability m)
{
    api_identity id;
    api_verdict v;

    api_auth_identify(&id, auth, header, NULL);
    v = api_auth_decide(&id, op, layer, m);
    api_identity_dispose(&id);
    return v;
}

START_TEST(test_grants_decide_by_op_glob_and_mutability)
{
    api_auth *auth = NULL;
    const char *a = "Bearer token-a", *l = "Bearer token-c";

    ck_assert_int_eq(api_auth_new(&auth, test_policy()), 0);
    /* the collections */
    ck_assert_int_eq(decide(auth, a, API_OP_LIST, NULL, API_LAYER_UNKNOWN),
                     API_ALLOW);
    ck_assert_int_eq(decide(auth, a, API_OP_METRICS, NULL, API_LAYER_UNKNOWN),
                     API_ALLOW);
    ck_assert_int_eq(decide(auth, l, API_OP_METRICS, NULL, API_LAYER_UNKNOWN),
                     API_DENY_FORBIDDEN);
    /* layers: read where a read grant matches */
    ck_assert_int_eq(decide(auth, a, API_OP_READ, "base", API_LAYER_UNKNOWN),
                     API_ALLOW);
    ck_assert_int_eq(decide(auth, a, API_OP_READ, "app-7", API_LAYER_IMMUTABLE),
                     API_ALLOW);
    /* no grant names it at all: hidden, whatever the op */
    ck_assert_int_eq(decide(auth, a, API_OP_READ, "secret", API_LAYER_UNKNOWN),
                     API_DENY_HIDDEN);
    ck_assert_int_eq(decide(auth, a, API_OP_LIST, "app", API_LAYER_IMMUTABLE),
                     API_DENY_HIDDEN);
    /* listed but not readable: 403, the principal knows it exists */
    ck_assert_int_eq(decide(auth, l, API_OP_READ, "base", API_LAYER_UNKNOWN),
                     API_DENY_FORBIDDEN);
    ck_assert_int_eq(decide(auth, l, API_OP_LIST, "base", API_LAYER_IMMUTABLE),
                     API_ALLOW);
    /* the mutable rule: only grants that say so reach mutable layers */
    ck_assert_int_eq(decide(auth, a, API_OP_READ, "base", API_LAYER_MUTABLE),
                     API_DENY_HIDDEN);
    ck_assert_int_eq(decide(auth, l, API_OP_LIST, "base", API_LAYER_MUTABLE),
                     API_DENY_HIDDEN);
    ck_assert_int_eq(decide(auth, l, API_OP_READ, "base", API_LAYER_MUTABLE),
                     API_DENY_HIDDEN);
    /* refused credentials: 401 whatever is asked */
    ck_assert_int_eq(
        decide(auth, "Bearer x", API_OP_READ, "pub", API_LAYER_UNKNOWN),
        API_DENY_UNAUTHENTICATED);
    ck_assert_int_eq(
        decide(auth, "Basic", API_OP_LIST, NULL, API_LAYER_UNKNOWN),
        API_DENY_UNAUTHENTICATED);
    api_auth_free(auth);
}
END_TEST

START_TEST(test_anonymous_refusals_invite_credentials)
{
    api_auth *auth = NULL;
    api_identity id;

    ck_assert_int_eq(api_auth_new(&auth, test_policy()), 0);
    /* what anonymous has */
    ck_assert_int_eq(
        decide(auth, NULL, API_OP_READ, "public", API_LAYER_IMMUTABLE),
        API_ALLOW);
    /* what it has not: 401, before the store (no existence oracle) */
    ck_assert_int_eq(decide(auth, NULL, API_OP_READ, "base", API_LAYER_UNKNOWN),
                     API_DENY_UNAUTHENTICATED);
    ck_assert_int_eq(decide(auth, NULL, API_OP_LIST, NULL, API_LAYER_UNKNOWN),
                     API_DENY_UNAUTHENTICATED);
    ck_assert_int_eq(
        decide(auth, NULL, API_OP_METRICS, NULL, API_LAYER_UNKNOWN),
        API_DENY_UNAUTHENTICATED);
    /* after the store: a mutable layer stays a 404 */
    ck_assert_int_eq(
        decide(auth, NULL, API_OP_READ, "public", API_LAYER_MUTABLE),
        API_DENY_HIDDEN);
    /* reasons counted */
    api_auth_identify(&id, auth, NULL, NULL);
    ck_assert_int_eq(api_auth_reason(&id, API_DENY_UNAUTHENTICATED),
                     API_AUTH_FAIL_MISSING);
    ck_assert_int_eq(api_auth_reason(&id, API_DENY_FORBIDDEN),
                     API_AUTH_FAIL_FORBIDDEN);
    ck_assert_int_eq(api_auth_reason(&id, API_DENY_HIDDEN), API_AUTH_FAIL_NONE);
    api_identity_dispose(&id);
    api_auth_identify(&id, auth, "Bearer z", NULL);
    ck_assert_int_eq(api_auth_reason(&id, API_DENY_UNAUTHENTICATED),
                     API_AUTH_FAIL_INVALID_TOKEN);
    api_identity_dispose(&id);
    api_auth_free(auth);
}
END_TEST

START_TEST(test_without_a_policy_file_anonymous_reads_immutable_layers)
{
    api_policy *p = NULL;
    api_auth *auth = NULL;

    ck_assert_int_eq(api_policy_new_default(&p), 0);
    ck_assert_int_eq(api_auth_new(&auth, p), 0);
    ck_assert_int_eq(decide(auth, NULL, API_OP_LIST, NULL, API_LAYER_UNKNOWN),
                     API_ALLOW);
    ck_assert_int_eq(
        decide(auth, NULL, API_OP_METRICS, NULL, API_LAYER_UNKNOWN), API_ALLOW);
    ck_assert_int_eq(decide(auth, NULL, API_OP_READ, "x", API_LAYER_UNKNOWN),
                     API_ALLOW);
    ck_assert_int_eq(decide(auth, NULL, API_OP_READ, "x", API_LAYER_IMMUTABLE),
                     API_ALLOW);
    /* mutable layers are served to nobody; with nobody to authenticate
     * as, not even a 401 */
    ck_assert_int_eq(decide(auth, NULL, API_OP_READ, "x", API_LAYER_MUTABLE),
                     API_DENY_HIDDEN);
    ck_assert_int_eq(decide(auth, NULL, API_OP_LIST, "x", API_LAYER_MUTABLE),
                     API_DENY_HIDDEN);
    /* credentials cannot be checked against no principals: refused */
    ck_assert_int_eq(
        decide(auth, "Bearer x", API_OP_READ, "x", API_LAYER_UNKNOWN),
        API_DENY_UNAUTHENTICATED);
    api_auth_free(auth);
}
END_TEST

START_TEST(test_a_replaced_policy_lives_on_in_running_requests)
{
    api_auth *auth = NULL;
    api_identity before, after;

    ck_assert_int_eq(api_auth_new(&auth, test_policy()), 0);
    api_auth_identify(&before, auth, "Bearer token-a", NULL);
    api_auth_replace(auth, policy_of("{\"principals\": [{\"name\": \"new\", "
                                     "\"tokens_sha256\": [\"%s\"]}]}",
                                     dig_b));
    /* the running request keeps its policy, name and grants */
    ck_assert_str_eq(api_identity_name(&before), "agent");
    ck_assert_int_eq(
        api_auth_decide(&before, API_OP_READ, "base", API_LAYER_IMMUTABLE),
        API_ALLOW);
    /* new requests see the new one: token-a is gone, token-b moved */
    api_auth_identify(&after, auth, "Bearer token-a", NULL);
    ck_assert_int_eq(after.failure, API_AUTH_FAIL_INVALID_TOKEN);
    api_identity_dispose(&after);
    api_auth_identify(&after, auth, "Bearer token-b", NULL);
    ck_assert_str_eq(api_identity_name(&after), "new");
    ck_assert_int_eq(
        api_auth_decide(&after, API_OP_READ, "base", API_LAYER_IMMUTABLE),
        API_DENY_HIDDEN);
    api_identity_dispose(&after);
    api_identity_dispose(&before);
    api_auth_free(auth);
}
END_TEST

START_TEST(test_names_of_methods_and_reasons)
{
    ck_assert_str_eq(api_auth_method_name(API_AUTH_ANONYMOUS), "anonymous");
    ck_assert_str_eq(api_auth_method_name(API_AUTH_TOKEN), "token");
    ck_assert_str_eq(api_auth_method_name(API_AUTH_BASIC), "basic");
    ck_assert_str_eq(api_auth_method_name(API_AUTH_MTLS), "mtls");
    ck_assert_str_eq(api_auth_failure_name(API_AUTH_FAIL_MISSING), "missing");
    ck_assert_str_eq(api_auth_failure_name(API_AUTH_FAIL_INVALID_TOKEN),
                     "invalid_token");
    ck_assert_str_eq(api_auth_failure_name(API_AUTH_FAIL_FORBIDDEN),
                     "forbidden");
}
END_TEST

/* ---- Host names ---- */

START_TEST(test_host_names_match_names_and_addresses)
{
    static const char *const names[] = {"localhost",   "127.0.0.1",
                                        "[::1]",       "Layerd.Example.",
                                        "*.svc.local", "10.0.0.7"};
    static const char *const good[] = {
        "localhost",   "LOCALHOST:8443", "localhost.",     "127.0.0.1:1",
        "[::1]:8443",  "[0:0::1]",       "layerd.example", "layerd.example:443",
        "a.svc.local", "10.0.0.7:8443"};
    static const char *const foreign[] = {
        "evil.example", "evil.example:8443", "127.0.0.2",      "[::2]",
        "svc.local",    "a.b.svc.local",     "localhost.evil", "10.0.0.70"};
    static const char *const malformed[] = {
        "",     "localhost:", "localhost:x", "localhost:123456",
        "[::1", "[::1]x",     "[localhost]", "a b",
        "a..b", "::1",        "exa_mple@x"};
    api_hostnames *h = NULL;

    ck_assert_int_eq(api_hostnames_new(&h, names, 6), 0);
    ck_assert_uint_eq(api_hostnames_count(h), 6);
    ck_assert_str_eq(api_hostnames_name(h, 2), "::1");
    ck_assert_str_eq(api_hostnames_name(h, 3), "layerd.example");
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(api_hostnames_check(h, good[i]) == 0, "%s: %s", good[i],
                      layer_error_last());
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
        ck_assert_msg(api_hostnames_check(h, foreign[i]) == LAYER_ENOTFOUND,
                      "%s", foreign[i]);
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
        ck_assert_msg(api_hostnames_check(h, malformed[i]) == LAYER_EINVALID,
                      "%s", malformed[i]);
    /* a name given twice is kept once; bad names are refused */
    ck_assert_int_eq(api_hostnames_add(h, "LOCALHOST"), 0);
    ck_assert_uint_eq(api_hostnames_count(h), 6);
    ck_assert_int_eq(api_hostnames_add(h, "bad name"), LAYER_EINVALID);
    ck_assert_int_eq(api_hostnames_add(h, "*"), LAYER_EINVALID);
    api_hostnames_free(h);
}
END_TEST

static Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("credentials");

    tcase_add_test(tc, test_bearer_headers_are_parsed);
    tcase_add_test(tc, test_basic_headers_carry_the_token_as_password);
    tcase_add_test(tc, test_very_long_headers_are_malformed_at_once);
    tcase_add_test(tc, test_tokens_name_their_principal);
    tcase_add_test(tc, test_certificates_map_to_principals);
    suite_add_tcase(s, tc);
    tc = tcase_create("decisions");
    tcase_add_test(tc, test_grants_decide_by_op_glob_and_mutability);
    tcase_add_test(tc, test_anonymous_refusals_invite_credentials);
    tcase_add_test(tc,
                   test_without_a_policy_file_anonymous_reads_immutable_layers);
    tcase_add_test(tc, test_a_replaced_policy_lives_on_in_running_requests);
    tcase_add_test(tc, test_names_of_methods_and_reasons);
    suite_add_tcase(s, tc);
    tc = tcase_create("hosts");
    tcase_add_test(tc, test_host_names_match_names_and_addresses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(auth_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
