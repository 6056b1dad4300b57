#ifndef LAYER_READER_INT_H
#define LAYER_READER_INT_H

/*
 * Internals of lib/reader.c shared with the tests.
 */

#include <stdbool.h>

/**
 * Turn the listxattrat/getxattrat path of the reader on or off for the
 * whole process. It starts on and turns itself off for good when the
 * kernel lacks the calls; tests turn it off to exercise the fallback
 * through /proc/self/fd.
 *
 * @param on whether to try the *xattrat calls
 */
void layer_reader__xattrat_set(bool on);

#endif
