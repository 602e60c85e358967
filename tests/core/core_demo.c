/* core_demo.c — tapefs-core-demo STORE SOURCE: what the core does, end to
 * end and without FUSE. Creates a store with virtual volumes in STORE,
 * copies the tree SOURCE into it through the core API, takes a snapshot,
 * changes the live tree (appends to a file, removes another), syncs (data
 * and the catalog's index go to tape), drops the cache and compares every
 * file of the snapshot, read back from tape, with SOURCE. Then it rebuilds
 * a second store, STORE.recovered, from the volumes alone and compares
 * again. Prints what went where; exits 0 only if every byte matched.
 * Single-threaded; no locks of its own. */
#include "core_testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const CoreCred root_cred = { 0, 0 };

typedef struct {
    unsigned files, dirs, links;
    uint64_t bytes;
    const char *first_file;  /* live path of one copied file (static) */
    char first_buf[4096];
} Tally;

static void die(const char *what, GError *e)
{
    fprintf(stderr, "tapefs-core-demo: %s: %s\n", what, e ? e->message : g_strerror(errno));
    exit(1);
}

/* Copy the regular file `path` into `parent` as `name`. */
static void copy_file(Core *c, uint64_t parent, const char *name, const char *path, mode_t mode,
                      Tally *t)
{
    GError *e = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "tapefs-core-demo: skipping %s: %s\n", path, g_strerror(errno));
        return;
    }
    struct stat st;
    uint64_t fh;
    if (core_create(c, parent, name, mode & 07777, O_WRONLY | O_CREAT | O_EXCL, &root_cred, &st,
                    &fh, &e) < 0)
        die(path, e);
    static char buf[1 << 20];
    off_t off = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (core_write(c, st.st_ino, fh, buf, (size_t)n, off, &e) != n)
            die(path, e);
        off += n;
    }
    close(fd);
    if (core_release(c, st.st_ino, fh, &e) < 0)
        die(path, e);
    core_forget(c, st.st_ino, 1);
    t->files++;
    t->bytes += (uint64_t)off;
}

static void copy_tree(Core *c, uint64_t parent, const char *dir, const char *rel, Tally *t)
{
    DIR *d = opendir(dir);
    if (!d)
        die(dir, NULL);
    struct dirent *de;
    GError *e = NULL;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        g_autofree char *path = g_build_filename(dir, de->d_name, NULL);
        g_autofree char *sub = g_build_filename(rel, de->d_name, NULL);
        struct stat sb, st;
        if (lstat(path, &sb) < 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            if (core_mkdir(c, parent, de->d_name, sb.st_mode & 07777, &root_cred, &st, &e) < 0)
                die(path, e);
            t->dirs++;
            copy_tree(c, st.st_ino, path, sub, t);
            core_forget(c, st.st_ino, 1);
        } else if (S_ISREG(sb.st_mode)) {
            copy_file(c, parent, de->d_name, path, sb.st_mode, t);
            if (!t->first_file && sb.st_size > 0) {
                g_strlcpy(t->first_buf, sub, sizeof t->first_buf);
                t->first_file = t->first_buf;
            }
        } else if (S_ISLNK(sb.st_mode)) {
            g_autofree char *target = g_file_read_link(path, NULL);
            if (target && core_symlink(c, target, parent, de->d_name, &root_cred, &st, &e) < 0)
                die(path, e);
            if (target) {
                t->links++;
                core_forget(c, st.st_ino, 1);
            }
        }
    }
    closedir(d);
}

/* Compare every regular file below SOURCE with the same path under `root`
 * of the store; returns the number of mismatches. */
static unsigned verify_tree(Core *c, uint64_t root, const char *dir, const char *rel,
                            uint64_t *bytes)
{
    DIR *d = opendir(dir);
    if (!d)
        die(dir, NULL);
    unsigned bad = 0;
    struct dirent *de;
    static char a[1 << 20], b[1 << 20];
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        g_autofree char *path = g_build_filename(dir, de->d_name, NULL);
        g_autofree char *sub = g_build_filename(rel, de->d_name, NULL);
        struct stat sb;
        if (lstat(path, &sb) < 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            bad += verify_tree(c, root, path, sub, bytes);
            continue;
        }
        if (!S_ISREG(sb.st_mode))
            continue;
        uint64_t ino = ctu_resolve(c, root, sub);
        uint64_t fh;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (!ino || fd < 0 || core_open(c, ino, O_RDONLY, &fh, NULL) < 0) {
            fprintf(stderr, "  MISSING %s\n", sub);
            bad++;
            if (fd >= 0)
                close(fd);
            continue;
        }
        off_t off = 0;
        for (;;) {
            ssize_t n = read(fd, a, sizeof a);
            GError *e = NULL;
            ssize_t m = core_read(c, ino, fh, b, sizeof b, off, &e);
            if (n != m || (n > 0 && memcmp(a, b, (size_t)n) != 0)) {
                fprintf(stderr, "  DIFFERS %s at %lld%s%s\n", sub, (long long)off,
                        e ? ": " : "", e ? e->message : "");
                bad++;
                g_clear_error(&e);
                break;
            }
            if (n <= 0)
                break;
            off += n;
        }
        *bytes += (uint64_t)off;
        close(fd);
        core_release(c, ino, fh, NULL);
    }
    closedir(d);
    return bad;
}

static uint64_t snapshot_root(Core *c, const char *name)
{
    struct stat st;
    if (core_lookup(c, CORE_ROOT_INO, CORE_SNAPDIR_NAME, &st, NULL) < 0 ||
        core_lookup(c, st.st_ino, name, &st, NULL) < 0)
        return 0;
    return st.st_ino;
}

static void print_status(Core *c)
{
    CoreStatus s;
    if (core_status(c, &s, NULL) < 0)
        return;
    printf("  tape: %" G_GUINT64_FORMAT " dumpfiles (%" G_GUINT64_FORMAT " bytes) in %"
           G_GUINT64_FORMAT " parts (library of %" G_GUINT64_FORMAT " volumes), %.1f MiB/s to tape; "
           "index %" G_GUINT64_FORMAT "; dirty in cache: %" G_GUINT64_FORMAT " bytes\n",
           s.dumpfiles, s.dumpfile_bytes, s.parts, s.volumes,
           s.taper_seconds > 0 ? (double)s.bytes_to_tape / s.taper_seconds / 1048576.0 : 0.0,
           s.index_sequence, s.dirty_bytes);
}

static unsigned verify_snapshot(Core *c, const char *src, const char *what)
{
    uint64_t root = snapshot_root(c, "imported");
    if (!root) {
        fprintf(stderr, "tapefs-core-demo: %s: snapshot 'imported' is missing\n", what);
        return 1;
    }
    uint64_t bytes = 0;
    unsigned bad = verify_tree(c, root, src, "", &bytes);
    printf("  %s: %" G_GUINT64_FORMAT " bytes compared with %s: %s\n", what, bytes, src,
           bad ? "MISMATCH" : "identical");
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tapefs-core-demo STORE SOURCE\n");
        return 2;
    }
    const char *store = argv[1], *src = argv[2];
    GError *e = NULL;
    CoreMkfsOptions mo;
    core_mkfs_options_init(&mo);
    mo.volumes = 4;
    mo.volume_size = 256 << 20;
    mo.part_size = 16 << 20;
    if (core_store_create(store, &mo, &e) < 0)
        die("creating the store", e);
    printf("store %s: 4 virtual volumes of 256 MiB in %s/library\n", store, store);
    CoreOpenOptions oo;
    core_open_options_init(&oo);
    Core *c = core_store_open(store, &oo, &e);
    if (!c)
        die("opening the store", e);

    Tally t = { 0 };
    copy_tree(c, CORE_ROOT_INO, src, "", &t);
    printf("copied %s: %u files (%" G_GUINT64_FORMAT " bytes), %u directories, %u symlinks\n",
           src, t.files, t.bytes, t.dirs, t.links);
    if (core_snapshot_create(c, "imported", &e) < 0)
        die("snapshot", e);
    printf("snapshot 'imported' taken\n");
    if (t.first_file) {
        /* The live tree moves on; the snapshot keeps the original. */
        uint64_t ino = ctu_resolve(c, CORE_ROOT_INO, t.first_file), fh;
        struct stat st;
        if (!ino || core_open(c, ino, O_WRONLY | O_APPEND, &fh, &e) < 0 ||
            core_getattr(c, ino, &st, &e) < 0)
            die(t.first_file, e);
        const char *line = "a line added after the snapshot\n";
        if (core_write(c, ino, fh, line, strlen(line), st.st_size, &e) < 0)
            die(t.first_file, e);
        core_release(c, ino, fh, NULL);
        printf("appended a line to /%s in the live tree\n", t.first_file);
    }
    if (core_sync(c, &e) < 0)
        die("sync", e);
    printf("synced: data and the catalog's index are on tape\n");
    print_status(c);
    if (core_drop_cache(c, &e) < 0)
        die("dropping the cache", e);
    printf("cache dropped: what follows is read back from tape\n");
    unsigned bad = verify_snapshot(c, src, "snapshot 'imported' from tape");
    if (core_store_close(c, &e) < 0)
        die("closing", e);

    g_autofree char *lib = g_build_filename(store, "library", NULL);
    g_autofree char *again = g_strconcat(store, ".recovered", NULL);
    g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);
    if (core_recover(lib, again, lost, &e) < 0)
        die("recovering from the volumes", e);
    printf("recovered a new store %s from the volumes alone (%u files lost)\n", again, lost->len);
    c = core_store_open(again, &oo, &e);
    if (!c)
        die("opening the recovered store", e);
    bad += verify_snapshot(c, src, "recovered store");
    if (core_store_close(c, &e) < 0)
        die("closing", e);
    printf(bad || lost->len ? "FAILED\n" : "every byte came back\n");
    return bad || lost->len ? 1 : 0;
}
