"""The front door (docs/configuration.md, 4 and 6): request validation, the error
shape, 404/405/413/415, X-Request-Id, CORS, API tokens, the shared rate
limit, /health, a store that cannot be opened, plain CGI mode and
--check-config."""

import json
import os
import re
import subprocess
import time
import uuid

import harness
from harness import ISO_RE, KEYS, key_config

H = None
RID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
LIGHTTPD_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: \(")


def setup_module():
    global H
    H = harness.Harness("api")


def teardown_module():
    if H:
        H.close()


def check_error(st, hd, body, status, code, field=None):
    """The error shape of docs/api.md, with the common headers."""
    assert st == status, "want %d %s, got %d: %s" % (status, code, st, body)
    assert isinstance(body, dict), "not JSON: %r" % (body,)
    assert body.get("success") is False, body
    err = body["error"]
    assert err["code"] == code, err
    assert isinstance(err.get("message"), str) and err["message"], err
    assert ISO_RE.match(err.get("timestamp", "")), err
    assert err.get("requestId") == hd.get("x-request-id"), (err, hd)
    assert hd.get("cache-control") == "no-store", hd
    assert "json" in hd.get("content-type", ""), hd
    if field is not None:
        if field.endswith("*"):
            assert str(err.get("field", "")).startswith(field[:-1]), err
        else:
            assert err.get("field") == field, err
    return err


# field "x*" means: starts with x (several readings name messages[i].role).
INVALID = [
    ({}, "prompt"),
    ({"prompt": "a", "messages": [{"role": "user", "content": "b"}]},
     "prompt"),
    ({"prompt": "   \n\t "}, "prompt"),
    ({"prompt": 5}, "prompt"),
    ({"messages": [{"role": "user", "content": "a"},
                   {"role": "assistant", "content": "b"}]}, "messages*"),
    ({"messages": [{"role": "robot", "content": "a"}]}, "messages*"),
    ({"messages": []}, "messages*"),
    ({"messages": [{"role": "user", "content": "a"}] * 51}, "messages*"),
    ({"prompt": "a", "options": {"temperature": 3}}, "options.temperature"),
    ({"prompt": "a", "options": {"temperature": -0.5}}, "options.temperature"),
    ({"prompt": "a", "options": {"temperature": "hot"}},
     "options.temperature"),
    ({"prompt": "a", "options": {"maxTokens": 0}}, "options.maxTokens"),
    ({"prompt": "a", "options": {"maxTokens": 4097}}, "options.maxTokens"),
    ({"prompt": "a", "options": {"maxTokens": 1.5}}, "options.maxTokens"),
    ({"prompt": "a", "options": {"strategy": "nope"}}, "options.strategy"),
    ({"prompt": "a", "options": {"foo": 1}}, "options.foo"),
    ({"prompt": "a", "options": {"fallback": "yes"}}, "options.fallback"),
    ({"prompt": "a", "options": {"streamRecovery": "sometimes"}},
     "options.streamRecovery"),
    ({"prompt": "a", "metadata": {"source": "s" * 65}}, "metadata.source"),
    ({"prompt": "a", "metadata": {"bar": 1}}, "metadata.bar"),
]

VALID = [
    {"prompt": "a", "options": {"maxTokens": 4096, "temperature": 0}},
    {"prompt": "a", "options": {"maxTokens": 1, "temperature": 2,
                                "strategy": "mock", "fallback": True,
                                "stream": False, "streamRecovery": "none"}},
    {"prompt": "a", "metadata": {"source": "s" * 64}},
    {"messages": [{"role": "user", "content": "a"}] * 50},
    {"messages": [{"role": "system", "content": "be brief"},
                  {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": "hello"},
                  {"role": "user", "content": "again"}],
     "system": "you are a test"},
]


def test_validation_rules_name_the_field_and_are_not_logged():
    H.use({})
    before = H.count_requests()
    for body, field in INVALID:
        st, hd, got = H.post("/api/v1/chat", body)
        check_error(st, hd, got, 400, "validation_error", field)
        st, hd, got = H.post("/api/v1/stream", body)
        check_error(st, hd, got, 400, "validation_error", field)
    time.sleep(0.3)
    assert H.count_requests() == before, "a refused request was logged"
    for body in VALID:
        st, hd, got = H.post("/api/v1/chat", body)
        assert st == 200, (body, st, got)


def test_invalid_json_415_404_405():
    H.use({})
    before = H.count_requests()
    hj = {"Content-Type": "application/json"}
    for raw in (b'{"prompt": "a",', b"not json at all", b'{"prompt": "a"} x'):
        st, hd, got = H.post("/api/v1/chat", raw, hj)
        check_error(st, hd, got, 400, "invalid_json")
    st, hd, got = H.post("/api/v1/chat", b'{"prompt": "a"}',
                         {"Content-Type": "text/plain"})
    check_error(st, hd, got, 415, "unsupported_media_type")
    st, hd, got = H.post("/api/v1/chat", b'{"prompt": "a"}',
                         {"Content-Type": "application/json; charset=utf-8"})
    assert st == 200, (st, got)
    for path in ("/api/v1/nope", "/api/v1/chat/x", "/api/v2/chat"):
        st, hd, got = H.get(path)
        check_error(st, hd, got, 404, "not_found")
    st, hd, got = H.post("/api/v1/nope", {"prompt": "a"})
    check_error(st, hd, got, 404, "not_found")
    for path in ("/api/v1/chat", "/api/v1/stream"):
        st, hd, got = H.get(path)
        check_error(st, hd, got, 405, "method_not_allowed")
        assert "POST" in hd.get("allow", ""), hd
    st, hd, got = H.post("/api/v1/health", {"prompt": "a"})
    check_error(st, hd, got, 405, "method_not_allowed")
    assert "GET" in hd.get("allow", ""), hd
    time.sleep(0.3)
    assert H.count_requests() == before + 1, "refused requests were logged"


def test_prompt_limits_in_characters_and_body_limit_413():
    H.use({"RELAYFORGE_MAX_PROMPT_CHARS": "10",
           "RELAYFORGE_MAX_BODY_BYTES": "1024"})
    before = H.count_requests()
    for prompt in ("a" * 11, "\u00e9" * 11):
        st, hd, got = H.chat(prompt)
        check_error(st, hd, got, 400, "validation_error", "prompt")
    st, hd, got = H.post("/api/v1/chat", {"prompt": "a" * 2000})
    check_error(st, hd, got, 413, "payload_too_large")
    time.sleep(0.3)
    assert H.count_requests() == before
    # Exactly at the limit, counted in characters (2-byte UTF-8 here).
    for prompt in ("a" * 10, "\u00e9" * 10):
        st, hd, got = H.chat(prompt)
        assert st == 200, (prompt, st, got)


def test_request_id_echoed_or_replaced():
    H.use({})
    for rid in ("client-id_1.2", "x" * 64):
        st, hd, got = H.post("/api/v1/chat", {"prompt": "id"},
                             {"X-Request-Id": rid})
        assert st == 200
        assert hd["x-request-id"] == rid, hd
        assert got["data"]["meta"]["requestId"] == rid
    for bad in ("has space", "y" * 65, "semi;colon"):
        st, hd, got = H.post("/api/v1/chat", {"prompt": "id"},
                             {"X-Request-Id": bad})
        assert st == 200
        new = hd.get("x-request-id", "")
        assert new != bad and RID_RE.match(new), (bad, hd)
        assert got["data"]["meta"]["requestId"] == new
    # Errors carry it too.
    st, hd, got = H.get("/api/v1/nope", {"X-Request-Id": "err-id-1"})
    assert hd.get("x-request-id") == "err-id-1"
    assert got["error"]["requestId"] == "err-id-1"


def test_cors_preflight_and_origin_echo():
    origin = "https://app.example"
    H.use({"RELAYFORGE_CORS_ORIGINS": origin})
    pre = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type, x-request-id"}
    st, hd, _ = H.request("OPTIONS", "/api/v1/chat", None,
                          dict(pre, Origin=origin))
    assert st == 204, (st, hd)
    assert hd.get("access-control-allow-origin") == origin, hd
    assert "POST" in hd.get("access-control-allow-methods", ""), hd
    assert "content-type" in hd.get("access-control-allow-headers",
                                    "").lower(), hd
    st, hd, _ = H.request("OPTIONS", "/api/v1/chat", None,
                          dict(pre, Origin="https://evil.example"))
    assert "access-control-allow-origin" not in hd, (st, hd)
    st, hd, got = H.post("/api/v1/chat", {"prompt": "cors"},
                         {"Origin": origin})
    assert st == 200 and hd.get("access-control-allow-origin") == origin, hd
    st, hd, got = H.post("/api/v1/chat", {"prompt": "cors"},
                         {"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in hd, hd


def test_api_token_required_for_chat_and_stream_not_health():
    token = "tok-" + uuid.uuid4().hex
    H.use(dict(key_config("groq"), RELAYFORGE_API_TOKEN=token))
    before = H.count_requests()
    for path in ("/api/v1/chat", "/api/v1/stream"):
        st, hd, got = H.post(path, {"prompt": "who am i"})
        check_error(st, hd, got, 401, "unauthorized")
        st, hd, got = H.post(path, {"prompt": "who am i"},
                             {"Authorization": "Bearer wrong-" + token})
        check_error(st, hd, got, 401, "unauthorized")
        st, hd, got = H.post(path, {"prompt": "who am i"},
                             {"Authorization": token})
        check_error(st, hd, got, 401, "unauthorized")
    time.sleep(0.3)
    assert H.count_requests() == before
    st, hd, got = H.post("/api/v1/chat", {"prompt": "who am i"},
                         {"Authorization": "Bearer " + token})
    assert st == 200, (st, got)
    assert got["data"]["meta"]["finalProvider"] == "groq"
    st, hd, got = H.get("/api/v1/health")
    assert st == 200, (st, got)


def test_rate_limit_shared_by_processes():
    H.use({"RELAYFORGE_RATE_LIMIT": "5"})
    # The window is a wall-clock minute: do not straddle its end.
    if time.time() % 60 > 50:
        time.sleep(60.3 - time.time() % 60)
    before = H.count_requests()
    sts = []
    for i in range(6):
        st, hd, got = H.chat("limited %d" % i)
        sts.append((st, hd, got))
    assert [s[0] for s in sts[:5]] == [200] * 5, [s[0] for s in sts]
    st, hd, got = sts[5]
    check_error(st, hd, got, 429, "rate_limited")
    ra = hd.get("retry-after", "")
    assert ra.isdigit() and 1 <= int(ra) <= 60, hd
    time.sleep(0.3)
    assert H.count_requests() == before + 5, "the refused request was logged"


def test_health_ok():
    H.use({})
    st, hd, got = H.get("/api/v1/health")
    assert st == 200, (st, got)
    assert got["success"] is True
    d = got["data"]
    assert d["status"] == "ok" and d["db"] == "ok", d
    assert isinstance(d["version"], str) and d["version"], d
    assert hd.get("cache-control") == "no-store"
    assert hd.get("x-request-id")


def test_store_that_cannot_be_opened_does_not_stop_chat():
    missing = os.path.join(H.tmp, "no-such-dir-%s" % uuid.uuid4().hex[:8],
                           "relayforge.db")
    H.use({"RELAYFORGE_DB": missing})
    mark = H.log_mark
    for i in range(4):
        st, hd, got = H.chat("still there? %d" % i)
        assert st == 200, (st, got)
        assert got["data"]["meta"]["demoMode"] is True
    st, hd, got = H.get("/api/v1/health")
    check_error(st, hd, got, 503, "internal_error")
    # The reason goes to stderr once per process, not once per request.
    ours = [ln for ln in H.errorlog(mark).splitlines()
            if ln.strip() and not LIGHTTPD_LINE.match(ln)]
    assert ours, "the reason was not written to stderr"
    naming = [ln for ln in ours if os.path.dirname(missing) in ln]
    # The spool directory beside the file cannot be made either: said once
    # per process too.
    for kind in ("store", "spool"):
        said = [ln for ln in naming if (kind == "spool") == ("spool" in ln)]
        assert len(said) <= 2, "stderr repeats the %s error: %s" % (kind,
                                                                   said)


def cgi_env(extra=None):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
           "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost",
           "SERVER_PORT": "80", "SCRIPT_NAME": "/api",
           "RELAYFORGE_DB": os.path.join(H.tmp, "cgi.db"),
           "RELAYFORGE_MOCK_DELAY_MS": "1"}
    env.update(extra or {})
    return env


def test_cgi_mode_serves_one_request():
    body = json.dumps({"prompt": "hello from CGI"}).encode()
    env = cgi_env({"REQUEST_METHOD": "POST", "REQUEST_URI": "/api/v1/chat",
                   "PATH_INFO": "/v1/chat",
                   "CONTENT_TYPE": "application/json",
                   "CONTENT_LENGTH": str(len(body))})
    p = subprocess.run([H.bin], input=body, env=env, capture_output=True,
                       timeout=60)
    out = p.stdout
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert out.startswith(b"Status: 200 OK"), out[:300]
    sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
    head, _, rest = out.partition(sep)
    assert b"application/json" in head.lower(), head
    doc = json.loads(rest.decode())
    assert doc["success"] is True and doc["data"]["meta"]["demoMode"] is True


def write_conf(name, lines):
    path = os.path.join(H.tmp, name)
    with open(path, "w") as f:
        f.write("# test config\n" + "".join(l + "\n" for l in lines))
    return path


def test_check_config():
    good = write_conf("good.conf", ["RELAYFORGE_TIMEOUT_MS=5000",
                                    "GROQ_API_KEY=" + KEYS["groq"]])
    env = cgi_env({"RELAYFORGE_CONFIG": good})
    p = subprocess.run([H.bin, "--check-config"], env=env,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, (p.returncode, p.stderr)
    bad = dict(env, RELAYFORGE_TIMEOUT_MS="abc")
    p = subprocess.run([H.bin, "--check-config"], env=bad,
                       capture_output=True, timeout=30)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert b"RELAYFORGE_TIMEOUT_MS" in p.stderr, p.stderr
    assert KEYS["groq"].encode() not in p.stderr + p.stdout
    # A bad value in the file is named too, and the environment wins.
    badfile = write_conf("bad.conf", ["RELAYFORGE_RETRIES=many"])
    p = subprocess.run([H.bin, "--check-config"],
                       env=cgi_env({"RELAYFORGE_CONFIG": badfile}),
                       capture_output=True, timeout=30)
    assert p.returncode == 1 and b"RELAYFORGE_RETRIES" in p.stderr, p.stderr
    p = subprocess.run([H.bin, "--check-config"],
                       env=cgi_env({"RELAYFORGE_CONFIG": badfile,
                                    "RELAYFORGE_RETRIES": "1"}),
                       capture_output=True, timeout=30)
    assert p.returncode == 0, (p.returncode, p.stderr)


def test_zz_keys_never_leak():
    seen = "\n".join(H.seen)
    log = H.errorlog()
    for p, key in KEYS.items():
        assert key not in seen, "%s key in a response" % p
        assert key not in log, "%s key in the error log" % p


def test_zz_no_sanitizer_reports():
    # Leak reports appear when the responders exit: stop them first.
    H.stop_lighttpd()
    reports = H.sanitizer_reports()
    assert not reports, "%d sanitizer report(s) in the responders' " \
        "stderr, first: %s" % (len(reports),
                               " | ".join(reports[0].split("\n")[:6]))
