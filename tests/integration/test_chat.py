"""POST /api/v1/chat through lighttpd and two responder processes: the
fallback chain of docs/api.md against the scriptable mock upstream, the
shared cooldowns, logging, concurrency and that keys never leak."""

import threading
import time
import uuid

import harness
from harness import KEYS, PROVIDERS, ISO_RE, key_config, now_ms

H = None

# groq and sambanova have keys; the other three are unconfigured.
TWO = dict(key_config("groq", "sambanova"), RELAYFORGE_RETRIES="1",
           RELAYFORGE_RETRY_AFTER_MAX_MS="2000")


def setup_module():
    global H
    H = harness.Harness("chat")


def teardown_module():
    if H:
        H.close()


# ------------------------------------------------------------------ helpers

def sub(actual, expected):
    """True when every key of expected has that value in actual."""
    return all(actual.get(k) == v for k, v in expected.items())


def ok_meta(st, body, hd=None):
    assert st == 200, "status %s: %s" % (st, body)
    assert body["success"] is True, body
    meta = body["data"]["meta"]
    if hd is not None:
        assert hd.get("x-relayforge-provider") == meta["finalProvider"], hd
        assert hd.get("x-relayforge-fallback") == \
            ("true" if meta["fallbackActivated"] else "false"), hd
        assert hd.get("cache-control") == "no-store", hd
        assert hd.get("x-request-id") == meta["requestId"], hd
    return meta


def skipped(provider, reason):
    return {"provider": provider, "outcome": "skipped", "reason": reason}


def parallel(fn, n, workers):
    """Run fn(i) for i in range(n) on `workers` threads; results in order."""
    out = [None] * n
    errors = []
    lock = threading.Lock()
    nxt = [0]

    def loop():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            try:
                out[i] = fn(i)
            except Exception as e:  # noqa: BLE001 -- reported below
                errors.append(e)

    ts = [threading.Thread(target=loop) for _ in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, "worker errors: %r" % errors[:3]
    return out


def cooldown_left_ms(provider):
    st = H.provider_state(provider)
    assert st is not None, "no provider_state row for %s" % provider
    return st["cooldown_until_ms"] - now_ms()


# ------------------------------------------------------------------ no keys

def test_no_keys_mock_answers_in_demo_mode():
    H.use({})
    st, hd, body = H.chat("Explain the fallback strategy in RelayForge")
    meta = ok_meta(st, body, hd)
    assert isinstance(body["data"]["text"], str) and body["data"]["text"].strip()
    assert meta["demoMode"] is True
    assert meta["finalProvider"] == "mock"
    assert meta["attemptedProvider"] == "mock"
    assert meta["fallbackActivated"] is False
    assert meta["degradedMode"] is True
    assert meta["strategy"] == "auto"
    assert meta["model"] == "relayforge-mock-1"
    assert hd["x-relayforge-provider"] == "mock"
    assert hd["x-relayforge-fallback"] == "false"
    assert len(hd["x-request-id"]) > 0
    att = meta["attempts"]
    assert att[:5] == [skipped(p, "unconfigured") for p in PROVIDERS], att
    assert len(att) == 6 and sub(att[5], {"provider": "mock",
                                          "outcome": "ok"}), att
    assert isinstance(att[5].get("latencyMs"), int)
    assert ISO_RE.match(meta["timestamp"]), meta["timestamp"]
    assert isinstance(meta["latencyMs"], int) and meta["latencyMs"] >= 0
    u = meta["usage"]
    assert isinstance(u["promptTokens"], int) and u["promptTokens"] > 0
    assert isinstance(u["completionTokens"], int) and u["completionTokens"] > 0
    assert isinstance(meta["finishReason"], str)


def test_mock_answer_is_deterministic():
    H.use({})
    a = H.chat("the same prompt, twice")
    b = H.chat("the same prompt, twice")
    assert ok_meta(a[0], a[2]) and ok_meta(b[0], b[2])
    assert a[2]["data"]["text"] == b[2]["data"]["text"]
    assert a[2]["data"]["meta"]["usage"] == b[2]["data"]["meta"]["usage"]


def test_chat_request_logged_once_with_attempts():
    H.use({})
    rid = "log-" + uuid.uuid4().hex
    prompt = "log me please"
    st, hd, body = H.chat({"prompt": prompt,
                           "metadata": {"source": "it-tests"}},
                          {"X-Request-Id": rid})
    meta = ok_meta(st, body, hd)
    assert meta["requestId"] == rid
    rows = H.request_row(rid)
    assert len(rows) == 1, rows
    r = rows[0]
    assert r["endpoint"] == "chat" and r["strategy"] == "auto"
    assert r["attempted_provider"] == "mock"
    assert r["final_provider"] == "mock"
    assert r["status"] == "success" and r["error_code"] is None
    assert r["http_status"] == 200
    assert (r["fallback"], r["degraded"], r["demo"]) == (0, 1, 1)
    assert r["prompt_chars"] == len(prompt)
    assert r["source"] == "it-tests"
    assert r["model"] == "relayforge-mock-1"
    atts = H.attempt_rows(r["id"])
    assert [(a["provider"], a["outcome"], a["reason"]) for a in atts] == \
        [(p, "skipped", "unconfigured") for p in PROVIDERS] + \
        [("mock", "ok", None)], atts
    time.sleep(0.3)
    assert len(H.request_row(rid, timeout=0)) == 1


def test_concurrency_8_threads_x_25_requests():
    H.use({})
    before = H.count_requests()

    def one(i):
        st, hd, body = H.chat("concurrent request %d" % i)
        return st, body

    res = parallel(one, 200, 8)
    bad = [r for r in res if r[0] != 200]
    assert not bad, "%d non-200 answers, e.g. %r" % (len(bad), bad[:2])
    assert all(r[1]["data"]["meta"]["demoMode"] for r in res)
    harness.wait_until(lambda: H.count_requests() - before >= 200, 10)
    time.sleep(0.5)
    assert H.count_requests() - before == 200, \
        "rows added: %d" % (H.count_requests() - before)


# ------------------------------------------------------- groq + sambanova

def test_429_long_retry_after_falls_back_and_cools_down():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "status", "status": 429,
                            "headers": {"Retry-After": "30"}}])
    st, hd, body = H.chat("hello there")
    meta = ok_meta(st, body, hd)
    assert body["data"]["text"] == "Hello from sambanova"
    assert meta["attemptedProvider"] == "groq"
    assert meta["finalProvider"] == "sambanova"
    assert meta["fallbackActivated"] is True
    assert meta["degradedMode"] is True
    assert meta["demoMode"] is False
    att = meta["attempts"]
    assert len(att) == 2, att
    assert sub(att[0], {"provider": "groq", "outcome": "provider_rate_limited",
                        "httpStatus": 429}), att
    assert att[0].get("retry", 0) == 0
    assert sub(att[1], {"provider": "sambanova", "outcome": "ok",
                        "httpStatus": 200}), att
    assert hd["x-relayforge-fallback"] == "true"
    calls = H.mock_calls("groq")
    assert len(calls) == 1, "groq retried a long Retry-After: %d calls" % len(calls)
    # What went upstream: the key in the header, the prompt as a message.
    c = calls[0]
    assert c["headers"].get("authorization") == "Bearer " + KEYS["groq"]
    assert c["body"]["messages"][-1] == {"role": "user",
                                         "content": "hello there"}
    assert c["body"].get("stream") in (None, False)
    left = cooldown_left_ms("groq")
    assert 25000 <= left <= 31000, "groq cooldown left %d ms" % left

    # The cooldown is in the store: the next request skips groq.
    harness.settle()  # the other process sees the cooldown within its snapshot window
    st, hd, body = H.chat("hello again")
    meta = ok_meta(st, body, hd)
    att = meta["attempts"]
    assert att[0] == skipped("groq", "cooling_down"), att
    assert sub(att[1], {"provider": "sambanova", "outcome": "ok"}), att
    assert meta["attemptedProvider"] == "sambanova"
    assert meta["finalProvider"] == "sambanova"
    assert meta["fallbackActivated"] is False
    assert meta["degradedMode"] is True

    # Concurrent requests land on both responder processes: none calls groq.
    res = parallel(lambda i: H.chat("spread %d" % i), 12, 6)
    for st, hd, body in res:
        assert ok_meta(st, body)["finalProvider"] == "sambanova", body
    assert len(H.mock_calls("groq")) == 1
    assert H.procs_connected_to_mock() == 2, \
        "the burst did not reach both responder processes"


def test_500_once_then_ok_is_retried_on_the_same_provider():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "status", "status": 500}])
    st, hd, body = H.chat("retry me")
    meta = ok_meta(st, body, hd)
    assert body["data"]["text"] == "Hello from groq"
    assert meta["finalProvider"] == "groq"
    assert meta["fallbackActivated"] is False
    att = meta["attempts"]
    assert len(att) == 2, att
    assert sub(att[0], {"provider": "groq", "outcome": "provider_unavailable",
                        "httpStatus": 500}), att
    assert sub(att[1], {"provider": "groq", "outcome": "ok",
                        "httpStatus": 200, "retry": 1}), att
    calls = H.mock_calls("groq")
    assert len(calls) == 2, len(calls)
    gap = calls[1]["t"] - calls[0]["t"]
    assert 0.08 <= gap <= 1.0, "retry pause %.3f s" % gap
    assert H.mock_calls("sambanova") == []


def test_503_always_retried_once_then_next_tier():
    H.use(TWO)
    H.mock_default("groq", {"kind": "status", "status": 503})
    st, hd, body = H.chat("overloaded")
    meta = ok_meta(st, body, hd)
    assert meta["finalProvider"] == "sambanova"
    att = meta["attempts"]
    assert len(att) == 3, att
    assert sub(att[0], {"provider": "groq", "outcome": "provider_unavailable",
                        "httpStatus": 503}), att
    assert sub(att[1], {"provider": "groq", "outcome": "provider_unavailable",
                        "httpStatus": 503, "retry": 1}), att
    assert sub(att[2], {"provider": "sambanova", "outcome": "ok"}), att
    assert len(H.mock_calls("groq")) == 2  # 1 + RELAYFORGE_RETRIES


def test_401_auth_failed_no_retry_cooldown_10_minutes():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "status", "status": 401}])
    st, hd, body = H.chat("bad key")
    meta = ok_meta(st, body, hd)
    assert meta["finalProvider"] == "sambanova"
    att = meta["attempts"]
    assert sub(att[0], {"provider": "groq", "outcome": "provider_auth_failed",
                        "httpStatus": 401}), att
    assert len(att) == 2, att
    assert len(H.mock_calls("groq")) == 1
    left = cooldown_left_ms("groq")
    assert 500000 <= left <= 700000, "auth cooldown left %d ms" % left


def test_malformed_body_falls_back():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "malformed"}])
    st, hd, body = H.chat("garbage")
    meta = ok_meta(st, body, hd)
    assert meta["finalProvider"] == "sambanova"
    assert sub(meta["attempts"][0], {"provider": "groq",
                                     "outcome": "malformed_response"})
    assert len(H.mock_calls("groq")) == 1


def test_empty_text_is_malformed_and_falls_back():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "empty"}, {"kind": "empty"}])
    st, hd, body = H.chat("say nothing")
    meta = ok_meta(st, body, hd)
    assert meta["finalProvider"] == "sambanova"
    assert sub(meta["attempts"][0], {"provider": "groq",
                                     "outcome": "malformed_response"})
    assert len(H.mock_calls("groq")) == 1
    # As the final answer: 502 malformed_response, technicalDetails says so.
    st, hd, body = H.chat({"prompt": "say nothing",
                           "options": {"fallback": False}})
    assert st == 502, (st, body)
    err = body["error"]
    assert err["code"] == "malformed_response"
    assert "empty" in (err.get("technicalDetails") or "").lower(), err
    assert H.mock_calls("sambanova")[1:] == []


def test_safety_block_is_final_422():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "safety"}])
    st, hd, body = H.chat("something unsafe")
    assert st == 422, (st, body)
    assert body["success"] is False
    assert body["error"]["code"] == "content_filtered"
    assert body["error"]["provider"] == "groq"
    assert body["error"]["message"]
    assert H.mock_calls("sambanova") == [], "a safety block fell back"
    assert len(H.mock_calls("groq")) == 1


def test_content_policy_400_is_final_422():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "policy400"}])
    st, hd, body = H.chat("something flagged")
    assert st == 422, (st, body)
    assert body["error"]["code"] == "content_filtered"
    assert H.mock_calls("sambanova") == [], "a policy 400 fell back"
    assert len(H.mock_calls("groq")) == 1


def test_quota_headers_at_zero_cool_the_provider_down():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "ok", "headers": {
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "30s"}}])
    st, hd, body = H.chat("last request of the day")
    meta = ok_meta(st, body, hd)
    assert meta["finalProvider"] == "groq"
    assert body["data"]["text"] == "Hello from groq"
    harness.settle()  # the other process sees the cooldown within its snapshot window
    st, hd, body = H.chat("one more")
    meta = ok_meta(st, body, hd)
    assert meta["attempts"][0] == skipped("groq", "cooling_down"), meta
    assert meta["finalProvider"] == "sambanova"
    assert len(H.mock_calls("groq")) == 1
    left = cooldown_left_ms("groq")
    assert 20000 <= left <= 31000, "quota cooldown left %d ms" % left


def test_fallback_false_returns_the_provider_error_and_logs_it():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "status", "status": 429,
                            "headers": {"Retry-After": "30"}}])
    rid = "nofb-" + uuid.uuid4().hex
    st, hd, body = H.chat({"prompt": "no fallback",
                           "options": {"fallback": False}},
                          {"X-Request-Id": rid})
    assert st == 429, (st, body)
    err = body["error"]
    assert body["success"] is False
    assert err["code"] == "provider_rate_limited"
    assert err["provider"] == "groq"
    assert err["requestId"] == rid
    assert len(err["attempts"]) == 1, err
    assert sub(err["attempts"][0], {"provider": "groq",
                                    "outcome": "provider_rate_limited",
                                    "httpStatus": 429})
    assert H.mock_calls("sambanova") == []
    rows = H.request_row(rid)
    assert len(rows) == 1, rows
    r = rows[0]
    assert (r["status"], r["error_code"], r["http_status"]) == \
        ("error", "provider_rate_limited", 429), r
    assert r["final_provider"] == "groq"
    assert len(H.attempt_rows(r["id"])) == 1


def test_manual_strategy_tries_that_provider_first():
    H.use(TWO)
    st, hd, body = H.chat({"prompt": "manual",
                           "options": {"strategy": "sambanova"}})
    meta = ok_meta(st, body, hd)
    assert meta["strategy"] == "sambanova"
    assert meta["attemptedProvider"] == "sambanova"
    assert meta["finalProvider"] == "sambanova"
    assert meta["fallbackActivated"] is False
    assert meta["degradedMode"] is False
    assert sub(meta["attempts"][0], {"provider": "sambanova", "outcome": "ok"})
    assert H.mock_calls("groq") == []
    # When the chosen one fails, the rest of the chain follows in order.
    H.mock_default("sambanova", {"kind": "status", "status": 503})
    st, hd, body = H.chat({"prompt": "manual 2",
                           "options": {"strategy": "sambanova"}})
    meta = ok_meta(st, body, hd)
    assert [a["provider"] for a in meta["attempts"]] == \
        ["sambanova", "sambanova", "groq"], meta["attempts"]
    assert meta["finalProvider"] == "groq"
    assert meta["fallbackActivated"] is True


def test_429_short_retry_after_waits_and_retries():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "status", "status": 429,
                            "headers": {"Retry-After": "1"}}])
    st, hd, body = H.chat("short wait")
    meta = ok_meta(st, body, hd)
    assert meta["finalProvider"] == "groq"
    assert body["data"]["text"] == "Hello from groq"
    att = meta["attempts"]
    assert len(att) == 2, att
    assert sub(att[0], {"provider": "groq", "outcome": "provider_rate_limited",
                        "httpStatus": 429}), att
    assert sub(att[1], {"provider": "groq", "outcome": "ok", "retry": 1}), att
    calls = H.mock_calls("groq")
    assert len(calls) == 2
    gap = calls[1]["t"] - calls[0]["t"]
    assert gap >= 0.9, "waited only %.3f s for Retry-After: 1" % gap
    assert H.mock_calls("sambanova") == []
    # The success cleared the cooldown.
    st, hd, body = H.chat("after the wait")
    assert ok_meta(st, body)["attempts"][0]["outcome"] == "ok"


def test_reset_before_headers_retried_then_fallback():
    # Fresh processes: a reset on a reused keep-alive connection makes curl
    # itself reconnect once, which would double the calls the mock counts.
    H.restart(TWO)
    H.reset()
    H.mock_default("groq", {"kind": "reset"})
    st, hd, body = H.chat("reset me")
    meta = ok_meta(st, body, hd)
    assert meta["finalProvider"] == "sambanova"
    att = meta["attempts"]
    assert len(att) == 3, att
    assert sub(att[0], {"provider": "groq", "outcome": "provider_unavailable"})
    assert sub(att[1], {"provider": "groq", "outcome": "provider_unavailable",
                        "retry": 1}), att
    assert sub(att[2], {"provider": "sambanova", "outcome": "ok"}), att
    calls = H.mock_calls("groq")
    assert len(calls) == 2, "%d calls" % len(calls)
    gap = calls[1]["t"] - calls[0]["t"]
    assert 0.08 <= gap <= 1.0, "retry pause %.3f s" % gap


def test_hang_times_out_without_retry_then_fallback():
    H.use(dict(TWO, RELAYFORGE_TIMEOUT_MS="1000"))
    H.mock_script("groq", [{"kind": "hang", "seconds": 5}])
    t0 = time.monotonic()
    st, hd, body = H.chat("slow provider")
    took = time.monotonic() - t0
    meta = ok_meta(st, body, hd)
    assert meta["finalProvider"] == "sambanova"
    att = meta["attempts"]
    assert sub(att[0], {"provider": "groq", "outcome": "provider_timeout"}), att
    assert 800 <= att[0]["latencyMs"] <= 3000, att[0]
    assert len(att) == 2, att
    assert len(H.mock_calls("groq")) == 1
    assert took < 4.5, "took %.1f s" % took


def test_failure_threshold_puts_provider_in_cooldown():
    # A 400 is the request's fault and never counts (test_edges.py).
    H.use(dict(TWO, RELAYFORGE_FAILURE_THRESHOLD="2", RELAYFORGE_RETRIES="0"))
    H.mock_default("groq", {"kind": "status", "status": 503})
    st, hd, body = H.chat("bad request 1")
    meta = ok_meta(st, body, hd)
    assert sub(meta["attempts"][0], {"provider": "groq",
                                     "outcome": "provider_unavailable",
                                     "httpStatus": 503}), meta["attempts"]
    assert meta["finalProvider"] == "sambanova"
    assert len(H.mock_calls("groq")) == 1, "a 503 was retried"
    st0 = H.provider_state("groq")
    assert st0 is not None and st0["cooldown_until_ms"] <= now_ms(), st0
    st, hd, body = H.chat("bad request 2")
    ok_meta(st, body, hd)
    assert len(H.mock_calls("groq")) == 2
    left = cooldown_left_ms("groq")
    assert 20000 <= left <= 31000, "threshold cooldown left %d ms" % left
    harness.settle()  # the other process sees the cooldown within its snapshot window
    st, hd, body = H.chat("bad request 3")
    meta = ok_meta(st, body, hd)
    assert meta["attempts"][0] == skipped("groq", "cooling_down")
    assert len(H.mock_calls("groq")) == 2


def test_gemini_format():
    H.use(key_config("gemini"))
    H.mock_script("gemini", [{"kind": "ok", "text": "Hello from gemini",
                              "usage": [11, 4]}])
    st, hd, body = H.chat("hi gemini")
    meta = ok_meta(st, body, hd)
    assert body["data"]["text"] == "Hello from gemini"
    assert meta["finalProvider"] == "gemini"
    assert meta["usage"] == {"promptTokens": 11, "completionTokens": 4}
    att = meta["attempts"]
    assert att[:3] == [skipped(p, "unconfigured")
                       for p in ("groq", "sambanova", "cerebras")], att
    assert sub(att[3], {"provider": "gemini", "outcome": "ok"}), att
    calls = H.mock_calls("gemini")
    assert len(calls) == 1
    c = calls[0]
    assert c["headers"].get("x-goog-api-key") == KEYS["gemini"]
    assert c["path"].startswith("/gemini/models/")
    assert c["path"].endswith(":generateContent"), c["path"]
    assert "key=" not in c["path"] and KEYS["gemini"] not in c["path"]
    parts = c["body"]["contents"][-1]["parts"]
    assert parts[0]["text"] == "hi gemini"


def test_no_keys_and_mock_off_is_502_all_skipped():
    H.use({"RELAYFORGE_MOCK": "off"})
    st, hd, body = H.chat("anyone?")
    assert st == 502, (st, body)
    err = body["error"]
    assert err["code"] == "provider_unavailable"
    assert err["attempts"] == [skipped(p, "unconfigured") for p in PROVIDERS]
    assert hd.get("cache-control") == "no-store"


def test_every_tier_cooling_and_no_mock_is_429_with_retry_after():
    H.use(dict(TWO, RELAYFORGE_MOCK="off", RELAYFORGE_CHAIN="groq,sambanova"))
    H.mock_script("groq", [{"kind": "status", "status": 429,
                            "headers": {"Retry-After": "30"}}])
    H.mock_script("sambanova", [{"kind": "status", "status": 429,
                                 "headers": {"Retry-After": "60"}}])
    st, hd, body = H.chat("first")
    assert st == 429, (st, body)
    assert body["error"]["code"] == "provider_rate_limited"
    harness.settle()  # the other process sees the cooldown within its snapshot window
    st, hd, body = H.chat("second")
    assert st == 429, (st, body)
    err = body["error"]
    assert err["code"] == "provider_rate_limited"
    assert err["attempts"] == [skipped("groq", "cooling_down"),
                               skipped("sambanova", "cooling_down")], err
    ra = hd.get("retry-after")
    assert ra is not None and ra.isdigit(), hd
    assert 20 <= int(ra) <= 31, "Retry-After %s, soonest cooldown ends in 30 s" % ra
    assert len(H.mock_calls("groq")) == 1
    assert len(H.mock_calls("sambanova")) == 1


# ------------------------------------------------------------------ last

def test_zz_keys_never_leak():
    assert H.seen, "no responses were recorded"
    seen = "\n".join(H.seen)
    log = H.errorlog()
    db = H.store_bytes()
    assert db, "no database bytes to check"
    for p, key in KEYS.items():
        assert key not in seen, "%s key in a response" % p
        assert key not in log, "%s key in the error log" % p
        assert key.encode() not in db, "%s key in the database file" % p


def test_zz_no_sanitizer_reports():
    # Leak reports appear when the responders exit: stop them first.
    H.stop_lighttpd()
    reports = H.sanitizer_reports()
    assert not reports, "%d sanitizer report(s) in the responders' " \
        "stderr, first: %s" % (len(reports),
                               " | ".join(reports[0].split("\n")[:6]))
