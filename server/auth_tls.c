/*
 * Client certificates (server/auth.h): what a TLS client presented,
 * verified with GnuTLS, turned into the api_client_cert the access
 * decisions read.
 *
 * libmicrohttpd asks for a client certificate when it is given trusted
 * CAs (MHD_OPTION_HTTPS_MEM_TRUST: GNUTLS_CERT_REQUEST, so a client
 * without one still connects) but verifies nothing; that is done here,
 * on the connection's GnuTLS session, at its first request:
 * gnutls_certificate_verify_peers() with the key purpose of TLS client
 * authentication checks the chain against those CAs, every certificate's
 * validity period, the CA constraints and key usages, and the leaf's
 * extended key usage. The outcome and the names the policy matches
 * (subject CN, DNS/URI/email SANs, SHA-256 of the DER) are kept for the
 * connection's later requests, so a kept-alive connection verifies once.
 *
 * A certificate that does not verify is kept as such (verified false,
 * with GnuTLS's description of why), so the request is refused rather
 * than treated as anonymous.
 */
#include "auth.h"

#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cli.h"
#include "layer/alloc.h"
#include "layer/error.h"

/* Longest CN or SAN kept; longer ones are ignored. */
#define NAME_CAP 1024

/* Keep a copy of s (len bytes) in peer; NULL when out of room or
 * memory. */
static const char *keep(srv_peer *peer, const char *s, size_t len)
{
    char *copy;

    if (peer->nstrings == sizeof(peer->strings) / sizeof(peer->strings[0]) ||
        (copy = layer_trystrndup(s, len)) == NULL)
        return NULL;
    peer->strings[peer->nstrings++] = copy;
    return copy;
}

static void read_names(srv_peer *peer, gnutls_x509_crt_t crt)
{
    char buf[NAME_CAP + 1];
    size_t size = sizeof(buf);

    if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
                                      buf, &size) == 0 &&
        size < sizeof(buf) && memchr(buf, '\0', size) == NULL)
        peer->cert.subject_cn = keep(peer, buf, size);
    for (unsigned seq = 0; peer->cert.nsans < SRV_PEER_MAX_SANS; seq++) {
        api_san_type type;
        const char *v;
        int t;

        size = sizeof(buf) - 1;
        t = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &size, NULL);
        if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (t == GNUTLS_SAN_DNSNAME)
            type = API_SAN_DNS;
        else if (t == GNUTLS_SAN_URI)
            type = API_SAN_URI;
        else if (t == GNUTLS_SAN_RFC822NAME)
            type = API_SAN_EMAIL;
        else
            continue; /* too long, or a kind no rule matches */
        /* A name with a NUL inside matches nothing. */
        if (size >= sizeof(buf) || memchr(buf, '\0', size) != NULL ||
            (v = keep(peer, buf, size)) == NULL)
            continue;
        peer->sans[peer->cert.nsans].type = type;
        peer->sans[peer->cert.nsans].value = v;
        peer->cert.nsans++;
    }
    peer->cert.sans = peer->sans;
}

static void set_failure(srv_peer *peer, unsigned status, const char *what)
{
    gnutls_datum_t out = {NULL, 0};

    peer->cert.verified = false;
    if (what != NULL) {
        peer->cert.failure = what;
        return;
    }
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509,
                                                     &out, 0) == 0 &&
        out.data != NULL) {
        size_t len = strlen((char *)out.data);

        /* GnuTLS ends each sentence with a space. */
        while (len > 0 && out.data[len - 1] == ' ')
            len--;
        peer->cert.failure = keep(peer, (const char *)out.data, len);
    }
    gnutls_free(out.data);
    if (peer->cert.failure == NULL)
        peer->cert.failure = "the certificate did not verify";
}

static void inspect(srv_peer *peer, gnutls_session_t session)
{
    gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID,
                                     (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
                                     0};
    const gnutls_datum_t *chain;
    unsigned n = 0, status = 0;
    gnutls_x509_crt_t crt = NULL;
    size_t size = sizeof(peer->cert.sha256);

    chain = gnutls_certificate_get_peers(session, &n);
    if (chain == NULL || n == 0)
        return;
    peer->present = true;
    if (gnutls_certificate_type_get(session) != GNUTLS_CRT_X509) {
        set_failure(peer, 0, "the certificate is not an X.509 certificate");
        return;
    }
    if (gnutls_x509_crt_init(&crt) < 0 ||
        gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) < 0 ||
        gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256,
                                        peer->cert.sha256, &size) < 0 ||
        size != sizeof(peer->cert.sha256)) {
        set_failure(peer, 0, "the certificate cannot be parsed");
        goto out;
    }
    if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0) {
        set_failure(peer, 0, "the certificate cannot be verified");
        goto out;
    }
    if (status != 0) {
        set_failure(peer, status, NULL);
        goto out;
    }
    peer->cert.verified = true;
    read_names(peer, crt);
out:
    if (crt != NULL)
        gnutls_x509_crt_deinit(crt);
}

const api_client_cert *srv_peer_cert(srv_peer *peer, void *session)
{
    if (!peer->done) {
        peer->done = true;
        if (session != NULL)
            inspect(peer, session);
    }
    return peer->present ? &peer->cert : NULL;
}

void srv_peer_dispose(srv_peer *peer)
{
    for (size_t i = 0; i < peer->nstrings; i++)
        layer_free(peer->strings[i]);
    memset(peer, 0, sizeof(*peer));
}

int srv_auth_load_client_ca(char **out, unsigned *count, const char *path)
{
    char *pem = NULL;
    size_t len = 0;
    gnutls_x509_crt_t *list = NULL;
    gnutls_datum_t d;
    unsigned n = 0;
    int rc, err;

    if ((rc = srv_read_file(&pem, &len, path, "client CA", 1u << 20)) < 0)
        return rc;
    d.data = (unsigned char *)pem;
    d.size = (unsigned)len;
    err = gnutls_x509_crt_list_import2(&list, &n, &d, GNUTLS_X509_FMT_PEM, 0);
    if (err < 0 || n == 0) {
        rc = layer_error_set(LAYER_EINVALID,
                             "client CA file %s: no PEM certificates that "
                             "GnuTLS can read (%s)",
                             path, err < 0 ? gnutls_strerror(err) : "empty");
        goto out;
    }
    *count = n;
    *out = pem;
    pem = NULL;
out:
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(list[i]);
    gnutls_free(list);
    layer_free(pem);
    return rc;
}
