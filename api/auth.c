/*
 * Access control: the holder of the policy in force, identifying a
 * request from its credentials, and THE decision function every route
 * asks (api/auth.h has the rules).
 *
 * The holder is a pointer under a mutex; identifying a request takes a
 * reference to the policy under it, so a reload (api_auth_replace()) is
 * atomic for every request: each sees the old policy or the new one,
 * whole, and the old one is freed by whichever of the holder and the
 * last request that used it lets go last.
 *
 * Tokens: the header is parsed without copying the token but for Basic,
 * whose base64 is decoded into a caller's scratch buffer that is wiped
 * at once. The token is hashed with SHA-256 and the digest compared with
 * every digest of the policy by CRYPTO_memcmp, all of them, whatever
 * matched: the time taken depends on the number of tokens in the policy,
 * not on the one presented.
 *
 * Decisions depend only on the identity's grants, the operation, the id
 * and what is known of the layer's mutability; they never touch a
 * store. A route decides once before it asks the store anything (the id
 * as requested, mutability unknown) and again once the store has
 * resolved the layer (its canonical id, its mutability), so a layer
 * reached through an alias must be granted under both names.
 */
#include "auth_int.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "layer/alloc.h"
#include "layer/error.h"

struct api_auth {
    pthread_mutex_t lock;
    api_policy *policy;
    /* SHA-256, fetched once: an implicit fetch per request costs more
     * than hashing a token. */
    EVP_MD *sha256;
};

/* ---- the holder ---- */

int api_auth_new(api_auth **out, api_policy *policy)
{
    api_auth *a = layer_trycalloc(1, sizeof(*a));

    if (a == NULL) {
        api_policy_release(policy);
        return LAYER_ENOMEM;
    }
    if ((a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
        api_policy_release(policy);
        layer_free(a);
        return layer_error_set(LAYER_ERROR, "OpenSSL has no SHA-256");
    }
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        EVP_MD_free(a->sha256);
        api_policy_release(policy);
        layer_free(a);
        return layer_error_set(LAYER_ERROR, "pthread_mutex_init failed");
    }
    a->policy = policy;
    *out = a;
    return 0;
}

void api_auth_replace(api_auth *auth, api_policy *policy)
{
    api_policy *old;

    pthread_mutex_lock(&auth->lock);
    old = auth->policy;
    auth->policy = policy;
    pthread_mutex_unlock(&auth->lock);
    api_policy_release(old);
}

void api_auth_free(api_auth *auth)
{
    if (auth == NULL)
        return;
    api_policy_release(auth->policy);
    EVP_MD_free(auth->sha256);
    pthread_mutex_destroy(&auth->lock);
    layer_free(auth);
}

static api_policy *current(api_auth *auth)
{
    api_policy *p;

    pthread_mutex_lock(&auth->lock);
    p = api_policy__ref(auth->policy);
    pthread_mutex_unlock(&auth->lock);
    return p;
}

/* ---- names ---- */

const char *api_auth_failure_name(api_auth_failure reason)
{
    switch (reason) {
    case API_AUTH_FAIL_NONE:
        return "none";
    case API_AUTH_FAIL_MISSING:
        return "missing";
    case API_AUTH_FAIL_MALFORMED:
        return "malformed";
    case API_AUTH_FAIL_INVALID_TOKEN:
        return "invalid_token";
    case API_AUTH_FAIL_BAD_CERTIFICATE:
        return "bad_certificate";
    case API_AUTH_FAIL_UNKNOWN_CERTIFICATE:
        return "unknown_certificate";
    case API_AUTH_FAIL_FORBIDDEN:
        return "forbidden";
    case API_AUTH_FAIL_COUNT:
        break;
    }
    return "unknown";
}

const char *api_auth_method_name(api_auth_method method)
{
    switch (method) {
    case API_AUTH_ANONYMOUS:
        return "anonymous";
    case API_AUTH_TOKEN:
        return "token";
    case API_AUTH_BASIC:
        return "basic";
    case API_AUTH_MTLS:
        return "mtls";
    }
    return "unknown";
}

/* ---- the Authorization header ---- */

/* RFC 6750 b64token / RFC 7235 token68 characters, but the '='. */
static bool is_token68(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~' || c == '+' || c == '/';
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Strict standard base64 (RFC 4648 section 4): the alphabet, then at
 * most two '=' completing a group of four (or none, the group left
 * short), unused bits zero. out has room for len * 3 / 4 bytes.
 */
static bool b64_decode(char *out, size_t *out_len, const char *in, size_t len)
{
    size_t n = 0, data = len;
    uint32_t acc = 0;
    unsigned bits = 0;

    while (data > 0 && in[data - 1] == '=')
        data--;
    if (len - data > 2 || (len - data > 0 && len % 4 != 0) || data % 4 == 1)
        return false;
    for (size_t i = 0; i < data; i++) {
        int v = b64_value((unsigned char)in[i]);

        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return false;
    *out_len = n;
    return true;
}

int api_auth_parse_header(api_auth_method *method, const char **token,
                          size_t *token_len, const char *value, char *scratch)
{
    size_t len = strnlen(value, API_AUTH_HEADER_MAX + 1);
    size_t scheme, start, end;
    bool bearer;

    if (len > API_AUTH_HEADER_MAX)
        return layer_error_set(LAYER_EINVALID,
                               "the Authorization header is longer than "
                               "%d bytes",
                               API_AUTH_HEADER_MAX);
    for (scheme = 0; scheme < len && value[scheme] != ' '; scheme++)
        ;
    if (scheme == 6 && strncasecmp(value, "Bearer", 6) == 0)
        bearer = true;
    else if (scheme == 5 && strncasecmp(value, "Basic", 5) == 0)
        bearer = false;
    else
        return layer_error_set(LAYER_EINVALID,
                               "the Authorization scheme is not Bearer or "
                               "Basic");
    *method = bearer ? API_AUTH_TOKEN : API_AUTH_BASIC;
    for (start = scheme; start < len && value[start] == ' '; start++)
        ;
    for (end = len;
         end > start && (value[end - 1] == ' ' || value[end - 1] == '\t');
         end--)
        ;
    if (start == scheme || start == end)
        return layer_error_set(LAYER_EINVALID,
                               "the Authorization header has no credentials");
    /* token68: the characters, then only '=' to the end. */
    {
        size_t i = start;

        while (i < end && is_token68((unsigned char)value[i]))
            i++;
        if (i == start)
            return layer_error_set(LAYER_EINVALID,
                                   "the Authorization credentials are not "
                                   "a token");
        while (i < end && value[i] == '=')
            i++;
        if (i != end)
            return layer_error_set(LAYER_EINVALID,
                                   "the Authorization credentials are not "
                                   "a single token");
    }
    if (bearer) {
        *token = value + start;
        *token_len = end - start;
        return 0;
    }
    {
        size_t n = 0;
        const char *colon;

        if (!b64_decode(scratch, &n, value + start, end - start))
            return layer_error_set(LAYER_EINVALID,
                                   "the Basic credentials are not base64");
        if ((colon = memchr(scratch, ':', n)) == NULL)
            return layer_error_set(LAYER_EINVALID,
                                   "the Basic credentials are not "
                                   "user:password");
        *token = colon + 1;
        *token_len = n - (size_t)(colon + 1 - scratch);
        if (*token_len == 0)
            return layer_error_set(LAYER_EINVALID,
                                   "the Basic password (the token) is "
                                   "empty");
    }
    return 0;
}

/* ---- identifying ---- */

/* The principal whose token has this digest, or SIZE_MAX. Every digest
 * is compared, in constant time each. */
static size_t token_owner(const api_policy *p, const uint8_t digest[32])
{
    size_t who = SIZE_MAX;

    for (size_t i = 0; i < p->ntokens; i++) {
        if (CRYPTO_memcmp(p->tokens[i].digest, digest, 32) == 0)
            who = p->tokens[i].principal;
    }
    return who;
}

static bool has_san(const api_client_cert *c, api_san_type type,
                    const char *value)
{
    for (size_t i = 0; i < c->nsans; i++) {
        if (c->sans[i].type != type || c->sans[i].value == NULL)
            continue;
        /* DNS names are case-insensitive; URIs and addresses as given. */
        if (type == API_SAN_DNS ? strcasecmp(c->sans[i].value, value) == 0
                                : strcmp(c->sans[i].value, value) == 0)
            return true;
    }
    return false;
}

static bool rule_matches(const api_cert_rule *r, const api_client_cert *c)
{
    if (r->subject_cn != NULL &&
        (c->subject_cn == NULL || strcmp(r->subject_cn, c->subject_cn) != 0))
        return false;
    if (r->san_dns != NULL && !has_san(c, API_SAN_DNS, r->san_dns))
        return false;
    if (r->san_uri != NULL && !has_san(c, API_SAN_URI, r->san_uri))
        return false;
    if (r->san_email != NULL && !has_san(c, API_SAN_EMAIL, r->san_email))
        return false;
    if (r->has_sha256 && memcmp(r->sha256, c->sha256, 32) != 0)
        return false;
    return true;
}

/* The first principal (in file order) with a rule the certificate
 * matches, or SIZE_MAX. */
static size_t cert_owner(const api_policy *p, const api_client_cert *c)
{
    for (size_t i = 0; i < p->nprincipals; i++) {
        for (size_t k = 0; k < p->principals[i].ncerts; k++) {
            if (rule_matches(&p->principals[i].certs[k], c))
                return i;
        }
    }
    return SIZE_MAX;
}

static void identify_header(api_identity *id, const EVP_MD *sha256,
                            const char *authorization)
{
    char scratch[API_AUTH_HEADER_MAX];
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    const char *token = NULL;
    size_t token_len = 0;
    api_auth_method method = API_AUTH_ANONYMOUS;

    if (api_auth_parse_header(&method, &token, &token_len, authorization,
                              scratch) < 0) {
        id->method = method;
        id->failure = API_AUTH_FAIL_MALFORMED;
        goto out;
    }
    id->method = method;
    if (EVP_Digest(token, token_len, digest, &dlen, sha256, NULL) != 1 ||
        dlen != 32) {
        /* Cannot hash: refuse rather than guess. */
        id->failure = API_AUTH_FAIL_INVALID_TOKEN;
        goto out;
    }
    id->principal = token_owner(id->policy, digest);
    if (id->principal == SIZE_MAX)
        id->failure = API_AUTH_FAIL_INVALID_TOKEN;
out:
    OPENSSL_cleanse(scratch, sizeof(scratch));
    OPENSSL_cleanse(digest, sizeof(digest));
}

void api_auth_identify(api_identity *out, api_auth *auth,
                       const char *authorization, const api_client_cert *cert)
{
    api_identity id = API_IDENTITY_INIT;

    id.policy = current(auth);
    if (cert != NULL && !cert->verified) {
        id.method = API_AUTH_MTLS;
        id.failure = API_AUTH_FAIL_BAD_CERTIFICATE;
    } else if (authorization != NULL) {
        identify_header(&id, auth->sha256, authorization);
    } else if (cert != NULL) {
        id.method = API_AUTH_MTLS;
        id.principal = cert_owner(id.policy, cert);
        if (id.principal == SIZE_MAX)
            id.failure = API_AUTH_FAIL_UNKNOWN_CERTIFICATE;
    }
    *out = id;
}

const char *api_identity_name(const api_identity *id)
{
    if (id->policy == NULL || id->failure != API_AUTH_FAIL_NONE ||
        id->principal >= id->policy->nprincipals)
        return NULL;
    return id->policy->principals[id->principal].name;
}

void api_identity_dispose(api_identity *id)
{
    if (id == NULL)
        return;
    api_policy_release(id->policy);
    id->policy = NULL;
    id->principal = SIZE_MAX;
}

/* ---- deciding ---- */

/* The grants that apply to an identity. */
static void grants_of(const api_grant **out, size_t *n, const api_identity *id)
{
    const api_policy *p = id->policy;

    if (id->principal < p->nprincipals) {
        *out = p->principals[id->principal].grants;
        *n = p->principals[id->principal].ngrants;
    } else {
        *out = p->anonymous;
        *n = p->nanonymous;
    }
}

/* Does a grant with op cover this layer? */
static bool covered(const api_grant *g, size_t n, unsigned op,
                    const char *layer_id, bool mutable_)
{
    for (size_t i = 0; i < n; i++) {
        if (!(g[i].ops & op) || (mutable_ && !g[i].mutable_))
            continue;
        for (size_t k = 0; k < g[i].nlayers; k++) {
            if (api_auth_glob_match(g[i].layers[k], layer_id))
                return true;
        }
    }
    return false;
}

static bool anonymous(const api_identity *id)
{
    return id->principal == SIZE_MAX && id->failure == API_AUTH_FAIL_NONE;
}

api_verdict api_auth_decide(const api_identity *id, api_op op,
                            const char *layer_id, api_mutability m)
{
    const api_grant *g = NULL;
    size_t n = 0;
    bool mut = m == API_LAYER_MUTABLE;
    api_verdict v;

    if (id->policy == NULL || id->failure != API_AUTH_FAIL_NONE)
        return API_DENY_UNAUTHENTICATED;
    grants_of(&g, &n, id);
    if (layer_id == NULL) {
        v = API_DENY_FORBIDDEN;
        for (size_t i = 0; i < n; i++) {
            if (g[i].ops & (unsigned)op)
                v = API_ALLOW;
        }
    } else if (covered(g, n, (unsigned)op, layer_id, mut)) {
        v = API_ALLOW;
    } else if (op == API_OP_READ && covered(g, n, API_OP_LIST, layer_id, mut)) {
        v = API_DENY_FORBIDDEN;
    } else {
        v = API_DENY_HIDDEN;
    }
    /* An anonymous refusal invites credentials, where there are any to
     * give; a layer hidden after the store was asked stays a 404, since
     * a 401 there would tell it exists. */
    if (v != API_ALLOW && anonymous(id) && id->policy->nprincipals > 0 &&
        (v == API_DENY_FORBIDDEN || m == API_LAYER_UNKNOWN))
        v = API_DENY_UNAUTHENTICATED;
    return v;
}

api_auth_failure api_auth_reason(const api_identity *id, api_verdict v)
{
    switch (v) {
    case API_DENY_UNAUTHENTICATED:
        return id->failure != API_AUTH_FAIL_NONE ? id->failure
                                                 : API_AUTH_FAIL_MISSING;
    case API_DENY_FORBIDDEN:
        return API_AUTH_FAIL_FORBIDDEN;
    case API_ALLOW:
    case API_DENY_HIDDEN:
        break;
    }
    return API_AUTH_FAIL_NONE;
}
