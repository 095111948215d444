"""Scores every frame of a video with CLIP and prints the goal frame as one JSON object.

    python -m experiments.select_goal --video=FILE.npz --clip=DIR [--text="open the door"]
        [--prompts="robot arm grasping an object;robot arm completing the task"]
        [--mode=instruction|generic|both] [--last_k=0] [--smooth=1]

FILE.npz holds `frames` uint8 [T,H,W,3] (e.g. <workdir>/goal/goal_video.npz) and
optionally `instruction` (used when --text is not given). --prompts is a
';'-separated list of generic prompts. The default mode is `both` when text and
prompts are given, `generic` with prompts only, else `instruction`.
Output: {"index": i, "scores": [...], "smoothed": [...], "mode": ..., "num_frames": T}.
"""
import argparse
import json
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", required=True, help=".npz with frames uint8 [T,H,W,3]")
    parser.add_argument("--clip", required=True, help="local CLIP directory")
    parser.add_argument("--text", default=None, help="instruction (default: the npz's `instruction`)")
    parser.add_argument("--prompts", default="", help="';'-separated generic prompts")
    parser.add_argument("--mode", default=None, choices=("instruction", "generic", "both"))
    parser.add_argument("--last_k", type=int, default=0, help="only the last k frames (0 = all)")
    parser.add_argument("--smooth", type=int, default=1, help="moving-average window")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args(argv)

    from vidrl_jax.errors import VidrlError
    try:
        from vidrl_jax.models.clip import load_clip
        from vidrl_jax.rewards.goal_selection import select_goal_frame
        from vidrl_jax.stages.select import read_goal_video

        frames, instruction = read_goal_video(args.video)
        text = args.text if args.text is not None else instruction
        prompts = [p.strip() for p in args.prompts.split(";") if p.strip()]
        mode = args.mode or ("both" if text and prompts else "generic" if prompts else "instruction")
        if mode in ("instruction", "both") and not text:
            raise VidrlError(f"--mode={mode} needs --text (the video file has no `instruction`)")
        if mode in ("generic", "both") and not prompts:
            raise VidrlError(f"--mode={mode} needs --prompts='prompt one;prompt two'")
        sel = select_goal_frame(load_clip(args.clip), frames, instruction=text, mode=mode,
                                generic_prompts=prompts, last_k=args.last_k, window=args.smooth,
                                batch_size=args.batch_size)
    except VidrlError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    out = sel.to_json()
    out["num_frames"] = int(len(frames))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
