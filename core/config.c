/* config.c — the store's configuration file (STORE/config): a versioned
 * text file of key=value lines ending with an XXH3-64 checksum line over
 * everything before it. No state, no locks. Format: docs/FORMATS.md. */
#include "core/core_private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define CONFIG_MAGIC "tapefs-store"
#define CONFIG_VERSION 1

int config_write(const char *path, const StoreConfig *cfg, GError **err)
{
    g_autoptr(GString) s = g_string_new(NULL);
    g_string_append_printf(s, "%s %u\n", CONFIG_MAGIC, CONFIG_VERSION);
    g_string_append_printf(s, "store_id=%s\n", cfg->store_id);
    g_string_append_printf(s, "block_size=%u\n", cfg->block_size);
    g_string_append_printf(s, "part_size=%" G_GUINT64_FORMAT "\n", cfg->part_size);
    g_string_append_printf(s, "volume_size=%" G_GUINT64_FORMAT "\n", cfg->volume_size);
    g_string_append_printf(s, "volumes=%u\n", cfg->volumes);
    g_string_append_printf(s, "library=%s\n", cfg->library ? cfg->library : "library");
    uint64_t h = XXH3_64bits(s->str, s->len);
    g_string_append_printf(s, "xxh3=%016" G_GINT64_MODIFIER "x\n", (guint64)h);
    g_autofree char *tmp = g_strdup_printf("%s.tmp", path);
    GError *e = NULL;
    if (!g_file_set_contents(tmp, s->str, (gssize)s->len, &e)) {
        int r = core_fail_from(err, e, EIO, "writing the store configuration");
        g_error_free(e);
        return r;
    }
    if (g_rename(tmp, path) != 0)
        return core_fail(err, errno, "%s: %s", path, g_strerror(errno));
    return 0;
}

static bool parse_u64(const char *v, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || !end || *end || end == v)
        return false;
    *out = x;
    return true;
}

int config_read(const char *path, StoreConfig *cfg, GError **err)
{
    memset(cfg, 0, sizeof *cfg);
    g_autofree char *text = NULL;
    gsize len = 0;
    GError *e = NULL;
    if (!g_file_get_contents(path, &text, &len, &e)) {
        int code = e->code == G_FILE_ERROR_NOENT ? ENOENT : EIO;
        int r = core_fail(err, code, "%s: not a tapefs store (%s)", path, e->message);
        g_error_free(e);
        return r;
    }
    char *sum = strstr(text, "\nxxh3=");
    if (!sum)
        return core_fail(err, EINVAL, "%s: no checksum line", path);
    uint64_t want = XXH3_64bits(text, (size_t)(sum - text) + 1);
    uint64_t have = g_ascii_strtoull(sum + 6, NULL, 16);
    if (want != have)
        return core_fail(err, EINVAL, "%s: checksum mismatch, file damaged", path);
    *sum = 0;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    unsigned version = 0;
    if (!lines[0] || sscanf(lines[0], CONFIG_MAGIC " %u", &version) != 1)
        return core_fail(err, EINVAL, "%s: not a tapefs store configuration", path);
    if (version != CONFIG_VERSION)
        return core_fail(err, EINVAL, "%s: configuration version %u is not supported", path, version);
    cfg->version = version;
    for (int i = 1; lines[i]; i++) {
        char *eq = strchr(lines[i], '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *k = lines[i], *v = eq + 1;
        uint64_t x = 0;
        if (!strcmp(k, "store_id"))
            g_strlcpy(cfg->store_id, v, sizeof cfg->store_id);
        else if (!strcmp(k, "library")) {
            g_free(cfg->library);
            cfg->library = g_strdup(v);
        } else if (parse_u64(v, &x)) {
            if (!strcmp(k, "block_size"))
                cfg->block_size = (uint32_t)x;
            else if (!strcmp(k, "part_size"))
                cfg->part_size = x;
            else if (!strcmp(k, "volume_size"))
                cfg->volume_size = x;
            else if (!strcmp(k, "volumes"))
                cfg->volumes = (unsigned)x;
        }
    }
    if (strlen(cfg->store_id) != TAPE_STORE_ID_LEN || !cfg->block_size || !cfg->library) {
        config_clear(cfg);
        return core_fail(err, EINVAL, "%s: incomplete store configuration", path);
    }
    return 0;
}

void config_clear(StoreConfig *cfg)
{
    g_clear_pointer(&cfg->library, g_free);
}

char *config_library_path(const char *store_dir, const StoreConfig *cfg)
{
    if (g_path_is_absolute(cfg->library))
        return g_strdup(cfg->library);
    return g_build_filename(store_dir, cfg->library, NULL);
}
