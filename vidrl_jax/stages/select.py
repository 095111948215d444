"""Stage `select`: the goal frame of the goal video, chosen by CLIP.

Input: `<workdir>/goal/goal_video.npz` (`frames` uint8 [T,H,W,3], `instruction`).
Output in the stage directory:
  goal_frame.png   the chosen frame
  goal_frame.npz   `frame` uint8 [H,W,3], `index` int
  scores.json      {"index": i, "scores": [T floats], "smoothed": [...], "mode": ...}
  scores.png       score per frame, the chosen frame marked

With `clip.path` unset there is no CLIP: the last frame is the goal (logged as
a warning saying how to enable CLIP) and `scores` is empty, mode "last_frame".
"""
import json
import logging
import os

import numpy as np

from vidrl_jax.errors import VidrlError
from vidrl_jax.utils.video_io import save_figure, save_png

DEPENDS = ("env", "demos", "vae", "diffusion", "goal", "clip")

FALLBACK_MODE = "last_frame"


def read_goal_video(path):
    """goal_video.npz -> (frames uint8 [T,H,W,3], instruction str or None)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            frames = np.asarray(z["frames"])
            instruction = str(z["instruction"]) if "instruction" in z.files else None
    except (OSError, KeyError, ValueError) as e:
        raise VidrlError(f"cannot read goal video {path}: {e}; rerun the goal stage") from None
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise VidrlError(f"goal video {path} has frames {frames.dtype} {frames.shape}; "
                         "expected uint8 [T,H,W,3] with T >= 1")
    return frames, instruction


def plot_scores(path, scores, index, title):
    """Writes a PNG plot of per-frame scores (or only the chosen index when no scores)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    for name, s in scores.items():
        if len(s):
            ax.plot(np.arange(len(s)), s, marker=".", label=name)
    ax.axvline(index, color="red", linestyle="--", label=f"goal frame {index}")
    ax.set_xlabel("frame")
    ax.set_ylabel("CLIP cosine")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(path, fig)


def write_outputs(stage_dir, frames, index, scores, smoothed, mode, title):
    frame = frames[index]
    save_png(os.path.join(stage_dir, "goal_frame.png"), frame)
    tmp = os.path.join(stage_dir, "goal_frame.tmp.npz")
    np.savez(tmp, frame=frame, index=np.int64(index))
    os.replace(tmp, os.path.join(stage_dir, "goal_frame.npz"))
    result = {"index": int(index), "scores": [float(s) for s in scores],
              "smoothed": [float(s) for s in smoothed], "mode": mode,
              "num_frames": int(len(frames))}
    tmp = os.path.join(stage_dir, "scores.json.tmp")
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, os.path.join(stage_dir, "scores.json"))
    plot_scores(os.path.join(stage_dir, "scores.png"),
                {"score": scores, "smoothed": smoothed if len(smoothed) and
                 not np.allclose(smoothed, scores) else []}, index, title)
    return result


def run(config, ctx):
    frames, instruction = read_goal_video(os.path.join(ctx.stage_output("goal"), "goal_video.npz"))
    c = config.clip
    if not c.path:
        logging.warning(
            "select: no CLIP configured (clip.path is empty), so the goal frame is the LAST frame "
            "of the goal video. To choose it with CLIP, pass a local CLIP directory: "
            "--config.clip.path=DIR (Flax or PyTorch weights + tokenizer; convert PyTorch "
            "weights once with python -m experiments.convert_clip --src=DIR --dst=DIR).")
        index = len(frames) - 1
        write_outputs(ctx.stage_dir, frames, index, [], [], FALLBACK_MODE,
                      "no CLIP (clip.path unset): last frame")
        summary = {"index": index, "num_frames": len(frames), "mode": FALLBACK_MODE}
    else:
        from vidrl_jax.models.clip import load_clip
        from vidrl_jax.rewards.goal_selection import select_goal_frame

        clip = load_clip(c.path)
        instruction = instruction or _task_instruction(config)
        sel = select_goal_frame(clip, frames, instruction=instruction, mode=c.prompt_mode,
                                generic_prompts=tuple(c.generic_prompts), last_k=int(c.last_k),
                                window=int(c.smooth), batch_size=int(c.batch_size))
        write_outputs(ctx.stage_dir, frames, sel.index, sel.scores, sel.smoothed, sel.mode,
                      f"CLIP {c.prompt_mode}: {instruction!r}")
        index = sel.index
        summary = {"index": index, "num_frames": len(frames), "mode": sel.mode,
                   "score_max": float(sel.scores.max()), "score_min": float(sel.scores.min()),
                   "score_at_index": float(sel.scores[index])}
        ctx.logger.scalars(0, {"index": index, "score_at_index": summary["score_at_index"]},
                           prefix="select/")
    ctx.logger.image("select/goal_frame", 0, frames[index])
    logging.info("select: goal frame %d of %d (%s)", index, len(frames), summary["mode"])
    return summary


def _task_instruction(config):
    from vidrl_jax.envs.tasks import instruction
    return instruction(config.env.task)
