/*
 * Tests for server/config.c: the table of `layerd serve` settings and
 * what it drives. Every value is parsed and checked the same way from the
 * command line, the config file and the defaults; the file's errors name
 * the file and line; merging keeps the command line over the file; the
 * defaults fill only what is unset; --help shows every flag; and the
 * README's table of settings is the one the table prints.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fixture.h"
#include "layer/error.h"

/* Set name = value, expecting code and (on failure) the message want. */
static void assert_set(srv_config *cfg, const char *name, const char *value,
                       int code, const char *want)
{
    int rc = srv_config_set(cfg, name, value);

    ck_assert_msg(rc == code, "%s = '%s': %d, expected %d (%s)", name, value,
                  rc, code, layer_error_last());
    if (want != NULL)
        ck_assert_str_eq(layer_error_last(), want);
}

START_TEST(test_every_row_is_complete_and_named_once)
{
    size_t n;
    const srv_setting *t = srv_config_settings(&n);

    ck_assert_uint_gt(n, 0);
    ck_assert_uint_le(n, 64); /* srv_config.set has 64 bits */
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(t[i].help != NULL && t[i].help[0] != '\0',
                      "%s has no help", t[i].name);
        if (t[i].type == SRV_SETTING_CHOICE)
            ck_assert_ptr_nonnull(t[i].choices);
        else if (t[i].type != SRV_SETTING_BOOL)
            ck_assert_msg(t[i].arg != NULL, "%s has no arg", t[i].name);
        if (t[i].type == SRV_SETTING_UINT)
            ck_assert_uint_le(t[i].min, t[i].max);
        ck_assert_ptr_eq(srv_config_find(t[i].name), &t[i]);
        for (size_t k = 0; k < i; k++)
            ck_assert_str_ne(t[i].name, t[k].name);
    }
    ck_assert_ptr_null(srv_config_find("bogus"));
}
END_TEST

START_TEST(test_every_default_passes_its_own_check)
{
    size_t n;
    const srv_setting *t = srv_config_settings(&n);

    for (size_t i = 0; i < n; i++) {
        srv_config cfg = SRV_CONFIG_INIT;

        if (t[i].def == NULL)
            continue;
        assert_set(&cfg, t[i].name, t[i].def, 0, NULL);
        srv_config_dispose(&cfg);
    }
}
END_TEST

START_TEST(test_values_are_parsed_and_checked)
{
    srv_config cfg = SRV_CONFIG_INIT;

    assert_set(&cfg, "store", "dir:/s", 0, NULL);
    ck_assert_str_eq(cfg.store, "dir:/s");
    assert_set(&cfg, "store", "dir:/t", 0, NULL); /* the last one wins */
    ck_assert_str_eq(cfg.store, "dir:/t");
    assert_set(&cfg, "cert", "", LAYER_EINVALID, "cert: empty value");
    ck_assert_ptr_null(cfg.cert);

    assert_set(&cfg, "max-exports", "4096", 0, NULL);
    ck_assert_uint_eq(cfg.max_exports, 4096);
    assert_set(&cfg, "max-exports", "0", LAYER_EINVALID,
               "max-exports: 0 is out of range 1..4096");
    assert_set(&cfg, "max-exports", "4097", LAYER_EINVALID,
               "max-exports: 4097 is out of range 1..4096");
    assert_set(&cfg, "grace", "ten", LAYER_EINVALID,
               "grace: 'ten' is not a number");
    assert_set(&cfg, "grace", "-1", LAYER_EINVALID,
               "grace: '-1' is not a number");
    assert_set(&cfg, "grace", "5s", LAYER_EINVALID,
               "grace: '5s' is not a number");
    assert_set(&cfg, "grace", "0", 0, NULL);
    ck_assert_uint_eq(cfg.grace, 0);
    ck_assert_uint_eq(cfg.max_exports, 4096); /* untouched by failures */

    assert_set(&cfg, "insecure-http", "yes", 0, NULL);
    ck_assert(cfg.insecure_http);
    assert_set(&cfg, "insecure-http", "off", 0, NULL);
    ck_assert(!cfg.insecure_http);
    assert_set(&cfg, "no-cache", "1", 0, NULL);
    ck_assert(cfg.no_cache);
    assert_set(&cfg, "no-cache", "maybe", LAYER_EINVALID,
               "no-cache: 'maybe' is not a boolean (true or false)");
    assert_set(&cfg, "cache-max-bytes", "3G", 0, NULL);
    ck_assert_uint_eq(cfg.cache_max_bytes, 3ull << 30);
    assert_set(&cfg, "cache-max-bytes", "512MiB", 0, NULL);
    ck_assert_uint_eq(cfg.cache_max_bytes, 512ull << 20);
    assert_set(&cfg, "cache-max-bytes", "2097152", 0, NULL);
    ck_assert_uint_eq(cfg.cache_max_bytes, 2ull << 20);
    assert_set(&cfg, "cache-max-bytes", "10X", LAYER_EINVALID,
               "cache-max-bytes: '10X' is not a size (N, or N with K, M, G "
               "or T)");
    assert_set(&cfg, "cache-max-bytes", "1K", LAYER_EINVALID,
               "cache-max-bytes: '1K' is out of range (1M to 1024P)");
    assert_set(&cfg, "cache-max-bytes", "-1", LAYER_EINVALID,
               "cache-max-bytes: '-1' is not a size");
    ck_assert_uint_eq(cfg.cache_max_bytes, 2ull << 20);
    assert_set(&cfg, "cache-dir", "/var/tmp/c", 0, NULL);
    ck_assert_str_eq(cfg.cache_dir, "/var/tmp/c");

    assert_set(&cfg, "log-format", "text", 0, NULL);
    ck_assert_str_eq(cfg.log_format, "text");
    assert_set(&cfg, "log-format", "xml", LAYER_EINVALID,
               "log-format: 'xml' is not json or text");
    assert_set(&cfg, "log-format", "", LAYER_EINVALID,
               "log-format: '' is not json or text");
    ck_assert_str_eq(cfg.log_format, "text");

    assert_set(&cfg, "bogus", "1", LAYER_EINVALID, "unknown setting 'bogus'");
    srv_config_dispose(&cfg);
    ck_assert_ptr_null(cfg.store);
    ck_assert_ptr_null(cfg.log_format);
    ck_assert_uint_eq(cfg.set, 0);
}
END_TEST

START_TEST(test_listen_addresses_are_checked_and_appended)
{
    srv_config cfg = SRV_CONFIG_INIT;
    char addr[32];

    assert_set(&cfg, "listen", "127.0.0.1:8443", 0, NULL);
    assert_set(&cfg, "listen", "[::1]:0", 0, NULL);
    assert_set(&cfg, "listen", "localhost:80", 0, NULL);
    ck_assert_uint_eq(cfg.listen.n, 3);
    ck_assert_str_eq(cfg.listen.v[1], "[::1]:0");
    assert_set(&cfg, "listen", "127.0.0.1", LAYER_EINVALID,
               "listen: '127.0.0.1' is not ADDRESS:PORT");
    assert_set(&cfg, "listen", "::1:8443", LAYER_EINVALID,
               "listen: '::1:8443': write IPv6 addresses in brackets, "
               "[ADDRESS]:PORT");
    assert_set(&cfg, "listen", "[127.0.0.1]:80", LAYER_EINVALID,
               "listen: '[127.0.0.1]:80': brackets are for IPv6 addresses");
    assert_set(&cfg, "listen", "host:65536", LAYER_EINVALID,
               "listen: 65536 is out of range 0..65535");
    ck_assert_uint_eq(cfg.listen.n, 3);
    for (unsigned i = 3; i < SRV_CONFIG_MAX_LISTEN; i++) {
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", i);
        assert_set(&cfg, "listen", addr, 0, NULL);
    }
    assert_set(&cfg, "listen", "127.0.0.1:99", LAYER_ETOOBIG,
               "listen: more than 16 addresses");
    srv_config_dispose(&cfg);
}
END_TEST

START_TEST(test_listen_specs_split_into_host_and_port)
{
    char host[16], port[8];

    ck_assert_int_eq(srv_config_parse_listen(host, sizeof(host), port,
                                             sizeof(port), "[fe80::1]:443"),
                     0);
    ck_assert_str_eq(host, "fe80::1");
    ck_assert_str_eq(port, "443");
    ck_assert_int_eq(srv_config_parse_listen(host, sizeof(host), port,
                                             sizeof(port), "example.org:1"),
                     0);
    ck_assert_str_eq(host, "example.org");
    ck_assert_str_eq(port, "1");
    ck_assert_int_eq(srv_config_parse_listen(host, sizeof(host), port,
                                             sizeof(port),
                                             "a-very-long-host-name:1"),
                     LAYER_EINVALID);
    ck_assert_int_eq(srv_config_parse_listen(host, sizeof(host), port,
                                             sizeof(port), "[::1]8443"),
                     LAYER_EINVALID);
}
END_TEST

/* Write text to a new file under a new temporary directory; returns the
 * file's path (free()). *dir gets the directory (free() and fx_rm_rf()). */
static char *write_conf(char **dir, const char *text)
{
    *dir = fx_tmpdir();
    fx_file(*dir, "layerd.conf", text, 0644);
    return fx_path(*dir, "layerd.conf");
}

START_TEST(test_a_config_file_sets_what_it_names)
{
    srv_config cfg = SRV_CONFIG_INIT;
    char *dir;
    char *path = write_conf(&dir, "# layerd\n"
                                  "\n"
                                  "  store = dir:/srv/store  \n"
                                  "listen=\"127.0.0.1:1\"\r\n"
                                  "listen = [::1]:2\n"
                                  "\tmax-exports\t=\t3\n"
                                  "insecure-http = true\n"
                                  "trace = \"a file with spaces\"\n"
                                  "grace = 5"); /* no final newline */

    ck_assert_int_eq(srv_config_load(&cfg, path), 0);
    ck_assert_str_eq(cfg.store, "dir:/srv/store");
    ck_assert_uint_eq(cfg.listen.n, 2);
    ck_assert_str_eq(cfg.listen.v[0], "127.0.0.1:1");
    ck_assert_str_eq(cfg.listen.v[1], "[::1]:2");
    ck_assert_uint_eq(cfg.max_exports, 3);
    ck_assert(cfg.insecure_http);
    ck_assert_str_eq(cfg.trace, "a file with spaces");
    ck_assert_uint_eq(cfg.grace, 5);
    ck_assert_ptr_null(cfg.cert);
    srv_config_dispose(&cfg);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}
END_TEST

/* Loading text must fail with code and a message ending in want (after
 * "PATH:"). */
static void assert_load_fails(const char *text, int code, const char *want)
{
    srv_config cfg = SRV_CONFIG_INIT;
    char *dir;
    char *path = write_conf(&dir, text);
    char expect[1024];

    ck_assert_int_eq(srv_config_load(&cfg, path), code);
    snprintf(expect, sizeof(expect), "%s:%s", path, want);
    ck_assert_str_eq(layer_error_last(), expect);
    srv_config_dispose(&cfg);
    fx_rm_rf(dir);
    free(path);
    free(dir);
}

START_TEST(test_config_file_errors_name_the_line)
{
    static char longline[5000];

    assert_load_fails("store = dir:x\n\nbogus = 1\n", LAYER_EINVALID,
                      "3: unknown setting 'bogus'");
    assert_load_fails("# c\nmax-exports = 0\n", LAYER_EINVALID,
                      "2: max-exports: 0 is out of range 1..4096");
    assert_load_fails("store dir:x\n", LAYER_EINVALID,
                      "1: expected 'key = value'");
    assert_load_fails(" = x\n", LAYER_EINVALID, "1: missing key before '='");
    assert_load_fails("grace = ten\n", LAYER_EINVALID,
                      "1: grace: 'ten' is not a number");
    assert_load_fails("store =\n", LAYER_EINVALID, "1: store: empty value");
    /* --config is a command-line option, not a key of the file. */
    assert_load_fails("config = other.conf\n", LAYER_EINVALID,
                      "1: unknown setting 'config'");
    memset(longline, 'x', sizeof(longline) - 1);
    memcpy(longline, "store = ", 8);
    assert_load_fails(longline, LAYER_ETOOBIG, "1: line too long");
}
END_TEST

START_TEST(test_config_files_that_cannot_be_read_are_refused)
{
    srv_config cfg = SRV_CONFIG_INIT;
    char *dir = fx_tmpdir();
    char *missing = fx_path(dir, "missing.conf");
    char *big = fx_path(dir, "big.conf");
    FILE *f;

    ck_assert_int_eq(srv_config_load(&cfg, missing), LAYER_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(layer_error_last(), "cannot open config"));
    ck_assert_int_eq(srv_config_load(&cfg, dir), LAYER_EINVALID);
    /* Over 1 MiB: comment lines, all valid, still refused. */
    f = fopen(big, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 17000; i++)
        fputs("# a comment line of some sixty-four bytes, repeated .........\n",
              f);
    fclose(f);
    ck_assert_int_eq(srv_config_load(&cfg, big), LAYER_ETOOBIG);
    ck_assert_uint_eq(cfg.set, 0);
    srv_config_dispose(&cfg);
    fx_rm_rf(dir);
    free(missing);
    free(big);
    free(dir);
}
END_TEST

START_TEST(test_the_command_line_wins_over_the_file)
{
    srv_config flags = SRV_CONFIG_INIT;
    srv_config file = SRV_CONFIG_INIT;

    assert_set(&flags, "trace", "flag.log", 0, NULL);
    assert_set(&flags, "listen", "127.0.0.1:0", 0, NULL);
    assert_set(&flags, "insecure-http", "false", 0, NULL);
    assert_set(&file, "trace", "file.log", 0, NULL);
    assert_set(&file, "listen", "127.0.0.1:1", 0, NULL);
    assert_set(&file, "listen", "127.0.0.1:2", 0, NULL);
    assert_set(&file, "insecure-http", "true", 0, NULL);
    assert_set(&file, "store", "dir:/s", 0, NULL);
    assert_set(&file, "log-format", "text", 0, NULL);
    assert_set(&file, "max-connections", "7", 0, NULL);
    assert_set(&file, "no-cache", "yes", 0, NULL);

    ck_assert_int_eq(srv_config_merge(&flags, &file), 0);
    ck_assert_str_eq(flags.trace, "flag.log");
    /* The command line's listen addresses replace the file's. */
    ck_assert_uint_eq(flags.listen.n, 1);
    ck_assert_str_eq(flags.listen.v[0], "127.0.0.1:0");
    /* A flag given as false still wins. */
    ck_assert(!flags.insecure_http);
    /* What the command line did not give comes from the file, copied. */
    ck_assert_str_eq(flags.store, "dir:/s");
    ck_assert_ptr_ne(flags.store, file.store);
    ck_assert_str_eq(flags.log_format, "text");
    ck_assert_uint_eq(flags.max_connections, 7);
    ck_assert(flags.no_cache);
    ck_assert_ptr_null(flags.cert);
    srv_config_dispose(&file);
    ck_assert_str_eq(flags.store, "dir:/s");

    /* With none on the command line, the file's listen addresses, all. */
    srv_config_dispose(&flags);
    assert_set(&file, "listen", "127.0.0.1:1", 0, NULL);
    assert_set(&file, "listen", "[::1]:2", 0, NULL);
    ck_assert_int_eq(srv_config_merge(&flags, &file), 0);
    ck_assert_uint_eq(flags.listen.n, 2);
    ck_assert_str_eq(flags.listen.v[1], "[::1]:2");
    srv_config_dispose(&file);
    srv_config_dispose(&flags);
}
END_TEST

START_TEST(test_finish_applies_the_defaults_to_what_is_unset)
{
    srv_config cfg = SRV_CONFIG_INIT;
    uint64_t given;

    assert_set(&cfg, "store", "dir:/s", 0, NULL);
    assert_set(&cfg, "grace", "0", 0, NULL);
    given = cfg.set;
    ck_assert_int_eq(srv_config_finish(&cfg), 0);
    ck_assert_uint_eq(cfg.set, given); /* defaults are not "given" */
    ck_assert_uint_eq(cfg.listen.n, 1);
    ck_assert_str_eq(cfg.listen.v[0], "127.0.0.1:8443");
    ck_assert_uint_eq(cfg.max_exports, 16);
    ck_assert_uint_eq(cfg.max_connections, 1024);
    ck_assert_uint_eq(cfg.idle_timeout, 60);
    ck_assert_uint_eq(cfg.grace, 0);
    ck_assert_str_eq(cfg.trace, "-");
    ck_assert_str_eq(cfg.log_format, "json");
    ck_assert(!cfg.insecure_http);
    ck_assert(!cfg.no_cache);
    ck_assert_uint_eq(cfg.cache_max_bytes, 10ull << 30);
    ck_assert_ptr_null(cfg.cache_dir);
    ck_assert_ptr_null(cfg.cert);
    ck_assert_ptr_null(cfg.openapi);
    ck_assert_uint_eq(cfg.header_timeout, 10);
    ck_assert_uint_eq(cfg.max_per_client, 32);
    ck_assert_uint_eq(cfg.max_header_bytes, 16384);
    ck_assert_uint_eq(cfg.send_timeout, 60);
    ck_assert_uint_eq(cfg.max_streams, 64);
    ck_assert_uint_eq(cfg.max_level, 9);
    ck_assert_uint_eq(cfg.max_export_memory, 256);
    ck_assert(!cfg.allow_insecure_key_permissions);
    srv_config_dispose(&cfg);
}
END_TEST

/* finish() on the given settings must fail with want. */
static void assert_finish_fails(const char *const *kv, const char *want)
{
    srv_config cfg = SRV_CONFIG_INIT;

    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_set(&cfg, kv[i], kv[i + 1], 0, NULL);
    ck_assert_int_eq(srv_config_finish(&cfg), LAYER_EINVALID);
    ck_assert_str_eq(layer_error_last(), want);
    srv_config_dispose(&cfg);
}

#define FINISH_FAILS(want, ...)                                                \
    assert_finish_fails((const char *const[]){__VA_ARGS__, NULL}, want)

START_TEST(test_finish_refuses_what_does_not_go_together)
{
    FINISH_FAILS("no store: give --store or 'store' in the config file",
                 "listen", "127.0.0.1:0");
    FINISH_FAILS("--cert needs --key", "store", "dir:/s", "cert", "c.pem");
    FINISH_FAILS("--key needs --cert", "store", "dir:/s", "key", "k.pem");
    FINISH_FAILS("--insecure-http and --cert exclude each other", "store",
                 "dir:/s", "insecure-http", "true", "cert", "c.pem", "key",
                 "k.pem");
    FINISH_FAILS("--client-ca needs --auth: client certificates are mapped "
                 "to the principals of the policy",
                 "store", "dir:/s", "client-ca", "ca.pem");
    FINISH_FAILS("--client-ca and --insecure-http exclude each other", "store",
                 "dir:/s", "client-ca", "ca.pem", "auth", "p.json",
                 "insecure-http", "true");
    FINISH_FAILS("--allow-anonymous and --auth exclude each other: with a "
                 "policy, its 'anonymous' grants say what anonymous clients "
                 "may do",
                 "store", "dir:/s", "auth", "p.json", "allow-anonymous",
                 "true");
}
END_TEST

START_TEST(test_server_names_are_checked_and_appended)
{
    srv_config cfg = SRV_CONFIG_INIT, file = SRV_CONFIG_INIT;
    char name[32];

    assert_set(&cfg, "server-name", "layerd.example", 0, NULL);
    assert_set(&cfg, "server-name", "[::1]", 0, NULL);
    assert_set(&cfg, "server-name", "10.1.2.3", 0, NULL);
    assert_set(&cfg, "server-name", "*.svc.cluster.local", 0, NULL);
    ck_assert_uint_eq(cfg.server_names.n, 4);
    ck_assert_str_eq(cfg.server_names.v[1], "[::1]");
    assert_set(&cfg, "server-name", "bad name", LAYER_EINVALID,
               "server-name: 'bad name' is not a host name or an IP address");
    assert_set(&cfg, "server-name", "host:443", LAYER_EINVALID,
               "server-name: 'host:443' is not a host name or an IP address");
    for (unsigned i = 4; i < SRV_CONFIG_MAX_LISTEN; i++) {
        snprintf(name, sizeof(name), "n%u.example", i);
        assert_set(&cfg, "server-name", name, 0, NULL);
    }
    assert_set(&cfg, "server-name", "one.more", LAYER_ETOOBIG,
               "server-name: more than 16 names");
    /* the file's names are taken only when the command line has none */
    assert_set(&file, "server-name", "from.file", 0, NULL);
    ck_assert_int_eq(srv_config_merge(&cfg, &file), 0);
    ck_assert_uint_eq(cfg.server_names.n, SRV_CONFIG_MAX_LISTEN);
    srv_config_dispose(&cfg);
    ck_assert_int_eq(srv_config_merge(&cfg, &file), 0);
    ck_assert_uint_eq(cfg.server_names.n, 1);
    ck_assert_str_eq(cfg.server_names.v[0], "from.file");
    srv_config_dispose(&cfg);
    srv_config_dispose(&file);
}
END_TEST

/* What f printed, as a new string (free()). */
static char *printed(void (*print)(FILE *))
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    ck_assert_ptr_nonnull(f);
    print(f);
    ck_assert_int_eq(fclose(f), 0);
    return text;
}

START_TEST(test_help_shows_every_flag_within_80_columns)
{
    char *help = printed(srv_config_help);
    size_t n;
    const srv_setting *t = srv_config_settings(&n);
    char want[64];

    for (size_t i = 0; i < n; i++) {
        snprintf(want, sizeof(want), "  --%s", t[i].name);
        ck_assert_msg(strstr(help, want) != NULL, "--help lacks %s", want);
    }
    ck_assert_ptr_nonnull(strstr(help, "  --max-exports N       concurrent "
                                       "exports before 503 (default 16)\n"));
    ck_assert_ptr_nonnull(strstr(help, "  --log-format json|text\n"));
    for (const char *p = help; *p != '\0';) {
        size_t len = strcspn(p, "\n");

        ck_assert_msg(len <= 79, "line too long: %.*s", (int)len, p);
        p += len + (p[len] == '\n');
    }
    free(help);
}
END_TEST

/* The README section between the generated table's markers. */
static char *readme_table(void)
{
    static const char begin[] =
        "<!-- generated by `layerd serve --help-config`; a unit test "
        "compares -->\n";
    static const char end[] = "<!-- end of the generated table -->\n";
    const char *src = getenv("LAYERD_SOURCE_DIR");
    char *path, *text = NULL, *b, *e, *out;
    size_t len = 0;
    FILE *f;

    ck_assert_msg(src != NULL, "LAYERD_SOURCE_DIR is not set");
    path = fx_path(src, "README.md");
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    text = malloc(1 << 20);
    ck_assert_ptr_nonnull(text);
    len = fread(text, 1, (1 << 20) - 1, f);
    text[len] = '\0';
    fclose(f);
    b = strstr(text, begin);
    ck_assert_msg(b != NULL, "README.md has no generated settings table");
    b += strlen(begin);
    e = strstr(b, end);
    ck_assert_msg(e != NULL, "README.md: the settings table has no end");
    out = strndup(b, (size_t)(e - b));
    free(text);
    free(path);
    return out;
}

START_TEST(test_the_readme_table_is_the_table)
{
    char *want = printed(srv_config_markdown);
    char *have = readme_table();

    ck_assert_msg(strcmp(have, want) == 0,
                  "README.md's table of settings differs from the one "
                  "`layerd serve --help-config` prints; paste it in:\n%s",
                  want);
    /* One row per setting and the two header lines. */
    {
        size_t rows = 0, n;

        srv_config_settings(&n);
        for (const char *p = want; *p != '\0'; p++)
            rows += *p == '\n';
        ck_assert_uint_eq(rows, n + 2);
    }
    ck_assert_ptr_nonnull(strstr(want, "| `--trace` | `trace` | "
                                       "`FILE\\|-\\|none` | `-` |"));
    ck_assert_ptr_nonnull(strstr(want, "| `--config` | (command line only) |"));
    free(want);
    free(have);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("table");

    tcase_add_test(tc, test_every_row_is_complete_and_named_once);
    tcase_add_test(tc, test_every_default_passes_its_own_check);
    tcase_add_test(tc, test_values_are_parsed_and_checked);
    tcase_add_test(tc, test_listen_addresses_are_checked_and_appended);
    tcase_add_test(tc, test_listen_specs_split_into_host_and_port);
    suite_add_tcase(s, tc);
    tc = tcase_create("file");
    tcase_add_test(tc, test_a_config_file_sets_what_it_names);
    tcase_add_test(tc, test_config_file_errors_name_the_line);
    tcase_add_test(tc, test_config_files_that_cannot_be_read_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("merge");
    tcase_add_test(tc, test_the_command_line_wins_over_the_file);
    tcase_add_test(tc, test_finish_applies_the_defaults_to_what_is_unset);
    tcase_add_test(tc, test_finish_refuses_what_does_not_go_together);
    tcase_add_test(tc, test_server_names_are_checked_and_appended);
    suite_add_tcase(s, tc);
    tc = tcase_create("docs");
    tcase_add_test(tc, test_help_shows_every_flag_within_80_columns);
    tcase_add_test(tc, test_the_readme_table_is_the_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
