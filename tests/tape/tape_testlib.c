/* tape_testlib.c — shared helpers of the tape/ tests and the demo (see
 * tape_testlib.h). Locks: TTParts.lock guards TTParts.parts. */
#include "tape_testlib.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tt_tmpdir(void)
{
    GError *err = NULL;
    char *dir = g_dir_make_tmp("tapefs-tape-XXXXXX", &err);
    g_assert_no_error(err);
    return dir;
}

void tt_rmtree(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (d) {
        const char *name;
        while ((name = g_dir_read_name(d))) {
            g_autofree char *path = g_build_filename(dir, name, NULL);
            if (g_file_test(path, G_FILE_TEST_IS_DIR) &&
                !g_file_test(path, G_FILE_TEST_IS_SYMLINK))
                tt_rmtree(path);
            else
                g_unlink(path);
        }
        g_dir_close(d);
    }
    g_rmdir(dir);
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void tt_fill(uint8_t *buf, size_t len, uint64_t seed, uint64_t offset)
{
    uint64_t salt = mix(seed);
    size_t i = 0;
    while (i < len) {
        uint64_t word = (offset + i) / 8;
        unsigned skip = (unsigned)((offset + i) % 8);
        uint64_t v = mix(word ^ salt);
        uint8_t bytes[8];
        memcpy(bytes, &v, 8);
        size_t n = MIN((size_t)(8 - skip), len - i);
        memcpy(buf + i, bytes + skip, n);
        i += n;
    }
}

uint8_t *tt_random_data(size_t len, uint64_t seed)
{
    uint8_t *d = g_malloc(len ? len : 1);
    tt_fill(d, len, seed, 0);
    return d;
}

char *tt_write_file(const char *dir, const char *name, const uint8_t *data,
                    size_t len)
{
    char *path = g_build_filename(dir, name, NULL);
    GError *err = NULL;
    g_file_set_contents(path, (const char *)data, (gssize)len, &err);
    g_assert_no_error(err);
    return path;
}

void tt_parts_init(TTParts *p)
{
    g_mutex_init(&p->lock);
    p->parts = g_array_new(FALSE, TRUE, sizeof(TapePartDone));
}

void tt_parts_clear(TTParts *p)
{
    g_array_unref(p->parts);
    g_mutex_clear(&p->lock);
}

void tt_parts_record(const TapePartDone *d, void *user)
{
    TTParts *p = user;
    g_mutex_lock(&p->lock);
    g_array_append_val(p->parts, *d);
    g_mutex_unlock(&p->lock);
}

unsigned tt_parts_count(TTParts *p, bool successful)
{
    unsigned n = 0;
    g_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->parts->len; i++)
        n += g_array_index(p->parts, TapePartDone, i).successful == successful;
    g_mutex_unlock(&p->lock);
    return n;
}

int tt_write_dumpfile(TapeTaper *t, const TTWrite *w, uint64_t id,
                      const uint8_t *data, size_t len, const char *slice_path,
                      TTParts *parts, GError **err)
{
    int rc = tape_taper_start(t, id, 7, 42, tt_parts_record, parts, err);
    if (rc < 0)
        return rc;
    if (!w->slices_per_push && slice_path)
        tape_taper_add_slice(t, slice_path, 0, len);
    static const size_t odd[] = {1, 3, 4093, 65537, 7, 1048573, 511, 131071};
    size_t pos = 0;
    unsigned k = 0;
    while (pos < len) {
        size_t n = w->odd_pushes ? odd[k++ % G_N_ELEMENTS(odd)]
                   : w->push_size ? w->push_size
                                  : len;
        n = MIN(n, len - pos);
        if (w->slices_per_push && slice_path)
            tape_taper_add_slice(t, slice_path, pos, n);
        rc = tape_taper_push(t, data + pos, n, err);
        if (rc < 0) {
            tape_taper_cancel(t);
            return rc;
        }
        pos += n;
    }
    return tape_taper_finish(t, err);
}

static gint cmp_part(gconstpointer a, gconstpointer b)
{
    const TapePartDone *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

void tt_check_readback(TapeLibrary *lib, TTParts *parts, uint64_t id,
                       const uint8_t *data, size_t len)
{
    GArray *ok = g_array_new(FALSE, FALSE, sizeof(TapePartDone));
    g_mutex_lock(&parts->lock);
    for (unsigned i = 0; i < parts->parts->len; i++) {
        TapePartDone *d = &g_array_index(parts->parts, TapePartDone, i);
        if (d->successful && d->dumpfile_id == id)
            g_array_append_val(ok, *d);
    }
    g_mutex_unlock(&parts->lock);
    g_array_sort(ok, cmp_part);
    g_assert_cmpuint(ok->len, >, 0);
    uint64_t pos = 0;
    uint8_t *buf = g_malloc(MAX(len, 1));
    for (unsigned i = 0; i < ok->len; i++) {
        TapePartDone *d = &g_array_index(ok, TapePartDone, i);
        g_assert_cmpuint(d->offset, ==, pos);
        g_assert_cmpuint(d->partnum, ==, i + 1);
        g_assert_cmpint(d->eof, ==, i + 1 == ok->len);
        GError *err = NULL;
        TapePart *p = tape_part_open(lib, d->volume, d->fileno, &err);
        g_assert_no_error(err);
        g_assert_nonnull(p);
        const TapePartHeader *h = tape_part_header(p);
        const TapePartTrailer *tr = tape_part_trailer(p);
        g_assert_cmpuint(h->dumpfile_id, ==, id);
        g_assert_cmpuint(h->partnum, ==, d->partnum);
        g_assert_cmpuint(h->offset, ==, d->offset);
        g_assert_cmpuint(h->kind, ==, 7);
        g_assert_cmpuint(h->generation, ==, 42);
        g_assert_cmpstr(h->volume, ==, d->volume);
        g_assert_cmpstr(h->store_id, ==, tape_library_store_id(lib));
        g_assert_cmpuint(tr->length, ==, d->size);
        g_assert_cmpint(tr->last, ==, d->eof);
        g_assert_cmpmem(tr->payload_xxh128, 16, d->payload_xxh128, 16);
        g_assert_cmpint(tape_part_verify(p, &err), ==, 0);
        g_assert_no_error(err);
        g_assert_cmpuint(pos + d->size, <=, len);
        g_assert_cmpint(tape_part_read(p, 0, buf + pos, d->size, &err), ==, 0);
        g_assert_no_error(err);
        tape_part_close(p);
        pos += d->size;
    }
    g_assert_cmpuint(pos, ==, len);
    g_assert_true(memcmp(buf, data, len) == 0);
    g_free(buf);
    g_array_unref(ok);
}

void tt_xor_byte(const char *path, long off, uint8_t mask)
{
    FILE *f = fopen(path, "r+b");
    g_assert_nonnull(f);
    g_assert_cmpint(fseek(f, off, SEEK_SET), ==, 0);
    int c = fgetc(f);
    g_assert_cmpint(c, !=, EOF);
    g_assert_cmpint(fseek(f, off, SEEK_SET), ==, 0);
    fputc(c ^ mask, f);
    fclose(f);
}

void tt_write_faults(const char *libdir, const char *volume, const char *text)
{
    g_autofree char *path = g_build_filename(libdir, volume, "faults", NULL);
    GError *err = NULL;
    g_file_set_contents(path, text, -1, &err);
    g_assert_no_error(err);
}

unsigned tt_volumes_used(TTParts *parts, uint64_t id)
{
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                             NULL);
    g_mutex_lock(&parts->lock);
    for (unsigned i = 0; i < parts->parts->len; i++) {
        TapePartDone *d = &g_array_index(parts->parts, TapePartDone, i);
        if (d->successful && d->dumpfile_id == id)
            g_hash_table_add(seen, g_strdup(d->volume));
    }
    g_mutex_unlock(&parts->lock);
    unsigned n = g_hash_table_size(seen);
    g_hash_table_unref(seen);
    return n;
}
