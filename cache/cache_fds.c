/* cache_fds.c — the budget of open object files. An object's data file is
 * opened on first use and stays open until the cache holds more than
 * fd_max open files; then idle ones are closed, second-chance order
 * (c->fd_lru is a clock: a file used since the last pass goes round once
 * more). A file is idle when no block of its object is held and no state
 * save is using it (fd_busy); anything using the fd holds one of those or
 * o->lock, so closing under o->lock never pulls a file from under a user.
 *
 * The budget fits the process: at open it is at most a quarter of the
 * soft RLIMIT_NOFILE (the rest is for the owner: catalog, tape, its
 * callers). If opening a file still fails with EMFILE or ENFILE, the
 * budget drops to half of the files the cache has open and idle files are
 * closed at once (cache_fds_shed), then the open is tried again
 * (cache_fds_open, used for every file the cache opens while running).
 *
 * Each queued object carries one ref owned by the queue (fd_listed); the
 * trimmer takes the node out of the queue while it looks at the object and
 * either puts it back or drops node and ref.
 *
 * Locks: o->lock guards o->fd, fd_used, fd_busy; c->lock guards the queue,
 * fd_link, fd_listed, fd_max and the counters. Order: o->lock -> c->lock.
 * The trimmer holds no lock when it takes an object's lock; cache_fds_shed
 * may run with one object's lock held and only tries the others'
 * (trylock).
 */
#include "cache/cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

/* The budget never goes below this many files. */
#define FDS_MIN 4u

unsigned cache_fds_budget(unsigned want)
{
    if (want == 0)
        want = 256;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t cap = MAX(rl.rlim_cur / 4, (rlim_t)FDS_MIN);
        if ((rlim_t)want > cap)
            want = (unsigned)cap;
    }
    return want;
}

void cache_fds_shed(Cache *c, CacheObject *self)
{
    GSList *unlisted = NULL;
    g_mutex_lock(&c->lock);
    c->fd_max = MIN(c->fd_max, MAX(c->fd_open / 2, FDS_MIN));
    for (GList *l = c->fd_lru.head, *next; l && c->fd_open > c->fd_max;
         l = next) {
        next = l->next;
        CacheObject *x = l->data;
        if (x == self || !g_mutex_trylock(&x->lock))
            continue;
        if (x->nholds == 0 && x->fd_busy == 0) {
            if (x->fd >= 0) {
                close(x->fd);
                x->fd = -1;
                c->fd_open--;
            }
            g_queue_delete_link(&c->fd_lru, l);
            x->fd_link = NULL;
            x->fd_listed = false;
            unlisted = g_slist_prepend(unlisted, x);
        }
        g_mutex_unlock(&x->lock);
    }
    g_mutex_unlock(&c->lock);
    /* The queue's refs; the object table still holds one of each. */
    g_slist_free_full(unlisted, (GDestroyNotify)cache_object_unref);
}

int cache_fds_open(Cache *c, CacheObject *self, const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
        cache_fds_shed(c, self);
        fd = open(path, flags | O_CLOEXEC, 0600);
    }
    return fd;
}

int obj_fd_locked(CacheObject *o, GError **err)
{
    Cache *c = o->cache;
    o->fd_used = true;
    if (o->fd >= 0)
        return o->fd;
    if (o->deleted)
        return cache_fail(err, ENOENT, "cache object %" G_GUINT64_FORMAT
                          " was deleted", o->id);
    o->fd = cache_fds_open(c, o, o->path, O_RDWR | O_CREAT);
    if (o->fd < 0)
        return cache_fail(err, errno, "cannot open cache file %s: %s",
                          o->path, g_strerror(errno));
    g_mutex_lock(&c->lock);
    c->fd_open++;
    if (!o->fd_listed) {
        cache_object_ref(o);
        g_queue_push_tail(&c->fd_lru, o);
        o->fd_link = c->fd_lru.tail;
        o->fd_listed = true;
    }
    g_mutex_unlock(&c->lock);
    return o->fd;
}

bool obj_fd_close_locked(CacheObject *o)
{
    Cache *c = o->cache;
    bool drop = false;
    g_mutex_lock(&c->lock);
    if (o->fd >= 0) {
        close(o->fd);
        o->fd = -1;
        c->fd_open--;
    }
    if (o->fd_link) { /* queued: take it out; else the trimmer has it */
        g_queue_delete_link(&c->fd_lru, o->fd_link);
        o->fd_link = NULL;
        o->fd_listed = false;
        drop = true;
    }
    g_mutex_unlock(&c->lock);
    return drop;
}

void cache_fds_trim(Cache *c)
{
    g_mutex_lock(&c->lock);
    if (c->fd_trimming || c->fd_open <= c->fd_max) {
        g_mutex_unlock(&c->lock);
        return;
    }
    c->fd_trimming = true;
    guint tries = 2 * c->fd_lru.length + 1;
    while (c->fd_open > c->fd_max && tries-- > 0) {
        GList *l = g_queue_pop_head_link(&c->fd_lru);
        if (!l)
            break;
        CacheObject *o = l->data;
        o->fd_link = NULL;
        g_mutex_unlock(&c->lock);

        bool release = false;
        g_mutex_lock(&o->lock);
        bool busy = o->fd >= 0 && (o->fd_used || o->nholds || o->fd_busy);
        o->fd_used = false;
        g_mutex_lock(&c->lock);
        if (busy) {
            g_queue_push_tail_link(&c->fd_lru, l);
            o->fd_link = l;
        } else {
            if (o->fd >= 0) {
                close(o->fd);
                o->fd = -1;
                c->fd_open--;
            }
            o->fd_listed = false;
            release = true;
        }
        g_mutex_unlock(&c->lock);
        g_mutex_unlock(&o->lock);
        if (release) {
            g_list_free_1(l);
            cache_object_unref(o);
        }
        g_mutex_lock(&c->lock);
    }
    c->fd_trimming = false;
    g_mutex_unlock(&c->lock);
}

void cache_fds_close_all(Cache *c)
{
    CacheObject *o;
    while ((o = g_queue_pop_head(&c->fd_lru)) != NULL) {
        g_mutex_lock(&o->lock);
        if (o->fd >= 0) {
            close(o->fd);
            o->fd = -1;
            c->fd_open--;
        }
        o->fd_link = NULL;
        o->fd_listed = false;
        g_mutex_unlock(&o->lock);
        cache_object_unref(o);
    }
}
