"""The agent loop: vector envs, reward encoders, device replay and the fused step.

One loop serves three layouts of the learner (see `Learner`):
  single  one agent on one device (jit);
  pmap    one agent over all local devices (replay sharded, gradients pmean'd);
  seeds   `config.seeds` independent agents stacked on a leading axis, the fused
          step vmapped, the envs of all seeds in one vector env.

Episodes run synchronously in all envs (Meta-World never terminates early; every
episode is truncated at `env.max_episode_steps`), with explicit seeded resets, so
the next observation stored at a truncation is the real final one. Everything
random is a pure function of (seed, counters): env seeds of episode k, prefill
actions, PRNG keys of step t. Checkpoints are taken at episode boundaries and
hold the agent, optimiser, replay, reward statistics, counters and eval history,
so a resumed run continues exactly where the killed one stopped.
"""
import functools
import importlib
import json
import logging
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax import agents
from vidrl_jax.data import replay as rp
from vidrl_jax.diffusion.data import still_videos
from vidrl_jax.errors import ConfigError, NonFiniteError, StageMissingError
from vidrl_jax.rewards import terms as reward_terms
from vidrl_jax.rewards.video_level import agent_video_indices, resample_indices, video_reward
from vidrl_jax.utils import distributed
from vidrl_jax.utils.checkpoint import CheckpointManager
from vidrl_jax.utils.progress import progress
from vidrl_jax.utils.video_io import save_figure, save_gif

# (the package re-exports the function `train_step`, which hides the module's name)
ts = importlib.import_module("vidrl_jax.agents.train_step")

ACTION_DIM = 4
OBS_DIM = 39
ROBOCLIP_FRAMES = 8
LIKELIHOOD_TIMESTEPS = 8


# ----------------------------------------------------------------------------- seeds
def env_seeds(seed, episode, num_envs, offset=0):
    """Reset seeds of the `num_envs` envs of one agent for training episode `episode`
    (offset separates eval episodes from training ones)."""
    ss = np.random.SeedSequence([int(seed), int(offset), int(episode)])
    return [int(s) & 0x7FFFFFFF for s in ss.generate_state(num_envs)]


def prefill_actions(seed, env_step, num_envs):
    rng = np.random.default_rng([int(seed), 1, int(env_step)])
    return rng.uniform(-1.0, 1.0, (num_envs, ACTION_DIM)).astype(np.float32)


# ----------------------------------------------------------------------------- reward inputs
class RewardEncoders:
    """The frozen encoders that turn frames into replay columns.

    phi(frames [N,H,W,3]) -> [N,P]: features of one frame (FB's input): its VAE latent,
        or its unit-norm CLIP image embedding (reward.frame_features=clip).
    window(videos [N,T,H,W,3]) -> [N,D]: VAE embedding of the agent's videos (T = the
    goal video's length, `clip_len`). `goal` = {"video_latent": [D], "frame_feature": [P]}.
    With no VAE needed (baselines without video terms) both are empty columns.
    """

    def __init__(self, config, ctx, needs_vae):
        self.clip_len = int(config.reward.window)  # the goal video's length once loaded
        self.goal_frames = None
        self.clip = None
        # reward.video_centre: embeddings minus that of their first frame held still
        # (the static scene dominates the plain cosine; see README, reward quality).
        self.centre = bool(config.reward.get("video_centre", False)) and needs_vae
        self._reference = None
        if float(config.reward.roboclip):
            self._init_roboclip(config)
        if not needs_vae:
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
            sampled = np.asarray(g["sampled_latents"]) if "sampled_latents" in g else None
        self.goal_frames = goal_frames
        t = len(goal_frames)
        td = cfg.temporal_downsample
        self.clip_len = t if (t - 1) % td == 0 else 1 + ((t - 1) // td) * td
        goal_frames = goal_frames[resample_indices(t, self.clip_len)]
        with np.load(os.path.join(ctx.stage_output("select"), "goal_frame.npz")) as g:
            goal_frame = np.asarray(g["frame"])
        self._phi = (self._clip_phi(config) if config.reward.frame_features == "clip"
                     else jax.jit(functools.partial(vae3d.frame_features, cfg, params)))
        self._embed = jax.jit(functools.partial(vae3d.video_embedding, cfg, params))
        # reward.video_goal: the decoded goal video re-encoded (its first frame is the
        # centring base), or the sampled latents themselves, averaged over the goal
        # stage's videos (base: the real first frame).
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
        self.feature_dim = int(self.goal["frame_feature"].shape[0])
        self.latent_dim = int(self.goal["video_latent"].shape[0])
        self._latent_shape = (cfg.latent_frames(self.clip_len), cfg.latent_size,
                              cfg.latent_size, cfg.latent_channels)
        self.likelihood_fn = None
        if float(config.reward.likelihood):
            self._init_likelihood(config, ctx)

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

    def still(self, frames):
        """Embedding [N,D] of each frame [N,H,W,3] held still for the goal video's length."""
        return self._embed(still_videos(frames, self.clip_len))

    def start_episode(self, first_frames):
        """Sets each env's reference, its first frame held still, when centring or the
        likelihood term needs it."""
        if self.latent_dim and (self.centre or self.likelihood_fn is not None):
            self._reference = self.still(first_frames)

    def window(self, videos):
        """Embeddings [N,D] (the VAE posterior mean, flattened) of videos [N,T,H,W,3]."""
        if not self.latent_dim:
            return np.zeros((len(videos), 0), np.float32)
        return self._embed(videos)

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


# ----------------------------------------------------------------------------- learner layouts
class Learner:
    """Agent states, replay and the fused step for one of the layouts single|pmap|seeds.

    Host data comes in as [N, ...] over all envs, env order seed-major
    (env e of seed s is row s * E + e).

    Multi-process (jax.distributed): always the pmap layout over the devices of all
    processes. Each process steps its own E envs, which are envs [p*E, (p+1)*E) of
    the run's `global_envs` = E * processes (their reset seeds and prefill actions
    are those rows of a one-process run with as many envs), and holds its share of
    `agent.replay_capacity` on its devices; the fused step's pmean averages the
    gradients of all devices of all processes.
    """

    def __init__(self, config, feature_dim, latent_dim, extra_columns):
        self.seeds = [int(config.seed) + s for s in range(int(config.seeds))]
        self.num_seeds = len(self.seeds)
        self.envs_per_seed = int(config.env.num_workers)
        self.process_index, self.num_processes = jax.process_index(), jax.process_count()
        self.global_envs = self.envs_per_seed * self.num_processes
        e = self.envs_per_seed
        self._mine = slice(self.process_index * e, (self.process_index + 1) * e)
        n_dev = jax.local_device_count()
        if self.num_processes > 1:
            _check_multiprocess(config, n_dev, self.num_processes)
            self.layout = "pmap"
        elif self.num_seeds > 1:
            self.layout = "seeds"
        elif (n_dev > 1 and self.envs_per_seed % n_dev == 0
              and config.agent.batch_size % n_dev == 0
              and config.agent.replay_capacity % n_dev == 0):
            self.layout = "pmap"
        else:
            self.layout = "single"
        self.n_dev = n_dev if self.layout == "pmap" else 1
        obs_dim = OBS_DIM if config.agent.obs == "state" else (config.env.size,) * 2 + (3,)
        obs_dtype = jnp.float32 if config.agent.obs == "state" else jnp.uint8
        states = [agents.create_agent_state(config, obs_dim, ACTION_DIM, feature_dim,
                                            latent_dim, jax.random.PRNGKey(s))
                  for s in self.seeds]
        self.specs = rp.column_specs(
            (obs_dim,) if isinstance(obs_dim, int) else obs_dim, ACTION_DIM, feature_dim,
            latent_dim, obs_dtype=obs_dtype, extra=extra_columns)
        cap = int(config.agent.replay_capacity) // self.num_processes
        if self.layout == "single":
            self.state = states[0]
            self.replay = rp.create_replay(cap, self.specs)
            self._step = ts.jit_train_step
            self._add = rp.add
        elif self.layout == "pmap":
            self.state = ts.replicate(states[0], n_dev)
            self.replay = rp.create_replay(cap, self.specs, num_devices=n_dev)
            self._step = ts.make_pmapped_train_step()
            self._add = rp.add
        else:
            self.state = jax.tree.map(lambda *x: jnp.stack(x), *states)
            self.replay = ts.replicate(rp.create_replay(cap, self.specs), self.num_seeds)
            self._step = jax.jit(jax.vmap(ts.train_step, in_axes=(0, 0, None, 0)),
                                 donate_argnums=0)
            self._add = jax.jit(jax.vmap(rp.add_local), donate_argnums=0)
        # act and reward_terms map over seeds; one agent's state is shared by its envs
        axis = 0 if self.layout == "seeds" else None
        self._act = {d: jax.jit(jax.vmap(functools.partial(ts.act, deterministic=d),
                                         in_axes=(axis, 0, 0)))
                     for d in (False, True)}
        self._rewards = jax.jit(jax.vmap(ts.rewards_part, in_axes=(axis, 0, None)))
        self._views = {}  # host-side views of the state, until the state changes
        self.bytes_per_transition = rp.bytes_per_transition(self.specs)

    # -- data in [N, ...] -> layout
    def _split(self, x):
        if not isinstance(x, jax.Array):  # encoder outputs stay on device (no round trip)
            x = np.asarray(x)
        if self.layout == "single":
            return x
        lead = self.n_dev if self.layout == "pmap" else self.num_seeds
        return x.reshape((lead, x.shape[0] // lead) + x.shape[1:])

    def add(self, transitions):
        self.replay = self._add(self.replay, {k: self._split(v) for k, v in transitions.items()})

    @property
    def state(self):
        return self._state

    @state.setter
    def state(self, value):
        self._state, self._views = value, {}

    def _view(self, name):
        """The state as act ("policy": only the actor and the critic's encoder, what a
        policy reads) or reward_terms ("full") take it: pmap, device 0's copy; seeds,
        with the seed axis. Built once per state (every env step calls act), not per call:
        each leaf of a pytree costs a dispatch."""
        if name not in self._views:
            s = self._state
            if name == "policy":
                s = s.replace(critic={"params": {"encoder": s.critic["params"]["encoder"]}},
                              actor={"params": s.actor["params"]}, temp={}, fb={},
                              reward_stats={})
            self._views[name] = ts.unreplicate(s) if self.layout == "pmap" else s
        return self._views[name]

    def _seed_keys(self, key):
        return jnp.stack([jax.random.fold_in(key, s) for s in self.seeds])

    # -- what each env of this process gets (rows of the run's global env layout)
    def reset_seeds(self, episode, offset):
        """Reset seeds of this process's envs [N] for episode `episode` (see env_seeds)."""
        return sum((env_seeds(s, episode, self.global_envs, offset)[self._mine]
                    for s in self.seeds), [])

    def prefill_actions(self, env_step):
        """Random-policy actions [N, 4] of this process's envs at `env_step`."""
        return np.concatenate([prefill_actions(s, env_step, self.global_envs)[self._mine]
                               for s in self.seeds])

    def gather_envs(self, tree):
        """Host arrays [N, ...] of this process's envs -> [S * global_envs, ...] of the
        envs of all processes, seed-major. A collective with several processes."""
        if self.num_processes == 1:
            return tree
        def merge(x):  # [P, S*E, ...] -> [S, P*E, ...] -> [S*P*E, ...]
            x = x.reshape((self.num_processes, self.num_seeds, self.envs_per_seed)
                          + x.shape[2:])
            return np.swapaxes(x, 0, 1).reshape((-1,) + x.shape[3:])
        return jax.tree.map(merge, distributed.gather(tree))

    def act(self, obs, key, deterministic):
        """obs [N, ...] -> actions [N, 4] (numpy), each env acting with its seed's agent."""
        if self.num_processes > 1:  # each process's envs draw their own noise
            key = jax.random.fold_in(key, self.process_index)
        obs = np.asarray(obs).reshape((self.num_seeds, self.envs_per_seed) + obs.shape[1:])
        a = self._act[deterministic](self._view("policy"), obs, self._seed_keys(key))
        return np.asarray(a).reshape(-1, ACTION_DIM)

    def train(self, goal, key):
        """One fused call of K updates; returns metrics {name: [K]} (seeds: [S, K]; pmap:
        [1, K], device 0's, identical on every device)."""
        if self.layout == "seeds":
            self.state, m = self._step(self.state, self.replay, goal, self._seed_keys(key))
            return m
        self.state, m = self._step(self.state, self.replay, goal,
                                   jax.random.fold_in(key, self.seeds[0]))
        if self.layout == "pmap":
            return jax.tree.map(lambda x: x.addressable_data(0), m)
        return m

    def reward_terms(self, batch, goal):
        """Per-term rewards {name: [N]} of host transitions under the current params."""
        batch = {k: jnp.asarray(np.asarray(v).reshape(
            (self.num_seeds, self.envs_per_seed) + np.shape(v)[1:])) for k, v in batch.items()}
        _, per_term, _, _ = self._rewards(self._view("full"), batch, goal)
        return {k: np.asarray(v).reshape(-1) for k, v in per_term.items()}

    def replicas_agree(self):
        """Whether every process holds the same agent: per-leaf float64 sums of its
        float arrays, gathered from all processes (a collective) bit for bit."""
        leaves = [(jax.tree_util.keystr(p), x) for p, x in
                  jax.tree_util.tree_flatten_with_path(self._view("full"))[0]
                  if jnp.issubdtype(x.dtype, jnp.floating)]
        sums = np.array([np.asarray(x, np.float64).sum() for _, x in leaves])
        bits = distributed.gather(sums.view(np.uint32))  # (the runtime has no float64)
        same = (bits == bits[0]).all(axis=0).reshape(len(leaves), 2).all(axis=1)
        if not same.all():
            logging.warning("agent: the processes' agents differ in %s",
                            [p for (p, _), ok in zip(leaves, same) if not ok][:5])
        return bool(same.all())

    def checkpoint_tree(self):
        """What a checkpoint holds. Several processes: one copy of the agent (process 0
        writes it) and the replay as a global array (each process its shard)."""
        if self.num_processes > 1:
            return {"agent": ts.unreplicate(self.state),
                    "replay": distributed.to_global(self.replay)}
        return {"agent": self.state, "replay": self.replay}

    def load_tree(self, tree):
        self.state, self.replay = tree["agent"], tree["replay"]
        if self.num_processes > 1:
            self.state = ts.replicate(self.state, self.n_dev)
            self.replay = distributed.to_host_local(self.replay)
        if self.layout == "pmap":  # restored arrays live on one device: shard them again
            self.state, self.replay = jax.pmap(lambda x: x)((self.state, self.replay))


def _check_multiprocess(config, local_devices, processes):
    """ConfigError unless the pmap layout over all processes' devices is possible."""
    n = local_devices * processes
    if int(config.seeds) > 1:
        raise ConfigError(f"seeds={config.seeds}: several seeds in one multi-process run are "
                          f"not supported; run one job per seed (--config.seed=S)")
    if int(config.env.num_workers) % local_devices:
        raise ConfigError(f"env.num_workers={config.env.num_workers} (envs per process) must "
                          f"be divisible by the {local_devices} local devices of each process")
    for field in ("batch_size", "replay_capacity"):
        if int(config.agent[field]) % n:
            raise ConfigError(f"agent.{field}={config.agent[field]} must be divisible by the "
                              f"{n} devices of all {processes} processes")


# ----------------------------------------------------------------------------- the loop
def needs_vae(config):
    terms = dict(reward_terms.active_terms(config.reward))
    return any(terms.get(k) for k in ("video", "frame", "likelihood"))


def _transitions(obs, action, next_obs, phi, latent, reward, success, terminated, truncated):
    return dict(obs=obs, action=action, next_obs=next_obs, next_phi=phi, window_latent=latent,
                reward=np.asarray(reward, np.float32), success=np.asarray(success, np.float32),
                terminal=np.asarray(terminated, np.float32),
                truncated=np.asarray(truncated, np.float32))


def _obs(config, obs, info):
    return info["frame"] if config.agent.obs == "pixels" else np.asarray(obs, np.float32)


class AgentRun:
    """Trains the agent(s) of `config` in `ctx.stage_dir`, resuming from checkpoints."""

    def __init__(self, config, ctx, envs):
        self.config, self.ctx, self.envs = config, ctx, envs
        self.encoders = RewardEncoders(config, ctx, needs_vae(config))
        self.learner = Learner(config, self.encoders.feature_dim, self.encoders.latent_dim,
                               reward_terms.extra_columns(config.reward))
        self.windows = FrameWindows(config.reward.video_window, int(config.reward.window),
                                    self.encoders.clip_len, int(config.env.max_episode_steps))
        self.episode_len = int(config.env.max_episode_steps)
        self.stride = max(1, int(config.reward.video_stride))
        self.k = int(config.agent.updates_per_call)
        self.ckpt = CheckpointManager(os.path.join(ctx.stage_dir, "checkpoints"), keep=2,
                                      all_processes=True)  # (several processes: collective)
        self.counters = dict(episode=0, env_steps=0, updates=0, pending=0.0, train_calls=0,
                             wall_time=0.0, history=[])
        self.base_key = jax.random.PRNGKey(int(config.seed))
        self.metrics = {}
        self._unchecked = []  # metrics of train calls not yet checked for NaN/inf
        self.overlap = bool(config.agent.overlap_env)

    # -- persistence
    def save(self):
        self.counters["wall_time"] += time.time() - self._t0
        self._t0 = time.time()
        self.ckpt.save(self.counters["env_steps"], self.learner.checkpoint_tree(),
                       extra=dict(self.counters))

    def restore(self):
        if self.ckpt.latest_step() is None:
            return False
        tree, extra = self.ckpt.restore(self.learner.checkpoint_tree())
        self.learner.load_tree(tree)
        self.counters.update(extra)
        logging.info("agent: resumed at env step %d (episode %d)", self.counters["env_steps"],
                     self.counters["episode"])
        return True

    # -- one synchronous episode in all envs
    def run_episode(self, seeds_offset, episode, policy, on_step=None, overlap=False):
        """Runs one episode in every env. policy(obs, t) -> actions [N, 4].

        on_step(transition) is called once per step, in step order. With `overlap`,
        on_step of step t-1 runs between `step_async` and `step_wait` of step t, so
        its device work (replay add, fused train calls; dispatched asynchronously)
        computes while the workers step and render; the policy of step t then acts
        with the learner as it was before on_step(t-1) (one step stale). The last
        on_step runs before this returns: episode boundaries are clean (checkpoints).

        Returns the transitions of every step (dicts of [N, ...]) and env 0's frames
        [L+1, H, W, 3].
        """
        lr = self.learner
        reset_seeds = lr.reset_seeds(episode, seeds_offset)
        obs, info = self.envs.reset(seed=reset_seeds)
        self.windows.reset(info["frame"])
        self.encoders.start_episode(info["frame"])
        frames = [info["frame"]]
        latent = self.encoders.window(self.windows.frames)
        with_likelihood = "likelihood" in self.learner.specs
        if with_likelihood:
            lik = self.encoders.likelihood(latent)
        out = []
        overlap = overlap and on_step is not None
        pending = None  # (overlap) the transition whose on_step has not run yet
        for t in range(self.episode_len):
            o = _obs(self.config, obs, info)
            action = policy(o, t)
            if not np.isfinite(action).all():  # (host numpy already: no extra sync)
                self.non_finite_actions()
            if overlap:
                self.envs.step_async(action)
                if pending is not None:
                    on_step(pending)
                next_obs, reward, terminated, truncated, info = self.envs.step_wait()
            else:
                next_obs, reward, terminated, truncated, info = self.envs.step(action)
            self.windows.push(info["frame"])
            frames.append(info["frame"])
            phi = self.encoders.phi(info["frame"])
            last = t == self.episode_len - 1
            if t % self.stride == 0 or last:
                latent = self.encoders.window(self.windows.frames)
                if with_likelihood:
                    lik = self.encoders.likelihood(latent)
            tr = _transitions(o, action, _obs(self.config, next_obs, info), phi,
                              self.encoders.stored(latent),
                              reward, info["success"], terminated, truncated)
            if with_likelihood:
                tr["likelihood"] = lik
            if "roboclip" in self.learner.specs:  # paid once, at the episode's end
                tr["roboclip"] = (self.encoders.episode_score(np.stack(frames, axis=1))
                                  if last else np.zeros(len(action), np.float32))
            if overlap:
                pending = tr
            elif on_step is not None:
                on_step(tr)
            out.append(tr)
            obs = next_obs
        if pending is not None:
            on_step(pending)
        return out, np.stack([f[0] for f in frames])

    def train_episode(self, bar):
        c, lr = self.counters, self.learner
        e = lr.global_envs  # env steps per step: this process's envs and the others'
        prefill = int(self.config.agent.prefill_steps)
        utd = float(self.config.agent.utd)
        start = c["env_steps"]

        def policy(obs, t):
            # the env step of this action (not c["env_steps"]: with overlap_env the
            # counters of the previous step are updated after the policy runs)
            step = start + t * e
            if step < prefill:
                return lr.prefill_actions(step)
            key = jax.random.fold_in(jax.random.fold_in(self.base_key, 1), step)
            return lr.act(obs, key, deterministic=False)

        def on_step(tr):
            lr.add(tr)
            c["env_steps"] += e
            bar.update(e)
            if c["env_steps"] >= prefill:
                c["pending"] += e * utd
                while c["pending"] >= self.k:
                    key = jax.random.fold_in(jax.random.fold_in(self.base_key, 2),
                                             c["train_calls"])
                    metrics = lr.train(self.encoders.goal, key)
                    self._unchecked.append(metrics)  # checked once per episode
                    self.metrics = metrics
                    c["pending"] -= self.k
                    c["updates"] += self.k
                    c["train_calls"] += 1

        transitions, _ = self.run_episode(0, c["episode"], policy, on_step,
                                          overlap=self.overlap)
        self.check_metrics()
        c["episode"] += 1
        return transitions

    def check_metrics(self):
        """NonFiniteError naming the first non-finite term and its update step among the
        train calls since the last check. Checked once per episode (before any
        checkpoint), not per call: reading metrics back would wait for the device
        every step and stall the overlap of env stepping and training."""
        unchecked, self._unchecked = self._unchecked, []
        for metrics in jax.device_get(unchecked):
            ts.check_finite(metrics)

    def non_finite_actions(self):
        """NaN/inf actions would crash the env workers: name the update that caused them
        (the metrics not yet checked), else the actions themselves."""
        self.check_metrics()
        raise NonFiniteError(
            f"the policy's actions are non-finite at env step {self.counters['env_steps']}; "
            f"training stopped before saving (the last checkpoint is intact)")

    def evaluate(self):
        """M episodes per agent with the deterministic policy on fresh seeds (several
        processes: each runs its envs' share, and all get the same record)."""
        cfg, lr = self.config, self.learner
        rounds = math.ceil(int(cfg.agent.eval_episodes) / lr.global_envs)
        key = jax.random.fold_in(self.base_key, 3)
        success, final, returns, frames = [], [], {}, None
        for r in range(rounds):
            episode = self.counters["env_steps"] * 1000 + r
            trs, frames = self.run_episode(
                1, episode, lambda obs, t: lr.act(obs, key, deterministic=True))
            succ = np.stack([t["success"] for t in trs], axis=1)  # [N, L]
            success.append(succ.max(axis=1))
            final.append(succ[:, -1])
            per_step = [self._eval_terms(t) for t in trs]
            for name in per_step[0]:
                returns.setdefault(name, []).append(
                    np.sum([p[name] for p in per_step], axis=0))
        success, final, returns = lr.gather_envs((success, final, returns))
        by_seed = lambda x: np.concatenate(x).reshape(rounds, lr.num_seeds, -1) \
            .transpose(1, 0, 2).reshape(lr.num_seeds, -1)[:, :int(cfg.agent.eval_episodes)]
        rec = {"env_steps": self.counters["env_steps"],
               "success": by_seed(success).mean(axis=1).tolist(),
               "final_success": by_seed(final).mean(axis=1).tolist(),
               "returns": {k: by_seed(v).mean(axis=1).tolist() for k, v in returns.items()}}
        return rec, frames

    def _eval_terms(self, tr):
        out = {"env_dense": tr["reward"], "env_sparse": tr["success"]}
        if self.encoders.latent_dim:
            out["video"] = np.asarray(video_reward(
                self.encoders.goal["video_latent"], jnp.asarray(tr["window_latent"]),
                self.config.reward.video_metric))
        out.update(self.learner.reward_terms(tr, self.encoders.goal))
        return out

    def log_eval(self, rec, frames):
        c, logger = self.counters, self.ctx.logger
        c["history"].append(rec)
        scalars = {"eval/success": float(np.mean(rec["success"])),
                   "eval/final_success": float(np.mean(rec["final_success"]))}
        scalars.update({f"eval/return_{k}": float(np.mean(v)) for k, v in rec["returns"].items()})
        logger.scalars(c["env_steps"], scalars, prefix="agent/")
        if self.ctx.is_main_process:
            logger.video("agent/eval_episode", c["env_steps"], frames)
            save_gif(os.path.join(self.ctx.stage_dir, "eval_last.gif"), frames)

    def run(self):
        cfg, c = self.config, self.counters
        total = int(cfg.agent.total_steps)
        self._t0 = time.time()
        self.restore()
        if self.encoders.goal_frames is not None and self.ctx.is_main_process:
            self.ctx.logger.video("agent/goal_video", 0, self.encoders.goal_frames)
        bar = progress(total=total, desc="agent", initial=c["env_steps"])
        next_eval = lambda: (len(c["history"])) * int(cfg.agent.eval_every)
        next_ckpt = c["env_steps"] + int(cfg.agent.checkpoint_every)
        next_log = c["env_steps"] + int(cfg.agent.log_every)
        t_rate, s_rate, u_rate = time.time(), c["env_steps"], c["updates"]
        while c["env_steps"] < total:
            if c["env_steps"] >= next_eval():
                self.log_eval(*self.evaluate())
            self.train_episode(bar)
            if c["env_steps"] >= next_log:
                dt = max(time.time() - t_rate, 1e-9)
                scalars = {"env_steps_per_s": (c["env_steps"] - s_rate) / dt,
                           "updates_per_s": (c["updates"] - u_rate) / dt}
                if self.metrics:
                    scalars.update(ts.summarize(self.metrics))
                self.ctx.logger.scalars(c["env_steps"], scalars, prefix="agent/")
                bar.set_postfix(steps_s=f"{scalars['env_steps_per_s']:.0f}",
                                upd_s=f"{scalars['updates_per_s']:.0f}",
                                success=f"{np.mean(c['history'][-1]['success']):.2f}"
                                if c["history"] else "-")
                t_rate, s_rate, u_rate = time.time(), c["env_steps"], c["updates"]
                next_log = c["env_steps"] + int(cfg.agent.log_every)
            if c["env_steps"] >= next_ckpt or c["env_steps"] >= total:
                if c["env_steps"] >= total:
                    self.log_eval(*self.evaluate())
                self.save()
                next_ckpt = c["env_steps"] + int(cfg.agent.checkpoint_every)
        bar.close()
        if not c["history"] or c["history"][-1]["env_steps"] != c["env_steps"]:
            self.log_eval(*self.evaluate())
            self.save()
        return self.results()

    def results(self):
        """results.json content: per seed and mean ± std over seeds."""
        c, lr = self.counters, self.learner
        hist = c["history"]
        curve = np.array([h["success"] for h in hist])          # [E, S]
        final = curve[-1]
        best = curve.max(axis=0)
        wall = c["wall_time"]
        out = {
            "config": self.config.to_dict(),
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
            "wall_time_s": wall,
            "env_steps_per_s": c["env_steps"] * lr.num_seeds / max(wall, 1e-9),
            "bytes_per_transition": lr.bytes_per_transition,
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
