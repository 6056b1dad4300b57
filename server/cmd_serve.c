/*
 * `layerd serve`: run the HTTPS server until SIGTERM or SIGINT.
 *
 * Start-up, in order: settings (flags over the config file, then
 * defaults), the open-file limit raised to its hard limit (a reader holds
 * one descriptor per directory level of each layer it walks), signals
 * blocked in every thread (the MHD threads inherit the mask) and routed to
 * a signalfd the main thread waits on, the trace sink, the store, the
 * metrics, the TLS identity (configured or ephemeral), then the daemons.
 * The main thread only sleeps on the signalfd after that.
 *
 * SIGHUP reopens the trace file (logrotate). SIGTERM/SIGINT drain: stop
 * accepting, mark not-ready, let running requests finish for up to
 * --grace seconds (a second signal cuts the wait short), then cut what is
 * left, stop and exit 0.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "api/api.h"
#include "api/digest_memo.h"
#include "api/metrics.h"
#include "cli.h"
#include "config.h"
#include "http.h"
#include "layer/alloc.h"
#include "layer/compress.h"
#include "layer/error.h"
#include "layer/store.h"
#include "layer/trace.h"
#include "tls.h"
#include "ui_files.h"

/* The ephemeral certificate's validity. */
#define EPHEMERAL_DAYS 30

/* Seconds a client is told to wait when the export cap is reached. */
#define EXPORT_RETRY_AFTER 5

/* MHD worker threads per listening socket: the MHD side encrypts and
 * sends while each export's own worker fills its ring, so two threads
 * keep two cores busy; more than four only adds contention. */
#define THREADS_MIN 2
#define THREADS_MAX 4

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: layerd serve --store STORE [options]\n"
        "\n"
        "Serve the layers of STORE over HTTPS (see openapi.yaml).\n"
        "\n"
        "options:\n"
        "  --store STORE         dir:PATH, containers-storage:PATH or "
        "docker:PATH\n"
        "  --listen ADDR:PORT    address to listen on, repeatable; IPv6 as\n"
        "                        [ADDR]:PORT (default " SRV_DEFAULT_LISTEN ")\n"
        "  --cert FILE           PEM certificate chain, leaf first\n"
        "  --key FILE            PEM private key of the certificate\n"
        "                        (without --cert/--key an ephemeral "
        "self-signed\n"
        "                        certificate is generated and its "
        "fingerprint\n"
        "                        logged)\n"
        "  --insecure-http       serve plain HTTP instead of HTTPS\n"
        "  --config FILE         read settings from FILE: 'key = value' "
        "lines with\n"
        "                        the long option names as keys; options on "
        "the\n"
        "                        command line take precedence\n"
        "  --trace FILE|-|none   where request spans go (default -: "
        "stderr)\n"
        "  --log-format json|text  span line format (default json)\n"
        "  --max-exports N       concurrent exports before 503 (default "
        "%d)\n"
        "  --max-connections N   open connections (default %d)\n"
        "  --idle-timeout S      close connections idle for S seconds "
        "(default %d)\n"
        "  --grace S             on SIGTERM, let requests finish for S "
        "seconds\n"
        "                        (default %d)\n"
        "  --openapi FILE        the contract served at /openapi.yaml\n"
        "                        (default: found next to the binary)\n"
        "  --no-digest-memo      hash every export; by default the digests "
        "of\n"
        "                        immutable layers are remembered and reused "
        "while\n"
        "                        the layer's fingerprint is unchanged\n"
        "  --ui-dir DIR          serve the dashboard (/ui/) from DIR instead "
        "of the\n"
        "                        files built into the binary (for working on "
        "the\n"
        "                        page; nothing outside DIR is ever served)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Signals: SIGTERM/SIGINT drain and exit 0, SIGHUP reopens the trace "
        "file.\n",
        SRV_DEFAULT_MAX_EXPORTS, SRV_DEFAULT_MAX_CONNECTIONS,
        SRV_DEFAULT_IDLE_TIMEOUT, SRV_DEFAULT_GRACE);
}

/* Parse argv into flags; *config gets --config. Returns 0 or an exit
 * status (SRV_EXIT_OK after --help). */
static int parse_args(srv_config *flags, const char **config, int *help,
                      int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq;
        char key[64];
        const char *value;
        size_t klen;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            *help = 1;
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0) {
            srv_errorf("serve", "unexpected argument '%s'", arg);
            return SRV_EXIT_USAGE;
        }
        eq = strchr(arg + 2, '=');
        klen = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (klen == 0 || klen >= sizeof(key)) {
            srv_errorf("serve", "unknown option '%s'", arg);
            return SRV_EXIT_USAGE;
        }
        memcpy(key, arg + 2, klen);
        key[klen] = '\0';
        if (strcmp(key, "config") != 0 && !srv_config_has_key(key)) {
            srv_errorf("serve", "unknown option '%s'", arg);
            return SRV_EXIT_USAGE;
        }
        if (srv_config_is_flag(key)) {
            value = eq != NULL ? eq + 1 : "true";
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            srv_errorf("serve", "option '%s' needs a value", arg);
            return SRV_EXIT_USAGE;
        }
        if (strcmp(key, "config") == 0) {
            *config = value;
            continue;
        }
        if (srv_config_set(flags, key, value) < 0) {
            if (layer_error_last_code() == LAYER_ENOMEM)
                return SRV_EXIT_FAILURE;
            srv_errorf("serve", "--%s", layer_error_last());
            return SRV_EXIT_USAGE;
        }
    }
    return 0;
}

/* Raise the soft open-file limit to the hard limit. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, "layerd: cannot raise the open-file limit: %s\n",
                strerror(errno));
}

/* The contract next to the binary: an installed layout
 * (bin/../share/layerd/) or the source tree of a build directory. */
static char *find_openapi(void)
{
    static const char *const rel[] = {"/../share/layerd/openapi.yaml",
                                      "/../openapi.yaml", "/openapi.yaml"};
    char exe[PATH_MAX];
    char path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    if ((slash = strrchr(exe, '/')) == NULL)
        return NULL;
    *slash = '\0';
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        int len = snprintf(path, sizeof(path), "%s%s", exe, rel[i]);

        if (len > 0 && (size_t)len < sizeof(path) && access(path, R_OK) == 0)
            return layer_trystrdup(path);
    }
    return NULL;
}

static unsigned worker_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < THREADS_MIN)
        return THREADS_MIN;
    if (n > THREADS_MAX)
        return THREADS_MAX;
    return (unsigned)n;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait for a signal for at most timeout_ms (-1: forever). Returns the
 * signal number, 0 on timeout, -1 on error. */
static int wait_signal(int sfd, int timeout_ms)
{
    struct pollfd p = {.fd = sfd, .events = POLLIN};
    struct signalfd_siginfo si;
    int n;

    n = poll(&p, 1, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    if (n == 0)
        return 0;
    if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    return (int)si.ssi_signo;
}

/* The dashboard's files: the built-in ones, or those of --ui-dir (its
 * fd in ui->dir_fd, closed by the caller). Returns 0 or an exit status. */
static int open_ui(api_ui *ui, const char *dir)
{
    int fd;

    ui->files = srv_ui_files;
    ui->nfiles = srv_ui_nfiles;
    ui->dir_fd = -1;
    if (dir == NULL)
        return 0;
    if ((fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        srv_errorf("serve", "--ui-dir %s: %s", dir, strerror(errno));
        return errno == ENOENT ? SRV_EXIT_NOTFOUND : SRV_EXIT_USAGE;
    }
    if (faccessat(fd, "index.html", R_OK, AT_SYMLINK_NOFOLLOW) != 0)
        fprintf(stderr,
                "layerd: --ui-dir %s has no readable index.html; /ui/ will "
                "answer 404\n",
                dir);
    ui->dir_fd = fd;
    return 0;
}

/* Serve until SIGTERM/SIGINT, then drain for up to grace seconds. */
static void run(srv_http *srv, api_context *ctx, layer_trace_sink *sink,
                int sfd, unsigned grace)
{
    int sig;
    double deadline;

    for (;;) {
        sig = wait_signal(sfd, -1);
        if (sig < 0) {
            fprintf(stderr, "layerd: waiting for signals failed: %s\n",
                    strerror(errno));
            break;
        }
        if (sig == SIGHUP) {
            if (layer_trace_sink_reopen(sink) < 0)
                fprintf(stderr, "layerd: cannot reopen the trace sink: %s\n",
                        layer_error_last());
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    srv_http_quiesce(srv);
    /* A plain store: /readyz readers on kept-alive connections may see
     * the old value for a moment, which is harmless. */
    __atomic_store_n(&ctx->ready, false, __ATOMIC_RELEASE);
    fprintf(stderr,
            "layerd: shutting down: %u request(s) running, waiting up to "
            "%u s\n",
            srv_http_inflight(srv), grace);
    deadline = now_seconds() + grace;
    while (srv_http_inflight(srv) > 0) {
        double left = deadline - now_seconds();

        if (left <= 0) {
            fprintf(stderr,
                    "layerd: grace period over: cutting %u request(s)\n",
                    srv_http_inflight(srv));
            break;
        }
        sig = wait_signal(sfd, left < 0.1 ? (int)(left * 1000) + 1 : 100);
        if (sig == SIGTERM || sig == SIGINT) {
            fprintf(stderr, "layerd: second signal: cutting %u request(s)\n",
                    srv_http_inflight(srv));
            break;
        }
        if (sig == SIGHUP)
            (void)layer_trace_sink_reopen(sink);
    }
}

int srv_cmd_serve(int argc, char **argv)
{
    int status = SRV_EXIT_OK;
    int rc, help = 0;
    srv_config cfg = SRV_CONFIG_INIT;
    srv_config file = SRV_CONFIG_INIT;
    const char *config_path = NULL;
    layer_trace_sink *sink = NULL;
    layer_store *store = NULL;
    api_metrics *metrics = NULL;
    api_digest_memo *memo = NULL;
    srv_tls *tls = NULL;
    srv_http *srv = NULL;
    char *openapi = NULL;
    volatile unsigned active_exports = 0;
    api_ui ui = {NULL, 0, -1};
    api_context ctx;
    api_metrics_build build;
    layer_compress_versions cv;
    srv_http_opts opts;
    sigset_t sigs, oldsigs;
    bool masked = false;
    int sfd = -1;

    if ((status = parse_args(&cfg, &config_path, &help, argc, argv)) != 0)
        goto out;
    if (help) {
        usage(stdout);
        goto out;
    }
    if (config_path != NULL) {
        if ((rc = srv_config_load(&file, config_path)) < 0) {
            srv_errorf("serve", "%s", layer_error_last());
            status = rc == LAYER_ENOMEM ? SRV_EXIT_FAILURE : SRV_EXIT_USAGE;
            goto out;
        }
        if (srv_config_merge(&cfg, &file) < 0) {
            status = SRV_EXIT_FAILURE;
            goto out;
        }
    }
    if ((rc = srv_config_finish(&cfg)) < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        status = rc == LAYER_ENOMEM ? SRV_EXIT_FAILURE : SRV_EXIT_USAGE;
        goto out;
    }

    raise_nofile();
    /* Writes to closed sockets must fail with EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &sigs, &oldsigs) != 0 ||
        (sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) < 0) {
        srv_errorf("serve", "cannot set up signal handling: %s",
                   strerror(errno));
        status = SRV_EXIT_FAILURE;
        goto out;
    }
    masked = true;

    if ((status = srv_trace_open(&sink, cfg.trace, cfg.log_format, "-")) != 0)
        goto out;
    if ((rc = layer_store_open(&store, cfg.store)) < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        status = srv_exit_status(rc);
        goto out;
    }
    layer_compress_versions_get(&cv);
    memset(&build, 0, sizeof(build));
    build.version = LAYERD_VERSION;
    build.microhttpd = MHD_get_version();
    build.openssl = OpenSSL_version(OPENSSL_VERSION_STRING);
    build.zstd = cv.zstd;
    build.isal = cv.isal;
    if (api_metrics_new(&metrics, &build) < 0 ||
        (!cfg.no_digest_memo && api_digest_memo_new(&memo, 0) < 0)) {
        srv_errorf("serve", "%s", layer_error_last());
        status = SRV_EXIT_FAILURE;
        goto out;
    }
    if (!cfg.insecure_http) {
        if (cfg.cert != NULL)
            rc = srv_tls_load(&tls, cfg.cert, cfg.key);
        else
            rc = srv_tls_generate(&tls, EPHEMERAL_DAYS);
        if (rc < 0) {
            srv_errorf("serve", "%s", layer_error_last());
            status = rc == LAYER_ENOTFOUND  ? SRV_EXIT_NOTFOUND
                     : rc == LAYER_EINVALID ? SRV_EXIT_USAGE
                                            : SRV_EXIT_FAILURE;
            goto out;
        }
    }
    if (cfg.openapi != NULL) {
        if (access(cfg.openapi, R_OK) != 0) {
            srv_errorf("serve", "--openapi %s: %s", cfg.openapi,
                       strerror(errno));
            status = SRV_EXIT_NOTFOUND;
            goto out;
        }
    } else if ((openapi = find_openapi()) == NULL) {
        fprintf(stderr, "layerd: no openapi.yaml found next to the binary; "
                        "/openapi.yaml will answer 404 (see --openapi)\n");
    }

    if ((status = open_ui(&ui, cfg.ui_dir)) != 0)
        goto out;

    memset(&ctx, 0, sizeof(ctx));
    ctx.store = store;
    ctx.ui = &ui;
    ctx.trace = sink;
    ctx.metrics = metrics;
    ctx.digests = memo;
    ctx.openapi_path = cfg.openapi != NULL ? cfg.openapi : openapi;
    ctx.max_exports = cfg.max_exports;
    ctx.export_retry_after = EXPORT_RETRY_AFTER;
    ctx.active_exports = &active_exports;
    __atomic_store_n(&ctx.ready, true, __ATOMIC_RELEASE);

    memset(&opts, 0, sizeof(opts));
    opts.api = &ctx;
    opts.tls_cert_pem = tls != NULL ? tls->cert_pem : NULL;
    opts.tls_key_pem = tls != NULL ? tls->key_pem : NULL;
    opts.tls_priorities = SRV_TLS_PRIORITIES;
    opts.max_connections = cfg.max_connections;
    opts.idle_timeout = cfg.idle_timeout;
    opts.threads = worker_threads();
    if ((rc = srv_http_start(&srv, &opts, (const char *const *)cfg.listen,
                             cfg.nlisten)) < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        status = rc == LAYER_EINVALID ? SRV_EXIT_USAGE : SRV_EXIT_FAILURE;
        goto out;
    }

    if (tls != NULL)
        fprintf(stderr, "layerd: %s certificate SHA256 Fingerprint=%s\n",
                tls->ephemeral ? "ephemeral self-signed" : "configured",
                tls->fingerprint);
    else
        fprintf(stderr, "layerd: WARNING: serving plain HTTP "
                        "(--insecure-http)\n");
    fprintf(stderr, "layerd: serving store %s\n", layer_store_spec(store));
    for (size_t i = 0; i < srv_http_nsockets(srv); i++)
        fprintf(stderr, "layerd: listening on %s\n", srv_http_url(srv, i));
    fprintf(stderr, "layerd: dashboard at %s/ui/%s\n", srv_http_url(srv, 0),
            ui.dir_fd >= 0 ? " (from --ui-dir)" : "");
    fflush(stderr);

    run(srv, &ctx, sink, sfd, cfg.grace);
    srv_http_free(srv);
    srv = NULL;
    fprintf(stderr, "layerd: stopped\n");
out:
    srv_http_free(srv);
    srv_tls_free(tls);
    api_metrics_free(metrics);
    api_digest_memo_free(memo);
    layer_store_free(store);
    layer_trace_sink_free(sink);
    layer_free(openapi);
    if (ui.dir_fd >= 0)
        close(ui.dir_fd);
    if (sfd >= 0)
        close(sfd);
    if (masked)
        pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);
    srv_config_dispose(&file);
    srv_config_dispose(&cfg);
    return status;
}
