/*
 * The digest memo (api/digest_memo.h): a small table of records, linear
 * search under one mutex. Lookups happen once per export request and
 * the table holds a few hundred records at most, so a scan of them is
 * noise next to the export it saves hashing. Every record carries the
 * tick of its last use; a full table replaces the oldest.
 */
#include "api_int.h"

#include <pthread.h>
#include <string.h>

#include "api/digest_memo.h"
#include "layer/alloc.h"
#include "layer/error.h"

struct api_digest_memo {
    pthread_mutex_t lock;
    api_digest_rec *recs;
    uint64_t *used; /* tick of last use; 0: the slot is empty */
    size_t cap;
    uint64_t tick;
};

int api_digest_memo_new(api_digest_memo **out, size_t capacity)
{
    api_digest_memo *m;

    if (capacity == 0)
        capacity = API_DIGEST_MEMO_DEFAULT;
    m = layer_trycalloc(1, sizeof(*m));
    if (m == NULL)
        return LAYER_ENOMEM;
    m->recs = layer_tryarray(NULL, capacity, sizeof(*m->recs));
    m->used = layer_trycalloc(capacity, sizeof(*m->used));
    if (m->recs == NULL || m->used == NULL ||
        pthread_mutex_init(&m->lock, NULL) != 0) {
        layer_free(m->recs);
        layer_free(m->used);
        layer_free(m);
        return layer_error_set(LAYER_ENOMEM, "cannot create the digest memo");
    }
    m->cap = capacity;
    *out = m;
    return 0;
}

void api_digest_memo_free(api_digest_memo *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->lock);
    layer_free(m->recs);
    layer_free(m->used);
    layer_free(m);
}

/* The slot holding key, or cap (lock held). */
static size_t find_locked(const api_digest_memo *m, const char *key)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->used[i] != 0 && strcmp(m->recs[i].key, key) == 0)
            return i;
    }
    return m->cap;
}

bool api_digest_memo__get(api_digest_memo *m, const char *key,
                          api_digest_rec *out)
{
    size_t i;

    if (m == NULL)
        return false;
    pthread_mutex_lock(&m->lock);
    i = find_locked(m, key);
    if (i < m->cap) {
        m->used[i] = ++m->tick;
        *out = m->recs[i];
    }
    pthread_mutex_unlock(&m->lock);
    return i < m->cap;
}

void api_digest_memo__put(api_digest_memo *m, const api_digest_rec *rec)
{
    size_t i;

    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    i = find_locked(m, rec->key);
    if (i == m->cap) {
        /* an empty slot, else the least recently used */
        i = 0;
        for (size_t j = 0; j < m->cap && m->used[i] != 0; j++) {
            if (m->used[j] < m->used[i])
                i = j;
        }
    }
    m->recs[i] = *rec;
    m->used[i] = ++m->tick;
    pthread_mutex_unlock(&m->lock);
}

void api_digest_memo__drop(api_digest_memo *m, const char *key)
{
    size_t i;

    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    i = find_locked(m, key);
    if (i < m->cap)
        m->used[i] = 0;
    pthread_mutex_unlock(&m->lock);
}
