/* test_core_stream.c — a large file streams to tape while it is still
 * being written: pieces become dumpfiles before the writer closes it,
 * bytes rewritten meanwhile are not lost, and after close + sync + cache
 * drop the file reads back identical from tape. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

static unsigned file_dumps(Core *c)
{
    g_autoptr(GPtrArray) d = core_dumps(c, NULL);
    unsigned n = 0;
    for (guint i = 0; i < d->len; i++)
        n += ((CoreDumpInfo *)d->pdata[i])->kind == CORE_DUMP_FILE;
    return n;
}

static void test_stream_while_writing(void)
{
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    m.volume_size = 32 << 20;
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.no_flusher_triggers = false;
    o.stream_chunk = 1 << 20;
    o.commit_interval_ms = 50;
    CtuStore *s = ctu_new(&m, &o);
    Core *c = s->core;
    GError *e = NULL;
    const CoreCred cred = { 0, 0 };
    size_t total = 12 << 20, piece = 256 << 10;
    g_autofree guint8 *want = g_malloc(total);
    ctu_pattern(77, 0, want, total);
    struct stat st;
    uint64_t fh;
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, "stream", 0644, O_RDWR | O_CREAT, &cred, &st, &fh, &e), ==, 0);
    unsigned seen_open = 0;
    for (size_t at = 0; at < total; at += piece) {
        g_assert_cmpint(core_write(c, st.st_ino, fh, want + at, piece, (off_t)at, &e), ==, (gssize)piece);
        if (at == total / 2) {
            /* Rewrite the start (already streamed, probably) with new bytes. */
            ctu_pattern(78, 0, want, 100000);
            g_assert_cmpint(core_write(c, st.st_ino, fh, want, 100000, 0, &e), ==, 100000);
        }
        g_usleep(20000);
        seen_open = MAX(seen_open, file_dumps(c));
    }
    /* Give the flusher a moment while the file is still open. */
    for (int i = 0; i < 50 && file_dumps(c) < 2; i++)
        g_usleep(50000);
    seen_open = MAX(seen_open, file_dumps(c));
    g_assert_cmpuint(seen_open, >=, 2);
    g_assert_cmpint(core_release(c, st.st_ino, fh, &e), ==, 0);
    core_forget(c, st.st_ino, 1);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_no_error(e);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, "/stream", &err);
    g_assert_cmpint(err, ==, 0);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), want, total);
    g_assert_cmpint(core_check(c, true, NULL, &e), ==, 0);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/stream/while-writing", test_stream_while_writing);
    return g_test_run();
}
