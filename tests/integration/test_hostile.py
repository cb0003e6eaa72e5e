"""A hostile upstream (issue 13, item 1 and the UTF-8 part of item 7).

The mock upstream echoes what it was sent -- the key alone, the whole
Authorization / x-goog-api-key value, or both -- into every string field
of its answers ("echo" in tests/mock_upstream.py): model, modelVersion,
finish reasons, error codes, messages, types, Gemini status, blockReason
and details[].reason, in answers, errors, in-body errors, stream chunks,
in-stream errors and error events.  Every provider is driven through chat
and stream with each of them; then every 8-byte piece of every configured
key and gateway token is looked for in every response (status line,
headers, body, the raw SSE bytes and the JSON strings they decode to),
/api/v1/logs, /usage and /providers/status, the responders' stderr, and
the raw bytes of the SQLite file and its -wal.  Nothing may be found.

It also sends answer text with bytes that are not UTF-8 (overlong forms,
surrogates, code points above U+10FFFF, truncated sequences): the client
must get valid UTF-8 with U+FFFD in their place.
"""

import http.client
import json
import os

import harness
from harness import PROVIDERS

H = None
# Keys of their own: the harness' keys hold the provider ids, which every
# answer names.  Shaped like real keys, so a model id or an error code made
# of one passes every shape check and only the secret check stops it.
KEYS = {
    "groq": "gsk_h0st1leQ9zX7mB3nV5cR8tY2wKp4Ld6",
    "sambanova": "sn-h0st1le-8Fj2Rk5Tq9Wm3Xz7Cv1B",
    "cerebras": "csk-h0st1le6Yu4Io2Pa8Sd5Fg3Hj",
    "gemini": "AIzaSyH0st1leKl9Zx7Cv5Bn3Mq1We8Rt",
    "openrouter": "sk-or-v1-h0st1le4e7c2a9b5d8f1e6a3c0b",
}
TOKENS = {"api": "rf-api-token-7Hq2Lx9Wc4Vb",
          "admin": "rf-admin-token-3Kd8Pz5Ny1Mt"}
SECRETS = list(KEYS.values()) + list(TOKENS.values())
PIECES = sorted({s[i:i + 8] for s in SECRETS for i in range(len(s) - 7)})
CONFIG = dict({"%s_API_KEY" % p.upper(): KEYS[p] for p in PROVIDERS},
              RELAYFORGE_MOCK="off",
              RELAYFORGE_RETRIES="0", RELAYFORGE_FAILURE_THRESHOLD="1000",
              RELAYFORGE_API_TOKEN=TOKENS["api"],
              RELAYFORGE_ADMIN_TOKEN=TOKENS["admin"])
ECHO = ("key", "header", "all")
# (label, behaviour) tried on chat and stream, for every echo mode.
BOTH = [
    ("ok", {"kind": "ok"}),
    ("safety", {"kind": "safety"}),
    ("policy400", {"kind": "policy400"}),
    ("400", {"kind": "status", "status": 400}),
    ("401", {"kind": "status", "status": 401}),
    ("404", {"kind": "status", "status": 404}),
    ("429", {"kind": "status", "status": 429}),
    ("500", {"kind": "status", "status": 500}),
    ("error200", {"kind": "error200"}),
]
STREAM_ONLY = [
    ("error_before_text", {"kind": "ok", "error_after": 0}),
    ("error_after_text", {"kind": "ok", "error_after": 1}),
    ("error_event_before_text", {"kind": "ok", "error_event_after": 0}),
    ("error_event_after_text", {"kind": "ok", "error_event_after": 1}),
]
SENT = []  # request ids of every chat / stream request sent


def setup_module():
    global H
    H = harness.Harness("hostile")


def teardown_module():
    if H:
        H.close()


# ------------------------------------------------------------------ helpers

def leaks(blob, where):
    """Every piece of a secret found in blob (bytes or str)."""
    if isinstance(blob, bytes):
        blob = blob.decode("latin-1")
    return ["%s: %r" % (where, p) for p in PIECES if p in blob]


def json_strings(raw):
    """Each JSON document in raw (a body, or the data lines of SSE) decoded
    and dumped again without escapes, so an escaped piece is found too."""
    out = []
    text = raw.decode("utf-8", "replace")
    docs = [text] + [ln[5:].strip() for ln in text.splitlines()
                     if ln.startswith("data:")]
    for d in docs:
        try:
            out.append(json.dumps(json.loads(d), ensure_ascii=False))
        except ValueError:
            pass
    return "\n".join(out)


def send(method, path, body=None, token=None):
    """One request; (status, headers, raw body bytes).  http.client takes
    the transfer coding off, so a stream's body is its SSE bytes."""
    hdrs = {"Connection": "close"}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    raw = None
    if body is not None:
        raw = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", H.port, timeout=60)
    try:
        conn.request(method, path, body=raw, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        heads = resp.getheaders()
        status = resp.status
    finally:
        conn.close()
    return status, heads, data


def scan_response(status, heads, data, where):
    found = leaks("%d\n" % status, where)
    found += leaks("\n".join("%s: %s" % kv for kv in heads), where + " head")
    found += leaks(data, where + " body")
    found += leaks(json_strings(data), where + " json")
    return found


def ask(provider, endpoint, beh):
    """Script one hostile answer, send one request pinned to provider;
    returns (status, headers, body bytes, leaks)."""
    H.reset()  # no cooldown from the last scenario may skip the provider
    H.mock_script(provider, [beh])
    body = {"prompt": "hi", "options": {"strategy": provider,
                                        "fallback": False}}
    status, heads, data = send("POST", "/api/v1/" + endpoint, body,
                               TOKENS["api"])
    rid = dict((k.lower(), v) for k, v in heads).get("x-request-id")
    SENT.append(rid)
    calls = H.mock_calls(provider)
    assert calls, "%s %s %s: the mock was never called" % (
        provider, endpoint, beh)
    where = "%s %s %s" % (provider, endpoint, json.dumps(beh))
    return status, heads, data, scan_response(status, heads, data, where)


def drive(endpoint, cases):
    found = []
    for p in PROVIDERS:
        for label, beh in cases:
            for mode in ECHO:
                b = dict(beh, echo=mode)
                status, _, data, lk = ask(p, endpoint, b)
                found += lk
                if label == "ok":  # the answer itself still arrives
                    assert status == 200 and b"Hello" in data, (
                        p, endpoint, mode, status, data[:300])
    return found


# ------------------------------------------------------------------ tests

def test_chat_every_provider_every_field():
    H.use(CONFIG)
    found = drive("chat", BOTH)
    assert not found, "secret pieces reflected:\n" + "\n".join(found[:20])


def test_stream_every_provider_every_field():
    H.use(CONFIG)
    found = drive("stream", BOTH + STREAM_ONLY)
    assert not found, "secret pieces reflected:\n" + "\n".join(found[:20])


def test_hostile_model_is_dropped_not_passed_on():
    """A model id made of the key is shaped like one: only the secret check
    stops it.  The meta then says null; the answer itself still arrives."""
    H.use(CONFIG)
    status, _, data, lk = ask("groq", "chat", {"kind": "ok", "echo": "key"})
    assert not lk, lk
    assert status == 200, data[:300]
    meta = json.loads(data)["data"]["meta"]
    assert meta["model"] is None, meta
    assert meta["finishReason"] == "stop", meta
    assert json.loads(data)["data"]["text"] == "Hello from groq"


def test_error_code_shaped_like_a_key_is_left_out():
    H.use(CONFIG)
    status, _, data, lk = ask("sambanova", "chat",
                              {"kind": "status", "status": 404,
                               "echo": "key"})
    assert not lk, lk
    err = json.loads(data)["error"]
    assert err["technicalDetails"] == "HTTP 404 from upstream provider", err


def test_policy_message_redacted():
    H.use(CONFIG)
    status, _, data, lk = ask("groq", "chat", {"kind": "policy400",
                                               "echo": "header"})
    assert not lk, lk
    assert status == 422, data[:300]
    err = json.loads(data)["error"]
    assert err["code"] == "content_filtered", err
    assert "[redacted]" in err["message"], err


RAW = "c080" + "20" + "eda080" + "20" + "f4908080" + "20" + "e282" + "20" + \
    "ff" + "20" + "e282ac" + "20" + "f09f9880"


def expected_text():
    return "ok " + bytes.fromhex(RAW).decode("utf-8", "replace") + " end"


def test_invalid_utf8_chat_repaired():
    """Raw bytes that are not UTF-8 inside the upstream's JSON string reach
    the client as U+FFFD, each maximal invalid subpart once (what Python's
    "replace" does too); valid characters pass untouched."""
    H.use(CONFIG)
    for p in ("groq", "gemini"):
        status, _, data, lk = ask(p, "chat", {
            "kind": "ok", "text": "ok @@RAW@@ end", "raw_hex": RAW})
        assert not lk, lk
        assert status == 200, data[:300]
        text = data.decode("utf-8")  # strict: raises on invalid bytes
        assert json.loads(text)["data"]["text"] == expected_text(), text


def test_invalid_utf8_stream_repaired():
    H.use(CONFIG)
    for p in ("cerebras", "gemini"):
        status, _, data, lk = ask(p, "stream", {
            "kind": "ok", "tokens": ["ok ", "@@RAW@@", " end"],
            "raw_hex": RAW})
        assert not lk, lk
        assert status == 200, data[:300]
        text = data.decode("utf-8")  # strict
        tokens = [json.loads(ln[5:])["text"] for ln in text.splitlines()
                  if ln.startswith("data:") and '"text"' in ln]
        assert "".join(tokens) == expected_text(), tokens


def test_zz_nothing_stored_or_logged():
    """After everything above: /logs, /usage, /providers/status, stderr,
    the SQLite file and its -wal hold no piece of a secret."""
    assert len(SENT) > 100, len(SENT)
    want = len([r for r in SENT if r])
    harness.wait_until(lambda: H.count_requests() >= want, timeout=20)
    assert H.count_requests() >= want, (H.count_requests(), want)
    found = []
    before = None
    pages = 0
    while True:
        q = "/api/v1/logs?limit=200" + ("&before=%s" % before if before
                                        else "")
        status, heads, data = send("GET", q, token=TOKENS["admin"])
        assert status == 200, data[:300]
        found += scan_response(status, heads, data, "logs")
        pages += 1
        before = json.loads(data)["data"]["nextBefore"]
        if before is None or pages > 20:
            break
    for path in ("/api/v1/usage?window=1h", "/api/v1/providers/status",
                 "/api/v1/health"):
        status, heads, data = send("GET", path, token=TOKENS["admin"])
        found += scan_response(status, heads, data, path)
    found += leaks(H.errorlog(), "stderr")
    stored = H.store_bytes()
    found += leaks(stored, "the store")
    assert stored
    assert not found, "secret pieces found:\n" + "\n".join(found[:20])


def test_zz_no_sanitizer_reports():
    # Leak reports appear when the responders exit: stop them first.
    H.stop_lighttpd()
    reports = H.sanitizer_reports()
    assert not reports, "%d sanitizer report(s) in the responders' " \
        "stderr, first: %s" % (len(reports),
                               " | ".join(reports[0].split("\n")[:6]))
