#ifndef LAYER_HARDLINK_INT_H
#define LAYER_HARDLINK_INT_H

/*
 * Hard-link tracking for the reader (hardlink.c): which name of each
 * multiply-linked inode was emitted first, and the unchanged members of
 * a link group that wait for a changed member. Internals of the reader,
 * shared with the tests.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "layer/entry.h"
#include "xattr_int.h"

/** The (dev, ino) identity of a file from its statx. */
static inline layer_file_id layer_hardlink__id_of(const struct statx *st)
{
    layer_file_id id;

    id.dev = makedev(st->stx_dev_major, st->stx_dev_minor);
    id.ino = st->stx_ino;
    return id;
}

/**
 * An ancestor directory of a waiting link member, as it was when the
 * member was met: the member's entry must be preceded by its ancestors'
 * entries, and the walk may have left them by the time it goes out.
 */
typedef struct layer_hardlink__anc {
    uint64_t serial; /**< the walk's number for the directory */
    size_t path_len; /**< its path is the member's path cut here */
    struct statx st;
    layer_xattr__list xa;
    bool emitted; /**< its entry is out */
} layer_hardlink__anc;

/** An unchanged member of a link group seen before any changed member. */
typedef struct layer_hardlink__pending {
    layer_file_id id;
    char *path; /**< owned */
    size_t path_len;
    struct statx st;
    layer_hardlink__anc *ancs; /**< outermost first; owned */
    size_t nancs;
    struct layer_hardlink__pending *next;
} layer_hardlink__pending;

/** The tracker. Zero-initialise; release with layer_hardlink__dispose(). */
typedef struct layer_hardlink__map {
    struct layer_hardlink__slot *slots; /**< open addressing */
    size_t n, cap;                      /**< cap: 0 or a power of 2 */
    layer_hardlink__pending *pend;      /**< newest first */
} layer_hardlink__map;

/** Release everything the tracker holds and zero it. */
void layer_hardlink__dispose(layer_hardlink__map *m);

/**
 * The path first emitted for a file, or NULL. Borrowed from m.
 */
const char *layer_hardlink__find(const layer_hardlink__map *m,
                                 layer_file_id id);

/**
 * Record path (len bytes) as the first emitted name of id, which must not
 * be recorded yet.
 *
 * @return 0 or LAYER_ENOMEM
 */
int layer_hardlink__insert(layer_hardlink__map *m, layer_file_id id,
                           const char *path, size_t len);

/**
 * A new waiting record for the file with stat st at path (len bytes),
 * with room for nancs ancestors (zeroed, for the caller to fill).
 *
 * @param[out] out the record; give it to layer_hardlink__defer() or free
 *             it with layer_hardlink__pending_free()
 * @return 0 or LAYER_ENOMEM
 */
int layer_hardlink__pending_new(layer_hardlink__pending **out,
                                const struct statx *st, const char *path,
                                size_t len, size_t nancs);

/** Free a waiting record (its ancestors' attributes included). */
void layer_hardlink__pending_free(layer_hardlink__pending *p);

/** Let p wait for a changed member of its group; m owns it from now. */
void layer_hardlink__defer(layer_hardlink__map *m, layer_hardlink__pending *p);

/**
 * Take the next waiting record of id's group out of m, newest first.
 *
 * @return the record (the caller owns it), or NULL when none is left
 */
layer_hardlink__pending *layer_hardlink__take(layer_hardlink__map *m,
                                              layer_file_id id);

/**
 * Note that the directory with this serial is emitted, in every waiting
 * record that has it as an ancestor.
 */
void layer_hardlink__mark_emitted(layer_hardlink__map *m, uint64_t serial);

#endif
