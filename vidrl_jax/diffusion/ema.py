"""Exponential moving average of parameters, with a warm-up for short runs."""
import jax
import jax.numpy as jnp


def ema_decay(decay, step):
    """Effective decay at optimiser step `step`: min(decay, (1 + step) / (10 + step))."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def ema_update(ema_params, params, decay):
    """ema <- decay * ema + (1 - decay) * params (same pytree structure)."""
    return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)
