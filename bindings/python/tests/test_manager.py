"""pythread.Manager() as a drop-in for multiprocessing.Manager(), and
pythread objects passed between processes by pickle.

- one program written against a manager (Pool workers counting under a
  Lock, a Barrier with an action across Processes, an Event the parent
  sets, a Condition producer/consumer, a Semaphore bounding Pool workers, a
  ProcessPoolExecutor given a Lock) runs under multiprocessing.Manager() and
  pythread.Manager(), and the two give the same results;
- every kind round-trips through pickle with protocols 0 to 5 to the same
  object in the daemon, and objects cross the spawn, fork and forkserver
  start methods, by pickle and (fork) by inheritance;
- an anonymous object ends with its last handle in any process, as the
  daemon's inspection shows; pickling and unpickling with the daemon gone
  fail saying which object and what to do;
- the manager's life cycle and signatures follow SyncManager's.
"""

import concurrent.futures
import ctypes
import functools
import inspect
import multiprocessing
import os
import pickle
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import daemon  # puts the pythread package on sys.path
import pythread
from pythread import _lib, _sync

TIMEOUT = 60.0  # per wait; the tests end long before unless something hangs

# ---------------------------------------------------------------------------
# The program: run in worker processes, so at the top level of this module
# (spawn and forkserver workers import it by name).
# ---------------------------------------------------------------------------


def _read_int(path):
    with open(path) as f:
        return int(f.read() or 0)


def _write_int(path, n):
    with open(path, "w") as f:
        f.write(str(n))


def _append(path, line):
    with open(path, "a") as f:
        f.write(f"{line}\n")


def _lines(path):
    with open(path) as f:
        return f.read().splitlines()


def count_task(lock, path, rounds):
    """Add rounds to the number in path, one at a time, under lock."""
    for _ in range(rounds):
        with lock:
            n = _read_int(path)
            os.sched_yield()  # every chance to interleave, were the lock not held
            _write_int(path, n + 1)
    return os.getpid()


def barrier_action(path):
    _append(path, os.getpid())


def barrier_party(barrier, actions, out, cycles):
    for cycle in range(cycles):
        index = barrier.wait()
        # The cycle's action ran before anyone was released.
        _append(out, f"{cycle} {index} {os.getpid()} {len(_lines(actions))}")


def event_waiter(event, ready, out):
    before = event.is_set()
    ready.put(os.getpid())
    got = event.wait(TIMEOUT)
    _append(out, f"{before} {got}")


def producer(cond, queue, tag, count):
    for i in range(count):
        with cond:
            _append(queue, f"{tag}-{i}")
            cond.notify()


def _pop(path):
    lines = _lines(path)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines[1:]))
    return lines[0]


def consumer(cond, queue, out):
    while True:
        with cond:
            if not cond.wait_for(lambda: len(_lines(queue)) > 0, timeout=TIMEOUT):
                raise RuntimeError("consumer: nothing arrived in time")
            item = _pop(queue)
        if item == "STOP":
            return
        _append(out, item)


def bounded_task(sem, lock, inside, peak):
    """Count the workers inside sem at once; keep the highest count seen."""
    with sem:
        with lock:
            n = _read_int(inside) + 1
            _write_int(inside, n)
            _write_int(peak, max(n, _read_int(peak)))
        time.sleep(0.02)
        with lock:
            _write_int(inside, _read_int(inside) - 1)


def _run_processes(ctx, target, argss):
    procs = [ctx.Process(target=target, args=args) for args in argss]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT)
    return [p.exitcode for p in procs]


def program(manager, ctx, tmp):
    """The multiprocessing program both managers run: what it observed."""
    def path(name, content=""):
        p = os.path.join(tmp, name)
        with open(p, "w") as f:
            f.write(content)
        return p

    results = {}

    # Pool workers counting under a Lock.
    lock, counter = manager.Lock(), path("counter", "0")
    with ctx.Pool(3) as pool:
        pool.starmap(count_task, [(lock, counter, 20)] * 6)
    results["pool counter"] = _read_int(counter)

    # A Barrier with an action across Processes, reused for several cycles.
    parties, cycles = 3, 3
    actions, out = path("actions"), path("barrier")
    barrier = manager.Barrier(parties, functools.partial(barrier_action, actions), TIMEOUT)
    results["barrier exits"] = _run_processes(ctx, barrier_party,
                                              [(barrier, actions, out, cycles)] * parties)
    rows = [tuple(map(int, line.split())) for line in _lines(out)]
    results["barrier actions"] = len(_lines(actions))
    results["barrier indices"] = [sorted(r[1] for r in rows if r[0] == c) for c in range(cycles)]
    results["barrier action before release"] = all(seen >= c + 1 for c, _, _, seen in rows)
    results["barrier parties"] = barrier.parties

    # An Event the parent sets once every waiter is ready.
    event, ready, out = manager.Event(), ctx.Queue(), path("event")
    procs = [ctx.Process(target=event_waiter, args=(event, ready, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=TIMEOUT)
    event.set()
    for p in procs:
        p.join(TIMEOUT)
    results["event exits"] = [p.exitcode for p in procs]
    results["event seen"] = sorted(_lines(out))

    # A Condition producer/consumer: every item consumed exactly once.
    cond = manager.Condition(manager.Lock())
    queue, out = path("queue"), path("consumed")
    consumers = [ctx.Process(target=consumer, args=(cond, queue, out)) for _ in range(2)]
    for p in consumers:
        p.start()
    results["producer exits"] = _run_processes(ctx, producer,
                                               [(cond, queue, tag, 15) for tag in "ab"])
    with cond:
        _append(queue, "STOP")
        _append(queue, "STOP")
        cond.notify_all()
    for p in consumers:
        p.join(TIMEOUT)
    results["consumer exits"] = [p.exitcode for p in consumers]
    results["consumed"] = sorted(_lines(out))

    # A Semaphore bounding how many Pool workers are inside at once.
    sem, lock = manager.Semaphore(2), manager.Lock()
    inside, peak = path("inside", "0"), path("peak", "0")
    with ctx.Pool(4) as pool:
        pool.starmap(bounded_task, [(sem, lock, inside, peak)] * 8)
    results["semaphore peak within bound"] = 1 <= _read_int(peak) <= 2
    results["semaphore inside after"] = _read_int(inside)

    # A ProcessPoolExecutor given a Lock as an argument.
    lock, counter = manager.Lock(), path("executor", "0")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        list(ex.map(count_task, [lock] * 4, [counter] * 4, [10] * 4))
    results["executor counter"] = _read_int(counter)
    return results


# ---------------------------------------------------------------------------
# Workers of the other tests
# ---------------------------------------------------------------------------


def use_every_kind(objs, path):
    """Use each object as its kind allows; note what was seen in path."""
    lock, rlock, cond, sem, bsem, event, barrier = objs
    with lock:
        pass
    with rlock:
        with rlock:
            pass
    with cond:
        cond.notify_all()
    sem.acquire()  # taken here, released by the parent: not owned
    with bsem:
        pass
    index = barrier.wait()
    _append(path, f"{os.getpid()} {event.is_set()} {index} {sem._value}")
    return index


def hold_and_report(obj, conn):
    """Keep a handle on obj until told to go."""
    conn.send(obj._daemon_name)
    conn.recv()


def rlock_after_fork(rlock, tried, out):
    """A child forked while the parent held rlock owns nothing, and counts
    no level of the parent's."""
    free = rlock.acquire(blocking=False)
    tried.set()
    got = rlock.acquire(timeout=TIMEOUT)  # once the parent releases it
    cond = pythread.Condition(rlock)
    with cond:
        cond.wait(0.01)  # gives back both levels and takes them again
        level = rlock._recursion_count()
    rlock.release()
    _append(out, f"{free} {got} {level} {rlock._is_owned()}")


def use_after_parent_dropped(event, conn, out):
    """Use an inherited event only after the parent closed its handle."""
    conn.recv()
    try:
        _append(out, f"set {event.is_set()}")
    except FileNotFoundError as exc:
        _append(out, f"FileNotFoundError: {exc}")


def unpickle_in_child(data, out):
    obj = pickle.loads(data)
    with obj:
        _append(out, obj._client.socket)


def fail_unpickle(data, out):
    try:
        pickle.loads(data)
    except Exception as exc:  # noqa: B902 - reported to the parent
        _append(out, f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

_daemon = daemon.Daemon()


def setUpModule():
    _daemon.start()


def tearDownModule():
    _daemon.stop()


def show(name, client=None):
    """The daemon's refs (handles) of the object of that daemon name, or
    None when it has none (the object ended)."""
    client = client or _sync._get_client()
    out = ctypes.POINTER(_lib.InspectDetail)()
    if _lib.lib.pt_inspect_show(client._h, name, ctypes.byref(out)) < 0:
        return None
    try:
        return out.contents.object.refs
    finally:
        _lib.lib.pt_inspect_detail_free(out)


def poll(fn, want):
    deadline = time.monotonic() + TIMEOUT
    while (got := fn()) != want and time.monotonic() < deadline:
        time.sleep(0.01)
    return got


class ManagerTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pythread-py-")
        self.names = []

    def tearDown(self):
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

    def subdir(self, what):
        p = os.path.join(self.tmp.name, what)
        os.mkdir(p)
        return p


class SameProgramTests(ManagerTestCase):
    def test_same_results_under_both_managers(self):
        # spawn: every object reaches the workers by pickle alone.
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as m:
            reference = program(m, ctx, self.subdir("multiprocessing"))
        with pythread.Manager() as m:
            got = program(m, ctx, self.subdir("pythread"))
        self.assertEqual(got, reference)
        # And what both observed is what the program means.
        self.assertEqual(reference["pool counter"], 6 * 20)
        self.assertEqual(reference["barrier actions"], 3)
        self.assertEqual(reference["barrier indices"], [[0, 1, 2]] * 3)
        self.assertTrue(reference["barrier action before release"])
        self.assertEqual(reference["event seen"], ["False True"] * 3)
        self.assertEqual(len(reference["consumed"]), 30)
        self.assertTrue(reference["semaphore peak within bound"])
        self.assertEqual(reference["executor counter"], 40)
        for key in ("barrier exits", "event exits", "producer exits", "consumer exits"):
            self.assertEqual(reference[key], [0] * len(reference[key]), key)


class PickleTests(ManagerTestCase):
    def kinds(self, name=None):
        """One object of each kind (named when name is given), with a way
        to see that a copy is the same object in the daemon."""
        def n(what):
            return None if name is None else self.name(f"{name}.{what}")
        lock = pythread.Lock(name=n("lock"))
        rlock = pythread.RLock(name=n("rlock"))
        return {
            "Lock": lock,
            "RLock": rlock,
            "Condition": pythread.Condition(name=n("cond")),
            "Condition(Lock)": pythread.Condition(lock, name=n("cond.lock")),
            "Condition(RLock)": pythread.Condition(rlock, name=n("cond.rlock")),
            "Semaphore": pythread.Semaphore(3, name=n("sem")),
            "BoundedSemaphore": pythread.BoundedSemaphore(2, name=n("bsem")),
            "Event": pythread.Event(name=n("event")),
            "Barrier": pythread.Barrier(2, timeout=5.0, name=n("barrier")),
        }

    def assert_same_object(self, what, a, b):
        self.assertIs(type(b), type(a), what)
        self.assertEqual(b._daemon_name, a._daemon_name, what)
        self.assertEqual(b.name, a.name, what)
        self.assertIsNot(b._h, a._h, what)  # a handle of its own
        if isinstance(a, pythread.Condition):
            self.assertEqual(b._lock is None, a._lock is None, what)
            if a._lock is not None:
                self.assertEqual(b._lock._daemon_name, a._lock._daemon_name, what)
            with a:
                self.assertTrue(b._is_owned() or isinstance(a._lock, pythread.Lock), what)
        elif isinstance(a, pythread.Semaphore):
            a.acquire()
            self.assertEqual(b._value, a._value, what)  # the value was not reset
            a.release()
            self.assertEqual(b._initial_value, a._initial_value, what)
        elif isinstance(a, pythread.Event):
            a.set()
            self.assertTrue(b.is_set(), what)
            a.clear()
        elif isinstance(a, pythread.Barrier):
            self.assertEqual(b.parties, a.parties, what)
            self.assertEqual(b._timeout, a._timeout, what)
            got = []
            t = threading.Thread(target=lambda: got.append(a.wait()))
            t.start()
            got.append(b.wait())
            t.join(TIMEOUT)
            self.assertEqual(sorted(got), [0, 1], what)
        else:
            with a:
                self.assertTrue(b.locked(), what)
            self.assertFalse(b.locked(), what)

    def test_every_kind_every_protocol(self):
        for naming in (None, "named"):
            for kind, obj in self.kinds(naming).items():
                for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
                    what = f"{kind} {naming or 'anonymous'} protocol {protocol}"
                    with self.subTest(what):
                        copy = pickle.loads(pickle.dumps(obj, protocol))
                        self.assert_same_object(what, obj, copy)

    def test_one_pickle_shares_the_lock(self):
        lock = pythread.Lock()
        cond = pythread.Condition(lock)
        lock2, cond2 = pickle.loads(pickle.dumps((lock, cond)))
        self.assertIs(cond2._lock, lock2)

    def test_rlock_copy_in_same_process_shares_level(self):
        rlock = pythread.RLock()
        copy = pickle.loads(pickle.dumps(rlock))
        with rlock:
            self.assertTrue(copy._is_owned())  # one owner in the daemon
            self.assertEqual(copy._recursion_count(), 1)

    def test_unpickle_opens_never_creates(self):
        name = self.name("gone")
        sem = pythread.Semaphore(2, name=name)
        data = pickle.dumps(sem)
        pythread.unlink(name)  # sem's handle works on; the name is gone
        with self.assertRaises(FileNotFoundError) as cm:
            pickle.loads(data)
        msg = str(cm.exception)
        self.assertIn(f"cannot unpickle Semaphore {name!r}", msg)
        self.assertIn("create it again by name", msg)
        with self.assertRaises(FileNotFoundError):
            pythread.unlink(name)  # and nothing was made under the name
        with self.assertRaisesRegex(FileNotFoundError, f"cannot pickle Semaphore {name!r}: .*"
                                                       "has no object of that name"):
            pickle.dumps(sem)

    def test_closed_handle(self):
        lock = pythread.Lock()
        lock.close()
        with self.assertRaisesRegex(ValueError, "cannot pickle Lock .*handle is closed"):
            pickle.dumps(lock)

    def test_barrier_action_travels(self):
        actions = self.path("actions")
        barrier = pythread.Barrier(2, functools.partial(barrier_action, actions))
        copy = pickle.loads(pickle.dumps(barrier))
        self.assertEqual(copy._action.action.args, (actions,))
        t = threading.Thread(target=barrier.wait)
        t.start()
        copy.wait()
        t.join(TIMEOUT)
        self.assertEqual(_lines(actions), [str(os.getpid())])  # one action per cycle

    def test_barrier_action_that_cannot_be_pickled(self):
        barrier = pythread.Barrier(2, lambda: None, name=self.name("lambda"))
        with self.assertRaises(pickle.PicklingError) as cm:
            pickle.dumps(barrier)
        msg = str(cm.exception)
        self.assertIn(f"cannot pickle Barrier {barrier.name!r}", msg)
        self.assertIn("every process needs it", msg)

    def test_local_condition_refuses(self):
        with self.assertRaisesRegex(TypeError, "Condition over a lock"):
            pickle.dumps(pythread.Condition(threading.Lock()))


class StartMethodTests(ManagerTestCase):
    def every_kind(self):
        return (pythread.Lock(), pythread.RLock(), pythread.Condition(), pythread.Semaphore(4),
                pythread.BoundedSemaphore(1), pythread.Event(),
                pythread.Barrier(2, timeout=TIMEOUT))

    def check_start_method(self, method):
        ctx = multiprocessing.get_context(method)
        objs = self.every_kind()
        objs[5].set()
        out = self.path("seen")
        # By pickle: to Pool workers (forked ones too) ...
        with ctx.Pool(2) as pool:
            indices = pool.starmap(use_every_kind, [(objs, out)] * 2)
        self.assertEqual(sorted(indices), [0, 1])
        # ... and to a Process, whose arguments fork does not pickle.
        procs = [ctx.Process(target=use_every_kind, args=(objs, out)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(TIMEOUT)
        self.assertEqual([p.exitcode for p in procs], [0, 0])
        seen = [line.split() for line in _lines(out)]
        self.assertEqual(len(seen), 4)
        self.assertTrue(all(event == "True" for _, event, _, _ in seen))
        # Each worker took a permit of the plain semaphore and kept it.
        self.assertEqual(objs[3]._value, 0)
        self.assertEqual(objs[4]._value, 1)

    def test_spawn(self):
        self.check_start_method("spawn")

    def test_fork(self):
        self.check_start_method("fork")

    def test_forkserver(self):
        self.check_start_method("forkserver")

    def test_fork_while_holding_an_rlock(self):
        ctx = multiprocessing.get_context("fork")
        rlock, tried, out = pythread.RLock(), pythread.Event(), self.path("rlock")
        rlock.acquire()
        p = ctx.Process(target=rlock_after_fork, args=(rlock, tried, out))
        p.start()
        self.assertTrue(tried.wait(TIMEOUT))
        rlock.release()  # the child's blocking acquire gets it now
        p.join(TIMEOUT)
        self.assertEqual(p.exitcode, 0)
        self.assertEqual(_lines(out), ["False True 2 False"])


    def test_fork_inherits_only_the_parent_s_object(self):
        # The library opens an inherited handle again in the child's own
        # session; an anonymous object that ended meanwhile is an error
        # there, never a new object under its name (an Event unset).
        ctx = multiprocessing.get_context("fork")
        kept, dropped, out = pythread.Event(), pythread.Event(), self.path("events")
        kept.set()
        dropped.set()
        parent, child = ctx.Pipe()
        procs = [ctx.Process(target=use_after_parent_dropped, args=(ev, child, out))
                 for ev in (kept, dropped)]
        for p in procs:
            p.start()
        name = dropped._daemon_name.decode()
        dropped.close()
        for _ in procs:
            parent.send("go")
        for p in procs:
            p.join(TIMEOUT)
        self.assertEqual([p.exitcode for p in procs], [0, 0])
        lines = sorted(_lines(out))
        self.assertEqual(lines[1], "set True")
        self.assertRegex(lines[0], f"^FileNotFoundError: Event '{name}': .*the object ended")


class LifetimeTests(ManagerTestCase):
    def test_anonymous_object_ends_with_its_last_handle_anywhere(self):
        ctx = multiprocessing.get_context("spawn")
        lock = pythread.Lock()
        name = lock._daemon_name
        self.assertEqual(show(name), 1)
        parent, child = ctx.Pipe()
        p = ctx.Process(target=hold_and_report, args=(lock, child))
        p.start()
        self.assertEqual(parent.recv(), name)  # opened there under its name
        self.assertEqual(show(name), 2)
        del lock  # the last handle here; the child's keeps it
        self.assertEqual(show(name), 1)
        parent.send("go")
        p.join(TIMEOUT)
        self.assertEqual(p.exitcode, 0)
        self.assertIsNone(poll(lambda: show(name), None))

    def test_dropped_before_unpickled(self):
        # As with SyncManager (whose server forgets an object with its last
        # proxy), the receiver must get the pickle while a handle lives.
        data = pickle.dumps(pythread.Event())
        with self.assertRaises(FileNotFoundError) as cm:
            pickle.loads(data)
        msg = str(cm.exception)
        self.assertRegex(msg, r"cannot unpickle Event \(anonymous, 'anon/[^']+' in the daemon\)")
        self.assertIn("keep the object referenced in the process that pickled it", msg)


class OtherDaemonTests(ManagerTestCase):
    """A second pythreadd, not the default one, and its end."""

    def setUp(self):
        super().setUp()
        self.socket = os.path.join(self.tmp.name, "other.sock")
        self.proc = subprocess.Popen([daemon.daemon_path(), "--socket", self.socket],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                pythread.Client(self.socket)
                break
            except ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def tearDown(self):
        self.stop()
        _sync._socket_clients.pop(self.socket, None)
        super().tearDown()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(TIMEOUT)

    def test_pickle_carries_the_daemon(self):
        ctx = multiprocessing.get_context("spawn")
        with pythread.Manager(self.socket) as m:
            self.assertEqual(m.address, self.socket)
            lock = m.Lock()
            self.assertIsNone(show(lock._daemon_name))  # not in the default daemon
            out = self.path("socket")
            p = ctx.Process(target=unpickle_in_child, args=(pickle.dumps(lock), out))
            p.start()
            p.join(TIMEOUT)
            self.assertEqual(p.exitcode, 0)
            self.assertEqual(_lines(out), [self.socket])

    def test_daemon_gone(self):
        m = pythread.Manager(self.socket)
        lock = m.Lock()
        data = pickle.dumps(lock)
        self.stop()
        with self.assertRaises(ConnectionError) as cm:
            pickle.dumps(lock)
        msg = str(cm.exception)
        self.assertRegex(msg, r"^pythread: cannot pickle Lock \(anonymous, 'anon/")
        self.assertIn(f"pythreadd at {self.socket} is unreachable; start it there", msg)
        # In another process, which has no session with it yet.
        ctx = multiprocessing.get_context("spawn")
        out = self.path("error")
        p = ctx.Process(target=fail_unpickle, args=(data, out))
        p.start()
        p.join(TIMEOUT)
        (line,) = _lines(out)
        self.assertRegex(line, r"^ConnectionError: pythread: cannot unpickle Lock "
                               r"\(anonymous, 'anon/")
        self.assertIn(f"pythreadd at {self.socket} is unreachable; start it there", line)


class ManagerApiTests(ManagerTestCase):
    def test_signatures_are_syncmanager_s(self):
        # multiprocessing.managers.SyncManager, as documented for 3.11.
        want = {"Lock": "()", "RLock": "()", "Semaphore": "(value=1)",
                "BoundedSemaphore": "(value=1)", "Condition": "(lock=None)", "Event": "()",
                "Barrier": "(parties, action=None, timeout=None)",
                "start": "(initializer=None, initargs=())", "shutdown": "()", "connect": "()",
                "join": "(timeout=None)"}
        m = pythread.SyncManager()
        for method, sig in want.items():
            self.assertEqual(str(inspect.signature(getattr(m, method))), sig, method)

    def test_manager_is_started(self):
        m = pythread.Manager()
        self.assertIsInstance(m, pythread.SyncManager)
        self.assertEqual(m.address, _daemon.socket)
        with self.assertRaisesRegex(multiprocessing.ProcessError, "Already started server"):
            m.start()
        with m as entered:
            self.assertIs(entered, m)
            lock = m.Lock()
        # Shut down: no new objects, as SyncManager; those made live on.
        with self.assertRaisesRegex(multiprocessing.ProcessError, "Manager has shut down"):
            m.Lock()
        with self.assertRaisesRegex(multiprocessing.ProcessError, "Manager has shut down"):
            m.start()
        with self.assertRaisesRegex(multiprocessing.ProcessError, "Manager has shut down"):
            with m:
                pass
        m.shutdown()  # again: harmless
        with lock:
            self.assertTrue(lock.locked())

    def test_sync_manager_life_cycle(self):
        m = pythread.SyncManager()
        with self.assertRaisesRegex(multiprocessing.ProcessError, "not started"):
            m.Lock()
        m.shutdown()  # before start: harmless, and it may start still
        with self.assertRaisesRegex(TypeError, "initializer must be a callable"):
            m.start(initializer=1)
        with m:
            self.assertIsInstance(m.Event(), pythread.Event)
        m2 = pythread.SyncManager()
        m2.connect()
        m2.join()
        self.assertIsInstance(m2.RLock(), pythread.RLock)

    def test_objects_are_pythread_s(self):
        with pythread.Manager(mode=0o640, fast_path=False, deadlock="fail") as m:
            lock, rlock = m.Lock(), m.RLock()
            made = {"Lock": lock, "RLock": rlock, "Semaphore": m.Semaphore(3),
                    "BoundedSemaphore": m.BoundedSemaphore(value=2), "Event": m.Event(),
                    "Condition": m.Condition(), "Barrier": m.Barrier(2, None, 1.0)}
            self.assertIsInstance(m.Condition(lock), pythread.Condition)
            self.assertIsInstance(m.Condition(rlock), pythread.Condition)
        for kind, obj in made.items():
            self.assertIs(type(obj), getattr(pythread, kind), kind)
            self.assertIsNone(obj.name, kind)  # anonymous, as SyncManager's are
        self.assertEqual(made["Semaphore"]._value, 3)
        self.assertEqual(made["BoundedSemaphore"]._initial_value, 2)
        self.assertEqual(made["Barrier"].parties, 2)
        self.assertFalse(lock._fast_path)
        self.assertEqual(lock._deadlock, "fail")

    def test_condition_needs_a_shared_lock(self):
        with pythread.Manager() as m:
            with self.assertRaisesRegex(TypeError, "other processes cannot use"):
                m.Condition(threading.Lock())

    def test_not_hosted(self):
        with pythread.Manager() as m:
            with self.assertRaisesRegex(AttributeError, r"take dict\(\) from a "
                                                        r"multiprocessing\.Manager\(\)"):
                m.dict()
            with self.assertRaises(AttributeError):
                m.no_such_thing

    def test_barrier_action_runs_in_the_last_party(self):
        # As threading runs it in the last thread to arrive, whose wait()
        # returns parties - 1, before anyone is released.
        ctx = multiprocessing.get_context("spawn")
        actions, out = self.path("actions"), self.path("parties")
        with pythread.Manager() as m:
            barrier = m.Barrier(3, functools.partial(barrier_action, actions), TIMEOUT)
            self.assertEqual(_run_processes(ctx, barrier_party, [(barrier, actions, out, 2)] * 3),
                             [0, 0, 0])
        runners = _lines(actions)
        self.assertEqual(len(runners), 2)
        for cycle, runner in enumerate(runners):
            last = [pid for c, index, pid, _ in (map(int, line.split()) for line in _lines(out))
                    if c == cycle and index == 2]
            self.assertEqual(last, [int(runner)], f"cycle {cycle}")


if __name__ == "__main__":
    unittest.main()
