/*
 * Options shared by the subcommands that read one layer: which layer
 * (through a store, or a directory with its kind and parents), and where
 * the spans go. Resolution produces a layer_info either way, so the
 * subcommands treat both forms alike.
 */
#include <errno.h>
#include <fcntl.h>
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

/* The value of option argv[*i], advancing *i; NULL (and a message) if
 * missing. Accepts "--opt value" and "--opt=value". */
static const char *value_of(int argc, char **argv, int *i, const char *opt)
{
    const char *a = argv[*i];
    size_t n = strlen(opt);

    if (strncmp(a, opt, n) == 0 && a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "layerd: option %s needs a value\n", opt);
        return NULL;
    }
    return argv[++*i];
}

static int is_opt(const char *arg, const char *opt)
{
    size_t n = strlen(opt);

    return strncmp(arg, opt, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* The string options, by name and place in srv_layer_args. */
static const srv_opt string_opts[] = {
    {"--store", offsetof(srv_layer_args, store)},
    {"--layer", offsetof(srv_layer_args, layer)},
    {"--kind", offsetof(srv_layer_args, kind)},
    {"--trace", offsetof(srv_layer_args, trace)},
    {"--log-format", offsetof(srv_layer_args, log_format)},
};

int srv_opt_take(void *args, const srv_opt *table, size_t n, int argc,
                 char **argv, int *i)
{
    for (size_t k = 0; k < n; k++) {
        const char *v;

        if (!is_opt(argv[*i], table[k].name))
            continue;
        if ((v = value_of(argc, argv, i, table[k].name)) == NULL)
            return -1;
        *(const char **)((char *)args + table[k].offset) = v;
        return 1;
    }
    return 0;
}

int srv_layer_args_take(srv_layer_args *a, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    const char *v;

    if (is_opt(arg, "--parent")) {
        const char **p;

        if ((v = value_of(argc, argv, i, "--parent")) == NULL)
            return -1;
        p = layer_tryarray((void *)a->parents, a->nparents + 1,
                           sizeof(*a->parents));
        if (p == NULL) {
            fprintf(stderr, "layerd: out of memory\n");
            return -1;
        }
        p[a->nparents++] = v;
        a->parents = p;
        return 1;
    }
    return srv_opt_take(a, string_opts,
                        sizeof(string_opts) / sizeof(string_opts[0]), argc,
                        argv, i);
}

int srv_layer_args_parse(srv_layer_args *a, const char *cmd, int argc,
                         char **argv,
                         int (*take)(void *ctx, int argc, char **argv, int *i),
                         void *ctx, void (*usage)(FILE *f))
{
    for (int i = 1; i < argc; i++) {
        int t;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return SRV_PARSED_HELP;
        }
        t = srv_layer_args_take(a, argc, argv, &i);
        if (t == 0 && take != NULL)
            t = take(ctx, argc, argv, &i);
        if (t < 0)
            return SRV_EXIT_USAGE;
        if (t == 1)
            continue;
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            srv_errorf(cmd, "unknown option '%s'", argv[i]);
            usage(stderr);
            return SRV_EXIT_USAGE;
        }
        if (a->id != NULL || a->layer != NULL) {
            srv_errorf(cmd, "unexpected argument '%s'", argv[i]);
            return SRV_EXIT_USAGE;
        }
        a->id = argv[i];
    }
    if (a->layer && a->id) {
        srv_errorf(cmd, "unexpected argument '%s'", a->id);
        return SRV_EXIT_USAGE;
    }
    return 0;
}

void srv_layer_args_dispose(srv_layer_args *a)
{
    layer_free((void *)a->parents);
    a->parents = NULL;
    a->nparents = 0;
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
    if (a->nparents > 0) {
        info->parents = layer_trycalloc(a->nparents, sizeof(*info->parents));
        info->parent_ids = layer_trycalloc(a->nparents, sizeof(char *));
        if (info->parents == NULL || info->parent_ids == NULL)
            goto out;
        info->nparents = a->nparents;
        for (size_t i = 0; i < a->nparents; i++) {
            /* parents of a snapshot are snapshots; of a diff, diffs */
            info->parents[i].kind =
                kind == LAYER_KIND_FOLDER ? LAYER_KIND_DIFF : kind;
            info->parents[i].path = layer_trystrdup(a->parents[i]);
            info->parent_ids[i] = layer_trystrdup(a->parents[i]);
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
    if (a->store && (a->kind || a->nparents)) {
        fprintf(stderr, "layerd: --kind and --parent go with --layer\n");
        return SRV_EXIT_USAGE;
    }
    if (a->layer) {
        if ((rc = info_from_dirs(out, a)) < 0) {
            fprintf(stderr, "layerd: %s\n", layer_error_last());
            return rc == LAYER_EINVALID ? SRV_EXIT_USAGE : srv_exit_status(rc);
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
