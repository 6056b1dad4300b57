#ifndef TEST_FIXTURE_H
#define TEST_FIXTURE_H

/*
 * Helpers the unit tests share to build layer trees on disk and to
 * describe what a reader yields. Every helper fails the current Check
 * test on error, so tests read as plain sequences of steps.
 */

#include <stddef.h>
#include <stdint.h>

#include "layer/reader.h"

/*
 * Skip the running test: what it checks cannot be checked on this machine
 * (an optional locale or tool is missing). Prints "SKIP <runner> <test>:
 * <why>" and appends it (without SKIP) to the file $LAYERD_SKIP_LOG names,
 * if set, where tests/run.sh counts and lists the skips. The caller then
 * returns: Check counts the test as passed, so the skip is shown there.
 */
#define FX_SKIP(...) fx_skip(__func__, __VA_ARGS__)
void fx_skip(const char *test, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A new empty directory under $TMPDIR (or /tmp); free() the result. */
char *fx_tmpdir(void);
/* Remove a tree (no symlink is followed). */
void fx_rm_rf(const char *path);
/* root/rel joined; free() the result. */
char *fx_path(const char *root, const char *rel);

void fx_mkdir(const char *root, const char *rel, unsigned mode);
void fx_file(const char *root, const char *rel, const char *content,
             unsigned mode);
void fx_file_bytes(const char *root, const char *rel, const void *data,
                   size_t len, unsigned mode);
void fx_symlink(const char *root, const char *rel, const char *target);
void fx_link(const char *root, const char *existing, const char *rel);
void fx_mknod(const char *root, const char *rel, unsigned type, unsigned major,
              unsigned minor);
void fx_fifo(const char *root, const char *rel);
void fx_xattr(const char *root, const char *rel, const char *name,
              const char *value);
void fx_mtime(const char *root, const char *rel, int64_t sec, long nsec);
void fx_chown(const char *root, const char *rel, unsigned uid, unsigned gid);
void fx_chmod(const char *root, const char *rel, unsigned mode);
void fx_unlink(const char *root, const char *rel);

/* Overlay whiteouts. */
void fx_whiteout_chr(const char *root, const char *rel);
void fx_whiteout_xattr(const char *root, const char *rel, const char *ns);

/*
 * Run a reader over the layer and describe every entry as one line
 * "<change> <type> <path>[ -> <link target>]\n"; on failure the text
 * ends with "ERROR <code name>: <message>\n". free() the result.
 */
char *fx_entries(const layer_dir *layer, const layer_dir *parents,
                 size_t nparents);

/* Convenience: a chain of directories of one kind, nearest parent first. */
char *fx_entries_kind(layer_kind kind, const char *layer,
                      const char *const *parents, size_t nparents);

#endif
