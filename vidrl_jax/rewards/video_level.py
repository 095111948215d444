"""Video-level reward: cosine between the goal video's and the agent window's
VAE embeddings (GenReward's r_video), pure jnp so it runs inside the fused step.

    idx = resample_indices(W, T)                       # W window frames -> T goal frames
    window = resample_window(frames [..., W, H, W, 3], T)
    emb = vae3d.video_embedding(cfg, params, window)   # [B, D]
    r = video_reward(goal_embedding [D], emb [B, D])   # [B] in [-1, 1]
"""
import jax.numpy as jnp
import numpy as np


def resample_indices(length, num):
    """`num` frame indices spread evenly over range(length), first and last included."""
    if length < 1 or num < 1:
        raise ValueError(f"resample_indices needs length >= 1 and num >= 1; got {length}, {num}")
    return np.round(np.linspace(0, length - 1, num)).astype(np.int64)


def resample_window(frames, length):
    """frames [..., W, H, W', C] -> [..., length, H, W', C] (nearest, evenly spaced,
    first and last frame kept). Works on numpy and jax arrays."""
    idx = resample_indices(frames.shape[-4], length)
    return frames[..., idx, :, :, :]


def video_reward(goal_embedding, window_embedding, eps=1e-8):
    """cos(goal [D], windows [B, D]) -> [B] float32."""
    g = goal_embedding / jnp.maximum(jnp.linalg.norm(goal_embedding), eps)
    w = window_embedding / jnp.maximum(
        jnp.linalg.norm(window_embedding, axis=-1, keepdims=True), eps)
    return (w @ g).astype(jnp.float32)
