/* test_cache_crash.c — kill -9 in the middle of work, then reopen.
 *
 * A child process writes rounds: every block of object 1 stamped with the
 * round number, fsync, then tells the parent the round is durable; object
 * 2 is written, fsync'ed, marked clean and its clean blocks dropped (hole
 * punched) every round. The parent kills the child with SIGKILL at some
 * point and reopens the cache: every block of object 1 must be dirty and
 * hold the last reported round (or the next one, partly written); no block
 * of object 2 may come back dirty unless it holds a stamp (a dirty block of
 * zeros would mean a punched block was resurrected). Object 3 is written,
 * fsync'ed and truncated every round: the same must hold for the blocks
 * the truncation punched out.
 *
 * No threads; the child is a forked copy that only talks through a pipe.
 */
#include "cache_test_util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BS 4096
#define NB1 24
#define NB2 8

static void stamp(uint64_t *p, size_t words, uint64_t v)
{
    for (size_t i = 0; i < words; i++)
        p[i] = v;
}

static void child(const char *dir, int wfd)
{
    CacheConfig cfg;
    ct_config(&cfg, dir);
    Cache *c = cache_open(&cfg, NULL);
    if (!c || cache_object_create(c, 1, NULL) < 0 ||
        cache_object_create(c, 2, NULL) < 0 ||
        cache_object_create(c, 3, NULL) < 0)
        _exit(2);
    uint64_t *buf = g_malloc(NB1 * BS);
    for (uint64_t round = 1;; round++) {
        stamp(buf, NB1 * BS / 8, round);
        /* Unaligned pieces, so heads and tails are read-modify-written. */
        uint64_t cut = 1000 + (round * 4096 + 77) % (NB1 * BS - 2000);
        if (cache_write(c, 1, 0, buf, cut, NULL) != (ssize_t)cut ||
            cache_write(c, 1, cut, (char *)buf + cut, NB1 * BS - cut,
                        NULL) != (ssize_t)(NB1 * BS - cut))
            _exit(3);
        if (cache_write(c, 2, 0, buf, NB2 * BS, NULL) != NB2 * BS)
            _exit(3);
        if (cache_fsync(c, 1, NULL) < 0 || cache_fsync(c, 2, NULL) < 0)
            _exit(4);
        uint64_t seq;
        GArray *sl = cache_dirty_slices(c, 2, 0, 0, &seq, NULL);
        if (!sl || cache_mark_clean(c, 2, 0, 0, seq, NULL) < 0 ||
            cache_drop_clean(c, 2, NULL) < 0)
            _exit(5);
        g_array_unref(sl);
        /* Object 3: dirty and durable, then truncated away (its blocks
         * are punched out only after a state file without them). */
        if (cache_write(c, 3, 0, buf, NB2 * BS, NULL) != NB2 * BS ||
            cache_fsync(c, 3, NULL) < 0 ||
            cache_truncate(c, 3, BS + 5, NULL) < 0)
            _exit(7);
        if (write(wfd, &round, sizeof round) != sizeof round)
            _exit(6);
    }
}

static void test_crash(gconstpointer data)
{
    int kill_after = GPOINTER_TO_INT(data);
    g_autofree char *dir = ct_tmpdir();
    int p[2];
    g_assert_cmpint(pipe(p), ==, 0);
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        close(p[0]);
        child(dir, p[1]);
        _exit(0);
    }
    close(p[1]);
    uint64_t last = 0;
    for (int i = 0; i < kill_after; i++) {
        ssize_t n = read(p[0], &last, sizeof last);
        g_assert_cmpint(n, ==, sizeof last);
    }
    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    int status = 0;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status));
    g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);
    close(p[0]);
    g_assert_cmpuint(last, ==, (uint64_t)kill_after);

    CacheConfig cfg;
    ct_config(&cfg, dir);
    Cache *c = ct_open(&cfg);
    g_autoptr(GArray) ids = cache_dirty_objects(c);
    g_assert_cmpuint(ids->len, >=, 1);
    g_assert_cmpuint(g_array_index(ids, uint64_t, 0), ==, 1);

    g_autofree uint64_t *buf = g_malloc(NB1 * BS);
    for (uint64_t b = 0; b < NB1; b++)
        g_assert_cmpint(cache_block_state(c, 1, b * BS, NULL), ==,
                        CACHE_BLOCK_DIRTY);
    g_assert_cmpint(cache_read(c, 1, 0, buf, NB1 * BS, NULL), ==, NB1 * BS);
    for (size_t i = 0; i < NB1 * BS / 8; i++)
        if (buf[i] != last && buf[i] != last + 1)
            g_error("object 1 word %zu holds %" G_GUINT64_FORMAT
                    " after round %" G_GUINT64_FORMAT " was fsync'ed", i,
                    buf[i], last);

    for (uint64_t b = 0; b < NB2; b++) {
        int st = cache_block_state(c, 2, b * BS, NULL);
        g_assert_cmpint(st, !=, CACHE_BLOCK_CLEAN); /* forgotten at open */
        g_assert_cmpint(cache_read(c, 2, b * BS, buf, BS, NULL), ==, BS);
        if (st == CACHE_BLOCK_DIRTY) {
            for (size_t i = 0; i < BS / 8; i++)
                g_assert_true(buf[i] == last || buf[i] == last + 1);
        } else {
            uint8_t want[BS];
            ct_fill_pattern(2, b * BS, want, BS);
            g_assert_cmpmem(buf, BS, want, BS);
        }
    }
    /* Object 3: a dirty block holds a whole stamp of round last or
     * last + 1, or (block 1) such a stamp cut to zeros at the truncation;
     * never zeros brought back from a punched block. */
    for (uint64_t b = 0; b < NB2; b++) {
        int st = cache_block_state(c, 3, b * BS, NULL);
        g_assert_cmpint(st, !=, CACHE_BLOCK_CLEAN);
        if (st != CACHE_BLOCK_DIRTY)
            continue;
        g_assert_cmpint(cache_read(c, 3, b * BS, buf, BS, NULL), ==, BS);
        bool ok = false;
        for (uint64_t v = last; v <= last + 1 && !ok; v++) {
            uint64_t want[BS / 8];
            stamp(want, BS / 8, v);
            ok = memcmp(buf, want, BS) == 0;
            if (!ok && b == 1) {
                memset((uint8_t *)want + 5, 0, BS - 5);
                ok = memcmp(buf, want, BS) == 0;
            }
        }
        if (!ok)
            g_error("object 3 block %" G_GUINT64_FORMAT " is dirty but holds "
                    "neither round %" G_GUINT64_FORMAT " nor the next", b,
                    last);
    }
    cache_close(c);
    ct_rmtree(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/cache/crash/kill-after-1-round",
                         GINT_TO_POINTER(1), test_crash);
    g_test_add_data_func("/cache/crash/kill-after-7-rounds",
                         GINT_TO_POINTER(7), test_crash);
    g_test_add_data_func("/cache/crash/kill-after-25-rounds",
                         GINT_TO_POINTER(25), test_crash);
    return g_test_run();
}
