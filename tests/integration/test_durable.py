"""No acknowledged request loses its row (issue 13, item 3) and /health
tells the truth about the store (item 5).

The kill tests run concurrent chat and stream clients, each request with a
unique X-Request-Id, SIGKILL every responder process while answers are
flowing (once with a plain store, once while another connection holds
BEGIN EXCLUSIVE on the SQLite file), restart lighttpd and then require
that every acknowledged request -- a chat answer received whole, a stream
that reached its done event -- has exactly one row, and that
PRAGMA integrity_check says ok.  Nothing here asserts a duration: the
waits are for the rows to appear, with generous bounds.
"""

import os
import signal
import threading
import time
import uuid

import harness

H = None
CLIENTS = 8
# The built-in mock answers in-process: no provider-state writes on the
# request's path, so a locked store holds up only the log.
CFG = {"RELAYFORGE_MOCK_DELAY_MS": "1", "RELAYFORGE_THREADS": "8"}


def setup_module():
    global H
    H = harness.Harness("durable")


def teardown_module():
    if H is not None:
        H.close()


def Locker(path):
    """Another session's write lock on the store (harness.locker: the
    SQLite file's BEGIN EXCLUSIVE, or PostgreSQL table locks)."""
    return H.locker()


class Load:
    """CLIENTS threads sending chat and stream requests, alternately, until
    stop(); .acked holds the request ids whose answer arrived whole."""

    def __init__(self, tag):
        self.tag = tag
        self.acked = []
        self.sent = 0
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(k,),
                                         daemon=True) for k in range(CLIENTS)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.halt.set()
        for t in self.threads:
            t.join(timeout=60)

    def count(self):
        with self.lock:
            return len(self.acked)

    def one(self, rid, stream):
        hdr = {"X-Request-Id": rid}
        body = {"prompt": "durable %s" % rid}
        if stream:
            res = H.stream("/api/v1/stream", body, headers=hdr,
                           max_seconds=30)
            done = res.events("done")
            return (res.status == 200 and
                    (res.headers or {}).get("x-request-id") == rid and
                    len(done) == 1 and done[0].get("ok") is True)
        st, hd, got = H.request("POST", "/api/v1/chat", body, hdr,
                                timeout=30, record=False)
        return (st == 200 and hd.get("x-request-id") == rid and
                isinstance(got, dict) and got.get("success") is True)

    def client(self, k):
        i = 0
        while not self.halt.is_set():
            rid = "%s-%d-%d" % (self.tag, k, i)
            i += 1
            with self.lock:
                self.sent += 1
            try:
                ok = self.one(rid, stream=(i % 2 == 0))
            except Exception:  # noqa: BLE001 -- a killed responder
                ok = False
            if ok:
                with self.lock:
                    self.acked.append(rid)


def kill_all_responders():
    pids = H.child_pids()
    assert pids, "no responder process to kill"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    harness.wait_until(lambda: not any(harness.alive(p) for p in pids), 10)
    return pids


def rows_of(tag):
    """{request_id: number of rows} of the requests of one test."""
    return dict(H.sql("SELECT request_id, COUNT(*) FROM requests"
                      " WHERE request_id LIKE ? GROUP BY request_id",
                      (tag + "-%",)))


def check_every_acked_row(tag, acked):
    harness.wait_until(lambda: not set(acked) - set(rows_of(tag)), 30)
    rows = rows_of(tag)
    lost = [r for r in acked if r not in rows]
    twice = {r: n for r, n in rows.items() if n != 1}
    assert not lost, "%d of %d acknowledged requests have no row, e.g. %s" % (
        len(lost), len(acked), lost[:5])
    assert not twice, "requests with more than one row: %s" % (
        list(twice.items())[:5])
    assert H.integrity_ok()


def kill_under_load(locked, rounds=2):
    """Kill every responder `rounds` times while the load runs (each time
    once answers are flowing, not after a fixed time); with locked, the
    store stays locked until after the last kill."""
    tag = "dur%s" % uuid.uuid4().hex[:8]
    H.use(CFG)
    locker = Locker(H.db_path) if locked else None
    load = Load(tag)
    try:
        load.start()
        goal = 150
        for _ in range(rounds):
            harness.wait_until(lambda: load.count() >= goal, 60)
            assert load.count() >= goal, "the load stalled at %d" % (
                load.count())
            kill_all_responders()
            # lighttpd starts new responders: answers flow again.
            goal = load.count() + 40
        if locker is not None:
            locker.release()
        harness.wait_until(lambda: load.count() >= goal, 30)
    finally:
        load.stop()
        if locker is not None:
            locker.release()
    acked = list(load.acked)
    # The next processes replay what the killed ones had spooled.
    H.restart(CFG)
    check_every_acked_row(tag, acked)
    return acked


def test_sigkill_under_load_loses_no_acknowledged_row():
    kill_under_load(locked=False, rounds=4)


def test_sigkill_while_the_store_is_locked_loses_no_acknowledged_row():
    kill_under_load(locked=True)


def health_data():
    st, hd, got = H.get("/api/v1/health")
    assert st == 200, (st, got)
    return got["data"]


def test_health_degraded_while_the_store_is_locked_then_ok():
    H.use(CFG)
    d = health_data()
    assert d["status"] == "ok" and d["db"] == "ok", d
    assert d["reason"] is None, d
    assert d["spool"] == {"rows": 0, "dropped": 0}, d
    tag = "hl%s" % uuid.uuid4().hex[:8]
    locker = Locker(H.db_path)
    try:
        d = health_data()
        assert d["status"] == "degraded", d
        assert "writable" in d["reason"], d
        # Answers go on while the store is locked; their rows wait in the
        # spool, and health (each process answers for its own) says so.
        for i in range(20):
            st, _, got = H.chat({"prompt": "locked %d" % i},
                                {"X-Request-Id": "%s-%d" % (tag, i)})
            assert st == 200, (st, got)
        seen = harness.wait_until(
            lambda: [x for x in [health_data()] if x["spool"]["rows"] > 0],
            20)
        assert seen, "no process reported spooled rows"
        assert seen[0]["status"] == "degraded", seen[0]
        assert seen[0]["spool"]["dropped"] == 0, seen[0]
    finally:
        locker.release()
    # Writes work again: ok, nothing waiting, without a restart (no sticky
    # "failed once" flag).  Ask several times: two processes answer.
    ok = harness.wait_until(
        lambda: all(x["status"] == "ok" and x["spool"]["rows"] == 0 and
                    x["reason"] is None for x in
                    [health_data() for _ in range(4)]), 30)
    assert ok, health_data()
    rows = rows_of(tag)
    assert len(rows) == 20 and set(rows.values()) == {1}, rows


def test_spool_bound_drops_and_counts():
    """RELAYFORGE_LOG_QUEUE=5 with the store locked: answers go on, each
    process keeps 5 rows, the rest are dropped and /health counts them."""
    H.use(dict(CFG, RELAYFORGE_LOG_QUEUE="5"))
    tag = "bd%s" % uuid.uuid4().hex[:8]
    locker = Locker(H.db_path)
    try:
        for i in range(20):
            st, _, got = H.chat({"prompt": "bound %d" % i},
                                {"X-Request-Id": "%s-%d" % (tag, i)})
            assert st == 200, (st, got)
        # 20 answers over two processes: one of them had more than 5.
        seen = harness.wait_until(
            lambda: [x for x in [health_data()] if x["spool"]["dropped"]],
            20)
        assert seen, "no process counted a dropped row"
        d = seen[0]
        assert d["status"] == "degraded" and d["spool"]["rows"] <= 5, d
    finally:
        locker.release()
    harness.wait_until(lambda: all(x["spool"]["rows"] == 0 for x in
                                   [health_data() for _ in range(4)]), 30)
    rows = rows_of(tag)
    assert 5 <= len(rows) <= 10 and set(rows.values()) == {1}, rows


def test_zz_no_sanitizer_reports():
    H.stop_lighttpd()
    reports = H.sanitizer_reports()
    assert not reports, "%d sanitizer report(s), first: %s" % (
        len(reports), " | ".join(reports[0].split("\n")[:6]))
