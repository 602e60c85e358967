/* test_core_basic.c — the store and the filesystem API: mkfs/open/lock,
 * namespace operations, file data through cache and tape, snapshots and
 * their views, xattrs, bad input. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static const CoreCred cred = { 1000, 1000 };

static void assert_file(Core *c, uint64_t root, const char *path, const void *want, size_t len)
{
    int e = 0;
    g_autoptr(GBytes) b = ctu_read(c, root, path, &e);
    g_assert_cmpint(e, ==, 0);
    g_assert_nonnull(b);
    gsize n;
    const void *d = g_bytes_get_data(b, &n);
    g_assert_cmpuint(n, ==, len);
    g_assert_true(len == 0 || memcmp(d, want, len) == 0);
}

static bool collect(void *ctx, const char *name, const struct stat *st, off_t next)
{
    (void)st;
    (void)next;
    g_ptr_array_add(ctx, g_strdup(name));
    return false;
}

static void test_store_lock_and_bad_input(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    GError *e = NULL;
    CoreOpenOptions o;
    ctu_open_options(&o);
    /* A second opener is refused while the first holds the lock. */
    Core *second = core_store_open(s->store, &o, &e);
    g_assert_null(second);
    g_assert_error(e, CORE_ERROR, EBUSY);
    g_clear_error(&e);
    /* mkfs into a non-empty directory is refused. */
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    g_assert_cmpint(core_store_create(s->store, &m, &e), ==, -EEXIST);
    g_clear_error(&e);
    m.block_size = 3000;
    g_autofree char *other = g_build_filename(s->tmp, "other", NULL);
    g_assert_cmpint(core_store_create(other, &m, &e), ==, -EINVAL);
    g_clear_error(&e);
    g_assert_false(g_file_test(other, G_FILE_TEST_EXISTS));
    /* Missing store. */
    g_autofree char *missing = g_build_filename(s->tmp, "missing", NULL);
    g_assert_null(core_store_open(missing, &o, &e));
    g_assert_error(e, CORE_ERROR, ENOENT);
    g_clear_error(&e);
    /* Bad names and inodes change nothing. */
    struct stat st;
    g_assert_cmpint(core_mkdir(s->core, CORE_ROOT_INO, "a/b", 0755, &cred, &st, &e), ==, -EINVAL);
    g_clear_error(&e);
    g_assert_cmpint(core_mkdir(s->core, CORE_ROOT_INO, "", 0755, &cred, &st, &e), ==, -EINVAL);
    g_clear_error(&e);
    g_assert_cmpint(core_getattr(s->core, 12345, &st, &e), ==, -ENOENT);
    g_clear_error(&e);
    g_assert_cmpint(core_unlink(s->core, CORE_ROOT_INO, "nothing", &e), ==, -ENOENT);
    g_clear_error(&e);
    g_assert_cmpint(core_mkdir(s->core, CORE_ROOT_INO, CORE_SNAPDIR_NAME, 0755, &cred, &st, &e), ==, -EEXIST);
    g_clear_error(&e);
    g_assert_cmpint(core_read(s->core, CORE_ROOT_INO, 999, &st, 1, 0, &e), ==, -EBADF);
    g_clear_error(&e);
    g_assert_cmpint(core_check(s->core, false, NULL, &e), ==, 0);
    g_assert_no_error(e);
    ctu_close(s);
    /* A damaged configuration is refused with a clear error. */
    g_autofree char *cfg = g_build_filename(s->store, "config", NULL);
    g_autofree char *text = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(cfg, &text, &len, NULL));
    text[20] ^= 1;
    g_assert_true(g_file_set_contents(cfg, text, (gssize)len, NULL));
    g_assert_null(core_store_open(s->store, &o, &e));
    g_assert_error(e, CORE_ERROR, EINVAL);
    g_clear_error(&e);
    text[20] ^= 1;
    g_assert_true(g_file_set_contents(cfg, text, (gssize)len, NULL));
    ctu_reopen(s, &o);
    ctu_free(s);
}

static void test_foreign_library(void)
{
    CtuStore *a = ctu_new(NULL, NULL);
    CtuStore *b = ctu_new(NULL, NULL);
    ctu_close(a);
    ctu_close(b);
    /* Point store a at store b's library: refused, nothing written. */
    g_autofree char *cfg = g_build_filename(a->store, "config", NULL);
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(cfg, &text, NULL, NULL));
    g_autofree char *blib = g_build_filename(b->store, "library", NULL);
    g_autofree char *alib = g_build_filename(a->store, "library", NULL);
    g_autofree char *moved = g_build_filename(a->tmp, "lib-a", NULL);
    g_assert_cmpint(g_rename(alib, moved), ==, 0);
    g_autofree char *cmd = g_strdup_printf("cp -a %s %s", blib, alib);
    g_assert_cmpint(system(cmd), ==, 0);
    GError *e = NULL;
    CoreOpenOptions o;
    ctu_open_options(&o);
    g_assert_null(core_store_open(a->store, &o, &e));
    g_assert_error(e, CORE_ERROR, EMEDIUMTYPE);
    g_clear_error(&e);
    ctu_rmtree(alib);
    g_assert_cmpint(g_rename(moved, alib), ==, 0);
    ctu_reopen(a, &o);
    ctu_free(a);
    ctu_free(b);
}

static void test_namespace(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    Core *c = s->core;
    struct stat d, f, l, sl;
    GError *e = NULL;
    g_assert_cmpint(core_mkdir(c, CORE_ROOT_INO, "dir", 0750, &cred, &d, &e), ==, 0);
    g_assert_true(S_ISDIR(d.st_mode));
    g_assert_cmpuint(d.st_mode & 07777, ==, 0750);
    g_assert_cmpuint(d.st_uid, ==, 1000);
    g_assert_cmpint(core_mknod(c, d.st_ino, "file", S_IFREG | 0600, 0, &cred, &f, &e), ==, 0);
    g_assert_cmpint(core_symlink(c, "file", d.st_ino, "sym", &cred, &sl, &e), ==, 0);
    char *target = NULL;
    g_assert_cmpint(core_readlink(c, sl.st_ino, &target, &e), ==, 0);
    g_assert_cmpstr(target, ==, "file");
    g_free(target);
    g_assert_cmpint(core_link(c, f.st_ino, CORE_ROOT_INO, "hard", &l, &e), ==, 0);
    g_assert_cmpuint(l.st_ino, ==, f.st_ino);
    g_assert_cmpuint(l.st_nlink, ==, 2);
    struct stat root;
    g_assert_cmpint(core_getattr(c, CORE_ROOT_INO, &root, &e), ==, 0);
    g_assert_cmpuint(root.st_nlink, ==, 3);
    /* rmdir of a non-empty directory fails; rename semantics. */
    g_assert_cmpint(core_rmdir(c, CORE_ROOT_INO, "dir", &e), ==, -ENOTEMPTY);
    g_clear_error(&e);
    g_assert_cmpint(core_rename(c, d.st_ino, "file", CORE_ROOT_INO, "hard", 0, &e), ==, 0);
    g_assert_cmpint(core_rename(c, CORE_ROOT_INO, "hard", d.st_ino, "sym",
                                CORE_RENAME_NOREPLACE, &e), ==, -EEXIST);
    g_clear_error(&e);
    g_assert_cmpint(core_rename(c, CORE_ROOT_INO, "hard", d.st_ino, "sym",
                                CORE_RENAME_EXCHANGE, &e), ==, 0);
    g_assert_cmpuint(ctu_resolve(c, CORE_ROOT_INO, "/hard"), ==, sl.st_ino);
    g_assert_cmpuint(ctu_resolve(c, CORE_ROOT_INO, "/dir/sym"), ==, f.st_ino);
    g_assert_cmpuint(ctu_resolve(c, CORE_ROOT_INO, "/dir/file"), ==, f.st_ino);
    g_assert_cmpint(core_rename(c, CORE_ROOT_INO, "dir", d.st_ino, "sub", 0, &e), ==, -EINVAL);
    g_clear_error(&e);
    g_assert_cmpint(core_rename(c, CORE_ROOT_INO, "x", d.st_ino, "y", 4, &e), ==, -EINVAL);
    g_clear_error(&e);
    /* Replacing a file by rename drops one link of the replaced inode. */
    g_assert_cmpint(core_rename(c, CORE_ROOT_INO, "hard", d.st_ino, "file", 0, &e), ==, 0);
    g_assert_cmpint(core_getattr(c, f.st_ino, &f, &e), ==, 0);
    g_assert_cmpuint(f.st_nlink, ==, 1);
    /* readdir lists entries with attributes; the root hides .snapshots. */
    uint64_t fh;
    g_assert_cmpint(core_opendir(c, CORE_ROOT_INO, &fh, &e), ==, 0);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_assert_cmpint(core_readdir(c, CORE_ROOT_INO, fh, 0, false, collect, names, &e), ==, 0);
    g_assert_cmpint(core_releasedir(c, CORE_ROOT_INO, fh, &e), ==, 0);
    g_assert_cmpuint(names->len, ==, 3);
    g_assert_cmpstr(names->pdata[2], ==, "dir");
    struct stat snapdir;
    g_assert_cmpint(core_lookup(c, CORE_ROOT_INO, CORE_SNAPDIR_NAME, &snapdir, &e), ==, 0);
    g_assert_cmpuint(snapdir.st_ino, ==, CORE_SNAPDIR_INO);
    core_forget(c, CORE_SNAPDIR_INO, 1);
    /* xattrs */
    g_assert_cmpint(core_setxattr(c, f.st_ino, "user.a", "xyz", 3, 0, &e), ==, 0);
    g_assert_cmpint(core_setxattr(c, f.st_ino, "user.a", "q", 1, CORE_XATTR_CREATE, &e), ==, -EEXIST);
    g_clear_error(&e);
    char buf[16];
    g_assert_cmpint(core_getxattr(c, f.st_ino, "user.a", buf, sizeof buf, &e), ==, 3);
    g_assert_cmpmem(buf, 3, "xyz", 3);
    g_assert_cmpint(core_getxattr(c, f.st_ino, "user.a", buf, 1, &e), ==, -ERANGE);
    g_clear_error(&e);
    g_assert_cmpint(core_listxattr(c, f.st_ino, NULL, 0, &e), ==, 7);
    g_assert_cmpint(core_removexattr(c, f.st_ino, "user.a", &e), ==, 0);
    g_assert_cmpint(core_getxattr(c, f.st_ino, "user.a", buf, sizeof buf, &e), ==, -ENODATA);
    g_clear_error(&e);
    /* dir/file is now the symlink, dir/sym the last link of f. */
    g_assert_cmpuint(ctu_resolve(c, CORE_ROOT_INO, "/dir/file"), ==, sl.st_ino);
    g_assert_cmpint(core_unlink(c, d.st_ino, "file", &e), ==, 0);
    g_assert_cmpint(core_unlink(c, d.st_ino, "sym", &e), ==, 0);
    g_assert_cmpint(core_unlink(c, d.st_ino, "sym", &e), ==, -ENOENT);
    g_clear_error(&e);
    g_assert_cmpint(core_check(c, false, NULL, &e), ==, 0);
    g_assert_no_error(e);
    /* setattr */
    struct stat in = { .st_mode = 0700, .st_uid = 7 }, out;
    g_assert_cmpint(core_setattr(c, d.st_ino, &in, CORE_SET_MODE | CORE_SET_UID, &out, &e), ==, 0);
    g_assert_cmpuint(out.st_mode, ==, S_IFDIR | 0700);
    g_assert_cmpuint(out.st_uid, ==, 7);
    ctu_free(s);
}

static void test_data_and_snapshots(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    Core *c = s->core;
    GError *e = NULL;
    size_t big = 3 << 20; /* spans parts (1 MiB) */
    g_autofree guint8 *a = g_malloc(big), *b = g_malloc(big);
    ctu_pattern(1, 0, a, big);
    g_assert_cmpint(ctu_write(c, "/big", 0, a, big), ==, 0);
    g_assert_cmpint(ctu_write(c, "/small", 0, "hello", 5), ==, 0);
    g_assert_cmpint(ctu_write(c, "/sparse", 100000, "end", 3), ==, 0);
    assert_file(c, CORE_ROOT_INO, "/big", a, big);
    g_assert_cmpint(core_snapshot_create(c, "s1", &e), ==, 0);
    g_assert_cmpint(core_snapshot_create(c, "s1", &e), ==, -EEXIST);
    g_clear_error(&e);
    /* Change the live file in the middle: the snapshot keeps the old bytes. */
    memcpy(b, a, big);
    ctu_pattern(2, 0, b + 1000000, 5000);
    g_assert_cmpint(ctu_write(c, "/big", 1000000, b + 1000000, 5000), ==, 0);
    g_assert_cmpint(ctu_write(c, "/small", 5, " world", 6), ==, 0);
    uint64_t s1 = ctu_resolve(c, CORE_ROOT_INO, "/.snapshots/s1");
    g_assert_cmpuint(s1 >> CORE_VIEW_SHIFT, >, 0);
    assert_file(c, s1, "/big", a, big);
    assert_file(c, s1, "/small", "hello", 5);
    assert_file(c, CORE_ROOT_INO, "/big", b, big);
    assert_file(c, CORE_ROOT_INO, "/small", "hello world", 11);
    /* Snapshot inode numbers differ from live ones; writes are EROFS. */
    uint64_t snapbig = ctu_resolve(c, s1, "/big");
    g_assert_cmpuint(snapbig, !=, ctu_resolve(c, CORE_ROOT_INO, "/big"));
    g_assert_cmpuint(snapbig & ((1ULL << CORE_VIEW_SHIFT) - 1), ==,
                     ctu_resolve(c, CORE_ROOT_INO, "/big"));
    uint64_t fh;
    g_assert_cmpint(core_open(c, snapbig, O_RDWR, &fh, &e), ==, -EROFS);
    g_clear_error(&e);
    struct stat st;
    g_assert_cmpint(core_mkdir(c, s1, "x", 0755, &cred, &st, &e), ==, -EROFS);
    g_clear_error(&e);
    g_assert_cmpint(core_unlink(c, s1, "big", &e), ==, -EROFS);
    g_clear_error(&e);
    g_assert_cmpint(core_setxattr(c, snapbig, "user.x", "1", 1, 0, &e), ==, -EROFS);
    g_clear_error(&e);
    /* Flush everything to tape, drop the cache, read back from tape. */
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_no_error(e);
    CoreStatus cs;
    g_assert_cmpint(core_status(c, &cs, &e), ==, 0);
    g_assert_cmpuint(cs.dirty_bytes, ==, 0);
    g_assert_cmpuint(cs.parts, >=, 4);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    assert_file(c, CORE_ROOT_INO, "/big", b, big);
    assert_file(c, s1, "/big", a, big);
    assert_file(c, s1, "/small", "hello", 5);
    g_autofree guint8 *sp = g_malloc0(100003);
    memcpy(sp + 100000, "end", 3);
    assert_file(c, CORE_ROOT_INO, "/sparse", sp, 100003);
    /* The changed file shares unchanged ranges with the snapshot: the
     * second flush wrote far less than the whole file again. */
    g_assert_cmpuint(cs.bytes_to_tape, <, big + big / 2 + (1 << 20));
    char state[32];
    /* Read back after the drop: on tape and in the cache again. */
    ssize_t n = core_getxattr(c, ctu_resolve(c, CORE_ROOT_INO, "/big"), "user.tapefs.state",
                              state, sizeof state, &e);
    g_assert_cmpint(n, ==, 6);
    g_assert_cmpmem(state, 6, "cached", 6);
    char parts[512];
    n = core_getxattr(c, ctu_resolve(c, CORE_ROOT_INO, "/big"), "user.tapefs.parts", parts,
                      sizeof parts - 1, &e);
    g_assert_cmpint(n, >, 0);
    parts[n] = 0;
    g_assert_nonnull(strstr(parts, "vol001"));
    /* Rewriting a file that is on tape makes its old dumpfile garbage. */
    g_assert_cmpuint(cs.garbage_dumpfiles, ==, 0);
    g_autofree guint8 *sm = g_malloc(300000);
    ctu_pattern(3, 0, sm, 300000);
    g_assert_cmpint(ctu_write(c, "/solo", 0, sm, 300000), ==, 0);
    g_assert_cmpint(core_flush_all(c, &e), ==, 0);
    ctu_pattern(4, 0, sm, 300000);
    g_assert_cmpint(ctu_write(c, "/solo", 0, sm, 300000), ==, 0);
    g_assert_cmpint(core_flush_all(c, &e), ==, 0);
    g_assert_cmpint(core_status(c, &cs, &e), ==, 0);
    g_assert_cmpuint(cs.garbage_dumpfiles, ==, 1);
    g_assert_cmpuint(cs.garbage_bytes, ==, 300000);
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    assert_file(c, CORE_ROOT_INO, "/solo", sm, 300000);
    /* Truncate, reopen, read back. */
    struct stat in = { .st_size = 10 };
    g_assert_cmpint(core_setattr(c, ctu_resolve(c, CORE_ROOT_INO, "/big"), &in, CORE_SET_SIZE,
                                 &st, &e), ==, 0);
    g_assert_cmpint(st.st_size, ==, 10);
    ctu_close(s);
    ctu_reopen(s, NULL);
    c = s->core;
    assert_file(c, CORE_ROOT_INO, "/big", b, 10);
    s1 = ctu_resolve(c, CORE_ROOT_INO, "/.snapshots/s1");
    assert_file(c, s1, "/big", a, big);
    /* Deleting the snapshot frees what only it saw. */
    g_assert_cmpint(core_rmdir(c, CORE_SNAPDIR_INO, "s1", &e), ==, 0);
    g_assert_cmpuint(ctu_resolve(c, CORE_ROOT_INO, "/.snapshots/s1"), ==, 0);
    g_assert_cmpint(core_status(c, &cs, &e), ==, 0);
    g_assert_cmpuint(cs.garbage_dumpfiles, >=, 2);
    g_assert_cmpint(core_check(c, true, NULL, &e), ==, 0);
    g_assert_no_error(e);
    ctu_free(s);
}

static void test_mkdir_in_snapdir(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    Core *c = s->core;
    GError *e = NULL;
    struct stat st;
    g_assert_cmpint(ctu_write(c, "/f", 0, "abc", 3), ==, 0);
    g_assert_cmpint(core_mkdir(c, CORE_SNAPDIR_INO, "snap", 0755, &cred, &st, &e), ==, 0);
    g_assert_cmpuint(st.st_ino >> CORE_VIEW_SHIFT, >, 0);
    uint64_t fh;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_assert_cmpint(core_opendir(c, CORE_SNAPDIR_INO, &fh, &e), ==, 0);
    g_assert_cmpint(core_readdir(c, CORE_SNAPDIR_INO, fh, 0, true, collect, names, &e), ==, 0);
    core_releasedir(c, CORE_SNAPDIR_INO, fh, NULL);
    g_assert_cmpuint(names->len, ==, 3);
    g_assert_cmpstr(names->pdata[2], ==, "snap");
    g_autoptr(GPtrArray) list = core_snapshot_list(c, &e);
    g_assert_cmpuint(list->len, ==, 1);
    g_assert_cmpint(core_unlink(c, CORE_ROOT_INO, "f", &e), ==, 0);
    assert_file(c, st.st_ino, "/f", "abc", 3);
    g_assert_cmpint(core_rmdir(c, CORE_SNAPDIR_INO, "snap", &e), ==, 0);
    g_assert_cmpint(core_rmdir(c, CORE_SNAPDIR_INO, "snap", &e), ==, -ENOENT);
    g_clear_error(&e);
    g_assert_cmpint(core_check(c, false, NULL, &e), ==, 0);
    ctu_free(s);
}

static void test_open_unlinked_and_forget(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    Core *c = s->core;
    GError *e = NULL;
    struct stat st;
    uint64_t fh;
    g_assert_cmpint(core_create(c, CORE_ROOT_INO, "tmp", 0600, O_RDWR | O_CREAT, &cred, &st, &fh, &e), ==, 0);
    g_assert_cmpint(core_write(c, st.st_ino, fh, "still here", 10, 0, &e), ==, 10);
    g_assert_cmpint(core_unlink(c, CORE_ROOT_INO, "tmp", &e), ==, 0);
    g_assert_cmpuint(ctu_resolve(c, CORE_ROOT_INO, "/tmp"), ==, 0);
    /* Open and looked up: the inode lives on. */
    char buf[16];
    g_assert_cmpint(core_read(c, st.st_ino, fh, buf, sizeof buf, 0, &e), ==, 10);
    g_assert_cmpmem(buf, 10, "still here", 10);
    struct stat now;
    g_assert_cmpint(core_getattr(c, st.st_ino, &now, &e), ==, 0);
    g_assert_cmpuint(now.st_nlink, ==, 0);
    g_assert_cmpint(core_release(c, st.st_ino, fh, &e), ==, 0);
    g_assert_cmpint(core_getattr(c, st.st_ino, &now, &e), ==, 0);
    /* The last forget ends it. */
    core_forget(c, st.st_ino, 1);
    g_assert_cmpint(core_getattr(c, st.st_ino, &now, &e), ==, -ENOENT);
    g_clear_error(&e);
    struct statvfs sv;
    g_assert_cmpint(core_statfs(c, &sv, &e), ==, 0);
    g_assert_cmpuint(sv.f_blocks * sv.f_frsize, ==, 4ULL * (8 << 20));
    g_assert_cmpuint(sv.f_namemax, ==, 255);
    g_assert_cmpint(core_check(c, false, NULL, &e), ==, 0);
    ctu_free(s);
}

static void test_check_finds_damage(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    g_assert_cmpint(ctu_write(s->core, "/victim", 0, "abc", 3), ==, 0);
    g_assert_cmpint(ctu_write(s->core, "/other", 0, "def", 3), ==, 0);
    uint64_t id = ctu_resolve(s->core, CORE_ROOT_INO, "/victim");
    ctu_close(s);
    /* Remove the inode behind an entry and break a link count. */
    g_autofree char *cat = g_build_filename(s->store, "catalog.db", NULL);
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(cat, &db), ==, SQLITE_OK);
    g_autofree char *sql = g_strdup_printf("DELETE FROM inodes WHERE id=%llu;"
                                           "UPDATE inodes SET nlink=5 WHERE id=%llu;",
                                           (unsigned long long)id, (unsigned long long)id + 1);
    g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
    sqlite3_close(db);
    ctu_reopen(s, NULL);
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    g_log_set_fatal_mask("tapefs-core", G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    GError *e = NULL;
    g_assert_cmpint(core_check(s->core, false, problems, &e), ==, -EUCLEAN);
    g_assert_error(e, CORE_ERROR, EUCLEAN);
    g_clear_error(&e);
    g_assert_cmpuint(problems->len, >=, 2);
    bool missing = false, nlink = false;
    for (guint i = 0; i < problems->len; i++) {
        missing |= strstr(problems->pdata[i], "missing inode") != NULL;
        nlink |= strstr(problems->pdata[i], "nlink 5") != NULL;
    }
    g_assert_true(missing);
    g_assert_true(nlink);
    ctu_free(s);
}

static void test_foreign_cache(void)
{
    CtuStore *a = ctu_new(NULL, NULL);
    CtuStore *b = ctu_new(NULL, NULL);
    g_assert_cmpint(ctu_write(b->core, "/x", 0, "b", 1), ==, 0);
    ctu_close(a);
    ctu_close(b);
    g_autofree char *acache = g_build_filename(a->store, "cache", NULL);
    g_autofree char *bcache = g_build_filename(b->store, "cache", NULL);
    ctu_rmtree(acache);
    g_autofree char *cmd = g_strdup_printf("cp -a '%s' '%s'", bcache, acache);
    g_assert_cmpint(system(cmd), ==, 0);
    GError *e = NULL;
    CoreOpenOptions o;
    ctu_open_options(&o);
    g_assert_null(core_store_open(a->store, &o, &e));
    g_assert_nonnull(e);
    g_assert_cmpint(e->code, ==, EMEDIUMTYPE);
    g_clear_error(&e);
    ctu_rmtree(acache);
    ctu_reopen(a, &o);
    ctu_free(a);
    ctu_free(b);
}

static void assert_state(Core *c, uint64_t ino, const char *want)
{
    char v[32];
    GError *e = NULL;
    ssize_t n = core_getxattr(c, ino, "user.tapefs.state", v, sizeof v, &e);
    g_assert_no_error(e);
    g_assert_cmpint(n, >, 0);
    g_assert_cmpmem(v, (size_t)n, want, strlen(want));
}

/* user.tapefs.state follows a file's data: written -> dirty, synced ->
 * cached (on tape, still in the cache), cache dropped -> on-tape, part of
 * it read -> cached; written again -> dirty. A file in a snapshot view
 * and an empty file answer too. */
static void test_xattr_state(void)
{
    CtuStore *s = ctu_new(NULL, NULL);
    Core *c = s->core;
    GError *e = NULL;
    g_autofree guint8 *a = g_malloc(100000);
    ctu_pattern(21, 0, a, 100000);
    g_assert_cmpint(ctu_write(c, "/f", 0, a, 100000), ==, 0);
    g_assert_cmpint(ctu_write(c, "/empty", 0, NULL, 0), ==, 0);
    uint64_t ino = ctu_resolve(c, CORE_ROOT_INO, "/f");
    uint64_t empty = ctu_resolve(c, CORE_ROOT_INO, "/empty");
    assert_state(c, ino, "dirty");
    assert_state(c, empty, "on-tape");
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_no_error(e);
    assert_state(c, ino, "cached");
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    assert_state(c, ino, "on-tape");
    /* Reading one block's worth brings part of it back into the cache. */
    uint64_t fh;
    guint8 buf[100];
    g_assert_cmpint(core_open(c, ino, O_RDONLY, &fh, &e), ==, 0);
    g_assert_cmpint(core_read(c, ino, fh, buf, sizeof buf, 50000, &e), ==, sizeof buf);
    g_assert_cmpmem(buf, sizeof buf, a + 50000, sizeof buf);
    g_assert_cmpint(core_release(c, ino, fh, &e), ==, 0);
    assert_state(c, ino, "cached");
    /* A snapshot sees the same version; a new write makes the live file
     * dirty while the snapshot's copy stays where it was. */
    g_assert_cmpint(core_snapshot_create(c, "s1", &e), ==, 0);
    uint64_t snap = ctu_resolve(c, CORE_SNAPDIR_INO, "/s1");
    g_assert_cmpuint(snap, !=, 0);
    uint64_t old = ctu_resolve(c, snap, "/f");
    assert_state(c, old, "cached");
    g_assert_cmpint(ctu_write(c, "/f", 10, "new", 3), ==, 0);
    assert_state(c, ino, "dirty");
    assert_state(c, old, "cached");
    g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
    assert_state(c, old, "on-tape");
    ctu_free(s);
}

/* A file whose data never reached tape before the newest index is "lost"
 * in the store recovered from the volumes; one that did is "on-tape". */
static void test_xattr_state_lost(void)
{
    ctu_strict_logs();
    CoreMkfsOptions m;
    ctu_mkfs_options(&m);
    GError *e = NULL;
    g_autofree char *tmp = g_dir_make_tmp("tapefs-core-XXXXXX", &e);
    g_autofree char *store = g_build_filename(tmp, "store", NULL);
    g_autofree char *lib = g_build_filename(tmp, "library", NULL);
    g_autofree char *copy = g_build_filename(tmp, "library-copy", NULL);
    g_autofree char *fresh = g_build_filename(tmp, "recovered", NULL);
    m.library = lib;
    g_assert_cmpint(core_store_create(store, &m, &e), ==, 0);
    CoreOpenOptions o;
    ctu_open_options(&o);
    Core *c = core_store_open(store, &o, &e);
    g_assert_no_error(e);
    g_assert_cmpint(ctu_write(c, "/safe", 0, "on tape", 7), ==, 0);
    g_assert_cmpint(core_sync(c, &e), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    /* The next data dumpfile fails on two volumes; the index written at
     * the sync still names the file whose data is only in the cache. */
    for (int v = 1; v <= 2; v++) {
        g_autofree char *vol = g_strdup_printf("vol%03d", v);
        g_autofree char *p = g_build_filename(lib, vol, "faults", NULL);
        g_assert_true(g_file_set_contents(p, "fail-write 1\n", -1, NULL));
    }
    c = core_store_open(store, &o, &e);
    g_assert_no_error(e);
    g_assert_cmpint(ctu_write(c, "/unsafe", 0, "only cached", 11), ==, 0);
    g_assert_cmpint(core_sync(c, &e), ==, -EIO);
    g_clear_error(&e);
    assert_state(c, ctu_resolve(c, CORE_ROOT_INO, "/unsafe"), "dirty");
    g_autofree char *cmd = g_strdup_printf("cp -a '%s' '%s'", lib, copy);
    g_assert_cmpint(system(cmd), ==, 0);
    g_assert_cmpint(core_store_close(c, &e), <=, 0);
    g_clear_error(&e);
    for (int v = 1; v <= 2; v++) {
        g_autofree char *vol = g_strdup_printf("vol%03d", v);
        g_autofree char *p = g_build_filename(copy, vol, "faults", NULL);
        g_unlink(p);
    }
    g_assert_cmpint(core_recover(copy, fresh, NULL, &e), ==, 0);
    g_assert_no_error(e);
    c = core_store_open(fresh, &o, &e);
    g_assert_no_error(e);
    assert_state(c, ctu_resolve(c, CORE_ROOT_INO, "/unsafe"), "lost");
    assert_state(c, ctu_resolve(c, CORE_ROOT_INO, "/safe"), "on-tape");
    g_assert_cmpint(core_store_close(c, &e), ==, 0);
    ctu_rmtree(tmp);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/core/basic/store-lock-bad-input", test_store_lock_and_bad_input);
    g_test_add_func("/core/basic/foreign-library", test_foreign_library);
    g_test_add_func("/core/basic/namespace", test_namespace);
    g_test_add_func("/core/basic/data-and-snapshots", test_data_and_snapshots);
    g_test_add_func("/core/basic/mkdir-in-snapdir", test_mkdir_in_snapdir);
    g_test_add_func("/core/basic/open-unlinked-and-forget", test_open_unlinked_and_forget);
    g_test_add_func("/core/basic/foreign-cache", test_foreign_cache);
    g_test_add_func("/core/basic/check-finds-damage", test_check_finds_damage);
    g_test_add_func("/core/basic/xattr-state", test_xattr_state);
    g_test_add_func("/core/basic/xattr-state-lost", test_xattr_state_lost);
    return g_test_run();
}
