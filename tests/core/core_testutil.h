/* core_testutil.h — helpers shared by the core unit tests: scratch stores
 * with small volumes and parts (also with the library outside the store,
 * for recovery), path resolution through the core API, whole-file reads
 * and writes, a deterministic byte pattern, damaging tape files, running
 * work in a child that is killed. No shared state, no locks. */
#pragma once

#include "core/core.h"

#include <glib.h>
#include <stdint.h>

typedef struct {
    char *tmp;     /* scratch directory (removed by ctu_free) */
    char *store;   /* tmp/store */
    Core *core;
} CtuStore;

/* Criticals are fatal, but the warnings that fault tests provoke on
 * purpose (tapefs-core, tapefs-tape domains) are not. */
void ctu_strict_logs(void);
/* mkfs options for tests: 4 volumes of 8 MiB, 1 MiB parts, 4 KiB blocks. */
void ctu_mkfs_options(CoreMkfsOptions *o);
/* open options for tests: flushes only when asked (plus need_space). */
void ctu_open_options(CoreOpenOptions *o);
/* Create and open a scratch store (fails the test on error). */
CtuStore *ctu_new(const CoreMkfsOptions *mo, const CoreOpenOptions *oo);
void ctu_reopen(CtuStore *s, const CoreOpenOptions *oo);
void ctu_close(CtuStore *s);
void ctu_free(CtuStore *s);
void ctu_rmtree(const char *dir);

/* core_check (deep: every part read and verified) finds nothing; the
 * problems are printed before the test fails. */
void ctu_assert_clean(Core *c, bool deep);

/* Resolve an absolute path ("/a/b") from inode `root`; 0 if missing. */
uint64_t ctu_resolve(Core *c, uint64_t root, const char *path);
/* Inode of the parent of `path` and its last component. */
uint64_t ctu_parent(Core *c, uint64_t root, const char *path, const char **leaf);
/* Write `len` bytes at `off` into path (created if missing). 0 or -errno. */
int ctu_write(Core *c, const char *path, uint64_t off, const void *buf, size_t len);
/* Whole file contents through `root` (NULL when missing or on error). */
GBytes *ctu_read(Core *c, uint64_t root, const char *path, int *error);
/* Deterministic bytes. */
void ctu_pattern(uint64_t seed, uint64_t off, void *buf, size_t len);

/* A scratch directory for recovery tests: a store (made, not opened)
 * whose library is outside it, so the store can go and be rebuilt from
 * the volumes alone. `copy` and `fresh` are only names (not made). */
typedef struct {
    char *tmp;     /* removed by ctu_lib_free */
    char *store;   /* tmp/store */
    char *lib;     /* tmp/library */
    char *copy;    /* tmp/library-copy */
    char *fresh;   /* tmp/recovered */
} CtuLib;

/* mkfs with `mo` (NULL = ctu_mkfs_options) and the library in tmp/library. */
CtuLib *ctu_lib_new(const CoreMkfsOptions *mo);
void ctu_lib_free(CtuLib *l);
/* Open a store with ctu_open_options (fails the test on error). */
Core *ctu_open(const char *store);
/* cp -a from to (fails the test on error). */
void ctu_copy_tree(const char *from, const char *to);
/* Path of tape file `fileno` of `volume` in library `lib` (g_free). */
char *ctu_tape_file(const char *lib, const char *volume, uint32_t fileno);
/* Write the fault rules of volume `vol` of the library in directory
 * `lib` (see docs/FORMATS.md; fails the test on error). */
void ctu_put_faults(const char *lib, const char *vol, const char *rules);
/* The same for the library of a store made by ctu_new. */
void ctu_store_faults(const CtuStore *s, const char *vol, const char *rules);
/* XOR one byte of a file at `at` with 0x5a. */
void ctu_flip_byte(const char *path, off_t at);
/* Does some string of `strs` contain `needle`? */
gboolean ctu_any_contains(GPtrArray *strs, const char *needle);
/* In a forked child: open the store or _exit(2) with the message, and
 * open the journal `jpath` for appending (NULL: none, *jfd untouched) or
 * _exit(2). */
Core *ctu_child_open(const char *store, const CoreOpenOptions *o, const char *jpath, int *jfd);
/* Run fn(ud) in a forked child that then kills itself with SIGKILL, as a
 * machine that stops without closing anything; fails the test when the
 * child ends any other way (fn calls _exit(N) on its own failures). */
void ctu_run_killed(void (*fn)(void *ud), void *ud);
