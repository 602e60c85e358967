/* faults.c — parse and query the fault rules of a virtual volume (the
 * `faults` file; rules in docs/FORMATS.md). No shared state, no locks. */
#include "tape/faults.h"

#include "tape/tape_error.h"

#include <errno.h>

static bool parse_u64(const char *s, uint64_t *out)
{
    guint64 v;
    if (!s || !g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64, &v, NULL))
        return false;
    *out = v;
    return true;
}

static void faults_init(TapeFaults *f)
{
    f->fail_writes = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    f->fail_reads = g_array_new(FALSE, FALSE, sizeof(TapeReadFault));
    f->peom = 0;
    f->streaming = TAPE_STREAMING_NONE;
}

static int parse_line(TapeFaults *f, char **w, unsigned nw)
{
    uint64_t a, b;
    if (strcmp(w[0], "fail-write") == 0 && nw == 2 && parse_u64(w[1], &a) &&
        a > 0) {
        g_array_append_val(f->fail_writes, a);
    } else if (strcmp(w[0], "peom") == 0 && nw == 2 && parse_u64(w[1], &a) &&
               a > 0) {
        f->peom = f->peom ? MIN(f->peom, a) : a;
    } else if (strcmp(w[0], "fail-read") == 0 && nw == 3 &&
               parse_u64(w[1], &a) && a <= G_MAXUINT32 &&
               parse_u64(w[2], &b)) {
        TapeReadFault r = {(uint32_t)a, b};
        g_array_append_val(f->fail_reads, r);
    } else if (strcmp(w[0], "streaming") == 0 && nw == 2 &&
               (strcmp(w[1], "none") == 0 || strcmp(w[1], "desired") == 0 ||
                strcmp(w[1], "required") == 0)) {
        f->streaming = w[1][0] == 'n' ? TAPE_STREAMING_NONE
                       : w[1][0] == 'd' ? TAPE_STREAMING_DESIRED
                                        : TAPE_STREAMING_REQUIRED;
    } else {
        return -EINVAL;
    }
    return 0;
}

int tape_faults_load(const char *voldir, const char *what, TapeFaults *f,
                     GError **err)
{
    faults_init(f);
    g_autofree char *path = g_build_filename(voldir, TAPE_FAULTS_FILE, NULL);
    g_autofree char *text = NULL;
    GError *ferr = NULL;
    if (!g_file_get_contents(path, &text, NULL, &ferr)) {
        bool missing = g_error_matches(ferr, G_FILE_ERROR, G_FILE_ERROR_NOENT);
        int rc = missing ? 0 : tape_fail(err, EIO, "%s: cannot read faults "
                                         "file: %s", what, ferr->message);
        g_error_free(ferr);
        return rc;
    }
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (unsigned i = 0; lines[i]; i++) {
        char *hash = strchr(lines[i], '#');
        if (hash)
            *hash = '\0';
        g_auto(GStrv) words = g_strsplit_set(g_strstrip(lines[i]), " \t\r", -1);
        char *w[4];
        unsigned nw = 0;
        for (unsigned j = 0; words[j]; j++) {
            if (!words[j][0])
                continue;
            if (nw == G_N_ELEMENTS(w)) {
                nw++;
                break;
            }
            w[nw++] = words[j];
        }
        if (nw == 0)
            continue;
        if (nw > 3 || parse_line(f, w, nw) < 0) {
            tape_faults_clear(f);
            faults_init(f);
            return tape_fail(err, EINVAL, "%s: faults file line %u: expected "
                             "'fail-write N', 'peom BYTES', 'fail-read FILENO "
                             "BLOCK' or 'streaming none|desired|required'",
                             what, i + 1);
        }
    }
    return 0;
}

void tape_faults_clear(TapeFaults *f)
{
    g_clear_pointer(&f->fail_writes, g_array_unref);
    g_clear_pointer(&f->fail_reads, g_array_unref);
}

bool tape_faults_write_fails(const TapeFaults *f, uint64_t nth)
{
    for (unsigned i = 0; f->fail_writes && i < f->fail_writes->len; i++)
        if (g_array_index(f->fail_writes, uint64_t, i) == nth)
            return true;
    return false;
}

bool tape_faults_read_fails(const TapeFaults *f, uint32_t fileno,
                            uint64_t block)
{
    for (unsigned i = 0; f->fail_reads && i < f->fail_reads->len; i++) {
        const TapeReadFault *r = &g_array_index(f->fail_reads, TapeReadFault, i);
        if (r->fileno == fileno && r->block == block)
            return true;
    }
    return false;
}
