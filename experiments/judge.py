"""Judges a finished goal stage: how many of its goal videos show the task done?

    python -m experiments.judge --goal_dir=DIR [--episodes=20] [--steps=1500]

DIR is a goal stage's directory (<workdir>/goal, or a kept `goal-<hash>`); its
goal_video.npz names the task and holds the videos (all_frames). The judge
(vidrl_jax/rewards/judge.py) is a classifier trained on real frames of the task's
expert (done, undone, before success, random), evaluation only. Prints the verdict
and merges it into DIR/metrics.json, as the goal stage does when judge.episodes > 0.
The env is the default config's (corner2, 32 px, as the kept models), with the size
of the goal video's frames.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goal_dir", required=True, help="a finished goal stage's directory")
    parser.add_argument("--episodes", type=int, default=20, help="expert episodes trained on")
    parser.add_argument("--steps", type=int, default=1500, help="training steps")
    args = parser.parse_args(argv)

    import numpy as np

    from configs.metaworld import get_config
    from vidrl_jax.envs.metaworld_env import make_env_from_config
    from vidrl_jax.errors import VidrlError
    from vidrl_jax.rewards.judge import judge_goal_videos
    from vidrl_jax.stages.goal import METRICS_FILE, merge_metrics
    path = os.path.join(args.goal_dir, "goal_video.npz")
    if not os.path.exists(path):
        print(f"error: --goal_dir={args.goal_dir} has no goal_video.npz; pass a finished "
              f"goal stage's directory", file=sys.stderr)
        sys.exit(2)
    with np.load(path) as g:
        videos = np.asarray(g["all_frames"]) if "all_frames" in g else np.asarray(g["frames"])[None]
        task = str(g["task"])
    env_config = get_config().env
    env_config.size = int(videos.shape[2])
    try:
        env = make_env_from_config(env_config, task=task)
        try:
            out = judge_goal_videos(env, task, videos, args.episodes, args.steps)
        finally:
            env.close()
    except VidrlError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    merge_metrics(os.path.join(args.goal_dir, METRICS_FILE), out)
    print(json.dumps({"task": task, **out}))


if __name__ == "__main__":
    main()
