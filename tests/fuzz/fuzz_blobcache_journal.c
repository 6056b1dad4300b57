/*
 * Fuzz target for the blob cache's journal (lib/blobcache.c). Each input
 * is the journal of a fresh cache directory that holds three blobs of
 * known bytes (and nothing else); the corpus has journals whose lines
 * carry correct CRCs, so mutations reach the fields behind them.
 *
 * Oracle: the cache opens, or refuses with LAYER_EBROKEN only for a
 * journal that names another format version; every record it lists
 * names one of the three blobs with its real size and digest, and a get
 * of its key (rebuilt from the listed, unescaped strings) is a hit that
 * reads exactly that blob's bytes; opening the directory again gives
 * the same records, with no line ignored and no record dropped (the
 * journal open rewrote is exact).
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layer/blobcache.h"
#include "layer/digest.h"
#include "layer/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NBLOBS 3

static const size_t blob_size[NBLOBS] = {1, 100, 4096};
static unsigned char *blob_bytes[NBLOBS];
static char blob_digest[NBLOBS][LAYER_DIGEST_STR_SIZE];
static char base[4096];
static unsigned long seq;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_blobcache_journal: %s: %s\n", what,
            layer_error_last());
    abort();
}

static void remove_base(void)
{
    (void)rmdir(base);
}

static void init_once(void)
{
    const char *tmp = getenv("TMPDIR");

    if (base[0] != '\0')
        return;
    snprintf(base, sizeof(base), "%s/layerd-fuzz-cache.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(base) == NULL)
        die("mkdtemp");
    atexit(remove_base);
    for (int i = 0; i < NBLOBS; i++) {
        blob_bytes[i] = malloc(blob_size[i]);
        if (blob_bytes[i] == NULL)
            die("malloc");
        memset(blob_bytes[i], 'a' + i, blob_size[i]);
        if (layer_digest_buffer(blob_digest[i], blob_bytes[i], blob_size[i]) !=
            0)
            die("digest");
    }
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void put_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0 || (n > 0 && write(fd, p, n) != (ssize_t)n) || close(fd) < 0)
        die(path);
}

/* Which blob has this digest, or -1. */
static int blob_of(const char *digest)
{
    for (int i = 0; i < NBLOBS; i++)
        if (strcmp(digest, blob_digest[i]) == 0)
            return i;
    return -1;
}

static void check_records(layer_blobcache *c, layer_blobcache_item *items,
                          size_t n)
{
    static unsigned char buf[8192];

    for (size_t i = 0; i < n; i++) {
        layer_blobcache_key k = {.layer = items[i].layer,
                                 .fingerprint = items[i].fingerprint,
                                 .tar = items[i].tar,
                                 .compression = items[i].compression,
                                 .level = items[i].level};
        layer_blobcache_lookup lk;
        int b = blob_of(items[i].info.digest);
        size_t got = 0, m;
        int rc;

        if (b < 0 || items[i].info.size != blob_size[b])
            die("a record names a blob that is not there");
        if (layer_blobcache_get(&lk, c, &k, LAYER_BLOBCACHE_GET_NOFILL) != 0 ||
            lk.role != LAYER_BLOBCACHE_HIT)
            die("a listed key is not a hit");
        while ((rc = layer_blobcache_read(&m, lk.reader, buf + got,
                                          sizeof(buf) - got, 0)) == 0)
            got += m;
        if (rc != LAYER_ITEROVER || got != blob_size[b] ||
            memcmp(buf, blob_bytes[b], got) != 0)
            die("a hit read other bytes");
        layer_blobcache_reader_free(lk.reader);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[4200], path[4400];
    layer_blobcache *c = NULL;
    layer_blobcache_item *items = NULL, *again = NULL;
    layer_blobcache_stats st;
    size_t n = 0, n2 = 0;
    int rc;

    init_once();
    snprintf(dir, sizeof(dir), "%s/c%lu", base, seq++);
    snprintf(path, sizeof(path), "%s/blobs", dir);
    if (mkdir(dir, 0700) < 0 || mkdir(path, 0700) < 0)
        die("mkdir");
    snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
    if (mkdir(path, 0700) < 0)
        die("mkdir");
    for (int i = 0; i < NBLOBS; i++) {
        snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir,
                 blob_digest[i] + 7);
        put_file(path, blob_bytes[i], blob_size[i]);
    }
    snprintf(path, sizeof(path), "%s/journal", dir);
    put_file(path, data, size);

    rc = layer_blobcache_open(&c, dir, NULL);
    if (rc == LAYER_EBROKEN && size >= 17 &&
        memcmp(data, "layerd-blobcache ", 17) == 0)
        goto out;
    if (rc != 0)
        die("open");
    if (layer_blobcache_list(&items, &n, c) != 0)
        die("list");
    layer_blobcache_stats_get(&st, c);
    if (st.records != n)
        die("stats and list disagree");
    check_records(c, items, n);
    layer_blobcache_free(c);
    c = NULL;

    if (layer_blobcache_open(&c, dir, NULL) != 0)
        die("reopen");
    layer_blobcache_stats_get(&st, c);
    if (st.torn_lines != 0 || st.dropped_records != 0 ||
        st.removed_orphans != 0)
        die("the rewritten journal did not load cleanly");
    if (layer_blobcache_list(&again, &n2, c) != 0 || n2 != n)
        die("the records changed across a reopen");
    check_records(c, again, n2);
out:
    layer_blobcache_list_free(items, n);
    layer_blobcache_list_free(again, n2);
    layer_blobcache_free(c);
    if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        die("cleanup");
    return 0;
}
