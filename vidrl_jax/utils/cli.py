"""Command-line entry points: user errors as one line on stderr, exit status 2."""
import sys

from vidrl_jax.errors import VidrlError


def run_absl_main(main):
    """absl's app.run(main), with a VidrlError printed as `error: ...` (no traceback)."""
    from absl import app
    try:
        app.run(main)
    except VidrlError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
