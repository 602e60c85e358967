/* cache_test_util.h — helpers shared by the cache unit tests: scratch
 * directories, a default configuration, the per-test fixture built on
 * them, a deterministic byte pattern and a count of open data files.
 * No shared state, no locks. */
#pragma once

#include "cache/cache.h"

#include <glib.h>
#include <stdint.h>

/* A fresh directory under the system temp dir (g_free the result). */
char *ct_tmpdir(void);
/* Removes a directory tree made by a test. */
void ct_rmtree(const char *dir);
/* Defaults: store "store-A", 4096-byte blocks, no limit, writeback,
 * cache-on-read on; cache dir = dir. */
void ct_config(CacheConfig *cfg, const char *dir);
/* The byte "on tape" at `off` of object `id`. */
uint8_t ct_pattern(uint64_t id, uint64_t off);
void ct_fill_pattern(uint64_t id, uint64_t off, void *buf, size_t len);
/* A fill function serving ct_pattern; owner may be NULL or a gint counter
 * of calls (atomic). */
int ct_fill_fn(void *owner, uint64_t id, uint64_t off, void *buf,
               size_t len);
/* Opens the cache or fails the test with the error. */
Cache *ct_open(const CacheConfig *cfg);

/* Per-test fixture of the gtest suites: a scratch directory and a
 * ct_config there whose fill function counts its calls in `fills`. */
typedef struct {
    char *dir;
    CacheConfig cfg;
    gint fills;
} CtFixture;
void ct_fixture_setup(CtFixture *f, gconstpointer data);
void ct_fixture_teardown(CtFixture *f, gconstpointer data);
/* Registers test `fn` (taking a CtFixture) to run between them. */
#define CT_ADD(name, fn) \
    g_test_add(name, CtFixture, NULL, ct_fixture_setup, fn, \
               ct_fixture_teardown)

/* How many descriptors this process has open on cache data files
 * (names ending in ".data"), read from /proc/self/fd. */
int ct_open_data_files(void);
