#ifndef SRV_HTTP_H
#define SRV_HTTP_H

/*
 * The HTTP(S) front end: libmicrohttpd daemons on sockets the server binds
 * itself, and the adapter that turns each request into an api_request and
 * each api_response (bytes or a pull producer) into an MHD response. This
 * is the only code that calls libmicrohttpd.
 */

#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "api/metrics.h"
#include "layer/trace.h"

/* Most listening sockets (a name may resolve to several addresses). */
#define SRV_HTTP_MAX_SOCKETS 32

/* Most worker threads. */
#define SRV_HTTP_MAX_THREADS 64

/* Longest URL printed for a socket: "https://[v6%scope]:65535". */
#define SRV_HTTP_URL_MAX 96

typedef struct srv_http_opts {
    /* Handlers' state; borrowed, must outlive the server. */
    api_context *api;
    /* Where the "http.request" root spans go, and the request counters:
     * the ones the context was given (borrowed; NULL: none). */
    layer_trace_sink *trace;
    api_metrics *metrics;
    /* PEM certificate chain and key; both NULL for plain HTTP. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    const char *tls_priorities; /* GnuTLS priority string */
    /* PEM bundle of the CAs of client certificates, or NULL: with it the
     * handshake asks for a client certificate (optional for the client),
     * and each connection's is verified once (server/auth.h) and handed
     * to api/ with its requests. */
    const char *tls_client_ca_pem;
    unsigned max_connections; /* across all sockets */
    unsigned idle_timeout;    /* seconds without traffic before closing */
    unsigned threads;         /* worker daemons (a thread each), 1 to
                                 SRV_HTTP_MAX_THREADS */
    /* Seconds from the accept (or a kept-alive request's request line)
     * to the end of the request's headers; 0: SRV_HTTP_HEADER_TIMEOUT. */
    unsigned header_timeout;
    /* Seconds a streamed response may deliver less than 256 KiB before
     * its client is dropped; 0: SRV_HTTP_SEND_TIMEOUT. */
    unsigned send_timeout;
    unsigned max_per_client; /* connections per client address; 0: no
                                cap */
    /* Request line and headers, bytes: sizes each connection's buffer
     * (srv_http_connection_memory()); api/ answers 431 above it. */
    unsigned max_header_bytes;
} srv_http_opts;

/* Defaults of the two timeouts above. */
#define SRV_HTTP_HEADER_TIMEOUT 10
#define SRV_HTTP_SEND_TIMEOUT   60

/*
 * The memory libmicrohttpd may give one connection with these options
 * (its pool: request headers, then the response's send buffer), bytes:
 * twice max_header_bytes plus 16 KiB, at least 64 KiB.
 */
size_t srv_http_connection_memory(const srv_http_opts *opts);

typedef struct srv_http srv_http;

/*
 * Bind the listen addresses ("HOST:PORT" or "[IPV6]:PORT"; every address
 * a name resolves to is bound) and start one daemon per socket.
 *
 * @param[out] out the server; stop and free with srv_http_free()
 * @param opts settings (copied; the strings must outlive the server)
 * @param listen the addresses
 * @param nlisten their number, >= 1
 * @return 0, LAYER_EINVALID (bad address), LAYER_ERROR (bind or daemon
 *         start failed) or LAYER_ENOMEM, with the reason recorded
 */
int srv_http_start(srv_http **out, const srv_http_opts *opts,
                   const char *const *listen, size_t nlisten);

/* Number of bound sockets. */
size_t srv_http_nsockets(const srv_http *srv);

/*
 * The URL of socket i with its actual port, e.g. "https://127.0.0.1:8443".
 * Borrowed, valid until srv_http_free().
 */
const char *srv_http_url(const srv_http *srv, size_t i);

/*
 * Stop accepting connections (the listening sockets are closed). Requests
 * already received keep running; responses sent from now on ask the
 * client to close the connection.
 */
void srv_http_quiesce(srv_http *srv);

/* Requests received and not yet completed or aborted. Thread-safe. */
unsigned srv_http_inflight(const srv_http *srv);

/*
 * Stop the server: streams still running are cut (their clients see a
 * truncated response), suspended connections are resumed so they can
 * close, the daemons are stopped and every request is released. NULL is
 * accepted.
 */
void srv_http_free(srv_http *srv);

#endif
