"""Soft actor-critic: pure losses and update functions.

Sub-states are plain dicts of arrays (vmappable, checkpointable):
  critic = {"params": {"encoder": ..., "q": ...}, "target": same, "opt": optax state}
  actor  = {"params": ..., "opt": ...}
  temp   = {"params": {"log_alpha": []}, "opt": ...}
Network definitions come from an `AgentDef` (vidrl_jax/agents/state.py), static.

Terminal vs truncation: the TD target is r + discount * (1 - terminal) * V(s'). A
time-limit truncation is *not* terminal: it bootstraps (the replay stores the
real final observation as next_obs, never the reset observation).
"""
import jax
import jax.numpy as jnp
import optax

from vidrl_jax.agents import networks as nets


def pmean(x, axis_name):
    """lax.pmean over `axis_name`, identity when axis_name is None."""
    return x if axis_name is None else jax.lax.pmean(x, axis_name)


def soft_update(target, online, tau):
    """target <- tau * online + (1 - tau) * target (leafwise)."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def encode(defn, encoder_params, obs):
    """Observation -> features [B, H] (identity for state observations)."""
    return defn.encoder_module().apply({"params": encoder_params}, obs)


def q_values(defn, q_params, h, a):
    """Twin Q values [2, B]."""
    return defn.critic_module().apply({"params": q_params}, h, a)


def policy(defn, actor_params, h, eps):
    """Samples tanh-Gaussian actions: (a [B,A], logp [B]); eps ~ N(0,1) [B,A]."""
    mean, log_std = defn.actor_module().apply({"params": actor_params}, h)
    return nets.tanh_gaussian_sample(mean, log_std, eps)


def critic_target(defn, critic, actor_params, alpha, next_obs, reward, terminal, eps_next):
    """TD target [B]: r + discount * (1 - terminal) * (min_i Q'_i(s',a') - alpha * log pi(a'|s')).

    Truncated transitions are not terminal, so they bootstrap.
    """
    h_next = jax.lax.stop_gradient(encode(defn, critic["params"]["encoder"], next_obs))
    h_next_t = encode(defn, critic["target"]["encoder"], next_obs)
    next_a, next_logp = policy(defn, actor_params, h_next, eps_next)
    next_q = jnp.min(q_values(defn, critic["target"]["q"], h_next_t, next_a), axis=0)
    next_v = next_q - alpha * next_logp
    bootstrap = 1.0 - terminal.astype(jnp.float32)
    return jax.lax.stop_gradient(reward + defn.discount * bootstrap * next_v)


def critic_loss(critic_params, defn, obs, action, target):
    """Sum over the twin heads of the mean squared TD error."""
    h = encode(defn, critic_params["encoder"], obs)
    qs = q_values(defn, critic_params["q"], h, action)
    loss = jnp.sum(jnp.mean((qs - target[None]) ** 2, axis=1))
    return loss, {"critic/loss": loss, "critic/q": jnp.mean(qs)}


def actor_loss(actor_params, defn, critic_params, alpha, h, eps):
    """E[alpha * log pi(a|s) - min_i Q_i(s, a)]; h are stop-gradient encoder features."""
    a, logp = policy(defn, actor_params, h, eps)
    q = jnp.min(q_values(defn, critic_params["q"], h, a), axis=0)
    loss = jnp.mean(alpha * logp - q)
    entropy = -jnp.mean(logp)
    return loss, {"actor/loss": loss, "actor/entropy": entropy}


def temperature_loss(temp_params, entropy, target_entropy):
    """alpha * (entropy - target_entropy): raises alpha when entropy is below target."""
    alpha = jnp.exp(temp_params["log_alpha"])
    return alpha * (entropy - target_entropy)


def apply_grads(sub, grads, tx, axis_name):
    """Averages grads over devices, applies the optax update to sub['params']."""
    grads = pmean(grads, axis_name)
    updates, opt = tx.update(grads, sub["opt"], sub["params"])
    return dict(sub, params=optax.apply_updates(sub["params"], updates), opt=opt)


def sac_update(defn, critic, actor, temp, batch, reward, noise, axis_name=None):
    """One SAC update: critic, then actor and temperature (on the new critic), then targets.

    batch: obs [B,...], action [B,A], next_obs [B,...], terminal [B];
    reward [B]; noise: {"eps_next": [B,A], "eps": [B,A]} (+ pixel-aug already applied
    to obs/next_obs by the caller). Returns (critic, actor, temp, metrics).
    """
    tx = defn.optimizer(defn.lr)
    alpha = jnp.exp(temp["params"]["log_alpha"])
    target = critic_target(defn, critic, actor["params"], alpha, batch["next_obs"], reward,
                           batch["terminal"], noise["eps_next"])
    grads, m_c = jax.grad(critic_loss, has_aux=True)(
        critic["params"], defn, batch["obs"], batch["action"], target)
    critic = apply_grads(critic, grads, tx, axis_name)

    h = jax.lax.stop_gradient(encode(defn, critic["params"]["encoder"], batch["obs"]))
    grads, m_a = jax.grad(actor_loss, has_aux=True)(
        actor["params"], defn, critic["params"], alpha, h, noise["eps"])
    actor = apply_grads(actor, grads, tx, axis_name)

    entropy = pmean(m_a["actor/entropy"], axis_name)
    grads = jax.grad(temperature_loss)(temp["params"], entropy, defn.target_entropy)
    temp = apply_grads(temp, grads, tx, axis_name)

    critic = dict(critic, target=soft_update(critic["target"], critic["params"], defn.tau))
    metrics = {**m_c, **m_a, "critic/target": jnp.mean(target),
               "temperature/alpha": alpha,
               "temperature/loss": alpha * (entropy - defn.target_entropy)}
    return critic, actor, temp, pmean(metrics, axis_name)
