"""Fixed-capacity ring-buffer replay of jnp arrays, living on device.

Columns (capacity N, per transition):
  obs        float32 [O] (state) or uint8 [H,W,C] (pixels)
  action     float32 [A]
  next_obs   like obs (the real next observation, also at a time-limit truncation)
  next_phi   float32 [P]   frozen frame features phi of the next frame (B's input)
  start_phi  float32 [P] or [0]  phi of the episode's first frame (the learned reward
             reads next_phi - start_phi; [0] when no term reads it)
  window_latent float32 [D] (or latent_dtype) video-encoder latent of the window ending at s'
  reward     float32 []    Meta-World dense reward
  success    float32 []    1 if the env reported success
  terminal   float32 []    true terminal (no bootstrap)
  truncated  float32 []    time-limit truncation (bootstraps; kept for bookkeeping)
  + extra scalar float32 columns (e.g. "likelihood", "roboclip", and with
    reward.video_form=shaped "video_potential_prev": the video score Φ of the previous
    step, the potential the shaping subtracts; vidrl_jax/rewards/terms.py)

Sharded: with num_devices=n every array has a leading device axis [n, N/n, ...],
one slice on each local device; `add` takes transitions shaped [n, m, ...] and runs
under pmap, and inside a pmapped step each device samples its own slice.
Unsharded (num_devices=None): arrays [N, ...], `add` takes [m, ...].

A Replay is a pytree (data, size, ptr): checkpoint it with vidrl_jax/utils/checkpoint.py
so a resumed run keeps its data.
"""

import flax
import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax.errors import VidrlError
from vidrl_jax.utils.distributed import AXIS

STANDARD_SCALARS = ("reward", "success", "terminal", "truncated")


@flax.struct.dataclass
class Replay:
    data: dict          # column -> [N, ...] (or [n, N/n, ...] sharded)
    size: jnp.ndarray   # int32 [] (or [n]) number of valid rows
    ptr: jnp.ndarray    # int32 [] (or [n]) next row to write
    sharded: bool = flax.struct.field(pytree_node=False, default=False)

    @property
    def capacity(self):
        """Rows per device slice (or in total when unsharded)."""
        return self.data["action"].shape[1 if self.sharded else 0]


def column_specs(obs_shape, action_dim, feature_dim, latent_dim, obs_dtype=jnp.float32,
                 extra=(), latent_dtype=jnp.float32, start_dim=0):
    """{column: (shape, dtype)} of one transition (start_dim: start_phi's size, P or 0)."""
    obs_shape = tuple(obs_shape)
    specs = {"obs": (obs_shape, obs_dtype), "action": ((action_dim,), jnp.float32),
             "next_obs": (obs_shape, obs_dtype),
             "next_phi": ((feature_dim,), jnp.float32),
             "start_phi": ((start_dim,), jnp.float32),
             "window_latent": ((latent_dim,), latent_dtype)}
    for name in STANDARD_SCALARS + tuple(extra):
        specs[name] = ((), jnp.float32)
    return specs


def bytes_per_transition(specs):
    """Bytes one transition takes in the replay."""
    return int(sum(int(np.prod(s, dtype=np.int64)) * np.dtype(d).itemsize
                   for s, d in specs.values()))


def create_replay(capacity, specs, num_devices=None):
    """Empty replay of `capacity` transitions (split evenly over num_devices slices,
    in `distributed.pmap_layout`).

    Arrays are created on device (no host copy), so large buffers do not pass
    through host memory.
    """
    if num_devices is None:
        def make():
            data = {k: jnp.zeros((capacity,) + tuple(s), d) for k, (s, d) in specs.items()}
            return Replay(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
        return jax.jit(make)()
    if capacity % num_devices:
        raise VidrlError(f"replay capacity {capacity} is not divisible by the number of "
                         f"devices {num_devices}; set config.agent.replay_capacity to a multiple")
    per = capacity // num_devices

    def make_one(_):
        data = {k: jnp.zeros((per,) + tuple(s), d) for k, (s, d) in specs.items()}
        return Replay(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
    r = jax.pmap(make_one, axis_name=AXIS, devices=jax.local_devices()[:num_devices])(
        jnp.arange(num_devices))
    return r.replace(sharded=True)


def add_local(replay, transitions):
    """Pure: writes transitions {col: [m, ...]} at ptr (wrapping). Unsharded view."""
    m = transitions["action"].shape[0]
    cap = replay.data["action"].shape[0]
    if m > cap:
        raise VidrlError(f"adding {m} transitions to a replay slice of capacity {cap}")
    missing = set(replay.data) - set(transitions)
    if missing:
        raise VidrlError(f"replay add: missing columns {sorted(missing)}")
    idx = (replay.ptr + jnp.arange(m)) % cap
    data = {k: v.at[idx].set(jnp.asarray(transitions[k], v.dtype).reshape((m,) + v.shape[1:]))
            for k, v in replay.data.items()}
    return replay.replace(data=data, ptr=(replay.ptr + m) % cap,
                          size=jnp.minimum(replay.size + m, cap))


_add_jit = jax.jit(add_local, donate_argnums=0)
_add_pmap = jax.pmap(add_local, axis_name=AXIS, donate_argnums=0)


def add(replay, transitions):
    """Adds a batch of transitions; returns the new replay (the old one is donated).

    Unsharded: transitions {col: [m, ...]}; sharded: {col: [n, m, ...]}, slice i goes
    to device i. Extra keys in `transitions` are ignored.
    """
    transitions = {k: transitions[k] for k in replay.data if k in transitions}
    if replay.sharded:
        return _add_pmap(replay, transitions)
    return _add_jit(replay, transitions)


def sample(replay, key, batch_size):
    """Pure, jittable: batch_size uniform rows {col: [batch_size, ...]} of an unsharded
    view (inside pmap: this device's slice). Needs replay.size > 0."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(replay.size, 1))
    return {k: v[idx] for k, v in replay.data.items()}


def to_host(replay):
    """A numpy copy of the valid data: {col: [size, ...]} (unsharded replays only)."""
    size = int(replay.size)
    return {k: np.asarray(v[:size]) for k, v in replay.data.items()}
