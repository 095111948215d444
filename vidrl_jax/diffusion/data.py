"""Latent training data for the video diffusion model.

A training video is a whole demo from its first frame to a point at or after
success, resampled to `clip_length` frames (so a sample from the first frame
shows the task being done). View 0 of an episode runs to its last frame; views
1.. end at a random frame between the first success and the last frame (speed
augmentation). Videos are encoded once with the VAE (posterior mean):

    LatentSet: latents float32 [N, T', h, w, C] (unscaled VAE latents),
               task int32 [N] (index into vidrl_jax.envs.tasks.TASKS),
               episode int32 [N], view int32 [N],
               still float32 [N, T', h, w, C]: latents of the video's first frame held
               still for the whole clip (what `diffusion.target=residual` subtracts)
"""
import dataclasses

import jax
import numpy as np

from vidrl_jax.envs.tasks import TASKS
from vidrl_jax.errors import VidrlError
from vidrl_jax.models import vae3d
from vidrl_jax.utils.batching import map_fixed_batches


def clip_indices(num_frames, success, clip_length, rng=None):
    """Frame indices [clip_length] from 0 to an end frame (the last frame when rng is None).

    num_frames = L + 1; success bool [L] (success[i]: after step i, i.e. frame i + 1).
    """
    last = num_frames - 1
    hit = np.flatnonzero(np.asarray(success))
    end = last
    if rng is not None and len(hit):
        end = int(rng.integers(min(hit[0] + 1, last), last + 1))
    return np.linspace(0, end, clip_length).round().astype(np.int64)


def episode_videos(episodes, clip_length, views, seed):
    """Yields (episode index, view, frames uint8 [clip_length,H,W,3], task)."""
    for e, ep in enumerate(episodes):
        rng = np.random.default_rng([seed, e])
        for v in range(views):
            idx = clip_indices(len(ep["frames"]), ep["success"], clip_length,
                               None if v == 0 else rng)
            yield e, v, ep["frames"][idx], ep["task"]


@dataclasses.dataclass
class LatentSet:
    latents: np.ndarray
    task: np.ndarray
    episode: np.ndarray
    view: np.ndarray
    still: np.ndarray

    def __len__(self):
        return len(self.latents)

    def to_npz(self):
        return dict(latents=self.latents, task=self.task, episode=self.episode, view=self.view,
                    still=self.still)


def make_encoder(vae_cfg, vae_params):
    """Jitted uint8 video [B,T,H,W,3] -> posterior mean latents [B,T',h,w,C]."""
    fn = jax.jit(lambda p, v: vae3d.encode(vae_cfg, p, v)[0])
    return lambda video: np.asarray(fn(vae_params, video))


def encode_videos(encoder, videos, batch_size):
    """uint8 [N,T,H,W,3] -> latents, in fixed-size batches (one compile)."""
    return map_fixed_batches(encoder, videos, batch_size).astype(np.float32)


def still_videos(first_frames, clip_length):
    """First frames uint8 [N,H,W,3] held still: [N, clip_length, H, W, 3]."""
    return np.repeat(np.asarray(first_frames)[:, None], clip_length, axis=1)


def build_latent_set(episodes, encoder, clip_length, views, seed, batch_size=16):
    """Encodes `views` resampled videos of every episode (and its first frame held
    still, once per episode) -> LatentSet."""
    if not episodes:
        raise VidrlError("no demo episodes to train the diffusion model on (check demos.tasks, "
                         "env.task and diffusion.holdout_task)")
    items = list(episode_videos(episodes, clip_length, views, seed))
    videos = np.stack([it[2] for it in items])
    firsts = np.stack([ep["frames"][0] for ep in episodes])
    still = encode_videos(encoder, still_videos(firsts, clip_length), batch_size)
    episode = np.array([it[0] for it in items], np.int32)
    return LatentSet(latents=encode_videos(encoder, videos, batch_size),
                     task=np.array([TASKS.index(it[3]) for it in items], np.int32),
                     episode=episode, view=np.array([it[1] for it in items], np.int32),
                     still=still[episode])


def split_episodes(episodes, val_fraction):
    """Per task, the last max(1, round(f * n)) episodes (when n >= 2) are held out.

    Returns a bool array [len(episodes)]: True = validation.
    """
    val = np.zeros(len(episodes), bool)
    by_task = {}
    for i, ep in enumerate(episodes):
        by_task.setdefault(ep["task"], []).append(i)
    for idx in by_task.values():
        if len(idx) >= 2 and val_fraction > 0:
            k = max(1, int(round(val_fraction * len(idx))))
            val[idx[-k:]] = True
    return val
