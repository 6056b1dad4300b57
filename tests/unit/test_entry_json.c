/*
 * Tests of the entry object (api/entry_json.c): the lossless form of
 * names that are not UTF-8, and the direct writer, whose
 * bytes must equal jansson's compact dump of the object the entry stands
 * for. That object is built here by ref_entry_json(), independently of
 * the writer, field by field with jansson (the way api_entry_json() built
 * it before the writer existed), so a change of key order, escaping or
 * number format in the writer shows up as a mismatch.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/entry_json.h"
#include "api/json_bytes.h"
#include "layer/error.h"
#include "layer/text.h"

START_TEST(test_entry_json__invalid_utf8_name_has_exact_base64)
{
    layer_entry e;
    json_t *j;

    memset(&e, 0, sizeof(e));
    e.path = "a\xff";
    e.path_len = 2;
    e.change = LAYER_CHANGE_DELETE;
    j = api_entry_json(&e);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")),
                     "a\xEF\xBF\xBD");
    ck_assert_str_eq(json_string_value(json_object_get(j, "path_b64")), "Yf8=");
    ck_assert_str_eq(json_string_value(json_object_get(j, "change")), "delete");
    ck_assert_ptr_null(json_object_get(j, "type"));
    json_decref(j);
}
END_TEST

START_TEST(test_entry_json__valid_utf8_name_has_no_base64)
{
    layer_entry e;
    json_t *j;

    memset(&e, 0, sizeof(e));
    e.path = "caf\xc3\xa9";
    e.path_len = 5;
    e.type = LAYER_TYPE_FILE;
    e.size = 3;
    j = api_entry_json(&e);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")),
                     "caf\xc3\xa9");
    ck_assert_ptr_null(json_object_get(j, "path_b64"));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "size")), 3);
    json_decref(j);
}
END_TEST

/* ---- the reference object ------------------------------------------------ */

static int ref_valid_utf8(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;

    for (size_t i = 0; i < len;) {
        unsigned c = u[i], cp, min;
        size_t n;

        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            n = 2, min = 0x80, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 3, min = 0x800, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 4, min = 0x10000, cp = c & 0x07;
        else
            return 0;
        if (len - i < n)
            return 0;
        for (size_t k = 1; k < n; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (u[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n;
    }
    return 1;
}

/* The reference's base64 key of a name that is not UTF-8. */
static void ref_b64(char *out, size_t cap, const unsigned char *d, size_t n)
{
    json_t *b = api_json_base64(d, n);

    ck_assert_ptr_nonnull(b);
    snprintf(out, cap, "%s", json_string_value(b));
    json_decref(b);
}

static void ref_bytes(json_t *o, const char *key, const char *b64key,
                      const char *s, size_t len)
{
    int lossy = -1;

    json_object_set_new(o, key, api_json_string_bytes(s, len, &lossy));
    ck_assert_int_eq(lossy, !ref_valid_utf8(s, len));
    if (lossy)
        json_object_set_new(o, b64key,
                            api_json_base64((const unsigned char *)s, len));
}

static void ref_time(json_t *o, const char *key, const layer_time *t)
{
    char buf[LAYER_TEXT_RFC3339_MAX];

    if (layer_text_rfc3339(buf, t->sec, t->nsec, 9) >= 0)
        json_object_set_new(o, key, json_string(buf));
}

static json_t *ref_entry_json(const layer_entry *e)
{
    json_t *o = json_object();
    char buf[1024];

    ref_bytes(o, "path", "path_b64", e->path, e->path_len);
    json_object_set_new(o, "change", json_string(layer_change_name(e->change)));
    if (e->change == LAYER_CHANGE_DELETE)
        return o;
    json_object_set_new(o, "type", json_string(layer_type_name(e->type)));
    json_object_set_new(o, "mode", json_integer(e->mode));
    json_object_set_new(o, "uid", json_integer(e->uid));
    json_object_set_new(o, "gid", json_integer(e->gid));
    if (e->type == LAYER_TYPE_FILE)
        json_object_set_new(o, "size", json_integer((json_int_t)e->size));
    ref_time(o, "mtime", &e->mtime);
    ref_time(o, "atime", &e->atime);
    ref_time(o, "ctime", &e->ctime);
    if (e->has_btime)
        ref_time(o, "btime", &e->btime);
    json_object_set_new(o, "nlink", json_integer((json_int_t)e->nlink));
    snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long)e->file_id.dev,
             (unsigned long long)e->file_id.ino);
    json_object_set_new(o, "file_id", json_string(buf));
    if (e->link_target)
        ref_bytes(o, "link_target", "link_target_b64", e->link_target,
                  e->link_target_len);
    if (e->type == LAYER_TYPE_CHAR || e->type == LAYER_TYPE_BLOCK) {
        snprintf(buf, sizeof(buf), "%u:%u", e->rdev_major, e->rdev_minor);
        json_object_set_new(o, "rdev", json_string(buf));
    }
    if (e->xattr_count > 0) {
        json_t *x = json_object();

        for (size_t i = 0; i < e->xattr_count; i++) {
            const layer_xattr *a = &e->xattrs[i];
            size_t nl = strlen(a->name);
            json_t *v = api_json_base64(a->value, a->len);

            if (ref_valid_utf8(a->name, nl)) {
                json_object_set_new(x, a->name, v);
            } else {
                memcpy(buf, "b64:", 4);
                ref_b64(buf + 4, sizeof(buf) - 4,
                        (const unsigned char *)a->name, nl);
                json_object_set_new(x, buf, v);
            }
        }
        json_object_set_new(o, "xattrs", x);
    }
    if (e->type == LAYER_TYPE_DIR && e->opaque)
        json_object_set_new(o, "opaque", json_true());
    return o;
}

/*
 * The writer's bytes for e equal jansson's dump of the reference object
 * and of api_entry_json(e), and a buffer one byte short gets a prefix of
 * them and the same length.
 */
static void assert_writer_matches(const layer_entry *e)
{
    json_t *ref = ref_entry_json(e);
    json_t *api = api_entry_json(e);
    char *want = json_dumps(ref, JSON_COMPACT);
    char *got_api;
    size_t wlen, need = 0, again = 0;
    char *buf;

    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(api);
    got_api = json_dumps(api, JSON_COMPACT);
    ck_assert_ptr_nonnull(got_api);
    wlen = strlen(want);
    ck_assert_int_eq(api_entry_json_write(&need, NULL, 0, e), 0);
    ck_assert_uint_eq(need, wlen);
    buf = malloc(need + 1);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 0x55, need + 1);
    ck_assert_int_eq(api_entry_json_write(&again, buf, need, e), 0);
    ck_assert_uint_eq(again, need);
    if (memcmp(buf, want, need) != 0) {
        fprintf(stderr, "want %s\ngot  %.*s\n", want, (int)need, buf);
        ck_abort_msg("the writer's bytes differ from jansson's");
    }
    ck_assert_uint_eq((unsigned char)buf[need], 0x55); /* no NUL added */
    ck_assert_str_eq(got_api, want);
    memset(buf, 0x55, need + 1);
    ck_assert_int_eq(api_entry_json_write(&again, buf, need - 1, e), 0);
    ck_assert_uint_eq(again, need);
    ck_assert_uint_eq((unsigned char)buf[need - 1], 0x55); /* cut at cap */
    free(buf);
    free(got_api);
    free(want);
    json_decref(api);
    json_decref(ref);
}

/* An entry with every field set, of the given type. */
static layer_entry full_entry(layer_type type, const char *path)
{
    layer_entry e;

    memset(&e, 0, sizeof(e));
    e.path = path;
    e.path_len = strlen(path);
    e.change = LAYER_CHANGE_ADD;
    e.type = type;
    e.mode = 04755;
    e.uid = 4294967295u;
    e.gid = 1000;
    e.size = type == LAYER_TYPE_FILE ? 12345 : 0;
    e.mtime = (layer_time){1700000000, 123456789};
    e.atime = (layer_time){-1, 999999999};
    e.ctime = (layer_time){0, 0};
    e.btime = (layer_time){253402300799, 1};
    e.has_btime = true;
    e.nlink = 3;
    e.file_id = (layer_file_id){2049, 18446744073709551615ull};
    return e;
}

START_TEST(test_entry_json_write__every_type_matches_jansson)
{
    static const unsigned char bin[] = {0, 1, 2, 0xff, 0xfe, '"', '\\'};
    layer_xattr xa[] = {
        {"security.capability", bin, sizeof(bin)},
        {"user.empty", (const unsigned char *)"", 0},
        {"user.one", bin, 1},
        {"user.two", bin, 2},
        {"user.\"q\\/\x01\x7f", bin, 3},
        {"user.caf\xc3\xa9\xf0\x9f\x98\x80", bin, 4},
        {"user.bad\xff\xc0\x80", bin, 5},
    };
    static const layer_type types[] = {
        LAYER_TYPE_FILE,     LAYER_TYPE_DIR,  LAYER_TYPE_SYMLINK,
        LAYER_TYPE_HARDLINK, LAYER_TYPE_CHAR, LAYER_TYPE_BLOCK,
        LAYER_TYPE_FIFO,
    };

    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        layer_entry e = full_entry(types[t], "usr/bin/ls");

        assert_writer_matches(&e);
        e.change = LAYER_CHANGE_MODIFY;
        e.has_btime = false;
        e.xattrs = xa;
        e.xattr_count = sizeof(xa) / sizeof(xa[0]);
        e.opaque = true; /* only directories show it */
        e.rdev_major = 4095;
        e.rdev_minor = 1048575;
        if (types[t] == LAYER_TYPE_SYMLINK) {
            e.link_target = "../lib/x\"y\\z\n";
            e.link_target_len = strlen(e.link_target);
        } else if (types[t] == LAYER_TYPE_HARDLINK) {
            e.link_target = "usr/bin/\xff"
                            "dir";
            e.link_target_len = strlen(e.link_target);
        }
        assert_writer_matches(&e);
        e.xattr_count = 1;
        e.opaque = false;
        assert_writer_matches(&e);
    }
}
END_TEST

START_TEST(test_entry_json_write__tombstones_match_jansson)
{
    layer_entry e = full_entry(LAYER_TYPE_NONE, "etc/gone");

    e.change = LAYER_CHANGE_DELETE;
    assert_writer_matches(&e);
    e.path = "etc/\xfe\xff";
    e.path_len = strlen(e.path);
    assert_writer_matches(&e);
}
END_TEST

START_TEST(test_entry_json_write__odd_names_match_jansson)
{
    static const char *const names[] = {
        "",
        "a",
        "quote\"d",
        "back\\slash",
        "sl/ash/",
        "ctl\x01\x02\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x1b\x1f end",
        "del\x7f",
        "caf\xc3\xa9",
        "\xe2\x82\xac euro",
        "emoji \xf0\x9f\x98\x80 and \xf4\x8f\xbf\xbf",
        "lone \x80 continuation",
        "overlong \xc0\xaf",
        "surrogate \xed\xa0\x80",
        "too big \xf4\x90\x80\x80",
        "f5 \xf5\x80\x80\x80",
        "cut at end \xe2\x82",
        "cut 4 \xf0\x9f\x98",
        "\xff",
        "mixed \xff\"\\\x01\xc3\xa9",
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        layer_entry e = full_entry(LAYER_TYPE_SYMLINK, names[i]);

        e.link_target = names[i];
        e.link_target_len = strlen(names[i]);
        assert_writer_matches(&e);
    }
}
END_TEST

START_TEST(test_entry_json_write__embedded_nul_is_replaced)
{
    layer_entry e = full_entry(LAYER_TYPE_FIFO, "x");

    e.path = "a\0b";
    e.path_len = 3;
    assert_writer_matches(&e);
}
END_TEST

START_TEST(test_entry_json_write__extreme_numbers_match_jansson)
{
    layer_entry e = full_entry(LAYER_TYPE_FILE, "big");

    e.size = 18446744073709551615ull; /* jansson prints it signed */
    e.nlink = 9223372036854775808ull;
    e.mode = 0;
    e.uid = 0;
    e.mtime = (layer_time){253402300800, 0}; /* year 10000: omitted */
    e.atime = (layer_time){-62167219201, 0}; /* year -1: omitted */
    e.ctime = (layer_time){-62167219200, 5}; /* year 0 */
    e.btime = (layer_time){1, 1999999999};   /* nsec out of range */
    e.file_id = (layer_file_id){0, 0};
    assert_writer_matches(&e);
    e.size = 9223372036854775807ull;
    assert_writer_matches(&e);
}
END_TEST

START_TEST(test_entry_json_write__large_entries_match_jansson)
{
    size_t plen = 40000, vlen = 70001;
    char *path = malloc(plen + 1);
    unsigned char *val = malloc(vlen);
    char *name = malloc(300);
    layer_xattr xa[2];
    layer_entry e;

    ck_assert_ptr_nonnull(path);
    ck_assert_ptr_nonnull(val);
    ck_assert_ptr_nonnull(name);
    for (size_t i = 0; i < plen; i++)
        path[i] = (char)(i % 97 == 0   ? 0x01
                         : i % 89 == 0 ? 0xff
                                       : 'a' + (int)(i % 26));
    path[plen] = '\0';
    for (size_t i = 0; i < vlen; i++)
        val[i] = (unsigned char)(i * 131);
    memcpy(name, "user.", 5);
    for (size_t i = 5; i < 255; i++)
        name[i] = (char)(0x80 + i % 64); /* not UTF-8: a b64: key */
    name[255] = '\0';
    xa[0] = (layer_xattr){name, val, vlen};
    xa[1] = (layer_xattr){"user.z", val, vlen - 1};
    e = full_entry(LAYER_TYPE_FILE, path);
    e.xattrs = xa;
    e.xattr_count = 2;
    assert_writer_matches(&e);
    free(name);
    free(val);
    free(path);
}
END_TEST

/* Random bytes as names: every escape and every kind of bad UTF-8. */
START_TEST(test_entry_json_write__random_names_match_jansson)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    char path[64], target[64], xname[64];

    for (int round = 0; round < 3000; round++) {
        size_t plen, tlen, nlen;
        layer_xattr xa;
        layer_entry e;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        plen = 1 + x % 40;
        tlen = (x >> 8) % 40;
        nlen = (x >> 16) % 30;
        for (size_t i = 0; i < sizeof(path) - 1; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* bias towards the interesting bytes */
            path[i] =
                (char)(x % 4 == 0 ? (x >> 8) % 0x20 + 1 : (x >> 8) % 255 + 1);
            target[i] = (char)((x >> 16) % 255 + 1);
            xname[i] = (char)((x >> 24) % 255 + 1);
        }
        path[plen] = target[tlen] = '\0';
        memcpy(xname, "user.", 5);
        xname[5 + nlen] = '\0';
        e = full_entry(round % 2 ? LAYER_TYPE_SYMLINK : LAYER_TYPE_FILE, path);
        e.path_len = plen;
        if (round % 2) {
            e.link_target = target;
            e.link_target_len = tlen;
        }
        xa = (layer_xattr){xname, (const unsigned char *)target, tlen};
        e.xattrs = &xa;
        e.xattr_count = 1;
        assert_writer_matches(&e);
    }
}
END_TEST

/* api_entry_json_append(): after what the buffer holds, the writer's bytes,
 * whether they fit the first room or needed the buffer grown. */
START_TEST(test_entry_json_append__grows_once_and_keeps_what_was_there)
{
    size_t plen = 10000;
    char *path = malloc(plen + 1);
    layer_text_buf b = LAYER_TEXT_BUF_INIT(API_ENTRY_JSON_MAX, "entries");
    layer_entry small = full_entry(LAYER_TYPE_FILE, "a"), big;
    size_t n1 = 0, n2 = 0;
    char *want;

    ck_assert_ptr_nonnull(path);
    memset(path, 'p', plen);
    path[plen] = '\0';
    big = full_entry(LAYER_TYPE_DIR, path);
    ck_assert_int_eq(api_entry_json_write(&n1, NULL, 0, &small), 0);
    ck_assert_int_eq(api_entry_json_write(&n2, NULL, 0, &big), 0);
    ck_assert_uint_gt(n2, 4096); /* more than the first room */
    ck_assert_int_eq(layer_text_buf_adds(&b, "[\n"), 0);
    ck_assert_int_eq(api_entry_json_append(&b, &small), 0);
    ck_assert_int_eq(layer_text_buf_adds(&b, ",\n"), 0);
    ck_assert_int_eq(api_entry_json_append(&b, &big), 0);
    ck_assert_uint_eq(b.len, 2 + n1 + 2 + n2);
    ck_assert_int_eq(b.p[b.len], '\0');
    want = malloc(n2 + 1);
    ck_assert_ptr_nonnull(want);
    ck_assert_int_eq(api_entry_json_write(&n2, want, n2 + 1, &big), 0);
    ck_assert_mem_eq(b.p + 2 + n1 + 2, want, n2);
    ck_assert_int_eq(api_entry_json_write(&n1, want, n1 + 1, &small), 0);
    ck_assert_mem_eq(b.p + 2, want, n1);
    free(want);
    layer_text_buf_dispose(&b);
    free(path);
}
END_TEST

START_TEST(test_entry_json_append__refuses_an_entry_over_the_cap)
{
    layer_text_buf b = LAYER_TEXT_BUF_INIT(64, "a small buffer");
    layer_entry e = full_entry(LAYER_TYPE_FILE, "usr/bin/tool");

    ck_assert_int_eq(layer_text_buf_adds(&b, "head"), 0);
    ck_assert_int_eq(api_entry_json_append(&b, &e), LAYER_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "entry usr/bin/tool: "));
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "a small buffer (64"));
    /* nothing was added, and the buffer still works */
    ck_assert_str_eq(b.p, "head");
    ck_assert_int_eq(b.err, 0);
    ck_assert_int_eq(layer_text_buf_adds(&b, "-tail"), 0);
    ck_assert_str_eq(b.p, "head-tail");
    layer_text_buf_dispose(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("entry_json");
    TCase *tc = tcase_create("entry_json");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_entry_json__invalid_utf8_name_has_exact_base64);
    tcase_add_test(tc, test_entry_json__valid_utf8_name_has_no_base64);
    tcase_add_test(tc, test_entry_json_write__every_type_matches_jansson);
    tcase_add_test(tc, test_entry_json_write__tombstones_match_jansson);
    tcase_add_test(tc, test_entry_json_write__odd_names_match_jansson);
    tcase_add_test(tc, test_entry_json_write__embedded_nul_is_replaced);
    tcase_add_test(tc, test_entry_json_write__extreme_numbers_match_jansson);
    tcase_add_test(tc, test_entry_json_write__large_entries_match_jansson);
    tcase_add_test(tc, test_entry_json_write__random_names_match_jansson);
    tcase_add_test(tc,
                   test_entry_json_append__grows_once_and_keeps_what_was_there);
    tcase_add_test(tc, test_entry_json_append__refuses_an_entry_over_the_cap);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
