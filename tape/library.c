/* library.c — a library of virtual volumes (one directory per volume under
 * the library directory) and its changer: format, open, add volumes, load
 * the first writable volume or a named one, mark volumes full.
 *
 * Locks: TapeLibrary.lock guards the volumes array and every volume's
 * mutable state (see volume.h). It is never held across file I/O except
 * the tiny `full` marker write, and never while calling out. */
#include "tape/volume.h"

#include "tape/fileio.h"
#include "tape/tape_error.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void volume_free(gpointer p)
{
    TapeVolume *v = p;
    g_free(v->dir);
    g_free(v);
}

/* Subdirectory names of `dir`, sorted; NULL with an error if unreadable. */
static GPtrArray *list_subdirs(const char *dir, GError **err)
{
    GError *derr = NULL;
    GDir *d = g_dir_open(dir, 0, &derr);
    if (!d) {
        int code = g_error_matches(derr, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                       ? ENOENT : EIO;
        tape_fail(err, code, "cannot open library %s: %s", dir, derr->message);
        g_error_free(derr);
        return NULL;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        if (g_file_test(path, G_FILE_TEST_IS_DIR))
            g_ptr_array_add(names, g_strdup(name));
    }
    g_dir_close(d);
    g_ptr_array_sort(names, cmp_names);
    return names;
}

static uint64_t default_margin(uint64_t capacity, uint32_t block_size)
{
    return tape_label_min_margin(capacity, block_size);
}

/* Create and label volume number `index` (1-based) in `dir`. */
static int create_volume(const char *dir, unsigned index, const TapeLabel *proto,
                         GError **err)
{
    TapeLabel l = *proto;
    g_snprintf(l.volume, sizeof l.volume, "vol%03u", index);
    int rc = tape_label_validate(&l, err);
    if (rc < 0)
        return rc;
    g_autofree char *voldir = g_build_filename(dir, l.volume, NULL);
    if (g_mkdir(voldir, 0755) < 0)
        return tape_fail(err, errno == EEXIST ? EEXIST : errno,
                         "cannot create volume %s: %s", voldir,
                         g_strerror(errno));
    rc = tape_label_write(voldir, &l, err);
    if (rc < 0)
        return rc;
    return tape_fsync_dir(dir) < 0 ? tape_fail(err, EIO, "cannot sync %s",
                                               dir) : 0;
}

int tape_library_format_with_margin(const char *dir, const char *store_id,
                                    unsigned nvolumes, uint64_t volume_size,
                                    uint32_t block_size, uint64_t leom_margin,
                                    GError **err)
{
    if (!dir || !store_id)
        return tape_fail(err, EINVAL, "library directory and store id are "
                         "required");
    if (nvolumes == 0 || nvolumes > TAPE_MAX_VOLUMES)
        return tape_fail(err, EINVAL, "number of volumes must be 1 to %d",
                         TAPE_MAX_VOLUMES);
    TapeLabel proto = {.version = TAPE_LABEL_VERSION,
                       .block_size = block_size,
                       .capacity = volume_size};
    if (strlen(store_id) > TAPE_STORE_ID_LEN)
        return tape_fail(err, EINVAL, "store id is longer than %d characters",
                         TAPE_STORE_ID_LEN);
    g_strlcpy(proto.store_id, store_id, sizeof proto.store_id);
    g_strlcpy(proto.volume, "vol001", sizeof proto.volume);
    if (block_size >= 512)
        proto.leom_margin = leom_margin ? leom_margin
                                        : default_margin(volume_size,
                                                         block_size);
    int rc = tape_label_validate(&proto, err);
    if (rc < 0)
        return rc;
    if (g_mkdir_with_parents(dir, 0755) < 0)
        return tape_fail(err, errno, "cannot create library %s: %s", dir,
                         g_strerror(errno));
    GPtrArray *existing = list_subdirs(dir, err);
    if (!existing)
        return -EIO;
    unsigned n = existing->len;
    g_ptr_array_unref(existing);
    if (n > 0)
        return tape_fail(err, EEXIST, "%s already holds volumes; a library "
                         "is never formatted twice", dir);
    for (unsigned i = 1; i <= nvolumes; i++) {
        rc = create_volume(dir, i, &proto, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int tape_library_format(const char *dir, const char *store_id,
                        unsigned nvolumes, uint64_t volume_size,
                        uint32_t block_size, GError **err)
{
    return tape_library_format_with_margin(dir, store_id, nvolumes,
                                           volume_size, block_size, 0, err);
}

TapeLibrary *tape_library_open(const char *dir, const char *store_id,
                               GError **err)
{
    if (!dir) {
        tape_fail(err, EINVAL, "no library directory given");
        return NULL;
    }
    GPtrArray *names = list_subdirs(dir, err);
    if (!names)
        return NULL;
    TapeLibrary *lib = g_new0(TapeLibrary, 1);
    g_mutex_init(&lib->lock);
    lib->dir = g_strdup(dir);
    lib->volumes = g_ptr_array_new_with_free_func(volume_free);
    int rc = 0;
    if (names->len == 0)
        rc = tape_fail(err, ENOENT, "library %s holds no volumes", dir);
    for (unsigned i = 0; rc == 0 && i < names->len; i++) {
        const char *name = names->pdata[i];
        TapeVolume *v = g_new0(TapeVolume, 1);
        g_strlcpy(v->name, name, sizeof v->name);
        v->dir = g_build_filename(dir, name, NULL);
        g_ptr_array_add(lib->volumes, v);
        rc = tape_label_read(v->dir, name, &v->label, err);
        if (rc < 0)
            break;
        if (strcmp(v->label.volume, name) != 0) {
            rc = tape_fail(err, EIO, "%s: directory holds the label of volume "
                           "%s", name, v->label.volume);
            break;
        }
        const char *want = store_id ? store_id
                           : i > 0 ? lib->store_id : NULL;
        if (want && strcmp(v->label.store_id, want) != 0) {
            rc = tape_fail(err, EMEDIUMTYPE, "%s is labelled for store %s, "
                           "not %s; refusing it", name, v->label.store_id,
                           want);
            break;
        }
        if (i == 0) {
            g_strlcpy(lib->store_id, v->label.store_id, sizeof lib->store_id);
            lib->block_size = v->label.block_size;
        } else if (v->label.block_size != lib->block_size) {
            rc = tape_fail(err, EIO, "%s: block size %u differs from the "
                           "library's %u", name, v->label.block_size,
                           lib->block_size);
            break;
        }
        rc = tape_volume_scan(v, err);
    }
    g_ptr_array_unref(names);
    if (rc < 0) {
        tape_library_close(lib);
        return NULL;
    }
    return lib;
}

void tape_library_close(TapeLibrary *lib)
{
    if (!lib)
        return;
    g_ptr_array_unref(lib->volumes);
    g_free(lib->dir);
    g_mutex_clear(&lib->lock);
    g_free(lib);
}

int tape_library_add_volumes(TapeLibrary *lib, unsigned n,
                             uint64_t volume_size, GError **err)
{
    g_mutex_lock(&lib->lock);
    unsigned have = lib->volumes->len;
    TapeVolume *first = lib->volumes->pdata[0];
    TapeLabel proto = first->label;
    g_mutex_unlock(&lib->lock);
    if (n == 0 || have + n > TAPE_MAX_VOLUMES)
        return tape_fail(err, EINVAL, "a library holds 1 to %d volumes",
                         TAPE_MAX_VOLUMES);
    proto.capacity = volume_size;
    proto.leom_margin = MAX(proto.leom_margin,
                            default_margin(volume_size, proto.block_size));
    int rc = tape_label_validate(&proto, err);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < n; i++) {
        unsigned index = have + i + 1;
        rc = create_volume(lib->dir, index, &proto, err);
        if (rc < 0)
            return rc;
        TapeVolume *v = g_new0(TapeVolume, 1);
        g_snprintf(v->name, sizeof v->name, "vol%03u", index);
        v->dir = g_build_filename(lib->dir, v->name, NULL);
        v->label = proto;
        g_strlcpy(v->label.volume, v->name, sizeof v->label.volume);
        g_mutex_lock(&lib->lock);
        g_ptr_array_add(lib->volumes, v);
        g_mutex_unlock(&lib->lock);
    }
    return 0;
}

const char *tape_library_store_id(TapeLibrary *lib)
{
    return lib->store_id;
}

uint32_t tape_library_block_size(TapeLibrary *lib)
{
    return lib->block_size;
}

GArray *tape_library_volumes(TapeLibrary *lib)
{
    GArray *a = g_array_new(FALSE, TRUE, sizeof(TapeVolumeInfo));
    g_mutex_lock(&lib->lock);
    for (unsigned i = 0; i < lib->volumes->len; i++) {
        TapeVolume *v = lib->volumes->pdata[i];
        TapeVolumeInfo info = {.capacity = v->label.capacity,
                               .used = v->used,
                               .nfiles = v->nfiles,
                               .full = v->full};
        g_strlcpy(info.name, v->name, sizeof info.name);
        g_array_append_val(a, info);
    }
    g_mutex_unlock(&lib->lock);
    return a;
}

static bool writable_locked(const TapeVolume *v)
{
    return !v->full && !v->writer &&
           v->used + v->label.leom_margin < v->label.capacity;
}

TapeDevice *tape_library_load_writable(TapeLibrary *lib, GError **err)
{
    TapeVolume *pick = NULL;
    g_mutex_lock(&lib->lock);
    for (unsigned i = 0; i < lib->volumes->len && !pick; i++) {
        TapeVolume *v = lib->volumes->pdata[i];
        if (writable_locked(v)) {
            v->writer = true;
            pick = v;
        }
    }
    g_mutex_unlock(&lib->lock);
    if (!pick) {
        tape_fail(err, ENOSPC, "library %s is full: no writable volume left",
                  lib->dir);
        return NULL;
    }
    TapeDevice *dev = tape_device_open(lib, pick, true, err);
    if (!dev) {
        g_mutex_lock(&lib->lock);
        pick->writer = false;
        g_mutex_unlock(&lib->lock);
    }
    return dev;
}

TapeDevice *tape_library_load(TapeLibrary *lib, const char *volume,
                              GError **err)
{
    TapeVolume *pick = NULL;
    g_mutex_lock(&lib->lock);
    for (unsigned i = 0; volume && i < lib->volumes->len && !pick; i++) {
        TapeVolume *v = lib->volumes->pdata[i];
        if (strcmp(v->name, volume) == 0)
            pick = v;
    }
    g_mutex_unlock(&lib->lock);
    if (!pick) {
        tape_fail(err, ENOENT, "no volume %s in library %s",
                  volume ? volume : "(null)", lib->dir);
        return NULL;
    }
    return tape_device_open(lib, pick, false, err);
}

void tape_library_mark_full(TapeLibrary *lib, TapeDevice *dev)
{
    TapeVolume *v = tape_device_volume_rec(dev);
    g_mutex_lock(&lib->lock);
    bool was = v->full;
    v->full = true;
    g_mutex_unlock(&lib->lock);
    if (was)
        return;
    /* Best effort: without the marker a restarted library still finds the
     * volume past LEOM or only appends after its last file. */
    g_autofree char *path = g_build_filename(v->dir, TAPE_FULL_MARKER, NULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
        (void)tape_fsync_dir(v->dir);
    }
}
