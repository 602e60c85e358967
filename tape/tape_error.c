/* tape_error.c — the GError domain of the tape layer. No state, no locks. */
#include "tape/tape.h"

G_DEFINE_QUARK(tapefs-tape-error-quark, tape_error)
