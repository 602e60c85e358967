/* cache_error.c — the GError domain of the cache and cache_fail().
 * No state, no locks. */
#include "cache/cache.h"
#include "cache/cache_internal.h"

G_DEFINE_QUARK(tapefs-cache-error-quark, cache_error)

int cache_fail(GError **err, int code, const char *fmt, ...)
{
    if (err && !*err) {
        va_list ap;
        va_start(ap, fmt);
        g_autofree char *msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error_literal(err, CACHE_ERROR, code, msg);
    }
    return -code;
}
