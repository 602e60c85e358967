/* cache_label.c — the cache directory's label and its lock.
 *
 * The label (file "cache.label") says which store a cache directory
 * belongs to, in which format and with which block size:
 *
 *     tapefs-cache 1
 *     store_id=<text>
 *     block_size=<bytes>
 *     xxh3=<16 hex digits: XXH3-64 of every byte above this line>
 *
 * The version is read first, so a label of an unknown version is refused
 * as such; then the checksum, then the fields. A directory without a label
 * is labelled only if it is empty. The label is written to a temporary
 * file, fsync'ed and renamed (cache_replace_file), so it is either absent
 * or whole.
 *
 * The lock file "cache.lock" is held with flock() while the cache is open,
 * so a second open of the same directory is refused.
 *
 * Locks: none (called from cache_open before the cache is shared).
 */
#include "cache/cache_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <xxhash.h>

#define LABEL_NAME "cache.label"
#define LOCK_NAME "cache.lock"
#define LABEL_MAGIC "tapefs-cache"
#define LABEL_VERSION 1

static bool dir_is_empty(const char *dir, bool *empty, GError **err)
{
    DIR *d = opendir(dir);
    if (!d) {
        cache_fail(err, errno, "cannot read cache directory %s: %s", dir,
                   g_strerror(errno));
        return false;
    }
    *empty = true;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        /* The lock file and a label left half-made by a crash do not
         * count. */
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            strcmp(e->d_name, LOCK_NAME) &&
            strcmp(e->d_name, LABEL_NAME ".tmp")) {
            *empty = false;
            break;
        }
    }
    closedir(d);
    return true;
}

static int label_write(Cache *c, const char *path, uint32_t block_size,
                       GError **err)
{
    g_autofree char *body = g_strdup_printf(
        LABEL_MAGIC " %d\nstore_id=%s\nblock_size=%" PRIu32 "\n",
        LABEL_VERSION, c->store_id, block_size);
    uint64_t sum = XXH3_64bits(body, strlen(body));
    g_autofree char *text = g_strdup_printf("%sxxh3=%016" PRIx64 "\n", body,
                                            sum);
    return cache_replace_file(c, path, text, strlen(text), false,
                              "cache label", err);
}

/* Parses "key=value\n" at *p; advances *p past the line. */
static bool take_field(const char **p, const char *key, char **value)
{
    size_t kl = strlen(key);
    if (strncmp(*p, key, kl) != 0 || (*p)[kl] != '=')
        return false;
    const char *v = *p + kl + 1;
    const char *nl = strchr(v, '\n');
    if (!nl)
        return false;
    *value = g_strndup(v, (gsize)(nl - v));
    *p = nl + 1;
    return true;
}

static int label_parse(Cache *c, const char *path, const char *text,
                       size_t len, uint32_t *block_size, GError **err)
{
    if (strlen(text) != len)
        return cache_fail(err, EBADMSG, "cache label %s is damaged "
                          "(contains NUL bytes)", path);
    int version = 0;
    char magic[16] = "";
    if (sscanf(text, "%15s %d", magic, &version) != 2 ||
        strcmp(magic, LABEL_MAGIC) != 0)
        return cache_fail(err, EBADMSG, "%s is not a tapefs cache label",
                          path);
    if (version != LABEL_VERSION)
        return cache_fail(err, ENOTSUP, "cache directory %s has format "
                          "version %d; this tapefs reads version %d", c->dir,
                          version, LABEL_VERSION);
    const char *sumline = strstr(text, "\nxxh3=");
    if (!sumline)
        return cache_fail(err, EBADMSG, "cache label %s is damaged "
                          "(no checksum)", path);
    size_t body_len = (size_t)(sumline - text) + 1;
    char *end = NULL;
    errno = 0;
    uint64_t want = g_ascii_strtoull(sumline + 6, &end, 16);
    if (errno || end != sumline + 6 + 16 || *end != '\n' || end[1] != '\0' ||
        want != XXH3_64bits(text, body_len))
        return cache_fail(err, EBADMSG, "cache label %s is damaged "
                          "(checksum mismatch)", path);

    const char *p = strchr(text, '\n') + 1;
    g_autofree char *store = NULL, *bs = NULL;
    if (!take_field(&p, "store_id", &store) ||
        !take_field(&p, "block_size", &bs) || p != text + body_len)
        return cache_fail(err, EBADMSG, "cache label %s is damaged "
                          "(bad fields)", path);
    guint64 bsv = 0;
    if (!g_ascii_string_to_unsigned(bs, 10, 4096, 1u << 30, &bsv, NULL) ||
        (bsv & (bsv - 1)) != 0)
        return cache_fail(err, EBADMSG, "cache label %s is damaged "
                          "(bad block size %s)", path, bs);
    if (strcmp(store, c->store_id) != 0)
        return cache_fail(err, EMEDIUMTYPE, "cache directory %s belongs to "
                          "store %s, not %s", c->dir, store, c->store_id);
    *block_size = (uint32_t)bsv;
    return 0;
}

int cache_label_check(Cache *c, uint32_t *block_size, bool *missing,
                      GError **err)
{
    g_autofree char *path = g_build_filename(c->dir, LABEL_NAME, NULL);
    g_autofree char *text = NULL;
    gsize len = 0;
    GError *e = NULL;
    *missing = false;
    if (!g_file_get_contents(path, &text, &len, &e)) {
        bool absent = g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT);
        g_autofree char *msg = g_strdup(e->message);
        g_clear_error(&e);
        if (!absent)
            return cache_fail(err, EIO, "cannot read cache label: %s", msg);
        bool empty = false;
        if (!dir_is_empty(c->dir, &empty, err))
            return -EIO;
        if (!empty)
            return cache_fail(err, ENOTEMPTY, "%s is not empty and has no "
                              "cache label; refusing to use it as a cache "
                              "directory", c->dir);
        *missing = true;
        return 0;
    }
    uint32_t found = 0;
    int r = label_parse(c, path, text, len, &found, err);
    if (r < 0)
        return r;
    if (*block_size && *block_size != found)
        return cache_fail(err, EINVAL, "cache directory %s has block size "
                          "%" PRIu32 ", not %" PRIu32, c->dir, found,
                          *block_size);
    *block_size = found;
    return 0;
}

int cache_label_create(Cache *c, uint32_t *block_size, GError **err)
{
    g_autofree char *path = g_build_filename(c->dir, LABEL_NAME, NULL);
    g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
    unlink(tmp);
    bool empty = false;
    if (!dir_is_empty(c->dir, &empty, err))
        return -EIO;
    if (!empty) /* someone else labelled it between check and lock */
        return cache_fail(err, EBUSY, "cache directory %s changed while "
                          "being opened", c->dir);
    uint32_t bs = *block_size ? *block_size : 65536;
    int r = label_write(c, path, bs, err);
    if (r == 0)
        *block_size = bs;
    return r;
}

int cache_dir_lock(Cache *c, GError **err)
{
    g_autofree char *path = g_build_filename(c->dir, LOCK_NAME, NULL);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return cache_fail(err, errno, "cannot open %s: %s", path,
                          g_strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return cache_fail(err, EBUSY, "cache directory %s is in use by "
                              "another process", c->dir);
        return cache_fail(err, e, "cannot lock %s: %s", path, g_strerror(e));
    }
    c->lock_fd = fd;
    return 0;
}
