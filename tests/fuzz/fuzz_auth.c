/*
 * Fuzz target: what access control parses from outside (api/auth.h).
 *
 * The first byte picks the parser, the rest is its input:
 * - 'A': an Authorization header value. api_auth_parse_header() either
 *   fails or yields a non-empty token inside the value (Bearer) or the
 *   scratch buffer (Basic); identifying with it under a fixed policy
 *   gives a principal only for the policy's token, and MALFORMED exactly
 *   when the parse failed.
 * - 'H': a Host header value. The check answers 0, LAYER_ENOTFOUND or
 *   LAYER_EINVALID, the same twice.
 * - 'P': a policy document. Parsing succeeds or fails with a message
 *   that begins with the document's name; a policy that parses answers
 *   decisions about ids made of the input.
 * - 'G': a glob and, after a NUL, a subject. A glob that passes the check
 *   matches as fnmatch(3) with no flags does.
 */
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "layer/error.h"

#define INPUT_MAX 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_auth: invariant broken: %s\n", what);
        abort();
    }
}

/* The policy of 'A': one principal whose token is "fuzz-token". */
static api_auth *fixed_auth(void)
{
    static api_auth *auth;
    /* sha256("fuzz-token") */
    static const char doc[] =
        "{\"principals\": [{\"name\": \"p\", \"tokens_sha256\": "
        "[\"33cc09ba35314d19e32ed9a5a30fca56eebbfab5faec7247fd0403cd26e155b5\""
        "]}]}";
    api_policy *p = NULL;

    if (auth == NULL) {
        check(api_policy_parse(&p, doc, sizeof(doc) - 1, NULL) == 0,
              "the fixed policy");
        check(api_auth_new(&auth, p) == 0, "the holder");
    }
    return auth;
}

static void fuzz_header(const char *value, size_t len)
{
    static char scratch[API_AUTH_HEADER_MAX];
    api_auth_method m = API_AUTH_ANONYMOUS;
    const char *tok = NULL;
    size_t tlen = 0;
    api_identity id;
    int rc;

    if (strlen(value) != len)
        return; /* a header has no NUL */
    rc = api_auth_parse_header(&m, &tok, &tlen, value, scratch);
    if (rc == 0) {
        check(m == API_AUTH_TOKEN || m == API_AUTH_BASIC, "method");
        check(tlen > 0, "empty token");
        if (m == API_AUTH_TOKEN)
            check(tok > value && tok + tlen <= value + len, "bearer bounds");
        else
            check(tok >= scratch && tok + tlen <= scratch + sizeof(scratch),
                  "basic bounds");
    } else {
        check(rc == LAYER_EINVALID, "parse failure code");
    }
    api_auth_identify(&id, fixed_auth(), value, NULL);
    check((id.failure == API_AUTH_FAIL_MALFORMED) == (rc != 0),
          "malformed iff the parse failed");
    if (id.failure == API_AUTH_FAIL_NONE) {
        check(tlen == 10 && memcmp(tok, "fuzz-token", 10) == 0,
              "a principal for another token");
        check(strcmp(api_identity_name(&id), "p") == 0, "principal");
    }
    check(api_auth_decide(&id, API_OP_READ, "x", API_LAYER_UNKNOWN) !=
              API_ALLOW,
          "the principal has no grants");
    api_identity_dispose(&id);
}

static void fuzz_host(const char *value)
{
    static api_hostnames *h;
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]",
                                        "layerd.example", "*.svc.local"};
    int a, b;

    if (h == NULL)
        check(api_hostnames_new(&h, names, 5) == 0, "names");
    a = api_hostnames_check(h, value);
    b = api_hostnames_check(h, value);
    check(a == b, "the same answer twice");
    check(a == 0 || a == LAYER_ENOTFOUND || a == LAYER_EINVALID, "code");
    if (api_hostnames_add(h, value) == 0 && api_hostnames_count(h) > 5) {
        /* added: drop the set so that it stays the fixed one */
        api_hostnames_free(h);
        h = NULL;
    }
}

static void fuzz_policy(const char *doc, size_t len)
{
    api_policy *p = NULL;
    api_auth *auth = NULL;
    api_identity id;
    char ids[3][64];

    if (api_policy_parse(&p, doc, len, "doc") != 0) {
        check(strncmp(layer_error_last(), "doc: ", 5) == 0, "message");
        return;
    }
    check(api_policy_principal_count(p) <= API_POLICY_MAX_PRINCIPALS, "cap");
    check(api_auth_new(&auth, p) == 0, "holder");
    snprintf(ids[0], sizeof(ids[0]), "%.63s", doc);
    snprintf(ids[1], sizeof(ids[1]), "base");
    snprintf(ids[2], sizeof(ids[2]), "sha256:%.50s", doc + len / 2);
    api_auth_identify(&id, auth, NULL, NULL);
    for (size_t i = 0; i < 3; i++) {
        for (api_mutability m = API_LAYER_UNKNOWN; m <= API_LAYER_MUTABLE;
             m++) {
            api_verdict v = api_auth_decide(&id, API_OP_READ, ids[i], m);

            check(v != API_DENY_FORBIDDEN ||
                      api_auth_decide(&id, API_OP_LIST, ids[i], m) == API_ALLOW,
                  "403 only for what may be listed");
            (void)api_auth_decide(&id, API_OP_LIST, ids[i], m);
        }
    }
    (void)api_auth_decide(&id, API_OP_METRICS, NULL, API_LAYER_UNKNOWN);
    api_identity_dispose(&id);
    api_auth_free(auth);
}

static void fuzz_glob(const char *in, size_t len)
{
    const char *glob = in;
    const char *subject = memchr(in, '\0', len) != NULL && strlen(in) + 1 <= len
                              ? in + strlen(in) + 1
                              : "";

    if (api_auth_glob_check(glob) != 0)
        return;
    check(api_auth_glob_match(glob, subject) ==
              (fnmatch(glob, subject, 0) == 0),
          "glob differs from fnmatch");
    check(api_auth_glob_match(glob, glob) == (fnmatch(glob, glob, 0) == 0),
          "glob on itself differs from fnmatch");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[INPUT_MAX + 2];

    if (size < 1)
        return 0;
    if (size - 1 > INPUT_MAX)
        size = INPUT_MAX + 1;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    buf[size] = '\0';
    switch (data[0]) {
    case 'A':
        fuzz_header(buf, size - 1);
        break;
    case 'H':
        fuzz_host(buf);
        break;
    case 'P':
        fuzz_policy(buf, size - 1);
        break;
    case 'G':
        fuzz_glob(buf, size - 1);
        break;
    default:
        break;
    }
    return 0;
}
