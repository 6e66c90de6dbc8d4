"""What the pythreadctl tests share: a daemon started on a socket, and
waiting that is polling with a deadline, never a fixed sleep."""
import os
import signal
import socket
import subprocess
import time

DEADLINE = 20.0


def poll(pred, what, timeout=DEADLINE):
    """pred() until it is true; a failing check inside counts as not yet
    (the object may not exist yet) and is reported on timeout."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            v = pred()
            if v:
                return v
        except AssertionError as e:
            last = e
        time.sleep(0.01)
    raise AssertionError("timed out waiting for %s (last: %s)" % (what, last))


def listening(sock):
    """A connection to sock is accepted (its file is there at bind(), before
    listen(): a client could be refused in between)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(sock)
            return True
        except OSError:
            return False


def start_pythreadd(daemon, sock, *extra):
    """pythreadd on sock, once it accepts connections; its stderr is a pipe
    for the checks at the end. AssertionError if it exited at start."""
    p = subprocess.Popen([daemon, "--socket", sock] + list(extra), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    poll(lambda: p.poll() is not None or listening(sock), "the daemon's socket")
    if p.poll() is not None:
        raise AssertionError("pythreadd exited at start: %s" % p.stderr.read().decode())
    return p


def stop_pythreadd(p):
    """SIGTERM, SIGKILL if it does not end within the deadline; its log
    (stderr), read and closed, or "" when it was read already."""
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if p.stderr is None or p.stderr.closed:
        return ""
    log = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    return log


def kill_groups(procs):
    """Each background process's whole group, should a failed test leave
    more than pythreadctl running, reaped and its pipes closed."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            if f:
                f.close()
