#!/usr/bin/env python3
"""pythreadctl lock and sem as flock(1) and etcdctl lock users expect them:
-E/--conflict-exit-code, holding with no COMMAND until a signal, --hold-for
PID with pythreadctl release (and a script killed with SIGKILL), the
PYTHREAD_LOCK_NAME/PYTHREAD_LOCK_TOKEN environment, -c LINE.

Usage: test_lock_cmd.py PYTHREADCTL PYTHREADD [COMPLETION_SCRIPT]

Every test starts its own pythreadd on a socket in a fresh temporary
directory. Waiting is polling with a deadline, never a fixed sleep.
"""
import json
import os
import re
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


def gone(pid):
    """The process has ended (a zombie nobody reaped counts as ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def holders_for(pid):
    """Live --hold-for holder processes holding for pid."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                if f.read().strip() == "pthold-%d" % pid and not gone(int(d)):
                    found.append(int(d))
        except OSError:
            pass
    return found


class LockCmd(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ptlock-")
        self.sock = os.path.join(self.dir, "d.sock")
        self.env = dict(os.environ, PYTHREAD_SOCKET=self.sock, CTL=CTL)
        for v in ("PYTHREAD_LOCK_NAME", "PYTHREAD_LOCK_TOKEN"):
            self.env.pop(v, None)
        self.daemon = start_pythreadd(DAEMON, self.sock)
        self.bg = []

    def tearDown(self):
        kill_groups(self.bg)
        log = stop_pythreadd(self.daemon)
        self.assertNotIn("Sanitizer", log)
        self.assertNotIn("runtime error", log)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers -------------------------------------------------------
    def run_ctl(self, *args, timeout=DEADLINE):
        return subprocess.run([CTL] + list(args), env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def status(self, code, *args):
        r = self.run_ctl(*args)
        self.assertEqual(r.returncode, code, "pythreadctl %s: out=%r err=%r" % (args, r.stdout,
                                                                                r.stderr))
        return r

    def ok(self, *args):
        r = self.status(0, *args)
        self.assertEqual(r.stderr, "")
        return r.stdout

    def one_error(self, r):
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, "one stderr line expected, got %r" % r.stderr)
        self.assertTrue(lines[0].startswith("pythreadctl: "), lines[0])
        return lines[0]

    def spawn(self, *args, **kw):
        p = subprocess.Popen(list(args), env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)
        self.bg.append(p)
        return p

    def show(self, name):
        return json.loads(self.ok("show", "--json", name))

    def locked(self, name):
        return self.show(name)["object"]["locked"]

    def readline(self, p, what):
        """One line of p's stdout within the deadline."""
        ready, _, _ = select.select([p.stdout], [], [], DEADLINE)
        self.assertTrue(ready, "no line from %s" % what)
        return p.stdout.readline()

    def hold(self, name="L"):
        """Another pythreadctl holding name, until the test ends."""
        p = self.spawn(CTL, "lock", name, "--", "sleep", "600")
        poll(lambda: self.locked(name), "the holder")
        return p

    def sleeper(self):
        """A process a hold can be for; ended by the test."""
        p = subprocess.Popen(["sleep", "600"], start_new_session=True)
        self.bg.append(p)
        return p

    # -- -E / --conflict-exit-code --------------------------------------
    def test_conflict_exit_code(self):
        marker = os.path.join(self.dir, "ran")
        # default: 1, as before -E and as flock(1)
        self.hold()
        r = self.status(1, "lock", "L", "-n", "--", "touch", marker)
        self.assertIn("lock 'L': held by another; not running touch", self.one_error(r))
        for opt in (["-E", "75"], ["--conflict-exit-code", "75"], ["--conflict-exit-code=75"]):
            r = self.status(75, "lock", "L", "-n", *opt, "--", "touch", marker)
            self.one_error(r)
        t0 = time.monotonic()
        r = self.status(75, "lock", "L", "-w", "0.2", "-E", "75", "--", "touch", marker)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        self.assertIn("not acquired within 0.2 seconds", self.one_error(r))
        self.status(75, "lock", "L", "-n", "-E", "75", "-c", "touch " + marker)
        self.status(75, "lock", "L", "-n", "-E", "75")        # holding with no COMMAND
        self.assertFalse(os.path.exists(marker))
        # the command's own status stays its own: 1 is not "busy"
        r = self.status(1, "lock", "M", "-E", "75", "--", "sh", "-c", "exit 1")
        self.assertEqual(r.stderr, "")
        self.status(0, "lock", "M", "-E", "75", "--", "true")
        # -E 0 is allowed (busy is fine); sem takes it too
        self.status(0, "lock", "L", "-n", "-E", "0", "--", "touch", marker)
        self.ok("create", "semaphore", "S", "--value", "0")
        self.status(9, "sem", "S", "-n", "-E", "9", "--", "true")
        self.assertFalse(os.path.exists(marker))
        for bad in ("256", "-1", "x", ""):
            r = self.status(2, "lock", "L", "-E", bad, "--", "true")
            self.assertIn("conflict-exit-code", self.one_error(r))

    # -- holding with no COMMAND ----------------------------------------
    def test_hold_until_signal(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            p = self.spawn(CTL, "lock", "L")
            line = self.readline(p, "the holding pythreadctl")
            m = re.fullmatch(r"holding lock L with token (\d+) until SIGINT or SIGTERM\n", line)
            self.assertTrue(m, line)
            shown = self.show("L")
            self.assertTrue(shown["object"]["locked"])
            self.assertEqual(int(m.group(1)), shown["object"]["token"])
            self.assertEqual([h["pid"] for h in shown["holders"]], [p.pid])
            self.status(1, "lock", "L", "-n", "--", "true")
            p.send_signal(sig)
            self.assertEqual(p.wait(timeout=DEADLINE), 0, p.stderr.read())
            self.assertEqual(p.stdout.read(), "")   # the line came once
            self.assertEqual(p.stderr.read(), "")
            self.assertFalse(self.locked("L"))

    def test_hold_until_signal_json_rlock_sem(self):
        p = self.spawn(CTL, "lock", "R", "--rlock", "--json")
        doc = json.loads(self.readline(p, "the holder's JSON"))
        self.assertEqual(doc["name"], "R")
        self.assertEqual(doc["kind"], "rlock")
        self.assertEqual(doc["pid"], p.pid)
        self.assertEqual(doc["token"], self.show("R")["object"]["token"])
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=DEADLINE), 0)
        self.assertFalse(self.locked("R"))
        s = self.spawn(CTL, "sem", "S", "--value", "2")
        self.assertEqual(self.readline(s, "the sem holder"),
                         "holding a permit of semaphore S until SIGINT or SIGTERM\n")
        self.assertEqual(self.show("S")["object"]["value"], 1)
        s.send_signal(signal.SIGINT)
        self.assertEqual(s.wait(timeout=DEADLINE), 0)
        self.assertEqual(self.show("S")["object"]["value"], 2)

    def test_hold_killed_gives_lock_back(self):
        p = self.spawn(CTL, "lock", "L")
        self.readline(p, "the holder")
        p.send_signal(signal.SIGKILL)
        p.wait()
        poll(lambda: not self.locked("L"), "the lock to be free")

    # -- the environment and -c ----------------------------------------
    def test_env_name_and_token(self):
        out = self.ok("lock", "L", "--", "sh", "-c",
                      'echo "$PYTHREAD_LOCK_NAME $PYTHREAD_LOCK_TOKEN"')
        name, token = out.split()
        self.assertEqual(name, "L")
        self.assertEqual(int(token), self.show("L")["object"]["token"])
        # every holding gets a new, larger token; an RLock's too
        out2 = self.ok("lock", "L", "-c", 'echo "$PYTHREAD_LOCK_TOKEN"')
        self.assertGreater(int(out2), int(token))
        out = self.ok("lock", "R", "--rlock", "-c", 'echo "$PYTHREAD_LOCK_NAME $PYTHREAD_LOCK_TOKEN"')
        self.assertEqual(out.split(), ["R", str(self.show("R")["object"]["token"])])
        # a permit has no token: sem sets neither
        out = self.ok("sem", "S", "-c", 'echo "${PYTHREAD_LOCK_NAME-unset}"')
        self.assertEqual(out, "unset\n")

    def test_c_runs_through_sh(self):
        marker = os.path.join(self.dir, "m")
        r = self.status(3, "lock", "L", "-c",
                        'for w in a b; do echo $w; done | tr ab xy > "%s"; '
                        'test "$(cat "%s")" = "x\ny" && exit 3' % (marker, marker))
        self.assertEqual(r.stderr, "")
        self.assertEqual(self.ok("lock", "L", "--command", "echo $((6 * 7))"), "42\n")
        # the -c line holds the lock while it runs
        out = self.ok("lock", "L", "-c", '"$CTL" show --json L')
        self.assertTrue(json.loads(out)["object"]["locked"])
        self.assertFalse(self.locked("L"))
        self.assertEqual(self.ok("sem", "S", "-c", "echo in"), "in\n")
        r = self.status(2, "lock", "L", "-c", "true", "--", "true")
        self.assertIn("exclude each other", self.one_error(r))
        self.status(2, "lock", "L", "-c")

    # -- --hold-for PID and release ------------------------------------
    def script(self, body):
        path = os.path.join(self.dir, "script.sh")
        with open(path, "w") as f:
            f.write(body)
        return path

    def test_hold_for_script_and_release(self):
        path = self.script(
            "trap '' TERM INT HUP\n"  # inherited as ignored: release must still work
            'token=$("$CTL" lock --hold-for $$ L) || exit 9\n'
            'echo "token $token"\n'
            '"$CTL" lock -n L -- true; echo "busy $?"\n'
            '"$CTL" lock --hold-for $$ -w 30 L; echo "twice $?"\n'
            '"$CTL" release L; echo "release $?"\n'
            '"$CTL" lock -n L -- true; echo "free $?"\n'
            '"$CTL" release L 2>/dev/null; echo "again $?"\n')
        r = subprocess.run(["sh", path], env=self.env, capture_output=True, text=True,
                           timeout=DEADLINE)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^token \d+$")
        self.assertEqual(lines[1:], ["busy 1", "twice 1", "release 0", "free 0", "again 1"])
        self.assertIn("lock 'L': already held for process", r.stderr)
        self.assertIn("lock 'L': held by another", r.stderr)
        self.assertLess(int(lines[0].split()[1]), self.show("L")["object"]["token"])

    def test_hold_for_ends_with_the_process(self):
        s = self.sleeper()
        t0 = time.monotonic()
        # $(...) must end once held: the holder keeps none of the pipes
        r = self.status(0, "lock", "--hold-for", str(s.pid), "L")
        self.assertLess(time.monotonic() - t0, DEADLINE / 2)
        self.assertEqual(r.stderr, "")
        shown = self.show("L")
        self.assertEqual(int(r.stdout), shown["object"]["token"])
        holder = shown["holders"][0]["pid"]
        self.assertEqual(holders_for(s.pid), [holder])
        self.status(1, "lock", "L", "-n", "--", "true")
        s.kill()
        s.wait()
        poll(lambda: not self.locked("L"), "the lock to be free once the process ended")
        poll(lambda: gone(holder), "the holder to end")

    def test_hold_for_script_killed_with_sigkill(self):
        ready = os.path.join(self.dir, "ready")
        # The script's own child lives on: the hold is the script's alone.
        path = self.script(
            'token=$("$CTL" lock --hold-for $$ L) || exit 9\n'
            'sleep 600 &\n'
            'echo "$token $!" > "$1.new"; mv "$1.new" "$1"\n'
            'wait\n')
        p = self.spawn("sh", path, ready)
        poll(lambda: os.path.exists(ready), "the script to hold the lock")
        with open(ready) as f:
            token, child = map(int, f.read().split())
        self.assertEqual(self.show("L")["object"]["token"], token)
        self.assertEqual(len(holders_for(p.pid)), 1)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        self.assertFalse(gone(child))
        poll(lambda: not self.locked("L"), "the lock to be free after SIGKILL of the script")
        poll(lambda: not holders_for(p.pid), "the holder to end")
        self.ok("lock", "L", "-n", "--", "true")
        os.kill(child, signal.SIGKILL)

    def test_hold_for_waits_and_conflicts(self):
        s = self.sleeper()
        self.hold()
        r = self.status(7, "lock", "--hold-for", str(s.pid), "-n", "-E", "7", "L")
        self.assertIn("lock 'L': held by another", self.one_error(r))
        self.assertEqual(r.stdout, "")
        r = self.status(7, "lock", "--hold-for", str(s.pid), "-w", "0.1", "-E", "7", "L")
        self.assertIn("not acquired within 0.1 seconds", self.one_error(r))
        poll(lambda: not holders_for(s.pid), "no holder left after a conflict")
        # a pythreadctl killed while it waits takes its waiting holder along
        w = self.spawn(CTL, "lock", "--hold-for", str(s.pid), "L")
        poll(lambda: holders_for(s.pid), "the holder to wait")
        poll(lambda: len(self.show("L")["waiters"]) == 1, "the holder's wait")
        w.kill()
        w.wait()
        poll(lambda: not holders_for(s.pid), "the waiting holder to end with it")
        poll(lambda: not self.show("L")["waiters"], "its wait to be dropped")

    def test_hold_for_json_and_sem(self):
        s = self.sleeper()
        doc = json.loads(self.ok("lock", "--hold-for", str(s.pid), "--json", "L"))
        self.assertEqual(doc["name"], "L")
        self.assertEqual(doc["token"], self.show("L")["object"]["token"])
        self.assertEqual(holders_for(s.pid), [doc["pid"]])
        self.assertEqual(self.ok("sem", "--hold-for", str(s.pid), "S", "--value", "3"), "")
        self.assertEqual(self.show("S")["object"]["value"], 2)
        s.kill()
        s.wait()
        poll(lambda: self.show("S")["object"]["value"] == 3, "the permit back")
        poll(lambda: not self.locked("L"), "the lock free")

    def test_release_only_ends_own_holds(self):
        s = self.sleeper()
        self.ok("lock", "--hold-for", str(s.pid), "L")
        # not held for this process or a parent of it: another script's
        r = self.status(1, "release", "L")
        line = self.one_error(r)
        self.assertIn("release 'L': held for process %d" % s.pid, line)
        self.assertIn("--force", line)
        self.assertTrue(self.locked("L"))
        self.ok("release", "--force", "L")
        self.assertFalse(self.locked("L"))
        self.assertEqual(holders_for(s.pid), [])
        r = self.status(1, "release", "L")
        self.assertIn("release 'L': not held", self.one_error(r))
        # a lock held some other way is not release's to end
        self.hold("M")
        r = self.status(1, "release", "M")
        self.assertIn("not by a holder that 'pythreadctl lock --hold-for' started",
                      self.one_error(r))
        self.assertTrue(self.locked("M"))
        r = self.status(1, "release", "nosuch")
        self.assertIn("release 'nosuch'", self.one_error(r))

    def test_cluster_needs_a_daemon_in_a_cluster(self):
        # This daemon runs without --etcd: --cluster on every command that
        # opens an object fails with one line naming the object and what
        # to do; COMMAND never runs, and the host's L is left alone.
        ran = os.path.join(self.dir, "ran")
        for args, head in ((["lock", "--cluster", "L", "--", "touch", ran], "lock 'L'"),
                           (["lock", "L", "--cluster", "--hold-for", str(os.getpid())],
                            "lock 'L'"),
                           (["sem", "--cluster", "S", "-c", "touch " + ran], "sem 'S'"),
                           (["create", "event", "--cluster", "E"], "create 'E'"),
                           (["event", "set", "--cluster", "E"], "event 'E'"),
                           (["barrier", "wait", "--cluster", "B"], "barrier 'B'")):
            line = self.one_error(self.status(1, *args))
            self.assertIn(head + ": a cluster object needs a daemon in a cluster", line)
            self.assertIn("--etcd ENDPOINTS", line)
        self.assertFalse(os.path.exists(ran))
        self.assertEqual(self.ok("list", "--no-legend"), "")
        self.assertIn("--cluster", self.ok("lock", "--help"))

    def test_usage(self):
        for args in (["lock", "L", "--hold-for", "1", "--", "true"],
                     ["lock", "L", "--hold-for", "0"],
                     ["lock", "L", "--hold-for", "x"],
                     ["lock", "L", "--"],
                     ["lock", "L", "--lost-signal", "KILL"],
                     ["release"], ["release", "a", "b"]):
            self.one_error(self.status(2, *args))
        r = self.status(1, "lock", "L", "--hold-for", "999999999")
        self.assertIn("no such process", self.one_error(r))

    def test_help_and_completion(self):
        out = self.ok("lock", "--help")
        for word in ("--conflict-exit-code", "-c, --command", "--hold-for PID",
                     "PYTHREAD_LOCK_TOKEN", "pythreadctl release", "until SIGINT"):
            self.assertIn(word, out)
        self.assertIn("--force", self.ok("release", "--help"))
        if not COMPLETION or not shutil.which("bash"):
            return
        bindir = os.path.join(self.dir, "bin")
        os.mkdir(bindir)
        os.symlink(CTL, os.path.join(bindir, "pythreadctl"))
        self.ok("create", "lock", "alpha")

        def complete(*words):
            script = ('source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _pythreadctl; '
                      'printf "%%s\\n" "${COMPREPLY[@]}"' %
                      (COMPLETION, " ".join("'%s'" % w for w in words), len(words) - 1))
            env = dict(self.env, PATH=bindir + os.pathsep + self.env.get("PATH", ""))
            r = subprocess.run(["bash", "-c", script], env=env, capture_output=True,
                               text=True, timeout=DEADLINE)
            self.assertEqual(r.returncode, 0, r.stderr)
            return sorted(x for x in r.stdout.split("\n") if x)

        self.assertEqual(complete("pythreadctl", "lock", "--con"), ["--conflict-exit-code"])
        self.assertEqual(complete("pythreadctl", "lock", "--hold"), ["--hold-for"])
        self.assertEqual(complete("pythreadctl", "rel"), ["release"])
        self.assertEqual(complete("pythreadctl", "release", "al"), ["alpha"])
        self.assertEqual(complete("pythreadctl", "lock", "-n", "al"), ["alpha"])
        self.assertEqual(complete("pythreadctl", "lock", "-E", ""), [])
        self.assertEqual(complete("pythreadctl", "lock", "--clu"), ["--cluster"])
        self.assertEqual(complete("pythreadctl", "event", "wait", "--clu"), ["--cluster"])


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    CTL, DAEMON = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    COMPLETION = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else None
    unittest.main(argv=[sys.argv[0]] + sys.argv[4:], verbosity=2)
