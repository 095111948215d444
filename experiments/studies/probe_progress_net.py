"""Does a reward model learned from the goal videos see the task, and do the agent's frames
as negatives help it or teach it the generated→real gap?

    python -m experiments.studies.probe_progress_net --goal_dir=DIR [--steps=2000]
        [--episodes=10] [--out=FILE.json]

DIR is a goal stage's directory (goal_video.npz names the task). Two models, both the
progress net's CNN and training (vidrl_jax/rewards/progress_net.py):
  goal       the goal videos alone, each frame labelled by its time (the progress net)
  negatives  the same plus 10 random-policy episodes of the task labelled 0, weighted as
             much as the goal frames (a discriminator against the agent's own frames)
each scored on real frames of --episodes held-out expert episodes
(vidrl_jax/envs/counterfactual.py): AUC of done against undone (the arm where the expert
left it), random and before success, and each group's mean logit.
"""
import argparse
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goal_dir", required=True, help="a finished goal stage's directory")
    parser.add_argument("--steps", type=int, default=2000, help="training steps")
    parser.add_argument("--episodes", type=int, default=10, help="held-out expert episodes")
    parser.add_argument("--out", default=None, help="also write the results here as JSON")
    args = parser.parse_args(argv)

    import numpy as np

    from vidrl_jax.envs.counterfactual import SEED_BASE, check_frames, random_episode
    from vidrl_jax.envs.metaworld_env import MetaWorldEnv
    from vidrl_jax.models.frame_classifier import frame_logits, train_frame_classifier
    from vidrl_jax.rewards.progress_net import video_labels
    from vidrl_jax.rewards.quality import roc_auc
    path = os.path.join(args.goal_dir, "goal_video.npz")
    if not os.path.exists(path):
        raise SystemExit(f"error: --goal_dir={args.goal_dir} has no goal_video.npz; pass a "
                         "finished goal stage's directory")
    with np.load(path) as g:
        videos, task = np.asarray(g["all_frames"]), str(g["task"])
    env = MetaWorldEnv(task, size=videos.shape[2], camera="corner2")
    try:
        check = check_frames(env, task, range(SEED_BASE, SEED_BASE + args.episodes))
        negatives = np.concatenate([random_episode(env, 555_000 + s)["frames"]
                                    for s in range(10)])
    finally:
        env.close()
    frames, labels = video_labels(videos)
    # (negatives weighted as the goal frames: as many copies of the goal frames as needed)
    copies = max(1, len(negatives) // len(frames))
    data = {"goal": (frames, labels),
            "negatives": (np.concatenate([np.repeat(frames, copies, 0), negatives]),
                          np.concatenate([np.repeat(labels, copies), np.zeros(len(negatives),
                                                                              np.float32)]))}
    out = {"task": task, "episodes": int(len(check["done"]))}
    for name, (x, y) in data.items():
        params = train_frame_classifier(x, y, steps=args.steps)
        paid = {g: frame_logits(params, check[g]) for g in ("done", "undone", "random", "before")}
        out[name] = {**{f"auc_{g}": roc_auc(paid["done"], paid[g])
                        for g in ("undone", "random", "before")},
                     "mean": {g: float(np.mean(v)) for g, v in paid.items()}}
        print(name, json.dumps({k: round(v, 2) for k, v in out[name].items() if k != "mean"}),
              flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
