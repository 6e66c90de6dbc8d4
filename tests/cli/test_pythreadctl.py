#!/usr/bin/env python3
"""pythreadctl end to end.

Usage: test_pythreadctl.py PYTHREADCTL PYTHREADD [COMPLETION_SCRIPT]

PT_DL_HOLDER in the environment names tests/cli/dl_holder.c built: a process
that holds one Lock and waits for another (deadlocks, graph).

Every test starts its own pythreadd on a socket in a fresh temporary
directory and stops it afterwards. Waiting is always polling with a
deadline, never a fixed sleep.
"""
import json
import os
import pty
import pwd
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from cliutil import DEADLINE, kill_groups, poll, start_pythreadd, stop_pythreadd

CTL = DAEMON = COMPLETION = None
HOLDER = os.environ.get("PT_DL_HOLDER")  # tests/cli/dl_holder.c, for the deadlocks


def gone(pid):
    """The process has ended (a zombie nobody reaped counts as ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def user_cell(uid):
    """A table's UID cell: the user's name and number, or the number."""
    try:
        return "%s (%d)" % (pwd.getpwuid(uid).pw_name, uid)
    except KeyError:
        return str(uid)


def read_when_there(path, what):
    """The contents of path once a command has written it (renamed into
    place, so never half written)."""
    poll(lambda: os.path.exists(path), what)
    with open(path) as f:
        return f.read()


class Ctl(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ptctl-")
        self.sock = os.path.join(self.dir, "d.sock")
        self.env = dict(os.environ, PYTHREAD_SOCKET=self.sock)
        self.env.pop("NO_COLOR", None)
        self.logs = []
        self.start_daemon()
        self.bg = []

    def start_daemon(self, *extra):
        self.daemon = start_pythreadd(DAEMON, self.sock, *extra)

    def stop_daemon(self, sig):
        """Stop the daemon with sig; keep its log for the checks at the end."""
        self.daemon.send_signal(sig)
        self.daemon.wait(timeout=DEADLINE)
        self.logs.append(self.daemon.stderr.read().decode(errors="replace"))
        self.daemon.stderr.close()
        if os.path.exists(self.sock):
            os.unlink(self.sock)  # a killed daemon leaves it

    def tearDown(self):
        kill_groups(self.bg)
        self.logs.append(stop_pythreadd(self.daemon))
        for log in self.logs:
            self.assertNotIn("Sanitizer", log)
            self.assertNotIn("runtime error", log)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers -------------------------------------------------------
    def run_ctl(self, *args, env=None, timeout=DEADLINE, argv0=None):
        cmd = [argv0 or CTL] + list(args)
        return subprocess.run(cmd, env=env or self.env, capture_output=True, text=True,
                              timeout=timeout)

    def ok(self, *args):
        r = self.run_ctl(*args)
        self.assertEqual(r.returncode, 0, "pythreadctl %s: %s" % (args, r.stderr))
        self.assertEqual(r.stderr, "")
        return r.stdout

    def fails(self, code, *args, env=None):
        r = self.run_ctl(*args, env=env)
        self.assertEqual(r.returncode, code, "pythreadctl %s: out=%r err=%r" % (args, r.stdout,
                                                                                r.stderr))
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, "one stderr line expected, got %r" % r.stderr)
        self.assertTrue(lines[0].startswith("pythreadctl: "), lines[0])
        return lines[0]

    def js(self, *args):
        return json.loads(self.ok(*args, "--json"))

    def spawn(self, *args, argv0=None):
        p = subprocess.Popen([argv0 or CTL] + list(args), env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        self.bg.append(p)
        return p

    def obj(self, name):
        return self.js("show", name)

    # -- help, version, usage ------------------------------------------
    def test_help_and_version(self):
        out = self.ok("--help")
        for cmd in ("status", "list", "show", "sessions", "metrics", "create", "unlink", "lock",
                    "sem", "event", "barrier", "notify"):
            self.assertIn(cmd, out)
            sub = self.ok(cmd, "--help")
            self.assertTrue(sub.startswith("Usage: pythreadctl " + cmd), sub)
            self.assertIn("--socket", sub)
            self.assertIn("Exit status", sub)
        self.assertRegex(self.ok("--version"), r"^pythreadctl \d+\.\d+\.\d+")

    def test_usage_errors_exit_2(self):
        self.fails(2)
        self.fails(2, "frobnicate")
        self.fails(2, "--bogus", "status")
        self.fails(2, "status", "extra")
        self.fails(2, "list", "--kind", "teapot")
        self.fails(2, "show")
        self.fails(2, "create", "lock")
        self.fails(2, "create", "teapot", "x")
        self.fails(2, "create", "barrier", "b")            # no --parties
        self.fails(2, "create", "lock", "x", "--value", "3")
        self.fails(2, "create", "semaphore", "x", "--value", "-1")
        self.fails(2, "create", "lock", "x", "--mode", "999")
        self.fails(2, "lock", "x", "--")                    # no COMMAND after --
        self.fails(2, "lock", "x", "--wait", "1", "--nonblock", "--", "true")
        self.fails(2, "lock", "x", "--wait", "soon", "--", "true")
        self.fails(2, "lock", "x", "--lost-signal", "SIGFOO", "--", "true")
        self.fails(2, "sem", "x", "--lost-signal", "0", "--", "true")
        self.fails(2, "event", "toggle", "e")
        self.fails(2, "barrier", "wait")
        self.fails(2, "notify", "--all", "-n", "2", "c")
        self.fails(2, "list", "--socket")                   # missing argument

    def test_no_daemon_exit_3(self):
        env = dict(self.env, PYTHREAD_SOCKET=os.path.join(self.dir, "none.sock"))
        for args in (["status"], ["list"], ["sessions"], ["show", "x"], ["unlink", "x"],
                     ["lock", "x", "--", "true"], ["event", "set", "e"]):
            line = self.fails(3, *args, env=env)
            self.assertIn("none.sock", line)
        # -s/--socket wins over the environment
        line = self.fails(3, "-s", os.path.join(self.dir, "other.sock"), "status")
        self.assertIn("other.sock", line)
        self.ok("--socket", self.sock, "status")
        self.ok("status", "--socket", self.sock)

    # -- inspection ----------------------------------------------------
    def test_status(self):
        self.ok("create", "lock", "a")
        self.ok("create", "semaphore", "s", "--value", "2")
        self.ok("create", "barrier", "b", "--parties", "2")
        st = self.js("status")
        self.assertEqual(st["pid"], self.daemon.pid)
        self.assertEqual(st["socket"], self.sock)
        self.assertRegex(st["version"], r"^\d+\.\d+\.\d+$")
        self.assertGreaterEqual(st["uptime_seconds"], 0)
        self.assertEqual(st["objects"], 3)
        self.assertEqual(st["objects_by_kind"], {
            "lock": 1, "rlock": 0, "condition": 0, "semaphore": 1, "bounded_semaphore": 0,
            "event": 0, "barrier": 1})
        self.assertEqual(st["sessions"], 1)  # this very call
        self.assertGreaterEqual(st["operations"], 3)
        self.assertEqual(st["limits"]["max_frame"], 65536)
        for k in ("max_sessions", "max_objects", "max_handles_per_session",
                  "max_waiters_per_session", "max_objects_per_uid"):
            self.assertGreater(st["limits"][k], 0)
        # the per-uid quotas at their documented defaults
        self.assertEqual({k: st["limits"][k] for k in (
            "max_sessions_per_uid", "max_handles_per_uid", "max_waiters_per_uid",
            "max_objects_per_uid", "max_output_bytes", "max_output_per_uid_bytes")},
            {"max_sessions_per_uid": 4096, "max_handles_per_uid": 131072,
             "max_waiters_per_uid": 65536, "max_objects_per_uid": 32768,
             "max_output_bytes": 8 << 20, "max_output_per_uid_bytes": 16 << 20})
        self.assertEqual(st["limits"]["max_input_per_uid_bytes"], 8 << 20)
        text = self.ok("status")
        self.assertIn(self.sock, text)
        self.assertIn("lock 1", text)

    def test_list_states_filters_and_table(self):
        self.ok("create", "lock", "app/lock")
        self.ok("create", "rlock", "app/rlock")
        self.ok("create", "condition", "app/cond", "--lock", "app/lock")
        self.ok("create", "semaphore", "pool", "--value", "3", "--bounded", "--mode", "0640")
        self.ok("create", "semaphore", "plain", "--value", "5")
        self.ok("create", "event", "go")
        self.ok("create", "barrier", "meet", "--parties", "3", "--timeout", "9")
        self.ok("event", "set", "go")
        objs = {o["name"]: o for o in self.js("list")["objects"]}
        self.assertEqual(list(objs), ["app/lock", "app/rlock", "app/cond", "pool", "plain",
                                      "go", "meet"])  # oldest first
        self.assertEqual(objs["app/lock"]["state"], "free")
        self.assertEqual(objs["app/cond"]["kind"], "condition")
        self.assertEqual(objs["app/cond"]["lock"], "app/lock")
        self.assertEqual(objs["pool"]["kind"], "bounded_semaphore")
        self.assertEqual(objs["pool"]["state"], "3/3")
        self.assertEqual(objs["pool"]["mode"], "0640")
        self.assertEqual(objs["plain"]["state"], "5")
        self.assertEqual(objs["go"]["state"], "set")
        self.assertEqual(objs["meet"]["state"], "0/3")
        self.assertEqual(objs["meet"]["timeout"], 9)
        self.assertEqual(objs["app/lock"]["uid"], os.getuid())
        self.assertEqual(objs["app/lock"]["mode"], "0600")
        # filters
        self.assertEqual([o["name"] for o in self.js("list", "app/*")["objects"]],
                         ["app/lock", "app/rlock", "app/cond"])
        self.assertEqual([o["name"] for o in self.js("list", "--kind", "event")["objects"]],
                         ["go"])
        self.assertEqual(self.js("list", "--kind", "lock", "nomatch*")["objects"], [])
        # table: not a terminal, so tab-separated with a header line
        lines = self.ok("list").splitlines()
        self.assertEqual(lines[0].split("\t")[:3], ["NAME", "KIND", "STATE"])
        self.assertEqual(lines[1].split("\t")[:3], ["app/lock", "lock", "free"])
        self.assertEqual(len(lines), 8)
        lines = self.ok("list", "--no-legend").splitlines()
        self.assertEqual(len(lines), 7)
        self.assertEqual(lines[0].split("\t")[0], "app/lock")
        # a broken barrier says so
        self.ok("barrier", "abort", "meet")
        self.assertEqual(self.obj("meet")["object"]["state"], "broken")

    def test_list_pages_many_objects(self):
        # Far more than one page (500) or one 64 KiB frame of long names.
        names = ["many/%s/%05d" % ("x" * 200, i) for i in range(1200)]
        # One create for all of them (a process per name is slow under ASan).
        self.ok("create", "lock", *names)
        got = [o["name"] for o in self.js("list", "many/*")["objects"]]
        self.assertEqual(got, names)
        self.assertEqual(len(self.ok("list", "--no-legend").splitlines()), 1200)

    def test_show_holders_waiters_counters(self):
        self.ok("create", "lock", "L")
        holder = self.spawn("lock", "L", "--", "sleep", "60")
        poll(lambda: self.obj("L")["object"]["locked"], "the holder")
        w1 = self.spawn("lock", "L", "--", "true")
        poll(lambda: len(self.obj("L")["waiters"]) == 1, "the first waiter")
        w2 = self.spawn("lock", "L", "--", "true")
        d = poll(lambda: (lambda d: d if len(d["waiters"]) == 2 else None)(self.obj("L")),
                 "the second waiter")
        self.assertFalse(d["detail_denied"])
        self.assertEqual(len(d["holders"]), 1)
        h = d["holders"][0]
        self.assertEqual(h["pid"], holder.pid)
        self.assertEqual(h["uid"], os.getuid())
        self.assertEqual(h["process"], "pythreadctl")
        self.assertEqual(h["thread"], holder.pid)  # single-threaded: tid == pid
        self.assertGreaterEqual(h["seconds"], 0)
        self.assertEqual([w["pid"] for w in d["waiters"]], [w1.pid, w2.pid])  # queue order
        self.assertEqual([w["position"] for w in d["waiters"]], [0, 1])
        self.assertEqual(d["waiters"][0]["what"], "acquire")
        self.assertGreaterEqual(d["waiters"][0]["seconds"], d["waiters"][1]["seconds"])
        self.assertEqual(d["object"]["waiters"], 2)
        self.assertEqual(self.js("list")["objects"][0]["waiters"], 2)
        # a timed-out try counts as contended and as a timeout
        self.fails(1, "lock", "L", "--wait", "0.05", "--", "true")
        c = self.obj("L")["object"]["counters"]
        self.assertEqual(c["acquires"], 1)
        self.assertEqual(c["contended"], 3)
        self.assertEqual(c["timeouts"], 1)
        text = self.ok("show", "L")
        self.assertIn("holders:", text)
        self.assertIn(str(holder.pid), text)
        holder.kill()
        holder.wait()
        self.assertEqual(w1.wait(timeout=DEADLINE), 0)
        self.assertEqual(w2.wait(timeout=DEADLINE), 0)
        c = self.obj("L")["object"]["counters"]
        self.assertEqual(c["acquires"], 3)
        self.assertGreater(c["longest_wait_seconds"], 0)
        self.assertGreater(c["longest_hold_seconds"], 0)
        self.assertGreaterEqual(self.obj("L")["object"]["token"], 3)
        line = self.fails(1, "show", "nothing-here")
        self.assertIn("nothing-here", line)

    def test_show_longest_hold_counts_current_hold(self):
        self.ok("create", "lock", "H")
        self.spawn("lock", "H", "--", "sleep", "60")
        d = poll(lambda: (lambda d: d if d["holders"] and d["holders"][0]["seconds"] >= 0.05
                          else None)(self.obj("H")), "a hold of 50 ms")
        # One answer, one clock: the hold going on is the longest so far.
        self.assertEqual(d["object"]["counters"]["longest_hold_seconds"],
                         d["holders"][0]["seconds"])
        self.assertNotIn("longest hold 0us", self.ok("show", "H"))

    def test_json_times_exact(self):
        # Seconds since the epoch need 16-17 digits: rounded to 9 they came
        # out as whole multiples of 10 s.
        st = self.js("status")
        self.assertNotEqual(st["started_at"], round(st["started_at"]))
        self.assertLess(abs(st["started_at"] + st["uptime_seconds"] - time.time()), 5)
        ss = self.js("sessions")["sessions"]
        self.assertNotEqual(ss[0]["connected_at"], round(ss[0]["connected_at"]))

    @unittest.skipUnless(os.geteuid() == 0, "needs root to act as another user")
    def test_state_hidden_from_users_who_may_not_read(self):
        # Names, kinds, owners and modes are public, as `ls -l` shows them;
        # the state, counters and waiters need read permission by the mode.
        os.chmod(self.dir, 0o711)
        self.ok("create", "semaphore", "secret", "--value", "3")  # 0600, root's
        self.ok("create", "event", "open", "--mode", "0644")
        self.ok("event", "set", "open")

        def as_other(*args):
            r = subprocess.run([CTL] + list(args), env=self.env, capture_output=True, text=True,
                               timeout=DEADLINE, user=41021, group=41021, extra_groups=[])
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout

        objs = {o["name"]: o for o in json.loads(as_other("list", "--json"))["objects"]}
        s = objs["secret"]
        self.assertTrue(s["hidden"])
        self.assertEqual((s["kind"], s["uid"], s["mode"]), ("semaphore", 0, "0600"))
        for k in ("state", "waiters", "refs", "token", "value", "initial"):
            self.assertIsNone(s[k], k)
        self.assertFalse(objs["open"]["hidden"])
        self.assertEqual(objs["open"]["state"], "set")
        self.assertFalse(self.js("list")["objects"][0]["hidden"])  # root reads all
        d = json.loads(as_other("show", "secret", "--json"))
        self.assertTrue(d["detail_denied"])
        self.assertIsNone(d["object"]["counters"])
        self.assertIsNone(d["object"]["state"])
        row = [l.split("\t") for l in as_other("list").splitlines() if l.startswith("secret")]
        self.assertEqual(row[0][:6], ["secret", "semaphore", "-", "-", user_cell(0), "0600"])
        text = as_other("show", "secret")
        self.assertIn("not shown", text)
        self.assertNotIn("value=3", text)

    def test_show_semaphore_holders(self):
        self.ok("create", "semaphore", "S", "--value", "2", "--bounded")
        p = self.spawn("sem", "S", "--", "sleep", "60")
        d = poll(lambda: (lambda d: d if d["holders"] else None)(self.obj("S")), "a permit")
        self.assertEqual(d["holders"][0]["pid"], p.pid)
        self.assertEqual(d["holders"][0]["count"], 1)
        self.assertEqual(d["object"]["state"], "1/2")
        self.assertTrue(d["object"]["owned"])

    def test_sessions(self):
        self.ok("create", "lock", "L")
        p = self.spawn("lock", "L", "--", "sleep", "60")
        poll(lambda: self.obj("L")["object"]["locked"], "the holder")
        ss = self.js("sessions")["sessions"]
        self.assertEqual(len(ss), 2)
        mine = [s for s in ss if s["self"]]
        other = [s for s in ss if not s["self"]]
        self.assertEqual(len(mine), 1)
        self.assertEqual(other[0]["pid"], p.pid)
        self.assertEqual(other[0]["held"], 1)
        self.assertEqual(other[0]["handles"], 1)
        self.assertEqual(other[0]["waiting"], 0)
        self.assertEqual(other[0]["process"], "pythreadctl")
        self.assertEqual(other[0]["uid"], os.getuid())
        self.assertLess(abs(other[0]["connected_at"] - time.time()), 60)
        self.assertLess(ss[0]["id"], ss[1]["id"])
        lines = self.ok("sessions").splitlines()
        self.assertEqual(lines[0].split("\t")[0], "ID")
        self.assertEqual(len(lines), 3)

    def test_process_names_sanitised_and_escaped(self):
        # A program's name is its client name: one with escape sequences
        # and a line break must neither drive the reader's terminal nor
        # forge a row. The daemon keeps printable ASCII only ('?' for the
        # rest); JSON escapes what is left.
        odd = 'ctl"q\\b\tc\x01\x1b[2J\nforged\u00e9'
        shown = 'ctl"q\\b?c??[2J?forged??'
        link = os.path.join(self.dir, odd)
        os.symlink(CTL, link)
        self.ok("create", "lock", "L")
        self.spawn("lock", "L", "--", "sleep", "60", argv0=link)
        poll(lambda: self.obj("L")["object"]["locked"], "the holder")
        d = self.obj("L")
        self.assertEqual(d["holders"][0]["process"], shown)
        names = [s["process"] for s in self.js("sessions")["sessions"]]
        self.assertIn(shown, names)
        for out in (self.ok("sessions"), self.ok("show", "L")):
            self.assertNotIn("\x1b", out)
            self.assertIn('ctl"q\\\\b?c??[2J?forged??', out)  # the backslash doubled
        self.assertEqual(len(self.ok("sessions").splitlines()), 3)  # header and two rows

    def test_human_output_escapes_daemon_text(self):
        # Whatever the daemon says, human output shows it escaped: here the
        # socket path (the daemon's own words in status) holds an escape
        # sequence and a line break.
        odd = os.path.join(self.dir, "e\x1b]0;owned\x07\nx\u00e9.sock")
        d = subprocess.Popen([DAEMON, "--socket", odd], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            poll(lambda: os.path.exists(odd) or d.poll() is not None, "the second daemon")
            out = self.ok("-s", odd, "status")
            self.assertNotIn("\x1b", out)
            self.assertNotIn("\x07", out)
            self.assertIn("e\\x1b]0;owned\\x07\\nx\\xc3\\xa9.sock", out)
            self.assertEqual(self.js("-s", odd, "status")["socket"], odd)
            # Errors too: one line, escaped.
            r = self.run_ctl("-s", odd + "\x1b[1m", "status")
            self.assertEqual(r.returncode, 3)
            self.assertNotIn("\x1b", r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1)
        finally:
            d.terminate()
            d.wait(timeout=DEADLINE)

    # -- acting --------------------------------------------------------
    def test_create_and_unlink(self):
        for kind in ("lock", "rlock", "condition", "semaphore", "event"):
            self.ok("create", kind, "k-" + kind)
        self.ok("create", "barrier", "k-barrier", "--parties", "2")
        self.ok("create", "condition", "k-cond2", "--lock", "k-rlock")
        kinds = {o["name"]: o["kind"] for o in self.js("list")["objects"]}
        self.assertEqual(kinds["k-rlock"], "rlock")
        self.assertEqual(kinds["k-barrier"], "barrier")
        self.assertEqual(self.obj("k-cond2")["object"]["lock"], "k-rlock")
        line = self.fails(1, "create", "lock", "k-lock")  # exists
        self.assertIn("k-lock", line)
        self.fails(1, "create", "condition", "c3", "--lock", "missing")
        self.fails(1, "create", "lock", "bad name!")
        self.ok("unlink", "k-lock")
        self.assertNotIn("k-lock", [o["name"] for o in self.js("list")["objects"]])
        self.fails(1, "unlink", "k-lock")
        # several names: each is tried, the failure is reported, the rest done
        line = self.fails(1, "create", "event", "m1", "k-event", "m2")
        self.assertIn("k-event", line)
        names = [o["name"] for o in self.js("list")["objects"]]
        self.assertIn("m1", names)
        self.assertIn("m2", names)
        self.fails(1, "unlink", "m1", "gone", "m2")
        names = [o["name"] for o in self.js("list")["objects"]]
        self.assertNotIn("m1", names)
        self.assertNotIn("m2", names)

    def test_lock_runs_command_and_passes_status(self):
        marker = os.path.join(self.dir, "ran")
        self.ok("lock", "L", "--", "touch", marker)  # created if missing
        self.assertTrue(os.path.exists(marker))
        self.assertEqual(self.obj("L")["object"]["kind"], "lock")
        self.assertFalse(self.obj("L")["object"]["locked"])  # released after
        self.assertEqual(self.run_ctl("lock", "L", "--", "sh", "-c", "exit 7").returncode, 7)
        self.assertEqual(self.run_ctl("lock", "L", "--", "sh", "-c",
                                      "kill -TERM $$").returncode, 128 + signal.SIGTERM)
        r = self.run_ctl("lock", "L", "--", os.path.join(self.dir, "no-such-program"))
        self.assertEqual(r.returncode, 127)
        self.assertIn("no-such-program", r.stderr)
        # the command sees the lock held; an rlock works the same way
        out = subprocess.run([CTL, "lock", "R", "--rlock", "--", CTL, "show", "--json", "R"],
                             env=self.env, capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(json.loads(out.stdout)["object"]["locked"])
        self.assertEqual(json.loads(out.stdout)["object"]["kind"], "rlock")

    def test_lock_busy_nonblock_and_timeout(self):
        holder = self.spawn("lock", "L", "--", "sleep", "60")
        poll(lambda: self.obj("L")["object"]["locked"], "the holder")
        marker = os.path.join(self.dir, "ran")
        line = self.fails(1, "lock", "L", "--nonblock", "--", "touch", marker)
        self.assertIn("'L'", line)
        t0 = time.monotonic()
        self.fails(1, "lock", "L", "--wait", "0.2", "--", "touch", marker)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.assertFalse(os.path.exists(marker))
        # killing the holding pythreadctl gives the lock back
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        self.ok("lock", "L", "--wait", str(DEADLINE), "--", "touch", marker)
        self.assertTrue(os.path.exists(marker))

    # -- COMMAND never runs without the hold -----------------------------
    def test_lock_command_ends_with_killed_pythreadctl(self):
        # kill -9 of pythreadctl ends its session, so the lock is free: the
        # command, and what it started, must end with it.
        pids = os.path.join(self.dir, "pids")
        holder = self.spawn("lock", "L", "--", "sh", "-c",
                            'sleep 60 & echo $$ $! > "$1.new"; mv "$1.new" "$1"; wait',
                            "sh", pids)
        sh, child = map(int, read_when_there(pids, "the command's pids").split())
        self.assertTrue(self.obj("L")["object"]["locked"])
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        poll(lambda: gone(sh) and gone(child), "the command and its child to end", timeout=5)
        poll(lambda: not self.obj("L")["object"]["locked"], "the lock to be free")
        self.ok("lock", "L", "--nonblock", "--", "true")

    def test_lock_passes_signals_on(self):
        # SIGTERM to pythreadctl goes to the command, which ends while the
        # lock is still held; pythreadctl exits with its status.
        marker = os.path.join(self.dir, "term")
        script = os.path.join(self.dir, "on-term.sh")
        with open(script, "w") as f:
            f.write('out=$1\n'
                    'on_term() {\n'
                    '    "$CTL" show --json L > "$out.new"; mv "$out.new" "$out"; exit 3\n'
                    '}\n'
                    'trap on_term TERM\n'
                    ': > "$out.ready"\n'
                    'sleep 60 & wait\n')
        env = dict(self.env, CTL=CTL)
        holder = subprocess.Popen([CTL, "lock", "L", "--", "sh", script, marker], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        self.bg.append(holder)
        read_when_there(marker + ".ready", "the command's trap")
        holder.send_signal(signal.SIGTERM)
        self.assertEqual(holder.wait(timeout=DEADLINE), 3)
        shown = json.loads(read_when_there(marker, "the trap"))
        self.assertTrue(shown["object"]["locked"])
        self.assertEqual([h["pid"] for h in shown["holders"]], [holder.pid])
        self.assertFalse(self.obj("L")["object"]["locked"])

    def test_lock_daemon_restart_stops_command(self):
        # The daemon restarts while the command runs: the lock is gone, so the
        # command gets SIGTERM at once, pythreadctl exits 4 once it ended,
        # and it does not touch the lock someone took from the new daemon.
        term, go, pids = (os.path.join(self.dir, n) for n in ("term", "go", "pids"))
        script = ('trap \'echo TERM > "$1.new"; mv "$1.new" "$1"; '
                  'while [ ! -e "$2" ]; do sleep 0.01; done; exit 0\' TERM; '
                  'sleep 60 & echo $! > "$3.new"; mv "$3.new" "$3"; wait')
        holder = self.spawn("lock", "L", "--", "sh", "-c", script, "sh", term, go, pids)
        child = int(read_when_there(pids, "the command's child"))
        self.assertTrue(self.obj("L")["object"]["locked"])
        self.stop_daemon(signal.SIGTERM)
        t0 = time.monotonic()
        self.assertEqual(read_when_there(term, "SIGTERM to the command"), "TERM\n")
        self.assertLess(time.monotonic() - t0, 5)
        poll(lambda: gone(child), "the command's child to end", timeout=5)
        self.start_daemon()
        other = self.spawn("lock", "L", "--", "sleep", "60")
        poll(lambda: self.obj("L")["object"]["locked"], "the new holder")
        open(go, "w").close()
        self.assertEqual(holder.wait(timeout=DEADLINE), 4)
        err = holder.stderr.read()
        self.assertIn("lock 'L': lost the lock", err)
        self.assertIn("SIGTERM", err)
        detail = self.obj("L")
        if not detail["object"]["locked"]:  # seen twice in CI: keep what tells why
            self.stop_daemon(signal.SIGTERM)
            code = holder.poll()
            self.fail("L not held after the restart: %s\nholder exit: %s\nholder said: %s\n"
                      "daemon logs:\n%s" % (detail, code, holder.stderr.read() if code is not None
                                              else "(running)", "\n-----\n".join(self.logs)))
        self.assertEqual([h["pid"] for h in detail["holders"]], [other.pid])

    def test_lock_kept_across_restart_with_state(self):
        # With --state-dir a kill -9 of the daemon does not end the session:
        # pythreadctl's library takes it up on the next daemon, still holding,
        # and COMMAND runs on to its end undisturbed.
        state = os.path.join(self.dir, "state")
        os.mkdir(state)
        self.stop_daemon(signal.SIGTERM)
        self.start_daemon("--state-dir", state)
        done = os.path.join(self.dir, "done")
        go = os.path.join(self.dir, "go")
        script = 'while [ ! -e "$1" ]; do sleep 0.01; done; echo ok > "$2"'
        holder = self.spawn("lock", "L", "--", "sh", "-c", script, "sh", go, done)
        poll(lambda: self.obj("L")["object"]["locked"], "the lock held")
        self.stop_daemon(signal.SIGKILL)
        # A long grace costs nothing (it ends once the holder is back) and
        # keeps a loaded machine from ending the session before it is.
        self.start_daemon("--state-dir", state, "--grace", "60")
        poll(lambda: not self.js("status")["state"]["in_grace"], "the grace period's end",
             timeout=90)
        detail = self.obj("L")
        if not detail["object"]["locked"]:  # seen twice in CI: keep what tells why
            self.stop_daemon(signal.SIGTERM)
            code = holder.poll()
            self.fail("L not held after the restart: %s\nholder exit: %s\nholder said: %s\n"
                      "daemon logs:\n%s" % (detail, code, holder.stderr.read() if code is not None
                                              else "(running)", "\n-----\n".join(self.logs)))
        self.assertEqual([h["pid"] for h in detail["holders"]], [holder.pid])
        self.assertEqual(self.js("status")["state"]["sessions"]["taken_up"], 1)
        sessions = self.js("sessions")["sessions"]
        self.assertEqual([x["resumed"] for x in sessions if x["pid"] == holder.pid], [True])
        self.assertEqual([x["resumed"] for x in sessions if x["self"]], [False])
        self.assertFalse(os.path.exists(done))
        open(go, "w").close()
        self.assertEqual(holder.wait(timeout=DEADLINE), 0, holder.stderr.read())
        self.assertEqual(read_when_there(done, "COMMAND's end"), "ok\n")
        self.assertFalse(self.obj("L")["object"]["locked"])

    def test_show_marks_what_a_restart_did(self):
        # After a kill -9 of a --state-dir daemon, show and list tell what
        # the restart did to each object: RA's holder came back and its word
        # said it holds it (reclaimed); RB's holder died while the daemon
        # was down, so RB went to its waiter (released); RC's holder is
        # stopped, so RC is in grace until it dies, then released too; E,
        # held by nobody, is as the journal had it (restored).
        state = os.path.join(self.dir, "state")
        os.mkdir(state)
        self.stop_daemon(signal.SIGTERM)
        self.start_daemon("--state-dir", state)
        self.ok("create", "event", "E")
        a, b, c = (self.spawn("lock", n, "--", "sleep", "60") for n in ("RA", "RB", "RC"))
        for n in ("RA", "RB", "RC"):
            poll(lambda n=n: self.obj(n)["object"]["locked"], n + " held")
        w = self.spawn("lock", "RB", "--", "sleep", "60")
        poll(lambda: len(self.obj("RB")["waiters"]) == 1, "RB's waiter")
        self.stop_daemon(signal.SIGKILL)
        b.kill()
        b.wait()
        os.kill(c.pid, signal.SIGSTOP)
        self.start_daemon("--state-dir", state, "--grace", "60")
        st = poll(lambda: (lambda s: s if s["sessions"]["taken_up"] == 2 else None)(
            self.js("status")["state"]), "a's and w's sessions taken up")
        self.assertTrue(st["in_grace"])
        self.assertIsNone(st["restart"]["done_at"])
        self.assertEqual(st["restart"]["objects"],
                         {"restored": 2, "reclaimed": 0, "released": 0, "in_grace": 2})
        marks = {n: self.obj(n)["object"]["restart"] for n in ("RA", "RB", "RC", "E")}
        self.assertEqual(marks, {"RA": "restored", "RB": "in_grace", "RC": "in_grace",
                                 "E": "restored"})
        flags = {l.split("\t")[0]: l.split("\t")[6]
                 for l in self.ok("list", "--no-legend").splitlines()}
        self.assertEqual(flags["RC"], "in_grace")
        self.assertIn("in grace: a holder's process has not taken its session up yet",
                      self.ok("show", "RC"))
        os.kill(c.pid, signal.SIGKILL)  # its death ends the grace
        poll(lambda: not self.js("status")["state"]["in_grace"], "the grace period's end")
        shown = {n: self.obj(n) for n in ("RA", "RB", "RC", "E")}
        self.assertEqual({n: d["object"]["restart"] for n, d in shown.items()},
                         {"RA": "reclaimed", "RB": "released", "RC": "released",
                          "E": "restored"})
        self.assertEqual([h["pid"] for h in shown["RA"]["holders"]], [a.pid])
        poll(lambda: [h["pid"] for h in self.obj("RB")["holders"]] == [w.pid],
             "RB handed to its waiter")
        self.assertFalse(shown["RC"]["object"]["locked"])
        self.ok("create", "lock", "NEW")
        self.assertEqual(self.obj("NEW")["object"]["restart"], "none")
        restart = self.js("status")["state"]["restart"]
        self.assertGreater(restart["done_at"], 0)
        self.assertGreater(restart["grace_seconds"], 0)
        self.assertEqual(restart["objects"],
                         {"restored": 1, "reclaimed": 1, "released": 2, "in_grace": 0})
        flags = {l.split("\t")[0]: l.split("\t")[6]
                 for l in self.ok("list", "--no-legend").splitlines()}
        self.assertEqual(flags, {"E": "-", "RA": "reclaimed", "RB": "released",
                                 "RC": "released", "NEW": "-"})
        self.assertIn("released: its holder's session was not taken up", self.ok("show", "RB"))
        self.assertRegex(self.ok("status"), r"last restart:\tdone .* 1 restored as journaled, "
                                            r"1 reclaimed from their holders' words, 2 released")

    def test_sem_lost_signal(self):
        # --lost-signal chooses the signal; the daemon dies (kill -9) this time.
        got = os.path.join(self.dir, "got")
        waiter = ("import signal, os, sys\n"
                  "sigs = {signal.SIGUSR1, signal.SIGTERM}\n"
                  "signal.pthread_sigmask(signal.SIG_BLOCK, sigs)\n"
                  "open(sys.argv[1] + '.ready', 'w').close()\n"
                  "s = signal.sigwait(sigs)\n"
                  "open(sys.argv[1] + '.new', 'w').write(signal.Signals(s).name)\n"
                  "os.rename(sys.argv[1] + '.new', sys.argv[1])\n")
        holder = self.spawn("sem", "S", "--lost-signal", "USR1", "--", sys.executable, "-c",
                            waiter, got)
        read_when_there(got + ".ready", "the command")
        t0 = time.monotonic()
        self.stop_daemon(signal.SIGKILL)
        self.assertEqual(holder.wait(timeout=DEADLINE), 4)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(read_when_there(got, "the signal"), "SIGUSR1")
        self.assertIn("sem 'S': lost the permit", holder.stderr.read())

    def terminal(self, args, typed, ready, what, env=None):
        """pythreadctl in the foreground of a new terminal; types typed once
        ready(what it drew so far) is true; returns its exit status and what
        it drew."""
        pid, master = pty.fork()
        if pid == 0:
            os.execve(CTL, [CTL] + args, env or self.env)
        seen = b""
        try:
            end = time.monotonic() + DEADLINE
            while not self.ready_now(ready, seen):
                if time.monotonic() > end:
                    self.fail("pythreadctl in a terminal never got ready: " + what)
                r, _, _ = select.select([master], [], [], 0.01)
                if r:
                    seen += os.read(master, 4096)
            os.write(master, typed)
            while time.monotonic() < end:
                r, _, _ = select.select([master], [], [], 0.01)
                if r:
                    try:
                        seen += os.read(master, 4096)  # keep the terminal drained
                    except OSError:
                        pass
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    return os.waitstatus_to_exitcode(st), seen
            self.fail("pythreadctl in a terminal did not end: " + what)
        finally:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            os.close(master)

    @staticmethod
    def ready_now(ready, seen):
        try:
            return ready(seen)
        except (AssertionError, json.JSONDecodeError):  # not there yet
            return False

    def run_in_terminal(self, args, typed, what):
        """pythreadctl in a terminal; types typed once the lock is held."""
        return self.terminal(args, typed, lambda seen: self.obj("L")["object"]["locked"],
                             what)[0]

    def test_lock_in_terminal_keeps_job_control(self):
        # In the foreground of a terminal the command stays in pythreadctl's
        # process group: it can read the terminal, and ^C reaches it once.
        out = os.path.join(self.dir, "read")
        rc = self.run_in_terminal(["lock", "L", "--", "sh", "-c", 'read x; echo "$x" > "$1"',
                                   "sh", out], b"typed\n", "a command reading the terminal")
        self.assertEqual(rc, 0)
        with open(out) as f:
            self.assertEqual(f.read(), "typed\n")
        rc = self.run_in_terminal(["lock", "L", "--", "sleep", "60"], b"\x03", "^C")
        self.assertEqual(rc, 128 + signal.SIGINT)
        self.assertFalse(self.obj("L")["object"]["locked"])

    # -- graph and top -------------------------------------------------
    def ring(self, *pairs):
        """A dl_holder process per (held, wanted), each holding before the
        next starts; returns them once every one waits."""
        procs = []
        for held, wanted in pairs:
            p = subprocess.Popen([HOLDER, held, wanted], env=self.env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
            self.bg.append(p)
            self.assertEqual(p.stdout.readline(), "held\n")
            procs.append(p)
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        for _, wanted in pairs:
            poll(lambda w=wanted: self.obj(w)["object"]["waiters"] >= 1, "a wait for " + wanted)
        return procs

    def test_graph_draws_a_three_process_deadlock_in_red(self):
        if not HOLDER:
            self.skipTest("PT_DL_HOLDER (the built dl_holder) is not set; ctest sets it")
        self.ok("create", "semaphore", "S", "--value", "0")
        procs = self.ring(("A", "B"), ("B", "C"), ("C", "A"))
        by = self.spawn("sem", "S", "--", "true")  # waits on a semaphore: no owner
        extra = self.ring(("D", "A"))[0]  # waits for a lock of the cycle, is not in it
        poll(lambda: self.obj("S")["object"]["waiters"] == 1, "the semaphore's waiter")
        g = self.js("graph")
        names = {n["id"]: n for n in g["nodes"]}
        self.assertEqual(len(g["cycles"]), 1)
        cycle = g["cycles"][0]
        self.assertEqual(sorted(names[i]["name"] for i in cycle if names[i]["type"] == "object"),
                         ["A", "B", "C"])
        self.assertEqual(sorted(names[i]["pid"] for i in cycle if names[i]["type"] == "owner"),
                         sorted(p.pid for p in procs))
        red = [e for e in g["edges"] if e["in_cycle"]]
        self.assertEqual(len(red), 6)  # three holds, three acquires
        extra_id = [i for i, n in names.items() if n.get("pid") == extra.pid][0]
        self.assertFalse(names[extra_id]["in_cycle"])
        sem_waits = [e for e in g["edges"] if names[e["to"]].get("name") == "S"]
        self.assertEqual([(e["type"], e["in_cycle"]) for e in sem_waits], [("acquire", False)])
        dot = self.ok("graph")
        self.assertTrue(dot.startswith("digraph pythread {"), dot)
        self.assertTrue(dot.rstrip().endswith("}"))
        self.assertEqual(dot.count("penwidth=2"), 6)
        self.assertIn('label="lock\\nA", color=red', dot)
        # a pattern keeps the objects it names and who holds or waits for them
        g = self.js("graph", "[AB]")
        self.assertEqual(sorted(n["name"] for n in g["nodes"] if n["type"] == "object"),
                         ["A", "B"])
        self.assertEqual(g["cycles"], [])
        if shutil.which("dot"):
            r = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True,
                               timeout=DEADLINE)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("<svg", r.stdout)
        else:
            print("graphviz's dot is not installed: the drawing itself is not checked",
                  file=sys.stderr)
        by.kill()

    def test_top_once_json_and_table(self):
        self.ok("create", "lock", "busy")
        self.spawn("lock", "busy", "--", "sleep", "60")
        poll(lambda: self.obj("busy")["object"]["locked"], "the lock held")
        f = json.loads(self.ok("top", "--once", "--interval", "0.2", "--json"))
        self.assertEqual([o["name"] for o in f["objects"]], ["busy"])
        self.assertEqual(len(f["sessions"]), 1)
        self.assertEqual(f["sessions"][0]["object"], "busy")
        self.assertGreater(f["sessions"][0]["longest_hold"], 0)
        out = self.ok("top", "--once", "--interval", "0.1")
        self.assertIn("OBJECT", out)
        self.assertIn("busy", out)
        self.assertIn("LONGEST HOLD", out)
        self.fails(2, "top", "--json")  # --json needs --once
        self.fails(2, "top", "--interval", "0")

    def run_top_in_terminal(self, typed):
        """pythreadctl top in a 100-column terminal; types typed once a
        frame is drawn; returns its exit status and what it drew."""
        return self.terminal(["top", "--interval", "0.1"], typed,
                             lambda seen: b"LONGEST HOLD" in seen, "top drew a frame",
                             env=dict(self.env, COLUMNS="100"))

    def test_top_in_a_terminal_quits_on_q_and_ctrl_c(self):
        self.ok("create", "lock", "held")
        self.spawn("lock", "held", "--", "sleep", "60")
        poll(lambda: self.obj("held")["object"]["locked"], "the lock held")
        rc, seen = self.run_top_in_terminal(b"q")
        self.assertEqual(rc, 0)
        self.assertIn(b"\033[H\033[J", seen)  # redrawn in place
        self.assertIn(b"held", seen)
        self.assertTrue(all(len(l.rstrip()) <= 100 for l in seen.split(b"\n")
                            if b"\033" not in l), "a line wider than the terminal")
        rc, _ = self.run_top_in_terminal(b"\x03")
        self.assertEqual(rc, 0)

    def test_sem(self):
        a = self.spawn("sem", "S", "--value", "2", "--", "sleep", "60")
        poll(lambda: self.obj("S")["object"]["value"] == 1, "the first permit")
        b = self.spawn("sem", "S", "--", "sleep", "60")
        poll(lambda: self.obj("S")["object"]["value"] == 0, "the second permit")
        self.fails(1, "sem", "S", "--nonblock", "--", "true")
        self.fails(1, "sem", "S", "--wait", "0.05", "--", "true")
        a.kill()
        a.wait()
        # permits of a killed pythreadctl come back (created bounded)
        poll(lambda: self.obj("S")["object"]["value"] == 1, "the permit back")
        self.assertEqual(self.run_ctl("sem", "S", "--", "sh", "-c", "exit 3").returncode, 3)
        b.kill()

    def test_event(self):
        self.fails(1, "event", "is-set", "E")  # is-set does not create
        self.ok("event", "clear", "E")
        r = self.run_ctl("event", "is-set", "E")
        self.assertEqual((r.returncode, r.stdout), (1, "clear\n"))
        self.fails(1, "event", "wait", "--timeout", "0.05", "E")
        w = self.spawn("event", "wait", "E")
        poll(lambda: self.obj("E")["object"]["waiters"] == 1, "the waiter")
        self.assertEqual(self.obj("E")["waiters"][0]["what"], "wait")
        self.ok("event", "set", "E")
        self.assertEqual(w.wait(timeout=DEADLINE), 0)
        self.assertEqual(self.ok("event", "is-set", "E"), "set\n")
        self.ok("event", "wait", "E", "--timeout", "0")
        self.fails(2, "event", "set", "--timeout", "1", "E")

    def test_barrier(self):
        self.fails(1, "barrier", "wait", "B")  # must exist
        self.ok("create", "barrier", "B", "--parties", "2")
        a = self.spawn("barrier", "wait", "B")
        poll(lambda: self.obj("B")["object"]["n_waiting"] == 1, "the first party")
        b = self.spawn("barrier", "wait", "B")
        outs = sorted(p.communicate(timeout=DEADLINE)[0] for p in (a, b))
        self.assertEqual(outs, ["0\n", "1\n"])
        self.assertEqual((a.returncode, b.returncode), (0, 0))
        self.fails(1, "barrier", "wait", "--timeout", "0.05", "B")  # alone: times out, breaks
        self.assertTrue(self.obj("B")["object"]["broken"])
        self.fails(1, "barrier", "wait", "B")
        self.ok("barrier", "reset", "B")
        self.assertFalse(self.obj("B")["object"]["broken"])
        c = self.spawn("barrier", "wait", "B")
        poll(lambda: self.obj("B")["object"]["n_waiting"] == 1, "a party")
        self.ok("barrier", "abort", "B")
        c.wait(timeout=DEADLINE)
        self.assertEqual(c.returncode, 1)

    def test_notify(self):
        self.fails(1, "notify", "C")  # must exist
        self.ok("create", "condition", "C")
        self.ok("notify", "C")
        self.ok("notify", "--all", "C")
        self.ok("notify", "-n", "3", "C")
        self.assertFalse(self.obj("C")["object"]["locked"])

    def test_lock_four_loops_no_interleaving(self):
        out = os.path.join(self.dir, "shared.txt")
        # Each "line" is 5 separate appends; without the lock, lines of
        # different loops would interleave.
        loop = r'''
id=$1; i=0
while [ $i -lt 25 ]; do
  "$CTL" lock shared -- sh -c '
    for k in 1 2 3 4 5; do printf "%s " "$1-$2-$k" >> "$3"; done
    printf "\n" >> "$3"' sh "$id" "$i" "$OUT" || exit 1
  i=$((i + 1))
done
'''
        env = dict(self.env, CTL=CTL, OUT=out)
        procs = [subprocess.Popen(["sh", "-c", loop, "sh", str(n)], env=env)
                 for n in range(4)]
        for p in procs:
            self.assertEqual(p.wait(timeout=240), 0)
        with open(out) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 100)
        seen = set()
        for line in lines:
            words = line.split()
            self.assertEqual(len(words), 5, line)
            heads = {w.rsplit("-", 1)[0] for w in words}
            self.assertEqual(len(heads), 1, "interleaved line: " + line)
            self.assertEqual([w.rsplit("-", 1)[1] for w in words], ["1", "2", "3", "4", "5"])
            seen.add(heads.pop())
        self.assertEqual(len(seen), 100)
        c = self.obj("shared")["object"]["counters"]
        self.assertEqual(c["acquires"], 100)

    # -- deadlocks ------------------------------------------------------
    def holder(self, hold, wait, *extra):
        """A process (PT_DL_HOLDER) holding the Lock hold, ready to wait
        for the Lock wait when told (go), until its stdin closes."""
        p = subprocess.Popen([HOLDER, hold, wait] + list(extra), env=self.env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.bg.append(p)
        self.assertEqual(p.stdout.readline(), "held\n")
        return p

    def go(self, p, wait):
        """Tell p to wait; back once the daemon has its call parked, or
        failed it for the deadlock it closed."""
        def seen():
            return len(self.obj(wait)["waiters"]), self.js("deadlocks")["found"]

        before = seen()
        p.stdin.write("go\n")
        p.stdin.flush()
        poll(lambda: seen() != before, "the wait for %s" % wait)

    def test_deadlocks(self):
        if not HOLDER:
            self.skipTest("PT_DL_HOLDER (the built dl_holder) is not set; ctest sets it")
        self.assertIn("0 deadlocks found", self.ok("deadlocks"))
        self.assertEqual(self.js("deadlocks"), {"deadlocks": [], "found": 0, "more": 0})
        # a ring of three: x -> y -> z -> x
        hs = [self.holder("x", "y"), self.holder("y", "z"), self.holder("z", "x")]
        for p, wait in zip(hs, ("y", "z", "x")):
            self.assertEqual(self.js("deadlocks")["found"], 0)
            self.go(p, wait)
        doc = poll(lambda: (lambda d: d if d["found"] == 1 else None)(self.js("deadlocks")),
                   "the deadlock")
        self.assertEqual(len(doc["deadlocks"]), 1)
        d = doc["deadlocks"][0]
        self.assertEqual((d["id"], d["state"], d["size"], d["ended_at"], d["broken"]),
                         (1, "standing", 3, None, None))
        self.assertEqual([m["pid"] for m in d["members"]], [hs[2].pid, hs[0].pid, hs[1].pid])
        self.assertEqual([(m["holds"]["name"], m["waits"]["name"]) for m in d["members"]],
                         [("z", "x"), ("x", "y"), ("y", "z")])
        self.assertEqual([m["closed_cycle"] for m in d["members"]], [True, False, False])
        m = d["members"][0]
        self.assertEqual((m["process"], m["thread"], m["uid"], m["hidden"], m["via"]),
                         ("dl_holder", hs[2].pid, os.getuid(), False, None))
        self.assertEqual(m["waits"], {"kind": "lock", "name": "x"})
        text = self.ok("deadlocks")
        self.assertIn("deadlock #1: 3 owners, standing since", text)
        self.assertIn("1 deadlock found", text)
        row = [l.split("\t") for l in text.splitlines() if l.startswith("1*")][0]
        self.assertEqual(row[1:], [str(m["session"]), str(hs[2].pid), user_cell(os.getuid()),
                                    str(hs[2].pid), "dl_holder", "Lock 'z'", "Lock 'x'"])
        st = self.js("status")
        self.assertEqual(st["deadlocks"], {"found": 1, "standing": 1})
        # show marks the lock and its parties
        s = self.obj("x")
        self.assertEqual(s["object"]["deadlock"], 1)
        self.assertEqual(s["holders"][0]["deadlock"], 1)
        self.assertEqual(s["holders"][0]["waits"], {"kind": "lock", "name": "y", "owner": True})
        self.assertEqual(s["waiters"][0]["deadlock"], 1)
        shown = self.ok("show", "x")
        self.assertIn("in deadlock #1, standing", shown)
        self.assertIn("hold; waits for Lock 'y' [deadlock #1]", shown)
        # the owners are not shown to a user who may not read the locks
        os.chmod(self.dir, 0o711)
        r = subprocess.run([CTL, "deadlocks", "--json"], env=self.env, capture_output=True,
                           text=True, timeout=DEADLINE, user=41021, group=41021, extra_groups=[])
        self.assertEqual(r.returncode, 0, r.stderr)
        hidden = json.loads(r.stdout)["deadlocks"][0]["members"]
        self.assertEqual([(m["hidden"], m["session"]) for m in hidden], [(True, None)] * 3)
        self.assertEqual([m["waits"]["name"] for m in hidden], ["x", "y", "z"])
        # killed: broken, by the end of the killed one's wait
        hs[0].kill()
        hs[0].wait()
        d = poll(lambda: (lambda d: d if d["state"] == "broken" else None)(
            self.js("deadlocks")["deadlocks"][0]), "the deadlock broken")
        self.assertEqual(d["broken"], {"member": 1, "by": "wait ended"})
        self.assertIsNotNone(d["ended_at"])
        self.assertEqual(self.js("status")["deadlocks"], {"found": 1, "standing": 0})
        self.assertIn("broken", self.ok("deadlocks"))
        # the fail policy: the closing wait gets PT_EDEADLK, listed as failed
        a = self.holder("dl.a", "dl.b")
        b = self.holder("dl.b", "dl.a", "fail")
        self.go(a, "dl.b")
        self.go(b, "dl.a")
        out = b.stdout.readline()
        self.assertTrue(out.startswith("PT_EDEADLK Lock 'dl.a': acquire: deadlock"), out)
        doc = self.js("deadlocks")
        self.assertEqual([(d["id"], d["state"]) for d in doc["deadlocks"]],
                         [(2, "failed"), (1, "broken")])
        self.assertIn("the wait that closed it failed with a deadlock error", self.ok("deadlocks"))
        b.stdin.close()  # b lets go of dl.b: a gets it
        self.assertEqual(a.stdout.readline(), "got\n")

    def test_bash_completion(self):
        if not COMPLETION or not shutil.which("bash"):
            self.skipTest("no bash or completion script")
        self.ok("create", "lock", "alpha")
        self.ok("create", "event", "beta")
        bindir = os.path.join(self.dir, "bin")
        os.mkdir(bindir)
        os.symlink(CTL, os.path.join(bindir, "pythreadctl"))

        def complete(line):
            words = line.split(" ")
            script = ('source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _pythreadctl; '
                      'printf "%%s\\n" "${COMPREPLY[@]}"' %
                      (COMPLETION, " ".join("'%s'" % w for w in words), len(words) - 1))
            env = dict(self.env, PATH=bindir + os.pathsep + self.env.get("PATH", ""))
            r = subprocess.run(["bash", "-c", script], env=env, capture_output=True,
                               text=True, timeout=DEADLINE)
            self.assertEqual(r.returncode, 0, r.stderr)
            return sorted(x for x in r.stdout.split("\n") if x)

        self.assertEqual(complete("pythreadctl st"), ["status"])
        self.assertIn("sessions", complete("pythreadctl s"))
        self.assertEqual(complete("pythreadctl dea"), ["deadlocks"])
        self.assertEqual(complete("pythreadctl show "), ["alpha", "beta"])
        self.assertEqual(complete("pythreadctl event "), ["clear", "is-set", "set", "wait"])
        self.assertEqual(complete("pythreadctl event set b"), ["beta"])
        self.assertIn("--nonblock", complete("pythreadctl lock --n"))
        self.assertEqual(complete("pythreadctl list --kind ev"), ["event"])


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    CTL, DAEMON = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    COMPLETION = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
    unittest.main(argv=[sys.argv[0]] + sys.argv[4:], verbosity=2)
