/*
 * Hard links in a changeset.
 *
 * A tar (and so a changeset) carries a multiply-linked file's data once:
 * the first name emitted is a regular entry, every later name a hardlink
 * entry naming it. The reader therefore keeps, for each file with
 * nlink > 1 whose entry went out, the first path emitted, keyed by
 * (dev, ino): an open-addressing table with linear probing, kept at most
 * half full, so a lookup is a hash and a short scan. It holds one record
 * per multiply-linked inode met, the only part of the reader that grows
 * with the layer rather than with its depth.
 *
 * A snapshot layer adds a second case: an unchanged name of a link group
 * is not a change, unless another member of the group changed, since the
 * layer must then be self-contained (applying it must re-create every
 * name of the group; containerd does the same). Whether a member changes
 * may only be known later in the walk, so an unchanged member met before
 * any changed one waits here as a pending record, with copies of its
 * ancestor directories (which the walk may have left, and which must be
 * emitted before it). When a changed member shows up the reader takes
 * the group's records out and emits them as hardlinks to it; records
 * whose group never changes are dropped with the tracker.
 *
 * The walk numbers each directory it enters (its serial); when it emits a
 * directory, mark_emitted() updates the copies in the waiting records, so
 * no directory is emitted twice.
 */
#include "hardlink_int.h"

#include <string.h>

#include "layer/alloc.h"
#include "layer/error.h"

/* First table size (slots; a power of 2). */
#define HARDLINK_FIRST_CAP 64

typedef struct layer_hardlink__slot {
    layer_file_id id;
    char *path; /* NULL: empty slot */
} slot;

static size_t hash(layer_file_id id)
{
    uint64_t h =
        id.ino * 0x9E3779B97F4A7C15ull ^ id.dev * 0xC2B2AE3D27D4EB4Full;

    return (size_t)(h ^ (h >> 29));
}

const char *layer_hardlink__find(const layer_hardlink__map *m, layer_file_id id)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = hash(id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const slot *s = &m->slots[i];

        if (s->path == NULL)
            return NULL;
        if (s->id.dev == id.dev && s->id.ino == id.ino)
            return s->path;
    }
}

/* The empty slot where id goes in a table of cap slots. */
static slot *free_slot(slot *slots, size_t cap, layer_file_id id)
{
    for (size_t i = hash(id) & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (slots[i].path == NULL)
            return &slots[i];
    }
}

static int grow(layer_hardlink__map *m)
{
    size_t cap = m->cap ? m->cap * 2 : HARDLINK_FIRST_CAP;
    slot *nt = layer_trycalloc(cap, sizeof(*nt));

    if (nt == NULL)
        return LAYER_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].path != NULL)
            *free_slot(nt, cap, m->slots[i].id) = m->slots[i];
    }
    layer_free(m->slots);
    m->slots = nt;
    m->cap = cap;
    return 0;
}

int layer_hardlink__insert(layer_hardlink__map *m, layer_file_id id,
                           const char *path, size_t len)
{
    slot *s;
    int rc;

    if ((m->n + 1) * 2 > m->cap && (rc = grow(m)) < 0)
        return rc;
    s = free_slot(m->slots, m->cap, id);
    s->path = layer_trystrndup(path, len);
    if (s->path == NULL)
        return LAYER_ENOMEM;
    s->id = id;
    m->n++;
    return 0;
}

int layer_hardlink__pending_new(layer_hardlink__pending **out,
                                const struct statx *st, const char *path,
                                size_t len, size_t nancs)
{
    layer_hardlink__pending *p = layer_trycalloc(1, sizeof(*p));

    if (p == NULL)
        return LAYER_ENOMEM;
    p->id = layer_hardlink__id_of(st);
    p->st = *st;
    p->path = layer_trystrndup(path, len);
    p->path_len = len;
    p->nancs = nancs;
    p->ancs = layer_trycalloc(nancs ? nancs : 1, sizeof(*p->ancs));
    if (p->path == NULL || p->ancs == NULL) {
        layer_hardlink__pending_free(p);
        return LAYER_ENOMEM;
    }
    *out = p;
    return 0;
}

void layer_hardlink__pending_free(layer_hardlink__pending *p)
{
    if (p == NULL)
        return;
    if (p->ancs != NULL) {
        for (size_t i = 0; i < p->nancs; i++)
            layer_xattr__dispose(&p->ancs[i].xa);
    }
    layer_free(p->ancs);
    layer_free(p->path);
    layer_free(p);
}

void layer_hardlink__defer(layer_hardlink__map *m, layer_hardlink__pending *p)
{
    p->next = m->pend;
    m->pend = p;
}

layer_hardlink__pending *layer_hardlink__take(layer_hardlink__map *m,
                                              layer_file_id id)
{
    for (layer_hardlink__pending **pp = &m->pend; *pp; pp = &(*pp)->next) {
        layer_hardlink__pending *p = *pp;

        if (p->id.dev == id.dev && p->id.ino == id.ino) {
            *pp = p->next;
            p->next = NULL;
            return p;
        }
    }
    return NULL;
}

void layer_hardlink__mark_emitted(layer_hardlink__map *m, uint64_t serial)
{
    for (layer_hardlink__pending *p = m->pend; p; p = p->next) {
        for (size_t i = 0; i < p->nancs; i++) {
            if (p->ancs[i].serial == serial)
                p->ancs[i].emitted = true;
        }
    }
}

void layer_hardlink__dispose(layer_hardlink__map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        layer_free(m->slots[i].path);
    layer_free(m->slots);
    while (m->pend) {
        layer_hardlink__pending *p = m->pend;

        m->pend = p->next;
        layer_hardlink__pending_free(p);
    }
    memset(m, 0, sizeof(*m));
}
