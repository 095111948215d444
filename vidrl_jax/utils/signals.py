"""SIGTERM handled like Ctrl-C, so `with` blocks clean up (env workers, files).

    with sigterm_as_interrupt():
        long_running_work()      # SIGTERM raises KeyboardInterrupt here

Python's default SIGTERM ends the process at once, skipping `finally` and
`__exit__`; schedulers (SLURM, Kubernetes, `timeout`) stop jobs with SIGTERM.
Only the main thread can install handlers; elsewhere this is a no-op.

Python swallows an exception raised in a `__del__` or a garbage-collection callback
(printing "Exception ignored" and a traceback), so a signal that lands there is only
remembered, and every signal is: long loops call `raise_if_interrupted()` once per
step, which raises it.
"""
import contextlib
import gc
import signal
import threading


_received = []  # signals received inside the current sigterm_as_interrupt block


def _in_finalizer(frame):
    """Whether `frame` runs inside a `__del__` or a gc callback (e.g. JAX's), where a
    raised exception would be printed and lost."""
    callbacks = {getattr(cb, "__code__", None) for cb in gc.callbacks}
    while frame is not None:
        if frame.f_code.co_name == "__del__" or frame.f_code in callbacks:
            return True
        frame = frame.f_back
    return False


def _raise_interrupt(signum, frame):
    _received.append(signum)
    if not _in_finalizer(frame):
        raise_if_interrupted()


def raise_if_interrupted():
    """KeyboardInterrupt if a SIGTERM arrived in this block (even if the handler's own
    exception was lost); it stays remembered until the block ends."""
    if _received:
        raise KeyboardInterrupt(f"signal {signal.Signals(_received[-1]).name}")


@contextlib.contextmanager
def sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _received.clear()
