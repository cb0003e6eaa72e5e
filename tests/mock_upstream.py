#!/usr/bin/env python3
"""A scriptable loopback mock of every upstream provider RelayForge calls.

Run `python3 tests/mock_upstream.py --port 0`: the first stdout line is
`PORT <n>`; it then serves on 127.0.0.1.  The responder is pointed at it with
base URLs http://127.0.0.1:<n>/<name>, where <name> is any label (normally the
provider id), so one mock plays every provider at once.

Provider endpoints
  POST /<name>/chat/completions                  OpenAI-compatible; streams
                                                 when the body has "stream": true
  POST /<name>/models/<model>:generateContent     Gemini
  POST /<name>/models/<model>:streamGenerateContent?alt=sse

Control endpoints
  POST /_script/<name>   JSON list of behaviours, consumed one per call
  POST /_default/<name>  the behaviour used when the script is empty
                         (initially {"kind": "ok"})
  POST /_reset           forget scripts, defaults and call logs
  GET  /_calls/<name>    JSON list of {t, path, headers, body, closed_at}
                         (t and closed_at are time.monotonic() seconds, which
                         on Linux is the same clock in every process)

Behaviours (dicts, "kind" selects):
  ok        text, model, usage [p, c], headers {...}; streams also take
            tokens [...], delay_ms, first_delay_ms, role_preamble,
            break_after n, stall_after n + stall_seconds, error_after n,
            error_event_after n, malformed_at n, no_done
  status    status, headers, body (default body in the provider's shape)
  reset     read the request, then RST the connection without a response
  hang      sleep "seconds", then go on as "ok" (other keys apply)
  malformed 200 with the body "not json"
  empty     200 with empty text
  safety    OpenAI: finish_reason content_filter and null content;
            Gemini: promptFeedback.blockReason PROHIBITED_CONTENT
  policy400 400 {"error": {... "code": "content_policy_violation"}}
  error200  200 whose body is an error object (OpenAI {"error": {...}},
            Gemini {"error": {"code": 500, ...}})
  tools     a tool-call answer.  "calls": [{"name", "arguments" (a dict),
            "id"}] (default: one call of the first tool the request
            declares, arguments {}, OpenAI ids call_<i>, Gemini none);
            "text" goes beside them.  OpenAI: message.tool_calls,
            finish_reason tool_calls; streamed as deltas -- the first of a
            call with id, type, name and "" arguments, then the arguments
            in "pieces" fragments (default 3) -- or each call whole in one
            delta with "whole": true (Groq, Cerebras), then usage and
            [DONE].  Gemini: functionCall parts (an "id" only when the call
            has one), finishReason STOP; streamed as a text chunk (when
            "text") then one chunk with the calls.

A hostile upstream: any behaviour may add "echo": "key" | "header" | "all".
The mock then writes what it was sent into every string field of its
answer: the key alone ("key"), the whole Authorization or x-goog-api-key
value ("header"), or both headers and the key ("all").  It goes into the
model / modelVersion and finish_reason / finishReason of answers and of
every stream chunk, the error code, message, type and param (OpenAI) or
status, message and details[].reason (Gemini) of errors, in-body errors,
in-stream errors and error events, a Gemini blockReason, response ids, and
a few response headers.  A content-policy 400 keeps a policy word in front
of its code ("content_policy_<echo>") so it is still read as one.  The
answer text is the product and is left alone.

Bytes that are not UTF-8: an "ok" behaviour with "raw_hex": "<hex>" sends
those bytes raw (not JSON-escaped) wherever "@@RAW@@" appears in its text or
tokens.

Non-stream answers carry Content-Length and keep the connection alive (the
gateway reuses connections); streams carry no length and end by closing.
Each SSE event leaves in one write, at once.  Python standard library only.
"""

import argparse
import io
import json
import select
import socket
import struct
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class State:
    """Scripts, defaults and call logs, shared by all handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.scripts = {}
        self.defaults = {}
        self.calls = {}

    def reset(self):
        with self.lock:
            self.scripts.clear()
            self.defaults.clear()
            self.calls.clear()

    def next_behaviour(self, name):
        with self.lock:
            q = self.scripts.get(name)
            if q:
                return dict(q.popleft())
            return dict(self.defaults.get(name, {"kind": "ok"}))

    def record(self, name, call):
        with self.lock:
            self.calls.setdefault(name, []).append(call)

    def mark_closed(self, call):
        with self.lock:
            if call.get("closed_at") is None:
                call["closed_at"] = time.monotonic()

    def calls_of(self, name):
        with self.lock:
            return json.loads(json.dumps(self.calls.get(name, [])))


STATE = State()


class ClientGone(Exception):
    """The gateway closed the connection while we were streaming."""


# ---------------------------------------------------------------- formats

def openai_completion(text, model, usage, finish="stop", content_null=False):
    return {
        "id": "chatcmpl-mock", "object": "chat.completion",
        "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": finish,
                     "message": {"role": "assistant",
                                 "content": None if content_null else text}}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                  "total_tokens": usage[0] + usage[1]},
    }


def openai_chunk(model, delta=None, finish=None, usage=None):
    obj = {"id": "chatcmpl-mock", "object": "chat.completion.chunk",
           "created": int(time.time()), "model": model}
    if usage is not None:
        obj["choices"] = []
        obj["usage"] = {"prompt_tokens": usage[0],
                        "completion_tokens": usage[1],
                        "total_tokens": usage[0] + usage[1]}
    else:
        obj["choices"] = [{"index": 0, "delta": delta or {},
                           "finish_reason": finish}]
    return obj


def gemini_response(text, model, usage, finish="STOP"):
    obj = {"candidates": [{"content": {"role": "model",
                                       "parts": [{"text": text}]},
                           "index": 0}],
           "modelVersion": model, "responseId": "mock-response"}
    if finish:
        obj["candidates"][0]["finishReason"] = finish
    if usage is not None:
        obj["usageMetadata"] = {"promptTokenCount": usage[0],
                                "candidatesTokenCount": usage[1],
                                "totalTokenCount": usage[0] + usage[1]}
    return obj


def tool_calls_of(beh, body, gemini):
    """The calls a "tools" behaviour answers: its own, or one call of
    the first tool the request declares."""
    calls = beh.get("calls")
    if calls is None:
        name = "tool"
        try:
            if gemini:
                name = body["tools"][0]["functionDeclarations"][0]["name"]
            else:
                name = body["tools"][0]["function"]["name"]
        except (KeyError, IndexError, TypeError):
            pass
        calls = [{"name": name, "arguments": {}}]
    out = []
    for i, c in enumerate(calls):
        c = dict(c)
        c.setdefault("arguments", {})
        if not gemini:
            c.setdefault("id", "call_%d" % i)
        out.append(c)
    return out


def openai_tool_completion(calls, text, model, usage):
    obj = openai_completion(text, model, usage, "tool_calls",
                            content_null=text is None)
    obj["choices"][0]["message"]["tool_calls"] = [
        {"id": c["id"], "type": "function",
         "function": {"name": c["name"],
                      "arguments": json.dumps(c["arguments"])}}
        for c in calls]
    return obj


def gemini_call_part(c):
    fc = {"name": c["name"], "args": c["arguments"]}
    if c.get("id"):
        fc["id"] = c["id"]
    return {"functionCall": fc}


def gemini_tool_response(calls, text, model, usage):
    obj = gemini_response(text or "", model, usage)
    parts = [{"text": text}] if text else []
    obj["candidates"][0]["content"]["parts"] = parts + [
        gemini_call_part(c) for c in calls]
    return obj


def openai_tool_deltas(calls, whole, pieces):
    """The tool_calls deltas of a stream, one list per chunk."""
    out = []
    for i, c in enumerate(calls):
        args = json.dumps(c["arguments"])
        head = {"index": i, "id": c["id"], "type": "function",
                "function": {"name": c["name"],
                             "arguments": args if whole else ""}}
        out.append([head])
        if whole:
            continue
        step = max(1, -(-len(args) // max(1, pieces)))
        for at in range(0, len(args), step):
            out.append([{"index": i,
                         "function": {"arguments": args[at:at + step]}}])
    return out


GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
                 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

OPENAI_CODES = {400: ("invalid_request_error", "invalid_value"),
                401: ("invalid_request_error", "invalid_api_key"),
                403: ("permission_error", "permission_denied"),
                404: ("invalid_request_error", "model_not_found"),
                429: ("requests", "rate_limit_exceeded")}


def default_error_body(gemini, status):
    if gemini:
        return {"error": {"code": status, "message": "mock error %d" % status,
                          "status": GEMINI_STATUS.get(status, "UNKNOWN")}}
    etype, code = OPENAI_CODES.get(status, ("server_error", "server_error"))
    return {"error": {"message": "mock error %d" % status, "type": etype,
                      "code": code}}


POLICY_400 = {"error": {"message": "flagged", "type": "invalid_request_error",
                        "code": "content_policy_violation"}}


def encode(obj, beh):
    """JSON bytes of obj, with "raw_hex" bytes put in place of @@RAW@@."""
    raw = json.dumps(obj).encode()
    if beh.get("raw_hex"):
        raw = raw.replace(b"@@RAW@@", bytes.fromhex(beh["raw_hex"]))
    return raw


def echo_of(beh, call):
    """The string a hostile upstream reflects (None without "echo")."""
    mode = beh.get("echo")
    if not mode:
        return None
    h = call["headers"]
    auth = h.get("authorization", "")
    goog = h.get("x-goog-api-key", "")
    key = auth[7:] if auth.startswith("Bearer ") else goog
    if mode == "key":
        return key
    if mode == "header":
        return auth or goog
    return "authorization=%s x-goog-api-key=%s key=%s" % (auth, goog, key)


def echo_error(gemini, status, echo):
    """An error object with echo in every string field."""
    if gemini:
        return {"error": {"code": status, "message": echo, "status": echo,
                          "details": [{"@type": "type.googleapis.com/"
                                       "google.rpc.ErrorInfo",
                                       "reason": echo, "domain": echo,
                                       "metadata": {"key": echo}}]}}
    return {"error": {"message": echo, "type": echo, "code": echo,
                      "param": echo}}


def echo_policy(gemini, echo):
    """A content-policy 400 that still reads as one, echo everywhere."""
    if gemini:
        return {"error": {"code": 400, "status": echo,
                          "message": "content policy violation " + echo,
                          "details": [{"reason": echo}]}}
    return {"error": {"message": echo, "type": echo, "param": echo,
                      "code": "content_policy_" + echo}}


def echo_answer(obj, gemini, echo, finish=True):
    """Put echo into the identifiers of an answer or chunk (in place)."""
    if echo is None:
        return obj
    if gemini:
        obj["modelVersion"] = echo
        obj["responseId"] = echo
        for c in obj.get("candidates") or []:
            if finish and c.get("finishReason"):
                c["finishReason"] = echo
        if "promptFeedback" in obj:
            obj["promptFeedback"]["blockReason"] = echo
        return obj
    obj["model"] = echo
    obj["id"] = echo
    for c in obj.get("choices") or []:
        if finish and c.get("finish_reason") not in (None, "content_filter"):
            c["finish_reason"] = echo
    return obj


def echo_headers(beh, echo):
    hdrs = dict(beh.get("headers") or {})
    if echo is not None:
        hdrs.update({"X-Request-Id": echo, "Retry-After": echo,
                     "x-ratelimit-reset-requests": echo})
    return hdrs


# ---------------------------------------------------------------- handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "RelayForgeMock/1"

    def log_message(self, fmt, *args):  # quiet: tests read /_calls instead
        pass

    # -- plumbing

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, status, obj, headers=None):
        raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()

    def rst(self):
        """Close with SO_LINGER 0: the peer gets a real RST."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        except OSError:
            pass
        # The makefile() objects hold references; the fd closes (and the
        # RST leaves) only when all of them are closed.
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        try:
            sock.close()
        except OSError:
            pass
        # handle_one_request() flushes wfile after us: give it a dummy.
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()

    def peer_closed(self):
        """True when the gateway has closed its side (readable = EOF/RST,
        since a client waiting for our stream sends nothing more)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def wait(self, seconds, call):
        """Sleep, but notice at once when the gateway goes away."""
        end = time.monotonic() + max(0.0, seconds)
        while True:
            left = end - time.monotonic()
            if self.peer_closed():
                STATE.mark_closed(call)
                raise ClientGone()
            if left <= 0:
                return
            try:
                select.select([self.connection], [], [], min(left, 0.05))
            except (OSError, ValueError):
                STATE.mark_closed(call)
                raise ClientGone()

    def send_event(self, raw, call):
        """One SSE event in one write, flushed."""
        try:
            self.wfile.write(raw)
            self.wfile.flush()
        except (OSError, ValueError):
            STATE.mark_closed(call)
            raise ClientGone()

    # -- routing

    def do_GET(self):
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "_calls":
            self.send_json(200, STATE.calls_of(parts[1]))
        else:
            self.send_json(404, {"error": "not found"})

    def do_POST(self):
        raw = self.read_body()
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if parts[0] == "_reset":
            STATE.reset()
            return self.send_json(200, {"ok": True})
        if parts[0] in ("_script", "_default") and len(parts) == 2:
            return self.control(parts[0], parts[1], raw)
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = raw.decode("utf-8", "replace")
        name = parts[0]
        tail = "/".join(parts[1:])
        if tail == "chat/completions":
            gemini = False
            stream = isinstance(body, dict) and body.get("stream") is True
        elif tail.startswith("models/") and tail.endswith(":generateContent"):
            gemini, stream = True, False
        elif tail.startswith("models/") and \
                tail.endswith(":streamGenerateContent"):
            gemini, stream = True, True
        else:
            return self.send_json(404, {"error": {"message": "no such path"}})
        call = {"t": time.monotonic(), "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body, "closed_at": None}
        STATE.record(name, call)
        beh = STATE.next_behaviour(name)
        try:
            self.behave(name, beh, gemini, stream, body, call)
        except ClientGone:
            self.close_connection = True

    def control(self, what, name, raw):
        try:
            val = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return self.send_json(400, {"error": "bad json"})
        with STATE.lock:
            if what == "_script":
                if not isinstance(val, list):
                    val = [val]
                STATE.scripts.setdefault(name, deque()).extend(val)
            else:
                STATE.defaults[name] = val
        return self.send_json(200, {"ok": True})

    # -- behaviours

    def behave(self, name, beh, gemini, stream, body, call):
        kind = beh.get("kind", "ok")
        model = beh.get("model") or (body.get("model") if isinstance(body, dict)
                                     else None) or "m1"
        echo = echo_of(beh, call)
        if echo is not None:
            beh["headers"] = echo_headers(beh, echo)
        if kind == "hang":
            self.wait(float(beh.get("seconds", 5)), call)
            kind = "ok"
        if kind == "reset":
            return self.rst()
        if kind == "status":
            status = int(beh.get("status", 500))
            err = beh.get("body", default_error_body(gemini, status)
                          if echo is None else echo_error(gemini, status, echo))
            return self.send_json(status, err, beh.get("headers"))
        if kind == "policy400":
            err = beh.get("body", POLICY_400 if echo is None
                          else echo_policy(gemini, echo))
            return self.send_json(400, err, beh.get("headers"))
        if kind == "error200":
            err = (echo_error(gemini, 500, echo or "mock in-body error")
                   if echo is not None else default_error_body(gemini, 500))
            return self.send_json(200, beh.get("body", err), beh.get("headers"))
        if kind == "malformed":
            return self.send_json(200, b"not json", beh.get("headers"))
        text = beh.get("text", "Hello from %s" % name)
        if kind == "empty":
            text, beh["tokens"] = "", []
        tokens = beh.get("tokens")
        if tokens is None:
            words = text.split(" ")
            tokens = [w if i == 0 else " " + w for i, w in enumerate(words)]
        else:
            text = "".join(tokens)
        usage = beh.get("usage") or [9, max(1, len(tokens))]
        if kind == "tools":
            return self.tools(beh, gemini, stream, body, model, usage, call)
        if stream:
            return self.stream(beh, kind, gemini, model, tokens, usage, call,
                               echo)
        if kind == "safety":
            obj = ({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                    "usageMetadata": {"promptTokenCount": usage[0],
                                      "totalTokenCount": usage[0]},
                    "modelVersion": model} if gemini else
                   openai_completion(None, model, usage, "content_filter",
                                     content_null=True))
        elif gemini:
            obj = gemini_response(text, model, usage)
        else:
            obj = openai_completion(text, model, usage)
        echo_answer(obj, gemini, echo)
        return self.send_json(200, encode(obj, beh), beh.get("headers"))

    def stream(self, beh, kind, gemini, model, tokens, usage, call,
               echo=None):
        """Write the stream event by event; see the module comment."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for k, v in (beh.get("headers") or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.flush()
        sep = b"\r\n\r\n" if gemini else b"\n\n"

        def data(obj):
            echo_answer(obj, gemini, echo)
            return b"data: " + encode(obj, beh) + sep

        if kind == "safety":
            obj = ({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                    "modelVersion": model} if gemini else
                   openai_chunk(model, {}, "content_filter"))
            self.send_event(data(obj), call)
            if not gemini:
                self.send_event(b"data: [DONE]\n\n", call)
            return
        if beh.get("role_preamble") and not gemini:
            self.send_event(data(openai_chunk(
                model, {"role": "assistant", "content": ""})), call)
        delay = float(beh.get("delay_ms", 0)) / 1000.0
        first = float(beh.get("first_delay_ms", 0)) / 1000.0
        n = len(tokens)
        for i, tok in enumerate(tokens + [None]):
            if self.stream_interrupt(beh, i, gemini, sep, call, echo):
                return
            if tok is None:
                break
            self.wait(first if i == 0 else delay, call)
            if beh.get("malformed_at") == i:
                self.send_event(b"data: {not json" + sep, call)
            if gemini:
                running = [usage[0], (usage[1] * (i + 1)) // max(n, 1)]
                obj = gemini_response(tok, model, running,
                                      "STOP" if i == n - 1 else None)
            else:
                obj = openai_chunk(model, {"content": tok})
            self.send_event(data(obj), call)
        if gemini:
            if n == 0:  # "empty": one final chunk without text
                self.send_event(data(gemini_response("", model, usage)), call)
            return
        self.send_event(data(openai_chunk(model, {}, "stop")), call)
        self.send_event(data(openai_chunk(model, usage=usage)), call)
        if not beh.get("no_done"):
            self.send_event(b"data: [DONE]\n\n", call)

    def start_stream(self, beh):
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for k, v in (beh.get("headers") or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.flush()

    def tools(self, beh, gemini, stream, body, model, usage, call):
        """The "tools" behaviour: see the module comment."""
        calls = tool_calls_of(beh, body, gemini)
        text = beh.get("text")
        if not stream:
            obj = (gemini_tool_response(calls, text, model, usage) if gemini
                   else openai_tool_completion(calls, text, model, usage))
            return self.send_json(200, encode(obj, beh), beh.get("headers"))
        self.start_stream(beh)
        if gemini:
            sep = b"\r\n\r\n"
            if text:
                self.send_event(b"data: " + encode(gemini_response(
                    text, model, [usage[0], 1], None), beh) + sep, call)
            obj = gemini_response("", model, usage)
            obj["candidates"][0]["content"]["parts"] = [
                gemini_call_part(c) for c in calls]
            self.send_event(b"data: " + encode(obj, beh) + sep, call)
            return None
        first = {"role": "assistant", "content": text}
        for n, tcs in enumerate(openai_tool_deltas(
                calls, beh.get("whole"), int(beh.get("pieces", 3)))):
            delta = dict(first) if n == 0 else {}
            delta["tool_calls"] = tcs
            self.send_event(b"data: " + encode(openai_chunk(model, delta),
                                               beh) + b"\n\n", call)
        for obj in (openai_chunk(model, {}, "tool_calls"),
                    openai_chunk(model, usage=usage)):
            self.send_event(b"data: " + encode(obj, beh) + b"\n\n", call)
        self.send_event(b"data: [DONE]\n\n", call)
        return None

    def stream_interrupt(self, beh, i, gemini, sep, call, echo=None):
        """Apply the break/stall/error options due after i tokens.
        Returns True when the stream is over."""
        if beh.get("break_after") == i:
            time.sleep(0.05)  # let the tokens already sent be read first
            self.rst()
            return True
        if beh.get("stall_after") == i:
            self.wait(float(beh.get("stall_seconds", 5)), call)
            return True
        if beh.get("error_after") == i:
            err = beh.get("error", {"error": {"message": "mock stream error",
                                              "type": "server_error"}})
            if gemini:
                err = {"error": {"code": 500, "message": "mock stream error",
                                 "status": "INTERNAL"}}
            if echo is not None:
                err = echo_error(gemini, 500, echo)
            self.send_event(b"data: " + json.dumps(err).encode() + sep, call)
            return True
        if beh.get("error_event_after") == i:
            err = {"error": {"message": "mock error event",
                             "type": "server_error"}}
            if echo is not None:
                err = echo_error(gemini, 500, echo)
            self.send_event(b"event: error\ndata: " +
                            json.dumps(err).encode() + sep, call)
            return True
        return False


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # 64+ concurrent streams must not hit SYN drops


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    sys.stdout.write("PORT %d\n" % srv.server_address[1])
    sys.stdout.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
