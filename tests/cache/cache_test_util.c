/* cache_test_util.c — see cache_test_util.h. No shared state, no locks. */
#include "cache_test_util.h"

#include <dirent.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *ct_tmpdir(void)
{
    GError *e = NULL;
    char *d = g_dir_make_tmp("tapefs-cache-test-XXXXXX", &e);
    g_assert_no_error(e);
    return d;
}

void ct_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        g_autofree char *p = g_build_filename(dir, e->d_name, NULL);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            ct_rmtree(p);
        else
            g_unlink(p);
    }
    closedir(d);
    g_rmdir(dir);
}

void ct_config(CacheConfig *cfg, const char *dir)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dir = dir;
    cfg->store_id = "store-A";
    cfg->block_size = 4096;
    cfg->cache_on_read = true;
    cfg->mode = CACHE_WRITEBACK;
    cfg->fill = ct_fill_fn;
}

uint8_t ct_pattern(uint64_t id, uint64_t off)
{
    uint64_t x = (id * 0x9E3779B97F4A7C15ull) ^ (off / 8 * 0xBF58476D1CE4E5B9ull);
    x ^= x >> 31;
    return (uint8_t)((x >> ((off % 8) * 8)) ^ (off % 251));
}

void ct_fill_pattern(uint64_t id, uint64_t off, void *buf, size_t len)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = ct_pattern(id, off + i);
}

int ct_fill_fn(void *owner, uint64_t id, uint64_t off, void *buf, size_t len)
{
    if (owner)
        g_atomic_int_inc((gint *)owner);
    ct_fill_pattern(id, off, buf, len);
    return 0;
}

Cache *ct_open(const CacheConfig *cfg)
{
    GError *e = NULL;
    Cache *c = cache_open(cfg, &e);
    g_assert_no_error(e);
    g_assert_nonnull(c);
    return c;
}

void ct_fixture_setup(CtFixture *f, gconstpointer data)
{
    (void)data;
    f->dir = ct_tmpdir();
    ct_config(&f->cfg, f->dir);
    f->fills = 0;
    f->cfg.owner = &f->fills;
}

void ct_fixture_teardown(CtFixture *f, gconstpointer data)
{
    (void)data;
    ct_rmtree(f->dir);
    g_free(f->dir);
}

int ct_open_data_files(void)
{
    GDir *d = g_dir_open("/proc/self/fd", 0, NULL);
    g_assert_nonnull(d);
    int n = 0;
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree char *p = g_build_filename("/proc/self/fd", name, NULL);
        g_autofree char *target = g_file_read_link(p, NULL);
        if (target && g_str_has_suffix(target, ".data"))
            n++;
    }
    g_dir_close(d);
    return n;
}
