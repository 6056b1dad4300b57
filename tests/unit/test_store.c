/*
 * Unit tests for the layer stores (lib/store*.c): id validation, the three
 * store types on the fixtures that tests/fixtures/mkdemo.sh and
 * mkstores.sh build, hand-made broken stores (missing parents, cycles,
 * over-long chains, bad JSON, unsafe values read from disk), and
 * pagination.
 *
 * main() builds the fixtures once into a mkdtemp() directory (the scripts
 * are found through LAYERD_SOURCE_DIR, which ctest sets); each test runs
 * in its own forked process and makes its own scratch stores below it.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layer/alloc.h"
#include "layer/digest.h"
#include "layer/error.h"
#include "layer/reader.h"
#include "layer/store.h"
#include "../../lib/store_int.h"

static char tmp_root[PATH_MAX];
static char demo[PATH_MAX];   /* dir: store from mkdemo.sh */
static char stores[PATH_MAX]; /* mkstores.sh output */

/* ---- helpers ---- */

static void xfmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void xfmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && (size_t)n < cap, "path too long");
}

static void mkdirs(const char *path)
{
    char buf[PATH_MAX];

    xfmt(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST,
                          "mkdir %s: %s", buf, strerror(errno));
            *p = '/';
        }
    }
    ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf,
                  strerror(errno));
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(fputs(content, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* A fresh empty directory below the test root. */
static void scratch(char *out, size_t cap, const char *name)
{
    xfmt(out, cap, "%s/scratch-%ld-%s", tmp_root, (long)getpid(), name);
    mkdirs(out);
}

/* A dir: store layer: ROOT/ID/layer.json = json, ROOT/ID/fs/. */
static void dir_layer(const char *root, const char *id, const char *json)
{
    char path[PATH_MAX];

    xfmt(path, sizeof(path), "%s/%s/fs", root, id);
    mkdirs(path);
    xfmt(path, sizeof(path), "%s/%s/layer.json", root, id);
    write_file(path, json);
}

/* A value from mkstores.sh's ids.env. */
static const char *ids_env(const char *key)
{
    static char value[8][256];
    static int slot;
    char path[PATH_MAX], line[512];
    size_t klen = strlen(key);
    FILE *f;

    xfmt(path, sizeof(path), "%s/ids.env", stores);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            char *v = value[slot++ % 8];

            xfmt(v, 256, "%s", line + klen + 1);
            v[strcspn(v, "\n")] = '\0';
            fclose(f);
            return v;
        }
    }
    fclose(f);
    ck_abort_msg("%s not in ids.env", key);
    return NULL;
}

static layer_store *open_store(const char *kind, const char *path)
{
    char spec[PATH_MAX + 32];
    layer_store *s = NULL;
    int rc;

    xfmt(spec, sizeof(spec), "%s:%s", kind, path);
    rc = layer_store_open(&s, spec);
    ck_assert_msg(rc == 0, "open %s: %s", spec, layer_error_last());
    ck_assert_str_eq(layer_store_spec(s), spec);
    return s;
}

static layer_info *resolve_ok(layer_store *s, const char *id)
{
    layer_info *info = NULL;
    int rc = layer_store_resolve(&info, s, id);

    ck_assert_msg(rc == 0, "resolve %s: %s (%s)", id, layer_error_last(),
                  layer_error_name(rc));
    ck_assert_ptr_nonnull(info);
    return info;
}

/* Resolve must fail with code, with a message containing needle. */
static void resolve_fails(layer_store *s, const char *id, int code,
                          const char *needle)
{
    layer_info *info = NULL;
    int rc = layer_store_resolve(&info, s, id);

    ck_assert_msg(rc == code, "resolve %s: %s, want %s (%s)", id,
                  layer_error_name(rc), layer_error_name(code),
                  layer_error_last());
    ck_assert_ptr_null(info);
    if (needle != NULL)
        ck_assert_msg(strstr(layer_error_last(), needle) != NULL,
                      "message '%s' lacks '%s'", layer_error_last(), needle);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

#define ck_assert_ends_with(s, suffix)                                         \
    ck_assert_msg(ends_with((s), (suffix)), "'%s' does not end with '%s'",     \
                  (s), (suffix))

static void list_is(layer_store *s, const char *after, size_t limit,
                    const char *const *want, size_t nwant)
{
    char **ids = NULL;
    size_t n = 99;
    int rc = layer_store_list(&ids, &n, s, after, limit);

    ck_assert_msg(rc == 0, "list: %s", layer_error_last());
    ck_assert_msg(n == nwant, "list after %s limit %zu: %zu ids, want %zu",
                  after ? after : "(null)", limit, n, nwant);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(ids[i], want[i]);
    layer_store_ids_free(ids, n);
}

/* ---- ids ---- */

static const char hex64[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

START_TEST(valid_ids_are_accepted)
{
    char digest[80], long_id[LAYER_ID_MAX + 1];

    ck_assert(layer_id_valid("base", 4));
    ck_assert(layer_id_valid("a", 1));
    ck_assert(layer_id_valid("snap-top_1.2:x", 14));
    ck_assert(layer_id_valid(hex64, 64));
    xfmt(digest, sizeof(digest), "sha256:%s", hex64);
    ck_assert(layer_id_valid(digest, strlen(digest)));
    memset(long_id, 'a', LAYER_ID_MAX);
    long_id[LAYER_ID_MAX] = '\0';
    ck_assert(layer_id_valid(long_id, LAYER_ID_MAX));
    /* Only len bytes count: a longer buffer is fine. */
    ck_assert(layer_id_valid("base/../x", 4));
}
END_TEST

START_TEST(malformed_ids_are_refused)
{
    static const char *const bad[] = {
        "",   ".",  "..",      "a/b", "/abs", "%2e%2e", "a..b", "..a",
        "-a", "_a", ".hidden", "a b", "a\\b", "a\nb",   "é",    "a%2fb",
    };
    char digest[80], long_id[301];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!layer_id_valid(bad[i], strlen(bad[i])), "'%s' accepted",
                      bad[i]);
    ck_assert(!layer_id_valid(NULL, 0));
    /* Embedded NUL: the check is by length, not by strlen. */
    ck_assert(!layer_id_valid("ba\0se", 5));
    ck_assert(!layer_id_valid("base\0", 5));
    memset(long_id, 'a', 300);
    long_id[300] = '\0';
    ck_assert(!layer_id_valid(long_id, 300));
    ck_assert(!layer_id_valid(long_id, LAYER_ID_MAX + 1));
    /* Digest-shaped ids must be complete and lowercase. */
    xfmt(digest, sizeof(digest), "sha256:%.63s", hex64);
    ck_assert(!layer_id_valid(digest, strlen(digest)));
    xfmt(digest, sizeof(digest), "sha256:%s0", hex64);
    ck_assert(!layer_id_valid(digest, strlen(digest)));
    xfmt(digest, sizeof(digest),
         "sha256:0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789A"
         "BCDEF");
    ck_assert(!layer_id_valid(digest, strlen(digest)));
    ck_assert(!layer_id_valid("sha256:", 7));
    ck_assert(!layer_id_valid("sha256:xyz", 10));
}
END_TEST

START_TEST(bad_ids_are_refused_before_filesystem_access)
{
    static const char *const bad[] = {"..",      ".", "a/b",       "%2e%2e",
                                      "../base", "",  "sha256:abc"};
    char root[PATH_MAX], gone[PATH_MAX];
    layer_store *s;

    /* A store whose directory is gone: any filesystem access would fail
     * with something other than LAYER_EINVALID. */
    scratch(root, sizeof(root), "gone");
    xfmt(gone, sizeof(gone), "%s/store", root);
    mkdirs(gone);
    s = open_store("dir", gone);
    ck_assert_int_eq(rmdir(gone), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        resolve_fails(s, bad[i], LAYER_EINVALID, "invalid layer id");
    {
        char long_id[301];

        memset(long_id, 'a', 300);
        long_id[300] = '\0';
        resolve_fails(s, long_id, LAYER_EINVALID, "invalid layer id");
    }
    /* A good id does reach the filesystem. */
    resolve_fails(s, "base", LAYER_ENOTFOUND, NULL);
    layer_store_free(s);
}
END_TEST

/* ---- kinds and opening ---- */

START_TEST(kind_names_round_trip)
{
    layer_kind k = LAYER_KIND_FOLDER;

    ck_assert_str_eq(layer_kind_name(LAYER_KIND_DIFF), "diff");
    ck_assert_str_eq(layer_kind_name(LAYER_KIND_SNAPSHOT), "snapshot");
    ck_assert_str_eq(layer_kind_name(LAYER_KIND_FOLDER), "folder");
    ck_assert_int_eq(layer_kind_parse(&k, "diff"), 0);
    ck_assert_int_eq(k, LAYER_KIND_DIFF);
    ck_assert_int_eq(layer_kind_parse(&k, "snapshot"), 0);
    ck_assert_int_eq(k, LAYER_KIND_SNAPSHOT);
    ck_assert_int_eq(layer_kind_parse(&k, "folder"), 0);
    ck_assert_int_eq(k, LAYER_KIND_FOLDER);
    ck_assert_int_eq(layer_kind_parse(&k, "Diff"), LAYER_EINVALID);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "unknown layer kind"));
    ck_assert_int_eq(layer_kind_parse(&k, ""), LAYER_EINVALID);
    ck_assert_int_eq(layer_kind_parse(&k, NULL), LAYER_EINVALID);
    ck_assert_int_eq(k, LAYER_KIND_FOLDER);
}
END_TEST

START_TEST(open_refuses_unknown_specs_and_missing_paths)
{
    layer_store *s = NULL;
    char spec[PATH_MAX + 32], file[PATH_MAX];

    ck_assert_int_eq(layer_store_open(&s, "zfs:/tank"), LAYER_EINVALID);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "unknown store type"));
    ck_assert_int_eq(layer_store_open(&s, demo), LAYER_EINVALID);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "unknown store type"));
    ck_assert_int_eq(layer_store_open(&s, "DIR:/tmp"), LAYER_EINVALID);
    ck_assert_int_eq(layer_store_open(&s, "dir:"), LAYER_EINVALID);
    ck_assert_int_eq(layer_store_open(&s, NULL), LAYER_EINVALID);
    xfmt(spec, sizeof(spec), "dir:%s/does-not-exist", tmp_root);
    ck_assert_int_eq(layer_store_open(&s, spec), LAYER_ENOTFOUND);
    xfmt(spec, sizeof(spec), "docker:%s/does-not-exist", tmp_root);
    ck_assert_int_eq(layer_store_open(&s, spec), LAYER_ENOTFOUND);
    xfmt(file, sizeof(file), "%s/base/layer.json", demo);
    xfmt(spec, sizeof(spec), "dir:%s", file);
    ck_assert_int_eq(layer_store_open(&s, spec), LAYER_EINVALID);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "not a directory"));
    ck_assert_ptr_null(s);
    layer_store_free(NULL);
    layer_info_free(NULL);
    layer_store_ids_free(NULL, 0);
}
END_TEST

/* ---- dir: on the demo store ---- */

START_TEST(dir_resolves_the_demo_diff_chain)
{
    layer_store *s = open_store("dir", demo);
    layer_info *info = resolve_ok(s, "patch");

    ck_assert_str_eq(info->id, "patch");
    ck_assert_str_eq(info->store, "dir");
    ck_assert_str_eq(info->created, "2023-11-15T00:13:20Z");
    ck_assert_ptr_null(info->diff_digest);
    ck_assert(!info->mutable_);
    ck_assert_int_eq(info->layer.kind, LAYER_KIND_DIFF);
    ck_assert_ends_with(info->layer.path, "/patch/fs");
    ck_assert_uint_eq(info->nparents, 2);
    ck_assert_str_eq(info->parent_ids[0], "app");
    ck_assert_str_eq(info->parent_ids[1], "base");
    ck_assert_ends_with(info->parents[0].path, "/app/fs");
    ck_assert_ends_with(info->parents[1].path, "/base/fs");
    ck_assert_int_eq(info->parents[0].kind, LAYER_KIND_DIFF);
    ck_assert_int_eq(info->parents[1].kind, LAYER_KIND_DIFF);
    ck_assert_int_eq(access(info->layer.path, F_OK), 0);
    layer_info_free(info);

    info = resolve_ok(s, "base");
    ck_assert_uint_eq(info->nparents, 0);
    ck_assert_ptr_null(info->parents);
    layer_info_free(info);
    layer_store_free(s);
}
END_TEST

START_TEST(dir_resolves_the_demo_snapshot_chain)
{
    layer_store *s = open_store("dir", demo);
    layer_info *info = resolve_ok(s, "snap-top");

    ck_assert_int_eq(info->layer.kind, LAYER_KIND_SNAPSHOT);
    ck_assert_uint_eq(info->nparents, 1);
    ck_assert_str_eq(info->parent_ids[0], "snap-base");
    ck_assert_int_eq(info->parents[0].kind, LAYER_KIND_SNAPSHOT);
    layer_info_free(info);
    resolve_fails(s, "nope", LAYER_ENOTFOUND, "layer nope not found");
    layer_store_free(s);
}
END_TEST

START_TEST(dir_lists_and_pages_bytewise)
{
    static const char *const all[] = {"app", "base", "patch", "snap-base",
                                      "snap-top"};
    layer_store *s = open_store("dir", demo);

    list_is(s, NULL, 0, all, 5);
    list_is(s, NULL, 2, all, 2);
    list_is(s, "", 0, all, 5);
    list_is(s, "app", 0, all + 1, 4);
    list_is(s, "b", 2, all + 1, 2);
    list_is(s, "base", 2, all + 2, 2);
    list_is(s, "snap-base", 10, all + 4, 1);
    list_is(s, "snap-top", 0, NULL, 0);
    list_is(s, "zzz", 0, NULL, 0);
    layer_store_free(s);
}
END_TEST

START_TEST(dir_list_skips_what_is_not_a_layer)
{
    static const char *const want[] = {"B", "a", "z"};
    char root[PATH_MAX], path[PATH_MAX];
    layer_store *s;

    scratch(root, sizeof(root), "listskip");
    dir_layer(root, "z", "{}");
    dir_layer(root, "a", "{}");
    dir_layer(root, "B", "{}"); /* 'B' < 'a' bytewise */
    dir_layer(root, ".hidden", "{}");
    dir_layer(root, "bad..id", "{}");
    xfmt(path, sizeof(path), "%s/nojson/fs", root);
    mkdirs(path);
    xfmt(path, sizeof(path), "%s/plainfile", root);
    write_file(path, "x");
    xfmt(path, sizeof(path), "%s/link", root);
    ck_assert_int_eq(symlink("a", path), 0);
    s = open_store("dir", root);
    list_is(s, NULL, 0, want, 3);
    resolve_fails(s, "nojson", LAYER_ENOTFOUND, NULL);
    resolve_fails(s, "plainfile", LAYER_EBROKEN, "not a directory");
    resolve_fails(s, "link", LAYER_EBROKEN, "not a directory");
    layer_store_free(s);
}
END_TEST

START_TEST(dir_layer_json_defaults_and_fields)
{
    char root[PATH_MAX];
    layer_store *s;
    layer_info *info;

    scratch(root, sizeof(root), "fields");
    dir_layer(root, "min", "{}");
    dir_layer(root, "full",
              "{\"parent\": \"min\", \"kind\": \"snapshot\", \"created\": "
              "\"2024-05-06T07:08:09.123456789+02:00\", \"mutable\": true, "
              "\"future\": [1, 2]}");
    dir_layer(root, "nulls",
              "{\"parent\": null, \"kind\": null, \"mutable\": null}");
    s = open_store("dir", root);
    info = resolve_ok(s, "min");
    ck_assert_int_eq(info->layer.kind, LAYER_KIND_DIFF);
    ck_assert_ptr_null(info->created);
    ck_assert(!info->mutable_);
    layer_info_free(info);
    info = resolve_ok(s, "full");
    ck_assert_int_eq(info->layer.kind, LAYER_KIND_SNAPSHOT);
    ck_assert_str_eq(info->created, "2024-05-06T07:08:09.123456789+02:00");
    ck_assert(info->mutable_);
    ck_assert_uint_eq(info->nparents, 1);
    ck_assert_int_eq(info->parents[0].kind, LAYER_KIND_DIFF);
    layer_info_free(info);
    info = resolve_ok(s, "nulls");
    ck_assert_uint_eq(info->nparents, 0);
    layer_info_free(info);
    layer_store_free(s);
}
END_TEST

/* ---- dir: broken stores ---- */

START_TEST(dir_missing_parent_is_broken_and_named)
{
    char root[PATH_MAX];
    layer_store *s;

    scratch(root, sizeof(root), "missing");
    dir_layer(root, "top", "{\"parent\": \"mid\"}");
    dir_layer(root, "mid", "{\"parent\": \"gone\"}");
    s = open_store("dir", root);
    resolve_fails(s, "top", LAYER_EBROKEN, "layer mid: parent gone not found");
    layer_store_free(s);
}
END_TEST

START_TEST(dir_cycles_are_broken)
{
    char root[PATH_MAX];
    layer_store *s;

    scratch(root, sizeof(root), "cycle");
    dir_layer(root, "a", "{\"parent\": \"b\"}");
    dir_layer(root, "b", "{\"parent\": \"c\"}");
    dir_layer(root, "c", "{\"parent\": \"b\"}");
    dir_layer(root, "self", "{\"parent\": \"self\"}");
    s = open_store("dir", root);
    resolve_fails(s, "a", LAYER_EBROKEN, "cycle at b");
    resolve_fails(s, "b", LAYER_EBROKEN, "cycle");
    resolve_fails(s, "self", LAYER_EBROKEN,
                  "layer self: parent chain has a "
                  "cycle at self");
    layer_store_free(s);
}
END_TEST

START_TEST(dir_chain_longer_than_the_cap_is_broken)
{
    char root[PATH_MAX], id[32], json[64];
    layer_store *s;
    layer_info *info;

    scratch(root, sizeof(root), "long");
    /* l0 is the base; l<n> has parent l<n-1>. */
    dir_layer(root, "l0", "{}");
    for (int i = 1; i <= LAYER_CHAIN_MAX + 1; i++) {
        xfmt(id, sizeof(id), "l%d", i);
        xfmt(json, sizeof(json), "{\"parent\": \"l%d\"}", i - 1);
        dir_layer(root, id, json);
    }
    s = open_store("dir", root);
    xfmt(id, sizeof(id), "l%d", LAYER_CHAIN_MAX);
    info = resolve_ok(s, id);
    ck_assert_uint_eq(info->nparents, LAYER_CHAIN_MAX);
    ck_assert_str_eq(info->parent_ids[LAYER_CHAIN_MAX - 1], "l0");
    layer_info_free(info);
    xfmt(id, sizeof(id), "l%d", LAYER_CHAIN_MAX + 1);
    resolve_fails(s, id, LAYER_EBROKEN, "parent chain longer than 128");
    layer_store_free(s);
}
END_TEST

START_TEST(dir_bad_layer_json_is_broken)
{
    char root[PATH_MAX], path[PATH_MAX];
    layer_store *s;

    scratch(root, sizeof(root), "badjson");
    dir_layer(root, "syntax", "{\"parent\": \"a\",}");
    dir_layer(root, "array", "[]");
    dir_layer(root, "kind", "{\"kind\": \"overlay\"}");
    dir_layer(root, "kindtype", "{\"kind\": 1}");
    dir_layer(root, "created", "{\"created\": \"yesterday\"}");
    dir_layer(root, "mutable", "{\"mutable\": \"yes\"}");
    dir_layer(root, "parenttype", "{\"parent\": [\"a\"]}");
    dir_layer(root, "parentnul", "{\"parent\": \"a\\u0000b\"}");
    dir_layer(root, "nofs", "{}");
    xfmt(path, sizeof(path), "%s/nofs/fs", root);
    ck_assert_int_eq(rmdir(path), 0);
    dir_layer(root, "fsfile", "{}");
    xfmt(path, sizeof(path), "%s/fsfile/fs", root);
    ck_assert_int_eq(rmdir(path), 0);
    write_file(path, "");
    dir_layer(root, "jsonlink", "{}");
    xfmt(path, sizeof(path), "%s/jsonlink/layer.json", root);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(symlink("../syntax/layer.json", path), 0);
    dir_layer(root, "jsondir", "{}");
    xfmt(path, sizeof(path), "%s/jsondir/layer.json", root);
    ck_assert_int_eq(unlink(path), 0);
    mkdirs(path);
    dir_layer(root, "child", "{\"parent\": \"syntax\"}");
    s = open_store("dir", root);
    resolve_fails(s, "syntax", LAYER_EBROKEN,
                  "layer syntax: layer.json: invalid JSON at line 1, column "
                  "16 (byte 16): string or '}' expected near '}'");
    resolve_fails(s, "array", LAYER_EBROKEN, "not a JSON object");
    resolve_fails(s, "kind", LAYER_EBROKEN, "unknown kind \"overlay\"");
    resolve_fails(s, "kindtype", LAYER_EBROKEN, "\"kind\" is a number");
    resolve_fails(s, "created", LAYER_EBROKEN, "RFC 3339");
    resolve_fails(s, "mutable", LAYER_EBROKEN, "not a boolean");
    resolve_fails(s, "parenttype", LAYER_EBROKEN, "not a string");
    resolve_fails(s, "parentnul", LAYER_EBROKEN, "contains NUL");
    resolve_fails(s, "nofs", LAYER_EBROKEN,
                  "nofs/fs is missing or not a directory");
    resolve_fails(s, "fsfile", LAYER_EBROKEN, "not a directory");
    resolve_fails(s, "jsonlink", LAYER_EBROKEN, "symlink");
    resolve_fails(s, "jsondir", LAYER_EBROKEN, "not a regular file");
    /* A broken parent breaks its children, with the parent's message. */
    resolve_fails(s, "child", LAYER_EBROKEN, "layer syntax: layer.json");
    layer_store_free(s);
}
END_TEST

/* layer.json is our own format: read strictly, and never waited on. */
START_TEST(dir_layer_json_is_read_strictly_and_with_a_cap)
{
    char root[PATH_MAX], path[PATH_MAX], *big;
    layer_store *s;
    layer_info *info;

    scratch(root, sizeof(root), "strict");
    dir_layer(root, "dupkey", "{\"parent\": \"a\", \"parent\": \"b\"}");
    dir_layer(root, "fifo", "{}");
    xfmt(path, sizeof(path), "%s/fifo/layer.json", root);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mkfifo(path, 0644), 0);
    big = calloc(1, 70000);
    ck_assert_ptr_nonnull(big);
    memset(big, ' ', 69998);
    big[0] = '{';
    big[69998] = '}';
    dir_layer(root, "big", big);
    free(big);
    dir_layer(root, "bignum", "{\"size\": 18446744073709551616, \"r\": 1e300}");
    s = open_store("dir", root);
    resolve_fails(s, "dupkey", LAYER_EBROKEN,
                  "layer dupkey: layer.json: invalid JSON at line 1, column "
                  "24 (byte 24): duplicate object key near '\"parent\"'");
    resolve_fails(s, "fifo", LAYER_EBROKEN,
                  "layer fifo: layer.json is not a regular file");
    resolve_fails(s, "big", LAYER_EBROKEN,
                  "layer big: layer.json is larger than 65536 bytes");
    /* Numbers are never used; one that int64_t cannot hold is fine. */
    info = resolve_ok(s, "bignum");
    layer_info_free(info);
    layer_store_free(s);
}
END_TEST

START_TEST(dir_invalid_parent_ids_are_never_used_as_paths)
{
    static const char *const bad[] = {"../outside", "..",     "a/b",
                                      "",           "%2e%2e", "/etc"};
    char root[PATH_MAX], outside[PATH_MAX], json[128], id[16];
    layer_store *s;

    scratch(root, sizeof(root), "badparent");
    /* A real layer next to the store that "../outside" would reach. */
    xfmt(outside, sizeof(outside), "%s/store", root);
    dir_layer(root, "outside", "{}");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xfmt(id, sizeof(id), "c%zu", i);
        xfmt(json, sizeof(json), "{\"parent\": \"%s\"}", bad[i]);
        dir_layer(outside, id, json);
    }
    s = open_store("dir", outside);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xfmt(id, sizeof(id), "c%zu", i);
        resolve_fails(s, id, LAYER_EBROKEN, "invalid parent id");
    }
    layer_store_free(s);
}
END_TEST

START_TEST(dir_store_sees_layers_created_after_open)
{
    char root[PATH_MAX];
    layer_store *s;
    layer_info *info;

    scratch(root, sizeof(root), "late");
    s = open_store("dir", root);
    resolve_fails(s, "late", LAYER_ENOTFOUND, NULL);
    dir_layer(root, "late", "{}");
    info = resolve_ok(s, "late");
    layer_info_free(info);
    layer_store_free(s);
}
END_TEST

START_TEST(resolve_releases_everything_on_allocation_failure)
{
    layer_store *s = open_store("dir", demo);
    unsigned long n;

    for (n = 1; n < 2000; n++) {
        layer_info *info = NULL;
        int rc;

        layer_alloc_fail_after(n);
        rc = layer_store_resolve(&info, s, "patch");
        layer_alloc_fail_after(0);
        if (rc == 0) {
            ck_assert_uint_eq(info->nparents, 2);
            layer_info_free(info);
            break;
        }
        ck_assert_msg(rc == LAYER_ENOMEM, "n=%lu: %s", n, layer_error_last());
        ck_assert_ptr_null(info);
    }
    ck_assert(n > 3 && n < 2000);
    layer_store_free(s);
}
END_TEST

/* ---- containers-storage ---- */

static void cs_path(char *out, size_t cap, const char *which)
{
    xfmt(out, cap, "%s/%s", stores, which);
}

START_TEST(cs_overlay_resolves_ids_and_diff_digests)
{
    char path[PATH_MAX], want[PATH_MAX];
    layer_store *s;
    layer_info *info;
    const char *top = ids_env("CS_OV_TOP");

    cs_path(path, sizeof(path), "cs-overlay");
    s = open_store("containers-storage", path);
    info = resolve_ok(s, top);
    ck_assert_str_eq(info->id, top);
    ck_assert_str_eq(info->store, "containers-storage");
    ck_assert_str_eq(info->created, "2024-01-02T03:04:07Z");
    ck_assert_str_eq(info->diff_digest, ids_env("CS_OV_TOP_DIFF"));
    ck_assert(!info->mutable_);
    ck_assert_int_eq(info->layer.kind, LAYER_KIND_DIFF);
    xfmt(want, sizeof(want), "/overlay/%s/diff", top);
    ck_assert_ends_with(info->layer.path, want);
    ck_assert_uint_eq(info->nparents, 2);
    ck_assert_str_eq(info->parent_ids[0], ids_env("CS_OV_APP"));
    ck_assert_str_eq(info->parent_ids[1], ids_env("CS_OV_BASE"));
    xfmt(want, sizeof(want), "/overlay/%s/diff", ids_env("CS_OV_BASE"));
    ck_assert_ends_with(info->parents[1].path, want);
    ck_assert_int_eq(info->parents[1].kind, LAYER_KIND_DIFF);
    layer_info_free(info);

    /* By DiffID: the same layer, under its canonical id. */
    info = resolve_ok(s, ids_env("CS_OV_APP_DIFF"));
    ck_assert_str_eq(info->id, ids_env("CS_OV_APP"));
    ck_assert_str_eq(info->created, "2024-01-02T03:04:06.5Z");
    ck_assert_uint_eq(info->nparents, 1);
    layer_info_free(info);

    /* Not a prefix, not a name. */
    {
        char prefix[16];

        xfmt(prefix, sizeof(prefix), "%.12s", top);
        resolve_fails(s, prefix, LAYER_ENOTFOUND, NULL);
    }
    resolve_fails(s, "demo-top", LAYER_ENOTFOUND, NULL);
    layer_store_free(s);
}
END_TEST

START_TEST(cs_container_layers_are_mutable)
{
    char path[PATH_MAX];
    layer_store *s;
    layer_info *info;

    cs_path(path, sizeof(path), "cs-overlay");
    s = open_store("containers-storage", path);
    /* Volatile, with Go's zero time as its creation time. */
    info = resolve_ok(s, ids_env("CS_OV_VOL"));
    ck_assert(info->mutable_);
    ck_assert_ptr_null(info->created);
    ck_assert_ptr_null(info->diff_digest);
    ck_assert_uint_eq(info->nparents, 3);
    layer_info_free(info);
    /* In layers.json, but a container's "layer". */
    info = resolve_ok(s, ids_env("CS_OV_CTR"));
    ck_assert(info->mutable_);
    ck_assert_str_eq(info->created, "2024-01-03T00:00:00.000000001+01:00");
    layer_info_free(info);
    layer_store_free(s);
}
END_TEST

START_TEST(cs_incomplete_layers_are_not_listed_or_served)
{
    char path[PATH_MAX];
    const char *want[5];
    layer_store *s;

    want[0] = ids_env("CS_OV_TOP");  /* 3ec1... */
    want[1] = ids_env("CS_OV_BASE"); /* 5e04... */
    want[2] = ids_env("CS_OV_VOL");  /* b08a... */
    want[3] = ids_env("CS_OV_CTR");  /* b1ba... */
    want[4] = ids_env("CS_OV_APP");  /* dd6f... */
    cs_path(path, sizeof(path), "cs-overlay");
    s = open_store("containers-storage", path);
    list_is(s, NULL, 0, want, 5);
    list_is(s, want[1], 2, want + 2, 2);
    resolve_fails(s, ids_env("CS_OV_INC"), LAYER_EBROKEN, "incomplete");
    layer_store_free(s);
}
END_TEST

START_TEST(cs_vfs_layers_are_snapshots)
{
    char path[PATH_MAX], want[PATH_MAX];
    const char *ids[2];
    layer_store *s;
    layer_info *info;

    cs_path(path, sizeof(path), "cs-vfs");
    s = open_store("containers-storage", path);
    info = resolve_ok(s, ids_env("CS_VFS_TOP"));
    ck_assert_int_eq(info->layer.kind, LAYER_KIND_SNAPSHOT);
    xfmt(want, sizeof(want), "/vfs/dir/%s", ids_env("CS_VFS_TOP"));
    ck_assert_ends_with(info->layer.path, want);
    ck_assert_uint_eq(info->nparents, 1);
    ck_assert_str_eq(info->parent_ids[0], ids_env("CS_VFS_BASE"));
    ck_assert_int_eq(info->parents[0].kind, LAYER_KIND_SNAPSHOT);
    layer_info_free(info);
    ids[0] = ids_env("CS_VFS_TOP");  /* 07a0... */
    ids[1] = ids_env("CS_VFS_BASE"); /* b292... */
    list_is(s, NULL, 0, ids, 2);
    layer_store_free(s);
}
END_TEST

/* A containers-storage overlay store with layers.json = json; each id in
 * ids gets an overlay/<id>/diff directory. */
static void cs_store(char *root, size_t cap, const char *name, const char *json,
                     const char *const *ids, size_t nids)
{
    char path[PATH_MAX];

    scratch(root, cap, name);
    xfmt(path, sizeof(path), "%s/overlay-layers", root);
    mkdirs(path);
    xfmt(path, sizeof(path), "%s/overlay-layers/layers.json", root);
    write_file(path, json);
    for (size_t i = 0; i < nids; i++) {
        xfmt(path, sizeof(path), "%s/overlay/%s/diff", root, ids[i]);
        mkdirs(path);
    }
}

START_TEST(cs_broken_metadata_is_reported)
{
    static const char *const ids[] = {"top", "mid"};
    char root[PATH_MAX];
    layer_store *s;

    cs_store(root, sizeof(root), "cs-missing",
             "[{\"id\":\"top\",\"parent\":\"mid\"},"
             "{\"id\":\"mid\",\"parent\":\"base\"}]",
             ids, 2);
    s = open_store("containers-storage", root);
    resolve_fails(s, "top", LAYER_EBROKEN, "layer mid: parent base not found");
    layer_store_free(s);

    cs_store(root, sizeof(root), "cs-cycle",
             "[{\"id\":\"top\",\"parent\":\"mid\"},"
             "{\"id\":\"mid\",\"parent\":\"top\"}]",
             ids, 2);
    s = open_store("containers-storage", root);
    resolve_fails(s, "top", LAYER_EBROKEN, "cycle");
    layer_store_free(s);

    cs_store(root, sizeof(root), "cs-badparent",
             "[{\"id\":\"top\",\"parent\":\"../../etc\"}]", ids, 1);
    s = open_store("containers-storage", root);
    resolve_fails(s, "top", LAYER_EBROKEN, "invalid parent id");
    layer_store_free(s);

    cs_store(root, sizeof(root), "cs-json", "[{\"id\":\"top\"}", ids, 1);
    s = open_store("containers-storage", root);
    resolve_fails(s, "top", LAYER_EBROKEN,
                  "layers.json: invalid JSON at line 1, column 13 (byte 13): "
                  "']' expected near end of file");
    layer_store_free(s);

    cs_store(root, sizeof(root), "cs-noid", "[{\"parent\":\"top\"}]", ids, 1);
    s = open_store("containers-storage", root);
    resolve_fails(s, "top", LAYER_EBROKEN, "has no string \"id\"");
    layer_store_free(s);

    cs_store(root, sizeof(root), "cs-nodiff", "[{\"id\":\"top\"}]", NULL, 0);
    {
        char path[PATH_MAX];

        xfmt(path, sizeof(path), "%s/overlay/top", root);
        mkdirs(path);
    }
    s = open_store("containers-storage", root);
    resolve_fails(s, "top", LAYER_EBROKEN, "diff is missing");
    layer_store_free(s);

    /* An empty layers.json is an empty store, as in containers/storage. */
    cs_store(root, sizeof(root), "cs-empty", "", NULL, 0);
    s = open_store("containers-storage", root);
    resolve_fails(s, "top", LAYER_ENOTFOUND, NULL);
    list_is(s, NULL, 0, NULL, 0);
    layer_store_free(s);

    /* No driver directory at all. */
    scratch(root, sizeof(root), "cs-nodriver");
    s = open_store("containers-storage", root);
    resolve_fails(s, "top", LAYER_EBROKEN, "neither overlay-layers");
    layer_store_free(s);
}
END_TEST

START_TEST(cs_first_record_of_an_id_wins)
{
    static const char *const ids[] = {"dup"};
    static const char *const want[] = {"dup"};
    char root[PATH_MAX];
    layer_store *s;
    layer_info *info;

    cs_store(root, sizeof(root), "cs-dup",
             "[{\"id\":\"dup\",\"created\":\"2024-01-01T00:00:00Z\"},"
             "{\"id\":\"dup\",\"created\":\"2025-01-01T00:00:00Z\"}]",
             ids, 1);
    s = open_store("containers-storage", root);
    info = resolve_ok(s, "dup");
    ck_assert_str_eq(info->created, "2024-01-01T00:00:00Z");
    layer_info_free(info);
    list_is(s, NULL, 0, want, 1);
    layer_store_free(s);
}
END_TEST

/* Go's encoding/json wrote these files: a repeated key keeps its last
 * value, and uint64 numbers past int64_t are ordinary. */
START_TEST(cs_metadata_is_read_as_go_reads_it)
{
    static const char *const ids[] = {"last"};
    char root[PATH_MAX];
    layer_store *s;

    cs_store(root, sizeof(root), "cs-go",
             "[{\"id\":\"first\",\"id\":\"last\","
             "\"diff-size\":18446744073709551615}]",
             ids, 1);
    s = open_store("containers-storage", root);
    layer_info_free(resolve_ok(s, "last"));
    resolve_fails(s, "first", LAYER_ENOTFOUND, NULL);
    layer_store_free(s);
}
END_TEST

/* ---- docker ---- */

START_TEST(docker_resolves_chain_ids_and_diff_ids)
{
    char path[PATH_MAX], want[PATH_MAX];
    layer_store *s;
    layer_info *info;
    const char *chain3 = ids_env("DK_CHAIN3");

    xfmt(path, sizeof(path), "%s/docker", stores);
    s = open_store("docker", path);
    info = resolve_ok(s, chain3);
    ck_assert_str_eq(info->id, chain3);
    ck_assert_str_eq(info->store, "docker");
    ck_assert_str_eq(info->diff_digest, ids_env("DK_DIFF3"));
    ck_assert_ptr_null(info->created);
    ck_assert(!info->mutable_);
    ck_assert_int_eq(info->layer.kind, LAYER_KIND_DIFF);
    xfmt(want, sizeof(want), "/overlay2/%s/diff", ids_env("DK_CACHE3"));
    ck_assert_ends_with(info->layer.path, want);
    ck_assert_uint_eq(info->nparents, 2);
    ck_assert_str_eq(info->parent_ids[0], ids_env("DK_CHAIN2"));
    ck_assert_str_eq(info->parent_ids[1], ids_env("DK_CHAIN1"));
    xfmt(want, sizeof(want), "/overlay2/%s/diff", ids_env("DK_CACHE1"));
    ck_assert_ends_with(info->parents[1].path, want);
    layer_info_free(info);

    /* Bare hex is the same chain ID. */
    info = resolve_ok(s, chain3 + 7);
    ck_assert_str_eq(info->id, chain3);
    layer_info_free(info);

    /* A DiffID finds its chain. */
    info = resolve_ok(s, ids_env("DK_DIFF2"));
    ck_assert_str_eq(info->id, ids_env("DK_CHAIN2"));
    ck_assert_uint_eq(info->nparents, 1);
    layer_info_free(info);

    resolve_fails(s, "base", LAYER_ENOTFOUND, NULL);
    {
        char digest[80];

        xfmt(digest, sizeof(digest), "sha256:%s", hex64);
        resolve_fails(s, digest, LAYER_ENOTFOUND, NULL);
    }
    layer_store_free(s);
}
END_TEST

START_TEST(docker_lists_chain_ids)
{
    char path[PATH_MAX];
    const char *want[3];
    layer_store *s;

    want[0] = ids_env("DK_CHAIN2"); /* 3c31... */
    want[1] = ids_env("DK_CHAIN1"); /* 5578... */
    want[2] = ids_env("DK_CHAIN3"); /* 5cdb... */
    xfmt(path, sizeof(path), "%s/docker", stores);
    s = open_store("docker", path);
    list_is(s, NULL, 0, want, 3);
    list_is(s, want[0], 1, want + 1, 1);
    layer_store_free(s);
}
END_TEST

/* A docker store with one chain ID (hex) whose layerdb files are given
 * (NULL: absent) and an overlay2/<cache>/diff when make_data. */
static void docker_store(char *root, size_t cap, const char *name,
                         const char *hex, const char *cache, const char *diff,
                         const char *parent, bool make_data)
{
    char dir[PATH_MAX], path[PATH_MAX];

    scratch(root, cap, name);
    xfmt(dir, sizeof(dir), "%s/image/overlay2/layerdb/sha256/%s", root, hex);
    mkdirs(dir);
    if (cache) {
        xfmt(path, sizeof(path), "%s/cache-id", dir);
        write_file(path, cache);
    }
    if (diff) {
        xfmt(path, sizeof(path), "%s/diff", dir);
        write_file(path, diff);
    }
    if (parent) {
        xfmt(path, sizeof(path), "%s/parent", dir);
        write_file(path, parent);
    }
    xfmt(path, sizeof(path), "%s/overlay2", root);
    mkdirs(path);
    if (make_data && cache) {
        xfmt(path, sizeof(path), "%s/overlay2/%s/diff", root, cache);
        mkdirs(path);
    }
}

START_TEST(docker_values_read_from_disk_are_checked)
{
    char root[PATH_MAX], digest[80], other[80], escape[PATH_MAX];
    layer_store *s;
    layer_info *info;

    xfmt(digest, sizeof(digest), "sha256:%s", hex64);
    xfmt(other, sizeof(other),
         "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba98765"
         "43210");

    /* A cache-id that climbs out of overlay2/ is refused, even though the
     * directory it names exists. */
    docker_store(root, sizeof(root), "dk-escape", hex64, "../escape", digest,
                 NULL, false);
    xfmt(escape, sizeof(escape), "%s/escape/diff", root);
    mkdirs(escape);
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN,
                  "cache-id is not a valid directory name");
    layer_store_free(s);

    docker_store(root, sizeof(root), "dk-slash", hex64, "a/b", digest, NULL,
                 false);
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN, "cache-id is not a valid");
    layer_store_free(s);

    docker_store(root, sizeof(root), "dk-nocache", hex64, NULL, digest, NULL,
                 false);
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN, "cache-id is missing");
    layer_store_free(s);

    docker_store(root, sizeof(root), "dk-badparent", hex64, "c1", digest,
                 "sha256:../../x", true);
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN, "parent is not a sha256 digest");
    layer_store_free(s);

    docker_store(root, sizeof(root), "dk-baddiff", hex64, "c1", "nonsense",
                 NULL, true);
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN, "diff is not a sha256 digest");
    layer_store_free(s);

    docker_store(root, sizeof(root), "dk-missingparent", hex64, "c1", digest,
                 other, true);
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN, "parent sha256:fedcba");
    layer_store_free(s);

    docker_store(root, sizeof(root), "dk-nodata", hex64, "c1", digest, NULL,
                 false);
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN, "overlay2/c1/diff is missing");
    layer_store_free(s);

    /* A trailing newline (hand-made stores) is tolerated. */
    docker_store(root, sizeof(root), "dk-newline", hex64, "c1\n", digest, NULL,
                 false);
    {
        char path[PATH_MAX];

        xfmt(path, sizeof(path), "%s/overlay2/c1/diff", root);
        mkdirs(path);
    }
    s = open_store("docker", root);
    info = resolve_ok(s, digest);
    ck_assert_ends_with(info->layer.path, "/overlay2/c1/diff");
    layer_info_free(info);
    layer_store_free(s);

    /* Not an overlay2 Docker root. */
    scratch(root, sizeof(root), "dk-empty");
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN, "layerdb/sha256 not found");
    layer_store_free(s);
}
END_TEST

START_TEST(docker_self_parent_is_a_cycle)
{
    char root[PATH_MAX], digest[80];
    layer_store *s;

    xfmt(digest, sizeof(digest), "sha256:%s", hex64);
    docker_store(root, sizeof(root), "dk-cycle", hex64, "c1", digest, digest,
                 true);
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN, "cycle");
    layer_store_free(s);
}
END_TEST

/* ---- nothing below a store's root is reached through a symlink ---- */

/* The bytes of the first file entry of a layer, read through the reader
 * from info (so through the descriptors the store handed over). */
static void first_file_is(const layer_info *info, const char *want)
{
    layer_reader *r = NULL;
    const layer_entry *e;
    char buf[64];
    size_t n = 0, total = 0;
    int rc;

    rc = layer_reader_open(&r, &info->layer, info->parents, info->nparents,
                           NULL);
    ck_assert_msg(rc == 0, "reader: %s", layer_error_last());
    while ((rc = layer_reader_next(&e, r)) == 0 && e->type != LAYER_TYPE_FILE)
        ;
    ck_assert_msg(rc == 0, "no file entry: %s", layer_error_last());
    do {
        ck_assert_int_eq(
            layer_reader_read(&n, r, buf + total, sizeof(buf) - 1 - total), 0);
        total += n;
    } while (n > 0);
    buf[total] = '\0';
    ck_assert_str_eq(buf, want);
    layer_reader_free(r);
}

/* A directory outside the store holding f = "MARKER". */
static void outside_dir(char *out, size_t cap, const char *name)
{
    char path[PATH_MAX];

    scratch(out, cap, name);
    xfmt(path, sizeof(path), "%s/f", out);
    write_file(path, "MARKER");
}

START_TEST(dir_symlinks_below_the_root_are_refused)
{
    char root[PATH_MAX], outside[PATH_MAX], path[PATH_MAX], target[PATH_MAX];
    char via[PATH_MAX];
    layer_store *s;
    layer_info *info;

    scratch(root, sizeof(root), "links");
    outside_dir(outside, sizeof(outside), "links-outside");
    /* fs/ a symlink to a directory outside */
    dir_layer(root, "fslink", "{}");
    xfmt(path, sizeof(path), "%s/fslink/fs", root);
    ck_assert_int_eq(rmdir(path), 0);
    ck_assert_int_eq(symlink(outside, path), 0);
    /* <id>/ a symlink to another layer's directory */
    dir_layer(root, "real", "{}");
    xfmt(path, sizeof(path), "%s/real/fs/f", root);
    write_file(path, "inside");
    xfmt(path, sizeof(path), "%s/idlink", root);
    ck_assert_int_eq(symlink("real", path), 0);
    s = open_store("dir", root);
    xfmt(target, sizeof(target), "%s/fslink/fs is a symlink", root);
    resolve_fails(s, "fslink", LAYER_EBROKEN, target);
    resolve_fails(s, "idlink", LAYER_EBROKEN, "not a directory in the store");
    info = resolve_ok(s, "real");
    ck_assert(info->layer.has_fd);
    first_file_is(info, "inside");
    layer_info_free(info);
    layer_store_free(s);
    /* The root itself may be reached through a symlink: the operator
     * named it. */
    scratch(via, sizeof(via), "links-via");
    xfmt(path, sizeof(path), "%s/store", via);
    ck_assert_int_eq(symlink(root, path), 0);
    s = open_store("dir", path);
    info = resolve_ok(s, "real");
    first_file_is(info, "inside");
    layer_info_free(info);
    layer_store_free(s);
}
END_TEST

/* Once resolved, a layer is read through the descriptors the store
 * opened: a store writer who swaps fs/ for a symlink (or for another
 * directory) after the lookup changes nothing the reader sees. */
START_TEST(dir_resolved_layer_is_read_through_its_descriptors)
{
    char root[PATH_MAX], outside[PATH_MAX], fs[PATH_MAX], moved[PATH_MAX];
    char path[PATH_MAX];
    layer_store *s;
    layer_info *info;

    scratch(root, sizeof(root), "swap");
    outside_dir(outside, sizeof(outside), "swap-outside");
    dir_layer(root, "base", "{}");
    xfmt(path, sizeof(path), "%s/base/fs/f", root);
    write_file(path, "base");
    dir_layer(root, "top", "{\"parent\": \"base\"}");
    xfmt(path, sizeof(path), "%s/top/fs/f", root);
    write_file(path, "inside");
    s = open_store("dir", root);
    info = resolve_ok(s, "top");
    ck_assert(info->layer.has_fd && info->nparents == 1 &&
              info->parents[0].has_fd);
    /* swap both directories of the chain for symlinks to outside */
    xfmt(fs, sizeof(fs), "%s/top/fs", root);
    xfmt(moved, sizeof(moved), "%s/top/fs.old", root);
    ck_assert_int_eq(rename(fs, moved), 0);
    ck_assert_int_eq(symlink(outside, fs), 0);
    xfmt(fs, sizeof(fs), "%s/base/fs", root);
    xfmt(moved, sizeof(moved), "%s/base/fs.old", root);
    ck_assert_int_eq(rename(fs, moved), 0);
    ck_assert_int_eq(symlink(outside, fs), 0);
    first_file_is(info, "inside");
    layer_info_free(info);
    /* and a new lookup refuses them */
    resolve_fails(s, "top", LAYER_EBROKEN, "is a symlink");
    layer_store_free(s);
}
END_TEST

START_TEST(cs_symlinks_below_the_root_are_refused)
{
    static const char *const ids[] = {"real"};
    char root[PATH_MAX], outside[PATH_MAX], path[PATH_MAX], want[PATH_MAX];
    layer_store *s;

    /* overlay/<id> a symlink to a directory outside, with diff/ in it:
     * refused without any race, naming the path */
    cs_store(root, sizeof(root), "cs-idlink",
             "[{\"id\":\"top\"},{\"id\":\"real\"}]", ids, 1);
    scratch(outside, sizeof(outside), "cs-idlink-outside");
    xfmt(path, sizeof(path), "%s/diff", outside);
    mkdirs(path);
    xfmt(path, sizeof(path), "%s/overlay/top", root);
    ck_assert_int_eq(symlink(outside, path), 0);
    s = open_store("containers-storage", root);
    xfmt(want, sizeof(want),
         "containers-storage layer top: %s/overlay/top/diff is a symlink or "
         "has one on its path (refused)",
         root);
    resolve_fails(s, "top", LAYER_EBROKEN, want);
    layer_info_free(resolve_ok(s, "real"));
    layer_store_free(s);

    /* overlay/<id>/diff a symlink */
    cs_store(root, sizeof(root), "cs-difflink", "[{\"id\":\"top\"}]", NULL, 0);
    xfmt(path, sizeof(path), "%s/overlay/top", root);
    mkdirs(path);
    xfmt(path, sizeof(path), "%s/overlay/top/diff", root);
    ck_assert_int_eq(symlink(outside, path), 0);
    s = open_store("containers-storage", root);
    resolve_fails(s, "top", LAYER_EBROKEN, "is a symlink");
    layer_store_free(s);

    /* the metadata directory a symlink to another store's */
    cs_store(root, sizeof(root), "cs-metalink", "[]", NULL, 0);
    xfmt(path, sizeof(path), "%s/overlay-layers", root);
    xfmt(want, sizeof(want), "%s/overlay-layers.real", root);
    ck_assert_int_eq(rename(path, want), 0);
    ck_assert_int_eq(symlink("overlay-layers.real", path), 0);
    s = open_store("containers-storage", root);
    resolve_fails(s, "top", LAYER_EBROKEN, "is a symlink");
    layer_store_free(s);
}
END_TEST

START_TEST(docker_symlinks_below_the_root_are_refused)
{
    char root[PATH_MAX], outside[PATH_MAX], path[PATH_MAX], digest[80];
    char want[PATH_MAX];
    layer_store *s;

    xfmt(digest, sizeof(digest), "sha256:%s", hex64);
    docker_store(root, sizeof(root), "dk-cachelink", hex64, "c1", digest, NULL,
                 false);
    scratch(outside, sizeof(outside), "dk-cachelink-outside");
    xfmt(path, sizeof(path), "%s/diff", outside);
    mkdirs(path);
    xfmt(path, sizeof(path), "%s/overlay2/c1", root);
    ck_assert_int_eq(symlink(outside, path), 0);
    s = open_store("docker", root);
    xfmt(want, sizeof(want), "%s/overlay2/c1/diff is a symlink", root);
    resolve_fails(s, digest, LAYER_EBROKEN, want);
    layer_store_free(s);

    /* a layerdb file that is a symlink */
    docker_store(root, sizeof(root), "dk-difflink", hex64, "c1", NULL, NULL,
                 true);
    xfmt(path, sizeof(path), "%s/image/overlay2/layerdb/sha256/%s/diff", root,
         hex64);
    ck_assert_int_eq(symlink("cache-id", path), 0);
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN, "symlink");
    layer_store_free(s);

    /* the layerdb below a symlink */
    docker_store(root, sizeof(root), "dk-dblink", hex64, "c1", digest, NULL,
                 true);
    xfmt(path, sizeof(path), "%s/image/overlay2", root);
    xfmt(want, sizeof(want), "%s/image/overlay2.real", root);
    ck_assert_int_eq(rename(path, want), 0);
    ck_assert_int_eq(symlink("overlay2.real", path), 0);
    s = open_store("docker", root);
    resolve_fails(s, digest, LAYER_EBROKEN, "is a symlink");
    layer_store_free(s);
}
END_TEST

/* ---- where the tar-split data is ---- */

START_TEST(cs_tarsplit_data_is_found_and_must_be_a_file)
{
    static const char *const ids[] = {"top", "base"};
    char root[PATH_MAX], path[PATH_MAX], real[PATH_MAX];
    layer_store *s;
    layer_info *info;

    cs_store(root, sizeof(root), "cs-ts",
             "[{\"id\":\"top\",\"parent\":\"base\"},{\"id\":\"base\"}]", ids,
             2);
    s = open_store("containers-storage", root);
    /* none yet */
    info = resolve_ok(s, "top");
    ck_assert_ptr_null(info->tarsplit);
    ck_assert_ptr_nonnull(info->root);
    layer_info_free(info);
    /* a regular file: its path below the root, and the root */
    xfmt(path, sizeof(path), "%s/overlay-layers/top.tar-split.gz", root);
    write_file(path, "x");
    info = resolve_ok(s, "top");
    ck_assert_str_eq(info->tarsplit, "overlay-layers/top.tar-split.gz");
    ck_assert_ptr_nonnull(realpath(root, real));
    ck_assert_str_eq(info->root, real);
    layer_info_free(info);
    /* a symlink or a directory is no data */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(symlink("/etc/hostname", path), 0);
    info = resolve_ok(s, "top");
    ck_assert_ptr_null(info->tarsplit);
    layer_info_free(info);
    ck_assert_int_eq(unlink(path), 0);
    mkdirs(path);
    info = resolve_ok(s, "top");
    ck_assert_ptr_null(info->tarsplit);
    layer_info_free(info);
    layer_store_free(s);
}
END_TEST

START_TEST(docker_tarsplit_data_is_found_and_must_be_a_file)
{
    char root[PATH_MAX], path[PATH_MAX], digest[80];
    layer_store *s;
    layer_info *info;

    xfmt(digest, sizeof(digest), "sha256:%s", hex64);
    docker_store(root, sizeof(root), "dk-ts", hex64, "c1", digest, NULL, true);
    s = open_store("docker", root);
    info = resolve_ok(s, digest);
    ck_assert_ptr_null(info->tarsplit);
    layer_info_free(info);
    xfmt(path, sizeof(path),
         "%s/image/overlay2/layerdb/sha256/%s/tar-split.json.gz", root, hex64);
    write_file(path, "x");
    info = resolve_ok(s, digest);
    xfmt(path, sizeof(path),
         "image/overlay2/layerdb/sha256/%s/tar-split.json.gz", hex64);
    ck_assert_str_eq(info->tarsplit, path);
    ck_assert_str_eq(info->diff_digest, digest);
    layer_info_free(info);
    xfmt(path, sizeof(path),
         "%s/image/overlay2/layerdb/sha256/%s/tar-split.json.gz", root, hex64);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(symlink("/etc/hostname", path), 0);
    info = resolve_ok(s, digest);
    ck_assert_ptr_null(info->tarsplit);
    layer_info_free(info);
    layer_store_free(s);
}
END_TEST

/* ---- the index ---- */

static char engines[PATH_MAX]; /* mkengines.sh --cached */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Write path through a temporary file renamed over it, as
 * containers/storage does. */
static void replace_file(const char *path, const char *content)
{
    char tmp[PATH_MAX];

    xfmt(tmp, sizeof(tmp), "%s.tmp", path);
    write_file(tmp, content);
    ck_assert_int_eq(rename(tmp, path), 0);
}

/* Seconds until id resolves with code `want` (0: resolves), polling; -1
 * after limit seconds. */
static double seconds_until(layer_store *s, const char *id, int want,
                            double limit)
{
    double t0 = now_s();

    while (now_s() - t0 < limit) {
        layer_info *info = NULL;
        int rc = layer_store_resolve(&info, s, id);

        layer_info_free(info);
        if (rc == want)
            return now_s() - t0;
        usleep(10000);
    }
    return -1;
}

/* An unwatched store compares its metadata files on every call: a
 * change is seen by the next call, whatever its kind. */
START_TEST(index_unwatched_sees_the_next_change)
{
    static const char *const ids[] = {"top", "new"};
    char root[PATH_MAX], path[PATH_MAX];
    layer_store *s;
    layer_info *info;

    cs_store(root, sizeof(root), "idx-unwatched", "[{\"id\":\"top\"}]", ids, 2);
    s = open_store("containers-storage", root);
    layer_info_free(resolve_ok(s, "top"));
    resolve_fails(s, "new", LAYER_ENOTFOUND, NULL);
    xfmt(path, sizeof(path), "%s/overlay-layers/layers.json", root);
    replace_file(path, "[{\"id\":\"top\"},{\"id\":\"new\",\"parent\":"
                       "\"top\"}]");
    info = resolve_ok(s, "new");
    ck_assert_uint_eq(info->nparents, 1);
    layer_info_free(info);
    /* rewritten in place, same size: the ctime and mtime tell */
    write_file(path, "[{\"id\":\"top\"},{\"id\":\"new\",\"parent\":"
                     "\"xxx\"}]");
    resolve_fails(s, "new", LAYER_EBROKEN, "parent xxx not found");
    layer_store_free(s);
}
END_TEST

/* A watched store's calls never read metadata: its thread notices a
 * change (inotify, or the check once a second) and swaps a new index in;
 * a change is seen well within a second. A store broken meanwhile is
 * reported, and recovers. */
START_TEST(index_watched_sees_changes_within_a_second)
{
    static const char *const ids[] = {"top", "new"};
    char root[PATH_MAX], path[PATH_MAX];
    layer_store *s;
    double t;

    cs_store(root, sizeof(root), "idx-watched", "[{\"id\":\"top\"}]", ids, 2);
    s = open_store("containers-storage", root);
    ck_assert_int_eq(layer_store_watch(s), 0);
    ck_assert_int_eq(layer_store_watch(s), 0); /* twice is harmless */
    layer_info_free(resolve_ok(s, "top"));
    resolve_fails(s, "new", LAYER_ENOTFOUND, NULL);
    xfmt(path, sizeof(path), "%s/overlay-layers/layers.json", root);
    replace_file(path, "[{\"id\":\"top\"},{\"id\":\"new\"}]");
    t = seconds_until(s, "new", 0, 5);
    ck_assert_msg(t >= 0 && t <= 1.0, "a new layer seen after %.3f s", t);
    write_file(path, "[{\"id\":");
    t = seconds_until(s, "new", LAYER_EBROKEN, 5);
    ck_assert_msg(t >= 0 && t <= 1.0, "broken metadata seen after %.3f s", t);
    resolve_fails(s, "top", LAYER_EBROKEN, "layers.json: invalid JSON");
    replace_file(path, "[{\"id\":\"top\"}]");
    t = seconds_until(s, "top", 0, 5);
    ck_assert_msg(t >= 0 && t <= 1.0, "the repair seen after %.3f s", t);
    resolve_fails(s, "new", LAYER_ENOTFOUND, NULL);
    layer_store_free(s);
}
END_TEST

/* describe() answers from the index alone: nothing is opened, so a
 * missing data directory shows only when the layer is resolved. */
START_TEST(index_describe_opens_nothing)
{
    static const char *const ids[] = {"base"};
    char root[PATH_MAX];
    layer_store *s;
    layer_info *info = NULL;

    cs_store(root, sizeof(root), "idx-describe",
             "[{\"id\":\"base\",\"created\":\"2024-01-02T03:04:05Z\"},"
             "{\"id\":\"top\",\"parent\":\"base\"}]",
             ids, 1);
    s = open_store("containers-storage", root);
    ck_assert_int_eq(layer_store_describe(&info, s, "top"), 0);
    ck_assert(!info->layer.has_fd);
    ck_assert_uint_eq(info->nparents, 1);
    ck_assert(!info->parents[0].has_fd);
    ck_assert_str_eq(info->parent_ids[0], "base");
    ck_assert_ptr_null(info->layer.path);
    ck_assert_ptr_null(info->parents[0].path);
    ck_assert(!info->has_root_fd && info->root == NULL);
    layer_info_free(info);
    resolve_fails(s, "top", LAYER_EBROKEN, "overlay/top/diff is missing");
    info = resolve_ok(s, "base");
    ck_assert(info->layer.has_fd);
    ck_assert(info->has_root_fd && info->root != NULL);
    ck_assert_str_eq(info->created, "2024-01-02T03:04:05Z");
    layer_info_free(info);
    ck_assert_int_eq(layer_store_describe(&info, s, "nope"), LAYER_ENOTFOUND);
    layer_store_free(s);
}
END_TEST

/* A value of KEY=value lines in file. */
static void env_value(char *out, size_t cap, const char *file, const char *key)
{
    char line[1024];
    size_t klen = strlen(key);
    FILE *f = fopen(file, "r");

    ck_assert_msg(f != NULL, "open %s: %s", file, strerror(errno));
    out[0] = '\0';
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            line[strcspn(line, "\n")] = '\0';
            xfmt(out, cap, "%s", line + klen + 1);
            break;
        }
    }
    fclose(f);
    ck_assert_msg(out[0] != '\0', "%s: no %s", file, key);
}

/* Field `field` (1-based, tab-separated) of line `n` of file. */
static void tsv_field(char *out, size_t cap, const char *file, int n, int field)
{
    char line[4096], *p = line;
    FILE *f = fopen(file, "r");

    ck_assert_msg(f != NULL, "open %s: %s", file, strerror(errno));
    for (int i = 0; i < n; i++)
        ck_assert(fgets(line, sizeof(line), f) != NULL);
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    for (int i = 1; i < field; i++) {
        p = strchr(p, '\t');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    xfmt(out, cap, "%.*s", (int)strcspn(p, "\t"), p);
}

/* The image the engines built, as each store knows it: listed with its
 * name, resolved by name and by id to its top layer (the fourth of
 * layers.tsv, which resolves with three parents), its config read back
 * and checked against its digest. */
static void engine_image(const char *name)
{
    char dir[PATH_MAX], env[PATH_MAX], tsv[PATH_MAX], spec[PATH_MAX + 64];
    char kind[64], root[PATH_MAX], image[256], image_id[128], top[128];
    layer_store *s = NULL;
    layer_image **imgs = NULL, *img = NULL;
    layer_info *info;
    size_t n = 0, found = 0, len;
    char *config = NULL;

    xfmt(dir, sizeof(dir), "%s/%s", engines, name);
    xfmt(env, sizeof(env), "%s/store.env", dir);
    xfmt(tsv, sizeof(tsv), "%s/layers.tsv", dir);
    env_value(kind, sizeof(kind), env, "KIND");
    env_value(root, sizeof(root), env, "ROOT");
    env_value(image, sizeof(image), env, "IMAGE");
    env_value(image_id, sizeof(image_id), env, "IMAGE_ID");
    tsv_field(top, sizeof(top), tsv, 4, 2);
    xfmt(spec, sizeof(spec), "%s:%s/%s", kind, engines, root);
    ck_assert_int_eq(layer_store_open(&s, spec), 0);

    ck_assert_msg(layer_store_images(&imgs, &n, s) == 0, "%s",
                  layer_error_last());
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            ck_assert(strcmp(imgs[i - 1]->id, imgs[i]->id) < 0);
        for (size_t k = 0; k < imgs[i]->nnames; k++) {
            /* docker keeps "layerd-fixture:1", containers-storage
             * "localhost/layerd-fixture:1" */
            if (ends_with(imgs[i]->names[k], image) ||
                ends_with(image, imgs[i]->names[k])) {
                found++;
                ck_assert_str_eq(imgs[i]->id, image_id);
            }
        }
    }
    ck_assert_msg(found == 1, "%s: %s listed %zu times", name, image, found);

    ck_assert_msg(layer_store_image_resolve(&img, s, image_id) == 0, "%s",
                  layer_error_last());
    ck_assert_str_eq(img->id, image_id);
    ck_assert_ptr_nonnull(img->top_layer);
    ck_assert_str_eq(img->top_layer, top);
    ck_assert_int_eq(layer_store_image_config(&config, &len, s, img), 0);
    ck_assert_ptr_nonnull(strstr(config, "\"diff_ids\""));
    {
        char got[LAYER_DIGEST_STR_SIZE];

        ck_assert_int_eq(layer_digest_buffer(got, config, len), 0);
        ck_assert_str_eq(got, img->config_digest);
    }
    layer_free(config);
    for (size_t k = 0; k < img->nnames; k++) {
        layer_image *by_name = NULL;

        ck_assert_int_eq(layer_store_image_resolve(&by_name, s, img->names[k]),
                         0);
        ck_assert_str_eq(by_name->id, img->id);
        layer_image_free(by_name);
    }
    info = resolve_ok(s, img->top_layer);
    ck_assert_uint_eq(info->nparents, 3);
    layer_info_free(info);
    layer_image_free(img);
    img = NULL;
    ck_assert_int_eq(layer_store_image_resolve(&img, s, "no-such:image"),
                     LAYER_ENOTFOUND);
    ck_assert_int_eq(layer_store_image_resolve(&img, s, ""), LAYER_EINVALID);
    layer_images_free(imgs, n);
    layer_store_free(s);
}

START_TEST(images_of_the_engines_stores)
{
    engine_image("cs-overlay");
    engine_image("cs-vfs");
    engine_image("docker");
}
END_TEST

/* Image metadata that is broken leaves the layers served; one image's
 * broken record fails that image only; a config that does not hash to
 * its digest is refused. */
START_TEST(images_broken_metadata_is_reported)
{
    static const char *const ids[] = {"top"};
    char root[PATH_MAX], path[PATH_MAX], config[PATH_MAX], digest[80];
    layer_store *s;
    layer_image **imgs = NULL, *img = NULL;
    size_t n = 0, len;
    char *bytes = NULL, *file = NULL;
    const char *cfg = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";

    cs_store(root, sizeof(root), "img-broken", "[{\"id\":\"top\"}]", ids, 1);
    xfmt(path, sizeof(path), "%s/overlay-images", root);
    mkdirs(path);
    xfmt(path, sizeof(path), "%s/overlay-images/images.json", root);
    write_file(path, "[{\"id\":");
    s = open_store("containers-storage", root);
    layer_info_free(resolve_ok(s, "top"));
    ck_assert_int_eq(layer_store_images(&imgs, &n, s), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "images.json: invalid"));
    ck_assert_int_eq(layer_store_image_resolve(&img, s, "a:1"), LAYER_EBROKEN);

    ck_assert_int_eq(layer_digest_buffer(digest, cfg, strlen(cfg)), 0);
    ck_assert_int_eq(layer_store__cs_big_data_name(&file, digest), 0);
    xfmt(path, sizeof(path), "%s/overlay-images/images.json", root);
    {
        char json[1024];

        xfmt(json, sizeof(json),
             "[{\"id\":\"%s\",\"names\":[\"localhost/a:1\",\"b:2\"],"
             "\"layer\":\"top\",\"big-data-names\":[\"manifest\",\"%s\"]},"
             "{\"id\":\"%s\",\"layer\":\"../x\"},"
             "{\"id\":\"not-hex\"}]",
             hex64, digest, hex64 + 0 /* replaced below */);
        /* the second record: another id */
        memcpy(strstr(json + 20, hex64), "fedcba98", 8);
        replace_file(path, json);
    }
    xfmt(config, sizeof(config), "%s/overlay-images/%s", root, hex64);
    mkdirs(config);
    xfmt(config, sizeof(config), "%s/overlay-images/%s/%s", root, hex64, file);
    write_file(config, cfg);
    ck_assert_int_eq(layer_store_images(&imgs, &n, s), 0);
    ck_assert_uint_eq(n, 2); /* "not-hex" cannot be named */
    layer_images_free(imgs, n);
    ck_assert_int_eq(layer_store_image_resolve(&img, s, "b:2"), 0);
    ck_assert_str_eq(img->id, hex64);
    ck_assert_str_eq(img->top_layer, "top");
    ck_assert_str_eq(img->config_digest, digest);
    ck_assert_int_eq(layer_store_image_config(&bytes, &len, s, img), 0);
    ck_assert_str_eq(bytes, cfg);
    layer_free(bytes);
    /* the config changed on disk: its digest no longer holds */
    write_file(config, "{}");
    ck_assert_int_eq(layer_store_image_config(&bytes, &len, s, img),
                     LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "hash to"));
    layer_image_free(img);
    img = NULL;
    {
        char other[80];

        xfmt(other, sizeof(other), "fedcba98%s", hex64 + 8);
        ck_assert_int_eq(layer_store_image_resolve(&img, s, other),
                         LAYER_EBROKEN);
        ck_assert_ptr_nonnull(strstr(layer_error_last(), "invalid top layer"));
    }
    layer_store_free(s);
    layer_free(file);
}
END_TEST

START_TEST(images_big_data_names_are_encoded_as_containers_storage_does)
{
    char *name = NULL;

    ck_assert_int_eq(layer_store__cs_big_data_name(&name, "manifest"), 0);
    ck_assert_str_eq(name, "manifest");
    layer_free(name);
    ck_assert_int_eq(layer_store__cs_big_data_name(&name, "sha256:00ff"), 0);
    ck_assert_str_eq(name, "=c2hhMjU2OjAwZmY=");
    layer_free(name);
    ck_assert_int_eq(layer_store__cs_big_data_name(&name, "Manifest"), 0);
    ck_assert_str_eq(name, "=TWFuaWZlc3Q=");
    layer_free(name);
}
END_TEST

/* Docker: a broken repositories.json leaves the layers served; an image
 * whose config is gone is refused by name. */
START_TEST(images_docker_broken_metadata_is_reported)
{
    char root[PATH_MAX], path[PATH_MAX], digest[80];
    layer_store *s;
    layer_image **imgs = NULL, *img = NULL;
    size_t n = 0;

    xfmt(digest, sizeof(digest), "sha256:%s", hex64);
    docker_store(root, sizeof(root), "dk-img", hex64, "c1", digest, NULL, true);
    xfmt(path, sizeof(path), "%s/image/overlay2/repositories.json", root);
    write_file(path, "{\"Repositories\":{\"a\":{\"a:1\":7}}}");
    s = open_store("docker", root);
    layer_info_free(resolve_ok(s, digest));
    ck_assert_int_eq(layer_store_images(&imgs, &n, s), LAYER_EBROKEN);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "repositories.json"));
    /* a name for an image whose config the image database lacks */
    replace_file(path, "{\"Repositories\":{\"a\":{\"a:1\":\"sha256:"
                       "0000000000000000000000000000000000000000000000000000"
                       "000000000000\"}}}");
    xfmt(path, sizeof(path), "%s/image/overlay2/imagedb/content/sha256", root);
    mkdirs(path);
    ck_assert_int_eq(layer_store_images(&imgs, &n, s), 0);
    ck_assert_uint_eq(n, 0);
    layer_images_free(imgs, n);
    ck_assert_int_eq(layer_store_image_resolve(&img, s, "a:1"),
                     LAYER_ENOTFOUND);
    layer_store_free(s);
}
END_TEST

/* ---- main ---- */

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *ids = tcase_create("ids");
    TCase *dir = tcase_create("dir");
    TCase *cs = tcase_create("containers-storage");
    TCase *dk = tcase_create("docker");

    tcase_add_test(ids, valid_ids_are_accepted);
    tcase_add_test(ids, malformed_ids_are_refused);
    tcase_add_test(ids, bad_ids_are_refused_before_filesystem_access);
    tcase_add_test(ids, kind_names_round_trip);
    tcase_add_test(ids, open_refuses_unknown_specs_and_missing_paths);
    suite_add_tcase(s, ids);

    tcase_set_timeout(dir, 60);
    tcase_add_test(dir, dir_resolves_the_demo_diff_chain);
    tcase_add_test(dir, dir_resolves_the_demo_snapshot_chain);
    tcase_add_test(dir, dir_lists_and_pages_bytewise);
    tcase_add_test(dir, dir_list_skips_what_is_not_a_layer);
    tcase_add_test(dir, dir_layer_json_defaults_and_fields);
    tcase_add_test(dir, dir_missing_parent_is_broken_and_named);
    tcase_add_test(dir, dir_cycles_are_broken);
    tcase_add_test(dir, dir_chain_longer_than_the_cap_is_broken);
    tcase_add_test(dir, dir_bad_layer_json_is_broken);
    tcase_add_test(dir, dir_layer_json_is_read_strictly_and_with_a_cap);
    tcase_add_test(dir, dir_invalid_parent_ids_are_never_used_as_paths);
    tcase_add_test(dir, dir_store_sees_layers_created_after_open);
    tcase_add_test(dir, resolve_releases_everything_on_allocation_failure);
    tcase_add_test(dir, dir_symlinks_below_the_root_are_refused);
    tcase_add_test(dir, dir_resolved_layer_is_read_through_its_descriptors);
    suite_add_tcase(s, dir);

    tcase_add_test(cs, cs_overlay_resolves_ids_and_diff_digests);
    tcase_add_test(cs, cs_container_layers_are_mutable);
    tcase_add_test(cs, cs_incomplete_layers_are_not_listed_or_served);
    tcase_add_test(cs, cs_vfs_layers_are_snapshots);
    tcase_add_test(cs, cs_broken_metadata_is_reported);
    tcase_add_test(cs, cs_first_record_of_an_id_wins);
    tcase_add_test(cs, cs_metadata_is_read_as_go_reads_it);
    tcase_add_test(cs, cs_symlinks_below_the_root_are_refused);
    tcase_add_test(cs, cs_tarsplit_data_is_found_and_must_be_a_file);
    suite_add_tcase(s, cs);

    tcase_add_test(dk, docker_resolves_chain_ids_and_diff_ids);
    tcase_add_test(dk, docker_lists_chain_ids);
    tcase_add_test(dk, docker_values_read_from_disk_are_checked);
    tcase_add_test(dk, docker_self_parent_is_a_cycle);
    tcase_add_test(dk, docker_symlinks_below_the_root_are_refused);
    tcase_add_test(dk, docker_tarsplit_data_is_found_and_must_be_a_file);
    suite_add_tcase(s, dk);
    {
        TCase *ix = tcase_create("index");

        tcase_set_timeout(ix, 60);
        tcase_add_test(ix, index_unwatched_sees_the_next_change);
        tcase_add_test(ix, index_watched_sees_changes_within_a_second);
        tcase_add_test(ix, index_describe_opens_nothing);
        tcase_add_test(ix, images_of_the_engines_stores);
        tcase_add_test(ix, images_broken_metadata_is_reported);
        tcase_add_test(
            ix, images_big_data_names_are_encoded_as_containers_storage_does);
        tcase_add_test(ix, images_docker_broken_metadata_is_reported);
        suite_add_tcase(s, ix);
    }
    return s;
}

/* The source tree: LAYERD_SOURCE_DIR, else two levels up from this file. */
static int source_dir(char *out, size_t cap)
{
    const char *env = getenv("LAYERD_SOURCE_DIR");
    int n;

    if (env != NULL && *env != '\0') {
        n = snprintf(out, cap, "%s", env);
    } else {
        const char *file = __FILE__;
        const char *end = strstr(file, "tests/unit/test_store.c");

        if (end == NULL)
            return -1;
        n = snprintf(out, cap, "%.*s.", (int)(end - file), file);
    }
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int run_fixture(const char *src, const char *script, const char *dest)
{
    char cmd[3 * PATH_MAX];
    int n = snprintf(cmd, sizeof(cmd), "bash '%s/tests/fixtures/%s' '%s'", src,
                     script, dest);

    if (n < 0 || (size_t)n >= sizeof(cmd) || strchr(dest, '\'') ||
        strchr(src, '\''))
        return -1;
    return system(cmd) == 0 ? 0 : -1;
}

/* The real engines' stores (mkengines.sh --cached: built once per
 * checkout and shared), into engines. */
static int engines_fixture(const char *src)
{
    char cmd[PATH_MAX + 64];
    FILE *p;
    int n = snprintf(cmd, sizeof(cmd),
                     "bash '%s/tests/fixtures/mkengines.sh' --cached", src);

    if (n < 0 || (size_t)n >= sizeof(cmd) || strchr(src, '\'') ||
        (p = popen(cmd, "r")) == NULL)
        return -1;
    engines[0] = '\0';
    while (fgets(engines, sizeof(engines), p) != NULL)
        ; /* the last line is the path */
    if (pclose(p) != 0)
        return -1;
    engines[strcspn(engines, "\n")] = '\0';
    return engines[0] == '/' ? 0 : -1;
}

int main(void)
{
    char src[PATH_MAX], cmd[PATH_MAX + 32];
    SRunner *sr;
    int failed;

    if (source_dir(src, sizeof(src)) < 0) {
        fprintf(stderr, "test_store: set LAYERD_SOURCE_DIR\n");
        return 1;
    }
    if ((size_t)snprintf(tmp_root, sizeof(tmp_root), "%s/layerd-store-XXXXXX",
                         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") >=
            sizeof(tmp_root) ||
        mkdtemp(tmp_root) == NULL) {
        perror("test_store: mkdtemp");
        return 1;
    }
    if ((size_t)snprintf(demo, sizeof(demo), "%s/demo", tmp_root) >=
            sizeof(demo) ||
        (size_t)snprintf(stores, sizeof(stores), "%s/stores", tmp_root) >=
            sizeof(stores)) {
        fprintf(stderr, "test_store: TMPDIR is too long\n");
        return 1;
    }
    if (run_fixture(src, "mkdemo.sh", demo) < 0 ||
        run_fixture(src, "mkstores.sh", stores) < 0 ||
        engines_fixture(src) < 0) {
        fprintf(stderr, "test_store: building the fixtures failed\n");
        return 1;
    }

    sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    if (strchr(tmp_root, '\'') == NULL &&
        (size_t)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root) <
            sizeof(cmd)) {
        if (system(cmd) != 0)
            fprintf(stderr, "test_store: could not remove %s\n", tmp_root);
    }
    return failed != 0;
}
