"""The trained diffusion model on disk (what the `diffusion` stage leaves behind).

    diffusion/unet_params.msgpack   EMA UNet parameters (flax serialization)
    diffusion/unet_config.json      architecture + schedule + latent shape/scale
    diffusion/text_features.npy     text features [len(TASKS), F] (clip and words modes)

`load(stage_dir) -> DiffusionModel`; `save(stage_dir, model)`.
"""
import dataclasses
import json
import os
from typing import Any, Optional

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax.diffusion.schedules import make_schedule
from vidrl_jax.envs.tasks import TASKS, check_task
from vidrl_jax.errors import CheckpointError
from vidrl_jax.models import unet3d

TARGETS = ("latents", "residual")

PARAMS_FILE = "unet_params.msgpack"
CONFIG_FILE = "unet_config.json"
TEXT_FILE = "text_features.npy"


@dataclasses.dataclass
class DiffusionModel:
    """Everything needed to sample or score latent videos.

    latent_shape: (T', h, w, C); clip_length: frames of a training video (before VAE).
    What the UNet denoises (`target`, config `diffusion.target`), times `latent_scale`:
      latents   the VAE posterior means of the video;
      residual  those minus `still`, the latents of the video's first frame held still
                for the whole clip: the change the video shows. The static scene, most
                of the latents' variance, is then given, not generated, and the motion
                gets the whole scaled range. Latent frame 0 of a residual is exactly 0
                (the causal VAE encodes frame 0 on its own).
    The first-frame condition is the VAE latent of frame 0 times `cond_scale`.
    """
    unet: unet3d.UNetConfig
    params: Any
    schedule_name: str
    timesteps: int
    prediction: str
    latent_scale: float
    latent_shape: tuple
    clip_length: int
    text_features: Optional[np.ndarray] = None
    target: str = "latents"
    cond_scale: Optional[float] = None     # None: latent_scale

    @property
    def first_scale(self):
        return self.latent_scale if self.cond_scale is None else self.cond_scale

    def to_model(self, latents, still):
        """VAE latents [B,T',h,w,C] -> what the UNet denoises (`still` like latents:
        the first frame held still; unused for target 'latents')."""
        if self.target == "residual":
            latents = latents - still
        return latents * self.latent_scale

    def from_model(self, x, still):
        """The inverse of `to_model`: a sample x [B,T',h,w,C] -> VAE latents."""
        latents = x / self.latent_scale
        return latents + still if self.target == "residual" else latents

    @property
    def apply_fn(self):
        return unet3d.make_apply(self.unet)

    @property
    def schedule(self):
        return make_schedule(self.schedule_name, self.timesteps)

    def text_for_ids(self, task_ids):
        """Model text input for TASKS indices [B]: ids (table) or text features."""
        task_ids = np.asarray(task_ids, np.int32)
        if self.unet.text_mode == "table":
            return jnp.asarray(task_ids)
        return jnp.asarray(self.text_features[task_ids])

    def cond(self, task, first_frame_latents):
        """Condition for `task` (name) and VAE first-frame latents [B,h,w,C] (unscaled)."""
        b = first_frame_latents.shape[0]
        ids = np.full((b,), TASKS.index(check_task(task)), np.int32)
        return {"first_frame": jnp.asarray(first_frame_latents) * self.first_scale,
                "text": self.text_for_ids(ids)}

    def meta(self):
        return dict(unet=self.unet.to_dict(), schedule=self.schedule_name,
                    timesteps=self.timesteps, prediction=self.prediction,
                    latent_scale=float(self.latent_scale),
                    latent_shape=list(self.latent_shape), clip_length=self.clip_length,
                    target=self.target, cond_scale=float(self.first_scale))


def _atomic(path, data, mode="wb"):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, mode) as f:
        f.write(data)
    os.replace(tmp, path)


def save(stage_dir, model):
    if model.text_features is not None:
        tmp = os.path.join(stage_dir, f"tmp{os.getpid()}_{TEXT_FILE}")
        np.save(tmp, model.text_features)
        os.replace(tmp, os.path.join(stage_dir, TEXT_FILE))
    _atomic(os.path.join(stage_dir, PARAMS_FILE), flax.serialization.to_bytes(model.params))
    _atomic(os.path.join(stage_dir, CONFIG_FILE), json.dumps(model.meta(), indent=1), "w")


def load(stage_dir):
    """DiffusionModel (EMA params) from a finished `diffusion` stage directory."""
    cfg_path, params_path = (os.path.join(stage_dir, f) for f in (CONFIG_FILE, PARAMS_FILE))
    if not (os.path.exists(cfg_path) and os.path.exists(params_path)):
        raise CheckpointError(f"no trained diffusion model in {stage_dir} (need {CONFIG_FILE} "
                              f"and {PARAMS_FILE}); run the diffusion stage")
    try:
        with open(cfg_path) as f:
            meta = json.load(f)
        unet = unet3d.UNetConfig.from_dict(meta["unet"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{cfg_path} is corrupt ({e}); re-run the diffusion stage") from None
    text = None
    if unet.text_mode != "table":
        text_path = os.path.join(stage_dir, TEXT_FILE)
        if not os.path.exists(text_path):
            raise CheckpointError(f"{text_path} is missing ({unet.text_mode} text mode); "
                                  "re-run the diffusion stage")
        text = np.load(text_path)
    shape = tuple(meta["latent_shape"])
    shapes = unet3d.init_params_shape(unet, shape)
    try:
        with open(params_path, "rb") as f:
            params = flax.serialization.from_bytes(shapes, f.read())
    except Exception as e:
        raise CheckpointError(f"{params_path} is corrupt or does not match {CONFIG_FILE} "
                              f"({type(e).__name__}); re-run the diffusion stage") from None
    for a, b in zip(jax.tree.leaves(shapes), jax.tree.leaves(params)):
        if tuple(a.shape) != np.shape(b):
            raise CheckpointError(f"{params_path} does not match {CONFIG_FILE} "
                                  f"(shape {np.shape(b)} vs {np.shape(a)})")
    return DiffusionModel(unet=unet, params=jax.tree.map(jnp.asarray, params),
                          schedule_name=meta["schedule"], timesteps=int(meta["timesteps"]),
                          prediction=meta["prediction"], latent_scale=float(meta["latent_scale"]),
                          latent_shape=shape, clip_length=int(meta["clip_length"]),
                          text_features=text, target=meta.get("target", "latents"),
                          cond_scale=meta.get("cond_scale"))

