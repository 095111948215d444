"""Discrete noise schedules: alpha_bar[t] for t = 0..T-1 (t = 0 least noisy).

    x_t = sqrt(alpha_bar[t]) * x_0 + sqrt(1 - alpha_bar[t]) * eps

A schedule is a plain dict of float32 arrays of shape [T] (a pytree, so it can
be closed over or passed through jit).
"""
import math

import jax.numpy as jnp
import numpy as np

from vidrl_jax.errors import ConfigError

SCHEDULES = ("linear", "cosine")


def _linear_betas(timesteps):
    # DDPM's 1e-4..0.02 for T=1000, rescaled so other T give the same curve.
    scale = 1000.0 / timesteps
    return np.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=np.float64)


def _cosine_betas(timesteps, s=0.008):
    # Nichol & Dhariwal (2021): alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) * pi/2).
    steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
    return np.clip(betas, 0.0, 0.999)


def make_schedule(name, timesteps):
    """Returns {'alpha_bar': [T], 'snr': [T]} for schedule `name` (linear | cosine)."""
    if name not in SCHEDULES:
        raise ConfigError(f"diffusion.schedule={name!r}; choose one of {', '.join(SCHEDULES)}")
    if timesteps < 2:
        raise ConfigError(f"diffusion.timesteps={timesteps} must be >= 2")
    betas = _linear_betas(timesteps) if name == "linear" else _cosine_betas(timesteps)
    if betas.max() >= 1.0:
        raise ConfigError(f"diffusion.timesteps={timesteps} is too small for the linear "
                          "schedule (a beta reaches 1); use >= 20")
    alpha_bar = np.cumprod(1.0 - betas)
    return {"alpha_bar": jnp.asarray(alpha_bar, jnp.float32),
            "snr": jnp.asarray(alpha_bar / (1.0 - alpha_bar), jnp.float32)}


def _bcast(v, x):
    """[B] -> [B, 1, ..., 1] matching x's rank."""
    return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))


def q_sample(schedule, x0, t, noise):
    """Noisy x_t for clean x0 [B,...], integer timesteps t [B], noise like x0."""
    a = _bcast(schedule["alpha_bar"][t], x0)
    return jnp.sqrt(a) * x0 + jnp.sqrt(1.0 - a) * noise


def target(prediction, schedule, x0, t, noise):
    """The regression target of the model: eps, or v = sqrt(a) eps - sqrt(1-a) x0."""
    if prediction == "eps":
        return noise
    if prediction == "v":
        a = _bcast(schedule["alpha_bar"][t], x0)
        return jnp.sqrt(a) * noise - jnp.sqrt(1.0 - a) * x0
    raise ConfigError(f"diffusion.prediction={prediction!r}; choose eps or v")


def to_x0_eps(prediction, alpha_bar, x_t, out):
    """Model output -> (x0_hat, eps_hat); alpha_bar broadcastable to x_t."""
    sa, s1a = jnp.sqrt(alpha_bar), jnp.sqrt(1.0 - alpha_bar)
    if prediction == "eps":
        return (x_t - s1a * out) / sa, out
    if prediction == "v":
        return sa * x_t - s1a * out, s1a * x_t + sa * out
    raise ConfigError(f"diffusion.prediction={prediction!r}; choose eps or v")
