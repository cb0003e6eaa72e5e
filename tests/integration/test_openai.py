"""The OpenAI-compatible surface (/v1) through lighttpd and the
scriptable mock upstream: every row of the model table, the request fields
on both wire formats (passed on as given, or translated for Gemini), each error
status and type with x-should-retry, chat.completion and its headers,
streams (held head, invisible fallback, a break after the first token,
include_usage on and off, a client that hangs up), /v1/models, CORS, and
the log rows."""

import json
import socket
import time
import uuid

import harness
from harness import key_config

H = None
CHAT = "/v1/chat/completions"
TWO = dict(key_config("groq", "sambanova"), RELAYFORGE_RETRIES="0")
NOMOCK = dict(key_config("groq"), RELAYFORGE_RETRIES="0", RELAYFORGE_MOCK="off")
GROQ_MODEL = "llama-3.1-8b-instant"
SAMBA_MODEL = "Meta-Llama-3.3-70B-Instruct"


def setup_module():
    global H
    H = harness.Harness("openai")


def teardown_module():
    if H:
        H.close()


def body(model="auto", text="hello there", **extra):
    b = {"model": model, "messages": [{"role": "user", "content": text}]}
    b.update(extra)
    return b


def post(b, headers=None):
    return H.post(CHAT, b, headers)


def is_error(st, hd, b, status, code, etype, param=None, no_retry=None):
    """An OpenAI error: status, {"error": {message, type, param, code}},
    and x-should-retry: false exactly when asked."""
    assert st == status, (st, b)
    assert set(b) == {"error"}, b
    e = b["error"]
    assert set(e) == {"message", "type", "param", "code"}, e
    assert e["code"] == code and e["type"] == etype, e
    assert e["param"] == param, e
    assert isinstance(e["message"], str) and e["message"], e
    if no_retry is not None:
        assert (hd.get("x-should-retry") == "false") == no_retry, hd
    return e


def chunks(res):
    """The JSON chunks of a /v1 stream, and whether it ended with [DONE]."""
    data = [d for (_, e, d) in res if e == "message"]
    done = bool(data) and data[-1] == {"_raw": "[DONE]"}
    assert [d for d in data if d == {"_raw": "[DONE]"}] == ([data[-1]] if
                                                             done else [])
    return (data[:-1] if done else data), done


def completed_stream(res, usage):
    """200, SSE, role first, content deltas, one finish chunk, the usage
    chunk when asked, [DONE]; every chunk with the same id/created/model.
    Returns (text, chunks)."""
    assert res.status == 200, (res.status, res.body)
    assert res.headers["content-type"].startswith("text/event-stream")
    cs, done = chunks(res)
    assert done, cs[-2:]
    heads = {(c["id"], c["created"], c["model"], c["object"]) for c in cs}
    assert len(heads) == 1, heads
    assert cs[0]["choices"][0]["delta"].get("role") == "assistant", cs[0]
    fin = [i for i, c in enumerate(cs)
           if c["choices"] and c["choices"][0]["finish_reason"] is not None]
    assert len(fin) == 1, cs
    tail = cs[fin[0] + 1:]
    if usage:
        assert len(tail) == 1 and tail[0]["choices"] == [], tail
        u = tail[0]["usage"]
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    else:
        assert tail == [] and all("usage" not in c for c in cs), tail
    text = "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in cs[:fin[0]])
    return text, cs


# ------------------------------------------------------------ /v1/models

def test_models_list_and_retrieve():
    H.use(key_config("groq"))
    st, hd, b = H.get("/v1/models")
    assert st == 200, b
    assert b["object"] == "list"
    ids = [m["id"] for m in b["data"]]
    assert ids == ["auto", "groq", "groq/" + GROQ_MODEL, "mock",
                   "mock/relayforge-mock-1"], ids
    for m in b["data"]:
        assert m["object"] == "model" and isinstance(m["created"], int)
        assert m["owned_by"] == ("relayforge" if m["id"] == "auto" else
                                 m["id"].split("/")[0]), m
    # ids with '/', as is or encoded the way SDKs send them
    for path in ("/v1/models/groq/" + GROQ_MODEL,
                 "/v1/models/groq%2F" + GROQ_MODEL, "/v1/models/auto"):
        st, hd, m = H.get(path)
        assert st == 200 and m["object"] == "model", (path, m)
    st, hd, b = H.get("/v1/models/sambanova")  # not configured: not listed
    is_error(st, hd, b, 404, "model_not_found", "invalid_request_error",
             "model", no_retry=True)


# ------------------------------------------------------------ model table

def test_model_auto_answers_as_a_chat_completion():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "ok", "text": "Hi from groq",
                            "usage": [11, 3]}])
    rid = "oai-" + uuid.uuid4().hex
    st, hd, b = post(body(), {"X-Request-Id": rid})
    assert st == 200, b
    assert hd["x-request-id"] == rid
    assert hd["x-relayforge-provider"] == "groq"
    assert hd["x-relayforge-fallback"] == "false"
    assert hd["x-relayforge-attempts"] == "groq:ok", hd
    assert "x-should-retry" not in hd
    assert b["id"] == "chatcmpl-" + rid
    assert b["object"] == "chat.completion"
    assert abs(b["created"] - time.time()) < 600
    assert b["model"] == GROQ_MODEL, b
    assert b["choices"] == [{"index": 0, "message": {
        "role": "assistant", "content": "Hi from groq"},
        "finish_reason": "stop", "logprobs": None}], b["choices"]
    assert b["usage"] == {"prompt_tokens": 11, "completion_tokens": 3,
                          "total_tokens": 14}
    meta = b["relayforge"]
    assert meta["requestId"] == rid and meta["finalProvider"] == "groq"
    assert meta["strategy"] == "auto"
    assert [a["provider"] for a in meta["attempts"]][0] == "groq"
    rows = H.request_row(rid)
    assert len(rows) == 1 and rows[0]["endpoint"] == "openai", rows
    assert rows[0]["status"] == "success" and rows[0]["prompt_chars"] == 11


def test_model_provider_id_is_manual():
    H.use(TWO)
    st, hd, b = post(body("sambanova"))
    assert st == 200, b
    assert b["relayforge"]["strategy"] == "sambanova"
    assert b["relayforge"]["attempts"][0]["provider"] == "sambanova"
    assert hd["x-relayforge-attempts"] == "sambanova:ok"
    assert H.mock_calls("groq") == []


def test_model_configured_id_is_manual_with_that_provider():
    H.use(TWO)
    st, hd, b = post(body(SAMBA_MODEL))
    assert st == 200, b
    assert hd["x-relayforge-provider"] == "sambanova"
    assert b["relayforge"]["strategy"] == "sambanova"
    assert H.mock_calls("groq") == []


def test_model_provider_slash_model_then_the_chain():
    H.use(TWO)
    # The first tier fails, so the next one shows it got its own model.
    H.mock_script("sambanova", [{"kind": "status", "status": 500}])
    st, hd, b = post(body("sambanova/Other-Model-1"))
    assert st == 200, b
    assert hd["x-relayforge-attempts"] == \
        "sambanova:provider_unavailable,groq:ok", hd
    assert b["relayforge"]["strategy"] == "sambanova"
    assert H.mock_calls("groq")[0]["body"]["model"] == GROQ_MODEL
    sent = H.mock_calls("sambanova")[0]["body"]["model"]
    assert sent == "Other-Model-1", sent
    H.mock_script("sambanova", [{"kind": "ok", "text": "other"}])
    st, hd, b = post(body("sambanova/Other-Model-1"))
    assert b["model"] == "Other-Model-1", b


def test_unknown_model_is_404_model_not_found():
    H.use(TWO)
    before = H.count_requests()
    for m in ("gpt-4o", "nope/x", "groq/", "groq /x", "Auto"):
        st, hd, b = post(body(m))
        is_error(st, hd, b, 404, "model_not_found", "invalid_request_error",
                 "model", no_retry=True)
    assert H.mock_calls("groq") == [] and H.mock_calls("sambanova") == []
    time.sleep(0.3)
    assert H.count_requests() == before  # refused before the chain
    # A provider of the chain without a key routes like /api/v1's
    # strategy: tried first (skipped), then the rest of the chain.
    st, hd, b = post(body("cerebras"))
    assert st == 200 and hd["x-relayforge-attempts"].startswith(
        "cerebras:unconfigured,groq:ok"), hd


def test_relayforge_fallback_false():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "status", "status": 500}])
    st, hd, b = post(body(relayforge={"fallback": False}))
    is_error(st, hd, b, 502, "provider_unavailable", "api_error",
             no_retry=False)
    assert hd["x-relayforge-attempts"] == "groq:provider_unavailable", hd
    assert H.mock_calls("sambanova") == []


# ------------------------------------------------------------ request fields

ALL_FIELDS = {
    "max_completion_tokens": 77, "temperature": 0.3, "top_p": 0.9,
    "stop": ["END"], "seed": 42, "presence_penalty": 0.5,
    "frequency_penalty": -0.5, "user": "user-7", "parallel_tool_calls": False,
    "tools": [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}}, "required": ["city"]}}}],
    "tool_choice": "none",
    "response_format": {"type": "json_schema", "json_schema": {
        "name": "answer", "strict": True, "schema": {
            "type": "object", "properties": {"a": {"type": "string"}},
            "required": ["a"], "additionalProperties": False}}},
}


def test_request_fields_on_the_openai_wire():
    H.use(TWO)
    st, hd, b = post(body("groq", **ALL_FIELDS))
    assert st == 200, b
    sent = H.mock_calls("groq")[0]["body"]
    # What the adapter takes from the normalised request today.
    assert sent["max_completion_tokens"] == 77, sent
    assert sent["temperature"] == 0.3, sent
    # max_tokens on a provider that wants that name
    H.reset()
    st, hd, b = post(body("sambanova", max_tokens=55))
    assert H.mock_calls("sambanova")[0]["body"]["max_tokens"] == 55
    passed = [k for k in ("top_p", "stop", "seed", "presence_penalty",
                          "frequency_penalty", "user", "tools", "tool_choice",
                          "parallel_tool_calls", "response_format")
              if sent.get(k) == ALL_FIELDS[k]]
    assert len(passed) == 10, (passed, sent)


def test_request_fields_on_the_gemini_wire():
    # Gemini 2.0: the last family that takes penalties (2.5 refuses them,
    # so the adapter skips that tier as unsupported: test_tools).
    H.use(dict(key_config("gemini"), RELAYFORGE_RETRIES="0",
               RELAYFORGE_GEMINI_MODEL="gemini-2.0-flash"))
    fields = dict(ALL_FIELDS)
    fields.pop("tools")
    fields.pop("tool_choice")
    fields.pop("parallel_tool_calls")
    st, hd, b = post(body("gemini", **fields))
    assert st == 200, b
    assert hd["x-relayforge-provider"] == "gemini"
    gc = H.mock_calls("gemini")[0]["body"]["generationConfig"]
    assert gc["maxOutputTokens"] == 77 and gc["temperature"] == 0.3, gc
    assert gc.get("responseMimeType") == "application/json", gc
    assert "responseSchema" in gc, gc
    assert gc.get("stopSequences") == ["END"], gc
    assert gc.get("seed") == 42 and gc.get("topP") == 0.9, gc
    assert gc.get("presencePenalty") == 0.5, gc
    assert gc.get("frequencyPenalty") == -0.5, gc


def test_message_roles_and_parts():
    H.use(TWO)
    msgs = [
        {"role": "developer", "content": "Answer briefly."},
        {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "What is"},
            {"type": "image_url", "image_url": {
                "url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
            {"type": "text", "text": "this?"}], "name": "ann"},
        {"role": "assistant", "content": "A picture.", "refusal": None},
        {"role": "user", "content": "And now?"},
    ]
    rid = "parts-" + uuid.uuid4().hex
    st, hd, b = post({"model": "groq", "messages": msgs},
                     {"X-Request-Id": rid})
    assert st == 200, b
    sent = H.mock_calls("groq")[0]["body"]["messages"]
    assert len(sent) == 5, sent
    assert json.dumps(sent).find("And now?") > 0
    rows = H.request_row(rid)
    assert rows[0]["prompt_chars"] == 15 + 8 + 7 + 5 + 10 + 8, rows[0]


# ------------------------------------------------------------ errors

def test_errors_400_401_404_405_413_415():
    H.use(dict(TWO, RELAYFORGE_API_TOKEN="tok-1",
               RELAYFORGE_MAX_BODY_BYTES="4096"))
    auth = {"Authorization": "Bearer tok-1"}
    st, hd, b = H.post(CHAT, "{", dict(auth, **{
        "Content-Type": "application/json"}))
    is_error(st, hd, b, 400, "invalid_json", "invalid_request_error",
             no_retry=True)
    st, hd, b = post(body(n=2), auth)
    is_error(st, hd, b, 400, "validation_error", "invalid_request_error",
             "n", no_retry=True)
    st, hd, b = post(body(temperature=9), auth)
    is_error(st, hd, b, 400, "validation_error", "invalid_request_error",
             "temperature", no_retry=True)
    # 401 without a token or with a wrong one; Bearer or x-api-key pass
    for h in ({}, {"Authorization": "Bearer nope"}, {"x-api-key": "nope"}):
        st, hd, b = post(body(), h)
        is_error(st, hd, b, 401, "unauthorized", "authentication_error",
                 no_retry=True)
        assert hd["www-authenticate"].startswith("Bearer")
    for h in (auth, {"x-api-key": "tok-1"}):
        st, hd, b = post(body(), h)
        assert st == 200, b
    st, hd, b = H.get("/v1/models", {"x-api-key": "tok-1"})
    assert st == 200
    st, hd, b = H.get("/v1/completions", auth)
    is_error(st, hd, b, 404, "not_found", "invalid_request_error",
             no_retry=True)
    st, hd, b = H.get(CHAT, auth)
    is_error(st, hd, b, 405, "method_not_allowed", "invalid_request_error",
             no_retry=True)
    assert hd["allow"] == "POST, OPTIONS"
    st, hd, b = post(body(text="x" * 5000), auth)
    is_error(st, hd, b, 413, "payload_too_large", "invalid_request_error",
             no_retry=True)
    st, hd, b = H.post(CHAT, json.dumps(body()), dict(auth, **{
        "Content-Type": "text/plain"}))
    is_error(st, hd, b, 415, "unsupported_media_type",
             "invalid_request_error", no_retry=True)


def test_errors_422_and_502s():
    H.use(NOMOCK)
    H.mock_script("groq", [{"kind": "safety"}])
    st, hd, b = post(body())
    is_error(st, hd, b, 422, "content_filtered", "invalid_request_error",
             no_retry=True)
    H.mock_script("groq", [{"kind": "status", "status": 503}])
    st, hd, b = post(body())
    e = is_error(st, hd, b, 502, "provider_unavailable", "api_error",
                 no_retry=False)
    assert "Groq" in e["message"], e
    # an upstream that refused the request: asking again cannot cure it
    H.mock_script("groq", [{"kind": "status", "status": 400}])
    st, hd, b = post(body())
    is_error(st, hd, b, 502, "provider_bad_request", "api_error",
             no_retry=True)
    H.mock_script("groq", [{"kind": "malformed"}])
    st, hd, b = post(body())
    is_error(st, hd, b, 502, "malformed_response", "api_error",
             no_retry=False)


def test_error_504_timeout():
    H.use(dict(NOMOCK, RELAYFORGE_TIMEOUT_MS="400"))
    H.mock_script("groq", [{"kind": "hang", "seconds": 3}])
    st, hd, b = post(body())
    is_error(st, hd, b, 504, "provider_timeout", "api_error", no_retry=False)


def test_errors_429_gateway_and_provider():
    H.use(dict(NOMOCK, RELAYFORGE_RATE_LIMIT="2"))
    for _ in range(2):
        st, hd, b = post(body())
        assert st == 200, b
    st, hd, b = post(body())
    is_error(st, hd, b, 429, "rate_limited", "rate_limit_error",
             no_retry=False)
    assert int(hd["retry-after"]) >= 1, hd
    H.use(NOMOCK)
    H.mock_script("groq", [{"kind": "status", "status": 429,
                            "headers": {"Retry-After": "7"}}])
    st, hd, b = post(body())
    is_error(st, hd, b, 429, "provider_rate_limited", "rate_limit_error",
             no_retry=False)
    assert hd["retry-after"] in ("6", "7"), hd
    harness.settle()  # the other process sees the cooldown within its snapshot window
    # now cooling down: no upstream call, the soonest end in whole seconds
    st, hd, b = post(body())
    is_error(st, hd, b, 429, "provider_rate_limited", "rate_limit_error")
    assert 1 <= int(hd["retry-after"]) <= 7, hd
    assert hd["x-relayforge-attempts"].startswith("groq:cooling_down,"), hd
    assert len(H.mock_calls("groq")) == 1


# ------------------------------------------------------------ streams

def test_stream_with_and_without_usage():
    H.use(TWO)
    toks = ["One", " two", " three"]
    H.mock_script("groq", [{"kind": "ok", "tokens": toks, "usage": [4, 3]}])
    rid = "s-" + uuid.uuid4().hex
    res = H.stream(CHAT, body(stream=True, stream_options={
        "include_usage": True}), {"X-Request-Id": rid})
    text, cs = completed_stream(res, usage=True)
    assert text == "One two three"
    assert cs[0]["id"] == "chatcmpl-" + rid and cs[0]["model"] == GROQ_MODEL
    assert cs[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 3,
                               "total_tokens": 7}
    assert res.headers["x-relayforge-provider"] == "groq"
    assert res.headers["x-relayforge-attempts"] == "groq:ok"
    assert res.headers["cache-control"] == "no-cache"
    fin = [c for c in cs if c["choices"] and c["choices"][0]["finish_reason"]]
    assert fin[0]["relayforge"]["finalProvider"] == "groq"
    # every chunk is a data: line; no named events
    assert {e for (_, e, _) in res} == {"message"}
    rows = H.request_row(rid)
    assert rows[0]["endpoint"] == "openai_stream" and \
        rows[0]["status"] == "success", rows
    H.mock_script("groq", [{"kind": "ok", "tokens": toks}])
    res = H.stream(CHAT, body(stream=True))
    text, cs = completed_stream(res, usage=False)
    assert text == "One two three"


def test_stream_tokens_arrive_one_by_one():
    # About time, so a generous bound: 5 tokens 150 ms apart must not
    # arrive in one lump.
    H.use(TWO)
    H.mock_script("groq", [{"kind": "ok", "tokens": ["a", " b", " c", " d",
                                                     " e"], "delay_ms": 150}])
    res = H.stream(CHAT, body(stream=True))
    completed_stream(res, usage=False)
    times = [t for (t, _, d) in res if d.get("choices") and
             d["choices"][0]["delta"].get("content")]
    assert len(times) == 5 and times[-1] - times[0] >= 0.3, times


def test_stream_fallback_before_first_token_is_invisible():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "ok", "role_preamble": True,
                            "error_after": 0}])
    H.mock_script("sambanova", [{"kind": "ok", "tokens": ["From", " samba"]}])
    res = H.stream(CHAT, body(stream=True))
    text, cs = completed_stream(res, usage=False)
    assert text == "From samba"
    assert all(c["model"] == SAMBA_MODEL for c in cs), cs[0]
    assert res.headers["x-relayforge-fallback"] == "true"
    assert res.headers["x-relayforge-attempts"] == \
        "groq:provider_unavailable,sambanova:ok", res.headers
    raw = json.dumps(cs)
    assert "groq" not in raw.split('"relayforge"')[0], raw[:400]
    # a refused first tier (HTTP 500) likewise
    H.mock_script("groq", [{"kind": "status", "status": 500}])
    res = H.stream(CHAT, body(stream=True))
    text, cs = completed_stream(res, usage=False)
    assert res.headers["x-relayforge-provider"] == "sambanova"


def test_stream_break_after_first_token():
    H.use(TWO)
    H.mock_script("groq", [{"kind": "ok", "tokens": ["a", " b", " c"],
                            "break_after": 2}])
    rid = "br-" + uuid.uuid4().hex
    res = H.stream(CHAT, body(stream=True), {"X-Request-Id": rid})
    assert res.status == 200
    cs, done = chunks(res)
    assert not done, "a broken stream must not end with [DONE]"
    assert cs[-1] == {"error": cs[-1]["error"]}, cs[-1]
    e = cs[-1]["error"]
    assert e["code"] == "stream_interrupted" and e["type"] == "api_error", e
    assert [c for c in cs if "error" in c] == [cs[-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in cs[:-1])
    assert text == "a b", text
    assert H.mock_calls("sambanova") == []  # no silent fallback after text
    rows = H.request_row(rid)
    assert rows[0]["error_code"] == "stream_interrupted", rows


def test_stream_that_fails_completely_gets_its_real_status():
    H.use(NOMOCK)
    H.mock_script("groq", [{"kind": "status", "status": 429,
                            "headers": {"Retry-After": "3"}}])
    rid = "fail-" + uuid.uuid4().hex
    res = H.stream(CHAT, body(stream=True), {"X-Request-Id": rid})
    assert res.status == 429, res.status
    assert res.headers["content-type"].startswith("application/json")
    is_error(res.status, res.headers, res.body, 429, "provider_rate_limited",
             "rate_limit_error")
    assert res.headers["retry-after"] in ("2", "3"), res.headers
    assert res.headers["x-relayforge-attempts"].startswith(
        "groq:provider_rate_limited,sambanova:unconfigured"), res.headers
    rows = H.request_row(rid)
    assert rows[0]["endpoint"] == "openai_stream" and \
        rows[0]["error_code"] == "provider_rate_limited", rows
    # a validation error of a stream request is a 400 like any other
    res = H.stream(CHAT, body(stream=True, n=3))
    is_error(res.status, res.headers, res.body, 400, "validation_error",
             "invalid_request_error", "n", no_retry=True)


def read_until_chunks(path, b, n, headers=None):
    """Send a stream request on a raw socket, read until n content chunks
    arrived, then close.  Returns the monotonic time of the close."""
    raw = json.dumps(b).encode()
    hdrs = {"Host": "127.0.0.1", "Content-Type": "application/json",
            "Content-Length": str(len(raw)), "Connection": "close"}
    hdrs.update(headers or {})
    head = "POST %s HTTP/1.1\r\n" % path + "".join(
        "%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
    sock = socket.create_connection(("127.0.0.1", H.port), timeout=10)
    got = b""
    try:
        sock.sendall(head.encode() + raw)
        while got.count(b'"content":"w') < n:
            d = sock.recv(65536)
            assert d, "stream ended early"
            got += d
    finally:
        sock.close()
    return time.monotonic()


def test_stream_client_hangup_cancels_upstream_and_is_logged():
    H.use(TWO)
    words = ["w%d " % i for i in range(30)]
    H.mock_script("groq", [{"kind": "ok", "tokens": words, "delay_ms": 200}])
    rid = "gone-" + uuid.uuid4().hex
    closed = read_until_chunks(CHAT, body(stream=True), 2,
                               {"X-Request-Id": rid})

    def upstream_closed():
        calls = H.mock_calls("groq")
        return calls and calls[0]["closed_at"]
    at = harness.wait_until(upstream_closed, 6)
    assert at, "the upstream transfer was not cancelled"
    assert at - closed <= 2.0, "upstream closed %.2f s late" % (at - closed)
    rows = H.request_row(rid)
    assert rows[0]["error_code"] == "client_closed", rows
    assert rows[0]["endpoint"] == "openai_stream"


# ------------------------------------------------------------ logs, CORS

def test_logs_usage_and_endpoint_filter():
    H.use(TWO)
    rid = "log-" + uuid.uuid4().hex
    st, _, _ = post(body(), {"X-Request-Id": rid + "-c"})
    assert st == 200
    res = H.stream(CHAT, body(stream=True), {"X-Request-Id": rid + "-s"})
    completed_stream(res, usage=False)
    H.chat("and one of /api/v1")
    assert H.request_row(rid + "-c") and H.request_row(rid + "-s")
    for ep, want in (("openai", rid + "-c"), ("openai_stream", rid + "-s")):
        st, _, b = H.get("/api/v1/logs?endpoint=" + ep)
        assert st == 200, b
        items = b["data"]["items"]
        assert items and all(i["endpoint"] == ep for i in items), items
        assert want in [i["requestId"] for i in items]
    st, _, b = H.get("/api/v1/logs?endpoint=openai&status=success&"
                     "provider=groq")
    assert st == 200 and b["data"]["items"], b
    st, _, b = H.get("/api/v1/logs?endpoint=v1")
    assert st == 400 and b["error"]["field"] == "endpoint", b
    st, _, b = H.get("/api/v1/usage?window=1h")
    assert b["data"]["totals"]["requests"] >= 3, b


def test_cors_preflight_for_browser_sdks():
    H.use(dict(TWO, RELAYFORGE_CORS_ORIGINS="https://app.example"))
    st, hd, _ = H.request("OPTIONS", CHAT, headers={
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers":
            "authorization,content-type,x-stainless-os"})
    assert st == 204
    allow = [h.strip().lower() for h in
             hd["access-control-allow-headers"].split(",")]
    for h in ("authorization", "content-type", "x-api-key",
              "x-stainless-os", "x-stainless-lang", "x-stainless-arch",
              "x-stainless-runtime", "x-stainless-runtime-version",
              "x-stainless-package-version", "x-stainless-retry-count",
              "x-stainless-timeout"):
        assert h in allow, (h, allow)
    assert hd["access-control-allow-origin"] == "https://app.example"
    st, hd, _ = post(body(), {"Origin": "https://app.example"})
    assert st == 200
    assert "X-RelayForge-Attempts" in hd["access-control-expose-headers"]


# ------------------------------------------------------------ tool calls

def test_tool_call_round_trip_on_the_mock():
    H.use({})
    tools = ALL_FIELDS["tools"]
    st, hd, b = post(body("mock", "Weather in Paris?", tools=tools))
    assert st == 200, b
    msg = b["choices"][0]["message"]
    assert msg.get("tool_calls"), b
    call = msg["tool_calls"][0]
    assert b["choices"][0]["finish_reason"] == "tool_calls"
    assert call["type"] == "function" and call["function"]["name"] == \
        "get_weather"
    json.loads(call["function"]["arguments"])
    msgs = [{"role": "user", "content": "Weather in Paris?"}, msg,
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
    st, hd, b = post({"model": "mock", "messages": msgs, "tools": tools})
    assert st == 200 and b["choices"][0]["message"]["content"], b


# ------------------------------------------------------------ last

def test_no_sanitizer_reports():
    """Under `make check` (ASan + UBSan) the responders reported nothing
    while serving every case above (leaks are written at exit)."""
    H.stop_lighttpd()
    reports = H.sanitizer_reports()
    assert not reports, reports[0]
