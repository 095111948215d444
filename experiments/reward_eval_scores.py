"""Scores for experiments.eval_reward: every form of the video-level reward of an
episode against one goal video, and the quality metrics of a reward over groups of
episodes (the keys and metrics are listed in experiments/eval_reward.py)."""
from experiments.progress_probes import (local_progress, masked_progress, pixel_cells,
                                         projected_progress)

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
        self.latent_cells = cfg.latent_size ** 2  # φ is [h*w*C], C fastest
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
        grid = round(self.latent_cells ** 0.5)
        embeddings = {"vae": (np.asarray(self.goal_frame_latents), np.asarray(lat)),
                      "pixels": (pixel_cells(self._goal_frames, grid),
                                 pixel_cells(frames[1:], grid))}
        for emb, (g, f) in embeddings.items():
            probes = {"_local": local_progress(g, f, self.latent_cells, temperature),
                      "_proj": projected_progress(g, f)}
            if emb == "pixels":
                probes[""] = np.asarray(frame_progress(g, f, temperature))
                probes["_masked"] = masked_progress(self._goal_frames, frames[1:], temperature)
            for suffix, p in probes.items():
                out[f"{emb}/frame/progress{suffix}"] = (np.arange(1, length + 1), p, p)
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
