/*
 * Compressors for layer blobs: gzip through ISA-L (zlib when the build
 * lacks it) and zstd through libzstd, behind one update/finish interface
 * over caller buffers, plus chunked gzip for parallel compression.
 *
 * Determinism: each backend runs at a fixed level with fixed parameters
 * and we write the gzip header ourselves (raw deflate for zlib, ISA-L with
 * IGZIP_GZIP_NO_HDR or raw chunks), so no timestamp, name or OS guess
 * leaks into the bytes. ISA-L's streaming output depends on how the input
 * is split across calls (measured: 256 KiB and 1 MiB calls give different
 * bytes), so callers must feed a data-determined chunking; the exporter
 * does. Chunked gzip sidesteps this: each chunk is one isal_deflate call
 * over the whole chunk, seeded with the previous 32 KiB, and ends with a
 * sync flush, so the member is a pure function of the input and the chunk
 * size. libzstd's multithreaded frames do not depend on the worker count.
 *
 * A small "pending" buffer holds the gzip header and, for zlib, the
 * trailer until the caller provides room for them; everything else goes
 * straight into the caller's output buffer.
 */
#include "layer/compress.h"

#include <stdint.h>
#include <string.h>
#include <zlib.h>
/* For the memory estimates (ZSTD_estimateCCtxSize, ZSTD_getCParams):
 * in libzstd's "experimental" section, exported by the shared library. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#ifdef LAYER_HAVE_ISAL
#include <isa-l.h>
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#endif

#include "layer/alloc.h"
#include "layer/error.h"

/*
 * Default gzip levels. ISA-L: level 2. Measured on this project's 2-core
 * build machine over tars of /usr/lib/x86_64-linux-gnu + /usr/bin
 * (1.46 GB) and /usr/share (0.94 GB): level 1 gave 1.034x and 0.999x the
 * size of `pigz -1`, level 2 gave 1.020x and 0.988x at the same speed
 * (~240 MB/s per core), so level 2 is the one that stays within 3% of
 * pigz -1. zlib: level 1, its fastest.
 */
#ifdef LAYER_HAVE_ISAL
#define GZIP_MIN_LEVEL     1
#define GZIP_MAX_LEVEL     ISAL_DEF_MAX_LEVEL
#define GZIP_DEFAULT_LEVEL 2
#define GZIP_BACKEND       "isa-l"
#else
#define GZIP_MIN_LEVEL     1
#define GZIP_MAX_LEVEL     9
#define GZIP_DEFAULT_LEVEL 1
#define GZIP_BACKEND       "zlib"
#endif
#define ZSTD_MIN_LEVEL     1
#define ZSTD_MAX_LEVEL     19
#define ZSTD_DEFAULT_LEVEL 3
/* libzstd worker threads: both cores of our 2-core machines (the caller's
 * thread mostly waits on them). */
#define ZSTD_WORKERS  2
#define ZSTD_JOB_SIZE (2 << 20)

/* RFC 1952 header: ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255. */
static const unsigned char gzip_header[10] = {0x1f, 0x8b, 8, 0, 0,
                                              0,    0,    0, 0, 0xff};

/* ISA-L's deflate state has 32-bit counters. */
#define CHUNK_MAX ((size_t)UINT32_MAX)

struct layer_compress {
    layer_compression kind;
    int level;
    bool finished; /* finish() has begun */
    bool done;     /* the whole stream is out */
    bool broken;   /* a library call failed */
    unsigned char pend[16];
    size_t pend_len;
    size_t pend_off;
#ifdef LAYER_HAVE_ISAL
    struct isal_zstream isal;
    unsigned char *level_buf;
#else
    z_stream z;
    bool z_init;
    uint32_t crc;
    uint32_t isize;
#endif
    ZSTD_CCtx *zstd;
};

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

int layer_compress_level(int *out_level, layer_compression kind, int level)
{
    switch (kind) {
    case LAYER_COMPRESSION_NONE:
        if (level != 0)
            return layer_error_set(LAYER_EINVALID,
                                   "compression level %d given without "
                                   "compression",
                                   level);
        *out_level = 0;
        return 0;
    case LAYER_COMPRESSION_GZIP:
        if (level == 0)
            level = GZIP_DEFAULT_LEVEL;
        if (level < GZIP_MIN_LEVEL || level > GZIP_MAX_LEVEL)
            return layer_error_set(LAYER_EINVALID,
                                   "gzip level %d is out of range %d-%d "
                                   "(%s)",
                                   level, GZIP_MIN_LEVEL, GZIP_MAX_LEVEL,
                                   GZIP_BACKEND);
        *out_level = level;
        return 0;
    case LAYER_COMPRESSION_ZSTD:
        if (level == 0)
            level = ZSTD_DEFAULT_LEVEL;
        if (level < ZSTD_MIN_LEVEL || level > ZSTD_MAX_LEVEL)
            return layer_error_set(LAYER_EINVALID,
                                   "zstd level %d is out of range %d-%d", level,
                                   ZSTD_MIN_LEVEL, ZSTD_MAX_LEVEL);
        *out_level = level;
        return 0;
    }
    return layer_error_set(LAYER_EINVALID, "unknown compression %d", (int)kind);
}

const char *layer_compress_backend(layer_compression kind)
{
    switch (kind) {
    case LAYER_COMPRESSION_GZIP:
        return GZIP_BACKEND;
    case LAYER_COMPRESSION_ZSTD:
        return "zstd";
    case LAYER_COMPRESSION_NONE:
        break;
    }
    return "none";
}

int layer_compress_max_level(layer_compression kind)
{
    switch (kind) {
    case LAYER_COMPRESSION_GZIP:
        return GZIP_MAX_LEVEL;
    case LAYER_COMPRESSION_ZSTD:
        return ZSTD_MAX_LEVEL;
    case LAYER_COMPRESSION_NONE:
        break;
    }
    return 0;
}

/*
 * What a compressor holds, by its library's own accounting where it has
 * one. zstd, multithreaded: each worker has a context of the level's
 * parameters (ZSTD_estimateCCtxSize), and the frame keeps the window and,
 * per worker, an input and an output job buffer, plus two being filled
 * and flushed. Measured with zstd 1.5.4 on a 16 MiB layer (the server's
 * peak RSS over one export, minus its idle RSS): levels 1, 3, 9, 12, 15
 * and 19 held 16, 17, 39, 111, 143 and 185 MiB; these estimates, with the
 * export's rings (layer_export_memory()), give 18, 21, 45, 117, 149 and
 * 187. gzip: ISA-L's
 * stream state and level buffer, or zlib's window and hash tables
 * (deflateInit2 with 15 window bits and memLevel 8: 256 KiB + 6 KiB).
 */
#ifdef LAYER_HAVE_ISAL
static size_t isal_level_buf_size(int level);
#endif

size_t layer_compress_memory(layer_compression kind, int level)
{
    if (layer_compress_level(&level, kind, level) < 0)
        return 0;
    switch (kind) {
    case LAYER_COMPRESSION_GZIP:
#ifdef LAYER_HAVE_ISAL
        return sizeof(struct isal_zstream) + isal_level_buf_size(level);
#else
        return (256u + 6u) << 10;
#endif
    case LAYER_COMPRESSION_ZSTD: {
        ZSTD_compressionParameters cp = ZSTD_getCParams(level, 0, 0);

        return ZSTD_WORKERS * ZSTD_estimateCCtxSize(level) +
               ((size_t)1 << cp.windowLog) +
               (2 * ZSTD_WORKERS + 2) * (size_t)ZSTD_JOB_SIZE;
    }
    case LAYER_COMPRESSION_NONE:
        break;
    }
    return 0;
}

#ifdef LAYER_HAVE_ISAL
#define STR_(x) #x
#define STR(x)  STR_(x)
#define ISAL_VERSION_STRING                                                    \
    STR(ISAL_MAJOR_VERSION)                                                    \
    "." STR(ISAL_MINOR_VERSION) "." STR(ISAL_PATCH_VERSION)
#endif

void layer_compress_versions_get(layer_compress_versions *out)
{
#ifdef LAYER_HAVE_ISAL
    out->gzip = "isa-l " ISAL_VERSION_STRING;
    out->isal = ISAL_VERSION_STRING;
#else
    out->gzip = "zlib " ZLIB_VERSION;
    out->isal = "none";
#endif
    out->zstd = ZSTD_versionString();
}

const char *layer_compression_media_type(layer_compression c)
{
    switch (c) {
    case LAYER_COMPRESSION_GZIP:
        return "application/vnd.oci.image.layer.v1.tar+gzip";
    case LAYER_COMPRESSION_ZSTD:
        return "application/vnd.oci.image.layer.v1.tar+zstd";
    case LAYER_COMPRESSION_NONE:
        break;
    }
    return "application/vnd.oci.image.layer.v1.tar";
}

const char *layer_compression_name(layer_compression c)
{
    switch (c) {
    case LAYER_COMPRESSION_GZIP:
        return "gzip";
    case LAYER_COMPRESSION_ZSTD:
        return "zstd";
    case LAYER_COMPRESSION_NONE:
        break;
    }
    return "none";
}

int layer_compression_parse(layer_compression *out, const char *name)
{
    if (strcmp(name, "none") == 0)
        *out = LAYER_COMPRESSION_NONE;
    else if (strcmp(name, "gzip") == 0)
        *out = LAYER_COMPRESSION_GZIP;
    else if (strcmp(name, "zstd") == 0)
        *out = LAYER_COMPRESSION_ZSTD;
    else
        return layer_error_set(LAYER_EINVALID,
                               "unknown compression \"%.64s\" (none, gzip "
                               "or zstd)",
                               name);
    return 0;
}

#ifdef LAYER_HAVE_ISAL
static size_t isal_level_buf_size(int level)
{
    switch (level) {
    case 1:
        return ISAL_DEF_LVL1_DEFAULT;
    case 2:
        return ISAL_DEF_LVL2_DEFAULT;
    default:
        return ISAL_DEF_LVL3_DEFAULT;
    }
}

static int gzip_open(layer_compress *c)
{
    size_t n = isal_level_buf_size(c->level);

    c->level_buf = layer_trymalloc(n);
    if (c->level_buf == NULL)
        return LAYER_ENOMEM;
    isal_deflate_init(&c->isal);
    c->isal.level = (uint32_t)c->level;
    c->isal.level_buf = c->level_buf;
    c->isal.level_buf_size = (uint32_t)n;
    c->isal.gzip_flag = IGZIP_GZIP_NO_HDR; /* our header, ISA-L's trailer */
    c->isal.flush = NO_FLUSH;
    return 0;
}

static void gzip_close(layer_compress *c)
{
    layer_free(c->level_buf);
}

/* One deflate call. */
static int gzip_step(size_t *consumed, size_t *produced, layer_compress *c,
                     const void *in, size_t in_len, void *out, size_t out_cap,
                     bool end)
{
    struct isal_zstream *z = &c->isal;
    uint32_t in_n = (uint32_t)min_size(in_len, CHUNK_MAX);
    uint32_t out_n = (uint32_t)min_size(out_cap, CHUNK_MAX);
    int ret;

    z->next_in = (uint8_t *)(uintptr_t)in;
    z->avail_in = in_n;
    z->next_out = out;
    z->avail_out = out_n;
    z->end_of_stream = end;
    ret = isal_deflate(z);
    if (ret != COMP_OK)
        return layer_error_set(LAYER_ERROR, "isal_deflate failed (%d)", ret);
    *consumed = in_n - z->avail_in;
    *produced = out_n - z->avail_out;
    if (end && z->internal_state.state == ZSTATE_END)
        c->done = true;
    return 0;
}
#else
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return layer_trycalloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    layer_free(p);
}

static int gzip_open(layer_compress *c)
{
    int ret;

    c->z.zalloc = z_alloc;
    c->z.zfree = z_free;
    c->z.opaque = NULL;
    /* Raw deflate (-15): header and trailer are ours. */
    ret = deflateInit2(&c->z, c->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    if (ret != Z_OK)
        return layer_error_set(ret == Z_MEM_ERROR ? LAYER_ENOMEM : LAYER_ERROR,
                               "deflateInit2 failed (%d)", ret);
    c->z_init = true;
    c->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    return 0;
}

static void gzip_close(layer_compress *c)
{
    if (c->z_init)
        deflateEnd(&c->z);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static int gzip_step(size_t *consumed, size_t *produced, layer_compress *c,
                     const void *in, size_t in_len, void *out, size_t out_cap,
                     bool end)
{
    uInt in_n = (uInt)min_size(in_len, UINT32_MAX);
    uInt out_n = (uInt)min_size(out_cap, UINT32_MAX);
    int ret;

    c->z.next_in = (Bytef *)(uintptr_t)in;
    c->z.avail_in = in_n;
    c->z.next_out = out;
    c->z.avail_out = out_n;
    ret = deflate(&c->z, end ? Z_FINISH : Z_NO_FLUSH);
    if (ret == Z_STREAM_ERROR)
        return layer_error_set(LAYER_ERROR, "deflate failed (%d)", ret);
    *consumed = in_n - c->z.avail_in;
    *produced = out_n - c->z.avail_out;
    if (*consumed > 0) {
        c->crc = (uint32_t)crc32(c->crc, in, (uInt)*consumed);
        c->isize += (uint32_t)*consumed;
    }
    if (end && ret == Z_STREAM_END) {
        /* RFC 1952 trailer: CRC32 and ISIZE, little-endian. */
        put_le32(c->pend, c->crc);
        put_le32(c->pend + 4, c->isize);
        c->pend_len = 8;
        c->pend_off = 0;
        c->done = true;
    }
    return 0;
}
#endif

static int zstd_open(layer_compress *c)
{
    size_t r;

    c->zstd = ZSTD_createCCtx();
    if (c->zstd == NULL)
        return layer_error_set(LAYER_ENOMEM, "ZSTD_createCCtx failed");
    r = ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_compressionLevel, c->level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(r))
        return layer_error_set(LAYER_ERROR, "zstd setup failed: %s",
                               ZSTD_getErrorName(r));
    /* Multithreaded frames are the same for every worker count >= 1
     * (checked with zstd 1.5.4: -T1, -T2 and -T4 give identical bytes);
     * a libzstd built without threads refuses this and we stay
     * single-threaded, whose frames differ (like the gzip backends, the
     * digest is then specific to that build). */
    if (ZSTD_isError(
            ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_nbWorkers, ZSTD_WORKERS)))
        return 0;
    /* The job size is part of the output: fixed, never derived from the
     * input. libzstd's default for level 3 (8 MiB jobs) held 66-85 MiB per
     * export on the bench corpus; 2 MiB jobs hold 28-36 MiB for +0.03% of
     * output size, which matters with tens of concurrent exports. */
    (void)ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_jobSize, ZSTD_JOB_SIZE);
    return 0;
}

static int zstd_step(size_t *consumed, size_t *produced, layer_compress *c,
                     const void *in, size_t in_len, void *out, size_t out_cap,
                     bool end)
{
    ZSTD_inBuffer ib = {in, in_len, 0};
    ZSTD_outBuffer ob = {out, out_cap, 0};
    size_t r = ZSTD_compressStream2(c->zstd, &ob, &ib,
                                    end ? ZSTD_e_end : ZSTD_e_continue);

    if (ZSTD_isError(r))
        return layer_error_set(LAYER_ERROR, "ZSTD_compressStream2: %s",
                               ZSTD_getErrorName(r));
    *consumed = ib.pos;
    *produced = ob.pos;
    if (end && r == 0)
        c->done = true;
    return 0;
}

int layer_compress_new(layer_compress **out, layer_compression kind, int level)
{
    layer_compress *c = NULL;
    int rc;

    if ((rc = layer_compress_level(&level, kind, level)) < 0)
        goto out;
    c = layer_trycalloc(1, sizeof(*c));
    if (c == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    c->kind = kind;
    c->level = level;
    if (kind == LAYER_COMPRESSION_GZIP) {
        if ((rc = gzip_open(c)) < 0)
            goto out;
        memcpy(c->pend, gzip_header, sizeof(gzip_header));
        c->pend_len = sizeof(gzip_header);
    } else if (kind == LAYER_COMPRESSION_ZSTD) {
        if ((rc = zstd_open(c)) < 0)
            goto out;
    }
    *out = c;
    c = NULL;
out:
    layer_compress_free(c);
    return rc;
}

/* Copy pending header/trailer bytes out. */
static size_t drain_pending(layer_compress *c, unsigned char *out,
                            size_t out_cap)
{
    size_t n = min_size(c->pend_len - c->pend_off, out_cap);

    memcpy(out, c->pend + c->pend_off, n);
    c->pend_off += n;
    if (c->pend_off == c->pend_len)
        c->pend_len = c->pend_off = 0;
    return n;
}

static int step(size_t *consumed, size_t *produced, layer_compress *c,
                const void *in, size_t in_len, void *out, size_t out_cap,
                bool end)
{
    switch (c->kind) {
    case LAYER_COMPRESSION_GZIP:
        return gzip_step(consumed, produced, c, in, in_len, out, out_cap, end);
    case LAYER_COMPRESSION_ZSTD:
        return zstd_step(consumed, produced, c, in, in_len, out, out_cap, end);
    case LAYER_COMPRESSION_NONE:
        break;
    }
    *consumed = *produced = min_size(in_len, out_cap);
    if (*consumed > 0)
        memcpy(out, in, *consumed);
    if (end)
        c->done = true;
    return 0;
}

int layer_compress_update(size_t *out_consumed, size_t *out_produced,
                          layer_compress *c, const void *in, size_t in_len,
                          void *out, size_t out_cap)
{
    unsigned char *o = out;
    size_t pre = 0, consumed = 0, produced = 0;
    int rc;

    if (c->finished || c->broken)
        return layer_error_set(LAYER_EINVALID,
                               "compressor used after finish or failure");
    if (c->pend_len > 0) {
        pre = drain_pending(c, o, out_cap);
        if (c->pend_len > 0) {
            *out_consumed = 0;
            *out_produced = pre;
            return 0;
        }
    }
    if (in_len > 0 && out_cap > pre) {
        rc = step(&consumed, &produced, c, in, in_len, o + pre, out_cap - pre,
                  false);
        if (rc < 0) {
            c->broken = true;
            return rc;
        }
    }
    *out_consumed = consumed;
    *out_produced = pre + produced;
    return 0;
}

int layer_compress_finish(size_t *out_produced, bool *out_done,
                          layer_compress *c, void *out, size_t out_cap)
{
    unsigned char *o = out;
    size_t total = 0, consumed = 0, produced = 0;
    int rc;

    if (c->broken)
        return layer_error_set(LAYER_EINVALID, "compressor used after "
                                               "failure");
    c->finished = true;
    while (total < out_cap) {
        if (c->pend_len > 0) {
            total += drain_pending(c, o + total, out_cap - total);
            continue;
        }
        if (c->done)
            break;
        rc = step(&consumed, &produced, c, NULL, 0, o + total, out_cap - total,
                  true);
        if (rc < 0) {
            c->broken = true;
            return rc;
        }
        total += produced;
        if (produced == 0 && !c->done && c->pend_len == 0)
            break; /* needs more room than a zero-progress call shows */
    }
    *out_produced = total;
    *out_done = c->done && c->pend_len == 0;
    return 0;
}

void layer_compress_free(layer_compress *c)
{
    if (c == NULL)
        return;
    if (c->kind == LAYER_COMPRESSION_GZIP)
        gzip_close(c);
    ZSTD_freeCCtx(c->zstd);
    layer_free(c);
}

/* ---- chunked gzip --------------------------------------------------- */

struct layer_gzip_chunker {
    int level;
#ifdef LAYER_HAVE_ISAL
    struct isal_zstream z;
    unsigned char *level_buf;
    size_t level_buf_size;
#else
    z_stream z;
    bool z_init;
#endif
};

size_t layer_gzip_chunk_bound(size_t in_len)
{
    /* Stored blocks cost 5 bytes per 64 KiB; a sync flush 5 more; n/64
     * leaves a wide margin over both backends' worst case. */
    return in_len + in_len / 64 + 1024 + LAYER_GZIP_HEADER_SIZE +
           LAYER_GZIP_TRAILER_SIZE;
}

int layer_gzip_chunker_new(layer_gzip_chunker **out, int level)
{
    layer_gzip_chunker *c = NULL;
    int rc;

    if ((rc = layer_compress_level(&level, LAYER_COMPRESSION_GZIP, level)) < 0)
        goto out;
    c = layer_trycalloc(1, sizeof(*c));
    if (c == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    c->level = level;
#ifdef LAYER_HAVE_ISAL
    c->level_buf_size = isal_level_buf_size(level);
    c->level_buf = layer_trymalloc(c->level_buf_size);
    if (c->level_buf == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
#else
    c->z.zalloc = z_alloc;
    c->z.zfree = z_free;
    rc = deflateInit2(&c->z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) {
        rc = layer_error_set(rc == Z_MEM_ERROR ? LAYER_ENOMEM : LAYER_ERROR,
                             "deflateInit2 failed (%d)", rc);
        goto out;
    }
    rc = 0;
    c->z_init = true;
#endif
    *out = c;
    c = NULL;
out:
    layer_gzip_chunker_free(c);
    return rc;
}

#ifdef LAYER_HAVE_ISAL
static int chunk_deflate(size_t *produced, layer_gzip_chunker *c,
                         const void *dict, size_t dict_len, const void *in,
                         size_t in_len, bool last, unsigned char *out,
                         size_t out_cap)
{
    struct isal_zstream *z = &c->z;
    uint32_t cap = (uint32_t)min_size(out_cap, CHUNK_MAX);
    int ret;

    isal_deflate_init(z);
    z->level = (uint32_t)c->level;
    z->level_buf = c->level_buf;
    z->level_buf_size = (uint32_t)c->level_buf_size;
    z->gzip_flag = 0; /* raw deflate: header and trailer are ours */
    if (dict != NULL && dict_len > 0) {
        ret = isal_deflate_set_dict(z, (uint8_t *)(uintptr_t)dict,
                                    (uint32_t)dict_len);
        if (ret != COMP_OK)
            return layer_error_set(LAYER_ERROR,
                                   "isal_deflate_set_dict failed (%d)", ret);
    }
    z->next_in = (uint8_t *)(uintptr_t)in;
    z->avail_in = (uint32_t)in_len;
    z->end_of_stream = last;
    z->flush = last ? NO_FLUSH : SYNC_FLUSH;
    z->next_out = out;
    z->avail_out = cap;
    ret = isal_deflate(z);
    if (ret != COMP_OK)
        return layer_error_set(LAYER_ERROR, "isal_deflate failed (%d)", ret);
    /* Complete: all input taken and, for a sync flush, room left over
     * (igzip_lib.h), for the last chunk the end state reached. */
    if (z->avail_in != 0 || z->avail_out == 0 ||
        (last && z->internal_state.state != ZSTATE_END))
        return layer_error_set(LAYER_ETOOBIG,
                               "gzip chunk output exceeds %zu bytes", out_cap);
    *produced = cap - z->avail_out;
    return 0;
}

static uint32_t chunk_crc(const void *in, size_t len)
{
    return crc32_gzip_refl(0, in, len);
}
#else
static int chunk_deflate(size_t *produced, layer_gzip_chunker *c,
                         const void *dict, size_t dict_len, const void *in,
                         size_t in_len, bool last, unsigned char *out,
                         size_t out_cap)
{
    uInt cap = (uInt)min_size(out_cap, UINT32_MAX);
    int ret = deflateReset(&c->z);

    if (ret == Z_OK && dict != NULL && dict_len > 0)
        ret = deflateSetDictionary(&c->z, dict, (uInt)dict_len);
    if (ret != Z_OK)
        return layer_error_set(LAYER_ERROR, "deflate reset failed (%d)", ret);
    c->z.next_in = (Bytef *)(uintptr_t)in;
    c->z.avail_in = (uInt)in_len;
    c->z.next_out = out;
    c->z.avail_out = cap;
    ret = deflate(&c->z, last ? Z_FINISH : Z_SYNC_FLUSH);
    if (ret == Z_STREAM_ERROR)
        return layer_error_set(LAYER_ERROR, "deflate failed (%d)", ret);
    if (c->z.avail_in != 0 || c->z.avail_out == 0 ||
        (last && ret != Z_STREAM_END))
        return layer_error_set(LAYER_ETOOBIG,
                               "gzip chunk output exceeds %zu bytes", out_cap);
    *produced = cap - c->z.avail_out;
    return 0;
}

static uint32_t chunk_crc(const void *in, size_t len)
{
    return (uint32_t)crc32(0L, in, (uInt)len);
}
#endif

int layer_gzip_chunk(size_t *out_len, uint32_t *out_crc, layer_gzip_chunker *c,
                     const void *dict, size_t dict_len, const void *in,
                     size_t in_len, bool first, bool last, void *out,
                     size_t out_cap)
{
    unsigned char *o = out;
    size_t hdr = first ? LAYER_GZIP_HEADER_SIZE : 0, produced = 0;
    int rc;

    if (in_len > UINT32_MAX)
        return layer_error_set(LAYER_EINVALID, "gzip chunk of %zu bytes",
                               in_len);
    if (out_cap <= hdr)
        return layer_error_set(LAYER_ETOOBIG,
                               "gzip chunk output exceeds "
                               "%zu bytes",
                               out_cap);
    if (dict_len > LAYER_GZIP_DICT_SIZE) {
        dict = (const unsigned char *)dict + dict_len - LAYER_GZIP_DICT_SIZE;
        dict_len = LAYER_GZIP_DICT_SIZE;
    }
    if (first)
        memcpy(o, gzip_header, sizeof(gzip_header));
    if ((rc = chunk_deflate(&produced, c, dict, dict_len, in, in_len, last,
                            o + hdr, out_cap - hdr)) < 0)
        return rc;
    *out_crc = chunk_crc(in, in_len);
    *out_len = hdr + produced;
    return 0;
}

uint32_t layer_gzip_crc_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    return (uint32_t)crc32_combine(crc_a, crc_b, (z_off_t)len_b);
}

void layer_gzip_trailer(unsigned char out[LAYER_GZIP_TRAILER_SIZE],
                        uint32_t crc, uint64_t total_len)
{
    for (int i = 0; i < 4; i++) {
        out[i] = (unsigned char)(crc >> (8 * i));
        out[4 + i] = (unsigned char)((uint32_t)total_len >> (8 * i));
    }
}

void layer_gzip_chunker_free(layer_gzip_chunker *c)
{
    if (c == NULL)
        return;
#ifdef LAYER_HAVE_ISAL
    layer_free(c->level_buf);
#else
    if (c->z_init)
        deflateEnd(&c->z);
#endif
    layer_free(c);
}
