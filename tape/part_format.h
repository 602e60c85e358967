/* part_format.h — byte layout of one part (one tape file): the header
 * block, the data blocks (each padded to the block size) and the trailer
 * (per-block XXH3-64 array, zero padding, fixed footer), all described in
 * docs/FORMATS.md. Internal to tape/. Pure encode/decode; no state, no
 * locks. */
#pragma once

#include "tape/tape.h"

#define TAPE_PART_VERSION 1
#define TAPE_HEADER_SIZE 144  /* encoded bytes at the start of block 0 */
#define TAPE_FOOTER_SIZE 88   /* fixed bytes at the very end of the file */
#define TAPE_MIN_BLOCK_SIZE 4096u
#define TAPE_MAX_BLOCK_SIZE (16u << 20)

/* Bytes of the trailer of a part with `nblocks` data blocks: the hash
 * array and the footer, padded up to whole blocks. */
uint64_t tape_trailer_bytes(uint64_t nblocks, uint32_t block_size);

/* Encode the header into `block` (block_size bytes, zero padded).
 * Returns the header's checksum (also stored in it). */
uint64_t tape_header_encode(const TapePartHeader *h, uint32_t fileno,
                            uint8_t *block, uint32_t block_size);
/* Decode and verify a header block of `len` bytes; -EIO on any damage.
 * `what` names the tape file in messages. */
int tape_header_decode(const uint8_t *block, size_t len, const char *what,
                       TapePartHeader *h, uint32_t *fileno,
                       uint64_t *checksum, GError **err);

/* Encode the trailer (tape_trailer_bytes() bytes) into `out`. */
void tape_trailer_encode(const TapePartTrailer *t, const uint64_t *hashes,
                         uint64_t header_checksum, uint32_t block_size,
                         uint8_t *out);
/* Decode the footer (the last TAPE_FOOTER_SIZE bytes of a file): checks
 * the magic and version and returns the whole trailer's size. */
int tape_footer_decode(const uint8_t *footer, const char *what,
                       uint64_t *trailer_bytes, GError **err);
/* Decode and verify a whole trailer of `len` bytes; fills `t` and a newly
 * allocated array of nblocks hashes (g_free). -EIO on any damage, or when
 * it does not belong to the header with `header_checksum`. */
int tape_trailer_decode(const uint8_t *buf, size_t len, uint32_t block_size,
                        uint64_t header_checksum, const char *what,
                        TapePartTrailer *t, uint64_t **hashes, GError **err);
