/* test_core_stream.c — a large file streams to tape while it is still
 * being written: one dumpfile follows the writer, its parts are recorded
 * (and the cache cleaned) while the file is open, bytes rewritten after
 * they were streamed are not lost, a file larger than the cache goes
 * through, a volume that ends mid-stream continues on the next one, and a
 * full library leaves the data dirty and readable. Every file is read back
 * from tape after a cache drop. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

static const CoreCred cred = { 0, 0 };

/* FILE dumpfiles and the bytes their recorded parts cover. */
static unsigned file_dumps(Core *c, uint64_t *bytes)
{
    g_autoptr(GPtrArray) d = core_dumps(c, NULL);
    unsigned n = 0;
    if (bytes)
        *bytes = 0;
    for (guint i = 0; i < d->len; i++) {
        CoreDumpInfo *di = d->pdata[i];
        if (di->kind != CORE_DUMP_FILE)
            continue;
        n++;
        if (bytes)
            *bytes += di->length;
    }
    return n;
}

static uint64_t dirty_bytes(Core *c)
{
    CoreStatus st;
    g_assert_cmpint(core_status(c, &st, NULL), ==, 0);
    return st.dirty_bytes;
}

static void stream_options(CoreOpenOptions *o)
{
    ctu_open_options(o);
    o->no_flusher_triggers = false;
    o->stream_chunk = 1 << 20;
    o->commit_interval_ms = 50;
}

static void check_from_tape(Core *c, const char *path, const guint8 *want, size_t len)
{
    GError *e = NULL;
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, path, &err);
    g_assert_cmpint(err, ==, 0);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), want, len);
    g_assert_cmpint(core_check(c, true, NULL, &e), ==, 0);
    g_assert_no_error(e);
}

/* Write want[from, to) at the same offsets in `piece`s, pausing
 * `pause_us` after each. */
static void write_paced(Core *c, uint64_t ino, uint64_t fh, const guint8 *want, size_t from,
                        size_t to, size_t piece, gulong pause_us)
{
    GError *e = NULL;
    for (size_t at = from; at < to; at += piece) {
        size_t n = MIN(piece, to - at);
        g_assert_cmpint(core_write(c, ino, fh, want + at, n, (off_t)at, &e), ==, (gssize)n);
        if (pause_us)
            g_usleep(pause_us);
    }
}

/* Wait (up to 5 s) until FILE dumpfiles cover at least `bytes`. */
static uint64_t wait_streamed(Core *c, uint64_t bytes)
{
    uint64_t on_tape = 0;
    for (int i = 0; i < 250; i++) {
        file_dumps(c, &on_tape);
        if (on_tape >= bytes)
            break;
        g_usleep(20000);
    }
    return on_tape;
}

static void test_stream_while_writing(void)
{
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    m.volume_size = 32 << 20;
    CoreOpenOptions o;
    stream_options(&o);
    CtuStore *s = ctu_new(&m, &o);
    Core *c = s->core;
    GError *e = NULL;
    size_t total = 12 << 20, half = total / 2;
    g_autofree guint8 *want = g_malloc(total);
    ctu_pattern(77, 0, want, total);
    struct stat st;
    uint64_t fh;
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, "stream", 0644, O_RDWR | O_CREAT, &cred, &st,
                                &fh, &e), ==, 0);
    write_paced(c, st.st_ino, fh, want, 0, half, 256 << 10, 10000);
    /* Parts are recorded while the file is open, in one dumpfile. */
    g_assert_cmpuint(wait_streamed(c, 2 << 20), >=, 2 << 20);
    g_assert_cmpuint(file_dumps(c, NULL), ==, 1);
    /* Bytes already on tape get new contents: they must not be lost. */
    ctu_pattern(78, 0, want, 100000);
    g_assert_cmpint(core_write(c, st.st_ino, fh, want, 100000, 0, &e), ==, 100000);
    write_paced(c, st.st_ino, fh, want, half, total, 256 << 10, 10000);
    /* Still open: the same dumpfile follows the writer to (nearly) the
     * end, and what is on tape was cleaned in the cache as it went. */
    g_assert_cmpuint(wait_streamed(c, total - (2u << 20)), >=, total - (2u << 20));
    g_assert_cmpuint(file_dumps(c, NULL), ==, 1);
    uint64_t dirty = 0;
    for (int i = 0; i < 100; i++) {
        dirty = dirty_bytes(c);
        if (dirty <= (4u << 20))
            break;
        g_usleep(20000);
    }
    g_assert_cmpuint(dirty, <=, 4u << 20);
    g_assert_cmpint(core_release(c, st.st_ino, fh, &e), ==, 0);
    core_forget(c, st.st_ino, 1);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_no_error(e);
    /* The stream, and the rewritten start flushed at close. */
    g_assert_cmpuint(file_dumps(c, NULL), <=, 2);
    check_from_tape(c, "/stream", want, total);
    ctu_free(s);
}

/* Writes `len` bytes of pattern `seed` to a new file as fast as it can,
 * returns its bytes (g_free). */
static guint8 *write_file(Core *c, const char *name, uint64_t seed, size_t len, int expect)
{
    GError *e = NULL;
    guint8 *want = g_malloc(len);
    ctu_pattern(seed, 0, want, len);
    struct stat st;
    uint64_t fh;
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, name, 0644, O_RDWR | O_CREAT, &cred, &st, &fh,
                                &e), ==, 0);
    write_paced(c, st.st_ino, fh, want, 0, len, 128 << 10, 0);
    /* Let the stream follow before the close ends it. */
    wait_streamed(c, len - (2u << 20));
    g_assert_cmpint(core_release(c, st.st_ino, fh, &e), ==, 0);
    core_forget(c, st.st_ino, 1);
    g_assert_cmpint(core_sync(c, &e), ==, expect);
    g_clear_error(&e);
    return want;
}

/* A file four times the size of the cache goes through without ENOSPC:
 * the stream cleans what is on tape as parts complete. */
static void test_bigger_than_cache(void)
{
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    m.volume_size = 64 << 20;
    CoreOpenOptions o;
    stream_options(&o);
    o.cache_size = 8 << 20;
    o.dirty_wait_ms = 20000;
    CtuStore *s = ctu_new(&m, &o);
    size_t len = 32 << 20;
    g_autofree guint8 *want = write_file(s->core, "big", 5, len, 0);
    uint64_t on_tape = 0;
    g_assert_cmpuint(file_dumps(s->core, &on_tape), >=, 1);
    g_assert_cmpuint(on_tape, >=, len);
    check_from_tape(s->core, "/big", want, len);
    ctu_free(s);
}

/* The first volume ends in the middle of the stream: the cut part is
 * written again on the next volume from the cache, and the dumpfile goes
 * on there. */
static void test_stream_peom(void)
{
    CoreOpenOptions o;
    stream_options(&o);
    CtuStore *s = ctu_new(NULL, &o);
    ctu_close(s);
    ctu_store_faults(s, "vol001", "peom 2500000\n");
    ctu_reopen(s, &o);
    size_t len = 6 << 20;
    g_autofree guint8 *want = write_file(s->core, "peom", 9, len, 0);
    g_autoptr(GPtrArray) d = core_dumps(s->core, NULL);
    bool v1 = false, v2 = false;
    for (guint i = 0; i < d->len; i++) {
        CoreDumpInfo *di = d->pdata[i];
        for (guint j = 0; di->kind == CORE_DUMP_FILE && j < di->parts->len; j++) {
            const char *vol = g_array_index(di->parts, CorePartInfo, j).volume;
            v1 = v1 || !strcmp(vol, "vol001");
            v2 = v2 || !strcmp(vol, "vol002");
        }
    }
    g_assert_true(v1 && v2);
    check_from_tape(s->core, "/peom", want, len);
    ctu_free(s);
}

/* The library fills up during the stream: what completed is recorded,
 * the rest stays dirty (sync fails with EIO, status names the error), and
 * the file reads back whole, before and after a restart. */
static void test_stream_library_full(void)
{
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    m.volumes = 2;
    m.volume_size = 4 << 20;
    CoreOpenOptions o;
    stream_options(&o);
    CtuStore *s = ctu_new(&m, &o);
    size_t len = 12 << 20;
    g_autofree guint8 *want = write_file(s->core, "full", 13, len, -EIO);
    CoreStatus st;
    g_assert_cmpint(core_status(s->core, &st, NULL), ==, 0);
    g_assert_cmpint(st.last_error, <, 0);
    g_assert_cmpuint(st.dirty_bytes, >, 0);
    uint64_t on_tape = 0;
    file_dumps(s->core, &on_tape);
    g_assert_cmpuint(on_tape, >, 0);
    g_assert_cmpuint(on_tape, <, len);
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(s->core, CORE_ROOT_INO, "/full", &err);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), want, len);
    GError *e = NULL;
    ctu_assert_clean(s->core, true);
    /* Close cannot put it on tape either; the data is still there after. */
    g_assert_cmpint(core_store_close(s->core, &e), ==, -EIO);
    g_clear_error(&e);
    s->core = NULL;
    ctu_reopen(s, &o);
    g_autoptr(GBytes) b2 = ctu_read(s->core, CORE_ROOT_INO, "/full", &err);
    g_assert_cmpmem(g_bytes_get_data(b2, NULL), g_bytes_get_size(b2), want, len);
    g_assert_cmpint(core_store_close(s->core, &e), ==, -EIO);
    g_clear_error(&e);
    s->core = NULL;
    ctu_free(s);
}

/* Files in the store's subdirectory `sub` (below each volume directory
 * when `per_volume`) whose name starts with `prefix`. */
static unsigned count_files(const CtuStore *s, const char *sub, bool per_volume,
                            const char *prefix)
{
    g_autofree char *top = g_build_filename(s->store, sub, NULL);
    unsigned n = 0;
    GDir *d = g_dir_open(top, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        if (!per_volume) {
            n += g_str_has_prefix(name, prefix);
            continue;
        }
        g_autofree char *vp = g_build_filename(top, name, NULL);
        GDir *vd = g_dir_open(vp, 0, NULL);
        const char *f;
        while (vd && (f = g_dir_read_name(vd)))
            n += g_str_has_prefix(f, prefix);
        if (vd)
            g_dir_close(vd);
    }
    if (d)
        g_dir_close(d);
    return n;
}

static unsigned recorded_parts(Core *c)
{
    g_autoptr(GPtrArray) d = core_dumps(c, NULL);
    unsigned n = 0;
    for (guint i = 0; i < d->len; i++)
        n += ((CoreDumpInfo *)d->pdata[i])->parts->len;
    return n;
}

/* A file still open whose dirty version was replaced (truncation, or a
 * write after a snapshot) is flushed once like a closed file, not
 * streamed again and again: every tape file on the volumes is a recorded
 * part, and the contents come back from tape. */
static void test_replaced_version(gconstpointer data)
{
    bool trunc = GPOINTER_TO_INT(data);
    CoreOpenOptions o;
    stream_options(&o);
    CtuStore *s = ctu_new(NULL, &o);
    Core *c = s->core;
    GError *e = NULL;
    size_t len = 6 << 20, keep = trunc ? 3 << 20 : len;
    g_autofree guint8 *want = g_malloc(len);
    ctu_pattern(3, 0, want, len);
    struct stat st;
    uint64_t fh;
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, "f", 0644, O_RDWR | O_CREAT, &cred, &st, &fh,
                                &e), ==, 0);
    write_paced(c, st.st_ino, fh, want, 0, len, 1 << 20, 0);
    if (trunc) {
        struct stat a = { .st_size = (off_t)keep };
        g_assert_cmpint(core_setattr(c, st.st_ino, &a, CORE_SET_SIZE, NULL, &e), ==, 0);
    } else {
        g_assert_cmpint(core_snapshot_create(c, "s1", &e), ==, 0);
        g_assert_cmpint(core_write(c, st.st_ino, fh, want, 4096, 0, &e), ==, 4096);
    }
    g_usleep(3 * G_USEC_PER_SEC); /* the flusher scans many times meanwhile */
    g_assert_cmpint(core_release(c, st.st_ino, fh, &e), ==, 0);
    core_forget(c, st.st_ino, 1);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpuint(count_files(s, "library", true, "file"), ==, recorded_parts(c));
    check_from_tape(c, "/f", want, keep);
    ctu_free(s);
}

/* A file unlinked while it streams leaves no cache object behind once
 * it is closed and synced. */
static void test_unlinked_while_streaming(void)
{
    CoreOpenOptions o;
    stream_options(&o);
    CtuStore *s = ctu_new(NULL, &o);
    Core *c = s->core;
    GError *e = NULL;
    size_t len = 4 << 20;
    g_autofree guint8 *want = g_malloc(len);
    ctu_pattern(4, 0, want, len);
    struct stat st;
    uint64_t fh;
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, "f", 0644, O_RDWR | O_CREAT, &cred, &st, &fh,
                                &e), ==, 0);
    write_paced(c, st.st_ino, fh, want, 0, len, 256 << 10, 20000);
    g_assert_cmpuint(wait_streamed(c, 1 << 20), >=, 1 << 20);
    g_assert_cmpint(core_unlink(c, CORE_ROOT_INO, "f", &e), ==, 0);
    g_assert_cmpint(core_release(c, st.st_ino, fh, &e), ==, 0);
    core_forget(c, st.st_ino, 1);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpuint(count_files(s, "cache", false, "0"), ==, 0);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ctu_strict_logs();
    g_test_add_func("/core/stream/while-writing", test_stream_while_writing);
    g_test_add_func("/core/stream/bigger-than-cache", test_bigger_than_cache);
    g_test_add_func("/core/stream/peom", test_stream_peom);
    g_test_add_func("/core/stream/library-full", test_stream_library_full);
    g_test_add_data_func("/core/stream/truncated-while-open", GINT_TO_POINTER(1),
                         test_replaced_version);
    g_test_add_data_func("/core/stream/snapshot-while-open", GINT_TO_POINTER(0),
                         test_replaced_version);
    g_test_add_func("/core/stream/unlinked-while-streaming", test_unlinked_while_streaming);
    return g_test_run();
}
