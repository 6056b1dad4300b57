/*
 * Listen addresses and server names (server/auth.h).
 *
 * The loopback test resolves each --listen host the way the server binds
 * it (getaddrinfo with AI_PASSIVE) and looks at every address it gets: a
 * name that resolves to one public address among loopback ones is not
 * loopback. It runs before anything is bound, so a refused configuration
 * never opens a socket.
 *
 * The server's names are what a client may put in Host: "localhost",
 * the listen hosts (and for a wildcard, every interface address, which is
 * how a wildcard listener is reached), the certificate's DNS and IP
 * names (the names clients verify it against), and --server-name.
 */
#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "layer/error.h"

static bool wildcard_host(const char *host)
{
    return host[0] == '\0' || strcmp(host, "*") == 0 ||
           strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

static bool loopback_addr(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a =
            &((const struct sockaddr_in6 *)sa)->sin6_addr;

        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

/* getaddrinfo of a listen address; the caller frees *res. */
static int resolve(struct addrinfo **res, char *host, size_t host_cap,
                   const char *spec)
{
    char port[8];
    struct addrinfo hints;
    int rc, err;

    if ((rc = srv_config_parse_listen(host, host_cap, port, sizeof(port),
                                      spec)) < 0)
        return rc;
    if (wildcard_host(host)) {
        *res = NULL;
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((err = getaddrinfo(host, port, &hints, res)) != 0)
        return layer_error_set(LAYER_EINVALID, "cannot resolve %s: %s", spec,
                               gai_strerror(err));
    return 0;
}

int srv_auth_listen_loopback(bool *loopback, const char **which,
                             const srv_config_listen *listen)
{
    char host[256];

    *loopback = true;
    *which = NULL;
    for (size_t i = 0; i < listen->n; i++) {
        struct addrinfo *res = NULL;
        bool all = true;
        int rc;

        if ((rc = resolve(&res, host, sizeof(host), listen->v[i])) < 0)
            return rc;
        if (res == NULL)
            all = false; /* a wildcard */
        for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
            all = all && loopback_addr(ai->ai_addr);
        if (res != NULL)
            freeaddrinfo(res);
        if (!all) {
            *loopback = false;
            *which = listen->v[i];
            return 0;
        }
    }
    return 0;
}

/* Add the numeric form of an address. */
static int add_addr(api_hostnames *h, const struct sockaddr *sa)
{
    char buf[INET6_ADDRSTRLEN];
    const void *a;

    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    else
        return 0;
    if (inet_ntop(sa->sa_family, a, buf, sizeof(buf)) == NULL)
        return 0;
    return api_hostnames_add(h, buf);
}

static int add_interfaces(api_hostnames *h)
{
    struct ifaddrs *ifs = NULL;
    int rc = 0;

    if (getifaddrs(&ifs) != 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "getifaddrs");
    for (const struct ifaddrs *i = ifs; i != NULL && rc == 0; i = i->ifa_next)
        rc = add_addr(h, i->ifa_addr);
    freeifaddrs(ifs);
    return rc;
}

static int add_listen(api_hostnames *h, const char *spec)
{
    char host[256];
    struct addrinfo *res = NULL;
    int rc;

    if ((rc = resolve(&res, host, sizeof(host), spec)) < 0)
        return rc;
    if (res == NULL)
        return add_interfaces(h);
    rc = api_hostnames_add(h, host);
    for (const struct addrinfo *ai = res; ai != NULL && rc == 0;
         ai = ai->ai_next)
        rc = add_addr(h, ai->ai_addr);
    freeaddrinfo(res);
    return rc;
}

/* The DNS and IP subject alternative names of the first certificate. */
static int add_cert_names(api_hostnames *h, const char *cert_pem)
{
    BIO *bio = BIO_new_mem_buf(cert_pem, -1);
    X509 *x = NULL;
    GENERAL_NAMES *sans = NULL;
    int rc = 0;

    if (bio == NULL || (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
        rc = layer_error_set(LAYER_EINVALID,
                             "cannot read the server certificate's names");
        goto out;
    }
    sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && rc == 0;
         i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        char buf[INET6_ADDRSTRLEN];
        const unsigned char *d;
        int len;

        if (g->type == GEN_DNS) {
            d = ASN1_STRING_get0_data(g->d.dNSName);
            len = ASN1_STRING_length(g->d.dNSName);
            /* A name with a NUL inside is not a name. */
            if (len > 0 && len < 256 && memchr(d, '\0', (size_t)len) == NULL) {
                char name[256];

                memcpy(name, d, (size_t)len);
                name[len] = '\0';
                /* Names the Host check cannot hold are skipped, not
                 * fatal: they only narrow who is answered. */
                if (api_hostnames_add(h, name) == LAYER_ENOMEM)
                    rc = LAYER_ENOMEM;
            }
        } else if (g->type == GEN_IPADD) {
            d = ASN1_STRING_get0_data(g->d.iPAddress);
            len = ASN1_STRING_length(g->d.iPAddress);
            if ((len == 4 && inet_ntop(AF_INET, d, buf, sizeof(buf))) ||
                (len == 16 && inet_ntop(AF_INET6, d, buf, sizeof(buf))))
                rc = api_hostnames_add(h, buf);
        }
    }
out:
    GENERAL_NAMES_free(sans);
    X509_free(x);
    BIO_free(bio);
    return rc;
}

int srv_auth_hostnames(api_hostnames **out, const srv_config_listen *listen,
                       const srv_config_listen *names, const char *cert_pem)
{
    api_hostnames *h = NULL;
    int rc;

    if ((rc = api_hostnames_new(&h, NULL, 0)) < 0 ||
        (rc = api_hostnames_add(h, "localhost")) < 0)
        goto out;
    for (size_t i = 0; i < listen->n; i++) {
        if ((rc = add_listen(h, listen->v[i])) < 0)
            goto out;
    }
    if (cert_pem != NULL && (rc = add_cert_names(h, cert_pem)) < 0)
        goto out;
    for (size_t i = 0; names != NULL && i < names->n; i++) {
        if ((rc = api_hostnames_add(h, names->v[i])) < 0)
            goto out;
    }
    *out = h;
    h = NULL;
out:
    api_hostnames_free(h);
    return rc;
}
