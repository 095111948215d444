"""The denoising training loss (per-example randomness keyed by example index).

`apply_fn(params, x_t, t, cond, drop) -> out` is the model (see
`vidrl_jax.models.unet3d.make_apply`): x_t [B,T',h,w,C], t int32 [B],
cond = {"first_frame": [B,h,w,C], "text": int32 [B] or float32 [B,F]},
drop bool [B] (True = condition replaced by the null condition).

Randomness for example i comes from `fold_in(key, example_ids[i])`, so a batch
split over devices draws exactly the noise it would draw on one device.
"""
import jax
import jax.numpy as jnp

from vidrl_jax.diffusion.schedules import q_sample, target


def example_keys(key, example_ids):
    """[B] independent keys, one per global example index."""
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, example_ids)


def draw(key, example_ids, shape, timesteps, cond_dropout):
    """Per-example (t [B], noise [B,...], drop [B]) from `key` and example ids."""
    def one(k):
        kt, kn, kd = jax.random.split(k, 3)
        t = jax.random.randint(kt, (), 0, timesteps)
        noise = jax.random.normal(kn, shape[1:], jnp.float32)
        drop = jax.random.uniform(kd) < cond_dropout
        return t, noise, drop
    return jax.vmap(one)(example_keys(key, example_ids))


def denoising_loss(apply_fn, params, schedule, prediction, latents, cond, key,
                   example_ids, cond_dropout=0.0):
    """Mean-squared error of the model's eps/v prediction; returns (loss, per_example [B])."""
    timesteps = schedule["alpha_bar"].shape[0]
    t, noise, drop = draw(key, example_ids, latents.shape, timesteps, cond_dropout)
    x_t = q_sample(schedule, latents, t, noise)
    out = apply_fn(params, x_t, t, cond, drop)
    err = jnp.square(out - target(prediction, schedule, latents, t, noise))
    per_example = err.reshape(err.shape[0], -1).mean(axis=1)
    return per_example.mean(), per_example
