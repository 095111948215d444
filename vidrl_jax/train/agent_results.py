"""What an agent run reports: results.json's record and success.png.

    record = results_record(config, counters, learner, encoders.fingerprints)
    plot_success(record, "success.png")
"""
import json

import numpy as np

from vidrl_jax.utils.video_io import save_figure


def results_record(config, counters, learner, video_models):
    """results.json content of an agent run (counters: the loop's, with its eval
    history; learner: vidrl_jax/train/learner.Learner): per seed and mean ± std over
    seeds; video_models: the digests of the video models and goal the rewards read
    (RewardEncoders.fingerprints; {} for a reward that reads none)."""
    c, lr = counters, learner
    hist = c["history"]
    curve = np.array([h["success"] for h in hist])          # [E, S]
    final = curve[-1]
    best = curve.max(axis=0)
    wall = c["wall_time"]
    out = {
        "config": config.to_dict(),
        "seeds": lr.seeds,
        "layout": lr.layout,
        "processes": lr.num_processes,
        "env_steps": c["env_steps"],
        "updates": c["updates"],
        "success_curve": {"env_steps": [h["env_steps"] for h in hist],
                          "success": curve.tolist(),
                          "final_success": [h["final_success"] for h in hist]},
        "final_success": final.tolist(), "best_success": best.tolist(),
        "final_success_mean": float(final.mean()), "final_success_std": float(final.std()),
        "best_success_mean": float(best.mean()), "best_success_std": float(best.std()),
        "final_returns": hist[-1]["returns"],
        # each reward term's running mean and std over what the updates saw (mean
        # over seeds): whether one term drowns the others
        "reward_running": {t: {"mean": m, "std": sd} for t, (m, sd)
                           in lr.reward_running_stats().items()},
        "wall_time_s": wall,
        "env_steps_per_s": c["env_steps"] * lr.num_seeds / max(wall, 1e-9),
        "bytes_per_transition": lr.bytes_per_transition,
        "video_models": video_models,
    }
    if lr.num_processes > 1:
        out["agents_identical_across_processes"] = lr.replicas_agree()
    return json.loads(json.dumps(out, default=list))


def plot_success(results, path):
    """success.png: eval success rate against env steps, one line per seed + mean."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = results["success_curve"]["env_steps"]
    y = np.array(results["success_curve"]["success"])
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for s, seed in enumerate(results["seeds"]):
        ax.plot(x, y[:, s], alpha=0.4, label=f"seed {seed}")
    ax.plot(x, y.mean(axis=1), color="k", lw=2, label="mean")
    ax.set_xlabel("env steps")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"{results['config']['env']['task']} ({results['config']['variants']})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(path, fig)
