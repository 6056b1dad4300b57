/*
 * gencorpus: build a deterministic benchmark tree for `layerd export`.
 *
 * The same arguments give the same tree, byte for byte and with the same
 * metadata, on every machine: all randomness comes from one splitmix64
 * stream seeded from the arguments, and every mtime is fixed. The mix
 * imitates a container image's root file system:
 *
 *   - ~80% small files (0..16 KiB, most under 4 KiB), mostly text (source,
 *     configuration: words from a fixed vocabulary, gzip ratio ~3x) and
 *     some small binaries;
 *   - ~19% medium files (16 KiB..1 MiB): text, structured binaries (runs
 *     of zeros, small integers, repeated records, ~2x) and incompressible
 *     data (already-compressed assets);
 *   - one large file per 2000 (1/256..1/16 of the total: 4..64 MiB at the
 *     default 1 GiB), structured or random;
 *   - plus ~1% symlinks and ~0.5% hard links.
 *
 * Medium file sizes are scaled so that the total lands near the requested
 * byte count. `--tiny N` instead makes N files of 0..255 bytes, 200 per
 * directory, for the reader's memory test.
 *
 * usage: gencorpus [--scale small|default] [--files N] [--bytes N]
 *                  [--tiny N] [--seed N] DIR
 * DIR must not exist; it is created. Prints one summary line.
 *
 * A standalone tool (the bench scripts build it with `cc -O2`): it does not
 * link liblayer, so it allocates with libc and exits on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* 2023-11-14T22:13:20Z, the fixtures' timestamp. */
#define CORPUS_MTIME  1700000000
#define BUF_SIZE      (256 * 1024)
#define PATH_CAP      512
#define NWORDS        4096
#define FILES_PER_DIR 25
#define TINY_PER_DIR  200

typedef struct rng {
    uint64_t s;
} rng;

/* splitmix64 (Steele, Lea, Flood 2014): tiny, fast, fully specified. */
static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. The modulo bias is irrelevant here. */
static uint64_t rng_below(rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

static void die(const char *fmt, ...)
{
    va_list ap;

    fputs("gencorpus: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

typedef enum content {
    CONTENT_TEXT,
    CONTENT_STRUCT, /* structured binary */
    CONTENT_RANDOM
} content;

typedef struct gen {
    rng r;
    char words[NWORDS][12];
    size_t wordlen[NWORDS];
    unsigned char buf[BUF_SIZE];
    char **dirs; /* created directories, for the final mtime pass */
    size_t ndirs, capdirs;
    uint64_t files, bytes, symlinks, hardlinks;
} gen;

static void make_words(gen *g)
{
    static const char *const syl[] = {
        "ab", "al", "an", "ar", "as", "at", "ba", "be", "bu", "ca", "ce", "co",
        "da", "de", "di", "do", "el", "en", "er", "es", "fa", "fi", "fo", "ga",
        "ge", "go", "ha", "he", "hi", "in", "is", "it", "ka", "la", "le", "li",
        "lo", "ma", "me", "mi", "mo", "na", "ne", "ni", "no", "on", "or", "pa",
        "pe", "pi", "po", "ra", "re", "ri", "ro", "sa", "se", "si", "so", "ta",
        "te", "ti", "to", "ul", "un", "ur", "va", "ve", "vi", "xe"};
    const size_t nsyl = sizeof(syl) / sizeof(syl[0]);

    for (size_t i = 0; i < NWORDS; i++) {
        size_t n = 1 + (size_t)rng_below(&g->r, 4), len = 0;

        for (size_t k = 0; k < n; k++) {
            memcpy(g->words[i] + len, syl[rng_below(&g->r, nsyl)], 2);
            len += 2;
        }
        g->words[i][len] = '\0';
        g->wordlen[i] = len;
    }
}

static void write_all(int fd, const void *p, size_t n, const char *path)
{
    const unsigned char *b = p;

    while (n > 0) {
        ssize_t w = write(fd, b, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write %s: %s", path, strerror(errno));
        b += w;
        n -= (size_t)w;
    }
}

/* Text: lines of words, indented like code, with a skewed word choice
 * (a few words are frequent) so it compresses like real text. */
static size_t fill_text(gen *g, unsigned char *out, size_t cap)
{
    size_t n = 0;

    while (n < cap) {
        size_t indent = (size_t)rng_below(&g->r, 4) * 4;
        size_t nw = 2 + (size_t)rng_below(&g->r, 10);

        for (size_t i = 0; i < indent && n < cap; i++)
            out[n++] = ' ';
        for (size_t w = 0; w < nw && n < cap; w++) {
            /* squaring skews towards low indices */
            uint64_t u = rng_below(&g->r, 256);
            size_t idx = (size_t)((u * u * NWORDS) >> 16);
            size_t len = g->wordlen[idx];

            if (len > cap - n)
                len = cap - n;
            memcpy(out + n, g->words[idx], len);
            n += len;
            if (n < cap)
                out[n++] =
                    (w + 1 == nw) ? (rng_below(&g->r, 3) ? ';' : ':') : ' ';
        }
        if (n < cap)
            out[n++] = '\n';
    }
    return n;
}

/* Structured binary: a mix of zero runs, small little-endian integers,
 * repeated records and short random stretches. */
static size_t fill_struct(gen *g, unsigned char *out, size_t cap)
{
    size_t n = 0;

    while (n < cap) {
        size_t run = 16 + (size_t)rng_below(&g->r, 2048);
        unsigned kind = (unsigned)rng_below(&g->r, 4);

        if (run > cap - n)
            run = cap - n;
        switch (kind) {
        case 0:
            memset(out + n, 0, run);
            break;
        case 1:
            for (size_t i = 0; i < run; i++)
                out[n + i] =
                    (i % 4 == 0) ? (unsigned char)rng_below(&g->r, 64) : 0;
            break;
        case 2: {
            unsigned char rec[24];

            for (size_t i = 0; i < sizeof(rec); i++)
                rec[i] = (unsigned char)rng_next(&g->r);
            for (size_t i = 0; i < run; i++)
                out[n + i] = rec[i % sizeof(rec)] ^ (unsigned char)(i / 97);
            break;
        }
        default:
            for (size_t i = 0; i < run; i++)
                out[n + i] = (unsigned char)rng_next(&g->r);
            break;
        }
        n += run;
    }
    return n;
}

static size_t fill_random(gen *g, unsigned char *out, size_t cap)
{
    size_t i = 0;

    for (; i + 8 <= cap; i += 8) {
        uint64_t v = rng_next(&g->r);

        memcpy(out + i, &v, 8);
    }
    for (; i < cap; i++)
        out[i] = (unsigned char)rng_next(&g->r);
    return cap;
}

static void make_file(gen *g, const char *path, uint64_t size, content c,
                      mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    uint64_t left = size;
    struct timespec ts[2] = {{CORPUS_MTIME, 0}, {CORPUS_MTIME, 0}};

    if (fd < 0)
        die("create %s: %s", path, strerror(errno));
    while (left > 0) {
        size_t want = left < BUF_SIZE ? (size_t)left : BUF_SIZE;
        size_t got;

        switch (c) {
        case CONTENT_TEXT:
            got = fill_text(g, g->buf, want);
            break;
        case CONTENT_STRUCT:
            got = fill_struct(g, g->buf, want);
            break;
        default:
            got = fill_random(g, g->buf, want);
            break;
        }
        write_all(fd, g->buf, got, path);
        left -= got;
    }
    if (fchmod(fd, mode) < 0 || futimens(fd, ts) < 0)
        die("%s: %s", path, strerror(errno));
    if (close(fd) < 0)
        die("close %s: %s", path, strerror(errno));
    g->files++;
    g->bytes += size;
}

static void make_dir(gen *g, const char *path)
{
    char **d;

    if (mkdir(path, 0755) < 0)
        die("mkdir %s: %s", path, strerror(errno));
    if (g->ndirs == g->capdirs) {
        size_t cap = g->capdirs ? g->capdirs * 2 : 256;

        if ((d = realloc(g->dirs, cap * sizeof(*d))) == NULL)
            die("out of memory");
        g->dirs = d;
        g->capdirs = cap;
    }
    if ((g->dirs[g->ndirs] = strdup(path)) == NULL)
        die("out of memory");
    g->ndirs++;
}

/* Directory mtimes last, children before parents (reverse creation). */
static void stamp_dirs(gen *g)
{
    struct timespec ts[2] = {{CORPUS_MTIME, 0}, {CORPUS_MTIME, 0}};

    for (size_t i = g->ndirs; i-- > 0;) {
        if (utimensat(AT_FDCWD, g->dirs[i], ts, 0) < 0)
            die("utimensat %s: %s", g->dirs[i], strerror(errno));
        free(g->dirs[i]);
    }
    free(g->dirs);
    g->dirs = NULL;
}

static void join(char *out, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void join(char *out, const char *dir, const char *fmt, ...)
{
    char name[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(name))
        die("name too long");
    n = snprintf(out, PATH_CAP, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_CAP)
        die("path too long: %s/%s", dir, name);
}

/* Sizes: log-uniform between lo and hi. */
static uint64_t log_uniform(gen *g, uint64_t lo, uint64_t hi)
{
    double u = (double)rng_below(&g->r, 1u << 30) / (double)(1u << 30);
    double l = (double)lo, h = (double)hi;
    double v = l * pow(h / l, u);

    return (uint64_t)v;
}

typedef struct plan {
    uint64_t size;
    content c;
    unsigned char cls; /* 0 small, 1 medium, 2 large */
} plan;

static void build_regular(gen *g, const char *root, uint64_t nfiles,
                          uint64_t target)
{
    plan *p = calloc(nfiles ? nfiles : 1, sizeof(*p));
    /* one large file per ~2000, spread evenly */
    uint64_t stride = 2000, fixed = 0, medium = 0;
    double scale;
    char dir[PATH_CAP], path[PATH_CAP], link[PATH_CAP];
    uint64_t f = 0;

    if (p == NULL)
        die("out of memory");
    for (uint64_t i = 0; i < nfiles; i++) {
        uint64_t roll = rng_below(&g->r, 1000);

        if (i % stride == stride / 2) {
            p[i].cls = 2;
            p[i].size = log_uniform(g, target / 256 + 1, target / 16 + 2);
            p[i].c = rng_below(&g->r, 2) ? CONTENT_STRUCT : CONTENT_RANDOM;
        } else if (roll < 810) {
            p[i].cls = 0;
            p[i].size =
                rng_below(&g->r, 20) == 0 ? 0 : log_uniform(g, 64, 16u << 10);
            p[i].c = rng_below(&g->r, 100) < 85 ? CONTENT_TEXT : CONTENT_STRUCT;
        } else {
            uint64_t k = rng_below(&g->r, 100);

            p[i].cls = 1;
            p[i].size = log_uniform(g, 16u << 10, 1u << 20);
            p[i].c = k < 40   ? CONTENT_TEXT
                     : k < 75 ? CONTENT_STRUCT
                              : CONTENT_RANDOM;
        }
        if (p[i].cls == 1)
            medium += p[i].size;
        else
            fixed += p[i].size;
    }
    scale = medium && target > fixed ? (double)(target - fixed) / medium : 1.0;
    for (uint64_t i = 0; i < nfiles; i++)
        if (p[i].cls == 1)
            p[i].size = (uint64_t)((double)p[i].size * scale);

    make_dir(g, root);
    while (f < nfiles) {
        /* pkg-NNN/{bin,lib/mod-NN,share/doc-NN}: ~25 files per dir */
        uint64_t d = f / FILES_PER_DIR;
        uint64_t pkg = d / 20, sub = d % 20;

        join(dir, root, "pkg-%03" PRIu64, pkg);
        if (sub == 0)
            make_dir(g, dir);
        if (sub == 0) {
            join(path, dir, "bin");
            make_dir(g, path);
            memcpy(dir, path, sizeof(dir));
        } else if (sub < 12) {
            join(path, dir, "lib");
            if (sub == 1)
                make_dir(g, path);
            join(dir, path, "mod-%02" PRIu64, sub);
            make_dir(g, dir);
        } else {
            join(path, dir, "share");
            if (sub == 12)
                make_dir(g, path);
            join(dir, path, "doc-%02" PRIu64, sub);
            make_dir(g, dir);
        }
        for (unsigned k = 0; k < FILES_PER_DIR && f < nfiles; k++, f++) {
            static const char *const ext[] = {".txt", ".bin", ".dat"};
            uint64_t roll = rng_below(&g->r, 1000);
            mode_t mode = (p[f].c == CONTENT_TEXT && rng_below(&g->r, 10) == 0)
                              ? 0755
                              : 0644;

            join(path, dir, "%s-%05" PRIu64 "%s",
                 g->words[rng_below(&g->r, NWORDS)], f, ext[p[f].c]);
            make_file(g, path, p[f].size, p[f].c, mode);
            if (roll < 10) {
                struct timespec ts[2] = {{CORPUS_MTIME, 0}, {CORPUS_MTIME, 0}};

                join(link, dir, "link-%05" PRIu64, f);
                if (symlink(strrchr(path, '/') + 1, link) < 0 ||
                    utimensat(AT_FDCWD, link, ts, AT_SYMLINK_NOFOLLOW) < 0)
                    die("symlink %s: %s", link, strerror(errno));
                g->symlinks++;
            } else if (roll < 15) {
                join(link, dir, "hard-%05" PRIu64, f);
                if (linkat(AT_FDCWD, path, AT_FDCWD, link, 0) < 0)
                    die("link %s: %s", link, strerror(errno));
                g->hardlinks++;
            }
        }
    }
    free(p);
}

static void build_tiny(gen *g, const char *root, uint64_t nfiles)
{
    char dir[PATH_CAP], path[PATH_CAP];

    make_dir(g, root);
    for (uint64_t f = 0; f < nfiles; f++) {
        if (f % TINY_PER_DIR == 0) {
            join(dir, root, "d%05" PRIu64, f / TINY_PER_DIR);
            make_dir(g, dir);
        }
        join(path, dir, "f%07" PRIu64 ".txt", f);
        make_file(g, path, rng_below(&g->r, 256), CONTENT_TEXT, 0644);
    }
}

static uint64_t parse_u64(const char *opt, const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        die("%s: not a number: '%s'", opt, s);
    return (uint64_t)v;
}

int main(int argc, char **argv)
{
    static gen g;
    uint64_t nfiles = 20000, bytes = 1ULL << 30, tiny = 0, seed = 1;
    const char *dest = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--scale") == 0 && v) {
            if (strcmp(v, "small") == 0) {
                nfiles = 2000;
                bytes = 50ULL << 20;
            } else if (strcmp(v, "default") == 0) {
                nfiles = 20000;
                bytes = 1ULL << 30;
            } else {
                die("--scale: small or default, not '%s'", v);
            }
            i++;
        } else if (strcmp(a, "--files") == 0 && v) {
            nfiles = parse_u64(a, v);
            i++;
        } else if (strcmp(a, "--bytes") == 0 && v) {
            bytes = parse_u64(a, v);
            i++;
        } else if (strcmp(a, "--tiny") == 0 && v) {
            tiny = parse_u64(a, v);
            i++;
        } else if (strcmp(a, "--seed") == 0 && v) {
            seed = parse_u64(a, v);
            i++;
        } else if (a[0] != '-' && dest == NULL) {
            dest = a;
        } else {
            fprintf(stderr,
                    "usage: gencorpus [--scale small|default] [--files N] "
                    "[--bytes N] [--tiny N] [--seed N] DIR\n");
            return 2;
        }
    }
    if (dest == NULL)
        die("no destination directory given");
    umask(022);
    g.r.s = seed * 0x2545f4914f6cdd1dULL + (tiny ? tiny : nfiles) + bytes;
    make_words(&g);
    if (tiny)
        build_tiny(&g, dest, tiny);
    else
        build_regular(&g, dest, nfiles, bytes);
    stamp_dirs(&g);
    printf("gencorpus: %s: %" PRIu64 " files, %" PRIu64 " bytes (%.1f MiB), "
           "%" PRIu64 " symlinks, %" PRIu64 " hard links\n",
           dest, g.files, g.bytes, (double)g.bytes / (1 << 20), g.symlinks,
           g.hardlinks);
    return 0;
}
