"""Requests that cannot hurt others (issue 13, items 2 and 7), through
lighttpd, two responder processes and the mock upstream:

- a client whose requests the provider refuses (400, 404, 413, 422) does
  not put the provider in cooldown for everyone, while the provider's own
  failures (503) still do;
- text that is not well-formed UTF-8 is a 400 on the field that holds it,
  before any provider is called;
- the attempt trail keeps the provider that answered with
  RELAYFORGE_RETRIES=5 on the whole chain (36 entries);
- the API answers only right after its mount point, never behind another
  segment or an encoded slash; Content-Type parameters are parsed;
- the SQLite file, its -wal and -shm are created owner-only;
- the stop flag is set and read without a data race (ThreadSanitizer).
"""

import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid

import harness
from harness import KEYS, PROVIDERS, key_config, now_ms

H = None

TWO = dict(key_config("groq", "sambanova"), RELAYFORGE_RETRIES="0",
           RELAYFORGE_FAILURE_THRESHOLD="2", RELAYFORGE_COOLDOWN_MS="30000")


def setup_module():
    global H
    H = harness.Harness("edges")


def teardown_module():
    if H:
        H.close()


def ok_meta(st, body):
    assert st == 200, "status %s: %s" % (st, body)
    assert body["success"] is True, body
    return body["data"]["meta"]


def groq_cooling():
    st = H.provider_state("groq")
    return st is not None and st["cooldown_until_ms"] > now_ms()


def status_of(provider):
    st, _, body = H.get("/api/v1/providers/status")
    assert st == 200, body
    return {p["id"]: p for p in body["data"]["providers"]}[provider]


# ------------------------------------------------------- no shared cooldown

def test_request_refusals_never_cool_the_provider_down():
    H.use(TWO)
    refusals = [400, 404, 413, 422, 400, 400]  # three times the threshold
    H.mock_script("groq", [{"kind": "status", "status": s} for s in refusals])
    for i, s in enumerate(refusals):
        st, _, body = H.chat("refused %d" % i)
        meta = ok_meta(st, body)
        att = meta["attempts"]
        assert att[0]["provider"] == "groq", att
        assert att[0]["outcome"] == "provider_bad_request", att
        assert att[0]["httpStatus"] == s, att
        assert meta["finalProvider"] == "sambanova", meta
    # every request reached groq: none was skipped as cooling down
    assert len(H.mock_calls("groq")) == len(refusals)
    row = H.provider_state("groq")
    assert row is None or (row["cooldown_until_ms"] <= now_ms() and
                           row["consecutive_failures"] == 0), row
    assert status_of("groq")["state"] != "cooling_down"
    # a stream refused the same way: no cooldown either
    H.mock_script("groq", [{"kind": "status", "status": 400}] * 3)
    for i in range(3):
        res = H.stream("/api/v1/stream", {"prompt": "refused stream %d" % i})
        assert res.status == 200 and res.events("done"), res.names()
    assert not groq_cooling(), H.provider_state("groq")
    st, _, body = H.chat("groq answers again")
    assert ok_meta(st, body)["finalProvider"] == "groq"


def test_provider_failures_still_cool_it_down():
    H.use(TWO)
    H.mock_default("groq", {"kind": "status", "status": 503})
    for i in range(2):
        st, _, body = H.chat("down %d" % i)
        assert ok_meta(st, body)["finalProvider"] == "sambanova"
    assert groq_cooling(), H.provider_state("groq")
    harness.settle()  # the other process sees the cooldown within its snapshot window
    st, _, body = H.chat("skipped")
    meta = ok_meta(st, body)
    assert meta["attempts"][0] == {"provider": "groq", "outcome": "skipped",
                                   "reason": "cooling_down"}, meta
    assert len(H.mock_calls("groq")) == 2


def test_refusals_between_failures_do_not_add_up():
    """400s neither count toward the threshold nor hide a 503 streak."""
    H.use(TWO)
    H.mock_script("groq", [{"kind": "status", "status": 503},
                           {"kind": "status", "status": 400},
                           {"kind": "status", "status": 422}])
    for i in range(3):
        ok_meta(*H.chat("mixed %d" % i)[::2])
    assert not groq_cooling(), H.provider_state("groq")
    H.mock_script("groq", [{"kind": "status", "status": 503}])
    ok_meta(*H.chat("second 503")[::2])
    assert groq_cooling(), H.provider_state("groq")


# ------------------------------------------------------------- UTF-8 in

BAD_TEXT = [
    (b'{"prompt":"a\xc0\x80"}', "prompt"),
    (b'{"prompt":"\xed\xa0\x80"}', "prompt"),
    (b'{"prompt":"\xf4\x90\x80\x80"}', "prompt"),
    (b'{"prompt":"\xe6\x97"}', "prompt"),
    (b'{"prompt":"\\ud800 x"}', "prompt"),
    (b'{"messages":[{"role":"user","content":"\\udc00"}]}',
     "messages[0].content"),
    (b'{"prompt":"hi","system":"\xe0\x80\xaf"}', "system"),
    (b'{"prompt":"hi","metadata":{"source":"\xf5\x80\x80\x80"}}',
     "metadata.source"),
]


def test_text_that_is_not_utf8_is_a_400_on_its_field():
    H.use(key_config("groq"))
    for raw, field in BAD_TEXT:
        st, _, body = H.post("/api/v1/chat", raw,
                             {"Content-Type": "application/json"})
        assert st == 400, (raw, st, body)
        err = body["error"]
        assert err["code"] == "validation_error", (raw, err)
        assert err["field"] == field, (raw, err)
        res = H.stream("/api/v1/stream", raw)
        assert res.status == 400, (raw, res.status)
        assert res.body["error"]["field"] == field, (raw, res.body)
    assert H.mock_calls("groq") == [], "a provider was called"
    # bytes that are not UTF-8 outside any string: not JSON at all
    st, _, body = H.post("/api/v1/chat", b'{"prompt":"hi"}\xc3\xa9',
                         {"Content-Type": "application/json"})
    assert st == 400 and body["error"]["code"] == "invalid_json", body
    # well-formed edges pass
    st, _, body = H.post("/api/v1/chat",
                         b'{"prompt":"\xf4\x8f\xbf\xbf \\ud83d\\ude00"}',
                         {"Content-Type": "application/json"})
    ok_meta(st, body)
    sent = H.mock_calls("groq")[-1]["body"]["messages"][-1]["content"]
    assert sent == "\U0010ffff \U0001f600", repr(sent)


# ------------------------------------------------------- the attempt trail

def test_attempt_trail_keeps_the_answer_with_retries_5():
    """Every provider waits once on a 429 and retries five 503s: 7 tries
    each, 35 in all, then the mock answers -- the 36th entry (the trail
    was cut at 32, dropping the answer)."""
    H.use(dict(key_config(*PROVIDERS), RELAYFORGE_RETRIES="5",
               RELAYFORGE_RETRY_AFTER_MAX_MS="2000"))
    for p in PROVIDERS:
        H.mock_script(p, [{"kind": "status", "status": 429,
                           "headers": {"Retry-After": "0"}}] +
                      [{"kind": "status", "status": 503}] * 6)
    rid = "edges-trail-" + uuid.uuid4().hex[:8]
    st, hd, body = H.chat({"prompt": "long way"}, {"X-Request-Id": rid})
    meta = ok_meta(st, body)
    att = meta["attempts"]
    assert len(att) == 36, len(att)
    assert att[-1]["provider"] == "mock" and att[-1]["outcome"] == "ok", att[-1]
    assert meta["finalProvider"] == "mock"
    for i, p in enumerate(PROVIDERS):
        mine = att[7 * i:7 * i + 7]
        assert [a["provider"] for a in mine] == [p] * 7, mine
        assert [a["httpStatus"] for a in mine] == [429] + [503] * 6, mine
        assert [a.get("retry", 0) for a in mine] == list(range(7)), mine
    rows = H.request_row(rid)
    assert len(rows) == 1, rows
    stored = H.attempt_rows(rows[0]["id"])
    assert len(stored) == 36, len(stored)
    assert stored[-1]["provider"] == "mock" and stored[-1]["outcome"] == "ok"


# ------------------------------------------------------- routing, types

def test_the_api_answers_only_after_its_mount():
    H.use({})
    st, _, body = H.get("/api/v1/health")
    assert st == 200, body
    for path in ("/api/foo/api/v1/health", "/api/x/api/v1/logs",
                 "/api/v1%2fhealth", "/api/v1%2Fproviders/status",
                 "/api%2fv1/health", "/api/v1/health/x"):
        st, _, body = H.get(path)
        assert st == 404, (path, st, body)
    st, _, body = H.get("/api/v1/%68ealth")
    assert st == 200, body


def test_content_type_parameters_are_parsed():
    H.use({})
    for ct in ("application/json; charset=utf-8",
               "application/json;charset=UTF-8",
               "application/json; foo=bar; charset=\"utf-8\"",
               "Application/JSON"):
        st, _, body = H.post("/api/v1/chat", b'{"prompt":"hi"}',
                             {"Content-Type": ct})
        assert st == 200, (ct, st, body)
    for ct in ("application/jsonx", "application/json; charset=latin1",
               "application/json; charset=utf-8x",
               "application/json; charset=utf-8; charset=latin1",
               "text/plain"):
        st, _, body = H.post("/api/v1/chat", b'{"prompt":"hi"}',
                             {"Content-Type": ct})
        assert st == 415, (ct, st, body)
        assert body["error"]["code"] == "unsupported_media_type", body


# ------------------------------------------------------- the store file

@harness.sqlite_only
def test_store_files_are_owner_only():
    H.use({})
    ok_meta(*H.chat("write a row")[::2])
    for suffix in ("", "-wal", "-shm"):
        path = H.db_path + suffix
        assert os.path.exists(path), path
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode & 0o077 == 0, "%s is %o" % (path, mode)


# ------------------------------------------------------- the stop flag

SCHEMA_HEADER = "schema_sqlite.h"


def schema_dir(tmp):
    """A directory holding the generated schema header: the build's, or one
    generated here the way the Makefile does."""
    for d in (os.environ.get("BUILD"), "build", "build-san"):
        if d and os.path.exists(os.path.join(harness.ROOT, d, SCHEMA_HEADER)):
            return os.path.join(harness.ROOT, d)
    for sql, name in (("relayforge.sql", "sqlite"), ("relayforge.pg.sql", "pg")):
        lines = ["/* generated from schema/%s */" % sql,
                 "static const char rf_schema_%s[] =" % name]
        with open(os.path.join(harness.ROOT, "schema", sql)) as f:
            for ln in f.read().split("\n")[:-1]:
                lines.append('"%s\\n"' % ln.replace("\\", "\\\\").replace('"', '\\"'))
        lines.append(";")
        with open(os.path.join(tmp, "schema_%s.h" % name), "w") as f:
            f.write("\n".join(lines) + "\n")
    return tmp


def tsan_binary(tmp):
    src = os.path.join(harness.ROOT, "src")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fcgi",
                            "libcurl", "json-c", "sqlite3", "libpq"],
                           capture_output=True, text=True, check=True)
    out = os.path.join(tmp, "relayforge-tsan")
    cmd = (["gcc", "-std=c11", "-D_DEFAULT_SOURCE",
            "-D_POSIX_C_SOURCE=200809L", "-O0", "-g", "-fsanitize=thread",
            "-I" + os.path.join(harness.ROOT, "include"), "-I" + schema_dir(tmp)]
           + sorted(os.path.join(src, f) for f in os.listdir(src)
                    if f.endswith(".c"))
           + flags.stdout.split() + ["-lpthread", "-lm", "-o", out])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "ThreadSanitizer build failed:\n" + r.stderr[-2000:]
    return out


def test_stop_flag_has_no_data_race():
    """Four FastCGI workers, then SIGTERM: the handler's store of the stop
    flag and the workers' reads of it must be ordered (a volatile
    sig_atomic_t read by other threads was reported as a data race)."""
    tmp = tempfile.mkdtemp(prefix="rf-tsan-", dir=H.tmp)
    binp = tsan_binary(tmp)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(tmp, "sock"))
    sock.listen(16)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "RELAYFORGE_THREADS": "4",
           "RELAYFORGE_DB": os.path.join(tmp, "db"),
           "TSAN_OPTIONS": "halt_on_error=0 report_signal_unsafe=0"}
    p = subprocess.Popen([binp], stdin=sock.fileno(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    sock.close()
    # the workers start and wait in accept; the janitor naps
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    err = err.decode("utf-8", "replace")
    races = [r for r in err.split("WARNING: ThreadSanitizer: ")[1:]
             if "g_stop" in r]
    assert not races, "data race on the stop flag:\n" + races[0][:1500]
    assert p.returncode in (0, 66), "exit %s:\n%s" % (p.returncode, err[-1500:])
