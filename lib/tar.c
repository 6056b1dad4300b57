/*
 * Tar headers, byte for byte as Go's archive/tar writes them for
 * containerd (src/archive/tar/writer.go, common.go, format.go; summary in
 * the reference notes, linux-layers.md §2.1-2.2).
 *
 * Each header is computed in two steps: plan() decides, like Go's
 * Header.allowedFormats(), whether the entry fits a plain ustar block
 * (possibly with the name split into prefix/name) or needs PAX records,
 * and how long those records are; emit() then writes the blocks. Nothing
 * is allocated: names are views over up to three pieces, so a whiteout
 * name ("dir/" ".wh." "base") or a directory name ("path" "/") is never
 * copied, and the sorted xattr records are walked in place.
 *
 * Details that matter for identical bytes:
 *  - numbers are octal, zero-padded, NUL-terminated; a number that does
 *    not fit is written as 0 in the ustar block (Go's formatOctal) and
 *    travels in a PAX record instead;
 *  - devmajor/devminor are formatted ("0000000") in every entry block but
 *    left as NUL bytes in the PAX 'x' block (writeRawFile);
 *  - with PAX, the ustar block carries the name with non-ASCII bytes
 *    dropped and cut to 100 bytes, and an empty prefix (writePAXHeader);
 *  - the 'x' block's name is path.Join(dir, "PaxHeaders.0", base), made
 *    ASCII, cut to 100 bytes and stripped of trailing slashes;
 *  - records are sorted by key and each is "%d %s=%s\n", the length
 *    counting itself (formatPAXRecord).
 */
#include "layer/tar.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "layer/error.h"

#define NAME_SIZE   100 /* ustar name and linkname fields */
#define PREFIX_SIZE 155 /* ustar prefix field */

/* Field offsets of a ustar block. */
#define OFF_NAME     0
#define OFF_MODE     100
#define OFF_UID      108
#define OFF_GID      116
#define OFF_SIZE     124
#define OFF_MTIME    136
#define OFF_CHKSUM   148
#define OFF_TYPEFLAG 156
#define OFF_LINKNAME 157
#define OFF_MAGIC    257
#define OFF_VERSION  263
#define OFF_DEVMAJOR 329
#define OFF_DEVMINOR 337
#define OFF_PREFIX   345

/* 8^7 and 8^11: the first values that no longer fit the 8- and 12-byte
 * octal fields (7 and 11 digits plus NUL). */
#define OCTAL7_LIMIT  (UINT64_C(1) << 21)
#define OCTAL11_LIMIT (UINT64_C(1) << 33)

#define XATTR_KEY_PREFIX     "SCHILY.xattr."
#define XATTR_KEY_PREFIX_LEN (sizeof(XATTR_KEY_PREFIX) - 1)
#define CAPABILITY_XATTR     "security.capability"

/* Basic PAX records, in key order ("gid" < "linkpath" < ... < "uid"). */
enum {
    REC_GID = 1u << 0,
    REC_LINKPATH = 1u << 1,
    REC_MTIME = 1u << 2,
    REC_PATH = 1u << 3,
    REC_SIZE = 1u << 4,
    REC_UID = 1u << 5
};

/* A byte string made of up to three pieces. */
typedef struct tname {
    const char *p[3];
    size_t n[3];
    size_t len;
} tname;

typedef struct plan {
    tname name;
    tname link;
    char typeflag;
    uint64_t mode;
    uint64_t uid;
    uint64_t gid;
    uint64_t size;
    int64_t mtime;
    uint64_t devmajor;
    uint64_t devminor;
    bool pax;
    size_t prefix_len; /* ustar prefix/name split at this '/', 0: none */
    unsigned recs;     /* REC_* */
    char uid_dec[24];
    char gid_dec[24];
    char size_dec[24];
    char mtime_dec[24];
    const layer_xattr *xattrs; /* NULL: no xattr records */
    size_t nxattrs;
    bool only_capability; /* export only security.capability */
    bool xattrs_sorted;   /* entry->xattrs strictly increasing */
    size_t pax_len;       /* bytes of PAX record data */
} plan;

static void tname_init(tname *t, const char *a, size_t an, const char *b,
                       size_t bn, const char *c, size_t cn)
{
    t->p[0] = a;
    t->n[0] = an;
    t->p[1] = b;
    t->n[1] = bn;
    t->p[2] = c;
    t->n[2] = cn;
    t->len = an + bn + cn;
}

static unsigned char tname_at(const tname *t, size_t i)
{
    for (int k = 0; k < 3; k++) {
        if (i < t->n[k])
            return (unsigned char)t->p[k][i];
        i -= t->n[k];
    }
    return 0;
}

/* Copy len bytes from offset off. */
static void tname_copy(char *dst, const tname *t, size_t off, size_t len)
{
    for (int k = 0; k < 3 && len > 0; k++) {
        size_t take;

        if (off >= t->n[k]) {
            off -= t->n[k];
            continue;
        }
        take = t->n[k] - off;
        if (take > len)
            take = len;
        memcpy(dst, t->p[k] + off, take);
        dst += take;
        len -= take;
        off = 0;
    }
}

/* Go's isASCII: no byte >= 0x80 and no NUL. */
static bool bytes_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x80 || c == 0)
            return false;
    }
    return true;
}

static bool tname_ascii(const tname *t)
{
    for (int k = 0; k < 3; k++) {
        if (!bytes_ascii(t->p[k], t->n[k]))
            return false;
    }
    return true;
}

/*
 * Go's toASCII() followed by a cut to cap bytes: append the bytes of
 * [s, s+n) that are ASCII and not NUL to dst (holding *len of cap).
 * Dropping bytes >= 0x80 one at a time is exactly what ranging over the
 * runes and keeping those < 0x80 does, valid UTF-8 or not.
 */
static void ascii_append(char *dst, size_t *len, size_t cap, const char *s,
                         size_t n)
{
    for (size_t i = 0; i < n && *len < cap; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x80 && c != 0)
            dst[(*len)++] = (char)c;
    }
}

static void tname_ascii_append(char *dst, size_t *len, size_t cap,
                               const tname *t, size_t off, size_t n)
{
    for (int k = 0; k < 3 && n > 0; k++) {
        size_t take;

        if (off >= t->n[k]) {
            off -= t->n[k];
            continue;
        }
        take = t->n[k] - off;
        if (take > n)
            take = n;
        ascii_append(dst, len, cap, t->p[k] + off, take);
        n -= take;
        off = 0;
    }
}

/*
 * Go's splitUSTARPath: a name longer than 100 bytes may be stored as
 * prefix (<= 155) '/' name (<= 100), split at the last '/' that allows it.
 * @return the prefix length, or 0 when the name cannot be split
 */
static size_t split_ustar(const tname *t, bool ascii)
{
    size_t length = t->len;
    size_t i, nlen;
    bool found = false;

    if (length <= NAME_SIZE || !ascii)
        return 0;
    if (length > PREFIX_SIZE + 1)
        length = PREFIX_SIZE + 1;
    else if (tname_at(t, length - 1) == '/')
        length--;
    for (i = length; i-- > 0;) {
        if (tname_at(t, i) == '/') {
            found = true;
            break;
        }
    }
    if (!found || i == 0)
        return 0;
    nlen = t->len - i - 1;
    if (nlen > NAME_SIZE || nlen == 0 || i > PREFIX_SIZE)
        return 0;
    return i;
}

static size_t dec_digits(size_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Go's formatPAXRecord length: "%d %s=%s\n" counting its own digits. */
static size_t record_len(size_t klen, size_t vlen)
{
    size_t base = klen + vlen + 3;
    size_t size = base + dec_digits(base);

    if (dec_digits(size) != dec_digits(base))
        size = base + dec_digits(size);
    return size;
}

/* Index of the next exported xattr after prev (SIZE_MAX: the first), in
 * key order; SIZE_MAX when there is none. */
static size_t xattr_next(const plan *pl, size_t prev)
{
    size_t best = SIZE_MAX;

    if (pl->xattrs == NULL)
        return SIZE_MAX;
    if (pl->only_capability) {
        if (prev != SIZE_MAX)
            return SIZE_MAX;
        for (size_t i = 0; i < pl->nxattrs; i++) {
            if (strcmp(pl->xattrs[i].name, CAPABILITY_XATTR) == 0 &&
                pl->xattrs[i].len > 0)
                return i;
        }
        return SIZE_MAX;
    }
    if (pl->xattrs_sorted) {
        size_t next = prev == SIZE_MAX ? 0 : prev + 1;
        return next < pl->nxattrs ? next : SIZE_MAX;
    }
    /* Unsorted input: select the smallest name greater than prev. Quadratic,
     * but only reached if a reader breaks the sorted-xattrs promise. */
    for (size_t i = 0; i < pl->nxattrs; i++) {
        const char *name = pl->xattrs[i].name;

        if (prev != SIZE_MAX && strcmp(name, pl->xattrs[prev].name) <= 0)
            continue;
        if (best == SIZE_MAX || strcmp(name, pl->xattrs[best].name) < 0)
            best = i;
    }
    return best;
}

static char type_flag(layer_type type)
{
    switch (type) {
    case LAYER_TYPE_FILE:
        return '0';
    case LAYER_TYPE_HARDLINK:
        return '1';
    case LAYER_TYPE_SYMLINK:
        return '2';
    case LAYER_TYPE_CHAR:
        return '3';
    case LAYER_TYPE_BLOCK:
        return '4';
    case LAYER_TYPE_DIR:
        return '5';
    case LAYER_TYPE_FIFO:
        return '6';
    case LAYER_TYPE_NONE:
        break;
    }
    return 0;
}

static int plan_xattrs(plan *pl, const layer_entry *e,
                       const layer_tar_opts *opts)
{
    size_t i;

    pl->only_capability = !(opts->flags & LAYER_TAR_ALL_XATTRS);
    if (e->xattr_count == 0 || e->xattrs == NULL)
        return 0;
    pl->xattrs = e->xattrs;
    pl->nxattrs = e->xattr_count;
    pl->xattrs_sorted = true;
    for (i = 1; i < e->xattr_count; i++) {
        if (strcmp(e->xattrs[i - 1].name, e->xattrs[i].name) >= 0) {
            pl->xattrs_sorted = false;
            break;
        }
    }
    for (i = xattr_next(pl, SIZE_MAX); i != SIZE_MAX; i = xattr_next(pl, i)) {
        const layer_xattr *x = &pl->xattrs[i];
        size_t nlen = strlen(x->name);

        /* Go's validPAXRecord refuses keys with '=' (and ErrHeader ends the
         * whole archive); say so instead of writing an unreadable record. */
        if (nlen == 0 || memchr(x->name, '=', nlen) != NULL)
            return layer_error_set(LAYER_EINVALID,
                                   "%s: xattr name \"%s\" cannot be a PAX "
                                   "record key",
                                   e->path, x->name);
        if (nlen > LAYER_TAR_PAX_MAX || x->len > LAYER_TAR_PAX_MAX)
            return layer_error_set(LAYER_ETOOBIG,
                                   "%s: xattr %s is too large for a PAX "
                                   "header",
                                   e->path, x->name);
        pl->pax = true;
        pl->pax_len += record_len(XATTR_KEY_PREFIX_LEN + nlen, x->len);
    }
    return 0;
}

static int plan_make(plan *pl, const layer_entry *e, const layer_tar_opts *opts)
{
    static const layer_tar_opts no_opts;
    bool whiteout = e->change == LAYER_CHANGE_DELETE;
    bool ustar_ok = true;
    bool name_ascii;
    int rc;

    memset(pl, 0, sizeof(*pl));
    if (opts == NULL)
        opts = &no_opts;
    if (e->path == NULL || e->path_len == 0)
        return layer_error_set(LAYER_EINVALID, "tar entry with an empty path");
    if (memchr(e->path, '\0', e->path_len) != NULL)
        return layer_error_set(LAYER_EINVALID, "tar entry path contains NUL");
    if (e->path[0] == '/' || e->path[e->path_len - 1] == '/')
        return layer_error_set(LAYER_EINVALID,
                               "tar entry path \"%s\" is not relative and "
                               "clean",
                               e->path);

    if (whiteout) {
        /* containerd: Name "<dir>/.wh.<base>", Typeflag '0', everything
         * else zero, format left to Go (plain ustar unless the name needs
         * PAX). */
        const char *slash = memrchr(e->path, '/', e->path_len);
        size_t dlen = slash ? (size_t)(slash - e->path) + 1 : 0;

        tname_init(&pl->name, e->path, dlen, ".wh.", 4, e->path + dlen,
                   e->path_len - dlen);
        tname_init(&pl->link, NULL, 0, NULL, 0, NULL, 0);
        pl->typeflag = '0';
    } else {
        pl->typeflag = type_flag(e->type);
        if (pl->typeflag == 0)
            return layer_error_set(LAYER_EINVALID,
                                   "%s: entry type %d has no tar type", e->path,
                                   (int)e->type);
        tname_init(&pl->name, e->path, e->path_len,
                   e->type == LAYER_TYPE_DIR ? "/" : NULL,
                   e->type == LAYER_TYPE_DIR ? 1 : 0, NULL, 0);
        if ((e->type == LAYER_TYPE_SYMLINK || e->type == LAYER_TYPE_HARDLINK) &&
            e->link_target != NULL)
            tname_init(&pl->link, e->link_target, e->link_target_len, NULL, 0,
                       NULL, 0);
        else
            tname_init(&pl->link, NULL, 0, NULL, 0, NULL, 0);
        pl->mode = e->mode & 07777;
        pl->uid = e->uid;
        pl->gid = e->gid;
        pl->size = layer_tar_data_size(e);
        pl->mtime = e->mtime.sec;
        if ((opts->flags & LAYER_TAR_CLAMP_MTIME) && pl->mtime > opts->epoch)
            pl->mtime = opts->epoch;
        if (e->type == LAYER_TYPE_CHAR || e->type == LAYER_TYPE_BLOCK) {
            pl->devmajor = e->rdev_major;
            pl->devminor = e->rdev_minor;
            /* Neither ustar nor PAX can carry these (paxNone). */
            if (pl->devmajor >= OCTAL7_LIMIT || pl->devminor >= OCTAL7_LIMIT)
                return layer_error_set(LAYER_EINVALID,
                                       "%s: device %" PRIu64 ":%" PRIu64
                                       " does not fit a tar header",
                                       e->path, pl->devmajor, pl->devminor);
        }
        if (pl->link.n[0] > 0 &&
            memchr(pl->link.p[0], '\0', pl->link.n[0]) != NULL)
            return layer_error_set(LAYER_EINVALID,
                                   "%s: link target contains NUL", e->path);
    }

    /* Go's verifyString(Name, paxPath): a long or non-ASCII name gets a
     * "path" record (used only if PAX is chosen); ustar survives only by a
     * prefix split. */
    name_ascii = tname_ascii(&pl->name);
    if (!name_ascii || pl->name.len > NAME_SIZE) {
        pl->recs |= REC_PATH;
        pl->prefix_len = split_ustar(&pl->name, name_ascii);
        if (pl->prefix_len == 0)
            ustar_ok = false;
    }
    if (!bytes_ascii(pl->link.p[0], pl->link.n[0]) ||
        pl->link.len > NAME_SIZE) {
        pl->recs |= REC_LINKPATH;
        ustar_ok = false;
    }
    if (pl->uid >= OCTAL7_LIMIT) {
        pl->recs |= REC_UID;
        ustar_ok = false;
    }
    if (pl->gid >= OCTAL7_LIMIT) {
        pl->recs |= REC_GID;
        ustar_ok = false;
    }
    if (pl->size >= OCTAL11_LIMIT) {
        pl->recs |= REC_SIZE;
        ustar_ok = false;
    }
    if (pl->mtime < 0 || (uint64_t)pl->mtime >= OCTAL11_LIMIT) {
        pl->recs |= REC_MTIME;
        ustar_ok = false;
    }
    if (!whiteout && (rc = plan_xattrs(pl, e, opts)) < 0)
        return rc;
    if (!ustar_ok)
        pl->pax = true;

    if (!pl->pax) {
        pl->recs = 0;
        return 0;
    }
    pl->prefix_len = 0;
    snprintf(pl->uid_dec, sizeof(pl->uid_dec), "%" PRIu64, pl->uid);
    snprintf(pl->gid_dec, sizeof(pl->gid_dec), "%" PRIu64, pl->gid);
    snprintf(pl->size_dec, sizeof(pl->size_dec), "%" PRIu64, pl->size);
    snprintf(pl->mtime_dec, sizeof(pl->mtime_dec), "%" PRId64, pl->mtime);
    if (pl->recs & REC_GID)
        pl->pax_len += record_len(3, strlen(pl->gid_dec));
    if (pl->recs & REC_LINKPATH)
        pl->pax_len += record_len(8, pl->link.len);
    if (pl->recs & REC_MTIME)
        pl->pax_len += record_len(5, strlen(pl->mtime_dec));
    if (pl->recs & REC_PATH)
        pl->pax_len += record_len(4, pl->name.len);
    if (pl->recs & REC_SIZE)
        pl->pax_len += record_len(4, strlen(pl->size_dec));
    if (pl->recs & REC_UID)
        pl->pax_len += record_len(3, strlen(pl->uid_dec));
    if (pl->pax_len > LAYER_TAR_PAX_MAX)
        return layer_error_set(LAYER_ETOOBIG,
                               "%s: PAX records of %zu bytes exceed %u",
                               e->path, pl->pax_len, LAYER_TAR_PAX_MAX);
    return 0;
}

static size_t round_block(size_t n)
{
    return (n + LAYER_TAR_BLOCK_SIZE - 1) / LAYER_TAR_BLOCK_SIZE *
           LAYER_TAR_BLOCK_SIZE;
}

static size_t plan_size(const plan *pl)
{
    size_t n = LAYER_TAR_BLOCK_SIZE;

    if (pl->pax)
        n += LAYER_TAR_BLOCK_SIZE + round_block(pl->pax_len);
    return n;
}

/* Go's formatOctal: width-1 zero-padded digits and a NUL; a value that
 * does not fit is written as 0. */
static void put_octal(unsigned char *field, size_t width, uint64_t v)
{
    size_t digits = width - 1;

    if (digits < 22 && v >> (3 * digits) != 0)
        v = 0;
    field[digits] = '\0';
    for (size_t i = digits; i-- > 0;) {
        field[i] = (unsigned char)('0' + (v & 7));
        v >>= 3;
    }
}

/* Magic, version and checksum (Go's block.setFormat for ustar/PAX). */
static void finish_block(unsigned char *blk)
{
    unsigned sum = 0;

    memcpy(blk + OFF_MAGIC, "ustar\0", 6);
    memcpy(blk + OFF_VERSION, "00", 2);
    memset(blk + OFF_CHKSUM, ' ', 8);
    for (size_t i = 0; i < LAYER_TAR_BLOCK_SIZE; i++)
        sum += blk[i];
    put_octal(blk + OFF_CHKSUM, 7, sum);
    blk[OFF_CHKSUM + 7] = ' ';
}

static unsigned char *put_record(unsigned char *p, const char *kprefix,
                                 size_t kplen, const char *key, size_t klen,
                                 const tname *tv, const char *v, size_t vlen)
{
    size_t len = record_len(kplen + klen, tv ? tv->len : vlen);
    char num[24];
    int nn = snprintf(num, sizeof(num), "%zu", len);

    memcpy(p, num, (size_t)nn);
    p += nn;
    *p++ = ' ';
    memcpy(p, kprefix, kplen);
    p += kplen;
    memcpy(p, key, klen);
    p += klen;
    *p++ = '=';
    if (tv != NULL) {
        tname_copy((char *)p, tv, 0, tv->len);
        p += tv->len;
    } else {
        memcpy(p, v, vlen);
        p += vlen;
    }
    *p++ = '\n';
    return p;
}

static void emit_pax(unsigned char *out, const plan *pl)
{
    unsigned char *blk = out;
    unsigned char *p = out + LAYER_TAR_BLOCK_SIZE;
    char name[NAME_SIZE];
    size_t nlen = 0, slash = SIZE_MAX;

    /* path.Split + path.Join(dir, "PaxHeaders.0", file), toASCII, cut to
     * 100, TrimRight "/". The reader's paths are clean, so Join's Clean
     * has nothing to do beyond dropping an empty file part. */
    for (size_t i = pl->name.len; i-- > 0;) {
        if (tname_at(&pl->name, i) == '/') {
            slash = i;
            break;
        }
    }
    if (slash != SIZE_MAX)
        tname_ascii_append(name, &nlen, sizeof(name), &pl->name, 0, slash + 1);
    ascii_append(name, &nlen, sizeof(name), "PaxHeaders.0", 12);
    if (slash == SIZE_MAX || slash + 1 < pl->name.len) {
        size_t off = slash == SIZE_MAX ? 0 : slash + 1;

        ascii_append(name, &nlen, sizeof(name), "/", 1);
        tname_ascii_append(name, &nlen, sizeof(name), &pl->name, off,
                           pl->name.len - off);
    }
    while (nlen > 0 && name[nlen - 1] == '/')
        nlen--;

    memset(blk, 0, LAYER_TAR_BLOCK_SIZE);
    memcpy(blk + OFF_NAME, name, nlen);
    put_octal(blk + OFF_MODE, 8, 0);
    put_octal(blk + OFF_UID, 8, 0);
    put_octal(blk + OFF_GID, 8, 0);
    put_octal(blk + OFF_SIZE, 12, pl->pax_len);
    put_octal(blk + OFF_MTIME, 12, 0);
    blk[OFF_TYPEFLAG] = 'x';
    finish_block(blk);

    for (size_t i = xattr_next(pl, SIZE_MAX); i != SIZE_MAX;
         i = xattr_next(pl, i)) {
        const layer_xattr *x = &pl->xattrs[i];

        p = put_record(p, XATTR_KEY_PREFIX, XATTR_KEY_PREFIX_LEN, x->name,
                       strlen(x->name), NULL, (const char *)x->value, x->len);
    }
    if (pl->recs & REC_GID)
        p = put_record(p, "", 0, "gid", 3, NULL, pl->gid_dec,
                       strlen(pl->gid_dec));
    if (pl->recs & REC_LINKPATH)
        p = put_record(p, "", 0, "linkpath", 8, &pl->link, NULL, 0);
    if (pl->recs & REC_MTIME)
        p = put_record(p, "", 0, "mtime", 5, NULL, pl->mtime_dec,
                       strlen(pl->mtime_dec));
    if (pl->recs & REC_PATH)
        p = put_record(p, "", 0, "path", 4, &pl->name, NULL, 0);
    if (pl->recs & REC_SIZE)
        p = put_record(p, "", 0, "size", 4, NULL, pl->size_dec,
                       strlen(pl->size_dec));
    if (pl->recs & REC_UID)
        p = put_record(p, "", 0, "uid", 3, NULL, pl->uid_dec,
                       strlen(pl->uid_dec));
    memset(p, 0, layer_tar_padding(pl->pax_len));
}

/* Number of bytes Go's toASCII() keeps. */
static size_t tname_ascii_len(const tname *t)
{
    size_t n = 0;

    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < t->n[k]; i++) {
            unsigned char c = (unsigned char)t->p[k][i];

            n += c < 0x80 && c != 0;
        }
    }
    return n;
}

/*
 * A 100-byte name field of the ustar block that follows a PAX header:
 * Go's formatString(toASCII(s)). When the string is cut and the field
 * then ends in '/', the slashes are trimmed and the first replaced by a
 * NUL ("some buggy readers treat regular files with a trailing slash in
 * the V7 path field as a directory").
 */
static void put_ascii_field(unsigned char *field, const tname *t)
{
    size_t n = 0;

    tname_ascii_append((char *)field, &n, NAME_SIZE, t, 0, t->len);
    if (n == NAME_SIZE && field[NAME_SIZE - 1] == '/' &&
        tname_ascii_len(t) > NAME_SIZE) {
        while (n > 0 && field[n - 1] == '/')
            n--;
        field[n] = '\0';
    }
}

static void emit_ustar(unsigned char *blk, const plan *pl)
{
    memset(blk, 0, LAYER_TAR_BLOCK_SIZE);
    if (pl->pax) {
        put_ascii_field(blk + OFF_NAME, &pl->name);
        put_ascii_field(blk + OFF_LINKNAME, &pl->link);
    } else if (pl->prefix_len > 0) {
        tname_copy((char *)blk + OFF_PREFIX, &pl->name, 0, pl->prefix_len);
        tname_copy((char *)blk + OFF_NAME, &pl->name, pl->prefix_len + 1,
                   pl->name.len - pl->prefix_len - 1);
        tname_copy((char *)blk + OFF_LINKNAME, &pl->link, 0, pl->link.len);
    } else {
        tname_copy((char *)blk + OFF_NAME, &pl->name, 0, pl->name.len);
        tname_copy((char *)blk + OFF_LINKNAME, &pl->link, 0, pl->link.len);
    }
    put_octal(blk + OFF_MODE, 8, pl->mode);
    put_octal(blk + OFF_UID, 8, pl->uid);
    put_octal(blk + OFF_GID, 8, pl->gid);
    put_octal(blk + OFF_SIZE, 12, pl->size);
    put_octal(blk + OFF_MTIME, 12, pl->mtime < 0 ? 0 : (uint64_t)pl->mtime);
    blk[OFF_TYPEFLAG] = (unsigned char)pl->typeflag;
    put_octal(blk + OFF_DEVMAJOR, 8, pl->devmajor);
    put_octal(blk + OFF_DEVMINOR, 8, pl->devminor);
    finish_block(blk);
}

int layer_tar_header_size(size_t *out_size, const layer_entry *entry,
                          const layer_tar_opts *opts)
{
    plan pl;
    int rc;

    if ((rc = plan_make(&pl, entry, opts)) < 0)
        return rc;
    *out_size = plan_size(&pl);
    return 0;
}

int layer_tar_header(size_t *out_n, void *buf, size_t cap,
                     const layer_entry *entry, const layer_tar_opts *opts)
{
    unsigned char *p = buf;
    plan pl;
    size_t need;
    int rc;

    if ((rc = plan_make(&pl, entry, opts)) < 0)
        return rc;
    need = plan_size(&pl);
    if (cap < need)
        return layer_error_set(LAYER_ETOOBIG,
                               "%s: tar header needs %zu bytes, %zu available",
                               entry->path, need, cap);
    if (pl.pax) {
        emit_pax(p, &pl);
        p += LAYER_TAR_BLOCK_SIZE + round_block(pl.pax_len);
    }
    emit_ustar(p, &pl);
    *out_n = need;
    return 0;
}

uint64_t layer_tar_data_size(const layer_entry *entry)
{
    if (entry->change == LAYER_CHANGE_DELETE || entry->type != LAYER_TYPE_FILE)
        return 0;
    return entry->size;
}

size_t layer_tar_padding(uint64_t size)
{
    return (size_t)((LAYER_TAR_BLOCK_SIZE - size % LAYER_TAR_BLOCK_SIZE) %
                    LAYER_TAR_BLOCK_SIZE);
}

int layer_tar_trailer(size_t *out_n, void *buf, size_t cap)
{
    if (cap < LAYER_TAR_TRAILER_SIZE)
        return layer_error_set(LAYER_ETOOBIG,
                               "tar trailer needs %d bytes, %zu available",
                               LAYER_TAR_TRAILER_SIZE, cap);
    memset(buf, 0, LAYER_TAR_TRAILER_SIZE);
    *out_n = LAYER_TAR_TRAILER_SIZE;
    return 0;
}
