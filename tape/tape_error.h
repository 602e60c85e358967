/* tape_error.h — error helpers internal to tape/: set a one-line GError in
 * the TAPE_ERROR domain and return the negative errno in one step.
 * No state, no locks. */
#pragma once

#include "tape/tape.h"

/* Sets *err (when err is not NULL and not yet set) to `code` (a positive
 * errno) with a printf-style message; returns -code. */
int tape_fail(GError **err, int code, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
