#ifndef SRV_CLI_H
#define SRV_CLI_H

/*
 * The layerd command line: one binary, one subcommand per file
 * (cmd_<name>.c). Each subcommand parses its options with
 * srv_cmdline_parse() and returns the process exit status:
 */
#define SRV_EXIT_OK       0
#define SRV_EXIT_FAILURE  1 /* the operation failed (I/O, broken store) */
#define SRV_EXIT_USAGE    2 /* bad command line */
#define SRV_EXIT_NOTFOUND 3 /* no such layer or directory */
#define SRV_EXIT_INVALID  4 /* the layer cannot be exported as asked */

/* Not an exit status: the command goes on (see srv_cmdline_parse()). */
#define SRV_CONTINUE (-1)

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "layer/reader.h"
#include "layer/store.h"
#include "layer/trace.h"

/* A growable list of borrowed strings (the values of a repeated option).
 * The array is owned: srv_strv_dispose() frees it. */
typedef struct srv_strv {
    const char **v;
    size_t n;
} srv_strv;

/* Append s; returns 0 or LAYER_ENOMEM. */
int srv_strv_push(srv_strv *sv, const char *s);

/* Free the array and empty the list. */
void srv_strv_dispose(srv_strv *sv);

/* How an option takes its value, and (in a group without a take
 * function) where it goes. */
typedef enum srv_opt_type {
    SRV_OPT_STRING, /* --name VALUE or --name=VALUE: a const char *;
                     * given twice, the last one wins */
    SRV_OPT_LIST,   /* the same, repeatable: appended to a srv_strv */
    SRV_OPT_FLAG,   /* --name, no value: a bool set to true */
    SRV_OPT_BOOL    /* --name, or --name=VALUE (no separate word); only in
                     * a group with a take function (value NULL: none) */
} srv_opt_type;

/* One option of a subcommand. */
typedef struct srv_opt {
    const char *name; /* the long name, without "--" */
    int letter;       /* the short form -X, or 0 */
    srv_opt_type type;
    size_t offset; /* where the value goes in the group's dest */
} srv_opt;

/*
 * A table of options and what takes their values: take, if set, gets
 * every option of the group in command-line order, with the option's
 * index in opts and its value (NULL when it has none); it returns
 * SRV_CONTINUE, or an exit status after printing why. Without take, each
 * value is stored at dest + offset as its type says.
 */
typedef struct srv_optgroup {
    const srv_opt *opts;
    size_t nopts;
    void *dest;
    int (*take)(void *dest, size_t index, const char *value);
} srv_optgroup;

/* Most options a command line may have over all its groups. */
#define SRV_CMDLINE_MAX_OPTS 40

/* A subcommand's command line. */
typedef struct srv_cmdline {
    const char *cmd;        /* "export": messages say "layerd export: " */
    void (*usage)(FILE *f); /* prints the --help text */
    const srv_optgroup *groups;
    size_t ngroups;
    const char **operands; /* room for max_operands; borrowed from argv */
    size_t max_operands;
    size_t noperands; /* set by srv_cmdline_parse() */
} srv_cmdline;

/*
 * Parse argv (argv[0] is the subcommand's name) with getopt_long(), one
 * way for every subcommand: "--name VALUE", "--name=VALUE", "-X VALUE",
 * "-XVALUE", unique abbreviations of long names; operands anywhere, kept
 * in order; "--" ends the options. "-h" and "--help" print the usage to
 * standard output.
 *
 * @return SRV_CONTINUE to go on; SRV_EXIT_OK after printing the help;
 *         SRV_EXIT_USAGE after printing "layerd <cmd>: <why>" (unknown or
 *         ambiguous option, missing or unexpected value, too many
 *         operands) and a hint to --help on standard error; or what a take
 *         function returned to stop
 */
int srv_cmdline_parse(srv_cmdline *cl, int argc, char **argv);

/* Options shared by subcommands that read one layer. */
typedef struct srv_layer_args {
    const char *store;      /* --store STORE */
    const char *id;         /* positional ID with --store */
    const char *layer;      /* --layer DIR */
    const char *kind;       /* --kind diff|snapshot|folder */
    srv_strv parents;       /* --parent DIR..., nearest first */
    const char *trace;      /* --trace FILE|-|none */
    const char *log_format; /* --log-format json|text */
} srv_layer_args;

/*
 * Parse the command line of a subcommand that reads one layer: the shared
 * options, the positional ID, and the subcommand's own options (own may be
 * NULL). Same return values as srv_cmdline_parse(). Release a with
 * srv_layer_args_dispose() whatever it returns.
 */
int srv_layer_args_parse(srv_layer_args *a, const char *cmd, int argc,
                         char **argv, const srv_optgroup *own,
                         void (*usage)(FILE *f));

/* Release what srv_layer_args_parse() allocated. */
void srv_layer_args_dispose(srv_layer_args *a);

/*
 * Resolve the shared options to a layer: through the store, or from
 * --layer/--kind/--parent. On success *out is owned by the caller
 * (layer_info_free()). Prints the error and returns an exit status
 * otherwise.
 */
int srv_layer_args_resolve(layer_info **out, const srv_layer_args *a,
                           layer_span *span);

/*
 * What a subcommand that reads one layer holds while it runs. Initialise
 * with {0}, parse into args, then srv_layer_cmd_open(); release with
 * srv_layer_cmd_dispose() in every case.
 */
typedef struct srv_layer_cmd {
    srv_layer_args args;
    layer_trace_sink *sink; /* from --trace, --log-format (default none) */
    layer_span *span;       /* the command's span */
    layer_info *info;       /* the resolved layer */
} srv_layer_cmd;

/*
 * Open the trace sink of c->args, start the span `span_name` with the
 * layer's "layer.path" and "layer.kind", and resolve the layer into
 * c->info. Returns 0 or an exit status (message printed).
 */
int srv_layer_cmd_open(srv_layer_cmd *c, const char *span_name);

/* End the span and release everything c holds. */
void srv_layer_cmd_dispose(srv_layer_cmd *c);

/*
 * Read a whole regular file of at most cap bytes into a new NUL-terminated
 * buffer (*out, layer_free() it; *out_len excludes the NUL). Errors name
 * it as "<what> file <path>". Returns 0, LAYER_ENOTFOUND, LAYER_EINVALID
 * (not a regular file), LAYER_ETOOBIG or another negative code.
 */
int srv_read_file(char **out, size_t *out_len, const char *path,
                  const char *what, size_t cap);

/*
 * The blob cache's directory: given (--cache-dir), else $CACHE_DIRECTORY
 * (systemd's CacheDirectory=; the first of a list), else /var/cache/layerd
 * for root, else $XDG_CACHE_HOME/layerd or ~/.cache/layerd. *out is
 * owned (layer_free()). Returns 0, LAYER_EINVALID (no HOME), LAYER_ENOMEM.
 */
int srv_cache_dir(char **out, const char *given);

/* Map a liblayer error code to an exit status. */
int srv_exit_status(int code);

/*
 * Map the error of using something the command line names (a certificate,
 * a listen address, a layer directory's kind): a value that cannot be used
 * (LAYER_EINVALID, LAYER_ETOOBIG) is a usage error, anything else as
 * srv_exit_status().
 */
int srv_setting_status(int code);

/* Print "layerd <cmd>: <message>" to stderr. */
void srv_errorf(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Open the trace sink of --trace/--log-format; def is the default spec. */
int srv_trace_open(layer_trace_sink **out, const char *spec,
                   const char *log_format, const char *def);

int srv_cmd_cache(int argc, char **argv);
int srv_cmd_entries(int argc, char **argv);
int srv_cmd_export(int argc, char **argv);
int srv_cmd_serve(int argc, char **argv);
int srv_cmd_token(int argc, char **argv);

#endif
