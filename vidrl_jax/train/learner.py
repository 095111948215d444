"""Agent states, device replay and the fused step in one of three layouts.

    learner = Learner(config, feature_dim, latent_dim, plan)   # plan: rewards/terms.resolve
    learner.add(transitions)                 # host [N, ...] over all envs
    metrics = learner.train(goal, key)       # one fused call of K updates
    actions = learner.act(obs, key, deterministic=False)

Layouts: single (one agent on one device, jit); pmap (one agent over all local
devices: replay sharded, gradients pmean'd); seeds (`config.seeds` independent
agents stacked on a leading axis, the fused step vmapped). Everything random the
loop needs from the learner (env reset seeds, prefill actions) is a pure function
of (seed, counters).
"""
import functools
import importlib
import logging

import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax import agents
from vidrl_jax.data import replay as rp
from vidrl_jax.errors import ConfigError
from vidrl_jax.utils import distributed

# (the package re-exports the function `train_step`, which hides the module's name)
ts = importlib.import_module("vidrl_jax.agents.train_step")

ACTION_DIM = 4
OBS_DIM = 39


def env_seeds(seed, episode, num_envs, offset=0):
    """Reset seeds of the `num_envs` envs of one agent for training episode `episode`
    (offset separates eval episodes from training ones)."""
    ss = np.random.SeedSequence([int(seed), int(offset), int(episode)])
    return [int(s) & 0x7FFFFFFF for s in ss.generate_state(num_envs)]


def prefill_actions(seed, env_step, num_envs):
    rng = np.random.default_rng([int(seed), 1, int(env_step)])
    return rng.uniform(-1.0, 1.0, (num_envs, ACTION_DIM)).astype(np.float32)


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

    def __init__(self, config, feature_dim, latent_dim, plan):
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
                                            latent_dim, jax.random.PRNGKey(s), plan)
                  for s in self.seeds]
        self.specs = rp.column_specs(
            (obs_dim,) if isinstance(obs_dim, int) else obs_dim, ACTION_DIM, feature_dim,
            latent_dim, obs_dtype=obs_dtype, extra=plan.extra_columns,
            start_dim=plan.start_dim(feature_dim))
        cap = int(config.agent.replay_capacity) // self.num_processes
        if self.layout == "single":
            self.state = states[0]
            self.replay = rp.create_replay(cap, self.specs)
            self._step = ts.jit_train_step
            self._add = rp.add
        elif self.layout == "pmap":
            self.state = distributed.replicate(states[0])
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
                              reward_model={}, reward_stats={})
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
        """Per-term rewards {name: [B]} of transitions (dicts of [B, ...], B a multiple of
        this process's envs, seed by seed) under the current params."""
        batch = {k: jnp.asarray(v).reshape(
            (self.num_seeds, np.shape(v)[0] // self.num_seeds) + np.shape(v)[1:])
            for k, v in batch.items()}  # (not -1: frame columns may be [B, 0])
        _, per_term, _, _ = self._rewards(self._view("full"), batch, goal)
        return {k: np.asarray(v).reshape(-1) for k, v in per_term.items()}

    def reward_running_stats(self):
        """{term: (running mean, running std)} of the reward terms the updates saw (the
        statistics of reward.normalize), averaged over seeds. Reads the device."""
        stats = jax.device_get(self._view("full").reward_stats)
        return {k: (float(np.mean(v["mean"])), float(np.mean(np.sqrt(v["var"]))))
                for k, v in stats.items()}

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
            self.state, self.replay = distributed.pmap_layout((self.state, self.replay))


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
