/* fileio.h — small POSIX file helpers for tape/: whole reads and writes
 * that retry on EINTR and short transfers, and directory fsync. Internal
 * to tape/. No state, no locks. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Return bytes transferred (short only at end of file for reads) or
 * -errno. */
ssize_t tape_pread_full(int fd, void *buf, size_t len, uint64_t off);
ssize_t tape_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
/* fsync a directory so that new or renamed entries in it are durable. */
int tape_fsync_dir(const char *dir);
