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

/** Longest message kept, with its NUL; longer ones are cut. */
#define LAYER_ERROR_MSG_MAX 1024

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
 * The message is one impersonal line, formatted like printf, that says
 * what failed and with which object ("layer app: layer.json is not a
 * regular file"), without a module prefix: the operation's title is
 * added once, by the span or the CLI that reports it. It replaces any
 * previous message of this thread; an argument may be the thread's own
 * layer_error_last(). A message longer than LAYER_ERROR_MSG_MAX - 1 bytes
 * is cut, without splitting a UTF-8 character, and ends with "...". No
 * errno is recorded (layer_error_errno() gives 0).
 *
 * @param code the error code being returned (kept with the message)
 * @param fmt printf-style format
 * @return code, so that `return layer_error_set(LAYER_EINVALID, ...)` works
 */
int layer_error_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Like layer_error_set(), but appends ": <strerror(err)>" and records err
 * (layer_error_errno()). A long message is cut before the suffix, so the
 * suffix is always kept.
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
 * Change the code recorded with this thread's last error, keeping its
 * message and errno: for a caller that knows better what a failure means
 * (a file that is too big is LAYER_EBROKEN when it is a store's
 * metadata).
 *
 * @param code the new code
 * @return code
 */
int layer_error_recode(int code);

/**
 * A thread's error state, saved whole: the code, the errno and the
 * message of its last error, and errno itself. Plain data, so it may be
 * copied, kept on the stack and restored on another thread.
 */
typedef struct layer_error_state {
    int code;                      /**< layer_error_last_code() */
    int err;                       /**< layer_error_errno() */
    int saved_errno;               /**< errno */
    char msg[LAYER_ERROR_MSG_MAX]; /**< the message, NUL-terminated */
} layer_error_state;

/**
 * Save this thread's error state, for code that may fail internally but
 * must leave its caller's error untouched (tracing, metrics).
 *
 * @param[out] out the state
 */
void layer_error_save(layer_error_state *out);

/**
 * Make a saved state this thread's error state again, exactly as it was
 * saved: message, code, recorded errno and errno. Saves nest: restoring
 * an inner one and then an outer one gives the outer state.
 *
 * @param state from layer_error_save()
 */
void layer_error_restore(const layer_error_state *state);

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
