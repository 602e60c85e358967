#!/usr/bin/env python3
"""Run every test suite of one or more meson build directories.

Each test executable speaks TAP (GLib's --tap, or a script printing TAP).
Every "ok"/"not ok" line counts as one test case; a test program that
crashes, times out or exits non-zero without reporting a failure counts as
one failure, and so does every case its plan announced but never reported.
The last line printed is "N passed, N failed" summed over everything run.
Exit status is 0 only when nothing failed and at least one case ran.

usage: tests/run.py [--suite NAME]... BUILDDIR[:SUITE,...] ...
A suite list after a build directory limits that directory to those suites
(e.g. build-asan:unit); --suite limits every directory.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

TAP_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*-?\s*(.*)$")
TAP_PLAN = re.compile(r"^1\.\.(\d+)")


def list_tests(builddir):
    out = subprocess.run(["meson", "introspect", "--tests", builddir],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_one(test, builddir):
    env = dict(os.environ)
    env.update(test.get("env") or {})
    timeout = test.get("timeout") or 60
    cwd = test.get("workdir") or builddir
    start = time.monotonic()
    proc = subprocess.Popen(test["cmd"], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True,
                            errors="replace")
    timed_out = False
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        # Ask politely first so FUSE tests can unmount, then force.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    return proc.returncode, output, timed_out, time.monotonic() - start


def count_tap(output):
    passed = failed = skipped = 0
    planned = None
    failures = []
    for line in output.splitlines():
        m = TAP_PLAN.match(line)
        if m:
            planned = int(m.group(1))
            continue
        m = TAP_RESULT.match(line)
        if not m:
            continue
        desc = m.group(3)
        if m.group(1) == "ok":
            if "# SKIP" in desc.upper():
                skipped += 1
            else:
                passed += 1
        elif "# TODO" in desc.upper():
            skipped += 1
        else:
            failed += 1
            failures.append(desc)
    return passed, failed, skipped, planned, failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", action="append", default=[],
                    help="only run tests of this suite (repeatable)")
    ap.add_argument("builddirs", nargs="+")
    args = ap.parse_args()

    total_pass = total_fail = total_skip = 0
    for spec in args.builddirs:
        builddir, _, only = spec.partition(":")
        wanted = set(args.suite) | set(filter(None, only.split(",")))
        for test in list_tests(builddir):
            suites = [s.split(":")[-1] for s in test.get("suite", [])]
            if "bench" in suites:
                continue
            if wanted and not wanted & set(suites):
                continue
            label = f"{os.path.basename(os.path.normpath(builddir))}/{test['name']}"
            rc, output, timed_out, secs = run_one(test, builddir)
            p, f, s, planned, failures = count_tap(output)
            missing = 0
            if planned is not None and p + f + s < planned:
                missing = planned - (p + f + s)
                f += missing
            problem = None
            if timed_out:
                problem = f"timed out after {test.get('timeout')} s"
            elif rc != 0 and rc != 77:
                problem = f"exited with status {rc}"
            if problem and f == 0:
                f = 1
            if rc == 77 and p + f + s == 0:
                s = 1
            status = "FAIL" if f else "ok"
            print(f"{status:4} {label}: {p} passed, {f} failed"
                  + (f", {s} skipped" if s else "")
                  + f" ({secs:.1f} s)" + (f" — {problem}" if problem else ""),
                  flush=True)
            if f:
                print(f"---- output of {label} ----")
                lines = output.splitlines()
                for line in lines[-200:]:
                    print("    " + line)
                for desc in failures:
                    print(f"  failed case: {desc}")
                if missing:
                    print(f"  {missing} planned case(s) never reported")
                print("----", flush=True)
            total_pass += p
            total_fail += f
            total_skip += s
    if total_pass + total_fail == 0:
        print("no test case ran")
        total_fail = 1
    line = f"{total_pass} passed, {total_fail} failed"
    if total_skip:
        line += f", {total_skip} skipped"
    print(line)
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
