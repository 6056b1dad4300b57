/*
 * Layer stores: the front end shared by every store type.
 *
 * A store maps ids to layer directories and parent chains. This file
 * checks ids (layer_id_valid(), before anything touches the filesystem),
 * picks the back end from the spec prefix, walks parent chains (nearest
 * first, at most LAYER_CHAIN_MAX parents, cycles and missing parents are
 * LAYER_EBROKEN naming the layer), and sorts and pages listings. Back ends
 * (store_dir.c, store_cs.c, store_docker.c) only describe one layer at a
 * time from a snapshot of their metadata taken per call, so a store keeps
 * no mutable state after open and can be shared by threads, and layers
 * created after open are seen.
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
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/beneath.h"
#include "layer/error.h"
#include "layer/file.h"
#include "store_int.h"

struct layer_store {
    char *spec;
    char *root;  /* canonical absolute path of PATH */
    int root_fd; /* PATH, opened by layer_store_open() */
    const layer_store__backend *backend;
};

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
    layer_free(node->path);
    layer_free(node->created);
    layer_free(node->diff_digest);
    layer_free(node->tarsplit);
    if (node->has_fd)
        close(node->fd);
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

int layer_store__data_dir(layer_store__node *node,
                          const layer_store__root *root, const char *top,
                          const char *rel, const char *what)
{
    char *sub = NULL, *path = NULL;
    int fd = -1, rc;

    if ((rc = layer_store__path(&sub, top, rel, (char *)NULL)) < 0 ||
        (rc = layer_store__path(&path, root->path, sub, (char *)NULL)) < 0)
        goto out;
    /* O_NOATIME is the reader's business: it reopens the directory. */
    rc = layer_beneath_open(&fd, root->fd, sub, O_RDONLY | O_DIRECTORY, 0);
    if (rc == LAYER_ENOTFOUND)
        rc = layer_error_set(LAYER_EBROKEN,
                             "%s: %s is missing or not a "
                             "directory",
                             what, path);
    else if (rc == LAYER_EINVALID)
        rc = layer_error_set(LAYER_EBROKEN,
                             "%s: %s is a symlink or has one on its path "
                             "(refused)",
                             what, path);
    else if (rc < 0)
        rc = layer_error_set_errno(LAYER_ERROR, layer_error_errno(),
                                   "%s: cannot open %s", what, path);
    if (rc < 0)
        goto out;
    node->path = path;
    node->fd = fd;
    node->has_fd = true;
    path = NULL;
out:
    layer_free(sub);
    layer_free(path);
    return rc;
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
    s->root_fd = -1;
    /* Opened once, by the path the operator gave (symlinks in it are
     * theirs); everything else is found from this descriptor. */
    s->root_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->root_fd < 0) {
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
    s->root = real;
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

void layer_store_free(layer_store *store)
{
    if (store == NULL)
        return;
    layer_free(store->spec);
    layer_free(store->root);
    if (store->root_fd >= 0)
        close(store->root_fd);
    layer_free(store);
}

/* The root directory and a back-end snapshot, for one call. */
typedef struct session {
    layer_store__root root;
    void *ctx;
    bool begun;
} session;

#define SESSION_INIT                                                           \
    {                                                                          \
        {-1, NULL}, NULL, false                                                \
    }

static int session_begin(session *ss, const layer_store *store)
{
    ss->ctx = NULL;
    ss->root.path = store->root;
    ss->root.fd = store->root_fd;
    ss->begun = true;
    if (store->backend->ctx_size == 0) {
        ss->ctx = &ss->root;
        return 0;
    }
    if ((ss->ctx = layer_trycalloc(1, store->backend->ctx_size)) == NULL)
        return LAYER_ENOMEM;
    return store->backend->begin(ss->ctx, &ss->root);
}

static void session_end(session *ss, const layer_store *store)
{
    if (ss->ctx != NULL && ss->ctx != &ss->root) {
        store->backend->end(ss->ctx);
        layer_free(ss->ctx);
    }
    ss->root.fd = -1;
    ss->ctx = NULL;
    ss->begun = false;
}

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

int layer_store_resolve(layer_info **out, layer_store *store, const char *id)
{
    session ss = SESSION_INIT;
    layer_store__node node = {0};
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
    if ((rc = session_begin(&ss, store)) < 0)
        goto out;
    rc = store->backend->lookup(&node, ss.ctx, id, len,
                                LAYER_STORE__ALIASES | LAYER_STORE__TARSPLIT);
    if (rc == LAYER_ENOTFOUND) {
        rc = layer_error_set(LAYER_ENOTFOUND, "layer %s not found in %s", id,
                             store->spec);
        goto out;
    }
    if (rc < 0)
        goto out;

    info = layer_trycalloc(1, sizeof(*info));
    if (info == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    info->store = layer_trystrdup(store->backend->name);
    info->root = layer_trystrdup(store->root);
    if (info->store == NULL || info->root == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    info->id = node.id;
    info->created = node.created;
    info->diff_digest = node.diff_digest;
    info->mutable_ = node.mutable_;
    info->layer.path = node.path;
    info->layer.kind = node.kind;
    info->tarsplit = node.tarsplit;
    info->layer.has_fd = node.has_fd;
    info->layer.fd = node.fd;
    node.id = node.created = node.diff_digest = node.path = NULL;
    node.tarsplit = NULL;
    node.has_fd = false;

    child = info->id;
    while (node.parent != NULL) {
        char *pid = node.parent;
        size_t i;

        node.parent = NULL;
        if (!layer_id_valid(pid, strlen(pid))) {
            rc = layer_error_set(LAYER_EBROKEN, "layer %s: invalid parent id",
                                 child);
            layer_free(pid);
            goto out;
        }
        for (i = 0; i < info->nparents; i++)
            if (strcmp(info->parent_ids[i], pid) == 0)
                break;
        if (strcmp(pid, info->id) == 0 || i < info->nparents) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "layer %s: parent chain has a cycle at %s",
                                 info->id, pid);
            layer_free(pid);
            goto out;
        }
        if (info->nparents == LAYER_CHAIN_MAX) {
            rc = layer_error_set(LAYER_EBROKEN,
                                 "layer %s: parent chain longer than %d",
                                 info->id, LAYER_CHAIN_MAX);
            layer_free(pid);
            goto out;
        }
        {
            size_t n = info->nparents + 1;
            layer_dir *dirs;
            char **ids;

            dirs = layer_tryarray(info->parents, n, sizeof(*dirs));
            if (dirs == NULL) {
                layer_free(pid);
                rc = LAYER_ENOMEM;
                goto out;
            }
            info->parents = dirs;
            ids = layer_tryarray(info->parent_ids, n, sizeof(*ids));
            if (ids == NULL) {
                layer_free(pid);
                rc = LAYER_ENOMEM;
                goto out;
            }
            info->parent_ids = ids;
        }
        rc = store->backend->lookup(&node, ss.ctx, pid, strlen(pid), 0);
        if (rc == LAYER_ENOTFOUND)
            rc = layer_error_set(LAYER_EBROKEN, "layer %s: parent %s not found",
                                 child, pid);
        if (rc < 0) {
            layer_free(pid);
            goto out;
        }
        /* The back end returns the canonical id; a parent reference is
         * one already, so it is kept as written. */
        info->parent_ids[info->nparents] = pid;
        info->parents[info->nparents] = (layer_dir){
            .path = node.path,
            .kind = node.kind,
            .has_fd = node.has_fd,
            .fd = node.fd,
        };
        info->nparents++;
        child = pid;
        node.path = NULL;
        node.has_fd = false;
        layer_free(node.id);
        layer_free(node.created);
        layer_free(node.diff_digest);
        layer_free(node.tarsplit);
        node.id = node.created = node.diff_digest = node.tarsplit = NULL;
    }
    *out = info;
    info = NULL;
out:
    layer_store__node_dispose(&node);
    layer_info_free(info);
    if (ss.begun)
        session_end(&ss, store);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int layer_store_list(char ***out_ids, size_t *out_count, layer_store *store,
                     const char *after, size_t limit)
{
    session ss = SESSION_INIT;
    layer_store__strv all = {0};
    char **ids = NULL;
    size_t count = 0, first = 0, n;
    int rc = 0;

    if (store == NULL) {
        rc = layer_error_set(LAYER_EINVALID, "no store given");
        goto out;
    }
    if ((rc = session_begin(&ss, store)) < 0)
        goto out;
    if ((rc = store->backend->list(&all, ss.ctx)) < 0)
        goto out;
    if (all.n > 1)
        qsort(all.v, all.n, sizeof(all.v[0]), cmp_str);
    /* Drop duplicates in place (a back end may see an id twice). */
    n = 0;
    for (size_t i = 0; i < all.n; i++) {
        if (n > 0 && strcmp(all.v[n - 1], all.v[i]) == 0) {
            layer_free(all.v[i]);
            continue;
        }
        all.v[n++] = all.v[i];
    }
    all.n = n;
    if (after != NULL)
        while (first < all.n && strcmp(all.v[first], after) <= 0)
            first++;
    count = all.n - first;
    if (limit != 0 && count > limit)
        count = limit;
    if (count > 0) {
        ids = layer_trycalloc(count, sizeof(*ids));
        if (ids == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
        /* Move the strings over; the rest is freed with `all`. */
        for (size_t i = 0; i < count; i++) {
            ids[i] = all.v[first + i];
            all.v[first + i] = NULL;
        }
    }
    *out_ids = ids;
    *out_count = count;
    ids = NULL;
out:
    layer_store_ids_free(ids, count);
    layer_store__strv_dispose(&all);
    if (ss.begun)
        session_end(&ss, store);
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
