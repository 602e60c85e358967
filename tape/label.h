/* label.h — the volume label of a virtual volume: the file `label` in the
 * volume's directory (layout in docs/FORMATS.md). Internal to tape/.
 * Pure encode/decode plus whole-file read/write; no shared state, no locks. */
#pragma once

#include "tape/tape.h"

#define TAPE_LABEL_FILE "label"
#define TAPE_LABEL_SIZE 128
#define TAPE_LABEL_VERSION 1

typedef struct {
    uint32_t version;
    uint32_t block_size;
    uint64_t capacity;
    uint64_t leom_margin;
    char store_id[TAPE_STORE_ID_LEN + 1];
    char volume[TAPE_VOLUME_NAME_MAX];
} TapeLabel;

/* Smallest LEOM margin that always leaves room for the block that crosses
 * LEOM, a header block and the largest possible trailer. */
uint64_t tape_label_min_margin(uint64_t capacity, uint32_t block_size);
/* Check sizes and names; -EINVAL with a message when they cannot work. */
int tape_label_validate(const TapeLabel *l, GError **err);

void tape_label_encode(const TapeLabel *l, uint8_t out[TAPE_LABEL_SIZE]);
/* -EIO on a bad magic, version or checksum. `what` names the volume in
 * messages. */
int tape_label_decode(const uint8_t in[TAPE_LABEL_SIZE], const char *what,
                      TapeLabel *l, GError **err);

/* Write `voldir`/label durably (temporary file, fsync, rename, fsync dir). */
int tape_label_write(const char *voldir, const TapeLabel *l, GError **err);
int tape_label_read(const char *voldir, const char *what, TapeLabel *l,
                    GError **err);
