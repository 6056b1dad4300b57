/*
 * The server's names, and the Host check (api/auth.h).
 *
 * A browser that a hostile page has pointed at a loopback server by DNS
 * rebinding sends the attacker's name as Host; the server answers only
 * requests whose Host is one of its own names, so such a request gets
 * 421 Misdirected Request and no data.
 *
 * Names are kept normalised: host names lower-case without a trailing
 * '.', IP addresses in inet_ntop's form (so "::1", "[::1]" and "0::1"
 * compare equal, and an IPv4-mapped form is not confused with another).
 * A name "*.example.com" matches exactly one label in front of
 * "example.com", as certificate wildcards do. The port of a Host value is
 * checked for syntax but not compared: the socket it arrived on says
 * which port it was.
 */
#include "api_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "api/auth.h"
#include "layer/alloc.h"
#include "layer/error.h"

/* Longest name (RFC 1035: 253 characters for a name, plus slack). */
#define NAME_MAX_LEN 255
/* Most names a server has. */
#define NAMES_MAX 256

struct api_hostnames {
    char *names[NAMES_MAX];
    size_t n;
};

static bool name_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_';
}

/*
 * Normalise host (len bytes, no port, no brackets) into out (at least
 * INET6_ADDRSTRLEN and NAME_MAX_LEN + 1 bytes): an address in inet_ntop
 * form, or a lower-case name without a trailing dot. allow_wild admits a
 * leading "*.". Returns false for anything else.
 */
static bool normalise(char *out, const char *host, size_t len, bool allow_wild)
{
    char buf[NAME_MAX_LEN + 1];
    struct in6_addr a6;
    struct in_addr a4;
    size_t start = 0;

    if (len == 0 || len > NAME_MAX_LEN)
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return inet_ntop(AF_INET, &a4, out, NAME_MAX_LEN + 1) != NULL;
    if (inet_pton(AF_INET6, buf, &a6) == 1)
        return inet_ntop(AF_INET6, &a6, out, NAME_MAX_LEN + 1) != NULL;
    if (buf[len - 1] == '.')
        buf[--len] = '\0';
    if (allow_wild && len > 2 && buf[0] == '*' && buf[1] == '.')
        start = 2;
    if (len == start)
        return false;
    for (size_t i = start; i < len; i++) {
        if (!name_char((unsigned char)buf[i]) ||
            (buf[i] == '.' && (i == start || buf[i - 1] == '.')))
            return false;
        buf[i] = (char)tolower((unsigned char)buf[i]);
    }
    memcpy(out, buf, len + 1);
    return true;
}

int api_hostnames_add(api_hostnames *h, const char *name)
{
    char norm[NAME_MAX_LEN + 1];
    size_t len = strnlen(name, NAME_MAX_LEN + 3);
    const char *s = name;
    char *copy;

    /* An IPv6 address may come in brackets. */
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
        s = name + 1;
        len -= 2;
    }
    if (!normalise(norm, s, len, true))
        return layer_error_set(LAYER_EINVALID,
                               "'%.64s' is not a host name or an IP address",
                               name);
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->names[i], norm) == 0)
            return 0;
    }
    if (h->n == NAMES_MAX)
        return layer_error_set(LAYER_ETOOBIG, "more than %d server names",
                               NAMES_MAX);
    if ((copy = layer_trystrdup(norm)) == NULL)
        return LAYER_ENOMEM;
    h->names[h->n++] = copy;
    return 0;
}

int api_hostnames_new(api_hostnames **out, const char *const *names, size_t n)
{
    api_hostnames *h = layer_trycalloc(1, sizeof(*h));
    int rc;

    if (h == NULL)
        return LAYER_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((rc = api_hostnames_add(h, names[i])) < 0) {
            api_hostnames_free(h);
            return rc;
        }
    }
    *out = h;
    return 0;
}

static bool matches(const char *name, const char *host)
{
    const char *dot;

    if (strcmp(name, host) == 0)
        return true;
    /* "*.example.com": one label, then ".example.com". */
    if (name[0] != '*' || (dot = strchr(host, '.')) == NULL || dot == host)
        return false;
    return strcmp(name + 1, dot) == 0;
}

int api_hostnames_check(const api_hostnames *h, const char *host)
{
    char norm[NAME_MAX_LEN + 1];
    size_t len = strnlen(host, NAME_MAX_LEN + 8);
    const char *name = host, *port = NULL;
    size_t nlen;

    if (len == 0 || len > NAME_MAX_LEN + 7)
        return layer_error_set(LAYER_EINVALID, "the Host header is empty "
                                               "or too long");
    if (host[0] == '[') {
        const char *close = memchr(host, ']', len);

        if (close == NULL)
            return layer_error_set(LAYER_EINVALID,
                                   "the Host header has a '[' without ']'");
        name = host + 1;
        nlen = (size_t)(close - name);
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return layer_error_set(LAYER_EINVALID,
                                   "the Host header has text after ']'");
        /* Only an IPv6 address goes in brackets. */
        if (memchr(name, ':', nlen) == NULL)
            return layer_error_set(LAYER_EINVALID,
                                   "the Host header has brackets around a "
                                   "name");
    } else {
        const char *colon = memchr(host, ':', len);

        nlen = colon != NULL ? (size_t)(colon - host) : len;
        if (colon != NULL)
            port = colon + 1;
    }
    if (port != NULL) {
        size_t plen = strlen(port);

        if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen)
            return layer_error_set(LAYER_EINVALID,
                                   "the Host header's port is not a number");
    }
    if (!normalise(norm, name, nlen, false))
        return layer_error_set(LAYER_EINVALID,
                               "the Host header is not a host name or an "
                               "IP address");
    for (size_t i = 0; i < h->n; i++) {
        if (matches(h->names[i], norm))
            return 0;
    }
    return layer_error_set(LAYER_ENOTFOUND,
                           "the Host header names another server");
}

size_t api_hostnames_count(const api_hostnames *h)
{
    return h->n;
}

const char *api_hostnames_name(const api_hostnames *h, size_t i)
{
    return i < h->n ? h->names[i] : NULL;
}

void api_hostnames_free(api_hostnames *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++)
        layer_free(h->names[i]);
    layer_free(h);
}
