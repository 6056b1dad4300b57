/*
 * layerd export: write a layer's changeset as an OCI layer tar (plain,
 * gzip or zstd) to a file or standard output, or as a transport folder
 * (--output-dir), then report the digests.
 *
 * The tar comes from layer_export_read() in blocking mode: the export's
 * worker thread walks, packs, compresses and hashes while this thread
 * writes. A file target is written as FILE.tmp and renamed over FILE only
 * once the stream ended cleanly, so FILE is either the complete export or
 * untouched; on failure, and on SIGINT/SIGTERM/SIGHUP, FILE.tmp is
 * removed. A target that exists and is not a regular file (/dev/null, a
 * FIFO) is written in place. A file of the layer that changes while it is
 * read fails the export (exit 1, nothing left) unless --allow-changing,
 * which prints a warning per such file as it happens.
 *
 * Which tar: --tar auto (the default) gives the layer's original tar
 * where its store kept the tar-split data for it (layer/export.h), the
 * canonical one otherwise; --tar original insists, --tar canonical
 * refuses the original. The summary says which ("tar").
 *
 * The summary: the human form ("diff_id sha256:...") goes to stderr;
 * --json prints the summary object to stdout, or to stderr when stdout
 * carries the tar (and then replaces the human form, so stderr holds only
 * the JSON on success). A TTY stderr shows a progress line, redrawn about
 * four times a second and erased at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api/json_bytes.h"
#include "cli.h"
#include "layer/alloc.h"
#include "layer/compress.h"
#include "layer/error.h"
#include "layer/export.h"
#include "layer/folder.h"

/* One read from the export: the size of the export's ring buffers, so a
 * read usually takes one whole buffer. */
#define READ_CAP (256 * 1024)

/* Progress redraw period: ~4 times a second. */
#define PROGRESS_NS 250000000LL

/* The temporary output, removed by the signal handler. A process-wide
 * static because a signal handler can reach nothing else; the CLI runs
 * one export per process. The handler may run on any thread, an export
 * worker included, so the flag is a lock-free C11 atomic (which a handler
 * may use, C11 7.14.1.1) rather than a volatile sig_atomic_t (which only
 * the interrupted thread is sure to see): set with release after
 * tmp_path is written, read with acquire before tmp_path is read. */
static char tmp_path[PATH_MAX];
static atomic_bool tmp_armed;

static void usage(FILE *f)
{
    fputs(
        "usage: layerd export (--store STORE ID | --layer DIR [--kind KIND]\n"
        "                      [--parent DIR]...) [-o FILE|-] [--compression "
        "C]\n"
        "                      [--level N] [--output-dir DIR] [--json] "
        "[--all-xattrs]\n"
        "                      [--source-date-epoch N] [--tar KIND]\n"
        "                      [--allow-changing]\n"
        "                      [--trace FILE|-|none] [--log-format "
        "json|text]\n"
        "\n"
        "Write the layer's changeset as an OCI layer tar, with its parent "
        "chain\n"
        "applied (whiteouts, opaque directories, snapshot differences).\n"
        "\n"
        "  --store STORE ID   the layer ID in STORE (dir:PATH,\n"
        "                     containers-storage:PATH, docker:PATH)\n"
        "  --layer DIR        a layer directory; --kind diff|snapshot|folder "
        "says\n"
        "                     how it holds its content (default diff), "
        "--parent\n"
        "                     names its parents, nearest first\n"
        "  -o, --output FILE  write the tar to FILE through FILE.tmp, renamed "
        "at the\n"
        "                     end: on failure or SIGINT/SIGTERM nothing is "
        "left (a\n"
        "                     FILE that is not a regular file, like /dev/null, "
        "is\n"
        "                     written in place); '-' or no -o: standard "
        "output,\n"
        "                     which must not be a terminal unless -o - is "
        "given\n"
        "  --tar KIND         auto (default): the layer's original tar where "
        "its\n"
        "                     store kept tar-split data for it and it is not "
        "mutable\n"
        "                     (then its diff ID is the one the store "
        "recorded), else\n"
        "                     the canonical one; original: that or fail "
        "(exit 4);\n"
        "                     canonical: layerd's own tar profile. The "
        "original tar\n"
        "                     is checked as it streams (each file's size "
        "and CRC-64,\n"
        "                     then the diff ID): a layer changed since it "
        "was stored\n"
        "                     fails with the first file that differs. "
        "--all-xattrs\n"
        "                     and --source-date-epoch shape the canonical "
        "tar, so\n"
        "                     auto then gives that one\n"
        "  --compression C    none (default), gzip or zstd\n"
        "  --level N          compression level: gzip 1-3 with ISA-L "
        "(default 2),\n"
        "                     1-9 with zlib (default 1); zstd 1-19 (default "
        "3)\n"
        "  --output-dir DIR   write a transport folder instead of a tar: "
        "DIR/Files/\n"
        "                     and DIR/tombstones.txt (DIR must not exist; "
        "built\n"
        "                     under a temporary name, nothing is left on "
        "failure)\n"
        "  --json             print the summary as one JSON object "
        "{\"media_type\",\n"
        "                     \"tar\", \"diff_id\", \"digest\", \"size\", "
        "\"tar_size\",\n"
        "                     \"entries\", \"warnings\"}: \"tar\" is "
        "original or\n"
        "                     canonical, \"warnings\" lists warning messages "
        "(at\n"
        "                     least the last one). It goes to standard output, "
        "or\n"
        "                     to standard error when the tar goes to standard\n"
        "                     output (then in place of the human-readable "
        "summary).\n"
        "                     With --output-dir: {\"folder\", \"entries\", "
        "\"files\",\n"
        "                     \"tombstones\", \"bytes\", \"warnings\" (a "
        "count)}\n"
        "  --all-xattrs       export every xattr, not only "
        "security.capability\n"
        "  --source-date-epoch N\n"
        "                     clamp mtimes to N seconds since the epoch "
        "(default:\n"
        "                     $SOURCE_DATE_EPOCH when set and not empty, "
        "for the\n"
        "                     canonical tar)\n"
        "  --allow-changing   a file that changes while it is read is padded "
        "or cut\n"
        "                     to its listed size with a warning, as GNU tar "
        "does;\n"
        "                     by default it fails the export (exit 1, "
        "nothing left)\n"
        "  --trace            where spans go (default none)\n"
        "\n"
        "At the end the media type, the digests (diff_id over the tar, digest "
        "over\n"
        "the bytes written), the sizes and the entry count are printed to "
        "standard\n"
        "error. On a terminal, standard error also shows a progress line.\n"
        "\n"
        "exit status: 0 ok, 1 failure, 2 usage, 3 not found, 4 the layer "
        "cannot\n"
        "be exported\n",
        f);
}

static void on_signal(int sig)
{
    if (atomic_load_explicit(&tmp_armed, memory_order_acquire))
        unlink(tmp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void arm_cleanup(void)
{
    struct sigaction sa;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    atomic_store_explicit(&tmp_armed, true, memory_order_release);
}

static void disarm_cleanup(void)
{
    atomic_store_explicit(&tmp_armed, false, memory_order_relaxed);
}

/* The options of this subcommand (the layer ones live in srv_layer_args). */
typedef struct export_args {
    const char *output; /* -o FILE|-, or NULL */
    const char *output_dir;
    const char *compression;
    const char *level;
    const char *epoch;
    const char *tar;
    bool json;
    bool all_xattrs;
    bool allow_changing;
} export_args;

/* The options of this subcommand, stored into export_args. */
static const srv_opt export_opts[] = {
    {"output", 'o', SRV_OPT_STRING, offsetof(export_args, output)},
    {"output-dir", 0, SRV_OPT_STRING, offsetof(export_args, output_dir)},
    {"compression", 0, SRV_OPT_STRING, offsetof(export_args, compression)},
    {"level", 0, SRV_OPT_STRING, offsetof(export_args, level)},
    {"source-date-epoch", 0, SRV_OPT_STRING, offsetof(export_args, epoch)},
    {"tar", 0, SRV_OPT_STRING, offsetof(export_args, tar)},
    {"json", 0, SRV_OPT_FLAG, offsetof(export_args, json)},
    {"all-xattrs", 0, SRV_OPT_FLAG, offsetof(export_args, all_xattrs)},
    {"allow-changing", 0, SRV_OPT_FLAG, offsetof(export_args, allow_changing)},
};

/* Each file that changed while read (--allow-changing), as it happens;
 * called on the export's worker thread. stderr is unbuffered, and one
 * fprintf is one write. */
static void print_warning(void *arg, const char *message)
{
    (void)arg;
    /* on a terminal, over the progress line */
    fprintf(stderr, "%slayerd export: warning: %s\n",
            isatty(STDERR_FILENO) ? "\r\033[K" : "", message);
}

/* Parse a whole decimal integer in [lo, hi]. */
static int parse_int64(int64_t *out, const char *s, int64_t lo, int64_t hi)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* What the options ask for beyond layer_export_opts: the tar, and a
 * SOURCE_DATE_EPOCH from the environment, which applies to the canonical
 * tar only (the original one is given as it was). */
typedef struct export_want {
    layer_export_tar tar;
    bool env_epoch;
    int64_t epoch;
} export_want;

/* Check the export options against each other and fill opts. Returns 0
 * or SRV_EXIT_USAGE (message printed). */
static int build_opts(layer_export_opts *opts, export_want *want,
                      const export_args *x)
{
    const char *epoch = x->epoch;
    const char *epoch_name = "--source-date-epoch";
    int64_t v;
    int eff;

    memset(opts, 0, sizeof(*opts));
    memset(want, 0, sizeof(*want));
    if (x->tar && layer_export_tar_parse(&want->tar, x->tar) < 0) {
        srv_errorf("export",
                   "--tar must be auto, canonical or original, not "
                   "'%s'",
                   x->tar);
        return SRV_EXIT_USAGE;
    }
    if (want->tar == LAYER_EXPORT_TAR_ORIGINAL &&
        (x->output_dir || x->epoch || x->all_xattrs)) {
        srv_errorf("export", "--tar original gives the layer's tar as it "
                             "was; --output-dir, --source-date-epoch and "
                             "--all-xattrs do not apply");
        return SRV_EXIT_USAGE;
    }
    if (x->output && x->output_dir) {
        srv_errorf("export", "give either -o or --output-dir, not both");
        return SRV_EXIT_USAGE;
    }
    if (x->compression &&
        layer_compression_parse(&opts->compression, x->compression) < 0) {
        srv_errorf("export",
                   "--compression must be none, gzip or zstd, not "
                   "'%s'",
                   x->compression);
        return SRV_EXIT_USAGE;
    }
    if (x->output_dir &&
        (x->compression || x->level || x->epoch || x->all_xattrs)) {
        srv_errorf("export", "--output-dir writes a folder with every xattr "
                             "and full times; --compression, --level, "
                             "--source-date-epoch and --all-xattrs do not "
                             "apply");
        return SRV_EXIT_USAGE;
    }
    if (x->level) {
        if (parse_int64(&v, x->level, -131072, 22) < 0) {
            srv_errorf("export", "--level: not a level: '%s'", x->level);
            return SRV_EXIT_USAGE;
        }
        if (opts->compression == LAYER_COMPRESSION_NONE) {
            srv_errorf("export", "--level needs --compression gzip or zstd");
            return SRV_EXIT_USAGE;
        }
        if (layer_compress_level(&eff, opts->compression, (int)v) < 0) {
            srv_errorf("export", "--level: %s", layer_error_last());
            return SRV_EXIT_USAGE;
        }
        opts->level = (int)v;
    }
    if (epoch == NULL) {
        epoch = getenv("SOURCE_DATE_EPOCH");
        epoch_name = "SOURCE_DATE_EPOCH";
        if (epoch != NULL && epoch[0] == '\0')
            epoch = NULL;
    }
    if (epoch != NULL) {
        if (parse_int64(&v, epoch, 0, INT64_MAX) < 0) {
            srv_errorf("export", "%s: not a number of seconds: '%s'",
                       epoch_name, epoch);
            return SRV_EXIT_USAGE;
        }
        if (x->epoch != NULL) {
            opts->flags |= LAYER_EXPORT_CLAMP_MTIME;
            opts->epoch = v;
        } else {
            want->env_epoch = true;
            want->epoch = v;
        }
    }
    if (x->all_xattrs)
        opts->flags |= LAYER_EXPORT_ALL_XATTRS;
    if (x->allow_changing)
        opts->reader_flags |= LAYER_READER_ALLOW_CHANGING;
    opts->on_warning = print_warning;
    return 0;
}

/* Decide the tar for the resolved layer: opts->original is set for the
 * original one, the environment's epoch applied to the canonical one.
 * Returns 0 or an exit status (message printed). */
static int choose_tar(layer_export_opts *opts, layer_export_original *orig,
                      const export_want *want, const layer_info *info,
                      layer_span *span)
{
    layer_export_tar tar;
    int rc;

    if ((rc = layer_export_choose_tar(&tar, orig, info, want->tar,
                                      opts->flags)) < 0) {
        srv_errorf("export", "%s", layer_error_last());
        layer_span_set_error(span, "layer.export", rc);
        return srv_exit_status(rc);
    }
    layer_span_set_str(span, "export.tar", layer_export_tar_name(tar));
    if (tar == LAYER_EXPORT_TAR_ORIGINAL) {
        opts->original = orig;
    } else if (want->env_epoch) {
        opts->flags |= LAYER_EXPORT_CLAMP_MTIME;
        opts->epoch = want->epoch;
    }
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The progress line, on a TTY stderr only. */
typedef struct progress {
    bool on;
    bool shown;
    int64_t start, last;
} progress;

static void progress_draw(progress *p, const layer_export *x)
{
    layer_export_summary s;
    int64_t t = now_ns();
    double secs, mib, out_mib;

    if (!p->on || t - p->last < PROGRESS_NS)
        return;
    p->last = t;
    layer_export_summary_get(&s, x);
    secs = (double)(t - p->start) / 1e9;
    mib = (double)s.tar_size / (1024.0 * 1024.0);
    out_mib = (double)s.size / (1024.0 * 1024.0);
    fprintf(stderr,
            "\r\033[Kexport: %" PRIu64 " entries, %.1f MiB tar, %.1f MiB "
            "written, %.1f MiB/s",
            s.entries, mib, out_mib, secs > 0 ? mib / secs : 0.0);
    fflush(stderr);
    p->shown = true;
}

static void progress_clear(progress *p)
{
    if (p->shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->shown = false;
    }
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Where the tar goes. */
typedef struct sink {
    int fd;
    bool is_stdout;
    bool atomic; /* through tmp_path, renamed to final */
    const char *final;
} sink;

/* Open the output; returns 0 or an exit status (message printed). */
static int sink_open(sink *out, const char *output, bool tty_ok)
{
    struct stat st;
    int n;

    out->fd = -1;
    out->atomic = false;
    out->is_stdout = output == NULL || strcmp(output, "-") == 0;
    out->final = output;
    if (out->is_stdout) {
        if (!tty_ok && isatty(STDOUT_FILENO)) {
            srv_errorf("export", "refusing to write a tar to a terminal; "
                                 "use -o FILE, or -o - to force");
            return SRV_EXIT_USAGE;
        }
        out->fd = STDOUT_FILENO;
        return 0;
    }
    if (output[0] == '\0') {
        srv_errorf("export", "-o: empty file name");
        return SRV_EXIT_USAGE;
    }
    if (stat(output, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) {
            srv_errorf("export", "%s: is a directory", output);
            return SRV_EXIT_FAILURE;
        }
        /* a device or FIFO: no rename possible, write in place */
        out->fd = open(output, O_WRONLY | O_CLOEXEC);
        if (out->fd < 0) {
            srv_errorf("export", "%s: %s", output, strerror(errno));
            return SRV_EXIT_FAILURE;
        }
        return 0;
    }
    n = snprintf(tmp_path, sizeof(tmp_path), "%s.tmp", output);
    if (n < 0 || (size_t)n >= sizeof(tmp_path)) {
        srv_errorf("export", "%s: file name too long", output);
        return SRV_EXIT_USAGE;
    }
    arm_cleanup();
    out->fd = open(tmp_path,
                   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (out->fd < 0) {
        int err = errno;

        srv_errorf("export", "%s: %s", tmp_path, strerror(err));
        disarm_cleanup();
        return err == ENOENT ? SRV_EXIT_NOTFOUND : SRV_EXIT_FAILURE;
    }
    out->atomic = true;
    return 0;
}

/* Finish the output: flush to disk and rename into place. Returns 0 or
 * an exit status (message printed). */
static int sink_commit(sink *s)
{
    int rc;

    if (!s->atomic)
        return 0;
    if (fsync(s->fd) < 0) {
        srv_errorf("export", "%s: %s", tmp_path, strerror(errno));
        return SRV_EXIT_FAILURE; /* sink_dispose() closes and unlinks */
    }
    rc = close(s->fd);
    s->fd = -1;
    if (rc < 0) {
        srv_errorf("export", "%s: %s", tmp_path, strerror(errno));
        return SRV_EXIT_FAILURE;
    }
    if (rename(tmp_path, s->final) < 0) {
        srv_errorf("export", "rename %s to %s: %s", tmp_path, s->final,
                   strerror(errno));
        return SRV_EXIT_FAILURE;
    }
    disarm_cleanup();
    s->atomic = false;
    return 0;
}

/* Release the output; an uncommitted temporary file is removed. */
static void sink_dispose(sink *s)
{
    if (s->fd >= 0 && !s->is_stdout)
        close(s->fd);
    s->fd = -1;
    if (s->atomic) {
        unlink(tmp_path);
        disarm_cleanup();
        s->atomic = false;
    }
}

/* The summary object of DESIGN.md section 4. A new reference or NULL. */
static json_t *summary_json(const layer_export_summary *s)
{
    json_t *o = json_object();
    json_t *w = json_array();

    if (o == NULL || w == NULL)
        goto out;
    if (s->warnings > 0 && s->last_warning != NULL &&
        json_array_append_new(w, api_json_string_bytes(s->last_warning,
                                                       strlen(s->last_warning),
                                                       NULL)) < 0)
        goto out;
    if (json_object_set_new(o, "media_type", json_string(s->media_type)) < 0 ||
        json_object_set_new(o, "tar",
                            json_string(layer_export_tar_name(s->tar))) < 0 ||
        json_object_set_new(o, "diff_id", json_string(s->diff_id)) < 0 ||
        json_object_set_new(o, "digest", json_string(s->digest)) < 0 ||
        json_object_set_new(o, "size", json_integer((json_int_t)s->size)) < 0 ||
        json_object_set_new(o, "tar_size",
                            json_integer((json_int_t)s->tar_size)) < 0 ||
        json_object_set_new(o, "entries",
                            json_integer((json_int_t)s->entries)) < 0)
        goto out;
    if (json_object_set_new(o, "warnings", w) < 0) {
        w = NULL;
        goto out;
    }
    return o;
out:
    json_decref(w);
    json_decref(o);
    return NULL;
}

/* Print the summary: JSON (to json_to) and/or the human form (stderr).
 * Returns 0 or an exit status. */
static int report(const layer_export_summary *s, bool json, FILE *json_to)
{
    if (!json || json_to != stderr) {
        fprintf(stderr,
                "media_type %s\ntar %s\ndiff_id %s\ndigest %s\nsize %" PRIu64
                "\ntar_size %" PRIu64 "\nentries %" PRIu64 "\n",
                s->media_type, layer_export_tar_name(s->tar), s->diff_id,
                s->digest, s->size, s->tar_size, s->entries);
        if (s->warnings > 0)
            srv_errorf("export", "%" PRIu64 " warning(s), the last: %s",
                       s->warnings,
                       s->last_warning ? s->last_warning : "(no message)");
    }
    if (json) {
        json_t *o = summary_json(s);

        if (o == NULL || json_dumpf(o, json_to, JSON_COMPACT) < 0 ||
            fputc('\n', json_to) == EOF || fflush(json_to) != 0) {
            json_decref(o);
            srv_errorf("export", "cannot write the JSON summary");
            return SRV_EXIT_FAILURE;
        }
        json_decref(o);
    }
    return 0;
}

/* Run a tar export into the sink. Returns an exit status. */
static int run_tar(const layer_info *info, const layer_export_opts *opts,
                   const char *output, bool json, layer_span *span)
{
    layer_export *x = NULL;
    unsigned char *buf = NULL;
    sink out = {.fd = -1};
    progress prog = {0};
    layer_export_summary sum;
    int status, rc;
    size_t n;

    if ((status = sink_open(&out, output, output != NULL)) != 0)
        goto out;
    if ((buf = layer_trymalloc(READ_CAP)) == NULL) {
        srv_errorf("export", "out of memory");
        status = SRV_EXIT_FAILURE;
        goto out;
    }
    if ((rc = layer_export_start(&x, &info->layer, info->parents,
                                 info->nparents, opts)) < 0) {
        srv_errorf("export", "%s", layer_error_last());
        layer_span_set_error(span, "layer.export", rc);
        status = srv_exit_status(rc);
        goto out;
    }
    prog.on = isatty(STDERR_FILENO);
    prog.start = prog.last = now_ns();
    while ((rc = layer_export_read(&n, x, buf, READ_CAP, 0)) == 0) {
        if (write_all(out.fd, buf, n) < 0) {
            progress_clear(&prog);
            srv_errorf("export", "write to %s: %s",
                       out.is_stdout ? "standard output" : output,
                       strerror(errno));
            layer_span_set_error_message(span, "write failed");
            status = SRV_EXIT_FAILURE;
            goto out;
        }
        progress_draw(&prog, x);
    }
    progress_clear(&prog);
    if (rc != LAYER_ITEROVER) {
        /* The worker's message is this thread's now; the span adds the
         * operation, the CLI its name. */
        srv_errorf("export", "%s", layer_error_last());
        layer_span_set_error(span, "layer.export", rc);
        status = srv_exit_status(rc);
        goto out;
    }
    if ((status = sink_commit(&out)) != 0)
        goto out;
    layer_export_summary_get(&sum, x);
    layer_span_set_str(span, "export.diff_id", sum.diff_id);
    layer_span_set_str(span, "export.digest", sum.digest);
    layer_span_set_int(span, "export.size", (int64_t)sum.size);
    layer_span_set_int(span, "export.entries", (int64_t)sum.entries);
    status = report(&sum, json, out.is_stdout ? stderr : stdout);
out:
    progress_clear(&prog);
    layer_export_free(x);
    sink_dispose(&out);
    layer_free(buf);
    return status;
}

/* The folder summary object: {"folder", "entries", "files",
 * "tombstones", "bytes", "warnings"} (warnings: a count; the folder
 * writer keeps no messages). A new reference or NULL. */
static json_t *folder_json(const char *dest, const layer_folder_summary *s)
{
    json_t *o = json_object();

    if (o == NULL ||
        json_object_set_new(
            o, "folder", api_json_string_bytes(dest, strlen(dest), NULL)) < 0 ||
        json_object_set_new(o, "entries",
                            json_integer((json_int_t)s->entries)) < 0 ||
        json_object_set_new(o, "files", json_integer((json_int_t)s->files)) <
            0 ||
        json_object_set_new(o, "tombstones",
                            json_integer((json_int_t)s->tombstones)) < 0 ||
        json_object_set_new(o, "bytes", json_integer((json_int_t)s->bytes)) <
            0 ||
        json_object_set_new(o, "warnings",
                            json_integer((json_int_t)s->warnings)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Run a transport folder export. Its layer.export span (the tar export's
 * span comes from the library) carries the seed's ExportLayer attributes.
 * Returns an exit status. */
static int run_folder(const layer_info *info, const char *dest, bool json,
                      const layer_export_opts *opts, layer_span *parent)
{
    layer_reader_opts ropts = {0};
    layer_folder_summary sum;
    layer_span *span = NULL;
    char *joined = layer_info_parent_paths(info);
    int status = SRV_EXIT_OK, rc;

    layer_span_start(&span, NULL, parent, "layer.export");
    layer_span_set_str(span, "layer.path", info->layer.path);
    layer_span_set_str(span, "layer.parents", joined ? joined : "");
    layer_span_set_str(span, "export.format", "folder");
    layer_span_set_str(span, "export.folder", dest);
    ropts.span = span;
    ropts.flags = opts->reader_flags;
    ropts.on_warning = opts->on_warning;
    if ((rc = layer_folder_export(&info->layer, info->parents, info->nparents,
                                  dest, &ropts, &sum)) < 0) {
        srv_errorf("export", "%s", layer_error_last());
        layer_span_set_error(span, "layer.export", rc);
        status = srv_exit_status(rc);
        goto out;
    }
    layer_span_set_int(span, "export.entries", (int64_t)sum.entries);
    layer_span_set_int(span, "export.warnings", (int64_t)sum.warnings);
    if (json) {
        json_t *o = folder_json(dest, &sum);

        if (o == NULL || json_dumpf(o, stdout, JSON_COMPACT) < 0 ||
            fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
            srv_errorf("export", "cannot write the JSON summary");
            status = SRV_EXIT_FAILURE;
        }
        json_decref(o);
        goto out;
    }
    fprintf(stderr,
            "folder %s\nentries %" PRIu64 "\nfiles %" PRIu64
            "\ntombstones %" PRIu64 "\nbytes %" PRIu64 "\n",
            dest, sum.entries, sum.files, sum.tombstones, sum.bytes);
    if (sum.warnings > 0)
        srv_errorf("export", "%" PRIu64 " file(s) changed while read",
                   sum.warnings);
out:
    layer_span_end(span);
    layer_free(joined);
    return status;
}

int srv_cmd_export(int argc, char **argv)
{
    srv_layer_cmd c = {0};
    export_args x = {0};
    srv_optgroup own = {export_opts,
                        sizeof(export_opts) / sizeof(export_opts[0]), &x, NULL};
    layer_export_opts opts;
    layer_export_original orig;
    export_want want;
    int status;

    if ((status = srv_layer_args_parse(&c.args, "export", argc, argv, &own,
                                       usage)) != SRV_CONTINUE)
        goto out;
    if ((status = build_opts(&opts, &want, &x)) != 0)
        goto out;
    if ((status = srv_layer_cmd_open(&c, "cli.export")) != 0)
        goto out;
    opts.span = c.span;
    if (x.output_dir)
        status = run_folder(c.info, x.output_dir, x.json, &opts, c.span);
    else if ((status = choose_tar(&opts, &orig, &want, c.info, c.span)) == 0)
        status = run_tar(c.info, &opts, x.output, x.json, c.span);
    if (status != SRV_EXIT_OK)
        layer_span_set_error_message(c.span, "export failed");
out:
    srv_layer_cmd_dispose(&c);
    return status;
}
