"""Video-level reward: the agent's video against the goal video, both through the
video encoder (GenReward's r_video); pure jnp so it runs inside the fused step.

The agent's video at step t (`reward.video_window`):
  episode  the frames 0..t of the episode resampled to the goal video's length T
           (default: the goal video shows a whole episode, reset to success)
  last     the last W frames (`reward.window`), resampled to T (GenReward's window)

    idx = agent_video_indices("episode", t, window=16, length=T)   # [T] frame indices
    emb = vae3d.video_embedding(cfg, params, frames[idx][None])   # [1, D]
    r = video_reward(goal_embedding [D], emb, metric)             # [1]

With `reward.video_centre` both embeddings are taken minus the embedding of their
own first frame held still, so the static scene (which dominates the raw
latents) cancels and what is compared is the change the video shows.
`metric`: `cosine` (GenReward's), in [-1, 1], or `distance` (default):
-||w - g|| / ||g||, 0 at the goal, -1 for a video that shows no change.

`reward.video_form`, what the video term pays at step t (vidrl_jax/rewards/terms.py):
  score     Φ_t = video_reward(goal, agent's video at t): a function of the history
            (the episode so far) paid to a Markov critic (default; GenReward's kind)
  shaped    γ·Φ_{t+1} − Φ_t, potential-based shaping with the score as potential: an
            episode's discounted return telescopes to γ^L·Φ_L − Φ_0, so the optimal
            policy is that of the final score (Ng et al. 1999)
  progress  frame_progress(goal frame latents [T,P], φ(s') [B,P]): how far along the
            goal video the current frame stands, in [0, 1]; Markov in s'. With
            `reward.video_progress_gate` σ > 0 it is scaled by exp(-d_min/σ), d_min the
            frame's distance to the nearest goal frame: a frame off the goal video's
            path earns little however far along its nearest frame lies
"""
import jax
import jax.numpy as jnp
import numpy as np

WINDOW_MODES = ("episode", "last")
METRICS = ("distance", "cosine")
FORMS = ("score", "shaped", "progress")


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


def agent_video_indices(mode, t, window, length):
    """Indices [length] into the episode's frames 0..t of the agent's video at step t;
    before the episode has `window` frames, `last` repeats frame 0."""
    if mode == "episode":
        return resample_indices(t + 1, length)
    if mode == "last":
        return np.maximum(t - window + 1 + resample_indices(window, length), 0)
    raise ValueError(f"reward.video_window={mode!r}; valid: {', '.join(WINDOW_MODES)}")


def video_reward(goal_embedding, window_embedding, metric="cosine", eps=1e-8):
    """goal [D], agent videos [B, D] -> [B] float32 (see the module docstring)."""
    g = jnp.asarray(goal_embedding, jnp.float32)
    w = jnp.asarray(window_embedding, jnp.float32)
    g_norm = jnp.maximum(jnp.linalg.norm(g), eps)
    if metric == "distance":
        return -jnp.linalg.norm(w - g, axis=-1) / g_norm
    if metric == "cosine":
        w = w / jnp.maximum(jnp.linalg.norm(w, axis=-1, keepdims=True), eps)
        return w @ (g / g_norm)
    raise ValueError(f"reward.video_metric={metric!r}; valid: {', '.join(METRICS)}")


def frame_progress(goal_frames, frame, temperature=0.02, gate=0.0, eps=1e-8):
    """How far along the goal video each frame stands: goal_frames [T,P] (φ of each
    frame of the goal video), frame [B,P] (φ of the agent's current frame) -> [B] in
    [0, 1].

        d_i = ||φ - g_i||² / max_j ||g_j - g_0||²     (distance relative to the goal's span)
        p   = Σ_i softmax_i(-d / temperature) · i / (T-1)
        p  ·= exp(-min_i d_i / gate)                  (only with gate > 0)

    A frame equal to goal frame i gives ≈ i/(T-1) (exactly as temperature -> 0).
    Squared distances make any offset shared by all goal frames (e.g. the decoder's
    blur, orthogonal to the motion) cancel in the softmax; distances are translation
    invariant, so centring both on the first goal frame would change nothing.
    The softmax locates any frame, however far from every goal frame: ungated, a pose
    off the goal video's path whose nearest goal frame is a late one earns as much as
    the goal state (on door-open-v3 an agent held the arm in such a pose, door shut,
    for 0.85 per step, against 0.44 per step for the expert). The gate pays a frame by
    how near the path it is, as well as how far along.
    """
    g = jnp.asarray(goal_frames, jnp.float32)
    f = jnp.asarray(frame, jnp.float32)
    span = jnp.maximum(jnp.max(jnp.sum((g - g[0]) ** 2, axis=-1)), eps)
    d = jnp.sum((f[:, None, :] - g[None]) ** 2, axis=-1) / span         # [B,T]
    w = jax.nn.softmax(-d / temperature, axis=-1)
    t = g.shape[0]
    index = jnp.arange(t, dtype=jnp.float32) / max(t - 1, 1)
    p = jnp.clip(w @ index, 0.0, 1.0)
    if gate > 0:
        p = p * jnp.exp(-jnp.min(d, axis=-1) / gate)
    return p
