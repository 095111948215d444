"""The fused train step: sample -> rewards -> FB -> reward model -> critic -> actor -> temperature -> targets,
K times in one `lax.scan`, jitted (one device) or pmapped (all local devices).

    state = create_agent_state(config, obs_dim, action_dim, feature_dim, latent_dim, key)
    step = jit_train_step                        # or make_pmapped_train_step()
    state, metrics = step(state, replay, goal, key)
    check_finite(metrics)                        # raises NonFiniteError(term, step)
    logger.scalars(step, summarize(metrics), prefix="agent/")

goal = {"video_latent": [D], "frame_feature": [P]} (entries a term does not use may be
zeros). metrics: {name: [K]} (pmapped: [n_devices, K], identical across devices).

The step is a pure function (no Python side effects), so it can be vmapped over a
leading seed axis of (state, replay, key) as it is.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax.agents import fb as fb_lib
from vidrl_jax.agents import networks as nets
from vidrl_jax.agents import sac
from vidrl_jax.agents.state import AgentState, create_agent_state, init_agent_state  # noqa: F401
from vidrl_jax.data import replay as replay_lib
from vidrl_jax.errors import NonFiniteError
from vidrl_jax.models.augment import random_shift
from vidrl_jax.rewards import learned as learned_lib
from vidrl_jax.rewards import terms as reward_terms
from vidrl_jax.utils.distributed import AXIS, unreplicate  # noqa: F401 (re-exported)

# Order in which a non-finite value is blamed (computation order inside one update).
TERM_ORDER = ("reward/", "fb/", "learned/", "critic/", "actor/", "temperature/")


# ----------------------------------------------------------------------------- pieces
def augment(defn, batch, key, axis_name=None):
    """Random-shift augmentation of pixel obs/next_obs (identity for state obs)."""
    if not defn.pixels:
        return batch
    b = batch["obs"].shape[0]
    k1, k2 = jax.random.split(key)
    hi = 2 * defn.aug_pad + 1
    sampler = functools.partial(jax.random.randint, minval=0, maxval=hi)
    s1 = fb_lib.global_noise(sampler, k1, b, (2,), axis_name)
    s2 = fb_lib.global_noise(sampler, k2, b, (2,), axis_name)
    return dict(batch, obs=random_shift(batch["obs"], s1, defn.aug_pad),
                next_obs=random_shift(batch["next_obs"], s2, defn.aug_pad))


def features(state, obs):
    """Stop-gradient encoder features [B,H] (what F, pi_z and the frame reward see)."""
    return jax.lax.stop_gradient(
        sac.encode(state.defn, state.critic["params"]["encoder"], obs))


def rewards_part(state, batch, goal, axis_name=None):
    """Rewards with the current params. Returns (total [B], per_term, stats, metrics)."""
    params = {"fb": state.fb.get("params", {}), "h": features(state, batch["obs"]),
              "learned": state.reward_model.get("params", {})}
    return reward_terms.compute_rewards(state.defn, params, batch, goal, state.reward_stats,
                                        axis_name)


def fb_part(state, batch, key, axis_name=None):
    """FB update on the batch (no-op when FB is off). Returns (state, metrics)."""
    if not state.defn.use_fb:
        return state, {}
    fb, m = fb_lib.fb_update(state.defn, state.fb, features(state, batch["obs"]),
                             batch["action"], features(state, batch["next_obs"]),
                             batch["next_phi"], batch["terminal"], key, axis_name)
    return state.replace(fb=fb), m


def learned_part(state, batch, goal, key, axis_name=None):
    """The goal discriminator's update on the batch's frames as negatives (no-op when the
    learned term is off). Returns (state, metrics)."""
    defn = state.defn
    if not defn.use_learned:
        return state, {}
    m = state.reward_model
    params, opt, metrics = learned_lib.update(
        defn.learned_hidden, defn.learned_lr, defn.learned_domain_weight, m["params"], m["opt"],
        batch["next_phi"] - batch["start_phi"], goal, key, axis_name)
    if axis_name is not None:
        metrics = jax.lax.pmean(metrics, axis_name)
    return state.replace(reward_model={"params": params, "opt": opt}), metrics


def sac_part(state, batch, reward, key, axis_name=None):
    """SAC update (critic, actor, temperature, targets). Returns (state, metrics)."""
    defn = state.defn
    k_aug, k1, k2 = jax.random.split(key, 3)
    batch = augment(defn, batch, k_aug, axis_name)
    b = batch["action"].shape[0]
    noise = {"eps_next": fb_lib.global_noise(jax.random.normal, k1, b, (defn.action_dim,),
                                             axis_name),
             "eps": fb_lib.global_noise(jax.random.normal, k2, b, (defn.action_dim,),
                                        axis_name)}
    critic, actor, temp, m = sac.sac_update(defn, state.critic, state.actor, state.temp,
                                            batch, reward, noise, axis_name)
    return state.replace(critic=critic, actor=actor, temp=temp, step=state.step + 1), m


def update(state, batch, goal, key, axis_name=None):
    """One full update on a given batch (local rows when pmapped). Returns (state, metrics)."""
    k_fb, k_sac, k_learned = jax.random.split(key, 3)
    reward, _, stats, m_r = rewards_part(state, batch, goal, axis_name)
    state = state.replace(reward_stats=stats)
    state, m_fb = fb_part(state, batch, k_fb, axis_name)
    state, m_l = learned_part(state, batch, goal, k_learned, axis_name)
    state, m_sac = sac_part(state, batch, reward, k_sac, axis_name)
    return state, {**m_r, **m_fb, **m_l, **m_sac, "step": state.step}


# ----------------------------------------------------------------------------- fused step
def train_step(state, replay, goal, key, axis_name=None):
    """K = defn.updates_per_call fused updates, each on a fresh replay sample.

    state: AgentState; replay: Replay (its local slice when pmapped); goal: dict;
    key: PRNG key (the same on every device). Returns (state, metrics {name: [K]}).
    """
    defn = state.defn
    local_b = defn.batch_size // fb_lib.axis_size(axis_name)

    def body(state, k):
        k_s, k_u = jax.random.split(k)
        if axis_name is not None:
            k_s = jax.random.fold_in(k_s, jax.lax.axis_index(axis_name))
        batch = replay_lib.sample(replay, k_s, local_b)
        return update(state, batch, goal, k_u, axis_name)

    return jax.lax.scan(body, state, jax.random.split(key, defn.updates_per_call))


def run_updates(state, batches, goal, key, axis_name=None):
    """Like train_step but on given batches {col: [K, b, ...]} (tests, debugging)."""
    k = batches["action"].shape[0]
    return jax.lax.scan(lambda s, xs: update(s, xs[0], goal, xs[1], axis_name), state,
                        (batches, jax.random.split(key, k)))


jit_train_step = jax.jit(train_step, donate_argnums=0)


def make_pmapped_train_step(axis_name=AXIS, devices=None):
    """train_step over local devices: state replicated [n, ...], replay sharded
    (create_replay(..., num_devices=n)), goal and key shared; gradients pmean'd;
    the state buffers are donated."""
    return jax.pmap(functools.partial(train_step, axis_name=axis_name), axis_name=axis_name,
                    in_axes=(0, 0, None, None), donate_argnums=0, devices=devices)


def replicate(tree, n):
    """Stacks a pytree n times on a new leading axis (for the pmapped step)."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), tree)


# ----------------------------------------------------------------------------- unfused
def make_unfused_step(state, host_replay, seed=0):
    """Reference path without fusion: jitted reward, FB and SAC functions called one
    after another from Python, batches sampled from a host (numpy) replay.

    host_replay: {col: np.ndarray [N, ...]}. Returns step(state, goal, key) -> (state,
    metrics) doing ONE update per call.
    """
    defn = state.defn
    n = host_replay["action"].shape[0]
    rng = np.random.default_rng(seed)
    rewards_fn = jax.jit(rewards_part)
    fb_fn = jax.jit(fb_part, donate_argnums=0)
    learned_fn = jax.jit(learned_part, donate_argnums=0)
    sac_fn = jax.jit(sac_part, donate_argnums=0)

    def step(state, goal, key):
        idx = rng.integers(0, n, defn.batch_size)
        batch = jax.device_put({k: v[idx] for k, v in host_replay.items()})  # one transfer
        k_fb, k_sac, k_learned = jax.random.split(key, 3)
        reward, _, stats, m_r = rewards_fn(state, batch, goal)
        state = state.replace(reward_stats=stats)
        state, m_fb = fb_fn(state, batch, k_fb)
        state, m_l = learned_fn(state, batch, goal, k_learned)
        state, m_sac = sac_fn(state, batch, reward, k_sac)
        return state, {**m_r, **m_fb, **m_l, **m_sac}

    return step


# ----------------------------------------------------------------------------- acting
@functools.partial(jax.jit, static_argnames="deterministic")
def act(state, obs, key, deterministic=False):
    """Actions in [-1, 1]: obs [B, ...] -> [B, A] (or [...] -> [A]).

    state: AgentState (uses the actor and, for pixels, the critic's encoder).
    deterministic: tanh(mean) (evaluation) instead of a sample (exploration).
    """
    defn = state.defn
    single = obs.ndim == len(defn.obs_shape)
    x = obs[None] if single else obs
    h = sac.encode(defn, state.critic["params"]["encoder"], x)
    mean, log_std = defn.actor_module().apply({"params": state.actor["params"]}, h)
    if deterministic:
        a = jnp.tanh(mean)
    else:
        a, _ = nets.tanh_gaussian_sample(mean, log_std, jax.random.normal(key, mean.shape))
    return a[0] if single else a


# ----------------------------------------------------------------------------- host side
def check_finite(metrics, step=None):
    """Raises NonFiniteError naming the first non-finite term and its update step.

    metrics: {name: array [..., K]} as returned by a step (any leading axes: devices,
    seeds). `step` is used when metrics has no "step" entry.
    """
    m = {k: np.asarray(v) for k, v in metrics.items()}
    bad = {k: ~np.isfinite(v) for k, v in m.items() if k != "step"}
    if not any(b.any() for b in bad.values()):
        return
    steps = m.get("step")

    def first(k):
        b = bad[k].reshape(-1, bad[k].shape[-1]) if bad[k].ndim else bad[k].reshape(1, 1)
        return int(np.argmax(b.any(axis=0)))

    def order(k):
        return next((i for i, p in enumerate(TERM_ORDER) if k.startswith(p)), len(TERM_ORDER))

    cands = [(first(k), order(k), k) for k, b in bad.items() if b.any()]
    j, _, name = min(cands)
    if steps is not None:
        at = int(np.asarray(steps).reshape(-1, np.shape(steps)[-1])[0, j]) if np.ndim(steps) \
            else int(steps)
    else:
        at = step
    raise NonFiniteError(
        f"non-finite value in {name!r} at update step {at}; training stopped before "
        f"saving (the last checkpoint is intact). Lower the learning rate "
        f"(config.agent.lr / config.agent.fb.lr) or check the reward inputs.")


def summarize(metrics):
    """{name: float} means over every axis (devices, seeds, K)."""
    return {k: float(np.mean(np.asarray(v))) for k, v in metrics.items()}
