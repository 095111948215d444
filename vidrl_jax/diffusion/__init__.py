"""Latent video diffusion: schedules, loss, DDIM sampler with CFG, EMA, model I/O.

    from vidrl_jax import diffusion
    model = diffusion.load(stage_dir)          # DiffusionModel (EMA params)
    x0 = diffusion.ddim_sample(model.apply_fn, model.params, model.schedule,
                               model.prediction, (B,) + model.latent_shape,
                               model.cond(task, still[:, 0]), key, steps, eta, scale)
    latents = model.from_model(x0, still)      # VAE latents, decode with vae3d.decode
    # still: VAE latents [B,T',h,w,C] of the first frame held still for the clip
"""
from vidrl_jax.diffusion.ema import ema_decay, ema_update
from vidrl_jax.diffusion.losses import denoising_loss
from vidrl_jax.diffusion.model_io import DiffusionModel, load, save
from vidrl_jax.diffusion.sampler import (ddim_sample, ddim_sample_loop, ddim_timesteps,
                                         guided_output, make_sampler)
from vidrl_jax.diffusion.schedules import make_schedule, q_sample, target, to_x0_eps

__all__ = ["DiffusionModel", "load", "save", "ddim_sample", "ddim_sample_loop",
           "ddim_timesteps", "guided_output", "make_sampler", "make_schedule", "q_sample",
           "target", "to_x0_eps", "denoising_loss", "ema_decay", "ema_update"]
