#ifndef FUZZ_API_H
#define FUZZ_API_H

/*
 * What the fuzz targets that drive api_handle() share: an empty dir:
 * store in a directory of its own under TMPDIR and an API context over it,
 * both removed at exit. Header-only: each target is its own program.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "layer/store.h"

static char fuzz_api_dir[256];
static layer_store *fuzz_api_store;
static api_context *fuzz_api_ctx;

static void fuzz_api_close(void)
{
    api_context_free(fuzz_api_ctx);
    layer_store_free(fuzz_api_store);
    rmdir(fuzz_api_dir);
}

/* Open the store and a context with opts (its store is set here); abort
 * naming target on failure. */
static api_context *fuzz_api_open(const char *target, api_context_opts *opts)
{
    const char *tmp = getenv("TMPDIR");
    char spec[300];

    snprintf(fuzz_api_dir, sizeof(fuzz_api_dir), "%s/%s.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", target);
    if (mkdtemp(fuzz_api_dir) == NULL ||
        (snprintf(spec, sizeof(spec), "dir:%s", fuzz_api_dir),
         layer_store_open(&fuzz_api_store, spec)) != 0 ||
        (opts->store = fuzz_api_store, api_context_new(&fuzz_api_ctx, opts)) !=
            0) {
        fprintf(stderr, "%s: cannot open an empty store and a context\n",
                target);
        abort();
    }
    atexit(fuzz_api_close);
    return fuzz_api_ctx;
}

#endif
