"""SIGTERM handled like Ctrl-C, so `with` blocks clean up (env workers, files).

    with sigterm_as_interrupt():
        long_running_work()      # SIGTERM raises KeyboardInterrupt here

Python's default SIGTERM ends the process at once, skipping `finally` and
`__exit__`; schedulers (SLURM, Kubernetes, `timeout`) stop jobs with SIGTERM.
Only the main thread can install handlers; elsewhere this is a no-op.

A handler's exception is swallowed (printed as "Exception ignored") when the signal
lands in a `__del__` or a garbage-collection callback, so the signal is also
remembered: long loops call `raise_if_interrupted()` once per step.
"""
import contextlib
import signal
import threading


_received = []  # signals received inside the current sigterm_as_interrupt block


def _raise_interrupt(signum, frame):
    del frame
    _received.append(signum)
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
