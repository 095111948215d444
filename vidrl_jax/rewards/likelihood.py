"""VIPER-style reward: how likely the diffusion model finds the agent's own video.

VIPER (Escontrela et al., 2023) pays the log-likelihood of the agent's frames
under a video model trained on experts. For a diffusion model the likelihood is
bounded by the ELBO; on a fixed grid of K timesteps t_1 < ... < t_K (spacing
Delta) its data-dependent part is, in x0-space (Kingma et al., 2021),

    -log p(x | c) <= sum_k 0.5 (SNR(t_k - Delta) - SNR(t_k)) ||x - x0_hat(x_{t_k}, t_k, c)||^2
                     + const

The reward is minus that bound with the weights normalised to sum to one and the
squared error averaged over latent elements (same ranking, O(1) scale):

    reward = - sum_k w_k mean((x - x0_hat_k)^2),  w_k proportional to SNR(t_k - Delta) - SNR(t_k)

conditioned on the episode's first-frame latent and the task instruction (no
guidance). A fixed `key` gives common random numbers across calls, so rewards of
different windows are comparable.

    fn = make_likelihood_reward(model, num_timesteps=8)
    r = fn(model.params, latents [B,T',h,w,C] (VAE posterior means), still, cond, key) -> [B]
    # still: latents of the first frame held still, like latents (DiffusionModel.to_model)
    # cond = model.cond(task, still[:, 0])
"""
import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax.diffusion.schedules import q_sample, to_x0_eps
from vidrl_jax.errors import ConfigError


def elbo_grid(schedule, num_timesteps):
    """(timesteps int32 [K], normalised ELBO weights float32 [K])."""
    total = int(schedule["alpha_bar"].shape[0])
    if not 1 <= num_timesteps <= total // 2:
        raise ConfigError(f"likelihood num_timesteps={num_timesteps} must be in 1..{total // 2}")
    ts = np.linspace(0.02 * total, 0.98 * total, num_timesteps).round().astype(np.int32)
    delta = max(1, int(ts[1] - ts[0])) if num_timesteps > 1 else 1
    snr = np.asarray(schedule["snr"], np.float64)
    w = snr[np.maximum(ts - delta, 0)] - snr[ts]
    w = np.maximum(w, 1e-12)
    return jnp.asarray(ts), jnp.asarray(w / w.sum(), jnp.float32)


def likelihood_bound(apply_fn, params, schedule, prediction, x, cond, key, ts, weights):
    """-(weighted x0 error) for scaled latents x [B,...]; pure jnp -> [B]."""
    b, k = x.shape[0], ts.shape[0]
    noise = jax.random.normal(key, (k,) + x.shape, x.dtype)
    xk = jnp.broadcast_to(x[None], (k,) + x.shape).reshape((k * b,) + x.shape[1:])
    tk = jnp.repeat(ts, b)
    noise = noise.reshape(xk.shape)
    x_t = q_sample(schedule, xk, tk, noise)
    cond_k = jax.tree.map(lambda c: jnp.concatenate([c] * k), cond)
    out = apply_fn(params, x_t, tk, cond_k, jnp.zeros((k * b,), bool))
    a = schedule["alpha_bar"][tk].reshape((k * b,) + (1,) * (x.ndim - 1))
    x0_hat, _ = to_x0_eps(prediction, a, x_t, out)
    err = jnp.square(x0_hat - xk).reshape(k, b, -1).mean(axis=-1)        # [K, B]
    return -(weights[:, None] * err).sum(axis=0)


def make_likelihood_reward(model, num_timesteps=8):
    """fn(params, latents [B,T',h,w,C] unscaled, still, cond, key) -> reward [B] (jit-able)."""
    schedule, apply_fn, prediction = model.schedule, model.apply_fn, model.prediction
    ts, weights = elbo_grid(schedule, num_timesteps)

    def reward(params, latents, still, cond, key):
        return likelihood_bound(apply_fn, params, schedule, prediction,
                                model.to_model(latents, still), cond, key, ts, weights)
    return reward
