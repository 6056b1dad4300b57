/*
 * `layerd serve`: run the HTTPS server until SIGTERM or SIGINT.
 *
 * Start-up, in order: settings (flags over the config file, then
 * defaults), the open-file limit (below), signals blocked in every thread
 * (the MHD threads inherit the mask) and routed to a signalfd, the trace
 * sink, the store (with a warning when trusted.* xattrs are out of reach),
 * the metrics, the blob cache (--cache-dir, opened and recovered from any
 * crash before anything listens; none with --no-cache: see the README's
 * "The blob cache"), the TLS identity (configured or ephemeral), then the
 * daemons. The main thread only sleeps on the signalfd after that.
 *
 * Start-up can be interrupted at any point: until the daemons run, a
 * watcher thread waits on the signalfd, and SIGTERM or SIGINT end the
 * process at once (by that signal, after a line on stderr), whatever the
 * main thread is blocked in: a slow disk, a hung network file system.
 * Nothing has been served then, so there is nothing to drain.
 *
 * Descriptors: the soft open-file limit is raised to the hard one. The
 * connections (--max-connections), FD_RESERVE for the server itself and,
 * with the blob cache, its own descriptors and one per stream (a kept
 * blob is read through its file) are set aside; the rest is the readers' pool
 * (api_context_opts.reader_fds): every request that resolves a layer reserves
 * its reader's budget (LAYER_READER_FDS(parents), layer/reader.h: 70 without
 * parents, 326 at the longest chain) until its response is freed, and gets 503
 * when the pool is short. The limit must leave room for --max-streams readers
 * without parents and one at the longest chain, or start-up fails with a
 * clear message. With that, accepting a connection and answering /healthz
 * and /readyz (which open nothing) never meet EMFILE, however many streams
 * run and however long their chains.
 *
 * Access control (api/auth.h, server/auth.h) is set up before anything
 * listens: the policy of --auth (or the default one), the refusals of the
 * safe defaults (a listen address that is not loopback needs a policy or
 * --allow-anonymous, and plain HTTP is for loopback only), the client
 * CAs, and the names of the Host check.
 *
 * SIGHUP reopens the trace file (logrotate) and reloads the policy: a
 * new file that parses replaces the old policy at once, for every request
 * that starts after it; one that does not leaves the old one in force and
 * the log says why. SIGTERM/SIGINT drain: stop accepting, mark not-ready,
 * let running requests finish for up to --grace seconds (a second signal
 * cuts the wait short), then cut what is left, stop (fills still running
 * for clients that waited on them are aborted: nothing half-made is kept)
 * and exit 0. Serving
 * anonymous clients on a public address (--allow-anonymous) is warned
 * about at start and every hour.
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/metrics.h"
#include "auth.h"
#include "cli.h"
#include "config.h"
#include "http.h"
#include "layer/alloc.h"
#include "layer/blobcache.h"
#include "layer/compress.h"
#include "layer/error.h"
#include "layer/export.h"
#include "layer/store.h"
#include "layer/trace.h"
#include "tls.h"
#include "ui_files.h"

/* The ephemeral certificate's validity. */
#define EPHEMERAL_DAYS 30

/* Seconds a client is told to wait when the export cap is reached. */
#define EXPORT_RETRY_AFTER 5

/* glibc malloc: blocks from this size up are mapped on their own and
 * unmapped when freed. glibc's default raises this threshold to the size
 * of the largest block freed so far (up to 32 MiB), after which export
 * buffers and zstd contexts come from its arenas, one per thread at
 * first, and stay there when freed: 64 clients mixing exports held a
 * 450 MiB peak and 215-385 MiB idle with the export memory cap at
 * 256 MiB. A fixed threshold keeps the RSS at what is in use. */
#define MALLOC_MMAP_THRESHOLD (128 * 1024)

/* Descriptors the server keeps for itself: standard streams, listening
 * sockets, MHD's epoll and inter-thread descriptors (two per worker
 * thread), the signalfd, the trace file, the store's root and metadata
 * reads, /openapi.yaml reads. */
#define FD_RESERVE 256

/* HTTP worker threads (server/accept.h), for all listening sockets: the
 * MHD side encrypts and sends while each export's own worker fills its
 * ring, so two threads keep two cores busy; more than four only adds
 * contention. */
#define THREADS_MIN 2
#define THREADS_MAX 4

/* How often --allow-anonymous on a public address is warned about. */
#define ANONYMOUS_WARN_MS (3600 * 1000)

static void usage(FILE *f)
{
    fputs("usage: layerd serve --store STORE [options]\n"
          "\n"
          "Serve the layers of STORE over HTTPS (see openapi.yaml).\n"
          "\n"
          "options:\n",
          f);
    srv_config_help(f);
    fputs("  --help-config         print the settings, their config-file keys "
          "and\n"
          "                        defaults as a Markdown table\n"
          "  -h, --help            show this help\n"
          "\n"
          "Signals: SIGTERM/SIGINT drain and exit 0, SIGHUP reopens the trace "
          "file\n"
          "and reloads the --auth policy (a broken file keeps the old one).\n"
          "\n"
          "exit status: 0 ok, 1 failure, 2 usage (options, config file, "
          "certificate,\n"
          "key, listen address), 3 the store, certificate, key or openapi "
          "file not\n"
          "found\n",
          f);
}

/* The command line: the table's settings and --help-config. */
typedef struct serve_args {
    srv_config *flags;
    const srv_setting *rows[SRV_CMDLINE_MAX_OPTS];
} serve_args;

/* Take the value of a command-line setting (a boolean flag alone means
 * true). */
static int take_setting(void *dest, size_t index, const char *value)
{
    serve_args *sa = dest;
    int rc = srv_config_set(sa->flags, sa->rows[index]->name,
                            value ? value : "true");

    if (rc == LAYER_ENOMEM) {
        srv_errorf("serve", "out of memory");
        return SRV_EXIT_FAILURE;
    }
    if (rc < 0) {
        srv_errorf("serve", "--%s", layer_error_last());
        return SRV_EXIT_USAGE;
    }
    return SRV_CONTINUE;
}

static int take_help_config(void *dest, size_t index, const char *value)
{
    (void)dest;
    (void)index;
    (void)value;
    srv_config_markdown(stdout);
    return SRV_EXIT_OK;
}

/*
 * The settings: the command line, over the config file it names, over the
 * defaults. Returns SRV_CONTINUE, or an exit status after printing the
 * help or the error: every failure here is a usage error, but for running
 * out of memory.
 */
static int settings(srv_config *cfg, int argc, char **argv)
{
    static const srv_opt help_config[] = {{"help-config", 0, SRV_OPT_FLAG, 0}};
    srv_opt opts[SRV_CMDLINE_MAX_OPTS];
    serve_args sa = {.flags = cfg};
    srv_optgroup groups[] = {{opts, 0, &sa, take_setting},
                             {help_config, 1, NULL, take_help_config}};
    srv_cmdline cl = {
        .cmd = "serve", .usage = usage, .groups = groups, .ngroups = 2};
    srv_config file = SRV_CONFIG_INIT;
    size_t n;
    const srv_setting *table = srv_config_settings(&n);
    int status, rc = 0;

    assert(n <= SRV_CMDLINE_MAX_OPTS - 1);
    for (size_t i = 0; i < n; i++) {
        if (table[i].where == SRV_SETTING_FILE_ONLY)
            continue;
        sa.rows[groups[0].nopts] = &table[i];
        opts[groups[0].nopts++] = (srv_opt){
            table[i].name, 0,
            table[i].type == SRV_SETTING_BOOL ? SRV_OPT_BOOL : SRV_OPT_STRING,
            0};
    }
    if ((status = srv_cmdline_parse(&cl, argc, argv)) != SRV_CONTINUE)
        return status;
    if (cfg->config != NULL) {
        if ((rc = srv_config_load(&file, cfg->config)) < 0 ||
            (rc = srv_config_merge(cfg, &file)) < 0)
            goto out;
    }
    rc = srv_config_finish(cfg);
out:
    srv_config_dispose(&file);
    if (rc == 0)
        return SRV_CONTINUE;
    if (rc == LAYER_ENOMEM) {
        srv_errorf("serve", "out of memory");
        return SRV_EXIT_FAILURE;
    }
    srv_errorf("serve", "%s", layer_error_last());
    return SRV_EXIT_USAGE;
}

/* Descriptors outside the readers' pool: connections and the reserve. */
static uint64_t fds_fixed(const srv_config *cfg)
{
    /* the blob cache: its directory, journal and lock, and one
     * descriptor per stream served from it */
    return (uint64_t)cfg->max_connections + FD_RESERVE +
           (cfg->no_cache ? 0 : 4 + (uint64_t)cfg->max_streams);
}

/* Descriptors the settings need (see the top of the file): besides the
 * fixed ones, room for every stream over a layer without parents and for
 * one more reader at the longest chain. */
static uint64_t fds_needed(const srv_config *cfg)
{
    return fds_fixed(cfg) + (uint64_t)cfg->max_streams * LAYER_READER_FDS(0) +
           LAYER_READER_FDS_MAX;
}

/* Raise the soft open-file limit to the hard limit, and both to need if
 * the hard limit is lower and we may. Returns 0 and the limit in force
 * in *limit, or an exit status after the message when the limit stays
 * below need. */
static int raise_nofile(uint64_t *limit, uint64_t need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        srv_errorf("serve", "cannot read the open-file limit: %s",
                   strerror(errno));
        return SRV_EXIT_FAILURE;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        struct rlimit up = {need, need};

        /* Root (CAP_SYS_RESOURCE) may raise the hard limit too. */
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 &&
            getrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = 0;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        srv_errorf("serve",
                   "the open-file limit is %llu descriptors; --max-connections "
                   "and --max-streams need up to %llu (a stream's reader "
                   "holds %d over a layer without parents, up to %d at the "
                   "longest chain, and %d are kept for the server): raise "
                   "the limit (ulimit -n, LimitNOFILE=) or lower them",
                   (unsigned long long)rl.rlim_cur, (unsigned long long)need,
                   LAYER_READER_FDS(0), LAYER_READER_FDS_MAX, FD_RESERVE);
        return SRV_EXIT_USAGE;
    }
    *limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
    return 0;
}

/* ---- start-up interruption ---- */

typedef struct startup_watch {
    int sfd;    /* the signalfd (borrowed) */
    int stopfd; /* eventfd: written to stop the watcher */
    pthread_t thread;
    bool started;
} startup_watch;

/* Until stopped, end the process on SIGTERM or SIGINT: by that signal,
 * with its default action, so the exit looks as it would have without
 * the mask. SIGHUP (nothing to reopen yet) is consumed. */
static void *startup_main(void *arg)
{
    startup_watch *w = arg;

    for (;;) {
        struct pollfd p[2] = {{.fd = w->sfd, .events = POLLIN},
                              {.fd = w->stopfd, .events = POLLIN}};
        struct signalfd_siginfo si;
        sigset_t one;
        int sig;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (p[1].revents != 0)
            return NULL;
        if (read(w->sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
            continue;
        sig = (int)si.ssi_signo;
        if (sig != SIGTERM && sig != SIGINT)
            continue;
        fprintf(stderr, "layerd: %s during start-up: exiting\n",
                sig == SIGTERM ? "SIGTERM" : "SIGINT");
        fflush(stderr);
        signal(sig, SIG_DFL);
        sigemptyset(&one);
        sigaddset(&one, sig);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        raise(sig);
        _exit(128 + sig); /* not reached: the default action ends us */
    }
}

static int startup_watch_start(startup_watch *w, int sfd)
{
    int err;

    w->sfd = sfd;
    w->started = false;
    if ((w->stopfd = eventfd(0, EFD_CLOEXEC)) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "eventfd");
    if ((err = pthread_create(&w->thread, NULL, startup_main, w)) != 0) {
        close(w->stopfd);
        w->stopfd = -1;
        return layer_error_set_errno(LAYER_ERROR, err, "pthread_create");
    }
    w->started = true;
    return 0;
}

static void startup_watch_stop(startup_watch *w)
{
    uint64_t one = 1;

    if (!w->started)
        return;
    if (write(w->stopfd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        fprintf(stderr, "layerd: cannot stop the start-up watcher: %s\n",
                strerror(errno));
    pthread_join(w->thread, NULL);
    close(w->stopfd);
    w->stopfd = -1;
    w->started = false;
}

/* Say so when trusted.* xattrs are out of reach (no CAP_SYS_ADMIN in the
 * effective set): overlayfs run by root marks opaque directories (and may
 * mark whiteouts) with them, and listxattr() hides them without an error,
 * so such a store's exports would silently miss deletions. Unprivileged
 * overlayfs (rootless podman) uses user.* xattrs; vfs and dir: stores need
 * none. A kernel that does not answer capget() is taken at its word. */
static void warn_without_trusted_xattrs(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

    memset(d, 0, sizeof(d));
    if (syscall(SYS_capget, &h, d) != 0 ||
        (d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &
         CAP_TO_MASK(CAP_SYS_ADMIN)) != 0)
        return;
    fprintf(stderr,
            "layerd: warning: without CAP_SYS_ADMIN the trusted.overlay.* "
            "xattrs cannot be read: the opaque directories and xattr "
            "whiteouts of overlay stores written as root (docker, rootful "
            "podman and CRI-O) would be missed; rootless and vfs stores "
            "need no CAP_SYS_ADMIN\n");
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

/* Load the policy file anew and put it in force, or keep the old one and
 * say why. */
static void reload_policy(api_auth *auth, const char *path)
{
    api_policy *p = NULL;

    if (api_policy_load(&p, path) < 0) {
        fprintf(stderr,
                "layerd: access policy not reloaded, the previous one "
                "stays in force: %s\n",
                layer_error_last());
        return;
    }
    fprintf(stderr,
            "layerd: access policy reloaded from %s: %zu principal(s)\n", path,
            api_policy_principal_count(p));
    api_auth_replace(auth, p);
}

static void warn_anonymous(const char *which)
{
    fprintf(stderr,
            "layerd: WARNING: serving without an access policy on %s "
            "(--allow-anonymous): anyone who can connect may list and read "
            "every immutable layer\n",
            which);
    fflush(stderr);
}

/* What run() needs besides the server. */
typedef struct run_ctx {
    layer_trace_sink *sink;
    api_auth *auth;
    const char *auth_path;   /* NULL: no policy file to reload */
    const char *public_anon; /* a public address served anonymously */
} run_ctx;

/* Serve until SIGTERM/SIGINT, then drain for up to grace seconds. */
static void run(srv_http *srv, api_context *ctx, const run_ctx *rc, int sfd,
                unsigned grace)
{
    int sig;
    double deadline, next_warn = now_seconds() + ANONYMOUS_WARN_MS / 1000.0;

    for (;;) {
        int timeout = -1;

        if (rc->public_anon != NULL) {
            double left = next_warn - now_seconds();

            timeout = left > 0 ? (int)(left * 1000) + 1 : 0;
        }
        sig = wait_signal(sfd, timeout);
        if (sig < 0) {
            fprintf(stderr, "layerd: waiting for signals failed: %s\n",
                    strerror(errno));
            break;
        }
        if (rc->public_anon != NULL && now_seconds() >= next_warn) {
            warn_anonymous(rc->public_anon);
            next_warn = now_seconds() + ANONYMOUS_WARN_MS / 1000.0;
        }
        if (sig == SIGHUP) {
            if (layer_trace_sink_reopen(rc->sink) < 0)
                fprintf(stderr, "layerd: cannot reopen the trace sink: %s\n",
                        layer_error_last());
            if (rc->auth_path != NULL)
                reload_policy(rc->auth, rc->auth_path);
            fflush(stderr);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    srv_http_quiesce(srv);
    api_set_ready(ctx, false);
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
            (void)layer_trace_sink_reopen(rc->sink);
    }
}

/*
 * The safe defaults: plain HTTP and anonymous access (no policy) only on
 * loopback addresses, unless --allow-anonymous says otherwise for the
 * latter. *public_anon gets the first public address served without a
 * policy (then allowed). Returns 0 or an exit status after printing why.
 */
static int check_exposure(const srv_config *cfg, const char **public_anon)
{
    bool loopback;
    const char *which = NULL;
    int rc;

    *public_anon = NULL;
    if ((rc = srv_auth_listen_loopback(&loopback, &which, &cfg->listen)) < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        return SRV_EXIT_USAGE;
    }
    if (loopback)
        return 0;
    if (cfg->insecure_http) {
        srv_errorf("serve",
                   "--insecure-http: plain HTTP is served on loopback "
                   "addresses only, and %s is not one; serve HTTPS there",
                   which);
        return SRV_EXIT_USAGE;
    }
    if (cfg->auth == NULL && !cfg->allow_anonymous) {
        srv_errorf("serve",
                   "%s is not a loopback address, and without an access "
                   "policy anyone who can connect could read every layer: "
                   "give --auth POLICY (see 'Securing layerd' in the README), "
                   "or --allow-anonymous to serve the immutable layers to "
                   "anyone",
                   which);
        return SRV_EXIT_USAGE;
    }
    if (cfg->auth == NULL)
        *public_anon = which;
    return 0;
}

int srv_cmd_serve(int argc, char **argv)
{
    int status = SRV_EXIT_OK;
    int rc;
    srv_config cfg = SRV_CONFIG_INIT;
    layer_trace_sink *sink = NULL;
    layer_store *store = NULL;
    api_metrics *metrics = NULL;
    layer_blobcache *cache = NULL;
    char *cache_dir = NULL;
    srv_tls *tls = NULL;
    srv_http *srv = NULL;
    char *openapi = NULL;
    api_ui ui = {NULL, 0, -1};
    api_policy *policy = NULL; /* until the holder takes it */
    api_auth *auth = NULL;
    api_hostnames *hosts = NULL;
    char *client_ca = NULL;
    unsigned nca = 0;
    size_t nprincipals = 0;
    run_ctx rctx;
    api_context *ctx = NULL;
    api_context_opts copts;
    api_metrics_build build;
    layer_compress_versions cv;
    srv_http_opts opts;
    sigset_t sigs, oldsigs;
    bool masked = false;
    int sfd = -1;
    startup_watch watch = {.sfd = -1, .stopfd = -1};
    unsigned threads = worker_threads();
    uint64_t nofile = 0;

    if ((status = settings(&cfg, argc, argv)) != SRV_CONTINUE)
        goto out;
    status = SRV_EXIT_OK;

    if ((status = raise_nofile(&nofile, fds_needed(&cfg))) != 0)
        goto out;
    /* Before any thread: see MALLOC_MMAP_THRESHOLD. Allocators that
     * replace glibc's (ASan's) ignore it. */
    (void)mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
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
    if (startup_watch_start(&watch, sfd) < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        status = SRV_EXIT_FAILURE;
        goto out;
    }

    memset(&rctx, 0, sizeof(rctx));
    if ((status = check_exposure(&cfg, &rctx.public_anon)) != 0)
        goto out;
    rc = cfg.auth != NULL ? api_policy_load(&policy, cfg.auth)
                          : api_policy_new_default(&policy);
    if (rc < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        status = srv_setting_status(rc);
        goto out;
    }
    nprincipals = api_policy_principal_count(policy);
    rc = api_auth_new(&auth, policy);
    policy = NULL; /* the holder's now, even on failure */
    if (rc < 0 ||
        (cfg.client_ca != NULL &&
         (rc = srv_auth_load_client_ca(&client_ca, &nca, cfg.client_ca)) < 0)) {
        srv_errorf("serve", "%s", layer_error_last());
        status = srv_setting_status(rc);
        goto out;
    }

    if ((status = srv_trace_open(&sink, cfg.trace, cfg.log_format, "-")) != 0)
        goto out;
    if ((rc = layer_store_open(&store, cfg.store)) < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        status = srv_exit_status(rc);
        goto out;
    }
    warn_without_trusted_xattrs();
    /* the index of the store's metadata, kept fresh by the store's own
     * thread: requests never read metadata files or wait for a build */
    if ((rc = layer_store_watch(store)) < 0) {
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
    if ((rc = api_metrics_new(&metrics, &build)) < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        status = srv_exit_status(rc);
        goto out;
    }
    if (!cfg.no_cache) {
        layer_blobcache_opts bopts = {.max_bytes = cfg.cache_max_bytes};

        if ((rc = srv_cache_dir(&cache_dir, cfg.cache_dir)) < 0 ||
            (rc = layer_blobcache_open(&cache, cache_dir, &bopts)) < 0) {
            srv_errorf("serve", "--cache-dir %s: %s",
                       cache_dir != NULL ? cache_dir : "(unset)",
                       layer_error_last());
            status = srv_setting_status(rc);
            goto out;
        }
        api_metrics_set_cache(metrics, cache);
    }
    if (!cfg.insecure_http) {
        if (cfg.cert != NULL)
            rc = srv_tls_load(&tls, cfg.cert, cfg.key,
                              cfg.allow_insecure_key_permissions);
        else
            rc = srv_tls_generate(&tls, EPHEMERAL_DAYS);
        if (rc < 0) {
            srv_errorf("serve", "%s", layer_error_last());
            status = srv_setting_status(rc);
            goto out;
        }
    }
    if (cfg.openapi != NULL) {
        if (access(cfg.openapi, R_OK) != 0) {
            rc = errno == ENOENT ? LAYER_ENOTFOUND : LAYER_ERROR;
            srv_errorf("serve", "--openapi %s: %s", cfg.openapi,
                       strerror(errno));
            status = srv_exit_status(rc);
            goto out;
        }
    } else if ((openapi = find_openapi()) == NULL) {
        fprintf(stderr, "layerd: no openapi.yaml found next to the binary; "
                        "/openapi.yaml will answer 404 (see --openapi)\n");
    }

    if ((status = open_ui(&ui, cfg.ui_dir)) != 0)
        goto out;
    if ((rc = srv_auth_hostnames(&hosts, &cfg.listen, &cfg.server_names,
                                 tls != NULL ? tls->cert_pem : NULL)) < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        status = srv_setting_status(rc);
        goto out;
    }

    memset(&copts, 0, sizeof(copts));
    copts.store = store;
    copts.ui = &ui;
    copts.trace = sink;
    copts.metrics = metrics;
    copts.cache = cache;
    copts.openapi_path = cfg.openapi != NULL ? cfg.openapi : openapi;
    copts.max_exports = cfg.max_exports;
    copts.export_retry_after = EXPORT_RETRY_AFTER;
    copts.auth = auth;
    copts.hosts = hosts;
    if (layer_export_tar_parse(&copts.export_tar, cfg.tar) < 0) {
        srv_errorf("serve", "--tar: %s", layer_error_last());
        status = SRV_EXIT_USAGE;
        goto out;
    }
    if (layer_compression_parse(&copts.registry_compression,
                                cfg.registry_compression) < 0) {
        srv_errorf("serve", "--registry-compression: %s", layer_error_last());
        status = SRV_EXIT_USAGE;
        goto out;
    }
    copts.allow_changing = cfg.allow_changing;
    copts.max_export_memory = (uint64_t)cfg.max_export_memory << 20;
    copts.max_streams = cfg.max_streams;
    copts.max_level = cfg.max_level;
    copts.max_header_bytes = cfg.max_header_bytes;
    copts.reader_fds = nofile - fds_fixed(&cfg);
    if (api_context_new(&ctx, &copts) < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        status = SRV_EXIT_FAILURE;
        goto out;
    }
    api_set_ready(ctx, true);

    memset(&opts, 0, sizeof(opts));
    opts.api = ctx;
    opts.trace = sink;
    opts.metrics = metrics;
    opts.tls_cert_pem = tls != NULL ? tls->cert_pem : NULL;
    opts.tls_key_pem = tls != NULL ? tls->key_pem : NULL;
    opts.tls_priorities = SRV_TLS_PRIORITIES;
    opts.tls_client_ca_pem = client_ca;
    opts.max_connections = cfg.max_connections;
    opts.idle_timeout = cfg.idle_timeout;
    opts.threads = threads;
    opts.header_timeout = cfg.header_timeout;
    opts.send_timeout = cfg.send_timeout;
    opts.max_per_client = cfg.max_per_client;
    opts.max_header_bytes = cfg.max_header_bytes;
    if ((rc = srv_http_start(&srv, &opts, (const char *const *)cfg.listen.v,
                             cfg.listen.n)) < 0) {
        srv_errorf("serve", "%s", layer_error_last());
        status = srv_setting_status(rc);
        goto out;
    }

    if (tls != NULL)
        fprintf(stderr, "layerd: %s certificate SHA256 Fingerprint=%s\n",
                tls->ephemeral ? "ephemeral self-signed" : "configured",
                tls->fingerprint);
    else
        fprintf(stderr, "layerd: WARNING: serving plain HTTP "
                        "(--insecure-http)\n");
    if (cfg.auth != NULL)
        fprintf(stderr, "layerd: access policy %s: %zu principal(s)%s\n",
                cfg.auth, nprincipals,
                client_ca != NULL ? ", client certificates asked for" : "");
    else
        fprintf(stderr, "layerd: no access policy (--auth): anonymous "
                        "clients may list and read the immutable layers\n");
    if (client_ca != NULL)
        fprintf(stderr,
                "layerd: client certificates verified against %u "
                "CA certificate(s) of %s\n",
                nca, cfg.client_ca);
    if (rctx.public_anon != NULL)
        warn_anonymous(rctx.public_anon);
    fprintf(stderr, "layerd: serving store %s\n", layer_store_spec(store));
    for (size_t i = 0; i < srv_http_nsockets(srv); i++)
        fprintf(stderr, "layerd: listening on %s\n", srv_http_url(srv, i));
    fprintf(stderr, "layerd: dashboard at %s/ui/%s\n", srv_http_url(srv, 0),
            ui.dir_fd >= 0 ? " (from --ui-dir)" : "");
    fflush(stderr);

    rctx.sink = sink;
    rctx.auth = auth;
    rctx.auth_path = cfg.auth;
    /* Serving: from now on the signals drain (run()). */
    startup_watch_stop(&watch);
    run(srv, ctx, &rctx, sfd, cfg.grace);
    srv_http_free(srv);
    srv = NULL;
    fprintf(stderr, "layerd: stopped\n");
out:
    startup_watch_stop(&watch);
    srv_http_free(srv);
    api_context_free(ctx);
    api_hostnames_free(hosts);
    api_auth_free(auth);
    layer_free(client_ca);
    srv_tls_free(tls);
    api_metrics_free(metrics);
    layer_blobcache_free(cache);
    layer_free(cache_dir);
    layer_store_free(store);
    layer_trace_sink_free(sink);
    layer_free(openapi);
    if (ui.dir_fd >= 0)
        close(ui.dir_fd);
    if (sfd >= 0)
        close(sfd);
    if (masked)
        pthread_sigmask(SIG_SETMASK, &oldsigs, NULL);
    srv_config_dispose(&cfg);
    return status;
}
