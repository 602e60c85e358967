/* core_tree.c — text digests of trees for the core tests (core_tree.h).
 * No shared state, no locks. */
#include "core_tree.h"

#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <xxhash.h>

typedef struct {
    GPtrArray *names;
    GArray *stats;
} Listing;

static bool collect(void *ctx, const char *name, const struct stat *st, off_t next)
{
    (void)next;
    Listing *l = ctx;
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    g_ptr_array_add(l->names, g_strdup(name));
    g_array_append_val(l->stats, *st);
    return false;
}

static void walk(Core *c, uint64_t dir, const char *prefix, GPtrArray *lines, GHashTable *first)
{
    uint64_t fh;
    if (core_opendir(c, dir, &fh, NULL) < 0)
        return;
    Listing l = { g_ptr_array_new_with_free_func(g_free), g_array_new(FALSE, FALSE, sizeof(struct stat)) };
    core_readdir(c, dir, fh, 0, false, collect, &l, NULL);
    core_releasedir(c, dir, fh, NULL);
    for (guint i = 0; i < l.names->len; i++) {
        struct stat *st = &g_array_index(l.stats, struct stat, i);
        g_autofree char *path = g_strdup_printf("%s/%s", prefix, (char *)l.names->pdata[i]);
        GString *line = g_string_new(path);
        g_string_append_printf(line, " mode=%o nlink=%u", st->st_mode, (unsigned)st->st_nlink);
        const char *grp = g_hash_table_lookup(first, &st->st_ino);
        if (grp)
            g_string_append_printf(line, " same-as=%s", grp);
        else
            g_hash_table_insert(first, g_memdup2(&st->st_ino, sizeof st->st_ino), g_strdup(path));
        if (S_ISREG(st->st_mode)) {
            int e = 0;
            g_autoptr(GBytes) b = ctu_read(c, dir, l.names->pdata[i], &e);
            if (b)
                g_string_append_printf(line, " size=%zu xxh=%016llx", g_bytes_get_size(b),
                                       (unsigned long long)XXH3_64bits(g_bytes_get_data(b, NULL),
                                                                       g_bytes_get_size(b)));
            else
                g_string_append_printf(line, " read-error=%d", e);
        } else if (S_ISLNK(st->st_mode)) {
            char *t = NULL;
            core_readlink(c, st->st_ino, &t, NULL);
            g_string_append_printf(line, " target=%s", t ? t : "?");
            g_free(t);
        }
        char list[4096];
        ssize_t n = core_listxattr(c, st->st_ino, list, sizeof list, NULL);
        for (ssize_t at = 0; n > 0 && at < n; at += (ssize_t)strlen(list + at) + 1) {
            char val[1024];
            ssize_t vl = core_getxattr(c, st->st_ino, list + at, val, sizeof val, NULL);
            g_string_append_printf(line, " x:%s=%.*s", list + at, (int)MAX(vl, 0), val);
        }
        g_ptr_array_add(lines, g_string_free(line, FALSE));
        if (S_ISDIR(st->st_mode))
            walk(c, st->st_ino, path, lines, first);
    }
    g_ptr_array_unref(l.names);
    g_array_unref(l.stats);
}

char *ctree_digest(Core *c, uint64_t root)
{
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    GHashTable *first = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    walk(c, root, "", lines, first);
    g_hash_table_unref(first);
    g_ptr_array_add(lines, NULL);
    char *out = g_strjoinv("\n", (char **)lines->pdata);
    g_ptr_array_unref(lines);
    return out;
}
