/*
 * `layerd cache warm|ls|prune`: the blob cache of `layerd serve`
 * (layer/blobcache.h) from the command line, while the server runs or
 * not (several processes may share one cache directory).
 *
 *   warm   make the blobs of layers (by id) or of store images (by
 *          reference: every layer of the image) before a client asks,
 *          through the same code and keys as the server (api/blobs_int.h),
 *          so a later pull is a hit;
 *   ls     one line per record: digest, size, compression, level, tar,
 *          last use, the layer;
 *   prune  evict the least recently used blobs no process reads until the
 *          cache holds at most --max-bytes (0 by default: everything).
 *
 * The directory is found as the server finds it (srv_cache_dir()).
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "cli.h"
#include "layer/alloc.h"
#include "layer/blobcache.h"
#include "layer/error.h"
#include "layer/store.h"

int srv_cache_dir(char **out, const char *given)
{
    const char *v;
    char *s = NULL;
    size_t n;

    *out = NULL;
    if (given != NULL) {
        s = layer_trystrdup(given);
    } else if ((v = getenv("CACHE_DIRECTORY")) != NULL && v[0] == '/') {
        /* systemd's CacheDirectory=: several are ':'-separated */
        n = strcspn(v, ":");
        if ((s = layer_trymalloc(n + 1)) != NULL) {
            memcpy(s, v, n);
            s[n] = '\0';
        }
    } else if (geteuid() == 0) {
        s = layer_trystrdup("/var/cache/layerd");
    } else {
        const char *base = getenv("XDG_CACHE_HOME");
        const char *home = getenv("HOME");

        if (base != NULL && base[0] == '/')
            n = strlen(base) + sizeof("/layerd");
        else if (home != NULL && home[0] == '/')
            n = strlen(home) + sizeof("/.cache/layerd");
        else
            return layer_error_set(LAYER_EINVALID,
                                   "no cache directory: give --cache-dir "
                                   "(neither XDG_CACHE_HOME nor HOME is "
                                   "set)");
        if ((s = layer_trymalloc(n)) != NULL) {
            if (base != NULL && base[0] == '/')
                snprintf(s, n, "%s/layerd", base);
            else
                snprintf(s, n, "%s/.cache/layerd", home);
        }
    }
    if (s == NULL)
        return LAYER_ENOMEM;
    *out = s;
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: layerd cache warm --store STORE [--cache-dir DIR]\n"
          "                         [--compression none|gzip|zstd] "
          "[--level N]\n"
          "                         [--tar auto|canonical|original] "
          "NAME...\n"
          "       layerd cache ls [--cache-dir DIR]\n"
          "       layerd cache prune [--cache-dir DIR] [--max-bytes N]\n"
          "\n"
          "The blob cache of 'layerd serve' (see its --cache-dir; the same\n"
          "default: $CACHE_DIRECTORY, else /var/cache/layerd for root, else\n"
          "$XDG_CACHE_HOME/layerd).\n"
          "\n"
          "  warm   make the blobs of layers (NAME: a layer id) or of every\n"
          "         layer of a store image (NAME: a reference the store "
          "knows)\n"
          "         with the server's keys, so that pulls hit (default "
          "gzip)\n"
          "  ls     the records: digest, size, format, level, tar, last "
          "use,\n"
          "         layer\n"
          "  prune  evict the least recently used blobs until the cache "
          "holds\n"
          "         at most --max-bytes (default 0: every blob not being "
          "read)\n"
          "\n"
          "exit status: 0 ok, 1 failure, 2 usage, 3 no such layer\n",
          f);
}

typedef struct cache_args {
    const char *store;
    const char *cache_dir;
    const char *compression;
    const char *level;
    const char *tar;
    const char *max_bytes;
} cache_args;

static const srv_opt cache_opts[] = {
    {"store", 0, SRV_OPT_STRING, offsetof(cache_args, store)},
    {"cache-dir", 0, SRV_OPT_STRING, offsetof(cache_args, cache_dir)},
    {"compression", 0, SRV_OPT_STRING, offsetof(cache_args, compression)},
    {"level", 0, SRV_OPT_STRING, offsetof(cache_args, level)},
    {"tar", 0, SRV_OPT_STRING, offsetof(cache_args, tar)},
    {"max-bytes", 0, SRV_OPT_STRING, offsetof(cache_args, max_bytes)},
};

static int open_cache(layer_blobcache **out, const cache_args *a)
{
    char *dir = NULL;
    int rc;

    if ((rc = srv_cache_dir(&dir, a->cache_dir)) < 0 ||
        (rc = layer_blobcache_open(out, dir, NULL)) < 0) {
        srv_errorf("cache", "%s%s%s", dir != NULL ? dir : "",
                   dir != NULL ? ": " : "", layer_error_last());
        layer_free(dir);
        return srv_exit_status(rc);
    }
    layer_free(dir);
    return 0;
}

static const char *tar_name(layer_blobcache_tar t)
{
    return t == LAYER_BLOBCACHE_TAR_ORIGINAL ? "original" : "canonical";
}

static int cache_ls(const cache_args *a)
{
    layer_blobcache *c = NULL;
    layer_blobcache_item *items = NULL;
    size_t n = 0;
    int status, rc;

    if ((status = open_cache(&c, a)) != 0)
        return status;
    if ((rc = layer_blobcache_list(&items, &n, c)) < 0) {
        srv_errorf("cache", "%s", layer_error_last());
        status = srv_exit_status(rc);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char when[32] = "-";
        time_t t = (time_t)items[i].last_used;
        struct tm tm;

        if (gmtime_r(&t, &tm) != NULL)
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%s %" PRIu64 " %s %d %s %s %s\n", items[i].info.digest,
               items[i].info.size, layer_compression_name(items[i].compression),
               items[i].level, tar_name(items[i].tar), when, items[i].layer);
    }
    if (fflush(stdout) != 0) {
        srv_errorf("cache", "cannot write to standard output");
        status = SRV_EXIT_FAILURE;
    }
out:
    layer_blobcache_list_free(items, n);
    layer_blobcache_free(c);
    return status;
}

/* A size: digits, optionally K, M, G or T (powers of 1024). */
static int parse_size(uint64_t *out, const char *s)
{
    char *end = NULL;
    unsigned long long v;
    unsigned shift = 0;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    if (*end != '\0') {
        const char *u = strchr("KMGT", *end);

        if (u == NULL || *end == '\0' || end[1] != '\0')
            return -1;
        shift = 10u * (unsigned)(u - "KMGT" + 1);
    }
    if (shift > 0 && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int cache_prune(const cache_args *a)
{
    layer_blobcache *c = NULL;
    layer_blobcache_stats st;
    uint64_t target = 0, evicted = 0;
    int status, rc;

    if (a->max_bytes != NULL && parse_size(&target, a->max_bytes) < 0) {
        srv_errorf("cache",
                   "--max-bytes must be a size (N, or N with K, M, "
                   "G or T), not '%s'",
                   a->max_bytes);
        return SRV_EXIT_USAGE;
    }
    if ((status = open_cache(&c, a)) != 0)
        return status;
    rc = layer_blobcache_evict(&evicted, c, target);
    layer_blobcache_stats_get(&st, c);
    printf("evicted %" PRIu64 " blobs; %" PRIu64 " blobs, %" PRIu64
           " bytes kept\n",
           evicted, st.blobs, st.bytes);
    if (rc < 0) {
        srv_errorf("cache", "%s", layer_error_last());
        status = srv_exit_status(rc);
    }
    layer_blobcache_free(c);
    return status;
}

/* ---- warm ---- */

/* Make (or find) the blob of one layer; prints its line. */
static int warm_one(api_context *ctx, const char *id, layer_export_tar want,
                    layer_compression comp, int level)
{
    layer_blobcache_info info;
    layer_export_tar tar;
    int rc;

    if ((rc = api_blob_warm(&info, &tar, ctx, id, want, comp, level)) < 0) {
        srv_errorf("cache", "warm %s: %s", id, layer_error_last());
        return rc;
    }
    printf("%s %" PRIu64 " %s %s %s\n", info.digest, info.size,
           layer_compression_name(comp), layer_export_tar_name(tar), id);
    return 0;
}

static int cache_warm(const cache_args *a, const char **names, size_t nnames)
{
    layer_blobcache *c = NULL;
    layer_store *store = NULL;
    api_context *ctx = NULL;
    api_context_opts copts;
    layer_export_tar want = LAYER_EXPORT_TAR_AUTO;
    layer_compression comp = LAYER_COMPRESSION_GZIP;
    int level = 0, status, rc = 0, worst = 0;

    if (a->store == NULL || nnames == 0) {
        srv_errorf("cache", "warm needs --store and at least one NAME");
        return SRV_EXIT_USAGE;
    }
    if (a->compression != NULL &&
        layer_compression_parse(&comp, a->compression) < 0) {
        srv_errorf("cache",
                   "--compression must be none, gzip or zstd, not "
                   "'%s'",
                   a->compression);
        return SRV_EXIT_USAGE;
    }
    if (a->tar != NULL && layer_export_tar_parse(&want, a->tar) < 0) {
        srv_errorf("cache",
                   "--tar must be auto, canonical or original, not "
                   "'%s'",
                   a->tar);
        return SRV_EXIT_USAGE;
    }
    if (a->level != NULL) {
        char *end = NULL;
        long v = strtol(a->level, &end, 10);

        if (end == a->level || *end != '\0' || v < -131072 || v > 22) {
            srv_errorf("cache",
                       "--level must be an integer from -131072 "
                       "to 22, not '%s'",
                       a->level);
            return SRV_EXIT_USAGE;
        }
        level = (int)v;
    }
    if ((status = open_cache(&c, a)) != 0)
        return status;
    if ((rc = layer_store_open(&store, a->store)) < 0) {
        srv_errorf("cache", "--store %s: %s", a->store, layer_error_last());
        status = srv_exit_status(rc);
        goto out;
    }
    memset(&copts, 0, sizeof(copts));
    copts.store = store;
    copts.cache = c;
    copts.max_exports = 0; /* one at a time anyway: no cap */
    if ((rc = api_context_new(&ctx, &copts)) < 0) {
        srv_errorf("cache", "%s", layer_error_last());
        status = srv_exit_status(rc);
        goto out;
    }
    for (size_t i = 0; i < nnames; i++) {
        layer_info *probe = NULL;
        layer_image *img = NULL;

        rc = layer_store_describe(&probe, store, names[i]);
        layer_info_free(probe);
        if (rc == 0) {
            rc = warm_one(ctx, names[i], want, comp, level);
        } else if ((rc == LAYER_ENOTFOUND || rc == LAYER_EINVALID) &&
                   layer_store_image_resolve(&img, store, names[i]) == 0) {
            /* every layer of the image: the top one and its parents */
            const char *top = img->top_layer;

            rc = 0;
            if (top != NULL &&
                (rc = layer_store_describe(&probe, store, top)) == 0) {
                rc = warm_one(ctx, top, want, comp, level);
                for (size_t p = 0; p < probe->nparents; p++) {
                    int prc =
                        warm_one(ctx, probe->parent_ids[p], want, comp, level);
                    if (prc < 0)
                        rc = prc;
                }
                layer_info_free(probe);
            } else if (rc < 0) {
                srv_errorf("cache", "warm %s: %s", names[i],
                           layer_error_last());
            }
            layer_image_free(img);
        } else {
            srv_errorf("cache", "warm %s: no such layer or image", names[i]);
            rc = LAYER_ENOTFOUND;
        }
        if (rc < 0 && worst == 0)
            worst = rc;
    }
    if (fflush(stdout) != 0) {
        srv_errorf("cache", "cannot write to standard output");
        status = SRV_EXIT_FAILURE;
    } else if (worst < 0) {
        status = srv_exit_status(worst);
    }
out:
    api_context_free(ctx);
    layer_store_free(store);
    layer_blobcache_free(c);
    return status;
}

int srv_cmd_cache(int argc, char **argv)
{
    const char **op = NULL;
    cache_args a;
    srv_optgroup g = {cache_opts, sizeof(cache_opts) / sizeof(cache_opts[0]),
                      &a, NULL};
    srv_cmdline cl = {.cmd = "cache",
                      .usage = usage,
                      .groups = &g,
                      .ngroups = 1,
                      .max_operands = (size_t)(argc > 0 ? argc : 1)};
    int status;

    memset(&a, 0, sizeof(a));
    if ((op = layer_trycalloc(cl.max_operands, sizeof(*op))) == NULL) {
        srv_errorf("cache", "out of memory");
        return SRV_EXIT_FAILURE;
    }
    cl.operands = op;
    if ((status = srv_cmdline_parse(&cl, argc, argv)) != SRV_CONTINUE)
        goto out;
    if (cl.noperands == 0) {
        srv_errorf("cache", "missing the action: warm, ls or prune");
        usage(stderr);
        status = SRV_EXIT_USAGE;
    } else if (strcmp(op[0], "warm") == 0) {
        status = cache_warm(&a, op + 1, cl.noperands - 1);
    } else if (cl.noperands > 1) {
        srv_errorf("cache", "%s takes no operands", op[0]);
        status = SRV_EXIT_USAGE;
    } else if (strcmp(op[0], "ls") == 0) {
        status = cache_ls(&a);
    } else if (strcmp(op[0], "prune") == 0) {
        status = cache_prune(&a);
    } else {
        srv_errorf("cache", "unknown action '%s' (warm, ls or prune)", op[0]);
        usage(stderr);
        status = SRV_EXIT_USAGE;
    }
out:
    layer_free(op);
    return status;
}
