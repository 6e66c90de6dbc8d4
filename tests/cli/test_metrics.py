#!/usr/bin/env python3
"""pythreadd --metrics and pythreadctl metrics, end to end.

Usage: test_metrics.py PYTHREADCTL PYTHREADD

Each test starts its own pythreadd on a socket in a fresh temporary
directory, makes it work (contended Lock hand-offs, a timeout, a limit
refusal), reads /metrics over HTTP (TCP on the loopback, or HTTP over a
socket file) and through pythreadctl metrics, and reads the text with a
real Prometheus parser: prometheus_client's (Debian: python3-prometheus-
client), and promtool's check too when it is on PATH. Without the parser
the test says why and exits 77, which ctest counts as skipped. Waiting is
polling with a deadline, never a fixed sleep.
"""
import http.client
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

from cliutil import DEADLINE, poll, start_pythreadd, stop_pythreadd

SKIPPED = 77
CTL = DAEMON = None


def import_parser():
    """prometheus_client's text parser. Debian's package installs it for
    Debian's python3; a python3 of another make (pyenv, a venv) that does
    not see it looks in Debian's directory too (the parser is pure Python)."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
        return text_string_to_metric_families
    except ImportError:
        pass
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
        return text_string_to_metric_families
    except ImportError as e:
        print("test_metrics: skipped: no Prometheus text parser (%s); install Debian's "
              "python3-prometheus-client (scripts/test does)" % e)
        sys.exit(SKIPPED)


parse_text = None


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a socket file."""

    def __init__(self, path):
        super().__init__("localhost", timeout=DEADLINE)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(DEADLINE)
        self.sock.connect(self.path)


def families(text):
    """{name: (type, [samples])}, as the parser reads them. It names a
    counter's family without _total; every name here says it whole."""
    out = {}
    for f in parse_text(text):
        name = f.name + "_total" if f.type == "counter" else f.name
        out[name] = (f.type, list(f.samples))
    return out


def value(fams, family, sample=None, **labels):
    """The one sample of family (or its sample named sample) with labels."""
    found = [s.value for s in fams[family][1]
             if s.name == (sample or family) and all(s.labels.get(k) == v
                                                     for k, v in labels.items())]
    if len(found) != 1:
        raise AssertionError("%s %s %s: %d samples" % (family, sample, labels, len(found)))
    return found[0]


def _of(kind, *names):
    return [("pythread_" + n, kind) for n in names]


# Every family the daemon writes, with its type.
FAMILIES = (
    _of("gauge", "build_info", "start_time_seconds", "sessions", "objects", "waiters", "handles",
        "unread_output_bytes", "restart_recovered", "restart_restored_objects",
        "restart_replayed_inputs", "restart_sessions", "journal_bytes",
        "metrics_exposed_objects", "metrics_left_out_objects", "object_waiters",
        "object_longest_wait_seconds", "object_longest_hold_seconds") +
    _of("counter", "requests_total", "operations_total", "acquisitions_total",
        "contended_acquisitions_total", "word_handoffs_total", "timeouts_total",
        "deadlocks_found_total", "limit_refusals_total", "object_acquisitions_total",
        "object_contended_acquisitions_total", "object_timeouts_total") +
    _of("histogram", "handoff_wait_seconds", "hold_seconds"))


class Metrics(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ptmet-")
        self.sock = os.path.join(self.dir, "d.sock")
        self.env = dict(os.environ, PYTHREAD_SOCKET=self.sock)
        self.daemon = None
        self.bg = []
        self.logs = []

    def tearDown(self):
        for p in self.bg:
            if p.poll() is None:
                p.kill()
            p.wait()
        if self.daemon is not None:
            self.stop_daemon()
        for log in self.logs:
            self.assertNotIn("Sanitizer", log)
            self.assertNotIn("runtime error", log)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers -------------------------------------------------------
    def start_daemon(self, *extra):
        self.daemon = start_pythreadd(DAEMON, self.sock, *extra)

    def stop_daemon(self):
        self.logs.append(stop_pythreadd(self.daemon))
        self.daemon = None

    def ctl(self, *args, check=0):
        r = subprocess.run([CTL] + list(args), env=self.env, capture_output=True, text=True,
                           timeout=DEADLINE)
        self.assertEqual(r.returncode, check, "pythreadctl %s: %s" % (args, r.stderr))
        return r.stdout

    def spawn(self, *args):
        p = subprocess.Popen([CTL] + list(args), env=self.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.bg.append(p)
        return p

    def show(self, name):
        return json.loads(self.ctl("show", name, "--json"))

    def address(self):
        return json.loads(self.ctl("status", "--json"))["metrics"]

    def http_get(self, path="/metrics", method="GET", body=None):
        """(status, headers, text) of one request to the endpoint."""
        where = self.address()
        if where.startswith("/"):
            conn = UnixHTTPConnection(where)
        else:
            host, port = where.rsplit(":", 1)
            conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=DEADLINE)
        try:
            conn.request(method, path, body=body)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode()
        finally:
            conn.close()

    def scrape(self):
        status, headers, text = self.http_get()
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        self.promtool(text)
        return text

    def promtool(self, text):
        """promtool's lint too, where it is installed."""
        tool = shutil.which("promtool")
        if tool:
            r = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=DEADLINE)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def check_histogram(self, fams, name):
        kind, samples = fams[name]
        self.assertEqual(kind, "histogram")
        buckets = [(s.labels["le"], s.value) for s in samples if s.name == name + "_bucket"]
        self.assertEqual(buckets[-1][0], "+Inf")
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), "%s: buckets are cumulative" % name)
        self.assertEqual(counts[-1], value(fams, name, name + "_count"))
        return counts[-1], value(fams, name, name + "_sum")

    # -- the families, their types and what they count ----------------------
    def work(self):
        """Two hand-offs of a contended Lock, a timeout and a limit refusal
        (the daemon runs with --max-objects 3)."""
        self.ctl("create", "lock", "L")
        holder = self.spawn("lock", "L", "--", "sleep", "60")
        poll(lambda: self.show("L")["object"]["locked"], "the holder")
        w1 = self.spawn("lock", "L", "--", "true")
        w2 = self.spawn("lock", "L", "--", "true")
        poll(lambda: len(self.show("L")["waiters"]) == 2, "two waiters")
        self.ctl("lock", "L", "--wait", "0.05", "--", "true", check=1)
        holder.kill()
        self.assertEqual(w1.wait(timeout=DEADLINE), 0)
        self.assertEqual(w2.wait(timeout=DEADLINE), 0)
        self.ctl("create", "lock", "A", "B")
        r = subprocess.run([CTL, "create", "lock", "C"], env=self.env, capture_output=True,
                           text=True, timeout=DEADLINE)
        self.assertEqual(r.returncode, 1)
        self.assertIn("too many objects", r.stderr)

    def test_http_families_types_and_values(self):
        self.start_daemon("--metrics", "127.0.0.1:0", "--max-objects", "3",
                          "--metrics-object", "L")
        self.assertRegex(self.address(), r"^127\.0\.0\.1:[1-9][0-9]*$")
        self.work()
        # a frame over --max-frame: the daemon's own limit
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(DEADLINE)
            s.connect(self.sock)
            s.sendall(b"\x7f\xff\xff\xff")
            while s.recv(4096):  # the error frame, then the close
                pass
        fams = families(self.scrape())
        types = dict(FAMILIES)
        self.assertEqual({k: v[0] for k, v in fams.items()}, types)
        self.assertEqual(value(fams, "pythread_objects", kind="Lock"), 3)
        self.assertEqual(value(fams, "pythread_objects", kind="Barrier"), 0)
        self.assertEqual(value(fams, "pythread_limit_refusals_total", limit="objects"), 1)
        self.assertEqual(value(fams, "pythread_limit_refusals_total", limit="frame"), 1)
        self.assertEqual(value(fams, "pythread_limit_refusals_total", limit="sessions"), 0)
        self.assertEqual(value(fams, "pythread_operations_total", op="open", result="elimit"),
                         1)
        self.assertEqual(value(fams, "pythread_operations_total", op="acquire", result="false"),
                         1)  # the timed-out try
        self.assertEqual(value(fams, "pythread_timeouts_total"), 1)
        self.assertGreaterEqual(value(fams, "pythread_contended_acquisitions_total"), 3)
        got = (value(fams, "pythread_acquisitions_total", path="daemon") +
               value(fams, "pythread_acquisitions_total", path="fast"))
        self.assertGreaterEqual(got, 3)
        waits, wait_sum = self.check_histogram(fams, "pythread_handoff_wait_seconds")
        self.assertEqual(waits, 2)  # w1 and w2 were handed the lock
        self.assertGreater(wait_sum, 0)
        holds, _ = self.check_histogram(fams, "pythread_hold_seconds")
        self.assertGreaterEqual(holds, 1)
        self.assertEqual(value(fams, "pythread_deadlocks_found_total"), 0)
        self.assertEqual(value(fams, "pythread_restart_recovered"), 0)
        self.assertEqual(value(fams, "pythread_waiters"), 0)
        # series of their own for L only, which --metrics-object names
        names = {s.labels.get("name") for f in fams.values() for s in f[1]} - {None}
        self.assertEqual(names, {"L"})
        self.assertEqual(value(fams, "pythread_object_timeouts_total", name="L", kind="Lock"), 1)
        self.assertGreaterEqual(
            value(fams, "pythread_object_acquisitions_total", name="L", kind="Lock"), 3)
        self.assertGreater(
            value(fams, "pythread_object_longest_wait_seconds", name="L", kind="Lock"), 0)
        self.assertEqual(value(fams, "pythread_metrics_exposed_objects"), 1)
        # pythreadctl metrics: the same text, but for what changed between
        # the two reads (the requests and sessions counts)
        text = self.ctl("metrics")
        self.promtool(text)
        again = families(text)
        self.assertEqual({k: v[0] for k, v in again.items()}, types)
        for name in ("pythread_limit_refusals_total", "pythread_handoff_wait_seconds",
                     "pythread_objects", "pythread_object_timeouts_total"):
            self.assertEqual(again[name][1], fams[name][1], name)
        # reading them changed nothing
        self.assertEqual(families(self.scrape())["pythread_operations_total"][1],
                         again["pythread_operations_total"][1])

    def test_fast_acquires_seen_without_taking_the_word(self):
        """An acquire through the shared word shows at once, and reading it
        takes nothing in: the object's own counter moves only when the
        daemon takes the word (pythreadctl show does)."""
        fast = os.environ.get("PYTHREAD_FASTPATH") != "0"
        self.start_daemon("--metrics", "127.0.0.1:0", "--metrics-object", "F")
        self.ctl("create", "lock", "F")
        self.spawn("lock", "F", "--", "sleep", "60")

        def acquired():
            fams = families(self.scrape())
            n = sum(value(fams, "pythread_acquisitions_total", path=p) for p in ("daemon", "fast"))
            return fams if n == 1 else None

        fams = poll(acquired, "the holder's acquire")
        own = value(fams, "pythread_object_acquisitions_total", name="F", kind="Lock")
        self.assertEqual(value(fams, "pythread_acquisitions_total", path="fast"), int(fast))
        self.assertEqual(own, 0 if fast else 1)
        self.assertTrue(self.show("F")["object"]["locked"])
        fams = families(self.scrape())
        self.assertEqual(value(fams, "pythread_object_acquisitions_total", name="F", kind="Lock"),
                         1)
        self.assertEqual(value(fams, "pythread_acquisitions_total", path="fast"), int(fast))

    def test_restart_recovered_and_counts_from_zero(self):
        """A start that restores --state-dir says so, and its counters
        count what it serves: the replay is not counted again."""
        state = os.path.join(self.dir, "state")
        os.mkdir(state)
        self.start_daemon("--state-dir", state, "--metrics", "127.0.0.1:0")
        fams = families(self.scrape())
        self.assertEqual(value(fams, "pythread_restart_recovered"), 0)
        self.ctl("create", "lock", "R1", "R2")
        self.ctl("create", "event", "E")
        self.stop_daemon()
        self.start_daemon("--state-dir", state, "--metrics", "127.0.0.1:0")
        fams = families(self.scrape())
        self.assertEqual(value(fams, "pythread_restart_recovered"), 1)
        self.assertEqual(value(fams, "pythread_restart_restored_objects"), 3)
        self.assertGreater(value(fams, "pythread_restart_replayed_inputs"), 0)
        self.assertGreater(value(fams, "pythread_journal_bytes"), 0)
        self.assertEqual(value(fams, "pythread_objects", kind="Lock"), 2)
        self.assertEqual(fams["pythread_operations_total"][1], [])
        self.assertEqual(value(fams, "pythread_restart_sessions", outcome="kept"), 0)

    def test_only_get_metrics_is_served(self):
        self.start_daemon("--metrics", "127.0.0.1:0")
        self.ctl("create", "lock", "L")
        before = families(self.scrape())["pythread_operations_total"][1]
        for method in ("POST", "PUT", "DELETE", "PATCH", "HEAD"):
            status, headers, _ = self.http_get(method=method, body=b"x=1")
            self.assertEqual(status, 405, method)
            self.assertEqual(headers.get("Allow"), "GET")
        for path in ("/", "/metrics/x", "/status", "/../metrics"):
            status, _, text = self.http_get(path)
            self.assertEqual(status, 404, path)
        status, _, _ = self.http_get("/metrics?name[]=x")  # a query changes nothing
        self.assertEqual(status, 200)
        self.assertEqual(families(self.scrape())["pythread_operations_total"][1], before)
        # headers past the bound: no answer, and the endpoint goes on
        where = self.address().rsplit(":", 1)
        with socket.create_connection((where[0], int(where[1])), timeout=DEADLINE) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
            reply = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                reply += b
            self.assertNotIn(b"200 OK", reply)
        self.scrape()

    def test_metrics_over_a_socket_file(self):
        path = os.path.join(self.dir, "metrics.sock")
        self.start_daemon("--metrics", path)
        self.assertEqual(self.address(), path)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.ctl("create", "event", "E")
        fams = families(self.scrape())
        self.assertEqual(value(fams, "pythread_objects", kind="Event"), 1)
        self.stop_daemon()
        self.assertFalse(os.path.exists(path), "the socket file is removed at the stop")

    def test_paged_text_and_bounded_objects(self):
        """150 of 200 objects a pattern names get series: a text of many
        pieces over the socket, the same as over HTTP."""
        self.start_daemon("--metrics", "127.0.0.1:0", "--metrics-object", "P*",
                          "--metrics-objects-max", "150")
        names = ["P%03d" % i for i in range(200)]
        self.ctl("create", "lock", *names)
        self.ctl("create", "lock", "Q")
        text = self.ctl("metrics")
        self.assertGreater(len(text), 32 << 10)  # pieces of at most 16 KiB
        fams = families(text)
        self.assertEqual(value(fams, "pythread_metrics_exposed_objects"), 150)
        self.assertEqual(value(fams, "pythread_metrics_left_out_objects"), 50)
        shown = [s.labels["name"] for s in fams["pythread_object_waiters"][1]]
        self.assertEqual(shown, names[:150])  # oldest first
        http_fams = families(self.scrape())
        self.assertEqual(http_fams["pythread_object_waiters"][1],
                         fams["pythread_object_waiters"][1])

    def test_bad_addresses_refused_at_start(self):
        for addr, why in (("0.0.0.0:9464", "loopback only"), ("192.0.2.1:80", "loopback only"),
                          ("localhost:9464", "loopback only"), ("[::]:9464", "loopback only"),
                          ("127.0.0.1:65536", "port"), ("127.0.0.1:", "port"),
                          ("relative/metrics.sock", "absolute path"), ("", "loopback only")):
            r = subprocess.run([DAEMON, "--socket", self.sock, "--metrics", addr],
                               capture_output=True, text=True, timeout=DEADLINE)
            self.assertEqual(r.returncode, 2, addr)
            self.assertIn("--metrics: '%s'" % addr, r.stderr)
            self.assertIn(why, r.stderr, addr)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertFalse(os.path.exists(self.sock))
        r = subprocess.run([DAEMON, "--socket", self.sock, "--metrics-object", "no spaces"],
                           capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(r.returncode, 2)
        self.assertIn("'no spaces'", r.stderr)

    def test_port_taken_fails_the_start(self):
        self.start_daemon("--metrics", "127.0.0.1:0")
        port = self.address().rsplit(":", 1)[1]
        other = os.path.join(self.dir, "other.sock")
        r = subprocess.run([DAEMON, "--socket", other, "--metrics", "127.0.0.1:" + port],
                           capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot serve metrics on 127.0.0.1 port " + port, r.stderr)
        self.assertFalse(os.path.exists(other), "a failed start leaves no socket")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    CTL, DAEMON = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    parse_text = import_parser()
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
