/* test_core_recover.c — recovery from the volumes alone: after a sync,
 * everything but the library is deleted; the store rebuilt from the
 * newest index reads back every file and snapshot identically, keeps its
 * id, and works on (writes, sync, reopen). Data the index names that
 * never reached tape is listed as lost by path and reads fail with EIO. */
#include "core_testutil.h"
#include "core_tree.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

static const CoreCred cred = { 0, 0 };

static void populate(Core *c)
{
    GError *e = NULL;
    struct stat d, st;
    g_assert_cmpint(core_mkdir(c, CORE_ROOT_INO, "docs", 0755, &cred, &d, &e), ==, 0);
    size_t big = 9 << 20; /* more than one 8 MiB volume */
    guint8 *buf = g_malloc(big);
    ctu_pattern(21, 0, buf, big);
    g_assert_cmpint(ctu_write(c, "/big", 0, buf, big), ==, 0);
    for (int i = 0; i < 40; i++) {
        char p[32];
        g_snprintf(p, sizeof p, "/docs/f%d", i);
        ctu_pattern(100 + i, 0, buf, 1000 + i * 300);
        g_assert_cmpint(ctu_write(c, p, 0, buf, 1000 + i * 300), ==, 0);
    }
    g_assert_cmpint(core_symlink(c, "docs/f1", CORE_ROOT_INO, "link", &cred, &st, &e), ==, 0);
    uint64_t f2 = ctu_resolve(c, CORE_ROOT_INO, "/docs/f2");
    g_assert_cmpint(core_link(c, f2, CORE_ROOT_INO, "hard", &st, &e), ==, 0);
    g_assert_cmpint(core_setxattr(c, f2, "user.tag", "blue", 4, 0, &e), ==, 0);
    g_assert_cmpint(core_snapshot_create(c, "monday", &e), ==, 0);
    ctu_pattern(22, 0, buf, 50000);
    g_assert_cmpint(ctu_write(c, "/big", 4000000, buf, 50000), ==, 0);
    g_assert_cmpint(core_unlink(c, d.st_ino, "f3", &e), ==, 0);
    g_assert_cmpint(core_snapshot_create(c, "tuesday", &e), ==, 0);
    g_assert_cmpint(ctu_write(c, "/docs/new", 0, "fresh", 5), ==, 0);
    g_free(buf);
    g_assert_no_error(e);
}

static char *all_digests(Core *c)
{
    GString *s = g_string_new(NULL);
    g_autofree char *live = ctree_digest(c, CORE_ROOT_INO);
    g_string_append_printf(s, "[live]\n%s\n", live);
    g_autoptr(GPtrArray) snaps = core_snapshot_list(c, NULL);
    for (guint i = 0; i < snaps->len; i++) {
        CoreSnapshotInfo *si = snaps->pdata[i];
        g_autofree char *p = g_strdup_printf("/%s/%s", CORE_SNAPDIR_NAME, si->name);
        uint64_t root = ctu_resolve(c, CORE_ROOT_INO, p);
        g_autofree char *d = ctree_digest(c, root);
        g_string_append_printf(s, "[%s]\n%s\n", si->name, d);
    }
    return g_string_free(s, FALSE);
}

static void test_recover_everything(void)
{
    CtuLib *l = ctu_lib_new(NULL);
    GError *e = NULL;
    Core *c = ctu_open(l->store);
    populate(c);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_autofree char *before = all_digests(c);
    g_autofree char *id = g_strdup(core_store_id(c));
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    /* Everything but the library goes. */
    ctu_rmtree(l->store);
    g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
    g_assert_cmpint(core_recover(l->lib, l->fresh, lost, &e), ==, 0);
    g_assert_no_error(e);
    g_assert_cmpuint(lost->len, ==, 0);
    /* Recovering into a non-empty directory is refused. */
    g_assert_cmpint(core_recover(l->lib, l->fresh, NULL, &e), ==, -EEXIST);
    g_clear_error(&e);
    c = ctu_open(l->fresh);
    g_assert_cmpstr(core_store_id(c), ==, id);
    g_autofree char *after = all_digests(c);
    g_assert_cmpstr(after, ==, before);
    g_assert_null(strstr(after, "read-error"));
    g_assert_nonnull(strstr(after, "[monday]"));
    g_assert_cmpint(core_check(c, true, NULL, &e), ==, 0);
    /* The recovered store keeps working. */
    g_assert_cmpint(ctu_write(c, "/after", 0, "more", 4), ==, 0);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    c = ctu_open(l->fresh);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, "/after", &err);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), "more", 4);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_lib_free(l);
}

static void test_recover_lists_lost(void)
{
    ctu_strict_logs();
    CtuLib *l = ctu_lib_new(NULL);
    GError *e = NULL;
    Core *c = ctu_open(l->store);
    g_assert_cmpint(ctu_write(c, "/safe", 0, "on tape", 7), ==, 0);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    /* The next data dumpfile fails on two volumes in a row; the index
     * still reaches a third volume and names the file. */
    ctu_put_faults(l->lib, "vol001", "fail-write 1\n");
    ctu_put_faults(l->lib, "vol002", "fail-write 1\n");
    c = ctu_open(l->store);
    g_assert_cmpint(core_mkdir(c, CORE_ROOT_INO, "dir", 0755, &cred, &(struct stat){ 0 }, &e), ==, 0);
    g_assert_cmpint(ctu_write(c, "/dir/only-in-cache", 0, "never on tape", 13), ==, 0);
    g_assert_cmpint(core_sync(c, &e), ==, -EIO);
    g_clear_error(&e);
    /* The machine is lost now: only a copy of the volumes survives. */
    ctu_copy_tree(l->lib, l->copy);
    g_assert_cmpint(core_store_close(c, &e), <=, 0);
    g_clear_error(&e);
    g_autofree char *faults1 = g_build_filename(l->copy, "vol001", "faults", NULL);
    g_autofree char *faults2 = g_build_filename(l->copy, "vol002", "faults", NULL);
    g_unlink(faults1);
    g_unlink(faults2);
    g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
    g_assert_cmpint(core_recover(l->copy, l->fresh, lost, &e), ==, 0);
    g_assert_no_error(e);
    g_assert_cmpuint(lost->len, ==, 1);
    g_assert_cmpstr(lost->pdata[0], ==, "/dir/only-in-cache");
    c = ctu_open(l->fresh);
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, "/safe", &err);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), "on tape", 7);
    g_autoptr(GBytes) gone = ctu_read(c, CORE_ROOT_INO, "/dir/only-in-cache", &err);
    g_assert_null(gone);
    g_assert_cmpint(err, ==, -EIO);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_lib_free(l);
}

static void test_recover_bad_input(void)
{
    GError *e = NULL;
    g_autofree char *tmp = g_dir_make_tmp("tapefs-recover-XXXXXX", &e);
    g_autofree char *nolib = g_build_filename(tmp, "nothing", NULL);
    g_autofree char *fresh = g_build_filename(tmp, "recovered", NULL);
    g_assert_cmpint(core_recover(nolib, fresh, NULL, &e), <, 0);
    g_assert_nonnull(e);
    g_clear_error(&e);
    g_assert_false(g_file_test(fresh, G_FILE_TEST_EXISTS));
    /* A library with no index yet. */
    g_autofree char *store = g_build_filename(tmp, "store", NULL);
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    g_assert_cmpint(core_store_create(store, &m, &e), ==, 0);
    g_autofree char *lib = g_build_filename(store, "library", NULL);
    g_assert_cmpint(core_recover(lib, fresh, NULL, &e), ==, -ENOENT);
    g_clear_error(&e);
    ctu_rmtree(tmp);
}

static void test_periodic_index(void)
{
    CtuLib *l = ctu_lib_new(NULL);
    GError *e = NULL;
    CoreOpenOptions o;
    ctu_open_options(&o);
    o.no_flusher_triggers = false;
    o.sync_interval = 1;
    o.bundle_delay = 1;
    Core *c = core_store_open(l->store, &o, &e);
    g_assert_no_error(e);
    g_assert_cmpint(ctu_write(c, "/periodic", 0, "no sync needed", 14), ==, 0);
    CoreStatus st = { 0 };
    for (int i = 0; i < 100 && st.index_sequence == 0; i++) {
        g_usleep(100000);
        core_status(c, &st, NULL);
    }
    g_assert_cmpuint(st.index_sequence, >=, 1);
    /* Let it settle, then nothing changes: no new index. */
    g_usleep(2500000);
    core_status(c, &st, NULL);
    uint64_t settled = st.index_sequence;
    g_usleep(2500000);
    core_status(c, &st, NULL);
    g_assert_cmpuint(st.index_sequence, ==, settled);
    ctu_copy_tree(l->lib, l->copy);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
    g_assert_cmpint(core_recover(l->copy, l->fresh, lost, &e), ==, 0);
    g_assert_cmpuint(lost->len, ==, 0);
    c = ctu_open(l->fresh);
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, "/periodic", &err);
    g_assert_cmpint(err, ==, 0);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), "no sync needed", 14);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_lib_free(l);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/recover/everything", test_recover_everything);
    g_test_add_func("/core/recover/lists-lost", test_recover_lists_lost);
    g_test_add_func("/core/recover/bad-input", test_recover_bad_input);
    g_test_add_func("/core/recover/periodic-index", test_periodic_index);
    return g_test_run();
}
