"""Loading libpythread with ctypes, its prototypes, and its errors as
Python exceptions.

Every blocking function is called through ctypes.CDLL, which releases the
GIL for the length of the call, so a thread parked in the daemon holds up
no other Python thread.
"""

import ctypes
import ctypes.util
import os
import threading

__all__ = ["lib", "check", "error_from", "library_path"]

# The order the library is looked for in; the first that loads wins.
_ENV = "PYTHREAD_LIBRARY"
_SONAME = "libpythread.so.0"


def _build_tree_candidates():
    """libpythread.so in a build directory of the source tree this package
    sits in (bindings/python/pythread -> the project root). None once the
    package is installed (site-packages, dist-packages): the library is then
    the installed one, found by its SONAME, and a directory that merely
    happens to sit three levels up is not looked into."""
    here = os.path.dirname(os.path.abspath(__file__))
    bindings = os.path.dirname(os.path.dirname(here))
    if (os.path.basename(os.path.dirname(here)) != "python" or
            os.path.basename(bindings) != "bindings"):
        return []
    root = os.path.dirname(bindings)
    dirs = []
    if os.environ.get("BUILD_DIR"):
        dirs.append(os.path.join(root, os.environ["BUILD_DIR"]))
    dirs.append(os.path.join(root, "build"))
    return [os.path.join(d, "client", "libpythread.so") for d in dirs]


def _load():
    tried = []
    env = os.environ.get(_ENV)
    if env:
        try:
            return ctypes.CDLL(env), env
        except OSError as exc:
            # An explicit choice that fails is an error, not a hint.
            raise ImportError(
                f"pythread: cannot load {env} named by ${_ENV}: {exc}; "
                f"point ${_ENV} at a built libpythread.so or unset it") from exc
    for path in _build_tree_candidates():
        tried.append(path)
        if os.path.exists(path):
            try:
                return ctypes.CDLL(path), path
            except OSError:
                pass
    for name in (_SONAME, ctypes.util.find_library("pythread")):
        if not name:
            continue
        tried.append(name)
        try:
            return ctypes.CDLL(name), name
        except OSError:
            pass
    raise ImportError(
        "pythread: libpythread.so not found (tried $" + _ENV + ", " + ", ".join(tried) +
        "); build the project (sh scripts/build), install it (cmake --install), "
        "or set $" + _ENV + " to the library's path")


lib, library_path = _load()

_p = ctypes.c_void_p
_pp = ctypes.POINTER(ctypes.c_void_p)
_i = ctypes.c_int
_u = ctypes.c_uint
_d = ctypes.c_double
_s = ctypes.c_char_p

BARRIER_ACTION = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)

# include/pythread_inspect.h, field for field: who holds an object and who
# waits for it, which reprs show. tests/test_binding.py compares these with
# the C layout (tests/layout.c) so a change to the header cannot go unseen.
_TEXT_MAX = 256  # PT_INSPECT_TEXT_MAX


class InspectObject(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * _TEXT_MAX),
        ("kind", ctypes.c_int),
        ("mode", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("gid", ctypes.c_uint32),
        ("transient", ctypes.c_int),
        ("unlinked", ctypes.c_int),
        ("refs", ctypes.c_uint32),
        ("waiters", ctypes.c_uint32),
        ("locked", ctypes.c_int),
        ("value", ctypes.c_int64),
        ("initial", ctypes.c_int64),
        ("owned", ctypes.c_int),
        ("is_set", ctypes.c_int),
        ("parties", ctypes.c_uint32),
        ("n_waiting", ctypes.c_uint32),
        ("broken", ctypes.c_int),
        ("timeout", ctypes.c_double),
        ("token", ctypes.c_uint64),
        ("cond_lock", ctypes.c_char * _TEXT_MAX),
        ("acquires", ctypes.c_uint64),
        ("contended", ctypes.c_uint64),
        ("handed", ctypes.c_uint64),
        ("timeouts", ctypes.c_uint64),
        ("longest_wait", ctypes.c_double),
        ("longest_hold", ctypes.c_double),
        ("hidden", ctypes.c_int),
        ("restart", ctypes.c_int),  # pt_restart_mark
        ("deadlock", ctypes.c_uint64),
    ]


class InspectParty(ctypes.Structure):
    _fields_ = [
        ("session", ctypes.c_uint64),
        ("pid", ctypes.c_long),
        ("uid", ctypes.c_uint32),
        ("thread", ctypes.c_uint64),
        ("process", ctypes.c_char * _TEXT_MAX),
        ("seconds", ctypes.c_double),
        ("count", ctypes.c_uint64),
        ("what", ctypes.c_char * 16),
        ("deadlock", ctypes.c_uint64),
        ("waits", ctypes.c_char * _TEXT_MAX),
        ("waits_kind", ctypes.c_int),
        ("waits_owner", ctypes.c_int),
        ("connection_kept", ctypes.c_int),
        ("host", ctypes.c_char * _TEXT_MAX),
    ]


class InspectDetail(ctypes.Structure):
    _fields_ = [
        ("object", InspectObject),
        ("detail_denied", ctypes.c_int),
        ("n_holders", ctypes.c_size_t),
        ("holders", ctypes.POINTER(InspectParty)),
        ("n_waiters", ctypes.c_size_t),
        ("waiters", ctypes.POINTER(InspectParty)),
        ("more_waiters", ctypes.c_uint32),
    ]


_detail_pp = ctypes.POINTER(ctypes.POINTER(InspectDetail))

# name: (restype, argtypes). One table so prototypes never drift apart.
_PROTOTYPES = {
    "pt_strerror": (_s, [_i]),
    "pt_err_exception": (_s, [_i]),
    "pt_last_error_message": (_s, []),
    "pt_default_socket_path": (_i, [ctypes.c_char_p, ctypes.c_size_t]),
    "pt_client_open": (_i, [_pp, _s]),
    "pt_client_socket_path": (_s, [_p]),
    "pt_client_close": (None, [_p]),
    "pt_unlink": (_i, [_p, _s]),
    "pt_unlink_cluster": (_i, [_p, _s]),
    "pt_lock_open": (_i, [_p, _s, _i, _u, _pp]),
    "pt_lock_acquire": (_i, [_p, _i, _d]),
    "pt_lock_release": (_i, [_p]),
    "pt_lock_locked": (_i, [_p]),
    "pt_lock_close": (_i, [_p]),
    "pt_lock_as_object": (_p, [_p]),
    "pt_rlock_open": (_i, [_p, _s, _i, _u, _pp]),
    "pt_rlock_acquire": (_i, [_p, _i, _d]),
    "pt_rlock_release": (_i, [_p]),
    "pt_rlock_locked": (_i, [_p]),
    "pt_rlock_is_owned": (_i, [_p]),
    "pt_rlock_close": (_i, [_p]),
    "pt_rlock_as_object": (_p, [_p]),
    "pt_condition_open": (_i, [_p, _s, _p, _i, _u, _pp]),
    "pt_condition_acquire": (_i, [_p, _i, _d]),
    "pt_condition_release": (_i, [_p]),
    "pt_condition_wait": (_i, [_p, _d]),
    "pt_condition_notify": (_i, [_p, _u]),
    "pt_condition_notify_all": (_i, [_p]),
    "pt_condition_close": (_i, [_p]),
    "pt_semaphore_open": (_i, [_p, _s, ctypes.c_int64, _i, _i, _u, _pp]),
    "pt_semaphore_acquire": (_i, [_p, _i, _d]),
    "pt_semaphore_release": (_i, [_p, ctypes.c_uint32]),
    "pt_semaphore_value": (_i, [_p, ctypes.POINTER(ctypes.c_int64)]),
    "pt_semaphore_close": (_i, [_p]),
    "pt_event_open": (_i, [_p, _s, _i, _u, _pp]),
    "pt_event_set": (_i, [_p]),
    "pt_event_clear": (_i, [_p]),
    "pt_event_is_set": (_i, [_p]),
    "pt_event_wait": (_i, [_p, _d]),
    "pt_event_close": (_i, [_p]),
    "pt_barrier_open": (_i, [_p, _s, ctypes.c_uint32, BARRIER_ACTION, _p, _d, _i, _u, _pp]),
    "pt_barrier_wait": (_i, [_p, _d]),
    "pt_barrier_reset": (_i, [_p]),
    "pt_barrier_abort": (_i, [_p]),
    "pt_barrier_parties": (_i, [_p]),
    "pt_barrier_n_waiting": (_i, [_p]),
    "pt_barrier_broken": (_i, [_p]),
    "pt_barrier_close": (_i, [_p]),
    "pt_client_session_id": (ctypes.c_uint64, [_p]),
    "pt_client_set_deadlock": (_i, [_p, _i]),
    "pt_inspect_show": (_i, [_p, _s, _detail_pp]),
    "pt_inspect_cluster_show": (_i, [_p, _s, _detail_pp]),
    "pt_inspect_detail_free": (None, [ctypes.POINTER(InspectDetail)]),
}

for _name, (_res, _args) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args

# Values of include/pythread.h that ctypes cannot read from the header.
PT_FOREVER = -1.0
PT_TIMEOUT_MAX = 9223372036.0
PT_EBROKEN = -4
PT_EEXIST = -6
PT_OPEN_EXCL = 1 << 0
PT_OPEN_EXISTING = 1 << 1
PT_OPEN_TRANSIENT = 1 << 2
PT_OPEN_NOFAST = 1 << 5
PT_OPEN_DEADLOCK_FAIL = 1 << 6
PT_OPEN_CLUSTER = 1 << 7
PT_DEADLOCK_REPORT = 0
PT_DEADLOCK_FAIL = 1


class DeadlockError(RuntimeError):
    """A wait would have closed a cycle of lock waits (a deadlock) and its
    caller asked to fail rather than wait for ever (deadlock="fail"). The
    message names every owner in the cycle and what it holds and waits for.
    A RuntimeError, as CPython's own deadlock avoidance ("cannot join
    current thread") raises one."""

# Exception classes by the names pt_err_exception gives; BrokenBarrierError is
# threading's own class so existing except clauses catch ours.
_EXCEPTIONS = {
    "ValueError": ValueError,
    "RuntimeError": RuntimeError,
    "OverflowError": OverflowError,
    "BrokenBarrierError": threading.BrokenBarrierError,
    "FileNotFoundError": FileNotFoundError,
    "FileExistsError": FileExistsError,
    "TypeError": TypeError,
    "PermissionError": PermissionError,
    "OSError": OSError,
    "ConnectionError": ConnectionError,
    "MemoryError": MemoryError,
    "SystemError": SystemError,
    "DeadlockError": DeadlockError,
}


def error_from(code):
    """The exception for a negative result of a pt_ call, carrying the
    library's message for it. Must run on the thread that made the call:
    the message is thread-local."""
    message = lib.pt_last_error_message() or lib.pt_strerror(code)
    cls = _EXCEPTIONS.get((lib.pt_err_exception(code) or b"").decode(), OSError)
    return cls(message.decode("utf-8", "replace"))


def check(result):
    """result when it is a success (>= 0), else raise its exception."""
    if result < 0:
        raise error_from(result)
    return result
