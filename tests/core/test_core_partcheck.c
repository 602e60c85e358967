/* test_core_partcheck.c — recall and check --deep verify that the tape
 * file a parts row names is that part: two data dumpfiles' rows are
 * swapped in the real catalog (sqlite, store closed); every block of both
 * tape files is intact, yet reading either file must fail with EIO (never
 * return the other file's bytes) and the deep check must report both. */
#include "core_testutil.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>

#define LEN (300u << 10)

static void test_swapped_parts(void)
{
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    g_log_set_fatal_mask("tapefs-core", G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    CtuStore *s = ctu_new(NULL, NULL);
    g_autofree guint8 *a = g_malloc(LEN), *b = g_malloc(LEN);
    ctu_pattern(1, 0, a, LEN);
    ctu_pattern(2, 0, b, LEN);
    g_assert_cmpint(ctu_write(s->core, "/a", 0, a, LEN), ==, 0);
    g_assert_cmpint(ctu_write(s->core, "/b", 0, b, LEN), ==, 0);
    GError *e = NULL;
    g_assert_cmpint(core_sync(s->core, &e), ==, 0);
    g_assert_cmpint(core_check(s->core, true, NULL, &e), ==, 0);
    ctu_close(s);

    g_autofree char *path = g_build_filename(s->store, "catalog.db", NULL);
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(db, "SELECT p.dumpfile, p.volume, p.fileno FROM parts p "
                                       "JOIN dumpfiles d ON d.id=p.dumpfile WHERE d.kind=1 "
                                       "ORDER BY p.dumpfile", -1, &st, NULL), ==, SQLITE_OK);
    int64_t df[2];
    char *vol[2];
    int64_t fno[2];
    for (int i = 0; i < 2; i++) {
        g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
        df[i] = sqlite3_column_int64(st, 0);
        vol[i] = g_strdup((const char *)sqlite3_column_text(st, 1));
        fno[i] = sqlite3_column_int64(st, 2);
    }
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_DONE); /* one part each */
    sqlite3_finalize(st);
    for (int i = 0; i < 2; i++) {
        g_autofree char *sql = g_strdup_printf("UPDATE parts SET volume='%s', fileno=%" G_GINT64_FORMAT
                                               " WHERE dumpfile=%" G_GINT64_FORMAT,
                                               vol[1 - i], fno[1 - i], df[i]);
        g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
    }
    sqlite3_close(db);
    g_free(vol[0]);
    g_free(vol[1]);

    ctu_reopen(s, NULL);
    g_assert_cmpint(core_drop_cache(s->core, &e), ==, 0);
    int err = 0;
    g_autoptr(GBytes) ra = ctu_read(s->core, CORE_ROOT_INO, "/a", &err);
    g_assert_null(ra);
    g_assert_cmpint(err, ==, -EIO);
    g_autoptr(GBytes) rb = ctu_read(s->core, CORE_ROOT_INO, "/b", &err);
    g_assert_null(rb);
    g_assert_cmpint(err, ==, -EIO);
    GPtrArray *problems = g_ptr_array_new_with_free_func(g_free);
    g_assert_cmpint(core_check(s->core, true, problems, &e), ==, -EUCLEAN);
    g_clear_error(&e);
    guint named = 0;
    for (guint i = 0; i < problems->len; i++)
        named += strstr(problems->pdata[i], "not the part the catalog names") != NULL;
    g_assert_cmpuint(named, ==, 2);
    g_ptr_array_unref(problems);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/partcheck/swapped-parts", test_swapped_parts);
    return g_test_run();
}
