/*
 * The allocation wrapper. All of liblayer allocates through here so that
 * out-of-memory is reported the same way everywhere (LAYER_ENOMEM, never
 * an abort) and so that tests can make the n-th allocation fail.
 */
#include "layer/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer/error.h"

static unsigned long fail_countdown;

static int should_fail(void)
{
    if (fail_countdown == 0)
        return 0;
    return --fail_countdown == 0;
}

static void *oom(size_t size)
{
    layer_error_set(LAYER_ENOMEM, "out of memory allocating %zu bytes", size);
    return NULL;
}

void *layer_trymalloc(size_t size)
{
    void *p;

    if (should_fail())
        return oom(size);
    p = malloc(size ? size : 1);
    return p ? p : oom(size);
}

void *layer_trycalloc(size_t n, size_t size)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size)
        return oom(SIZE_MAX);
    if (should_fail())
        return oom(n * size);
    p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom(n * size);
}

void *layer_tryarray(void *ptr, size_t n, size_t size)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size)
        return oom(SIZE_MAX);
    if (should_fail())
        return oom(n * size);
    p = realloc(ptr, n != 0 && size != 0 ? n * size : 1);
    return p ? p : oom(n * size);
}

char *layer_trystrndup(const char *s, size_t len)
{
    char *p;

    if (len == SIZE_MAX)
        return oom(len);
    p = layer_trymalloc(len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *layer_trystrdup(const char *s)
{
    return layer_trystrndup(s, strlen(s));
}

void layer_free(void *ptr)
{
    free(ptr);
}

void layer_alloc_fail_after(unsigned long n)
{
    fail_countdown = n;
}
