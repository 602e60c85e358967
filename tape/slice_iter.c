/* slice_iter.c — slice lists and the slice iterator (see slice_iter.h).
 *
 * Locks: the list is guarded by its owner's lock (passed to the iterator);
 * the iterator copies the slice it needs under that lock and reads the
 * file without it. An iterator is used by one thread. */
#include "tape/slice_iter.h"

#include "tape/fileio.h"
#include "tape/tape_error.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

typedef struct {
    char *path;
    uint64_t file_off;
    uint64_t length;
    uint64_t dump_off;  /* where the slice starts in the dumpfile */
} Slice;

struct SliceList {
    GQueue slices;      /* Slice *, in dumpfile order */
    uint64_t end;
};

static void slice_free(gpointer p)
{
    Slice *s = p;
    g_free(s->path);
    g_free(s);
}

SliceList *slice_list_new(void)
{
    SliceList *l = g_new0(SliceList, 1);
    g_queue_init(&l->slices);
    return l;
}

void slice_list_clear(SliceList *l)
{
    g_queue_clear_full(&l->slices, slice_free);
    l->end = 0;
}

void slice_list_free(SliceList *l)
{
    if (!l)
        return;
    slice_list_clear(l);
    g_free(l);
}

void slice_list_append(SliceList *l, const char *path, uint64_t offset,
                       uint64_t length)
{
    if (length == 0 || !path)
        return;
    Slice *s = g_new0(Slice, 1);
    s->path = g_strdup(path);
    s->file_off = offset;
    s->length = length;
    s->dump_off = l->end;
    l->end += length;
    g_queue_push_tail(&l->slices, s);
}

uint64_t slice_list_end(const SliceList *l)
{
    return l->end;
}

void slice_list_release_before(SliceList *l, uint64_t pos)
{
    Slice *s;
    while ((s = g_queue_peek_head(&l->slices)) &&
           s->dump_off + s->length <= pos)
        slice_free(g_queue_pop_head(&l->slices));
}

struct SliceIter {
    SliceList *list;
    GMutex *lock;
    uint64_t pos;
    /* the current slice, copied out of the list */
    char *path;
    uint64_t file_off, length, dump_off;
    int fd;
};

SliceIter *slice_iter_new(SliceList *l, GMutex *lock, uint64_t pos)
{
    SliceIter *it = g_new0(SliceIter, 1);
    it->list = l;
    it->lock = lock;
    it->pos = pos;
    it->fd = -1;
    return it;
}

void slice_iter_free(SliceIter *it)
{
    if (!it)
        return;
    if (it->fd >= 0)
        close(it->fd);
    g_free(it->path);
    g_free(it);
}

/* Make the current slice the one holding it->pos. */
static int find_slice(SliceIter *it, GError **err)
{
    if (it->path && it->pos >= it->dump_off &&
        it->pos < it->dump_off + it->length)
        return 0;
    bool found = false;
    char *old = it->path;
    it->path = NULL;
    g_mutex_lock(it->lock);
    for (GList *e = it->list->slices.head; e; e = e->next) {
        Slice *s = e->data;
        if (it->pos >= s->dump_off && it->pos < s->dump_off + s->length) {
            it->path = g_strdup(s->path);
            it->file_off = s->file_off;
            it->length = s->length;
            it->dump_off = s->dump_off;
            found = true;
            break;
        }
    }
    g_mutex_unlock(it->lock);
    if (!found) {
        g_free(old);
        return tape_fail(err, EIO, "dumpfile byte %" G_GUINT64_FORMAT
                         " is in no slice; cannot re-read it", it->pos);
    }
    if (!old || strcmp(old, it->path) != 0) {
        if (it->fd >= 0)
            close(it->fd);
        it->fd = open(it->path, O_RDONLY | O_CLOEXEC);
    }
    g_free(old);
    if (it->fd < 0)
        return tape_fail(err, EIO, "cannot open slice file %s: %s", it->path,
                         g_strerror(errno));
    return 0;
}

int slice_iter_read(SliceIter *it, void *buf, size_t len, GError **err)
{
    uint8_t *out = buf;
    while (len > 0) {
        int rc = find_slice(it, err);
        if (rc < 0)
            return rc;
        uint64_t in_slice = it->pos - it->dump_off;
        size_t n = (size_t)MIN((uint64_t)len, it->length - in_slice);
        ssize_t got = tape_pread_full(it->fd, out, n, it->file_off + in_slice);
        if (got < 0 || (size_t)got != n)
            return tape_fail(err, EIO, "slice file %s: cannot read %zu bytes "
                             "at %" G_GUINT64_FORMAT ": %s", it->path, n,
                             it->file_off + in_slice,
                             got < 0 ? g_strerror((int)-got) : "file too short");
        out += n;
        len -= n;
        it->pos += n;
    }
    return 0;
}
