"""Slow and hostile clients (issue 13, item 6), through the real lighttpd of
the shipped run config (server.stream-response-body = 2, which pushes back
on the responder when a client does not read):

- a stream whose client stops reading ends at its idle deadline as
  client_closed, its upstream is cancelled and its worker serves again;
- a chat answer to a client that does not read is given up on as soon;
- more non-reading stream clients than there are worker threads do not make
  /api/v1/health unreachable for longer than that deadline;
- 1,100 connections that trickle their request header in, one byte every
  few seconds, do not keep a normal client from being served.

The bounds here are about time because the defect is: a deadline that is
not honoured.  They are generous (several times the configured idle
timeout), never tight."""

import http.client
import json
import resource
import socket
import threading
import time
import uuid

import harness
from harness import key_config

H = None
PATH = "/api/v1/stream"
IDLE_MS = 2000            # RELAYFORGE_STREAM_IDLE_TIMEOUT_MS in these tests
THREADS = 1               # per responder; the harness runs two responders
WORKERS = 2 * THREADS
# 60 tokens of 16 kB: under the 1 MB answer cap, and several times what the
# buffers between the responder and a stalled client hold (see stalled()).
# The upstream then stays open, so its cancellation shows.
HOG = {"kind": "ok", "tokens": ["x" * 16384] * 60, "delay_ms": 0,
       "stall_after": 60, "stall_seconds": 60}
CFG = dict(key_config("groq"), RELAYFORGE_CHAIN="groq", RELAYFORGE_MOCK="off",
           RELAYFORGE_STREAM_IDLE_TIMEOUT_MS=str(IDLE_MS),
           RELAYFORGE_THREADS=str(THREADS))
# How long a stalled stream may take to end: filling the buffers (well
# under a second), then the idle deadline, plus a wide margin for a noisy
# machine.
END_BOUND = IDLE_MS / 1000.0 + 10.0


def setup_module():
    global H
    H = harness.Harness("slow")


def teardown_module():
    if H:
        H.close()


def stalled(rid, prompt="never read", path=PATH):
    """Send a stream request and never read the answer.  A small receive
    buffer and a small MSS: lighttpd's kernel send buffer toward a client
    grows with the MSS, and on loopback (64 kB segments) it reaches 4 MB,
    enough to swallow a whole answer; with 536-byte segments it stays near
    200 kB, as toward a real far-away client, so lighttpd soon stops
    reading from the responder."""
    body = json.dumps({"prompt": prompt}).encode()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.settimeout(10)
    s.connect(("127.0.0.1", H.port))
    s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Content-Type: application/json\r\nX-Request-Id: %s\r\n"
               "Content-Length: %d\r\n\r\n" % (path, rid, len(body))).encode()
              + body)
    return s


def row_of(rid, timeout):
    rows = H.request_row(rid, timeout)
    return rows[0] if rows else None


def workers_all_free():
    """WORKERS streams at once, each held upstream for 8 s after its first
    token: with every worker free, each first token comes at once; a
    worker still pinned would make one wait 8 s for another to end."""
    H.mock_script("groq", [{"kind": "ok", "tokens": ["held", " on"],
                            "stall_after": 1, "stall_seconds": 8}] * WORKERS)
    firsts = [None] * WORKERS
    rids = ["hold%d-%s" % (i, uuid.uuid4().hex) for i in range(WORKERS)]

    def one(i):
        res = H.stream(PATH, "hold %d" % i, {"X-Request-Id": rids[i]},
                       max_seconds=30, close_after_tokens=1)
        toks = [t for (t, e, _) in res if e == "token"]
        firsts[i] = toks[0] if toks else None
    ts = [threading.Thread(target=one, args=(i,)) for i in range(WORKERS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    # Leave the workers idle for the next test.
    for rid in rids:
        row_of(rid, 20)
    return firsts


def test_stream_whose_client_stops_reading_ends_at_idle_deadline():
    H.use(CFG)
    H.mock_default("groq", HOG)
    rid = "stall-" + uuid.uuid4().hex
    t0 = time.monotonic()
    s = stalled(rid)
    try:
        row = row_of(rid, END_BOUND)
        took = time.monotonic() - t0
        assert row is not None, \
            "the stream did not end within %.0f s of a client that stopped " \
            "reading (idle timeout %d ms)" % (END_BOUND, IDLE_MS)
        assert row["error_code"] == "client_closed", row
        assert took <= END_BOUND, took

        def cancelled():
            calls = H.mock_calls("groq")
            return calls and calls[0]["closed_at"]
        assert harness.wait_until(cancelled, 5), \
            "the upstream transfer was not cancelled"
        log = H.errorlog(H.log_mark)
        assert "took no output for %d ms" % IDLE_MS in log, log[-2000:]
        # Its worker is free again: every worker takes a stream at once.
        firsts = workers_all_free()
        assert all(f is not None and f < 5.0 for f in firsts), firsts
    finally:
        s.close()


def test_chat_answer_to_a_client_that_does_not_read_is_bounded():
    # A chat answer of about 1 MB: more than the buffers take, so it waits
    # on the client, and is given up at the write deadline.
    H.use(CFG)
    H.mock_default("groq", {"kind": "ok", "text": "y" * 983040})
    rid = "chat-stall-" + uuid.uuid4().hex
    t0 = time.monotonic()
    s = stalled(rid, "a long answer", "/api/v1/chat")
    try:
        row = row_of(rid, END_BOUND)
        assert row is not None, \
            "the chat answer was still held %.0f s later" % END_BOUND
        # The answer waits on its loop, not on a worker; it is given up
        # at the write deadline.
        assert harness.wait_until(lambda: "took no output for %d ms" % IDLE_MS
                                  in H.errorlog(H.log_mark), END_BOUND), \
            "no stall line"
        assert time.monotonic() - t0 <= END_BOUND
        H.mock_default("groq", {"kind": "ok"})
        st, _, body = H.chat("next")
        assert st == 200, body
    finally:
        s.close()


def test_non_reading_clients_do_not_block_health():
    H.use(CFG)
    H.mock_default("groq", HOG)
    n = WORKERS + 2
    rids = ["hog%d-%s" % (i, uuid.uuid4().hex) for i in range(n)]
    socks = []
    try:
        for rid in rids:
            socks.append(stalled(rid))
        time.sleep(0.5)  # let them reach the responders first
        # Queued behind the hogs, /health waits for at most two rounds of
        # stalled streams (n / WORKERS of them per worker) to time out.
        bound = (n // WORKERS + 1) * END_BOUND
        t0 = time.monotonic()
        st, _, body = H.get("/api/v1/health", timeout=bound + 5)
        took = time.monotonic() - t0
        assert st == 200 and body["data"]["status"] in ("ok", "degraded"), \
            (st, body)
        assert took <= bound, "health took %.1f s" % took
        for rid in rids:
            row = row_of(rid, bound)
            assert row is not None and row["error_code"] == "client_closed", \
                (rid, row)
        H.mock_default("groq", {"kind": "ok"})
        st, _, body = H.chat("and now a chat")
        assert st == 200 and body["data"]["meta"]["finalProvider"] == "groq", \
            body
    finally:
        for s in socks:
            s.close()


# ------------------------------------------------------------ slowloris

TRICKLERS = 1100
TRICKLE_EVERY = 2.0       # seconds between two bytes of one connection


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_tricklers(n):
    """n connections that each sent the start of a request header."""
    socks = []
    for i in range(n):
        s = socket.socket()
        s.settimeout(10)
        s.connect(("127.0.0.1", H.port))
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"X-Trickle: ")
        s.setblocking(False)
        socks.append(s)
    return socks


def trickle(socks, stop):
    """One more byte of the header value on every connection, every
    TRICKLE_EVERY seconds, until stop is set."""
    while not stop.wait(TRICKLE_EVERY):
        for s in socks:
            try:
                s.send(b"a")
            except OSError:
                pass


def still_open(socks):
    """How many of the connections the server has not closed."""
    n = 0
    for s in socks:
        try:
            s.recv(1)  # an answer (408, 400) or EOF: the server let go
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def normal_request(method, path, body=None, timeout=15):
    """A request from another loopback address, so that a per-address cap
    in front of the server would not count it with the tricklers."""
    conn = http.client.HTTPConnection("127.0.0.1", H.port, timeout=timeout,
                                      source_address=("127.0.0.2", 0))
    try:
        hdrs = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=json.dumps(body) if body else None,
                     headers=hdrs)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read().decode())
    finally:
        conn.close()


def test_1100_trickling_connections_leave_others_served():
    H.use({})
    limit = raise_nofile(TRICKLERS + 512)
    assert limit >= TRICKLERS + 64, "open-file limit too low: %d" % limit
    socks = open_tricklers(TRICKLERS)
    stop = threading.Event()
    th = threading.Thread(target=trickle, args=(socks, stop), daemon=True)
    th.start()
    try:
        time.sleep(2 * TRICKLE_EVERY)  # the attack is in place
        st, body = normal_request("GET", "/api/v1/health")
        assert st == 200 and body["success"], body
        st, body = normal_request("POST", "/api/v1/chat",
                                  {"prompt": "served while under attack"})
        assert st == 200 and body["data"]["text"], body
        held = still_open(socks)
        # The attack was real: the server still holds its connections.
        assert held >= TRICKLERS - 10, "only %d tricklers open" % held
    finally:
        stop.set()
        th.join()
        for s in socks:
            s.close()


def test_zz_no_sanitizer_reports():
    # Leak reports appear when the responders exit: stop them first.
    H.stop_lighttpd()
    reports = H.sanitizer_reports()
    assert not reports, "%d sanitizer report(s) in the responders' " \
        "stderr, first: %s" % (len(reports),
                               " | ".join(reports[0].split("\n")[:6]))
