/*
 * Thread-local last error. Each thread keeps one fixed buffer: recording
 * an error never allocates, so even LAYER_ENOMEM can be reported. The
 * message is recorded where the failure happens; callers pass the code up
 * unchanged (STYLE.md rules 4-5). Code that must not disturb its caller's
 * error (tracing, metrics) or that hands a failure to another thread
 * (the export workers) saves and restores the whole state as plain data:
 * message, code, errno, exactly as recorded.
 */
#include "layer/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One line; longer messages are cut. 1 KiB holds a 4 KiB path's worth of
 * context only partially, which is fine for a log line. */
#define ERROR_MSG_MAX LAYER_ERROR_MSG_MAX
/* What a cut message ends with, before the strerror() suffix. */
#define CUT_MARK "..."

static _Thread_local char last_msg[ERROR_MSG_MAX];
static _Thread_local int last_code;
static _Thread_local int last_errno;

/* Where to cut s (at least cap bytes long) so that CUT_MARK fits in cap
 * bytes after it and no UTF-8 character is split: step back over up to
 * three continuation bytes. */
static size_t cut_at(const char *s, size_t cap)
{
    size_t cut = cap - (sizeof(CUT_MARK) - 1);

    for (int back = 0;
         back < 3 && cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80; back++)
        cut--;
    return cut;
}

/*
 * Format into a local buffer first, so that an argument may be this
 * thread's own message (e.g. "%s", layer_error_last()). With an errno the
 * ": <strerror>" suffix always fits: the message is cut before it, not
 * the suffix.
 */
static void record(int code, int err, const char *fmt, va_list ap)
{
    char msg[ERROR_MSG_MAX];
    char ebuf[128];
    const char *es = NULL;
    size_t room = sizeof(msg), len;
    int n;

    if (err != 0) {
        es = strerror_r(err, ebuf, sizeof(ebuf));
        /* strerror() texts are short; ebuf bounds them anyway. */
        room -= strlen(es) + 2;
    }
    n = vsnprintf(msg, room, fmt, ap);
    if (n < 0) {
        len = 0;
    } else if ((size_t)n >= room) {
        len = cut_at(msg, room - 1);
        memcpy(msg + len, CUT_MARK, sizeof(CUT_MARK) - 1);
        len += sizeof(CUT_MARK) - 1;
    } else {
        len = (size_t)n;
    }
    if (es != NULL)
        len += (size_t)snprintf(msg + len, sizeof(msg) - len, ": %s", es);
    msg[len] = '\0';
    memcpy(last_msg, msg, len + 1);
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

int layer_error_recode(int code)
{
    last_code = code;
    return code;
}

void layer_error_save(layer_error_state *out)
{
    size_t n = strnlen(last_msg, sizeof(last_msg) - 1);

    out->saved_errno = errno;
    out->code = last_code;
    out->err = last_errno;
    memcpy(out->msg, last_msg, n);
    out->msg[n] = '\0';
}

void layer_error_restore(const layer_error_state *s)
{
    size_t n = strnlen(s->msg, sizeof(s->msg) - 1);

    memcpy(last_msg, s->msg, n);
    last_msg[n] = '\0';
    last_code = s->code;
    last_errno = s->err;
    errno = s->saved_errno;
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
