/* cache_fileio.c — whole-buffer pread/pwrite (retrying EINTR and short
 * transfers) and counted fsync. Returns 0 or a negative errno.
 * Locks: takes c->lock only to count fsyncs in the stats. */
#include "cache/cache_internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int cache_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0) {
            /* Past the end of the file: a hole that was never written. */
            memset(p, 0, len);
            return 0;
        }
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int cache_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int cache_fsync_fd(Cache *c, int fd, bool data_only)
{
    int r = data_only ? fdatasync(fd) : fsync(fd);
    g_mutex_lock(&c->lock);
    c->st.fsyncs++;
    g_mutex_unlock(&c->lock);
    return r < 0 ? -errno : 0;
}
