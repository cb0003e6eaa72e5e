"""Streams are not threads (issue 15), through the real lighttpd of the
shipped run config and the scriptable mock upstream:

- clients that stop reading (many more than worker threads x processes)
  do not delay anyone else, and are closed at their idle deadline as
  client_closed, their upstreams cancelled;
- 300 slow streams at once with the default threads: every one completes
  with all its tokens and `done`, and a chat sent meanwhile is answered
  promptly;
- RELAYFORGE_MAX_STREAMS: past the cap a request is refused at once with
  503 provider_unavailable and Retry-After: 1, on /api/v1 (chat and
  stream) and /v1 (OpenAI's shape, x-should-retry: true), and accepted
  again once the others have finished.

A client's hang-up mid-stream (the upstream closed at once, the row
client_closed) is test_stream.test_client_disconnect_cancels_upstream_and_
is_logged and test_openai.test_stream_client_hangup_cancels_upstream_and_
is_logged; they run on whatever drives the relay, so they are not repeated
here.

Time: the defect is a queue, a matter of time, so the ordinary requests
made while the gateway holds many streams have one bound each, BOUND
seconds (several hundred times what they take on an idle gateway, and far
below what they wait when queued behind the streams); the other checks are
counts and orders."""

import http.client
import json
import resource
import selectors
import socket
import threading
import time
import uuid

import harness
from harness import key_config

H = None    # two responder processes, as every other module
H1 = None   # one responder process: RELAYFORGE_MAX_STREAMS is per process
STREAM = "/api/v1/stream"
CHAT = "/api/v1/chat"
OAI = "/v1/chat/completions"
# The one time bound (see the module comment): an ordinary request made
# while the gateway holds many streams must be answered within it.
BOUND = 5.0
# Worker threads per process in the test config (RELAYFORGE_THREADS's
# default) times the harness's two processes: every crowd below is well
# above it, so a thread per request would make the rest wait.
WORKERS = 8 * 2


class OneResponder(harness.Harness):
    """The harness with one responder process, so that a per-process cap
    is the whole gateway's."""

    def render(self, procs=2):
        super().render(procs=1)


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def setup_module():
    global H
    # Before lighttpd starts, which inherits the limit: 300 streams hold
    # 300 sockets here and 600 descriptors in lighttpd.
    raise_nofile(4096)
    H = harness.Harness("relay")


def teardown_module():
    for h in (H, H1):
        if h:
            h.close()


def one_responder():
    global H1
    if H1 is None:
        H1 = OneResponder("relay1")
    return H1


# ------------------------------------------------------------ HTTP bytes

def request_bytes(path, body, headers=None):
    raw = json.dumps(body).encode()
    hdrs = {"Host": "127.0.0.1", "Content-Type": "application/json",
            "Content-Length": str(len(raw)), "Connection": "close"}
    hdrs.update(headers or {})
    return ("POST %s HTTP/1.1\r\n" % path + "".join(
        "%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n").encode() + raw


def dechunk(data):
    out, i = b"", 0
    while True:
        j = data.find(b"\r\n", i)
        if j < 0:
            return out
        size = int(data[i:j].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return out
        out += data[j + 2:j + 2 + size]
        i = j + 2 + size + 2


def parse_http(raw):
    """(status, headers with lower-case names, body bytes) of a whole
    answer, or (0, {}, b"") when no head arrived."""
    head, sep, rest = bytes(raw).partition(b"\r\n\r\n")
    if not sep:
        return 0, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        rest = dechunk(rest)
    elif "content-length" in hdrs:
        rest = rest[:int(hdrs["content-length"])]
    return int(lines[0].split()[1]), hdrs, rest


def sse(body):
    """[(event, data)] of an event-stream body; data parsed as JSON where
    it is JSON (event None for /v1's unnamed events)."""
    out = []
    for block in body.decode("utf-8", "replace").replace(
            "\r\n", "\n").split("\n\n"):
        ev, data = None, []
        for ln in block.split("\n"):
            if ln.startswith("event:"):
                ev = ln[6:].strip()
            elif ln.startswith("data:"):
                v = ln[5:]
                data.append(v[1:] if v.startswith(" ") else v)
        if data:
            text = "\n".join(data)
            try:
                out.append((ev, json.loads(text)))
            except ValueError:
                out.append((ev, text))
    return out


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.raw = bytearray()
        self.eof_at = None   # time.monotonic() when the server closed

    def answer(self):
        return parse_http(self.raw)


class Crowd:
    """Many requests on raw sockets, read by one selector thread (hundreds
    of client threads would cost this process more than the gateway)."""

    def __init__(self, port, requests, seconds):
        self.conns = []
        self.sel = selectors.DefaultSelector()
        self.deadline = time.monotonic() + seconds
        self.stop = threading.Event()
        for data in requests:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(data)
            s.setblocking(False)
            c = Conn(s)
            self.conns.append(c)
            self.sel.register(s, selectors.EVENT_READ, c)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        left = len(self.conns)
        while left and time.monotonic() < self.deadline and \
                not self.stop.is_set():
            for key, _ in self.sel.select(0.2):
                c = key.data
                try:
                    d = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""
                if d:
                    c.raw += d
                    continue
                c.eof_at = time.monotonic()
                self.sel.unregister(c.sock)
                c.sock.close()
                left -= 1

    def wait(self):
        self.thread.join(max(0.0, self.deadline - time.monotonic()) + 5)

    def close(self):
        self.stop.set()
        self.wait()
        for c in self.conns:
            if c.eof_at is None:
                c.sock.close()
        self.sel.close()

    def open_count(self):
        return sum(1 for c in self.conns if c.eof_at is None)


def timed(fn):
    """(seconds, result) of fn()."""
    t0 = time.monotonic()
    r = fn()
    return time.monotonic() - t0, r


def other_client(method, path, body=None, timeout=3 * BOUND):
    """An ordinary request from another loopback address: (status,
    headers, parsed body); a time-out is status 0."""
    conn = http.client.HTTPConnection("127.0.0.1", H.port, timeout=timeout,
                                      source_address=("127.0.0.2", 0))
    try:
        hdrs = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=json.dumps(body) if body else None,
                     headers=hdrs)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), \
            json.loads(resp.read().decode())
    except socket.timeout:
        return 0, {}, None
    finally:
        conn.close()


def calls(h, name):
    return len(h.mock_calls(name))


# ------------------------------------------------------------ non-readers

IDLE_MS = 8000   # RELAYFORGE_STREAM_IDLE_TIMEOUT_MS: longer than BOUND
STALLED = 40
# 60 tokens of 16 kB (under the 1 MB answer cap), several times what the
# buffers between the responder and a stalled client hold, then the
# upstream stays open: its cancellation shows.
HOG = {"kind": "ok", "tokens": ["x" * 16384] * 60, "delay_ms": 0,
       "stall_after": 60, "stall_seconds": 60}
CFG_HOG = dict(key_config("groq", "cerebras"), RELAYFORGE_MOCK="off",
               RELAYFORGE_CHAIN="groq,cerebras",
               RELAYFORGE_STREAM_IDLE_TIMEOUT_MS=str(IDLE_MS))


def stalled(rid):
    """A stream request whose client never reads.  A small receive buffer
    and MSS keep the kernel from swallowing the answer on loopback (see
    test_slow.stalled), so lighttpd soon stops reading from the responder
    (server.stream-response-body = 2 in the run config)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.settimeout(10)
    s.connect(("127.0.0.1", H.port))
    s.sendall(request_bytes(STREAM, {
        "prompt": "never read",
        "options": {"strategy": "groq", "fallback": False}},
        {"X-Request-Id": rid}))
    return s


def test_non_reading_clients_do_not_delay_others():
    H.use(CFG_HOG)
    H.mock_default("groq", HOG)   # the non-readers' provider
    # cerebras answers everyone else at once ("Hello from cerebras").
    rids = ["stall%d-%s" % (i, uuid.uuid4().hex) for i in range(STALLED)]
    socks = []
    try:
        t0 = time.monotonic()
        for rid in rids:
            socks.append(stalled(rid))
        # Give them the time to reach the upstream (they all do at once
        # when a stream is not a thread; only WORKERS of them otherwise).
        harness.wait_until(lambda: calls(H, "groq") >= STALLED, BOUND, 0.25)
        other = {"prompt": "an ordinary request",
                 "options": {"strategy": "cerebras", "fallback": False}}
        took, (st, _, body) = timed(lambda: other_client("POST", CHAT, other))
        assert took <= BOUND, "a chat took %.1f s while %d clients did not " \
            "read (bound %.0f s)" % (took, STALLED, BOUND)
        assert st == 200 and body["data"]["text"] == "Hello from cerebras", \
            (st, body)
        res = H.stream(STREAM, other, max_seconds=30)
        done = [t for (t, e, _) in res if e == "done"]
        assert res.status == 200 and res.text() == "Hello from cerebras" \
            and res.events("done") == [{"ok": True}], (res.status, res[-3:])
        assert done[0] <= BOUND, "a reading stream took %.1f s while %d " \
            "clients did not read" % (done[0], STALLED)
        took, (st, _, body) = timed(lambda: other_client(
            "GET", "/api/v1/health"))
        assert st == 200 and took <= BOUND, (st, took)
        held = calls(H, "groq")
        assert held == STALLED, "%d of %d non-reading streams reached the " \
            "upstream while they were held" % (held, STALLED)
        # At the idle deadline every non-reader is closed and logged as a
        # client that went away; its upstream is cancelled.
        end = IDLE_MS / 1000.0 + 10.0
        for rid in rids:
            rows = H.request_row(rid, max(1.0, t0 + end - time.monotonic()))
            assert rows and rows[0]["error_code"] == "client_closed", \
                (rid, rows)

        def all_cancelled():
            return all(c["closed_at"] for c in H.mock_calls("groq"))
        assert harness.wait_until(all_cancelled, 5), \
            "an upstream of a closed non-reader was not cancelled"
    finally:
        for s in socks:
            s.close()


# ------------------------------------------------------------ many streams

CROWD = 300
SLOW_TOKENS = ["t%d " % i for i in range(7)]
# The first token after 1 s, then one every 500 ms: 4 s a stream.
SLOW = {"kind": "ok", "tokens": SLOW_TOKENS, "first_delay_ms": 1000,
        "delay_ms": 500}
CFG_SLOW = dict(key_config("groq"), RELAYFORGE_MOCK="off",
                RELAYFORGE_CHAIN="groq")


def test_300_slow_streams_with_the_default_threads():
    assert CROWD > 10 * WORKERS
    H.use(CFG_SLOW)
    H.mock_default("groq", SLOW)
    rids = ["crowd%d-%s" % (i, uuid.uuid4().hex) for i in range(CROWD)]
    # 4 s each: all at once, about 5 s; WORKERS at a time, over a minute.
    crowd = Crowd(H.port, [request_bytes(STREAM, {"prompt": "slow %d" % i},
                                         {"X-Request-Id": rids[i]})
                           for i in range(CROWD)], 20)
    try:
        harness.wait_until(lambda: calls(H, "groq") >= CROWD, BOUND, 0.25)
        took, (st, _, body) = timed(lambda: other_client(
            "POST", CHAT, {"prompt": "meanwhile"}))
        assert took <= BOUND, "a chat took %.1f s while %d streams were " \
            "open (bound %.0f s)" % (took, CROWD, BOUND)
        assert st == 200 and body["data"]["text"] == "".join(SLOW_TOKENS), \
            (st, body)
        crowd.wait()
        bad = []
        for i, c in enumerate(crowd.conns):
            st, hd, b = c.answer()
            evs = sse(b)
            toks = [d.get("text") for (e, d) in evs if e == "token"]
            dones = [d for (e, d) in evs if e == "done"]
            if st != 200 or toks != SLOW_TOKENS or dones != [{"ok": True}]:
                bad.append((i, st, len(toks), dones))
        assert not bad, "%d of %d streams did not complete, e.g. %s" % (
            len(bad), CROWD, bad[:3])
        assert calls(H, "groq") == CROWD + 1
    finally:
        crowd.close()


# ------------------------------------------------------------ the cap

CAP = 5
# The first token at once, then one every 3 s: each held stream stays
# open for 6 s after its first token.
HELD = {"kind": "ok", "tokens": ["held", " one", " two"], "delay_ms": 3000}
CFG_CAP = dict(key_config("groq"), RELAYFORGE_MOCK="off",
               RELAYFORGE_CHAIN="groq", RELAYFORGE_MAX_STREAMS=str(CAP))
FULL_MSG = "The gateway is at its limit of open requests; retry shortly."


def oai_body(stream=False):
    b = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        b["stream"] = True
    return b


def full_api(st, hd, body):
    """/api/v1's refusal of a full gateway."""
    assert st == 503, (st, body)
    assert hd.get("retry-after") == "1", hd
    assert hd.get("content-type", "").startswith("application/json"), hd
    assert body["success"] is False, body
    e = body["error"]
    assert e["code"] == "provider_unavailable", e
    assert e["message"] == FULL_MSG, e
    assert e["technicalDetails"] == "RELAYFORGE_MAX_STREAMS reached", e
    assert e["requestId"] == hd.get("x-request-id"), (e, hd)


def full_oai(st, hd, body):
    """/v1's refusal of a full gateway: OpenAI's shape, which the SDKs
    retry after Retry-After."""
    assert st == 503, (st, body)
    assert hd.get("retry-after") == "1", hd
    assert hd.get("x-should-retry") == "true", hd
    assert set(body) == {"error"}, body
    assert body["error"] == {"message": FULL_MSG, "type": "api_error",
                             "param": None, "code": "provider_unavailable"}, \
        body


def test_max_streams_refuses_at_once_then_accepts_again():
    h = one_responder()
    h.use(CFG_CAP)
    h.mock_default("groq", HELD)
    # Five held streams on both surfaces: the process is at its cap.
    reqs = [request_bytes(STREAM, {"prompt": "held %d" % i})
            for i in range(3)]
    reqs += [request_bytes(OAI, oai_body(stream=True)) for i in range(2)]
    crowd = Crowd(h.port, reqs, 25)
    try:
        assert harness.wait_until(lambda: all(
            b"held" in c.raw for c in crowd.conns), 10), \
            "the %d held streams did not all start" % CAP
        tag = uuid.uuid4().hex

        def rid(n):
            return {"X-Request-Id": "full-%s-%s" % (n, tag)}
        st, hd, b = h.post(CHAT, {"prompt": "sixth"}, rid("chat"))
        full_api(st, hd, b)
        res = h.stream(STREAM, {"prompt": "sixth"}, rid("stream"))
        full_api(res.status, res.headers, res.body)
        st, hd, b = h.post(OAI, oai_body(), rid("oai"))
        full_oai(st, hd, b)
        res = h.stream(OAI, oai_body(stream=True), rid("oai-stream"))
        full_oai(res.status, res.headers, res.body)
        # Refused at once, not queued until a held stream ended; and no
        # provider was asked.
        assert crowd.open_count() == CAP, \
            "the refusals came after a held stream had ended"
        assert calls(h, "groq") == CAP
        crowd.wait()
        for i, c in enumerate(crowd.conns):
            st, hd, b = c.answer()
            evs = sse(b)
            if i < 3:
                ok = evs and evs[-1] == ("done", {"ok": True})
            else:
                ok = evs and evs[-1] == (None, "[DONE]")
            assert st == 200 and ok, (i, st, evs[-2:])
        # Room again: the next requests are served.
        h.mock_default("groq", {"kind": "ok"})
        st, hd, b = h.post(CHAT, {"prompt": "room again"}, rid("again"))
        assert st == 200 and b["data"]["text"] == "Hello from groq", (st, b)
        res = h.stream(STREAM, {"prompt": "room again"})
        assert res.status == 200 and \
            res.events("done") == [{"ok": True}], (res.status, res[-2:])
        st, hd, b = h.post(OAI, oai_body())
        assert st == 200 and b["choices"][0]["message"]["content"] == \
            "Hello from groq", (st, b)
        # Refused at the door, so not in the request log (the row of the
        # request that came after them is).
        assert h.request_row("full-again-" + tag, 10)
        for n in ("chat", "stream", "oai", "oai-stream"):
            assert not h.dict_rows(
                "SELECT 1 FROM requests WHERE request_id=?",
                ("full-%s-%s" % (n, tag),)), n
    finally:
        crowd.close()


def test_zz_no_sanitizer_reports():
    # Leak reports appear when the responders exit: stop them first.
    for h in (H, H1):
        if h is None:
            continue
        h.stop_lighttpd()
        reports = h.sanitizer_reports()
        assert not reports, "%d sanitizer report(s) in the responders' " \
            "stderr, first: %s" % (len(reports),
                                   " | ".join(reports[0].split("\n")[:6]))
