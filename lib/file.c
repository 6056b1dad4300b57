/*
 * Small files read with a cap (file.h): whole, for metadata, settings,
 * keys and the API contract; line by line, for tombstones.txt.
 *
 * The whole-file reader opens with O_NONBLOCK and checks the type with
 * fstat() before it reads, so a FIFO or device planted under a name is
 * refused instead of blocking the caller; it trusts st_size only as a
 * first guess and stops one byte past the cap, so a file that grows while
 * it is read is refused too. The line reader keeps one buffer of the
 * longest line accepted and never more, unlike getline(), which would
 * allocate a whole over-long line before its length could be checked.
 */
#include "layer/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/beneath.h"
#include "layer/error.h"
#include "layer/text.h"

/* Read size when the file's size gave no better guess. */
#define READ_CHUNK 4096u

/* How messages call the file: the caller's description, or its name. */
#define WHAT(what, name) ((what) != NULL ? (what) : (name))

static int open_failed(int err, unsigned flags, const char *what,
                       const char *name)
{
    if (err == ENOENT || err == ENOTDIR)
        return layer_error_set_errno(LAYER_ENOTFOUND, err, "cannot open %s",
                                     WHAT(what, name));
    if (err == ELOOP && (flags & LAYER_FILE_NOFOLLOW))
        return layer_error_set(LAYER_EINVALID, "%s is a symlink",
                               WHAT(what, name));
    return layer_error_set_errno(LAYER_ERROR, err, "cannot open %s",
                                 WHAT(what, name));
}

int layer_file_read(char **out, size_t *out_len, int dirfd, const char *name,
                    size_t cap, unsigned flags, const char *what)
{
    int oflags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd, rc;

    if (flags & LAYER_FILE_BENEATH) {
        rc = layer_beneath_open(&fd, dirfd, name, oflags, 0);
        if (rc == LAYER_EINVALID && layer_error_errno() == 0)
            rc = layer_error_set(LAYER_EINVALID, "%s: not a relative path",
                                 WHAT(what, name));
        else if (rc == LAYER_EINVALID)
            rc = layer_error_set(LAYER_EINVALID,
                                 "%s is a symlink or has one on its path",
                                 WHAT(what, name));
        else if (rc == LAYER_ENOTFOUND || rc == LAYER_ERROR)
            rc = open_failed(layer_error_errno(), flags, what, name);
        if (rc < 0)
            return rc;
    } else {
        if (flags & LAYER_FILE_NOFOLLOW)
            oflags |= O_NOFOLLOW;
        if ((fd = openat(dirfd, name, oflags)) < 0)
            return open_failed(errno, flags, what, name);
    }
    rc = layer_file_read_fd(out, out_len, fd, cap, WHAT(what, name));
    close(fd);
    return rc;
}

int layer_file_read_fd(char **out, size_t *out_len, int fd, size_t cap,
                       const char *what)
{
    /* One byte over the cap tells a file that grew past it. */
    layer_text_buf b =
        LAYER_TEXT_BUF_INIT(cap < SIZE_MAX - 1 ? cap + 1 : cap, NULL);
    const char *name = "the file";
    struct stat st;
    int rc = 0;

    if (fstat(fd, &st) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "cannot stat %s",
                                   WHAT(what, name));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = layer_error_set(LAYER_EINVALID, "%s is not a regular file",
                             WHAT(what, name));
        goto out;
    }
    if ((uint64_t)st.st_size > cap) {
        rc = layer_error_set(LAYER_ETOOBIG, "%s is larger than %zu bytes",
                             WHAT(what, name), cap);
        goto out;
    }
    /* Room for the whole file and the probe byte behind it. */
    if ((rc = layer_text_buf_reserve(&b, (size_t)st.st_size + 1)) < 0)
        goto out;
    for (;;) {
        size_t room = b.alloc - b.len - 1;
        ssize_t n;

        if (room == 0) {
            size_t more =
                b.max - b.len < READ_CHUNK ? b.max - b.len : READ_CHUNK;

            if ((rc = layer_text_buf_reserve(&b, more)) < 0)
                goto out;
            room = b.alloc - b.len - 1;
        }
        n = read(fd, b.p + b.len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno, "cannot read %s",
                                       WHAT(what, name));
            goto out;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        if (b.len > cap) {
            rc = layer_error_set(LAYER_ETOOBIG, "%s is larger than %zu bytes",
                                 WHAT(what, name), cap);
            goto out;
        }
    }
    b.p[b.len] = '\0';
    *out = layer_text_buf_detach(&b, out_len);
out:
    layer_text_buf_dispose(&b);
    return rc;
}

/* ---- lines ------------------------------------------------------------ */

int layer_file_lines_init(layer_file_lines *l, int fd, size_t max,
                          const char *what)
{
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->max = max;
    l->what = what != NULL ? what : "file";
    l->cap = max + 2;
    if ((l->buf = layer_trymalloc(l->cap)) == NULL)
        return LAYER_ENOMEM;
    return 0;
}

/* Read more bytes behind the unread ones, moving them to the front
 * first. Sets eof at the end of the file. */
static int fill(layer_file_lines *l)
{
    ssize_t n;

    if (l->start > 0) {
        memmove(l->buf, l->buf + l->start, l->end - l->start);
        l->end -= l->start;
        l->start = 0;
    }
    /* Keep one byte for the NUL a last line without '\n' gets. */
    do {
        n = read(l->fd, l->buf + l->end, l->cap - 1 - l->end);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return layer_error_set_errno(LAYER_ERROR, errno, "cannot read %s",
                                     l->what);
    if (n == 0)
        l->eof = true;
    l->end += (size_t)n;
    return 0;
}

int layer_file_lines_next(char **out_line, size_t *out_len, layer_file_lines *l)
{
    size_t scanned = 0; /* unread bytes known to hold no '\n' */
    char *nl;
    int rc;

    for (;;) {
        size_t have = l->end - l->start;

        nl = memchr(l->buf + l->start + scanned, '\n', have - scanned);
        if (nl != NULL || (l->eof && have > 0))
            break;
        if (l->eof)
            return LAYER_ITEROVER;
        if (have > l->max)
            return layer_error_set(
                LAYER_ETOOBIG, "%s: line %llu is longer than %zu bytes",
                l->what, (unsigned long long)l->lineno + 1, l->max);
        scanned = have;
        if ((rc = fill(l)) < 0)
            return rc;
    }
    if (nl == NULL)
        nl = l->buf + l->end; /* the last line, without '\n' */
    *out_line = l->buf + l->start;
    *out_len = (size_t)(nl - *out_line);
    if (*out_len > l->max)
        return layer_error_set(
            LAYER_ETOOBIG, "%s: line %llu is longer than %zu bytes", l->what,
            (unsigned long long)l->lineno + 1, l->max);
    *nl = '\0';
    l->start += *out_len + (l->start + *out_len < l->end ? 1 : 0);
    l->lineno++;
    return 0;
}

void layer_file_lines_dispose(layer_file_lines *l)
{
    if (l == NULL)
        return;
    layer_free(l->buf);
    l->buf = NULL;
    l->cap = l->start = l->end = 0;
}
