/*
 * Layer stores: the front end shared by every store type.
 *
 * A store maps ids to layer directories and parent chains, and names to
 * images. This file checks ids (layer_id_valid(), before anything touches
 * the filesystem), picks the back end from the spec prefix, walks parent
 * chains (nearest first, at most LAYER_CHAIN_MAX parents, cycles and
 * missing parents are LAYER_EBROKEN naming the layer), pages listings and
 * answers image questions, all from the store's index (store_index.c):
 * the back ends (store_dir.c, store_cs.c, store_docker.c) only turn their
 * metadata into the index's records. The index is kept fresh two ways
 * ("keeping the index fresh" below): compared with the metadata files on
 * every call, or by a thread of the store's own for a server, so that no
 * request ever reads metadata files or waits for a build.
 *
 * Every value read from disk that becomes a path component (parent ids,
 * cache ids) is validated like a client id first. The store's root is
 * opened once, when the store is; every path below it is resolved from
 * that descriptor with no symlink on the way (layer_beneath_open()), and
 * a layer's data directories are handed on open (layer_dir.fd), so the
 * reader never looks a store path up again: a writer of the store who
 * swaps a directory for a symlink can make a lookup fail, never make it
 * lead outside the store.
 */
#include "layer/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/beneath.h"
#include "layer/digest.h"
#include "layer/error.h"
#include "layer/file.h"
#include "layer/text.h"
#include "store_int.h"

static const layer_store__backend *const backends[] = {
    &layer_store__dir,
    &layer_store__cs,
    &layer_store__docker,
};

/* ---- ids ---- */

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool layer_store__is_hex64(const char *s, size_t len)
{
    if (len != 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_lower_hex(s[i]))
            return false;
    return true;
}

bool layer_store__is_digest(const char *s, size_t len)
{
    return len == 71 && memcmp(s, "sha256:", 7) == 0 &&
           layer_store__is_hex64(s + 7, 64);
}

static bool is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

bool layer_id_valid(const char *id, size_t len)
{
    if (id == NULL || len == 0 || len > LAYER_ID_MAX)
        return false;
    /* A digest-shaped id must be a complete, canonical one. */
    if (len >= 7 && memcmp(id, "sha256:", 7) == 0)
        return layer_store__is_digest(id, len);
    if (!is_alnum(id[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = id[i];

        if (!is_alnum(c) && c != '_' && c != '.' && c != ':' && c != '-')
            return false;
        if (c == '.' && id[i - 1] == '.')
            return false;
    }
    return true;
}

/* ---- shared helpers for the back ends ---- */

void layer_store__node_dispose(layer_store__node *node)
{
    layer_free(node->id);
    layer_free(node->parent);
    layer_free(node->created);
    layer_free(node->diff_digest);
    memset(node, 0, sizeof(*node));
}

int layer_store__strv_add(layer_store__strv *sv, const char *s, size_t len)
{
    char *copy;

    if (sv->n == sv->cap) {
        size_t ncap = sv->cap ? sv->cap * 2 : 16;
        char **v = layer_tryarray(sv->v, ncap, sizeof(*v));

        if (v == NULL)
            return LAYER_ENOMEM;
        sv->v = v;
        sv->cap = ncap;
    }
    copy = layer_trystrndup(s, len);
    if (copy == NULL)
        return LAYER_ENOMEM;
    sv->v[sv->n++] = copy;
    return 0;
}

void layer_store__strv_dispose(layer_store__strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        layer_free(sv->v[i]);
    layer_free(sv->v);
    memset(sv, 0, sizeof(*sv));
}

int layer_store__read_file(char **out, size_t *out_len, int dirfd,
                           const char *name, size_t cap, const char *what)
{
    int rc = layer_file_read(out, out_len, dirfd, name, cap, LAYER_FILE_BENEATH,
                             what);

    /* A store's metadata file that is a symlink (or below one), a FIFO or
     * too big: the store is broken, whoever asked. */
    if (rc == LAYER_EINVALID || rc == LAYER_ETOOBIG)
        rc = layer_error_recode(LAYER_EBROKEN);
    return rc;
}

int layer_store__path(char **out, const char *first, ...)
{
    va_list ap;
    const char *part;
    size_t total = 0;
    char *buf, *p;

    va_start(ap, first);
    for (part = first; part != NULL; part = va_arg(ap, const char *)) {
        total += strlen(part) + 1;
        if (total > PATH_MAX) {
            va_end(ap);
            return layer_error_set(LAYER_ETOOBIG,
                                   "path longer than %d bytes below %.128s",
                                   PATH_MAX, first);
        }
    }
    va_end(ap);
    buf = layer_trymalloc(total ? total : 1);
    if (buf == NULL)
        return LAYER_ENOMEM;
    p = buf;
    va_start(ap, first);
    for (part = first; part != NULL; part = va_arg(ap, const char *)) {
        size_t n = strlen(part);

        if (p != buf)
            *p++ = '/';
        memcpy(p, part, n);
        p += n;
    }
    va_end(ap);
    *p = '\0';
    *out = buf;
    return 0;
}

int layer_store__dir_names(layer_store__strv *out, int dirfd, const char *name,
                           const char *what)
{
    DIR *d = NULL;
    struct dirent *de;
    int fd, rc = 0;

    if (strcmp(name, ".") == 0) {
        fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = fd < 0
                 ? layer_error_set_errno(LAYER_ERROR, errno, "%s: open", what)
                 : 0;
    } else {
        rc = layer_beneath_open(&fd, dirfd, name, O_RDONLY | O_DIRECTORY, 0);
        if (rc == LAYER_ENOTFOUND)
            rc = layer_error_set(LAYER_ENOTFOUND, "%s: not found", what);
        else if (rc == LAYER_EINVALID)
            rc = layer_error_set(LAYER_EBROKEN,
                                 "%s is a symlink or has one on its path "
                                 "(refused)",
                                 what);
        else if (rc < 0)
            rc = layer_error_set_errno(LAYER_ERROR, layer_error_errno(),
                                       "%s: open", what);
    }
    if (rc < 0)
        goto out;
    d = fdopendir(fd);
    if (d == NULL) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: open", what);
        close(fd);
        goto out;
    }
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            if (errno != 0)
                rc =
                    layer_error_set_errno(LAYER_ERROR, errno, "%s: read", what);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if ((rc = layer_store__strv_add(out, de->d_name, strlen(de->d_name))) <
            0)
            break;
    }
out:
    if (d != NULL)
        closedir(d);
    return rc;
}

static bool digits_in(const char *s, size_t n, int lo, int hi)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    return v >= lo && v <= hi;
}

bool layer_store__rfc3339_valid(const char *s, size_t len)
{
    size_t i = 19;

    /* 2024-01-02T03:04:05 */
    if (len < 20 || !digits_in(s, 4, 0, 9999) || s[4] != '-' ||
        !digits_in(s + 5, 2, 1, 12) || s[7] != '-' ||
        !digits_in(s + 8, 2, 1, 31) || (s[10] != 'T' && s[10] != 't') ||
        !digits_in(s + 11, 2, 0, 23) || s[13] != ':' ||
        !digits_in(s + 14, 2, 0, 59) || s[16] != ':' ||
        !digits_in(s + 17, 2, 0, 60))
        return false;
    if (s[i] == '.') {
        size_t start = ++i;

        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start || i - start > 9)
            return false;
    }
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z'))
        return true;
    return i + 6 == len && (s[i] == '+' || s[i] == '-') &&
           digits_in(s + i + 1, 2, 0, 23) && s[i + 3] == ':' &&
           digits_in(s + i + 4, 2, 0, 59);
}

int layer_store__json_parse(json_t **out, const char *data, size_t len,
                            unsigned flags, const char *what)
{
    /* Any value at the top (the caller checks its type and says so); NUL
     * escapes kept for layer_store__json_string() to refuse by name. */
    size_t jflags =
        JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL |
        ((flags & LAYER_STORE__JSON_UNIQUE_KEYS) ? JSON_REJECT_DUPLICATES : 0);
    json_error_t err;
    json_t *doc;

    if (len > LAYER_STORE__FILE_MAX)
        return layer_error_set(LAYER_EBROKEN,
                               "%s: document of %zu bytes is larger than the "
                               "%u allowed",
                               what, len, LAYER_STORE__FILE_MAX);
    if ((doc = json_loadb(data, len, jflags, &err)) == NULL) {
        if (json_error_code(&err) == json_error_out_of_memory)
            return layer_error_set(LAYER_ENOMEM, "%s: out of memory", what);
        return layer_error_set(LAYER_EBROKEN,
                               "%s: invalid JSON at line %d, column %d "
                               "(byte %d): %s",
                               what, err.line, err.column, err.position,
                               err.text);
    }
    *out = doc;
    return 0;
}

/* How messages name a JSON value's type. */
static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

int layer_store__json_string(char **out, size_t *out_len, const json_t *obj,
                             const char *key, const char *what)
{
    const json_t *v = json_object_get(obj, key);
    const char *s;
    size_t len;
    char *copy;

    *out = NULL;
    if (out_len)
        *out_len = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return layer_error_set(LAYER_EBROKEN,
                               "%s: \"%s\" is a %s, not a string", what, key,
                               json_type_name(v));
    s = json_string_value(v);
    len = json_string_length(v);
    if (memchr(s, '\0', len) != NULL)
        return layer_error_set(LAYER_EBROKEN, "%s: \"%s\" contains NUL", what,
                               key);
    copy = layer_trystrndup(s, len);
    if (copy == NULL)
        return LAYER_ENOMEM;
    *out = copy;
    if (out_len)
        *out_len = len;
    return 0;
}

int layer_store__tarsplit(char **out, int dirfd, const char *prefix,
                          const char *rel)
{
    layer_error_state saved;
    struct stat st;
    int fd = -1, rc;
    bool found;

    *out = NULL;
    /* Beneath dirfd without following a symlink anywhere in rel; any
     * failure means no usable data (the layer is then exported in the
     * canonical profile), and is not an error of the caller's. */
    layer_error_save(&saved);
    rc = layer_beneath_open(&fd, dirfd, rel, O_PATH, 0);
    found = rc == 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (fd >= 0)
        close(fd);
    layer_error_restore(&saved);
    if (!found)
        return 0;
    if (prefix[0] == '\0')
        return (*out = layer_trystrdup(rel)) != NULL ? 0 : LAYER_ENOMEM;
    return layer_store__path(out, prefix, rel, (char *)NULL);
}

/* ---- the store ---- */

struct layer_store {
    char *spec;
    layer_store__root root; /* PATH, opened by layer_store_open() */
    char *root_path;        /* canonical absolute path of PATH */
    const layer_store__backend *backend;
    pthread_mutex_t lock;
    layer_store__index *cur; /* the index calls use; NULL before the first */
    /* watching (layer_store_watch()): a thread keeps cur fresh */
    bool watching;
    pthread_t thread;
    int stop_fd;    /* eventfd: the thread stops */
    int inotify_fd; /* -1 where inotify is missing */
};

int layer_store_open(layer_store **out, const char *spec)
{
    const layer_store__backend *be = NULL;
    layer_store *s = NULL;
    const char *path = NULL;
    char *real = NULL;
    struct stat st;
    int rc = 0;

    if (spec == NULL) {
        rc = layer_error_set(LAYER_EINVALID, "no store given");
        goto out;
    }
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        size_t n = strlen(backends[i]->prefix);

        if (strncmp(spec, backends[i]->prefix, n) == 0) {
            be = backends[i];
            path = spec + n;
            break;
        }
    }
    if (be == NULL) {
        rc = layer_error_set(LAYER_EINVALID,
                             "unknown store type in \"%.256s\" (expected "
                             "dir:PATH, containers-storage:PATH or "
                             "docker:PATH)",
                             spec);
        goto out;
    }
    if (*path == '\0') {
        rc = layer_error_set(LAYER_EINVALID, "store \"%s\" has no path", spec);
        goto out;
    }
    if (strlen(path) >= PATH_MAX) {
        rc = layer_error_set(LAYER_ETOOBIG, "store path longer than %d bytes",
                             PATH_MAX);
        goto out;
    }
    if (stat(path, &st) < 0) {
        rc = layer_error_set_errno(
            errno == ENOENT || errno == ENOTDIR ? LAYER_ENOTFOUND : LAYER_ERROR,
            errno, "store %s", spec);
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = layer_error_set(LAYER_EINVALID, "store %s: not a directory", spec);
        goto out;
    }
    /* realpath() mallocs; copy through our allocator. */
    {
        char *r = realpath(path, NULL);

        if (r == NULL) {
            rc = layer_error_set_errno(LAYER_ERROR, errno, "store %s", spec);
            goto out;
        }
        real = layer_trystrdup(r);
        free(r);
        if (real == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
    }
    s = layer_trycalloc(1, sizeof(*s));
    if (s == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    s->root.fd = -1;
    s->stop_fd = -1;
    s->inotify_fd = -1;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        layer_free(s);
        s = NULL;
        rc = layer_error_set(LAYER_ERROR, "pthread_mutex_init failed");
        goto out;
    }
    /* Opened once, by the path the operator gave (symlinks in it are
     * theirs); everything else is found from this descriptor. */
    s->root.fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->root.fd < 0) {
        rc = layer_error_set_errno(errno == ENOENT ? LAYER_ENOTFOUND
                                                   : LAYER_ERROR,
                                   errno, "store %s", spec);
        goto out;
    }
    s->spec = layer_trystrdup(spec);
    if (s->spec == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    s->root_path = real;
    s->root.path = real;
    real = NULL;
    s->backend = be;
    *out = s;
    s = NULL;
out:
    layer_free(real);
    layer_store_free(s);
    return rc;
}

const char *layer_store_spec(const layer_store *store)
{
    return store->spec;
}

/* ---- keeping the index fresh ------------------------------------------ */

/*
 * Unwatched (the command line, library users): every call compares the
 * stamps with what they were (a few fstatat calls; one per layer for a
 * dir: store) and builds a new index when one moved, under the lock, so
 * one call builds and the others wait for it: a change is seen by the
 * next call.
 *
 * Watched (the server): a thread builds; calls take the current index
 * without looking at the disk and never wait for a build. It checks the
 * stamps once a second, and at once (50 ms after the last event) when
 * inotify reports a change in a metadata directory; a new index is
 * swapped in whole when it is ready, and calls that hold the old one
 * finish with it.
 */

/* Wait this long after an inotify event for the writer to finish. */
#define SETTLE_MS 50
/* Check the stamps this often without events. */
#define CHECK_MS 1000

static int build_into(layer_store *s, layer_store__index **out)
{
    return layer_store__index_build(out, s->backend, &s->root);
}

/* The index for one call, a reference held: release it with
 * layer_store__index_unref(). */
static int get_index(layer_store__index **out, layer_store *s)
{
    layer_store__index *idx = NULL;
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    if (!s->watching &&
        (s->cur == NULL || layer_store__index_stale(s->cur, s->root.fd))) {
        if ((rc = build_into(s, &idx)) == 0) {
            layer_store__index_unref(s->cur);
            s->cur = idx;
        }
    }
    if (rc == 0) {
        idx = s->cur;
        layer_store__index_ref(idx);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc < 0)
        return rc;
    *out = idx;
    return 0;
}

/* Swap in a new index if the current one is stale. The watch thread's. */
static void refresh(layer_store *s)
{
    layer_store__index *old, *idx = NULL;

    pthread_mutex_lock(&s->lock);
    old = s->cur;
    layer_store__index_ref(old);
    pthread_mutex_unlock(&s->lock);
    if (layer_store__index_stale(old, s->root.fd) && build_into(s, &idx) == 0) {
        if (s->inotify_fd >= 0)
            layer_store__index_watch(idx, s->inotify_fd, s->root.fd);
        pthread_mutex_lock(&s->lock);
        s->cur = idx;
        pthread_mutex_unlock(&s->lock);
        layer_store__index_unref(old); /* the store's reference */
    }
    layer_store__index_unref(old);
}

/* Read what inotify has; true if there was anything. */
static bool drain(int fd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;

    while (read(fd, buf, sizeof(buf)) > 0)
        any = true;
    return any;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *watch_main(void *arg)
{
    layer_store *s = arg;
    int64_t next_check = now_ms() + CHECK_MS, settle_at = -1;

    for (;;) {
        struct pollfd p[2] = {{s->stop_fd, POLLIN, 0},
                              {s->inotify_fd, POLLIN, 0}};
        int64_t now = now_ms(), due = settle_at >= 0 ? settle_at : next_check;
        int n = poll(p, s->inotify_fd >= 0 ? 2 : 1,
                     due > now ? (int)(due - now) : 0);

        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (p[0].revents & POLLIN))
            break;
        if (n > 0 && (p[1].revents & POLLIN) && drain(s->inotify_fd))
            settle_at = now_ms() + SETTLE_MS; /* more may follow */
        now = now_ms();
        if ((settle_at >= 0 && now >= settle_at) || now >= next_check) {
            settle_at = -1;
            next_check = now + CHECK_MS;
            refresh(s);
        }
    }
    return NULL;
}

int layer_store_watch(layer_store *store)
{
    layer_store__index *idx = NULL;
    int rc;

    if (store == NULL)
        return layer_error_set(LAYER_EINVALID, "no store given");
    if (store->watching)
        return 0;
    if ((rc = build_into(store, &idx)) < 0)
        return rc;
    store->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (store->stop_fd < 0) {
        layer_store__index_unref(idx);
        return layer_error_set_errno(LAYER_ERROR, errno, "eventfd");
    }
    /* without inotify (ENOSYS, a seccomp filter, no instances left) the
     * once-a-second stamp check alone notices changes */
    store->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (store->inotify_fd >= 0)
        layer_store__index_watch(idx, store->inotify_fd, store->root.fd);
    pthread_mutex_lock(&store->lock);
    layer_store__index_unref(store->cur);
    store->cur = idx;
    store->watching = true;
    pthread_mutex_unlock(&store->lock);
    if ((rc = pthread_create(&store->thread, NULL, watch_main, store)) != 0) {
        pthread_mutex_lock(&store->lock);
        store->watching = false;
        pthread_mutex_unlock(&store->lock);
        return layer_error_set_errno(LAYER_ERROR, rc,
                                     "cannot start the store's watcher");
    }
    return 0;
}

void layer_store_free(layer_store *store)
{
    if (store == NULL)
        return;
    if (store->watching) {
        uint64_t one = 1;

        if (write(store->stop_fd, &one, sizeof(one)) != sizeof(one))
            abort(); /* an eventfd write of 1 cannot fail */
        pthread_join(store->thread, NULL);
    }
    if (store->stop_fd >= 0)
        close(store->stop_fd);
    if (store->inotify_fd >= 0)
        close(store->inotify_fd);
    layer_store__index_unref(store->cur);
    pthread_mutex_destroy(&store->lock);
    layer_free(store->spec);
    layer_free(store->root_path);
    if (store->root.fd >= 0)
        close(store->root.fd);
    layer_free(store);
}

/* ---- layers ------------------------------------------------------------ */

void layer_info_free(layer_info *info)
{
    if (info == NULL)
        return;
    layer_free(info->id);
    layer_free(info->store);
    layer_free(info->created);
    layer_free(info->diff_digest);
    layer_free(info->tarsplit);
    layer_free(info->root);
    if (info->has_root_fd)
        close(info->root_fd);
    layer_free((char *)info->layer.path);
    if (info->layer.has_fd)
        close(info->layer.fd);
    for (size_t i = 0; i < info->nparents; i++) {
        if (info->parents) {
            layer_free((char *)info->parents[i].path);
            if (info->parents[i].has_fd)
                close(info->parents[i].fd);
        }
        if (info->parent_ids)
            layer_free(info->parent_ids[i]);
    }
    layer_free(info->parents);
    layer_free(info->parent_ids);
    layer_free(info);
}

/* Fill d with rec's kind and, when open is set, its data directory: the
 * path, and the directory itself, opened beneath the root with no symlink
 * on the way. */
static int data_dir(layer_dir *d, const layer_store *s,
                    const layer_store__rec *rec, bool open)
{
    char what[LAYER_ID_MAX + 64];
    char *path = NULL;
    int fd = -1, rc;

    d->kind = rec->kind;
    if (!open)
        return 0;
    if ((rc = layer_store__path(&path, s->root_path, rec->data, (char *)NULL)) <
        0)
        return rc;
    d->path = path;
    snprintf(what, sizeof(what), "%s%s", s->backend->what, rec->id);
    /* O_NOATIME is the reader's business: it reopens the directory. */
    rc = layer_beneath_open(&fd, s->root.fd, rec->data, O_RDONLY | O_DIRECTORY,
                            0);
    if (rc == LAYER_ENOTFOUND)
        return layer_error_set(
            LAYER_EBROKEN, "%s: %s is missing or not a directory", what, path);
    if (rc == LAYER_EINVALID)
        return layer_error_set(LAYER_EBROKEN,
                               "%s: %s is a symlink or has one on its path "
                               "(refused)",
                               what, path);
    if (rc < 0)
        return layer_error_set_errno(LAYER_ERROR, layer_error_errno(),
                                     "%s: cannot open %s", what, path);
    d->fd = fd;
    d->has_fd = true;
    return 0;
}

/* A record's own failure, recorded as this call's. */
static int rec_failed(const layer_store__rec *rec)
{
    return layer_error_set(rec->err, "%s", rec->errmsg ? rec->errmsg : "");
}

/* The store's failure, if the index holds one. */
static int index_failed(const layer_store__index *idx)
{
    const char *msg;
    int err = layer_store__index_error(idx, &msg);

    return err < 0 ? layer_error_set(err, "%s", msg ? msg : "") : 0;
}

/* The store's failure, or its image metadata's. */
static int images_failed(const layer_store__index *idx)
{
    const char *msg;
    int err = index_failed(idx);

    if (err == 0 && (err = layer_store__index_images_error(idx, &msg)) < 0)
        err = layer_error_set(err, "%s", msg ? msg : "");
    return err;
}

/* Look an id up the way a client gives it: a canonical id, an alias, or
 * for stores with hex ids, the hex alone. */
static const layer_store__rec *find_client_id(const layer_store__index *idx,
                                              const layer_store *s,
                                              const char *id, size_t len)
{
    const layer_store__rec *rec = layer_store__index_find(idx, id, len, true);
    char full[72];

    if (rec == NULL && s->backend->hex_ids && layer_store__is_hex64(id, len)) {
        memcpy(full, "sha256:", 7);
        memcpy(full + 7, id, 65);
        rec = layer_store__index_find(idx, full, 71, false);
    }
    return rec;
}

/* resolve() and describe(): open says whether the data directories are
 * opened. */
static int resolve(layer_info **out, layer_store *store, const char *id,
                   bool open)
{
    layer_store__index *idx = NULL;
    const layer_store__rec *rec;
    layer_info *info = NULL;
    const char *child;
    size_t len;
    int rc = 0;

    if (store == NULL || id == NULL) {
        rc = layer_error_set(LAYER_EINVALID, "no store or no id given");
        goto out;
    }
    len = strnlen(id, LAYER_ID_MAX + 1);
    if (!layer_id_valid(id, len)) {
        rc = layer_error_set(LAYER_EINVALID, "invalid layer id");
        goto out;
    }
    if ((rc = get_index(&idx, store)) < 0 || (rc = index_failed(idx)) < 0)
        goto out;
    if ((rec = find_client_id(idx, store, id, len)) == NULL) {
        rc = layer_error_set(LAYER_ENOTFOUND, "layer %s not found in %s", id,
                             store->spec);
        goto out;
    }
    if (rec->err < 0) {
        rc = rec_failed(rec);
        goto out;
    }
    if ((info = layer_trycalloc(1, sizeof(*info))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    info->store = layer_trystrdup(store->backend->name);
    info->id = layer_trystrdup(rec->id);
    info->created = rec->created ? layer_trystrdup(rec->created) : NULL;
    info->diff_digest =
        rec->diff_digest ? layer_trystrdup(rec->diff_digest) : NULL;
    info->mutable_ = rec->mutable_;
    if (info->store == NULL || info->id == NULL ||
        (rec->created && info->created == NULL) ||
        (rec->diff_digest && info->diff_digest == NULL)) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    if ((rc = data_dir(&info->layer, store, rec, open)) < 0)
        goto out;
    /* the layer's own tar-split data, and the root it is below */
    if (open) {
        if ((info->root = layer_trystrdup(store->root_path)) == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
        info->root_fd = fcntl(store->root.fd, F_DUPFD_CLOEXEC, 3);
        if (info->root_fd < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno, "store %s: dup",
                                       store->spec);
            goto out;
        }
        info->has_root_fd = true;
        if (rec->tarsplit != NULL &&
            (rc = layer_store__tarsplit(&info->tarsplit, store->root.fd, "",
                                        rec->tarsplit)) < 0)
            goto out;
    }

    child = info->id;
    while (rec->parent != NULL) {
        const char *pid = rec->parent;
        size_t i;

        if (!layer_id_valid(pid, strlen(pid))) {
            rc = layer_error_set(LAYER_EBROKEN, "layer %s: invalid parent id",
                                 child);
            goto out;
        }
        for (i = 0; i < info->nparents; i++)
            if (strcmp(info->parent_ids[i], pid) == 0)
                break;
        if (strcmp(pid, info->id) == 0 || i < info->nparents) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "layer %s: parent chain has a cycle at %s",
                                 info->id, pid);
            goto out;
        }
        if (info->nparents == LAYER_CHAIN_MAX) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "layer %s: parent chain longer than %d",
                                 info->id, LAYER_CHAIN_MAX);
            goto out;
        }
        /* a parent reference from metadata is a canonical id, found when
         * the index was built */
        if ((rec = layer_store__index_parent(idx, rec)) == NULL) {
            rc = layer_error_set(LAYER_EBROKEN, "layer %s: parent %s not found",
                                 child, pid);
            goto out;
        }
        if (rec->err < 0) {
            rc = rec_failed(rec);
            goto out;
        }
        {
            size_t n = info->nparents + 1;
            layer_dir *dirs;
            char **ids;

            dirs = layer_tryarray(info->parents, n, sizeof(*dirs));
            if (dirs == NULL) {
                rc = LAYER_ENOMEM;
                goto out;
            }
            info->parents = dirs;
            ids = layer_tryarray(info->parent_ids, n, sizeof(*ids));
            if (ids == NULL) {
                rc = LAYER_ENOMEM;
                goto out;
            }
            info->parent_ids = ids;
            memset(&dirs[n - 1], 0, sizeof(dirs[n - 1]));
            if ((ids[n - 1] = layer_trystrdup(pid)) == NULL) {
                rc = LAYER_ENOMEM;
                goto out;
            }
            info->nparents = n;
            if ((rc = data_dir(&dirs[n - 1], store, rec, open)) < 0)
                goto out;
        }
        child = info->parent_ids[info->nparents - 1];
    }
    *out = info;
    info = NULL;
out:
    layer_info_free(info);
    layer_store__index_unref(idx);
    return rc;
}

int layer_store_resolve(layer_info **out, layer_store *store, const char *id)
{
    return resolve(out, store, id, true);
}

int layer_store_describe(layer_info **out, layer_store *store, const char *id)
{
    return resolve(out, store, id, false);
}

int layer_store_list(char ***out_ids, size_t *out_count, layer_store *store,
                     const char *after, size_t limit)
{
    layer_store__index *idx = NULL;
    char **ids = NULL;
    size_t first, total, count = 0;
    int rc = 0;

    if (store == NULL) {
        rc = layer_error_set(LAYER_EINVALID, "no store given");
        goto out;
    }
    if ((rc = get_index(&idx, store)) < 0 || (rc = index_failed(idx)) < 0)
        goto out;
    layer_store__index_range(idx, after, &first, &total);
    count = total - first;
    if (limit != 0 && count > limit)
        count = limit;
    if (count > 0 && (ids = layer_trycalloc(count, sizeof(*ids))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        if ((ids[i] = layer_trystrdup(
                 layer_store__index_at(idx, first + i)->id)) == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
    }
    *out_ids = ids;
    *out_count = count;
    ids = NULL;
out:
    layer_store_ids_free(ids, count);
    layer_store__index_unref(idx);
    return rc;
}

void layer_store_ids_free(char **ids, size_t count)
{
    if (ids == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        layer_free(ids[i]);
    layer_free(ids);
}

/* ---- images ------------------------------------------------------------ */

void layer_image_free(layer_image *img)
{
    if (img == NULL)
        return;
    layer_free(img->id);
    layer_free(img->config_digest);
    layer_free(img->config_path);
    layer_free(img->top_layer);
    layer_free(img->created);
    layer_free(img->manifest_digest);
    for (size_t i = 0; i < img->nnames; i++)
        layer_free(img->names[i]);
    layer_free(img->names);
    layer_free(img);
}

void layer_images_free(layer_image **imgs, size_t count)
{
    if (imgs == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        layer_image_free(imgs[i]);
    layer_free(imgs);
}

/* Copy s (or NULL) into *out; false when out of memory. */
static bool dup_opt(char **out, const char *s)
{
    *out = s != NULL ? layer_trystrdup(s) : NULL;
    return s == NULL || *out != NULL;
}

/* A caller's copy of an index image. */
static int image_copy(layer_image **out, const layer_store *s,
                      const layer_store__img *src)
{
    layer_image *img = layer_trycalloc(1, sizeof(*img));
    int rc = LAYER_ENOMEM;

    if (img == NULL)
        return rc;
    if (!dup_opt(&img->id, src->id) ||
        !dup_opt(&img->config_digest, src->config_digest) ||
        !dup_opt(&img->top_layer, src->top_layer) ||
        !dup_opt(&img->created, src->created) ||
        !dup_opt(&img->manifest_digest, src->manifest_digest))
        goto out;
    if (src->config != NULL &&
        layer_store__path(&img->config_path, s->root_path, src->config,
                          (char *)NULL) < 0)
        goto out;
    if (src->nnames > 0) {
        if ((img->names = layer_trycalloc(src->nnames, sizeof(char *))) == NULL)
            goto out;
        for (; img->nnames < src->nnames; img->nnames++)
            if ((img->names[img->nnames] =
                     layer_trystrdup(src->names[img->nnames])) == NULL)
                goto out;
    }
    *out = img;
    return 0;
out:
    layer_image_free(img);
    return rc;
}

int layer_store_images(layer_image ***out, size_t *out_count,
                       layer_store *store)
{
    layer_store__index *idx = NULL;
    const layer_store__img *imgs;
    layer_image **v = NULL;
    size_t n = 0, count = 0;
    int rc;

    if (store == NULL)
        return layer_error_set(LAYER_EINVALID, "no store given");
    if ((rc = get_index(&idx, store)) < 0 || (rc = images_failed(idx)) < 0)
        goto out;
    n = layer_store__index_images(idx, &imgs);
    if (n > 0 && (v = layer_trycalloc(n, sizeof(*v))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    for (; count < n; count++)
        if ((rc = image_copy(&v[count], store, &imgs[count])) < 0)
            goto out;
    *out = v;
    *out_count = count;
    v = NULL;
out:
    layer_images_free(v, count);
    layer_store__index_unref(idx);
    return rc;
}

int layer_store_image_resolve(layer_image **out, layer_store *store,
                              const char *ref)
{
    layer_store__index *idx = NULL;
    const layer_store__img *img;
    size_t len;
    int rc;

    if (store == NULL || ref == NULL)
        return layer_error_set(LAYER_EINVALID, "no store or no image given");
    len = strnlen(ref, LAYER_IMAGE_REF_MAX + 1);
    if (len == 0 || len > LAYER_IMAGE_REF_MAX ||
        !layer_text_utf8_valid(ref, len))
        return layer_error_set(LAYER_EINVALID, "invalid image reference");
    if ((rc = get_index(&idx, store)) < 0 || (rc = images_failed(idx)) < 0)
        goto out;
    if ((img = layer_store__index_image_find(idx, ref)) == NULL) {
        rc = layer_error_set(LAYER_ENOTFOUND, "image %s not found in %s", ref,
                             store->spec);
        goto out;
    }
    if (img->err < 0) {
        rc = layer_error_set(img->err, "%s", img->errmsg ? img->errmsg : "");
        goto out;
    }
    rc = image_copy(out, store, img);
out:
    layer_store__index_unref(idx);
    return rc;
}

int layer_store_image_config(char **out, size_t *out_len, layer_store *store,
                             const layer_image *image)
{
    char what[LAYER_IMAGE_REF_MAX + 64], got[LAYER_DIGEST_STR_SIZE];
    const char *rel;
    char *data = NULL;
    size_t len;
    int rc;

    if (store == NULL || image == NULL || image->config_path == NULL ||
        image->config_digest == NULL)
        return layer_error_set(LAYER_EINVALID, "no image config to read");
    /* config_path is the store's root path and the file below it */
    len = strlen(store->root_path);
    if (strncmp(image->config_path, store->root_path, len) != 0 ||
        image->config_path[len] != '/')
        return layer_error_set(LAYER_EINVALID,
                               "image %s: its config is not in %s", image->id,
                               store->spec);
    rel = image->config_path + len + 1;
    snprintf(what, sizeof(what), "image %s: config %s", image->id,
             image->config_path);
    if ((rc = layer_store__read_file(&data, &len, store->root.fd, rel,
                                     LAYER_STORE__FILE_MAX, what)) < 0)
        goto out;
    if ((rc = layer_digest_buffer(got, data, len)) < 0)
        goto out;
    if (strcmp(got, image->config_digest) != 0) {
        rc = layer_error_set(LAYER_EBROKEN,
                             "%s: its bytes hash to %s, not to %s", what, got,
                             image->config_digest);
        goto out;
    }
    *out = data;
    *out_len = len;
    data = NULL;
out:
    layer_free(data);
    return rc;
}
