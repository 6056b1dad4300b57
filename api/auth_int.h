#ifndef API_AUTH_INT_H
#define API_AUTH_INT_H

/*
 * Private to api/auth*.c: the shape of a parsed policy. auth_policy.c
 * builds it (and frees it); auth.c reads it to identify requests and to
 * decide. Nothing here changes once the policy is built, but the
 * reference count.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/auth.h"

/* All the operations a grant may name. */
#define API_OP__ALL (API_OP_LIST | API_OP_READ | API_OP_METRICS)

typedef struct api_grant {
    char **layers; /* globs */
    size_t nlayers;
    unsigned ops; /* API_OP_* bits */
    bool mutable_;
} api_grant;

/* A rule matching client certificates: every field that is set must
 * match (NULL / has_sha256 false: not constrained). */
typedef struct api_cert_rule {
    char *subject_cn;
    char *san_dns;
    char *san_uri;
    char *san_email;
    bool has_sha256;
    uint8_t sha256[32];
} api_cert_rule;

typedef struct api_principal {
    char *name;
    api_cert_rule *certs;
    size_t ncerts;
    api_grant *grants;
    size_t ngrants;
} api_principal;

/* One token digest and whose it is. */
typedef struct api_token {
    uint8_t digest[32];
    size_t principal;
} api_token;

struct api_policy {
    atomic_uint refs;
    api_principal *principals;
    size_t nprincipals;
    api_token *tokens; /* every principal's, flattened */
    size_t ntokens;
    api_grant *anonymous; /* the grants of requests without credentials */
    size_t nanonymous;
};

/* Take one more reference. */
api_policy *api_policy__ref(api_policy *p);

#endif
