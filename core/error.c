/* error.c — the GError domain of the core and helpers that build errors
 * with an errno code and a one-line message. No state, no locks. */
#include "core/core_private.h"

#include <errno.h>
#include <stdarg.h>

G_DEFINE_QUARK(tapefs-core-error-quark, core_error)

int core_fail(GError **err, int errnum, const char *fmt, ...)
{
    if (errnum < 0)
        errnum = -errnum;
    if (err && !*err) {
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error_literal(err, CORE_ERROR, errnum, msg);
    }
    return -errnum;
}

int core_fail_from(GError **err, GError *src, int fallback, const char *what)
{
    int code = fallback;
    if (src && src->code > 0 && src->code < 4096)
        code = src->code;
    if (code < 0)
        code = -code;
    core_fail(err, code, "%s: %s", what, src ? src->message : g_strerror(code));
    return -code;
}
