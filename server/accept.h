#ifndef SRV_ACCEPT_H
#define SRV_ACCEPT_H

/*
 * The acceptor: one thread that accepts on every listening socket and
 * hands each connection to the least loaded of the HTTP worker daemons.
 *
 * libmicrohttpd's own thread pool lets each worker accept for itself, up
 * to ten connections in a row, so a burst of clients (eight build agents
 * starting a pull at once) lands on one worker while the others idle.
 * Here the workers are single-threaded daemons without a listening
 * socket, each connection is given (MHD_add_connection) to the worker
 * with the fewest open connections, and the limits MHD would count per
 * daemon (connections in all, connections per client address) are
 * counted here, across the workers and the listening sockets.
 */

#include <stddef.h>

#include <microhttpd.h>

#include "api/metrics.h"

typedef struct srv_accept srv_accept;

typedef struct srv_accept_opts {
    const int *fds; /* listening sockets, non-blocking; owned from start */
    size_t nfds;
    struct MHD_Daemon *const *workers; /* started, MHD_USE_NO_LISTEN_SOCKET */
    size_t nworkers;
    unsigned max_connections; /* open connections in all */
    unsigned max_per_client;  /* per client address; 0: no cap */
    /* layerd_http_connections{worker} and the refusals of
     * layerd_http_dropped_total (borrowed; NULL: none). */
    api_metrics *metrics;
} srv_accept_opts;

/* Make the acceptor; it takes the listening sockets (closed by
 * srv_accept_stop(), or here on failure). srv_accept_run() starts
 * accepting: the caller publishes the acceptor to the workers'
 * connection callbacks in between. */
int srv_accept_new(srv_accept **out, const srv_accept_opts *opts);
int srv_accept_run(srv_accept *a);

/* A worker is closing the connection on socket FD (MHD's
 * NOTIFY_CONNECTION "closed", which comes before the socket's close).
 * Thread-safe; A may be NULL. */
void srv_accept_closed(srv_accept *a, int fd);

/* Stop accepting and close the listening sockets; returns once the
 * thread has ended. Idempotent. */
void srv_accept_stop(srv_accept *a);

/* After srv_accept_stop() and after every worker has stopped. */
void srv_accept_free(srv_accept *a);

#endif
