#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

/*
 * The settings of `layerd serve`, from the command line and from a config
 * file of `key = value` lines. One table (srv_config_settings()) describes
 * every setting; the keys are the long flags without their dashes; flags
 * override the file, the file overrides the defaults.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Most --listen addresses accepted. */
#define SRV_CONFIG_MAX_LISTEN 16

/* The listen addresses, as given (each one checked); also the list of
 * any other repeatable setting (SRV_SETTING_NAMES). */
typedef struct srv_config_listen {
    char *v[SRV_CONFIG_MAX_LISTEN];
    size_t n;
} srv_config_listen;

/*
 * The serve settings. Strings are owned (freed by srv_config_dispose()).
 * Initialise with SRV_CONFIG_INIT; a field is meaningful once it was set
 * or after srv_config_finish() applied the defaults.
 */
typedef struct srv_config {
    uint64_t set; /* bit i: setting i of the table was given */
    char *config; /* the config file (command line only) */
    char *store;
    srv_config_listen listen;
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
    bool no_cache;            /* every export runs, nothing is kept */
    char *cache_dir;          /* the blob cache; NULL: the default place */
    uint64_t cache_max_bytes; /* the blob cache's byte cap */
    char *ui_dir;         /* the dashboard's files; NULL: the built-in ones */
    char *auth;           /* the access policy (api/auth.h), or NULL */
    char *client_ca;      /* CAs of client certificates (PEM), or NULL */
    bool allow_anonymous; /* non-loopback listeners without a policy */
    srv_config_listen server_names; /* --server-name, repeatable */
    char *tar;                      /* auto, canonical or original */
    char *registry_compression;     /* gzip, zstd or none: /v2/ blobs */
    bool allow_changing; /* files that change while read: warn, not fail */
    /* Limits on clients (server/http.c, api/): seconds, counts, bytes. */
    unsigned header_timeout;    /* s to receive a request's headers */
    unsigned max_per_client;    /* connections per client address */
    unsigned max_header_bytes;  /* request line and headers, bytes */
    unsigned send_timeout;      /* s a response may go without progress */
    unsigned max_streams;       /* concurrent streamed responses */
    unsigned max_level;         /* highest compression level over HTTP */
    unsigned max_export_memory; /* MiB all running exports may hold */
    bool allow_insecure_key_permissions; /* a key file others can read */
} srv_config;

#define SRV_CONFIG_INIT                                                        \
    {                                                                          \
        0                                                                      \
    }

/* What a setting's value is, and so how it is parsed, merged and freed. */
typedef enum srv_setting_type {
    SRV_SETTING_STRING, /* char *, not empty */
    SRV_SETTING_CHOICE, /* char *, one of choices */
    SRV_SETTING_LISTEN, /* srv_config_listen; each value appends */
    SRV_SETTING_BOOL,   /* bool: true/yes/on/1 or false/no/off/0 */
    SRV_SETTING_UINT,   /* unsigned in min..max */
    SRV_SETTING_BYTES,  /* uint64_t: N, or N with K, M, G or T (x 1024^k) */
    SRV_SETTING_NAMES   /* srv_config_listen of host names; each appends */
} srv_setting_type;

/* Where a setting may be given. */
typedef enum srv_setting_where {
    SRV_SETTING_BOTH,      /* the command line and the config file */
    SRV_SETTING_FLAG_ONLY, /* only the command line */
    SRV_SETTING_FILE_ONLY  /* only the config file */
} srv_setting_where;

/*
 * One setting: the config file's parser, the merge of file and flags,
 * the defaults, `layerd serve --help` and the README's table of settings
 * (`layerd serve --help-config`) are all driven by these rows.
 */
typedef struct srv_setting {
    const char *name; /* the config key and the long flag */
    srv_setting_type type;
    size_t offset;     /* of the field in srv_config */
    const char *arg;   /* what the value is in the help: "FILE", "N" */
    const char *def;   /* the default, parsed like a given value; or NULL */
    unsigned min, max; /* SRV_SETTING_UINT range */
    const char *const *choices; /* SRV_SETTING_CHOICE, NULL-terminated */
    srv_setting_where where;    /* SRV_SETTING_BOTH unless said */
    const char *help;           /* one sentence, without the default */
} srv_setting;

/* The settings, in the order of the help; *n gets how many. */
const srv_setting *srv_config_settings(size_t *n);

/* The setting named `name`, or NULL. */
const srv_setting *srv_config_find(const char *name);

/*
 * Set one setting by name (its long flag without "--"), wherever the
 * table says it may be given: strings are copied, numbers and booleans
 * parsed and range-checked, "listen" appends.
 * Returns 0, LAYER_EINVALID for an unknown name or a bad value,
 * LAYER_ETOOBIG past SRV_CONFIG_MAX_LISTEN, LAYER_ENOMEM; the reason is
 * recorded with layer_error_set() ("NAME: why").
 */
int srv_config_set(srv_config *cfg, const char *name, const char *value);

/*
 * Split a listen address, "HOST:PORT" or "[IPV6]:PORT", into host (at most
 * host_cap bytes with the NUL) and numeric port (0..65535; port_cap >= 6).
 * HOST may be a name or an address; IPv6 addresses need the brackets.
 * Returns 0 or LAYER_EINVALID with the reason recorded.
 */
int srv_config_parse_listen(char *host, size_t host_cap, char *port,
                            size_t port_cap, const char *spec);

/*
 * Read a config file into cfg: `key = value` lines, '#' starts a comment
 * line, blank lines ignored, values may be double-quoted. Files over
 * 1 MiB, unknown keys (and command-line-only ones) and bad values are
 * refused; the recorded error names the file and line ("FILE:LINE: ...").
 * Returns 0 or a negative code.
 */
int srv_config_load(srv_config *cfg, const char *path);

/*
 * Fill every setting of dst that is not set from src (flags over file).
 * Returns 0 or LAYER_ENOMEM.
 */
int srv_config_merge(srv_config *dst, const srv_config *src);

/*
 * Check the combination (a store is required; --cert and --key come
 * together and not with --insecure-http; --client-ca needs --auth and
 * TLS; --allow-anonymous is for running without --auth), then apply the
 * defaults to what is still unset. Returns 0 or LAYER_EINVALID / LAYER_ENOMEM
 * with the reason recorded.
 */
int srv_config_finish(srv_config *cfg);

/* Release the strings of cfg and reset it to SRV_CONFIG_INIT. */
void srv_config_dispose(srv_config *cfg);

/*
 * Print the option lines of `layerd serve --help`: one per command-line
 * setting, "  --name ARG" and its help wrapped at 80 columns, with the
 * default.
 */
void srv_config_help(FILE *f);

/*
 * Print the settings as a Markdown table (flag, config key, value,
 * default, meaning): the table of the README.
 */
void srv_config_markdown(FILE *f);

#endif
