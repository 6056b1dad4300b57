/*
 * The acceptor (see accept.h).
 *
 * Bookkeeping: a table indexed by socket descriptor records each
 * connection handed to a worker (its worker and its client address's
 * entry). An entry leaves the table when the worker announces the close
 * (srv_accept_closed(), before the socket is closed) or when
 * MHD_add_connection() fails (the socket is closed, never announced).
 * One case is not announced at all: a worker that takes the connection
 * but cannot start it (no memory for its pool) closes the socket quietly.
 * That socket's descriptor is then free, and the next connection the
 * kernel gives that number finds the stale entry and releases it first;
 * until then the old connection counts against its client's cap, which
 * errs on the safe side. Everything is under one mutex: the acceptor
 * takes it once per connection and a worker once per close.
 */

#include "accept.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "layer/alloc.h"
#include "layer/error.h"

/* Buckets of the client-address table (a power of two). */
#define PEER_BUCKETS 1024

/* Connections taken from one socket before the others get a turn. */
#define ACCEPT_BATCH 32

/* Pause after the process or the system ran out of descriptors or
 * memory: the pending connections wait in the backlog meanwhile. */
#define BACKOFF_MS 100

/* Least time between two warnings of refused connections. */
#define WARN_INTERVAL_S 60

typedef struct peer {
    struct peer *next;
    unsigned count; /* open connections */
    uint8_t len;    /* 4 or 16; 0: not an IP address (never capped) */
    uint8_t addr[16];
} peer;

typedef struct slot {
    peer *peer; /* NULL: no connection on this descriptor */
    unsigned worker;
} slot;

struct srv_accept {
    int fds[SRV_HTTP_MAX_SOCKETS];
    size_t nfds;
    struct MHD_Daemon **workers;
    unsigned *load; /* open connections per worker */
    size_t nworkers;
    unsigned max_connections;
    unsigned max_per_client;
    api_metrics *metrics;

    pthread_mutex_t lock; /* everything below */
    slot *slots;
    size_t nslots;
    peer *peers[PEER_BUCKETS];
    unsigned long refused; /* since the last warning */
    time_t warned;

    int stopfd; /* eventfd: written to stop the thread */
    pthread_t thread;
    bool running;
};

/* ---- client addresses ---- */

static void peer_key(peer *key, const struct sockaddr *sa)
{
    memset(key, 0, sizeof(*key));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        key->len = 4;
        memcpy(key->addr, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        /* A v4-mapped address is the IPv4 client it maps. */
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            key->len = 4;
            memcpy(key->addr, &in6->sin6_addr.s6_addr[12], 4);
        } else {
            key->len = 16;
            memcpy(key->addr, &in6->sin6_addr, 16);
        }
    }
}

static size_t peer_bucket(const peer *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < key->len; i++)
        h = (h ^ key->addr[i]) * 16777619u;
    return h & (PEER_BUCKETS - 1);
}

/* The entry of KEY's address, made with a count of 0 if new; NULL
 * without memory. Under a->lock. */
static peer *peer_get(srv_accept *a, const peer *key)
{
    peer **head = &a->peers[peer_bucket(key)];
    peer *p;

    for (p = *head; p != NULL; p = p->next) {
        if (p->len == key->len && memcmp(p->addr, key->addr, key->len) == 0)
            return p;
    }
    if ((p = layer_trymalloc(sizeof(*p))) == NULL)
        return NULL;
    *p = *key;
    p->count = 0;
    p->next = *head;
    *head = p;
    return p;
}

/* Drop P from the table if nothing holds it. Under a->lock. */
static void peer_put(srv_accept *a, peer *p)
{
    peer **pp;

    if (p->count != 0)
        return;
    for (pp = &a->peers[peer_bucket(p)]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            layer_free(p);
            return;
        }
    }
}

/* ---- connections ---- */

/* Forget the connection on descriptor FD. Under a->lock. */
static void release(srv_accept *a, int fd)
{
    slot *s;

    if (fd < 0 || (size_t)fd >= a->nslots || a->slots[fd].peer == NULL)
        return;
    s = &a->slots[fd];
    s->peer->count--;
    peer_put(a, s->peer);
    s->peer = NULL;
    a->load[s->worker]--;
    api_metrics_worker_connections(a->metrics, s->worker, -1);
}

/* Whether a warning may be printed now (at most one a minute); if so,
 * the next must wait. Under a->lock. */
static bool warn_due(srv_accept *a)
{
    time_t now = time(NULL);

    if (now - a->warned < WARN_INTERVAL_S)
        return false;
    a->warned = now;
    return true;
}

/* Close a connection refused by a cap (counted as REASON unless it is
 * API_METRICS_DROP_N). A line on stderr, at most one a minute, counts
 * the refusals since the one before. Under a->lock. */
static void refuse(srv_accept *a, int fd, api_metrics_drop reason,
                   const char *why)
{
    close(fd);
    if (reason != API_METRICS_DROP_N)
        api_metrics_dropped(a->metrics, reason);
    a->refused++;
    if (!warn_due(a))
        return;
    fprintf(stderr,
            "layerd: closed %lu new connection%s at once since the last "
            "such line (the latest: %s)\n",
            a->refused, a->refused == 1 ? "" : "s", why);
    a->refused = 0;
}

static void hand_over(srv_accept *a, int fd, const struct sockaddr *sa,
                      socklen_t salen)
{
    peer key, *p;
    unsigned w = 0, total = 0;

    peer_key(&key, sa);
    pthread_mutex_lock(&a->lock);
    if ((size_t)fd >= a->nslots) {
        refuse(a, fd, API_METRICS_DROP_N,
               "its descriptor is past the open-file limit");
        goto unlock;
    }
    /* A stale entry: a worker closed this descriptor's last connection
     * without announcing it (see the top). */
    release(a, fd);
    for (unsigned i = 0; i < a->nworkers; i++) {
        total += a->load[i];
        if (a->load[i] < a->load[w])
            w = i;
    }
    if (total >= a->max_connections) {
        refuse(a, fd, API_METRICS_DROP_MAX_CONNECTIONS,
               "--max-connections reached");
        goto unlock;
    }
    if ((p = peer_get(a, &key)) == NULL) {
        refuse(a, fd, API_METRICS_DROP_N, "out of memory");
        goto unlock;
    }
    if (a->max_per_client > 0 && key.len != 0 &&
        p->count >= a->max_per_client) {
        refuse(a, fd, API_METRICS_DROP_MAX_PER_CLIENT,
               "--max-per-client reached");
        goto unlock;
    }
    p->count++;
    a->load[w]++;
    a->slots[fd] = (slot){.peer = p, .worker = w};
    api_metrics_worker_connections(a->metrics, w, 1);
    pthread_mutex_unlock(&a->lock);

    if (MHD_add_connection(a->workers[w], fd, sa, salen) != MHD_YES) {
        /* The socket is closed; the worker never saw it. */
        pthread_mutex_lock(&a->lock);
        release(a, fd);
        pthread_mutex_unlock(&a->lock);
    }
    return;
unlock:
    pthread_mutex_unlock(&a->lock);
}

/* Accept what is pending on LFD, up to a batch. Returns false when the
 * process or the system is out of descriptors or memory. */
static bool accept_some(srv_accept *a, int lfd)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        int err = errno;

        if (fd >= 0) {
            hand_over(a, fd, (const struct sockaddr *)&ss, len);
            continue;
        }
        switch (err) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return true;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            pthread_mutex_lock(&a->lock);
            if (warn_due(a))
                fprintf(stderr, "layerd: accept: %s; new connections wait\n",
                        strerror(err));
            pthread_mutex_unlock(&a->lock);
            return false;
        default:
            /* The client went away (ECONNABORTED, EPROTO, a network
             * error the connection carried): the next one. */
            continue;
        }
    }
    return true;
}

static void *accept_main(void *arg)
{
    srv_accept *a = arg;
    struct pollfd p[SRV_HTTP_MAX_SOCKETS + 1];
    bool backoff = false;

    for (size_t i = 0; i < a->nfds; i++)
        p[i] = (struct pollfd){.fd = a->fds[i], .events = POLLIN};
    p[a->nfds] = (struct pollfd){.fd = a->stopfd, .events = POLLIN};
    for (;;) {
        int n;

        /* While backing off, only the stop is watched. */
        if (backoff)
            n = poll(&p[a->nfds], 1, BACKOFF_MS);
        else
            n = poll(p, a->nfds + 1, -1);
        if (n < 0) {
            /* EINTR, or no memory for the poll: try again (after a pause
             * for the latter). */
            backoff = errno != EINTR;
            continue;
        }
        if (p[a->nfds].revents != 0)
            break;
        if (backoff) {
            backoff = false;
            continue;
        }
        for (size_t i = 0; i < a->nfds && n > 0; i++) {
            if (p[i].revents != 0 && !accept_some(a, a->fds[i]))
                backoff = true;
        }
    }
    return NULL;
}

/* ---- life ---- */

int srv_accept_new(srv_accept **out, const srv_accept_opts *opts)
{
    srv_accept *a = NULL;
    struct rlimit rl;
    int rc = 0;
    size_t i = 0;

    *out = NULL;
    if (opts->nfds > SRV_HTTP_MAX_SOCKETS || opts->nworkers == 0) {
        rc = layer_error_set(LAYER_EINVALID,
                             "acceptor: %zu sockets, %zu "
                             "workers",
                             opts->nfds, opts->nworkers);
        goto fail;
    }
    if ((a = layer_trycalloc(1, sizeof(*a))) == NULL) {
        rc = LAYER_ENOMEM;
        goto fail;
    }
    a->stopfd = -1;
    for (i = 0; i < opts->nfds; i++)
        a->fds[i] = opts->fds[i];
    a->nfds = opts->nfds;
    a->nworkers = opts->nworkers;
    a->max_connections = opts->max_connections;
    a->max_per_client = opts->max_per_client;
    a->metrics = opts->metrics;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        rl.rlim_cur = 1024;
    a->nslots = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20)
                    ? (size_t)1 << 20
                    : (size_t)rl.rlim_cur;
    a->workers = layer_trycalloc(opts->nworkers, sizeof(*a->workers));
    a->load = layer_trycalloc(opts->nworkers, sizeof(*a->load));
    a->slots = layer_trycalloc(a->nslots, sizeof(*a->slots));
    if (a->workers == NULL || a->load == NULL || a->slots == NULL) {
        rc = LAYER_ENOMEM;
        goto free;
    }
    for (size_t w = 0; w < opts->nworkers; w++)
        a->workers[w] = opts->workers[w];
    if ((a->stopfd = eventfd(0, EFD_CLOEXEC)) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "eventfd");
        goto free;
    }
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        rc = layer_error_set(LAYER_ERROR, "pthread_mutex_init failed");
        goto free;
    }
    *out = a;
    return 0;
free:
    if (a->stopfd >= 0)
        close(a->stopfd);
    layer_free(a->slots);
    layer_free(a->load);
    layer_free(a->workers);
    layer_free(a);
fail:
    for (i = 0; i < opts->nfds; i++)
        close(opts->fds[i]);
    return rc;
}

int srv_accept_run(srv_accept *a)
{
    int err = pthread_create(&a->thread, NULL, accept_main, a);

    if (err != 0)
        return layer_error_set_errno(LAYER_ERROR, err, "pthread_create");
    a->running = true;
    return 0;
}

void srv_accept_closed(srv_accept *a, int fd)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    release(a, fd);
    pthread_mutex_unlock(&a->lock);
}

void srv_accept_stop(srv_accept *a)
{
    uint64_t one = 1;

    if (a == NULL)
        return;
    if (a->running) {
        if (write(a->stopfd, &one, sizeof(one)) != sizeof(one))
            abort(); /* an eventfd write of 1 cannot fail */
        pthread_join(a->thread, NULL);
        a->running = false;
    }
    for (size_t i = 0; i < a->nfds; i++)
        close(a->fds[i]);
    a->nfds = 0;
}

void srv_accept_free(srv_accept *a)
{
    if (a == NULL)
        return;
    srv_accept_stop(a);
    for (size_t b = 0; b < PEER_BUCKETS; b++) {
        while (a->peers[b] != NULL) {
            peer *p = a->peers[b];

            a->peers[b] = p->next;
            layer_free(p);
        }
    }
    close(a->stopfd);
    pthread_mutex_destroy(&a->lock);
    layer_free(a->slots);
    layer_free(a->load);
    layer_free(a->workers);
    layer_free(a);
}
