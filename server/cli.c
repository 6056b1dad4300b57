/*
 * What the subcommands share. The command-line parser: every subcommand
 * describes its options as tables (srv_optgroup) and hands them to one
 * getopt_long() loop, so all accept the same syntax and report usage
 * errors alike; operands come back in order (getopt's return-in-order
 * mode, whatever POSIXLY_CORRECT says). The options of the subcommands
 * that read one layer: which layer (through a store, or a directory with
 * its kind and parents), and where the spans go. Resolution produces a
 * layer_info either way, so the subcommands treat both forms alike.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/file.h"

void srv_errorf(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "layerd %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int srv_read_file(char **out, size_t *out_len, const char *path,
                  const char *what, size_t cap)
{
    char desc[4160]; /* "<what> file " and a PATH_MAX path */

    snprintf(desc, sizeof(desc), "%s file %s", what, path);
    return layer_file_read(out, out_len, AT_FDCWD, path, cap, 0, desc);
}

int srv_exit_status(int code)
{
    switch (code) {
    case 0:
        return SRV_EXIT_OK;
    case LAYER_ENOTFOUND:
        return SRV_EXIT_NOTFOUND;
    case LAYER_EINVALID:
    case LAYER_EUNSUPPORTED:
    case LAYER_ETOOBIG:
        return SRV_EXIT_INVALID;
    default:
        return SRV_EXIT_FAILURE;
    }
}

int srv_setting_status(int code)
{
    if (code == LAYER_EINVALID || code == LAYER_ETOOBIG)
        return SRV_EXIT_USAGE;
    return srv_exit_status(code);
}

int srv_strv_push(srv_strv *sv, const char *s)
{
    const char **v = layer_tryarray((void *)sv->v, sv->n + 1, sizeof(*v));

    if (v == NULL)
        return LAYER_ENOMEM;
    v[sv->n++] = s;
    sv->v = v;
    return 0;
}

void srv_strv_dispose(srv_strv *sv)
{
    layer_free((void *)sv->v);
    sv->v = NULL;
    sv->n = 0;
}

/* getopt_long() returns OPT_VAL(i) for the long form of option i (over
 * all groups, in order); below 256 are letters and getopt's own codes. */
#define OPT_VAL(i) (256 + (int)(i))

/* The option at index i over all groups: its group, and *local its index
 * there. */
static const srv_optgroup *find_opt(const srv_cmdline *cl, size_t i,
                                    size_t *local)
{
    for (size_t g = 0; g < cl->ngroups; g++) {
        if (i < cl->groups[g].nopts) {
            *local = i;
            return &cl->groups[g];
        }
        i -= cl->groups[g].nopts;
    }
    return NULL;
}

/* The index over all groups of the option getopt_long() returned as c (a
 * letter or OPT_VAL()), or -1. */
static long opt_index(const srv_cmdline *cl, int c)
{
    size_t i = 0;

    if (c >= OPT_VAL(0))
        return c - OPT_VAL(0);
    for (size_t g = 0; g < cl->ngroups; g++) {
        for (size_t k = 0; k < cl->groups[g].nopts; k++, i++) {
            if (cl->groups[g].opts[k].letter == c)
                return (long)i;
        }
    }
    return -1;
}

/* How option c is spelled in messages: "--name" or "-X". */
static void opt_spelling(char *buf, size_t cap, const srv_cmdline *cl, int c)
{
    long i = opt_index(cl, c);
    size_t local;
    const srv_optgroup *g = i >= 0 ? find_opt(cl, (size_t)i, &local) : NULL;

    if (c >= OPT_VAL(0) && g != NULL)
        snprintf(buf, cap, "--%s", g->opts[local].name);
    else
        snprintf(buf, cap, "-%c", c);
}

/* Report an option getopt_long() refused ('?'); arg is the word it came
 * in. */
static void refused_option(const srv_cmdline *cl, int code, const char *arg)
{
    char name[96];
    size_t len, matches = 0;

    if (code >= OPT_VAL(0)) {
        opt_spelling(name, sizeof(name), cl, code);
        srv_errorf(cl->cmd, "option '%s' takes no value", name);
        return;
    }
    if (code != 0) {
        srv_errorf(cl->cmd, "unknown option '-%c'", code);
        return;
    }
    /* A long option that is unknown, or an abbreviation of several. */
    len = strcspn(arg + 2, "=");
    for (size_t g = 0; g < cl->ngroups; g++) {
        for (size_t k = 0; k < cl->groups[g].nopts; k++)
            matches += strncmp(cl->groups[g].opts[k].name, arg + 2, len) == 0;
    }
    matches += strncmp("help", arg + 2, len) == 0;
    if (len > 0 && matches > 1)
        srv_errorf(cl->cmd, "option '%s' is ambiguous", arg);
    else
        srv_errorf(cl->cmd, "unknown option '%s'", arg);
}

/* Hand option i its value: to the group's take function, or into dest.
 * Returns SRV_CONTINUE or an exit status. */
static int take_opt(const srv_cmdline *cl, size_t i, const char *value)
{
    size_t local = 0;
    const srv_optgroup *g = find_opt(cl, i, &local);
    const srv_opt *o = &g->opts[local];
    char *field;

    if (g->take != NULL)
        return g->take(g->dest, local, value);
    field = (char *)g->dest + o->offset;
    switch (o->type) {
    case SRV_OPT_STRING:
        *(const char **)(void *)field = value;
        break;
    case SRV_OPT_LIST:
        if (srv_strv_push((srv_strv *)(void *)field, value) < 0) {
            srv_errorf(cl->cmd, "out of memory");
            return SRV_EXIT_FAILURE;
        }
        break;
    case SRV_OPT_FLAG:
        *(bool *)(void *)field = true;
        break;
    case SRV_OPT_BOOL:
        assert(!"SRV_OPT_BOOL needs a take function");
        break;
    }
    return SRV_CONTINUE;
}

static int usage_error(const srv_cmdline *cl)
{
    fprintf(stderr, "Run 'layerd %s --help' for the options.\n", cl->cmd);
    return SRV_EXIT_USAGE;
}

static int add_operand(srv_cmdline *cl, const char *word)
{
    if (cl->noperands == cl->max_operands) {
        srv_errorf(cl->cmd, "unexpected argument '%s'", word);
        return usage_error(cl);
    }
    cl->operands[cl->noperands++] = word;
    return SRV_CONTINUE;
}

int srv_cmdline_parse(srv_cmdline *cl, int argc, char **argv)
{
    static const char *const arg_spec[] = {[SRV_OPT_STRING] = ":",
                                           [SRV_OPT_LIST] = ":",
                                           [SRV_OPT_FLAG] = "",
                                           [SRV_OPT_BOOL] = "::"};
    static const int has_arg[] = {[SRV_OPT_STRING] = required_argument,
                                  [SRV_OPT_LIST] = required_argument,
                                  [SRV_OPT_FLAG] = no_argument,
                                  [SRV_OPT_BOOL] = optional_argument};
    struct option longopts[SRV_CMDLINE_MAX_OPTS + 2];
    /* "-": operands in order, as code 1; ":": no messages from getopt,
     * ':' for a missing value. */
    char shortopts[4 + 3 * SRV_CMDLINE_MAX_OPTS] = "-:h";
    size_t n = 0;
    int c;

    for (size_t g = 0; g < cl->ngroups; g++) {
        for (size_t k = 0; k < cl->groups[g].nopts; k++, n++) {
            const srv_opt *o = &cl->groups[g].opts[k];

            assert(n < SRV_CMDLINE_MAX_OPTS && o->letter != 'h');
            longopts[n] =
                (struct option){o->name, has_arg[o->type], NULL, OPT_VAL(n)};
            if (o->letter != 0) {
                size_t len = strlen(shortopts);

                shortopts[len] = (char)o->letter;
                memcpy(shortopts + len + 1, arg_spec[o->type],
                       strlen(arg_spec[o->type]) + 1);
            }
        }
    }
    longopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n + 1] = (struct option){NULL, 0, NULL, 0};

    cl->noperands = 0;
    optind = 0; /* glibc: start afresh, re-reading the mode characters */
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        long i;
        int status;

        if (c == 1) {
            if ((status = add_operand(cl, optarg)) != SRV_CONTINUE)
                return status;
            continue;
        }
        if (c == 'h') {
            cl->usage(stdout);
            return SRV_EXIT_OK;
        }
        if (c == '?') {
            refused_option(cl, optopt, argv[optind - 1]);
            return usage_error(cl);
        }
        if (c == ':') {
            char name[96];

            opt_spelling(name, sizeof(name), cl, optopt);
            srv_errorf(cl->cmd, "option '%s' needs a value", name);
            return usage_error(cl);
        }
        i = opt_index(cl, c);
        assert(i >= 0);
        if ((status = take_opt(cl, (size_t)i, optarg)) != SRV_CONTINUE)
            return status;
    }
    /* After "--", the rest are operands. */
    for (int k = optind; k < argc; k++) {
        int status = add_operand(cl, argv[k]);

        if (status != SRV_CONTINUE)
            return status;
    }
    return SRV_CONTINUE;
}

/* The options of srv_layer_args. */
static const srv_opt layer_opts[] = {
    {"store", 0, SRV_OPT_STRING, offsetof(srv_layer_args, store)},
    {"layer", 0, SRV_OPT_STRING, offsetof(srv_layer_args, layer)},
    {"kind", 0, SRV_OPT_STRING, offsetof(srv_layer_args, kind)},
    {"parent", 0, SRV_OPT_LIST, offsetof(srv_layer_args, parents)},
    {"trace", 0, SRV_OPT_STRING, offsetof(srv_layer_args, trace)},
    {"log-format", 0, SRV_OPT_STRING, offsetof(srv_layer_args, log_format)},
};

int srv_layer_args_parse(srv_layer_args *a, const char *cmd, int argc,
                         char **argv, const srv_optgroup *own,
                         void (*usage)(FILE *f))
{
    srv_optgroup groups[2] = {
        {layer_opts, sizeof(layer_opts) / sizeof(layer_opts[0]), a, NULL}};
    srv_cmdline cl = {.cmd = cmd,
                      .usage = usage,
                      .groups = groups,
                      .ngroups = 1,
                      .operands = &a->id,
                      .max_operands = 1};
    int status;

    if (own != NULL)
        groups[cl.ngroups++] = *own;
    if ((status = srv_cmdline_parse(&cl, argc, argv)) != SRV_CONTINUE)
        return status;
    if (a->layer && a->id) {
        srv_errorf(cmd, "unexpected argument '%s'", a->id);
        return usage_error(&cl);
    }
    if (a->parents.n > LAYER_CHAIN_MAX) {
        srv_errorf(cmd,
                   "%zu --parent options: a layer has at most %d parents "
                   "(LAYER_CHAIN_MAX)",
                   a->parents.n, LAYER_CHAIN_MAX);
        return usage_error(&cl);
    }
    return SRV_CONTINUE;
}

void srv_layer_args_dispose(srv_layer_args *a)
{
    srv_strv_dispose(&a->parents);
}

int srv_trace_open(layer_trace_sink **out, const char *spec,
                   const char *log_format, const char *def)
{
    layer_trace_format fmt = LAYER_TRACE_JSON;

    if (log_format && strcmp(log_format, "text") == 0)
        fmt = LAYER_TRACE_TEXT;
    else if (log_format && strcmp(log_format, "json") != 0) {
        fprintf(stderr, "layerd: --log-format must be json or text\n");
        return SRV_EXIT_USAGE;
    }
    if (layer_trace_sink_open(out, spec ? spec : def, fmt) < 0) {
        fprintf(stderr, "layerd: --trace %s: %s\n", spec ? spec : def,
                layer_error_last());
        return SRV_EXIT_USAGE;
    }
    return 0;
}

/* Build a layer_info from --layer/--kind/--parent. */
static int info_from_dirs(layer_info **out, const srv_layer_args *a)
{
    layer_info *info = layer_trycalloc(1, sizeof(*info));
    layer_kind kind = LAYER_KIND_DIFF;
    int rc = LAYER_ENOMEM;

    if (info == NULL)
        return rc;
    if (a->kind && (rc = layer_kind_parse(&kind, a->kind)) < 0)
        goto out;
    rc = LAYER_ENOMEM;
    info->id = layer_trystrdup(a->layer);
    info->store = layer_trystrdup("dir");
    info->layer.path = layer_trystrdup(a->layer);
    info->layer.kind = kind;
    if (info->id == NULL || info->store == NULL || info->layer.path == NULL)
        goto out;
    if (a->parents.n > 0) {
        info->parents = layer_trycalloc(a->parents.n, sizeof(*info->parents));
        info->parent_ids = layer_trycalloc(a->parents.n, sizeof(char *));
        if (info->parents == NULL || info->parent_ids == NULL)
            goto out;
        info->nparents = a->parents.n;
        for (size_t i = 0; i < a->parents.n; i++) {
            /* parents of a snapshot are snapshots; of a diff, diffs */
            info->parents[i].kind =
                kind == LAYER_KIND_FOLDER ? LAYER_KIND_DIFF : kind;
            info->parents[i].path = layer_trystrdup(a->parents.v[i]);
            info->parent_ids[i] = layer_trystrdup(a->parents.v[i]);
            if (info->parents[i].path == NULL || info->parent_ids[i] == NULL)
                goto out;
        }
    }
    *out = info;
    return 0;
out:
    layer_info_free(info);
    return rc;
}

int srv_layer_args_resolve(layer_info **out, const srv_layer_args *a,
                           layer_span *span)
{
    layer_store *store = NULL;
    layer_span *s = NULL;
    int rc;

    if ((a->store == NULL) == (a->layer == NULL)) {
        fprintf(stderr, "layerd: give either --store STORE ID or --layer "
                        "DIR\n");
        return SRV_EXIT_USAGE;
    }
    if (a->store && a->id == NULL) {
        fprintf(stderr, "layerd: --store needs a layer ID\n");
        return SRV_EXIT_USAGE;
    }
    if (a->store && (a->kind || a->parents.n)) {
        fprintf(stderr, "layerd: --kind and --parent go with --layer\n");
        return SRV_EXIT_USAGE;
    }
    if (a->layer) {
        if ((rc = info_from_dirs(out, a)) < 0) {
            fprintf(stderr, "layerd: %s\n", layer_error_last());
            return srv_setting_status(rc);
        }
        return 0;
    }
    layer_span_start(&s, NULL, span, "store.resolve");
    layer_span_set_str(s, "layer.id", a->id);
    layer_span_set_str(s, "store", a->store);
    if ((rc = layer_store_open(&store, a->store)) < 0 ||
        (rc = layer_store_resolve(out, store, a->id)) < 0) {
        fprintf(stderr, "layerd: %s\n", layer_error_last());
        layer_span_set_error(s, "store.resolve", rc);
        layer_span_end(s);
        layer_store_free(store);
        return srv_exit_status(rc);
    }
    {
        char *joined = layer_info_parent_paths(*out);

        layer_span_set_str(s, "layer.path", (*out)->layer.path);
        layer_span_set_str(s, "layer.parents", joined ? joined : "");
        layer_span_set_str(s, "layer.kind",
                           layer_kind_name((*out)->layer.kind));
        layer_free(joined);
    }
    layer_span_end(s);
    layer_store_free(store);
    return 0;
}

int srv_layer_cmd_open(srv_layer_cmd *c, const char *span_name)
{
    int status;

    if ((status = srv_trace_open(&c->sink, c->args.trace, c->args.log_format,
                                 "none")) != 0)
        return status;
    layer_span_start(&c->span, c->sink, NULL, span_name);
    if ((status = srv_layer_args_resolve(&c->info, &c->args, c->span)) != 0)
        return status;
    layer_span_set_str(c->span, "layer.path", c->info->layer.path);
    layer_span_set_str(c->span, "layer.kind",
                       layer_kind_name(c->info->layer.kind));
    return 0;
}

void srv_layer_cmd_dispose(srv_layer_cmd *c)
{
    layer_info_free(c->info);
    c->info = NULL;
    layer_span_end(c->span);
    c->span = NULL;
    layer_trace_sink_free(c->sink);
    c->sink = NULL;
    srv_layer_args_dispose(&c->args);
}
