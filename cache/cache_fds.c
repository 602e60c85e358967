/* cache_fds.c — the budget of open object files. An object's data file is
 * opened on first use and stays open until the cache holds more than
 * fd_max open files; then idle ones are closed, second-chance order
 * (c->fd_lru is a clock: a file used since the last pass goes round once
 * more). A file is idle when no block of its object is held and no state
 * save is using it (fd_busy); anything using the fd holds one of those or
 * o->lock, so closing under o->lock never pulls a file from under a user.
 *
 * Each queued object carries one ref owned by the queue (fd_listed); the
 * trimmer takes the node out of the queue while it looks at the object and
 * either puts it back or drops node and ref.
 *
 * Locks: o->lock guards o->fd, fd_used, fd_busy; c->lock guards the queue,
 * fd_link, fd_listed and the counters. Order: o->lock -> c->lock. The
 * trimmer holds no lock when it takes an object's lock.
 */
#include "cache/cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int obj_fd_locked(CacheObject *o, GError **err)
{
    Cache *c = o->cache;
    o->fd_used = true;
    if (o->fd >= 0)
        return o->fd;
    if (o->deleted)
        return cache_fail(err, ENOENT, "cache object %" G_GUINT64_FORMAT
                          " was deleted", o->id);
    o->fd = open(o->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
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
