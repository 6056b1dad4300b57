/*
 * The allocation wrapper. All of liblayer allocates through here so that
 * out-of-memory is reported the same way everywhere (LAYER_ENOMEM, never
 * an abort) and so that tests can make the n-th allocation fail.
 *
 * The failure countdown is read by every allocation on every thread, so
 * it is atomic (relaxed: it orders nothing else). Unset, the cost is one
 * plain load; set, a compare-and-swap makes exactly one allocation, the
 * n-th, fail even when several threads allocate at once.
 */
#include "layer/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer/error.h"

static atomic_ulong fail_countdown;

static int should_fail(void)
{
    unsigned long n =
        atomic_load_explicit(&fail_countdown, memory_order_relaxed);

    while (n != 0) {
        if (atomic_compare_exchange_weak_explicit(&fail_countdown, &n, n - 1,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return n == 1;
    }
    return 0;
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

int layer_trygrow(void **p, size_t *cap, size_t need, size_t size, size_t first,
                  size_t max)
{
    size_t ncap = *cap != 0 ? *cap : first;
    void *np;

    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap = ncap > max / 2 ? max : ncap * 2;
    if ((np = layer_tryarray(*p, ncap, size)) == NULL)
        return LAYER_ENOMEM;
    *p = np;
    *cap = ncap;
    return 0;
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
    atomic_store_explicit(&fail_countdown, n, memory_order_relaxed);
}
