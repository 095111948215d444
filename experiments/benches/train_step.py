"""Bench: the fused agent train step vs an unfused loop vs plain SAC (and a jaxrl-style SAC).

    python -m experiments.bench --what=train_step [--batch=256] [--k=100] [--calls=1]
        [--single_updates=50] [--replay=10000] [--rounds=2]

JSON lines, one per measurement:
  {"bench": "train_step", "variant": V, "batch", "k", "updates_per_s", "device"}
  V = plain_sac      SAC update alone (39-d state obs, 256x256 MLPs, env reward only),
                     replay sampled on device; at k=1 (one jitted call per update) and k=K
      jaxrl_style    a careful jaxrl-style SAC update written here, same k's (reference)
      fused          every GenReward term (video + frame from FB) + FB + SAC, K per call
      unfused        jitted reward, FB and SAC functions called one after another from
                     Python on batches sampled from a host (numpy) replay, 1 update per call
then one summary line:
  {"bench": "train_step", "fused_vs_unfused": R, "genreward_cost": C,
   "bytes_per_transition": N, "plain_vs_jaxrl": {k: ratio}, "replay_gb_per_1m": G}
genreward_cost = plain_sac updates/s / fused updates/s (both at k=K): how many times an
update with every reward term and FB costs a plain SAC update. bytes_per_transition is
for the default config's replay (state obs, frame features and window latents sized from
the VAE config).
"""
import argparse
import functools
import json
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training.train_state import TrainState

from vidrl_jax.agents import make_unfused_step
from vidrl_jax.agents import networks as nets
from vidrl_jax.agents.state import agent_def_from_config, init_agent_state
from vidrl_jax.agents.train_step import jit_train_step, train_step
from vidrl_jax.data import replay as rp
from vidrl_jax.rewards.terms import resolve


def default_dims(config):
    """(feature_dim P, latent_dim D) of the config: VAE latents of one frame / a window."""
    hw = config.env.size // config.vae.spatial_downsample
    p = config.vae.latent_channels * hw * hw
    t = 1 + (config.vae.clip_length - 1) // config.vae.temporal_downsample
    return p, t * p


def _device():
    d = jax.devices()[0]
    return f"{d.platform}:{getattr(d, 'device_kind', '')} x{jax.local_device_count()}"


def _time(call, n):
    t = time.perf_counter()
    out = None
    for _ in range(n):
        out = call()
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / n


def _best_of(calls, rounds):
    """calls: [(call, n)]. Warms up every call, then times them interleaved `rounds` times
    (n calls each); returns the best seconds per call of each (interleaving + best-of
    keeps a shared, busy machine from favouring one variant)."""
    for c, _ in calls:
        jax.block_until_ready(c())
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        for i, (c, n) in enumerate(calls):
            best[i] = min(best[i], _time(c, n))
    return best


def _fill(specs, n, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for k, (s, d) in specs.items():
        out[k] = rng.normal(size=(n,) + tuple(s)).astype(np.float32)
    out["action"] = np.tanh(out["action"])
    out["terminal"] = np.zeros(n, np.float32)
    out["success"] = (out["success"] > 1).astype(np.float32)
    return out


# --------------------------------------------------------------- jaxrl-style reference SAC
class _Critic(nn.Module):
    hidden: tuple

    @nn.compact
    def __call__(self, o, a):
        x = jnp.concatenate([o, a], -1)
        for h in self.hidden:
            x = nn.relu(nn.Dense(h)(x))
        return nn.Dense(1)(x)[..., 0]


class _DoubleCritic(nn.Module):
    hidden: tuple

    @nn.compact
    def __call__(self, o, a):
        return nn.vmap(_Critic, variable_axes={"params": 0}, split_rngs={"params": True},
                       in_axes=None, out_axes=0, axis_size=2)(self.hidden)(o, a)


class _Actor(nn.Module):
    hidden: tuple
    action_dim: int

    @nn.compact
    def __call__(self, o):
        x = o
        for h in self.hidden:
            x = nn.relu(nn.Dense(h)(x))
        mean = nn.Dense(self.action_dim)(x)
        log_std = nn.Dense(self.action_dim)(x)
        log_std = -5.0 + 3.5 * (jnp.tanh(log_std) + 1.0)
        return mean, log_std


class _Temp(nn.Module):
    @nn.compact
    def __call__(self):
        return jnp.exp(self.param("log_temp", lambda _: jnp.full((), jnp.log(0.1), jnp.float32)))


def jaxrl_init(key, obs_dim, action_dim, hidden, lr=3e-4):
    """(actor, critic, target critic, temperature) TrainStates, built in one jitted call
    (flax's and optax's eager inits compile op by op: ~10x slower on a CPU)."""
    key_type = jax.ShapeDtypeStruct(key.shape, key.dtype)
    return _compiled_jaxrl_init(key_type, int(obs_dim), int(action_dim), tuple(hidden),
                                float(lr))(key)


@functools.lru_cache(maxsize=8)
def _compiled_jaxrl_init(key_type, obs_dim, action_dim, hidden, lr):
    """At XLA optimisation level 0, as vidrl_jax.agents.state does (it runs once; the
    default level takes ~3x longer to compile the RNG-heavy init on CPU)."""
    fn = jax.jit(functools.partial(_jaxrl_init, obs_dim=obs_dim, action_dim=action_dim,
                                   hidden=hidden, lr=lr))
    return fn.lower(key_type).compile({"xla_backend_optimization_level": 0})


def _jaxrl_init(key, obs_dim, action_dim, hidden, lr):
    k1, k2, k3 = jax.random.split(key, 3)
    o, a = jnp.zeros((1, obs_dim)), jnp.zeros((1, action_dim))
    actor_def, critic_def = _Actor(hidden, action_dim), _DoubleCritic(hidden)
    actor = TrainState.create(apply_fn=actor_def.apply, params=actor_def.init(k1, o)["params"],
                              tx=optax.adam(lr))
    cp = critic_def.init(k2, o, a)["params"]
    critic = TrainState.create(apply_fn=critic_def.apply, params=cp, tx=optax.adam(lr))
    target = TrainState.create(apply_fn=critic_def.apply, params=jax.tree.map(jnp.copy, cp),
                               tx=optax.identity())
    temp = TrainState.create(apply_fn=_Temp().apply, params=_Temp().init(k3)["params"],
                             tx=optax.adam(lr))
    # strong-typed step counters (a weak-typed Python 0 would recompile after one call)
    return tuple(ts.replace(step=jnp.zeros((), jnp.int32)) for ts in (actor, critic, target, temp))


def jaxrl_update(agent, batch, key, discount=0.99, tau=0.005, target_entropy=-4.0):
    """jaxrl's SAC update order: critic, target, actor, temperature."""
    actor, critic, target, temp = agent
    k1, k2 = jax.random.split(key)
    alpha = temp.apply_fn({"params": temp.params})
    mean, log_std = actor.apply_fn({"params": actor.params}, batch["next_obs"])
    next_a, next_logp = nets.tanh_gaussian_sample(mean, log_std,
                                                  jax.random.normal(k1, mean.shape))
    next_q = jnp.min(target.apply_fn({"params": target.params}, batch["next_obs"], next_a), 0)
    tq = batch["reward"] + discount * (1 - batch["terminal"]) * (next_q - alpha * next_logp)

    def critic_loss(p):
        qs = critic.apply_fn({"params": p}, batch["obs"], batch["action"])
        return jnp.sum(jnp.mean((qs - tq[None]) ** 2, 1))
    critic = critic.apply_gradients(grads=jax.grad(critic_loss)(critic.params))
    target = target.replace(params=optax.incremental_update(critic.params, target.params, tau))

    def actor_loss(p):
        mean, log_std = actor.apply_fn({"params": p}, batch["obs"])
        a, logp = nets.tanh_gaussian_sample(mean, log_std, jax.random.normal(k2, mean.shape))
        q = jnp.min(critic.apply_fn({"params": critic.params}, batch["obs"], a), 0)
        return jnp.mean(alpha * logp - q), -jnp.mean(logp)
    grads, entropy = jax.grad(actor_loss, has_aux=True)(actor.params)
    actor = actor.apply_gradients(grads=grads)

    def temp_loss(p):
        return temp.apply_fn({"params": p}) * (entropy - target_entropy)
    temp = temp.apply_gradients(grads=jax.grad(temp_loss)(temp.params))
    return (actor, critic, target, temp)


@functools.partial(jax.jit, static_argnums=(3, 4), donate_argnums=0)
def jaxrl_steps(agent, replay, key, k, batch_size):
    def body(agent, kk):
        k_s, k_u = jax.random.split(kk)
        return jaxrl_update(agent, rp.sample(replay, k_s, batch_size), k_u), ()
    agent, _ = jax.lax.scan(body, agent, jax.random.split(key, k))
    return agent


def make_jaxrl_call(hidden, replay, k, batch_size):
    """call() -> step: K jaxrl-style SAC updates (one lax.scan) on `replay` (39-d obs)."""
    ref = {"a": jaxrl_init(jax.random.key(0), 39, 4, tuple(hidden)), "key": jax.random.key(1)}

    def call():
        ref["key"], kk = jax.random.split(ref["key"])
        ref["a"] = jaxrl_steps(ref["a"], replay, kk, k, batch_size)
        return ref["a"][0].step
    return call


def plain_replay(rows):
    """A device replay of `rows` random transitions with SAC's columns only."""
    specs = rp.column_specs((39,), 4, 0, 0)
    return rp.add(rp.create_replay(rows, specs), _fill(specs, rows))


def make_fused_call(cfg, rows, dims=None):
    """The fused step of `cfg` (its reward terms, FB, SAC; agent.batch_size,
    agent.updates_per_call) on a device replay of `rows` random transitions whose
    feature/latent columns have dims (P, D) (default: default_dims(cfg)). Returns
    (call() -> step, goal, agent definition, host data {col: [rows, ...]}, column specs).
    It calls the agent loop's own jitted step with the same key type, so in a process
    that also ran the agent loop at the same sizes it reuses that compilation."""
    feat, lat = dims or default_dims(cfg)
    plan = resolve(cfg.reward)
    lat = lat if plan.reads_window else 0  # as the agent loop: no window column unread
    t = int(cfg.diffusion.clip_length)  # the goal video's frames (video_form=progress)
    goal = {"video_latent": jnp.ones(lat), "frame_feature": jnp.ones(feat) * 0.1,
            "frame_latents": jnp.linspace(-1.0, 1.0, t * feat).reshape(t, feat)}
    if plan.reads_start:  # the learned term: the goal videos' Δφ (goal.num_videos of them)
        m = int(cfg.goal.num_videos) * t
        goal.update(gen_dphi=jnp.linspace(-1.0, 1.0, m * feat).reshape(m, feat),
                    gen_progress=jnp.tile(jnp.linspace(0.0, 1.0, t), m // t),
                    dphi_scale=jnp.ones(feat))
    defn = agent_def_from_config(cfg, 39, 4, feat, lat, plan)
    specs = rp.column_specs((39,), 4, feat, lat, extra=plan.extra_columns,
                            start_dim=plan.start_dim(feat))
    data = _fill(specs, rows)
    replay = rp.add(rp.create_replay(rows, specs), data)
    holder = {"s": init_agent_state(defn, jax.random.PRNGKey(0)), "key": jax.random.PRNGKey(1)}

    def call():
        holder["key"], kk = jax.random.split(holder["key"])
        holder["s"], _ = jit_train_step(holder["s"], replay, goal, kk)
        return holder["s"].step
    return call, goal, defn, data, specs


# --------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--calls", type=int, default=1, help="timed calls of K updates per round")
    p.add_argument("--single_updates", type=int, default=50,
                   help="timed updates per round for the one-update-per-call variants")
    p.add_argument("--replay", type=int, default=10_000, help="replay rows filled")
    p.add_argument("--rounds", type=int, default=2,
                   help="interleaved timing rounds; the best round of each variant counts")
    args = p.parse_args(argv)

    from configs.metaworld import get_config
    cfg = get_config("default")
    cfg.agent.batch_size = args.batch
    device = _device()
    rows = []

    def emit(variant, k, ups):
        row = {"bench": "train_step", "variant": variant, "batch": args.batch, "k": k,
               "updates_per_s": round(ups, 2), "device": device}
        rows.append(row)
        print(json.dumps(row), flush=True)

    # ---- plain SAC (ours) vs jaxrl-style, k=1 and k=K
    plain_cfg = get_config("default,dense")
    plain_cfg.agent.batch_size = args.batch
    replay_plain = plain_replay(args.replay)
    ratios = {}
    for k in (1, args.k):
        plain_cfg.agent.updates_per_call = k
        defn = agent_def_from_config(plain_cfg, 39, 4, 0, 0)
        step = jax.jit(train_step, donate_argnums=0)
        holder = {"s": init_agent_state(defn, jax.random.key(0)), "key": jax.random.key(1)}

        def call_plain():
            holder["key"], kk = jax.random.split(holder["key"])
            holder["s"], m = step(holder["s"], replay_plain, {}, kk)
            return holder["s"].step
        n = args.single_updates if k == 1 else args.calls
        call_ref = make_jaxrl_call(cfg.agent.hidden, replay_plain, k, args.batch)
        t_plain, t_ref = _best_of([(call_plain, n), (call_ref, n)], args.rounds)
        ups_plain, ups_ref = k / t_plain, k / t_ref
        emit("plain_sac", k, ups_plain)
        emit("jaxrl_style", k, ups_ref)
        ratios[str(k)] = round(ups_plain / ups_ref, 3)

    # ---- fused: every GenReward term (config default: video + frame), FB, SAC
    g_cfg = get_config("default")
    g_cfg.agent.batch_size = args.batch
    g_cfg.agent.updates_per_call = args.k
    call_fused, goal, defn, data, specs = make_fused_call(g_cfg, args.replay)
    # ---- unfused: same terms, separate jitted functions, host replay
    state = init_agent_state(defn, jax.random.key(0))
    unfused = make_unfused_step(state, data)
    h = {"s": state, "key": jax.random.key(1)}

    def call_unfused():
        h["key"], kk = jax.random.split(h["key"])
        h["s"], m = unfused(h["s"], goal, kk)
        return h["s"].step
    # interleaved rounds: `calls` fused calls (K updates each), then `single_updates`
    # unfused updates; the best round of each counts
    t_fused, t_unfused = _best_of([(call_fused, args.calls), (call_unfused, args.single_updates)],
                                  args.rounds)
    ups_fused, ups_unfused = args.k / t_fused, 1 / t_unfused
    emit("fused", args.k, ups_fused)
    emit("unfused", 1, ups_unfused)

    bpt = rp.bytes_per_transition(specs)
    print(json.dumps({"bench": "train_step",
                      "fused_vs_unfused": round(ups_fused / ups_unfused, 3),
                      "genreward_cost": round(
                          next(r["updates_per_s"] for r in rows
                               if r["variant"] == "plain_sac" and r["k"] == args.k)
                          / ups_fused, 3),
                      "bytes_per_transition": bpt,
                      "replay_gb_per_1m": round(bpt * 1e6 / 2 ** 30, 2),
                      "plain_vs_jaxrl": ratios,
                      "feature_dim": defn.feature_dim, "latent_dim": defn.latent_dim,
                      "device": device}), flush=True)


if __name__ == "__main__":
    main()
