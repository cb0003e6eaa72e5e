"""Moving a SQLite store's history to PostgreSQL with the documented
one-shot command (issue 12, item 7; docs/several-machines.md section 6),
end to end: requests served by a real gateway on a SQLite file, the
binary's `--copy-store FROM TO` into a throw-away PostgreSQL cluster
(tests/pgcluster.py), then a gateway on that database shows the old
requests in /api/v1/logs (with the node that served them) and counts them
in /api/v1/usage.  A second copy into the now non-empty database is
refused, and the password never shows in the command's output.

Runs in the default pass of the suite only (it brings its own server).
"""

import os
import subprocess
import sys
import uuid

import harness

sys.path.insert(0, os.path.join(harness.ROOT, "tests"))
import pgcluster  # noqa: E402

PG = None
OLD = None   # the gateway on a SQLite file
NEW = None   # the gateway on PostgreSQL
N = 6


def setup_module():
    global PG, OLD, NEW
    if harness.PG:
        return
    PG = pgcluster.Cluster()
    PG.__enter__()
    OLD = harness.Harness("copy-old")
    NEW = harness.Harness("copy-new")
    NEW.db_uri = PG.uri


def teardown_module():
    for h in (OLD, NEW):
        if h is not None:
            h.db_uri = None
            h.close()
    if PG is not None:
        PG.destroy()


def copy(src, dst):
    env = dict(os.environ, RELAYFORGE_NODE="old-box")
    return subprocess.run([harness.binary(), "--copy-store", src, dst],
                          capture_output=True, text=True, timeout=120,
                          env=env)


def test_copy_sqlite_history_into_postgresql():
    if harness.PG:
        raise harness.Skip("runs once, in the default pass")
    tag = uuid.uuid4().hex[:8]
    OLD.use()
    rids = ["copy-%s-%d" % (tag, i) for i in range(N)]
    for rid in rids:
        st, hd, body = OLD.chat({"prompt": "history %s" % rid},
                                headers={"X-Request-Id": rid})
        assert st == 200 and hd.get("x-request-id") == rid, body
    assert harness.wait_until(lambda: OLD.count_requests() >= N, 20), \
        OLD.count_requests()
    OLD.stop_lighttpd()  # the documented way: the old gateways stopped
    nodes = dict(OLD.sql("SELECT request_id, node FROM requests"))

    p = copy(OLD.db_path, PG.uri)
    assert p.returncode == 0, p.stderr
    assert "copied %d requests" % N in p.stdout, p.stdout
    assert pgcluster.PASSWORD not in p.stdout + p.stderr
    assert "***" in p.stdout, p.stdout  # the URI is shown redacted

    # A second copy would count everything twice: refused.
    again = copy(OLD.db_path, PG.uri)
    assert again.returncode == 1, (again.stdout, again.stderr)
    assert pgcluster.PASSWORD not in again.stdout + again.stderr

    NEW.use()
    st, _, body = NEW.get("/api/v1/logs?limit=200")
    assert st == 200, body
    items = {it["requestId"]: it for it in body["data"]["items"]}
    for rid in rids:
        assert rid in items, (rid, sorted(items))
        assert items[rid]["status"] == "success", items[rid]
        assert items[rid]["node"] == nodes[rid], (items[rid], nodes[rid])
    st, _, body = NEW.get("/api/v1/usage?window=24h")
    assert st == 200, body
    assert body["data"]["totals"]["requests"] == N, body["data"]["totals"]
