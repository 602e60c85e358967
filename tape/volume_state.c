/* volume_state.c — derive a virtual volume's state (tape files written,
 * bytes used, full flag) from its directory, so that it survives restarts
 * and crashes: every tape file ever started is a file `fileNNNNNN` (an
 * unfinished one stays as a failed tape file) and a volume marked full
 * holds the empty marker file `full`. Called before the volume is shared;
 * takes no locks. */
#include "tape/volume.h"

#include "tape/tape_error.h"

#include <errno.h>
#include <sys/stat.h>

char *tape_volume_file_path(const TapeVolume *vol, uint32_t fileno)
{
    return g_strdup_printf("%s/file%06u", vol->dir, fileno);
}

static bool parse_file_name(const char *name, uint32_t *fileno)
{
    if (strncmp(name, "file", 4) != 0 || !name[4])
        return false;
    guint64 v;
    if (!g_ascii_string_to_unsigned(name + 4, 10, 0, G_MAXUINT32 - 1, &v,
                                    NULL))
        return false;
    for (const char *p = name + 4; *p; p++)
        if (!g_ascii_isdigit(*p))
            return false;
    *fileno = (uint32_t)v;
    return true;
}

int tape_volume_scan(TapeVolume *vol, GError **err)
{
    GError *derr = NULL;
    GDir *d = g_dir_open(vol->dir, 0, &derr);
    if (!d) {
        int rc = tape_fail(err, EIO, "%s: cannot list volume: %s", vol->name,
                           derr->message);
        g_error_free(derr);
        return rc;
    }
    uint64_t used = 0;
    uint32_t nfiles = 0;
    bool full = false;
    const char *name;
    int rc = 0;
    while ((name = g_dir_read_name(d))) {
        uint32_t fileno;
        if (strcmp(name, TAPE_FULL_MARKER) == 0) {
            full = true;
        } else if (parse_file_name(name, &fileno)) {
            g_autofree char *path = g_build_filename(vol->dir, name, NULL);
            struct stat st;
            if (stat(path, &st) < 0) {
                rc = tape_fail(err, EIO, "%s: cannot stat %s: %s", vol->name,
                               name, g_strerror(errno));
                break;
            }
            used += (uint64_t)st.st_size;
            nfiles = MAX(nfiles, fileno + 1);
        }
    }
    g_dir_close(d);
    if (rc < 0)
        return rc;
    vol->used = used;
    vol->nfiles = nfiles;
    vol->full = full;
    vol->writer = false;
    return 0;
}
