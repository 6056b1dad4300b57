/*
 * Test fixture helpers: build trees with exact types, modes, times and
 * xattrs, and render a reader's output as text for exact comparisons.
 */
#include "fixture.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "layer/error.h"

void fx_skip(const char *test, const char *fmt, ...)
{
    const char *log = getenv("LAYERD_SKIP_LOG");
    size_t n = strlen(test);
    char why[512];
    va_list ap;

    /* START_TEST(name) defines name_fn */
    if (n > 3 && strcmp(test + n - 3, "_fn") == 0)
        n -= 3;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    /* e.g. "SKIP test_json numbers_ignore_the_process_locale: ..." */
    fprintf(stderr, "SKIP %s %.*s: %s\n", program_invocation_short_name, (int)n,
            test, why);
    if (log != NULL && log[0] != '\0') {
        FILE *f = fopen(log, "a");

        ck_assert_msg(f != NULL, "cannot open %s: %s", log, strerror(errno));
        fprintf(f, "%s %.*s: %s\n", program_invocation_short_name, (int)n, test,
                why);
        ck_assert_int_eq(fclose(f), 0);
    }
}

char *fx_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *p;

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    ck_assert(asprintf(&p, "%s/layerd-test.XXXXXX", base) > 0);
    ck_assert_msg(mkdtemp(p) != NULL, "mkdtemp: %s", strerror(errno));
    return p;
}

void fx_rm_rf(const char *path)
{
    /* rm copes with trees deeper than PATH_MAX; nftw does not */
    pid_t pid = fork();
    int status;

    ck_assert(pid >= 0);
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
        _exit(127);
    }
    ck_assert(waitpid(pid, &status, 0) == pid);
}

char *fx_path(const char *root, const char *rel)
{
    char *p;

    ck_assert(asprintf(&p, "%s/%s", root, rel) > 0);
    return p;
}

void fx_mkdir(const char *root, const char *rel, unsigned mode)
{
    char *p = fx_path(root, rel);

    ck_assert_msg(mkdir(p, mode) == 0 || errno == EEXIST, "mkdir %s: %s", p,
                  strerror(errno));
    ck_assert(chmod(p, mode) == 0);
    free(p);
}

void fx_file_bytes(const char *root, const char *rel, const void *data,
                   size_t len, unsigned mode)
{
    char *p = fx_path(root, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode);

    ck_assert_msg(fd >= 0, "create %s: %s", p, strerror(errno));
    ck_assert(write(fd, data, len) == (ssize_t)len);
    ck_assert(fchmod(fd, mode) == 0);
    close(fd);
    free(p);
}

void fx_file(const char *root, const char *rel, const char *content,
             unsigned mode)
{
    fx_file_bytes(root, rel, content, strlen(content), mode);
}

void fx_symlink(const char *root, const char *rel, const char *target)
{
    char *p = fx_path(root, rel);

    ck_assert_msg(symlink(target, p) == 0, "symlink %s: %s", p,
                  strerror(errno));
    free(p);
}

void fx_link(const char *root, const char *existing, const char *rel)
{
    char *a = fx_path(root, existing), *b = fx_path(root, rel);

    ck_assert_msg(link(a, b) == 0, "link %s: %s", b, strerror(errno));
    free(a);
    free(b);
}

void fx_mknod(const char *root, const char *rel, unsigned type, unsigned major,
              unsigned minor)
{
    char *p = fx_path(root, rel);

    ck_assert_msg(mknod(p, type | 0644, makedev(major, minor)) == 0,
                  "mknod %s: %s", p, strerror(errno));
    free(p);
}

void fx_fifo(const char *root, const char *rel)
{
    char *p = fx_path(root, rel);

    ck_assert(mkfifo(p, 0644) == 0);
    free(p);
}

void fx_xattr(const char *root, const char *rel, const char *name,
              const char *value)
{
    char *p = fx_path(root, rel);

    ck_assert_msg(lsetxattr(p, name, value, strlen(value), 0) == 0,
                  "setxattr %s %s: %s", p, name, strerror(errno));
    free(p);
}

void fx_mtime(const char *root, const char *rel, int64_t sec, long nsec)
{
    char *p = fx_path(root, rel);
    struct timespec ts[2] = {{(time_t)sec, nsec}, {(time_t)sec, nsec}};

    ck_assert(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) == 0);
    free(p);
}

void fx_chown(const char *root, const char *rel, unsigned uid, unsigned gid)
{
    char *p = fx_path(root, rel);

    ck_assert(lchown(p, uid, gid) == 0);
    free(p);
}

void fx_chmod(const char *root, const char *rel, unsigned mode)
{
    char *p = fx_path(root, rel);

    ck_assert(chmod(p, mode) == 0);
    free(p);
}

void fx_unlink(const char *root, const char *rel)
{
    char *p = fx_path(root, rel);

    ck_assert(unlink(p) == 0);
    free(p);
}

void fx_whiteout_chr(const char *root, const char *rel)
{
    fx_mknod(root, rel, S_IFCHR, 0, 0);
}

void fx_whiteout_xattr(const char *root, const char *rel, const char *ns)
{
    char name[64];

    fx_file(root, rel, "", 0644);
    snprintf(name, sizeof(name), "%s.overlay.whiteout", ns);
    fx_xattr(root, rel, name, "");
}

char *fx_entries(const layer_dir *layer, const layer_dir *parents,
                 size_t nparents)
{
    layer_reader *r = NULL;
    const layer_entry *e;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    int rc;

    ck_assert(f != NULL);
    rc = layer_reader_open(&r, layer, parents, nparents, NULL);
    if (rc == 0) {
        while ((rc = layer_reader_next(&e, r)) == 0) {
            fprintf(f, "%s %s %s", layer_change_name(e->change),
                    layer_type_name(e->type), e->path);
            if (e->link_target)
                fprintf(f, " -> %s", e->link_target);
            fputc('\n', f);
        }
    }
    if (rc != LAYER_ITEROVER)
        fprintf(f, "ERROR %s: %s\n", layer_error_name(rc), layer_error_last());
    layer_reader_free(r);
    fclose(f);
    return out;
}

char *fx_entries_kind(layer_kind kind, const char *layer,
                      const char *const *parents, size_t nparents)
{
    layer_dir l = {.path = layer, .kind = kind};
    layer_dir p[16] = {0};

    ck_assert(nparents <= 16);
    for (size_t i = 0; i < nparents; i++) {
        p[i].path = parents[i];
        p[i].kind = kind;
    }
    return fx_entries(&l, p, nparents);
}
