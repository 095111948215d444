"""Progress bars for long work (tqdm), silent in CI and when not on a terminal."""
import os
import sys

from tqdm.auto import tqdm


def enabled():
    return os.environ.get("VIDRL_NO_PROGRESS", "") != "1" and sys.stderr.isatty()


def progress(iterable=None, total=None, desc="", **kwargs):
    """tqdm over `iterable` (or a manual bar of `total`), off when not interactive."""
    return tqdm(iterable, total=total, desc=desc, disable=not enabled(),
                dynamic_ncols=True, **kwargs)
