/* test_core_recover_after_index.c — recovery past the newest index: data
 * the flusher put on tape after the last index (flush without a sync) is
 * named by manifests, so a store rebuilt from the volumes alone has those
 * files at their paths, byte for byte; a file whose newer data is damaged
 * on tape is listed as lost by name and keeps its indexed version; a
 * damaged manifest is skipped with a note and recovery still works. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static const CoreCred cred = { 0, 0 };

#define BIG 600000   /* above bundle_threshold: a dumpfile of its own */

static void write_pattern(Core *c, const char *path, uint64_t seed, uint64_t off, size_t len)
{
    g_autofree guint8 *buf = g_malloc(len);
    ctu_pattern(seed, off, buf, len);
    g_assert_cmpint(ctu_write(c, path, off, buf, len), ==, 0);
}

/* `path` holds `len` bytes: seed `a` everywhere but [at, at+n) from seed `b`. */
static void expect_bytes(Core *c, const char *path, size_t len, uint64_t a, uint64_t b,
                         uint64_t at, size_t n)
{
    int err = 0;
    g_autoptr(GBytes) got = ctu_read(c, CORE_ROOT_INO, path, &err);
    if (!got)
        g_error("%s: unreadable after recovery: %s", path, g_strerror(-err));
    g_autofree guint8 *want = g_malloc(len);
    ctu_pattern(a, 0, want, len);
    if (n)
        ctu_pattern(b, at, want + at, n);
    g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got), want, len);
}

/* The newest dumpfile of `kind`. */
static CoreDumpInfo *newest_dump(GPtrArray *dumps, uint32_t kind)
{
    CoreDumpInfo *best = NULL;
    for (guint i = 0; i < dumps->len; i++) {
        CoreDumpInfo *d = dumps->pdata[i];
        if (d->kind == kind && (!best || d->id > best->id))
            best = d;
    }
    g_assert_nonnull(best);
    return best;
}

static GPtrArray *recover(CtuLib *l, const char *lib, GPtrArray *lost)
{
    GPtrArray *notes = g_ptr_array_new_with_free_func(g_free);
    GError *e = NULL;
    g_assert_cmpint(core_recover_notes(lib, l->fresh, lost, notes, &e), ==, 0);
    g_assert_no_error(e);
    return notes;
}

/* (a) In a child killed after a flush without an index: new files (one
 * bundled, one in a directory made after the index), an existing file
 * changed in place and one rewritten whole. */
static void after_index_child(void *ud)
{
    Core *c = ctu_open(ud);
    GError *e = NULL;
    write_pattern(c, "/changed", 3, 1000, 5000);
    write_pattern(c, "/rewritten", 4, 0, BIG);
    write_pattern(c, "/small-new", 5, 0, 3000);
    if (core_mkdir(c, CORE_ROOT_INO, "made", 0750, &cred, &(struct stat){ 0 }, &e) < 0)
        _exit(2);
    uint64_t made = ctu_resolve(c, CORE_ROOT_INO, "/made");
    if (core_mkdir(c, made, "deeper", 0750, &cred, &(struct stat){ 0 }, &e) < 0)
        _exit(3);
    write_pattern(c, "/made/deeper/big-new", 6, 0, BIG);
    if (core_flush_all(c, &e) < 0)
        _exit(4);
    /* Written after the flush: nothing on tape names it. */
    write_pattern(c, "/never-flushed", 7, 0, 100);
}

static void test_brought_forward(void)
{
    ctu_strict_logs();
    CtuLib *l = ctu_lib_new(NULL);
    Core *c = ctu_open(l->store);
    write_pattern(c, "/indexed", 1, 0, 20000);
    write_pattern(c, "/changed", 2, 0, BIG);
    write_pattern(c, "/rewritten", 8, 0, BIG);
    GError *e = NULL;
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_run_killed(after_index_child, l->store);
    ctu_rmtree(l->store); /* only the volumes survive */

    g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) notes = recover(l, l->lib, lost);
    for (guint i = 0; i < lost->len; i++)
        g_printerr("lost: %s\n", (char *)lost->pdata[i]);
    g_assert_cmpuint(lost->len, ==, 0);
    g_assert_true(ctu_any_contains(notes, "brought forward 4 file(s)"));
    c = ctu_open(l->fresh);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    expect_bytes(c, "/indexed", 20000, 1, 0, 0, 0);
    expect_bytes(c, "/changed", BIG, 2, 3, 1000, 5000);
    expect_bytes(c, "/rewritten", BIG, 4, 0, 0, 0);
    expect_bytes(c, "/small-new", 3000, 5, 0, 0, 0);
    expect_bytes(c, "/made/deeper/big-new", BIG, 6, 0, 0, 0);
    g_assert_cmpuint(ctu_resolve(c, CORE_ROOT_INO, "/never-flushed"), ==, 0);
    struct stat st;
    g_assert_cmpint(core_getattr(c, ctu_resolve(c, CORE_ROOT_INO, "/made/deeper/big-new"), &st,
                                 &e), ==, 0);
    g_assert_cmpuint(st.st_size, ==, BIG);
    g_assert_cmpuint(st.st_mode & 07777, ==, 0644);
    ctu_assert_clean(c, true);
    /* The recovered store goes on: a sync, a reopen, a read from tape. */
    write_pattern(c, "/later", 9, 0, 5000);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    c = ctu_open(l->fresh);
    expect_bytes(c, "/small-new", 3000, 5, 0, 0, 0);
    expect_bytes(c, "/later", 5000, 9, 0, 0, 0);
    ctu_assert_clean(c, true);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_lib_free(l);
}

/* (b) The newer data of one file is damaged on tape: that file is lost by
 * name and reads its indexed version; the other newer file comes back. */
static void test_damaged_after_index(void)
{
    ctu_strict_logs();
    CtuLib *l = ctu_lib_new(NULL);
    Core *c = ctu_open(l->store);
    write_pattern(c, "/pre", 1, 0, BIG);
    GError *e = NULL;
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    write_pattern(c, "/pre", 2, 0, BIG);
    g_assert_cmpint(core_flush_all(c, &e), ==, 0);
    g_autoptr(GPtrArray) dumps = core_dumps(c, &e);
    CoreDumpInfo *d = newest_dump(dumps, CORE_DUMP_FILE);
    CorePartInfo part = g_array_index(d->parts, CorePartInfo, 0);
    write_pattern(c, "/post", 3, 0, BIG);
    g_assert_cmpint(core_flush_all(c, &e), ==, 0);
    /* The machine is lost now: only a copy of the volumes survives. */
    ctu_copy_tree(l->lib, l->copy);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    g_autofree char *victim = ctu_tape_file(l->copy, part.volume, part.fileno);
    ctu_flip_byte(victim, 4096 * 3 + 77); /* in data block 2 */

    g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) notes = recover(l, l->copy, lost);
    g_assert_cmpuint(lost->len, ==, 1);
    g_assert_cmpstr(lost->pdata[0], ==, "/pre");
    g_assert_true(ctu_any_contains(notes, "lost /pre"));
    g_assert_true(ctu_any_contains(notes, "checksum"));
    g_assert_true(ctu_any_contains(notes, "brought forward 1 file(s)"));
    c = ctu_open(l->fresh);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    expect_bytes(c, "/pre", BIG, 1, 0, 0, 0);
    expect_bytes(c, "/post", BIG, 3, 0, 0, 0);
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    g_assert_cmpint(core_check(c, false, problems, &e), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_lib_free(l);
}

/* (c) The manifest itself is damaged: skipped with a note; the store is
 * rebuilt from the index alone. */
static void test_damaged_manifest(void)
{
    ctu_strict_logs();
    CtuLib *l = ctu_lib_new(NULL);
    Core *c = ctu_open(l->store);
    write_pattern(c, "/indexed", 1, 0, 7000);
    GError *e = NULL;
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    write_pattern(c, "/unnamed", 2, 0, 7000);
    g_assert_cmpint(core_flush_all(c, &e), ==, 0);
    g_autoptr(GPtrArray) dumps = core_dumps(c, &e);
    CoreDumpInfo *m = newest_dump(dumps, CORE_DUMP_MANIFEST);
    CorePartInfo part = g_array_index(m->parts, CorePartInfo, 0);
    uint64_t mid = m->id;
    ctu_copy_tree(l->lib, l->copy);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    g_autofree char *victim = ctu_tape_file(l->copy, part.volume, part.fileno);
    ctu_flip_byte(victim, 4096 + 40); /* the manifest's first data block */

    g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) notes = recover(l, l->copy, lost);
    g_assert_cmpuint(lost->len, ==, 0);
    g_autofree char *want = g_strdup_printf("manifest %" G_GUINT64_FORMAT " is unusable", mid);
    g_assert_true(ctu_any_contains(notes, want));
    g_assert_true(ctu_any_contains(notes, "brought forward 0 file(s)"));
    c = ctu_open(l->fresh);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    expect_bytes(c, "/indexed", 7000, 1, 0, 0, 0);
    g_assert_cmpuint(ctu_resolve(c, CORE_ROOT_INO, "/unnamed"), ==, 0);
    ctu_assert_clean(c, true);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_lib_free(l);
}

/* A new file whose path the index gives to a different file, and one
 * whose parent is a regular file in the index: both go under
 * /recovered-after-index. */
static void test_path_taken(void)
{
    ctu_strict_logs();
    CtuLib *l = ctu_lib_new(NULL);
    Core *c = ctu_open(l->store);
    write_pattern(c, "/name", 1, 0, 4000);
    write_pattern(c, "/plain", 2, 0, 4000);
    GError *e = NULL;
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    /* After the index: /name becomes a new file, /plain a directory. */
    g_assert_cmpint(core_unlink(c, CORE_ROOT_INO, "name", &e), ==, 0);
    write_pattern(c, "/name", 3, 0, 4000);
    g_assert_cmpint(core_unlink(c, CORE_ROOT_INO, "plain", &e), ==, 0);
    g_assert_cmpint(core_mkdir(c, CORE_ROOT_INO, "plain", 0755, &cred, &(struct stat){ 0 }, &e),
                    ==, 0);
    write_pattern(c, "/plain/inside", 4, 0, 4000);
    g_assert_cmpint(core_flush_all(c, &e), ==, 0);
    ctu_copy_tree(l->lib, l->copy);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);

    g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) notes = recover(l, l->copy, lost);
    g_assert_cmpuint(lost->len, ==, 0);
    g_assert_true(ctu_any_contains(notes, "it is at /recovered-after-index/name"));
    g_assert_true(ctu_any_contains(notes, "it is at /recovered-after-index/plain/inside"));
    c = ctu_open(l->fresh);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    expect_bytes(c, "/name", 4000, 1, 0, 0, 0);
    expect_bytes(c, "/plain", 4000, 2, 0, 0, 0);
    expect_bytes(c, "/recovered-after-index/name", 4000, 3, 0, 0, 0);
    expect_bytes(c, "/recovered-after-index/plain/inside", 4000, 4, 0, 0, 0);
    ctu_assert_clean(c, true);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_lib_free(l);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/recover-after-index/brought-forward", test_brought_forward);
    g_test_add_func("/core/recover-after-index/damaged-data", test_damaged_after_index);
    g_test_add_func("/core/recover-after-index/damaged-manifest", test_damaged_manifest);
    g_test_add_func("/core/recover-after-index/path-taken", test_path_taken);
    return g_test_run();
}
