"""pythread.Manager(): the synchronisation methods of multiprocessing's
SyncManager, returning pythread objects.

    with pythread.Manager() as m:       # was: with multiprocessing.Manager() as m:
        lock = m.Lock()
        with multiprocessing.Pool() as pool:
            pool.starmap(work, [(lock, i) for i in range(10)])

SyncManager keeps each object in a server process it starts and hands out
proxies; here pythreadd is the server, and the objects are pythread's own:
anonymous, picklable (so Process, Pool and ProcessPoolExecutor take them),
and ended with their last handle in any process, as a SyncManager object
ends with its last proxy.
"""

import threading
from multiprocessing import ProcessError

from . import _sync

__all__ = ["Manager", "SyncManager"]

_INITIAL, _STARTED, _SHUTDOWN = "initial", "started", "shutdown"

# What multiprocessing's SyncManager also makes, which pythreadd does not
# host: asked for, they get an error that says where to find them.
_NOT_HOSTED = ("Queue", "JoinableQueue", "Pool", "list", "dict", "Value", "Array", "Namespace")


class SyncManager:
    """multiprocessing.managers.SyncManager's Lock, RLock, Semaphore,
    BoundedSemaphore, Condition, Event and Barrier, made in pythreadd.

    socket: the daemon's socket; None finds it as pythread.connect() does
    ($PYTHREAD_SOCKET, else the user's own daemon, else the system one).
    mode, fast_path and deadlock are passed to every object it makes that
    takes them (see pythread.Lock).

    start() and connect() connect to the daemon; there is no server process
    to start, so start()'s initializer is checked and not called. shutdown()
    makes the manager refuse new objects and drops its connection; it does
    not end the objects, which live in the daemon, not in a manager: each
    keeps working in every process that has it and, being anonymous, ends
    with its last handle in any process (close() ends one's handle here at
    once). A SyncManager's proxies, whose server has gone, fail instead.
    """

    def __init__(self, socket=None, *, mode=0o600, fast_path=True, deadlock=None):
        # Checked now, as SyncManager checks its arguments before starting.
        _sync._mode(mode)
        _sync._deadlock_policy(deadlock)
        self._socket = socket
        self._mode = mode
        self._fast_path = fast_path
        self._deadlock = deadlock
        self._client = None
        self._state = _INITIAL
        self._state_mu = threading.Lock()

    def __repr__(self):
        where = f" socket={self.address!r}" if self.address else ""
        return f"<pythread.SyncManager {self._state}{where} at {id(self):#x}>"

    # -- life cycle, as multiprocessing's BaseManager ----------------------

    def _check_initial(self):
        if self._state == _STARTED:
            raise ProcessError("Already started server")
        if self._state == _SHUTDOWN:
            raise ProcessError("Manager has shut down")

    def _connect(self):
        if self._socket is None:
            return _sync._get_client()
        return _sync._client_for(self._socket)

    def start(self, initializer=None, initargs=()):
        """Connect to the daemon. multiprocessing's start() starts a server
        process and runs initializer(*initargs) there; pythreadd is already
        running, so the initializer is only checked."""
        with self._state_mu:
            self._check_initial()
            if initializer is not None and not callable(initializer):
                raise TypeError("initializer must be a callable")
            self._client = self._connect()
            self._state = _STARTED

    def connect(self):
        """Connect to the daemon (multiprocessing's connect() reaches a
        manager's server started elsewhere: here, pythreadd)."""
        with self._state_mu:
            self._client = self._connect()
            self._state = _STARTED

    def shutdown(self):
        """Refuse new objects from now on and drop this manager's
        connection. The objects it made live on in every process that has
        them, each ending with its last handle anywhere. Harmless to call
        again, or before start()."""
        with self._state_mu:
            if self._state == _STARTED:
                self._state = _SHUTDOWN
            self._client = None

    def join(self, timeout=None):
        """multiprocessing waits here for the server process; there is
        none, so this returns at once."""

    @property
    def address(self):
        """The daemon's socket once connected (the socket given before)."""
        client = self._client
        return client.socket if client is not None else self._socket

    def __enter__(self):
        with self._state_mu:
            state = self._state
        if state == _INITIAL:
            self.start()
        elif state == _SHUTDOWN:
            raise ProcessError("Manager has shut down")
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.shutdown()

    def __getattr__(self, name):
        if name in _NOT_HOSTED:
            raise AttributeError(
                f"pythread.SyncManager has no {name}(): pythreadd hosts only the "
                "synchronisation objects (Lock, RLock, Semaphore, BoundedSemaphore, Condition, "
                f"Event, Barrier); take {name}() from a multiprocessing.Manager()")
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    # -- the objects, with SyncManager's signatures ------------------------

    def _make(self, cls, *args, **kwargs):
        with self._state_mu:
            if self._state != _STARTED:
                raise ProcessError("Manager has shut down" if self._state == _SHUTDOWN else
                                   "pythread.SyncManager: not started; call start() first, or "
                                   "make it with pythread.Manager(), which starts it")
            client = self._client
        return _sync._construct(cls, client, *args, mode=self._mode, **kwargs)

    def Lock(self):
        """A new pythread.Lock."""
        return self._make(_sync.Lock, fast_path=self._fast_path, deadlock=self._deadlock)

    def RLock(self):
        """A new pythread.RLock."""
        return self._make(_sync.RLock, fast_path=self._fast_path, deadlock=self._deadlock)

    def Semaphore(self, value=1):
        """A new pythread.Semaphore."""
        return self._make(_sync.Semaphore, value, fast_path=self._fast_path)

    def BoundedSemaphore(self, value=1):
        """A new pythread.BoundedSemaphore."""
        return self._make(_sync.BoundedSemaphore, value, fast_path=self._fast_path)

    def Condition(self, lock=None):
        """A new pythread.Condition over its own RLock (lock=None) or over
        a pythread Lock or RLock (one this manager made, say)."""
        if lock is not None and not isinstance(lock, (_sync.Lock, _sync.RLock)):
            raise TypeError(f"pythread.SyncManager.Condition: lock is a {type(lock).__name__}, "
                            "which other processes cannot use; pass a Lock or RLock of this "
                            "manager (or any pythread.Lock or pythread.RLock), or None")
        return self._make(_sync.Condition, lock, deadlock=self._deadlock)

    def Event(self):
        """A new pythread.Event."""
        return self._make(_sync.Event, fast_path=self._fast_path)

    def Barrier(self, parties, action=None, timeout=None):
        """A new pythread.Barrier. The action runs in the process of the
        last party to arrive (whose wait() returns parties - 1), as
        threading runs it in the last thread, before anyone is released;
        SyncManager runs it in its server process. Pickling the barrier
        pickles the action with it, since any process may arrive last."""
        return self._make(_sync.Barrier, parties, action, timeout)


def Manager(socket=None, *, mode=0o600, fast_path=True, deadlock=None):
    """A started SyncManager, as multiprocessing.Manager() returns one:
    pythread.Manager() is a drop-in for it whose Lock, RLock, Semaphore,
    BoundedSemaphore, Condition, Event and Barrier are pythread objects."""
    m = SyncManager(socket, mode=mode, fast_path=fast_path, deadlock=deadlock)
    m.start()
    return m
