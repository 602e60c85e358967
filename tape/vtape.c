/* vtape.c — the virtual tape device: one loaded volume of a library. The
 * write side appends tape files (header block, data blocks padded to the
 * block size, trailer), enforcing capacity (PEOM), reporting LEOM and
 * applying the volume's fault rules; the read side positions at a tape
 * file and reads any data block with its XXH3-64 verified.
 *
 * A TapeDevice is used by one thread at a time (no lock of its own). It
 * updates its volume's shared state (used, nfiles) under TapeLibrary.lock,
 * held only for the update itself. */
#include "tape/faults.h"
#include "tape/fileio.h"
#include "tape/part_format.h"
#include "tape/tape_error.h"
#include "tape/volume.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* Start writeback of a tape file every this many bytes, so the disk works
 * while the next blocks are written and finish_file's fdatasync has little
 * left to wait for. */
#define WRITEBACK_CHUNK (8u << 20)

struct TapeDevice {
    TapeLibrary *lib;
    TapeVolume *vol;
    bool writable;
    uint32_t bs;
    TapeFaults faults;
    uint64_t writes;        /* write_block calls since the volume was loaded */
    uint8_t *scratch;       /* one block: header, padded short block */

    /* write side: the tape file being written, if wfd >= 0 */
    int wfd;
    uint32_t wfileno;
    bool wbroken;           /* a write failed: the file cannot be finished */
    bool wshort;            /* a short (final) block was written */
    uint64_t wlength;
    uint64_t woff;          /* file offset of the next block */
    uint64_t wflushed;      /* bytes whose writeback has been started */
    uint64_t wheader_sum;
    GArray *whashes;        /* uint64_t per data block */
    XXH3_state_t *wxxh;     /* XXH3-128 of the payload so far */

    /* read side: the tape file positioned by seek_file, if rvalid */
    int rfd;
    bool rvalid;
    uint32_t rfileno;
    TapePartHeader rhdr;
    TapePartTrailer rtrl;
    uint64_t *rhashes;
};

TapeDevice *tape_device_open(TapeLibrary *lib, TapeVolume *vol,
                             bool writable, GError **err)
{
    TapeDevice *dev = g_new0(TapeDevice, 1);
    dev->lib = lib;
    dev->vol = vol;
    dev->writable = writable;
    dev->bs = vol->label.block_size;
    dev->wfd = -1;
    dev->rfd = -1;
    if (tape_faults_load(vol->dir, vol->name, &dev->faults, err) < 0) {
        tape_faults_clear(&dev->faults);
        g_free(dev);
        return NULL;
    }
    dev->scratch = g_malloc(dev->bs);
    dev->whashes = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    dev->wxxh = XXH3_createState();
    return dev;
}

static void close_write_file(TapeDevice *dev)
{
    if (dev->wfd >= 0)
        close(dev->wfd);
    dev->wfd = -1;
}

static void close_read_file(TapeDevice *dev)
{
    if (dev->rfd >= 0)
        close(dev->rfd);
    dev->rfd = -1;
    dev->rvalid = false;
    g_clear_pointer(&dev->rhashes, g_free);
}

void tape_device_unload(TapeDevice *dev)
{
    if (!dev)
        return;
    close_write_file(dev);
    close_read_file(dev);
    if (dev->writable) {
        g_mutex_lock(&dev->lib->lock);
        dev->vol->writer = false;
        g_mutex_unlock(&dev->lib->lock);
    }
    tape_faults_clear(&dev->faults);
    g_array_unref(dev->whashes);
    XXH3_freeState(dev->wxxh);
    g_free(dev->scratch);
    g_free(dev);
}

TapeVolume *tape_device_volume_rec(TapeDevice *dev)
{
    return dev->vol;
}

const char *tape_device_volume(TapeDevice *dev)
{
    return dev->vol->name;
}

uint32_t tape_device_block_size(TapeDevice *dev)
{
    return dev->bs;
}

TapeStreaming tape_device_streaming(TapeDevice *dev)
{
    return dev->faults.streaming;
}

bool tape_device_is_eom(TapeDevice *dev)
{
    g_mutex_lock(&dev->lib->lock);
    bool eom = dev->vol->full ||
               dev->vol->used + dev->vol->label.leom_margin >=
                   dev->vol->label.capacity;
    g_mutex_unlock(&dev->lib->lock);
    return eom;
}

/* Claim `bytes` of the volume before writing them: -ENOSPC at physical end
 * of medium (capacity, or an injected `peom`). */
static int reserve(TapeDevice *dev, uint64_t bytes, GError **err)
{
    uint64_t limit = dev->vol->label.capacity;
    if (dev->faults.peom)
        limit = MIN(limit, dev->faults.peom);
    g_mutex_lock(&dev->lib->lock);
    bool fits = dev->vol->used + bytes <= limit;
    if (fits)
        dev->vol->used += bytes;
    g_mutex_unlock(&dev->lib->lock);
    if (!fits)
        return tape_fail(err, ENOSPC, "%s: physical end of medium at %"
                         G_GUINT64_FORMAT " bytes (file %u)", dev->vol->name,
                         limit, dev->wfileno);
    return 0;
}

static int write_bytes(TapeDevice *dev, const void *buf, size_t len,
                       GError **err)
{
    int rc = reserve(dev, len, err);
    if (rc < 0)
        return rc;
    ssize_t n = tape_pwrite_full(dev->wfd, buf, len, dev->woff);
    if (n < 0)
        return tape_fail(err, (int)-n, "%s: write error in file %u: %s",
                         dev->vol->name, dev->wfileno, g_strerror((int)-n));
    dev->woff += len;
    if (dev->woff - dev->wflushed >= WRITEBACK_CHUNK) {
        /* advisory: a failure here shows up in fdatasync */
        (void)sync_file_range(dev->wfd, (off_t)dev->wflushed,
                              (off_t)(dev->woff - dev->wflushed),
                              SYNC_FILE_RANGE_WRITE);
        dev->wflushed = dev->woff;
    }
    return 0;
}

int tape_device_start_file(TapeDevice *dev, const TapePartHeader *hdr,
                           GError **err)
{
    if (!dev->writable)
        return tape_fail(err, EBADF, "%s is loaded for reading only",
                         dev->vol->name);
    if (!hdr)
        return tape_fail(err, EINVAL, "no part header given");
    if (dev->wfd >= 0 && !dev->wbroken)
        return tape_fail(err, EBUSY, "%s: file %u is still being written",
                         dev->vol->name, dev->wfileno);
    close_write_file(dev);
    g_mutex_lock(&dev->lib->lock);
    bool full = dev->vol->full;
    uint32_t fileno = dev->vol->nfiles;
    if (!full)
        dev->vol->nfiles++;
    g_mutex_unlock(&dev->lib->lock);
    if (full)
        return tape_fail(err, ENOSPC, "%s is full", dev->vol->name);

    g_autofree char *path = tape_volume_file_path(dev->vol, fileno);
    dev->wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (dev->wfd < 0)
        return tape_fail(err, EIO, "%s: cannot create file %u: %s",
                         dev->vol->name, fileno, g_strerror(errno));
    dev->wfileno = fileno;
    dev->wbroken = true; /* until the header is down */
    dev->wshort = false;
    dev->wlength = 0;
    dev->woff = 0;
    dev->wflushed = 0;
    g_array_set_size(dev->whashes, 0);
    XXH3_128bits_reset(dev->wxxh);

    TapePartHeader h = *hdr;
    g_strlcpy(h.store_id, dev->lib->store_id, sizeof h.store_id);
    g_strlcpy(h.volume, dev->vol->name, sizeof h.volume);
    h.block_size = dev->bs;
    dev->wheader_sum = tape_header_encode(&h, fileno, dev->scratch, dev->bs);
    int rc = write_bytes(dev, dev->scratch, dev->bs, err);
    if (rc < 0)
        return rc;
    dev->wbroken = false;
    return (int)fileno;
}

static int check_writing(TapeDevice *dev, GError **err)
{
    if (dev->wfd < 0)
        return tape_fail(err, EBADF, "%s: no tape file is being written",
                         dev->vol->name);
    if (dev->wbroken)
        return tape_fail(err, EIO, "%s: file %u failed earlier and cannot be "
                         "continued", dev->vol->name, dev->wfileno);
    return 0;
}

int tape_device_write_block(TapeDevice *dev, const void *buf, size_t len,
                            GError **err)
{
    int rc = check_writing(dev, err);
    if (rc < 0)
        return rc;
    if (!buf || len == 0 || len > dev->bs || dev->wshort)
        return tape_fail(err, EINVAL, "%s: file %u: a block is 1 to %u bytes "
                         "and only the last may be short", dev->vol->name,
                         dev->wfileno, dev->bs);
    dev->writes++;
    if (tape_faults_write_fails(&dev->faults, dev->writes)) {
        dev->wbroken = true;
        return tape_fail(err, EIO, "%s: injected write error at block write "
                         "%" G_GUINT64_FORMAT " (file %u)", dev->vol->name,
                         dev->writes, dev->wfileno);
    }
    uint64_t h = XXH3_64bits(buf, len);
    XXH3_128bits_update(dev->wxxh, buf, len);
    const void *out = buf;
    if (len < dev->bs) {
        memcpy(dev->scratch, buf, len);
        memset(dev->scratch + len, 0, dev->bs - len);
        out = dev->scratch;
        dev->wshort = true;
    }
    rc = write_bytes(dev, out, dev->bs, err);
    if (rc < 0) {
        dev->wbroken = true;
        return rc;
    }
    g_array_append_val(dev->whashes, h);
    dev->wlength += len;
    return 0;
}

void tape_device_payload_xxh128(TapeDevice *dev, uint8_t out[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(dev->wxxh));
    memcpy(out, c.digest, 16);
}

int tape_device_finish_file(TapeDevice *dev, const TapePartTrailer *trl,
                            GError **err)
{
    int rc = check_writing(dev, err);
    if (rc < 0)
        return rc;
    if (!trl)
        return tape_fail(err, EINVAL, "no trailer given");
    uint8_t digest[16];
    tape_device_payload_xxh128(dev, digest);
    if (trl->length != dev->wlength || trl->nblocks != dev->whashes->len ||
        memcmp(trl->payload_xxh128, digest, 16) != 0)
        return tape_fail(err, EINVAL, "%s: file %u: trailer does not match "
                         "the blocks written", dev->vol->name, dev->wfileno);
    uint64_t tb = tape_trailer_bytes(trl->nblocks, dev->bs);
    uint8_t *buf = g_malloc(tb);
    tape_trailer_encode(trl, (const uint64_t *)(void *)dev->whashes->data,
                        dev->wheader_sum, dev->bs, buf);
    rc = write_bytes(dev, buf, tb, err);
    g_free(buf);
    if (rc == 0 && fdatasync(dev->wfd) < 0)
        rc = tape_fail(err, EIO, "%s: file %u: fdatasync failed: %s",
                       dev->vol->name, dev->wfileno, g_strerror(errno));
    if (rc == 0 && tape_fsync_dir(dev->vol->dir) < 0)
        rc = tape_fail(err, EIO, "%s: cannot sync the volume directory",
                       dev->vol->name);
    if (rc < 0) {
        dev->wbroken = true;
        return rc;
    }
    close_write_file(dev);
    return 0;
}

int tape_device_seek_file(TapeDevice *dev, uint32_t fileno,
                          TapePartHeader *hdr, GError **err)
{
    close_read_file(dev);
    char what[64];
    g_snprintf(what, sizeof what, "%s file %u", dev->vol->name, fileno);
    g_autofree char *path = tape_volume_file_path(dev->vol, fileno);
    dev->rfd = open(path, O_RDONLY | O_CLOEXEC);
    if (dev->rfd < 0) {
        int e = errno;
        return tape_fail(err, e == ENOENT ? ENOENT : EIO, "%s: %s", what,
                         e == ENOENT ? "no such tape file" : g_strerror(e));
    }
    struct stat st;
    if (fstat(dev->rfd, &st) < 0) {
        close_read_file(dev);
        return tape_fail(err, EIO, "%s: %s", what, g_strerror(errno));
    }
    uint64_t size = (uint64_t)st.st_size;
    uint32_t stored_fileno = 0;
    uint64_t hsum = 0;
    int rc = 0;
    ssize_t n = tape_pread_full(dev->rfd, dev->scratch, dev->bs, 0);
    if (n < 0 || (size_t)n != dev->bs)
        rc = tape_fail(err, EIO, "%s: no complete header block (the part was "
                       "never finished)", what);
    if (rc == 0)
        rc = tape_header_decode(dev->scratch, dev->bs, what, &dev->rhdr,
                                &stored_fileno, &hsum, err);
    if (rc == 0 && (stored_fileno != fileno ||
                    strcmp(dev->rhdr.volume, dev->vol->name) != 0 ||
                    strcmp(dev->rhdr.store_id, dev->lib->store_id) != 0))
        rc = tape_fail(err, EIO, "%s: header names %s file %u of store %s",
                       what, dev->rhdr.volume, stored_fileno,
                       dev->rhdr.store_id);
    uint8_t footer[TAPE_FOOTER_SIZE];
    uint64_t tb = 0;
    if (rc == 0) {
        if (size < (uint64_t)dev->bs * 2 || size % dev->bs)
            rc = tape_fail(err, EIO, "%s: no trailer (the part was never "
                           "finished)", what);
        else if (tape_pread_full(dev->rfd, footer, sizeof footer,
                                 size - sizeof footer) != sizeof footer)
            rc = tape_fail(err, EIO, "%s: cannot read the trailer", what);
        else
            rc = tape_footer_decode(footer, what, &tb, err);
    }
    if (rc == 0 && (tb == 0 || tb % dev->bs || tb > size - dev->bs))
        rc = tape_fail(err, EIO, "%s: trailer is inconsistent", what);
    if (rc == 0) {
        uint8_t *buf = g_malloc(tb);
        if (tape_pread_full(dev->rfd, buf, tb, size - tb) != (ssize_t)tb)
            rc = tape_fail(err, EIO, "%s: cannot read the trailer", what);
        else
            rc = tape_trailer_decode(buf, tb, dev->bs, hsum, what,
                                     &dev->rtrl, &dev->rhashes, err);
        g_free(buf);
    }
    if (rc == 0 && size != (uint64_t)dev->bs * (1 + dev->rtrl.nblocks) + tb)
        rc = tape_fail(err, EIO, "%s: file size does not match its trailer",
                       what);
    if (rc < 0) {
        close_read_file(dev);
        return rc;
    }
    dev->rfileno = fileno;
    dev->rvalid = true;
    if (hdr)
        *hdr = dev->rhdr;
    return 0;
}

const TapePartTrailer *tape_device_trailer(TapeDevice *dev)
{
    return dev->rvalid ? &dev->rtrl : NULL;
}

ssize_t tape_device_read_block(TapeDevice *dev, uint64_t block, void *buf,
                               GError **err)
{
    if (!dev->rvalid)
        return tape_fail(err, EBADF, "%s: no tape file positioned for reading",
                         dev->vol->name);
    if (!buf)
        return tape_fail(err, EINVAL, "no buffer to read into");
    const TapePartTrailer *t = &dev->rtrl;
    if (block >= t->nblocks)
        return tape_fail(err, EINVAL, "%s file %u: block %" G_GUINT64_FORMAT
                         " is past the last block (%" G_GUINT64_FORMAT
                         " blocks)", dev->vol->name, dev->rfileno, block,
                         t->nblocks);
    if (tape_faults_read_fails(&dev->faults, dev->rfileno, block))
        return tape_fail(err, EIO, "%s file %u block %" G_GUINT64_FORMAT
                         ": injected read error", dev->vol->name,
                         dev->rfileno, block);
    size_t len = block + 1 < t->nblocks
                     ? dev->bs
                     : (size_t)(t->length - block * (uint64_t)dev->bs);
    ssize_t n = tape_pread_full(dev->rfd, buf, len,
                                (block + 1) * (uint64_t)dev->bs);
    if (n < 0 || (size_t)n != len) {
        memset(buf, 0, len);
        return tape_fail(err, EIO, "%s file %u block %" G_GUINT64_FORMAT
                         ": read error: %s", dev->vol->name, dev->rfileno,
                         block, n < 0 ? g_strerror((int)-n) : "short read");
    }
    if (XXH3_64bits(buf, len) != dev->rhashes[block]) {
        memset(buf, 0, len);
        return tape_fail(err, EIO, "%s file %u block %" G_GUINT64_FORMAT
                         ": checksum mismatch", dev->vol->name, dev->rfileno,
                         block);
    }
    return (ssize_t)len;
}
