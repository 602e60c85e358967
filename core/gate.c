/* gate.c — the snapshot gate: a write or truncate passes it from "make the
 * version writable" until its extents are recorded; creating a snapshot
 * closes it, waits until the writes inside have left, and opens it again.
 * New writes wait while a snapshot is waiting (so snapshots are not
 * starved by a stream of writes). Own lock (Gate.lock), taken before
 * Core.lock and never while holding it. */
#include "core/core_private.h"

void gate_init(Gate *g)
{
    g_mutex_init(&g->lock);
    g_cond_init(&g->cond);
    g->writers = 0;
    g->snapshot = false;
}

void gate_clear(Gate *g)
{
    g_cond_clear(&g->cond);
    g_mutex_clear(&g->lock);
}

void gate_enter_write(Gate *g)
{
    g_mutex_lock(&g->lock);
    while (g->snapshot)
        g_cond_wait(&g->cond, &g->lock);
    g->writers++;
    g_mutex_unlock(&g->lock);
}

void gate_leave_write(Gate *g)
{
    g_mutex_lock(&g->lock);
    if (--g->writers == 0)
        g_cond_broadcast(&g->cond);
    g_mutex_unlock(&g->lock);
}

void gate_enter_snapshot(Gate *g)
{
    g_mutex_lock(&g->lock);
    while (g->snapshot)
        g_cond_wait(&g->cond, &g->lock);
    g->snapshot = true;
    while (g->writers)
        g_cond_wait(&g->cond, &g->lock);
    g_mutex_unlock(&g->lock);
}

void gate_leave_snapshot(Gate *g)
{
    g_mutex_lock(&g->lock);
    g->snapshot = false;
    g_cond_broadcast(&g->cond);
    g_mutex_unlock(&g->lock);
}
