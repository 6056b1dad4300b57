/*
 * /layers/{id}/files/{path}: the bytes of one regular file of a layer's
 * changeset, raw or in the Win32 backup stream format.
 *
 * The entry is found by walking the changeset (api_entries__find()); a
 * hardlink entry is served with the data of the entry it links to, a
 * tombstone is 404 and any other type 409. The representation's length
 * is known up front, so responses carry Content-Length, a strong ETag
 * and accept one byte range (RFC 9110
 * section 14): 206 with Content-Range, or 416 with a Content-Range that
 * gives the length alone when it cannot be satisfied. A Range with
 * several ranges, a unit other than bytes, invalid syntax, or an If-Range
 * that does not match the ETag is ignored and the whole representation
 * is sent with 200 (RFC 9110 14.2 lets a server ignore Range;
 * multipart/byteranges is not produced).
 * If-None-Match matching the ETag gives 304.
 *
 * The ETag is opaque: the first 128 bits of a SHA-256 over the file's
 * identity and version (device, inode, size, mtime; the backup form adds
 * ctime, which xattr changes move, and its own marker), so it changes
 * whenever those do but does not show the host's inode numbers to
 * whoever can see response headers (caches, proxies, logs). It is stable
 * across restarts. The entry's file_id (GET /entries/{path}) still gives
 * device and inode: that is where a client learns which entries are hard
 * links of one file.
 *
 * format=win32-backup is what hcsshim's LayerReader.Read() yields: a
 * BACKUP_DATA stream with the file's bytes, then, when the file has
 * xattrs, a BACKUP_EA_DATA stream with them as FILE_FULL_EA_INFORMATION
 * entries (the order BackupRead uses). Each stream starts with the packed
 * 20-byte little-endian WIN32_STREAM_ID header (StreamId u32, Attributes
 * u32, Size u64, NameSize u32) and has no name; streams follow each other
 * without padding (reference/hcsshim.md section 3).
 *
 * A range starting inside the data seeks the reader there
 * (layer_reader_seek), so a range costs what it sends. A file that changes
 * while it is sent fails the reader (unless --allow-changing), and the
 * response is cut short of its Content-Length: the client never takes the
 * bytes for the file's under its ETag.
 */
#include "api_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "layer/alloc.h"
#include "layer/digest.h"
#include "layer/error.h"
#include "layer/reader.h"

/* WIN32_STREAM_ID as go-winio reads it: packed, 20 bytes. */
#define STREAM_HEADER_LEN 20
#define BACKUP_DATA       1
#define BACKUP_EA_DATA    2
/* FILE_FULL_EA_INFORMATION fixed part: NextEntryOffset u32, Flags u8,
 * NameLength u8, ValueLength u16. */
#define EA_HEADER_LEN 8

typedef struct file_stream {
    layer_info *info;
    layer_reader *reader; /* positioned on the entry, data unread */
    unsigned char head[STREAM_HEADER_LEN]; /* backup: the DATA header */
    size_t head_len;                       /* 0 or 20 */
    uint64_t data_len;                     /* the file's bytes */
    uint64_t data_read;                    /* taken from the reader */
    unsigned char *tail; /* backup: the EA stream (header included) */
    size_t tail_len;
    uint64_t pos; /* representation offset of the next byte */
    uint64_t end; /* one past the last byte to send */
    bool failed;
} file_stream;

static void put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    put_le16(p, (uint16_t)v);
    put_le16(p + 2, (uint16_t)(v >> 16));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static void stream_header(unsigned char *p, uint32_t id, uint64_t size)
{
    put_le32(p, id);
    put_le32(p + 4, 0); /* STREAM_NORMAL_ATTRIBUTE */
    put_le64(p + 8, size);
    put_le32(p + 16, 0); /* no name */
}

/* The size of an EA entry padded to 4 bytes (go-winio writeEa pads the
 * last entry too). */
static size_t ea_entry_len(const layer_xattr *x)
{
    return (EA_HEADER_LEN + strlen(x->name) + 1 + x->len + 3) & ~(size_t)3;
}

/* The BACKUP_EA_DATA stream for e's xattrs; *out NULL when it has none. */
static int ea_stream(unsigned char **out, size_t *out_len, const layer_entry *e)
{
    unsigned char *buf = NULL, *p;
    size_t total = 0;
    int rc = 0;

    *out = NULL;
    *out_len = 0;
    if (e->xattr_count == 0)
        return 0;
    for (size_t i = 0; i < e->xattr_count; i++) {
        const layer_xattr *x = &e->xattrs[i];

        if (strlen(x->name) > UINT8_MAX || x->len > UINT16_MAX) {
            rc = layer_error_set(LAYER_EUNSUPPORTED,
                                 "%s: xattr %s does not fit an extended "
                                 "attribute (names up to 255 bytes, values "
                                 "up to 65535)",
                                 e->path, x->name);
            goto out;
        }
        total += ea_entry_len(x); /* each is < 64 KiB + 264 */
    }
    if ((buf = layer_trycalloc(1, STREAM_HEADER_LEN + total)) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    stream_header(buf, BACKUP_EA_DATA, total);
    p = buf + STREAM_HEADER_LEN;
    for (size_t i = 0; i < e->xattr_count; i++) {
        const layer_xattr *x = &e->xattrs[i];
        size_t nlen = strlen(x->name), len = ea_entry_len(x);
        bool last = i + 1 == e->xattr_count;

        put_le32(p, last ? 0 : (uint32_t)len);
        p[4] = 0; /* Flags */
        p[5] = (unsigned char)nlen;
        put_le16(p + 6, (uint16_t)x->len);
        memcpy(p + EA_HEADER_LEN, x->name, nlen);
        /* p[8 + nlen] is the name's NUL, the padding zero: calloc */
        if (x->len > 0)
            memcpy(p + EA_HEADER_LEN + nlen + 1, x->value, x->len);
        p += len;
    }
    *out = buf;
    *out_len = STREAM_HEADER_LEN + total;
    buf = NULL;
out:
    layer_free(buf);
    return rc;
}

/* Copy from an in-memory part [base, base + len) of the representation. */
static size_t copy_part(file_stream *s, char *dst, size_t cap,
                        const unsigned char *part, uint64_t base, size_t len)
{
    uint64_t off = s->pos - base;
    uint64_t n = len - off;

    if (n > cap)
        n = cap;
    if (n > s->end - s->pos)
        n = s->end - s->pos;
    memcpy(dst, part + off, (size_t)n);
    s->pos += n;
    return (size_t)n;
}

/* Read file data at s->pos into dst, seeking there first. Returns 0
 * with the bytes stored in *out_n, or a negative code. */
static int read_data(size_t *out_n, file_stream *s, char *dst, size_t cap)
{
    uint64_t off = s->pos - s->head_len;
    uint64_t want;
    size_t n = 0;
    int rc;

    *out_n = 0;
    if (s->data_read < off) {
        if ((rc = layer_reader_seek(s->reader, off)) < 0)
            return rc;
        s->data_read = off;
    }
    want = s->data_len - off;
    if (want > s->end - s->pos)
        want = s->end - s->pos;
    if (want > cap)
        want = cap;
    if ((rc = layer_reader_read(&n, s->reader, dst, (size_t)want)) < 0)
        return rc;
    if (n == 0)
        return layer_error_set(LAYER_ERROR, "file data ended before its size");
    s->data_read += n;
    s->pos += n;
    *out_n = n;
    return 0;
}

static ssize_t stream_read(void *ctx, char *buf, size_t cap)
{
    file_stream *s = ctx;
    size_t used = 0;
    int rc;

    if (s->failed)
        return API_PRODUCE_ERROR;
    while (used < cap && s->pos < s->end) {
        uint64_t data_end = s->head_len + s->data_len;
        size_t n = 0;

        if (s->pos < s->head_len) {
            used +=
                copy_part(s, buf + used, cap - used, s->head, 0, s->head_len);
            continue;
        }
        if (s->pos >= data_end) {
            used += copy_part(s, buf + used, cap - used, s->tail, data_end,
                              s->tail_len);
            continue;
        }
        if ((rc = read_data(&n, s, buf + used, cap - used)) < 0) {
            s->failed = true;
            return used > 0 ? (ssize_t)used : API_PRODUCE_ERROR;
        }
        used += n;
    }
    if (used > 0)
        return (ssize_t)used;
    return API_PRODUCE_END;
}

static void stream_free(void *ctx)
{
    file_stream *s = ctx;

    if (s == NULL)
        return;
    layer_reader_free(s->reader);
    layer_info_free(s->info);
    layer_free(s->tail);
    layer_free(s);
}

/* Hex digits of the SHA-256 kept in an ETag: 128 bits. */
#define ETAG_HEX 32

/* The opaque ETag of e's representation (raw or backup), quoted, in out
 * (at least ETAG_HEX + 3 bytes). */
static int make_etag(char *out, size_t cap, const layer_entry *e, bool backup)
{
    char key[192], dig[LAYER_DIGEST_STR_SIZE];
    int n, rc;

    n = snprintf(
        key, sizeof(key), "layerd-etag-1\n%s\n%llu:%llu\n%llu\n%lld.%u",
        backup ? "win32-backup" : "raw", (unsigned long long)e->file_id.dev,
        (unsigned long long)e->file_id.ino, (unsigned long long)e->size,
        (long long)e->mtime.sec, (unsigned)e->mtime.nsec);
    if (backup && n > 0 && (size_t)n < sizeof(key))
        n += snprintf(key + n, sizeof(key) - (size_t)n, "\n%lld.%u",
                      (long long)e->ctime.sec, (unsigned)e->ctime.nsec);
    if (n < 0 || (size_t)n >= sizeof(key))
        return layer_error_set(LAYER_ERROR, "ETag key too long");
    if ((rc = layer_digest_buffer(dig, key, (size_t)n)) < 0)
        return rc;
    /* dig is "sha256:<64 hex>" */
    snprintf(out, cap, "\"%.*s\"", ETAG_HEX, dig + 7);
    return 0;
}

/* Parse a decimal number of at most 19 digits. */
static const char *header(api_call *call, const char *name)
{
    if (call->req->header == NULL)
        return NULL;
    return call->req->header(call->req->conn, name);
}

/* Find the regular file to serve; follows one hardlink. */
static int find_file(layer_reader **out_reader, const layer_entry **out,
                     api_call *call, const layer_info *info)
{
    layer_reader *r = NULL;
    const layer_entry *e = NULL;
    char *target = NULL;
    char detail[160];
    int rc;

    if ((rc = api_entries__find(&r, &e, call, info, call->path,
                                call->path_len)) < 0)
        goto out;
    if (e->change == LAYER_CHANGE_DELETE) {
        rc = LAYER_ENOTFOUND;
        api_problem__set(call, 404, "deleted", "Deleted in this layer",
                         "the layer deletes this path (a whiteout); it has "
                         "no data");
        goto out;
    }
    if (e->type == LAYER_TYPE_HARDLINK) {
        if ((target = layer_trystrndup(e->link_target, e->link_target_len)) ==
            NULL) {
            rc = LAYER_ENOMEM;
            goto out;
        }
        layer_reader_free(r);
        r = NULL;
        rc = api_entries__find(&r, &e, call, info, target, strlen(target));
        if (rc == LAYER_ENOTFOUND)
            rc = layer_error_set(LAYER_EBROKEN,
                                 "hardlink target is not in the changeset");
        if (rc < 0)
            goto out;
    }
    if (e->type != LAYER_TYPE_FILE) {
        rc = LAYER_EINVALID;
        snprintf(detail, sizeof(detail),
                 "only regular files have bytes to serve; this entry is "
                 "a %s (see /entries/{path} for its metadata)",
                 layer_type_name(e->type));
        api_problem__set(call, 409, "not-a-file", "Not a regular file", detail);
        goto out;
    }
    *out_reader = r;
    *out = e;
    r = NULL;
out:
    layer_free(target);
    layer_reader_free(r);
    return rc;
}

void api_files__get(api_call *call)
{
    api_response *res = call->res;
    file_stream *s = NULL;
    const layer_entry *e = NULL;
    const char *format = NULL, *v;
    uint64_t size, first = 0, last = 0;
    api_range range = API_RANGE_NONE;
    bool backup = false;
    char etag[160], buf[96];
    int rc;

    if ((rc = api_query__get(&format, call, "format")) < 0)
        goto out;
    if (format != NULL && strcmp(format, "win32-backup") == 0) {
        backup = true;
    } else if (format != NULL && strcmp(format, "raw") != 0) {
        rc = LAYER_EINVALID;
        api_problem__set(call, 400, "invalid-parameter", "Invalid parameter",
                         "query parameter 'format' must be raw or "
                         "win32-backup");
        goto out;
    }
    if ((s = layer_trycalloc(1, sizeof(*s))) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    if ((rc = api_layers__resolve(&s->info, call)) < 0 ||
        (rc = find_file(&s->reader, &e, call, s->info)) < 0)
        goto out;
    s->data_len = e->size;
    if (backup) {
        if ((rc = ea_stream(&s->tail, &s->tail_len, e)) < 0)
            goto out;
        stream_header(s->head, BACKUP_DATA, e->size);
        s->head_len = STREAM_HEADER_LEN;
    }
    size = s->head_len + s->data_len + s->tail_len;

    if ((rc = make_etag(etag, sizeof(etag), e, backup)) < 0)
        goto out;
    if ((rc = api_response_add_header(res, "ETag", etag)) < 0 ||
        (rc = api_response_add_header(res, "Accept-Ranges", "bytes")) < 0)
        goto out;

    if ((v = header(call, "If-None-Match")) != NULL &&
        api_etag__listed(v, etag)) {
        /* no body; the length is the representation's, as for 200 */
        res->status = 304;
        res->has_length = true;
        res->content_length = size;
        goto out;
    }
    v = header(call, "If-Range");
    if (v == NULL || strcmp(v, etag) == 0)
        range = api_range__parse(&first, &last, header(call, "Range"), size);
    if (range == API_RANGE_UNSATISFIABLE) {
        rc = LAYER_EINVALID;
        snprintf(buf, sizeof(buf), "the representation is %llu bytes long",
                 (unsigned long long)size);
        api_problem__set(call, 416, NULL, NULL, buf);
        snprintf(buf, sizeof(buf), "bytes */%llu", (unsigned long long)size);
        (void)api_response_add_header(res, "Content-Range", buf);
        (void)api_response_add_header(res, "Accept-Ranges", "bytes");
        goto out;
    }
    if (range == API_RANGE_NONE) {
        first = 0;
        last = size > 0 ? size - 1 : 0;
    }
    s->pos = first;
    s->end = size > 0 ? last + 1 : 0;

    if ((rc = api_response_add_header(res, "Content-Type",
                                      backup ? API_TYPE_WIN32_BACKUP
                                             : API_TYPE_OCTETS)) < 0 ||
        (rc = api_response_add_header(res, "X-Content-Type-Options",
                                      "nosniff")) < 0)
        goto out;
    if (range == API_RANGE_OK) {
        snprintf(buf, sizeof(buf), "bytes %llu-%llu/%llu",
                 (unsigned long long)first, (unsigned long long)last,
                 (unsigned long long)size);
        if ((rc = api_response_add_header(res, "Content-Range", buf)) < 0)
            goto out;
    }
    res->status = range == API_RANGE_OK ? 206 : 200;
    res->has_length = true;
    res->content_length = s->end - s->pos;
    if (res->head || s->end == s->pos)
        goto out; /* nothing to stream */
    res->producer.read = stream_read;
    res->producer.free = stream_free;
    res->producer.ctx = s;
    s = NULL;
out:
    if (rc < 0 && res->status == 0)
        api_problem__from_error(call, rc);
    stream_free(s);
}
