/*
 * The libmicrohttpd front end and its adapter to api/.
 *
 * Sockets: the server binds its listening sockets itself (getaddrinfo,
 * SO_REUSEADDR, IPV6_V6ONLY for IPv6) and hands them to the acceptor
 * (server/accept.h), which gives each connection to the least loaded of
 * the worker daemons (srv_http_opts.threads of them): single-threaded MHD
 * daemons on epoll without a listening socket of their own.
 *
 * Requests: one srv_request per request owns everything about it. It is
 * created in the URI log callback (the only place that sees the raw
 * request-target, before MHD unescapes it) and reaches the access handler
 * as its req_cls. The handler starts the "http.request" root span on the
 * first call (headers parsed) and on the last call runs api_handle() and
 * queues the answer; no route takes a request body, so a request with one
 * is answered at once, without reading it. A streamed body keeps a
 * second reference, held by the MHD response and dropped by its free
 * callback; the request-completed notification drops the first. The last
 * reference out releases the producer, the span and the context: one
 * place, whichever of the two happens last, on normal ends and aborts
 * alike.
 *
 * Streaming: the content reader pulls from the producer. When the
 * producer has nothing yet (API_PRODUCE_AGAIN) the connection is suspended
 * and the producer's wake callback resumes it, so a slow source never
 * spins. Suspend and wake race (the wake may come from the producer's
 * worker thread before the reader has suspended); a per-request state
 * under a mutex settles it: a wake that finds the stream running leaves a
 * note (WAKE_PENDING) and the reader reads again instead of suspending; a
 * wake that finds it suspended resumes it. Trailers are added to the
 * response when the producer ends, before MHD sends the last chunk; a
 * producer error cuts the stream (no terminating chunk).
 *
 * Locks: the list lock (srv->lock) and a request's lock are never held
 * together, and MHD is called only under a request's lock, never under
 * the list lock, so no cycle can form with MHD's internal mutexes whatever
 * callbacks MHD makes while holding them.
 *
 * Atomics: the reference counts, the request counters and the flags are
 * C11 atomics in their default, sequentially consistent order. Each is
 * touched a few times per request, so a weaker order would save nothing
 * measurable, and the reference count needs at least acquire-release
 * anyway: whoever drops the last reference frees the request and must see
 * every other holder's writes to it.
 *
 * Connections: each connection gets a small record (srv_conn, made and
 * freed by MHD_OPTION_NOTIFY_CONNECTION, its socket context) that holds
 * its header deadline (below) and, with client certificates asked for,
 * the certificate verified at its first request (server/auth.h), so
 * later requests on the connection reuse the verdict.
 *
 * Shutdown: quiesce stops the acceptor, which closes the listening
 * sockets; stopping sets a flag that makes every reader cut its stream,
 * resumes suspended connections (MHD_stop_daemon must not find one) and
 * stops the daemons.
 *
 * Limits on clients. libmicrohttpd 0.9.75 has some of them. Its
 * MHD_OPTION_CONNECTION_LIMIT and MHD_OPTION_PER_IP_CONNECTION_LIMIT
 * count per daemon, so the acceptor counts --max-connections and
 * --max-per-client across the workers instead. The server uses
 * MHD_OPTION_CONNECTION_TIMEOUT (--idle-timeout: it restarts on every
 * byte received or sent) and MHD_OPTION_CONNECTION_MEMORY_LIMIT, the
 * pool that holds a connection's request line and headers (MHD answers
 * 431 itself when they outgrow it) and then its send buffer. The pool is
 * sized from --max-header-bytes
 * (connection_memory()), and the access handler passes the exact size
 * MHD measured (MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE) to api/, which
 * answers 431 above the cap.
 *
 * MHD lacks a total deadline for a request's headers (a client sending
 * one header line per second keeps resetting the idle timeout) and a
 * send timeout that tells a reader that stalls or trickles from one that
 * is merely slow. A watchdog thread adds both. It never calls MHD (its
 * calls are not thread-safe for other threads' connections); it only
 * reads deadlines and counters that the MHD threads publish as atomics,
 * and drops a connection by shutdown(2) of its socket (after SO_LINGER 0,
 * so the close is an RST): MHD's next read or write on it fails, MHD
 * closes the connection and the usual completion path frees everything,
 * slots included. A connection's socket stays open while its entry is
 * listed: MHD's NOTIFY_CONNECTION "closed" (which unlists it, under the
 * list lock the watchdog holds) comes before MHD closes the socket, as
 * does the request-completed callback that unlists a request.
 *
 * - Header deadline (--header-timeout): every connection is tracked from
 *   MHD's NOTIFY_CONNECTION "started" (at accept, before the TLS
 *   handshake). Its first request's headers must be complete within the
 *   timeout of the accept; the access handler's first call (headers
 *   parsed) clears the deadline. After a request completes on a
 *   kept-alive connection the next request line must come within
 *   --idle-timeout in all (trickled bytes do not extend it), and that
 *   request's headers within --header-timeout of its request line (the
 *   URI callback).
 * - Send timeout (--send-timeout): for each streamed response the
 *   watchdog measures what the client has taken: the bytes handed to
 *   MHD minus what still waits in the socket's send queue (SIOCOUTQ;
 *   MHD's own buffer, at most the pool, is the error). Each time that
 *   grows by SEND_PROGRESS_BYTES the deadline moves to now + the
 *   timeout; a stream suspended while its producer works is the server's
 *   wait, not the client's, and moves it too. Past the deadline the
 *   client is dropped: stalled readers after the timeout, trickling ones
 *   (less than SEND_PROGRESS_BYTES per timeout) as soon as they fall
 *   behind. The measure also covers the tail a stream leaves in the
 *   socket's buffer after its producer ended.
 */

#include "http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "accept.h"
#include "auth.h"
#include "config.h"
#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/trace.h"

/* Per-connection memory (MHD's pool): the request line and headers,
 * MHD's index of them, then the response's send buffer and chunk
 * framing. MHD gives the read buffer half of the pool at first and grows
 * it from the rest, so twice the header cap plus some room lets a
 * request up to the cap in whole (api/ then answers 431 above the cap
 * with a problem body; larger ones meet MHD's own 431). At least
 * CONNECTION_MEMORY_MIN: its ~60 KiB send buffer streams an export as
 * fast as the 1 MiB pool it replaced did (842 against 874 MiB/s, the
 * medians of 5 alternating runs on loopback TLS, within the noise) while
 * 1,024 connections take 64 MiB instead of 1 GiB. The pool is mapped
 * lazily: an idle connection touches only what it received. */
#define CONNECTION_MEMORY_MIN   (64u * 1024u)
#define CONNECTION_MEMORY_EXTRA (16u * 1024u)

/* The watchdog's period: the deadlines it enforces are whole seconds. */
#define WATCH_PERIOD_MS 200

/* What a streamed response must deliver per --send-timeout: a client
 * slower than this rate (4.3 KiB/s at the default 60 s) is dropped. */
#define SEND_PROGRESS_BYTES (256u * 1024u)

/* Block size of streamed responses (a ring buffer of the export). */
#define STREAM_BLOCK (256u * 1024u)

/* Request bodies are not used by any route and not read; should MHD pass
 * one anyway, at most this much is discarded before closing. */
#define UPLOAD_MAX (64u * 1024u)

/* listen(2) backlog. */
#define LISTEN_BACKLOG 511

/* Longest User-Agent recorded on a span. */
#define USER_AGENT_MAX 256

typedef enum stream_state {
    STREAM_RUNNING = 0,      /* in or between reader calls */
    STREAM_WAKE_PENDING = 1, /* a wake arrived while running */
    STREAM_SUSPENDED = 2     /* waiting for a wake */
} stream_state;

/* Why the watchdog dropped a connection (0: it did not). */
typedef enum drop_reason {
    DROP_NONE = 0,
    DROP_HEADER_TIMEOUT = 1,
    DROP_SEND_TIMEOUT = 2
} drop_reason;

typedef struct srv_request srv_request;
typedef struct srv_conn srv_conn;

/* A connection, from MHD's NOTIFY_CONNECTION "started" to "closed". */
struct srv_conn {
    srv_http *srv;
    int fd;
    srv_conn *prev, *next; /* srv->conns, under srv->lock */
    bool listed;
    bool served; /* a request completed on it (its MHD thread only) */
    /* CLOCK_MONOTONIC ms by which the current request's headers must be
     * in; 0: none (a request is being answered). Written by the
     * connection's MHD thread, read by the watchdog. */
    _Atomic int64_t header_deadline;
    _Atomic drop_reason dropped; /* set by the watchdog */
    srv_peer peer; /* its client certificate (its MHD thread only) */
};

struct srv_request {
    srv_http *srv;
    struct MHD_Connection *conn;
    /* 1 for the request (dropped on completion) + 1 while an MHD
     * response streams from this request's producer. */
    atomic_uint refs;
    srv_request *prev, *next; /* srv->requests, under srv->lock */
    bool listed;

    int fd;          /* the connection's socket, valid while listed */
    srv_conn *sconn; /* its tracking entry; only until completion */
    char *raw_path;  /* request-target path, still percent-encoded */
    char client[INET6_ADDRSTRLEN];
    layer_span *span;
    bool started;  /* the access handler has seen the headers */
    bool answered; /* a response was queued */
    uint64_t upload_bytes;
    size_t header_bytes; /* request line and headers, as MHD counted */

    const char *route; /* static, from api_response.route */
    int status;
    uint64_t body_bytes; /* body bytes handed to MHD */

    /* Streaming; producer.free is called once, on the last release. */
    api_producer producer;
    struct MHD_Response *response; /* borrowed while streaming */
    bool has_length;
    uint64_t content_length;
    bool stream_ended;  /* the producer said END */
    bool stream_failed; /* the stream was cut */

    /* The send timeout: `streaming` and `sent` are published by the MHD
     * thread; mark and deadline belong to the watchdog (under the list
     * lock). */
    atomic_bool streaming;       /* a producer's response is queued */
    _Atomic uint64_t sent;       /* body bytes handed to MHD */
    _Atomic drop_reason dropped; /* set by the watchdog */
    bool watched;                /* the watchdog has seen it stream */
    uint64_t progress_mark;      /* delivered bytes at the last progress */
    int64_t send_deadline;       /* CLOCK_MONOTONIC ms */

    /* Written under lock; read without it only as a hint. */
    pthread_mutex_t lock;
    _Atomic stream_state state;
};

typedef struct listener {
    int fd; /* our socket until the acceptor takes it, or -1 */
    char url[SRV_HTTP_URL_MAX];
} listener;

struct srv_http {
    srv_http_opts opts;
    listener socks[SRV_HTTP_MAX_SOCKETS];
    size_t nsocks;
    struct MHD_Daemon *workers[SRV_HTTP_MAX_THREADS];
    size_t nworkers;
    srv_accept *acceptor;

    pthread_mutex_t lock; /* guards the request and connection lists */
    srv_request *requests;
    srv_conn *conns;

    /* The watchdog (header deadlines, send timeouts). */
    pthread_t watchdog;
    bool watchdog_started;
    pthread_mutex_t watch_lock; /* with watch_cond: wakes it to stop */
    pthread_cond_t watch_cond;
    bool watch_sync; /* watch_lock and watch_cond initialised */
    bool watch_stop;
    atomic_uint inflight; /* requests not yet completed */
    atomic_uint live;     /* request contexts not yet released */
    atomic_bool quiesced;
    atomic_bool stopping;
};

/* ---- connections ---- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* MHD_OPTION_NOTIFY_CONNECTION: a connection was accepted or is closing
 * (before MHD closes its socket). */
static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    srv_http *srv = cls;
    srv_conn *c = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci;

        /* Without memory the connection is simply not watched. */
        if ((c = layer_trycalloc(1, sizeof(*c))) == NULL)
            return;
        c->srv = srv;
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci != NULL ? (int)ci->connect_fd : -1;
        atomic_init(&c->header_deadline,
                    now_ms() + (int64_t)srv->opts.header_timeout * 1000);
        atomic_init(&c->dropped, DROP_NONE);
        pthread_mutex_lock(&srv->lock);
        c->next = srv->conns;
        if (srv->conns != NULL)
            srv->conns->prev = c;
        srv->conns = c;
        c->listed = true;
        pthread_mutex_unlock(&srv->lock);
        *socket_context = c;
        return;
    }
    {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

        if (ci != NULL)
            srv_accept_closed(srv->acceptor, (int)ci->connect_fd);
    }
    if (c == NULL)
        return;
    *socket_context = NULL;
    srv_peer_dispose(&c->peer);
    pthread_mutex_lock(&srv->lock);
    if (c->listed) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            srv->conns = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
        c->listed = false;
    }
    pthread_mutex_unlock(&srv->lock);
    /* Counted here, once per connection, whether or not it had begun a
     * request (that request's span says header_timeout too). */
    if (atomic_load(&c->dropped) == DROP_HEADER_TIMEOUT)
        api_metrics_dropped(srv->opts.metrics, API_METRICS_DROP_HEADER_TIMEOUT);
    layer_free(c);
}

static srv_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

/* ---- request contexts ---- */

static void request_release(srv_request *req)
{
    srv_http *srv;

    if (atomic_fetch_sub(&req->refs, 1) != 1)
        return;
    srv = req->srv;
    if (req->producer.free != NULL)
        req->producer.free(req->producer.ctx);
    /* After the producer: its child spans may still refer to this one. */
    layer_span_end(req->span);
    pthread_mutex_destroy(&req->lock);
    layer_free(req->raw_path);
    layer_free(req);
    atomic_fetch_sub(&srv->live, 1);
}

static void request_unlist(srv_request *req)
{
    srv_http *srv = req->srv;

    pthread_mutex_lock(&srv->lock);
    if (req->listed) {
        if (req->prev != NULL)
            req->prev->next = req->next;
        else
            srv->requests = req->next;
        if (req->next != NULL)
            req->next->prev = req->prev;
        req->prev = req->next = NULL;
        req->listed = false;
        atomic_fetch_sub(&srv->inflight, 1);
    }
    pthread_mutex_unlock(&srv->lock);
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request line was parsed. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    srv_http *srv = cls;
    const union MHD_ConnectionInfo *ci;
    srv_request *req;

    if ((req = layer_trycalloc(1, sizeof(*req))) == NULL)
        return NULL;
    if ((req->raw_path = layer_trystrndup(uri, strcspn(uri, "?#"))) == NULL) {
        layer_free(req);
        return NULL;
    }
    if (pthread_mutex_init(&req->lock, NULL) != 0) {
        layer_free(req->raw_path);
        layer_free(req);
        return NULL;
    }
    req->srv = srv;
    req->conn = conn;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    req->fd = ci != NULL ? (int)ci->connect_fd : -1;
    req->sconn = conn_of(conn);
    /* A later request of a kept-alive connection: its headers are due
     * --header-timeout after its request line (the first request's are
     * due that long after the accept). */
    if (req->sconn != NULL && req->sconn->served)
        atomic_store(&req->sconn->header_deadline,
                     now_ms() + (int64_t)srv->opts.header_timeout * 1000);
    atomic_init(&req->state, STREAM_RUNNING);
    atomic_init(&req->streaming, false);
    atomic_init(&req->sent, 0);
    atomic_init(&req->dropped, DROP_NONE);
    atomic_init(&req->refs, 1);
    atomic_fetch_add(&srv->live, 1);

    pthread_mutex_lock(&srv->lock);
    req->next = srv->requests;
    if (srv->requests != NULL)
        srv->requests->prev = req;
    srv->requests = req;
    req->listed = true;
    atomic_fetch_add(&srv->inflight, 1);
    pthread_mutex_unlock(&srv->lock);
    return req;
}

/* ---- the root span ---- */

static const char *tls_version_name(int gnutls_protocol)
{
    /* enum gnutls_protocol_t: GNUTLS_TLS1_0 = 2 ... GNUTLS_TLS1_3 = 5. */
    switch (gnutls_protocol) {
    case 2:
        return "1.0";
    case 3:
        return "1.1";
    case 4:
        return "1.2";
    case 5:
        return "1.3";
    default:
        return "unknown";
    }
}

static void format_client(char *out, size_t cap, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
    socklen_t len;

    snprintf(out, cap, "unknown");
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        len = sizeof(struct sockaddr_in);
    else if (sa->sa_family == AF_INET6)
        len = sizeof(struct sockaddr_in6);
    else
        return;
    if (getnameinfo(sa, len, out, (socklen_t)cap, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(out, cap, "unknown");
}

static void start_span(srv_request *req, const char *method,
                       const char *version)
{
    srv_http *srv = req->srv;
    layer_trace_sink *sink = srv->opts.trace;
    struct MHD_Connection *conn = req->conn;
    const char *tp, *ua;
    uint8_t trace_id[16], parent_id[8];
    char ua_buf[USER_AGENT_MAX + 1];

    tp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
    /* A malformed traceparent is ignored: the request starts a trace. */
    if (tp != NULL && layer_traceparent_parse(trace_id, parent_id, tp) == 0)
        (void)layer_span_start_remote(&req->span, sink, trace_id, parent_id,
                                      "http.request");
    else
        (void)layer_span_start(&req->span, sink, NULL, "http.request");

    format_client(req->client, sizeof(req->client), conn);
    layer_span_set_str(req->span, "http.request.method", method);
    layer_span_set_str(req->span, "url.path", req->raw_path);
    layer_span_set_str(req->span, "url.scheme",
                       srv->opts.tls_cert_pem != NULL ? "https" : "http");
    layer_span_set_str(req->span, "client.address", req->client);
    if (version != NULL && strncmp(version, "HTTP/", 5) == 0)
        layer_span_set_str(req->span, "network.protocol.version", version + 5);
    ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
    if (ua != NULL) {
        size_t n = strnlen(ua, USER_AGENT_MAX + 1);

        if (n > USER_AGENT_MAX) {
            /* Cut at a character boundary, not inside a UTF-8 sequence. */
            n = USER_AGENT_MAX;
            while (n > 0 && ((unsigned char)ua[n] & 0xc0) == 0x80)
                n--;
        }
        memcpy(ua_buf, ua, n);
        ua_buf[n] = '\0';
        layer_span_set_str(req->span, "user_agent.original", ua_buf);
    }
    if (srv->opts.tls_cert_pem != NULL) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_PROTOCOL);
        layer_span_set_str(req->span, "tls.protocol.name", "tls");
        layer_span_set_str(req->span, "tls.protocol.version",
                           ci != NULL ? tls_version_name(ci->protocol)
                                      : "unknown");
    }
}

/* ---- streaming ---- */

/* The producer's wake callback; any thread, any time before free(). */
static void on_wake(void *arg)
{
    srv_request *req = arg;

    pthread_mutex_lock(&req->lock);
    if (req->state == STREAM_RUNNING) {
        req->state = STREAM_WAKE_PENDING;
    } else if (req->state == STREAM_SUSPENDED) {
        req->state = STREAM_RUNNING;
        MHD_resume_connection(req->conn);
    }
    pthread_mutex_unlock(&req->lock);
}

/* Make close() of a socket send an RST and drop unsent data. */
static void set_abortive_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    if (fd >= 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* End a stream without its terminating chunk. The connection is closed
 * abortively (an RST): what still sits in the kernel's send buffer (up to
 * megabytes) is dropped rather than trickled to the client, which learns
 * of the cut at once and cannot mistake it for a clean end. */
static ssize_t stream_cut(srv_request *req)
{
    set_abortive_close(req->fd);
    req->stream_failed = true;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_add_trailers(srv_request *req)
{
    const api_header *tr = NULL;
    size_t n;

    if (req->producer.trailers == NULL)
        return;
    n = req->producer.trailers(req->producer.ctx, &tr);
    for (size_t i = 0; i < n && tr != NULL; i++) {
        if (MHD_add_response_footer(req->response, tr[i].name, tr[i].value) !=
            MHD_YES)
            fprintf(stderr, "layerd: trailer %s refused by microhttpd\n",
                    tr[i].name);
    }
}

/* MHD_ContentReaderCallback of streamed responses. */
static ssize_t on_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    srv_request *req = cls;
    srv_http *srv = req->srv;
    ssize_t n;

    (void)pos;
    for (;;) {
        if (atomic_load(&srv->stopping))
            return stream_cut(req);
        n = req->producer.read(req->producer.ctx, buf, max);
        if (n > 0) {
            if ((size_t)n > max)
                return stream_cut(req); /* a producer bug; never send it */
            req->body_bytes += (uint64_t)n;
            atomic_store_explicit(&req->sent, req->body_bytes,
                                  memory_order_relaxed);
            return n;
        }
        if (n == API_PRODUCE_END) {
            /* A known length that was not reached is a truncation. */
            if (req->has_length && req->body_bytes != req->content_length)
                return stream_cut(req);
            req->stream_ended = true;
            if (!req->has_length)
                stream_add_trailers(req);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (n != API_PRODUCE_AGAIN || req->producer.set_wake == NULL)
            return stream_cut(req);

        pthread_mutex_lock(&req->lock);
        if (atomic_load(&srv->stopping)) {
            pthread_mutex_unlock(&req->lock);
            return stream_cut(req);
        }
        if (req->state == STREAM_WAKE_PENDING) {
            /* Data came while we were reading: read again. */
            req->state = STREAM_RUNNING;
            pthread_mutex_unlock(&req->lock);
            continue;
        }
        req->state = STREAM_SUSPENDED;
        MHD_suspend_connection(req->conn);
        pthread_mutex_unlock(&req->lock);
        return 0;
    }
}

/* MHD_ContentReaderFreeCallback: MHD is done with the response. */
static void on_response_free(void *cls)
{
    request_release(cls);
}

/* Reader of HEAD responses: MHD never asks a HEAD response for its body;
 * if it did, cut rather than send one. */
static ssize_t on_read_none(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* ---- answering ---- */

static const char *lookup_header(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* The state of lookup_values()'s walk over the headers. */
typedef struct header_walk {
    const char *name;
    const char **out;
    size_t max;
    size_t n;
} header_walk;

static enum MHD_Result collect_value(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value)
{
    header_walk *w = cls;

    (void)kind;
    if (key != NULL && value != NULL && strcasecmp(key, w->name) == 0 &&
        w->n < w->max)
        w->out[w->n++] = value;
    return w->n < w->max ? MHD_YES : MHD_NO;
}

static size_t lookup_values(void *conn, const char *name, const char **out,
                            size_t max)
{
    header_walk w = {name, out, max, 0};

    if (max == 0)
        return 0;
    (void)MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_value, &w);
    return w.n;
}

static const char *lookup_query(void *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/* The connection's client certificate (NULL: none presented, or none
 * asked for). *unusable when it could not be looked at. */
static const api_client_cert *client_cert(srv_request *req, bool *unusable)
{
    const union MHD_ConnectionInfo *ci;
    srv_conn *sconn;
    srv_peer *peer;
    void *session;

    *unusable = false;
    if (req->srv->opts.tls_client_ca_pem == NULL)
        return NULL;
    sconn = conn_of(req->conn);
    peer = sconn != NULL ? &sconn->peer : NULL;
    ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    session = ci != NULL ? ci->tls_session : NULL;
    if (peer == NULL || session == NULL) {
        *unusable = true;
        return NULL;
    }
    return srv_peer_cert(peer, session);
}

/* Turn res into an MHD response; takes what it needs out of res. */
static struct MHD_Response *make_response(srv_request *req, api_response *res)
{
    struct MHD_Response *r = NULL;
    uint64_t size = res->has_length ? res->content_length : MHD_SIZE_UNKNOWN;

    if (res->head || res->status == 304) {
        /* Headers only, Content-Length as for GET: MHD sends no body for
         * HEAD or 304 and takes the length from the response size. */
        r = MHD_create_response_from_callback(size, 4096, on_read_none, NULL,
                                              NULL);
        /* Of unknown length, MHD 0.9.75 would frame the HEAD answer as
         * chunked and still send the final "0" chunk, which a kept-alive
         * client reads as the start of the next response. An HTTP/1.0
         * answer has no chunking and closes the connection instead. */
        if (r != NULL && !res->has_length &&
            MHD_set_response_options(r, MHD_RF_HTTP_VERSION_1_0_RESPONSE,
                                     MHD_RO_END) != MHD_YES) {
            MHD_destroy_response(r);
            r = NULL;
        }
    } else if (res->producer.read != NULL) {
        req->producer = res->producer;
        memset(&res->producer, 0, sizeof(res->producer));
        req->has_length = res->has_length;
        req->content_length = res->content_length;
        atomic_fetch_add(&req->refs, 1);
        r = MHD_create_response_from_callback(size, STREAM_BLOCK, on_read, req,
                                              on_response_free);
        if (r == NULL) {
            atomic_fetch_sub(&req->refs, 1);
            return NULL;
        }
        req->response = r;
        if (req->producer.set_wake != NULL)
            req->producer.set_wake(req->producer.ctx, on_wake, req);
        atomic_store(&req->streaming, true);
    } else {
        r = MHD_create_response_from_buffer_with_free_callback(
            res->body_len, res->body, layer_free);
        if (r == NULL)
            return NULL;
        res->body = NULL; /* MHD frees it */
        req->body_bytes = res->body_len;
    }
    return r;
}

static enum MHD_Result answer(srv_request *req, const char *method)
{
    srv_http *srv = req->srv;
    api_request areq;
    api_response res;
    struct MHD_Response *r;
    enum MHD_Result ret;
    bool unusable;

    memset(&areq, 0, sizeof(areq));
    areq.method = method;
    areq.raw_path = req->raw_path;
    areq.header = lookup_header;
    areq.header_values = lookup_values;
    areq.query = lookup_query;
    areq.conn = req->conn;
    areq.client_address = req->client;
    areq.span = req->span;
    areq.client_cert = client_cert(req, &unusable);
    if (unusable) {
        layer_span_set_error_message(req->span,
                                     "http.request failed: the connection's "
                                     "client certificate cannot be looked "
                                     "at");
        return MHD_NO;
    }
    areq.header_bytes = req->header_bytes;

    api_handle(&res, srv->opts.api, &areq);
    req->route = res.route;
    req->status = res.status;
    req->answered = true;

    if ((r = make_response(req, &res)) == NULL) {
        layer_span_set_error_message(req->span,
                                     "http.request failed: cannot create "
                                     "the response");
        req->status = 500;
        api_response_dispose(&res);
        return MHD_NO;
    }
    for (size_t i = 0; i < res.nheaders; i++) {
        if (MHD_add_response_header(r, res.headers[i].name,
                                    res.headers[i].value) != MHD_YES)
            fprintf(stderr, "layerd: header %s refused by microhttpd\n",
                    res.headers[i].name);
    }
    if (atomic_load(&srv->quiesced))
        (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    api_response_dispose(&res);
    ret = MHD_queue_response(req->conn, (unsigned)req->status, r);
    MHD_destroy_response(r);
    return ret;
}

static bool has_body(struct MHD_Connection *conn)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");

    return (cl != NULL && strcmp(cl, "0") != 0) ||
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       "Transfer-Encoding") != NULL;
}

/* MHD_AccessHandlerCallback. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    srv_request *req = *req_cls;

    (void)cls;
    (void)url; /* already unescaped; api wants req->raw_path */
    (void)upload;
    if (req == NULL || req->conn != conn)
        return MHD_NO; /* the context could not be allocated */
    if (!req->started) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);

        req->started = true;
        /* The headers are in: no deadline until the next request. */
        if (req->sconn != NULL)
            atomic_store(&req->sconn->header_deadline, 0);
        req->header_bytes = ci != NULL ? ci->header_size : 0;
        start_span(req, method, version);
        /* Without a body, answer on the next call: a response queued on
         * the first call makes MHD close the connection. With one, or
         * with headers over the cap (431), answer now: no route takes a
         * body, and MHD then closes the connection. */
        if (!has_body(conn) &&
            (req->srv->opts.max_header_bytes == 0 ||
             req->header_bytes <= req->srv->opts.max_header_bytes))
            return MHD_YES;
        return answer(req, method);
    }
    if (*upload_size != 0) {
        req->upload_bytes += *upload_size;
        *upload_size = 0;
        if (req->upload_bytes > UPLOAD_MAX) {
            layer_span_set_error_message(req->span,
                                         "http.request failed: request "
                                         "body too large");
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (req->answered)
        return MHD_YES;
    return answer(req, method);
}

static const char *outcome_name(const srv_request *req,
                                enum MHD_RequestTerminationCode toe)
{
    drop_reason conn_drop =
        req->sconn != NULL ? atomic_load(&req->sconn->dropped) : DROP_NONE;

    if (atomic_load(&req->dropped) == DROP_SEND_TIMEOUT)
        return "send_timeout";
    if (conn_drop == DROP_HEADER_TIMEOUT && !req->started)
        return "header_timeout";
    if (req->stream_failed)
        return atomic_load(&req->srv->stopping) ? "shutdown" : "error";
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return "completed";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "shutdown";
    default:
        return "client_aborted";
    }
}

/* MHD_OPTION_NOTIFY_COMPLETED: the request is over, one way or another. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_http *srv = cls;
    srv_request *req = *req_cls;
    const char *outcome;
    bool completed;

    (void)conn;
    *req_cls = NULL;
    if (req == NULL)
        return;
    request_unlist(req);
    outcome = outcome_name(req, toe);
    completed = strcmp(outcome, "completed") == 0;
    if (strcmp(outcome, "send_timeout") == 0)
        api_metrics_dropped(srv->opts.metrics, API_METRICS_DROP_SEND_TIMEOUT);
    if (req->sconn != NULL) {
        /* The next request line is due within --idle-timeout, in all. */
        req->sconn->served = true;
        atomic_store(&req->sconn->header_deadline,
                     now_ms() + (int64_t)srv->opts.idle_timeout * 1000);
        req->sconn = NULL; /* the connection may close before req is freed */
    }
    if (req->answered) {
        layer_span_set_int(req->span, "http.response.status_code", req->status);
        if (req->route != NULL)
            layer_span_set_str(req->span, "http.route", req->route);
        layer_span_set_int(req->span, "http.response.body.size",
                           (int64_t)req->body_bytes);
        if (req->status >= 500)
            layer_span_set_error_message(req->span, "http.request failed: "
                                                    "server error");
        api_metrics_request(srv->opts.metrics, req->route, req->status,
                            req->body_bytes);
        if (strcmp(outcome, "client_aborted") == 0 ||
            strcmp(outcome, "timeout") == 0 ||
            strcmp(outcome, "send_timeout") == 0)
            api_metrics_client_abort(srv->opts.metrics, req->route);
    }
    layer_span_set_str(req->span, "layerd.outcome", outcome);
    if (req->stream_failed && !atomic_load(&srv->stopping))
        layer_span_set_error_message(req->span,
                                     "http.request failed: the response "
                                     "stream was cut");
    if (req->producer.finish != NULL)
        req->producer.finish(req->producer.ctx, completed);
    request_release(req);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
/* MHD_OPTION_EXTERNAL_LOGGER: MHD's own messages, one line each. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t len;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    fprintf(stderr, "layerd: microhttpd: %s\n", msg);
}
#pragma GCC diagnostic pop

/* ---- the watchdog ---- */

/* Drop a connection: an RST instead of a close, and shutdown() so that
 * MHD's next read or write on the socket fails and MHD closes it. Called
 * under srv->lock, on a listed connection or request: its socket is
 * open. */
static void drop_socket(int fd)
{
    if (fd < 0)
        return;
    set_abortive_close(fd);
    (void)shutdown(fd, SHUT_RDWR);
}

/* Header deadlines: drop the connections past theirs. */
static void watch_headers(srv_http *srv, int64_t now)
{
    for (srv_conn *c = srv->conns; c != NULL; c = c->next) {
        int64_t d = atomic_load(&c->header_deadline);

        if (d == 0 || now < d || atomic_load(&c->dropped) != DROP_NONE)
            continue;
        atomic_store(&c->dropped, DROP_HEADER_TIMEOUT);
        drop_socket(c->fd);
    }
}

/* Send timeouts: track each stream's delivered bytes, drop the ones that
 * made too little progress (see the top of the file). */
static void watch_streams(srv_http *srv, int64_t now)
{
    int64_t timeout = (int64_t)srv->opts.send_timeout * 1000;

    for (srv_request *r = srv->requests; r != NULL; r = r->next) {
        uint64_t sent, delivered;
        int queued = 0;

        if (!atomic_load(&r->streaming) ||
            atomic_load(&r->dropped) != DROP_NONE || r->fd < 0)
            continue;
        sent = atomic_load_explicit(&r->sent, memory_order_relaxed);
        if (ioctl(r->fd, SIOCOUTQ, &queued) != 0 || queued < 0)
            queued = 0;
        delivered = sent > (uint64_t)queued ? sent - (uint64_t)queued : 0;
        if (!r->watched) {
            r->watched = true;
            r->progress_mark = delivered;
            r->send_deadline = now + timeout;
            continue;
        }
        if (delivered >= r->progress_mark + SEND_PROGRESS_BYTES) {
            r->progress_mark = delivered;
            r->send_deadline = now + timeout;
            continue;
        }
        /* Waiting for its producer: the server is slow, not the client. */
        if (atomic_load(&r->state) == STREAM_SUSPENDED) {
            r->send_deadline = now + timeout;
            continue;
        }
        if (now < r->send_deadline)
            continue;
        atomic_store(&r->dropped, DROP_SEND_TIMEOUT);
        drop_socket(r->fd);
    }
}

static void *watchdog_main(void *arg)
{
    srv_http *srv = arg;
    struct timespec until;
    bool stop = false;

    while (!stop) {
        pthread_mutex_lock(&srv->lock);
        watch_headers(srv, now_ms());
        watch_streams(srv, now_ms());
        pthread_mutex_unlock(&srv->lock);

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += WATCH_PERIOD_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&srv->watch_lock);
        while (!srv->watch_stop &&
               pthread_cond_timedwait(&srv->watch_cond, &srv->watch_lock,
                                      &until) == 0)
            ;
        stop = srv->watch_stop;
        pthread_mutex_unlock(&srv->watch_lock);
    }
    return NULL;
}

static int watchdog_start(srv_http *srv)
{
    pthread_condattr_t ca;
    int err;

    if (pthread_mutex_init(&srv->watch_lock, NULL) != 0)
        return layer_error_set(LAYER_ERROR, "pthread_mutex_init failed");
    if (pthread_condattr_init(&ca) != 0 ||
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&srv->watch_cond, &ca) != 0) {
        pthread_mutex_destroy(&srv->watch_lock);
        return layer_error_set(LAYER_ERROR, "pthread_cond_init failed");
    }
    pthread_condattr_destroy(&ca);
    srv->watch_sync = true;
    if ((err = pthread_create(&srv->watchdog, NULL, watchdog_main, srv)) != 0)
        return layer_error_set_errno(LAYER_ERROR, err,
                                     "cannot start the watchdog thread");
    srv->watchdog_started = true;
    return 0;
}

static void watchdog_stop(srv_http *srv)
{
    if (srv->watchdog_started) {
        pthread_mutex_lock(&srv->watch_lock);
        srv->watch_stop = true;
        pthread_cond_signal(&srv->watch_cond);
        pthread_mutex_unlock(&srv->watch_lock);
        pthread_join(srv->watchdog, NULL);
        srv->watchdog_started = false;
    }
    if (srv->watch_sync) {
        pthread_cond_destroy(&srv->watch_cond);
        pthread_mutex_destroy(&srv->watch_lock);
        srv->watch_sync = false;
    }
}

/* ---- sockets and daemons ---- */

static int format_url(char *out, size_t cap, int fd, bool tls)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[64], port[8]; /* numeric: INET6_ADDRSTRLEN + %scope */
    int err;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "getsockname");
    if ((err =
             getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port,
                         sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV)) != 0)
        return layer_error_set(LAYER_ERROR, "getnameinfo: %s",
                               gai_strerror(err));
    snprintf(out, cap, "%s://%s%s%s:%s", tls ? "https" : "http",
             ss.ss_family == AF_INET6 ? "[" : "", host,
             ss.ss_family == AF_INET6 ? "]" : "", port);
    return 0;
}

static int bind_one(int *out, const struct addrinfo *ai, const char *spec)
{
    int fd;
    int one = 1;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                ai->ai_protocol);
    if (fd < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "listen %s: socket",
                                     spec);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (ai->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
        int err = errno;
        close(fd);
        return layer_error_set_errno(LAYER_ERROR, err, "listen %s: setsockopt",
                                     spec);
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        listen(fd, LISTEN_BACKLOG) < 0) {
        int err = errno;
        close(fd);
        return layer_error_set_errno(LAYER_ERROR, err, "cannot listen on %s",
                                     spec);
    }
    *out = fd;
    return 0;
}

static int bind_spec(srv_http *srv, const char *spec)
{
    int rc = 0;
    char host[256], port[8];
    struct addrinfo hints, *res = NULL;
    int err;

    if ((rc = srv_config_parse_listen(host, sizeof(host), port, sizeof(port),
                                      spec)) < 0)
        goto out;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    err = getaddrinfo(host[0] != '\0' && strcmp(host, "*") != 0 ? host : NULL,
                      port, &hints, &res);
    if (err != 0) {
        rc = layer_error_set(LAYER_EINVALID, "cannot resolve %s: %s", spec,
                             gai_strerror(err));
        goto out;
    }
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        listener *l;

        if (srv->nsocks == SRV_HTTP_MAX_SOCKETS) {
            rc =
                layer_error_set(LAYER_ETOOBIG, "more than %d listening sockets",
                                SRV_HTTP_MAX_SOCKETS);
            goto out;
        }
        l = &srv->socks[srv->nsocks];
        if ((rc = bind_one(&l->fd, ai, spec)) < 0)
            goto out;
        srv->nsocks++;
        if ((rc = format_url(l->url, sizeof(l->url), l->fd,
                             srv->opts.tls_cert_pem != NULL)) < 0)
            goto out;
    }
out:
    if (res != NULL)
        freeaddrinfo(res);
    return rc;
}

/* MHD's pool per connection (see CONNECTION_MEMORY_MIN). */
static size_t connection_memory(const srv_http_opts *opts)
{
    size_t n = 2 * (size_t)opts->max_header_bytes + CONNECTION_MEMORY_EXTRA;

    return n < CONNECTION_MEMORY_MIN ? CONNECTION_MEMORY_MIN : n;
}

size_t srv_http_connection_memory(const srv_http_opts *opts)
{
    return connection_memory(opts);
}

static int start_worker(srv_http *srv, size_t i)
{
    struct MHD_OptionItem o[24];
    size_t n = 0;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

#define OPT(opt, v, p)                                                         \
    o[n++] = (struct MHD_OptionItem){(opt), (intptr_t)(v), (p)}
    /* The logger first, so that MHD's messages about the other options
     * go through it too. */
    OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, srv);
    /* The acceptor keeps the count in all below this; a worker may hold
     * all of them. */
    OPT(MHD_OPTION_CONNECTION_LIMIT, srv->opts.max_connections, NULL);
    OPT(MHD_OPTION_CONNECTION_TIMEOUT, srv->opts.idle_timeout, NULL);
    OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, connection_memory(&srv->opts),
        NULL);
    OPT(MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv);
    OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv);
    OPT(MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, srv);
    if (srv->opts.tls_cert_pem != NULL) {
        flags |= MHD_USE_TLS;
        OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)srv->opts.tls_key_pem);
        OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)srv->opts.tls_cert_pem);
        OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)srv->opts.tls_priorities);
        if (srv->opts.tls_client_ca_pem != NULL) {
            OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0,
                (void *)srv->opts.tls_client_ca_pem);
        }
    }
    OPT(MHD_OPTION_END, 0, NULL);
#undef OPT

    srv->workers[i] = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
                                       MHD_OPTION_ARRAY, o, MHD_OPTION_END);
    if (srv->workers[i] == NULL)
        return layer_error_set(LAYER_ERROR,
                               "cannot start HTTP worker %zu (see the "
                               "microhttpd messages above)",
                               i + 1);
    return 0;
}

/* Start the acceptor on the bound sockets; it takes them. */
static int start_acceptor(srv_http *srv)
{
    int fds[SRV_HTTP_MAX_SOCKETS];
    srv_accept_opts ao = {
        .fds = fds,
        .nfds = srv->nsocks,
        .workers = srv->workers,
        .nworkers = srv->nworkers,
        .max_connections = srv->opts.max_connections,
        .max_per_client = srv->opts.max_per_client,
        .metrics = srv->opts.metrics,
    };
    int rc;

    for (size_t i = 0; i < srv->nsocks; i++) {
        fds[i] = srv->socks[i].fd;
        srv->socks[i].fd = -1;
    }
    if ((rc = srv_accept_new(&srv->acceptor, &ao)) < 0)
        return rc;
    return srv_accept_run(srv->acceptor);
}

int srv_http_start(srv_http **out, const srv_http_opts *opts,
                   const char *const *listen, size_t nlisten)
{
    int rc = 0;
    srv_http *srv = NULL;

    if ((srv = layer_trycalloc(1, sizeof(*srv))) == NULL)
        return LAYER_ENOMEM;
    if (pthread_mutex_init(&srv->lock, NULL) != 0) {
        layer_free(srv);
        return layer_error_set(LAYER_ERROR, "pthread_mutex_init failed");
    }
    srv->opts = *opts;
    if (srv->opts.threads == 0)
        srv->opts.threads = 1;
    if (srv->opts.threads > SRV_HTTP_MAX_THREADS)
        srv->opts.threads = SRV_HTTP_MAX_THREADS;
    if (srv->opts.header_timeout == 0)
        srv->opts.header_timeout = SRV_HTTP_HEADER_TIMEOUT;
    if (srv->opts.send_timeout == 0)
        srv->opts.send_timeout = SRV_HTTP_SEND_TIMEOUT;
    atomic_init(&srv->inflight, 0);
    atomic_init(&srv->live, 0);
    atomic_init(&srv->quiesced, false);
    atomic_init(&srv->stopping, false);
    for (size_t i = 0; i < SRV_HTTP_MAX_SOCKETS; i++)
        srv->socks[i].fd = -1;

    for (size_t i = 0; i < nlisten; i++) {
        if ((rc = bind_spec(srv, listen[i])) < 0)
            goto out;
    }
    if ((rc = watchdog_start(srv)) < 0)
        goto out;
    for (; srv->nworkers < srv->opts.threads; srv->nworkers++) {
        if ((rc = start_worker(srv, srv->nworkers)) < 0)
            goto out;
    }
    api_metrics_set_workers(srv->opts.metrics, (unsigned)srv->nworkers);
    if ((rc = start_acceptor(srv)) < 0)
        goto out;
    *out = srv;
    srv = NULL;
out:
    srv_http_free(srv);
    return rc;
}

size_t srv_http_nsockets(const srv_http *srv)
{
    return srv->nsocks;
}

const char *srv_http_url(const srv_http *srv, size_t i)
{
    return i < srv->nsocks ? srv->socks[i].url : NULL;
}

void srv_http_quiesce(srv_http *srv)
{
    atomic_store(&srv->quiesced, true);
    srv_accept_stop(srv->acceptor);
}

unsigned srv_http_inflight(const srv_http *srv)
{
    return atomic_load(&srv->inflight);
}

/* Resume every suspended stream; with srv->stopping set, its reader then
 * cuts it. The requests are pinned (a reference each) while the list lock
 * is dropped, because MHD calls must not run under it. */
static void resume_all(srv_http *srv)
{
    srv_request *pinned[256];
    bool more = true;

    while (more) {
        size_t n = 0;

        more = false;
        pthread_mutex_lock(&srv->lock);
        for (srv_request *r = srv->requests; r != NULL; r = r->next) {
            /* No request lock under the list lock (see the lock order at
             * the top); the state is re-checked under it below. */
            if (atomic_load(&r->state) != STREAM_SUSPENDED)
                continue;
            if (n == sizeof(pinned) / sizeof(pinned[0])) {
                more = true;
                break;
            }
            atomic_fetch_add(&r->refs, 1);
            pinned[n++] = r;
        }
        pthread_mutex_unlock(&srv->lock);
        for (size_t i = 0; i < n; i++) {
            srv_request *r = pinned[i];

            pthread_mutex_lock(&r->lock);
            if (r->state == STREAM_SUSPENDED) {
                r->state = STREAM_RUNNING;
                MHD_resume_connection(r->conn);
            }
            pthread_mutex_unlock(&r->lock);
            request_release(r);
        }
    }
}

/* Make every open request's connection close with an RST: MHD_stop_daemon
 * closes them, and an ordinary close would let megabytes of a cut stream
 * still queued in the kernel trickle out to a slow client as if nothing
 * had happened. A listed request's socket is open: MHD closes it only
 * after the completion callback, which unlists under the same lock. */
static void abort_all(srv_http *srv)
{
    pthread_mutex_lock(&srv->lock);
    for (srv_request *r = srv->requests; r != NULL; r = r->next)
        set_abortive_close(r->fd);
    pthread_mutex_unlock(&srv->lock);
}

void srv_http_free(srv_http *srv)
{
    unsigned live;

    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, true);
    srv_accept_stop(srv->acceptor);
    abort_all(srv);
    resume_all(srv);
    for (size_t i = 0; i < srv->nworkers; i++)
        MHD_stop_daemon(srv->workers[i]);
    srv->nworkers = 0;
    for (size_t i = 0; i < srv->nsocks; i++) {
        if (srv->socks[i].fd >= 0)
            close(srv->socks[i].fd);
        srv->socks[i].fd = -1;
    }
    /* After the daemons: every connection is closed and unlisted (the
     * workers announced each close to the acceptor). */
    srv_accept_free(srv->acceptor);
    srv->acceptor = NULL;
    watchdog_stop(srv);
    live = atomic_load(&srv->live);
    if (live != 0)
        fprintf(stderr,
                "layerd: %u request contexts were still alive after the "
                "daemons stopped\n",
                live);
    pthread_mutex_destroy(&srv->lock);
    layer_free(srv);
}
