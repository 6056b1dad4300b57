/*
 * Tests for api/ui.c: the dashboard's files behind /ui/, from a table of
 * compiled-in files and from a --ui-dir directory. They pin that assets
 * are served with their media type, every other /ui/ path is the page
 * (deep links reload), the security headers are on every answer (404s
 * included), strong ETags give 304 (weak comparison, lists, '*'), /ui
 * and a browser's / are redirected while curl's / stays a 404 problem,
 * and that a directory's symlinks, subdirectories and escapes are never
 * served.
 */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api.h"
#include "api/ui.h"
#include "fixture.h"
#include "layer/digest.h"
#include "layer/store.h"
#include "layer/trace.h"

#define INDEX_HTML "<!doctype html><title>layerd</title>\n"
#define APP_JS     "export const x = 1;\n"
#define CSP_START  "default-src 'self'; script-src 'self'"

static const api_ui_file files[] = {
    {"assets/app.js", (const unsigned char *)APP_JS, sizeof(APP_JS) - 1,
     "\"aaaa\""},
    {"assets/icons.svg", (const unsigned char *)"<svg/>", 6, "\"bbbb\""},
    {"index.html", (const unsigned char *)INDEX_HTML, sizeof(INDEX_HTML) - 1,
     "\"cccc\""},
};

static char *root;
static layer_store *store;
static api_ui ui;
static api_context *ctx;      /* with the dashboard */
static api_context *ctx_noui; /* without */
static api_context *cur;
static layer_span *span;

static void setup(void)
{
    char *spec, *outside;

    root = fx_tmpdir();
    fx_mkdir(root, "store", 0755);
    ck_assert(asprintf(&spec, "dir:%s/store", root) > 0);
    ck_assert_int_eq(layer_store_open(&store, spec), 0);
    free(spec);
    fx_file(root, "secret.txt", "secret\n", 0644);
    fx_mkdir(root, "ui", 0755);
    fx_mkdir(root, "ui/assets", 0755);
    fx_mkdir(root, "ui/assets/sub", 0755);
    fx_file(root, "ui/index.html", "<!doctype html><p>from the dir\n", 0644);
    fx_file(root, "ui/assets/app.js", "export const y = 2;\n", 0644);
    outside = fx_path(root, "secret.txt");
    fx_symlink(root, "ui/assets/out.js", outside);
    fx_symlink(root, "ui/assets/rel.js", "../../secret.txt");
    fx_symlink(root, "ui/assets/in.js", "app.js");
    fx_symlink(root, "ui/assets/linkdir", "sub");
    fx_file(root, "ui/assets/sub/x.css", "p{}\n", 0644);
    free(outside);
    memset(&ui, 0, sizeof(ui));
    ui.files = files;
    ui.nfiles = sizeof(files) / sizeof(files[0]);
    ui.dir_fd = -1;
    {
        api_context_opts o;

        memset(&o, 0, sizeof(o));
        o.store = store;
        o.ui = &ui;
        ck_assert_int_eq(api_context_new(&ctx, &o), 0);
        o.ui = NULL;
        ck_assert_int_eq(api_context_new(&ctx_noui, &o), 0);
        api_set_ready(ctx, true);
        api_set_ready(ctx_noui, true);
        cur = ctx;
    }
    ck_assert_int_eq(layer_span_start(&span, NULL, NULL, "http.request"), 0);
}

static void teardown(void)
{
    if (ui.dir_fd >= 0)
        close(ui.dir_fd);
    layer_span_end(span);
    api_context_free(ctx);
    api_context_free(ctx_noui);
    layer_store_free(store);
    fx_rm_rf(root);
    free(root);
}

/* Serve the --ui-dir directory instead of the table. */
static void use_dir(void)
{
    char *dir = fx_path(root, "ui");

    ui.dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(ui.dir_fd, 0);
    free(dir);
}

typedef struct fake {
    const char *headers[4][2];
} fake;

static const char *fake_header(void *conn, const char *name)
{
    const fake *f = conn;

    for (size_t i = 0; i < 4 && f->headers[i][0] != NULL; i++) {
        if (strcasecmp(f->headers[i][0], name) == 0)
            return f->headers[i][1];
    }
    return NULL;
}

static const char *no_query(void *conn, const char *name)
{
    (void)conn;
    (void)name;
    return NULL;
}

static void request(api_response *res, const char *method, const char *path,
                    const fake *f)
{
    static const fake none;
    api_request req;

    memset(&req, 0, sizeof(req));
    req.method = method;
    req.raw_path = path;
    req.header = fake_header;
    req.query = no_query;
    req.conn = (void *)(f != NULL ? f : &none);
    req.span = span;
    api_handle(res, cur, &req);
}

static const char *hdr(const api_response *res, const char *name)
{
    for (size_t i = 0; i < res->nheaders; i++) {
        if (strcasecmp(res->headers[i].name, name) == 0)
            return res->headers[i].value;
    }
    return NULL;
}

static void assert_security_headers(const api_response *res)
{
    ck_assert_ptr_nonnull(hdr(res, "Content-Security-Policy"));
    ck_assert_int_eq(strncmp(hdr(res, "Content-Security-Policy"), CSP_START,
                             strlen(CSP_START)),
                     0);
    ck_assert_ptr_nonnull(
        strstr(hdr(res, "Content-Security-Policy"), "frame-ancestors 'none'"));
    ck_assert_ptr_null(strstr(hdr(res, "Content-Security-Policy"), "unsafe"));
    ck_assert_str_eq(hdr(res, "X-Content-Type-Options"), "nosniff");
    ck_assert_str_eq(hdr(res, "Referrer-Policy"), "no-referrer");
}

/* A 200 with exactly body as its bytes and type as its Content-Type. */
static void assert_file(const char *path, const char *type, const char *body,
                        const char *etag)
{
    api_response res;

    request(&res, "GET", path, NULL);
    ck_assert_msg(res.status == 200, "%s: %d", path, res.status);
    ck_assert_str_eq(hdr(&res, "Content-Type"), type);
    ck_assert_uint_eq(res.body_len, strlen(body));
    ck_assert_int_eq(memcmp(res.body, body, res.body_len), 0);
    ck_assert(res.has_length);
    ck_assert_str_eq(hdr(&res, "Cache-Control"), "no-cache");
    if (etag != NULL)
        ck_assert_str_eq(hdr(&res, "ETag"), etag);
    assert_security_headers(&res);
    api_response_dispose(&res);
}

static void assert_not_found(const char *path)
{
    api_response res;

    request(&res, "GET", path, NULL);
    ck_assert_msg(res.status == 404, "%s: %d", path, res.status);
    ck_assert_str_eq(hdr(&res, "Content-Type"), "application/problem+json");
    ck_assert_ptr_null(hdr(&res, "ETag"));
    ck_assert_ptr_null(strstr(res.body, root)); /* no host path */
    assert_security_headers(&res);
    api_response_dispose(&res);
}

START_TEST(test_media_types_follow_the_extension)
{
    ck_assert_str_eq(api_ui_content_type("index.html"),
                     "text/html; charset=utf-8");
    ck_assert_str_eq(api_ui_content_type("assets/app.js"),
                     "text/javascript; charset=utf-8");
    ck_assert_str_eq(api_ui_content_type("assets/style.css"),
                     "text/css; charset=utf-8");
    ck_assert_str_eq(api_ui_content_type("assets/icons.svg"), "image/svg+xml");
    ck_assert_str_eq(api_ui_content_type("assets/x.png"), "image/png");
    ck_assert_str_eq(api_ui_content_type("assets/README"),
                     "application/octet-stream");
    ck_assert_str_eq(api_ui_content_type("assets.js/README"),
                     "application/octet-stream");
}
END_TEST

START_TEST(test_assets_are_files_and_other_paths_the_page)
{
    assert_file("/ui/", "text/html; charset=utf-8", INDEX_HTML, "\"cccc\"");
    assert_file("/ui/assets/app.js", "text/javascript; charset=utf-8", APP_JS,
                "\"aaaa\"");
    assert_file("/ui/assets/icons.svg", "image/svg+xml", "<svg/>", "\"bbbb\"");
    /* deep links of every shape reload into the page */
    assert_file("/ui/layers/base", "text/html; charset=utf-8", INDEX_HTML,
                "\"cccc\"");
    assert_file("/ui/layers/sha256%3Aabc/x", "text/html; charset=utf-8",
                INDEX_HTML, NULL);
    assert_file("/ui/index.html", "text/html; charset=utf-8", INDEX_HTML, NULL);
    assert_file("/ui/assets", "text/html; charset=utf-8", INDEX_HTML, NULL);
    assert_not_found("/ui/assets/nope.js");
    assert_not_found("/ui/assets/app.js/x");
}
END_TEST

START_TEST(test_if_none_match_gives_304)
{
    static const char *const match[] = {"\"aaaa\"", "W/\"aaaa\"",
                                        "\"x\", \"aaaa\"", "*"};
    api_response res;

    for (size_t i = 0; i < sizeof(match) / sizeof(match[0]); i++) {
        fake f = {{{"If-None-Match", match[i]}}};

        request(&res, "GET", "/ui/assets/app.js", &f);
        ck_assert_msg(res.status == 304, "%s: %d", match[i], res.status);
        ck_assert_ptr_null(res.body);
        ck_assert_str_eq(hdr(&res, "ETag"), "\"aaaa\"");
        assert_security_headers(&res);
        api_response_dispose(&res);
    }
    {
        fake f = {{{"If-None-Match", "\"cccc\""}}};

        request(&res, "GET", "/ui/assets/app.js", &f);
        ck_assert_int_eq(res.status, 200);
        api_response_dispose(&res);
    }
}
END_TEST

START_TEST(test_redirects_to_the_page)
{
    static const char *const browser =
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    api_response res;

    request(&res, "GET", "/ui", NULL);
    ck_assert_int_eq(res.status, 308);
    ck_assert_str_eq(hdr(&res, "Location"), "/ui/");
    api_response_dispose(&res);
    {
        fake f = {{{"Accept", browser}}};

        request(&res, "GET", "/", &f);
        ck_assert_int_eq(res.status, 302);
        ck_assert_str_eq(hdr(&res, "Location"), "/ui/");
        ck_assert_str_eq(hdr(&res, "Vary"), "Accept");
        api_response_dispose(&res);
        request(&res, "HEAD", "/", &f);
        ck_assert_int_eq(res.status, 302);
        api_response_dispose(&res);
        /* no dashboard: no redirect */
        cur = ctx_noui;
        request(&res, "GET", "/", &f);
        ck_assert_int_eq(res.status, 404);
        api_response_dispose(&res);
        request(&res, "GET", "/ui/", &f);
        ck_assert_int_eq(res.status, 404);
        api_response_dispose(&res);
        cur = ctx;
    }
    /* curl, a JSON client, or nothing said: the 404 problem as before */
    {
        static const char *const others[] = {
            "*/*", "application/json", "text/html;q=0.5, */*", "image/png"};

        for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
            fake f = {{{"Accept", others[i]}}};

            request(&res, "GET", "/", &f);
            ck_assert_msg(res.status == 404, "%s: %d", others[i], res.status);
            ck_assert_str_eq(hdr(&res, "Content-Type"),
                             "application/problem+json");
            api_response_dispose(&res);
        }
        request(&res, "GET", "/", NULL);
        ck_assert_int_eq(res.status, 404);
        api_response_dispose(&res);
    }
    request(&res, "POST", "/ui/", NULL);
    ck_assert_int_eq(res.status, 405);
    api_response_dispose(&res);
}
END_TEST

START_TEST(test_a_directory_is_served_beneath_itself)
{
    char want[LAYER_DIGEST_STR_SIZE], etag[80];
    static const char js[] = "export const y = 2;\n";

    use_dir();
    ck_assert_int_eq(layer_digest_buffer(want, js, strlen(js)), 0);
    snprintf(etag, sizeof(etag), "\"%s\"", want + 7);
    assert_file("/ui/assets/app.js", "text/javascript; charset=utf-8", js,
                etag);
    assert_file("/ui/layers/base", "text/html; charset=utf-8",
                "<!doctype html><p>from the dir\n", NULL);
    assert_file("/ui/assets/sub/x.css", "text/css; charset=utf-8", "p{}\n",
                NULL);
    /* symlinks, out or in, and directories are never served */
    assert_not_found("/ui/assets/out.js");
    assert_not_found("/ui/assets/rel.js");
    assert_not_found("/ui/assets/in.js");
    assert_not_found("/ui/assets/linkdir/x.css");
    assert_not_found("/ui/assets/sub");
    assert_not_found("/ui/assets/icons.svg"); /* only in the table */
    /* escapes do not even reach the handler */
    {
        api_response res;

        request(&res, "GET", "/ui/assets/%2e%2e/%2e%2e/secret.txt", NULL);
        ck_assert_int_eq(res.status, 400);
        api_response_dispose(&res);
        request(&res, "GET", "/ui/assets/..%2f..%2fsecret.txt", NULL);
        ck_assert_int_eq(res.status, 400);
        api_response_dispose(&res);
    }
    /* the file is read on each request */
    fx_file(root, "ui/assets/app.js", "changed\n", 0644);
    assert_file("/ui/assets/app.js", "text/javascript; charset=utf-8",
                "changed\n", NULL);
    /* no index.html: the page is a 404 */
    fx_unlink(root, "ui/index.html");
    assert_not_found("/ui/");
    assert_not_found("/ui/layers/base");
}
END_TEST

static Suite *ui_suite(void)
{
    Suite *s = suite_create("ui");
    TCase *tc = tcase_create("files");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_media_types_follow_the_extension);
    tcase_add_test(tc, test_assets_are_files_and_other_paths_the_page);
    tcase_add_test(tc, test_if_none_match_gives_304);
    tcase_add_test(tc, test_redirects_to_the_page);
    tcase_add_test(tc, test_a_directory_is_served_beneath_itself);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ui_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
