/*
 * Access policies: the JSON document of --auth, parsed and validated
 * strictly into the structures of auth_int.h, and the glob syntax of
 * grants.
 *
 * Validation is all-or-nothing: the first problem fails the whole
 * document, and the message names the key path where it is
 * ("principals[1].grants[0].layers[2]: ..."), so that a reload with a
 * broken file can keep the old policy and say exactly why. Values are
 * quoted in messages where they help (names, globs, ops) but never the
 * values of tokens_sha256: a token pasted there instead of its digest
 * would otherwise end up in a log. For the same reason jansson's syntax
 * errors are reported by line and column without the "near '...'" text
 * it quotes from the document.
 *
 * Token digests are decoded to bytes here once; a digest given twice
 * (in one principal or two) is refused, since a token must name one
 * principal. Certificate fingerprints are accepted as 64 hex digits or in
 * openssl's colon form.
 */
#include "auth_int.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/file.h"
#include "layer/text.h"

/* Longest key path in messages, and longest value quoted. */
#define PATH_MAX_LEN   192
#define QUOTE_MAX      64
#define CERT_VALUE_MAX 1024

typedef struct parse_ctx {
    const char *what; /* the document's name in messages */
    api_policy *p;
} parse_ctx;

/* A key path being built: "principals[1].grants[0]". */
typedef struct kpath {
    char s[PATH_MAX_LEN];
} kpath;

/* A path too long for the buffer ends in "..." (the caps of a policy
 * keep real paths far shorter). */
static void kpath_cut(kpath *p, int n)
{
    if (n < 0 || (size_t)n >= sizeof(p->s))
        memcpy(p->s + sizeof(p->s) - 4, "...", 4);
}

static void kpath_key(kpath *out, const kpath *base, const char *key)
{
    kpath_cut(out, snprintf(out->s, sizeof(out->s), "%s%s%s", base->s,
                            base->s[0] != '\0' ? "." : "", key));
}

static void kpath_index(kpath *out, const kpath *base, const char *key,
                        size_t i)
{
    kpath_cut(out, snprintf(out->s, sizeof(out->s), "%s%s%s[%zu]", base->s,
                            base->s[0] != '\0' ? "." : "", key, i));
}

/* Copy at most QUOTE_MAX characters of s, non-printable ones as '?'. */
static void quote(char out[QUOTE_MAX + 4], const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0' && n < QUOTE_MAX; n++)
        out[n] = s[n] >= 0x20 && s[n] < 0x7f ? s[n] : '?';
    if (s[n] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

__attribute__((format(printf, 4, 5))) static int
fail(const parse_ctx *pc, int code, const kpath *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (at != NULL && at->s[0] != '\0')
        return layer_error_set(code, "%s: %s: %s", pc->what, at->s, msg);
    return layer_error_set(code, "%s: %s", pc->what, msg);
}

/* Refuse keys of obj that are not in allowed (NULL-terminated); every
 * object may have a "comment" string. */
static int check_keys(const parse_ctx *pc, const kpath *at, json_t *obj,
                      const char *const *allowed)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v)
    {
        bool known = false;
        char q[QUOTE_MAX + 4];
        kpath sub;

        if (strcmp(key, "comment") == 0) {
            if (!json_is_string(v)) {
                kpath_key(&sub, at, key);
                return fail(pc, LAYER_EINVALID, &sub, "must be a string");
            }
            continue;
        }
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            quote(q, key);
            return fail(pc, LAYER_EINVALID, at, "unknown key '%s'", q);
        }
    }
    return 0;
}

/* The array at obj.key: NULL when absent and optional. */
static int get_array(json_t **out, const parse_ctx *pc, const kpath *at,
                     json_t *obj, const char *key, bool required)
{
    json_t *v = json_object_get(obj, key);
    kpath sub;

    kpath_key(&sub, at, key);
    *out = NULL;
    if (v == NULL) {
        if (required)
            return fail(pc, LAYER_EINVALID, at, "missing '%s'", key);
        return 0;
    }
    if (!json_is_array(v))
        return fail(pc, LAYER_EINVALID, &sub, "must be an array");
    if (json_array_size(v) > API_POLICY_MAX_ITEMS)
        return fail(pc, LAYER_ETOOBIG, &sub, "more than %d items",
                    API_POLICY_MAX_ITEMS);
    *out = v;
    return 0;
}

static int copy_string(char **out, const char *s)
{
    if ((*out = layer_trystrdup(s)) == NULL)
        return LAYER_ENOMEM;
    return 0;
}

/* ---- globs ---- */

int api_auth_glob_check(const char *glob)
{
    size_t len = strnlen(glob, API_POLICY_GLOB_MAX + 1);

    if (len == 0)
        return layer_error_set(LAYER_EINVALID, "empty glob");
    if (len > API_POLICY_GLOB_MAX)
        return layer_error_set(LAYER_EINVALID, "glob longer than %d bytes",
                               API_POLICY_GLOB_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)glob[i];

        if (c <= 0x20 || c >= 0x7f)
            return layer_error_set(LAYER_EINVALID,
                                   "glob has a character that is not "
                                   "printable ASCII at byte %zu",
                                   i);
        if (c == '\\') {
            if (i + 1 == len)
                return layer_error_set(LAYER_EINVALID,
                                       "glob ends with a lone '\\'");
            i++;
        } else if (c == '[') {
            size_t j = i + 1, members = 0;

            if (j < len && (glob[j] == '!' || glob[j] == '^'))
                j++;
            /* A ']' first in the set is a member. */
            for (bool first = true; j < len && (first || glob[j] != ']');
                 first = false) {
                unsigned char lo, hi;

                /* fnmatch(3) reads "[:alpha:]", "[=a=]" and "[.a.]" in a
                 * set as classes; ids need none of them. */
                if (glob[j] == '[' && j + 1 < len &&
                    (glob[j + 1] == ':' || glob[j + 1] == '=' ||
                     glob[j + 1] == '.'))
                    return layer_error_set(LAYER_EINVALID,
                                           "glob has a character class "
                                           "'[%c' in a set (not supported)",
                                           glob[j + 1]);
                if (glob[j] == '\\' && j + 1 < len)
                    j++;
                lo = hi = (unsigned char)glob[j++];
                if (j + 1 < len && glob[j] == '-' && glob[j + 1] != ']') {
                    j++;
                    if (glob[j] == '\\' && j + 1 < len)
                        j++;
                    hi = (unsigned char)glob[j++];
                    if (hi < lo)
                        return layer_error_set(LAYER_EINVALID,
                                               "glob has the empty range "
                                               "'%c-%c'",
                                               lo, hi);
                }
                members++;
            }
            if (j >= len)
                return layer_error_set(LAYER_EINVALID,
                                       "glob has a '[' without its ']'");
            if (members == 0)
                return layer_error_set(LAYER_EINVALID,
                                       "glob has an empty set '[]'");
            i = j;
        }
    }
    return 0;
}

/* Does the pattern item at p (not '*') match c? *adv gets its length. */
static bool match_one(const char *p, size_t *adv, unsigned char c)
{
    const char *q;
    bool neg = false, hit = false;

    if (*p == '?') {
        *adv = 1;
        return true;
    }
    if (*p == '\\' && p[1] != '\0') {
        *adv = 2;
        return (unsigned char)p[1] == c;
    }
    if (*p != '[') {
        *adv = 1;
        return (unsigned char)*p == c;
    }
    q = p + 1;
    if (*q == '!' || *q == '^') {
        neg = true;
        q++;
    }
    for (bool first = true; *q != '\0' && (first || *q != ']'); first = false) {
        unsigned char lo, hi;

        if (*q == '\\' && q[1] != '\0')
            q++;
        lo = hi = (unsigned char)*q++;
        if (*q == '-' && q[1] != '\0' && q[1] != ']') {
            q++;
            if (*q == '\\' && q[1] != '\0')
                q++;
            hi = (unsigned char)*q++;
        }
        if (lo <= c && c <= hi)
            hit = true;
    }
    if (*q != ']') {
        /* An unclosed set is a literal '[' (as fnmatch(3) has it). */
        *adv = 1;
        return c == '[';
    }
    *adv = (size_t)(q + 1 - p);
    return hit != neg;
}

/*
 * The classic greedy match with one backtrack point: on a mismatch after
 * a '*', the star swallows one more character and matching resumes. Each
 * step advances the subject or the star, so the work is at most
 * len(glob) x len(s), with no recursion.
 */
bool api_auth_glob_match(const char *glob, const char *s)
{
    const char *p = glob, *star_p = NULL, *star_s = NULL;

    while (*s != '\0') {
        size_t adv;

        if (*p == '*') {
            while (*p == '*')
                p++;
            if (*p == '\0')
                return true;
            star_p = p;
            star_s = s;
            continue;
        }
        if (*p != '\0' && match_one(p, &adv, (unsigned char)*s)) {
            p += adv;
            s++;
            continue;
        }
        if (star_p == NULL)
            return false;
        p = star_p;
        s = ++star_s;
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* ---- grants ---- */

static const char *const op_names[] = {"list", "read", "metrics"};
static const unsigned op_bits[] = {API_OP_LIST, API_OP_READ, API_OP_METRICS};

static void grant_dispose(api_grant *g)
{
    for (size_t i = 0; i < g->nlayers; i++)
        layer_free(g->layers[i]);
    layer_free(g->layers);
    memset(g, 0, sizeof(*g));
}

static int parse_grant(api_grant *g, const parse_ctx *pc, const kpath *at,
                       json_t *obj)
{
    static const char *const keys[] = {"layers", "ops", "mutable", NULL};
    json_t *layers, *ops, *mut, *v;
    size_t i;
    int rc;

    if (!json_is_object(obj))
        return fail(pc, LAYER_EINVALID, at, "a grant must be an object");
    if ((rc = check_keys(pc, at, obj, keys)) < 0 ||
        (rc = get_array(&layers, pc, at, obj, "layers", true)) < 0 ||
        (rc = get_array(&ops, pc, at, obj, "ops", true)) < 0)
        return rc;
    if (json_array_size(layers) == 0 || json_array_size(ops) == 0) {
        kpath sub;

        kpath_key(&sub, at, json_array_size(layers) == 0 ? "layers" : "ops");
        return fail(pc, LAYER_EINVALID, &sub,
                    "empty: a grant names at least one");
    }
    if ((g->layers =
             layer_trycalloc(json_array_size(layers), sizeof(char *))) == NULL)
        return LAYER_ENOMEM;
    json_array_foreach(layers, i, v)
    {
        kpath sub;
        char q[QUOTE_MAX + 4];

        kpath_index(&sub, at, "layers", i);
        if (!json_is_string(v))
            return fail(pc, LAYER_EINVALID, &sub, "must be a string (a glob)");
        if (api_auth_glob_check(json_string_value(v)) < 0) {
            char why[256];

            snprintf(why, sizeof(why), "%s", layer_error_last());
            quote(q, json_string_value(v));
            return fail(pc, LAYER_EINVALID, &sub, "bad glob '%s': %s", q, why);
        }
        if ((rc = copy_string(&g->layers[g->nlayers], json_string_value(v))) <
            0)
            return rc;
        g->nlayers++;
    }
    json_array_foreach(ops, i, v)
    {
        kpath sub;
        char q[QUOTE_MAX + 4];
        unsigned bit = 0;

        kpath_index(&sub, at, "ops", i);
        if (!json_is_string(v))
            return fail(pc, LAYER_EINVALID, &sub, "must be a string");
        for (size_t k = 0; k < 3; k++) {
            if (strcmp(json_string_value(v), op_names[k]) == 0)
                bit = op_bits[k];
        }
        quote(q, json_string_value(v));
        if (bit == 0)
            return fail(pc, LAYER_EINVALID, &sub,
                        "unknown op '%s' (expected list, read or metrics)", q);
        if (g->ops & bit)
            return fail(pc, LAYER_EINVALID, &sub, "'%s' is given twice", q);
        g->ops |= bit;
    }
    mut = json_object_get(obj, "mutable");
    if (mut != NULL) {
        kpath sub;

        kpath_key(&sub, at, "mutable");
        if (!json_is_boolean(mut))
            return fail(pc, LAYER_EINVALID, &sub, "must be true or false");
        g->mutable_ = json_is_true(mut);
    }
    return 0;
}

/* Parse obj.grants (optional) into *out. */
static int parse_grants(api_grant **out, size_t *n, const parse_ctx *pc,
                        const kpath *at, json_t *obj)
{
    json_t *arr, *v;
    size_t i;
    int rc;

    if ((rc = get_array(&arr, pc, at, obj, "grants", false)) < 0 ||
        arr == NULL || json_array_size(arr) == 0)
        return rc;
    if ((*out = layer_trycalloc(json_array_size(arr), sizeof(api_grant))) ==
        NULL)
        return LAYER_ENOMEM;
    json_array_foreach(arr, i, v)
    {
        kpath sub;

        kpath_index(&sub, at, "grants", i);
        /* Counted first, so that a failure frees what was filled in. */
        (*n)++;
        if ((rc = parse_grant(&(*out)[i], pc, &sub, v)) < 0)
            return rc;
    }
    return 0;
}

/* ---- principals ---- */

/* Decode a fingerprint: 64 hex digits, or 32 pairs separated by ':'. */
static bool parse_fingerprint(uint8_t out[32], const char *s)
{
    size_t len = strlen(s);

    if (len == 64)
        return layer_text_hex_decode(out, s, 32, 0);
    if (len != 95)
        return false;
    for (size_t i = 0; i < 32; i++) {
        if (i < 31 && s[i * 3 + 2] != ':')
            return false;
        if (!layer_text_hex_decode(out + i, s + i * 3, 1, 0))
            return false;
    }
    return true;
}

static int parse_cert_rule(api_cert_rule *r, const parse_ctx *pc,
                           const kpath *at, json_t *obj)
{
    static const char *const keys[] = {"subject_cn", "san_dns", "san_uri",
                                       "san_email",  "sha256",  NULL};
    char **fields[] = {&r->subject_cn, &r->san_dns, &r->san_uri, &r->san_email};
    size_t given = 0;
    int rc;

    if (!json_is_object(obj))
        return fail(pc, LAYER_EINVALID, at,
                    "a certificate rule must be an object");
    if ((rc = check_keys(pc, at, obj, keys)) < 0)
        return rc;
    for (size_t k = 0; k < 5; k++) {
        json_t *v = json_object_get(obj, keys[k]);
        const char *s;
        kpath sub;

        if (v == NULL)
            continue;
        kpath_key(&sub, at, keys[k]);
        if (!json_is_string(v) || (s = json_string_value(v))[0] == '\0')
            return fail(pc, LAYER_EINVALID, &sub, "must be a non-empty string");
        if (strlen(s) > CERT_VALUE_MAX)
            return fail(pc, LAYER_ETOOBIG, &sub, "longer than %d bytes",
                        CERT_VALUE_MAX);
        given++;
        if (k == 4) {
            if (!parse_fingerprint(r->sha256, s))
                return fail(pc, LAYER_EINVALID, &sub,
                            "not a SHA-256 fingerprint (64 hex digits, "
                            "or 32 pairs separated by ':' as openssl "
                            "x509 -fingerprint -sha256 prints them)");
            r->has_sha256 = true;
        } else if ((rc = copy_string(fields[k], s)) < 0) {
            return rc;
        }
    }
    if (given == 0)
        return fail(pc, LAYER_EINVALID, at,
                    "a certificate rule needs subject_cn, san_dns, san_uri, "
                    "san_email or sha256");
    return 0;
}

static bool name_valid(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > API_POLICY_NAME_MAX || s[0] == ' ' ||
        s[len - 1] == ' ')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] >= 0x7f)
            return false;
    }
    return true;
}

/* Where a token digest was first seen, for the duplicate message. */
typedef struct token_origin {
    size_t principal;
    size_t index;
} token_origin;

static int parse_tokens(parse_ctx *pc, const kpath *at, json_t *arr, size_t who,
                        token_origin *origins)
{
    api_policy *p = pc->p;
    json_t *v;
    size_t i;
    api_token *grown;

    if (json_array_size(arr) == 0)
        return 0;
    grown = layer_tryarray(p->tokens, p->ntokens + json_array_size(arr),
                           sizeof(api_token));
    if (grown == NULL)
        return LAYER_ENOMEM;
    p->tokens = grown;
    json_array_foreach(arr, i, v)
    {
        api_token *t = &p->tokens[p->ntokens];
        kpath sub;

        kpath_index(&sub, at, "tokens_sha256", i);
        /* The value is never quoted: it might be a token. */
        if (!json_is_string(v) || strlen(json_string_value(v)) != 64 ||
            !layer_text_hex_decode(t->digest, json_string_value(v), 32, 0))
            return fail(pc, LAYER_EINVALID, &sub,
                        "not a SHA-256 digest of a token (64 hex digits; "
                        "'layerd token new' prints a token and its "
                        "digest)");
        for (size_t k = 0; k < p->ntokens; k++) {
            if (memcmp(p->tokens[k].digest, t->digest, 32) == 0)
                return fail(pc, LAYER_EINVALID, &sub,
                            "the same digest as "
                            "principals[%zu].tokens_sha256[%zu]: a token "
                            "must name one principal",
                            origins[k].principal, origins[k].index);
        }
        t->principal = who;
        origins[p->ntokens].principal = who;
        origins[p->ntokens].index = i;
        p->ntokens++;
    }
    return 0;
}

static void principal_dispose(api_principal *pr)
{
    layer_free(pr->name);
    for (size_t i = 0; i < pr->ncerts; i++) {
        layer_free(pr->certs[i].subject_cn);
        layer_free(pr->certs[i].san_dns);
        layer_free(pr->certs[i].san_uri);
        layer_free(pr->certs[i].san_email);
    }
    layer_free(pr->certs);
    for (size_t i = 0; i < pr->ngrants; i++)
        grant_dispose(&pr->grants[i]);
    layer_free(pr->grants);
    memset(pr, 0, sizeof(*pr));
}

static int parse_principal(parse_ctx *pc, const kpath *at, json_t *obj,
                           token_origin **origins, size_t *norigins)
{
    static const char *const keys[] = {"name", "tokens_sha256", "certificates",
                                       "grants", NULL};
    api_policy *p = pc->p;
    api_principal *pr = &p->principals[p->nprincipals];
    json_t *name, *tokens, *certs, *v;
    size_t i, ntok;
    char q[QUOTE_MAX + 4];
    kpath sub;
    int rc;

    /* Counted at once, so that a failure frees what was filled in. */
    p->nprincipals++;
    if (!json_is_object(obj))
        return fail(pc, LAYER_EINVALID, at, "a principal must be an object");
    if ((rc = check_keys(pc, at, obj, keys)) < 0)
        return rc;
    name = json_object_get(obj, "name");
    kpath_key(&sub, at, "name");
    if (name == NULL)
        return fail(pc, LAYER_EINVALID, at, "missing 'name'");
    if (!json_is_string(name) || !name_valid(json_string_value(name)))
        return fail(pc, LAYER_EINVALID, &sub,
                    "must be 1 to %d printable ASCII characters, without "
                    "leading or trailing spaces",
                    API_POLICY_NAME_MAX);
    for (size_t k = 0; k + 1 < p->nprincipals; k++) {
        if (strcmp(p->principals[k].name, json_string_value(name)) == 0) {
            quote(q, json_string_value(name));
            return fail(pc, LAYER_EINVALID, &sub,
                        "'%s' is also the name of principals[%zu]", q, k);
        }
    }
    if ((rc = copy_string(&pr->name, json_string_value(name))) < 0)
        return rc;

    if ((rc = get_array(&tokens, pc, at, obj, "tokens_sha256", false)) < 0 ||
        (rc = get_array(&certs, pc, at, obj, "certificates", false)) < 0)
        return rc;
    ntok = tokens != NULL ? json_array_size(tokens) : 0;
    if (ntok > 0) {
        token_origin *grown =
            layer_tryarray(*origins, *norigins + ntok, sizeof(token_origin));

        if (grown == NULL)
            return LAYER_ENOMEM;
        *origins = grown;
        *norigins += ntok;
        if ((rc = parse_tokens(pc, at, tokens, p->nprincipals - 1, *origins)) <
            0)
            return rc;
    }
    if (certs != NULL && json_array_size(certs) > 0) {
        if ((pr->certs = layer_trycalloc(json_array_size(certs),
                                         sizeof(api_cert_rule))) == NULL)
            return LAYER_ENOMEM;
        json_array_foreach(certs, i, v)
        {
            kpath_index(&sub, at, "certificates", i);
            pr->ncerts++;
            if ((rc = parse_cert_rule(&pr->certs[i], pc, &sub, v)) < 0)
                return rc;
        }
    }
    if (ntok == 0 && pr->ncerts == 0)
        return fail(pc, LAYER_EINVALID, at,
                    "principal '%s' has no tokens_sha256 and no "
                    "certificates: nobody could authenticate as it",
                    pr->name);
    return parse_grants(&pr->grants, &pr->ngrants, pc, at, obj);
}

static int parse_document(parse_ctx *pc, json_t *doc)
{
    static const char *const keys[] = {"principals", "anonymous", NULL};
    static const char *const anon_keys[] = {"grants", NULL};
    kpath root = {""}, sub;
    json_t *principals, *anon, *v;
    token_origin *origins = NULL;
    size_t norigins = 0, i;
    int rc;

    if (!json_is_object(doc))
        return fail(pc, LAYER_EINVALID, NULL,
                    "the policy must be a JSON object");
    if ((rc = check_keys(pc, &root, doc, keys)) < 0)
        return rc;
    principals = json_object_get(doc, "principals");
    if (principals != NULL) {
        kpath_key(&sub, &root, "principals");
        if (!json_is_array(principals))
            return fail(pc, LAYER_EINVALID, &sub, "must be an array");
        if (json_array_size(principals) > API_POLICY_MAX_PRINCIPALS)
            return fail(pc, LAYER_ETOOBIG, &sub, "more than %d principals",
                        API_POLICY_MAX_PRINCIPALS);
        if (json_array_size(principals) > 0 &&
            (pc->p->principals = layer_trycalloc(
                 json_array_size(principals), sizeof(api_principal))) == NULL)
            return LAYER_ENOMEM;
        json_array_foreach(principals, i, v)
        {
            kpath_index(&sub, &root, "principals", i);
            if ((rc = parse_principal(pc, &sub, v, &origins, &norigins)) < 0)
                goto out;
        }
    }
    anon = json_object_get(doc, "anonymous");
    if (anon != NULL) {
        kpath_key(&sub, &root, "anonymous");
        if (!json_is_object(anon)) {
            rc = fail(pc, LAYER_EINVALID, &sub, "must be an object");
            goto out;
        }
        if ((rc = check_keys(pc, &sub, anon, anon_keys)) < 0 ||
            (rc = parse_grants(&pc->p->anonymous, &pc->p->nanonymous, pc, &sub,
                               anon)) < 0)
            goto out;
    }
out:
    layer_free(origins);
    return rc;
}

static void policy_free(api_policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nprincipals; i++)
        principal_dispose(&p->principals[i]);
    layer_free(p->principals);
    if (p->tokens != NULL)
        memset(p->tokens, 0, p->ntokens * sizeof(api_token));
    layer_free(p->tokens);
    for (size_t i = 0; i < p->nanonymous; i++)
        grant_dispose(&p->anonymous[i]);
    layer_free(p->anonymous);
    layer_free(p);
}

/* jansson's message without the " near '...'" it quotes from the text. */
static void json_reason(char *out, size_t cap, const char *text)
{
    const char *near = strstr(text, " near ");

    snprintf(out, cap, "%.*s",
             (int)(near != NULL ? (size_t)(near - text) : strlen(text)), text);
}

int api_policy_parse(api_policy **out, const char *text, size_t len,
                     const char *what)
{
    parse_ctx pc = {what != NULL ? what : "policy", NULL};
    json_error_t err;
    json_t *doc = NULL;
    int rc = 0;

    if ((pc.p = layer_trycalloc(1, sizeof(*pc.p))) == NULL)
        return LAYER_ENOMEM;
    atomic_init(&pc.p->refs, 1);
    if (len > API_POLICY_FILE_MAX) {
        rc = fail(&pc, LAYER_ETOOBIG, NULL, "larger than %u bytes",
                  API_POLICY_FILE_MAX);
        goto out;
    }
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (doc == NULL) {
        char why[160];

        json_reason(why, sizeof(why), err.text);
        rc = layer_error_set(LAYER_EINVALID,
                             "%s: line %d, column %d: invalid JSON: %s",
                             pc.what, err.line, err.column, why);
        goto out;
    }
    if ((rc = parse_document(&pc, doc)) < 0)
        goto out;
    *out = pc.p;
    pc.p = NULL;
out:
    json_decref(doc);
    policy_free(pc.p);
    return rc;
}

int api_policy_load(api_policy **out, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    char what[4160];
    int rc;

    snprintf(what, sizeof(what), "policy file %s", path);
    if ((rc = layer_file_read(&text, &len, AT_FDCWD, path, API_POLICY_FILE_MAX,
                              0, what)) < 0)
        return rc;
    snprintf(what, sizeof(what), "%s", path);
    rc = api_policy_parse(out, text, len, what);
    memset(text, 0, len);
    layer_free(text);
    return rc;
}

int api_policy_new_default(api_policy **out)
{
    static const char doc[] =
        "{\"anonymous\": {\"grants\": [{\"layers\": [\"*\"], "
        "\"ops\": [\"list\", \"read\", \"metrics\"]}]}}";

    return api_policy_parse(out, doc, sizeof(doc) - 1, "default policy");
}

size_t api_policy_principal_count(const api_policy *p)
{
    return p->nprincipals;
}

api_policy *api_policy__ref(api_policy *p)
{
    atomic_fetch_add(&p->refs, 1);
    return p;
}

void api_policy_release(api_policy *p)
{
    if (p != NULL && atomic_fetch_sub(&p->refs, 1) == 1)
        policy_free(p);
}
