/* tape_error.c — the GError domain of the tape layer and tape_fail().
 * No state, no locks. */
#include "tape/tape.h"
#include "tape/tape_error.h"

#include <stdarg.h>

G_DEFINE_QUARK(tapefs-tape-error-quark, tape_error)

int tape_fail(GError **err, int code, const char *fmt, ...)
{
    if (err && !*err) {
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error_literal(err, TAPE_ERROR, code, msg);
    }
    return -code;
}
