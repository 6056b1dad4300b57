#ifndef LAYER_XATTR_INT_H
#define LAYER_XATTR_INT_H

/*
 * Extended attributes of one file, and the overlayfs markers kept in them
 * (xattr.c). Internals shared by the reader (reader.c), the snapshot
 * comparison rules (compare.c), the hard-link tracker (hardlink.c) and
 * the tests.
 */

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "layer/entry.h"

/**
 * The extended attributes of one file: items sorted by name, whose names
 * and values point into one blob. Zero-initialise; release with
 * layer_xattr__dispose(). A list is reused from file to file: reading
 * into it keeps its buffers.
 */
typedef struct layer_xattr__list {
    layer_xattr *items;
    size_t n, cap;
    unsigned char *blob;
    size_t blob_len, blob_cap;
} layer_xattr__list;

/** Release a list's buffers and zero it. */
void layer_xattr__dispose(layer_xattr__list *x);

/**
 * Make dst an independent copy of src (dst is overwritten, not released:
 * dispose it first if it held anything).
 *
 * @return 0 or LAYER_ENOMEM (dst is then empty)
 */
int layer_xattr__copy(layer_xattr__list *dst, const layer_xattr__list *src);

/**
 * The attribute called name, or NULL. Borrowed from x. (Inline: it runs
 * for every file the snapshot comparison looks at, nearly always over an
 * empty list.)
 */
static inline const layer_xattr *layer_xattr__find(const layer_xattr__list *x,
                                                   const char *name)
{
    for (size_t i = 0; i < x->n; i++) {
        if (strcmp(x->items[i].name, name) == 0)
            return &x->items[i];
    }
    return NULL;
}

/**
 * Read all extended attributes of a file into x, sorted by name; the
 * earlier content of x is dropped. With fd >= 0 the file is that open
 * fd; otherwise it is name in dirfd, read without opening it and without
 * following a symlink: listxattrat/getxattrat (Linux 6.13), or the
 * l*xattr calls through /proc/self/fd/<dirfd>/<name> on older kernels.
 * A file system without xattrs, or a file removed meanwhile, reads as no
 * attributes.
 *
 * @param[out] x the attributes
 * @param fd the open file, or -1
 * @param dirfd the directory holding name (fd < 0)
 * @param name the file's name in dirfd (fd < 0)
 * @param what the file's path, for messages
 * @return 0, LAYER_ETOOBIG (a name too long for the /proc path, or more
 *         than 1 MiB of attributes), LAYER_ENOMEM or LAYER_ERROR
 */
int layer_xattr__read(layer_xattr__list *x, int fd, int dirfd, const char *name,
                      const char *what);

/**
 * Turn the listxattrat/getxattrat path of layer_xattr__read() on or off
 * for the whole process. It starts on and turns itself off for good when
 * the kernel lacks the calls (or a seccomp filter refuses them); tests
 * turn it off to exercise the fallback through /proc/self/fd.
 *
 * @param on whether to try the *xattrat calls
 */
void layer_xattr__xattrat_set(bool on);

/** Overlayfs markers, as layer_xattr__markers() finds them. */
enum layer_xattr__marker {
    /** *.overlay.whiteout, any value: an empty file is a whiteout */
    LAYER_XATTR__WHITEOUT = 1u << 0,
    /** *.overlay.opaque = "y": the directory hides what lies below
     * ("x" marks a merge directory holding xattr whiteouts: not opaque) */
    LAYER_XATTR__OPAQUE = 1u << 1,
    /** *.overlay.redirect: the directory's content lives elsewhere */
    LAYER_XATTR__REDIRECT = 1u << 2,
    /** *.overlay.metacopy: the file's data lives in a lower layer */
    LAYER_XATTR__METACOPY = 1u << 3
};

/**
 * The overlayfs markers among a file's attributes, in their trusted.* or
 * user.* (unprivileged overlayfs, "userxattr") form.
 *
 * @return a set of layer_xattr__marker bits
 */
unsigned layer_xattr__markers(const layer_xattr__list *x);

/**
 * Refuse what cannot be exported from a raw upperdir: a redirect
 * directory or a metacopy file (their content is in another layer).
 *
 * @param markers the file's layer_xattr__markers()
 * @param path the file's path, for the message
 * @return 0 or LAYER_EUNSUPPORTED
 */
int layer_xattr__check_exportable(unsigned markers, const char *path);

/**
 * Is name (with stat st) in an overlay upperdir a whiteout: a char
 * device 0/0, or an empty regular file with *.overlay.whiteout? Only the
 * empty file needs its attributes: they are read into scratch, and
 * *out_read (when not NULL) says whether they were, so that a caller
 * need not read them twice.
 *
 * @param[out] out whether it is a whiteout
 * @param[out] out_read whether scratch now holds name's attributes, or NULL
 * @param dirfd the directory holding name
 * @param name the file
 * @param what its path, for messages
 * @param st its stat
 * @param scratch a list to read into
 * @return 0 or an error of layer_xattr__read()
 */
int layer_xattr__is_whiteout(bool *out, bool *out_read, int dirfd,
                             const char *name, const char *what,
                             const struct statx *st,
                             layer_xattr__list *scratch);

/** Drop the *.overlay.* attributes: the layer's mechanics, not data. */
void layer_xattr__strip_overlay(layer_xattr__list *x);

#endif
