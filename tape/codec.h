/* codec.h — little-endian integer and fixed-string packing helpers shared
 * by the on-disk codecs of tape/ (label.c, part_format.c), including the
 * store id / volume name pair both formats carry. Internal to tape/. Pure
 * functions; no state, no locks. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static inline void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Copy a NUL-terminated string into a fixed field of `n` bytes, padding
 * with NULs (the string must be shorter than n). */
static inline void put_str(uint8_t *p, size_t n, const char *s)
{
    size_t len = strlen(s);
    memset(p, 0, n);
    memcpy(p, s, len < n ? len : n - 1);
}

/* Read a fixed field of `n` bytes into out[n]; false unless the field is
 * NUL-terminated and NUL-padded. */
static inline bool get_str(const uint8_t *p, size_t n, char *out)
{
    size_t len = strnlen((const char *)p, n);
    if (len >= n)
        return false;
    for (size_t i = len; i < n; i++)
        if (p[i] != 0)
            return false;
    memcpy(out, p, n);
    return true;
}

/* Labels and part headers both carry the store id in a 40-byte field
 * followed by the volume name in a 32-byte field, starting at p. */
#define CODEC_STORE_FIELD 40
#define CODEC_VOLUME_FIELD 32

static inline void put_store_volume(uint8_t *p, const char *store_id,
                                    const char *volume)
{
    put_str(p, CODEC_STORE_FIELD, store_id);
    put_str(p + CODEC_STORE_FIELD, CODEC_VOLUME_FIELD, volume);
}

/* Read the pair at p into store_id[store_size] and volume[volume_size]
 * (g_strlcpy); false, leaving both untouched, if either field is
 * malformed (see get_str). */
static inline bool get_store_volume(const uint8_t *p, char *store_id,
                                    size_t store_size, char *volume,
                                    size_t volume_size)
{
    char store[CODEC_STORE_FIELD], vol[CODEC_VOLUME_FIELD];
    if (!get_str(p, CODEC_STORE_FIELD, store) ||
        !get_str(p + CODEC_STORE_FIELD, CODEC_VOLUME_FIELD, vol))
        return false;
    g_strlcpy(store_id, store, store_size);
    g_strlcpy(volume, vol, volume_size);
    return true;
}
