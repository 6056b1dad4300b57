/*
 * The blob cache (layer/blobcache.h): layer blobs stored once under their
 * digest, records mapping an export's key to its blob, single flight for
 * concurrent misses, LRU eviction under a byte cap.
 *
 * On disk, below the cache directory (mode 0700, opened once; every name
 * below it is reached from its descriptor with *at() calls and
 * O_NOFOLLOW, so a symlink planted there is never followed):
 *
 *   lock                 empty; flock(2) only (see "Processes")
 *   journal              the records, one line each (below)
 *   blobs/sha256/<hex>   the blobs, 0600, named by their SHA-256; the
 *                        file's mtime is its last use (LRU across runs)
 *   tmp/<pid>-<n>.fill   fills in flight, each flock(LOCK_EX)ed by its
 *                        filler for as long as it is open
 *
 * The journal is append-only text. Its first line is "layerd-blobcache 1";
 * then each line is
 *
 *   R <tar> <fmt> <level> <layer> <fingerprint> <digest> <size> <diff_id>
 *     <media_type> <crc>          a record: key -> blob (one line)
 *   E <digest> <crc>              the blob was evicted: its records go
 *
 * with <tar> canonical|original, <fmt> none|gzip|zstd, <layer> and
 * <fingerprint> escaped (bytes outside '!'..'~', and '%', as %XX), and
 * <crc> the CRC-32 (zlib) of the line before " <crc>", as 8 lowercase hex
 * digits. Lines are replayed in order and are idempotent. A line that is
 * torn, too long, fails its CRC or does not parse is ignored. The journal
 * is rewritten (to journal.new, fsynced, renamed over, directory fsynced)
 * at open when it held anything but the live records, and while running
 * when it grows past twice the records plus 1024 lines.
 *
 * Crash safety. A blob becomes visible in four ordered, durable steps:
 * (1) its bytes are written to tmp/ and fsynced; (2) it is renamed to
 * blobs/sha256/<hex> and that directory fsynced; (3) its R line is
 * appended to the journal (one write) and fdatasynced; (4) only then is
 * it indexed in memory and served by digest. So a durable R line implies
 * a complete, durable blob. A crash or kill -9 between any two steps
 * leaves: after (1), a temporary file whose lock died with its process,
 * removed at the next open; after (2), a blob no record names, removed at
 * open; during (3), a torn last line, ignored (and a later append starts
 * on a fresh line); after (3), a complete cache. Eviction appends its E
 * lines first (not synced) and then unlinks: losing either leaves a
 * record whose blob is missing (dropped at open) or a blob without record
 * (removed at open). After a replay, open checks every blob still named
 * with fstatat(AT_SYMLINK_NOFOLLOW): a record whose blob is missing, not
 * a regular file or of another size is dropped and the name removed. (The
 * bytes are not hashed again at open: that would read the whole cache;
 * a size check is what the registry spec asks of a HEAD anyway.) A blob is
 * kept only while a record names it; open removes every other name in
 * blobs/sha256, and every non-file in tmp/.
 *
 * In memory, under one mutex (c->lock): a table of blobs by digest, a
 * table of entries by encoded key (an entry holds a record, a fill in
 * flight, or both for a moment), an LRU list of the blobs kept (oldest
 * first), the byte total (blobs kept plus fills in flight) and the
 * counters. File I/O happens outside it, but for fstatat() during a
 * journal replay and the rewrite of the journal.
 *
 * Single flight. A get() that finds neither a record nor a fill inserts
 * a fill under the lock, atomically with the miss, so exactly one caller
 * fills; later callers attach readers to it. The filler writes with
 * write(2) and then publishes the new length under the lock; readers
 * pread(2) below that length from the fill's descriptor, which stays
 * valid across the rename (commit) or the unlink (abort). Readers that
 * returned LAYER_EAGAIN are woken by the export notify protocol: the
 * filler collects the armed callbacks under c->lock and calls them under
 * the fill's notify_lock only, which a reader takes to detach, so no
 * callback runs after layer_blobcache_reader_free() returns. Lock order:
 * jlock -> c->lock, notify_lock -> c->lock.
 *
 * Eviction (LRU by last use: a hit moves a blob to the tail, as does the
 * release of a reader) skips blobs that readers of this process hold:
 * they count against the cap until released, and are evicted then if the
 * cache is still over it. Another process knows nothing of our readers
 * and may evict (unlink) a blob we serve: every reader reads through its
 * own open descriptor, so the bytes stay readable to the end. A fill
 * larger than the cap completes for its readers and is then not kept.
 *
 * Processes. Several processes may open one cache (a server and `layerd
 * cache ls|prune|warm`). Every change to the journal and every rename of
 * a blob into blobs/ happens under flock(lock, LOCK_EX), held for one
 * append (or one rewrite), and each process first replays the lines other
 * processes appended since it last looked (or reloads the journal whole
 * when another process rewrote it: a new inode under the name), so its
 * own lines always follow a state it knows. A fill's temporary file is
 * created under LOCK_SH and locked (LOCK_EX on the file itself) before
 * LOCK_SH is released, so open's clean-up, which holds LOCK_EX, removes
 * only the files of dead fillers. A process notices blobs pruned by
 * another when it replays the E lines (on a miss and before each append)
 * or when a blob it opens is gone (the record is dropped and the key
 * filled again). Single flight is per process: two processes missing
 * the same key both fill it, and the second commit keeps the first blob.
 */
#include "layer/blobcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "layer/alloc.h"
#include "layer/error.h"
#include "layer/text.h"

#define MAGIC     "layerd-blobcache 1"
#define MAGIC_ANY "layerd-blobcache "
/* A record line: the key (two escaped strings of up to 3 bytes per byte
 * of input) plus two digests, a size and a media type. */
#define LINE_MAX_BYTES 8192
#define KEY_SIZE                                                               \
    (3 * (LAYER_BLOBCACHE_LAYER_MAX + LAYER_BLOBCACHE_FINGERPRINT_MAX) + 64)
/* Journal reads: big enough for many lines per call. */
#define READ_CHUNK (64u << 10)
/* The rewrite's buffer is flushed past this. */
#define FLUSH_AT (64u << 10)
#define HEX_LEN  64
/* get() retries after a blob turned out bad; each retry drops one. */
#define GET_ATTEMPTS  4
#define TEMP_ATTEMPTS 16
/* Rewrite the journal past 2 * records + this many lines. */
#define COMPACT_SLACK 1024

typedef struct blob blob;
typedef struct entry entry;
typedef struct fill fill;

/* A chained hash table of structs whose first member is their hlink. */
typedef struct hlink {
    struct hlink *next;
    uint64_t hash;
} hlink;

typedef struct htab {
    hlink **v;
    size_t cap, count; /* cap: 0 or a power of two */
} htab;

struct blob {
    hlink link;         /* digest table chain; the first member */
    blob *prev, *next;  /* LRU list, oldest first (indexed blobs only) */
    blob *victim_next;  /* victims list, while being reaped */
    blob *pending_next; /* blobs a replay named, not yet checked */
    entry *records;     /* entries whose record names this blob */
    uint64_t size;
    int64_t used;  /* last use, Unix seconds */
    unsigned refs; /* readers holding it */
    bool indexed;  /* in the table and the LRU list; counted in total */
    bool victim;   /* on a victims list: reap() frees it */
    bool pending;  /* on c->pending: check_pending() frees it */
    bool unlink;   /* reap(): remove the file */
    bool seen;     /* journal reload mark */
    char hex[HEX_LEN + 1];
    char diff_id[LAYER_DIGEST_STR_SIZE];
    char media_type[LAYER_BLOBCACHE_MEDIA_TYPE_SIZE];
};

struct entry {
    hlink link;   /* key table chain; the first member */
    entry *bnext; /* next record of the same blob */
    blob *blob;   /* the record, or NULL */
    fill *fill;   /* the fill in flight, or NULL */
    bool seen;
    size_t klen;
    char key[]; /* encoded: "<tar> <fmt> <level> <layer> <fingerprint>" */
};

enum fill_state { FILL_RUNNING, FILL_DONE, FILL_FAILED };

struct fill {
    entry *entry; /* while in flight */
    pthread_mutex_t notify_lock;
    pthread_cond_t cond;             /* with c->lock: more bytes, the end */
    layer_blobcache_reader *readers; /* under notify_lock and c->lock */
    unsigned nreaders, narmed, nblocked;
    unsigned refs; /* the writer and the readers */
    int fd;        /* -1 until the file exists */
    uint64_t written;
    enum fill_state state;
    layer_compression compression;
    blob *blob; /* after commit: the blob kept (readers hold refs) */
    layer_blobcache_info info;
    layer_error_state err;
    char tmpname[64];
};

struct layer_blobcache_reader {
    layer_blobcache *c;
    blob *blob;                          /* a committed blob, read through fd */
    fill *fill;                          /* or a fill, read through its fd */
    layer_blobcache_reader *prev, *next; /* in fill->readers */
    int fd;
    uint64_t off, end;
    bool started;
    /* notify state, under c->lock */
    bool armed, pending;
    void (*fn)(void *arg);
    void *arg;
    /* under fill->notify_lock */
    void (*fire_fn)(void *arg);
    void *fire_arg;
    layer_blobcache_info info; /* committed blobs */
};

struct layer_blobcache_writer {
    layer_blobcache *c;
    fill *f;
    layer_digest digest; /* unless given: layer_blobcache_writer_given() */
    bool given;          /* the commit brings the digest */
    bool failed;
};

struct layer_blobcache {
    pthread_mutex_t lock;
    unsigned refs; /* the owner's, and one per reader or writer */
    int dirfd, blobsfd, tmpfd, lockfd;
    char *dir;
    uint64_t max_bytes;
    uint64_t total;
    htab btab; /* blobs by digest */
    htab etab; /* entries by key */
    size_t nrecords;
    blob *lru_head, *lru_tail;
    blob *pending; /* blobs a replay named, their files not yet checked */
    layer_blobcache_stats st; /* counters, under lock */
    atomic_uint seq;          /* temporary names */
    atomic_uint_fast64_t bytes_read;

    /* The journal, under jlock (and LOCK_EX on lockfd to change it). */
    pthread_mutex_t jlock;
    int jfd;
    uint64_t joff;   /* bytes of it replayed (or written) by us */
    uint64_t jsize;  /* its size when we last looked */
    uint64_t jlines; /* record and eviction lines in it */
};

/* ---- small helpers -------------------------------------------------- */

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool is_hex64(const char *s)
{
    for (size_t i = 0; i < HEX_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool digest_valid(const char *d, size_t len)
{
    return len == 7 + HEX_LEN && memcmp(d, "sha256:", 7) == 0 &&
           is_hex64(d + 7);
}

static bool plain_byte(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '%';
}

/* Is s[0..len) a media type we store (no spaces, no escapes needed)? */
static bool media_type_valid(const char *s, size_t len)
{
    if (len == 0 || len >= LAYER_BLOBCACHE_MEDIA_TYPE_SIZE)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!plain_byte((unsigned char)s[i]))
            return false;
    return true;
}

static int retry_flock(int fd, int op)
{
    int rc;

    do {
        rc = flock(fd, op);
    } while (rc < 0 && errno == EINTR);
    return rc;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read up to len bytes at off; fewer only at the end of the file. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    size_t got = 0;

    while (got < len) {
        ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* Remove a name of a directory fd, whatever it is (an empty directory
 * too); a non-empty directory stays. */
static void remove_name(int dfd, const char *name)
{
    if (unlinkat(dfd, name, 0) < 0 && errno == EISDIR)
        (void)unlinkat(dfd, name, AT_REMOVEDIR);
}

/* ---- keys ----------------------------------------------------------- */

static const char *tar_name(layer_blobcache_tar t)
{
    return t == LAYER_BLOBCACHE_TAR_ORIGINAL ? "original" : "canonical";
}

/* Append s escaped; returns the new length or 0 when it does not fit. */
static size_t escape(char *out, size_t at, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if (plain_byte(ch)) {
            if (at + 1 >= cap)
                return 0;
            out[at++] = (char)ch;
        } else {
            if (at + 3 >= cap)
                return 0;
            out[at++] = '%';
            out[at++] = hex[ch >> 4];
            out[at++] = hex[ch & 15];
        }
    }
    out[at] = '\0';
    return at;
}

/* The canonical key string; its length, or LAYER_EINVALID. */
static int key_encode(char out[KEY_SIZE], size_t *out_len,
                      const layer_blobcache_key *k)
{
    size_t ll, fl, n;
    int m;

    if (k == NULL || k->layer == NULL || k->fingerprint == NULL)
        return layer_error_set(LAYER_EINVALID, "cache key without a layer "
                                               "or a fingerprint");
    ll = strnlen(k->layer, LAYER_BLOBCACHE_LAYER_MAX + 1);
    fl = strnlen(k->fingerprint, LAYER_BLOBCACHE_FINGERPRINT_MAX + 1);
    if (ll == 0 || ll > LAYER_BLOBCACHE_LAYER_MAX || fl == 0 ||
        fl > LAYER_BLOBCACHE_FINGERPRINT_MAX)
        return layer_error_set(LAYER_EINVALID,
                               "cache key: the layer must have 1 to %d bytes "
                               "and the fingerprint 1 to %d",
                               LAYER_BLOBCACHE_LAYER_MAX,
                               LAYER_BLOBCACHE_FINGERPRINT_MAX);
    if (k->tar != LAYER_BLOBCACHE_TAR_CANONICAL &&
        k->tar != LAYER_BLOBCACHE_TAR_ORIGINAL)
        return layer_error_set(LAYER_EINVALID, "cache key: unknown tar kind");
    if (k->compression != LAYER_COMPRESSION_NONE &&
        k->compression != LAYER_COMPRESSION_GZIP &&
        k->compression != LAYER_COMPRESSION_ZSTD)
        return layer_error_set(LAYER_EINVALID,
                               "cache key: unknown compression");
    m = snprintf(out, KEY_SIZE, "%s %s %d ", tar_name(k->tar),
                 layer_compression_name(k->compression), k->level);
    if (m < 0 || (size_t)m >= KEY_SIZE)
        return layer_error_set(LAYER_ERROR, "cache key: cannot format");
    n = escape(out, (size_t)m, KEY_SIZE, k->layer);
    if (n == 0 || n + 1 >= KEY_SIZE)
        return layer_error_set(LAYER_EINVALID, "cache key too long");
    out[n++] = ' ';
    n = escape(out, n, KEY_SIZE, k->fingerprint);
    if (n == 0)
        return layer_error_set(LAYER_EINVALID, "cache key too long");
    *out_len = n;
    return 0;
}

static int hexval(char ch)
{
    return layer_text_hex_value((unsigned char)ch, 0);
}

/* Is s[0..len) canonically escaped, decoding to 1..max bytes without a
 * NUL? */
static bool escaped_valid(const char *s, size_t len, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++, n++) {
        unsigned char ch = (unsigned char)s[i];
        int hi, lo;

        if (plain_byte(ch))
            continue;
        if (ch != '%' || i + 2 >= len)
            return false;
        hi = hexval(s[i + 1]);
        lo = hexval(s[i + 2]);
        if (hi < 0 || lo < 0 || (s[i + 1] >= 'a' && s[i + 1] <= 'f') ||
            (s[i + 2] >= 'a' && s[i + 2] <= 'f'))
            return false;
        ch = (unsigned char)(hi << 4 | lo);
        if (ch == 0 || plain_byte(ch))
            return false;
        i += 2;
    }
    return n >= 1 && n <= max;
}

/* Decode an escaped string (checked by escaped_valid()). */
static char *unescape(const char *s, size_t len)
{
    char *out = layer_trymalloc(len + 1);
    size_t n = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len) {
            out[n++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return out;
}

/* ---- tables ---------------------------------------------------------- */

/* The first link of the chain h falls in. */
static hlink *htab_first(const htab *t, uint64_t h)
{
    return t->cap != 0 ? t->v[h & (t->cap - 1)] : NULL;
}

/* Link l (its hash set), doubling the table when it is full. */
static int htab_link(htab *t, hlink *l)
{
    if (t->count >= t->cap) {
        size_t ncap = t->cap == 0 ? 64 : t->cap * 2;
        hlink **nv = layer_trycalloc(ncap, sizeof(*nv));

        if (nv == NULL)
            return LAYER_ENOMEM;
        for (size_t i = 0; i < t->cap; i++) {
            hlink *x = t->v[i], *next;

            for (; x != NULL; x = next) {
                next = x->next;
                x->next = nv[x->hash & (ncap - 1)];
                nv[x->hash & (ncap - 1)] = x;
            }
        }
        layer_free(t->v);
        t->v = nv;
        t->cap = ncap;
    }
    l->next = t->v[l->hash & (t->cap - 1)];
    t->v[l->hash & (t->cap - 1)] = l;
    t->count++;
    return 0;
}

static void htab_unlink(htab *t, hlink *l)
{
    for (hlink **pp = &t->v[l->hash & (t->cap - 1)]; *pp != NULL;
         pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            t->count--;
            return;
        }
    }
}

static blob *btab_find(layer_blobcache *c, const char *hex)
{
    uint64_t h = hash_bytes(hex, HEX_LEN);

    for (hlink *l = htab_first(&c->btab, h); l != NULL; l = l->next) {
        blob *b = (blob *)l;

        if (l->hash == h && memcmp(b->hex, hex, HEX_LEN) == 0)
            return b;
    }
    return NULL;
}

static int btab_insert(layer_blobcache *c, blob *b)
{
    b->link.hash = hash_bytes(b->hex, HEX_LEN);
    return htab_link(&c->btab, &b->link);
}

static void btab_remove(layer_blobcache *c, blob *b)
{
    htab_unlink(&c->btab, &b->link);
}

static entry *etab_find(layer_blobcache *c, const char *key, size_t klen,
                        uint64_t h)
{
    for (hlink *l = htab_first(&c->etab, h); l != NULL; l = l->next) {
        entry *e = (entry *)l;

        if (l->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
    return NULL;
}

/* A new entry for key, inserted; NULL when out of memory. */
static entry *etab_add(layer_blobcache *c, const char *key, size_t klen,
                       uint64_t h)
{
    entry *e;

    if ((e = layer_trycalloc(1, sizeof(*e) + klen + 1)) == NULL)
        return NULL;
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->link.hash = h;
    if (htab_link(&c->etab, &e->link) < 0) {
        layer_free(e);
        return NULL;
    }
    return e;
}

/* Drop an entry that holds neither a record nor a fill. */
static void entry_maybe_free(layer_blobcache *c, entry *e)
{
    if (e->blob != NULL || e->fill != NULL)
        return;
    htab_unlink(&c->etab, &e->link);
    layer_free(e);
}

/* ---- blobs, records, LRU (c->lock held) ------------------------------ */

static void lru_unlink(layer_blobcache *c, blob *b)
{
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        c->lru_head = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    else
        c->lru_tail = b->prev;
    b->prev = b->next = NULL;
}

static void lru_append(layer_blobcache *c, blob *b)
{
    b->prev = c->lru_tail;
    b->next = NULL;
    if (c->lru_tail != NULL)
        c->lru_tail->next = b;
    else
        c->lru_head = b;
    c->lru_tail = b;
}

/* A use: the blob goes to the tail. */
static void lru_touch(layer_blobcache *c, blob *b)
{
    b->used = (int64_t)time(NULL);
    if (!b->indexed || c->lru_tail == b)
        return;
    lru_unlink(c, b);
    lru_append(c, b);
}

static void record_link(layer_blobcache *c, entry *e, blob *b)
{
    e->blob = b;
    e->bnext = b->records;
    b->records = e;
    c->nrecords++;
}

static void record_unlink(layer_blobcache *c, entry *e)
{
    entry **pp = &e->blob->records;

    for (; *pp != NULL; pp = &(*pp)->bnext) {
        if (*pp == e) {
            *pp = e->bnext;
            break;
        }
    }
    e->blob = NULL;
    e->bnext = NULL;
    c->nrecords--;
}

static void blob_maybe_free(blob *b)
{
    if (!b->indexed && b->refs == 0 && !b->victim && !b->pending)
        layer_free(b);
}

/* Take a blob out of the cache: its records go, its bytes no longer
 * count. Readers holding it keep it alive. */
static void unindex(layer_blobcache *c, blob *b)
{
    while (b->records != NULL) {
        entry *e = b->records;

        record_unlink(c, e);
        entry_maybe_free(c, e);
    }
    btab_remove(c, b);
    lru_unlink(c, b);
    c->total -= b->size;
    b->indexed = false;
}

static int index_blob(layer_blobcache *c, blob *b)
{
    if (btab_insert(c, b) < 0)
        return LAYER_ENOMEM;
    b->indexed = true;
    lru_append(c, b);
    c->total += b->size;
    return 0;
}

/* Evict unreferenced blobs, oldest first, until the total is at most
 * target; they are put on *victims for reap(). */
static void evict_locked(layer_blobcache *c, uint64_t target, blob **victims)
{
    blob *b = c->lru_head, *next;

    for (; b != NULL && c->total > target; b = next) {
        next = b->next;
        if (b->refs > 0)
            continue;
        unindex(c, b);
        b->victim = true;
        b->victim_next = *victims;
        *victims = b;
        c->st.evictions++;
    }
}

/* A reader let go of b. */
static void blob_release(layer_blobcache *c, blob *b, blob **victims)
{
    b->refs--;
    if (b->indexed) {
        lru_touch(c, b);
        if (b->refs == 0 && c->total > c->max_bytes)
            evict_locked(c, c->max_bytes, victims);
    } else {
        blob_maybe_free(b);
    }
}

/* A blob whose file turned out missing or wrong: drop it, and have
 * reap() remove whatever is under its name. */
static void blob_bad(layer_blobcache *c, blob *b, blob **victims)
{
    if (!b->indexed)
        return;
    unindex(c, b);
    c->st.dropped_records++;
    b->victim = true;
    b->victim_next = *victims;
    *victims = b;
}

/* Point e's record at b. A blob left without records leaves the cache
 * (a blob is kept only while a record names it): onto *victims to have
 * its file removed, or, with victims NULL, from memory only. */
static void record_point(layer_blobcache *c, entry *e, blob *b, blob **victims)
{
    blob *old = e->blob;

    if (old == b)
        return;
    if (old != NULL) {
        record_unlink(c, e);
        if (old->records == NULL) {
            unindex(c, old);
            if (victims != NULL) {
                old->victim = true;
                old->victim_next = *victims;
                *victims = old;
            } else {
                blob_maybe_free(old);
            }
        }
    }
    record_link(c, e, b);
}

/* ---- the journal ------------------------------------------------------ */

/* Append a record line for (e, b) to t. */
static void record_line(layer_text_buf *t, const entry *e, const blob *b)
{
    size_t start = t->len;

    layer_text_buf_addf(t, "R %.*s sha256:%s %" PRIu64 " %s %s", (int)e->klen,
                        e->key, b->hex, b->size, b->diff_id, b->media_type);
    if (t->err == 0)
        layer_text_buf_addf(
            t, " %08lx\n",
            crc32(0L, (const Bytef *)t->p + start, (uInt)(t->len - start)));
}

static void evict_line(layer_text_buf *t, const char *hex)
{
    size_t start = t->len;

    layer_text_buf_addf(t, "E sha256:%s", hex);
    if (t->err == 0)
        layer_text_buf_addf(
            t, " %08lx\n",
            crc32(0L, (const Bytef *)t->p + start, (uInt)(t->len - start)));
}

typedef struct field {
    const char *p;
    size_t n;
} field;

/* Split at single spaces; the number of fields, or 0 when there are more
 * than max or an empty one. */
static size_t split(field *f, size_t max, const char *s, size_t len)
{
    size_t nf = 0, start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ' ')
            continue;
        if (i == start || nf == max)
            return 0;
        f[nf].p = s + start;
        f[nf].n = i - start;
        nf++;
        start = i + 1;
    }
    return nf;
}

static bool field_is(const field *f, const char *s)
{
    return f->n == strlen(s) && memcmp(f->p, s, f->n) == 0;
}

static bool parse_u64(uint64_t *out, const field *f)
{
    uint64_t v = 0;

    if (f->n == 0 || f->n > 19 || (f->n > 1 && f->p[0] == '0'))
        return false;
    for (size_t i = 0; i < f->n; i++) {
        if (f->p[i] < '0' || f->p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(f->p[i] - '0');
    }
    if (v > INT64_MAX)
        return false;
    *out = v;
    return true;
}

static bool parse_level(const field *f)
{
    char buf[16], back[16];
    long v;
    char *end;

    if (f->n == 0 || f->n >= sizeof(buf))
        return false;
    memcpy(buf, f->p, f->n);
    buf[f->n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno != 0 || *end != '\0' || v < INT32_MIN || v > INT32_MAX)
        return false;
    /* canonical: what key_encode() writes */
    snprintf(back, sizeof(back), "%ld", v);
    return strcmp(back, buf) == 0;
}

/* Does the line end in a correct " <crc>"? Sets *body_len. */
static bool crc_ok(const char *line, size_t len, size_t *body_len)
{
    unsigned long want = 0;

    if (len < 10 || line[len - 9] != ' ')
        return false;
    for (size_t i = len - 8; i < len; i++) {
        int v =
            layer_text_hex_value((unsigned char)line[i], LAYER_TEXT_HEX_LOWER);

        if (v < 0)
            return false;
        want = want << 4 | (unsigned long)v;
    }
    *body_len = len - 9;
    return crc32(0L, (const Bytef *)line, (uInt)*body_len) == want;
}

/* Apply a valid R line's record (c->lock held). Returns 0, 1 when the
 * record was dropped (its blob is bad), or LAYER_ENOMEM. */
static int apply_record(layer_blobcache *c, const char *key, size_t klen,
                        const char *hex, uint64_t size, const field *diff_id,
                        const field *media)
{
    uint64_t h = hash_bytes(key, klen);
    blob *b = btab_find(c, hex);
    entry *e;

    if (b != NULL && b->size != size) {
        c->st.dropped_records++;
        return 1;
    }
    if (b == NULL) {
        /* Its file is checked at the end of the replay (check_pending()),
         * once later lines had their say: an R line whose blob a later E
         * line evicted is not a damaged record. */
        if ((b = layer_trycalloc(1, sizeof(*b))) == NULL)
            return LAYER_ENOMEM;
        memcpy(b->hex, hex, HEX_LEN);
        b->size = size;
        memcpy(b->diff_id, diff_id->p, diff_id->n);
        memcpy(b->media_type, media->p, media->n);
        if (index_blob(c, b) < 0) {
            layer_free(b);
            return LAYER_ENOMEM;
        }
        b->pending = true;
        b->pending_next = c->pending;
        c->pending = b;
    }
    b->seen = true;
    e = etab_find(c, key, klen, h);
    if (e == NULL) {
        if (c->nrecords >= LAYER_BLOBCACHE_RECORDS_MAX)
            return 1;
        if ((e = etab_add(c, key, klen, h)) == NULL)
            return LAYER_ENOMEM;
    }
    /* the old blob's file, if no record names it, is another process's
     * to remove, or open's */
    record_point(c, e, b, NULL);
    e->seen = true;
    return 0;
}

/* Apply one journal line (c->lock held). Returns 0, 1 for a line that
 * is bad or names a bad blob, or LAYER_ENOMEM. */
static int apply_line(layer_blobcache *c, const char *line, size_t len)
{
    field f[12];
    size_t body, nf;
    uint64_t size;

    if (!crc_ok(line, len, &body))
        goto bad;
    nf = split(f, 12, line, body);
    if (nf == 2 && field_is(&f[0], "E")) {
        blob *b;

        if (!digest_valid(f[1].p, f[1].n))
            goto bad;
        if ((b = btab_find(c, f[1].p + 7)) != NULL) {
            unindex(c, b);
            blob_maybe_free(b);
        }
        return 0;
    }
    if (nf != 10 || !field_is(&f[0], "R"))
        goto bad;
    if (!(field_is(&f[1], "canonical") || field_is(&f[1], "original")) ||
        !(field_is(&f[2], "none") || field_is(&f[2], "gzip") ||
          field_is(&f[2], "zstd")) ||
        !parse_level(&f[3]) ||
        !escaped_valid(f[4].p, f[4].n, LAYER_BLOBCACHE_LAYER_MAX) ||
        !escaped_valid(f[5].p, f[5].n, LAYER_BLOBCACHE_FINGERPRINT_MAX) ||
        !digest_valid(f[6].p, f[6].n) || !parse_u64(&size, &f[7]) ||
        !digest_valid(f[8].p, f[8].n) || !media_type_valid(f[9].p, f[9].n))
        goto bad;
    return apply_record(c, f[1].p, (size_t)(f[5].p + f[5].n - f[1].p),
                        f[6].p + 7, size, &f[8], &f[9]);
bad:
    c->st.torn_lines++;
    return 1;
}

/* Check the files of the blobs a replay named and that are still in the
 * cache (c->lock held): a record whose blob is missing, not a regular
 * file or of another size is dropped. The file's mtime is its last use. */
static void check_pending(layer_blobcache *c)
{
    while (c->pending != NULL) {
        blob *b = c->pending;
        char name[HEX_LEN + 1];
        struct stat st;

        c->pending = b->pending_next;
        b->pending = false;
        if (!b->indexed) {
            blob_maybe_free(b);
            continue;
        }
        memcpy(name, b->hex, sizeof(name));
        if (fstatat(c->blobsfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && (uint64_t)st.st_size == b->size) {
            b->used = (int64_t)st.st_mtime;
            continue;
        }
        for (entry *e = b->records; e != NULL; e = e->bnext)
            c->st.dropped_records++;
        unindex(c, b);
        blob_maybe_free(b);
    }
}

typedef struct replay_result {
    uint64_t lines; /* complete lines after the header */
    uint64_t bad;   /* of those, ignored */
    bool header;    /* the header was seen (replays from 0) */
} replay_result;

/* Replay the journal's complete lines from offset `from` (jlock and
 * LOCK_EX held; takes c->lock per line). Moves c->joff past the last
 * complete line. */
static int journal_replay(layer_blobcache *c, uint64_t from, replay_result *res)
{
    char *buf = layer_trymalloc(READ_CHUNK);
    uint64_t base = from; /* file offset of buf[0] */
    size_t have = 0;
    bool skipping = false; /* inside a line longer than the buffer */
    int rc = 0;

    memset(res, 0, sizeof(*res));
    if (buf == NULL)
        return LAYER_ENOMEM;
    for (;;) {
        ssize_t n =
            pread(c->jfd, buf + have, READ_CHUNK - have, (off_t)(base + have));
        size_t start = 0;
        char *nl;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno,
                                       "cache dir %s: cannot read the journal",
                                       c->dir);
            goto out;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        while ((nl = memchr(buf + start, '\n', have - start)) != NULL) {
            size_t len = (size_t)(nl - (buf + start));
            const char *line = buf + start;
            uint64_t at = base + start;

            start += len + 1;
            if (skipping) {
                skipping = false;
                res->lines++;
                res->bad++;
                pthread_mutex_lock(&c->lock);
                c->st.torn_lines++;
                pthread_mutex_unlock(&c->lock);
                continue;
            }
            if (at == 0) {
                if (len == strlen(MAGIC) && memcmp(line, MAGIC, len) == 0) {
                    res->header = true;
                    continue;
                }
                if (len >= strlen(MAGIC_ANY) &&
                    memcmp(line, MAGIC_ANY, strlen(MAGIC_ANY)) == 0) {
                    rc = layer_error_set(LAYER_EBROKEN,
                                         "cache dir %s: the journal is of an "
                                         "unknown format (\"%.*s\")",
                                         c->dir, (int)(len < 40 ? len : 40),
                                         line);
                    goto out;
                }
            }
            if (len == 0)
                continue; /* after a torn line's repair */
            res->lines++;
            pthread_mutex_lock(&c->lock);
            rc = len > LINE_MAX_BYTES ? (c->st.torn_lines++, 1)
                                      : apply_line(c, line, len);
            pthread_mutex_unlock(&c->lock);
            if (rc < 0)
                goto out;
            if (rc > 0)
                res->bad++;
            rc = 0;
        }
        if (start == 0 && have == READ_CHUNK) {
            skipping = true; /* a line longer than any we write */
            start = have;
        }
        memmove(buf, buf + start, have - start);
        base += start;
        have -= start;
    }
    c->joff = skipping ? base + have : base;
out:
    pthread_mutex_lock(&c->lock);
    check_pending(c);
    pthread_mutex_unlock(&c->lock);
    layer_free(buf);
    return rc;
}

static int journal_open(layer_blobcache *c)
{
    struct stat st;
    int fd = openat(c->dirfd, "journal",
                    O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
                        O_CLOEXEC,
                    0600);

    if (fd < 0)
        return layer_error_set_errno(
            errno == ELOOP ? LAYER_EBROKEN : LAYER_ERROR, errno,
            "cache dir %s: cannot open the journal", c->dir);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return layer_error_set(LAYER_EBROKEN,
                               "cache dir %s: the journal is not a regular "
                               "file",
                               c->dir);
    }
    if (c->jfd >= 0)
        close(c->jfd);
    c->jfd = fd;
    c->joff = 0;
    c->jsize = 0;
    c->jlines = 0;
    return 0;
}

/* Replay the whole journal into what is in memory: records and blobs it
 * does not name go (readers keep theirs). jlock and LOCK_EX held. */
static int journal_reload(layer_blobcache *c, replay_result *res)
{
    int rc;

    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->etab.cap; i++)
        for (hlink *l = c->etab.v[i]; l != NULL; l = l->next)
            ((entry *)l)->seen = false;
    for (blob *b = c->lru_head; b != NULL; b = b->next)
        b->seen = false;
    pthread_mutex_unlock(&c->lock);
    if ((rc = journal_replay(c, 0, res)) < 0)
        return rc;
    c->jlines = res->lines;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->etab.cap; i++) {
        hlink *l = c->etab.v[i], *next;

        for (; l != NULL; l = next) {
            entry *e = (entry *)l;

            next = l->next;
            if (e->blob != NULL && !e->seen) {
                record_unlink(c, e);
                entry_maybe_free(c, e);
            }
        }
    }
    for (blob *b = c->lru_head, *next; b != NULL; b = next) {
        next = b->next;
        if (!b->seen) {
            unindex(c, b);
            blob_maybe_free(b);
        }
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* Catch up with other processes' lines, or reload a journal another
 * process rewrote. jlock and LOCK_EX held. */
static int journal_sync(layer_blobcache *c)
{
    struct stat name, fdst;
    replay_result res;
    bool missing;
    int rc;

    if (fstatat(c->dirfd, "journal", &name, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT)
            return layer_error_set_errno(LAYER_ERROR, errno,
                                         "cache dir %s: cannot stat the "
                                         "journal",
                                         c->dir);
        missing = true;
    } else {
        missing = false;
    }
    if (fstat(c->jfd, &fdst) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "cache dir %s: cannot stat the journal",
                                     c->dir);
    if (missing || name.st_ino != fdst.st_ino || name.st_dev != fdst.st_dev) {
        if ((rc = journal_open(c)) < 0)
            return rc;
        if ((rc = journal_reload(c, &res)) < 0)
            return rc;
    } else if ((uint64_t)fdst.st_size > c->joff) {
        if ((rc = journal_replay(c, c->joff, &res)) < 0)
            return rc;
        c->jlines += res.lines;
    }
    if (fstat(c->jfd, &fdst) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "cache dir %s: cannot stat the journal",
                                     c->dir);
    c->jsize = (uint64_t)fdst.st_size;
    return 0;
}

static int compact(layer_blobcache *c);

/* Append lines (after catching up). jlock and LOCK_EX held. A torn tail
 * left by a dead process is ended first, so our lines start on their
 * own; an empty journal gets its header. */
static int journal_append(layer_blobcache *c, const char *data, size_t len,
                          uint64_t nlines, bool sync)
{
    struct iovec iov[2];
    struct stat st;
    size_t total;
    ssize_t n;
    int rc;

    if ((rc = journal_sync(c)) < 0)
        return rc;
    if (fstat(c->jfd, &st) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "cache dir %s: cannot stat the journal",
                                     c->dir);
    if (st.st_size == 0) {
        iov[0].iov_base = (void *)(MAGIC "\n");
        iov[0].iov_len = strlen(MAGIC) + 1;
    } else {
        iov[0].iov_base = (void *)"\n";
        iov[0].iov_len = (uint64_t)st.st_size > c->joff ? 1 : 0;
    }
    iov[1].iov_base = (void *)data;
    iov[1].iov_len = len;
    total = iov[0].iov_len + len;
    do {
        n = writev(c->jfd, iov, 2);
    } while (n < 0 && errno == EINTR);
    if (n < 0 || (size_t)n != total) {
        int err = n < 0 ? errno : EIO;

        /* A short append is a torn line: the next one repairs it. */
        return layer_error_set_errno(LAYER_ERROR, err,
                                     "cache dir %s: cannot append to the "
                                     "journal",
                                     c->dir);
    }
    if (sync && fdatasync(c->jfd) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "cache dir %s: cannot sync the journal",
                                     c->dir);
    c->joff = (uint64_t)st.st_size + total;
    c->jsize = c->joff;
    c->jlines += nlines;
    return 0;
}

/* Rewrite the journal when it has grown well past the live records.
 * jlock and LOCK_EX held, and what is in memory journaled (so not
 * between a commit's append and its indexing). */
static void maybe_compact(layer_blobcache *c)
{
    layer_error_state saved;
    size_t nrecords;

    pthread_mutex_lock(&c->lock);
    nrecords = c->nrecords;
    pthread_mutex_unlock(&c->lock);
    if (c->jlines <= 2 * (uint64_t)nrecords + COMPACT_SLACK)
        return;
    layer_error_save(&saved);
    (void)compact(c); /* a failure leaves the long journal valid */
    layer_error_restore(&saved);
}

/* Write the live records to journal.new and rename it over the journal.
 * jlock and LOCK_EX held; c->lock is taken while the records are
 * written. */
static int compact(layer_blobcache *c)
{
    layer_text_buf t =
        LAYER_TEXT_BUF_INIT(FLUSH_AT + LINE_MAX_BYTES * 2, "journal");
    uint64_t lines = 0;
    struct stat st;
    int fd = -1, rc = 0;

    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = openat(c->dirfd, "journal.new",
                    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK |
                        O_CLOEXEC,
                    0600);
        if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
            close(fd);
            fd = -1;
            errno = EINVAL;
        }
        if (fd < 0 && attempt == 0)
            remove_name(c->dirfd, "journal.new");
    }
    if (fd < 0)
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "cache dir %s: cannot create journal.new",
                                     c->dir);
    layer_text_buf_adds(&t, MAGIC "\n");
    pthread_mutex_lock(&c->lock);
    for (blob *b = c->lru_head; b != NULL && rc == 0; b = b->next) {
        for (entry *e = b->records; e != NULL && rc == 0; e = e->bnext) {
            record_line(&t, e, b);
            lines++;
            if (t.err != 0) {
                rc = t.err;
            } else if (t.len >= FLUSH_AT) {
                if (write_all(fd, t.p, t.len) < 0)
                    rc = layer_error_set_errno(LAYER_ERROR, errno,
                                               "cache dir %s: cannot write "
                                               "journal.new",
                                               c->dir);
                layer_text_buf_truncate(&t, 0);
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (rc < 0)
        goto out;
    if (t.err != 0 || write_all(fd, t.p, t.len) < 0 || fsync(fd) < 0) {
        rc = t.err != 0 ? t.err
                        : layer_error_set_errno(LAYER_ERROR, errno,
                                                "cache dir %s: cannot write "
                                                "journal.new",
                                                c->dir);
        goto out;
    }
    if (renameat(c->dirfd, "journal.new", c->dirfd, "journal") < 0 ||
        fsync(c->dirfd) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno,
                                   "cache dir %s: cannot replace the journal",
                                   c->dir);
        goto out;
    }
    if ((rc = journal_open(c)) < 0)
        goto out;
    if (fstat(c->jfd, &st) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno,
                                   "cache dir %s: cannot stat the journal",
                                   c->dir);
        goto out;
    }
    c->joff = c->jsize = (uint64_t)st.st_size;
    c->jlines = lines;
out:
    if (rc < 0)
        (void)unlinkat(c->dirfd, "journal.new", 0);
    if (fd >= 0)
        close(fd);
    layer_text_buf_dispose(&t);
    return rc;
}

/* ---- eviction's file work --------------------------------------------- */

/* Journal the victims' eviction and remove their files, then free them.
 * Called with no lock held; the caller's error is kept. A blob indexed
 * again meanwhile (a new fill of the same bytes) keeps its file. */
static void reap(layer_blobcache *c, blob *victims)
{
    layer_text_buf t = LAYER_TEXT_BUF_INIT(SIZE_MAX - 1, "journal lines");
    layer_error_state saved;
    uint64_t nlines = 0;
    bool locked;

    if (victims == NULL)
        return;
    layer_error_save(&saved);
    pthread_mutex_lock(&c->jlock);
    locked = retry_flock(c->lockfd, LOCK_EX) == 0;
    if (locked)
        (void)journal_sync(c);
    pthread_mutex_lock(&c->lock);
    for (blob *v = victims; v != NULL; v = v->victim_next) {
        v->unlink = btab_find(c, v->hex) == NULL;
        if (v->unlink) {
            evict_line(&t, v->hex);
            nlines++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    /* Lines first: a lost unlink leaves a blob without record (removed
     * at open), never a record without its journal line. */
    if (locked && nlines > 0 && t.err == 0 &&
        journal_append(c, t.p, t.len, nlines, false) == 0)
        maybe_compact(c);
    for (blob *v = victims; v != NULL; v = v->victim_next)
        if (v->unlink)
            remove_name(c->blobsfd, v->hex);
    if (locked)
        (void)retry_flock(c->lockfd, LOCK_UN);
    pthread_mutex_unlock(&c->jlock);
    pthread_mutex_lock(&c->lock);
    while (victims != NULL) {
        blob *v = victims;

        victims = v->victim_next;
        v->victim = false;
        blob_maybe_free(v);
    }
    pthread_mutex_unlock(&c->lock);
    layer_text_buf_dispose(&t);
    layer_error_restore(&saved);
}

/* ---- open and free ---------------------------------------------------- */

static void cache_destroy(layer_blobcache *c)
{
    for (size_t i = 0; i < c->etab.cap; i++) {
        hlink *l = c->etab.v[i], *next;

        for (; l != NULL; l = next) {
            next = l->next;
            layer_free(l);
        }
    }
    while (c->lru_head != NULL) {
        blob *b = c->lru_head;

        c->lru_head = b->next;
        layer_free(b);
    }
    layer_free(c->etab.v);
    layer_free(c->btab.v);
    if (c->jfd >= 0)
        close(c->jfd);
    if (c->lockfd >= 0)
        close(c->lockfd);
    if (c->tmpfd >= 0)
        close(c->tmpfd);
    if (c->blobsfd >= 0)
        close(c->blobsfd);
    if (c->dirfd >= 0)
        close(c->dirfd);
    pthread_mutex_destroy(&c->jlock);
    pthread_mutex_destroy(&c->lock);
    layer_free(c->dir);
    layer_free(c);
}

/* Drop a reference to the cache (c->lock held); true when it was the
 * last, and the caller must destroy the cache after unlocking. */
static bool cache_unref(layer_blobcache *c)
{
    return --c->refs == 0;
}

/* Drop a reference to the cache, destroying it with the last. Nothing
 * may use c after this but the thread that destroys it. */
static void cache_release(layer_blobcache *c)
{
    bool last;

    pthread_mutex_lock(&c->lock);
    last = cache_unref(c);
    pthread_mutex_unlock(&c->lock);
    if (last)
        cache_destroy(c);
}

/* Create (0700) and open a directory below parent, never through a
 * symlink. */
static int open_subdir(int *out, layer_blobcache *c, int parent,
                       const char *name, const char *what)
{
    int fd;

    if (mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
        return layer_error_set_errno(
            LAYER_ERROR, errno, "cache dir %s: cannot create %s", c->dir, what);
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            return layer_error_set(LAYER_EBROKEN,
                                   "cache dir %s: %s is not a directory (a "
                                   "symlink or a file is in its place)",
                                   c->dir, what);
        return layer_error_set_errno(
            LAYER_ERROR, errno, "cache dir %s: cannot open %s", c->dir, what);
    }
    *out = fd;
    return 0;
}

/* A DIR stream over a directory fd, leaving the fd open. */
static DIR *dir_stream(int dfd)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;

    if (fd < 0)
        return NULL;
    if ((d = fdopendir(fd)) == NULL)
        close(fd);
    return d;
}

/* List the directory dfd (the cache's sub-directory name). */
static int list_open(DIR **out, const layer_blobcache *c, int dfd,
                     const char *name)
{
    if ((*out = dir_stream(dfd)) == NULL)
        return layer_error_set_errno(
            LAYER_ERROR, errno, "cache dir %s: cannot list %s", c->dir, name);
    return 0;
}

/* The next name of a listing but "." and "..", or NULL at its end. */
static const char *list_next(DIR *d)
{
    struct dirent *de;

    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            return de->d_name;
    return NULL;
}

/* Remove the files of dead fills: a live filler holds a lock on its
 * file. LOCK_EX on the lock file held, so no fill is being created. */
static int clean_temps(layer_blobcache *c)
{
    const char *n;
    DIR *d;
    int rc;

    if ((rc = list_open(&d, c, c->tmpfd, "tmp")) < 0)
        return rc;
    while ((n = list_next(d)) != NULL) {
        struct stat st;
        int fd;

        if (fstatat(c->tmpfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode)) {
            fd = openat(c->tmpfd, n,
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0)
                continue;
            if (flock(fd, LOCK_EX | LOCK_NB) == 0 &&
                unlinkat(c->tmpfd, n, 0) == 0)
                c->st.removed_temps++;
            close(fd);
        } else {
            remove_name(c->tmpfd, n);
            c->st.removed_temps++;
        }
    }
    closedir(d);
    return 0;
}

/* Remove what in blobs/sha256 no record names. */
static int remove_orphans(layer_blobcache *c)
{
    const char *n;
    DIR *d;
    int rc;

    if ((rc = list_open(&d, c, c->blobsfd, "blobs")) < 0)
        return rc;
    while ((n = list_next(d)) != NULL) {
        if (strlen(n) == HEX_LEN && is_hex64(n) && btab_find(c, n) != NULL)
            continue;
        remove_name(c->blobsfd, n);
        c->st.removed_orphans++;
    }
    closedir(d);
    return 0;
}

static int cmp_used(const void *a, const void *b)
{
    const blob *x = *(blob *const *)a, *y = *(blob *const *)b;

    return x->used < y->used ? -1 : x->used > y->used;
}

/* Order the LRU list by last use (the files' mtimes), oldest first. */
static int lru_sort(layer_blobcache *c)
{
    blob **v;
    size_t n = 0;

    if (c->btab.count == 0)
        return 0;
    if ((v = layer_trycalloc(c->btab.count, sizeof(*v))) == NULL)
        return LAYER_ENOMEM;
    for (blob *b = c->lru_head; b != NULL; b = b->next)
        v[n++] = b;
    /* mergesort would keep journal order among equal times; qsort does
     * not, and any order among blobs used in the same second is fine */
    qsort(v, n, sizeof(*v), cmp_used);
    c->lru_head = c->lru_tail = NULL;
    for (size_t i = 0; i < n; i++)
        lru_append(c, v[i]);
    layer_free(v);
    return 0;
}

/* Recovery: jlock and LOCK_EX held, no other thread yet. */
static int recover(layer_blobcache *c)
{
    replay_result res;
    blob *victims = NULL;
    struct stat st;
    bool rewrite;
    int rc;

    if ((rc = clean_temps(c)) < 0)
        return rc;
    if ((rc = journal_open(c)) < 0)
        return rc;
    if ((rc = journal_reload(c, &res)) < 0)
        return rc;
    if (fstat(c->jfd, &st) < 0)
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "cache dir %s: cannot stat the journal",
                                     c->dir);
    pthread_mutex_lock(&c->lock);
    rc = remove_orphans(c);
    if (rc == 0)
        rc = lru_sort(c);
    if (rc == 0)
        evict_locked(c, c->max_bytes, &victims);
    /* Rewrite unless the journal is exactly the header and the live
     * records: so that opening a healthy cache (`layerd cache ls` next
     * to a server) changes nothing. */
    rewrite = !res.header || res.bad > 0 || victims != NULL ||
              (uint64_t)st.st_size != c->joff || res.lines != c->nrecords;
    while (victims != NULL) {
        blob *v = victims;

        victims = v->victim_next;
        remove_name(c->blobsfd, v->hex);
        v->victim = false;
        blob_maybe_free(v);
    }
    pthread_mutex_unlock(&c->lock);
    if (rc < 0)
        return rc;
    if (rewrite)
        return compact(c);
    c->jsize = (uint64_t)st.st_size;
    return 0;
}

int layer_blobcache_open(layer_blobcache **out, const char *dir,
                         const layer_blobcache_opts *opts)
{
    layer_blobcache *c;
    struct stat st;
    int blobsdir = -1, rc = 0;

    if (dir == NULL || dir[0] == '\0')
        return layer_error_set(LAYER_EINVALID, "no cache dir given");
    if ((c = layer_trycalloc(1, sizeof(*c))) == NULL)
        return LAYER_ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->jlock, NULL);
    c->refs = 1;
    c->dirfd = c->blobsfd = c->tmpfd = c->lockfd = c->jfd = -1;
    c->max_bytes = opts != NULL && opts->max_bytes != 0
                       ? opts->max_bytes
                       : LAYER_BLOBCACHE_DEFAULT_MAX;
    atomic_init(&c->seq, 0);
    atomic_init(&c->bytes_read, 0);
    if ((c->dir = layer_trystrdup(dir)) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        rc = layer_error_set_errno(errno == ENOENT ? LAYER_ENOTFOUND
                                                   : LAYER_ERROR,
                                   errno, "cannot create cache dir %s", dir);
        goto out;
    }
    if ((c->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = layer_error_set_errno(errno == ENOTDIR ? LAYER_EBROKEN
                                                    : LAYER_ERROR,
                                   errno, "cannot open cache dir %s", dir);
        goto out;
    }
    if (fstat(c->dirfd, &st) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno,
                                   "cannot stat cache dir %s", dir);
        goto out;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
        rc = layer_error_set(LAYER_EBROKEN,
                             "cache dir %s must be owned by uid %u and not "
                             "writable by group or others (it is uid %u, "
                             "mode %03o)",
                             dir, (unsigned)geteuid(), (unsigned)st.st_uid,
                             (unsigned)(st.st_mode & 0777));
        goto out;
    }
    if ((rc = open_subdir(&blobsdir, c, c->dirfd, "blobs", "blobs")) < 0 ||
        (rc = open_subdir(&c->blobsfd, c, blobsdir, "sha256", "blobs/sha256")) <
            0 ||
        (rc = open_subdir(&c->tmpfd, c, c->dirfd, "tmp", "tmp")) < 0)
        goto out;
    c->lockfd =
        openat(c->dirfd, "lock",
               O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (c->lockfd < 0 || fstat(c->lockfd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = c->lockfd < 0 && errno != ELOOP
                 ? layer_error_set_errno(LAYER_ERROR, errno,
                                         "cache dir %s: cannot open the lock "
                                         "file",
                                         dir)
                 : layer_error_set(LAYER_EBROKEN,
                                   "cache dir %s: the lock file is not a "
                                   "regular file",
                                   dir);
        goto out;
    }
    pthread_mutex_lock(&c->jlock);
    if (retry_flock(c->lockfd, LOCK_EX) < 0) {
        pthread_mutex_unlock(&c->jlock);
        rc = layer_error_set_errno(LAYER_ERROR, errno,
                                   "cache dir %s: cannot lock", dir);
        goto out;
    }
    rc = recover(c);
    (void)retry_flock(c->lockfd, LOCK_UN);
    pthread_mutex_unlock(&c->jlock);
out:
    if (blobsdir >= 0)
        close(blobsdir);
    if (rc < 0) {
        cache_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

void layer_blobcache_free(layer_blobcache *c)
{
    if (c != NULL)
        cache_release(c);
}

/* Catch up with other processes' journal lines, if there are any. */
static void refresh(layer_blobcache *c)
{
    layer_error_state saved;
    struct stat a, b;
    bool changed;

    pthread_mutex_lock(&c->jlock);
    changed = fstatat(c->dirfd, "journal", &a, AT_SYMLINK_NOFOLLOW) < 0 ||
              fstat(c->jfd, &b) < 0 || a.st_ino != b.st_ino ||
              a.st_dev != b.st_dev || (uint64_t)b.st_size != c->jsize;
    if (changed) {
        layer_error_save(&saved);
        if (retry_flock(c->lockfd, LOCK_EX) == 0) {
            (void)journal_sync(c);
            (void)retry_flock(c->lockfd, LOCK_UN);
        }
        layer_error_restore(&saved);
    }
    pthread_mutex_unlock(&c->jlock);
}

/* ---- readers ---------------------------------------------------------- */

const char *layer_blobcache_role_name(layer_blobcache_role role)
{
    switch (role) {
    case LAYER_BLOBCACHE_HIT:
        return "hit";
    case LAYER_BLOBCACHE_FILL:
        return "fill";
    case LAYER_BLOBCACHE_WAIT:
        return "wait";
    case LAYER_BLOBCACHE_BYPASS:
        break;
    }
    return "bypass";
}

static void blob_info(layer_blobcache_info *out, const blob *b)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->digest, sizeof(out->digest), "sha256:%s", b->hex);
    snprintf(out->diff_id, sizeof(out->diff_id), "%s", b->diff_id);
    snprintf(out->media_type, sizeof(out->media_type), "%s", b->media_type);
    out->size = b->size;
}

/* A reader over b, on which the caller took a reference (and one on the
 * cache). On failure both are given back; LAYER_ENOTFOUND means the
 * blob's file was missing or wrong and the blob was dropped. */
static int open_blob(layer_blobcache_reader **out, layer_blobcache *c, blob *b)
{
    static const struct timespec now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    layer_blobcache_reader *r = NULL;
    blob *victims = NULL;
    struct stat st;
    bool bad = false;
    int fd, rc = 0;

    fd = openat(c->blobsfd, b->hex,
                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        bad = errno == ENOENT || errno == ELOOP;
        rc = bad ? layer_error_set(LAYER_ENOTFOUND,
                                   "cache dir %s: blob %s is gone", c->dir,
                                   b->hex)
                 : layer_error_set_errno(LAYER_ERROR, errno,
                                         "cache dir %s: cannot open blob %s",
                                         c->dir, b->hex);
    } else if (fstat(fd, &st) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno,
                                   "cache dir %s: cannot stat blob %s", c->dir,
                                   b->hex);
    } else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != b->size) {
        bad = true;
        rc = layer_error_set(LAYER_ENOTFOUND,
                             "cache dir %s: blob %s is not the file recorded",
                             c->dir, b->hex);
    } else if ((r = layer_trycalloc(1, sizeof(*r))) == NULL) {
        rc = LAYER_ENOMEM;
    }
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        pthread_mutex_lock(&c->lock);
        if (bad)
            blob_bad(c, b, &victims);
        blob_release(c, b, &victims);
        pthread_mutex_unlock(&c->lock);
        reap(c, victims); /* with our reference: c is alive */
        cache_release(c);
        return rc;
    }
    (void)futimens(fd, now); /* the last use, for the LRU across runs */
    r->c = c;
    r->blob = b;
    r->fd = fd;
    r->end = b->size;
    blob_info(&r->info, b);
    *out = r;
    return 0;
}

int layer_blobcache_open_digest(layer_blobcache_reader **out,
                                layer_blobcache *c, const char *digest)
{
    size_t len = digest != NULL ? strnlen(digest, 80) : 0;
    int rc = LAYER_ENOTFOUND;

    if (!digest_valid(digest, len))
        return layer_error_set(LAYER_EINVALID, "not a sha256 digest: %.80s",
                               digest != NULL ? digest : "(null)");
    for (int attempt = 0; attempt < GET_ATTEMPTS; attempt++) {
        blob *b;

        pthread_mutex_lock(&c->lock);
        b = btab_find(c, digest + 7);
        if (b == NULL) {
            pthread_mutex_unlock(&c->lock);
            if (attempt > 0)
                break;
            refresh(c); /* another process may have it */
            continue;
        }
        b->refs++;
        c->refs++;
        lru_touch(c, b);
        c->st.digest_hits++;
        pthread_mutex_unlock(&c->lock);
        if ((rc = open_blob(out, c, b)) != LAYER_ENOTFOUND)
            return rc;
        pthread_mutex_lock(&c->lock);
        c->st.digest_hits--;
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_lock(&c->lock);
    c->st.digest_misses++;
    pthread_mutex_unlock(&c->lock);
    return layer_error_set(LAYER_ENOTFOUND, "blob %s is not in the cache",
                           digest);
}

int layer_blobcache_reader_range(layer_blobcache_reader *r, uint64_t offset,
                                 uint64_t length)
{
    if (r->started)
        return layer_error_set(LAYER_EINVALID,
                               "a range must be set before the first read");
    if (r->blob != NULL) {
        if (offset > r->blob->size)
            return layer_error_set(LAYER_EINVALID,
                                   "range starts at %" PRIu64
                                   ", past the blob's %" PRIu64 " bytes",
                                   offset, r->blob->size);
        r->off = offset;
        r->end =
            offset +
            (length < r->blob->size - offset ? length : r->blob->size - offset);
        return 0;
    }
    r->off = offset;
    r->end = length > UINT64_MAX - offset ? UINT64_MAX : offset + length;
    return 0;
}

static int read_blob(size_t *out_n, layer_blobcache_reader *r, void *buf,
                     size_t cap)
{
    size_t want;
    ssize_t n;

    if (r->off >= r->end)
        return LAYER_ITEROVER;
    want = r->end - r->off < cap ? (size_t)(r->end - r->off) : cap;
    n = pread_full(r->fd, buf, want, r->off);
    if (n < 0)
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "cache dir %s: cannot read blob %s",
                                     r->c->dir, r->blob->hex);
    if ((size_t)n < want)
        return layer_error_set(LAYER_EBROKEN,
                               "cache dir %s: blob %s shrank while it was "
                               "read",
                               r->c->dir, r->blob->hex);
    r->off += (uint64_t)n;
    atomic_fetch_add_explicit(&r->c->bytes_read, (uint64_t)n,
                              memory_order_relaxed);
    *out_n = (size_t)n;
    return 0;
}

static int read_fill(size_t *out_n, layer_blobcache_reader *r, void *buf,
                     size_t cap, unsigned flags)
{
    layer_blobcache *c = r->c;
    fill *f = r->fill;
    uint64_t limit;
    size_t want;
    ssize_t n;
    int fd;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        if (f->state == FILL_FAILED) {
            int code = f->err.code;

            layer_error_restore(&f->err);
            pthread_mutex_unlock(&c->lock);
            return code;
        }
        limit = f->written < r->end ? f->written : r->end;
        if (r->off < limit)
            break;
        if (f->state == FILL_DONE) {
            pthread_mutex_unlock(&c->lock);
            if (r->off > f->written)
                return layer_error_set(LAYER_EINVALID,
                                       "range starts at %" PRIu64
                                       ", past the blob's %" PRIu64 " bytes",
                                       r->off, f->written);
            return LAYER_ITEROVER;
        }
        if (r->off >= r->end) {
            pthread_mutex_unlock(&c->lock);
            return LAYER_ITEROVER;
        }
        if (flags & LAYER_BLOBCACHE_NONBLOCK) {
            if (!r->armed) {
                r->armed = true;
                f->narmed++;
            }
            pthread_mutex_unlock(&c->lock);
            return LAYER_EAGAIN;
        }
        f->nblocked++;
        pthread_cond_wait(&f->cond, &c->lock);
        f->nblocked--;
    }
    fd = f->fd;
    pthread_mutex_unlock(&c->lock);
    want = limit - r->off < cap ? (size_t)(limit - r->off) : cap;
    n = pread_full(fd, buf, want, r->off);
    if (n < 0)
        return layer_error_set_errno(
            LAYER_ERROR, errno, "cache dir %s: cannot read a fill", c->dir);
    if ((size_t)n < want)
        return layer_error_set(LAYER_EBROKEN,
                               "cache dir %s: a fill's file shrank", c->dir);
    r->off += (uint64_t)n;
    atomic_fetch_add_explicit(&c->bytes_read, (uint64_t)n,
                              memory_order_relaxed);
    *out_n = (size_t)n;
    return 0;
}

int layer_blobcache_read(size_t *out_n, layer_blobcache_reader *r, void *buf,
                         size_t cap, unsigned flags)
{
    if (cap == 0)
        return layer_error_set(LAYER_EINVALID, "cache read of 0 bytes");
    r->started = true;
    if (r->blob != NULL)
        return read_blob(out_n, r, buf, cap);
    return read_fill(out_n, r, buf, cap, flags);
}

void layer_blobcache_reader_set_notify(layer_blobcache_reader *r,
                                       void (*fn)(void *arg), void *arg)
{
    layer_blobcache *c = r->c;
    bool fire;

    pthread_mutex_lock(&c->lock);
    r->fn = fn;
    r->arg = arg;
    fire = fn != NULL && r->pending;
    if (fire)
        r->pending = false;
    pthread_mutex_unlock(&c->lock);
    if (fire)
        fn(arg);
}

int layer_blobcache_reader_info(layer_blobcache_info *out,
                                layer_blobcache_reader *r)
{
    layer_blobcache *c = r->c;
    int rc = 0;

    if (r->blob != NULL) {
        *out = r->info;
        return 0;
    }
    pthread_mutex_lock(&c->lock);
    if (r->fill->state == FILL_DONE) {
        *out = r->fill->info;
    } else if (r->fill->state == FILL_FAILED) {
        rc = r->fill->err.code;
        layer_error_restore(&r->fill->err);
    } else {
        rc = LAYER_EAGAIN;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void fill_free(fill *f)
{
    if (f->fd >= 0)
        close(f->fd);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->notify_lock);
    layer_free(f);
}

void layer_blobcache_reader_free(layer_blobcache_reader *r)
{
    layer_blobcache *c;
    blob *victims = NULL;
    bool last_fill = false;

    if (r == NULL)
        return;
    c = r->c;
    if (r->blob != NULL) {
        close(r->fd);
        pthread_mutex_lock(&c->lock);
        blob_release(c, r->blob, &victims);
        pthread_mutex_unlock(&c->lock);
    } else {
        fill *f = r->fill;

        /* notify_lock: no callback of ours is running or will run */
        pthread_mutex_lock(&f->notify_lock);
        pthread_mutex_lock(&c->lock);
        if (r->prev != NULL)
            r->prev->next = r->next;
        else
            f->readers = r->next;
        if (r->next != NULL)
            r->next->prev = r->prev;
        f->nreaders--;
        if (r->armed)
            f->narmed--;
        if (f->blob != NULL)
            blob_release(c, f->blob, &victims);
        /* Let go of notify_lock before the reference: once another
         * holder may free the fill, its lock must not be ours. */
        pthread_mutex_unlock(&f->notify_lock);
        last_fill = --f->refs == 0;
        pthread_mutex_unlock(&c->lock);
        if (last_fill)
            fill_free(f);
    }
    layer_free(r);
    reap(c, victims); /* with our reference: c is alive */
    cache_release(c);
}

/* ---- fills ------------------------------------------------------------ */

/* Wake the fill's blocked readers and call the armed callbacks (no
 * cache lock held; see the top of the file). */
static void wake_readers(layer_blobcache *c, fill *f)
{
    bool armed;

    pthread_mutex_lock(&c->lock);
    if (f->nblocked > 0)
        pthread_cond_broadcast(&f->cond);
    armed = f->narmed > 0;
    pthread_mutex_unlock(&c->lock);
    if (!armed)
        return;
    pthread_mutex_lock(&f->notify_lock);
    pthread_mutex_lock(&c->lock);
    for (layer_blobcache_reader *r = f->readers; r != NULL; r = r->next) {
        if (!r->armed)
            continue;
        r->armed = false;
        f->narmed--;
        if (r->fn != NULL) {
            r->fire_fn = r->fn;
            r->fire_arg = r->arg;
        } else {
            r->pending = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
    for (layer_blobcache_reader *r = f->readers; r != NULL; r = r->next) {
        if (r->fire_fn != NULL) {
            void (*fn)(void *) = r->fire_fn;

            r->fire_fn = NULL;
            fn(r->fire_arg);
        }
    }
    pthread_mutex_unlock(&f->notify_lock);
}

/* Attach a reader to f, on which the caller took a reference (and one on
 * the cache). */
static int attach_reader(layer_blobcache_reader **out, layer_blobcache *c,
                         fill *f)
{
    layer_blobcache_reader *r = layer_trycalloc(1, sizeof(*r));
    bool last_fill, last;

    if (r == NULL) {
        pthread_mutex_lock(&c->lock);
        last_fill = --f->refs == 0;
        last = cache_unref(c);
        pthread_mutex_unlock(&c->lock);
        if (last_fill)
            fill_free(f);
        if (last)
            cache_destroy(c);
        return LAYER_ENOMEM;
    }
    r->c = c;
    r->fill = f;
    r->fd = -1;
    r->end = UINT64_MAX;
    pthread_mutex_lock(&f->notify_lock);
    pthread_mutex_lock(&c->lock);
    r->next = f->readers;
    if (f->readers != NULL)
        f->readers->prev = r;
    f->readers = r;
    f->nreaders++;
    if (f->blob != NULL)
        f->blob->refs++;
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_unlock(&f->notify_lock);
    *out = r;
    return 0;
}

/* End a fill in failure (c->lock held): readers get `err`, the key is
 * missing again, the bytes no longer count. */
static void fail_locked(layer_blobcache *c, fill *f,
                        const layer_error_state *err)
{
    if (f->state != FILL_RUNNING)
        return;
    f->state = FILL_FAILED;
    f->err = *err;
    if (f->entry != NULL) {
        f->entry->fill = NULL;
        entry_maybe_free(c, f->entry);
        f->entry = NULL;
    }
    c->total -= f->written;
    c->st.aborts++;
}

static void writer_release(layer_blobcache_writer *w)
{
    layer_blobcache *c = w->c;
    fill *f = w->f;
    bool last_fill, last;

    pthread_mutex_lock(&c->lock);
    last_fill = --f->refs == 0;
    last = cache_unref(c);
    pthread_mutex_unlock(&c->lock);
    if (last_fill)
        fill_free(f);
    layer_digest_dispose(&w->digest);
    layer_free(w);
    if (last)
        cache_destroy(c);
}

/* Fail the fill with the message `fmt`, remove its file, wake and
 * release. Keeps the caller's error. */
static void fail_fill(layer_blobcache_writer *w, const char *why)
{
    layer_blobcache *c = w->c;
    fill *f = w->f;
    layer_error_state saved, err;
    char name[sizeof(f->tmpname)];

    layer_error_save(&saved);
    layer_error_set(LAYER_ECANCELED, "the fill of this blob was abandoned: %s",
                    why != NULL ? why : "no reason given");
    layer_error_save(&err);
    layer_error_restore(&saved);
    pthread_mutex_lock(&c->lock);
    fail_locked(c, f, &err);
    memcpy(name, f->tmpname, sizeof(name));
    pthread_mutex_unlock(&c->lock);
    if (name[0] != '\0')
        (void)unlinkat(c->tmpfd, name, 0);
    wake_readers(c, f);
}

/* Create the fill's file: under LOCK_SH on the lock file, so that an
 * open's clean-up (LOCK_EX) never sees it before it is locked. */
static int create_fill_file(layer_blobcache *c, fill *f)
{
    char name[sizeof(f->tmpname)];
    int lfd, fd = -1, rc = 0;

    lfd =
        openat(c->dirfd, "lock", O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (lfd < 0 || retry_flock(lfd, LOCK_SH) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno,
                                   "cache dir %s: cannot lock", c->dir);
        goto out;
    }
    for (int i = 0; i < TEMP_ATTEMPTS; i++) {
        snprintf(name, sizeof(name), "%ld-%u.fill", (long)getpid(),
                 atomic_fetch_add(&c->seq, 1));
        fd = openat(c->tmpfd, name,
                    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno,
                                   "cache dir %s: cannot create a file in tmp",
                                   c->dir);
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno,
                                   "cache dir %s: cannot lock tmp/%s", c->dir,
                                   name);
        (void)unlinkat(c->tmpfd, name, 0);
        close(fd);
        goto out;
    }
    pthread_mutex_lock(&c->lock);
    f->fd = fd;
    memcpy(f->tmpname, name, sizeof(name));
    pthread_mutex_unlock(&c->lock);
out:
    if (lfd >= 0)
        close(lfd);
    return rc;
}

/* Become the filler of entry e (c->lock held; e has no record or fill).
 * On success the fill is in e and *out holds the writer, whose file is
 * created after the lock is released. */
static int start_fill(layer_blobcache_writer **out, layer_blobcache *c,
                      entry *e, layer_compression compression)
{
    layer_blobcache_writer *w = layer_trycalloc(1, sizeof(*w));
    fill *f = layer_trycalloc(1, sizeof(*f));

    if (w == NULL || f == NULL) {
        layer_free(w);
        layer_free(f);
        return LAYER_ENOMEM;
    }
    pthread_mutex_init(&f->notify_lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->fd = -1;
    f->refs = 1;
    f->entry = e;
    f->compression = compression;
    e->fill = f;
    c->refs++;
    w->c = c;
    w->f = f;
    *out = w;
    return 0;
}

int layer_blobcache_get(layer_blobcache_lookup *out, layer_blobcache *c,
                        const layer_blobcache_key *key, unsigned flags)
{
    char kbuf[KEY_SIZE];
    size_t klen = 0;
    uint64_t h;
    bool refreshed = false;
    int rc;

    memset(out, 0, sizeof(*out));
    if (c == NULL)
        return 0;
    if (flags & LAYER_BLOBCACHE_GET_BYPASS) {
        pthread_mutex_lock(&c->lock);
        c->st.bypasses++;
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    if ((rc = key_encode(kbuf, &klen, key)) < 0)
        return rc;
    h = hash_bytes(kbuf, klen);
    for (int attempt = 0; attempt < GET_ATTEMPTS; attempt++) {
        layer_blobcache_writer *w;
        entry *e;

        pthread_mutex_lock(&c->lock);
        e = etab_find(c, kbuf, klen, h);
        if (e != NULL && e->blob != NULL) {
            blob *b = e->blob;

            b->refs++;
            c->refs++;
            lru_touch(c, b);
            c->st.hits++;
            pthread_mutex_unlock(&c->lock);
            rc = open_blob(&out->reader, c, b);
            if (rc == 0)
                out->role = LAYER_BLOBCACHE_HIT;
            if (rc != LAYER_ENOTFOUND)
                return rc;
            pthread_mutex_lock(&c->lock);
            c->st.hits--;
            pthread_mutex_unlock(&c->lock);
            continue; /* the blob was dropped: now a miss */
        }
        if (e != NULL && e->fill != NULL) {
            fill *f = e->fill;

            f->refs++;
            c->refs++;
            c->st.waits++;
            pthread_mutex_unlock(&c->lock);
            if ((rc = attach_reader(&out->reader, c, f)) == 0)
                out->role = LAYER_BLOBCACHE_WAIT;
            return rc;
        }
        if (!refreshed) {
            pthread_mutex_unlock(&c->lock);
            refreshed = true;
            refresh(c); /* another process may have filled it */
            attempt--;
            continue;
        }
        c->st.misses++;
        if (flags & LAYER_BLOBCACHE_GET_NOFILL) {
            pthread_mutex_unlock(&c->lock);
            return layer_error_set(LAYER_ENOTFOUND,
                                   "the blob is not in the cache");
        }
        if (e == NULL && (e = etab_add(c, kbuf, klen, h)) == NULL) {
            pthread_mutex_unlock(&c->lock);
            return LAYER_ENOMEM;
        }
        if ((rc = start_fill(&w, c, e, key->compression)) < 0) {
            entry_maybe_free(c, e);
            pthread_mutex_unlock(&c->lock);
            return rc;
        }
        c->st.fills++;
        pthread_mutex_unlock(&c->lock);
        if ((rc = layer_digest_init(&w->digest)) < 0 ||
            (rc = create_fill_file(c, w->f)) < 0) {
            fail_fill(w, layer_error_last());
            writer_release(w);
            return rc;
        }
        out->role = LAYER_BLOBCACHE_FILL;
        out->writer = w;
        return 0;
    }
    return layer_error_set(LAYER_ERROR, "cache dir %s: the blob kept vanishing",
                           c->dir);
}

int layer_blobcache_write(layer_blobcache_writer *w, const void *buf,
                          size_t len)
{
    layer_blobcache *c = w->c;
    fill *f = w->f;
    blob *victims = NULL;
    int rc;

    if (w->failed)
        return layer_error_set(LAYER_ECLOSED,
                               "an earlier write to this fill failed");
    if (len == 0)
        return 0;
    if (write_all(f->fd, buf, len) < 0) {
        w->failed = true;
        return layer_error_set_errno(LAYER_ERROR, errno,
                                     "cache dir %s: cannot write tmp/%s",
                                     c->dir, f->tmpname);
    }
    if (!w->given && (rc = layer_digest_update(&w->digest, buf, len)) < 0) {
        w->failed = true;
        return rc;
    }
    pthread_mutex_lock(&c->lock);
    f->written += len;
    c->total += len;
    c->st.bytes_written += len;
    if (c->total > c->max_bytes)
        evict_locked(c, c->max_bytes, &victims);
    pthread_mutex_unlock(&c->lock);
    wake_readers(c, f);
    reap(c, victims);
    return 0;
}

int layer_blobcache_writer_given(layer_blobcache_writer *w)
{
    bool started;

    if (w->given)
        return 0;
    pthread_mutex_lock(&w->c->lock);
    started = w->f->written != 0;
    pthread_mutex_unlock(&w->c->lock);
    if (started)
        return layer_error_set(LAYER_EINVALID,
                               "the fill's digest can be given only before "
                               "its first byte");
    w->given = true;
    layer_digest_dispose(&w->digest);
    return 0;
}

unsigned layer_blobcache_writer_readers(layer_blobcache_writer *w)
{
    unsigned n;

    pthread_mutex_lock(&w->c->lock);
    n = w->f->nreaders;
    pthread_mutex_unlock(&w->c->lock);
    return n;
}

void layer_blobcache_abort(layer_blobcache_writer *w, const char *why)
{
    if (w == NULL)
        return;
    fail_fill(w, why);
    writer_release(w);
}

/* Check info against the bytes written and complete it. */
static int check_info(layer_blobcache_info *out,
                      const layer_blobcache_writer *w,
                      const layer_blobcache_info *info, const char *digest)
{
    const fill *f = w->f;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (info->size != f->written)
        return layer_error_set(LAYER_EINVALID,
                               "the blob was said to be %" PRIu64
                               " bytes, %" PRIu64 " were written",
                               info->size, f->written);
    n = strnlen(info->digest, sizeof(info->digest));
    if (n != 0 && (n != strlen(digest) || memcmp(info->digest, digest, n) != 0))
        return layer_error_set(LAYER_EINVALID,
                               "the blob was said to be %.72s, its bytes are "
                               "%s",
                               info->digest, digest);
    snprintf(out->digest, sizeof(out->digest), "%s", digest);
    n = strnlen(info->diff_id, sizeof(info->diff_id));
    if (n == 0 && f->compression == LAYER_COMPRESSION_NONE)
        snprintf(out->diff_id, sizeof(out->diff_id), "%s", digest);
    else if (digest_valid(info->diff_id, n))
        memcpy(out->diff_id, info->diff_id, n);
    else
        return layer_error_set(LAYER_EINVALID, "no valid diff ID for the "
                                               "blob");
    n = strnlen(info->media_type, sizeof(info->media_type));
    if (n == 0)
        snprintf(out->media_type, sizeof(out->media_type), "%s",
                 layer_compression_media_type(f->compression));
    else if (media_type_valid(info->media_type, n))
        memcpy(out->media_type, info->media_type, n);
    else
        return layer_error_set(LAYER_EINVALID, "bad media type for the blob");
    out->size = f->written;
    return 0;
}

int layer_blobcache_commit(layer_blobcache_writer *w,
                           const layer_blobcache_info *info)
{
    layer_blobcache *c = w->c;
    fill *f = w->f;
    layer_text_buf line = LAYER_TEXT_BUF_INIT(LINE_MAX_BYTES, "journal line");
    layer_blobcache_info fin;
    char digest[LAYER_DIGEST_STR_SIZE];
    const char *hex = digest + 7;
    blob *victims = NULL, *b = NULL, *nb = NULL;
    bool keep, existing = false, renamed = false, locked = false;
    int rc;

    if (w->failed) {
        rc = layer_error_set(LAYER_ECLOSED,
                             "an earlier write to this fill failed");
        goto fail;
    }
    if (w->given) {
        size_t n = strnlen(info->digest, sizeof(info->digest));

        if (!digest_valid(info->digest, n)) {
            rc = layer_error_set(LAYER_EINVALID,
                                 "the fill's digest was to be given: no "
                                 "valid digest for the blob");
            goto fail;
        }
        memcpy(digest, info->digest, n);
        digest[n] = '\0';
    } else if ((rc = layer_digest_final(digest, &w->digest)) < 0) {
        goto fail;
    }
    if ((rc = check_info(&fin, w, info, digest)) < 0)
        goto fail;
    if (fsync(f->fd) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno,
                                   "cache dir %s: cannot sync tmp/%s", c->dir,
                                   f->tmpname);
        goto fail;
    }
    if ((nb = layer_trycalloc(1, sizeof(*nb))) == NULL) {
        rc = LAYER_ENOMEM;
        goto fail;
    }
    memcpy(nb->hex, hex, HEX_LEN);
    nb->size = fin.size;
    nb->used = (int64_t)time(NULL);
    memcpy(nb->diff_id, fin.diff_id, sizeof(nb->diff_id));
    memcpy(nb->media_type, fin.media_type, sizeof(nb->media_type));

    pthread_mutex_lock(&c->jlock);
    if (retry_flock(c->lockfd, LOCK_EX) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno,
                                   "cache dir %s: cannot lock", c->dir);
        goto unlock;
    }
    locked = true;
    if ((rc = journal_sync(c)) < 0)
        goto unlock;
    pthread_mutex_lock(&c->lock);
    existing = btab_find(c, hex) != NULL;
    keep =
        fin.size <= c->max_bytes &&
        (c->nrecords < LAYER_BLOBCACHE_RECORDS_MAX || f->entry->blob != NULL);
    pthread_mutex_unlock(&c->lock);
    if (existing) {
        /* the bytes are the same; but if another process removed the
         * file and we have not heard yet, ours takes its place */
        struct stat st;

        existing = fstatat(c->blobsfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                   S_ISREG(st.st_mode) && (uint64_t)st.st_size == fin.size;
    }
    if (keep && !existing) {
        if (renameat(c->tmpfd, f->tmpname, c->blobsfd, hex) < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno,
                                       "cache dir %s: cannot store blob %s",
                                       c->dir, hex);
            goto unlock;
        }
        renamed = true;
        if (fsync(c->blobsfd) < 0) {
            rc = layer_error_set_errno(
                LAYER_ERROR, errno, "cache dir %s: cannot sync blobs", c->dir);
            (void)unlinkat(c->blobsfd, hex, 0);
            goto unlock;
        }
    } else {
        (void)unlinkat(c->tmpfd, f->tmpname, 0);
    }
    if (keep) {
        pthread_mutex_lock(&c->lock);
        record_line(&line, f->entry, nb);
        pthread_mutex_unlock(&c->lock);
        if ((rc = line.err) < 0 ||
            (rc = journal_append(c, line.p, line.len, 1, true)) < 0) {
            if (renamed)
                (void)unlinkat(c->blobsfd, hex, 0);
            goto unlock;
        }
    }
    pthread_mutex_lock(&c->lock);
    c->total -= f->written; /* no longer a fill's bytes */
    if (keep) {
        entry *e = f->entry;

        /* the blob may have been evicted (or replayed) meanwhile */
        if ((b = btab_find(c, hex)) == NULL) {
            b = nb;
            nb = NULL;
            if (index_blob(c, b) < 0) {
                /* out of memory: the readers are served, and the next
                 * open loads the record from the journal */
                layer_free(b);
                b = NULL;
            }
        }
        if (b != NULL) {
            lru_touch(c, b);
            record_point(c, e, b, &victims);
            b->refs += f->nreaders;
        }
        c->st.commits++;
    } else {
        c->st.too_big++;
    }
    f->entry->fill = NULL;
    entry_maybe_free(c, f->entry);
    f->entry = NULL;
    f->blob = b;
    f->info = fin;
    f->state = FILL_DONE;
    if (c->total > c->max_bytes)
        evict_locked(c, c->max_bytes, &victims);
    pthread_mutex_unlock(&c->lock);
    maybe_compact(c);
unlock:
    if (locked)
        (void)retry_flock(c->lockfd, LOCK_UN);
    pthread_mutex_unlock(&c->jlock);
    layer_free(nb);
    layer_text_buf_dispose(&line);
    if (rc < 0)
        goto fail;
    wake_readers(c, f);
    reap(c, victims);
    writer_release(w);
    return 0;
fail:
    fail_fill(w, layer_error_last());
    writer_release(w);
    return rc;
}

/* ---- stats, eviction, listing ----------------------------------------- */

void layer_blobcache_stats_get(layer_blobcache_stats *out, layer_blobcache *c)
{
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    out->bytes = c->total;
    out->blobs = c->btab.count;
    out->records = c->nrecords;
    out->max_bytes = c->max_bytes;
    pthread_mutex_unlock(&c->lock);
    out->bytes_read =
        atomic_load_explicit(&c->bytes_read, memory_order_relaxed);
}

int layer_blobcache_evict(uint64_t *out_evicted, layer_blobcache *c,
                          uint64_t max_bytes)
{
    blob *victims = NULL;
    uint64_t before, total;

    refresh(c);
    pthread_mutex_lock(&c->lock);
    before = c->st.evictions;
    evict_locked(c, max_bytes, &victims);
    total = c->total;
    if (out_evicted != NULL)
        *out_evicted = c->st.evictions - before;
    pthread_mutex_unlock(&c->lock);
    reap(c, victims);
    if (total > max_bytes)
        return layer_error_set(LAYER_EBUSY,
                               "cache dir %s: %" PRIu64 " bytes are in use "
                               "and stay",
                               c->dir, total);
    return 0;
}

void layer_blobcache_list_free(layer_blobcache_item *items, size_t n)
{
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        layer_free(items[i].layer);
        layer_free(items[i].fingerprint);
    }
    layer_free(items);
}

/* Fill an item from a record's key (which apply_line() or key_encode()
 * made, so it parses). */
static int item_from_key(layer_blobcache_item *it, const entry *e)
{
    field f[5];

    if (split(f, 5, e->key, e->klen) != 5)
        return layer_error_set(LAYER_ERROR, "cache: malformed key");
    it->tar = field_is(&f[0], "original") ? LAYER_BLOBCACHE_TAR_ORIGINAL
                                          : LAYER_BLOBCACHE_TAR_CANONICAL;
    it->compression = field_is(&f[1], "gzip")   ? LAYER_COMPRESSION_GZIP
                      : field_is(&f[1], "zstd") ? LAYER_COMPRESSION_ZSTD
                                                : LAYER_COMPRESSION_NONE;
    it->level = (int)strtol(f[2].p, NULL, 10);
    if ((it->layer = unescape(f[3].p, f[3].n)) == NULL ||
        (it->fingerprint = unescape(f[4].p, f[4].n)) == NULL)
        return LAYER_ENOMEM;
    return 0;
}

int layer_blobcache_list(layer_blobcache_item **out, size_t *out_n,
                         layer_blobcache *c)
{
    layer_blobcache_item *items = NULL;
    size_t n = 0;
    int rc = 0;

    refresh(c);
    pthread_mutex_lock(&c->lock);
    if (c->nrecords > 0 &&
        (items = layer_trycalloc(c->nrecords, sizeof(*items))) == NULL)
        rc = LAYER_ENOMEM;
    for (blob *b = c->lru_head; b != NULL && rc == 0; b = b->next) {
        for (entry *e = b->records; e != NULL && rc == 0; e = e->bnext) {
            layer_blobcache_item *it = &items[n++];

            rc = item_from_key(it, e);
            blob_info(&it->info, b);
            it->last_used = b->used;
            it->readers = b->refs;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (rc < 0) {
        layer_blobcache_list_free(items, n);
        return rc;
    }
    *out = items;
    *out_n = n;
    return 0;
}
