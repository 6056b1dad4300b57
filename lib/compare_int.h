#ifndef LAYER_COMPARE_INT_H
#define LAYER_COMPARE_INT_H

/*
 * The rules that decide whether a file changed between a parent's tree
 * and the layer's (compare.c): continuity's sameFile for snapshot layers,
 * and the metadata check of a copied-up directory in diff layers.
 * Internals of the reader, shared with the tests.
 */

#include <stdbool.h>
#include <sys/stat.h>

#include "xattr_int.h"

/** What the metadata says about an upper file against its lower one. */
typedef enum layer_compare__verdict {
    /** Changed: the entry is a modification. */
    LAYER_COMPARE__DIFFERENT = 0,
    /** Unchanged. */
    LAYER_COMPARE__SAME = 1,
    /** The metadata match to the second with no nanoseconds on either
     * side (files unpacked from a tar): only the content can tell. */
    LAYER_COMPARE__CONTENT = 2
} layer_compare__verdict;

/**
 * Do two files carry the same security.capability (or both none)? The
 * one attribute that changes what a file may do without changing its
 * mode, so a changeset must carry it.
 */
bool layer_compare__same_cap(const layer_xattr__list *a,
                             const layer_xattr__list *b);

/**
 * continuity's sameFile, up to the content: the same (dev, ino) is
 * unchanged; then mode, uid, gid, rdev and security.capability must
 * match; directories compare nothing more; other files compare size and
 * mtime seconds, then differing nanoseconds mean changed, equal non-zero
 * ones unchanged; with both nanosecond parts 0 a symlink's target or a
 * non-empty regular file's bytes decide (LAYER_COMPARE__CONTENT); other
 * types are unchanged.
 *
 * @param u the file in the layer
 * @param l the file in the parent
 * @param ux u's attributes
 * @param lx l's attributes
 * @return the verdict
 */
layer_compare__verdict layer_compare__meta(const struct statx *u,
                                           const struct statx *l,
                                           const layer_xattr__list *ux,
                                           const layer_xattr__list *lx);

/**
 * Is the upper file unchanged from the lower one (layer_compare__meta(),
 * then the content where it asks for it)? The content is compared
 * without following symlinks: a symlink's target, a regular file's bytes
 * read in 64 KiB pieces until the first difference.
 *
 * @param[out] out whether the file is unchanged
 * @param ufd the directory holding the upper file
 * @param lfd the directory holding the lower file
 * @param name the file's name in both
 * @param u,l,ux,lx as for layer_compare__meta()
 * @param noatime open the files with O_NOATIME where allowed
 * @return 0, LAYER_ENOMEM or LAYER_ERROR (a file that cannot be read)
 */
int layer_compare__same_file(bool *out, int ufd, int lfd, const char *name,
                             const struct statx *u, const struct statx *l,
                             const layer_xattr__list *ux,
                             const layer_xattr__list *lx, bool noatime);

/**
 * Is a directory of a diff layer that also exists in a parent
 * (copied up, overlayfs style) unchanged: the same mode, owner and
 * security.capability? An unchanged one is emitted only when something
 * below it changed.
 */
bool layer_compare__same_dir(const struct statx *u, const struct statx *l,
                             const layer_xattr__list *ux,
                             const layer_xattr__list *lx);

#endif
