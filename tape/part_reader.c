/* part_reader.c — random access into one finished part: open a tape file
 * through a read-only device, read any byte range (only the covering
 * blocks are read, each verified), verify a whole part. A TapePart is used
 * by one thread at a time; it has no lock (the device it owns updates no
 * shared state). */
#include "tape/tape_error.h"
#include "tape/volume.h"

#include <errno.h>
#include <xxhash.h>

struct TapePart {
    TapeDevice *dev;
    TapePartHeader hdr;
    TapePartTrailer trl;
    uint32_t bs;
    uint32_t fileno;
    uint8_t *block;     /* scratch for partly wanted blocks */
};

TapePart *tape_part_open(TapeLibrary *lib, const char *volume,
                         uint32_t fileno, GError **err)
{
    TapeDevice *dev = tape_library_load(lib, volume, err);
    if (!dev)
        return NULL;
    TapePart *p = g_new0(TapePart, 1);
    p->dev = dev;
    if (tape_device_seek_file(dev, fileno, &p->hdr, err) < 0) {
        tape_device_unload(dev);
        g_free(p);
        return NULL;
    }
    p->trl = *tape_device_trailer(dev);
    p->bs = tape_device_block_size(dev);
    p->fileno = fileno;
    p->block = g_malloc(p->bs);
    return p;
}

const TapePartHeader *tape_part_header(TapePart *part)
{
    return &part->hdr;
}

const TapePartTrailer *tape_part_trailer(TapePart *part)
{
    return &part->trl;
}

int tape_part_read(TapePart *part, uint64_t offset, void *buf, size_t len,
                   GError **err)
{
    uint64_t length = part->trl.length;
    if (!buf && len > 0)
        return tape_fail(err, EINVAL, "no buffer to read into");
    if (offset > length || len > length - offset)
        return tape_fail(err, EINVAL, "%s file %u: range %" G_GUINT64_FORMAT
                         "+%zu is past the part's %" G_GUINT64_FORMAT
                         " bytes", part->hdr.volume, part->fileno, offset,
                         len, length);
    uint8_t *out = buf;
    while (len > 0) {
        uint64_t block = offset / part->bs;
        size_t skip = (size_t)(offset % part->bs);
        size_t blen = block + 1 < part->trl.nblocks
                          ? part->bs
                          : (size_t)(length - block * part->bs);
        size_t take = MIN(len, blen - skip);
        bool direct = skip == 0 && take == blen;
        ssize_t n = tape_device_read_block(part->dev, block,
                                           direct ? out : part->block, err);
        if (n < 0)
            return (int)n;
        if (!direct)
            memcpy(out, part->block + skip, take);
        out += take;
        offset += take;
        len -= take;
    }
    return 0;
}

int tape_part_verify(TapePart *part, GError **err)
{
    XXH3_state_t *st = XXH3_createState();
    XXH3_128bits_reset(st);
    int rc = 0;
    for (uint64_t b = 0; b < part->trl.nblocks && rc == 0; b++) {
        ssize_t n = tape_device_read_block(part->dev, b, part->block, err);
        if (n < 0)
            rc = (int)n;
        else
            XXH3_128bits_update(st, part->block, (size_t)n);
    }
    if (rc == 0) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
        if (memcmp(c.digest, part->trl.payload_xxh128, 16) != 0)
            rc = tape_fail(err, EIO, "%s file %u: part %u of dumpfile %"
                           G_GUINT64_FORMAT ": payload checksum mismatch",
                           part->hdr.volume, part->fileno, part->hdr.partnum,
                           part->hdr.dumpfile_id);
    }
    XXH3_freeState(st);
    return rc;
}

void tape_part_close(TapePart *part)
{
    if (!part)
        return;
    tape_device_unload(part->dev);
    g_free(part->block);
    g_free(part);
}
