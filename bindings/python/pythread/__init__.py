"""pythread: Python's threading primitives shared between processes.

    import pythread

    jobs = pythread.Lock(name="jobs")   # every process naming "jobs" shares it
    with jobs:
        ...

Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event and Barrier take
threading's arguments plus keyword-only name=None, mode=0o600 and
transient=None, and behave as threading's do, with the pythreadd daemon
holding their state. Lock, RLock, Semaphore, BoundedSemaphore and Event also
take fast_path=True: uncontended operations then run on a word in shared
memory without the daemon; fast_path=False (or PYTHREAD_FASTPATH=0 in the
environment, for the whole process) sends every one to it. name=None makes a fresh anonymous object that ends with
its last handle, so pythread.Lock() is a drop-in threading.Lock(). A named
object lives until unlink(name) unless created with transient=True.

Lock, RLock and Condition take deadlock=None too: a wait through them that
would close a cycle of lock waits (each owner waiting for a lock the next
one holds, none with a timeout) raises DeadlockError, a RuntimeError, with
deadlock="fail"; with "report" it waits on, as threading's would, and the
daemon reports the deadlock (pythreadctl deadlocks, its log). None takes
the Client's choice, connect(deadlock=...) or PYTHREAD_DEADLOCK=fail.

Every kind takes cluster=False too: cluster=True opens the cluster's object
of that name, the same on every host whose pythreadd runs with --etcd (a
namespace of its own beside the host's objects); a daemon in no cluster
refuses it with RuntimeError. A Condition is where its lock is.

The library is found through $PYTHREAD_LIBRARY, then the source tree's
build/ directory, then the installed libpythread.so.0; the daemon through
$PYTHREAD_SOCKET, else the user's own daemon if one answers, else the
system daemon (libpythread(3)), or connect(socket).

Every object pickles (by kind and name in the daemon), so Process, Pool and
ProcessPoolExecutor take them, and pythread.Manager() is a drop-in for
multiprocessing.Manager() whose Lock, RLock, Semaphore, BoundedSemaphore,
Condition, Event and Barrier are pythread objects.
"""

from ._manager import Manager, SyncManager
from ._sync import (TIMEOUT_MAX, Barrier, BoundedSemaphore, BrokenBarrierError, Client,
                    Condition, DeadlockError, Event, Lock, RLock, Semaphore, connect, unlink)

__all__ = ["Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event", "Barrier",
           "BrokenBarrierError", "DeadlockError", "TIMEOUT_MAX", "connect", "unlink", "Client",
           "Manager", "SyncManager"]

__version__ = "0.1.0"
