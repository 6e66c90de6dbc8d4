"""A pythreadd started for one test run, on a socket in a temporary
directory, stopped (and the directory removed) at the end.

The daemon binary comes from $PYTHREAD_DAEMON, else the source tree's
build/daemon/pythreadd, else pythreadd on $PATH.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.dirname(HERE)  # holds the pythread package
ROOT = os.path.dirname(os.path.dirname(PACKAGE_DIR))

if PACKAGE_DIR not in sys.path:
    sys.path.insert(0, PACKAGE_DIR)


# Why a case of CPython's Lib/test/lock_tests.py does not run on pythread
# objects (the lock_tests suites skip it, saying so).
SKIP_LOCK_AT_FORK = ("_at_fork_reinit is CPython's private hook that resets a lock in a fork "
                     "child; a pythread lock lives in the daemon and is shared with the parent, "
                     "and the child gets a fresh session of its own instead")
SKIP_EVENT_AT_FORK = ("reads Event._cond, threading's private Condition inside an Event, and "
                      "its _at_fork_reinit hook; a pythread Event's state lives in the daemon")
SKIP_COND_OVER_THREADING_LOCK = (
    "builds its Condition over a threading.Lock, which no other host can see: with "
    "cluster=True that is a TypeError (test_lock_tests runs it as a process-local one)")


def skip_tests(skipped):
    """Replace each (class, test, reason) by a skip saying reason; a test
    this Python's suite does not have is left alone."""
    import unittest
    for cls, test, reason in skipped:
        if hasattr(cls, test):
            setattr(cls, test, unittest.skip(reason)(lambda self: None))


def daemon_path():
    env = os.environ.get("PYTHREAD_DAEMON")
    if env:
        return env
    built = os.path.join(ROOT, os.environ.get("BUILD_DIR", "build"), "daemon", "pythreadd")
    if os.access(built, os.X_OK):
        return built
    found = shutil.which("pythreadd")
    if found:
        return found
    raise RuntimeError("pythreadd not found: build the project (sh scripts/build), install "
                       "it, or set $PYTHREAD_DAEMON to the binary")


class Daemon:
    """with Daemon() as d: ... d.socket is the path; $PYTHREAD_SOCKET is set
    to it for this process and the processes it starts."""

    def __init__(self, startup_timeout=10.0, args=()):
        self.startup_timeout = startup_timeout
        self.args = list(args)  # more of pythreadd's options
        self.dir = None
        self.proc = None
        self.socket = None
        self._old_env = None
        self._log = None
        self.final_log = ""

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="pythread-py-")
        self.socket = os.path.join(self.dir, "pythreadd.sock")
        self._log = open(os.path.join(self.dir, "pythreadd.log"), "w+b")
        self.proc = subprocess.Popen([daemon_path(), "--socket", self.socket] + self.args,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self._old_env = os.environ.get("PYTHREAD_SOCKET")
        os.environ["PYTHREAD_SOCKET"] = self.socket
        deadline = time.monotonic() + self.startup_timeout
        import pythread
        while True:
            try:
                pythread.connect(self.socket)
                return self
            except ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"pythreadd did not start: {self.log()}")
                time.sleep(0.01)

    def log(self):
        if not self._log:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._old_env is None:
            os.environ.pop("PYTHREAD_SOCKET", None)
        else:
            os.environ["PYTHREAD_SOCKET"] = self._old_env
        if self._log:
            # Kept for a caller that checks how the daemon ended
            # (proc.returncode): the directory goes.
            self.final_log = self.log()
            self._log.close()
            self._log = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def etcd_path():
    """The etcd binary ($PYTHREAD_ETCD, else etcd on $PATH, else Debian's
    /usr/bin/etcd), or None."""
    for candidate in (os.environ.get("PYTHREAD_ETCD"), shutil.which("etcd"), "/usr/bin/etcd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    """An etcd of `members` members (1, or 3 for a cluster whose members
    really replicate) on free 127.0.0.1 ports, their data in a temporary
    directory, for daemons' --etcd; stopped (and the directory removed) at
    the end. Once started, endpoints lists the members' client URLs and
    endpoint is the first one's."""

    def __init__(self, startup_timeout=20.0, members=1):
        self.startup_timeout = startup_timeout
        self.members = members
        self.dir = None
        self.procs = []
        self.endpoints = []
        self.endpoint = None
        self._logs = []

    def start(self):
        import urllib.request
        self.dir = tempfile.mkdtemp(prefix="pythread-etcd-")
        ports = [(_free_port(), _free_port()) for _ in range(self.members)]
        self.endpoints = [f"http://127.0.0.1:{client}" for client, _ in ports]
        self.endpoint = self.endpoints[0]
        initial = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
        # Several members elect a leader before any answers: heartbeats and
        # elections of a tenth of etcd's defaults (as tests/cluster's C
        # harness has them) make that a fraction of a second.
        timing = ["--heartbeat-interval", "50", "--election-timeout", "500"] \
            if self.members > 1 else []
        for i, (client, peer) in enumerate(ports):
            log = open(os.path.join(self.dir, f"etcd-m{i}.log"), "w+b")
            self._logs.append(log)
            self.procs.append(subprocess.Popen(
                [etcd_path(), "--name", f"m{i}", "--data-dir", os.path.join(self.dir, f"m{i}"),
                 "--listen-client-urls", self.endpoints[i],
                 "--advertise-client-urls", self.endpoints[i],
                 "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-cluster", initial] + timing,
                stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + self.startup_timeout
        for endpoint in self.endpoints:
            while True:
                try:
                    with urllib.request.urlopen(endpoint + "/health", timeout=1) as r:
                        if b'"true"' in r.read():
                            break
                except OSError:
                    pass
                if any(p.poll() is not None for p in self.procs) or time.monotonic() > deadline:
                    logs = []
                    for log in self._logs:
                        log.seek(0)
                        logs.append(log.read().decode("utf-8", "replace")[-2000:])
                    self.stop()
                    raise RuntimeError(f"etcd did not start: {' --- '.join(logs)}")
                time.sleep(0.05)
        return self

    def get(self, key):
        """The value of key (str) in etcd, as str, or None: one read through
        the JSON gateway of the first member."""
        import base64
        import json
        import urllib.request
        body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
        with urllib.request.urlopen(self.endpoint + "/v3/kv/range", body, timeout=5) as r:
            kvs = json.load(r).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.procs = []
        for log in self._logs:
            log.close()
        self._logs = []
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
