"""What the agent's reward terms read, computed on the host side of the loop.

    plan = reward_terms.resolve(config.reward)   # the reward config, read once
    encoders = RewardEncoders(config, ctx, plan)
    encoders.goal                      # {"video_latent": [D], "frame_feature": [P]}
                                       #  (+ "frame_latents": [T,P], video_form=progress;
                                       #  + the learned term's goal inputs)
    encoders.phi(frames)               # [N,H,W,3] -> [N,P]: FB's frame features
    encoders.window(videos)            # [N,T,H,W,3] -> [N,D]: the agent's video embedding
                                       #  (D = encoders.latent_dim; 0 when no term reads it)
    encoders.encode(frames, videos)    # both (videos None: φ only), the loop's per env step
    encoders.potential(stored)         # [N,D] stored window latents -> [N] their score
    encoders.start_phi                 # [N,P] φ of each env's first frame ([N,0] unread)
    encoders.progress_net(frames)      # [N,H,W,3] -> [N]: the progress net's reward
    windows = FrameWindows(mode, window_len, encoders.clip_len, max_steps)

RewardEncoders holds the frozen encoders (the VAE, CLIP for the RoboCLIP term or
CLIP φ, the diffusion model for the likelihood term, the progress net) and the goal's
embeddings;
FrameWindows each env's episode so far, from which the agent's video is cut.
"""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax.diffusion.data import still_videos
from vidrl_jax.errors import ConfigError, StageMissingError
from vidrl_jax.rewards import learned as learned_lib
from vidrl_jax.rewards import progress_net as progress_net_lib
from vidrl_jax.rewards import terms as reward_terms
from vidrl_jax.rewards.video_level import agent_video_indices, resample_indices, video_reward
from vidrl_jax.utils.fingerprint import digest

ROBOCLIP_FRAMES = 8
PROGRESS_NET_FILE = "progress_net.msgpack"
LIKELIHOOD_TIMESTEPS = 8


def expert_demo_frames(demos_dir, task):
    """[L+1,H,W,3] uint8 frames of `task`'s first successful expert demo in `demos_dir`
    (reward.video_goal=expert)."""
    from vidrl_jax.data.shards import iter_episodes

    for episode in iter_episodes(demos_dir, tasks=[task]):
        if np.any(episode["success"]):
            return np.asarray(episode["frames"])
    raise ConfigError(f"reward.video_goal=expert needs a successful expert demo of "
                      f"env.task={task!r} in {demos_dir}; add the task to demos.tasks")


class RewardEncoders:
    """The frozen encoders that turn frames into replay columns.

    phi(frames [N,H,W,3]) -> [N,P]: features of one frame (FB's input): its VAE latent,
        or its unit-norm CLIP image embedding (reward.frame_features=clip).
    window(videos [N,T,H,W,3]) -> [N,D]: VAE embedding of the agent's videos (T = the
    goal video's length, `clip_len`). `goal` = {"video_latent": [D], "frame_feature": [P]}
    and, with reward.video_form=progress, "frame_latents": [T,P], φ of each of the goal
    video's decoded frames (φ = the VAE's single-frame latent: the frame the progress
    term compares them with is the replay's next_phi).
    With no VAE needed (baselines without video terms) both are empty columns.
    `fingerprints`: digests (vidrl_jax/utils/fingerprint.py) of what the rewards read:
    "vae_params", "goal_frames" (the goal video's frames and the goal frame, uint8) and
    "goal_embeddings" (`goal`); {} with no VAE.
    """

    def __init__(self, config, ctx, plan=None, read_only=False):
        plan = plan or reward_terms.resolve(config.reward)
        self.read_only = read_only
        self.plan = plan
        self.start_phi = None
        self.clip_len = int(config.reward.window)  # the goal video's length once loaded
        self.goal_frames = None
        self.clip = None
        # reward.video_centre: embeddings minus that of their first frame held still
        # (the static scene dominates the plain cosine; docs/rewards.md).
        self.centre = bool(config.reward.get("video_centre", False)) and plan.reads_frames
        self.video_metric = str(config.reward.get("video_metric", "cosine"))
        self._score = jax.jit(video_reward, static_argnums=2)
        self._reference = None
        self.fingerprints = {}
        if float(config.reward.roboclip):
            self._init_roboclip(config)
        if not plan.reads_frames:
            self.feature_dim = self.latent_dim = 0
            self.goal = {"video_latent": jnp.zeros((0,)), "frame_feature": jnp.zeros((0,))}
            return
        from vidrl_jax.models import vae3d

        cfg, params = vae3d.load(ctx.stage_output("autoencoder"))
        if cfg.size != config.env.size:
            raise ConfigError(f"env.size={config.env.size} but the VAE in "
                              f"{ctx.stage_output('autoencoder')} was trained at {cfg.size}px")
        goal_path = os.path.join(ctx.stage_output("goal"), "goal_video.npz")
        with np.load(goal_path) as g:
            goal_frames, real_first = np.asarray(g["frames"]), np.asarray(g["first_frame"])
            all_videos = np.asarray(g["all_frames"]) if "all_frames" in g else goal_frames[None]
            sampled = np.asarray(g["sampled_latents"]) if "sampled_latents" in g else None
        self.goal_frames = goal_frames
        t = len(goal_frames)
        td = cfg.temporal_downsample
        self.clip_len = t if (t - 1) % td == 0 else 1 + ((t - 1) // td) * td
        goal_frames = goal_frames[resample_indices(t, self.clip_len)]
        with np.load(os.path.join(ctx.stage_output("select"), "goal_frame.npz")) as g:
            goal_frame = np.asarray(g["frame"])
        if config.reward.video_goal == "expert":  # the oracle: a real demo, not generated
            demo = expert_demo_frames(ctx.stage_output("demos"), config.env.task)
            self.goal_frames = demo[resample_indices(len(demo), t)]
            goal_frames, goal_frame = demo[resample_indices(len(demo), self.clip_len)], demo[-1]
            all_videos = self.goal_frames[None]
        self._phi = (self._clip_phi(config) if config.reward.frame_features == "clip"
                     else jax.jit(functools.partial(vae3d.frame_features, cfg, params)))
        self._embed = jax.jit(functools.partial(vae3d.video_embedding, cfg, params))
        # reward.video_goal: the decoded goal video re-encoded (its first frame is the
        # centring base), or the sampled latents themselves, averaged over the goal
        # stage's videos (base: the real first frame); `expert` (the oracle ablation): the
        # task's first successful expert demo in demos/, resampled to the goal video's length, in
        # place of the goal video and (its last frame) the goal frame.
        if config.reward.video_goal == "sampled":
            if sampled is None or self.clip_len != t:
                raise StageMissingError(f"{goal_path} has no sampled latents of a {t}-frame "
                                        "video; re-run the goal stage (--stages=goal)")
            goal_latent, base = jnp.asarray(sampled).reshape(-1), real_first
        else:
            goal_latent, base = self._embed(goal_frames[None])[0], goal_frames[0]
        if self.centre:
            goal_latent = goal_latent - self.still(base[None])[0]
        self.goal = {"video_latent": goal_latent,
                     "frame_feature": self._phi(goal_frame[None])[0]}
        if plan.video_form == "progress" and plan.weight("video"):
            if config.reward.frame_features != "vae":
                raise ConfigError("reward.video_form=progress needs reward.frame_features="
                                  "vae (it compares VAE frame latents)")
            self.goal["frame_latents"] = self._phi(self.goal_frames)
        if plan.reads_start:  # the learned term: Δφ of every goal video's frames
            self.goal.update(learned_lib.goal_inputs(self._phi, all_videos))
        self.fingerprints = {"vae_params": digest(params),
                             "goal_frames": digest({"video": self.goal_frames,
                                                    "frame": goal_frame}),
                             "goal_embeddings": digest(self.goal)}
        self.feature_dim = int(self.goal["frame_feature"].shape[0])
        # (no term reads the agent's video: no window column, nothing to centre)
        self.latent_dim = int(self.goal["video_latent"].shape[0]) if plan.reads_window else 0
        self.centre = self.centre and bool(self.latent_dim)
        self._latent_shape = (cfg.latent_frames(self.clip_len), cfg.latent_size,
                              cfg.latent_size, cfg.latent_channels)
        self.likelihood_fn = None
        if float(config.reward.likelihood):
            self._init_likelihood(config, ctx)
        self._progress_net = None
        if plan.weight("progress_net"):
            self._init_progress_net(config, ctx, all_videos)

    def _init_progress_net(self, config, ctx, videos):
        """The progress net, trained on the goal videos [N,T,H,W,3] before RL (the
        oracle's: the real demo) and kept in the agent stage's directory, so a resumed
        run pays what it paid. A read-only reader loads the run's or trains its own,
        unkept."""
        keep = os.path.join(ctx.stage_dir or "", PROGRESS_NET_FILE)
        if not os.path.isdir(ctx.stage_dir or "") or (self.read_only
                                                      and not os.path.exists(keep)):
            keep = None
        params = progress_net_lib.load_or_train(keep, videos,
                                                int(config.reward.progress_net_steps),
                                                int(config.seed))
        self._progress_net = (params, progress_net_lib.standardisation(params, videos))
        self.fingerprints["progress_net"] = digest(params)

    def progress_net(self, frames):
        """The progress net's reward [N] float32 of frames [N,H,W,3] uint8."""
        return progress_net_lib.reward(*self._progress_net, frames)

    def _init_likelihood(self, config, ctx):
        """VIPER-style term: the diffusion model's ELBO-style likelihood of the window,
        conditioned on the episode's first frame and the instruction."""
        from vidrl_jax import diffusion
        from vidrl_jax.rewards.likelihood import make_likelihood_reward

        model = diffusion.load(ctx.stage_output("diffusion"))
        if tuple(model.latent_shape) != self._latent_shape:
            raise ConfigError(
                f"reward.likelihood: the diffusion model's latent shape "
                f"{tuple(model.latent_shape)} differs from the reward window's "
                f"{self._latent_shape}; use the goal video of the same diffusion model")
        fn = make_likelihood_reward(model, num_timesteps=LIKELIHOOD_TIMESTEPS)
        task = config.env.task
        key = jax.random.PRNGKey(0)  # common random numbers: windows stay comparable

        @jax.jit
        def score(latents, still):  # still[:, 0]: the first frame's latent (causal VAE)
            return fn(model.params, latents, still, model.cond(task, still[:, 0]), key)
        self.likelihood_fn = score

    def likelihood(self, window_latent):
        """[N,D] window embeddings -> [N] rewards (against the episodes' first frames held
        still, set by `start_episode`)."""
        shape = (-1,) + self._latent_shape
        return np.asarray(self.likelihood_fn(jnp.asarray(window_latent).reshape(shape),
                                             jnp.asarray(self._reference).reshape(shape)))

    def _clip_phi(self, config):
        """CLIP image features as φ (the RoboCLIP term's CLIP when that is loaded)."""
        from vidrl_jax.models import clip

        return clip.frame_features(self.clip or clip.load_clip(config.clip.path, tokenizer=False))

    def _init_roboclip(self, config):
        """RoboCLIP-style term: CLIP text-video similarity of the whole episode.

        (RoboCLIP uses the S3D video-text model; we use the mean CLIP image
        embedding of `ROBOCLIP_FRAMES` frames spread over the episode.)
        """
        from vidrl_jax.envs.tasks import instruction
        from vidrl_jax.models.clip import load_clip

        self.clip = load_clip(config.clip.path)  # (config_check: clip.path is set)
        text = self.clip.embed_texts([instruction(config.env.task)])[0]
        self.text = text / np.linalg.norm(text)

    def episode_score(self, frames):
        """frames [N, L+1, H, W, 3] -> [N] CLIP text-video cosine (0 without CLIP)."""
        if self.clip is None:
            return np.zeros(len(frames), np.float32)
        n, t = frames.shape[:2]
        idx = resample_indices(t, min(ROBOCLIP_FRAMES, t))
        emb = self.clip.embed_frames(frames[:, idx].reshape((-1,) + frames.shape[2:]))
        emb = emb / np.linalg.norm(emb, axis=-1, keepdims=True)
        video = emb.reshape(n, len(idx), -1).mean(axis=1)
        video = video / np.linalg.norm(video, axis=-1, keepdims=True)
        return (video @ self.text).astype(np.float32)

    def phi(self, frames):
        if not self.feature_dim:
            return np.zeros((len(frames), 0), np.float32)
        return self._phi(frames)

    def encode(self, frames, videos=None):
        """One env step's reward inputs: (phi(frames) [N,P], window(videos) [N,D], or None
        when `videos` is None: the steps between two of reward.video_stride). (Both in one
        jitted program measured 1.015x the two calls in the loop, where they overlap the
        env step: not kept.)"""
        return self.phi(frames), (None if videos is None else self.window(videos))

    def still(self, frames):
        """Embedding [N,D] of each frame [N,H,W,3] held still for the goal video's length."""
        return self._embed(still_videos(frames, self.clip_len))

    def start_episode(self, first_frames):
        """Sets each env's reference, its first frame held still, when centring or the
        likelihood term needs it, and φ of its first frame [N,P] (start_phi; [N,0] when
        no term reads it)."""
        self.start_phi = (self.phi(first_frames) if self.plan.reads_start
                          else np.zeros((len(first_frames), 0), np.float32))
        if self.latent_dim and (self.centre or self.likelihood_fn is not None):
            self._reference = self.still(first_frames)

    def window(self, videos):
        """Embeddings [N,D] (the VAE posterior mean, flattened) of videos [N,T,H,W,3]."""
        if not self.latent_dim:
            return np.zeros((len(videos), 0), np.float32)
        return self._embed(videos)

    def potential(self, stored_latent):
        """The video score [N] of stored (centred, if configured) window latents [N,D]:
        the potential of reward.video_form=shaped, as the fused step scores it."""
        return self._score(self.goal["video_latent"], stored_latent, self.video_metric)

    def stored(self, window_latent):
        """What the replay keeps: centred on the episode's first frame if configured."""
        return window_latent - self._reference if self.centre else window_latent


class FrameWindows:
    """Each env's episode so far; `frames` is the agent's video [N, T, H, W, 3] to encode
    (reward.video_window: the whole episode or its last W frames, resampled to T)."""

    def __init__(self, mode, window_len, length, max_steps):
        self.mode, self.window_len, self.length = mode, window_len, length
        self.max_steps = max_steps
        self.episode, self.t = None, 0

    def reset(self, frames):
        frames = np.asarray(frames)
        self.episode = np.empty((len(frames), self.max_steps + 1) + frames.shape[1:], frames.dtype)
        self.episode[:, 0] = frames
        self.t = 0

    def push(self, frames):
        self.t += 1
        self.episode[:, self.t] = frames

    @property
    def frames(self):
        idx = agent_video_indices(self.mode, self.t, self.window_len, self.length)
        return self.episode[:, idx]
