/*
 * Thread-local last error. Each thread keeps one fixed buffer: recording
 * an error never allocates, so even LAYER_ENOMEM can be reported. The
 * message is recorded where the failure happens; callers pass the code up
 * unchanged (STYLE.md rules 4-5).
 */
#include "layer/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One line; longer messages are cut. 1 KiB holds a 4 KiB path's worth of
 * context only partially, which is fine for a log line. */
#define ERROR_MSG_MAX 1024

static _Thread_local char last_msg[ERROR_MSG_MAX];
static _Thread_local int last_code;
static _Thread_local int last_errno;

static void record(int code, int err, const char *fmt, va_list ap)
{
    int n = vsnprintf(last_msg, sizeof(last_msg), fmt, ap);

    if (n < 0) {
        last_msg[0] = '\0';
        n = 0;
    }
    if (err != 0 && (size_t)n < sizeof(last_msg)) {
        char ebuf[128];
        const char *es = strerror_r(err, ebuf, sizeof(ebuf));
        snprintf(last_msg + n, sizeof(last_msg) - (size_t)n, ": %s", es);
    }
    last_code = code;
    last_errno = err;
}

int layer_error_set(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    record(code, 0, fmt, ap);
    va_end(ap);
    return code;
}

int layer_error_set_errno(int code, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    record(code, err, fmt, ap);
    va_end(ap);
    return code;
}

const char *layer_error_last(void)
{
    return last_code == 0 && last_msg[0] == '\0' ? "no error" : last_msg;
}

int layer_error_last_code(void)
{
    return last_code;
}

int layer_error_errno(void)
{
    return last_errno;
}

void layer_error_clear(void)
{
    last_msg[0] = '\0';
    last_code = 0;
    last_errno = 0;
}

const char *layer_error_name(int code)
{
    switch (code) {
    case LAYER_OK:
        return "LAYER_OK";
    case LAYER_ERROR:
        return "LAYER_ERROR";
    case LAYER_ENOTFOUND:
        return "LAYER_ENOTFOUND";
    case LAYER_EINVALID:
        return "LAYER_EINVALID";
    case LAYER_ETOOBIG:
        return "LAYER_ETOOBIG";
    case LAYER_ECHANGED:
        return "LAYER_ECHANGED";
    case LAYER_EUNSUPPORTED:
        return "LAYER_EUNSUPPORTED";
    case LAYER_ECLOSED:
        return "LAYER_ECLOSED";
    case LAYER_ENOMEM:
        return "LAYER_ENOMEM";
    case LAYER_EBROKEN:
        return "LAYER_EBROKEN";
    case LAYER_EBUSY:
        return "LAYER_EBUSY";
    case LAYER_EEXISTS:
        return "LAYER_EEXISTS";
    case LAYER_ECANCELED:
        return "LAYER_ECANCELED";
    case LAYER_EAGAIN:
        return "LAYER_EAGAIN";
    case LAYER_ITEROVER:
        return "LAYER_ITEROVER";
    default:
        return "LAYER_E?";
    }
}

const char *layer_errno_name(int err)
{
    /* strerrorname_np() needs glibc 2.32; Debian 12 has 2.36. */
    const char *name = err ? strerrorname_np(err) : NULL;

    return name ? name : "E?";
}
