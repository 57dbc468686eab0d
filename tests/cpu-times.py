#!/usr/bin/env python3
"""CPU time of meson tests, which a shared machine does not blur as it blurs
wall time (docs/testing.md, "Test speed").

usage: tests/cpu-times.py BUILD_DIR [-j N] [--unset VAR]... TEST...

Runs each named test of BUILD_DIR (its command and environment from
`meson introspect --tests`, not rebuilt) N at a time (2, as make test) and
prints, per test, its wall time and its CPU time: user + sys of the test
and of every process it waited for (the service, the clients, the
simulators), from wait4(). Each test's output goes to
BUILD_DIR/meson-logs/cpu-times/TEST.log; from it the script counts the
integration fixture's `setup demo` runs and service unlocks, and the failed
commands after which the service still answered. --unset VAR runs the
tests without VAR (e.g. ST_TEST_PIN_HASH_ITERATIONS, to see what the
test-only cost knob saves)."""
import json
import os
import re
import subprocess
import sys
import threading
import time


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        sys.exit(__doc__)
    build = os.path.abspath(argv[1])
    args = argv[2:]
    jobs, unset = 2, []
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt == "-j" and args:
            jobs = int(args.pop(0))
        elif opt == "--unset" and args:
            unset.append(args.pop(0))
        else:
            sys.exit("unknown option %s\n%s" % (opt, __doc__))
    tests = {t["name"]: t for t in json.loads(subprocess.check_output(
        ["meson", "introspect", build, "--tests"]))}
    missing = [n for n in args if n not in tests]
    if missing or not args:
        sys.exit("no such test in %s: %s (meson test -C %s --list)" % (build, " ".join(missing) or "none named", build))
    logdir = os.path.join(build, "meson-logs", "cpu-times")
    os.makedirs(logdir, exist_ok=True)
    queue, lock, rows = list(args), threading.Lock(), []

    def run(t):
        env = dict(os.environ)
        env.update(t["env"])
        for var in unset:
            env.pop(var, None)
        path = os.path.join(logdir, t["name"] + ".log")
        start = time.monotonic()
        with open(path, "w") as log:
            proc = subprocess.Popen(t["cmd"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=t.get("workdir") or build)
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        with open(path, errors="replace") as log:
            text = log.read()
        row = (t["name"], os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime,
               len(re.findall(r"^# \$ .* setup demo$", text, re.M)),
               len(re.findall(r"station unlock \(the fixture", text, re.M)),
               text.count("the service lives on and answers"))
        with lock:
            rows.append(row)
            print("%-16s exit %-3d wall %7.1f s  cpu %7.1f s  setups %d  service unlocks %d  "
                  "failed commands, service alive %d" % row, flush=True)

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                name = queue.pop(0)
            run(tests[name])

    threads = [threading.Thread(target=worker) for _ in range(jobs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print("total: cpu %.1f s, wall summed %.1f s; logs in %s" % (
        sum(r[3] for r in rows), sum(r[2] for r in rows), logdir))
    return 1 if any(r[1] != 0 for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
