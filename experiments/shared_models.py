"""Keep a sweep's video models in a folder to commit, and put them back on a fresh machine.

    python -m experiments.shared_models save runs/ab_shared experiments/results/table50k_models
    python -m experiments.shared_models restore experiments/results/table50k_models runs/ab_shared

The video models built from one config differ from machine to machine (docs/results.md,
"Reproducibility across machines"), so a table whose cells ran on
several machines would mix models. `save` keeps each finished shared stage an agent
reads, `<stage>-<hash of its config>` of autoencoder, diffusion, goal and select (the
goal video and goal frame of each task), without what only resumes or re-derives it
(`checkpoints/`, diffusion's `latents.npz`), about 8 MB for 4 tasks. A stage kept once
is never replaced: the kept models are those the cells read. `restore` copies each
kept stage into the shared dir where that stage is missing or unfinished, so the
pipeline skips it (`demos` are not kept: 57 MB, and rendered alike on every machine
measured). Restored models are those of the machine that saved them, by the digests
each cell records (`results.json`'s `video_models`).
"""
import argparse
import glob
import os
import shutil
import sys

from vidrl_jax.stages import is_done

STAGES = ("autoencoder", "diffusion", "goal", "select")
SKIPPED = ("checkpoints", "latents.npz")  # resumable state, caches: not read downstream


def stage_dirs(root):
    """The finished `<stage>-<hash>` directories of STAGES in `root`, sorted."""
    return sorted(p for stage in STAGES for p in glob.glob(os.path.join(root, f"{stage}-*"))
                  if os.path.isdir(p) and is_done(p))


def _copy(src, dst):
    """src's files but SKIPPED into dst, written under a temporary name and renamed, so
    a kill leaves no half-copied stage that reads as finished."""
    tmp = f"{dst}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(*SKIPPED))
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)


def copy_missing(src, dst):
    """Copies each finished stage of `src` that `dst` lacks or has unfinished (an
    unfinished build is replaced); returns their names. `save` is (shared dir, kept
    folder): a stage kept once is never replaced; `restore` is (kept folder, shared dir)."""
    os.makedirs(dst, exist_ok=True)
    new = [os.path.basename(p) for p in stage_dirs(src)
           if not is_done(os.path.join(dst, os.path.basename(p)))]
    for name in new:
        _copy(os.path.join(src, name), os.path.join(dst, name))
    return new


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("save", "restore"))
    parser.add_argument("src", help="save: the shared dir; restore: the kept folder")
    parser.add_argument("dst", help="save: the kept folder; restore: the shared dir")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.src):
        what = ("a shared dir (a sweep's --shared_dir)" if args.action == "save"
                else "a folder of kept stages (made by `save`)")
        raise SystemExit(f"error: experiments.shared_models {args.action}: {args.src} is not "
                         f"{what}")
    done = copy_missing(args.src, args.dst)
    verb = "kept" if args.action == "save" else "restored"
    print(f"[shared_models] {verb} {len(done)} stage(s){': ' if done else ''}"
          f"{', '.join(done)}", file=sys.stderr)


if __name__ == "__main__":
    main()
