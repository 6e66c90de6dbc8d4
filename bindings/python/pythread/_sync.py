"""The synchronisation classes: threading's API over libpythread handles.

Arguments are checked here the way threading checks them (so the same
exception classes come out with CPython's wording), then the call goes to
the daemon, which checks again and owns all state. Nothing is cached that
another process could change, except what cannot change: a Barrier's
parties, a BoundedSemaphore's bound.
"""

import ctypes
import itertools
import math
import operator
import os
import pickle
import threading
import weakref
from collections import namedtuple
from time import monotonic as _time

from . import _lib
from ._lib import check, lib

__all__ = ["Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event", "Barrier",
           "BrokenBarrierError", "DeadlockError", "TIMEOUT_MAX", "connect", "unlink"]

BrokenBarrierError = threading.BrokenBarrierError
DeadlockError = _lib.DeadlockError
TIMEOUT_MAX = _lib.PT_TIMEOUT_MAX
_FOREVER = _lib.PT_FOREVER
_UINT32_MAX = 0xFFFFFFFF

# ---------------------------------------------------------------------------
# The connection to the daemon
# ---------------------------------------------------------------------------


class Client:
    """One session with a pythreadd, shared by every thread of the process.

    Objects keep their client alive; the session closes (and the daemon gives
    back everything it held) when the last object and the module let go.
    """

    _lib = lib  # kept on the class: __del__ may run after module teardown
    _h = None
    # Handles open through this client. pt_client_close frees every object
    # still open, so it is called only at zero: at interpreter exit the
    # finalizers of a client and its objects can run in any order, and a
    # process that ends drops its session anyway.
    _open_handles = 0

    def __init__(self, socket=None, *, deadlock=None):
        # Re-entrant: a finalizer may run while this thread holds it.
        self._count_mu = threading.RLock()
        _all_clients.add(self)
        handle = ctypes.c_void_p()
        path = None if socket is None else _path_bytes(socket)
        policy = _deadlock_policy(deadlock)
        check(lib.pt_client_open(ctypes.byref(handle), path))
        self._h = handle.value
        if policy is not None:
            check(lib.pt_client_set_deadlock(self._h, policy))
        # The socket reached, which with no path of ours may be the
        # system daemon's after the user's own (pt_default_socket_paths).
        path = lib.pt_client_socket_path(self._h) or b""
        self.socket = path.decode("utf-8", "surrogateescape")

    def __repr__(self):
        return f"<pythread.Client socket={self.socket!r} at {id(self):#x}>"

    def __del__(self):
        h, self._h = self._h, None
        if h and self._open_handles == 0:
            self._lib.pt_client_close(h)


_client = None
_client_mu = threading.Lock()
# Every Client, so that a forked child can renew their mutexes.
_all_clients = weakref.WeakSet()
# Clients of daemons other than the default one's, by socket, for objects
# unpickled from a process that used such a daemon (connect(socket),
# Manager(socket)): one session per daemon, as the default client is.
_socket_clients = {}


def _path_bytes(path):
    b = os.fsencode(path)
    if b"\0" in b:
        raise ValueError("pythread: socket path contains a NUL byte; pass a plain path")
    return b


def connect(socket=None, *, deadlock=None):
    """Connect to the daemon listening on socket (None: $PYTHREAD_SOCKET if
    set, else the user's own daemon's socket if one answers there, else the
    system daemon's; Client.socket says which) and make it the daemon every
    object created from now on lives in. Objects created before keep theirs.
    deadlock="fail" makes every Lock, RLock and Condition wait through it
    that would close a deadlock raise DeadlockError; "report" (the default,
    unless PYTHREAD_DEADLOCK=fail) lets it wait on. Returns the Client."""
    global _client
    c = Client(socket, deadlock=deadlock)
    with _client_mu:
        _client = c
    return c


def _get_client():
    global _client
    with _client_mu:
        if _client is None:
            _client = Client(None)
        return _client


def _same_socket(a, b):
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def _client_for(socket):
    """The Client for objects of the daemon at socket: the process's default
    one when it reaches that daemon (so an unpickled object and one opened
    by name here are one owner), else one per socket."""
    global _client
    with _client_mu:
        if _client is None:
            try:
                _client = Client(None)
            except OSError:
                pass  # no default daemon here; the socket's own client follows
        if _client is not None and _same_socket(_client.socket, socket):
            return _client
        c = _socket_clients.get(socket)
        if c is None:
            c = _socket_clients[socket] = Client(socket)
        return c


def _after_fork_in_child():
    # A thread of the parent may have held these at the fork; it does not
    # exist here to release them. The library itself gives the child a
    # fresh session on its next call (pthread_atfork), and RLock levels
    # counted here were those of the parent's session, which the child is
    # not: it owns no RLock.
    global _client_mu, _rlock_counts_mu
    _client_mu = threading.Lock()
    _rlock_counts_mu = threading.Lock()
    for c in list(_all_clients):
        c._count_mu = threading.RLock()
    for counts in list(_rlock_counts.values()):
        counts.n = 0


def unlink(name, *, cluster=False):
    """Remove a name from the daemon (sem_unlink style: handles already open
    keep working; the object ends when the last one closes). cluster=True:
    the cluster's object of that name, on every host (pythreadd --etcd; a
    daemon in no cluster refuses it with RuntimeError)."""
    fn = lib.pt_unlink_cluster if cluster else lib.pt_unlink
    check(fn(_get_client()._h, _name_bytes(name)))


# ---------------------------------------------------------------------------
# Argument conversion, as threading and _thread do it
# ---------------------------------------------------------------------------


def _name_bytes(name):
    if isinstance(name, str):
        b = name.encode("utf-8")
    elif isinstance(name, (bytes, bytearray)):
        b = bytes(name)
    else:
        raise TypeError(f"pythread: name must be str or bytes, not {type(name).__name__}")
    if b"\0" in b:
        # ctypes would cut the name at the NUL and open another object.
        raise ValueError(f"pythread: invalid name {name!r}: a name is 1-255 bytes of letters, "
                         "digits and . _ : / -")
    return b


def _c_seconds(timeout):
    """A timeout as _thread's C functions read it: int or float, NaN refused."""
    if isinstance(timeout, float):
        if math.isnan(timeout):
            raise ValueError("Invalid value NaN (not a number)")
        return timeout
    try:
        return float(operator.index(timeout))
    except OverflowError:
        raise OverflowError("timeout value is too large") from None


def _py_seconds(timeout, nan):
    """A timeout as threading.py's classes read it: None is forever, and any
    negative number means "do not wait" (the C API's -1 would mean forever).
    NaN becomes nan: threading.py never refuses it. Condition.wait and
    Event.wait pass it on (the daemon does not wait: nan > 0 is false in
    threading); where threading loops until the state changes, recomputing
    a NaN wait that never runs out (Semaphore.acquire, Barrier.wait), the
    caller passes a wait without end instead of spinning."""
    if timeout is None:
        return _FOREVER
    t = float(timeout)
    if math.isnan(t):
        return nan
    return 0.0 if t < 0 else t


_anon_serial = itertools.count()


def _anon_name():
    """A name for an anonymous object, of the shape libpythread gives one
    ("anon/<pid>.<serial>.<random>"): made here so that repr() can ask the
    daemon who holds and waits for the object by its name, and a pickle can
    carry it to other processes. It is opened exclusively, so a clash is
    retried, never shared; 64 random bits keep a name from meeting, after
    its object ended, a later object of another process (pid reuse, other
    pid namespaces) that a stale pickle would then open."""
    return f"anon/{os.getpid()}.{next(_anon_serial)}.{os.urandom(8).hex()}".encode()


def _flags(name, transient):
    if transient is None:
        transient = name is None
    if name is None and not transient:
        raise ValueError("pythread: an anonymous object (name=None) is always transient; "
                         "pass a name to keep the object after its last handle closes")
    return _lib.PT_OPEN_TRANSIENT if transient else 0


_DEADLOCK_POLICIES = {"report": _lib.PT_DEADLOCK_REPORT, "fail": _lib.PT_DEADLOCK_FAIL}


def _deadlock_policy(deadlock):
    """deadlock= as the library's policy: None keeps the default."""
    if deadlock is None:
        return None
    try:
        return _DEADLOCK_POLICIES[deadlock]
    except (KeyError, TypeError):
        raise ValueError(f"pythread: deadlock={deadlock!r}: pass \"fail\" (a wait that would "
                         "close a deadlock raises DeadlockError), \"report\" (it waits on) or "
                         "None (the Client's choice)") from None


def _deadlock_flags(deadlock):
    """An object's deadlock=: "fail" asks it of every wait through the
    handle; "report" and None leave it to the Client."""
    return _lib.PT_OPEN_DEADLOCK_FAIL if _deadlock_policy(deadlock) == _lib.PT_DEADLOCK_FAIL else 0


def _mode(mode):
    mode = operator.index(mode)
    if mode < 0 or mode > 0o7777:
        raise ValueError(f"pythread: mode {mode:#o} has bits outside 0o7777; pass permission "
                         "bits such as 0o600")
    return mode


def _shown(name, daemon_name):
    if name is not None:
        return repr(name)
    if daemon_name is not None:
        if isinstance(daemon_name, bytes):
            daemon_name = daemon_name.decode("utf-8", "replace")
        return f"(anonymous, {daemon_name!r} in the daemon)"
    return "(anonymous)"


def _pickle_error(cls, op, kind, name, daemon_name, socket, exc):
    """exc, raised while pickling or unpickling an object, as the same class
    of exception saying which object, which daemon, and what to do."""
    where = f"pythreadd at {socket}" if socket else "the daemon"
    reason = str(exc)
    if issubclass(cls, FileNotFoundError):
        # The library's words are for C callers of PT_OPEN_EXISTING.
        reason = f"the {where} has no object of that name"
    if issubclass(cls, ConnectionError):
        advice = (f"the {where} is unreachable; start it there (or set $PYTHREAD_SOCKET to the "
                  "daemon that holds the object); a daemon that ended without --state-dir took "
                  "its objects with it: create the object again")
    elif issubclass(cls, FileNotFoundError) and op == "pickle":
        # This process has a handle, which keeps even a transient object.
        advice = ("a daemon restarted without --state-dir lost it, or its name was unlinked: "
                  "create the object again")
    elif issubclass(cls, FileNotFoundError) and name is None:
        advice = ("an anonymous object ends with its last handle, and this one's were all "
                  "closed before it was opened here: keep the object referenced in the process "
                  "that pickled it until every receiver has unpickled it, or give it a name")
    elif issubclass(cls, FileNotFoundError):
        advice = (f"its name is gone from the {where} (unlinked, or a daemon restarted "
                  "without --state-dir): create it again by name")
    else:
        advice = ""
    message = f"pythread: cannot {op} {kind} {_shown(name, daemon_name)}: {reason}"
    if advice:
        message += f"; {advice}"
    try:
        return cls(message)
    except TypeError:
        return exc


def _rebuild(cls, socket, daemon_name, name, args, kwargs):
    """Unpickle: open in this process the object a pickle names."""
    self = object.__new__(cls)
    self._via = (socket, daemon_name.encode())
    self.__init__(*args, name=name, **kwargs)
    return self


def _construct(cls, client, *args, **kwargs):
    """cls(*args, **kwargs), opened through client rather than the default
    one (a Manager's own daemon)."""
    self = object.__new__(cls)
    self._via = (client, None)
    self.__init__(*args, **kwargs)
    return self


def _construct_anonymous(cls, client, daemon_name, *args, **kwargs):
    """cls(*args, **kwargs), anonymous (name None, transient), opened through
    client as the object the daemon knows by daemon_name: the first opening
    creates it, the others open it. An anonymous object otherwise gets a
    fresh daemon name of its own, opened exclusively, so that no other
    opening can share it; this one is shared on purpose by openings through
    several Clients, of one daemon or, with cluster=True, of the cluster's
    daemons (the test that gives each thread a daemon of its own opens every
    object through each one), and Python shows it as any anonymous object."""
    self = object.__new__(cls)
    self._via = (client, None)
    self._anonymous_as = _name_bytes(daemon_name)
    self.__init__(*args, **kwargs)
    return self


class _Handle:
    """What every class shares: a handle in the daemon, opened through a
    Client, closed by close() or when the object is collected."""

    _lib = lib
    _close_fn = None  # name of the pt_<kind>_close function
    _h = None
    _name = None
    _cluster = False

    def _open(self, fn, name, mode, transient, *before, client=None, after=(), fast_path=True,
              deadlock=None, cluster=False):
        """Call pt_<kind>_open(client, name, *before, flags, mode, out).
        fast_path=False keeps this handle's operations off the shared word
        (PT_OPEN_NOFAST): every one goes to the daemon. deadlock="fail":
        a wait through it that would close a deadlock raises DeadlockError
        (PT_OPEN_DEADLOCK_FAIL). cluster=True: the cluster's object, the
        same on every host (PT_OPEN_CLUSTER, pythreadd --etcd); a daemon in
        no cluster refuses it with RuntimeError. An object made by
        _construct opens through the client it names (by
        _construct_anonymous: under the daemon name it gives), and one being
        unpickled opens the object its pickle names, which must exist
        (PT_OPEN_EXISTING): never a new one, never with its state reset."""
        via, existing = self.__dict__.pop("_via", (None, None))
        anonymous_as = self.__dict__.pop("_anonymous_as", None)  # _construct_anonymous
        handle_flags = ((0 if fast_path else _lib.PT_OPEN_NOFAST) | _deadlock_flags(deadlock)
                        | (_lib.PT_OPEN_CLUSTER if cluster else 0))
        mode = _mode(mode)
        out = ctypes.c_void_p()
        if existing is not None:
            cname = existing
            try:
                client = client or (via if isinstance(via, Client) else _client_for(via))
                check(fn(client._h, cname, *before, *after, handle_flags | _lib.PT_OPEN_EXISTING,
                         mode, ctypes.byref(out)))
            except (OSError, ValueError, RuntimeError) as exc:
                raise _pickle_error(type(exc), "unpickle", type(self).__name__, name, cname,
                                    via, exc) from exc
        else:
            flags = _flags(name, transient) | handle_flags
            if client is None:
                client = via if isinstance(via, Client) else _get_client()
            if name is not None or anonymous_as is not None:
                cname = _name_bytes(name) if name is not None else anonymous_as
                check(fn(client._h, cname, *before, *after, flags, mode, ctypes.byref(out)))
            else:
                for _ in range(4):
                    cname = _anon_name()
                    r = fn(client._h, cname, *before, *after, flags | _lib.PT_OPEN_EXCL, mode,
                           ctypes.byref(out))
                    if r != _lib.PT_EEXIST:
                        break
                check(r)
        self._client = client
        self._name = name
        self._daemon_name = cname
        self._fast_path = fast_path
        self._deadlock = deadlock
        self._cluster = bool(cluster)
        self._h = out.value
        with client._count_mu:
            client._open_handles += 1

    # Pickling: by kind, daemon name, the daemon's socket and the arguments
    # that open the object again (_init_args). The receiver opens the same
    # object in the same daemon; an anonymous object travels under the name
    # it has in the daemon and stays anonymous (name None) there, and ends,
    # as ever, with its last handle in any process.
    def _init_args(self, protocol):
        """(args, kwargs) of the constructor, name= aside, that open this
        object again in another process."""
        return (), {}

    def __reduce_ex__(self, protocol):
        kind = type(self).__name__
        if self._h is None:
            raise ValueError(f"pythread: cannot pickle {kind} {_shown(self._name, None)}: its "
                             "handle is closed; pickle an object that is still open")
        args, kwargs = self._init_args(protocol)
        if self._cluster:
            kwargs = dict(kwargs, cluster=True)  # the receiver opens the cluster's
        self._pickle_check(kind)
        return (_rebuild, (type(self), self._client.socket, self._daemon_name.decode(),
                           self._name, args, kwargs))

    def _show(self):
        """The daemon's inspection of this object's namespace: a name of
        the cluster's may name another object of the host's."""
        return lib.pt_inspect_cluster_show if self._cluster else lib.pt_inspect_show

    def _pickle_check(self, kind):
        """One round trip, so that a pickle that no process could open fails
        here, where its cause is, rather than in a receiver far away."""
        out = ctypes.POINTER(_lib.InspectDetail)()
        r = self._show()(self._client._h, self._daemon_name, ctypes.byref(out))
        if r < 0:
            exc = _lib.error_from(r)
            raise _pickle_error(type(exc), "pickle", kind, self._name, self._daemon_name,
                                self._client.socket, exc) from exc
        lib.pt_inspect_detail_free(out)

    def _close_handle(self):
        """Close the handle once; the result of the close function, or 0."""
        h, self._h = self._h, None
        if not h:
            return 0
        client = self._client
        with client._count_mu:
            client._open_handles -= 1
        if client._h is None:
            return 0  # the client went first (interpreter exit) and freed it
        return getattr(self._lib, self._close_fn)(h)

    @property
    def name(self):
        """The object's name in the daemon, or None for an anonymous one."""
        return self._name

    def close(self):
        """Close this handle now (the object itself lives on while other
        handles, or its name, keep it). Using the object afterwards fails
        with ValueError. Not to be called while another thread uses it."""
        check(self._close_handle())

    def __del__(self):
        try:
            self._close_handle()
        except Exception:  # interpreter teardown: the process is ending
            pass

    def _named(self):
        return "" if self._name is None else f"name={self._name!r} "

    def _inspect(self):
        """Who holds this object and who waits for it, as the daemon sees
        it now (every process): _Parties, or None when the daemon cannot say
        (the handle is closed, or the name was unlinked and names nothing)."""
        if self._h is None or self._client._h is None:
            return None
        out = ctypes.POINTER(_lib.InspectDetail)()
        if self._show()(self._client._h, self._daemon_name, ctypes.byref(out)) < 0:
            return None
        try:
            d = out.contents
            if d.detail_denied:  # not for an object we could open, which needs read
                return None
            return _Parties([_party(d.holders[i]) for i in range(d.n_holders)],
                            [_party(d.waiters[i]) for i in range(d.n_waiters)],
                            d.more_waiters)
        finally:
            lib.pt_inspect_detail_free(out)

    def _owner(self, party):
        """What repr shows as owner= for a holder. A thread of this process
        shows its threading ident, as threading's RLock does; a thread of
        another process shows its native thread id (Thread.native_id there),
        as the daemon reports it: an ident is only an address, which other
        processes reuse, while a native id names one thread on the machine."""
        # (a cluster object's parties are sessions of the cluster's copy, of
        # any host: they show their native thread ids)
        if not self._cluster and party.session == lib.pt_client_session_id(self._client._h):
            if party.thread == threading.get_native_id():
                return threading.get_ident()
            for t in threading.enumerate():
                if t.native_id == party.thread:
                    return t.ident
        return party.thread

    def _rlock_state(self, parties):
        """(state, owner, count) of this RLock, or of a Condition's own
        RLock, from _inspect's answer."""
        for p in parties.holders:
            return "locked", self._owner(p), p.count
        return "unlocked", 0, 0

    def _at(self):
        cls = type(self)
        named = "" if self._name is None else f" {self._name!r}"
        return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}{named} at {id(self):#x}"


# ---------------------------------------------------------------------------
# Lock and RLock
# ---------------------------------------------------------------------------


class Lock(_Handle):
    """threading.Lock in the daemon: any thread of any process may release it."""

    _close_fn = "pt_lock_close"

    def __init__(self, *, name=None, mode=0o600, transient=None, fast_path=True, deadlock=None,
                 cluster=False):
        self._open(lib.pt_lock_open, name, mode, transient, fast_path=fast_path,
                   deadlock=deadlock, cluster=cluster)

    def _as_object(self):
        return lib.pt_lock_as_object(self._h)

    def _init_args(self, protocol):
        return (), {"fast_path": self._fast_path, "deadlock": self._deadlock}

    def acquire(self, blocking=True, timeout=-1):
        return bool(check(lib.pt_lock_acquire(self._h, 1 if blocking else 0,
                                              _c_seconds(timeout))))

    def release(self):
        check(lib.pt_lock_release(self._h))

    def locked(self):
        return bool(check(lib.pt_lock_locked(self._h)))

    # _thread.lock's old spellings.
    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        state = "locked" if self.locked() else "unlocked"
        return f"<{state} pythread.Lock object {self._named()}at {id(self):#x}>"


_Party = namedtuple("_Party", "session pid thread count what")
_Parties = namedtuple("_Parties", "holders waiters more_waiters")


def _party(p):
    return _Party(p.session, p.pid, p.thread, p.count, p.what.decode("ascii", "replace"))


def _rlock_repr(state, owner, count, named, at):
    """threading's RLock repr: <%s %s.%s object owner=%r count=%d at %s>."""
    return f"<{state} pythread.RLock object {named}owner={owner} count={count} at {at:#x}>"


class _Counts(threading.local):
    """The calling thread's recursion level of one RLock."""
    n = 0


# One _Counts per RLock per client: two RLock objects of one name in one
# process are the same owner in the daemon, so they share the count too.
_rlock_counts = weakref.WeakValueDictionary()
_rlock_counts_mu = threading.Lock()


class RLock(_Handle):
    """threading.RLock in the daemon: owned by one thread of one process,
    which may acquire it again; only the owner releases it."""

    _close_fn = "pt_rlock_close"

    def __init__(self, *, name=None, mode=0o600, transient=None, fast_path=True, deadlock=None,
                 cluster=False):
        self._open(lib.pt_rlock_open, name, mode, transient, fast_path=fast_path,
                   deadlock=deadlock, cluster=cluster)
        # By the name in the daemon, so that an anonymous RLock unpickled
        # here again shares the level with the handle it came from.
        key = (id(self._client), self._daemon_name)
        with _rlock_counts_mu:
            self._counts = _rlock_counts.get(key)
            if self._counts is None:
                self._counts = _rlock_counts[key] = _Counts()

    def _as_object(self):
        return lib.pt_rlock_as_object(self._h)

    def _init_args(self, protocol):
        return (), {"fast_path": self._fast_path, "deadlock": self._deadlock}

    def acquire(self, blocking=True, timeout=-1):
        r = check(lib.pt_rlock_acquire(self._h, 1 if blocking else 0, _c_seconds(timeout)))
        if r:
            self._counts.n += 1
        return bool(r)

    __enter__ = acquire

    def release(self):
        try:
            check(lib.pt_rlock_release(self._h))
        except RuntimeError:
            self._counts.n = 0  # not ours (any more): a lost session gave it back
            raise
        if self._counts.n > 0:
            self._counts.n -= 1

    def __exit__(self, *exc):
        self.release()

    def locked(self):
        return bool(check(lib.pt_rlock_locked(self._h)))

    def _is_owned(self):
        return bool(check(lib.pt_rlock_is_owned(self._h)))

    def _recursion_count(self):
        # The level is counted here; the daemon is asked only whether the
        # holding still exists (a lost session gives every lock back).
        if self._counts.n and not self._is_owned():
            self._counts.n = 0
        return self._counts.n

    def _release_save(self):
        count = self._recursion_count()
        if count == 0:
            if not self._is_owned():
                raise RuntimeError("cannot release un-acquired lock")
            count = 1
        for _ in range(count):
            check(lib.pt_rlock_release(self._h))
        self._counts.n = 0
        return (count, threading.get_ident())

    def _acquire_restore(self, state):
        count, _owner = state
        for _ in range(count):
            check(lib.pt_rlock_acquire(self._h, 1, _FOREVER))
        self._counts.n = count

    def __repr__(self):
        n = self._recursion_count()
        if n:
            state, owner, count = "locked", threading.get_ident(), n
        else:
            # Held by another thread or process, or by nobody: the daemon knows.
            parties = self._inspect()
            if parties is not None:
                state, owner, count = self._rlock_state(parties)
            elif self.locked():
                state, owner, count = "locked", "?", "?"  # a name unlinked and gone
            else:
                state, owner, count = "unlocked", 0, 0
        return _rlock_repr(state, owner, count, self._named(), id(self))


# ---------------------------------------------------------------------------
# Condition
# ---------------------------------------------------------------------------


class Condition(_Handle):
    """threading.Condition in the daemon, over its own RLock (lock=None) or a
    pythread Lock or RLock. wait() releases the lock, waits and re-acquires it
    all in the daemon, so a notify from any process wakes it.

    Given any other lock (threading.Lock, say), which no other process can
    see, the condition is process-local and is a threading.Condition."""

    _close_fn = "pt_condition_close"

    def __new__(cls, lock=None, *args, **kwargs):
        if cls is Condition and lock is not None and not isinstance(lock, (Lock, RLock)):
            cls = _LocalCondition
        return super().__new__(cls)

    def __init__(self, lock=None, *, name=None, mode=0o600, transient=None, deadlock=None,
                 cluster=None):
        if lock is not None and lock._h is None:
            raise ValueError(f"pythread: Condition: its {type(lock).__name__} "
                             f"{lock.name or '(anonymous)'} is closed; pass an open one")
        if cluster is None:  # as its lock: a condition is where its lock is
            cluster = lock._cluster if lock is not None else False
        if lock is not None and bool(cluster) != lock._cluster:
            raise ValueError(f"pythread: Condition {_shown(name, None)}: its "
                             f"{type(lock).__name__} {lock.name or '(anonymous)'} is "
                             f"{'the cluster' if lock._cluster else 'this host'}'s and the "
                             "condition would not be; pass a lock of the same place, or leave "
                             "cluster= out")
        self._lock = lock
        client = lock._client if lock is not None else None
        lock_obj = lock._as_object() if lock is not None else None
        self._open(lib.pt_condition_open, name, mode, transient, lock_obj, client=client,
                   deadlock=deadlock, cluster=cluster)
        if lock is not None:
            # The daemon holds the lock for us; the Python object must
            # outlive the condition's use of it, as threading's does.
            self.acquire = lock.acquire
            self.release = lock.release
            if isinstance(lock, RLock):
                # As threading's Condition takes them from its lock.
                self._release_save = lock._release_save
                self._acquire_restore = lock._acquire_restore

    def _init_args(self, protocol):
        # The lock travels in the same pickle (pickled once, however many
        # objects share it), and the receiver opens the condition over it.
        return (self._lock,), {"deadlock": self._deadlock}

    def acquire(self, blocking=True, timeout=-1):
        return bool(check(lib.pt_condition_acquire(self._h, 1 if blocking else 0,
                                                   _c_seconds(timeout))))

    def release(self):
        check(lib.pt_condition_release(self._h))

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        return self.release()

    def _is_owned(self):
        # notify(0) wakes nobody but is refused unless the caller holds the lock.
        r = lib.pt_condition_notify(self._h, 0)
        if r == 0:
            return True
        e = _lib.error_from(r)
        if isinstance(e, RuntimeError):
            return False
        raise e

    # threading's Condition takes _release_save and _acquire_restore from its
    # lock when the lock has them (an RLock: __init__ does the same) and else
    # releases and acquires once (a Lock). Its own RLock has them too.
    def _release_save(self):
        if self._lock is not None:
            self._lock.release()
            return None
        # The condition's own RLock: the daemon keeps its level, so it is
        # given back one level at a time while this thread still holds it.
        count = 0
        while self._is_owned():
            check(lib.pt_condition_release(self._h))
            count += 1
        if count == 0:
            raise RuntimeError("cannot release un-acquired lock")
        return (count, threading.get_ident())

    def _acquire_restore(self, state):
        if self._lock is not None:
            self._lock.acquire()
            return
        count, _owner = state
        for _ in range(count):
            check(lib.pt_condition_acquire(self._h, 1, _FOREVER))

    def wait(self, timeout=None):
        t = _py_seconds(timeout, nan=math.nan)
        if t > TIMEOUT_MAX and self._is_owned():
            # threading releases the lock, fails, and re-acquires: net effect
            raise OverflowError("timeout value is too large")
        return bool(check(lib.pt_condition_wait(self._h, t)))

    def wait_for(self, predicate, timeout=None):
        # threading.Condition.wait_for, line for line.
        endtime = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if endtime is None:
                    endtime = _time() + waittime
                else:
                    waittime = endtime - _time()
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n=1):
        # threading wakes waiters while n > 0: n <= 0 wakes nobody (but is
        # still refused without the lock), 1.5 wakes two.
        if not isinstance(n, int):
            n = math.ceil(n) if n > 0 else 0
        check(lib.pt_condition_notify(self._h, min(max(n, 0), _UINT32_MAX)))

    def notify_all(self):
        check(lib.pt_condition_notify_all(self._h))

    def notifyAll(self):
        import warnings
        warnings.warn("notifyAll() is deprecated, use notify_all() instead",
                      DeprecationWarning, stacklevel=2)
        self.notify_all()

    def __repr__(self):
        # threading's "<Condition(%s, %d)>" % (self._lock, len(self._waiters)):
        # the waiters are those of every process still waiting for a notify.
        parties = self._inspect()
        if parties is None and self._h is None:
            self._is_owned()  # a closed handle: ValueError, as every method
        if parties is None:
            waiting = "?"  # the name was unlinked and names nothing now
        else:
            # Waiters for a notify come last in the daemon's answer, so
            # any it left out to fit are some of them.
            waiting = sum(p.what == "wait" for p in parties.waiters) + parties.more_waiters
        if self._lock is not None:
            lock = repr(self._lock)
        elif parties is not None:
            # Its own RLock lives in the daemon and has no Python object
            # of its own: it is shown at the condition's address.
            lock = _rlock_repr(*self._rlock_state(parties), "", id(self))
        else:
            owned = self._is_owned()
            lock = _rlock_repr("locked" if owned else "?", threading.get_ident() if owned else "?",
                               "?", "", id(self))
        named = "" if self._name is None else f" name={self._name!r}"
        return f"<Condition({lock}, {waiting}){named}>"


class _LocalCondition(Condition):
    """Condition(lock) for a lock pythread does not host: threading.Condition."""

    _close_fn = None

    def __init__(self, lock=None, *, name=None, mode=0o600, transient=None, deadlock=None,
                 cluster=None):
        if cluster:
            raise TypeError(f"pythread: Condition: its lock is a {type(lock).__name__}, which "
                            "no other host can see; pass a pythread.Lock or pythread.RLock "
                            "opened with cluster=True for a cluster condition")
        if name is not None:
            raise TypeError(f"pythread: Condition {name!r}: its lock is a "
                            f"{type(lock).__name__}, which other processes cannot see; pass a "
                            "pythread.Lock or pythread.RLock for a named condition")
        self._lock = lock
        self._cond = threading.Condition(lock)
        for m in ("acquire", "release", "__enter__", "__exit__", "_is_owned", "wait",
                  "wait_for", "notify", "notify_all", "notifyAll"):
            setattr(self, m, getattr(self._cond, m))

    def __enter__(self):
        return self._cond.__enter__()

    def __exit__(self, *exc):
        return self._cond.__exit__(*exc)

    def close(self):
        pass

    def __del__(self):
        pass

    def __reduce_ex__(self, protocol):
        raise TypeError(f"pythread: cannot pickle a Condition over a {type(self._lock).__name__}:"
                        " that lock lives in this process alone; build the Condition over a "
                        "pythread.Lock or pythread.RLock to share it with other processes")

    def __repr__(self):
        return repr(self._cond)


# ---------------------------------------------------------------------------
# Semaphores
# ---------------------------------------------------------------------------


class Semaphore(_Handle):
    """threading.Semaphore in the daemon. Its permits are not owned: any
    process may release what another acquired (producer/consumer)."""

    _close_fn = "pt_semaphore_close"
    _bounded = 0

    def __init__(self, value=1, *, name=None, mode=0o600, transient=None, fast_path=True,
                 cluster=False):
        value = operator.index(value)
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._initial_value = value
        self._open(lib.pt_semaphore_open, name, mode, transient, value, self._bounded,
                   fast_path=fast_path, cluster=cluster)

    def _init_args(self, protocol):
        # The value is a creation parameter: the receiver opens the object
        # as it is, with whatever value it has now.
        return (self._initial_value,), {"fast_path": self._fast_path}

    def acquire(self, blocking=True, timeout=None):
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        t = _py_seconds(timeout, nan=_FOREVER) if blocking else _FOREVER
        if t > TIMEOUT_MAX:
            # threading fails on a timeout too large only when it has to wait.
            if check(lib.pt_semaphore_acquire(self._h, 0, _FOREVER)):
                return True
        return bool(check(lib.pt_semaphore_acquire(self._h, 1 if blocking else 0, t)))

    __enter__ = acquire

    def release(self, n=1):
        n = operator.index(n)
        if n < 1:
            raise ValueError("n must be one or more")
        if n > _UINT32_MAX:
            raise OverflowError(f"pythread: release(n={n}): at most {_UINT32_MAX} permits "
                                "per call; release in several calls")
        check(lib.pt_semaphore_release(self._h, n))

    def __exit__(self, t, v, tb):
        self.release()

    @property
    def _value(self):
        v = ctypes.c_int64()
        check(lib.pt_semaphore_value(self._h, ctypes.byref(v)))
        return v.value

    def __repr__(self):
        return f"<{self._at()}: value={self._value}>"


class BoundedSemaphore(Semaphore):
    """threading.BoundedSemaphore in the daemon: release past the initial
    value is ValueError. Its permits are owned: a process that ends gives
    back the permits it took and did not release."""

    _bounded = 1

    def __repr__(self):
        return f"<{self._at()}: value={self._value}/{self._initial_value}>"


# ---------------------------------------------------------------------------
# Event
# ---------------------------------------------------------------------------


class Event(_Handle):
    """threading.Event in the daemon."""

    _close_fn = "pt_event_close"

    def __init__(self, *, name=None, mode=0o600, transient=None, fast_path=True, cluster=False):
        self._open(lib.pt_event_open, name, mode, transient, fast_path=fast_path, cluster=cluster)

    def _init_args(self, protocol):
        return (), {"fast_path": self._fast_path}

    def is_set(self):
        return bool(check(lib.pt_event_is_set(self._h)))

    def isSet(self):
        import warnings
        warnings.warn("isSet() is deprecated, use is_set() instead",
                      DeprecationWarning, stacklevel=2)
        return self.is_set()

    def set(self):
        check(lib.pt_event_set(self._h))

    def clear(self):
        check(lib.pt_event_clear(self._h))

    def wait(self, timeout=None):
        t = _py_seconds(timeout, nan=math.nan)
        if t > TIMEOUT_MAX and self.is_set():
            return True  # threading looks at the flag before the timeout
        return bool(check(lib.pt_event_wait(self._h, t)))

    def __repr__(self):
        return f"<{self._at()}: {'set' if self.is_set() else 'unset'}>"


# ---------------------------------------------------------------------------
# Barrier
# ---------------------------------------------------------------------------


class _Action:
    """The Barrier action as a C callback. It holds no reference to the
    Barrier, so a Barrier is collected as soon as it is dropped. An exception
    the action raises breaks the barrier (non-zero to the library) and is
    raised again from the wait() of the party that ran it, as in threading."""

    def __init__(self, action):
        self.action = action
        self.failed = threading.local()
        self.cfunc = _lib.BARRIER_ACTION(self._run)

    def _run(self, _arg):
        try:
            self.action()
            return 0
        except BaseException as exc:  # noqa: B036 - threading re-raises it too
            self.failed.exc = exc
            return 1

    def take(self):
        exc = getattr(self.failed, "exc", None)
        self.failed.exc = None
        return exc


def _barrier_seconds(timeout):
    # A timeout past TIMEOUT_MAX goes to the daemon as it is: threading
    # accepts it and fails (OverflowError) only once a party must wait, so
    # the last party and a broken barrier answer as usual. NaN never runs
    # out in threading's wait_for loop: TIMEOUT_MAX (292 years) stands in.
    return _py_seconds(timeout, nan=TIMEOUT_MAX)


class Barrier(_Handle):
    """threading.Barrier in the daemon: parties may be threads of any
    processes; the action runs in the process of the last party to arrive."""

    _close_fn = "pt_barrier_close"

    def __init__(self, parties, action=None, timeout=None, *, name=None, mode=0o600,
                 transient=None, cluster=False):
        if not isinstance(parties, int) and parties == int(parties):
            parties = int(parties)  # threading accepts 3.0
        parties = operator.index(parties)
        if parties < 1 or parties > _UINT32_MAX:
            raise ValueError(f"parties must be >= 1 (and at most {_UINT32_MAX}); got {parties}")
        self._action = _Action(action) if action is not None else None
        cfunc = self._action.cfunc if self._action else _lib.BARRIER_ACTION()
        self._open(lib.pt_barrier_open, name, mode, transient, parties,
                   after=(cfunc, None, _barrier_seconds(timeout)), cluster=cluster)
        self._parties = parties
        self._timeout = timeout

    def _init_args(self, protocol):
        action = self._action.action if self._action is not None else None
        if action is not None:
            # The action runs in the process of whichever party arrives
            # last, so every process needs it (the daemon cannot hold code):
            # it travels by pickle too, and one that cannot is refused here
            # rather than leaving the receiver's cycles without it.
            try:
                pickle.dumps(action, protocol)
            except Exception as exc:
                raise pickle.PicklingError(
                    f"pythread: cannot pickle Barrier {_shown(self._name, self._daemon_name)}: "
                    f"its action {action!r} cannot be pickled ({exc}); the action runs in the "
                    "process of the last party to arrive, so every process needs it: pass a "
                    "function defined at the top level of a module") from exc
        return (self._parties, action, self._timeout), {}

    def wait(self, timeout=None):
        r = lib.pt_barrier_wait(self._h, _barrier_seconds(timeout))
        if r == _lib.PT_EBROKEN and self._action is not None:
            exc = self._action.take()
            if exc is not None:
                try:
                    raise exc
                finally:
                    exc = None
        return check(r)

    def reset(self):
        check(lib.pt_barrier_reset(self._h))

    def abort(self):
        check(lib.pt_barrier_abort(self._h))

    @property
    def parties(self):
        return self._parties

    @property
    def n_waiting(self):
        return check(lib.pt_barrier_n_waiting(self._h))

    @property
    def broken(self):
        return bool(check(lib.pt_barrier_broken(self._h)))

    def __repr__(self):
        if self.broken:
            return f"<{self._at()}: broken>"
        return f"<{self._at()}: waiters={self.n_waiting}/{self.parties}>"


os.register_at_fork(after_in_child=_after_fork_in_child)
