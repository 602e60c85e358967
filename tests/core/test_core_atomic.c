/* test_core_atomic.c — an operation that fails half way leaves no trace
 * in the catalog. Failures are injected with SQLite triggers added to the
 * real catalog while the store is closed: a rename whose target entry
 * cannot be inserted (after the source entry was removed), and a flush
 * whose parts cannot be recorded (after the dumpfile row was inserted).
 * Later commits (sync, close) must not make the half operation durable. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>

#define LEN (100u << 10)

static void catalog_exec(CtuStore *s, const char *sql)
{
    g_autofree char *path = g_build_filename(s->store, "catalog.db", NULL);
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        g_error("%s: %s", sql, msg);
    sqlite3_close(db);
}

static int64_t catalog_count(CtuStore *s, const char *sql)
{
    g_autofree char *path = g_build_filename(s->store, "catalog.db", NULL);
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &st, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void expect_file(Core *c, const char *path, uint64_t seed)
{
    int err = 0;
    g_autoptr(GBytes) b = ctu_read(c, CORE_ROOT_INO, path, &err);
    if (!b)
        g_error("%s: %s", path, g_strerror(-err));
    g_assert_cmpuint(g_bytes_get_size(b), ==, LEN);
    g_autofree guint8 *want = g_malloc(LEN);
    ctu_pattern(seed, 0, want, LEN);
    g_assert_true(memcmp(g_bytes_get_data(b, NULL), want, LEN) == 0);
}

static void test_rename_target_fails(void)
{
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    CtuStore *s = ctu_new(NULL, NULL);
    g_autofree guint8 *buf = g_malloc(LEN);
    ctu_pattern(1, 0, buf, LEN);
    g_assert_cmpint(ctu_write(s->core, "/a", 0, buf, LEN), ==, 0);
    ctu_close(s);
    catalog_exec(s, "CREATE TRIGGER inject AFTER INSERT ON dirents WHEN NEW.name='boom' "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    ctu_reopen(s, NULL);
    GError *e = NULL;
    int rc = core_rename(s->core, CORE_ROOT_INO, "a", CORE_ROOT_INO, "boom", 0, &e);
    g_assert_cmpint(rc, <, 0);
    g_clear_error(&e);
    /* The store goes on: the source is still there, and commits do not
     * make the half rename durable. */
    expect_file(s->core, "/a", 1);
    g_assert_cmpint(core_sync(s->core, &e), ==, 0);
    g_assert_no_error(e);
    ctu_close(s);
    catalog_exec(s, "DROP TRIGGER inject");
    ctu_reopen(s, NULL);
    expect_file(s->core, "/a", 1);
    g_assert_cmpuint(ctu_resolve(s->core, CORE_ROOT_INO, "/boom"), ==, 0);
    ctu_assert_clean(s->core, false);
    g_assert_cmpint(core_rename(s->core, CORE_ROOT_INO, "a", CORE_ROOT_INO, "boom", 0, &e), ==, 0);
    expect_file(s->core, "/boom", 1);
    ctu_free(s);
}

static void test_flush_record_fails(void)
{
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    CtuStore *s = ctu_new(NULL, NULL);
    ctu_close(s);
    /* Parts of data dumpfiles cannot be recorded (index parts can). */
    catalog_exec(s, "CREATE TRIGGER inject AFTER INSERT ON parts WHEN "
                    "(SELECT kind FROM dumpfiles WHERE id=NEW.dumpfile) != 3 "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
    ctu_reopen(s, NULL);
    g_autofree guint8 *buf = g_malloc(LEN);
    ctu_pattern(2, 0, buf, LEN);
    g_assert_cmpint(ctu_write(s->core, "/f", 0, buf, LEN), ==, 0);
    GError *e = NULL;
    g_assert_cmpint(core_flush_all(s->core, &e), <, 0);
    g_clear_error(&e);
    /* Still readable from the cache; commit what the store has. */
    expect_file(s->core, "/f", 2);
    core_store_close(s->core, &e); /* its final flush fails the same way */
    g_clear_error(&e);
    s->core = NULL;
    catalog_exec(s, "DROP TRIGGER inject");
    g_assert_cmpint(catalog_count(s, "SELECT count(*) FROM dumpfiles WHERE kind IN (1,2)"), ==, 0);
    g_assert_cmpint(catalog_count(s, "SELECT count(*) FROM extents WHERE kind=0"), ==, 0);
    ctu_reopen(s, NULL);
    ctu_assert_clean(s->core, false);
    expect_file(s->core, "/f", 2);
    /* Without the failure the data goes to tape and reads back from it. */
    g_assert_cmpint(core_sync(s->core, &e), ==, 0);
    g_assert_no_error(e);
    g_assert_cmpint(core_drop_cache(s->core, &e), ==, 0);
    expect_file(s->core, "/f", 2);
    ctu_close(s);
    g_assert_cmpint(catalog_count(s, "SELECT count(*) FROM dumpfiles WHERE kind IN (1,2)"), ==, 1);
    ctu_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/atomic/rename-target-fails", test_rename_target_fails);
    g_test_add_func("/core/atomic/flush-record-fails", test_flush_record_fails);
    return g_test_run();
}
