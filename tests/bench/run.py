#!/usr/bin/env python3
"""Run the benchmarks of a build directory and gather their figures.

Each benchmark program prints one JSON object per line:
{"name", "value", "unit", "baseline", "ratio", "target"}. This script runs
them all (with the build directory as working directory), prints a table
and writes BUILDDIR/bench-results.json. Exit status is non-zero only when a
benchmark program fails; a figure below its target is reported, not fatal.

usage: tests/bench/run.py BUILDDIR [NAME...]
"""
import json
import os
import subprocess
import sys


def main():
    builddir = sys.argv[1]
    only = set(sys.argv[2:])
    benches = json.loads(subprocess.run(
        ["meson", "introspect", "--benchmarks", builddir],
        check=True, capture_output=True, text=True).stdout)
    results = []
    failed = []
    for b in benches:
        if only and b["name"] not in only:
            continue
        print(f"running {b['name']} ...", file=sys.stderr, flush=True)
        env = dict(os.environ)
        env.update(b.get("env") or {})
        proc = subprocess.run(b["cmd"], cwd=os.path.abspath(builddir), env=env,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True)
        sys.stderr.write(proc.stderr)
        for line in proc.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                results.append(json.loads(line))
            elif line:
                print(line, file=sys.stderr)
        if proc.returncode != 0:
            failed.append(b["name"])
    path = os.path.join(builddir, "bench-results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    w = max([len(r["name"]) for r in results] + [4])
    print(f"{'name':<{w}}  {'value':>10}  {'baseline':>10}  unit      ratio  target")
    for r in results:
        mark = "" if r["ratio"] >= r["target"] else "  (below target)"
        print(f"{r['name']:<{w}}  {r['value']:>10.1f}  {r['baseline']:>10.1f}  "
              f"{r['unit']:<8} {r['ratio']:>6.2f}  {r['target']:>6.2f}{mark}")
    print(f"results written to {path}")
    if failed:
        print("benchmark programs that failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
