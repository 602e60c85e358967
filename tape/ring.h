/* ring.h — the taper's ring buffer: one producer pushes bytes of any size,
 * one consumer takes them a block at a time straight from memory. Small
 * pushes are copied into the ring; a large push can instead lend its own
 * buffer (whole blocks, once the ring is empty), which the consumer writes
 * from directly while the producer waits: no copy. Internal to tape/.
 *
 * Locks: Ring.lock guards the positions, the lent segment and the flags;
 * bytes are copied in and out without it (the producer only writes free
 * space, the consumer only reads published bytes). Callers may hold the
 * taper's state lock when calling in (lock order: state before ring),
 * never the other way round. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct Ring Ring;

/* `size` must be a multiple of `block`, the unit the consumer takes. */
Ring *ring_new(size_t size, size_t block);
void ring_free(Ring *r);
size_t ring_size(Ring *r);
/* Empty the ring and clear eof and abort (no producer or consumer may be
 * inside the ring). */
void ring_reset(Ring *r);

/* Producer. Copy as much of buf as fits now; returns bytes copied (0 when
 * full) or -ECANCELED once aborted. */
ssize_t ring_write_some(Ring *r, const void *buf, size_t len);
/* Block until there is free space (0) or the ring is aborted (-ECANCELED). */
int ring_wait_space(Ring *r);
/* Bytes to copy before the stream is at a block boundary (0..block-1). */
size_t ring_to_boundary(Ring *r);
/* Lend `len` bytes (a multiple of the block size; the stream must be at a
 * block boundary) for the consumer to take in place. Waits until the ring
 * is empty, then until every lent byte is consumed: 0, or -ECANCELED when
 * aborted (returning only once the consumer no longer touches buf). */
int ring_lend(Ring *r, const void *buf, size_t len);
/* No more bytes will come. */
void ring_set_eof(Ring *r);

/* Consumer. Wait until `want` bytes are available or the producer is at
 * eof; point *p at up to `want` contiguous bytes. Returns their number (0
 * = eof and nothing left) or -ECANCELED. The bytes stay valid until
 * ring_consume (they are taken) or ring_unpeek (they are left). */
ssize_t ring_peek(Ring *r, size_t want, const uint8_t **p);
void ring_consume(Ring *r, size_t n);
void ring_unpeek(Ring *r);
/* 1 when at least one byte is available, 0 at eof with nothing left,
 * -ECANCELED when aborted. */
int ring_wait_any(Ring *r);
/* Wait until the ring is full, a buffer is lent, the producer waits (the
 * ring is as full as it gets) or at eof (prebuffering); 0 or -ECANCELED. */
int ring_wait_full(Ring *r);

/* Wake everyone; every wait and write fails with -ECANCELED from now on. */
void ring_abort(Ring *r);
