/*
 * The settings of `layerd serve`: one table of keys shared by the command
 * line and the config file, so both accept exactly the same names and
 * values and report the same errors. The file is read whole (capped at
 * 1 MiB), then parsed line by line; every error names the line. Merging
 * fills only unset fields, which is how flags override the file.
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "layer/alloc.h"
#include "layer/error.h"

/* A config file is a few lines; anything bigger is a mistake. */
#define CONFIG_FILE_MAX (1u << 20)
#define CONFIG_LINE_MAX 4096

typedef enum value_type {
    VALUE_STRING,
    VALUE_LISTEN,
    VALUE_BOOL,
    VALUE_UINT
} value_type;

typedef struct setting {
    const char *key;
    unsigned field;
    value_type type;
    unsigned min, max; /* VALUE_UINT range */
} setting;

static const setting settings[] = {
    {"store", SRV_CFG_STORE, VALUE_STRING, 0, 0},
    {"listen", SRV_CFG_LISTEN, VALUE_LISTEN, 0, 0},
    {"cert", SRV_CFG_CERT, VALUE_STRING, 0, 0},
    {"key", SRV_CFG_KEY, VALUE_STRING, 0, 0},
    {"insecure-http", SRV_CFG_INSECURE_HTTP, VALUE_BOOL, 0, 0},
    {"trace", SRV_CFG_TRACE, VALUE_STRING, 0, 0},
    {"log-format", SRV_CFG_LOG_FORMAT, VALUE_STRING, 0, 0},
    {"max-exports", SRV_CFG_MAX_EXPORTS, VALUE_UINT, 1, 4096},
    {"max-connections", SRV_CFG_MAX_CONNECTIONS, VALUE_UINT, 1, 65536},
    {"idle-timeout", SRV_CFG_IDLE_TIMEOUT, VALUE_UINT, 1, 86400},
    {"grace", SRV_CFG_GRACE, VALUE_UINT, 0, 3600},
    {"openapi", SRV_CFG_OPENAPI, VALUE_STRING, 0, 0},
    {"no-digest-memo", SRV_CFG_NO_DIGEST_MEMO, VALUE_BOOL, 0, 0},
    {"ui-dir", SRV_CFG_UI_DIR, VALUE_STRING, 0, 0},
};

static const setting *find_setting(const char *key)
{
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    }
    return NULL;
}

bool srv_config_has_key(const char *key)
{
    return find_setting(key) != NULL;
}

bool srv_config_is_flag(const char *key)
{
    const setting *s = find_setting(key);
    return s != NULL && s->type == VALUE_BOOL;
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

int srv_config_set(srv_config *cfg, const char *key, const char *value)
{
    const setting *s = find_setting(key);
    char host[256], port[8];
    unsigned *num = NULL;
    int rc;

    if (s == NULL)
        return layer_error_set(LAYER_EINVALID, "unknown setting '%s'", key);
    switch (s->type) {
    case VALUE_STRING:
        if (s->field == SRV_CFG_LOG_FORMAT && strcmp(value, "json") != 0 &&
            strcmp(value, "text") != 0)
            return layer_error_set(
                LAYER_EINVALID, "log-format: '%s' is not json or text", value);
        if (s->field == SRV_CFG_STORE)
            rc = set_string(&cfg->store, key, value);
        else if (s->field == SRV_CFG_CERT)
            rc = set_string(&cfg->cert, key, value);
        else if (s->field == SRV_CFG_KEY)
            rc = set_string(&cfg->key, key, value);
        else if (s->field == SRV_CFG_TRACE)
            rc = set_string(&cfg->trace, key, value);
        else if (s->field == SRV_CFG_LOG_FORMAT)
            rc = set_string(&cfg->log_format, key, value);
        else if (s->field == SRV_CFG_UI_DIR)
            rc = set_string(&cfg->ui_dir, key, value);
        else
            rc = set_string(&cfg->openapi, key, value);
        if (rc < 0)
            return rc;
        break;
    case VALUE_LISTEN:
        if ((rc = srv_config_parse_listen(host, sizeof(host), port,
                                          sizeof(port), value)) < 0)
            return rc;
        if (cfg->nlisten == SRV_CONFIG_MAX_LISTEN)
            return layer_error_set(LAYER_ETOOBIG,
                                   "listen: more than %d addresses",
                                   SRV_CONFIG_MAX_LISTEN);
        if ((cfg->listen[cfg->nlisten] = layer_trystrdup(value)) == NULL)
            return LAYER_ENOMEM;
        cfg->nlisten++;
        break;
    case VALUE_BOOL:
        if ((rc = parse_bool(s->field == SRV_CFG_INSECURE_HTTP
                                 ? &cfg->insecure_http
                                 : &cfg->no_digest_memo,
                             key, value)) < 0)
            return rc;
        break;
    case VALUE_UINT:
        if (s->field == SRV_CFG_MAX_EXPORTS)
            num = &cfg->max_exports;
        else if (s->field == SRV_CFG_MAX_CONNECTIONS)
            num = &cfg->max_connections;
        else if (s->field == SRV_CFG_IDLE_TIMEOUT)
            num = &cfg->idle_timeout;
        else
            num = &cfg->grace;
        if ((rc = parse_uint(num, key, value, s->min, s->max)) < 0)
            return rc;
        break;
    }
    cfg->set |= s->field;
    return 0;
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
    return srv_config_set(cfg, key, value);
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

static int merge_string(char **dst, const char *src)
{
    if (*dst != NULL || src == NULL)
        return 0;
    if ((*dst = layer_trystrdup(src)) == NULL)
        return LAYER_ENOMEM;
    return 0;
}

int srv_config_merge(srv_config *dst, const srv_config *src)
{
    unsigned take = src->set & ~dst->set;
    int rc;

    if ((take & SRV_CFG_STORE) && (rc = merge_string(&dst->store, src->store)))
        return rc;
    if ((take & SRV_CFG_CERT) && (rc = merge_string(&dst->cert, src->cert)))
        return rc;
    if ((take & SRV_CFG_KEY) && (rc = merge_string(&dst->key, src->key)))
        return rc;
    if ((take & SRV_CFG_TRACE) && (rc = merge_string(&dst->trace, src->trace)))
        return rc;
    if ((take & SRV_CFG_LOG_FORMAT) &&
        (rc = merge_string(&dst->log_format, src->log_format)))
        return rc;
    if ((take & SRV_CFG_OPENAPI) &&
        (rc = merge_string(&dst->openapi, src->openapi)))
        return rc;
    if ((take & SRV_CFG_UI_DIR) &&
        (rc = merge_string(&dst->ui_dir, src->ui_dir)))
        return rc;
    if (take & SRV_CFG_LISTEN) {
        for (size_t i = 0; i < src->nlisten; i++) {
            if ((dst->listen[i] = layer_trystrdup(src->listen[i])) == NULL)
                return LAYER_ENOMEM;
            dst->nlisten = i + 1;
        }
    }
    if (take & SRV_CFG_INSECURE_HTTP)
        dst->insecure_http = src->insecure_http;
    if (take & SRV_CFG_NO_DIGEST_MEMO)
        dst->no_digest_memo = src->no_digest_memo;
    if (take & SRV_CFG_MAX_EXPORTS)
        dst->max_exports = src->max_exports;
    if (take & SRV_CFG_MAX_CONNECTIONS)
        dst->max_connections = src->max_connections;
    if (take & SRV_CFG_IDLE_TIMEOUT)
        dst->idle_timeout = src->idle_timeout;
    if (take & SRV_CFG_GRACE)
        dst->grace = src->grace;
    dst->set |= take;
    return 0;
}

int srv_config_finish(srv_config *cfg)
{
    if (!(cfg->set & SRV_CFG_STORE))
        return layer_error_set(LAYER_EINVALID,
                               "no store: give --store or 'store' in the "
                               "config file");
    if ((cfg->set & SRV_CFG_CERT) != 0 && (cfg->set & SRV_CFG_KEY) == 0)
        return layer_error_set(LAYER_EINVALID, "--cert needs --key");
    if ((cfg->set & SRV_CFG_KEY) != 0 && (cfg->set & SRV_CFG_CERT) == 0)
        return layer_error_set(LAYER_EINVALID, "--key needs --cert");
    if (cfg->insecure_http && (cfg->set & SRV_CFG_CERT) != 0)
        return layer_error_set(LAYER_EINVALID,
                               "--insecure-http and --cert exclude each "
                               "other");
    if (cfg->nlisten == 0) {
        if ((cfg->listen[0] = layer_trystrdup(SRV_DEFAULT_LISTEN)) == NULL)
            return LAYER_ENOMEM;
        cfg->nlisten = 1;
    }
    if (!(cfg->set & SRV_CFG_MAX_EXPORTS))
        cfg->max_exports = SRV_DEFAULT_MAX_EXPORTS;
    if (!(cfg->set & SRV_CFG_MAX_CONNECTIONS))
        cfg->max_connections = SRV_DEFAULT_MAX_CONNECTIONS;
    if (!(cfg->set & SRV_CFG_IDLE_TIMEOUT))
        cfg->idle_timeout = SRV_DEFAULT_IDLE_TIMEOUT;
    if (!(cfg->set & SRV_CFG_GRACE))
        cfg->grace = SRV_DEFAULT_GRACE;
    return 0;
}

void srv_config_dispose(srv_config *cfg)
{
    layer_free(cfg->store);
    for (size_t i = 0; i < cfg->nlisten; i++)
        layer_free(cfg->listen[i]);
    layer_free(cfg->cert);
    layer_free(cfg->key);
    layer_free(cfg->trace);
    layer_free(cfg->log_format);
    layer_free(cfg->openapi);
    layer_free(cfg->ui_dir);
    memset(cfg, 0, sizeof(*cfg));
}
