/* recall.c — reading dumpfile bytes back from tape: find the parts that
 * cover a range (catalog, under Core.lock, released before any tape I/O),
 * open the part (a few part handles stay open), check that its header
 * names the dumpfile, part number and offset the catalog row says and its
 * trailer the length (EIO otherwise), read only the blocks
 * needed (tape_part_read verifies each block's checksum), and read ahead
 * when reads are sequential. Recall.lock guards the handles and the
 * read-ahead buffer; it is a leaf lock (taken after Core.lock was
 * released, nothing taken inside it). */
#include "core/core_private.h"

#include <errno.h>
#include <string.h>

#define RECALL_HANDLES 8
#define RECALL_RA_MIN (256u << 10)
#define RECALL_RA_MAX (8u << 20)

typedef struct {
    char volume[TAPE_VOLUME_NAME_MAX];
    uint32_t fileno;
    TapePart *part;
    uint64_t used;  /* LRU tick */
} OpenPart;

typedef struct {
    uint64_t off, len;
    char volume[TAPE_VOLUME_NAME_MAX];
    uint32_t fileno;
    uint32_t partnum;
} PartLocCache;

struct Recall {
    Core *c;
    GMutex lock;
    OpenPart open[RECALL_HANDLES];
    uint64_t tick;
    /* read-ahead: bytes [ra_off, ra_off + ra_len) of dumpfile ra_df */
    uint64_t ra_df, ra_off, ra_len;
    guint8 *ra_buf;
    size_t ra_window;
    uint64_t next_df, next_off; /* where a sequential reader continues */
    uint64_t last_df;           /* the part found last (parts never change) */
    PartLocCache last;
};

typedef struct {
    uint64_t off, len;
    char volume[TAPE_VOLUME_NAME_MAX];
    uint32_t fileno;
    uint32_t partnum;
} PartLoc;

Recall *recall_new(Core *c)
{
    Recall *rc = g_new0(Recall, 1);
    rc->c = c;
    g_mutex_init(&rc->lock);
    rc->ra_buf = g_malloc(RECALL_RA_MAX);
    rc->ra_window = RECALL_RA_MIN;
    return rc;
}

static void close_all(Recall *rc)
{
    for (int i = 0; i < RECALL_HANDLES; i++)
        if (rc->open[i].part) {
            tape_part_close(rc->open[i].part);
            rc->open[i].part = NULL;
        }
    rc->ra_len = 0;
}

void recall_forget_parts(Recall *rc)
{
    g_mutex_lock(&rc->lock);
    close_all(rc);
    g_mutex_unlock(&rc->lock);
}

void recall_free(Recall *rc)
{
    if (!rc)
        return;
    close_all(rc);
    g_free(rc->ra_buf);
    g_mutex_clear(&rc->lock);
    g_free(rc);
}

static TapePart *get_part(Recall *rc, const PartLoc *p, GError **err)
{
    int victim = 0;
    for (int i = 0; i < RECALL_HANDLES; i++) {
        OpenPart *o = &rc->open[i];
        if (o->part && o->fileno == p->fileno && !strcmp(o->volume, p->volume)) {
            o->used = ++rc->tick;
            return o->part;
        }
        if (!o->part || o->used < rc->open[victim].used)
            victim = i;
        if (!o->part)
            break;
    }
    OpenPart *o = &rc->open[victim];
    if (o->part)
        tape_part_close(o->part);
    o->part = tape_part_open(rc->c->lib, p->volume, p->fileno, err);
    if (!o->part)
        return NULL;
    g_strlcpy(o->volume, p->volume, sizeof o->volume);
    o->fileno = p->fileno;
    o->used = ++rc->tick;
    return o->part;
}

/* Is the tape file the part the catalog says it is? Block checksums only
 * prove that the bytes are the ones written to that file: a wrong (volume,
 * file) mapping would otherwise return another dumpfile's bytes. */
static int part_matches(const TapePart *tp, uint64_t df, const PartLoc *p, GError **err)
{
    const TapePartHeader *h = tape_part_header((TapePart *)tp);
    const TapePartTrailer *t = tape_part_trailer((TapePart *)tp);
    if (h->dumpfile_id == df && h->partnum == p->partnum && h->offset == p->off &&
        t->length == p->len)
        return 0;
    g_warning("recall: volume %s file %u holds dumpfile %" G_GUINT64_FORMAT " part %u at %"
              G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " bytes); the catalog expects dumpfile %"
              G_GUINT64_FORMAT " part %u at %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " bytes)",
              p->volume, p->fileno, h->dumpfile_id, h->partnum, h->offset, t->length, df,
              p->partnum, p->off, p->len);
    return core_fail(err, EIO, "volume %s file %u is not part %u of dumpfile %" G_GUINT64_FORMAT,
                     p->volume, p->fileno, p->partnum, df);
}

static int find_parts(Core *c, uint64_t df, uint64_t off, uint64_t len, GArray *out,
                      GError **err)
{
    g_mutex_lock(&c->lock);
    sqlite3_stmt *s = db_q(c, "SELECT off, len, volume, fileno, partnum FROM parts WHERE dumpfile=? "
                           "AND off<? AND off+len>? ORDER BY off", "uuu", df, off + len, off);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        PartLoc p = { .off = (uint64_t)sqlite3_column_int64(s, 0),
                      .len = (uint64_t)sqlite3_column_int64(s, 1),
                      .fileno = (uint32_t)sqlite3_column_int64(s, 3),
                      .partnum = (uint32_t)sqlite3_column_int64(s, 4) };
        g_strlcpy(p.volume, (const char *)sqlite3_column_text(s, 2), sizeof p.volume);
        g_array_append_val(out, p);
    }
    if (s)
        sqlite3_reset(s);
    g_mutex_unlock(&c->lock);
    uint64_t at = off;
    for (guint i = 0; i < out->len; i++) {
        PartLoc *p = &g_array_index(out, PartLoc, i);
        if (p->off > at)
            break;
        at = MAX(at, p->off + p->len);
    }
    if (at < off + len)
        return core_fail(err, EIO, "dumpfile %" G_GUINT64_FORMAT ": no part holds offset %"
                         G_GUINT64_FORMAT, df, at);
    return 0;
}

int recall_read(Recall *rc, uint64_t df, uint64_t off, void *buf, size_t len, GError **err)
{
    Core *c = rc->c;
    g_autoptr(GArray) parts = g_array_new(FALSE, FALSE, sizeof(PartLoc));
    /* Sequential reads stay in one part for a long time: reuse it. */
    g_mutex_lock(&rc->lock);
    if (rc->last_df == df && rc->last.len && off >= rc->last.off &&
        off + len <= rc->last.off + rc->last.len) {
        PartLoc p = { .off = rc->last.off, .len = rc->last.len, .fileno = rc->last.fileno,
                      .partnum = rc->last.partnum };
        memcpy(p.volume, rc->last.volume, sizeof p.volume);
        g_array_append_val(parts, p);
    }
    g_mutex_unlock(&rc->lock);
    int r = 0;
    if (parts->len == 0 && (r = find_parts(c, df, off, len, parts, err)) < 0)
        return r;
    g_mutex_lock(&rc->lock);
    if (parts->len == 1) {
        PartLoc *p = &g_array_index(parts, PartLoc, 0);
        rc->last_df = df;
        rc->last.off = p->off;
        rc->last.len = p->len;
        rc->last.fileno = p->fileno;
        rc->last.partnum = p->partnum;
        memcpy(rc->last.volume, p->volume, sizeof rc->last.volume);
    }
    uint64_t at = off, end = off + len;
    bool sequential = rc->next_df == df && rc->next_off == off;
    if (!sequential)
        rc->ra_window = RECALL_RA_MIN;
    for (guint i = 0; i < parts->len && at < end; i++) {
        PartLoc *p = &g_array_index(parts, PartLoc, i);
        if (p->off + p->len <= at)
            continue;
        uint64_t n = MIN(end, p->off + p->len) - at;
        guint8 *dst = (guint8 *)buf + (at - off);
        if (rc->ra_len && rc->ra_df == df && at >= rc->ra_off &&
            at + n <= rc->ra_off + rc->ra_len) {
            memcpy(dst, rc->ra_buf + (at - rc->ra_off), n);
            at += n;
            continue;
        }
        TapePart *tp = get_part(rc, p, err);
        if (!tp) {
            g_warning("recall: volume %s file %u: cannot open the part", p->volume, p->fileno);
            r = -EIO;
            break;
        }
        if ((r = part_matches(tp, df, p, err)) < 0)
            break;
        uint64_t want = n;
        if (sequential) {
            want = MIN((uint64_t)rc->ra_window, p->off + p->len - at);
            want = MAX(want, n);
            if (rc->ra_window < RECALL_RA_MAX)
                rc->ra_window *= 2;
        }
        GError *e = NULL;
        if (want > n && want <= RECALL_RA_MAX) {
            rc->ra_len = 0;
            r = tape_part_read(tp, at - p->off, rc->ra_buf, want, &e);
            if (r == 0) {
                rc->ra_df = df;
                rc->ra_off = at;
                rc->ra_len = want;
                memcpy(dst, rc->ra_buf, n);
            } else {
                /* The read-ahead failed: what was asked may still be fine. */
                g_clear_error(&e);
                rc->ra_window = RECALL_RA_MIN;
                r = tape_part_read(tp, at - p->off, dst, n, &e);
            }
        } else {
            r = tape_part_read(tp, at - p->off, dst, n, &e);
        }
        if (r < 0) {
            uint32_t bs = c->cfg.block_size;
            g_warning("recall: volume %s file %u block %" G_GUINT64_FORMAT ": %s", p->volume,
                      p->fileno, (at - p->off) / bs, e ? e->message : g_strerror(-r));
            core_fail(err, EIO, "volume %s file %u block %" G_GUINT64_FORMAT ": %s", p->volume,
                      p->fileno, (at - p->off) / bs, e ? e->message : g_strerror(-r));
            g_clear_error(&e);
            r = -EIO;
            break;
        }
        at += n;
    }
    if (r == 0) {
        rc->next_df = df;
        rc->next_off = end;
    }
    g_mutex_unlock(&rc->lock);
    if (r == 0) {
        g_mutex_lock(&c->lock);
        c->bytes_recalled += len;
        g_mutex_unlock(&c->lock);
    }
    return r;
}
