"""The responder process itself, driven over FastCGI without a web server
(a tiny FastCGI client below), the way spawn-fcgi runs it: fd 0 is the
listening socket.  SIGTERM while a stream is in flight: the stream ends
normally with done {ok:true}, no new request is accepted, every thread is
joined and the process exits 0."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import harness

BEGIN, END, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7


def record(kind, content, rid=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, kind, rid, len(content), pad) + content + b"\0" * pad


def name_value(k, v):
    k, v = k.encode(), v.encode()
    def ln(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return ln(len(k)) + ln(len(v)) + k + v


class FcgiStream:
    """One FastCGI request; read() yields STDOUT bytes as they arrive."""

    def __init__(self, path, body):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        params = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/api/v1/stream",
                  "CONTENT_TYPE": "application/json",
                  "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
                  "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1"}
        pv = b"".join(name_value(k, v) for k, v in params.items())
        self.sock.sendall(record(BEGIN, struct.pack(">HB5x", 1, 0)) +
                          record(PARAMS, pv) + record(PARAMS, b"") +
                          record(STDIN, body) + record(STDIN, b""))
        self.buf = b""
        self.ended = False

    def read_record(self):
        while len(self.buf) < 8:
            d = self.sock.recv(65536)
            if not d:
                return None, b""
            self.buf += d
        _, kind, _, clen, pad = struct.unpack(">BBHHBx", self.buf[:8])
        need = 8 + clen + pad
        while len(self.buf) < need:
            d = self.sock.recv(65536)
            if not d:
                return None, b""
            self.buf += d
        content = self.buf[8:8 + clen]
        self.buf = self.buf[need:]
        return kind, content

    def read_all(self, on_chunk=None):
        out = b""
        while True:
            kind, content = self.read_record()
            if kind is None or kind == END:
                self.ended = kind == END
                return out
            if kind == STDOUT:
                out += content
                if on_chunk:
                    on_chunk(out)


def start_responder(tmp, extra_env):
    path = os.path.join(tmp, "rf.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(16)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "RELAYFORGE_DB": os.path.join(tmp, "rf.db"),
           "RELAYFORGE_THREADS": "4"}
    env.update(extra_env)
    proc = subprocess.Popen([harness.binary()], stdin=lsock.fileno(),
                            stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "stderr"), "wb"),
                            env=env)
    lsock.close()
    return proc, path


def check_stderr(tmp):
    with open(os.path.join(tmp, "stderr"), errors="replace") as f:
        err = f.read()
    assert "Sanitizer" not in err and "runtime error" not in err, err[:2000]


def test_sigterm_lets_the_inflight_stream_finish_and_exits_0():
    tmp = tempfile.mkdtemp(prefix="rf-proc-")
    proc, path = start_responder(tmp, {"RELAYFORGE_MOCK_DELAY_MS": "60"})
    try:
        body = json.dumps({"prompt": "graceful shutdown"}).encode()
        st = harness.wait_until(lambda: os.path.exists(path) and FcgiStream(path, body), 5)
        signalled = []

        def on_chunk(out):
            # SIGTERM once the first token has left the responder.
            if not signalled and b"event: token" in out:
                proc.send_signal(signal.SIGTERM)
                signalled.append(time.monotonic())

        out = st.read_all(on_chunk).decode()
        assert signalled, "no token arrived"
        assert st.ended, "the request did not end with FCGI_END_REQUEST"
        assert 'event: done\ndata: {"ok":true}' in out, out[-300:]
        assert out.count("event: token") > 10, "the stream was cut short"
        rc = proc.wait(timeout=10)
        assert rc == 0, "exit status %r after SIGTERM" % rc
        # Stopped accepting: nobody serves the socket any more.
        try:
            late = FcgiStream(path, body)
            late.sock.settimeout(2)
            got = late.read_all()
            assert got == b"", "a request was served after SIGTERM"
        except (ConnectionRefusedError, FileNotFoundError, socket.timeout,
                ConnectionResetError, BrokenPipeError):
            pass
        check_stderr(tmp)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def test_sigterm_when_idle_exits_0_at_once():
    tmp = tempfile.mkdtemp(prefix="rf-proc-")
    proc, path = start_responder(tmp, {})
    try:
        harness.wait_until(lambda: os.path.exists(path), 5)
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        assert rc == 0, rc
        assert time.monotonic() - t0 < 5, "shutdown took too long"
        check_stderr(tmp)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
