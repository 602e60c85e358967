/* test_core_model.c — randomized model test: random sequences of
 * create/write/truncate/rename/link/unlink/mkdir/rmdir/setxattr, snapshot
 * create/delete, flush, cache drop and reopen against an in-memory
 * reference model. After every step the live tree and every kept snapshot
 * must equal the model (names, types, sizes, contents, symlink targets,
 * xattrs, hard links); after a flush + cache drop the contents come back
 * from tape. Several seeds; small volumes and parts so data spans them. */
#include "core_testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

enum { M_FILE, M_DIR, M_LINK };

typedef struct {
    int type;
    GByteArray *data;
    char *target;
    GHashTable *xattrs;   /* name -> GBytes */
    GHashTable *children; /* name -> id (dirs) */
} MInode;

typedef struct {
    GHashTable *inodes;   /* id -> MInode* */
} Model;

typedef struct {
    char *name;
    Model *m;
} MSnap;

static void minode_free(gpointer p)
{
    MInode *n = p;
    if (n->data)
        g_byte_array_unref(n->data);
    g_free(n->target);
    if (n->xattrs)
        g_hash_table_unref(n->xattrs);
    if (n->children)
        g_hash_table_unref(n->children);
    g_free(n);
}

static MInode *minode_new(int type)
{
    MInode *n = g_new0(MInode, 1);
    n->type = type;
    n->xattrs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
    if (type == M_FILE)
        n->data = g_byte_array_new();
    if (type == M_DIR)
        n->children = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return n;
}

static Model *model_new(void)
{
    Model *m = g_new0(Model, 1);
    m->inodes = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, minode_free);
    g_hash_table_insert(m->inodes, GINT_TO_POINTER(1), minode_new(M_DIR));
    return m;
}

static void model_free(Model *m)
{
    g_hash_table_unref(m->inodes);
    g_free(m);
}

static Model *model_copy(Model *src)
{
    Model *m = g_new0(Model, 1);
    m->inodes = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, minode_free);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, src->inodes);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        MInode *s = v, *d = minode_new(s->type);
        if (s->data)
            g_byte_array_append(d->data, s->data->data, s->data->len);
        d->target = g_strdup(s->target);
        GHashTableIter j;
        gpointer a, b;
        g_hash_table_iter_init(&j, s->xattrs);
        while (g_hash_table_iter_next(&j, &a, &b))
            g_hash_table_insert(d->xattrs, g_strdup(a), g_bytes_ref(b));
        if (s->children) {
            g_hash_table_iter_init(&j, s->children);
            while (g_hash_table_iter_next(&j, &a, &b))
                g_hash_table_insert(d->children, g_strdup(a), b);
        }
        g_hash_table_insert(m->inodes, k, d);
    }
    return m;
}

static MInode *mget(Model *m, int id)
{
    return g_hash_table_lookup(m->inodes, GINT_TO_POINTER(id));
}

static int mlinks(Model *m, int id)
{
    int n = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, m->inodes);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        MInode *d = v;
        if (!d->children)
            continue;
        GHashTableIter j;
        gpointer c;
        g_hash_table_iter_init(&j, d->children);
        while (g_hash_table_iter_next(&j, NULL, &c))
            n += GPOINTER_TO_INT(c) == id;
    }
    return n;
}

typedef struct {
    char *path;
    int parent;
    char *name;
    int id;
} MEntry;

static void mentry_clear(gpointer p)
{
    MEntry *e = p;
    g_free(e->path);
    g_free(e->name);
}

static void walk(Model *m, int dir, const char *prefix, GArray *out)
{
    MInode *d = mget(m, dir);
    g_autoptr(GList) keys = g_hash_table_get_keys(d->children);
    keys = g_list_sort(keys, (GCompareFunc)strcmp);
    for (GList *l = keys; l; l = l->next) {
        MEntry e = { .path = g_strdup_printf("%s/%s", prefix, (char *)l->data), .parent = dir,
                     .name = g_strdup(l->data),
                     .id = GPOINTER_TO_INT(g_hash_table_lookup(d->children, l->data)) };
        g_array_append_val(out, e);
        if (mget(m, e.id)->type == M_DIR)
            walk(m, e.id, e.path, out);
    }
}

static GArray *entries(Model *m)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(MEntry));
    g_array_set_clear_func(a, mentry_clear);
    walk(m, 1, "", a);
    return a;
}

static void drop_unlinked(Model *m, int id)
{
    if (mlinks(m, id) == 0)
        g_hash_table_remove(m->inodes, GINT_TO_POINTER(id));
}

/* ---- comparing the core against the model -------------------------- */

static bool collect(void *ctx, const char *name, const struct stat *st, off_t next)
{
    (void)next;
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    GHashTable *h = ctx;
    g_hash_table_insert(h, g_strdup(name), g_memdup2(st, sizeof *st));
    return false;
}

typedef struct {
    Core *c;
    Model *m;
    GHashTable *ino_to_id;
    GHashTable *id_to_ino;
    GHashTable *checked;
} Cmp;

static void compare_dir(Cmp *x, uint64_t ino, int id, const char *path)
{
    MInode *d = mget(x->m, id);
    uint64_t fh;
    GError *e = NULL;
    g_assert_cmpint(core_opendir(x->c, ino, &fh, &e), ==, 0);
    g_autoptr(GHashTable) got = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_assert_cmpint(core_readdir(x->c, ino, fh, 0, false, collect, got, &e), ==, 0);
    g_assert_cmpint(core_releasedir(x->c, ino, fh, &e), ==, 0);
    if (g_hash_table_size(got) != g_hash_table_size(d->children))
        g_error("%s: %u entries, model has %u", path, g_hash_table_size(got),
                g_hash_table_size(d->children));
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, d->children);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        int cid = GPOINTER_TO_INT(v);
        MInode *n = mget(x->m, cid);
        struct stat *st = g_hash_table_lookup(got, k);
        g_autofree char *p = g_strdup_printf("%s/%s", path, (char *)k);
        if (!st)
            g_error("%s: missing", p);
        /* hard links: one inode number per model inode, and vice versa */
        gpointer seen = g_hash_table_lookup(x->ino_to_id, &st->st_ino);
        if (seen)
            g_assert_cmpint(GPOINTER_TO_INT(seen), ==, cid);
        else
            g_hash_table_insert(x->ino_to_id, g_memdup2(&st->st_ino, sizeof st->st_ino),
                                GINT_TO_POINTER(cid));
        uint64_t *known = g_hash_table_lookup(x->id_to_ino, GINT_TO_POINTER(cid));
        if (known)
            g_assert_cmpuint(*known, ==, st->st_ino);
        else
            g_hash_table_insert(x->id_to_ino, GINT_TO_POINTER(cid),
                                g_memdup2(&st->st_ino, sizeof st->st_ino));
        if (g_hash_table_contains(x->checked, GINT_TO_POINTER(cid)))
            continue;
        g_hash_table_add(x->checked, GINT_TO_POINTER(cid));
        if (n->type == M_DIR) {
            g_assert_true(S_ISDIR(st->st_mode));
            compare_dir(x, st->st_ino, cid, p);
        } else if (n->type == M_LINK) {
            g_assert_true(S_ISLNK(st->st_mode));
            char *t = NULL;
            g_assert_cmpint(core_readlink(x->c, st->st_ino, &t, &e), ==, 0);
            g_assert_cmpstr(t, ==, n->target);
            g_free(t);
        } else {
            g_assert_true(S_ISREG(st->st_mode));
            g_assert_cmpuint(st->st_nlink, ==, (guint)mlinks(x->m, cid));
            if ((guint64)st->st_size != n->data->len)
                g_error("%s: size %lld, model %u", p, (long long)st->st_size, n->data->len);
            int err = 0;
            g_autoptr(GBytes) b = ctu_read(x->c, ino, k, &err);
            if (err)
                g_error("%s: read failed: %s", p, g_strerror(-err));
            gsize len;
            const guint8 *data = g_bytes_get_data(b, &len);
            g_assert_cmpuint(len, ==, n->data->len);
            for (gsize i = 0; i < len; i++)
                if (data[i] != n->data->data[i])
                    g_error("%s: byte %zu is %u, model %u", p, (size_t)i, data[i], n->data->data[i]);
        }
        /* xattrs */
        ssize_t need = core_listxattr(x->c, st->st_ino, NULL, 0, &e);
        g_assert_cmpint(need, >=, 0);
        g_autofree char *list = g_malloc((size_t)MAX(need, 0) + 1);
        g_assert_cmpint(core_listxattr(x->c, st->st_ino, list, (size_t)need + 1, &e), ==, need);
        guint count = 0;
        for (ssize_t at = 0; at < need; at += (ssize_t)strlen(list + at) + 1) {
            count++;
            GBytes *want = g_hash_table_lookup(n->xattrs, list + at);
            if (!want)
                g_error("%s: unexpected xattr %s", p, list + at);
            char buf[256];
            ssize_t l = core_getxattr(x->c, st->st_ino, list + at, buf, sizeof buf, &e);
            g_assert_cmpmem(buf, l, g_bytes_get_data(want, NULL), g_bytes_get_size(want));
        }
        g_assert_cmpuint(count, ==, g_hash_table_size(n->xattrs));
    }
}

static void compare(Core *c, uint64_t root, Model *m)
{
    Cmp x = { .c = c, .m = m };
    x.ino_to_id = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    x.id_to_ino = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    x.checked = g_hash_table_new(g_direct_hash, g_direct_equal);
    compare_dir(&x, root, 1, root == CORE_ROOT_INO ? "" : "/.snapshots/?");
    g_hash_table_unref(x.ino_to_id);
    g_hash_table_unref(x.id_to_ino);
    g_hash_table_unref(x.checked);
}

/* ---- the random walk ------------------------------------------------ */

static const char *const NAMES[] = { "a", "b", "c", "d", "e", "f", "g", "h" };

static size_t rand_size(GRand *r)
{
    int k = g_rand_int_range(r, 0, 100);
    if (k < 10)
        return 0;
    if (k < 85)
        return (size_t)g_rand_int_range(r, 1, 20000);
    if (k < 97)
        return (size_t)g_rand_int_range(r, 20000, 300000);
    return (size_t)g_rand_int_range(r, 1000000, 1600000);
}

static void rand_bytes(GRand *r, guint8 *buf, size_t len)
{
    ctu_pattern(g_rand_int(r), g_rand_int(r), buf, len);
}

static int pick(GRand *r, GArray *ents, int type, Model *m)
{
    int n = 0;
    for (guint i = 0; i < ents->len; i++)
        n += mget(m, g_array_index(ents, MEntry, i).id)->type == type;
    if (!n)
        return -1;
    int k = g_rand_int_range(r, 0, n);
    for (guint i = 0; i < ents->len; i++)
        if (mget(m, g_array_index(ents, MEntry, i).id)->type == type && k-- == 0)
            return (int)i;
    return -1;
}

static int pick_dir(GRand *r, GArray *ents, Model *m, const char **path)
{
    int i = g_rand_int_range(r, 0, 3) == 0 ? -1 : pick(r, ents, M_DIR, m);
    if (i < 0) {
        *path = "";
        return 1;
    }
    MEntry *e = &g_array_index(ents, MEntry, i);
    *path = e->path;
    return e->id;
}

static uint64_t live(Core *c, const char *path)
{
    if (!*path)
        return CORE_ROOT_INO;
    uint64_t ino = ctu_resolve(c, CORE_ROOT_INO, path);
    g_assert_cmpuint(ino, !=, 0);
    return ino;
}

static void run_seed(guint32 seed, int steps)
{
    GRand *r = g_rand_new_with_seed(seed);
    CtuStore *s = ctu_new(NULL, NULL);
    Model *m = model_new();
    GPtrArray *snaps = g_ptr_array_new();
    int next_id = 2, next_snap = 1;
    GError *e = NULL;
    const CoreCred cred = { 0, 0 };
    guint8 *buf = g_malloc(1700000);
    for (int step = 0; step < steps; step++) {
        Core *c = s->core;
        g_autoptr(GArray) ents = entries(m);
        int op = g_rand_int_range(r, 0, 100);
        const char *dpath;
        if (op < 22) { /* create or overwrite a file */
            int dir = pick_dir(r, ents, m, &dpath);
            const char *name = NAMES[g_rand_int_range(r, 0, 8)];
            int existing = GPOINTER_TO_INT(g_hash_table_lookup(mget(m, dir)->children, name));
            if (existing && mget(m, existing)->type != M_FILE)
                continue;
            size_t len = rand_size(r);
            rand_bytes(r, buf, len);
            g_autofree char *p = g_strdup_printf("%s/%s", dpath, name);
            if (existing) {
                /* O_TRUNC then write */
                uint64_t ino = live(c, p), fh;
                g_assert_cmpint(core_open(c, ino, O_RDWR | O_TRUNC, &fh, &e), ==, 0);
                if (len)
                    g_assert_cmpint(core_write(c, ino, fh, buf, len, 0, &e), ==, (gssize)len);
                core_release(c, ino, fh, NULL);
                g_byte_array_set_size(mget(m, existing)->data, 0);
                g_byte_array_append(mget(m, existing)->data, buf, (guint)len);
            } else {
                g_assert_cmpint(ctu_write(c, p, 0, buf, len), ==, 0);
                MInode *n = minode_new(M_FILE);
                g_byte_array_append(n->data, buf, (guint)len);
                g_hash_table_insert(m->inodes, GINT_TO_POINTER(next_id), n);
                g_hash_table_insert(mget(m, dir)->children, g_strdup(name), GINT_TO_POINTER(next_id));
                next_id++;
            }
        } else if (op < 37) { /* write a range */
            int i = pick(r, ents, M_FILE, m);
            if (i < 0)
                continue;
            MEntry *en = &g_array_index(ents, MEntry, i);
            MInode *n = mget(m, en->id);
            size_t off = (size_t)g_rand_int_range(r, 0, (gint32)n->data->len + 5000);
            size_t len = (size_t)g_rand_int_range(r, 1, 70000);
            rand_bytes(r, buf, len);
            g_assert_cmpint(ctu_write(c, en->path, off, buf, len), ==, 0);
            if (n->data->len < off + len) {
                guint old = n->data->len;
                g_byte_array_set_size(n->data, (guint)(off + len));
                memset(n->data->data + old, 0, off + len - old);
            }
            memcpy(n->data->data + off, buf, len);
        } else if (op < 45) { /* truncate */
            int i = pick(r, ents, M_FILE, m);
            if (i < 0)
                continue;
            MEntry *en = &g_array_index(ents, MEntry, i);
            MInode *n = mget(m, en->id);
            size_t size = (size_t)g_rand_int_range(r, 0, (gint32)n->data->len * 2 + 10);
            struct stat in = { .st_size = (off_t)size }, out;
            g_assert_cmpint(core_setattr(c, live(c, en->path), &in, CORE_SET_SIZE, &out, &e), ==, 0);
            guint old = n->data->len;
            g_byte_array_set_size(n->data, (guint)size);
            if (size > old)
                memset(n->data->data + old, 0, size - old);
        } else if (op < 53) { /* rename */
            if (!ents->len)
                continue;
            MEntry *en = &g_array_index(ents, MEntry, g_rand_int_range(r, 0, (gint32)ents->len));
            int dir = pick_dir(r, ents, m, &dpath);
            const char *name = NAMES[g_rand_int_range(r, 0, 8)];
            MInode *src = mget(m, en->id);
            int dst = GPOINTER_TO_INT(g_hash_table_lookup(mget(m, dir)->children, name));
            /* target directory inside the moved directory? */
            bool below = false;
            if (src->type == M_DIR) {
                g_autofree char *pre = g_strdup_printf("%s/", en->path);
                below = dir == en->id || g_str_has_prefix(dpath, pre);
            }
            int expect = 0;
            if (dst == en->id)
                expect = 0;
            else if (below)
                expect = -EINVAL;
            else if (dst) {
                MInode *d = mget(m, dst);
                if (src->type == M_DIR && d->type != M_DIR)
                    expect = -ENOTDIR;
                else if (src->type != M_DIR && d->type == M_DIR)
                    expect = -EISDIR;
                else if (d->type == M_DIR && g_hash_table_size(d->children))
                    expect = -ENOTEMPTY;
            }
            int got;
            {
                g_autofree char *sdir = g_strndup(en->path, strlen(en->path) - strlen(en->name) - 1);
                got = core_rename(c, live(c, sdir), en->name, live(c, dpath), name, 0, &e);
                g_clear_error(&e);
            }
            g_assert_cmpint(got, ==, expect);
            if (got == 0 && dst != en->id) {
                if (dst) {
                    g_hash_table_remove(mget(m, dir)->children, name);
                    drop_unlinked(m, dst);
                }
                g_hash_table_remove(mget(m, en->parent)->children, en->name);
                g_hash_table_insert(mget(m, dir)->children, g_strdup(name), GINT_TO_POINTER(en->id));
            }
        } else if (op < 59) { /* hard link */
            int i = pick(r, ents, M_FILE, m);
            if (i < 0)
                continue;
            MEntry *en = &g_array_index(ents, MEntry, i);
            int dir = pick_dir(r, ents, m, &dpath);
            const char *name = NAMES[g_rand_int_range(r, 0, 8)];
            struct stat st;
            int got = core_link(c, live(c, en->path), live(c, dpath), name, &st, &e);
            g_clear_error(&e);
            if (g_hash_table_contains(mget(m, dir)->children, name)) {
                g_assert_cmpint(got, ==, -EEXIST);
            } else {
                g_assert_cmpint(got, ==, 0);
                core_forget(c, st.st_ino, 1);
                g_hash_table_insert(mget(m, dir)->children, g_strdup(name), GINT_TO_POINTER(en->id));
            }
        } else if (op < 66) { /* unlink / rmdir */
            if (!ents->len)
                continue;
            MEntry *en = &g_array_index(ents, MEntry, g_rand_int_range(r, 0, (gint32)ents->len));
            MInode *n = mget(m, en->id);
            g_autofree char *sdir = g_strndup(en->path, strlen(en->path) - strlen(en->name) - 1);
            int got;
            if (n->type == M_DIR) {
                got = core_rmdir(c, live(c, sdir), en->name, &e);
                g_assert_cmpint(got, ==, g_hash_table_size(n->children) ? -ENOTEMPTY : 0);
            } else {
                got = core_unlink(c, live(c, sdir), en->name, &e);
                g_assert_cmpint(got, ==, 0);
            }
            g_clear_error(&e);
            if (got == 0) {
                g_hash_table_remove(mget(m, en->parent)->children, en->name);
                drop_unlinked(m, en->id);
            }
        } else if (op < 73) { /* mkdir or symlink */
            int dir = pick_dir(r, ents, m, &dpath);
            const char *name = NAMES[g_rand_int_range(r, 0, 8)];
            bool exists = g_hash_table_contains(mget(m, dir)->children, name);
            bool sym = g_rand_boolean(r);
            struct stat st;
            g_autofree char *target = g_strdup_printf("target-%d", g_rand_int_range(r, 0, 1000));
            int got = sym ? core_symlink(c, target, live(c, dpath), name, &cred, &st, &e)
                          : core_mkdir(c, live(c, dpath), name, 0755, &cred, &st, &e);
            g_clear_error(&e);
            g_assert_cmpint(got, ==, exists ? -EEXIST : 0);
            if (!exists) {
                core_forget(c, st.st_ino, 1);
                MInode *n = minode_new(sym ? M_LINK : M_DIR);
                n->target = sym ? g_strdup(target) : NULL;
                g_hash_table_insert(m->inodes, GINT_TO_POINTER(next_id), n);
                g_hash_table_insert(mget(m, dir)->children, g_strdup(name), GINT_TO_POINTER(next_id));
                next_id++;
            }
        } else if (op < 79) { /* setxattr / removexattr */
            if (!ents->len)
                continue;
            MEntry *en = &g_array_index(ents, MEntry, g_rand_int_range(r, 0, (gint32)ents->len));
            MInode *n = mget(m, en->id);
            g_autofree char *xn = g_strdup_printf("user.k%d", g_rand_int_range(r, 0, 3));
            uint64_t ino = live(c, en->path);
            if (g_rand_int_range(r, 0, 4) == 0) {
                int got = core_removexattr(c, ino, xn, &e);
                g_clear_error(&e);
                g_assert_cmpint(got, ==, g_hash_table_contains(n->xattrs, xn) ? 0 : -ENODATA);
                g_hash_table_remove(n->xattrs, xn);
            } else {
                g_autofree char *val = g_strdup_printf("v%u", g_rand_int(r));
                g_assert_cmpint(core_setxattr(c, ino, xn, val, strlen(val), 0, &e), ==, 0);
                g_hash_table_insert(n->xattrs, g_strdup(xn), g_bytes_new(val, strlen(val)));
            }
        } else if (op < 85) { /* snapshot create */
            if (snaps->len >= 3)
                continue;
            MSnap *sn = g_new0(MSnap, 1);
            sn->name = g_strdup_printf("snap%d", next_snap++);
            sn->m = model_copy(m);
            g_assert_cmpint(core_snapshot_create(c, sn->name, &e), ==, 0);
            g_ptr_array_add(snaps, sn);
        } else if (op < 89) { /* snapshot delete */
            if (!snaps->len)
                continue;
            guint i = (guint)g_rand_int_range(r, 0, (gint32)snaps->len);
            MSnap *sn = snaps->pdata[i];
            g_assert_cmpint(core_snapshot_delete(c, sn->name, &e), ==, 0);
            g_free(sn->name);
            model_free(sn->m);
            g_free(sn);
            g_ptr_array_remove_index(snaps, i);
        } else if (op < 94) { /* flush + cache drop: reads come from tape */
            g_assert_cmpint(core_flush_all(c, &e), ==, 0);
            g_assert_cmpint(core_drop_cache(c, &e), ==, 0);
            CoreStatus cs;
            core_status(c, &cs, NULL);
            g_assert_cmpuint(cs.dirty_bytes, ==, 0);
        } else if (op < 97) { /* sync */
            g_assert_cmpint(core_sync(c, &e), ==, 0);
        } else { /* reopen */
            ctu_close(s);
            ctu_reopen(s, NULL);
        }
        g_assert_no_error(e);
        /* After every step: the live tree and every kept snapshot. */
        compare(s->core, CORE_ROOT_INO, m);
        for (guint i = 0; i < snaps->len; i++) {
            MSnap *sn = snaps->pdata[i];
            g_autofree char *p = g_strdup_printf("/%s/%s", CORE_SNAPDIR_NAME, sn->name);
            uint64_t root = ctu_resolve(s->core, CORE_ROOT_INO, p);
            g_assert_cmpuint(root, !=, 0);
            compare(s->core, root, sn->m);
        }
    }
    /* The walk did go to tape and back. */
    CoreStatus cs;
    g_assert_cmpint(core_status(s->core, &cs, &e), ==, 0);
    g_assert_cmpuint(cs.dumpfiles, >, 0);
    g_assert_cmpuint(cs.bytes_recalled, >, 0);
    ctu_assert_clean(s->core, true);
    for (guint i = 0; i < snaps->len; i++) {
        MSnap *sn = snaps->pdata[i];
        g_free(sn->name);
        model_free(sn->m);
        g_free(sn);
    }
    g_ptr_array_unref(snaps);
    g_free(buf);
    model_free(m);
    ctu_free(s);
    g_rand_free(r);
}

static void test_seed(gconstpointer data)
{
    guint32 seed = GPOINTER_TO_UINT(data);
    int steps = 200;
    const char *env = g_getenv("TAPEFS_MODEL_STEPS");
    if (env)
        steps = atoi(env);
    run_seed(seed, steps);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    static const guint32 seeds[] = { 1, 2, 3, 4, 5 };
    for (size_t i = 0; i < G_N_ELEMENTS(seeds); i++) {
        g_autofree char *name = g_strdup_printf("/core/model/seed-%u", seeds[i]);
        g_test_add_data_func(name, GUINT_TO_POINTER(seeds[i]), test_seed);
    }
    return g_test_run();
}
