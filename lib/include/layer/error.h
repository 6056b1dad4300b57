#ifndef LAYER_ERROR_H
#define LAYER_ERROR_H

/**
 * @file layer/error.h
 * @brief Error codes and the thread-local last-error message.
 *
 * Every liblayer function that can fail returns an int: 0 on success, a
 * negative code on failure. The named codes below are the failures a
 * caller is expected to handle; anything else is LAYER_ERROR. The detail
 * is recorded once, where the failure happens, with layer_error_set(), and
 * read back with layer_error_last(). Callers propagate the code and do not
 * overwrite the message.
 */

#include <stdarg.h>

/** Error codes. All negative; 0 is success. */
enum layer_error_code {
    LAYER_OK = 0,
    LAYER_ERROR = -1,        /**< generic failure (I/O, resources) */
    LAYER_ENOTFOUND = -3,    /**< no such layer, entry or file */
    LAYER_EINVALID = -4,     /**< bad argument, id, path or input */
    LAYER_ETOOBIG = -5,      /**< a cap was reached (path, depth, size) */
    LAYER_ECHANGED = -6,     /**< a file changed while it was read */
    LAYER_EUNSUPPORTED = -7, /**< valid input this build cannot handle */
    LAYER_ECLOSED = -8,      /**< the object was already closed */
    LAYER_ENOMEM = -9,       /**< out of memory */
    LAYER_EBROKEN = -10,     /**< a store or layer on disk is malformed */
    LAYER_EBUSY = -11,       /**< a concurrency cap was reached */
    LAYER_EEXISTS = -12,     /**< the destination already exists */
    LAYER_ECANCELED = -13,   /**< the operation was cancelled */
    LAYER_EAGAIN = -14,      /**< no data yet; a notify callback follows */
    LAYER_ITEROVER = -31     /**< an iterator has no more items */
};

/**
 * Record the error detail of the current thread.
 *
 * The message is one impersonal line, formatted like printf. It replaces
 * any previous message of this thread. The errno at the time of the call
 * is recorded alongside it (see layer_error_errno()).
 *
 * @param code the error code being returned (kept with the message)
 * @param fmt printf-style format
 * @return code, so that `return layer_error_set(LAYER_EINVALID, ...)` works
 */
int layer_error_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Like layer_error_set(), but appends ": <strerror(err)>" and records err.
 *
 * @param code the error code being returned
 * @param err an errno value
 * @param fmt printf-style format
 * @return code
 */
int layer_error_set_errno(int code, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * The last error message of this thread.
 *
 * @return a borrowed string, valid until the next layer_error_* call on
 * this thread; "no error" if none was recorded.
 */
const char *layer_error_last(void);

/**
 * The code recorded with the last error of this thread.
 *
 * @return the code, or LAYER_OK if none was recorded
 */
int layer_error_last_code(void);

/**
 * The errno recorded with the last error of this thread.
 *
 * @return the errno value, or 0 when the error did not come from a system
 * call
 */
int layer_error_errno(void);

/**
 * Forget the last error of this thread.
 */
void layer_error_clear(void);

/**
 * Symbolic name of a code, e.g. "LAYER_ENOTFOUND".
 *
 * @param code an error code
 * @return a static string
 */
const char *layer_error_name(int code);

/**
 * Symbolic name of an errno value, e.g. "ENOENT".
 *
 * @param err an errno value
 * @return a static string; "E?" for unknown values
 */
const char *layer_errno_name(int err);

#endif
