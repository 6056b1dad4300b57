#ifndef API_AUTH_H
#define API_AUTH_H

/**
 * @file api/auth.h
 * @brief Access control: who a request is, and what it may do.
 *
 * Three steps, each usable on its own so that every front end of the
 * server (the REST routes, and any later view such as a registry) asks
 * the same questions and only formats the answer its own way:
 *
 * 1. A policy (api_policy) is read from a JSON document: principals with
 *    bearer tokens (kept as SHA-256 digests) and client certificates,
 *    and their grants; an "anonymous" section for requests without
 *    credentials. Without a policy file the default policy applies:
 *    anonymous may list and read the immutable layers and read the
 *    metrics. A policy is held by an api_auth, which swaps it atomically
 *    on reload while requests keep the one they started with.
 * 2. api_auth_identify() turns a request's credentials (its
 *    Authorization header, the client certificate the TLS layer
 *    verified) into an api_identity: a principal, anonymous, or a
 *    failure with its reason.
 * 3. api_auth_decide() answers whether an identity may do an operation,
 *    on a layer or not: allowed, 401 (no or bad credentials), 403 (a
 *    principal without the grant) or hidden (404: a layer the principal
 *    may neither list nor read looks exactly like a missing one).
 *
 * Host names (api_hostnames) are the other half of the front door: a
 * request whose Host names something else is answered 421, which defends
 * a loopback server against DNS rebinding.
 *
 * Secrets: a token is hashed as soon as it is parsed and never copied,
 * logged or echoed; messages about the policy never quote the values of
 * tokens_sha256 (a raw token pasted there by mistake must not reach a
 * log).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The realm named in WWW-Authenticate challenges. */
#define API_AUTH_REALM "layerd"

/** Longest Authorization header value looked at; longer is malformed. */
#define API_AUTH_HEADER_MAX 4096

/** Largest policy file read (bytes). */
#define API_POLICY_FILE_MAX (1u << 20)

/** Caps of a policy: principals, and tokens, certificates and grants of
 * each, layers of each grant, and the length of a name or a glob. */
#define API_POLICY_MAX_PRINCIPALS 1024
#define API_POLICY_MAX_ITEMS      256
#define API_POLICY_NAME_MAX       128
#define API_POLICY_GLOB_MAX       256

/* ---- policies ---- */

/**
 * A parsed, validated policy. Immutable once made, shared by reference
 * between the api_auth that holds it and the requests that use it.
 */
typedef struct api_policy api_policy;

/**
 * Parse and validate a policy document.
 *
 * The document is one JSON object (duplicate keys refused) of
 * "principals" (an array) and "anonymous" ({"grants": [...]}); a
 * principal is {"name", "tokens_sha256": [64 hex], "certificates":
 * [{"subject_cn"|"san_dns"|"san_uri"|"san_email"|"sha256": string, ...}],
 * "grants": [...]}, a grant {"layers": [glob, ...], "ops": ["list" |
 * "read" | "metrics", ...], "mutable": bool}. Every object may carry a
 * "comment" string, which is ignored. Unknown keys, wrong types, empty or
 * duplicate names, duplicate token digests, bad globs and unknown ops are
 * refused; the message names the key path, e.g.
 * "principals[1].grants[0].ops[2]: unknown op 'write' (expected list,
 * read or metrics)".
 *
 * @param[out] out the policy (one reference); release with
 *             api_policy_release()
 * @param text the document, len bytes (need not be NUL-terminated)
 * @param len its length
 * @param what how messages name the document (e.g. its path); NULL:
 *        "policy"
 * @return 0, LAYER_EINVALID (reason recorded), LAYER_ETOOBIG (a cap) or
 *         LAYER_ENOMEM
 */
int api_policy_parse(api_policy **out, const char *text, size_t len,
                     const char *what);

/**
 * Read a policy file (at most API_POLICY_FILE_MAX bytes) and parse it
 * with api_policy_parse().
 * @return 0, LAYER_ENOTFOUND, LAYER_EINVALID, LAYER_ETOOBIG, LAYER_ERROR
 *         or LAYER_ENOMEM, the reason recorded with the path
 */
int api_policy_load(api_policy **out, const char *path);

/**
 * The policy without a policy file: no principals; anonymous may list
 * and read every immutable layer and read the metrics.
 * @param[out] out the policy (one reference)
 * @return 0 or LAYER_ENOMEM
 */
int api_policy_new_default(api_policy **out);

/** Number of principals. */
size_t api_policy_principal_count(const api_policy *p);

/** Drop one reference; the last one frees the policy. NULL is accepted. */
void api_policy_release(api_policy *p);

/* ---- the holder ---- */

/** The policy in force, replaced atomically on reload. Thread-safe. */
typedef struct api_auth api_auth;

/**
 * @param[out] out the holder; free with api_auth_free()
 * @param policy the policy to hold; its reference is taken over (also on
 *        failure)
 * @return 0 or LAYER_ENOMEM
 */
int api_auth_new(api_auth **out, api_policy *policy);

/**
 * Put policy in force. Requests already identified keep the policy they
 * started with; the old one is freed when the last of them ends.
 * @param policy its reference is taken over
 */
void api_auth_replace(api_auth *auth, api_policy *policy);

/** Free the holder (and its reference to the policy). NULL is accepted. */
void api_auth_free(api_auth *auth);

/* ---- credentials ---- */

/** The kinds of subject alternative names a certificate rule matches. */
typedef enum api_san_type {
    API_SAN_DNS,  /**< dNSName */
    API_SAN_URI,  /**< uniformResourceIdentifier */
    API_SAN_EMAIL /**< rfc822Name */
} api_san_type;

/** One subject alternative name of a client certificate. */
typedef struct api_san {
    api_san_type type;
    const char *value;
} api_san;

/**
 * A client certificate as the TLS layer saw it. Strings are borrowed for
 * the duration of the request.
 */
typedef struct api_client_cert {
    /** The chain verified against the configured CAs, the certificate is
     * within its validity period and fit for TLS client authentication. */
    bool verified;
    /** Why verification failed (for the trace), or NULL. */
    const char *failure;
    const char *subject_cn; /**< the subject's common name, or NULL */
    const api_san *sans;
    size_t nsans;
    uint8_t sha256[32]; /**< SHA-256 of the certificate (DER) */
} api_client_cert;

/** How a request presented itself. */
typedef enum api_auth_method {
    API_AUTH_ANONYMOUS, /**< no credentials */
    API_AUTH_TOKEN,     /**< Authorization: Bearer */
    API_AUTH_BASIC,     /**< Authorization: Basic, the password a token */
    API_AUTH_MTLS       /**< a client certificate */
} api_auth_method;

/** Why a request was refused: the label values of
 * layerd_auth_failures_total{reason}. */
typedef enum api_auth_failure {
    API_AUTH_FAIL_NONE = 0,
    API_AUTH_FAIL_MISSING,             /**< no credentials, and needed */
    API_AUTH_FAIL_MALFORMED,           /**< an unreadable Authorization */
    API_AUTH_FAIL_INVALID_TOKEN,       /**< a token no principal has */
    API_AUTH_FAIL_BAD_CERTIFICATE,     /**< a certificate that failed */
    API_AUTH_FAIL_UNKNOWN_CERTIFICATE, /**< verified, but no principal */
    API_AUTH_FAIL_FORBIDDEN,           /**< a principal without the grant */
    API_AUTH_FAIL_COUNT
} api_auth_failure;

/** The label value of a failure reason ("missing", "malformed",
 * "invalid_token", ...); "none" for API_AUTH_FAIL_NONE. */
const char *api_auth_failure_name(api_auth_failure reason);

/** The span value of a method: "anonymous", "token", "basic", "mtls". */
const char *api_auth_method_name(api_auth_method method);

/**
 * Who a request is. Holds a reference to the policy it was identified
 * under: release with api_identity_dispose().
 */
typedef struct api_identity {
    api_policy *policy;
    size_t principal; /**< index into the policy, or SIZE_MAX */
    api_auth_method method;
    api_auth_failure failure; /**< NONE, or why the credentials failed */
} api_identity;

#define API_IDENTITY_INIT                                                      \
    {                                                                          \
        NULL, SIZE_MAX, API_AUTH_ANONYMOUS, API_AUTH_FAIL_NONE                 \
    }

/**
 * Identify a request under the policy in force.
 *
 * An Authorization header decides when there is one: "Bearer <token>",
 * or "Basic <base64 of user:token>" (the user name is ignored); a token
 * must be one of a principal's tokens_sha256 (compared in constant time
 * over the digests). A client certificate that failed verification is
 * refused whatever else the request carries. Without a header, a
 * verified certificate must match a principal's "certificates" rule.
 * Without either, the request is anonymous.
 *
 * Never fails: *out is always set (failures are in out->failure).
 *
 * @param[out] out the identity; api_identity_dispose() it
 * @param auth the holder
 * @param authorization the Authorization header's value, or NULL
 * @param cert the client certificate, or NULL when none was presented
 */
void api_auth_identify(api_identity *out, api_auth *auth,
                       const char *authorization, const api_client_cert *cert);

/** The principal's name (borrowed from the identity), or NULL when
 * anonymous or refused. */
const char *api_identity_name(const api_identity *id);

/** Release an identity's policy reference (an unset one is accepted). */
void api_identity_dispose(api_identity *id);

/* ---- decisions ---- */

/** What a request wants to do. */
typedef enum api_op {
    API_OP_LIST = 1,   /**< see a layer in a list (or list at all) */
    API_OP_READ = 2,   /**< read a layer: metadata, entries, files, export */
    API_OP_METRICS = 4 /**< read /metrics */
} api_op;

/** What is known of a layer's mutability. */
typedef enum api_mutability {
    API_LAYER_UNKNOWN,   /**< before the store was asked */
    API_LAYER_IMMUTABLE, /**< the store says immutable */
    API_LAYER_MUTABLE    /**< a container's layer, or one still changing */
} api_mutability;

/** The answer. */
typedef enum api_verdict {
    API_ALLOW,
    API_DENY_UNAUTHENTICATED, /**< 401: credentials needed or refused */
    API_DENY_FORBIDDEN,       /**< 403: known principal, no grant */
    API_DENY_HIDDEN           /**< 404: as if the layer did not exist */
} api_verdict;

/**
 * May the identity do op (on the layer layer_id, if not NULL)?
 *
 * - Refused credentials: 401.
 * - No layer: allowed when some grant has the op (list: the collection;
 *   metrics), else 403.
 * - A layer, op read: allowed when a grant with "read" matches the id
 *   (and has "mutable": true if the layer is mutable); else 403 when a
 *   grant with "list" matches it (the principal knows it exists); else
 *   hidden.
 * - A layer, op list: allowed or hidden, the same way.
 * - UNKNOWN mutability is decided as immutable: the caller decides again
 *   once the store has answered.
 * - Anonymous requests that are refused get 401 instead of 403 or (before
 *   the store was asked) hidden, when the policy has principals to
 *   authenticate as: the answer invites credentials and, being decided
 *   from the id alone, says nothing of whether the layer exists.
 *
 * @param id the identity
 * @param op one operation
 * @param layer_id the layer's id, or NULL
 * @param m what is known of the layer's mutability
 */
api_verdict api_auth_decide(const api_identity *id, api_op op,
                            const char *layer_id, api_mutability m);

/**
 * The reason to count for a refusal: the credentials' failure for 401
 * (MISSING for anonymous), FORBIDDEN for 403, NONE otherwise.
 */
api_auth_failure api_auth_reason(const api_identity *id, api_verdict v);

/**
 * Match an id against a grant's glob, as fnmatch(3) without flags: '*'
 * any run of characters, '?' one, "[...]" a set ("[!...]" or "[^...]"
 * its complement, "a-z" ranges), '\\' quotes the next character. Exposed
 * for the tests.
 */
bool api_auth_glob_match(const char *glob, const char *s);

/**
 * Check a glob: 1..API_POLICY_GLOB_MAX printable ASCII characters, sets
 * closed and not empty, no trailing '\\'.
 * @return 0 or LAYER_EINVALID with the reason recorded
 */
int api_auth_glob_check(const char *glob);

/**
 * Parse an Authorization header value. Exposed for the tests.
 *
 * @param[out] method API_AUTH_TOKEN or API_AUTH_BASIC
 * @param[out] token where the token starts (borrowed from value, or from
 *             scratch for Basic, where it is decoded)
 * @param[out] token_len its length
 * @param value the header value
 * @param scratch at least API_AUTH_HEADER_MAX bytes for Basic's decoding;
 *        the caller wipes it after use
 * @return 0, or LAYER_EINVALID for a malformed header or another scheme
 *         (the recorded reason never quotes the header)
 */
int api_auth_parse_header(api_auth_method *method, const char **token,
                          size_t *token_len, const char *value, char *scratch);

/* ---- Host names ---- */

/** The names a server answers to (a Host check). */
typedef struct api_hostnames api_hostnames;

/**
 * Build the set. Names are host names (compared case-insensitively, a
 * trailing '.' ignored; "*.example.com" matches one label in front of
 * example.com) or IP addresses (compared as addresses: "[::1]", "::1" and
 * "0:0::1" are one). Invalid names are refused.
 *
 * @param[out] out the set; free with api_hostnames_free()
 * @param names the names
 * @param n their number
 * @return 0, LAYER_EINVALID (reason recorded) or LAYER_ENOMEM
 */
int api_hostnames_new(api_hostnames **out, const char *const *names, size_t n);

/** Add a name to a set being built (before it is shared). */
int api_hostnames_add(api_hostnames *h, const char *name);

/**
 * Check a Host header value ("name", "name:port", "[v6]", "[v6]:port";
 * the port is not compared).
 * @return 0 when it names the server, LAYER_ENOTFOUND when it names
 *         something else, LAYER_EINVALID when it is not a Host value
 */
int api_hostnames_check(const api_hostnames *h, const char *host);

/** Number of names. */
size_t api_hostnames_count(const api_hostnames *h);

/** Name i in its normalised form (borrowed), or NULL. */
const char *api_hostnames_name(const api_hostnames *h, size_t i);

/** Free the set. NULL is accepted. */
void api_hostnames_free(api_hostnames *h);

#endif
