/* bench.h — helpers shared by the benchmark programs in tests/bench.
 *
 * A benchmark measures the thing under test and a baseline doing the same
 * physical work in the same run, several times, and reports the median of
 * each and their ratio (baseline time / measured time, so 1.0 = as fast as
 * the baseline and higher is better). Each figure is printed as one JSON
 * object on its own line; tests/bench/run.py gathers them.
 *
 * No locks: benchmarks are single-threaded drivers.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in seconds. */
double bench_now(void);

/* Median of n doubles (the array is sorted in place). */
double bench_median(double *v, size_t n);

/* Number of repetitions: $TAPEFS_BENCH_RUNS or 5. */
int bench_runs(void);

/* Scale factor for data sizes: $TAPEFS_BENCH_SCALE (0 < s <= 1) or 1.
 * Lets a quick run use less data; reported figures use the full size. */
double bench_scale(void);

/* A fresh scratch directory under $TAPEFS_BENCH_DIR or the build dir's
 * bench-tmp; removed by bench_rmtree(). Returned string is g_malloc'ed. */
char *bench_tmpdir(const char *tag);
void bench_rmtree(const char *path);

/* Drop a file's pages from the page cache (fdatasync + POSIX_FADV_DONTNEED)
 * so read baselines and measured reads start equally cold. */
void bench_drop_file_cache(const char *path);

/* Print one figure: value and baseline are in `unit` (e.g. "MiB/s"),
 * ratio = value / baseline for throughputs. */
void bench_report(const char *name, double value, double baseline,
                  const char *unit, double target);
