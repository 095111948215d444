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

SEED_BASE = 7_000_000  # evaluation episodes use seeds far from the demo seeds
NOISE_LADDER = (0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
DEFAULT_OTHER_TASKS = ("drawer-open-v3", "button-press-topdown-v3", "window-open-v3",
                       "reach-v3", "push-v3", "door-close-v3", "handle-press-v3")


def _read_json(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def env_config_of(workdir):
    """The env fields the VAE was trained with (autoencoder/config.json: `env.<field>`
    keys) over the default env config, as a dict."""
    from configs.metaworld import get_config
    env = get_config().env.to_dict()
    recorded = _read_json(os.path.join(workdir, "autoencoder", "config.json"))
    fields = {k.split(".", 1)[1]: v for k, v in recorded.items() if k.startswith("env.")}
    fields.update(recorded.get("env", {}))  # a VAE made before stages were task-free
    if not fields:
        logging.warning("no env fields in %s/autoencoder/config.json: using the default "
                        "env config", workdir)
    env.update(fields)
    return env


class EnvCfg(dict):
    __getattr__ = dict.__getitem__


def calibrate_noise(task, env_cfg, seed, episodes=8):
    """The std in NOISE_LADDER whose expert success rate (state only) is nearest 1/2."""
    import numpy as np

    from vidrl_jax.envs.experts import expert_policy
    from vidrl_jax.envs.metaworld_env import make_env_from_config
    env = make_env_from_config(EnvCfg(env_cfg), task=task, render=False)
    policy = expert_policy(task)
    rates = {}
    for std in NOISE_LADDER:
        rng = np.random.default_rng([seed, int(std * 1000)])
        wins = 0
        for i in range(episodes):
            obs, _ = env.reset(seed=SEED_BASE + 500_000 + i)
            for _ in range(env_cfg["max_episode_steps"]):
                a = np.clip(policy(obs) + rng.normal(0, std, 4), -1, 1)
                obs, _, term, trunc, info = env.step(a)
                if info["success"]:
                    wins += 1
                    break
                if term or trunc:
                    break
        rates[std] = wins / episodes
        if rates[std] <= 0.25:
            break
    env.close()
    best = min(rates, key=lambda s: (abs(rates[s] - 0.5), s))
    return best, rates


def collect(task, env_cfg, seeds, kind, noise=0.0, steps_after_success=10):
    """Episodes (dicts with frames, success) of `kind` in expert | random | noisy."""
    import numpy as np

    from vidrl_jax.envs.experts import collect_episode, expert_policy
    from vidrl_jax.envs.metaworld_env import make_env_from_config
    env = make_env_from_config(EnvCfg(env_cfg), task=task)
    out = []
    for s in seeds:
        if kind == "random":
            rng = np.random.default_rng(s)
            policy = lambda obs, rng=rng: rng.uniform(-1, 1, 4).astype(np.float32)  # noqa: E731
            ep = collect_episode(env, policy, s, steps_after_success=10 ** 9)
        else:
            ep = collect_episode(env, expert_policy(task), s, steps_after_success,
                                 action_noise=noise if kind == "noisy" else 0.0,
                                 rng=np.random.default_rng([s, 1]))
        out.append(dict(frames=ep["frames"], success=bool(ep["success"].any()),
                        first_success=int(np.argmax(ep["success"])) + 1
                        if ep["success"].any() else None, task=task, seed=s))
    env.close()
    return out


def windows_of(frames, mode, window, length, stride):
    """(end times [N], agent videos [N, length, H, W, 3]) at t = stride, 2*stride, ..., L
    (and L); `mode` and `window` as reward.video_window / reward.window."""
    import numpy as np

    from vidrl_jax.rewards.video_level import agent_video_indices
    last = len(frames) - 1
    ends = list(range(stride, last + 1, stride))
    if not ends or ends[-1] != last:
        ends.append(last)
    wins = np.stack([frames[agent_video_indices(mode, t, window, length)] for t in ends])
    return np.asarray(ends), wins


REWARDS = ("cosine", "centred_cosine", "centred_distance")
MODES = ("episode", "last")
PROGRESS_TEMPERATURES = (0.02, 0.1)  # besides the configured one
PROGRESS_GATES = (0.1, 0.2)  # besides the configured one, at the configured temperature


def configured_key():
    """The result key of the reward the default config pays."""
    from configs.metaworld import get_config
    r = get_config().reward
    kind = ("centred_" if r.video_centre else "") + r.video_metric
    return f"vae/{r.video_window}/{kind}"


def shaped_steps(ends, phi, phi0, length, gamma):
    """Per-step shaped rewards [length], γ·Φ(t+1) − Φ(t) for t = 0..length-1, of a
    potential Φ(t) = phi[k] of the last refresh ends[k] <= t (phi0 before the first)."""
    import numpy as np
    pot = np.full(length + 1, phi0, np.float64)
    for e, p in zip(ends, phi):
        pot[int(e):] = p
    return gamma * pot[1:] - pot[:-1]


class Scorer:
    """Rewards of the `vae` and `pixels` embeddings against one goal video."""

    def __init__(self, cfg, params, goal_frames, window, goal_latents=None, first_frame=None):
        """goal_latents [T',h,w,C] (optional): the VAE goal embedding, centred on
        `first_frame` [H,W,3] held still, instead of goal_frames re-encoded."""
        import functools

        import jax
        import numpy as np

        from vidrl_jax.models import vae3d
        from vidrl_jax.rewards.video_level import resample_indices
        t = len(goal_frames)
        td = cfg.temporal_downsample
        self.length = t if (t - 1) % td == 0 else 1 + ((t - 1) // td) * td
        goal = np.asarray(goal_frames)[resample_indices(t, self.length)]
        self.window = window
        self._embed = jax.jit(functools.partial(vae3d.video_embedding, cfg, params))
        self.goal, self.goal_static = self.embed(goal[None]), self.static(goal[0])
        self._phi = jax.jit(functools.partial(vae3d.frame_features, cfg, params))
        self._goal_frames, self._goal_frame_latents = np.asarray(goal_frames), None
        if goal_latents is not None:
            self.goal["vae"] = np.asarray(goal_latents, np.float32).reshape(1, -1)
            self.goal_static["vae"] = self.static(first_frame)["vae"]

    def embed(self, videos, batch=32):
        """{'vae': [N, D], 'pixels': [N, T*H*W*3]} of videos [N, T, H, W, 3]."""
        import numpy as np
        from vidrl_jax.utils.batching import map_fixed_batches
        return {"vae": np.asarray(map_fixed_batches(self._embed, videos, batch)),
                "pixels": videos.reshape(len(videos), -1).astype(np.float32) / 255.0}

    def static(self, frame):
        """Embeddings of `frame` [H, W, 3] held still for the goal length."""
        from vidrl_jax.diffusion.data import still_videos
        return self.embed(still_videos(frame[None], self.length))

    def rewards(self, frames, stride):
        """Window end times [N] and {'<emb>/<mode>/<reward>': [N]} (see module docstring)."""
        import numpy as np

        from vidrl_jax.rewards.video_level import video_reward
        static, out = self.static(frames[0]), {}
        for mode in MODES:
            ends, wins = windows_of(frames, mode, self.window, self.length, stride)
            emb = self.embed(wins)
            for k in ("vae", "pixels"):
                g, gc = self.goal[k][0], self.goal[k][0] - self.goal_static[k][0]
                w, wc = emb[k], emb[k] - static[k]
                out[f"{k}/{mode}/cosine"] = video_reward(g, w, "cosine")
                out[f"{k}/{mode}/centred_cosine"] = video_reward(gc, wc, "cosine")
                out[f"{k}/{mode}/centred_distance"] = video_reward(gc, wc, "distance")
        return ends, {k: np.asarray(v) for k, v in out.items()}

    def step_rewards(self, frames, stride, ends, scores, score_key, gamma, temperature, gate):
        """The per-step forms (module docstring): {key: (ends, rewards, all_steps)}:
        ends/rewards what the progress Spearman reads, all_steps [L] the per-step
        rewards (episode score: their mean). `ends`, `scores`: rewards()'s output;
        score_key names the potential Φ of the shaped form."""
        import numpy as np

        from vidrl_jax.rewards.video_level import frame_progress, video_reward
        emb, mode, kind = score_key.split("/")
        length = len(frames) - 1
        # Φ_0: the 1-frame episode (frame 0 held still), scored as `kind`
        still = self.static(frames[0])["vae"][0]
        g = self.goal["vae"][0]
        if kind.startswith("centred_"):
            g, still = g - self.goal_static["vae"][0], still - still
        phi0 = float(video_reward(g, still[None], kind.replace("centred_", ""))[0])
        steps = shaped_steps(ends, scores[score_key], phi0, length, gamma)
        out = {f"vae/{mode}/shaped_{kind}": (ends, steps[np.asarray(ends) - 1], steps)}
        lat = self.frame_latents(frames[1:])
        variants = [("", temperature, gate)]
        variants += [(f"_t{t:g}", t, gate) for t in PROGRESS_TEMPERATURES if t != temperature]
        variants += [(f"_g{g:g}", temperature, g) for g in PROGRESS_GATES if g != gate]
        for suffix, tau, sigma in variants:
            p = np.asarray(frame_progress(self.goal_frame_latents, lat, tau, sigma))
            out["vae/frame/progress" + suffix] = (np.arange(1, length + 1), p, p)
        return out

    @property
    def goal_frame_latents(self):
        """video_form=progress: φ of each of the goal video's frames (as RewardEncoders)."""
        if self._goal_frame_latents is None:
            self._goal_frame_latents = self.frame_latents(self._goal_frames)
        return self._goal_frame_latents

    def frame_latents(self, frames, batch=64):
        """Single-frame VAE latents [N, P] (φ with reward.frame_features=vae)."""
        from vidrl_jax.utils.batching import map_fixed_batches
        return map_fixed_batches(self._phi, frames, batch)


def read_agent_gif(path, frame_shape):
    """An --agent_gifs episode's frames [T,H,W,3], read before any episode is collected;
    a missing or unreadable file, or frames of another size than the goal video's
    (frame_shape), is a VidrlError naming the flag."""
    from vidrl_jax.utils.video_io import read_gif
    try:
        frames = read_gif(path)
    except (OSError, ValueError) as e:  # (PIL's UnidentifiedImageError is an OSError)
        raise VidrlError(f"--agent_gifs: cannot read {path} as a GIF ({e}); pass an "
                         f"agent's eval_last.gif") from None
    if frames.shape[1:] != tuple(frame_shape):
        raise VidrlError(f"--agent_gifs: {path} has frames of {frames.shape[1:]}, not the "
                         f"goal video's {tuple(frame_shape)}")
    return frames


def quality(groups, scores):
    """The metrics of one reward given per-episode scores; see the module docstring."""
    import numpy as np

    from vidrl_jax.rewards.quality import mean_spearman, roc_auc
    ep = {g: [s["mean"] for s in scores[g]] for g in scores}
    noisy = list(zip(groups["noisy"], scores["noisy"]))
    out = {
        "auc_expert_vs_random": roc_auc(ep["expert"], ep["random"]),
        "auc_noisy_success_vs_fail": roc_auc([s["mean"] for e, s in noisy if e["success"]],
                                             [s["mean"] for e, s in noisy if not e["success"]]),
        "auc_expert_vs_other_task_experts": roc_auc(ep["expert"], ep.get("other", [])),
        "auc_expert_vs_random_final_window": roc_auc(
            [s["final"] for s in scores["expert"]], [s["final"] for s in scores["random"]]),
    }
    prog = []
    for e, s in zip(groups["expert"], scores["expert"]):
        if e["success"]:
            keep = s["ends"] <= e["first_success"]
            prog.append((s["ends"][keep], s["rewards"][keep]))
    out["spearman_progress"] = mean_spearman(prog)
    if "agent" in ep:
        out["auc_expert_vs_agent"] = roc_auc(ep["expert"], ep["agent"])
    out["mean_reward"] = {g: float(np.mean(v)) if v else None for g, v in ep.items()}
    out["final_reward"] = {g: float(np.mean([s["final"] for s in scores[g]]))
                           if scores[g] else None for g in scores}
    return out


def main(argv):
    del argv
    import numpy as np

    from vidrl_jax.envs.tasks import check_task
    from vidrl_jax.errors import StageMissingError
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
    goal_path = os.path.join(workdir, "goal", "goal_video.npz")
    goal_task, has_sampled = None, False
    if os.path.exists(goal_path):
        with np.load(goal_path) as g:
            goal_task = str(g["task"]) if "task" in g else None
            has_sampled = "sampled_latents" in g
    task = check_task(_TASK.value or goal_task or env_cfg["task"], "--task")
    source, goal_latents, first_frame = _GOAL.value, None, None
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
        goal_desc = (f"generated goal video {goal_path} ({len(goal_frames)} frames"
                     + (", VAE goal = its sampled latents)" if goal_latents is not None else ")"))
    else:
        length = 1 + 4 * cfg.temporal_downsample  # 17 for td=4
        demo = collect(task, env_cfg, [SEED_BASE + 999_999], "expert")[0]
        idx = np.round(np.linspace(0, demo["first_success"] or len(demo["frames"]) - 1,
                                   length)).astype(int)
        goal_frames = demo["frames"][idx]
        goal_desc = (f"expert demo (seed {SEED_BASE + 999_999}) from reset to first "
                     f"success, resampled to {length} frames")
    window = _WINDOW.value or 16
    scorer = Scorer(cfg, params, goal_frames, window, goal_latents, first_frame)
    agent = [dict(frames=read_agent_gif(p, goal_frames.shape[1:]), success=None,
                  first_success=None, task=task, seed=None) for p in _AGENT_GIFS.value]

    n, base = _EPISODES.value, SEED_BASE + 1000 * _SEED.value
    if _NOISE.value == "auto":
        noise, rates = calibrate_noise(task, env_cfg, _SEED.value)
        logging.info("noise calibration (std: success rate): %s -> %s", rates, noise)
    else:
        noise, rates = float(_NOISE.value), None
    groups = {
        "expert": collect(task, env_cfg, range(base, base + n), "expert"),
        "random": collect(task, env_cfg, range(base + 100, base + 100 + n), "random"),
        "noisy": collect(task, env_cfg, range(base + 200, base + 200 + 2 * n), "noisy", noise),
    }
    others = [t for t in DEFAULT_OTHER_TASKS if t != task][:_OTHER.value]
    groups["other"] = [ep for j, t in enumerate(others)
                       for ep in collect(t, env_cfg, range(base + 300 + 10 * j,
                                                           base + 300 + 10 * j + max(n // 2, 2)),
                                         "expert")]
    if agent:
        groups["agent"] = agent
    logging.info("collected %s episodes in %.0f s", {g: len(v) for g, v in groups.items()},
                 time.time() - t0)
    from configs.metaworld import get_config
    defaults = get_config()
    gamma = float(defaults.agent.discount)
    temperature = float(defaults.reward.video_progress_temperature)
    gate = float(defaults.reward.video_progress_gate)
    per = {}
    for g, eps in groups.items():
        for e in eps:
            ends, r = scorer.rewards(e["frames"], _STRIDE.value)
            for k, v in r.items():
                per.setdefault(k, {}).setdefault(g, []).append(
                    {"ends": ends, "rewards": v, "mean": float(np.mean(v)), "final": float(v[-1])})
            forms = scorer.step_rewards(e["frames"], _STRIDE.value, ends, r, configured_key(),
                                        gamma, temperature, gate)
            for k, (f_ends, v, steps) in forms.items():
                per.setdefault(k, {}).setdefault(g, []).append(
                    {"ends": f_ends, "rewards": v, "mean": float(np.mean(steps)),
                     "final": float(steps[-1])})
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
        "holdout_task": _read_json(os.path.join(workdir, "autoencoder", "config.json")).get(
            "diffusion.holdout_task"),
        "seconds": round(time.time() - t0, 1),
    }
    result = _no_nan(result)
    os.makedirs(os.path.join(workdir, "goal"), exist_ok=True)
    path = os.path.join(workdir, "goal", "metrics.json")
    metrics = _read_json(path)
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
