/* test_core_recover_damage.c — recovery when the newest index on tape is
 * damaged: one byte of a data block of its tape file is flipped; recover
 * must fall back to the previous index, say so, bring forward the files
 * that manifests written after it name, and build a working store. A recovery that fails leaves nothing in the target directory, so
 * it can be retried there. A recovered store never reuses a dumpfile id
 * or an index sequence number that some volume already holds. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The tape file written last in the library (newest modification). */
static char *newest_tape_file(const char *lib)
{
    char *best = NULL;
    struct timespec bt = { 0, 0 };
    GDir *d = g_dir_open(lib, 0, NULL);
    g_assert_nonnull(d);
    const char *v;
    while ((v = g_dir_read_name(d))) {
        g_autofree char *vd = g_build_filename(lib, v, NULL);
        GDir *f = g_dir_open(vd, 0, NULL);
        if (!f)
            continue;
        const char *n;
        while ((n = g_dir_read_name(f))) {
            if (!g_str_has_prefix(n, "file"))
                continue;
            char *p = g_build_filename(vd, n, NULL);
            struct stat st;
            g_assert_cmpint(stat(p, &st), ==, 0);
            if (!best || st.st_mtim.tv_sec > bt.tv_sec ||
                (st.st_mtim.tv_sec == bt.tv_sec && st.st_mtim.tv_nsec > bt.tv_nsec)) {
                g_free(best);
                best = p;
                bt = st.st_mtim;
            } else {
                g_free(p);
            }
        }
        g_dir_close(f);
    }
    g_dir_close(d);
    g_assert_nonnull(best);
    return best;
}

static bool dir_is_empty_or_missing(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return true;
    bool empty = g_dir_read_name(d) == NULL;
    g_dir_close(d);
    return empty;
}

static void test_damaged_newest_index(void)
{
    ctu_strict_logs();
    CtuLib *l = ctu_lib_new(NULL);
    const char *store = l->store, *lib = l->lib, *fresh = l->fresh;
    GError *e = NULL;
    CoreOpenOptions o;
    ctu_open_options(&o);
    Core *c = core_store_open(store, &o, &e);
    g_assert_no_error(e);
    g_assert_cmpint(ctu_write(c, "/first", 0, "older state", 11), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), ==, 0); /* writes index 1 */
    c = core_store_open(store, &o, &e);
    g_assert_no_error(e);
    g_assert_cmpint(ctu_write(c, "/second", 0, "newer state", 11), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), ==, 0); /* writes index 2 */
    ctu_rmtree(store);

    /* A data block in the middle of the newest index goes bad. */
    g_autofree char *victim = newest_tape_file(lib);
    struct stat st;
    g_assert_cmpint(stat(victim, &st), ==, 0);
    g_assert_cmpint(st.st_size, >, 3 * 4096);
    ctu_flip_byte(victim, st.st_size / 2);

    /* A directory the user made for it is fine, and stays usable. */
    g_assert_cmpint(g_mkdir(fresh, 0755), ==, 0);
    g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func(g_free);
    g_assert_cmpint(core_recover_notes(lib, fresh, lost, notes, &e), ==, 0);
    g_assert_no_error(e);
    g_assert_cmpuint(lost->len, ==, 0);
    /* It says which index was damaged and which one it used. */
    g_assert_cmpuint(notes->len, ==, 3);
    g_assert_nonnull(strstr(notes->pdata[0], "unusable"));
    g_assert_nonnull(strstr(notes->pdata[1], "older index 1"));
    /* /second's data is on tape and a manifest after index 1 names it. */
    g_assert_nonnull(strstr(notes->pdata[2], "brought forward 1 file(s)"));
    c = core_store_open(fresh, &o, &e);
    g_assert_no_error(e);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, "/first", &err);
    g_assert_nonnull(b);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), "older state", 11);
    g_autoptr(GBytes) b2 = ctu_read(c, CORE_ROOT_INO, "/second", &err);
    g_assert_nonnull(b2);
    g_assert_cmpmem(g_bytes_get_data(b2, NULL), g_bytes_get_size(b2), "newer state", 11);
    g_assert_cmpint(core_check(c, false, NULL, &e), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    g_assert_no_error(e);
    ctu_lib_free(l);
}

static void test_failed_recovery_leaves_nothing(void)
{
    ctu_strict_logs();
    CtuLib *l = ctu_lib_new(NULL);
    const char *tmp = l->tmp, *store = l->store, *lib = l->lib, *fresh = l->fresh;
    GError *e = NULL;
    CoreOpenOptions o;
    ctu_open_options(&o);
    Core *c = core_store_open(store, &o, &e);
    g_assert_no_error(e);
    g_assert_cmpint(ctu_write(c, "/only", 0, "one index", 9), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    /* The only index is damaged. */
    g_autofree char *victim = newest_tape_file(lib);
    struct stat st;
    g_assert_cmpint(stat(victim, &st), ==, 0);
    g_autofree char *saved = NULL;
    gsize saved_len = 0;
    g_assert_true(g_file_get_contents(victim, &saved, &saved_len, NULL));
    ctu_flip_byte(victim, st.st_size / 2);
    g_assert_cmpint(core_recover(lib, fresh, NULL, &e), <, 0);
    g_assert_nonnull(e);
    g_clear_error(&e);
    g_assert_true(dir_is_empty_or_missing(fresh));
    GDir *d = g_dir_open(tmp, 0, NULL);
    const char *n;
    while ((n = g_dir_read_name(d)))
        g_assert_null(strstr(n, "recover")); /* no staging left behind */
    g_dir_close(d);
    /* Repaired, the retry into the same directory works. */
    g_assert_true(g_file_set_contents(victim, saved, (gssize)saved_len, NULL));
    g_assert_cmpint(core_recover(lib, fresh, NULL, &e), ==, 0);
    g_assert_no_error(e);
    c = core_store_open(fresh, &o, &e);
    g_assert_no_error(e);
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, "/only", &err);
    g_assert_nonnull(b);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), "one index", 9);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_lib_free(l);
}

static void test_recovered_ids_are_new(void)
{
    CtuLib *l = ctu_lib_new(NULL);
    const char *lib = l->lib, *copy = l->copy, *fresh = l->fresh;
    GError *e = NULL;
    CoreOpenOptions o;
    ctu_open_options(&o);
    Core *c = core_store_open(l->store, &o, &e);
    g_assert_no_error(e);
    g_assert_cmpint(ctu_write(c, "/a", 0, "indexed", 7), ==, 0);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    /* Data written after the last index reaches tape, no index follows. */
    g_autofree guint8 *buf = g_malloc(300000);
    ctu_pattern(5, 0, buf, 300000);
    g_assert_cmpint(ctu_write(c, "/b", 0, buf, 300000), ==, 0);
    g_assert_cmpint(core_flush_all(c, &e), ==, 0);
    uint64_t max_id = 0;
    g_autoptr(GPtrArray) dumps = core_dumps(c, &e);
    for (guint i = 0; i < dumps->len; i++)
        max_id = MAX(max_id, ((CoreDumpInfo *)dumps->pdata[i])->id);
    CoreStatus st = { 0 };
    g_assert_cmpint(core_status(c, &st, &e), ==, 0);
    uint64_t max_seq = st.index_sequence;
    g_assert_cmpuint(max_seq, >=, 2);
    ctu_copy_tree(lib, copy);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);

    g_assert_cmpint(core_recover(copy, fresh, NULL, &e), ==, 0);
    c = core_store_open(fresh, &o, &e);
    g_assert_no_error(e);
    g_assert_cmpint(core_status(c, &st, &e), ==, 0);
    g_assert_cmpuint(st.index_sequence, >=, max_seq);
    g_autoptr(GPtrArray) before = core_dumps(c, &e);
    g_autoptr(GHashTable) known = g_hash_table_new(g_int64_hash, g_int64_equal);
    for (guint i = 0; i < before->len; i++)
        g_hash_table_add(known, &((CoreDumpInfo *)before->pdata[i])->id);
    g_assert_cmpint(ctu_write(c, "/c", 0, buf, 300000), ==, 0);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpint(core_status(c, &st, &e), ==, 0);
    g_assert_cmpuint(st.index_sequence, >, max_seq);
    g_autoptr(GPtrArray) after = core_dumps(c, &e);
    guint fresh_ids = 0;
    for (guint i = 0; i < after->len; i++) {
        CoreDumpInfo *d = after->pdata[i];
        if (g_hash_table_contains(known, &d->id))
            continue;
        fresh_ids++;
        if (d->id <= max_id)
            g_error("dumpfile id %" G_GUINT64_FORMAT " is already on tape", d->id);
    }
    g_assert_cmpuint(fresh_ids, >=, 2); /* the data and the index */
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_lib_free(l);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/recover-damage/newest-index-damaged", test_damaged_newest_index);
    g_test_add_func("/core/recover-damage/failure-leaves-nothing", test_failed_recovery_leaves_nothing);
    g_test_add_func("/core/recover-damage/ids-are-new", test_recovered_ids_are_new);
    return g_test_run();
}
