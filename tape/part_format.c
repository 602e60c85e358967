/* part_format.c — encode and decode part headers and trailers (layout in
 * docs/FORMATS.md). Pure functions; no shared state, no locks. */
#include "tape/part_format.h"

#include "tape/codec.h"
#include "tape/tape_error.h"

#include <errno.h>
#include <xxhash.h>

static const char HEADER_MAGIC[8] = {'T', 'A', 'P', 'E', 'F', 'S', 'P', 'T'};
static const char FOOTER_MAGIC[8] = {'T', 'A', 'P', 'E', 'F', 'S', 'T', 'R'};

#define TRAILER_FLAG_LAST 1u

uint64_t tape_trailer_bytes(uint64_t nblocks, uint32_t block_size)
{
    uint64_t raw = nblocks * 8 + TAPE_FOOTER_SIZE;
    return (raw + block_size - 1) / block_size * block_size;
}

uint64_t tape_header_encode(const TapePartHeader *h, uint32_t fileno,
                            uint8_t *block, uint32_t block_size)
{
    memset(block, 0, block_size);
    memcpy(block, HEADER_MAGIC, 8);
    put_le32(block + 8, TAPE_PART_VERSION);
    put_le32(block + 12, TAPE_HEADER_SIZE);
    put_le32(block + 16, h->block_size);
    put_le32(block + 20, h->kind);
    put_le64(block + 24, h->dumpfile_id);
    put_le32(block + 32, h->partnum);
    put_le32(block + 36, fileno);
    put_le64(block + 40, h->offset);
    put_le64(block + 48, h->generation);
    put_store_volume(block + 56, h->store_id, h->volume);
    uint64_t sum = XXH3_64bits(block, 136);
    put_le64(block + 136, sum);
    return sum;
}

int tape_header_decode(const uint8_t *block, size_t len, const char *what,
                       TapePartHeader *h, uint32_t *fileno,
                       uint64_t *checksum, GError **err)
{
    memset(h, 0, sizeof *h);
    if (len < TAPE_HEADER_SIZE || memcmp(block, HEADER_MAGIC, 8) != 0)
        return tape_fail(err, EIO, "%s: no part header (not a tapefs part)",
                         what);
    uint64_t sum = XXH3_64bits(block, 136);
    if (get_le64(block + 136) != sum)
        return tape_fail(err, EIO, "%s: part header checksum mismatch", what);
    uint32_t version = get_le32(block + 8);
    if (version != TAPE_PART_VERSION)
        return tape_fail(err, EIO, "%s: unknown part format version %u", what,
                         version);
    h->block_size = get_le32(block + 16);
    h->kind = get_le32(block + 20);
    h->dumpfile_id = get_le64(block + 24);
    h->partnum = get_le32(block + 32);
    *fileno = get_le32(block + 36);
    h->offset = get_le64(block + 40);
    h->generation = get_le64(block + 48);
    if (!get_store_volume(block + 56, h->store_id, sizeof h->store_id,
                          h->volume, sizeof h->volume))
        return tape_fail(err, EIO, "%s: malformed part header", what);
    if (h->block_size != len)
        return tape_fail(err, EIO, "%s: part header says block size %u, the "
                         "volume uses %zu", what, h->block_size, len);
    *checksum = sum;
    return 0;
}

void tape_trailer_encode(const TapePartTrailer *t, const uint64_t *hashes,
                         uint64_t header_checksum, uint32_t block_size,
                         uint8_t *out)
{
    uint64_t total = tape_trailer_bytes(t->nblocks, block_size);
    memset(out, 0, total);
    for (uint64_t i = 0; i < t->nblocks; i++)
        put_le64(out + 8 * i, hashes[i]);
    uint8_t *f = out + total - TAPE_FOOTER_SIZE;
    memcpy(f, FOOTER_MAGIC, 8);
    put_le32(f + 8, TAPE_PART_VERSION);
    put_le32(f + 12, t->last ? TRAILER_FLAG_LAST : 0);
    put_le64(f + 16, t->length);
    put_le64(f + 24, t->nblocks);
    memcpy(f + 32, t->payload_xxh128, 16);
    put_le64(f + 48, total);
    put_le64(f + 56, header_checksum);
    put_le32(f + 64, block_size);
    put_le64(f + 80, XXH3_64bits(out, total - 8));
}

int tape_footer_decode(const uint8_t *footer, const char *what,
                       uint64_t *trailer_bytes, GError **err)
{
    if (memcmp(footer, FOOTER_MAGIC, 8) != 0)
        return tape_fail(err, EIO, "%s: no trailer (the part was never "
                         "finished)", what);
    uint32_t version = get_le32(footer + 8);
    if (version != TAPE_PART_VERSION)
        return tape_fail(err, EIO, "%s: unknown trailer version %u", what,
                         version);
    *trailer_bytes = get_le64(footer + 48);
    return 0;
}

int tape_trailer_decode(const uint8_t *buf, size_t len, uint32_t block_size,
                        uint64_t header_checksum, const char *what,
                        TapePartTrailer *t, uint64_t **hashes, GError **err)
{
    memset(t, 0, sizeof *t);
    *hashes = NULL;
    if (len < TAPE_FOOTER_SIZE || len % block_size)
        return tape_fail(err, EIO, "%s: trailer has a bad size", what);
    const uint8_t *f = buf + len - TAPE_FOOTER_SIZE;
    if (get_le64(f + 80) != XXH3_64bits(buf, len - 8))
        return tape_fail(err, EIO, "%s: trailer checksum mismatch", what);
    uint64_t total;
    int rc = tape_footer_decode(f, what, &total, err);
    if (rc < 0)
        return rc;
    t->last = (get_le32(f + 12) & TRAILER_FLAG_LAST) != 0;
    t->length = get_le64(f + 16);
    t->nblocks = get_le64(f + 24);
    memcpy(t->payload_xxh128, f + 32, 16);
    if (get_le64(f + 56) != header_checksum)
        return tape_fail(err, EIO, "%s: trailer belongs to another header",
                         what);
    uint64_t want_blocks = (t->length + block_size - 1) / block_size;
    if (get_le32(f + 64) != block_size || total != len ||
        t->nblocks != want_blocks ||
        tape_trailer_bytes(t->nblocks, block_size) != len)
        return tape_fail(err, EIO, "%s: trailer is inconsistent", what);
    uint64_t *h = g_new(uint64_t, t->nblocks ? t->nblocks : 1);
    for (uint64_t i = 0; i < t->nblocks; i++)
        h[i] = get_le64(buf + 8 * i);
    *hashes = h;
    return 0;
}
