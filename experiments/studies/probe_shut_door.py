"""Does a frame tell the task done from the task undone, the arm where the expert left it?

    python -m experiments.studies.probe_shut_door --task=door-open-v3 [--camera=corner2]
        [--sizes=32,64,128] [--episodes=5]

A counterfactual at each frame size: an expert episode of the task (seeds as
experiments.eval_reward's) is run to its first success and 10 steps on; its last frame
is the task done. The same state with the task's object joint (the door's hinge, the
window's slide, ...) put back where the episode's reset left it, and rendered again, is
the task undone with the arm exactly where the expert left it. The goal video is a real
expert demo (--goal=expert's), so nothing here depends on a trained model. Scored by
the pixel forms of eval_reward (experiments/progress_probes.py): progress on the
whole frame, located cell by cell, projected, and with the arm masked. For each:
the done and undone frames' mean reward, random episodes' mean per step, and the lead
of done over undone as a share of done minus random (1: the undone frame is paid as a
random episode; 0: as the task done). Printed as a table; --out writes it as JSON.
"""
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

from absl import flags  # noqa: E402

from vidrl_jax.envs.counterfactual import (SEED_BASE, expert_episode, object_joint,  # noqa: E402,F401
                                           random_episode, undone_frame)
from vidrl_jax.errors import VidrlError  # noqa: E402
from vidrl_jax.utils.cli import run_absl_main  # noqa: E402

GRID = 8            # cells per side, as the VAE's latent grid at 32 px
TEMPERATURE = 0.1   # reward.video_progress_temperature's default
AFTER_SUCCESS = 10  # steps the expert goes on after its first success


def define_flags():
    """The command's flags (defined only when it runs as a command: eval_reward, which
    tests import beside this module, defines flags of the same names)."""
    flags.DEFINE_string("task", "door-open-v3", "Meta-World task.")
    flags.DEFINE_string("camera", "corner2", "env.camera.")
    flags.DEFINE_list("sizes", ["32", "64", "128"], "Frame sizes (pixels).")
    flags.DEFINE_integer("episodes", 5, "Expert and random episodes per size.")
    flags.DEFINE_string("out", None, "Also write the results here as JSON.")


def probe(task, camera, size, episodes):
    """{form: {"done", "undone", "random", "lead"}} at one frame size."""
    import numpy as np

    from experiments.progress_probes import (local_progress, masked_progress, pixel_cells,
                                             projected_progress)
    from vidrl_jax.envs.metaworld_env import MetaWorldEnv
    from vidrl_jax.rewards.video_level import frame_progress
    if size % GRID:
        raise VidrlError(f"--sizes: {size} is not a multiple of {GRID} (the cells' grid)")
    env = MetaWorldEnv(task, size=size, camera=camera)
    try:
        frames, first, _ = expert_episode(env, task, SEED_BASE + 999_999, 0)
        goal = frames[np.round(np.linspace(0, first, 17)).astype(int)]
        done, undone = [], []
        for seed in range(SEED_BASE, SEED_BASE + episodes):
            frames, _, q0 = expert_episode(env, task, seed, AFTER_SUCCESS)
            done.append(frames[-1])
            undone.append(undone_frame(env, q0))
        rand = [random_episode(env, s)["frames"]
                for s in range(SEED_BASE + 100, SEED_BASE + 100 + episodes)]
    finally:
        env.close()
    g = pixel_cells(goal, GRID)
    forms = {
        "progress": lambda x: np.asarray(frame_progress(g, pixel_cells(x, GRID), TEMPERATURE)),
        "progress_local": lambda x: local_progress(g, pixel_cells(x, GRID), GRID ** 2, TEMPERATURE),
        "progress_proj": lambda x: projected_progress(g, pixel_cells(x, GRID)),
        "progress_masked": lambda x: masked_progress(goal, x, TEMPERATURE),
    }
    out = {}
    for name, fn in forms.items():
        d, u = float(fn(np.stack(done)).mean()), float(fn(np.stack(undone)).mean())
        r = float(np.mean([fn(x).mean() for x in rand]))
        out[name] = {"done": d, "undone": u, "random": r, "lead": (d - u) / max(d - r, 1e-8)}
    return out


def format_table(task, camera, results):
    lines = [f"{task}, camera {camera}: done / undone / random per step (lead of done)",
             "| size | " + " | ".join(next(iter(results.values()))) + " |",
             "|---" * (1 + len(next(iter(results.values())))) + "|"]
    for size, forms in results.items():
        cells = [f"{v['done']:.2f} / {v['undone']:.2f} / {v['random']:.2f} ({v['lead']:.2f})"
                 for v in forms.values()]
        lines.append(f"| {size} px | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    del argv
    from vidrl_jax.envs.tasks import check_task
    f = flags.FLAGS
    task = check_task(f.task, "--task")
    try:
        sizes = [int(s) for s in f.sizes]
    except ValueError:
        raise VidrlError(f"--sizes={','.join(f.sizes)}: give frame sizes in pixels, "
                         "e.g. --sizes=32,64") from None
    from vidrl_jax.envs.metaworld_env import CAMERAS
    if f.camera not in CAMERAS:
        raise VidrlError(f"--camera={f.camera!r} is not a Meta-World camera; valid: "
                         f"{', '.join(CAMERAS)}")
    results = {size: probe(task, f.camera, size, f.episodes) for size in sizes}
    print(format_table(task, f.camera, results))
    if f.out:
        with open(f.out, "w") as out:
            json.dump({"task": task, "camera": f.camera, "results": results}, out, indent=1)


if __name__ == "__main__":
    define_flags()
    run_absl_main(main)
