/* label.c — encode, decode, validate, read and write the label of a
 * virtual volume (layout in docs/FORMATS.md). No shared state, no locks. */
#include "tape/label.h"

#include "tape/codec.h"
#include "tape/fileio.h"
#include "tape/part_format.h"
#include "tape/tape_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <xxhash.h>

static const char LABEL_MAGIC[8] = {'T', 'A', 'P', 'E', 'F', 'S', 'V', 'L'};

uint64_t tape_label_min_margin(uint64_t capacity, uint32_t block_size)
{
    uint64_t max_blocks = capacity / block_size + 1;
    /* the block that crosses LEOM, a header block, one more data block and
     * the largest trailer any part on this volume can need */
    return 3ull * block_size + tape_trailer_bytes(max_blocks, block_size);
}

static bool name_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n == 0 || n >= max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == '/')
            return false;
    }
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

int tape_label_validate(const TapeLabel *l, GError **err)
{
    if (!name_ok(l->store_id, sizeof l->store_id))
        return tape_fail(err, EINVAL, "store id must be 1 to %d printable "
                         "characters without '/'", TAPE_STORE_ID_LEN);
    if (!name_ok(l->volume, sizeof l->volume))
        return tape_fail(err, EINVAL, "volume name must be 1 to %d printable "
                         "characters without '/'", TAPE_VOLUME_NAME_MAX - 1);
    if (l->block_size < TAPE_MIN_BLOCK_SIZE ||
        l->block_size > TAPE_MAX_BLOCK_SIZE || l->block_size % 512)
        return tape_fail(err, EINVAL, "block size %u is not a multiple of 512 "
                         "between %u and %u", l->block_size,
                         TAPE_MIN_BLOCK_SIZE, TAPE_MAX_BLOCK_SIZE);
    uint64_t min = tape_label_min_margin(l->capacity, l->block_size);
    if (l->leom_margin < min)
        return tape_fail(err, EINVAL, "LEOM margin %" G_GUINT64_FORMAT
                         " is below the %" G_GUINT64_FORMAT " bytes a "
                         "trailer may need", l->leom_margin, min);
    if (l->capacity < l->leom_margin + 4ull * l->block_size ||
        l->capacity > (UINT64_MAX >> 2))
        return tape_fail(err, EINVAL, "volume size %" G_GUINT64_FORMAT
                         " is too small for block size %u (at least %"
                         G_GUINT64_FORMAT " bytes)", l->capacity,
                         l->block_size,
                         (uint64_t)(l->leom_margin + 4ull * l->block_size));
    return 0;
}

void tape_label_encode(const TapeLabel *l, uint8_t out[TAPE_LABEL_SIZE])
{
    memset(out, 0, TAPE_LABEL_SIZE);
    memcpy(out, LABEL_MAGIC, 8);
    put_le32(out + 8, TAPE_LABEL_VERSION);
    put_le32(out + 12, l->block_size);
    put_le64(out + 16, l->capacity);
    put_le64(out + 24, l->leom_margin);
    put_store_volume(out + 32, l->store_id, l->volume);
    put_le64(out + 120, XXH3_64bits(out, 120));
}

int tape_label_decode(const uint8_t in[TAPE_LABEL_SIZE], const char *what,
                      TapeLabel *l, GError **err)
{
    memset(l, 0, sizeof *l);
    if (memcmp(in, LABEL_MAGIC, 8) != 0)
        return tape_fail(err, EIO, "%s: not a tapefs volume label", what);
    if (get_le64(in + 120) != XXH3_64bits(in, 120))
        return tape_fail(err, EIO, "%s: label checksum mismatch (damaged "
                         "label)", what);
    l->version = get_le32(in + 8);
    if (l->version != TAPE_LABEL_VERSION)
        return tape_fail(err, EIO, "%s: unknown label version %u", what,
                         l->version);
    l->block_size = get_le32(in + 12);
    l->capacity = get_le64(in + 16);
    l->leom_margin = get_le64(in + 24);
    if (!get_store_volume(in + 32, l->store_id, sizeof l->store_id,
                          l->volume, sizeof l->volume))
        return tape_fail(err, EIO, "%s: malformed label", what);
    GError *verr = NULL;
    if (tape_label_validate(l, &verr) < 0) {
        int rc = tape_fail(err, EIO, "%s: label is inconsistent: %s", what,
                           verr->message);
        g_error_free(verr);
        return rc;
    }
    return 0;
}

int tape_label_write(const char *voldir, const TapeLabel *l, GError **err)
{
    uint8_t buf[TAPE_LABEL_SIZE];
    tape_label_encode(l, buf);
    g_autofree char *tmp = g_build_filename(voldir, TAPE_LABEL_FILE ".new",
                                            NULL);
    g_autofree char *path = g_build_filename(voldir, TAPE_LABEL_FILE, NULL);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return tape_fail(err, errno, "cannot create %s: %s", tmp,
                         g_strerror(errno));
    ssize_t n = tape_pwrite_full(fd, buf, sizeof buf, 0);
    int rc = n < 0 ? (int)n : (fsync(fd) < 0 ? -errno : 0);
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc == 0)
        rc = tape_fsync_dir(voldir);
    if (rc < 0) {
        unlink(tmp);
        return tape_fail(err, -rc, "cannot write label %s: %s", path,
                         g_strerror(-rc));
    }
    return 0;
}

int tape_label_read(const char *voldir, const char *what, TapeLabel *l,
                    GError **err)
{
    g_autofree char *path = g_build_filename(voldir, TAPE_LABEL_FILE, NULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return tape_fail(err, e == ENOENT ? EIO : e, "%s: cannot read label: "
                         "%s", what, g_strerror(e));
    }
    uint8_t buf[TAPE_LABEL_SIZE + 1];
    ssize_t n = tape_pread_full(fd, buf, sizeof buf, 0);
    close(fd);
    if (n < 0)
        return tape_fail(err, (int)-n, "%s: cannot read label: %s", what,
                         g_strerror((int)-n));
    if (n != TAPE_LABEL_SIZE)
        return tape_fail(err, EIO, "%s: label has %zd bytes, expected %d "
                         "(damaged label)", what, n, TAPE_LABEL_SIZE);
    return tape_label_decode(buf, what, l, err);
}
