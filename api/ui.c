/*
 * The dashboard's files: /ui/... and the redirect of a browser's `GET /`.
 *
 * `/ui/assets/<file>` is that file (404 when there is none); every other
 * path under /ui/ is index.html, whatever follows, so that a deep link
 * (`/ui/layers/base?view=dir&path=etc`) reloads into the page, which
 * reads its own URL. `/ui` redirects to `/ui/`. `GET /` redirects to
 * `/ui/` when content negotiation prefers text/html over JSON (a
 * browser's Accept) and is the unknown-path 404 problem otherwise, as for
 * curl before the dashboard existed.
 *
 * The files are the compiled-in copies (strong ETags computed at build
 * time from their bytes) or, with --ui-dir, read from that directory on
 * every request through layer_beneath_open(): the path is checked as
 * text, then resolved beneath the directory's fd with no symlink
 * followed, so no request reaches outside it. Their ETag is then the
 * SHA-256 of the bytes read.
 *
 * Every answer under /ui/ carries the same security headers: a
 * Content-Security-Policy that allows only this origin and no inline
 * script or style, frame-ancestors 'none', nosniff and no-referrer.
 * Cache-Control is no-cache: names carry no content hash, so a browser
 * revalidates each file (If-None-Match gives a bodiless 304).
 */
#include "api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/ui.h"
#include "layer/alloc.h"
#include "layer/beneath.h"
#include "layer/digest.h"
#include "layer/error.h"

#define INDEX       "index.html"
#define ASSETS      "assets/"
#define ASSETS_LEN  (sizeof(ASSETS) - 1)
#define UI_LOCATION "/ui/"

static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

static const struct {
    const char *ext;
    const char *type;
} media_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/vnd.microsoft.icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
};

const char *api_ui_content_type(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash != NULL ? slash : path, '.');

    if (dot != NULL) {
        for (size_t i = 0; i < sizeof(media_types) / sizeof(media_types[0]);
             i++) {
            if (strcmp(dot, media_types[i].ext) == 0)
                return media_types[i].type;
        }
    }
    return API_TYPE_OCTETS;
}

static void add_security_headers(api_response *res)
{
    (void)api_response_add_header(res, "Content-Security-Policy", csp);
    (void)api_response_add_header(res, "X-Content-Type-Options", "nosniff");
    (void)api_response_add_header(res, "Referrer-Policy", "no-referrer");
    (void)api_response_add_header(res, "X-Frame-Options", "DENY");
}

/* A problem under /ui/, with the security headers. */
static void ui_problem(api_call *call, int status, const char *detail)
{
    api_problem__set(call, status, NULL, NULL, detail);
    add_security_headers(call->res);
}

/* A file read from the --ui-dir directory. */
typedef struct dir_file {
    char *data;
    size_t len;
    char etag[LAYER_DIGEST_STR_SIZE + 2];
} dir_file;

static int read_dir_file(dir_file *out, int dir_fd, const char *path)
{
    int rc = 0, fd = -1;
    struct stat st;
    char *buf = NULL;
    char digest[LAYER_DIGEST_STR_SIZE];
    size_t len = 0;

    if ((rc = layer_beneath_open(&fd, dir_fd, path, O_RDONLY | O_NONBLOCK, 0)) <
        0)
        goto out;
    if (fstat(fd, &st) < 0) {
        rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: fstat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = layer_error_set(LAYER_ENOTFOUND, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > API_UI_FILE_MAX) {
        rc = layer_error_set(LAYER_ETOOBIG, "%s: larger than %u bytes", path,
                             API_UI_FILE_MAX);
        goto out;
    }
    /* One spare byte tells a file that grew since fstat. */
    if ((buf = layer_trymalloc((size_t)st.st_size + 1)) == NULL) {
        rc = LAYER_ENOMEM;
        goto out;
    }
    while (len <= (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = layer_error_set_errno(LAYER_ERROR, errno, "%s: read", path);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len != (size_t)st.st_size) {
        rc = layer_error_set(LAYER_ECHANGED, "%s: changed while read", path);
        goto out;
    }
    if ((rc = layer_digest_buffer(digest, buf, len)) < 0)
        goto out;
    /* "sha256:<hex>" -> "\"<hex>\"", as the compiled-in files have it */
    out->etag[0] = '"';
    memcpy(out->etag + 1, digest + 7, 64);
    out->etag[65] = '"';
    out->etag[66] = '\0';
    out->data = buf;
    out->len = len;
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    layer_free(buf);
    return rc;
}

static const api_ui_file *find_embedded(const api_ui *ui, const char *path)
{
    for (size_t i = 0; i < ui->nfiles; i++) {
        if (strcmp(ui->files[i].path, path) == 0)
            return &ui->files[i];
    }
    return NULL;
}

static const char *header(api_call *call, const char *name)
{
    if (call->req->header == NULL)
        return NULL;
    return call->req->header(call->req->conn, name);
}

/* Answer with the file at path (relative to the UI's root). */
static void serve(api_call *call, const char *path)
{
    const api_ui *ui = call->ctx->ui;
    api_response *res = call->res;
    dir_file df = {NULL, 0, {0}};
    const api_ui_file *f = NULL;
    const char *etag, *inm;
    char *body = NULL;
    size_t len;
    int rc;

    if (ui == NULL) {
        ui_problem(call, 404, "this server has no dashboard");
        return;
    }
    if (ui->dir_fd >= 0) {
        rc = read_dir_file(&df, ui->dir_fd, path);
        if (rc == LAYER_ENOTFOUND || rc == LAYER_EINVALID) {
            ui_problem(call, 404, "no such file of the dashboard");
            return;
        }
        if (rc < 0) {
            api_problem__from_error(call,
                                    rc == LAYER_ETOOBIG ? LAYER_ERROR : rc);
            add_security_headers(res);
            return;
        }
        body = df.data;
        len = df.len;
        etag = df.etag;
    } else {
        if ((f = find_embedded(ui, path)) == NULL) {
            ui_problem(call, 404, "no such file of the dashboard");
            return;
        }
        len = f->len;
        etag = f->etag;
        if ((body = layer_trymalloc(len + 1)) == NULL) {
            api_problem__from_error(call, LAYER_ENOMEM);
            add_security_headers(res);
            return;
        }
        memcpy(body, f->data, len);
    }
    if ((inm = header(call, "If-None-Match")) != NULL &&
        api_etag__listed(inm, etag)) {
        layer_free(body);
        res->status = 304;
        res->has_length = true;
        res->content_length = len;
    } else if (api_response__set_body(res, 200, api_ui_content_type(path), body,
                                      len) < 0) {
        api_problem__from_error(call, LAYER_ETOOBIG);
        add_security_headers(res);
        return;
    }
    (void)api_response_add_header(res, "ETag", etag);
    (void)api_response_add_header(res, "Cache-Control", "no-cache");
    add_security_headers(res);
}

void api_ui__file(api_call *call)
{
    /* The assets are files; any other path is a view of the page. */
    if (strncmp(call->path, ASSETS, ASSETS_LEN) == 0)
        serve(call, call->path);
    else
        serve(call, INDEX);
}

void api_ui__index(api_call *call)
{
    serve(call, INDEX);
}

static void redirect(api_call *call, int status)
{
    call->res->status = status;
    call->res->has_length = true;
    call->res->content_length = 0;
    (void)api_response_add_header(call->res, "Location", UI_LOCATION);
}

void api_ui__redirect(api_call *call)
{
    redirect(call, 308);
    add_security_headers(call->res);
}

void api_ui__root(api_call *call)
{
    static const char *const types[] = {API_TYPE_JSON, "text/html"};
    size_t i = 0;

    if (call->ctx->ui != NULL &&
        api_accept__choose(&i, header(call, "Accept"), types, 2) == 0 &&
        i == 1) {
        redirect(call, 302);
    } else {
        api_problem__set(call, 404, NULL, NULL,
                         "no resource at this path; see /openapi.yaml");
    }
    (void)api_response_add_header(call->res, "Vary", "Accept");
}
