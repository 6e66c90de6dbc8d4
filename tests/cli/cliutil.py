"""What the pythreadctl tests share: waiting is polling with a deadline,
never a fixed sleep."""
import time

DEADLINE = 20.0


def poll(pred, what, timeout=DEADLINE):
    """pred() until it is true; a failing check inside counts as not yet
    (the object may not exist yet) and is reported on timeout."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            v = pred()
            if v:
                return v
        except AssertionError as e:
            last = e
        time.sleep(0.01)
    raise AssertionError("timed out waiting for %s (last: %s)" % (what, last))
