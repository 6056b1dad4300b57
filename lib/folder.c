/*
 * Transport folder writer (folder.h): a reader's changeset materialised
 * as DEST/Files/<path> plus DEST/tombstones.txt.
 *
 * Everything happens under DEST.tmp-<random> next to DEST, through
 * directory fds: a stack of open directories follows the reader's
 * depth-first order (each entry's parent is the top of the stack after
 * popping the directories it is not under), and every object is created
 * with an *at() call relative to its parent's fd, with O_NOFOLLOW or
 * AT_SYMLINK_NOFOLLOW, so a symlink written into the tree is never
 * followed. Directory metadata (owner, mode, xattrs, times) is applied
 * when the directory is popped, after its children are written, because
 * creating a child changes the parent's mtime and a read-only mode would
 * stop us writing into it. Files get their metadata in the order chown,
 * chmod, xattrs, times, because chown clears setuid bits and
 * security.capability. Objects that cannot be opened safely (symlinks,
 * devices, FIFOs) get their xattrs through /proc/self/fd/<parent>/<name>
 * with the l*xattr calls, which do not follow the last component.
 *
 * On success the temporary tree is renamed into place with
 * RENAME_NOREPLACE; on failure it is removed recursively through fds.
 *
 * Reading tombstones.txt back (the folder reader's side): a bounded line
 * reader, and every line must be a canonical relative path
 * (layer_beneath_path_valid()), refused with its line number otherwise.
 */
#include "layer/folder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/beneath.h"
#include "folder_int.h"
#include "layer/error.h"
#include "layer/file.h"
#include "layer/text.h"

#define FILES_DIR       "Files"
#define TOMBSTONES_FILE "tombstones.txt"
/* Data copy buffer: large reads amortise the syscalls. */
#define COPY_BUF_SIZE (256u << 10)
/* tombstones.txt write buffer. */
#define TOMB_BUF_SIZE (64u << 10)
/* Longest symlink target (Linux PATH_MAX including the NUL). */
#define LINK_MAX_LEN 4095

/* A directory on the stack, with the metadata applied when it is popped. */
typedef struct frame {
    int fd;
    size_t path_len; /* its path is spath[0, path_len) */
    bool apply;      /* false for Files/ itself */
    uint32_t mode;
    uint32_t uid;
    uint32_t gid;
    struct timespec times[2]; /* atime, mtime */
    layer_xattr *xattrs;      /* one allocation with names and values */
    size_t nxattrs;
} frame;

typedef struct fexp {
    layer_reader *reader;
    int parent_fd;
    int root_fd;
    int tomb_fd;
    char tmp_name[256];
    bool tmp_made;
    frame *stack;
    size_t depth;
    size_t stack_cap;
    char *spath;
    size_t spath_cap;
    unsigned char *buf; /* data copy buffer */
    char *tbuf;         /* tombstones.txt buffer */
    size_t tlen;
    layer_folder_summary sum;
} fexp;

/* ---- tombstones.txt escaping ------------------------------------------ */

size_t layer_folder__escape(char *out, const char *path, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        char c = path[i];

        if (c == '\\' || c == '\n' || c == '\r') {
            out[n++] = '\\';
            out[n++] = c == '\\' ? '\\' : c == '\n' ? 'n' : 'r';
        } else {
            out[n++] = c;
        }
    }
    return n;
}

int layer_folder__unescape(char *line, size_t *len)
{
    size_t r = 0, w = 0, n = *len;

    while (r < n) {
        char c = line[r++];

        if (c == '\\') {
            if (r == n)
                return LAYER_EINVALID;
            c = line[r++];
            if (c == 'n')
                c = '\n';
            else if (c == 'r')
                c = '\r';
            else if (c != '\\')
                return LAYER_EINVALID;
        }
        line[w++] = c;
    }
    line[w] = '\0';
    *len = w;
    return 0;
}

/* ---- tombstones.txt reading ------------------------------------------- */

struct layer_folder__tombstones {
    int fd;
    layer_file_lines lines;
    char what[64 + 4096]; /* "<folder>/tombstones.txt", for messages */
};

void layer_folder__tombstones_free(layer_folder__tombstones *t)
{
    if (t == NULL)
        return;
    layer_file_lines_dispose(&t->lines);
    if (t->fd >= 0)
        close(t->fd);
    layer_free(t);
}

/* Check the open file t->fd and its version line. */
static int tombstones_start(layer_folder__tombstones *t)
{
    static const char version[] = LAYER_FOLDER_TOMBSTONES_VERSION;
    struct stat st;
    char *line;
    size_t len;
    int rc;

    if (fstat(t->fd, &st) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "cannot stat %s",
                                     t->what);
    if (!S_ISREG(st.st_mode))
        return layer_error_set(LAYER_EBROKEN, "%s is not a regular file",
                               t->what);
    if ((rc = layer_file_lines_init(
             &t->lines, t->fd, LAYER_FOLDER__TOMBSTONE_LINE_MAX, t->what)) < 0)
        return rc;
    rc = layer_file_lines_next(&line, &len, &t->lines);
    if (rc == LAYER_ITEROVER)
        return layer_error_set(LAYER_EBROKEN, "%s is empty", t->what);
    if (rc == LAYER_ETOOBIG)
        rc = layer_error_recode(LAYER_EBROKEN);
    if (rc < 0)
        return rc;
    if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
    }
    if (len < sizeof(version) - 1 ||
        memcmp(line, version, sizeof(version) - 1) != 0 ||
        (len > sizeof(version) - 1 && line[sizeof(version) - 1] != '\r'))
        return layer_error_set(LAYER_EBROKEN, "%s does not start with \"%s\"",
                               t->what, version);
    return 0;
}

int layer_folder__tombstones_from_fd(layer_folder__tombstones **out, int fd,
                                     const char *what)
{
    layer_folder__tombstones *t = NULL;
    int rc;

    *out = NULL;
    if ((t = layer_trycalloc(1, sizeof(*t))) == NULL) {
        close(fd);
        return LAYER_ENOMEM;
    }
    t->fd = fd;
    snprintf(t->what, sizeof(t->what), "%s", what);
    if ((rc = tombstones_start(t)) < 0) {
        layer_folder__tombstones_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int layer_folder__tombstones_open(layer_folder__tombstones **out, int folder_fd,
                                  const char *folder)
{
    char what[sizeof(((layer_folder__tombstones *)0)->what)];
    int fd;

    *out = NULL;
    snprintf(what, sizeof(what), "%s%s" TOMBSTONES_FILE,
             folder != NULL ? folder : "", folder != NULL ? "/" : "");
    /* O_NONBLOCK: a FIFO under the name is refused, not waited on. */
    fd = openat(folder_fd, TOMBSTONES_FILE,
                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return layer_error_set_errno(LAYER_ERROR, errno, "cannot open %s",
                                     what);
    }
    return layer_folder__tombstones_from_fd(out, fd, what);
}

int layer_folder__tombstones_next(const char **out_path, size_t *out_len,
                                  layer_folder__tombstones *t)
{
    char *line;
    size_t len;
    int rc;

    for (;;) {
        if ((rc = layer_file_lines_next(&line, &len, &t->lines)) < 0)
            return rc == LAYER_ETOOBIG ? layer_error_recode(LAYER_EBROKEN) : rc;
        while (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0)
            continue; /* hcsshim panics on empty lines; we skip them */
        if (layer_folder__unescape(line, &len) < 0)
            return layer_error_set(LAYER_EBROKEN, "%s: line %llu: bad escape",
                                   t->what,
                                   (unsigned long long)t->lines.lineno);
        /* Canonical, so that a tombstone names one path and only that
         * one: "." or "etc/." would become the whiteouts ".wh.." and
         * "etc/.wh..", of the directory itself; "a/./b", "a//b", "a/"
         * and "/a" are other spellings of paths that tar consumers clean
         * each their own way. */
        if (!layer_beneath_path_valid(line, len))
            return layer_error_set(LAYER_EBROKEN,
                                   "%s: line %llu: not a canonical relative "
                                   "path (no leading or trailing '/', no "
                                   "empty, '.' or '..' component)",
                                   t->what,
                                   (unsigned long long)t->lines.lineno);
        *out_path = line;
        *out_len = len;
        return 0;
    }
}

/* ---- helpers ---------------------------------------------------------- */

static int write_all(int fd, const void *data, size_t len, const char *what)
{
    const unsigned char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return layer_error_set_errno(LAYER_ERROR, errno, "write %s", what);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int tomb_flush(fexp *f)
{
    int rc = write_all(f->tomb_fd, f->tbuf, f->tlen, TOMBSTONES_FILE);

    f->tlen = 0;
    return rc;
}

static int tomb_line(fexp *f, const char *path, size_t len)
{
    int rc;

    /* Escaping at most doubles a path; long ones go in slices. */
    while (len > 0) {
        size_t take = len < TOMB_BUF_SIZE / 4 ? len : TOMB_BUF_SIZE / 4;

        if (f->tlen + 2 * take > TOMB_BUF_SIZE && (rc = tomb_flush(f)) < 0)
            return rc;
        f->tlen += layer_folder__escape(f->tbuf + f->tlen, path, take);
        path += take;
        len -= take;
    }
    if (f->tlen + 1 > TOMB_BUF_SIZE && (rc = tomb_flush(f)) < 0)
        return rc;
    f->tbuf[f->tlen++] = '\n';
    return 0;
}

/* Set xattrs on an open fd, or on parent/name without following it. */
static int set_xattrs(int fd, int parent_fd, const char *name,
                      const layer_xattr *xs, size_t n, const char *path)
{
    char proc[64 + 256];

    if (fd < 0 && n > 0) {
        int len = snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", parent_fd,
                           name);
        if (len < 0 || (size_t)len >= sizeof(proc))
            return layer_error_set(LAYER_EINVALID, "%s: name too long", path);
    }
    for (size_t i = 0; i < n; i++) {
        int r = fd >= 0
                    ? fsetxattr(fd, xs[i].name, xs[i].value, xs[i].len, 0)
                    : lsetxattr(proc, xs[i].name, xs[i].value, xs[i].len, 0);
        if (r < 0)
            return layer_error_set_errno(LAYER_ERROR, errno, "%s: set xattr %s",
                                         path, xs[i].name);
    }
    return 0;
}

static void entry_times(struct timespec ts[2], const layer_entry *e)
{
    ts[0].tv_sec = (time_t)e->atime.sec;
    ts[0].tv_nsec = (long)e->atime.nsec;
    ts[1].tv_sec = (time_t)e->mtime.sec;
    ts[1].tv_nsec = (long)e->mtime.nsec;
}

/* Owner, mode, xattrs and times of a directory, after its children. */
static int frame_apply(const frame *fr, const char *path)
{
    if (!fr->apply)
        return 0;
    if (fchown(fr->fd, fr->uid, fr->gid) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: chown", path);
    if (fchmod(fr->fd, fr->mode & 07777) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: chmod", path);
    if (set_xattrs(fr->fd, -1, NULL, fr->xattrs, fr->nxattrs, path) < 0)
        return LAYER_ERROR;
    if (futimens(fr->fd, fr->times) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: set times", path);
    return 0;
}

static void frame_dispose(frame *fr)
{
    if (fr->fd >= 0)
        close(fr->fd);
    fr->fd = -1;
    layer_free(fr->xattrs);
    fr->xattrs = NULL;
}

/* Pop the top directory, applying its metadata. */
static int pop(fexp *f)
{
    frame *fr = &f->stack[f->depth - 1];
    int rc;

    f->spath[fr->path_len] = '\0';
    rc = frame_apply(fr, f->spath);
    frame_dispose(fr);
    f->depth--;
    return rc;
}

/* Copy an entry's xattrs into one allocation owned by the frame. */
static int copy_xattrs(frame *fr, const layer_entry *e)
{
    size_t total = e->xattr_count * sizeof(layer_xattr);
    unsigned char *p;

    if (e->xattr_count == 0)
        return 0;
    for (size_t i = 0; i < e->xattr_count; i++)
        total += strlen(e->xattrs[i].name) + 1 + e->xattrs[i].len;
    fr->xattrs = layer_trymalloc(total);
    if (fr->xattrs == NULL)
        return LAYER_ENOMEM;
    p = (unsigned char *)(fr->xattrs + e->xattr_count);
    for (size_t i = 0; i < e->xattr_count; i++) {
        size_t nl = strlen(e->xattrs[i].name) + 1;

        memcpy(p, e->xattrs[i].name, nl);
        fr->xattrs[i].name = (const char *)p;
        p += nl;
        if (e->xattrs[i].len > 0)
            memcpy(p, e->xattrs[i].value, e->xattrs[i].len);
        fr->xattrs[i].value = p;
        fr->xattrs[i].len = e->xattrs[i].len;
        p += e->xattrs[i].len;
    }
    fr->nxattrs = e->xattr_count;
    return 0;
}

static int push(fexp *f, int fd, const layer_entry *e)
{
    frame *fr;
    int rc;

    if (f->depth == f->stack_cap) {
        size_t cap = f->stack_cap ? 2 * f->stack_cap : 16;
        frame *s = layer_tryarray(f->stack, cap, sizeof(*s));

        if (s == NULL) {
            close(fd);
            return LAYER_ENOMEM;
        }
        f->stack = s;
        f->stack_cap = cap;
    }
    if (e != NULL && e->path_len + 1 > f->spath_cap) {
        size_t cap = e->path_len + 256;
        char *sp = layer_tryarray(f->spath, cap, 1);

        if (sp == NULL) {
            close(fd);
            return LAYER_ENOMEM;
        }
        f->spath = sp;
        f->spath_cap = cap;
    }
    fr = &f->stack[f->depth++];
    memset(fr, 0, sizeof(*fr));
    fr->fd = fd;
    if (e == NULL)
        return 0;
    memcpy(f->spath, e->path, e->path_len);
    f->spath[e->path_len] = '\0';
    fr->path_len = e->path_len;
    fr->apply = true;
    fr->mode = e->mode;
    fr->uid = e->uid;
    fr->gid = e->gid;
    entry_times(fr->times, e);
    if ((rc = copy_xattrs(fr, e)) < 0)
        return rc;
    return 0;
}

/* Pop until the top of the stack is the directory holding path; returns
 * the offset of the base name in path. */
static int find_parent(size_t *out_base, fexp *f, const layer_entry *e)
{
    const char *slash = memrchr(e->path, '/', e->path_len);
    size_t plen = slash ? (size_t)(slash - e->path) : 0;
    size_t base = slash ? plen + 1 : 0;
    const char *name = e->path + base;
    size_t nlen = e->path_len - base;
    int rc;

    if (nlen == 0 || nlen > 255 || (nlen == 1 && name[0] == '.') ||
        (nlen == 2 && name[0] == '.' && name[1] == '.'))
        return layer_error_set(LAYER_EINVALID, "invalid entry path \"%s\"",
                               e->path);
    for (;;) {
        const frame *top = &f->stack[f->depth - 1];

        if (top->path_len == plen &&
            (plen == 0 || memcmp(f->spath, e->path, plen) == 0))
            break;
        if (f->depth == 1)
            return layer_error_set(LAYER_EBROKEN,
                                   "%s: its directory was "
                                   "not emitted before it",
                                   e->path);
        if ((rc = pop(f)) < 0)
            return rc;
    }
    *out_base = base;
    return 0;
}

/* Owner, mode, xattrs and times of a non-directory that is not open. */
static int node_meta(int dfd, const char *name, const layer_entry *e,
                     bool chmod_it)
{
    struct timespec ts[2];

    if (fchownat(dfd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: chown", e->path);
    /* fchmodat follows a symlink, but this is a device or FIFO we just
     * created in a directory only we write to. */
    if (chmod_it && fchmodat(dfd, name, e->mode & 07777, 0) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: chmod", e->path);
    if (set_xattrs(-1, dfd, name, e->xattrs, e->xattr_count, e->path) < 0)
        return LAYER_ERROR;
    entry_times(ts, e);
    if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "%s: set times",
                                     e->path);
    return 0;
}

static int write_file(fexp *f, int dfd, const char *name, const layer_entry *e)
{
    struct timespec ts[2];
    uint64_t left = e->size;
    int fd = -1, rc = 0;

    fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0600);
    if (fd < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: create", e->path);
        goto out;
    }
    while (left > 0) {
        size_t got = 0, want = left < COPY_BUF_SIZE ? left : COPY_BUF_SIZE;

        if ((rc = layer_reader_read(&got, f->reader, f->buf, want)) < 0)
            goto out;
        if (got == 0) {
            rc =
                layer_error_set(LAYER_ERROR, "%s: reader ended early", e->path);
            goto out;
        }
        if ((rc = write_all(fd, f->buf, got, e->path)) < 0)
            goto out;
        left -= got;
        f->sum.bytes += got;
    }
    if (fchown(fd, e->uid, e->gid) < 0 || fchmod(fd, e->mode & 07777) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: set owner or mode",
                                   e->path);
        goto out;
    }
    if ((rc = set_xattrs(fd, -1, NULL, e->xattrs, e->xattr_count, e->path)) < 0)
        goto out;
    entry_times(ts, e);
    if (futimens(fd, ts) < 0) {
        rc =
            layer_error_set_errno(LAYER_ERROR, errno, "%s: set times", e->path);
        goto out;
    }
out:
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: close", e->path);
    return rc;
}

/* A hard link to an earlier entry, resolved inside Files/ only. */
static int write_hardlink(fexp *f, int dfd, const char *name,
                          const layer_entry *e)
{
    struct open_how how;
    const char *target = e->link_target;
    size_t tlen = e->link_target_len;
    const char *slash;
    char *dir = NULL;
    int tfd = -1, rc = 0;
    const char *tbase;

    if (target == NULL || tlen == 0 || memchr(target, '\0', tlen) != NULL) {
        rc = layer_error_set(LAYER_EINVALID, "%s: hard link without target",
                             e->path);
        goto out;
    }
    slash = memrchr(target, '/', tlen);
    tbase = slash ? slash + 1 : target;
    if (slash != NULL) {
        dir = layer_trystrndup(target, (size_t)(slash - target));
        if (dir == NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
        memset(&how, 0, sizeof(how));
        how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        how.resolve =
            RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        tfd = (int)syscall(SYS_openat2, f->stack[0].fd, dir, &how, sizeof(how));
        if (tfd < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno,
                                       "%s: open link target "
                                       "directory %s",
                                       e->path, dir);
            goto out;
        }
    }
    if (linkat(tfd >= 0 ? tfd : f->stack[0].fd, tbase, dfd, name, 0) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: link to %.*s",
                                   e->path, (int)tlen, target);
        goto out;
    }
out:
    if (tfd >= 0)
        close(tfd);
    layer_free(dir);
    return rc;
}

static int write_entry(fexp *f, const layer_entry *e)
{
    char target[LINK_MAX_LEN + 1];
    size_t base = 0;
    const char *name;
    int dfd, fd, rc;

    if ((rc = find_parent(&base, f, e)) < 0)
        return rc;
    name = e->path + base;
    dfd = f->stack[f->depth - 1].fd;
    switch (e->type) {
    case LAYER_TYPE_DIR:
        if (mkdirat(dfd, name, 0700) < 0)
            return layer_error_set_errno(LAYER_ERROR, errno, "%s: mkdir",
                                         e->path);
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return layer_error_set_errno(LAYER_ERROR, errno, "%s: open",
                                         e->path);
        return push(f, fd, e);
    case LAYER_TYPE_FILE:
        return write_file(f, dfd, name, e);
    case LAYER_TYPE_HARDLINK:
        return write_hardlink(f, dfd, name, e);
    case LAYER_TYPE_SYMLINK:
        if (e->link_target == NULL || e->link_target_len > LINK_MAX_LEN ||
            memchr(e->link_target, '\0', e->link_target_len) != NULL)
            return layer_error_set(LAYER_EINVALID, "%s: bad symlink target",
                                   e->path);
        memcpy(target, e->link_target, e->link_target_len);
        target[e->link_target_len] = '\0';
        if (symlinkat(target, dfd, name) < 0)
            return layer_error_set_errno(LAYER_ERROR, errno, "%s: symlink",
                                         e->path);
        return node_meta(dfd, name, e, false);
    case LAYER_TYPE_CHAR:
    case LAYER_TYPE_BLOCK:
    case LAYER_TYPE_FIFO: {
        mode_t kind = e->type == LAYER_TYPE_CHAR    ? S_IFCHR
                      : e->type == LAYER_TYPE_BLOCK ? S_IFBLK
                                                    : S_IFIFO;
        dev_t dev = e->type == LAYER_TYPE_FIFO
                        ? 0
                        : makedev(e->rdev_major, e->rdev_minor);

        if (mknodat(dfd, name, kind | 0600, dev) < 0)
            return layer_error_set_errno(LAYER_ERROR, errno, "%s: mknod",
                                         e->path);
        return node_meta(dfd, name, e, true);
    }
    case LAYER_TYPE_NONE:
        break;
    }
    return layer_error_set(LAYER_EINVALID, "%s: entry without a type", e->path);
}

/* Remove a tree below pfd/name without following symlinks. Best
 * effort: what cannot be removed is left (and reported by nobody; the
 * caller is already failing). */
static void rm_tree(int pfd, const char *name)
{
    int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct dirent *de;
    struct stat st;
    DIR *d;
    int dfd;

    if (fd < 0) {
        unlinkat(pfd, name, 0);
        return;
    }
    (void)fchmod(fd, 0700); /* a read-only directory we created */
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return;
    }
    dfd = dirfd(d);
    /* Removing names while reading a directory may make readdir skip
     * some, so take a few passes while they make progress. */
    for (int pass = 0; pass < 4; pass++) {
        bool removed = false, left = false;

        rewinddir(d);
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            if (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN)
                rm_tree(dfd, de->d_name);
            else
                unlinkat(dfd, de->d_name, 0);
            if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                left = true;
            else
                removed = true;
        }
        if (!left || !removed)
            break;
    }
    closedir(d);
    unlinkat(pfd, name, AT_REMOVEDIR);
}

/* Split dest into an open parent directory and a base name. */
static int open_dest_parent(int *out_fd, char *base, size_t base_cap,
                            const char *dest)
{
    size_t len = strlen(dest), blen;
    const char *slash, *b;
    char *parent = NULL;
    int fd, rc = 0;

    while (len > 1 && dest[len - 1] == '/')
        len--;
    slash = len ? memrchr(dest, '/', len) : NULL;
    b = slash ? slash + 1 : dest;
    blen = len - (size_t)(b - dest);
    if (blen == 0 || blen >= base_cap || (blen == 1 && b[0] == '.') ||
        (blen == 2 && b[0] == '.' && b[1] == '.') ||
        memchr(b, '/', blen) != NULL) {
        rc =
            layer_error_set(LAYER_EINVALID, "invalid destination \"%s\"", dest);
        goto out;
    }
    memcpy(base, b, blen);
    base[blen] = '\0';
    if (slash == NULL)
        parent = layer_trystrdup(".");
    else if (slash == dest)
        parent = layer_trystrdup("/");
    else
        parent = layer_trystrndup(dest, (size_t)(slash - dest));
    if (parent == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = layer_error_set_errno(errno == ENOENT ? LAYER_ENOTFOUND
                                                   : LAYER_ERROR,
                                   errno, "open %s", parent);
        goto out;
    }
    *out_fd = fd;
out:
    layer_free(parent);
    return rc;
}

static int make_tmp(fexp *f, const char *base)
{
    unsigned char rnd[8];
    char hex[17];
    int n;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "getrandom for a temporary name");
    layer_text_hex_encode(hex, rnd, sizeof(rnd));
    n = snprintf(f->tmp_name, sizeof(f->tmp_name), "%s.tmp-%s", base, hex);
    if (n < 0 || (size_t)n >= sizeof(f->tmp_name) || n > 255)
        return layer_error_set(LAYER_EINVALID, "destination name too long");
    if (mkdirat(f->parent_fd, f->tmp_name, 0700) < 0)
        return layer_error_set_errno(errno == EEXIST ? LAYER_EEXISTS
                                                     : LAYER_ERROR,
                                     errno, "mkdir %s", f->tmp_name);
    f->tmp_made = true;
    f->root_fd = openat(f->parent_fd, f->tmp_name,
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (f->root_fd < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "open %s",
                                     f->tmp_name);
    return 0;
}

static int open_layout(fexp *f)
{
    static const char version[] = LAYER_FOLDER_TOMBSTONES_VERSION "\n";
    int fd;

    if (mkdirat(f->root_fd, FILES_DIR, 0700) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "mkdir %s/" FILES_DIR,
                                     f->tmp_name);
    fd = openat(f->root_fd, FILES_DIR,
                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "open %s/" FILES_DIR,
                                     f->tmp_name);
    if (push(f, fd, NULL) < 0)
        return LAYER_ENOMEM;
    f->tomb_fd =
        openat(f->root_fd, TOMBSTONES_FILE,
               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f->tomb_fd < 0)
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "create %s/" TOMBSTONES_FILE, f->tmp_name);
    memcpy(f->tbuf, version, sizeof(version) - 1);
    f->tlen = sizeof(version) - 1;
    return 0;
}

static int run(fexp *f)
{
    const layer_entry *e;
    layer_reader_stats st;
    int rc;

    for (;;) {
        rc = layer_reader_next(&e, f->reader);
        if (rc == LAYER_ITEROVER)
            break;
        if (rc < 0)
            return rc;
        f->sum.entries++;
        if (e->change == LAYER_CHANGE_DELETE) {
            if ((rc = tomb_line(f, e->path, e->path_len)) < 0)
                return rc;
            f->sum.tombstones++;
            continue;
        }
        if ((rc = write_entry(f, e)) < 0)
            return rc;
        f->sum.files++;
    }
    if (layer_reader_stats_get(&st, f->reader) == 0)
        f->sum.warnings = st.warnings;
    while (f->depth > 1) {
        if ((rc = pop(f)) < 0)
            return rc;
    }
    if ((rc = tomb_flush(f)) < 0)
        return rc;
    if (close(f->tomb_fd) < 0) {
        f->tomb_fd = -1;
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "close %s/" TOMBSTONES_FILE, f->tmp_name);
    }
    f->tomb_fd = -1;
    if (fchmod(f->stack[0].fd, 0755) < 0 || fchmod(f->root_fd, 0755) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "chmod %s",
                                     f->tmp_name);
    return 0;
}

int layer_folder_export(const layer_dir *layer, const layer_dir *parents,
                        size_t nparents, const char *dest,
                        const layer_reader_opts *opts,
                        layer_folder_summary *out)
{
    char base[256];
    struct stat st;
    fexp f;
    int rc;

    memset(&f, 0, sizeof(f));
    f.parent_fd = f.root_fd = f.tomb_fd = -1;
    if (dest == NULL || layer == NULL) {
        rc = layer_error_set(LAYER_EINVALID, "no destination");
        goto out;
    }
    if (nparents > LAYER_CHAIN_MAX) {
        rc = layer_error_set(LAYER_EINVALID,
                             "%zu parents: a layer has at most %d "
                             "(LAYER_CHAIN_MAX)",
                             nparents, LAYER_CHAIN_MAX);
        goto out;
    }
    if ((rc = open_dest_parent(&f.parent_fd, base, sizeof(base), dest)) < 0)
        goto out;
    if (fstatat(f.parent_fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        rc = layer_error_set(LAYER_EEXISTS, "%s exists", dest);
        goto out;
    }
    f.buf = layer_trymalloc(COPY_BUF_SIZE);
    f.tbuf = layer_trymalloc(TOMB_BUF_SIZE);
    if (f.buf == NULL || f.tbuf == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    if ((rc = layer_reader_open(&f.reader, layer, parents, nparents, opts)) < 0)
        goto out;
    if ((rc = make_tmp(&f, base)) < 0)
        goto out;
    if ((rc = open_layout(&f)) < 0)
        goto out;
    if ((rc = run(&f)) < 0)
        goto out;
    if (renameat2(f.parent_fd, f.tmp_name, f.parent_fd, base,
                  RENAME_NOREPLACE) < 0) {
        rc =
            layer_error_set_errno(errno == EEXIST ? LAYER_EEXISTS : LAYER_ERROR,
                                  errno, "rename to %s", dest);
        goto out;
    }
    f.tmp_made = false;
    if (out != NULL)
        *out = f.sum;
out:
    while (f.depth > 0)
        frame_dispose(&f.stack[--f.depth]);
    if (f.tomb_fd >= 0)
        close(f.tomb_fd);
    if (f.root_fd >= 0)
        close(f.root_fd);
    if (f.tmp_made)
        rm_tree(f.parent_fd, f.tmp_name);
    if (f.parent_fd >= 0)
        close(f.parent_fd);
    layer_reader_free(f.reader);
    layer_free(f.stack);
    layer_free(f.spath);
    layer_free(f.buf);
    layer_free(f.tbuf);
    return rc;
}
