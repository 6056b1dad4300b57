/*
 * The settings of `layerd serve`: one table, one row per setting (name,
 * type, field, default, help), drives everything else. The command line
 * and the config file accept the same names and values and report the
 * same errors; merging copies a field only where the destination has
 * none, which is how flags override the file; the defaults are applied
 * through the same parser as given values; `--help` and the README's
 * table are printed from the rows. Adding a setting is adding a field to
 * srv_config and a row here.
 *
 * The file is read whole (capped at 1 MiB), then parsed line by line;
 * every error names the line.
 */

#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "cli.h"
#include "layer/alloc.h"
#include "layer/error.h"

/* A config file is a few lines; anything bigger is a mistake. */
#define CONFIG_FILE_MAX (1u << 20)
#define CONFIG_LINE_MAX 4096

/* --help: the column the help text starts at, and the line width. */
#define HELP_COLUMN 24
#define HELP_WIDTH  79

#define FIELD(f) offsetof(srv_config, f)

static const char *const log_formats[] = {"json", "text", NULL};
static const char *const tar_kinds[] = {"auto", "canonical", "original", NULL};
static const char *const registry_compressions[] = {"gzip", "zstd", "none",
                                                    NULL};

static const srv_setting settings[] = {
    {.name = "store",
     .type = SRV_SETTING_STRING,
     .offset = FIELD(store),
     .arg = "STORE",
     .help = "the store to serve: dir:PATH, containers-storage:PATH or "
             "docker:PATH (required)"},
    {.name = "listen",
     .type = SRV_SETTING_LISTEN,
     .offset = FIELD(listen),
     .arg = "ADDR:PORT",
     .def = "127.0.0.1:8443",
     .help = "address to listen on, repeatable; IPv6 as [ADDR]:PORT"},
    {.name = "cert",
     .type = SRV_SETTING_STRING,
     .offset = FIELD(cert),
     .arg = "FILE",
     .help = "PEM certificate chain, leaf first"},
    {.name = "key",
     .type = SRV_SETTING_STRING,
     .offset = FIELD(key),
     .arg = "FILE",
     .help = "PEM private key of the certificate (without --cert and --key "
             "an ephemeral self-signed certificate is generated and its "
             "fingerprint logged)"},
    {.name = "insecure-http",
     .type = SRV_SETTING_BOOL,
     .offset = FIELD(insecure_http),
     .def = "false",
     .help = "serve plain HTTP instead of HTTPS"},
    {.name = "config",
     .type = SRV_SETTING_STRING,
     .offset = FIELD(config),
     .arg = "FILE",
     .where = SRV_SETTING_FLAG_ONLY,
     .help = "read settings from FILE: 'key = value' lines with the long "
             "option names as keys; options on the command line take "
             "precedence"},
    {.name = "trace",
     .type = SRV_SETTING_STRING,
     .offset = FIELD(trace),
     .arg = "FILE|-|none",
     .def = "-",
     .help = "where request spans go: a file, - (standard error) or none"},
    {.name = "log-format",
     .type = SRV_SETTING_CHOICE,
     .offset = FIELD(log_format),
     .choices = log_formats,
     .def = "json",
     .help = "span line format"},
    {.name = "max-exports",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(max_exports),
     .arg = "N",
     .def = "16",
     .min = 1,
     .max = 4096,
     .help = "concurrent exports before 503"},
    {.name = "max-connections",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(max_connections),
     .arg = "N",
     .def = "1024",
     .min = 1,
     .max = 65536,
     .help = "open connections"},
    {.name = "idle-timeout",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(idle_timeout),
     .arg = "S",
     .def = "60",
     .min = 1,
     .max = 86400,
     .help = "close connections idle for S seconds"},
    {.name = "grace",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(grace),
     .arg = "S",
     .def = "10",
     .min = 0,
     .max = 3600,
     .help = "on SIGTERM, let requests finish for S seconds"},
    {.name = "openapi",
     .type = SRV_SETTING_STRING,
     .offset = FIELD(openapi),
     .arg = "FILE",
     .help = "the contract served at /openapi.yaml (without it, the one "
             "found next to the binary)"},
    {.name = "no-cache",
     .type = SRV_SETTING_BOOL,
     .offset = FIELD(no_cache),
     .def = "false",
     .help = "run every export and keep nothing on disk; by default the "
             "exports of immutable layers are kept in the blob cache and "
             "served from it"},
    {.name = "cache-dir",
     .type = SRV_SETTING_STRING,
     .offset = FIELD(cache_dir),
     .arg = "DIR",
     .help = "the blob cache's directory (created 0700; its parent must "
             "exist); by default $CACHE_DIRECTORY (systemd), else "
             "/var/cache/layerd for root, else $XDG_CACHE_HOME/layerd "
             "(~/.cache/layerd)"},
    {.name = "cache-max-bytes",
     .type = SRV_SETTING_BYTES,
     .offset = FIELD(cache_max_bytes),
     .arg = "BYTES",
     .def = "10G",
     .help = "bytes of blobs the cache keeps (K, M, G, T: powers of 1024); "
             "the least recently used blobs that no client reads are "
             "evicted past it"},
    {.name = "tar",
     .type = SRV_SETTING_CHOICE,
     .offset = FIELD(tar),
     .choices = tar_kinds,
     .def = "auto",
     .help = "the tar /layers/{id}/export gives when the request has no tar "
             "parameter, and the registry view's layer blobs: the layer's "
             "original tar (rebuilt from the tar-split "
             "data its store kept, so its diff ID is the recorded one), the "
             "canonical one, or auto: original where the store has it and the "
             "layer is not mutable, canonical elsewhere"},
    {.name = "registry-compression",
     .type = SRV_SETTING_CHOICE,
     .offset = FIELD(registry_compression),
     .choices = registry_compressions,
     .def = "gzip",
     .help = "how the registry view (/v2/) compresses the layer blobs its "
             "manifests name, at the export's default level: gzip is what "
             "every client pulls; zstd needs docker 23+, containerd 1.5+ or "
             "containers/image 5.20+"},
    {.name = "ui-dir",
     .type = SRV_SETTING_STRING,
     .offset = FIELD(ui_dir),
     .arg = "DIR",
     .help = "serve the dashboard (/ui/) from DIR instead of the files built "
             "into the binary (for working on the page; nothing outside DIR "
             "is ever served)"},
    {.name = "auth",
     .type = SRV_SETTING_STRING,
     .offset = FIELD(auth),
     .arg = "FILE",
     .help = "the access policy (JSON: principals with token digests and "
             "client certificates, and their grants), reloaded on SIGHUP; "
             "without it anonymous clients may list and read the immutable "
             "layers, and only loopback addresses are listened on"},
    {.name = "client-ca",
     .type = SRV_SETTING_STRING,
     .offset = FIELD(client_ca),
     .arg = "FILE",
     .help = "PEM bundle of the CAs whose client certificates are accepted "
             "(needs --auth): the TLS handshake asks for a certificate, and "
             "one that does not verify is refused"},
    {.name = "allow-anonymous",
     .type = SRV_SETTING_BOOL,
     .offset = FIELD(allow_anonymous),
     .def = "false",
     .help = "listen on non-loopback addresses without --auth, letting "
             "anyone who can connect read every immutable layer (warns at "
             "start and every hour)"},
    {.name = "server-name",
     .type = SRV_SETTING_NAMES,
     .offset = FIELD(server_names),
     .arg = "NAME",
     .help = "a name clients reach the server by, repeatable; a request "
             "whose Host is not localhost, a listen address, a name of the "
             "certificate or one of these is answered 421"},
    {.name = "allow-changing",
     .type = SRV_SETTING_BOOL,
     .offset = FIELD(allow_changing),
     .def = "false",
     .help = "serve files that change while they are read as GNU tar does "
             "(padded or cut to their listed size, one warning span each); "
             "by default such a file cuts the export or /files response, "
             "so no digest or ETag is ever claimed for bytes that are not "
             "the file's"},
    {.name = "header-timeout",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(header_timeout),
     .arg = "S",
     .def = "10",
     .min = 1,
     .max = 3600,
     .help = "close a connection that has not sent a whole request's "
             "headers S seconds after it was accepted (after a kept-alive "
             "request: S seconds after the next request line; the wait for "
             "that line is --idle-timeout in all), however slowly it keeps "
             "sending"},
    {.name = "max-per-client",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(max_per_client),
     .arg = "N",
     .def = "32",
     .min = 1,
     .max = 65536,
     .help = "open connections from one client address (on all listening "
             "sockets together); more are closed at once"},
    {.name = "max-header-bytes",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(max_header_bytes),
     .arg = "BYTES",
     .def = "16384",
     .min = 1024,
     .max = 1048576,
     .help = "size of a request's line and headers; larger requests are "
             "answered 431 (each connection's buffer is sized from this)"},
    {.name = "send-timeout",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(send_timeout),
     .arg = "S",
     .def = "60",
     .min = 1,
     .max = 86400,
     .help = "drop a client that takes less than 256 KiB of a streamed "
             "response in S seconds (time spent waiting for the server "
             "does not count); its stream slot is freed"},
    {.name = "max-streams",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(max_streams),
     .arg = "N",
     .def = "64",
     .min = 1,
     .max = 4096,
     .help = "concurrent streamed responses of every kind (exports, entry "
             "listings, summaries, file bytes) before 503"},
    {.name = "max-level",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(max_level),
     .arg = "N",
     .def = "9",
     .min = 1,
     .max = 19,
     .help = "highest compression level a client may ask for (?level=): "
             "zstd up to N, gzip up to N or its backend's top level, "
             "whichever is lower; above it the answer is 400"},
    {.name = "max-export-memory",
     .type = SRV_SETTING_UINT,
     .offset = FIELD(max_export_memory),
     .arg = "MIB",
     .def = "256",
     .min = 16,
     .max = 1048576,
     .help = "memory all running exports may hold, by a per-format and "
             "level estimate; an export that would pass it is answered 503"},
    {.name = "allow-insecure-key-permissions",
     .type = SRV_SETTING_BOOL,
     .offset = FIELD(allow_insecure_key_permissions),
     .def = "false",
     .help = "load a --key file that its group or others may read or write "
             "(refused by default)"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

_Static_assert(NSETTINGS <= 64, "srv_config.set has a bit per setting");

const srv_setting *srv_config_settings(size_t *n)
{
    *n = NSETTINGS;
    return settings;
}

const srv_setting *srv_config_find(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    }
    return NULL;
}

static uint64_t bit_of(const srv_setting *s)
{
    return (uint64_t)1 << (s - settings);
}

/* The field of setting s in cfg. */
static void *field_of(srv_config *cfg, const srv_setting *s)
{
    return (char *)cfg + s->offset;
}

static const void *cfield_of(const srv_config *cfg, const srv_setting *s)
{
    return (const char *)cfg + s->offset;
}

static int parse_uint(unsigned *out, const char *key, const char *value,
                      unsigned min, unsigned max)
{
    char *end = NULL;
    unsigned long v;

    if (value[0] < '0' || value[0] > '9')
        return layer_error_set(LAYER_EINVALID, "%s: '%s' is not a number", key,
                               value);
    errno = 0;
    v = strtoul(value, &end, 10);
    if (errno != 0 || *end != '\0')
        return layer_error_set(LAYER_EINVALID, "%s: '%s' is not a number", key,
                               value);
    if (v < min || v > max)
        return layer_error_set(LAYER_EINVALID, "%s: %lu is out of range %u..%u",
                               key, v, min, max);
    *out = (unsigned)v;
    return 0;
}

/* A byte count: digits, then an optional K, M, G or T (powers of 1024,
 * "KiB" and "k" alike); at least 1 MiB, below 2^60. */
static int parse_bytes(uint64_t *out, const char *key, const char *value)
{
    static const char units[] = "KMGT";
    char *end = NULL;
    unsigned long long v;
    unsigned shift = 0;
    const char *u;

    if (value[0] < '0' || value[0] > '9')
        return layer_error_set(LAYER_EINVALID, "%s: '%s' is not a size", key,
                               value);
    errno = 0;
    v = strtoull(value, &end, 10);
    if (errno != 0)
        return layer_error_set(LAYER_EINVALID, "%s: '%s' is not a size", key,
                               value);
    if (*end != '\0') {
        char c = (char)(*end >= 'a' && *end <= 'z' ? *end - 32 : *end);

        if ((u = strchr(units, c)) == NULL || c == '\0' ||
            (end[1] != '\0' && strcmp(end + 1, "iB") != 0 &&
             strcmp(end + 1, "B") != 0))
            return layer_error_set(LAYER_EINVALID,
                                   "%s: '%s' is not a size (N, or N with "
                                   "K, M, G or T)",
                                   key, value);
        shift = 10u * (unsigned)(u - units + 1);
    }
    if (v > ((1ull << 60) >> shift) || (v << shift) < (1ull << 20))
        return layer_error_set(LAYER_EINVALID,
                               "%s: '%s' is out of range (1M to 1024P)", key,
                               value);
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_bool(bool *out, const char *key, const char *value)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcmp(value, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(value, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return layer_error_set(LAYER_EINVALID,
                           "%s: '%s' is not a boolean (true or false)", key,
                           value);
}

int srv_config_parse_listen(char *host, size_t host_cap, char *port,
                            size_t port_cap, const char *spec)
{
    const char *colon;
    const char *h;
    size_t hlen;
    unsigned portnum;
    int rc;

    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':')
            return layer_error_set(LAYER_EINVALID,
                                   "listen: '%s' is not [ADDRESS]:PORT", spec);
        h = spec + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (hlen == 0 || memchr(h, ':', hlen) == NULL)
            return layer_error_set(LAYER_EINVALID,
                                   "listen: '%s': brackets are for IPv6 "
                                   "addresses",
                                   spec);
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL)
            return layer_error_set(LAYER_EINVALID,
                                   "listen: '%s' is not ADDRESS:PORT", spec);
        h = spec;
        hlen = (size_t)(colon - spec);
        if (memchr(h, ':', hlen) != NULL)
            return layer_error_set(LAYER_EINVALID,
                                   "listen: '%s': write IPv6 addresses in "
                                   "brackets, [ADDRESS]:PORT",
                                   spec);
    }
    if (hlen >= host_cap)
        return layer_error_set(LAYER_EINVALID, "listen: '%s': address too long",
                               spec);
    if ((rc = parse_uint(&portnum, "listen", colon + 1, 0, 65535)) < 0)
        return rc;
    if (strlen(colon + 1) >= port_cap)
        return layer_error_set(LAYER_EINVALID, "listen: '%s': bad port", spec);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, colon + 1, strlen(colon + 1) + 1);
    return 0;
}

static int set_string(char **field, const char *key, const char *value)
{
    char *copy;

    if (value[0] == '\0')
        return layer_error_set(LAYER_EINVALID, "%s: empty value", key);
    if ((copy = layer_trystrdup(value)) == NULL)
        return LAYER_ENOMEM;
    layer_free(*field);
    *field = copy;
    return 0;
}

/* Write the choices of s into buf as "a, b or c": each between quotes,
 * sep between them and last before the last one. */
static void join_choices(char *buf, size_t cap, const srv_setting *s,
                         const char *quote, const char *sep, const char *last)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; s->choices[i] != NULL && len < cap; i++) {
        const char *before = i == 0 ? "" : s->choices[i + 1] ? sep : last;
        int n = snprintf(buf + len, cap - len, "%s%s%s%s", before, quote,
                         s->choices[i], quote);

        if (n < 0)
            break;
        len += (size_t)n;
    }
}

static int check_choice(const srv_setting *s, const char *value)
{
    char list[128];

    for (size_t i = 0; s->choices[i] != NULL; i++) {
        if (strcmp(value, s->choices[i]) == 0)
            return 0;
    }
    join_choices(list, sizeof(list), s, "", ", ", " or ");
    return layer_error_set(LAYER_EINVALID, "%s: '%s' is not %s", s->name, value,
                           list);
}

static int add_listen(srv_config_listen *l, const char *value)
{
    char host[256], port[8];
    int rc;

    if ((rc = srv_config_parse_listen(host, sizeof(host), port, sizeof(port),
                                      value)) < 0)
        return rc;
    if (l->n == SRV_CONFIG_MAX_LISTEN)
        return layer_error_set(LAYER_ETOOBIG, "listen: more than %d addresses",
                               SRV_CONFIG_MAX_LISTEN);
    if ((l->v[l->n] = layer_trystrdup(value)) == NULL)
        return LAYER_ENOMEM;
    l->n++;
    return 0;
}

static int add_name(srv_config_listen *l, const char *key, const char *value)
{
    api_hostnames *h = NULL;
    int rc;

    if ((rc = api_hostnames_new(&h, &value, 1)) < 0) {
        if (rc == LAYER_EINVALID)
            rc = layer_error_set(LAYER_EINVALID,
                                 "%s: '%.64s' is not a host name or an IP "
                                 "address",
                                 key, value);
        return rc;
    }
    api_hostnames_free(h);
    if (l->n == SRV_CONFIG_MAX_LISTEN)
        return layer_error_set(LAYER_ETOOBIG, "%s: more than %d names", key,
                               SRV_CONFIG_MAX_LISTEN);
    if ((l->v[l->n] = layer_trystrdup(value)) == NULL)
        return LAYER_ENOMEM;
    l->n++;
    return 0;
}

/* Parse value into the field of s (without marking it set). */
static int apply(srv_config *cfg, const srv_setting *s, const char *value)
{
    void *field = field_of(cfg, s);
    int rc;

    switch (s->type) {
    case SRV_SETTING_CHOICE:
        if ((rc = check_choice(s, value)) < 0)
            return rc;
        return set_string(field, s->name, value);
    case SRV_SETTING_STRING:
        return set_string(field, s->name, value);
    case SRV_SETTING_LISTEN:
        return add_listen(field, value);
    case SRV_SETTING_NAMES:
        return add_name(field, s->name, value);
    case SRV_SETTING_BOOL:
        return parse_bool(field, s->name, value);
    case SRV_SETTING_UINT:
        return parse_uint(field, s->name, value, s->min, s->max);
    case SRV_SETTING_BYTES:
        return parse_bytes(field, s->name, value);
    }
    return layer_error_set(LAYER_ERROR, "%s: unknown setting type", s->name);
}

/* Set s from value and mark it given. */
static int set_row(srv_config *cfg, const srv_setting *s, const char *value)
{
    int rc;

    if ((rc = apply(cfg, s, value)) < 0)
        return rc;
    cfg->set |= bit_of(s);
    return 0;
}

int srv_config_set(srv_config *cfg, const char *name, const char *value)
{
    const srv_setting *s = srv_config_find(name);

    if (s == NULL)
        return layer_error_set(LAYER_EINVALID, "unknown setting '%s'", name);
    return set_row(cfg, s, value);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Trim [*s, *e) of blanks on both ends. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_space(**s))
        (*s)++;
    while (*e > *s && is_space((*e)[-1]))
        (*e)--;
}

/* Parse one line; on error the message lacks the FILE:LINE prefix. */
static int load_line(srv_config *cfg, const char *line, size_t len)
{
    const char *s = line, *e = line + len;
    const char *eq, *ks, *ke, *vs, *ve;
    char key[64];
    char value[CONFIG_LINE_MAX];
    const srv_setting *row;

    if (memchr(line, '\0', len) != NULL)
        return layer_error_set(LAYER_EINVALID, "NUL byte in line");
    trim(&s, &e);
    if (s == e || *s == '#')
        return 0;
    if ((eq = memchr(s, '=', (size_t)(e - s))) == NULL)
        return layer_error_set(LAYER_EINVALID, "expected 'key = value'");
    ks = s;
    ke = eq;
    vs = eq + 1;
    ve = e;
    trim(&ks, &ke);
    trim(&vs, &ve);
    if (ks == ke)
        return layer_error_set(LAYER_EINVALID, "missing key before '='");
    if ((size_t)(ke - ks) >= sizeof(key))
        return layer_error_set(LAYER_EINVALID, "key too long");
    if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
        vs++;
        ve--;
    }
    if ((size_t)(ve - vs) >= sizeof(value))
        return layer_error_set(LAYER_ETOOBIG, "value too long");
    memcpy(key, ks, (size_t)(ke - ks));
    key[ke - ks] = '\0';
    memcpy(value, vs, (size_t)(ve - vs));
    value[ve - vs] = '\0';
    row = srv_config_find(key);
    if (row == NULL || row->where == SRV_SETTING_FLAG_ONLY)
        return layer_error_set(LAYER_EINVALID, "unknown setting '%s'", key);
    return set_row(cfg, row, value);
}

int srv_config_load(srv_config *cfg, const char *path)
{
    int rc = 0;
    char *text = NULL;
    size_t len = 0;
    size_t lineno = 0;
    const char *p;

    if ((rc = srv_read_file(&text, &len, path, "config", CONFIG_FILE_MAX)) < 0)
        goto out;
    p = text;
    while (p < text + len) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t llen = nl != NULL ? (size_t)(nl - p) : (size_t)(text + len - p);

        lineno++;
        if (llen >= CONFIG_LINE_MAX) {
            rc = layer_error_set(LAYER_ETOOBIG, "%s:%zu: line too long", path,
                                 lineno);
            goto out;
        }
        if ((rc = load_line(cfg, p, llen)) < 0) {
            char msg[512];
            /* Prefix the reason with where it happened. */
            snprintf(msg, sizeof(msg), "%s", layer_error_last());
            rc = layer_error_set(rc, "%s:%zu: %s", path, lineno, msg);
            goto out;
        }
        p += llen + (nl != NULL ? 1 : 0);
    }
out:
    layer_free(text);
    return rc;
}

int srv_config_merge(srv_config *dst, const srv_config *src)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const srv_setting *s = &settings[i];
        void *to = field_of(dst, s);
        const void *from = cfield_of(src, s);

        if ((dst->set & bit_of(s)) || !(src->set & bit_of(s)))
            continue;
        switch (s->type) {
        case SRV_SETTING_STRING:
        case SRV_SETTING_CHOICE:
            if ((*(char **)to = layer_trystrdup(*(char *const *)from)) == NULL)
                return LAYER_ENOMEM;
            break;
        case SRV_SETTING_LISTEN:
        case SRV_SETTING_NAMES: {
            srv_config_listen *l = to;
            const srv_config_listen *sl = from;

            for (; l->n < sl->n; l->n++) {
                if ((l->v[l->n] = layer_trystrdup(sl->v[l->n])) == NULL)
                    return LAYER_ENOMEM;
            }
            break;
        }
        case SRV_SETTING_BOOL:
            *(bool *)to = *(const bool *)from;
            break;
        case SRV_SETTING_UINT:
            *(unsigned *)to = *(const unsigned *)from;
            break;
        case SRV_SETTING_BYTES:
            *(uint64_t *)to = *(const uint64_t *)from;
            break;
        }
        dst->set |= bit_of(s);
    }
    return 0;
}

int srv_config_finish(srv_config *cfg)
{
    int rc;

    if (cfg->store == NULL)
        return layer_error_set(LAYER_EINVALID,
                               "no store: give --store or 'store' in the "
                               "config file");
    if (cfg->cert != NULL && cfg->key == NULL)
        return layer_error_set(LAYER_EINVALID, "--cert needs --key");
    if (cfg->key != NULL && cfg->cert == NULL)
        return layer_error_set(LAYER_EINVALID, "--key needs --cert");
    if (cfg->insecure_http && cfg->cert != NULL)
        return layer_error_set(LAYER_EINVALID,
                               "--insecure-http and --cert exclude each "
                               "other");
    if (cfg->client_ca != NULL && cfg->auth == NULL)
        return layer_error_set(LAYER_EINVALID,
                               "--client-ca needs --auth: client "
                               "certificates are mapped to the principals "
                               "of the policy");
    if (cfg->client_ca != NULL && cfg->insecure_http)
        return layer_error_set(LAYER_EINVALID,
                               "--client-ca and --insecure-http exclude "
                               "each other");
    if (cfg->allow_anonymous && cfg->auth != NULL)
        return layer_error_set(LAYER_EINVALID,
                               "--allow-anonymous and --auth exclude each "
                               "other: with a policy, its 'anonymous' "
                               "grants say what anonymous clients may do");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const srv_setting *s = &settings[i];

        if (s->def != NULL && !(cfg->set & bit_of(s)) &&
            (rc = apply(cfg, s, s->def)) < 0)
            return rc;
    }
    return 0;
}

void srv_config_dispose(srv_config *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const srv_setting *s = &settings[i];
        void *field = field_of(cfg, s);

        if (s->type == SRV_SETTING_STRING || s->type == SRV_SETTING_CHOICE) {
            layer_free(*(char **)field);
        } else if (s->type == SRV_SETTING_LISTEN ||
                   s->type == SRV_SETTING_NAMES) {
            srv_config_listen *l = field;

            for (size_t k = 0; k < l->n; k++)
                layer_free(l->v[k]);
        }
    }
    memset(cfg, 0, sizeof(*cfg));
}

/* Print text from column col, word-wrapped at HELP_WIDTH; continuation
 * lines start at HELP_COLUMN. */
static void print_wrapped(FILE *f, size_t col, const char *text)
{
    const char *p = text;

    while (*p != '\0') {
        size_t word = strcspn(p, " ");

        if (col > HELP_COLUMN && col + 1 + word > HELP_WIDTH) {
            fprintf(f, "\n%*s", HELP_COLUMN, "");
            col = HELP_COLUMN;
        } else if (col > HELP_COLUMN) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, word, f);
        col += word;
        p += word;
        while (*p == ' ')
            p++;
    }
    fputc('\n', f);
}

void srv_config_help(FILE *f)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const srv_setting *s = &settings[i];
        char arg[48] = "", left[80], text[512];
        int len;

        if (s->where == SRV_SETTING_FILE_ONLY)
            continue;
        if (s->type == SRV_SETTING_CHOICE)
            join_choices(arg, sizeof(arg), s, "", "|", "|");
        else if (s->type != SRV_SETTING_BOOL)
            snprintf(arg, sizeof(arg), "%s", s->arg);
        snprintf(left, sizeof(left), "  --%s%s%s", s->name, arg[0] ? " " : "",
                 arg);
        if (s->def != NULL && s->type != SRV_SETTING_BOOL)
            snprintf(text, sizeof(text), "%s (default %s)", s->help, s->def);
        else
            snprintf(text, sizeof(text), "%s", s->help);
        len = fprintf(f, "%s", left);
        /* Two spaces at least between the option and its text. */
        if (len + 2 > HELP_COLUMN)
            fprintf(f, "\n%*s", HELP_COLUMN, "");
        else
            fprintf(f, "%*s", HELP_COLUMN - len, "");
        print_wrapped(f, HELP_COLUMN, text);
    }
}

/* Print s into a Markdown table cell: '|' escaped. */
static void md_cell(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', f);
        fputc(*s, f);
    }
}

void srv_config_markdown(FILE *f)
{
    fputs("| Flag | Config key | Value | Default | Meaning |\n"
          "| --- | --- | --- | --- | --- |\n",
          f);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const srv_setting *s = &settings[i];

        fputs("| ", f);
        if (s->where != SRV_SETTING_FILE_ONLY)
            fprintf(f, "`--%s`", s->name);
        else
            fputs("(config file only)", f);
        fputs(" | ", f);
        if (s->where != SRV_SETTING_FLAG_ONLY)
            fprintf(f, "`%s`", s->name);
        else
            fputs("(command line only)", f);
        fputs(" | ", f);
        switch (s->type) {
        case SRV_SETTING_CHOICE: {
            char list[128];

            join_choices(list, sizeof(list), s, "`", ", ", " or ");
            fputs(list, f);
            break;
        }
        case SRV_SETTING_BOOL:
            fputs("`true` or `false`", f);
            break;
        case SRV_SETTING_UINT:
            fprintf(f, "`%s`: %u to %u", s->arg, s->min, s->max);
            break;
        case SRV_SETTING_BYTES:
            fprintf(f, "`%s`: N, or N with K, M, G or T", s->arg);
            break;
        case SRV_SETTING_STRING:
        case SRV_SETTING_LISTEN:
        case SRV_SETTING_NAMES:
            fputc('`', f);
            md_cell(f, s->arg);
            fputc('`', f);
            break;
        }
        fputs(" | ", f);
        if (s->def != NULL) {
            fputc('`', f);
            md_cell(f, s->def);
            fputc('`', f);
        }
        fputs(" | ", f);
        md_cell(f, s->help);
        fputs(" |\n", f);
    }
}
