/*
 * Tests for api/auth_policy.c: policy documents are parsed strictly and
 * every refusal names its key path; token digests are never quoted; the
 * glob syntax is checked and matched as fnmatch(3) without flags.
 */
#include <check.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/auth_int.h"
#include "api/auth.h"
#include "fixture.h"
#include "layer/error.h"

#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"

/* Parse text, expecting code; on failure, the message must be want. */
static api_policy *parse(const char *text, int code, const char *want)
{
    api_policy *p = NULL;
    int rc = api_policy_parse(&p, text, strlen(text), "p.json");

    ck_assert_msg(rc == code, "%s: %d, expected %d (%s)", text, rc, code,
                  layer_error_last());
    if (rc < 0) {
        ck_assert_ptr_null(p);
        if (want != NULL)
            ck_assert_str_eq(layer_error_last(), want);
    }
    return p;
}

START_TEST(test_a_full_policy_is_read)
{
    api_policy *p = parse(
        "{\"comment\": \"agents and CI\", \"principals\": ["
        " {\"name\": \"agent-1\", \"tokens_sha256\": [\"" D1 "\", \"" D2 "\"],"
        "  \"grants\": [{\"layers\": [\"base\", \"app-*\"], \"ops\": [\"list\","
        "  \"read\"]}]},"
        " {\"name\": \"ci\", \"certificates\": [{\"subject_cn\": "
        "\"ci-runner\"},"
        "  {\"san_dns\": \"ci.example\", \"comment\": \"the new one\"},"
        "  {\"sha256\": \"AB:" D1 "\"}],"
        "  \"grants\": [{\"layers\": [\"*\"], \"ops\": [\"list\", \"read\","
        "  \"metrics\"], \"mutable\": true}]}],"
        " \"anonymous\": {\"grants\": []}}",
        LAYER_EINVALID, NULL);

    /* the colon form needs 32 pairs: that one was not */
    ck_assert(strstr(layer_error_last(),
                     "principals[1].certificates[2].sha256: not a SHA-256 "
                     "fingerprint") != NULL);
    p = parse("{\"principals\": ["
              " {\"name\": \"agent-1\", \"tokens_sha256\": [\"" D1 "\", \"" D2
              "\"],"
              "  \"grants\": [{\"layers\": [\"base\", \"app-*\"], \"ops\": "
              "[\"list\", \"read\"]}]},"
              " {\"name\": \"ci\", \"certificates\": [{\"subject_cn\": "
              "\"ci-runner\", \"san_uri\": \"spiffe://x/ci\"},"
              "  {\"sha256\": \"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:"
              "89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89\"}],"
              "  \"grants\": [{\"layers\": [\"*\"], \"ops\": [\"metrics\"], "
              "\"mutable\": true}]}],"
              " \"anonymous\": {\"grants\": [{\"layers\": [\"pub\"], \"ops\": "
              "[\"read\"]}]}}",
              0, NULL);
    ck_assert_uint_eq(api_policy_principal_count(p), 2);
    ck_assert_uint_eq(p->ntokens, 2);
    ck_assert_uint_eq(p->tokens[0].principal, 0);
    ck_assert_uint_eq(p->tokens[1].digest[0], 0x22);
    ck_assert_str_eq(p->principals[0].name, "agent-1");
    ck_assert_uint_eq(p->principals[0].grants[0].nlayers, 2);
    ck_assert_uint_eq(p->principals[0].grants[0].ops,
                      API_OP_LIST | API_OP_READ);
    ck_assert(!p->principals[0].grants[0].mutable_);
    ck_assert_uint_eq(p->principals[1].ncerts, 2);
    ck_assert_str_eq(p->principals[1].certs[0].subject_cn, "ci-runner");
    ck_assert_str_eq(p->principals[1].certs[0].san_uri, "spiffe://x/ci");
    ck_assert(p->principals[1].certs[1].has_sha256);
    ck_assert_uint_eq(p->principals[1].certs[1].sha256[0], 0xab);
    ck_assert_uint_eq(p->principals[1].certs[1].sha256[31], 0x89);
    ck_assert(p->principals[1].grants[0].mutable_);
    ck_assert_uint_eq(p->nanonymous, 1);
    api_policy_release(p);
}
END_TEST

START_TEST(test_refusals_name_the_key_path)
{
    static const struct {
        const char *doc, *msg;
    } cases[] = {
        {"[]", "p.json: the policy must be a JSON object"},
        {"{\"principal\": []}", "p.json: unknown key 'principal'"},
        {"{\"principals\": {}}", "p.json: principals: must be an array"},
        {"{\"anonymous\": []}", "p.json: anonymous: must be an object"},
        {"{\"anonymous\": {\"grant\": []}}",
         "p.json: anonymous: unknown key 'grant'"},
        {"{\"comment\": 5}", "p.json: comment: must be a string"},
        {"{\"principals\": [7]}",
         "p.json: principals[0]: a principal must be an object"},
        {"{\"principals\": [{\"tokens_sha256\": [\"" D1 "\"]}]}",
         "p.json: principals[0]: missing 'name'"},
        {"{\"principals\": [{\"name\": \"\", \"tokens_sha256\": [\"" D1
         "\"]}]}",
         "p.json: principals[0].name: must be 1 to 128 printable ASCII "
         "characters, without leading or trailing spaces"},
        {"{\"principals\": [{\"name\": \"a\", \"tokens_sha256\": [\"" D1
         "\"]}, {\"name\": \"a\", \"tokens_sha256\": [\"" D2 "\"]}]}",
         "p.json: principals[1].name: 'a' is also the name of "
         "principals[0]"},
        {"{\"principals\": [{\"name\": \"a\", \"tokens_sha256\": [\"" D1
         "\"]}, {\"name\": \"b\", \"tokens_sha256\": [\"" D2 "\", \"" D1
         "\"]}]}",
         "p.json: principals[1].tokens_sha256[1]: the same digest as "
         "principals[0].tokens_sha256[0]: a token must name one principal"},
        {"{\"principals\": [{\"name\": \"a\"}]}",
         "p.json: principals[0]: principal 'a' has no tokens_sha256 and no "
         "certificates: nobody could authenticate as it"},
        {"{\"principals\": [{\"name\": \"a\", \"certificates\": [{}]}]}",
         "p.json: principals[0].certificates[0]: a certificate rule needs "
         "subject_cn, san_dns, san_uri, san_email or sha256"},
        {"{\"principals\": [{\"name\": \"a\", \"certificates\": "
         "[{\"cn\": \"x\"}]}]}",
         "p.json: principals[0].certificates[0]: unknown key 'cn'"},
        {"{\"principals\": [{\"name\": \"a\", \"certificates\": "
         "[{\"san_dns\": \"\"}]}]}",
         "p.json: principals[0].certificates[0].san_dns: must be a "
         "non-empty string"},
        {"{\"principals\": [{\"name\": \"a\", \"tokens_sha256\": [\"" D1
         "\"], \"grants\": {}}]}",
         "p.json: principals[0].grants: must be an array"},
        {"{\"principals\": [{\"name\": \"a\", \"tokens_sha256\": [\"" D1
         "\"], \"grants\": [{\"layers\": [\"x\"]}]}]}",
         "p.json: principals[0].grants[0]: missing 'ops'"},
        {"{\"principals\": [{\"name\": \"a\", \"tokens_sha256\": [\"" D1
         "\"], \"grants\": [{\"layers\": [], \"ops\": [\"read\"]}]}]}",
         "p.json: principals[0].grants[0].layers: empty: a grant names at "
         "least one"},
        {"{\"principals\": [{\"name\": \"a\", \"tokens_sha256\": [\"" D1
         "\"], \"grants\": [{\"layers\": [\"x\"], \"ops\": [\"list\", "
         "\"read\", \"write\"]}]}]}",
         "p.json: principals[0].grants[0].ops[2]: unknown op 'write' "
         "(expected list, read or metrics)"},
        {"{\"anonymous\": {\"grants\": [{\"layers\": [\"x\"], \"ops\": "
         "[\"read\", \"read\"]}]}}",
         "p.json: anonymous.grants[0].ops[1]: 'read' is given twice"},
        {"{\"anonymous\": {\"grants\": [{\"layers\": [\"app-[\"], \"ops\": "
         "[\"read\"]}]}}",
         "p.json: anonymous.grants[0].layers[0]: bad glob 'app-[': glob has "
         "a '[' without its ']'"},
        {"{\"anonymous\": {\"grants\": [{\"layers\": [5], \"ops\": "
         "[\"read\"]}]}}",
         "p.json: anonymous.grants[0].layers[0]: must be a string (a glob)"},
        {"{\"anonymous\": {\"grants\": [{\"layers\": [\"x\"], \"ops\": "
         "[\"read\"], \"mutable\": \"yes\"}]}}",
         "p.json: anonymous.grants[0].mutable: must be true or false"},
        {"{\"anonymous\": {\"grants\": [{\"layers\": [\"x\"], \"ops\": "
         "[\"read\"], \"extra\": 1}]}}",
         "p.json: anonymous.grants[0]: unknown key 'extra'"},
        {"{\"principals\": [], \"principals\": []}",
         "p.json: line 1, column 31: invalid JSON: duplicate object key"},
        {"{\"principals\": [", NULL},
        {"", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        (void)parse(cases[i].doc, LAYER_EINVALID, cases[i].msg);
        ck_assert_msg(strncmp(layer_error_last(), "p.json: ", 8) == 0, "%s",
                      layer_error_last());
    }
}
END_TEST

START_TEST(test_token_digests_are_never_quoted)
{
    /* A raw token pasted where its digest belongs, in a value, near a
     * syntax error, and as a digest of the wrong length. */
    static const char secret[] = "s3cr3t-T0ken_value";
    const char *docs[] = {
        "{\"principals\": [{\"name\": \"a\", \"tokens_sha256\": "
        "[\"s3cr3t-T0ken_value\"]}]}",
        "{\"principals\": [{\"name\": \"a\", \"tokens_sha256\": "
        "[s3cr3t-T0ken_value]}]}",
        "{\"principals\": [{\"name\": \"a\", \"tokens_sha256\": "
        "[\"s3cr3t-T0ken_value" D1 "\"]}]}",
    };

    for (size_t i = 0; i < 3; i++) {
        (void)parse(docs[i], LAYER_EINVALID, NULL);
        ck_assert_msg(strstr(layer_error_last(), secret) == NULL, "%s",
                      layer_error_last());
        ck_assert_msg(strstr(layer_error_last(), "s3cr3t") == NULL, "%s",
                      layer_error_last());
    }
    ck_assert_str_eq(layer_error_last(),
                     "p.json: principals[0].tokens_sha256[0]: not a SHA-256 "
                     "digest of a token (64 hex digits; 'layerd token new' "
                     "prints a token and its digest)");
}
END_TEST

START_TEST(test_caps_are_enforced)
{
    char *doc = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&doc, &len);

    fputs("{\"anonymous\": {\"grants\": [{\"ops\": [\"read\"], \"layers\": [",
          f);
    for (int i = 0; i <= API_POLICY_MAX_ITEMS; i++)
        fprintf(f, "%s\"l%d\"", i ? "," : "", i);
    fputs("]}]}}", f);
    fclose(f);
    (void)parse(doc, LAYER_ETOOBIG,
                "p.json: anonymous.grants[0].layers: more than 256 items");
    free(doc);
}
END_TEST

START_TEST(test_the_default_policy_reads_immutable_layers)
{
    api_policy *p = NULL;

    ck_assert_int_eq(api_policy_new_default(&p), 0);
    ck_assert_uint_eq(api_policy_principal_count(p), 0);
    ck_assert_uint_eq(p->nanonymous, 1);
    ck_assert_uint_eq(p->anonymous[0].ops, API_OP__ALL);
    ck_assert(!p->anonymous[0].mutable_);
    ck_assert_str_eq(p->anonymous[0].layers[0], "*");
    api_policy_release(p);
}
END_TEST

START_TEST(test_a_policy_file_is_read_with_its_path_in_messages)
{
    char *dir = fx_tmpdir(), *path = fx_path(dir, "policy.json");
    api_policy *p = NULL;

    ck_assert_int_eq(api_policy_load(&p, path), LAYER_ENOTFOUND);
    ck_assert(strstr(layer_error_last(), path) != NULL);
    fx_file(dir, "policy.json", "{\"anonymous\": 1}", 0600);
    ck_assert_int_eq(api_policy_load(&p, path), LAYER_EINVALID);
    ck_assert(strncmp(layer_error_last(), path, strlen(path)) == 0);
    ck_assert(strstr(layer_error_last(), ": anonymous: must be an object") !=
              NULL);
    fx_file(dir, "policy.json", "{\"anonymous\": {}}", 0600);
    ck_assert_int_eq(api_policy_load(&p, path), 0);
    api_policy_release(p);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_the_sample_policy_of_deploy_is_valid)
{
    char *path = NULL;
    api_policy *p = NULL;

    ck_assert(asprintf(&path, "%s/deploy/policy.example.json",
                       getenv("LAYERD_SOURCE_DIR")) > 0);
    ck_assert_msg(api_policy_load(&p, path) == 0, "%s", layer_error_last());
    ck_assert_uint_eq(api_policy_principal_count(p), 4);
    ck_assert_uint_eq(p->nanonymous, 0);
    ck_assert(p->principals[3].grants[0].mutable_);
    api_policy_release(p);
    free(path);
}
END_TEST

START_TEST(test_globs_are_checked)
{
    static const char *const good[] = {
        "*",   "app-*", "sha256:?*", "[abc]x", "[!a-f]", "[^0-9]",
        "[]]", "[a-]",  "\\*",       "a\\[b",  "[\\]]"};
    static const struct {
        const char *glob, *msg;
    } bad[] = {
        {"", "empty glob"},
        {"a b", "glob has a character that is not printable ASCII at byte 1"},
        {"a\\", "glob ends with a lone '\\'"},
        {"[abc", "glob has a '[' without its ']'"},
        {"[!", "glob has a '[' without its ']'"},
        {"[z-a]", "glob has the empty range 'z-a'"},
        {"[[:digit:]]", "glob has a character class '[:' in a set (not "
                        "supported)"},
        {"x[a[=b=]]", "glob has a character class '[=' in a set (not "
                      "supported)"},
        {"x\xc3\xa9", "glob has a character that is not printable ASCII at "
                      "byte 1"},
    };
    char longest[API_POLICY_GLOB_MAX + 2];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(api_auth_glob_check(good[i]) == 0, "%s: %s", good[i],
                      layer_error_last());
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(api_auth_glob_check(bad[i].glob), LAYER_EINVALID);
        ck_assert_str_eq(layer_error_last(), bad[i].msg);
    }
    memset(longest, 'a', sizeof(longest) - 1);
    longest[API_POLICY_GLOB_MAX] = '\0';
    ck_assert_int_eq(api_auth_glob_check(longest), 0);
    longest[API_POLICY_GLOB_MAX] = 'a';
    longest[API_POLICY_GLOB_MAX + 1] = '\0';
    ck_assert_int_eq(api_auth_glob_check(longest), LAYER_EINVALID);
}
END_TEST

START_TEST(test_globs_match_as_fnmatch_does)
{
    static const char *const globs[] = {
        "*",        "app-*", "*-*",    "a*b*c",  "?",      "??*",
        "base",     "[ab]*", "[!ab]*", "[^ab]*", "[a-c]?", "*[0-9]",
        "sha256:*", "[]]*",  "[a-]*",  "\\*",    "*\\?",   "a*a*a*a*b",
        "[\\]]x",   ".*",    "*.*",    "x[.]y",  "[[]*",   "[a[]"};
    static const char *const ids[] = {"app-1",
                                      "app-",
                                      "base",
                                      "b",
                                      "ab",
                                      "abc",
                                      "aXbYc",
                                      "a",
                                      "c9",
                                      "9",
                                      "sha256:ab",
                                      "]x",
                                      "-x",
                                      "*",
                                      "x?",
                                      "xx",
                                      "aaaaaaaaaaaaaaaaaaaaaaaaac",
                                      "aaab",
                                      ".hidden",
                                      "a.b",
                                      "x.y",
                                      "xzy",
                                      "a-b-c"};

    for (size_t g = 0; g < sizeof(globs) / sizeof(globs[0]); g++) {
        ck_assert_msg(api_auth_glob_check(globs[g]) == 0, "%s", globs[g]);
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
            bool want = fnmatch(globs[g], ids[i], 0) == 0;

            ck_assert_msg(api_auth_glob_match(globs[g], ids[i]) == want,
                          "glob '%s' on '%s': fnmatch says %d", globs[g],
                          ids[i], want);
        }
    }
}
END_TEST

START_TEST(test_glob_matching_stays_linear_on_many_stars)
{
    char glob[API_POLICY_GLOB_MAX + 1], id[129];

    /* "*a*a*...*b" against "aaa...a": exponential with naive recursion. */
    for (size_t i = 0; i < 100; i++) {
        glob[2 * i] = '*';
        glob[2 * i + 1] = 'a';
    }
    memcpy(glob + 200, "*b", 3);
    memset(id, 'a', 128);
    id[128] = '\0';
    ck_assert(!api_auth_glob_match(glob, id)); /* no b */
    memcpy(id + 99, "b", 2);
    ck_assert(!api_auth_glob_match(glob, id)); /* 99 a's: one short */
    memcpy(id + 99, "ab", 3);
    ck_assert(api_auth_glob_match(glob, id));
}
END_TEST

static Suite *policy_suite(void)
{
    Suite *s = suite_create("auth_policy");
    TCase *tc = tcase_create("policy");

    tcase_add_test(tc, test_a_full_policy_is_read);
    tcase_add_test(tc, test_refusals_name_the_key_path);
    tcase_add_test(tc, test_token_digests_are_never_quoted);
    tcase_add_test(tc, test_caps_are_enforced);
    tcase_add_test(tc, test_the_default_policy_reads_immutable_layers);
    tcase_add_test(tc, test_a_policy_file_is_read_with_its_path_in_messages);
    tcase_add_test(tc, test_the_sample_policy_of_deploy_is_valid);
    suite_add_tcase(s, tc);
    tc = tcase_create("globs");
    tcase_add_test(tc, test_globs_are_checked);
    tcase_add_test(tc, test_globs_match_as_fnmatch_does);
    tcase_add_test(tc, test_glob_matching_stays_linear_on_many_stars);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(policy_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
