"""The one registry of reward terms, and their combination with running statistics.

A term is a pure function `term(params, batch, goal) -> [B]`:
  params: {"fb": FB params {"F","B",...} or {}, "h": stop-gradient encoder features
           of batch["obs"] [B,H] (the step fills "h" once, so F sees the same features
           as in the FB update), "learned": the reward model's params or {}}
  batch:  a replay sample (vidrl_jax/data/replay.py columns)
  goal:   {"video_latent": [D] goal-video latent, "frame_feature": [P] phi(goal frame),
           "frame_latents": [T,P] phi of each goal-video frame (video_form=progress only),
           "gen_dphi", "gen_progress", "dphi_scale" (the learned term only,
           vidrl_jax/rewards/learned.py)}
Terms that need networks take the static AgentDef via `make_terms(defn)`.

  env_sparse  batch["success"] as 0/1
  env_dense   batch["reward"] (Meta-World dense reward)
  video       by reward.video_form (vidrl_jax/rewards/video_level.py), with
              Φ' = video_reward(goal video latent, window latent, reward.video_metric):
                score     Φ'  (the score of the episode so far)
                shaped    γ·Φ' − batch["video_potential_prev"] (γ = agent.discount; the
                          column is Φ of the previous step, scored on the host at
                          collection time with the same function and centring)
                progress  frame_progress(goal["frame_latents"], batch["next_phi"]) in
                          [0,1]
  frame       by reward.frame_form, current FB params, z_g = B(phi(goal frame)):
                fz         F(s,a,z_g)^T z_g (= the paper's F^T B(g), agents/fb.py)
                fz_scaled  F(s,a,z_g)^T z_g / its running std (reward/frame_scale; not
                           centred): the scale of F^T z grows as FB trains, this is ~1
                bsim       cos(B(phi(s')), z_g) in [-1, 1]
  learned     the goal discriminator's logit of Δφ = batch["next_phi"] − batch["start_phi"]
              (vidrl_jax/rewards/learned.py), trained in the fused step on the goal
              videos against the replay; paid standardised by its running statistics
  progress_net  batch["progress_net"]: the frozen progress net's standardised logit of the
              next frame (vidrl_jax/rewards/progress_net.py), scored on the host at
              collection time
  likelihood  batch["likelihood"] (precomputed per transition by vidrl_jax/rewards/likelihood.py)
  roboclip    batch["roboclip"] (stored per transition, paid at episode end)

total = sum_t weight_t * r_t with weights from config.reward (env: 1 if not 'none';
video: alpha; frame: beta; learned; progress_net; likelihood; roboclip). `resolve(config.reward)` reads
the reward config once into a RewardPlan: the terms and what they read. With config.reward.normalize each
term is (r - running mean) / running std before weighting (frame_form=fz_scaled is
then the same as fz); statistics live in the agent state so they checkpoint and vmap
with it. The statistics are always those of the raw term (for fz_scaled: F^T z_g
before the division); metrics reward/<term> are the mean of what the term pays
(before normalize), reward/<term>_scale the running std of the raw term.
"""
import dataclasses
from typing import Tuple

import jax
import jax.numpy as jnp

from vidrl_jax.errors import ConfigError
from vidrl_jax.rewards import learned as learned_lib
from vidrl_jax.rewards import video_level
from vidrl_jax.rewards.video_level import frame_progress, video_reward

# Replay columns a term reads beyond the standard ones (see replay.STANDARD_COLUMNS).
EXTRA_COLUMNS = {"likelihood": "likelihood", "roboclip": "roboclip",
                 "progress_net": "progress_net"}
# video_form=shaped: the potential (score) of the previous step, one scalar per transition
POTENTIAL_COLUMN = "video_potential_prev"
ENV_MODES = ("none", "sparse", "dense")
VIDEO_FORMS = video_level.FORMS
FRAME_FORMS = ("fz", "fz_scaled", "bsim")
# Largest count of the running statistics: past it they track recent rewards
# (the reward distribution moves as FB and the policy learn).
STATS_MAX_COUNT = 1e5


def _make_video(defn):
    form = defn.video_form
    if form not in VIDEO_FORMS:
        raise ConfigError(f"reward.video_form={form!r}; valid: {', '.join(VIDEO_FORMS)}")

    def score(batch, goal):
        return video_reward(goal["video_latent"], batch["window_latent"], defn.video_metric)

    def video(params, batch, goal):
        if form == "shaped":
            return defn.discount * score(batch, goal) - batch[POTENTIAL_COLUMN]
        if form == "progress":
            return frame_progress(goal["frame_latents"], batch["next_phi"],
                                  defn.video_progress_temperature, defn.video_progress_gate)
        return score(batch, goal)
    return video


def _make_frame(defn):
    from vidrl_jax.agents import fb as fb_lib
    form = defn.frame_form
    if form not in FRAME_FORMS:
        raise ConfigError(f"reward.frame_form={form!r}; valid: {', '.join(FRAME_FORMS)}")

    def frame(params, batch, goal):
        if form == "bsim":
            return fb_lib.frame_bsim(defn, params["fb"], batch["next_phi"],
                                     goal["frame_feature"])
        return fb_lib.frame_reward(defn, params["fb"], params["h"], batch["action"],
                                   goal["frame_feature"])  # fz_scaled: see paid_term
    return frame


def _make_learned(defn):
    def learned(params, batch, goal):
        dphi = batch["next_phi"] - batch["start_phi"]
        return learned_lib.reward(defn.learned_hidden, params["learned"], dphi, goal)
    return learned


TERMS = {
    "env_sparse": lambda defn: (lambda params, batch, goal: batch["success"].astype(jnp.float32)),
    "env_dense": lambda defn: (lambda params, batch, goal: batch["reward"].astype(jnp.float32)),
    "video": _make_video,
    "frame": _make_frame,
    "learned": _make_learned,
}
TERMS.update({name: (lambda defn, c=column: (lambda p, batch, g: batch[c].astype(jnp.float32)))
              for name, column in EXTRA_COLUMNS.items()})


WEIGHTED = ("video", "frame", "learned", "progress_net", "likelihood", "roboclip")


@dataclasses.dataclass(frozen=True)
class RewardPlan:
    """The reward config read once: the active terms and what they read.

    terms: ((name, weight), ...) of the terms with nonzero weight (env first).
    """
    terms: Tuple[Tuple[str, float], ...]
    video_form: str = "score"

    def weight(self, name):
        return dict(self.terms).get(name, 0.0)

    @property
    def reads_frames(self):
        """A term reads the VAE (frame features, the agent's video or the goal) or the
        goal videos (the progress net)."""
        return any(self.weight(k) for k in ("video", "frame", "learned", "progress_net",
                                            "likelihood"))

    @property
    def reads_window(self):
        """A term reads the embedding of the agent's video (the replay's window_latent):
        the video term in its score/shaped forms, or the likelihood term. Otherwise the
        loop encodes no video: the VAE runs on one frame per env step."""
        return bool(self.weight("likelihood")) or (
            bool(self.weight("video")) and self.video_form != "progress")

    @property
    def reads_start(self):
        """A term reads φ of each transition's episode start (the replay's start_phi)."""
        return bool(self.weight("learned"))

    def start_dim(self, feature_dim):
        """Size of the replay's start_phi column: P when a term reads it, else 0."""
        return int(feature_dim) if self.reads_start else 0

    @property
    def extra_columns(self):
        """Names of the extra scalar replay columns the active terms read."""
        out = tuple(EXTRA_COLUMNS[n] for n, _ in self.terms if n in EXTRA_COLUMNS)
        if self.weight("video") and self.video_form == "shaped":
            out += (POTENTIAL_COLUMN,)
        return out


def resolve(reward_config):
    """RewardPlan of config.reward (ConfigError for an unknown env mode or no term)."""
    env = reward_config.env
    if env not in ENV_MODES:
        raise ConfigError(f"config.reward.env={env!r}; valid: {', '.join(ENV_MODES)}")
    out = []
    if env != "none":
        out.append(("env_" + env, 1.0))
    for name in WEIGHTED:
        w = float(reward_config.get(name, 0.0))
        if w != 0.0:
            out.append((name, w))
    if not out:
        raise ConfigError("config.reward: every reward weight is 0 and env='none'; "
                          "set e.g. config.reward.env=dense or config.reward.video=1")
    return RewardPlan(terms=tuple(out),
                      video_form=str(reward_config.get("video_form", "score")))


def active_terms(reward_config):
    """((name, weight), ...) of the terms with nonzero weight, from config.reward."""
    return resolve(reward_config).terms


def extra_columns(reward_config):
    """Names of the extra scalar replay columns the active terms read."""
    return resolve(reward_config).extra_columns


def paid_term(defn, name, raw, scale, stats):
    """What term `name` pays before weighting, from its raw value [B] and its running
    statistics: raw / std for frame_form=fz_scaled, (raw - mean) / std for the learned
    term (a logit: its offset and scale drift as the model trains), else raw."""
    if name == "frame" and defn.frame_form == "fz_scaled":
        return raw / scale
    if name == "learned":
        return (raw - stats["mean"]) / scale
    return raw


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

    Returns (total [B], per_term {name: paid [B] (paid_term, before normalize)}, stats,
    metrics).
    """
    terms = make_terms(defn)
    total = 0.0
    per_term, new_stats, metrics = {}, {}, {}
    for name, (w, fn) in terms.items():
        raw = jax.lax.stop_gradient(fn(params, batch, goal))
        st = _update_stats(stats[name], raw, axis_name)
        new_stats[name] = st
        scale = jnp.sqrt(st["var"] + 1e-8)
        r = paid_term(defn, name, raw, scale, st)
        used = (raw - st["mean"]) / scale if defn.reward_normalize else r
        total = total + w * used
        per_term[name] = r
        metrics[f"reward/{name}"] = jnp.mean(r)
        metrics[f"reward/{name}_scale"] = scale
        if r is not raw:
            metrics[f"reward/{name}_raw"] = jnp.mean(raw)
    metrics["reward/total"] = jnp.mean(total)
    if axis_name is not None:
        metrics = jax.lax.pmean(metrics, axis_name)
    return total, per_term, new_stats, metrics
