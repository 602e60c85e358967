/* test_core_schema.c — the catalog holds exactly the tables that
 * docs/FORMATS.md lists, a catalog of an older layout (with the unused
 * volumes table) loses that table when opened, and the meta keys the
 * format names are all there. */
#include "core_testutil.h"

#include <sqlite3.h>
#include <string.h>

static char *tables(const char *store)
{
    g_autofree char *path = g_build_filename(store, "catalog.db", NULL);
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    sqlite3_stmt *s = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type='table' "
                                       "ORDER BY name", -1, &s, NULL), ==, SQLITE_OK);
    GString *out = g_string_new(NULL);
    while (sqlite3_step(s) == SQLITE_ROW)
        g_string_append_printf(out, "%s ", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return g_string_free(out, FALSE);
}

static void test_tables(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    ctu_close(s);
    g_autofree char *t = tables(s->store);
    g_assert_cmpstr(t, ==, "dirents dumpfiles extents inodes meta parts snapshots versions xattrs ");
    /* An older catalog with the volumes table. */
    g_autofree char *path = g_build_filename(s->store, "catalog.db", NULL);
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_exec(db, "CREATE TABLE volumes(name TEXT PRIMARY KEY, capacity "
                                 "INTEGER NOT NULL, used INTEGER NOT NULL, nfiles INTEGER NOT NULL,"
                                 " full INTEGER NOT NULL)", NULL, NULL, NULL), ==, SQLITE_OK);
    sqlite3_stmt *st = NULL;
    const char *keys[] = { "format", "generation", "next_id", "next_version", "next_dumpfile",
                           "index_seq", "block_size", "part_size", "volume_size" };
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_assert_cmpint(sqlite3_prepare_v2(db, "SELECT 1 FROM meta WHERE key=?", -1, &st, NULL),
                        ==, SQLITE_OK);
        sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW)
            g_error("meta key %s is missing", keys[i]);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    ctu_reopen(s, NULL);
    ctu_close(s);
    g_autofree char *t2 = tables(s->store);
    g_assert_cmpstr(t2, ==, t);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/schema/tables", test_tables);
    return g_test_run();
}
