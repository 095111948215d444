"""Reward quality of the video-level reward, VAE latents vs raw pixels side by side.

    python -m experiments.eval_reward --workdir=DIR [--task=door-open-v3] [--goal=auto]
        [--episodes=10] [--noise=auto] [--other_tasks=3] [--window=16] [--stride=4]

Loads the VAE (DIR/autoencoder) and the goal video (DIR/goal/goal_video.npz;
`--goal=expert` or, with `--goal=auto`, a missing goal stage, uses a fresh
expert episode of the task resampled to the VAE clip length instead — the
output says which; `--goal=generated_latents` takes the VAE goal embedding from
the sampled latents instead of re-encoding the decoded frames, centred on the
real first frame held still, as `reward.video_goal=sampled` does). Collects
fresh episodes (seeds far from the demo seeds): expert, uniform random policy,
noisy expert (Gaussian action noise, `auto` picks the std whose success rate is
nearest 1/2 on a state-only calibration run) and experts of other tasks. Every `stride` steps the agent's video (the
episode so far, or its last `window` frames; vidrl_jax/rewards/video_level.py)
resampled to the goal length is scored against the goal video, with E the
flattened VAE posterior mean (`vae`) or the flattened pixels (`pixels`):
  cosine            cos(E(video), E(goal))                       (GenReward's)
  centred_cosine    the same after subtracting, from each, E of its first frame
                    held still (the static scene cancels)
  centred_distance  -|centred E(video) - centred E(goal)| / |centred E(goal)|
An episode's score is the mean reward over its windows (what the agent's return
sums). Results are keyed `<vae|pixels>/<episode|last>/<reward>`; `configured`
names the one the default config pays.

The per-step forms of `reward.video_form` (vidrl_jax/rewards/terms.py) are scored
beside them, on the VAE:
  vae/<mode>/shaped_<reward>  γ·Φ_{t+1} − Φ_t with Φ the configured score (`<mode>`,
                    `<reward>`) refreshed every `stride` steps (what an agent with
                    reward.video_stride=stride gets; Φ_0: the 1-frame episode),
                    γ = agent.discount. Its episode score is the mean over all steps;
                    it telescopes, so its expert/random AUC is roughly the final
                    window's; the progress Spearman is taken over the steps where Φ
                    is refreshed (the others pay (γ−1)Φ_t), the informative figure.
  vae/frame/progress[_tX]   the frame's single-frame VAE latent located on the goal
                    video's frames (vidrl_jax/rewards/video_level.frame_progress), in
                    [0, 1], every step, at the configured temperature and gate (and
                    at temperature X).
  vae/frame/progress_gX  the same with reward.video_progress_gate X (the configured
                    temperature): progress × exp(-d_min/X), d_min the frame's distance
                    to the nearest goal frame.
  vae/frame/progress_local, vae/frame/progress_proj  probes, not reward options
                    (experiments/progress_probes.py): progress located cell by cell of
                    the latent grid, averaged over the cells the goal video moves; the
                    frame's displacement projected on the goal's first-to-last motion.
  pixels/frame/progress[_local|_proj]  the same three on the frame's raw pixels (cells:
                    the latent grid's), what the VAE keeps of the frame set aside.
  pixels/frame/progress_masked  progress on raw pixels with Meta-World's red arm masked
                    out of both the frame and the goal frames (the scene's state only).

Metrics (per reward): expert vs random ROC-AUC; noisy success vs failure ROC-AUC;
progress = mean over successful expert episodes of Spearman(window end time,
reward) over windows ending up to the first success; expert of the task vs
experts of other tasks ROC-AUC; with --agent_gifs, expert vs agent ROC-AUC (the GIFs'
256-colour palette shifts the frames a little: read an expert's episode through it to
size the shift). Each group's mean per-step reward (`mean_reward`) and mean reward at
its last step (`final_reward`) are kept beside them. Written to DIR/goal/metrics.json under
`reward_quality.<task>` (other keys of the file are kept) and printed.
"""
import json
import logging
import os
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

from absl import flags  # noqa: E402

from experiments.reward_eval_episodes import (  # noqa: E402
    DEFAULT_OTHER_TASKS, SEED_BASE, calibrate_noise, collect, env_config_of, read_agent_gif,
    read_json)
from experiments.reward_eval_scores import Scorer, configured_key, quality  # noqa: E402
from vidrl_jax.errors import VidrlError  # noqa: E402
from vidrl_jax.utils.cli import run_absl_main  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Pipeline workdir (needs autoencoder/).")
_TASK = flags.DEFINE_string("task", None, "Task (default: the goal video's, else env.task).")
_GOAL = flags.DEFINE_enum("goal", "auto", ["auto", "generated", "generated_latents", "expert"],
                          "Goal video: the goal stage's (generated: its decoded frames, "
                          "re-encoded; generated_latents: the VAE goal embedding is the "
                          "sampled latents themselves), an expert demo, or generated if it "
                          "exists (its sampled latents when saved) else expert (auto).")
_EPISODES = flags.DEFINE_integer("episodes", 10, "Episodes per group (noisy: 2x).")
_NOISE = flags.DEFINE_string("noise", "auto", "Noisy-expert action noise std, or 'auto'.")
_OTHER = flags.DEFINE_integer("other_tasks", 3, "Number of other tasks whose experts are negatives.")
_WINDOW = flags.DEFINE_integer("window", None, "Window length W (default config reward.window or 16).")
_STRIDE = flags.DEFINE_integer("stride", 4, "Steps between window ends.")
_SEED = flags.DEFINE_integer("seed", 0, "Base seed of the evaluation episodes.")
_AGENT_GIFS = flags.DEFINE_list(
    "agent_gifs", [], "GIFs of trained agents' episodes (e.g. <cell>/agent/eval_last.gif), "
    "comma-separated: an `agent` group, scored beside the expert's (does the reward pay "
    "what the agent learned more than what the expert does?).")


def load_goal(workdir, cfg, env_cfg, task_flag, goal_flag):
    """(task, source, goal_frames [T,H,W,3], goal_latents or None, first_frame or None,
    description) of the goal the flags name (module docstring)."""
    import numpy as np

    from vidrl_jax.envs.tasks import check_task
    from vidrl_jax.errors import StageMissingError
    goal_path = os.path.join(workdir, "goal", "goal_video.npz")
    goal_task, has_sampled = None, False
    if os.path.exists(goal_path):
        with np.load(goal_path) as g:
            goal_task = str(g["task"]) if "task" in g else None
            has_sampled = "sampled_latents" in g
    task = check_task(task_flag or goal_task or env_cfg["task"], "--task")
    source, goal_latents, first_frame = goal_flag, None, None
    if source == "auto":
        source = "generated" if os.path.exists(goal_path) and goal_task in (None, task) else "expert"
        if source == "generated" and has_sampled:  # what reward.video_goal=sampled pays
            source = "generated_latents"
        if source == "expert":
            print(f"note: no generated goal video for {task} in {goal_path} (run the goal "
                  f"stage); using a real expert demo as the goal instead", file=sys.stderr)
    if source in ("generated", "generated_latents"):
        if not os.path.exists(goal_path):
            raise StageMissingError(f"no goal video at {goal_path}: run the goal stage "
                                    f"(--stages=goal) or pass --goal=expert")
        if goal_task not in (None, task):
            raise VidrlError(f"the goal video is of {goal_task}, not --task={task}; "
                             f"pass --goal=expert or run the goal stage for {task}")
        with np.load(goal_path) as g:
            goal_frames = np.asarray(g["frames"])
            if source == "generated_latents":
                if not has_sampled:
                    raise VidrlError(f"{goal_path} has no sampled_latents (made before they "
                                     "were saved): re-run the goal stage")
                goal_latents, first_frame = g["sampled_latents"], g["first_frame"]
        desc = (f"generated goal video {goal_path} ({len(goal_frames)} frames"
                + (", VAE goal = its sampled latents)" if goal_latents is not None else ")"))
    else:
        length = 1 + 4 * cfg.temporal_downsample  # 17 for td=4
        demo = collect(task, env_cfg, [SEED_BASE + 999_999], "expert")[0]
        idx = np.round(np.linspace(0, demo["first_success"] or len(demo["frames"]) - 1,
                                   length)).astype(int)
        goal_frames = demo["frames"][idx]
        desc = (f"expert demo (seed {SEED_BASE + 999_999}) from reset to first "
                f"success, resampled to {length} frames")
    return task, source, goal_frames, goal_latents, first_frame, desc


def collect_groups(task, env_cfg, n, seed, noise, other_tasks):
    """{'expert', 'random', 'noisy', 'other': episodes} (collect()'s dicts) of `n`
    episodes each (noisy: 2n; other: max(n // 2, 2) per other task)."""
    base = SEED_BASE + 1000 * seed
    groups = {
        "expert": collect(task, env_cfg, range(base, base + n), "expert"),
        "random": collect(task, env_cfg, range(base + 100, base + 100 + n), "random"),
        "noisy": collect(task, env_cfg, range(base + 200, base + 200 + 2 * n), "noisy", noise),
    }
    groups["other"] = [ep for j, t in enumerate(other_tasks)
                       for ep in collect(t, env_cfg, range(base + 300 + 10 * j,
                                                           base + 300 + 10 * j + max(n // 2, 2)),
                                         "expert")]
    return groups


def score_groups(scorer, groups, stride, gamma, temperature, gate):
    """{reward key: {group: [{'ends', 'rewards', 'mean', 'final'}] per episode}}: every
    form of the reward (Scorer.rewards and Scorer.step_rewards) of every episode."""
    import numpy as np
    per = {}
    for g, eps in groups.items():
        for e in eps:
            ends, r = scorer.rewards(e["frames"], stride)
            for k, v in r.items():
                per.setdefault(k, {}).setdefault(g, []).append(
                    {"ends": ends, "rewards": v, "mean": float(np.mean(v)), "final": float(v[-1])})
            forms = scorer.step_rewards(e["frames"], stride, ends, r, configured_key(),
                                        gamma, temperature, gate)
            for k, (f_ends, v, steps) in forms.items():
                per.setdefault(k, {}).setdefault(g, []).append(
                    {"ends": f_ends, "rewards": v, "mean": float(np.mean(steps)),
                     "final": float(steps[-1])})
    return per


def main(argv):
    del argv
    import numpy as np

    from configs.metaworld import get_config
    from vidrl_jax.models import vae3d

    logging.getLogger().setLevel(logging.INFO)
    workdir = _WORKDIR.value
    if not workdir:
        raise VidrlError("--workdir is required (the pipeline workdir with autoencoder/)")
    t0 = time.time()
    cfg, params = vae3d.load(os.path.join(workdir, "autoencoder"))
    env_cfg = env_config_of(workdir)
    if env_cfg["size"] != cfg.size:
        raise VidrlError(f"env.size={env_cfg['size']} but the VAE was trained at {cfg.size}px")
    task, source, goal_frames, goal_latents, first_frame, goal_desc = load_goal(
        workdir, cfg, env_cfg, _TASK.value, _GOAL.value)
    window = _WINDOW.value or 16
    scorer = Scorer(cfg, params, goal_frames, window, goal_latents, first_frame)
    agent = [dict(frames=read_agent_gif(p, goal_frames.shape[1:]), success=None,
                  first_success=None, task=task, seed=None) for p in _AGENT_GIFS.value]

    if _NOISE.value == "auto":
        noise, rates = calibrate_noise(task, env_cfg, _SEED.value)
        logging.info("noise calibration (std: success rate): %s -> %s", rates, noise)
    else:
        noise, rates = float(_NOISE.value), None
    others = [t for t in DEFAULT_OTHER_TASKS if t != task][:_OTHER.value]
    groups = collect_groups(task, env_cfg, _EPISODES.value, _SEED.value, noise, others)
    if agent:
        groups["agent"] = agent
    logging.info("collected %s episodes in %.0f s", {g: len(v) for g, v in groups.items()},
                 time.time() - t0)
    defaults = get_config()
    gamma = float(defaults.agent.discount)
    temperature = float(defaults.reward.video_progress_temperature)
    gate = float(defaults.reward.video_progress_gate)
    per = score_groups(scorer, groups, _STRIDE.value, gamma, temperature, gate)
    result = {
        "task": task,
        "goal_source": source,
        "goal": goal_desc,
        "configured": configured_key(),
        "rewards": {k: quality(groups, v) for k, v in per.items()},
        "episodes": {g: len(v) for g, v in groups.items()},
        "success_rate": {g: float(np.mean([e["success"] for e in v]))
                         for g, v in groups.items() if g != "agent"},
        "agent_gifs": _AGENT_GIFS.value,
        "noise_std": noise, "noise_calibration": rates,
        "other_tasks": others,
        "window": window, "stride": _STRIDE.value, "goal_length": scorer.length,
        "shaped_discount": gamma, "progress_temperature": temperature,
        "progress_gate": gate,
        "vae_dir": os.path.join(workdir, "autoencoder"),
        "holdout_task": read_json(os.path.join(workdir, "autoencoder", "config.json")).get(
            "diffusion.holdout_task"),
        "seconds": round(time.time() - t0, 1),
    }
    result = _no_nan(result)
    os.makedirs(os.path.join(workdir, "goal"), exist_ok=True)
    path = os.path.join(workdir, "goal", "metrics.json")
    metrics = read_json(path)
    metrics.setdefault("reward_quality", {})[task] = result
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(metrics, f, indent=1, default=str)
    os.replace(tmp, path)
    print(format_table(result))
    print(f"full results: {path} (reward_quality.{task})")


def format_table(result):
    """A Markdown table of the headline metrics of every reward in `result`."""
    cols = {"auc_expert_vs_random": "expert/random AUC",
            "auc_noisy_success_vs_fail": "noisy succ/fail AUC",
            "spearman_progress": "progress Spearman",
            "auc_expert_vs_other_task_experts": "expert/other-task AUC"}
    agent = bool(result.get("agent_gifs"))
    if agent:
        cols["auc_expert_vs_agent"] = "expert/agent AUC"
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    head = list(cols.values()) + (["per step: expert / agent"] if agent else [])
    lines = [f"{result['task']}, goal: {result['goal']}",
             "| reward | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for key, q in result["rewards"].items():
        mark = " (configured)" if key == result["configured"] else ""
        cells = [fmt(q[c]) for c in cols]
        if agent:
            per_step = q["mean_reward"]
            cells.append(f"{fmt(per_step['expert'])} / {fmt(per_step['agent'])}")
        lines.append(f"| {key}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _no_nan(x):
    """NaN (an undefined metric, e.g. no failed noisy episode) -> None for strict JSON."""
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_no_nan(v) for v in x]
    if isinstance(x, float) and x != x:
        return None
    return x


if __name__ == "__main__":
    run_absl_main(main)
