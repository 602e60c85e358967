/* sync.c — store-wide durability requests: sync (dirty data and an index
 * on tape), flush_all (dirty data on tape), drop_cache (evict every clean
 * block so reads come back from tape). They hand work to the flusher and
 * wait; no lock is held while waiting. */
#include "core/core_private.h"

#include <errno.h>

int core_sync(Core *c, GError **err)
{
    int r = flusher_run(c->fl, NULL, true, err);
    if (r < 0)
        return r;
    g_mutex_lock(&c->lock);
    r = db_commit(c, err);
    g_mutex_unlock(&c->lock);
    return r;
}

int core_flush_all(Core *c, GError **err)
{
    return flusher_run(c->fl, NULL, false, err);
}

int core_drop_cache(Core *c, GError **err)
{
    GError *e = NULL;
    int r = cache_drop_clean(c->cache, 0, &e);
    if (r < 0) {
        r = core_fail_from(err, e, -r, "dropping the cache");
        g_clear_error(&e);
        return r;
    }
    recall_forget_parts(c->rc);
    return 0;
}
