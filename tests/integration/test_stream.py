"""POST /api/v1/stream through lighttpd (server.stream-response-body = 2):
SSE headers and event order, tokens relayed as they arrive, promotion before
the first token, interruption and restart after it, skipped chunks, client
disconnects and 64 concurrent streams."""

import threading
import uuid

import harness
from harness import KEYS, key_config

H = None
PATH = "/api/v1/stream"
TWO = dict(key_config("groq", "sambanova"), RELAYFORGE_RETRIES="1")


def setup_module():
    global H
    H = harness.Harness("stream")


def teardown_module():
    if H:
        H.close()


def sub(actual, expected):
    return all(actual.get(k) == v for k, v in expected.items())


def terminal(res, ok):
    """Exactly one done, last, with this ok; returns the names seen."""
    names = res.names()
    assert not res.timed_out, "stream did not end: %s" % names
    assert names.count("done") == 1 and names[-1] == "done", names
    assert res.events("done")[0] == {"ok": ok}, res.events("done")
    return names


def completed(res):
    """A successful stream: start meta before the tokens, final meta after
    them, then done {ok:true}, and no error."""
    names = terminal(res, True)
    assert "error" not in names, res
    kinds = [(e, d.get("phase") if e == "meta" else None) for _, e, d in res]
    start = kinds.index(("meta", "start"))
    final = kinds.index(("meta", "final"))
    toks = [i for i, k in enumerate(kinds) if k[0] == "token"]
    assert toks, "no tokens: %s" % kinds
    assert start < toks[0] and final > toks[-1], kinds
    assert len(res.metas("final")) == 1, kinds
    assert final == len(kinds) - 2, kinds
    # The start meta names who is answering: its attempts end with the
    # committed provider, outcome ok (never an empty list).
    smeta = res.metas("start")[-1]
    assert smeta["attempts"], smeta
    assert smeta["attempts"][-1]["provider"] == smeta["finalProvider"], smeta
    assert smeta["attempts"][-1]["outcome"] == "ok", smeta
    fin = res.metas("final")[0]
    assert [a["provider"] for a in smeta["attempts"]] == \
        [a["provider"] for a in fin["attempts"]], (smeta, fin)
    return fin


def interrupted(res):
    """error stream_interrupted then done {ok:false}, no final meta, no
    token after the error."""
    names = terminal(res, False)
    assert names[-2] == "error", names
    assert "token" not in names[names.index("error"):], names
    assert res.metas("final") == [], names
    err = res.events("error")[0]
    assert err["code"] == "stream_interrupted", err
    assert err.get("requestId"), err
    assert isinstance(err.get("attempts"), list), err
    return err


# ------------------------------------------------------------ mock only

def test_sse_headers_and_invalid_request_is_json():
    H.use({})
    res = H.stream(PATH, "headers please")
    assert res.status == 200, res.status
    assert res.headers["content-type"].startswith("text/event-stream"), \
        res.headers
    assert res.headers.get("cache-control") == "no-cache", res.headers
    assert res.headers.get("x-accel-buffering") == "no", res.headers
    assert res.headers.get("x-request-id")
    completed(res)
    bad = H.stream(PATH, {"prompt": ""})
    assert bad.status == 400, bad.status
    assert "json" in bad.headers.get("content-type", ""), bad.headers
    assert bad.body["success"] is False
    assert bad.body["error"]["code"] == "validation_error"
    assert bad.body["error"]["field"] == "prompt"


def test_mock_stream_matches_chat_and_is_logged():
    H.use({})
    prompt = "Explain the fallback strategy"
    st, hd, chat = H.chat(prompt)
    assert st == 200
    rid = "st-" + uuid.uuid4().hex
    res = H.stream(PATH, prompt, {"X-Request-Id": rid})
    final = completed(res)
    start = res.metas("start")[0]
    assert start["requestId"] == rid == res.headers.get("x-request-id")
    assert start["attemptedProvider"] == "mock"
    assert start["finalProvider"] == "mock"
    assert start["demoMode"] is True
    assert res.text() == chat["data"]["text"]
    assert len(res.tokens()) > 1, "the text came in one lump"
    assert final["finalProvider"] == "mock" and final["demoMode"] is True
    assert isinstance(final["ttftMs"], int) and final["ttftMs"] >= 0
    assert final["usage"] == chat["data"]["meta"]["usage"]
    assert final.get("restarts", 0) == 0
    rows = H.request_row(rid)
    assert len(rows) == 1, rows
    r = rows[0]
    assert (r["endpoint"], r["status"], r["final_provider"]) == \
        ("stream", "success", "mock"), r
    assert r["ttft_ms"] is not None


# ------------------------------------------------------ upstream streams

def test_tokens_arrive_spaced_as_sent():
    H.use(TWO)
    toks = ["One", " two", " three", " four", " five"]
    H.mock_script("groq", [{"kind": "ok", "tokens": toks, "delay_ms": 300}])
    res = H.stream(PATH, "slowly")
    completed(res)
    assert res.tokens() == toks
    times = [t for t, e, _ in res if e == "token"]
    assert times[-1] - times[0] >= 1.0, \
        "tokens were batched: %s" % ["%.2f" % t for t in times]


def test_openai_stream_event_order_and_usage():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "ok", "tokens": ["Hel", "lo", " world"],
                            "usage": [7, 3], "role_preamble": True,
                            "delay_ms": 20}])
    res = H.stream(PATH, "order")
    assert res.names() == ["meta", "token", "token", "token", "meta",
                           "done"], res.names()
    start = res.metas("start")[0]
    assert sub(start, {"attemptedProvider": "groq", "finalProvider": "groq",
                       "fallbackActivated": False, "degradedMode": False,
                       "demoMode": False}), start
    assert res.tokens() == ["Hel", "lo", " world"]
    final = completed(res)
    assert final["usage"] == {"promptTokens": 7, "completionTokens": 3}
    assert final["finishReason"] == "stop"
    assert final["finalProvider"] == "groq"
    c = H.mock_calls("groq")[0]
    assert c["body"]["stream"] is True
    assert c["body"].get("stream_options", {}).get("include_usage") is True
    assert c["headers"].get("authorization") == "Bearer " + KEYS["groq"]


def test_gemini_stream_event_order_and_usage():
    H.use(key_config("gemini"))
    toks = ["Gem", "ini", " says", " hi"]
    H.mock_script("gemini", [{"kind": "ok", "tokens": toks, "usage": [12, 4],
                              "delay_ms": 20}])
    res = H.stream(PATH, "gemini stream")
    final = completed(res)
    assert res.names() == ["meta"] + ["token"] * 4 + ["meta", "done"], \
        res.names()
    assert res.tokens() == toks
    assert final["usage"] == {"promptTokens": 12, "completionTokens": 4}
    assert final["finalProvider"] == "gemini"
    c = H.mock_calls("gemini")[0]
    assert ":streamGenerateContent" in c["path"] and "alt=sse" in c["path"]
    assert c["headers"].get("x-goog-api-key") == KEYS["gemini"]
    assert "key=" not in c["path"] and KEYS["gemini"] not in c["path"]


def test_429_at_start_promotes_with_a_fallback_meta():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "status", "status": 429,
                            "headers": {"Retry-After": "30"}}])
    H.mock_script("sambanova", [{"kind": "ok", "tokens": ["Hi", " there"]}])
    res = H.stream(PATH, "promote me")
    completed(res)
    assert res[0][1] == "meta" and sub(res[0][2], {
        "phase": "fallback", "from": "groq", "to": "sambanova",
        "code": "provider_rate_limited"}), res[0]
    start = res.metas("start")[0]
    assert sub(start, {"attemptedProvider": "groq",
                       "finalProvider": "sambanova",
                       "fallbackActivated": True}), start
    assert res.tokens() == ["Hi", " there"]


def test_first_token_timeout_promotes():
    H.use(dict(TWO, RELAYFORGE_FIRST_TOKEN_TIMEOUT_MS="1000"))
    H.mock_script("groq", [{"kind": "ok", "first_delay_ms": 5000}])
    H.mock_script("sambanova", [{"kind": "ok", "tokens": ["on", " time"]}])
    res = H.stream(PATH, "too slow")
    completed(res)
    fb = [(t, d) for t, e, d in res
          if e == "meta" and d.get("phase") == "fallback"]
    assert len(fb) == 1, res.names()
    t, d = fb[0]
    assert sub(d, {"from": "groq", "to": "sambanova",
                   "code": "provider_timeout"}), d
    assert 0.8 <= t <= 4.0, "fallback after %.2f s" % t
    assert res.tokens() == ["on", " time"]
    assert len(H.mock_calls("groq")) == 1


def test_keep_alive_comment_during_a_long_silence():
    H.use(dict(TWO, RELAYFORGE_FIRST_TOKEN_TIMEOUT_MS="20000"))
    H.mock_script("groq", [{"kind": "ok", "tokens": ["late", " answer"],
                            "first_delay_ms": 11500}])
    res = H.stream(PATH, "take your time", max_seconds=40)
    completed(res)
    assert res.tokens() == ["late", " answer"]
    early = [t for t, _ in res.comments if t < 11.4]
    assert early, "no keep-alive comment in 11 s of silence: %s" % (
        res.comments,)
    assert 8.5 <= early[0] <= 11.4, "first keep-alive at %.1f s" % early[0]


def test_role_preamble_then_error_still_falls_back():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "ok", "role_preamble": True,
                            "error_after": 0}])
    H.mock_script("sambanova", [{"kind": "ok", "tokens": ["second", " tier"]}])
    res = H.stream(PATH, "preamble")
    completed(res)
    fb = res.metas("fallback")
    assert len(fb) == 1 and sub(fb[0], {"from": "groq", "to": "sambanova"}), fb
    assert res.tokens() == ["second", " tier"]


def test_break_after_three_tokens_is_interrupted():
    H.use(TWO)
    toks = ["a1", " b2", " c3", " d4", " e5", " f6"]
    H.mock_script("groq", [{"kind": "ok", "tokens": toks, "delay_ms": 50,
                            "break_after": 3}])
    rid = "brk-" + uuid.uuid4().hex
    res = H.stream(PATH, "break", {"X-Request-Id": rid})
    interrupted(res)
    assert res.tokens() == toks[:3]
    assert H.mock_calls("sambanova") == [], "silent fallback after a token"
    rows = H.request_row(rid)
    assert len(rows) == 1, rows
    r = rows[0]
    assert (r["status"], r["error_code"]) == ("error", "stream_interrupted"), r
    assert r["partial_chars"] == len("".join(toks[:3])), r


def test_idle_stall_is_interrupted():
    H.use(dict(TWO, RELAYFORGE_STREAM_IDLE_TIMEOUT_MS="1000"))
    H.mock_script("groq", [{"kind": "ok", "tokens": ["x1", " x2", " x3"],
                            "delay_ms": 20, "stall_after": 2,
                            "stall_seconds": 5}])
    res = H.stream(PATH, "stall")
    interrupted(res)
    assert res.tokens() == ["x1", " x2"]
    t_tok = [t for t, e, _ in res if e == "token"][-1]
    t_err = [t for t, e, _ in res if e == "error"][0]
    assert 0.7 <= t_err - t_tok <= 4.0, "error %.2f s after the last token" % (
        t_err - t_tok)


def test_restart_recovery_streams_the_next_tier_whole():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "ok", "tokens": ["p1", " p2", " p3",
                                                     " p4"],
                            "delay_ms": 30, "break_after": 2}])
    H.mock_script("sambanova", [{"kind": "ok",
                                 "tokens": ["Fresh", " answer"]}])
    res = H.stream(PATH, {"prompt": "restart me",
                          "options": {"streamRecovery": "restart"}})
    final = completed(res)
    rs = [i for i, (_, e, d) in enumerate(res)
          if e == "meta" and d.get("phase") == "restart"]
    assert len(rs) == 1, res.names()
    assert sub(res[rs[0]][2], {"from": "groq", "to": "sambanova"}), res[rs[0]]
    before = [d["text"] for _, e, d in res[:rs[0]] if e == "token"]
    after = [d["text"] for _, e, d in res[rs[0]:] if e == "token"]
    assert before == ["p1", " p2"], before
    assert after == ["Fresh", " answer"], after
    assert final["restarts"] == 1, final
    assert final["finalProvider"] == "sambanova"
    # The next tier got the original request, not a prefill of the text.
    msgs = H.mock_calls("sambanova")[0]["body"]["messages"]
    assert msgs[-1] == {"role": "user", "content": "restart me"}, msgs


def test_one_malformed_chunk_is_skipped_and_counted():
    H.use(TWO)
    toks = ["m1", " m2", " m3", " m4"]
    H.mock_script("groq", [{"kind": "ok", "tokens": toks, "delay_ms": 10,
                            "malformed_at": 2}])
    res = H.stream(PATH, "skip one")
    final = completed(res)
    assert res.tokens() == toks
    assert final["skippedChunks"] == 1, final


def test_stream_without_done_that_closes_cleanly_is_finalised():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "ok", "tokens": ["no", " done"],
                            "no_done": True, "usage": [5, 2]}])
    res = H.stream(PATH, "no done")
    final = completed(res)
    assert res.text() == "no done"
    assert final["usage"] == {"promptTokens": 5, "completionTokens": 2}


def test_client_disconnect_cancels_upstream_and_is_logged():
    H.use(TWO)
    words = ["w%d " % i for i in range(30)]
    H.mock_script("groq", [{"kind": "ok", "tokens": words, "delay_ms": 200}])
    rid = "gone-" + uuid.uuid4().hex
    res = H.stream(PATH, "long one", {"X-Request-Id": rid},
                   close_after_tokens=2)
    assert res.closed_at is not None and res.tokens() == words[:2]

    def closed():
        calls = H.mock_calls("groq")
        return calls and calls[0]["closed_at"]
    closed_at = harness.wait_until(closed, 6)
    assert closed_at, "the upstream transfer was not cancelled"
    assert closed_at - res.closed_at <= 2.0, \
        "upstream closed %.2f s after the client" % (closed_at - res.closed_at)
    rows = H.request_row(rid)
    assert len(rows) == 1, rows
    assert rows[0]["error_code"] == "client_closed", rows[0]
    st, hd, body = H.chat("still serving?")
    assert st == 200 and body["data"]["meta"]["finalProvider"] == "groq"
    completed(H.stream(PATH, "and streaming?"))


def test_64_concurrent_streams():
    H.use({"RELAYFORGE_MOCK_DELAY_MS": "20", "RELAYFORGE_THREADS": "32"})
    prompts = ["concurrent stream %d" % (i % 4) for i in range(64)]
    expected = {}
    for p in set(prompts):
        st, hd, body = H.chat(p)
        assert st == 200
        expected[p] = body["data"]["text"]
    results = [None] * 64
    errors = []

    def one(i):
        try:
            results[i] = H.stream(PATH, prompts[i], max_seconds=90)
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[:3]
    bad = []
    for i, res in enumerate(results):
        ok = (res is not None and res.status == 200 and
              res.events("done") == [{"ok": True}] and
              res.text() == expected[prompts[i]])
        if not ok:
            bad.append((i, res.status if res else None,
                        res.names()[-3:] if res else None))
    assert not bad, "%d streams failed, e.g. %s" % (len(bad), bad[:3])


def test_zz_keys_never_leak():
    seen = "\n".join(H.seen)
    log = H.errorlog()
    db = H.store_bytes()
    for p, key in KEYS.items():
        assert key not in seen, "%s key in a response or event" % p
        assert key not in log, "%s key in the error log" % p
        assert key.encode() not in db, "%s key in the database file" % p


def test_zz_no_sanitizer_reports():
    # Leak reports appear when the responders exit: stop them first.
    H.stop_lighttpd()
    reports = H.sanitizer_reports()
    assert not reports, "%d sanitizer report(s) in the responders' " \
        "stderr, first: %s" % (len(reports),
                               " | ".join(reports[0].split("\n")[:6]))
