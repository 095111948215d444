"""Benchmarks, printed as JSON lines; speed is reported as ratios measured in one run.

    python -m experiments.bench --what=envs|video|clip|train_step|pipeline [bench flags]

Each benchmark lives in `experiments/benches/<what>.py` with `main(argv)`.
"""
import argparse
import importlib
import os
import pkgutil
import sys

os.environ.setdefault("MUJOCO_GL", "egl")


def available():
    import experiments.benches as benches
    return sorted(m.name for m in pkgutil.iter_modules(benches.__path__))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", required=True, help=f"one of {', '.join(available())}")
    args, rest = parser.parse_known_args(argv)
    if args.what not in available():
        print(f"error: --what={args.what!r} unknown; choose one of {', '.join(available())}",
              file=sys.stderr)
        sys.exit(2)
    importlib.import_module(f"experiments.benches.{args.what}").main(rest)


if __name__ == "__main__":
    main()
