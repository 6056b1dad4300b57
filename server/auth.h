#ifndef SRV_AUTH_H
#define SRV_AUTH_H

/*
 * The server's side of access control (the decisions are api/auth.h's):
 * - auth_names.c: whether the listen addresses are loopback ones (the
 *   safe defaults refuse others without a policy, and plain HTTP on
 *   them), and the names the server answers to (the Host check);
 * - auth_tls.c: a TLS connection's client certificate, verified with
 *   GnuTLS against the --client-ca bundle, as an api_client_cert.
 */

#include <stdbool.h>
#include <stddef.h>

#include "api/auth.h"
#include "config.h"

/* ---- listen addresses and names (auth_names.c) ---- */

/*
 * Do all the listen addresses resolve to loopback addresses only
 * (127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104)? A wildcard host ("*",
 * "0.0.0.0", "::", empty) is not loopback.
 *
 * @param[out] loopback the answer
 * @param[out] which when not, the first address that is not (borrowed
 *             from listen)
 * @return 0, or LAYER_EINVALID when an address does not parse or resolve
 *         (the reason recorded)
 */
int srv_auth_listen_loopback(bool *loopback, const char **which,
                             const srv_config_listen *listen);

/*
 * The names the server answers to: "localhost"; each listen address's
 * host, as written and as every address it resolves to (a wildcard host:
 * every address of the machine's interfaces); the DNS and IP subject
 * alternative names of the certificate (the leaf of cert_pem, when given);
 * and the --server-name values.
 *
 * @param[out] out the set (api_hostnames_free())
 * @return 0, LAYER_EINVALID (a name that is not one, a certificate that
 *         does not parse), LAYER_ETOOBIG or LAYER_ENOMEM
 */
int srv_auth_hostnames(api_hostnames **out, const srv_config_listen *listen,
                       const srv_config_listen *names, const char *cert_pem);

/* ---- client certificates (auth_tls.c) ---- */

/* Most subject alternative names of a client certificate looked at. */
#define SRV_PEER_MAX_SANS 32

/*
 * A connection's client certificate, read and verified once (at the
 * connection's first request) and kept for the requests that follow on
 * it. Initialise with SRV_PEER_INIT; release with srv_peer_dispose().
 */
typedef struct srv_peer {
    bool done;    /* looked at already */
    bool present; /* the client sent a certificate */
    api_client_cert cert;
    api_san sans[SRV_PEER_MAX_SANS];
    char *strings[SRV_PEER_MAX_SANS + 2]; /* owned: CN, SANs, failure */
    size_t nstrings;
} srv_peer;

#define SRV_PEER_INIT                                                          \
    {                                                                          \
        0                                                                      \
    }

/*
 * The client certificate of a TLS session (a gnutls_session_t whose
 * credentials hold the trusted CAs), verified: chain to a trusted CA,
 * validity period, key usage and extended key usage for TLS client
 * authentication. Computed on the first call, then cached in peer.
 *
 * @param peer the connection's record
 * @param session the gnutls_session_t
 * @return the certificate (borrowed from peer), or NULL when the client
 *         sent none; a certificate that failed verification is returned
 *         with verified false (never as "none")
 */
const api_client_cert *srv_peer_cert(srv_peer *peer, void *session);

/* Release what srv_peer_cert() allocated. */
void srv_peer_dispose(srv_peer *peer);

/*
 * Read the --client-ca bundle: PEM certificates (at most 1 MiB), at least
 * one, every one of them parsable by GnuTLS (which libmicrohttpd hands
 * them to).
 *
 * @param[out] out the PEM text, NUL-terminated (layer_free())
 * @param[out] count the number of certificates
 * @param path the file
 * @return 0, LAYER_ENOTFOUND, LAYER_EINVALID or LAYER_ERROR with the
 *         reason recorded (naming the file)
 */
int srv_auth_load_client_ca(char **out, unsigned *count, const char *path);

#endif
