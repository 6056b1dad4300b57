/*
 * Tar header bytes. Every expected block is built here field by field
 * from literal octal strings (computed by hand from Go's archive/tar
 * rules), with the checksum summed independently, so a change in the
 * writer's bytes fails these tests. The same cases were cross-checked
 * against Go 1.19's archive/tar output when the writer was written.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer/error.h"
#include "layer/tar.h"

#define BLK 512

typedef struct fields {
    const char *name; /* raw bytes */
    size_t name_len;  /* 0: strlen(name) */
    const char *mode;
    const char *uid;
    const char *gid;
    const char *size;
    const char *mtime;
    char type;
    const char *link;
    size_t link_len;
    const char *devmajor; /* NULL: "0000000" */
    const char *devminor;
    const char *prefix;
    bool pax_block; /* an 'x' block: device fields stay NUL */
} fields;

static void put(unsigned char *blk, size_t off, const char *s, size_t n)
{
    if (s != NULL)
        memcpy(blk + off, s, n ? n : strlen(s));
}

/* An expected block: literal fields, magic "ustar\0" "00", checksum. */
static void build(unsigned char blk[BLK], const fields *f)
{
    unsigned sum = 0;
    char ck[8];

    memset(blk, 0, BLK);
    put(blk, 0, f->name, f->name_len);
    put(blk, 100, f->mode, 0);
    put(blk, 108, f->uid, 0);
    put(blk, 116, f->gid, 0);
    put(blk, 124, f->size, 0);
    put(blk, 136, f->mtime, 0);
    blk[156] = (unsigned char)f->type;
    put(blk, 157, f->link, f->link_len);
    memcpy(blk + 257,
           "ustar\0"
           "00",
           8);
    if (!f->pax_block) {
        put(blk, 329, f->devmajor ? f->devmajor : "0000000", 0);
        put(blk, 337, f->devminor ? f->devminor : "0000000", 0);
    }
    put(blk, 345, f->prefix, 0);
    memset(blk + 148, ' ', 8);
    for (int i = 0; i < BLK; i++)
        sum += blk[i];
    snprintf(ck, sizeof(ck), "%06o", sum);
    memcpy(blk + 148, ck, 7); /* six digits and the NUL */
    blk[155] = ' ';
}

static layer_entry entry(layer_type type, const char *path)
{
    layer_entry e;

    memset(&e, 0, sizeof(e));
    e.path = path;
    e.path_len = strlen(path);
    e.change = LAYER_CHANGE_ADD;
    e.type = type;
    e.mode = 0644;
    e.mtime.sec = 1700000000;
    e.mtime.nsec = 500000000;
    return e;
}

static unsigned char out[1 << 16];

static size_t header(const layer_entry *e, const layer_tar_opts *o)
{
    size_t n = 0, sz = 0;
    int rc = layer_tar_header(&n, out, sizeof(out), e, o);

    ck_assert_msg(rc == 0, "layer_tar_header: %s", layer_error_last());
    ck_assert_int_eq(layer_tar_header_size(&sz, e, o), 0);
    ck_assert_uint_eq(sz, n);
    return n;
}

static void assert_block(const unsigned char *got, const fields *f)
{
    unsigned char want[BLK];

    build(want, f);
    for (int i = 0; i < BLK; i++)
        ck_assert_msg(got[i] == want[i],
                      "byte %d differs: got 0x%02x want 0x%02x", i, got[i],
                      want[i]);
}

/* The PAX data area after the 'x' block: records, then zero padding. */
static void assert_pax_data(const unsigned char *got, const char *data,
                            size_t len)
{
    size_t padded = (len + BLK - 1) / BLK * BLK;

    ck_assert_mem_eq(got, data, len);
    for (size_t i = len; i < padded; i++)
        ck_assert_uint_eq(got[i], 0);
}

START_TEST(test_regular_file_is_one_ustar_block)
{
    layer_entry e = entry(LAYER_TYPE_FILE, "usr/bin/ls");
    fields f = {.name = "usr/bin/ls",
                .mode = "0000755",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000030071",
                .mtime = "14524770400",
                .type = '0'};

    e.mode = 0100755; /* type bits are not part of the tar mode */
    e.size = 12345;
    e.atime.sec = 1; /* atime/ctime are never written */
    ck_assert_uint_eq(header(&e, NULL), BLK);
    assert_block(out, &f);
    ck_assert_uint_eq(layer_tar_data_size(&e), 12345);
}
END_TEST

START_TEST(test_directory_name_ends_in_slash)
{
    layer_entry e = entry(LAYER_TYPE_DIR, "usr/bin");
    fields f = {.name = "usr/bin/",
                .mode = "0000755",
                .uid = "0001750",
                .gid = "0001750",
                .size = "00000000000",
                .mtime = "13727410000",
                .type = '5'};

    e.mode = 0755;
    e.uid = e.gid = 1000;
    e.size = 4096; /* a directory's st_size is not data */
    e.mtime.sec = 1600000000;
    ck_assert_uint_eq(header(&e, NULL), BLK);
    assert_block(out, &f);
    ck_assert_uint_eq(layer_tar_data_size(&e), 0);
}
END_TEST

START_TEST(test_special_bits_are_kept_in_mode)
{
    layer_entry e = entry(LAYER_TYPE_DIR, "tmp");
    fields f = {.name = "tmp/",
                .mode = "0007755",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "14524770400",
                .type = '5'};

    e.mode = 07755;
    header(&e, NULL);
    assert_block(out, &f);
}
END_TEST

START_TEST(test_symlink_carries_its_target)
{
    layer_entry e = entry(LAYER_TYPE_SYMLINK, "lib");
    fields f = {.name = "lib",
                .mode = "0000777",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "14524770400",
                .type = '2',
                .link = "usr/lib"};

    e.mode = 0777;
    e.link_target = "usr/lib";
    e.link_target_len = 7;
    e.size = 7;
    header(&e, NULL);
    assert_block(out, &f);
    ck_assert_uint_eq(layer_tar_data_size(&e), 0);
}
END_TEST

START_TEST(test_hardlink_has_size_zero_and_names_first_path)
{
    layer_entry e = entry(LAYER_TYPE_HARDLINK, "usr/bin/ls2");
    fields f = {.name = "usr/bin/ls2",
                .mode = "0000755",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "14524770400",
                .type = '1',
                .link = "usr/bin/ls"};

    e.mode = 0755;
    e.size = 12345;
    e.link_target = "usr/bin/ls";
    e.link_target_len = 10;
    header(&e, NULL);
    assert_block(out, &f);
    ck_assert_uint_eq(layer_tar_data_size(&e), 0);
}
END_TEST

START_TEST(test_char_and_block_devices_carry_numbers)
{
    layer_entry c = entry(LAYER_TYPE_CHAR, "dev/null");
    layer_entry b = entry(LAYER_TYPE_BLOCK, "dev/nvme0n1p1");
    fields fc = {.name = "dev/null",
                 .mode = "0000666",
                 .uid = "0000000",
                 .gid = "0000000",
                 .size = "00000000000",
                 .mtime = "14524770400",
                 .type = '3',
                 .devmajor = "0000001",
                 .devminor = "0000003"};
    fields fb = {.name = "dev/nvme0n1p1",
                 .mode = "0000660",
                 .uid = "0000000",
                 .gid = "0000006",
                 .size = "00000000000",
                 .mtime = "14524770400",
                 .type = '4',
                 .devmajor = "0000403",
                 .devminor = "3777777"};

    c.mode = 0666;
    c.rdev_major = 1;
    c.rdev_minor = 3;
    header(&c, NULL);
    assert_block(out, &fc);
    b.mode = 0660;
    b.gid = 6;
    b.rdev_major = 259;
    b.rdev_minor = 1048575; /* the largest Linux minor */
    header(&b, NULL);
    assert_block(out, &fb);
}
END_TEST

START_TEST(test_fifo)
{
    layer_entry e = entry(LAYER_TYPE_FIFO, "run/initctl");
    fields f = {.name = "run/initctl",
                .mode = "0000600",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "14524770400",
                .type = '6'};

    e.mode = 0600;
    header(&e, NULL);
    assert_block(out, &f);
}
END_TEST

START_TEST(test_whiteout_is_empty_file_with_zero_metadata)
{
    layer_entry e = entry(LAYER_TYPE_NONE, "etc/passwd");
    layer_entry top = entry(LAYER_TYPE_NONE, "foo");
    fields f = {.name = "etc/.wh.passwd",
                .mode = "0000000",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "00000000000",
                .type = '0'};
    fields ft = f;

    /* Whatever the entry carries, a whiteout is mode 0, ids 0, mtime 0. */
    e.change = LAYER_CHANGE_DELETE;
    e.mode = 0755;
    e.uid = 5;
    e.size = 99;
    ck_assert_uint_eq(header(&e, NULL), BLK);
    assert_block(out, &f);
    ck_assert_uint_eq(layer_tar_data_size(&e), 0);

    top.change = LAYER_CHANGE_DELETE;
    ft.name = ".wh.foo";
    header(&top, NULL);
    assert_block(out, &ft);
}
END_TEST

START_TEST(test_long_splittable_name_uses_ustar_prefix)
{
    char path[200], dir[200];
    layer_entry e;
    fields f = {.mode = "0000644",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000001",
                .mtime = "14524770400",
                .type = '0'};

    /* 60 a, '/', 60 b, '/', 50 c: 172 bytes, split at the last '/'. */
    memset(path, 'a', 60);
    path[60] = '/';
    memset(path + 61, 'b', 60);
    path[121] = '/';
    memset(path + 122, 'c', 50);
    path[172] = '\0';
    memcpy(dir, path, 121);
    dir[121] = '\0';
    e = entry(LAYER_TYPE_FILE, path);
    e.size = 1;
    f.name = path + 122;
    f.prefix = dir;
    ck_assert_uint_eq(header(&e, NULL), BLK);
    assert_block(out, &f);
}
END_TEST

START_TEST(test_long_unsplittable_name_uses_pax_path)
{
    char path[121], data[200], xname[101];
    layer_entry e;
    fields fx = {.mode = "0000000",
                 .uid = "0000000",
                 .gid = "0000000",
                 .size = "00000000202",
                 .mtime = "00000000000",
                 .type = 'x',
                 .pax_block = true};
    fields f = {.mode = "0000644",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000002",
                .mtime = "14524770400",
                .type = '0',
                .name_len = 100};

    memset(path, 'x', 120);
    path[120] = '\0';
    e = entry(LAYER_TYPE_FILE, path);
    e.size = 2;
    /* "130 path=<120 x>\n": 130 = 0202 bytes. */
    snprintf(data, sizeof(data), "130 path=%s\n", path);
    /* "PaxHeaders.0/<name>" cut to 100 bytes. */
    snprintf(xname, sizeof(xname), "PaxHeaders.0/%.87s", path);
    fx.name = xname;
    f.name = path; /* cut to 100 bytes */
    ck_assert_uint_eq(header(&e, NULL), 3 * BLK);
    assert_block(out, &fx);
    assert_pax_data(out + BLK, data, 130);
    assert_block(out + 2 * BLK, &f);
}
END_TEST

START_TEST(test_non_ascii_name_uses_pax_path_and_ascii_fallback)
{
    layer_entry e = entry(LAYER_TYPE_FILE, "caf\xc3\xa9/men\xc3\xbc.txt");
    layer_entry bad = entry(LAYER_TYPE_FILE, "bad\xff\xfe");
    fields fx = {.name = "caf/PaxHeaders.0/men.txt",
                 .mode = "0000000",
                 .uid = "0000000",
                 .gid = "0000000",
                 .size = "00000000030",
                 .mtime = "00000000000",
                 .type = 'x',
                 .pax_block = true};
    fields f = {.name = "caf/men.txt",
                .mode = "0000644",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000003",
                .mtime = "14524770400",
                .type = '0'};
    const char rec[] = "24 path=caf\xc3\xa9/men\xc3\xbc.txt\n";
    const char badrec[] = "14 path=bad\xff\xfe\n";

    e.size = 3;
    ck_assert_uint_eq(header(&e, NULL), 3 * BLK);
    assert_block(out, &fx);
    assert_pax_data(out + BLK, rec, sizeof(rec) - 1);
    assert_block(out + 2 * BLK, &f);

    /* Bytes that are not UTF-8 go into the record unchanged. */
    bad.size = 3;
    header(&bad, NULL);
    fx.name = "PaxHeaders.0/bad";
    fx.size = "00000000016";
    f.name = "bad";
    assert_block(out, &fx);
    assert_pax_data(out + BLK, badrec, sizeof(badrec) - 1);
    assert_block(out + 2 * BLK, &f);
}
END_TEST

START_TEST(test_long_linkname_uses_pax_linkpath)
{
    char target[151], data[200];
    layer_entry e = entry(LAYER_TYPE_SYMLINK, "s");
    fields fx = {.name = "PaxHeaders.0/s",
                 .mode = "0000000",
                 .uid = "0000000",
                 .gid = "0000000",
                 .size = "00000000244",
                 .mtime = "00000000000",
                 .type = 'x',
                 .pax_block = true};
    fields f = {.name = "s",
                .mode = "0000777",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "14524770400",
                .type = '2',
                .link_len = 100};

    memset(target, 't', 150);
    target[150] = '\0';
    e.mode = 0777;
    e.link_target = target;
    e.link_target_len = 150;
    snprintf(data, sizeof(data), "164 linkpath=%s\n", target);
    f.link = target;
    ck_assert_uint_eq(header(&e, NULL), 3 * BLK);
    assert_block(out, &fx);
    assert_pax_data(out + BLK, data, 164);
    assert_block(out + 2 * BLK, &f);
}
END_TEST

START_TEST(test_linkname_of_exactly_100_bytes_stays_ustar)
{
    char target[101];
    layer_entry e = entry(LAYER_TYPE_SYMLINK, "l");
    fields f = {.name = "l",
                .mode = "0000777",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "14524770400",
                .type = '2',
                .link_len = 100};

    memset(target, 'm', 100);
    target[100] = '\0';
    e.mode = 0777;
    e.link_target = target;
    e.link_target_len = 100;
    f.link = target;
    ck_assert_uint_eq(header(&e, NULL), BLK);
    assert_block(out, &f);
}
END_TEST

START_TEST(test_size_of_8gib_uses_pax_size)
{
    layer_entry e = entry(LAYER_TYPE_FILE, "big");
    layer_entry below = entry(LAYER_TYPE_FILE, "big");
    fields fx = {.name = "PaxHeaders.0/big",
                 .mode = "0000000",
                 .uid = "0000000",
                 .gid = "0000000",
                 .size = "00000000023",
                 .mtime = "00000000000",
                 .type = 'x',
                 .pax_block = true};
    fields f = {.name = "big",
                .mode = "0000644",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000", /* does not fit: 0, as Go */
                .mtime = "14524770400",
                .type = '0'};
    fields fb = f;
    const char rec[] = "19 size=8589934592\n";

    e.size = UINT64_C(8) << 30;
    ck_assert_uint_eq(header(&e, NULL), 3 * BLK);
    assert_block(out, &fx);
    assert_pax_data(out + BLK, rec, sizeof(rec) - 1);
    assert_block(out + 2 * BLK, &f);
    ck_assert_uint_eq(layer_tar_data_size(&e), UINT64_C(8) << 30);

    below.size = (UINT64_C(8) << 30) - 1;
    fb.size = "77777777777";
    ck_assert_uint_eq(header(&below, NULL), BLK);
    assert_block(out, &fb);
}
END_TEST

START_TEST(test_ids_from_8_pow_7_use_pax)
{
    layer_entry e = entry(LAYER_TYPE_FILE, "ids");
    layer_entry max = entry(LAYER_TYPE_FILE, "ids");
    fields fx = {.name = "PaxHeaders.0/ids",
                 .mode = "0000000",
                 .uid = "0000000",
                 .gid = "0000000",
                 .size = "00000000036",
                 .mtime = "00000000000",
                 .type = 'x',
                 .pax_block = true};
    fields f = {.name = "ids",
                .mode = "0000644",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "14524770400",
                .type = '0'};
    fields fm = f;
    const char rec[] = "15 gid=3000000\n"
                       "15 uid=2097152\n";

    e.uid = 2097152;
    e.gid = 3000000;
    ck_assert_uint_eq(header(&e, NULL), 3 * BLK);
    assert_block(out, &fx);
    assert_pax_data(out + BLK, rec, sizeof(rec) - 1);
    assert_block(out + 2 * BLK, &f);

    max.uid = max.gid = 2097151;
    fm.uid = fm.gid = "7777777";
    ck_assert_uint_eq(header(&max, NULL), BLK);
    assert_block(out, &fm);
}
END_TEST

static const unsigned char cap_value[8] = {1, 0, 0, 2, 0, 0x20, 0, 0};

START_TEST(test_only_capability_xattr_by_default)
{
    layer_xattr xs[2] = {
        {.name = "security.capability", .value = cap_value, .len = 8},
        {.name = "user.foo", .value = (const unsigned char *)"bar", .len = 3},
    };
    layer_entry e = entry(LAYER_TYPE_FILE, "cap");
    fields fx = {.name = "PaxHeaders.0/cap",
                 .mode = "0000000",
                 .uid = "0000000",
                 .gid = "0000000",
                 .size = "00000000055",
                 .mtime = "00000000000",
                 .type = 'x',
                 .pax_block = true};
    fields f = {.name = "cap",
                .mode = "0000644",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000005",
                .mtime = "14524770400",
                .type = '0'};
    char rec[64];

    memcpy(rec, "45 SCHILY.xattr.security.capability=", 36);
    memcpy(rec + 36, cap_value, 8);
    rec[44] = '\n';
    e.size = 5;
    e.xattrs = xs;
    e.xattr_count = 2;
    ck_assert_uint_eq(header(&e, NULL), 3 * BLK);
    assert_block(out, &fx);
    assert_pax_data(out + BLK, rec, 45);
    assert_block(out + 2 * BLK, &f);
}
END_TEST

START_TEST(test_without_capability_stays_ustar)
{
    layer_xattr xs[2] = {
        {.name = "security.capability", .value = cap_value, .len = 0},
        {.name = "user.foo", .value = (const unsigned char *)"bar", .len = 3},
    };
    layer_entry e = entry(LAYER_TYPE_FILE, "nocap");

    e.xattrs = xs;
    e.xattr_count = 2; /* an empty capability is not exported (containerd) */
    ck_assert_uint_eq(header(&e, NULL), BLK);
    ck_assert_uint_eq(out[156], '0');
}
END_TEST

START_TEST(test_all_xattrs_option_sorts_records)
{
    /* Deliberately out of order: the records must still be sorted. */
    layer_xattr xs[4] = {
        {.name = "user.b", .value = (const unsigned char *)"2", .len = 1},
        {.name = "security.capability", .value = cap_value, .len = 4},
        {.name = "user.a", .value = (const unsigned char *)"1\n=", .len = 3},
        {.name = "trusted.x", .value = (const unsigned char *)"", .len = 0},
    };
    layer_entry e = entry(LAYER_TYPE_FILE, "allx");
    layer_tar_opts o = {.flags = LAYER_TAR_ALL_XATTRS};
    fields fx = {.name = "PaxHeaders.0/allx",
                 .mode = "0000000",
                 .uid = "0000000",
                 .gid = "0000000",
                 .size = "00000000170", /* 41 + 27 + 27 + 25 = 120 */
                 .mtime = "00000000000",
                 .type = 'x',
                 .pax_block = true};
    fields f = {.name = "allx",
                .mode = "0000644",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "14524770400",
                .type = '0'};
    char rec[200];
    size_t n = 0;

    memcpy(rec + n, "41 SCHILY.xattr.security.capability=", 36);
    n += 36;
    memcpy(rec + n, cap_value, 4);
    n += 4;
    rec[n++] = '\n';
    memcpy(rec + n, "27 SCHILY.xattr.trusted.x=\n", 27);
    n += 27;
    memcpy(rec + n, "27 SCHILY.xattr.user.a=1\n=\n", 27);
    n += 27;
    memcpy(rec + n, "25 SCHILY.xattr.user.b=2\n", 25);
    n += 25;
    ck_assert_uint_eq(n, 120);
    e.xattrs = xs;
    e.xattr_count = 4;
    ck_assert_uint_eq(header(&e, &o), 3 * BLK);
    assert_block(out, &fx);
    assert_pax_data(out + BLK, rec, n);
    assert_block(out + 2 * BLK, &f);
}
END_TEST

START_TEST(test_xattr_forces_pax_path_for_splittable_name)
{
    char path[200];
    layer_xattr x = {
        .name = "security.capability", .value = cap_value, .len = 1};
    layer_entry e;

    /* 101 bytes that could be split, but the xattr forces PAX, and Go
     * then carries the long name as a "path" record. */
    memset(path, 'a', 50);
    path[50] = '/';
    memset(path + 51, 'b', 50);
    path[101] = '\0';
    e = entry(LAYER_TYPE_FILE, path);
    e.xattrs = &x;
    e.xattr_count = 1;
    header(&e, NULL);
    ck_assert_uint_eq(out[156], 'x');
    /* records: "38 SCHILY.xattr.security.capability=\1\n",
     * "111 path=<101 bytes>\n" */
    ck_assert_mem_eq(out + BLK + 38, "111 path=", 9);
    ck_assert_mem_eq(out + BLK + 47, path, 101);
    /* the ustar block has the name cut to 100 and no prefix */
    ck_assert_mem_eq(out + 2 * BLK, path, 100);
    ck_assert_uint_eq(out[2 * BLK + 345], 0);
}
END_TEST

START_TEST(test_mtime_is_clamped_to_epoch)
{
    layer_entry e = entry(LAYER_TYPE_FILE, "clamp");
    layer_entry early = entry(LAYER_TYPE_FILE, "clamp");
    layer_tar_opts o = {.flags = LAYER_TAR_CLAMP_MTIME, .epoch = 1500000000};
    fields f = {.name = "clamp",
                .mode = "0000644",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "13132027400",
                .type = '0'};
    fields fe = f;

    e.mtime.sec = 2000000000;
    header(&e, &o);
    assert_block(out, &f);
    /* earlier mtimes are kept */
    early.mtime.sec = 1000000000;
    fe.mtime = "07346545000";
    header(&early, &o);
    assert_block(out, &fe);
    /* without the flag nothing is clamped */
    fe.mtime = "16715312000";
    header(&e, NULL);
    assert_block(out, &fe);
}
END_TEST

START_TEST(test_negative_mtime_uses_pax_mtime)
{
    layer_entry e = entry(LAYER_TYPE_FILE, "neg");
    fields fx = {.name = "PaxHeaders.0/neg",
                 .mode = "0000000",
                 .uid = "0000000",
                 .gid = "0000000",
                 .size = "00000000016",
                 .mtime = "00000000000",
                 .type = 'x',
                 .pax_block = true};
    fields f = {.name = "neg",
                .mode = "0000644",
                .uid = "0000000",
                .gid = "0000000",
                .size = "00000000000",
                .mtime = "00000000000",
                .type = '0'};
    const char rec[] = "14 mtime=-100\n";

    e.mtime.sec = -100;
    e.mtime.nsec = 0;
    header(&e, NULL);
    assert_block(out, &fx);
    assert_pax_data(out + BLK, rec, sizeof(rec) - 1);
    assert_block(out + 2 * BLK, &f);
}
END_TEST

START_TEST(test_cut_name_does_not_end_in_slash)
{
    /* A name whose ASCII form is cut at 100 bytes right after a '/':
     * Go replaces that trailing slash by NUL in the ustar block. */
    char path[160];
    layer_entry e;

    memset(path, 'd', 99);
    path[99] = '/';
    memcpy(path + 100, "\xc3\xa9\xc3\xa9z", 5);
    path[105] = '\0';
    e = entry(LAYER_TYPE_FILE, path);
    header(&e, NULL);
    ck_assert_uint_eq(out[156], 'x');
    ck_assert_mem_eq(out + 2 * BLK, path, 99);
    ck_assert_uint_eq(out[2 * BLK + 99], 0);
}
END_TEST

START_TEST(test_long_whiteout_name_uses_pax_path)
{
    char path[200], rec[240];
    layer_entry e;
    int n;

    memset(path, 'w', 120);
    memcpy(path, "dir/", 4);
    path[120] = '\0';
    e = entry(LAYER_TYPE_NONE, path);
    e.change = LAYER_CHANGE_DELETE;
    header(&e, NULL);
    /* "dir/.wh.<116 w>" is 124 bytes: "134 path=...\n" */
    n = snprintf(rec, sizeof(rec), "134 path=dir/.wh.%s\n", path + 4);
    ck_assert_int_eq(n, 134);
    assert_pax_data(out + BLK, rec, 134);
    ck_assert_mem_eq(out, "dir/PaxHeaders.0/.wh.www", 24);
    /* the entry block keeps the whiteout's zero metadata */
    ck_assert_mem_eq(out + 2 * BLK + 100, "0000000", 8);
    ck_assert_mem_eq(out + 2 * BLK + 136, "00000000000", 12);
}
END_TEST

START_TEST(test_trailer_is_1024_zero_bytes)
{
    unsigned char buf[2048];
    size_t n = 0;

    memset(buf, 0xaa, sizeof(buf));
    ck_assert_int_eq(layer_tar_trailer(&n, buf, sizeof(buf)), 0);
    ck_assert_uint_eq(n, 1024);
    for (int i = 0; i < 1024; i++)
        ck_assert_uint_eq(buf[i], 0);
    ck_assert_uint_eq(buf[1024], 0xaa);
    ck_assert_int_eq(layer_tar_trailer(&n, buf, 1023), LAYER_ETOOBIG);
}
END_TEST

START_TEST(test_padding_fills_the_last_block)
{
    ck_assert_uint_eq(layer_tar_padding(0), 0);
    ck_assert_uint_eq(layer_tar_padding(1), 511);
    ck_assert_uint_eq(layer_tar_padding(511), 1);
    ck_assert_uint_eq(layer_tar_padding(512), 0);
    ck_assert_uint_eq(layer_tar_padding(12345), 455);
    ck_assert_uint_eq(layer_tar_padding(UINT64_C(8) << 30), 0);
}
END_TEST

START_TEST(test_small_buffer_is_refused)
{
    layer_entry e = entry(LAYER_TYPE_FILE, "caf\xc3\xa9");
    size_t n = 77;

    ck_assert_int_eq(layer_tar_header(&n, out, 3 * BLK - 1, &e, NULL),
                     LAYER_ETOOBIG);
    ck_assert_uint_eq(n, 77);
    ck_assert_int_eq(layer_tar_header(&n, out, 3 * BLK, &e, NULL), 0);
    ck_assert_uint_eq(n, 3 * BLK);
}
END_TEST

START_TEST(test_invalid_entries_are_refused)
{
    layer_entry empty = entry(LAYER_TYPE_FILE, "");
    layer_entry none = entry(LAYER_TYPE_NONE, "x");
    layer_entry abs = entry(LAYER_TYPE_FILE, "/etc/passwd");
    layer_entry slash = entry(LAYER_TYPE_DIR, "etc/");
    layer_entry dev = entry(LAYER_TYPE_BLOCK, "dev/x");
    layer_entry eq = entry(LAYER_TYPE_FILE, "f");
    layer_xattr x = {
        .name = "user.a=b", .value = (const unsigned char *)"v", .len = 1};
    layer_tar_opts all = {.flags = LAYER_TAR_ALL_XATTRS};
    size_t n;

    ck_assert_int_eq(layer_tar_header(&n, out, sizeof(out), &empty, NULL),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_tar_header(&n, out, sizeof(out), &none, NULL),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_tar_header(&n, out, sizeof(out), &abs, NULL),
                     LAYER_EINVALID);
    ck_assert_int_eq(layer_tar_header(&n, out, sizeof(out), &slash, NULL),
                     LAYER_EINVALID);
    dev.rdev_major = 1u << 21;
    ck_assert_int_eq(layer_tar_header(&n, out, sizeof(out), &dev, NULL),
                     LAYER_EINVALID);
    eq.xattrs = &x;
    eq.xattr_count = 1;
    ck_assert_int_eq(layer_tar_header(&n, out, sizeof(out), &eq, &all),
                     LAYER_EINVALID);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "user.a=b"));
    /* without the option the xattr is not exported, so it is no error */
    ck_assert_int_eq(layer_tar_header(&n, out, sizeof(out), &eq, NULL), 0);
}
END_TEST

START_TEST(test_oversized_pax_records_are_refused)
{
    static unsigned char big[(1u << 20) + 1];
    layer_xattr x = {.name = "user.big", .value = big, .len = sizeof(big)};
    layer_entry e = entry(LAYER_TYPE_FILE, "f");
    layer_tar_opts all = {.flags = LAYER_TAR_ALL_XATTRS};
    size_t n;

    e.xattrs = &x;
    e.xattr_count = 1;
    ck_assert_int_eq(layer_tar_header_size(&n, &e, &all), LAYER_ETOOBIG);
}
END_TEST

static Suite *tar_suite(void)
{
    Suite *s = suite_create("tar");
    TCase *tc = tcase_create("headers");

    tcase_add_test(tc, test_regular_file_is_one_ustar_block);
    tcase_add_test(tc, test_directory_name_ends_in_slash);
    tcase_add_test(tc, test_special_bits_are_kept_in_mode);
    tcase_add_test(tc, test_symlink_carries_its_target);
    tcase_add_test(tc, test_hardlink_has_size_zero_and_names_first_path);
    tcase_add_test(tc, test_char_and_block_devices_carry_numbers);
    tcase_add_test(tc, test_fifo);
    tcase_add_test(tc, test_whiteout_is_empty_file_with_zero_metadata);
    tcase_add_test(tc, test_long_splittable_name_uses_ustar_prefix);
    tcase_add_test(tc, test_long_unsplittable_name_uses_pax_path);
    tcase_add_test(tc, test_non_ascii_name_uses_pax_path_and_ascii_fallback);
    tcase_add_test(tc, test_long_linkname_uses_pax_linkpath);
    tcase_add_test(tc, test_linkname_of_exactly_100_bytes_stays_ustar);
    tcase_add_test(tc, test_size_of_8gib_uses_pax_size);
    tcase_add_test(tc, test_ids_from_8_pow_7_use_pax);
    tcase_add_test(tc, test_only_capability_xattr_by_default);
    tcase_add_test(tc, test_without_capability_stays_ustar);
    tcase_add_test(tc, test_all_xattrs_option_sorts_records);
    tcase_add_test(tc, test_xattr_forces_pax_path_for_splittable_name);
    tcase_add_test(tc, test_mtime_is_clamped_to_epoch);
    tcase_add_test(tc, test_negative_mtime_uses_pax_mtime);
    tcase_add_test(tc, test_cut_name_does_not_end_in_slash);
    tcase_add_test(tc, test_long_whiteout_name_uses_pax_path);
    tcase_add_test(tc, test_trailer_is_1024_zero_bytes);
    tcase_add_test(tc, test_padding_fills_the_last_block);
    tcase_add_test(tc, test_small_buffer_is_refused);
    tcase_add_test(tc, test_invalid_entries_are_refused);
    tcase_add_test(tc, test_oversized_pax_records_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tar_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
