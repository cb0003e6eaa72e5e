"""GET /api/v1/providers/status, /logs and /usage through lighttpd and two
responder processes (docs/api.md), after a scripted mix of requests
against the mock upstream: successes, fallbacks (groq 500 and 429 -> the
next tier), an error without fallback, streams, a client hang-up (a
cancelled request: neither a success nor an error) and the demo tier.  Every figure must be exactly what was sent, from either
process; also pagination and filters, 400s naming the parameter, the admin
token, a restart, PRAGMA integrity_check, 8 x 25 concurrent clients, and
every named query of schema/queries.sql through the sqlite3 CLI.

The tests run in order and build on the mix the first one sends."""

import datetime
import json
import os
import subprocess
import threading
import time

import harness
from harness import ISO_RE, key_config

H = None
ADMIN = "admin-token-OBSERVE"
AUTH = {"Authorization": "Bearer " + ADMIN}
CONFIG = dict(key_config("groq", "cerebras", "openrouter"),
              RELAYFORGE_ADMIN_TOKEN=ADMIN, RELAYFORGE_RETRIES="0",
              RELAYFORGE_COOLDOWN_MS="600000",
              RELAYFORGE_LOG_PROMPTS="preview")
QUERIES = os.path.join(harness.ROOT, "schema", "queries.sql")
LONG_PROMPT = "Explain the fallback strategy in RelayForge. " * 5  # 230 chars

# What the mix sent, filled by test_mix_is_logged: request id -> dict of
# expected log fields (plus "answer": the meta / error the client got).
SENT = {}
ORDER = []          # request ids in the order sent
T_START = T_END = 0


def setup_module():
    global H
    H = harness.Harness("observe")
    H.use(CONFIG)


def teardown_module():
    if H:
        H.close()


# ------------------------------------------------------------------ helpers

def iso_ms(s):
    assert ISO_RE.match(s), s
    dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(dt.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def get_data(path, headers=AUTH, times=4, ignore=()):
    """GET path several times (lighttpd spreads them over both responder
    processes); every answer must be 200 and the same (keys in ignore
    aside).  Returns the data of the first."""
    for attempt in range(2):
        answers = []
        for _ in range(times):
            st, hd, body = H.get(path, headers=headers)
            assert st == 200, "%s: %s %s" % (path, st, body)
            assert body["success"] is True, body
            assert hd.get("cache-control") == "no-store", hd
            data = dict(body["data"])
            answers.append(data)
        norm = [{k: v for k, v in a.items() if k not in ignore}
                for a in answers]
        if all(n == norm[0] for n in norm):
            return answers[0]
        # A usage window may move to the next bucket between two GETs.
    raise AssertionError("answers differ across GETs of %s" % path)


def all_items(query=""):
    """Every log item matching query, walking the pages of 200."""
    items, before = [], None
    while True:
        q = "limit=200" + ("&" + query if query else "") + \
            ("&before=%d" % before if before else "")
        data = get_data("/api/v1/logs?" + q, times=1)
        items += data["items"]
        if data["nextBefore"] is None:
            return items
        before = data["nextBefore"]


def wait_rows(n, timeout=15):
    """The log row is written after the answer leaves: wait for n rows."""
    got = harness.wait_until(lambda: H.count_requests() >= n, timeout)
    assert got, "expected %d log rows, have %d" % (n, H.count_requests())
    time.sleep(0.1)
    assert H.count_requests() == n, H.count_requests()


def expect_400(path, field, headers=AUTH):
    st, hd, body = H.get(path, headers=headers)
    assert st == 400, "%s: %s %s" % (path, st, body)
    assert body["error"]["code"] == "validation_error", body
    assert body["error"]["field"] == field, (path, body["error"])


def chat(rid, body, status=200):
    st, hd, resp = H.chat(body, {"X-Request-Id": rid})
    assert st == status, "%s: %s %s" % (rid, st, resp)
    assert hd["x-request-id"] == rid
    return resp["data"]["meta"] if status == 200 else resp["error"]


def stream(rid, body, **kw):
    res = H.stream("/api/v1/stream", body, {"X-Request-Id": rid}, **kw)
    assert res.status == 200, res.body
    return res


def expect(rid, answer, **fields):
    ORDER.append(rid)
    SENT[rid] = dict(fields, answer=answer)
    # Row ids follow the order rows are written, and two processes' log
    # writers may write back-to-back requests the other way round (more
    # often on PostgreSQL, whose write takes longer): wait for each row,
    # so ORDER is the log's order.
    harness.wait_until(lambda: H.count_requests() >= len(ORDER), 15)


# ------------------------------------------------------------------ the mix

def test_mix_is_logged():
    global T_START, T_END
    assert len(H.children) == 2, H.children  # two responder processes
    T_START = harness.now_ms()
    base = dict(endpoint="chat", strategy="auto", status="success",
                errorCode=None, fallbackActivated=False, degradedMode=False,
                demoMode=False, attemptedProvider="groq",
                finalProvider="groq")

    # 4 chats answered by groq (the first with a long prompt: preview).
    for i in range(4):
        rid = "obs-chat-%d" % i
        prompt = LONG_PROMPT if i == 0 else "hello %d" % i
        meta = chat(rid, {"prompt": prompt,
                          "metadata": {"source": "it-chat"}})
        expect(rid, meta, source="it-chat", prompt=prompt, **base)

    # 2 streams answered by groq.
    for i in range(2):
        rid = "obs-stream-%d" % i
        res = stream(rid, {"prompt": "stream %d" % i,
                           "metadata": {"source": "it-stream"}})
        assert res.names()[-1] == "done" and res.events("done")[0]["ok"]
        expect(rid, res.metas("final")[0], source="it-stream",
               **dict(base, endpoint="stream"))

    # groq 500 -> sambanova skipped -> cerebras answers (a fallback); its
    # answer carries quota headers.
    H.mock_script("groq", [{"kind": "status", "status": 500}])
    H.mock_script("cerebras", [{"kind": "ok", "headers": {
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-remaining-tokens": "5000"}}])
    meta = chat("obs-fallback-500", "fallback please")
    assert [a["outcome"] for a in meta["attempts"]] == \
        ["provider_unavailable", "skipped", "ok"], meta["attempts"]
    expect("obs-fallback-500", meta, source=None, **dict(
        base, finalProvider="cerebras", fallbackActivated=True,
        degradedMode=True))

    # groq 500 with fallback off: the request fails.
    H.mock_script("groq", [{"kind": "status", "status": 500}])
    err = chat("obs-error", {"prompt": "no fallback",
                             "options": {"fallback": False}}, status=502)
    assert err["code"] == "provider_unavailable"
    expect("obs-error", err, source=None, **dict(
        base, status="error", errorCode="provider_unavailable"))

    # A stream whose client hangs up after two tokens.
    words = ["w%d " % i for i in range(40)]
    H.mock_script("groq", [{"kind": "ok", "tokens": words, "delay_ms": 200}])
    res = stream("obs-hangup", {"prompt": "long one",
                                "metadata": {"source": "it-hangup"}},
                 close_after_tokens=2)
    assert res.closed_at is not None
    # A hang-up is cancelled: neither a success nor an error.
    expect("obs-hangup", None, source="it-hangup", **dict(
        base, endpoint="stream", status="cancelled",
        errorCode="client_closed"))
    rows = H.request_row("obs-hangup", timeout=15)
    assert rows and rows[0]["error_code"] == "client_closed", rows

    # groq 429 (no Retry-After): cooldown for RELAYFORGE_COOLDOWN_MS, and
    # cerebras answers.
    H.mock_script("groq", [{"kind": "status", "status": 429}])
    meta = chat("obs-fallback-429", "rate limited")
    assert meta["attempts"][0]["outcome"] == "provider_rate_limited"
    expect("obs-fallback-429", meta, source=None, **dict(
        base, finalProvider="cerebras", fallbackActivated=True,
        degradedMode=True))

    # groq is cooling down: skipped, cerebras is the first called.
    harness.settle()  # the other process sees the cooldown within its snapshot window
    meta = chat("obs-degraded", "while groq cools")
    assert [a.get("reason") for a in meta["attempts"][:2]] == \
        ["cooling_down", "unconfigured"], meta["attempts"]
    expect("obs-degraded", meta, source=None, **dict(
        base, attemptedProvider="cerebras", finalProvider="cerebras",
        degradedMode=True))

    # The demo tier, chosen by name.
    meta = chat("obs-mock", {"prompt": "demo", "options": {"strategy":
                                                           "mock"}})
    expect("obs-mock", meta, source=None, **dict(
        base, strategy="mock", attemptedProvider="mock",
        finalProvider="mock", demoMode=True, degradedMode=True))

    wait_rows(len(SENT))
    T_END = harness.now_ms()


# ------------------------------------------------------------------ logs

def test_logs_items_match_what_was_sent():
    data = get_data("/api/v1/logs")
    items = data["items"]
    assert data["nextBefore"] is None
    assert [it["requestId"] for it in items] == ORDER[::-1]
    ids = [it["id"] for it in items]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    for it in items:
        want = SENT[it["requestId"]]
        for k, v in want.items():
            if k not in ("answer", "prompt"):
                assert it[k] == v, (it["requestId"], k, it[k], v)
        assert T_START - 1000 <= iso_ms(it["timestamp"]) <= T_END
        ans = want["answer"]
        if it["requestId"] == "obs-hangup":
            assert it["httpStatus"] == 499, it
            assert [(a["provider"], a["outcome"]) for a in it["attempts"]] \
                == [("groq", "client_closed")], it["attempts"]
            assert it["partialChars"] > 0, it
        elif it["status"] == "success":
            # The attempts, usage, model and latency the client saw.
            for k in ("attempts", "usage", "model", "latencyMs"):
                assert it[k] == ans[k], (it["requestId"], k, it[k], ans[k])
            assert it["httpStatus"] == 200
            assert (it["ttftMs"] is not None) == (it["endpoint"] == "stream")
        else:
            assert it["attempts"] == ans["attempts"], it
            assert it["httpStatus"] == 502
            assert it["usage"] == {"promptTokens": None,
                                   "completionTokens": None}, it
        prompt = want.get("prompt")
        if prompt:
            assert it["promptChars"] == len(prompt)
            assert it["promptPreview"] == prompt[:120]
        assert "promptPreview" in it
    # The attempts of the 429 fallback, exactly in the documented shape (docs/api.md).
    it = [i for i in items if i["requestId"] == "obs-fallback-429"][0]
    assert it["attempts"][0]["httpStatus"] == 429
    assert it["attempts"][1] == {"provider": "sambanova",
                                 "outcome": "skipped",
                                 "reason": "unconfigured"}
    assert set(it["attempts"][2]) == {"provider", "outcome", "httpStatus",
                                      "latencyMs"}


def test_logs_pagination():
    seen, before, pages = [], None, 0
    while True:
        path = "/api/v1/logs?limit=5" + ("&before=%d" % before if before
                                         else "")
        data = get_data(path)
        pages += 1
        seen += [it["requestId"] for it in data["items"]]
        if data["nextBefore"] is None:
            break
        assert data["nextBefore"] == data["items"][-1]["id"]
        before = data["nextBefore"]
    assert pages == 3 and seen == ORDER[::-1]
    # A page that ends exactly at the last row has no nextBefore.
    data = get_data("/api/v1/logs?limit=%d" % len(ORDER))
    assert len(data["items"]) == len(ORDER) and data["nextBefore"] is None
    data = get_data("/api/v1/logs?limit=%d" % (len(ORDER) - 1))
    assert data["nextBefore"] == data["items"][-1]["id"]
    last = get_data("/api/v1/logs?before=%d" % data["nextBefore"])
    assert [i["requestId"] for i in last["items"]] == [ORDER[0]]


def test_logs_filters():
    def ids(query):
        return [it["requestId"] for it in all_items(query)]

    def sent(**want):
        return [r for r in ORDER[::-1]
                if all(SENT[r][k] == v for k, v in want.items())]

    cases = [
        ("provider=groq", dict(finalProvider="groq")),
        ("provider=cerebras", dict(finalProvider="cerebras")),
        ("provider=mock", dict(finalProvider="mock")),
        ("provider=sambanova", dict(finalProvider="sambanova")),
        ("status=error", dict(status="error")),
        ("status=success", dict(status="success")),
        ("status=cancelled", dict(status="cancelled")),
        ("endpoint=stream", dict(endpoint="stream")),
        ("endpoint=chat", dict(endpoint="chat")),
        ("provider=groq&status=error&endpoint=stream",
         dict(finalProvider="groq", status="error", endpoint="stream")),
        ("provider=groq&status=cancelled&endpoint=stream",
         dict(finalProvider="groq", status="cancelled", endpoint="stream")),
        ("provider=cerebras&status=success&endpoint=chat",
         dict(finalProvider="cerebras", status="success", endpoint="chat")),
    ]
    for query, want in cases:
        assert ids(query) == sent(**want), query
    assert len(sent(finalProvider="groq")) == 8
    assert len(sent(status="error")) == 1
    assert len(sent(status="cancelled")) == 1
    # A filter pages like the whole log.
    data = get_data("/api/v1/logs?provider=groq&limit=3")
    assert len(data["items"]) == 3 and data["nextBefore"] is not None
    rest = get_data("/api/v1/logs?provider=groq&limit=200&before=%d"
                    % data["nextBefore"])
    assert [i["requestId"] for i in data["items"] + rest["items"]] == \
        sent(finalProvider="groq")


def test_bad_query_values_name_the_parameter():
    for q, field in [("limit=0", "limit"), ("limit=201", "limit"),
                     ("limit=ten", "limit"), ("limit=", "limit"),
                     ("before=0", "before"), ("before=-3", "before"),
                     ("before=abc", "before"), ("provider=nope", "provider"),
                     ("provider=", "provider"), ("status=failed", "status"),
                     ("endpoint=sse", "endpoint"),
                     ("limit=5&endpoint=Chat", "endpoint")]:
        expect_400("/api/v1/logs?" + q, field)
    for q in ("window=2h", "window=", "window=1d", "window=30D"):
        expect_400("/api/v1/usage?" + q, "window")


def test_admin_token_guards_logs_and_usage_not_status():
    for path in ("/api/v1/logs", "/api/v1/usage", "/api/v1/usage?window=1h",
                 "/api/v1/logs?limit=1"):
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": ADMIN}):
            st, hd, body = H.get(path, headers=headers)
            assert st == 401, (path, headers, st)
            assert body["error"]["code"] == "unauthorized"
    # A bad value without the token is still a 401: the guard comes first.
    st, _, _ = H.get("/api/v1/logs?limit=0")
    assert st == 401
    st, hd, body = H.get("/api/v1/providers/status")
    assert st == 200 and body["success"] is True


# ------------------------------------------------------------------ usage

def nearest_rank(values, pct):
    v = sorted(values)
    k = max(1, -(-len(v) * pct // 100))
    return v[k - 1]


def test_usage_totals_shares_and_buckets():
    items = all_items()
    lat = [it["latencyMs"] for it in items]
    n = len(items)
    spec = {"1h": (60, 60), "24h": (3600, 24), "7d": (21600, 28),
            "30d": (86400, 30)}
    for window, (bucket, count) in spec.items():
        path = "/api/v1/usage" + ("" if window == "24h" else
                                  "?window=" + window)
        d = get_data(path)
        assert d["window"] == window and d["bucketSeconds"] == bucket
        frm, to = iso_ms(d["from"]), iso_ms(d["to"])
        assert to - frm == bucket * count * 1000
        assert to % (bucket * 1000) == 0 and to > T_END
        t = d["totals"]
        assert t["requests"] == n == 12
        assert t["successes"] == 10 and t["errors"] == 1
        assert t["cancelled"] == 1
        assert t["fallbacks"] == 2
        assert abs(t["fallbackRate"] - 2 / 12) < 1e-9
        assert t["avgLatencyMs"] == (sum(lat) + n // 2) // n
        for key, pct in (("p50LatencyMs", 50), ("p95LatencyMs", 95),
                         ("p99LatencyMs", 99)):
            exact = nearest_rank(lat, pct)
            assert exact <= t[key] <= max(lat), (key, t[key], exact)
            assert t[key] <= exact * 1.25 or t[key] <= 7, (key, t, exact)
        assert t["promptTokens"] == sum(
            it["usage"]["promptTokens"] or 0 for it in items)
        assert t["completionTokens"] == sum(
            it["usage"]["completionTokens"] or 0 for it in items)
        assert t["promptTokens"] > 0 and t["completionTokens"] > 0
        # Final providers: groq 8, cerebras 3, mock 1.
        prov = {p["provider"]: p for p in d["providers"]}
        assert [p["provider"] for p in d["providers"]] == \
            ["groq", "cerebras", "mock"]
        assert {k: v["requests"] for k, v in prov.items()} == \
            {"groq": 8, "cerebras": 3, "mock": 1}
        assert prov["groq"]["errors"] == 1 and prov["cerebras"]["errors"] == 0
        assert prov["groq"]["cancelled"] == 1
        assert sum(p["cancelled"] for p in d["providers"]) == 1
        assert abs(sum(p["share"] for p in d["providers"]) - 1) < 1e-9
        assert abs(prov["groq"]["share"] - 8 / 12) < 1e-9
        groq_lat = [it["latencyMs"] for it in items
                    if it["finalProvider"] == "groq"]
        assert prov["groq"]["avgLatencyMs"] == \
            (sum(groq_lat) + len(groq_lat) // 2) // len(groq_lat)
        # Zero-filled buckets holding exactly the requests of their span.
        ts = d["timeseries"]
        assert len(ts) == count
        want = [[0, 0, 0, 0] for _ in range(count)]
        for it in items:
            k = (iso_ms(it["timestamp"]) - frm) // (bucket * 1000)
            want[k][0] += 1
            want[k][1] += it["status"] == "error"
            want[k][2] += it["fallbackActivated"]
            want[k][3] += it["status"] == "cancelled"
        for k, b in enumerate(ts):
            assert iso_ms(b["t"]) == frm + k * bucket * 1000
            assert [b["requests"], b["errors"], b["fallbacks"],
                    b["cancelled"]] == want[k], (window, k, b, want[k])
            assert (b["avgLatencyMs"] is None) == (b["requests"] == 0)
            assert (b["p95LatencyMs"] is None) == (b["requests"] == 0)


# ------------------------------------------------------------------ status

def status_map(data):
    return {p["id"]: p for p in data["providers"]}


def test_status_after_mix():
    d = get_data("/api/v1/providers/status", headers={},
                 ignore=("generatedAt",))
    assert d["routingOrder"] == ["groq", "sambanova", "cerebras", "gemini",
                                 "openrouter", "mock"]
    assert ISO_RE.match(d["generatedAt"])
    p = status_map(d)
    assert [p[i]["position"] for i in d["routingOrder"]] == [1, 2, 3, 4, 5, 6]
    states = {i: p[i]["state"] for i in p}
    assert states == {"groq": "cooling_down", "sambanova": "unconfigured",
                      "cerebras": "healthy", "gemini": "unconfigured",
                      "openrouter": "idle", "mock": "healthy"}, states

    g = p["groq"]
    # 6 ok, the 500, the 500 without fallback, the 429; the hang-up and
    # the skip while cooling do not count.
    assert g["stats"]["requests"] == 9, g["stats"]
    assert g["stats"]["successes"] == 6 and g["stats"]["failures"] == 3
    assert abs(g["stats"]["successRate"] - 6 / 9) < 1e-9
    assert g["stats"]["windowSeconds"] == 900
    assert g["configured"] is True and g["name"] == "Groq"
    until = iso_ms(g["cooldownUntil"])
    assert T_END < until <= T_END + 600000 + 1000
    assert g["lastError"]["code"] == "provider_rate_limited"
    assert T_START <= iso_ms(g["lastError"]["at"]) <= T_END
    assert T_START <= iso_ms(g["lastSuccessAt"]) <= T_END
    groq_calls = [a["latencyMs"] for r in ORDER if SENT[r]["answer"]
                  for a in SENT[r]["answer"]["attempts"]
                  if a["provider"] == "groq" and "latencyMs" in a]
    assert g["stats"]["p95LatencyMs"] == nearest_rank(groq_calls, 95)

    c = p["cerebras"]
    assert (c["stats"]["requests"], c["stats"]["successes"]) == (3, 3)
    assert c["stats"]["successRate"] == 1
    assert c["lastError"] is None and c["cooldownUntil"] is None
    assert c["quota"]["remainingRequests"] == 99
    assert c["quota"]["remainingTokens"] == 5000

    for pid in ("sambanova", "gemini"):
        assert p[pid]["configured"] is False
        assert p[pid]["stats"]["requests"] == 0
        assert p[pid]["stats"]["successRate"] is None
    o = p["openrouter"]
    assert o["configured"] is True and o["stats"]["requests"] == 0
    assert o["stats"]["avgLatencyMs"] is None and o["lastSuccessAt"] is None
    assert o["quota"] is None
    m = p["mock"]
    assert m["model"] == "relayforge-mock-1" and m["stats"]["requests"] == 1


# ------------------------------------------------------------------ queries

def named_queries():
    """{name: sql} from schema/queries.sql ("-- name: x" starts each)."""
    out, name, lines = {}, None, []
    with open(QUERIES) as f:
        for ln in f:
            if ln.startswith("-- name:"):
                if name:
                    out[name] = "".join(lines)
                name, lines = ln.split(":", 1)[1].strip(), []
            elif name:
                lines.append(ln)
    if name:
        out[name] = "".join(lines)
    return out


def run_query(sql):
    p = subprocess.run(["sqlite3", "-json", "-readonly", H.db_path],
                       input=sql, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and not p.stderr, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else []


@harness.sqlite_only  # the psql variants: test_two_gateways.py
def test_operator_queries():
    q = named_queries()
    assert set(q) == {"recent_failures", "fallback_rate_per_provider_per_hour",
                      "slowest_requests", "providers_in_cooldown",
                      "tokens_per_day", "requests_per_source"}, set(q)
    items = all_items()

    # The hang-up is cancelled, not a failure.
    rows = run_query(q["recent_failures"])
    assert [(r["error_code"], r["trail"].split(" > ")[0]) for r in rows] == [
        ("provider_unavailable", "groq:provider_unavailable")], rows
    assert rows[0]["http_status"] == 502

    rows = run_query(q["fallback_rate_per_provider_per_hour"])
    per = {}
    for r in rows:
        agg = per.setdefault(r["provider"], [0, 0])
        agg[0] += r["requests"]
        agg[1] += r["fallbacks"]
    assert per == {"groq": [10, 2], "cerebras": [1, 0], "mock": [1, 0]}, per

    rows = run_query(q["slowest_requests"])
    assert len(rows) == 12
    assert [r["status"] for r in rows].count("cancelled") == 1
    assert rows[0]["latency_ms"] == max(it["latencyMs"] for it in items)

    rows = run_query(q["providers_in_cooldown"])
    assert [r["provider"] for r in rows] == ["groq"], rows
    assert rows[0]["cooldown_reason"] == "provider_rate_limited", rows
    assert 0 < rows[0]["seconds_left"] <= 600

    rows = run_query(q["tokens_per_day"])
    assert sum(r["requests"] for r in rows) == 12
    assert sum(r["prompt_tokens"] for r in rows) == sum(
        it["usage"]["promptTokens"] or 0 for it in items)

    rows = run_query(q["requests_per_source"])
    assert {r["source"]: r["requests"] for r in rows} == {
        "it-chat": 4, "it-stream": 2, "it-hangup": 1, "(none)": 5}, rows
    assert {r["source"]: (r["errors"], r["cancelled"]) for r in rows}[
        "it-hangup"] == (0, 1)
    assert sum(r["errors"] for r in rows) == 1

    # The whole file runs in one go, as the README shows.
    p = subprocess.run(["sqlite3", "-readonly", H.db_path],
                       stdin=open(QUERIES), capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and not p.stderr, p.stderr


def test_status_down_and_degraded():
    # Cooldown over, three failures in a row still on record: down.
    H.sql("UPDATE provider_state SET cooldown_until_ms = 0"
          " WHERE provider = 'groq'")
    p = status_map(get_data("/api/v1/providers/status", headers={},
                            ignore=("generatedAt",)))
    assert p["groq"]["state"] == "down" and p["groq"]["cooldownUntil"] is None
    # Streak cleared: the last call (the 429) failed, so degraded.
    H.sql("UPDATE provider_state SET consecutive_failures = 0"
          " WHERE provider = 'groq'")
    p = status_map(get_data("/api/v1/providers/status", headers={},
                            ignore=("generatedAt",)))
    assert p["groq"]["state"] == "degraded"
    # A success: 7 of 10 calls is under 90%, still degraded.  The cooldown
    # was cleared in the store, behind the processes' backs: each obeys it
    # until its snapshot is read again (RF_PSTATE_READ_MS).
    harness.settle()
    meta = chat("obs-groq-back", "groq again")
    assert meta["finalProvider"] == "groq"
    wait_rows(13)
    p = status_map(get_data("/api/v1/providers/status", headers={},
                            ignore=("generatedAt",)))
    assert p["groq"]["state"] == "degraded"
    assert p["groq"]["stats"]["requests"] == 10


# ------------------------------------------------------------------ store

def test_data_survives_a_restart():
    before_logs = all_items()
    before_usage = get_data("/api/v1/usage?window=7d")
    H.restart(CONFIG)
    assert len(H.children) == 2
    assert all_items() == before_logs
    assert get_data("/api/v1/usage?window=7d")["totals"] == \
        before_usage["totals"]
    # Without RELAYFORGE_LOG_PROMPTS=preview, no item shows a preview.
    H.restart(dict(CONFIG, RELAYFORGE_LOG_PROMPTS=None))
    items = all_items()
    assert len(items) == len(before_logs)
    assert not any("promptPreview" in it for it in items)
    H.restart(CONFIG)


@harness.sqlite_only
def test_integrity_check():
    assert H.sql("PRAGMA integrity_check") == [("ok",)]
    assert H.sql("PRAGMA foreign_key_check") == []
    assert H.sql("PRAGMA journal_mode") == [("wal",)]


def test_concurrent_clients_exact_counts():
    H.reset()  # cooldowns gone: groq answers again
    for table in ("attempts", "requests", "usage_minute", "usage_hour"):
        H.sql("DELETE FROM %s" % table)
    errors = []

    def client(c):
        for i in range(25):
            try:
                st, hd, body = H.chat({"prompt": "client %d request %d"
                                       % (c, i)},
                                      {"X-Request-Id": "cc-%d-%d" % (c, i)})
                if st != 200:
                    errors.append((c, i, st, body))
            except Exception as e:  # noqa: BLE001 -- reported below
                errors.append((c, i, repr(e)))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    wait_rows(200)
    items = all_items()
    assert len(items) == 200
    assert len({it["requestId"] for it in items}) == 200
    for window in ("1h", "24h", "7d", "30d"):
        d = get_data("/api/v1/usage?window=" + window)
        assert d["totals"]["requests"] == 200, (window, d["totals"])
        assert d["totals"]["successes"] == 200
        assert sum(b["requests"] for b in d["timeseries"]) == 200
        assert [(p["provider"], p["requests"], p["share"])
                for p in d["providers"]] == [("groq", 200, 1)]
    assert H.integrity_ok()


def test_responders_logged_no_sanitizer_report():
    """Under `make check` the responders are ASan/UBSan builds writing to
    lighttpd's stderr log: any report there is a bug in what ran above."""
    log = H.errorlog()
    for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert marker not in log, log[log.find(marker) - 200:][:2000]
