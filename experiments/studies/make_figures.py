"""The README's figures, made from committed results and kept models.

    python -m experiments.studies.make_figures [--out=docs/img] [--scale=4]
        [--agent_gif=RUN/agent/eval_last.gif]

Writes into --out:
  goal_vs_demo.gif   per task (rows: door-open, drawer-close, handle-press, window-open),
                     the goal video the kept video models generated
                     (experiments/results/table50k_models/goal-*/goal_video.npz) beside a
                     real expert demo of the same task rendered now (scripted expert, the
                     same camera and size, resampled to the goal video's length), at
                     --scale times the 32 px frames (nearest neighbour)
  goal_vs_demo.png   the same for door-open-v3 as a still strip: generated above, real below
  success_curves.png eval success (mean ± std over 3 seeds) against env steps, a panel per
                     task, from experiments/results/metaworld.csv (score + fz) and
                     metaworld_perstep.csv (progress + bsim, the defaults)
  gates.png          the reward gates before RL: AUC of done against undone and against
                     random frames, per task and reward (genreward's video term, the
                     learned discriminator, the progress net), from
                     experiments/results/gates_*.json
  agent_door_open.gif  (with --agent_gif) a run's last eval episode at --scale times
Measures nothing new: it draws what the table's runs and models hold.
"""
import argparse
import glob
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

RESULTS = "experiments/results"
TASKS = ("door-open-v3", "drawer-close-v3", "handle-press-v3", "window-open-v3")
SEED = 7_000_000  # a real episode's seed, far from the demo seeds (as counterfactual's)
# (cell reward and fields, label, colour, line style) of the success curves
CURVES = (
    ("dense", "dense (env reward)", "black", "-"),
    ("sparse", "sparse (env success)", "grey", "-"),
    ("genreward video_form=progress_frame_form=bsim", "genreward", "tab:blue", "-"),
    ("genreward+dense video_form=progress_frame_form=bsim", "genreward+dense", "tab:orange",
     "-"),
    ("genreward", "genreward (score + fz)", "tab:blue", ":"),
    ("genreward+dense", "genreward+dense (score + fz)", "tab:orange", ":"),
)


def kept_goal_videos(models=os.path.join(RESULTS, "table50k_models")):
    """{task: generated goal video frames [T,32,32,3] uint8} of the kept video models."""
    out = {}
    for path in sorted(glob.glob(os.path.join(models, "goal-*", "goal_video.npz"))):
        with open(os.path.join(os.path.dirname(path), "config.json")) as f:
            task = json.load(f)["env"]["task"]
        out[task] = np.load(path)["frames"]
    return out


def real_demo(task, length, size=32, camera="corner2"):
    """A scripted expert's episode of `task` to its first success and 10 steps on,
    resampled to `length` frames [length,size,size,3] uint8."""
    from vidrl_jax.envs.counterfactual import expert_episode
    from vidrl_jax.envs.metaworld_env import MetaWorldEnv
    env = MetaWorldEnv(task, size=size, camera=camera)
    try:
        frames, _, _ = expert_episode(env, task, SEED, 10)
    finally:
        env.close()
    return frames[np.linspace(0, len(frames) - 1, length).round().astype(int)]


def upscale(frames, scale):
    """Nearest-neighbour upscaling of [..., H, W, 3] frames by an integer factor."""
    return frames.repeat(scale, axis=-3).repeat(scale, axis=-2)


def side_by_side(pairs, scale, gap=4):
    """[(generated [T,H,W,3], real [T,H,W,3])] -> one video [T, rows*(H*s+gap), 2*W*s+gap, 3]:
    a row per pair, generated left, real right, white gaps between."""
    rows = []
    for generated, real in pairs:
        g, r = upscale(generated, scale), upscale(real, scale)
        white = np.full(g.shape[:2] + (gap, 3), 255, np.uint8)
        row = np.concatenate([g, white, r], axis=2)
        rows += [row, np.full(row.shape[:1] + (gap,) + row.shape[2:], 255, np.uint8)]
    return np.concatenate(rows[:-1], axis=1)


def summary_curves(paths):
    """{(task, 'reward fields'): (env steps [E], mean [E], std [E])} of sweep summaries."""
    from experiments.studies.goals import parse_cell, read_rows
    out = {}
    for name, row in read_rows(paths).items():
        task, reward, fields = parse_cell(name)
        points = sorted((int(k.split("@")[1]), v) for k, v in row.items()
                        if k.startswith("success@") and v not in ("", "-"))
        steps = np.array([s for s, _ in points])
        values = np.array([[float(x) for x in v.split("±")] for _, v in points])
        out[task, " ".join([reward] + ([fields] if fields else []))] = (
            steps, values[:, 0], values[:, 1])
    return out


def plot_success(curves, path):
    """success_curves.png: a panel per task, a line per CURVES entry with a ± std band."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidrl_jax.utils.video_io import save_figure
    fig, axes = plt.subplots(1, len(TASKS), figsize=(4 * len(TASKS), 3.4), dpi=100,
                             sharey=True)
    for ax, task in zip(axes, TASKS):
        for key, label, colour, style in CURVES:
            if (task, key) not in curves:
                continue
            x, mean, std = curves[task, key]
            ax.plot(x / 1000, mean, style, color=colour, label=label, lw=1.8)
            if style == "-":
                ax.fill_between(x / 1000, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1),
                                color=colour, alpha=0.12, lw=0)
        ax.set_title(task)
        ax.set_xlabel("env steps (thousands)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("eval success (3 seeds)")
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9, frameon=False)
    fig.tight_layout()
    save_figure(path, fig)


GATE_TASKS = ("door-open-v3", "drawer-open-v3", "drawer-close-v3", "handle-press-v3")
# (file prefix, term scored, label, colour) of the gates figure
GATES = (("gates_genreward", "video", "genreward (video term)", "tab:blue"),
         ("gates", "learned", "learned (discriminator)", "tab:grey"),
         ("gates_progress_net", "progress_net", "progress net", "tab:green"))


def gate_aucs(results=RESULTS):
    """{(prefix, task): {"auc_undone", "auc_random"}} of the committed gates files."""
    out = {}
    for prefix, term, _, _ in GATES:
        for task in GATE_TASKS:
            path = os.path.join(results, f"{prefix}_{task}.json")
            if os.path.exists(path):
                with open(path) as f:
                    r = json.load(f)["terms"][term]
                out[prefix, task] = {k: r[k] for k in ("auc_undone", "auc_random")}
    return out


def plot_gates(aucs, path):
    """gates.png: two panels (done vs undone, done vs random), a bar group per task."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidrl_jax.utils.video_io import save_figure
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), dpi=100, sharey=True)
    width = 0.8 / len(GATES)
    x = np.arange(len(GATE_TASKS))
    for ax, key, title in zip(axes, ("auc_undone", "auc_random"),
                              ("task done vs undone (arm in place)", "task done vs random")):
        for i, (prefix, _, label, colour) in enumerate(GATES):
            v = [aucs.get((prefix, t), {}).get(key, np.nan) for t in GATE_TASKS]
            ax.bar(x + (i - (len(GATES) - 1) / 2) * width, v, width, color=colour, label=label)
        ax.axhline(0.9, color="black", ls="--", lw=1)
        ax.axhline(0.5, color="grey", ls=":", lw=1)
        ax.set_xticks(x, [t.removesuffix("-v3") for t in GATE_TASKS])
        ax.set_ylim(0, 1.02)
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("AUC before RL (gate: 0.9)")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9, frameon=False)
    fig.tight_layout()
    save_figure(path, fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img", help="folder for the figures")
    parser.add_argument("--scale", type=int, default=4, help="upscaling of the 32 px frames")
    parser.add_argument("--agent_gif", default=None,
                        help="a run's agent/eval_last.gif, drawn as agent_door_open.gif")
    args = parser.parse_args(argv)
    from vidrl_jax.utils.video_io import save_gif, save_png

    os.makedirs(args.out, exist_ok=True)
    plot_success(summary_curves([os.path.join(RESULTS, "metaworld.csv"),
                                 os.path.join(RESULTS, "metaworld_perstep.csv")]),
                 os.path.join(args.out, "success_curves.png"))
    plot_gates(gate_aucs(), os.path.join(args.out, "gates.png"))
    goals = kept_goal_videos()
    pairs = {task: (goals[task], real_demo(task, len(goals[task]))) for task in TASKS}
    save_gif(os.path.join(args.out, "goal_vs_demo.gif"),
             side_by_side([pairs[t] for t in TASKS], args.scale), fps=6)
    generated, real = pairs["door-open-v3"]
    strip = [upscale(generated[::2], args.scale), upscale(real[::2], args.scale)]
    from vidrl_jax.utils.video_io import frame_strip
    save_png(os.path.join(args.out, "goal_vs_demo.png"), frame_strip(strip))
    if args.agent_gif:
        from vidrl_jax.utils.video_io import read_gif
        save_gif(os.path.join(args.out, "agent_door_open.gif"),
                 upscale(read_gif(args.agent_gif), args.scale), fps=20)
    print(f"[make_figures] wrote goal_vs_demo.gif, goal_vs_demo.png, success_curves.png "
          f"in {args.out}")


if __name__ == "__main__":
    main()
