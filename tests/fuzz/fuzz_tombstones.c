/*
 * Fuzz target for a transport folder's tombstones.txt, read as the
 * folder reader reads it (layer_folder__tombstones_from_fd() and _next(),
 * the bounded line reader below them): the file comes from whoever
 * wrote the folder. Any input must either fail with LAYER_EBROKEN,
 * LAYER_ENOMEM or LAYER_ERROR, recorded with a message, or give paths
 * that are canonical relative paths (no leading or trailing '/', no
 * empty, "." or ".." component, no NUL: each names one path inside the
 * layer and only that one) and that escape and unescape back to
 * themselves. The bytes reach the reader through a memfd.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../lib/folder_int.h"
#include "layer/alloc.h"
#include "layer/beneath.h"
#include "layer/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_failure(int rc)
{
    if ((rc != LAYER_EBROKEN && rc != LAYER_ENOMEM && rc != LAYER_ERROR) ||
        layer_error_last_code() != rc || layer_error_last()[0] == '\0')
        abort();
}

/* escape() then unescape() gives the path back. */
static void check_round_trip(const char *path, size_t len)
{
    char *esc = layer_trymalloc(2 * len + 1);
    size_t n;

    if (esc == NULL)
        return;
    n = layer_folder__escape(esc, path, len);
    esc[n] = '\0';
    if (memchr(esc, '\n', n) != NULL || memchr(esc, '\r', n) != NULL ||
        layer_folder__unescape(esc, &n) != 0 || n != len ||
        memcmp(esc, path, len) != 0)
        abort();
    layer_free(esc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    layer_folder__tombstones *t = NULL;
    const char *path;
    size_t len, done = 0;
    int fd, rc;

    fd = memfd_create("tombstones.txt", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);

        if (w <= 0)
            abort();
        done += (size_t)w;
    }
    if (lseek(fd, 0, SEEK_SET) != 0)
        abort();
    rc = layer_folder__tombstones_from_fd(&t, fd, "fuzz/tombstones.txt");
    if (rc < 0) {
        check_failure(rc);
        return 0;
    }
    while ((rc = layer_folder__tombstones_next(&path, &len, t)) == 0) {
        if (path[len] != '\0' || !layer_beneath_path_valid(path, len))
            abort();
        check_round_trip(path, len);
    }
    if (rc != LAYER_ITEROVER)
        check_failure(rc);
    layer_folder__tombstones_free(t);
    return 0;
}
