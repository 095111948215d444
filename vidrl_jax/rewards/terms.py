"""The one registry of reward terms, and their combination with running statistics.

A term is a pure function `term(params, batch, goal) -> [B]`:
  params: {"fb": FB params {"F","B",...} or {}, "h": stop-gradient encoder features
           of batch["obs"] [B,H]}  (the step fills "h" once, so F sees the same features
           as in the FB update)
  batch:  a replay sample (vidrl_jax/data/replay.py columns)
  goal:   {"video_latent": [D] goal-video latent, "frame_feature": [P] phi(goal frame)}
Terms that need networks take the static AgentDef via `make_terms(defn)`.

  env_sparse  batch["success"] as 0/1
  env_dense   batch["reward"] (Meta-World dense reward)
  video       video_reward(goal video latent, window latent, reward.video_metric)
  frame       F(s,a,z_g)^T z_g, z_g = B(phi(goal frame)), current FB params
  likelihood  batch["likelihood"] (precomputed per transition by vidrl_jax/rewards/likelihood.py)
  roboclip    batch["roboclip"] (stored per transition, paid at episode end)

total = sum_t weight_t * r_t with weights from config.reward (env: 1 if not 'none';
video: alpha; frame: beta; likelihood; roboclip). With config.reward.normalize each
term is (r - running mean) / running std before weighting; statistics live in the
agent state so they checkpoint and vmap with it.
"""
import jax
import jax.numpy as jnp

from vidrl_jax.errors import ConfigError
from vidrl_jax.rewards.video_level import video_reward

# Replay columns a term reads beyond the standard ones (see replay.STANDARD_COLUMNS).
EXTRA_COLUMNS = {"likelihood": "likelihood", "roboclip": "roboclip"}
ENV_MODES = ("none", "sparse", "dense")
# Largest count of the running statistics: past it they track recent rewards
# (the reward distribution moves as FB and the policy learn).
STATS_MAX_COUNT = 1e5


def _make_video(defn):
    def video(params, batch, goal):
        return video_reward(goal["video_latent"], batch["window_latent"], defn.video_metric)
    return video


def _make_frame(defn):
    from vidrl_jax.agents import fb as fb_lib

    def frame(params, batch, goal):
        return fb_lib.frame_reward(defn, params["fb"], params["h"], batch["action"],
                                   goal["frame_feature"])
    return frame


TERMS = {
    "env_sparse": lambda defn: (lambda params, batch, goal: batch["success"].astype(jnp.float32)),
    "env_dense": lambda defn: (lambda params, batch, goal: batch["reward"].astype(jnp.float32)),
    "video": _make_video,
    "frame": _make_frame,
    "likelihood": lambda defn: (lambda p, batch, g: batch["likelihood"].astype(jnp.float32)),
    "roboclip": lambda defn: (lambda p, batch, g: batch["roboclip"].astype(jnp.float32)),
}


def active_terms(reward_config):
    """((name, weight), ...) of the terms with nonzero weight, from config.reward."""
    env = reward_config.env
    if env not in ENV_MODES:
        raise ConfigError(f"config.reward.env={env!r}; valid: {', '.join(ENV_MODES)}")
    out = []
    if env != "none":
        out.append(("env_" + env, 1.0))
    for name in ("video", "frame", "likelihood", "roboclip"):
        w = float(reward_config[name])
        if w != 0.0:
            out.append((name, w))
    if not out:
        raise ConfigError("config.reward: every reward weight is 0 and env='none'; "
                          "set e.g. config.reward.env=dense or config.reward.video=1")
    return tuple(out)


def extra_columns(reward_config):
    """Names of the extra scalar replay columns the active terms read."""
    return tuple(EXTRA_COLUMNS[n] for n, _ in active_terms(reward_config) if n in EXTRA_COLUMNS)


def make_terms(defn):
    """{name: (weight, term_fn)} for defn.reward_terms."""
    return {name: (w, TERMS[name](defn)) for name, w in defn.reward_terms}


def _update_stats(stats, r, axis_name):
    """Merges the (device-averaged) batch mean/var of r into running stats."""
    def pm(x):
        return x if axis_name is None else jax.lax.pmean(x, axis_name)
    n_dev = 1 if axis_name is None else jax.lax.psum(1, axis_name)
    b_mean = pm(jnp.mean(r))
    b_var = pm(jnp.mean((r - b_mean) ** 2))
    b_n = jnp.asarray(r.shape[0] * n_dev, jnp.float32)
    n = stats["count"]
    tot = n + b_n
    delta = b_mean - stats["mean"]
    mean = stats["mean"] + delta * b_n / tot
    var = (stats["var"] * n + b_var * b_n + delta ** 2 * n * b_n / tot) / tot
    return {"count": jnp.minimum(tot, STATS_MAX_COUNT), "mean": mean, "var": var}


def compute_rewards(defn, params, batch, goal, stats, axis_name=None):
    """Total reward [B], updated stats and metrics (per-term mean and running scale).

    Returns (total [B], per_term {name: raw [B]}, stats, metrics).
    """
    terms = make_terms(defn)
    total = 0.0
    per_term, new_stats, metrics = {}, {}, {}
    for name, (w, fn) in terms.items():
        r = jax.lax.stop_gradient(fn(params, batch, goal))
        st = _update_stats(stats[name], r, axis_name)
        new_stats[name] = st
        scale = jnp.sqrt(st["var"] + 1e-8)
        used = (r - st["mean"]) / scale if defn.reward_normalize else r
        total = total + w * used
        per_term[name] = r
        metrics[f"reward/{name}"] = jnp.mean(r)
        metrics[f"reward/{name}_scale"] = scale
    metrics["reward/total"] = jnp.mean(total)
    if axis_name is not None:
        metrics = jax.lax.pmean(metrics, axis_name)
    return total, per_term, new_stats, metrics
