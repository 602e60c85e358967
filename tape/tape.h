/* tape.h — the public interface of the tape layer.
 *
 * tape/ knows nothing of files, inodes or FUSE. It stores opaque byte
 * streams called dumpfiles on tape volumes, as one or more parts, and reads
 * any block of any part back with its checksum verified.
 *
 *   library  a changer over a set of volumes (virtual volumes: one
 *            directory per volume under the library directory)
 *   device   one loaded volume: start_file / write_block / finish_file,
 *            seek_file / read_block, end-of-medium reporting
 *   part     one tape file: header block, data blocks, trailer
 *   taper    streams one dumpfile at a time through a ring buffer to a
 *            device thread, cuts parts, retries a failed part on the next
 *            volume from the caller's slices
 *
 * Errors: functions return 0 (or a pointer) on success and a negative errno
 * (or NULL) on failure, with a one-line message in *err (domain TAPE_ERROR,
 * code = the positive errno) when err is not NULL.
 *
 * Thread safety: a TapeLibrary may be used from several threads (volume
 * state is guarded inside it). A TapeDevice, a TapePart and a TapeTaper are
 * used by one thread at a time, except that a taper's device thread runs
 * the part-done callback (see tape_taper_start).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TAPE_STORE_ID_LEN 36    /* text form of a UUID */
#define TAPE_VOLUME_NAME_MAX 32 /* including the terminating NUL */

GQuark tape_error_quark(void);
#define TAPE_ERROR (tape_error_quark())

/* ------------------------------------------------------------------ */
/* Library and changer                                                */

typedef struct TapeLibrary TapeLibrary;

typedef struct {
    char name[TAPE_VOLUME_NAME_MAX];
    uint64_t capacity;  /* bytes the volume holds */
    uint64_t used;      /* bytes taken by tape files (headers, trailers too) */
    uint32_t nfiles;    /* tape files written, including failed ones */
    bool full;          /* no more writes: end of medium or a write error */
} TapeVolumeInfo;

/* Create a library of `nvolumes` fresh virtual volumes in `dir` (created if
 * missing), each labelled for `store_id`. Existing volumes are never
 * relabelled: -EEXIST if `dir` already holds volumes. */
int tape_library_format(const char *dir, const char *store_id,
                        unsigned nvolumes, uint64_t volume_size,
                        uint32_t block_size, GError **err);
/* The same with an explicit LEOM margin in bytes (0 = the default, the
 * smallest margin that always leaves room for a part's trailer). A margin
 * below that minimum is -EINVAL. */
int tape_library_format_with_margin(const char *dir, const char *store_id,
                                    unsigned nvolumes, uint64_t volume_size,
                                    uint32_t block_size, uint64_t leom_margin,
                                    GError **err);

/* Add `n` more fresh volumes after the last one. */
int tape_library_add_volumes(TapeLibrary *lib, unsigned n,
                             uint64_t volume_size, GError **err);

/* Open the library in `dir`. With a store id, every volume must be
 * labelled for that store; a volume labelled for another store is refused
 * (-EMEDIUMTYPE) and never written. With store_id NULL (recovery), the
 * store id is taken from the labels, which must agree. */
TapeLibrary *tape_library_open(const char *dir, const char *store_id,
                               GError **err);
void tape_library_close(TapeLibrary *lib);

const char *tape_library_store_id(TapeLibrary *lib);
uint32_t tape_library_block_size(TapeLibrary *lib);

/* A snapshot of every volume's state, in name order (GArray of
 * TapeVolumeInfo; free with g_array_unref). */
GArray *tape_library_volumes(TapeLibrary *lib);

/* ------------------------------------------------------------------ */
/* Devices                                                            */

typedef struct TapeDevice TapeDevice;

typedef enum {
    TAPE_STREAMING_NONE,     /* start/stop costs nothing (virtual volumes) */
    TAPE_STREAMING_DESIRED,  /* keep the drive moving if possible */
    TAPE_STREAMING_REQUIRED, /* prebuffer a full ring before each part */
} TapeStreaming;

/* Changer: load the first volume that is not full, positioned after its
 * last tape file. -ENOSPC when every volume is full. */
TapeDevice *tape_library_load_writable(TapeLibrary *lib, GError **err);
/* Load a named volume for reading. */
TapeDevice *tape_library_load(TapeLibrary *lib, const char *volume,
                              GError **err);
/* Mark the device's volume full: it is never written again. */
void tape_library_mark_full(TapeLibrary *lib, TapeDevice *dev);
void tape_device_unload(TapeDevice *dev);

const char *tape_device_volume(TapeDevice *dev);
uint32_t tape_device_block_size(TapeDevice *dev);
TapeStreaming tape_device_streaming(TapeDevice *dev);
/* True once the logical end of medium (a margin before capacity) is past:
 * finish the current file and go to the next volume. */
bool tape_device_is_eom(TapeDevice *dev);

typedef struct {
    char store_id[TAPE_STORE_ID_LEN + 1];
    char volume[TAPE_VOLUME_NAME_MAX];
    uint64_t dumpfile_id;
    uint32_t partnum;     /* 1 for the first part of a dumpfile */
    uint64_t offset;      /* where this part's payload starts in the dumpfile */
    uint32_t block_size;
    uint32_t kind;        /* caller-defined, opaque to tape/ */
    uint64_t generation;  /* caller-defined, opaque to tape/ */
} TapePartHeader;

typedef struct {
    uint64_t length;             /* payload bytes in this part */
    uint64_t nblocks;            /* data blocks (the last may be short) */
    bool last;                   /* this part ends its dumpfile */
    uint8_t payload_xxh128[16];  /* XXH3-128 of the payload, canonical */
} TapePartTrailer;

/* Write side (the taper uses these; tests may too). start_file writes the
 * header block and returns the new tape file's number (>= 0); the header's
 * store_id, volume and block_size are filled in by the device. write_block
 * takes exactly one block (only the final block may be shorter). A write
 * past capacity (physical end of medium) or an injected fault fails with
 * -ENOSPC or -EIO; the file is then unusable and must not be finished (it
 * stays on the volume as a failed tape file). finish_file writes the
 * trailer and makes the file durable (fdatasync) before returning; the
 * trailer's length, nblocks and payload_xxh128 must match the blocks
 * written (-EINVAL otherwise; see tape_device_payload_xxh128). */
int tape_device_start_file(TapeDevice *dev, const TapePartHeader *hdr,
                           GError **err);
int tape_device_write_block(TapeDevice *dev, const void *buf, size_t len,
                            GError **err);
int tape_device_finish_file(TapeDevice *dev, const TapePartTrailer *trl,
                            GError **err);
/* XXH3-128 (canonical bytes) of the payload written so far to the current
 * tape file, computed by write_block while the data is hot. */
void tape_device_payload_xxh128(TapeDevice *dev, uint8_t out[16]);

/* Read side: position at a tape file (fills its header), then read any of
 * its data blocks by number into buf (room for one block); each block is
 * verified against the trailer's XXH3-64 and a mismatch is -EIO naming
 * volume, file and block, never wrong bytes. Returns bytes read. seek_file
 * is -ENOENT for a missing file, -EIO for a damaged or unfinished one. */
int tape_device_seek_file(TapeDevice *dev, uint32_t fileno,
                          TapePartHeader *hdr, GError **err);
ssize_t tape_device_read_block(TapeDevice *dev, uint64_t block, void *buf,
                               GError **err);

/* ------------------------------------------------------------------ */
/* Part reader: random access into one finished part                   */

typedef struct TapePart TapePart;

/* Open tape file `fileno` of `volume`: header and trailer are read and
 * verified. -ENOENT if there is no such file, -EIO if it is damaged or was
 * never finished (a failed part). */
TapePart *tape_part_open(TapeLibrary *lib, const char *volume,
                         uint32_t fileno, GError **err);
const TapePartHeader *tape_part_header(TapePart *part);
const TapePartTrailer *tape_part_trailer(TapePart *part);
/* Read `len` payload bytes at `offset` (relative to the part), reading and
 * verifying only the blocks that cover the range. */
int tape_part_read(TapePart *part, uint64_t offset, void *buf, size_t len,
                   GError **err);
/* Read every block and check every checksum and the payload XXH3-128. */
int tape_part_verify(TapePart *part, GError **err);
void tape_part_close(TapePart *part);

/* ------------------------------------------------------------------ */
/* Taper                                                              */

typedef struct TapeTaper TapeTaper;

typedef struct {
    uint64_t part_size; /* payload bytes per part, a multiple of the block
                           size; 0 = no splitting */
    size_t ring_size;   /* bytes of ring buffer, rounded up to blocks */
} TapeTaperConfig;

/* Reported once per part attempt, successful or not. */
typedef struct {
    uint64_t dumpfile_id;
    uint32_t partnum;
    uint64_t offset;      /* payload offset inside the dumpfile */
    uint64_t size;        /* payload bytes written */
    double duration;      /* seconds */
    char volume[TAPE_VOLUME_NAME_MAX];
    uint32_t fileno;
    bool successful;
    bool eom;             /* the volume ended (LEOM or PEOM) in this part */
    bool eof;             /* this part ends the dumpfile */
    uint8_t payload_xxh128[16];
} TapePartDone;

typedef void (*TapePartDoneFn)(const TapePartDone *part, void *user);

TapeTaper *tape_taper_new(TapeLibrary *lib, const TapeTaperConfig *cfg);

/* Begin a dumpfile. `done` runs on the device thread after each part. */
int tape_taper_start(TapeTaper *t, uint64_t dumpfile_id, uint32_t kind,
                     uint64_t generation, TapePartDoneFn done, void *user,
                     GError **err);

/* Append a slice: the next `length` bytes of the dumpfile are also found
 * in file `path` at `offset`. Slices cover the dumpfile from its start, in
 * order, and may be added while streaming (also before tape_taper_start
 * for the next dumpfile); a part that must be written again is re-read
 * from them. Add a slice no later than the push of the bytes it covers
 * returns: a retry that finds bytes in no slice while the producer is
 * blocked fails the dumpfile (-EIO) rather than wait forever. Slices of
 * finished parts are released. */
void tape_taper_add_slice(TapeTaper *t, const char *path, uint64_t offset,
                          uint64_t length);

/* Push bytes of the dumpfile (any size); blocks while the ring is full.
 * The whole blocks of a push at least as large as the ring are not
 * copied: the device thread writes them from `buf` and push returns once
 * they are written (buf is the caller's again). Fails once the dumpfile
 * has failed (the error of the failed part). */
int tape_taper_push(TapeTaper *t, const void *buf, size_t len, GError **err);

/* End of the dumpfile: writes the final short block, waits for the last
 * part. 0 when every byte is on tape in successful parts. */
int tape_taper_finish(TapeTaper *t, GError **err);

/* Abandon the current dumpfile at any point; safe from another thread
 * while push or finish is blocked (they return -ECANCELED). */
void tape_taper_cancel(TapeTaper *t);
void tape_taper_free(TapeTaper *t);
