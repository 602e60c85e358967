/* cache_chunk.c — an object's block table: chunks of CACHE_CHUNK blocks,
 * allocated on first touch and freed again when none of their blocks has
 * a state, a durable dirty mark or a hold, so an object costs RAM in
 * proportion to the blocks it uses (a small object: one small chunk).
 *
 * Each chunk counts its DIRTY blocks (ndirty) and the blocks its durable
 * state file lists (ndisk). Chunks with either are also kept in
 * o->dirty_chunks, a tree sorted by chunk number, so the walks done on
 * every state save and dirty-slice listing visit only those chunks.
 *
 * A CacheBlock pointer stays valid while the block is held, has a state,
 * has a thread waiting for an exclusive hold (wwait), or while o->pins is
 * raised (fills in flight, readers waiting for a shared hold): no chunk is
 * freed then, so those may keep their block across a dropped o->lock. Freeing a
 * chunk also bumps o->trunc_gen, so a fill sampled before the chunk went
 * away (and with it the block's gen) is done again, as across a
 * truncation.
 *
 * Locks: everything here needs o->lock held. The table-memory counter
 * c->table_bytes is atomic (a chunk may be freed with no lock held when
 * its object is freed).
 */
#include "cache/cache_internal.h"

#include <stddef.h>

static gint cmp_u64_data(gconstpointer a, gconstpointer b, gpointer data)
{
    (void)data;
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void obj_chunks_init(CacheObject *o)
{
    o->chunks = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                      obj_chunk_destroy);
    o->dirty_chunks = g_tree_new_full(cmp_u64_data, NULL, NULL, NULL);
    o->last_chunk_no = UINT64_MAX;
    o->last_chunk = NULL;
}

void obj_chunks_clear(CacheObject *o)
{
    g_tree_destroy(o->dirty_chunks);
    g_hash_table_destroy(o->chunks);
}

void obj_chunk_destroy(gpointer p)
{
    CacheChunk *ch = p;
    Cache *c = ch->blocks[0].obj->cache;
    __atomic_fetch_sub(&c->table_bytes, sizeof *ch, __ATOMIC_RELAXED);
    g_free(ch);
}

CacheChunk *block_chunk(CacheBlock *b)
{
    CacheBlock *first = b - (b->index & (CACHE_CHUNK - 1));
    return (CacheChunk *)((char *)first - offsetof(CacheChunk, blocks));
}

CacheBlock *obj_block(CacheObject *o, uint64_t idx, bool create)
{
    uint64_t cn = idx >> CACHE_CHUNK_SHIFT;
    CacheChunk *ch;
    if (cn == o->last_chunk_no) {
        ch = o->last_chunk;
    } else {
        ch = g_hash_table_lookup(o->chunks, &cn);
        if (!ch) {
            if (!create)
                return NULL;
            ch = g_new0(CacheChunk, 1);
            ch->no = cn;
            for (uint64_t i = 0; i < CACHE_CHUNK; i++) {
                ch->blocks[i].obj = o;
                ch->blocks[i].index = (cn << CACHE_CHUNK_SHIFT) + i;
            }
            g_hash_table_insert(o->chunks, &ch->no, ch);
            __atomic_fetch_add(&o->cache->table_bytes, sizeof *ch,
                               __ATOMIC_RELAXED);
        }
        o->last_chunk_no = cn;
        o->last_chunk = ch;
    }
    return &ch->blocks[idx & (CACHE_CHUNK - 1)];
}

void obj_chunk_dirty_update(CacheObject *o, CacheChunk *ch)
{
    bool want = ch->ndirty || ch->ndisk;
    if (want == ch->in_tree)
        return;
    if (want)
        g_tree_insert(o->dirty_chunks, &ch->no, ch);
    else
        g_tree_remove(o->dirty_chunks, &ch->no);
    ch->in_tree = want;
}

void obj_chunk_trim(CacheObject *o, uint64_t idx)
{
    uint64_t cn = idx >> CACHE_CHUNK_SHIFT;
    CacheChunk *ch = g_hash_table_lookup(o->chunks, &cn);
    if (!ch || ch->ndirty || ch->ndisk || o->pins)
        return;
    for (uint64_t i = 0; i < CACHE_CHUNK; i++) {
        CacheBlock *b = &ch->blocks[i];
        if (b->state != BLK_ABSENT || b->disk_dirty || b->readers ||
            b->writer || b->wwait)
            return;
    }
    if (o->last_chunk == ch) {
        o->last_chunk = NULL;
        o->last_chunk_no = UINT64_MAX;
    }
    o->trunc_gen++; /* the blocks' gens go with the chunk */
    g_hash_table_remove(o->chunks, &cn);
}

static gint cmp_u64(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

GArray *obj_chunk_list(CacheObject *o)
{
    GArray *a = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t),
                                  g_hash_table_size(o->chunks));
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, o->chunks);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_array_append_val(a, *(uint64_t *)key);
    g_array_sort(a, cmp_u64);
    return a;
}

static gboolean add_chunk(gpointer key, gpointer value, gpointer data)
{
    (void)key;
    g_ptr_array_add(data, value);
    return FALSE;
}

GPtrArray *obj_dirty_chunks(CacheObject *o)
{
    GPtrArray *a = g_ptr_array_sized_new(g_tree_nnodes(o->dirty_chunks));
    g_tree_foreach(o->dirty_chunks, add_chunk, a);
    return a;
}
