#!/usr/bin/env python3
"""Run the integration tests: every tests/integration/test_*.py module, each
test_* function in the order it is written.

    python3 tests/integration/runner.py [-k PATTERN] [-v]

A module may define setup_module() and teardown_module(); a failing
setup fails every test of the module.  Prints "ok <module>.<name>" or
"FAIL <module>.<name>: <reason>" per test and a last line
"RESULT <passed> <failed>".  -k keeps the tests whose "<module>.<name>"
matches PATTERN (a Python regular expression; a plain word is a substring).  -v prints the traceback of each failure.  Each test has
a time limit (RF_TEST_TIMEOUT seconds, default 120).
"""

import argparse
import importlib
import inspect
import os
import re
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


class TestTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise TestTimeout("test took longer than its time limit")


def where(tb):
    """file:line of the innermost frame inside a test module."""
    loc = ""
    for fr in traceback.extract_tb(tb):
        if os.path.basename(fr.filename).startswith("test_"):
            loc = "%s:%d" % (os.path.basename(fr.filename), fr.lineno)
    return loc


def reason(exc):
    msg = str(exc).strip().splitlines()
    msg = msg[0] if msg else ""
    text = type(exc).__name__ + (": " + msg if msg else "")
    if isinstance(exc, AssertionError) and msg:
        text = msg
    loc = where(exc.__traceback__)
    return text[:400] + (" (%s)" % loc if loc else "")


def tests_of(mod):
    funcs = [f for n, f in vars(mod).items()
             if n.startswith("test_") and inspect.isfunction(f)
             and f.__module__ == mod.__name__]
    return sorted(funcs, key=lambda f: f.__code__.co_firstlineno)


def run_module(modname, pattern, verbose, limit, counts):
    try:
        mod = importlib.import_module(modname)
    except Exception as e:  # noqa: BLE001 -- report any import failure
        print("FAIL %s.<import>: %s" % (modname, reason(e)), flush=True)
        counts[1] += 1
        return
    tests = [f for f in tests_of(mod)
             if not pattern or re.search(pattern, "%s.%s" % (modname,
                                                             f.__name__))]
    if not tests:
        return
    setup_error = None
    try:
        if hasattr(mod, "setup_module"):
            signal.alarm(limit)
            mod.setup_module()
    except Exception as e:  # noqa: BLE001
        setup_error = "setup: " + reason(e)
        if verbose:
            traceback.print_exc()
    finally:
        signal.alarm(0)
    try:
        for f in tests:
            name = "%s.%s" % (modname, f.__name__)
            if setup_error:
                print("FAIL %s: %s" % (name, setup_error), flush=True)
                counts[1] += 1
                continue
            t0 = time.monotonic()
            try:
                signal.alarm(limit)
                f()
                signal.alarm(0)
                took = " (%.1fs)" % (time.monotonic() - t0) if verbose else ""
                print("ok %s%s" % (name, took), flush=True)
                counts[0] += 1
            except Exception as e:  # noqa: BLE001
                signal.alarm(0)
                if type(e).__name__ == "Skip":  # harness.Skip: not this run
                    print("skip %s: %s" % (name, e), flush=True)
                    continue
                print("FAIL %s: %s" % (name, reason(e)), flush=True)
                if verbose:
                    traceback.print_exc()
                counts[1] += 1
    finally:
        signal.alarm(0)
        if hasattr(mod, "teardown_module"):
            try:
                mod.teardown_module()
            except Exception as e:  # noqa: BLE001
                print("teardown %s: %s" % (modname, reason(e)),
                      file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", dest="pattern", default="")
    ap.add_argument("-v", dest="verbose", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    signal.signal(signal.SIGALRM, on_alarm)
    limit = int(os.environ.get("RF_TEST_TIMEOUT", "120"))
    counts = [0, 0]
    mods = sorted(f[:-3] for f in os.listdir(HERE)
                  if f.startswith("test_") and f.endswith(".py"))
    t0 = time.monotonic()
    for m in mods:
        run_module(m, args.pattern, args.verbose, limit, counts)
    print("integration: %.1fs" % (time.monotonic() - t0), file=sys.stderr)
    print("RESULT %d %d" % (counts[0], counts[1]), flush=True)
    return 1 if counts[1] else 0


if __name__ == "__main__":
    sys.exit(main())
