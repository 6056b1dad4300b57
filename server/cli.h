#ifndef SRV_CLI_H
#define SRV_CLI_H

/*
 * The layerd command line: one binary, one subcommand per file
 * (cmd_<name>.c). Each subcommand parses its own options and returns the
 * process exit status:
 */
#define SRV_EXIT_OK       0
#define SRV_EXIT_FAILURE  1 /* the operation failed (I/O, broken store) */
#define SRV_EXIT_USAGE    2 /* bad command line */
#define SRV_EXIT_NOTFOUND 3 /* no such layer or directory */
#define SRV_EXIT_INVALID  4 /* the layer cannot be exported as asked */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "layer/reader.h"
#include "layer/store.h"
#include "layer/trace.h"

/* Options shared by subcommands that read one layer. */
typedef struct srv_layer_args {
    const char *store;    /* --store STORE */
    const char *id;       /* positional ID with --store */
    const char *layer;    /* --layer DIR */
    const char *kind;     /* --kind diff|snapshot|folder */
    const char **parents; /* --parent DIR..., nearest first */
    size_t nparents;
    const char *trace;      /* --trace FILE|-|none */
    const char *log_format; /* --log-format json|text */
} srv_layer_args;

/* A string option: its name and where its value goes in an args struct. */
typedef struct srv_opt {
    const char *name;
    size_t offset;
} srv_opt;

/*
 * Take argv[*i] if it is one of the n options in table ("--opt value" or
 * "--opt=value"), storing the value at args + offset and advancing *i past
 * it. Returns 1 if taken, 0 if not an option of the table, -1 on a usage
 * error (message printed).
 */
int srv_opt_take(void *args, const srv_opt *table, size_t n, int argc,
                 char **argv, int *i);

/*
 * Try to consume one shared option at argv[*i] (advancing *i past its
 * value). Returns 1 if consumed, 0 if not a shared option, -1 on a usage
 * error (message printed).
 */
int srv_layer_args_take(srv_layer_args *a, int argc, char **argv, int *i);

/* srv_layer_args_parse(): --help was printed; exit 0. */
#define SRV_PARSED_HELP (-1)

/*
 * Parse the command line of a subcommand that reads one layer: --help,
 * the shared options, the positional ID, and the subcommand's own
 * options through take (NULL: none; same contract as
 * srv_layer_args_take(), with ctx passed through). Returns 0 to go on,
 * SRV_PARSED_HELP after printing the help, or SRV_EXIT_USAGE after
 * printing the error.
 */
int srv_layer_args_parse(srv_layer_args *a, const char *cmd, int argc,
                         char **argv,
                         int (*take)(void *ctx, int argc, char **argv, int *i),
                         void *ctx, void (*usage)(FILE *f));

/* Release what srv_layer_args_take() allocated. */
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
 * Read a whole regular file of at most cap bytes into a new NUL-terminated
 * buffer (*out, layer_free() it; *out_len excludes the NUL). Errors name
 * it as "<what> file <path>". Returns 0, LAYER_ENOTFOUND, LAYER_EINVALID
 * (not a regular file), LAYER_ETOOBIG or another negative code.
 */
int srv_read_file(char **out, size_t *out_len, const char *path,
                  const char *what, size_t cap);

/* Map a liblayer error code to an exit status. */
int srv_exit_status(int code);

/* Print "layerd <cmd>: <message>" to stderr. */
void srv_errorf(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Open the trace sink of --trace/--log-format; def is the default spec. */
int srv_trace_open(layer_trace_sink **out, const char *spec,
                   const char *log_format, const char *def);

int srv_cmd_entries(int argc, char **argv);
int srv_cmd_export(int argc, char **argv);
int srv_cmd_serve(int argc, char **argv);

#endif
