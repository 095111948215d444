"""A reward model learned from the generated goal videos alone: the progress net.

A small CNN (models/frame_classifier.py) on single frames, trained before RL on the N
goal videos the goal stage sampled, each frame labelled by its time t/(T−1) (as
TimeRewarder labels its videos): the video itself says what comes late (the task done)
and what comes early. Trained on generated frames only, it meets no real frame in
training, so it cannot learn to tell generated frames from real ones (the gap a
discriminator with the agent's frames as negatives learns instead: docs/rewards.md);
what it learns to rank is what changes along the videos, the object's state with the
arm's pose. Random 2-px shifts keep it from keying on exact pixels.

Frozen during RL, it scores each env step's frame on the host as the frozen encoders
do (a replay column, as the likelihood term's), so it costs one small CNN pass per
frame instead of one per replay sample per update. The reward is its logit, standardised
by the logits of the goal videos' own frames (fixed: a frozen model's reward does not
drift): about +1 at the videos' end, −1 at their start, lower for poses no video shows.

    params = train(videos [N,T,H,W,3] uint8, steps, seed)
    params = load_or_train(path, videos, steps, seed)   # kept in `path` (a run resumes it)
    scale = standardisation(params, videos)      # {"mean", "std"} of the goal frames' logits
    r = reward(params, scale, frames [B,H,W,3])  # [B] float32
"""
import os

import flax.serialization
import numpy as np

from vidrl_jax.errors import CheckpointError, ConfigError
from vidrl_jax.models.frame_classifier import frame_logits, train_frame_classifier
from vidrl_jax.utils.video_io import atomic_write


def video_labels(videos):
    """(frames [N*T,H,W,3], labels [N*T]: t/(T−1)) of goal videos [N,T,H,W,3]."""
    videos = np.asarray(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != np.uint8:
        raise ConfigError(f"the progress net needs goal videos [N,T,H,W,3] uint8, got "
                          f"{videos.dtype} {videos.shape}")
    n, t = videos.shape[:2]
    if t < 2:
        raise ConfigError(f"the progress net needs goal videos of 2 frames or more, got {t}")
    labels = np.tile(np.arange(t, dtype=np.float32) / (t - 1), n)
    return videos.reshape((n * t,) + videos.shape[2:]), labels


def train(videos, steps, seed=0, batch=128, lr=3e-4):
    """Progress net params trained `steps` Adam steps on goal videos [N,T,H,W,3] uint8."""
    return train_frame_classifier(*video_labels(videos), steps=steps, batch=batch, seed=seed,
                                  lr=lr)


def load_or_train(path, videos, steps, seed=0):
    """The params kept in `path` (msgpack) if it exists, else trained (`train`) and
    written there (atomically; not written when `path` is None)."""
    if path is not None and os.path.exists(path):
        with open(path, "rb") as f:
            try:
                return flax.serialization.msgpack_restore(f.read())
            except Exception as e:
                raise CheckpointError(f"{path}: the progress net's params do not load ({e}); "
                                      "delete the file to train them again") from None
    params = train(videos, steps, seed)
    if path is not None:
        atomic_write(path, flax.serialization.msgpack_serialize(
            flax.serialization.to_state_dict(params)))
    return params


def standardisation(params, videos):
    """{"mean", "std"} (floats) of the logits of every frame of the goal videos."""
    logits = frame_logits(params, video_labels(videos)[0])
    return {"mean": float(np.mean(logits)), "std": float(np.std(logits) + 1e-6)}


def reward(params, scale, frames):
    """The reward [B] float32 of frames [B,H,W,3] uint8: the standardised logit."""
    return ((frame_logits(params, frames) - scale["mean"]) / scale["std"]).astype(np.float32)
