"""Pure diffusion training: state creation and `train_step(state, batch, key)`.

state = {"step": int32 [], "params", "ema", "opt"}   (plain dict pytree)
batch = {"latents": float32 [B, T', h, w, C] (what the UNet denoises: scaled VAE
                    latents or their residual, see DiffusionModel.to_model),
         "first_frame": float32 [B, h, w, C] (the scaled clean latent of frame 0; the
                        causal VAE encodes frame 0 on its own),
         "text": int32 [B] task ids or float32 [B, F] text features,
         "ids": int32 [B] global example indices (per-example randomness)}
With `axis_name` set, gradients and metrics are averaged over that pmap axis, so
B split over devices equals B on one device.
"""
import jax
import jax.numpy as jnp
import optax

from vidrl_jax.diffusion.ema import ema_decay, ema_update
from vidrl_jax.diffusion.losses import denoising_loss


def make_optimizer(lr, clip_norm=1.0):
    return optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(lr))


def create_state(params, tx):
    return {"step": jnp.zeros((), jnp.int32), "params": params,
            "ema": jax.tree.map(jnp.copy, params), "opt": tx.init(params)}


def batch_cond(batch):
    return {"first_frame": batch["first_frame"], "text": batch["text"]}


def make_train_step(apply_fn, tx, schedule, prediction, cond_dropout, decay, axis_name=None):
    """Returns `train_step(state, batch, key) -> (state, metrics)` (jit/pmap it)."""
    def loss_fn(params, batch, key):
        return denoising_loss(apply_fn, params, schedule, prediction, batch["latents"],
                              batch_cond(batch), key, batch["ids"], cond_dropout)[0]

    def train_step(state, batch, key):
        key = jax.random.fold_in(key, state["step"])
        loss, grads = jax.value_and_grad(loss_fn)(state["params"], batch, key)
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
            loss = jax.lax.pmean(loss, axis_name)
        updates, opt = tx.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        ema = ema_update(state["ema"], params, ema_decay(decay, state["step"]))
        metrics = {"loss": loss, "grad_norm": optax.global_norm(grads)}
        return {"step": state["step"] + 1, "params": params, "ema": ema, "opt": opt}, metrics

    return train_step


def make_eval_loss(apply_fn, schedule, prediction):
    """`eval_loss(params, batch, key) -> per-example loss [B]` (no condition dropout)."""
    def eval_loss(params, batch, key):
        return denoising_loss(apply_fn, params, schedule, prediction, batch["latents"],
                              batch_cond(batch), key, batch["ids"], 0.0)[1]
    return eval_loss
