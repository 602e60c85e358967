/* volume.h — what library.c, vtape.c and part_reader.c share inside tape/:
 * the library and volume records and the device hooks into them. Internal
 * to tape/.
 *
 * Locks: TapeLibrary.lock guards every volume's mutable state (used,
 * nfiles, full, writer) and the volumes array itself (append-only; a
 * TapeVolume never moves or dies before the library is closed). The
 * immutable parts of a volume (name, dir, label) are read without it.
 * Device code takes TapeLibrary.lock only briefly and never holds it while
 * doing I/O. */
#pragma once

#include "tape/label.h"
#include "tape/tape.h"

#define TAPE_FULL_MARKER "full"
#define TAPE_MAX_VOLUMES 999

typedef struct {
    char name[TAPE_VOLUME_NAME_MAX];
    char *dir;          /* the volume's directory */
    TapeLabel label;
    /* guarded by TapeLibrary.lock */
    uint64_t used;      /* bytes of all tape files, including failed ones */
    uint32_t nfiles;    /* next tape file number */
    bool full;
    bool writer;        /* loaded for writing by some device */
} TapeVolume;

struct TapeLibrary {
    GMutex lock;
    char *dir;
    char store_id[TAPE_STORE_ID_LEN + 1];
    uint32_t block_size;
    GPtrArray *volumes; /* TapeVolume *, in name order */
};

/* Path of tape file `fileno` of a volume (g_free). */
char *tape_volume_file_path(const TapeVolume *vol, uint32_t fileno);

/* Derive a volume's state from its directory: the tape files present
 * (their number and sizes, unfinished ones included) and the full marker.
 * -EIO if the directory cannot be listed. */
int tape_volume_scan(TapeVolume *vol, GError **err);

/* vtape.c: create a device on `vol`, reading its fault rules. A writable
 * device must hold the volume's writer flag (set by the changer). */
TapeDevice *tape_device_open(TapeLibrary *lib, TapeVolume *vol,
                             bool writable, GError **err);
TapeVolume *tape_device_volume_rec(TapeDevice *dev);
/* The trailer of the file positioned by tape_device_seek_file, or NULL. */
const TapePartTrailer *tape_device_trailer(TapeDevice *dev);
