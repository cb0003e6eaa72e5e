"""The lighttpd process handling shared by the integration harness and the
bench: which responders a lighttpd spawned, and stopping it so that none
of them outlives it (only those pids, nothing else)."""

import os
import signal
import subprocess
import time


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def child_pids(parent):
    """The pids whose parent is `parent` (lighttpd's FastCGI responders)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            pids.append(int(d))
    return pids


def stop(proc, kids, timeout=10):
    """SIGTERM lighttpd (a Popen), wait, then make sure each of `kids` is
    gone within 5 s (SIGKILL otherwise)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    end = time.monotonic() + 5
    for pid in kids:
        while alive(pid) and time.monotonic() < end:
            time.sleep(0.05)
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
