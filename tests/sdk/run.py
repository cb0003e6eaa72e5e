#!/usr/bin/env python3
"""The official OpenAI SDK (npm "openai", pinned in tests/package.json)
driving the gateway as a user would: tests/sdk/cases.mjs, run by node
against lighttpd + the responder + the scriptable mock upstream of the
integration suite (tests/integration/harness.py).

    python3 tests/sdk/run.py [-k PATTERN]

The cases need three configurations of the gateway (a chain with the
mock, one provider without the mock, an API token), so they run in three
phases; each phase restarts lighttpd with its settings and runs the cases
of that phase.  Prints "ok sdk.<case>" or "FAIL sdk.<case>: <reason>" per
case, and a last line "RESULT <passed> <failed>".  Needs node and
tests/node_modules (make node-deps).
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

TOKEN = "sdk-test-token-4d2a"
PHASES = [
    ("open", dict(harness.key_config("groq", "gemini"),
                  RELAYFORGE_RETRIES="0")),
    ("nomock", dict(harness.key_config("groq"), RELAYFORGE_RETRIES="0",
                    RELAYFORGE_MOCK="off")),
    ("token", dict(harness.key_config("groq"), RELAYFORGE_RETRIES="0",
                   RELAYFORGE_API_TOKEN=TOKEN)),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", dest="pattern", default="")
    args = ap.parse_args()
    sdk = os.path.join(ROOT, "tests", "node_modules", "openai", "package.json")
    if not os.path.exists(sdk):
        print("FAIL sdk.setup: the openai package is not installed "
              "(make node-deps)")
        print("RESULT 0 1")
        return 1
    passed = failed = 0
    H = harness.Harness("sdk")
    try:
        for phase, cfg in PHASES:
            H.use(cfg)
            env = dict(os.environ, RF_BASE="http://127.0.0.1:%d/v1" % H.port,
                       RF_MOCK="http://127.0.0.1:%d" % H.mock_port,
                       RF_TOKEN=TOKEN, RF_PATTERN=args.pattern)
            r = subprocess.run(["node", os.path.join(HERE, "cases.mjs"),
                                phase], env=env, cwd=os.path.join(ROOT,
                                                                  "tests"),
                               capture_output=True, text=True, timeout=300)
            out = r.stdout + r.stderr
            sys.stdout.write("".join(ln + "\n" for ln in out.splitlines()
                                     if not ln.startswith("RESULT ")))
            m = re.findall(r"^RESULT (\d+) (\d+)$", r.stdout, re.M)
            if not m or r.returncode not in (0, 1):
                print("FAIL sdk.%s: node exited %d without a RESULT line"
                      % (phase, r.returncode))
                failed += 1
                continue
            passed += int(m[-1][0])
            failed += int(m[-1][1])
        H.stop_lighttpd()  # leak reports are written at exit
        reports = H.sanitizer_reports()
        if reports:
            print("FAIL sdk.sanitizers: " + reports[0])
            failed += 1
    finally:
        H.close()
    print("RESULT %d %d" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
