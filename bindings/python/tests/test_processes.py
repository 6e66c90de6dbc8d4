"""pythread between real processes: each test starts worker processes (this
file run again with --worker) against a pythreadd started for the run.

- a named Lock keeps a counter in a file exact across 4 processes;
- a Condition-based producer/consumer moves every item exactly once;
- a Barrier with an action cycles 4 processes in lockstep, the action
  running in the process of the last party before anyone is released;
- a process killed with SIGKILL while holding a Lock gives it to a waiter;
- repr shows the owner and level of an RLock another process holds, and the
  waiters of every process on a Condition.
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import daemon  # puts the pythread package on sys.path
import pythread

HERE = os.path.abspath(__file__)
TIMEOUT = 60.0  # per worker; the tests end long before unless something hangs

# ---------------------------------------------------------------------------
# Workers: run in their own processes, report on stdout
# ---------------------------------------------------------------------------


def worker_counter(lock_name, path, rounds):
    lock = pythread.Lock(name=lock_name)
    for _ in range(int(rounds)):
        with lock:
            with open(path, "r+") as f:
                n = int(f.read() or 0)
                # Give another process every chance to interleave if the
                # lock did not exclude it.
                os.sched_yield()
                f.seek(0)
                f.write(str(n + 1))
                f.truncate()


def _queue_pop(path):
    with open(path) as f:
        lines = f.read().splitlines()
    if not lines:
        return None
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines[1:]))
    return lines[0]


def _queue_len(path):
    with open(path) as f:
        return len(f.read().splitlines())


def worker_producer(lock_name, cond_name, path, tag, count):
    lock = pythread.Lock(name=lock_name)
    cond = pythread.Condition(lock, name=cond_name)
    for i in range(int(count)):
        with cond:
            with open(path, "a") as f:
                f.write(f"{tag}-{i}\n")
            cond.notify()


def worker_consumer(lock_name, cond_name, path):
    lock = pythread.Lock(name=lock_name)
    cond = pythread.Condition(lock, name=cond_name)
    while True:
        with cond:
            if not cond.wait_for(lambda: _queue_len(path) > 0, timeout=TIMEOUT):
                sys.exit("consumer: nothing arrived in time")
            item = _queue_pop(path)
        if item == "STOP":
            return
        print(item, flush=True)


def worker_barrier(barrier_name, action_path, cycles):
    def action():
        with open(action_path, "a") as f:
            f.write(f"{os.getpid()}\n")

    barrier = pythread.Barrier(4, action, timeout=TIMEOUT, name=barrier_name)
    for cycle in range(int(cycles)):
        index = barrier.wait()
        with open(action_path) as f:
            actions = len(f.read().splitlines())
        # The action of this cycle ran before anyone was released.
        print(f"{cycle} {index} {os.getpid()} {actions}", flush=True)


def worker_holder(lock_name):
    lock = pythread.Lock(name=lock_name)
    lock.acquire()
    print("held", flush=True)
    time.sleep(TIMEOUT)  # killed long before


def worker_waiter(lock_name):
    lock = pythread.Lock(name=lock_name)
    print("waiting", flush=True)
    got = lock.acquire(timeout=TIMEOUT)
    print("acquired" if got else "timed out", flush=True)
    if got:
        lock.release()


def worker_rlock_holder(lock_name, depth):
    lock = pythread.RLock(name=lock_name)
    for _ in range(int(depth)):
        lock.acquire()
    print(threading.get_native_id(), flush=True)
    time.sleep(TIMEOUT)  # killed long before


def worker_cond_waiter(cond_name):
    cond = pythread.Condition(name=cond_name)
    with cond:
        print("waiting", flush=True)
        print("notified" if cond.wait(TIMEOUT) else "timed out", flush=True)


WORKERS = {f.__name__[len("worker_"):]: f for f in
           (worker_counter, worker_producer, worker_consumer, worker_barrier, worker_holder,
            worker_waiter, worker_rlock_holder, worker_cond_waiter)}

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

_daemon = daemon.Daemon()


def setUpModule():
    _daemon.start()


def tearDownModule():
    _daemon.stop()


def start(kind, *args):
    return subprocess.Popen([sys.executable, HERE, "--worker", kind, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class ProcessTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pythread-py-")
        self.names = []
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
        for name in self.names:
            try:
                pythread.unlink(name)
            except FileNotFoundError:
                pass
        self.tmp.cleanup()

    def name(self, what):
        n = f"pytest/{what}.{uuid.uuid4().hex[:12]}"
        self.names.append(n)
        return n

    def path(self, what, content=""):
        p = os.path.join(self.tmp.name, what)
        with open(p, "w") as f:
            f.write(content)
        return p

    def run_workers(self, *specs):
        """Start every (kind, *args), wait for all; return their stdouts."""
        procs = [start(*spec) for spec in specs]
        self.procs.extend(procs)
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, f"worker {p.args[3:]} failed: {err}")
            outs.append(out)
        return outs

    def test_lock_counter(self):
        lock, counter = self.name("counter"), self.path("counter", "0")
        rounds = 250
        self.run_workers(*[("counter", lock, counter, rounds)] * 4)
        with open(counter) as f:
            self.assertEqual(int(f.read()), 4 * rounds)

    def test_condition_producer_consumer(self):
        lock, cond, queue = self.name("pc.lock"), self.name("pc.cond"), self.path("queue")
        count = 100
        consumers = [start("consumer", lock, cond, queue) for _ in range(2)]
        self.procs.extend(consumers)
        self.run_workers(("producer", lock, cond, queue, "a", count),
                         ("producer", lock, cond, queue, "b", count))
        # Both producers are done: one STOP per consumer, behind every item.
        plock = pythread.Lock(name=lock)
        pcond = pythread.Condition(plock, name=cond)
        with pcond:
            with open(queue, "a") as f:
                f.write("STOP\nSTOP\n")
            pcond.notify_all()
        got = []
        for p in consumers:
            out, err = p.communicate(timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, f"consumer failed: {err}")
            got.extend(out.split())
        want = [f"{t}-{i}" for t in "ab" for i in range(count)]
        self.assertEqual(sorted(got), sorted(want))  # each item exactly once

    def test_barrier_action(self):
        barrier, actions = self.name("barrier"), self.path("actions")
        cycles = 5
        outs = self.run_workers(*[("barrier", barrier, actions, cycles)] * 4)
        with open(actions) as f:
            runners = [int(line) for line in f.read().split()]
        self.assertEqual(len(runners), cycles)  # one action per cycle
        rows = [tuple(map(int, line.split())) for out in outs for line in out.splitlines()]
        for cycle in range(cycles):
            this = [r for r in rows if r[0] == cycle]
            self.assertEqual(sorted(r[1] for r in this), [0, 1, 2, 3])
            for _, index, pid, seen in this:
                self.assertGreaterEqual(seen, cycle + 1, "released before the action ran")
                if index == 3:  # the last to arrive, as in threading
                    self.assertEqual(pid, runners[cycle], "action ran in another process")

    def test_sigkill_holder_releases(self):
        lock = self.name("killed")
        holder = start("holder", lock)
        self.procs.append(holder)
        self.assertEqual(holder.stdout.readline().strip(), "held")
        waiter = start("waiter", lock)
        self.procs.append(waiter)
        self.assertEqual(waiter.stdout.readline().strip(), "waiting")
        mine = pythread.Lock(name=lock)
        self.assertFalse(mine.acquire(False))
        # While the holder lives the waiter must stay parked: watch it for a
        # while (this also lets its acquire reach the daemon before the kill).
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            self.assertIsNone(waiter.poll(), "waiter got past a lock that is held")
            time.sleep(0.01)
        t0 = time.monotonic()
        holder.send_signal(signal.SIGKILL)
        out, err = waiter.communicate(timeout=TIMEOUT)
        self.assertEqual(waiter.returncode, 0, err)
        self.assertEqual(out.strip(), "acquired")
        self.assertLess(time.monotonic() - t0, 10.0)
        self.assertEqual(holder.wait(TIMEOUT), -signal.SIGKILL)

    def poll(self, what, fn, want):
        """fn() until it returns want, for up to TIMEOUT; the last value."""
        deadline = time.monotonic() + TIMEOUT
        while (got := fn()) != want and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(got, want, what)
        return got

    def test_rlock_repr_held_by_another_process(self):
        # threading shows owner= and count= of whoever holds an RLock; the
        # owner in another process is its native thread id.
        name = self.name("rlock.repr")
        holder = start("rlock_holder", name, 3)
        self.procs.append(holder)
        tid = int(holder.stdout.readline())
        mine = pythread.RLock(name=name)
        self.assertEqual(repr(mine), f"<locked pythread.RLock object name={name!r} "
                                     f"owner={tid} count=3 at {id(mine):#x}>")
        holder.kill()
        self.poll("the holder's end gives the RLock back", lambda: repr(mine),
                  f"<unlocked pythread.RLock object name={name!r} owner=0 count=0 "
                  f"at {id(mine):#x}>")

    def test_condition_repr_counts_waiters_of_every_process(self):
        name = self.name("cond.repr")
        cond = pythread.Condition(name=name)
        waiters = [start("cond_waiter", name) for _ in range(2)]
        self.procs.extend(waiters)
        for w in waiters:
            self.assertEqual(w.stdout.readline().strip(), "waiting")

        def shown():
            return repr(cond)
        at = f"{id(cond):#x}"
        self.poll("two processes wait", shown,
                  f"<Condition(<unlocked pythread.RLock object owner=0 count=0 at {at}>, 2) "
                  f"name={name!r}>")
        with cond:
            cond.notify()  # the notified one leaves the count at once, as in threading
            self.assertEqual(repr(cond), f"<Condition(<locked pythread.RLock object "
                                         f"owner={threading.get_ident()} count=1 at {at}>, 1) "
                                         f"name={name!r}>")
            cond.notify_all()
        for w in waiters:
            out, err = w.communicate(timeout=TIMEOUT)
            self.assertEqual((w.returncode, out.split()[-1]), (0, "notified"), err)
        self.assertEqual(repr(cond), f"<Condition(<unlocked pythread.RLock object owner=0 "
                                     f"count=0 at {at}>, 0) name={name!r}>")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        WORKERS[sys.argv[2]](*sys.argv[3:])
    else:
        unittest.main()
