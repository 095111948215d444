"""Goal-frame selection: the frame of the goal video that CLIP finds most like the task.

    scores = cos(image_embedding[t], text_embedding)           # [T]
    index  = argmax over (optionally) the last k frames of the (optionally) smoothed scores

Prompt modes (config.clip.prompt_mode):
  instruction  the task instruction ("open the door")
  generic      the mean of the (unit) embeddings of generic prompts
               ("robot arm grasping an object", ...), as in GenReward
  both         the mean of the instruction score and the generic score
"""
import dataclasses
from typing import Optional, Sequence

import numpy as np

from vidrl_jax.errors import ConfigError

MODES = ("instruction", "generic", "both")


@dataclasses.dataclass
class Selection:
    index: int             # chosen frame index into the video
    scores: np.ndarray     # float32 [T] raw cosine scores
    smoothed: np.ndarray   # float32 [T] scores after temporal smoothing
    mode: str

    def to_json(self) -> dict:
        return {"index": int(self.index), "scores": [float(s) for s in self.scores],
                "smoothed": [float(s) for s in self.smoothed], "mode": self.mode}


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def text_target(text_embeddings: np.ndarray) -> np.ndarray:
    """[M,D] prompt embeddings -> unit [D] target (mean of unit vectors, renormalised)."""
    return _unit(_unit(text_embeddings).mean(axis=0))


def cosine_scores(image_embeddings: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[T,D] image embeddings, [D] text target -> float32 [T] cosine similarities."""
    return (_unit(image_embeddings) @ _unit(target)).astype(np.float32)


def smooth(scores: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average over `window` frames (edges average the frames that exist)."""
    scores = np.asarray(scores, np.float32)
    if window is None or window <= 1 or len(scores) == 0:
        return scores.copy()
    half_lo, half_hi = (window - 1) // 2, window // 2
    c = np.concatenate([[0.0], np.cumsum(scores, dtype=np.float64)])
    idx = np.arange(len(scores))
    lo = np.maximum(idx - half_lo, 0)
    hi = np.minimum(idx + half_hi + 1, len(scores))
    return ((c[hi] - c[lo]) / (hi - lo)).astype(np.float32)


def select_index(scores: np.ndarray, last_k: int = 0, window: int = 1):
    """Argmax of smoothed scores, restricted to the last `last_k` frames (0 = all).

    Returns (index, smoothed). Ties go to the later frame (closer to task completion).
    """
    scores = np.asarray(scores, np.float32)
    if scores.ndim != 1 or len(scores) == 0:
        raise ConfigError(f"goal selection needs a non-empty [T] score vector, got shape {scores.shape}")
    if last_k < 0:
        raise ConfigError(f"clip.last_k={last_k} must be >= 0 (0 = all frames)")
    if window < 1:
        raise ConfigError(f"clip.smooth={window} must be >= 1 (1 = no smoothing)")
    s = smooth(scores, window)
    start = max(len(s) - last_k, 0) if last_k else 0
    sub = s[start:]
    index = start + (len(sub) - 1 - int(np.argmax(sub[::-1])))
    return int(index), s


def prompt_scores(image_embeddings: np.ndarray, mode: str,
                  instruction_embedding: Optional[np.ndarray] = None,
                  generic_embeddings: Optional[np.ndarray] = None) -> np.ndarray:
    """Per-frame scores [T] for a prompt mode from precomputed embeddings."""
    if mode not in MODES:
        raise ConfigError(f"clip.prompt_mode={mode!r}; valid: {', '.join(MODES)}")
    parts = []
    if mode in ("instruction", "both"):
        if instruction_embedding is None:
            raise ConfigError(f"clip.prompt_mode={mode!r} needs the task instruction text")
        parts.append(cosine_scores(image_embeddings, text_target(np.atleast_2d(instruction_embedding))))
    if mode in ("generic", "both"):
        if generic_embeddings is None or len(generic_embeddings) == 0:
            raise ConfigError(f"clip.prompt_mode={mode!r} needs clip.generic_prompts (non-empty)")
        parts.append(cosine_scores(image_embeddings, text_target(generic_embeddings)))
    return np.mean(parts, axis=0).astype(np.float32)


def select_goal_frame(clip, frames: np.ndarray, instruction: Optional[str] = None,
                      mode: str = "instruction", generic_prompts: Sequence[str] = (),
                      last_k: int = 0, window: int = 1, batch_size: int = 64) -> Selection:
    """Scores each frame of a video with CLIP and picks the goal frame.

    clip: a loaded `vidrl_jax.models.clip.Clip`; frames: uint8 [T,H,W,3].
    """
    if mode not in MODES:
        raise ConfigError(f"clip.prompt_mode={mode!r}; valid: {', '.join(MODES)}")
    images = clip.embed_frames(np.asarray(frames), batch_size=batch_size)
    instr = clip.embed_texts([instruction]) if mode in ("instruction", "both") and instruction else None
    generic = clip.embed_texts(list(generic_prompts)) if mode in ("generic", "both") and generic_prompts \
        else None
    scores = prompt_scores(images, mode, instr, generic)
    index, smoothed = select_index(scores, last_k, window)
    return Selection(index=index, scores=scores, smoothed=smoothed, mode=mode)
