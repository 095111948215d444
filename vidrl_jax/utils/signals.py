"""SIGTERM handled like Ctrl-C, so `with` blocks clean up (env workers, files).

    with sigterm_as_interrupt():
        long_running_work()      # SIGTERM raises KeyboardInterrupt here

Python's default SIGTERM ends the process at once, skipping `finally` and
`__exit__`; schedulers (SLURM, Kubernetes, `timeout`) stop jobs with SIGTERM.
Only the main thread can install handlers; elsewhere this is a no-op.
"""
import contextlib
import signal
import threading


def _raise_interrupt(signum, frame):
    del frame
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


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
