/* cache_fileio.c — whole-buffer pread/pwrite (retrying EINTR and short
 * transfers), counted fsync, and replacing a small file in the cache
 * directory durably (temp file, fsync, rename, directory fsync).
 * Returns 0 or a negative errno.
 * Locks: takes c->lock only to count fsyncs in the stats (and in
 * cache_fds_shed when the process is out of descriptors). */
#include "cache/cache_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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

int cache_replace_file(Cache *c, const char *path, const void *buf,
                       size_t len, bool data_only, const char *what,
                       GError **err)
{
    g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
    int fd = cache_fds_open(c, NULL, tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0)
        return cache_fail(err, errno, "cannot create %s: %s", tmp,
                          g_strerror(errno));
    int r = cache_pwrite_full(fd, buf, len, 0);
    if (r == 0)
        r = cache_fsync_fd(c, fd, data_only);
    close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r == 0)
        r = cache_fsync_fd(c, c->dir_fd, false);
    if (r < 0) {
        unlink(tmp);
        return cache_fail(err, -r, "cannot write %s %s: %s", what, path,
                          g_strerror(-r));
    }
    return 0;
}
