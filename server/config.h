#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

/*
 * The settings of `layerd serve`, from the command line and from a config
 * file of `key = value` lines. The keys are the long flags without their
 * dashes; flags override the file.
 */

#include <stdbool.h>
#include <stddef.h>

/* Most --listen addresses accepted. */
#define SRV_CONFIG_MAX_LISTEN 16

/* Defaults. */
#define SRV_DEFAULT_LISTEN          "127.0.0.1:8443"
#define SRV_DEFAULT_MAX_EXPORTS     16
#define SRV_DEFAULT_MAX_CONNECTIONS 1024
#define SRV_DEFAULT_IDLE_TIMEOUT    60 /* seconds */
#define SRV_DEFAULT_GRACE           10 /* seconds */

/* Which fields were given (bit per setting). */
enum srv_config_field {
    SRV_CFG_STORE = 1u << 0,
    SRV_CFG_LISTEN = 1u << 1,
    SRV_CFG_CERT = 1u << 2,
    SRV_CFG_KEY = 1u << 3,
    SRV_CFG_INSECURE_HTTP = 1u << 4,
    SRV_CFG_TRACE = 1u << 5,
    SRV_CFG_LOG_FORMAT = 1u << 6,
    SRV_CFG_MAX_EXPORTS = 1u << 7,
    SRV_CFG_MAX_CONNECTIONS = 1u << 8,
    SRV_CFG_IDLE_TIMEOUT = 1u << 9,
    SRV_CFG_GRACE = 1u << 10,
    SRV_CFG_OPENAPI = 1u << 11,
    SRV_CFG_NO_DIGEST_MEMO = 1u << 12,
    SRV_CFG_UI_DIR = 1u << 13
};

/*
 * The serve settings. Strings are owned (freed by srv_config_dispose()).
 * Initialise with SRV_CONFIG_INIT; a field is meaningful once its bit is in
 * `set` or after srv_config_finish() applied the defaults.
 */
typedef struct srv_config {
    unsigned set; /* srv_config_field bits */
    char *store;
    char *listen[SRV_CONFIG_MAX_LISTEN];
    size_t nlisten;
    char *cert;
    char *key;
    bool insecure_http;
    char *trace;
    char *log_format;
    unsigned max_exports;
    unsigned max_connections;
    unsigned idle_timeout;
    unsigned grace;
    char *openapi;
    bool no_digest_memo; /* every export hashes (api/digest_memo.h) */
    char *ui_dir;        /* the dashboard's files; NULL: the built-in ones */
} srv_config;

#define SRV_CONFIG_INIT                                                        \
    {                                                                          \
        0                                                                      \
    }

/*
 * Set one setting by key (a long flag name without "--"): strings are
 * copied, numbers and booleans parsed and range-checked, "listen" appends.
 * Returns 0, LAYER_EINVALID for an unknown key or a bad value,
 * LAYER_ETOOBIG past SRV_CONFIG_MAX_LISTEN, LAYER_ENOMEM; the reason is
 * recorded with layer_error_set().
 */
int srv_config_set(srv_config *cfg, const char *key, const char *value);

/*
 * Split a listen address, "HOST:PORT" or "[IPV6]:PORT", into host (at most
 * host_cap bytes with the NUL) and numeric port (0..65535; port_cap >= 6).
 * HOST may be a name or an address; IPv6 addresses need the brackets.
 * Returns 0 or LAYER_EINVALID with the reason recorded.
 */
int srv_config_parse_listen(char *host, size_t host_cap, char *port,
                            size_t port_cap, const char *spec);

/* True if `key` names a setting. */
bool srv_config_has_key(const char *key);

/*
 * True if `key` names a setting that takes no value on the command line
 * (a boolean flag such as "insecure-http").
 */
bool srv_config_is_flag(const char *key);

/*
 * Read a config file into cfg: `key = value` lines, '#' starts a comment
 * line, blank lines ignored, values may be double-quoted. Files over
 * 1 MiB, unknown keys and bad values are refused; the recorded error
 * names the file and line ("FILE:LINE: ...").
 * Returns 0 or a negative code.
 */
int srv_config_load(srv_config *cfg, const char *path);

/*
 * Fill every setting of dst that is not set from src (flags over file).
 * Returns 0 or LAYER_ENOMEM.
 */
int srv_config_merge(srv_config *dst, const srv_config *src);

/*
 * Apply the defaults to what is still unset and check the combination
 * (a store is required; --cert and --key come together and not with
 * --insecure-http). Returns 0 or LAYER_EINVALID / LAYER_ENOMEM with the
 * reason recorded.
 */
int srv_config_finish(srv_config *cfg);

/* Release the strings of cfg and reset it to SRV_CONFIG_INIT. */
void srv_config_dispose(srv_config *cfg);

#endif
