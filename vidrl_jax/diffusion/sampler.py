"""DDIM sampling with classifier-free guidance.

    ddim_sample(apply_fn, params, schedule, prediction, shape, cond, key,
                steps=50, eta=0.0, guidance_scale=3.0) -> x_0 [B,T',h,w,C]

One `lax.scan` over the DDIM steps, so a jitted call samples a whole batch.
`ddim_sample_loop` is the same computation as a Python loop over a jitted step
(the reference for tests and the benchmark). Guidance:
    out = cond + (s - 1) * (cond - uncond)        (s = 1: the conditional model)
evaluated in one model call on the doubled batch.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax.diffusion.schedules import to_x0_eps
from vidrl_jax.errors import ConfigError


def ddim_timesteps(timesteps, steps):
    """Descending int32 [steps] timesteps and their successors ([-1] = clean)."""
    if not 1 <= steps <= timesteps:
        raise ConfigError(f"sampling steps={steps} must be in 1..{timesteps} (diffusion.timesteps)")
    ts = np.linspace(timesteps - 1, 0, steps).round().astype(np.int32)
    prev = np.concatenate([ts[1:], [-1]]).astype(np.int32)
    return ts, prev


def guided_output(apply_fn, params, x, t, cond, guidance_scale):
    """Model output with classifier-free guidance; x [B,...], t scalar or [B]."""
    b = x.shape[0]
    t = jnp.broadcast_to(jnp.asarray(t, jnp.int32), (b,))
    both = jax.tree.map(lambda c: jnp.concatenate([c, c]), cond)
    drop = jnp.concatenate([jnp.zeros((b,), bool), jnp.ones((b,), bool)])
    out = apply_fn(params, jnp.concatenate([x, x]), jnp.concatenate([t, t]), both, drop)
    c, u = out[:b], out[b:]
    return c + (guidance_scale - 1.0) * (c - u)


def ddim_step(apply_fn, params, schedule, prediction, x, t, t_prev, cond, key,
              eta, guidance_scale):
    """One DDIM update x_t -> x_{t_prev} (t_prev = -1: the clean sample)."""
    a = schedule["alpha_bar"][t]
    a_prev = jnp.where(t_prev >= 0, schedule["alpha_bar"][jnp.maximum(t_prev, 0)], 1.0)
    out = guided_output(apply_fn, params, x, t, cond, guidance_scale)
    x0, eps = to_x0_eps(prediction, a, x, out)
    sigma = eta * jnp.sqrt((1.0 - a_prev) / (1.0 - a)) * jnp.sqrt(1.0 - a / a_prev)
    dir_xt = jnp.sqrt(jnp.maximum(1.0 - a_prev - sigma ** 2, 0.0)) * eps
    noise = jax.random.normal(key, x.shape, x.dtype)
    return jnp.sqrt(a_prev) * x0 + dir_xt + sigma * noise


def _start(key, shape, steps):
    k0, ks = jax.random.split(key)
    return jax.random.normal(k0, shape, jnp.float32), jax.random.split(ks, steps)


def ddim_sample(apply_fn, params, schedule, prediction, shape, cond, key, steps=50,
                eta=0.0, guidance_scale=3.0):
    """Samples x_0 of `shape` [B,T',h,w,C] with one lax.scan over `steps` DDIM steps."""
    ts, prev = ddim_timesteps(schedule["alpha_bar"].shape[0], steps)
    x, keys = _start(key, shape, steps)

    def body(x, inp):
        t, tp, k = inp
        return ddim_step(apply_fn, params, schedule, prediction, x, t, tp, cond, k,
                         eta, guidance_scale), None

    x, _ = jax.lax.scan(body, x, (jnp.asarray(ts), jnp.asarray(prev), keys))
    return x


def make_sampler(apply_fn, prediction, shape, steps):
    """Jitted `sample(params, schedule, cond, key, eta, guidance_scale) -> x_0`."""
    @jax.jit
    def sample(params, schedule, cond, key, eta, guidance_scale):
        return ddim_sample(apply_fn, params, schedule, prediction, shape, cond, key,
                           steps, eta, guidance_scale)
    return sample


@functools.lru_cache(maxsize=8)
def _jitted_step(apply_fn, prediction):
    return jax.jit(functools.partial(ddim_step, apply_fn), static_argnums=(2,))


def ddim_sample_loop(apply_fn, params, schedule, prediction, shape, cond, key, steps=50,
                     eta=0.0, guidance_scale=3.0):
    """Reference sampler: the same steps as `ddim_sample`, one jitted call per step."""
    ts, prev = ddim_timesteps(schedule["alpha_bar"].shape[0], steps)
    x, keys = _start(key, shape, steps)
    step = _jitted_step(apply_fn, prediction)
    for i in range(steps):
        x = step(params, schedule, prediction, x, jnp.int32(ts[i]), jnp.int32(prev[i]),
                 cond, keys[i], jnp.float32(eta), jnp.float32(guidance_scale))
    return x
