"""How many goal videos show the task done, by guidance scale (the goal-video judge).

    python -m experiments.studies.judge_guidance --workdir=DIR --task=door-open-v3
        [--scales=1.5,3,5,10,15] [--num_videos=8] [--episodes=20] [--out=FILE.json]

DIR holds finished autoencoder and diffusion stages (e.g. the kept models restored with
experiments.shared_models into a run's workdir). Trains the judge
(vidrl_jax/rewards/judge.py) once on the task's real expert frames, then samples
--num_videos goal videos at each classifier-free guidance scale (50 DDIM steps, from
the goal stage's first frame, goal.seed 0) and prints, per scale, how many of them the
judge calls done and the mean P(done) of their last frames. Writes the same as JSON
with --out.
"""
import argparse
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--task", default="door-open-v3")
    parser.add_argument("--scales", default="1.5,3,5,10,15")
    parser.add_argument("--num_videos", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import jax
    import numpy as np

    from configs.metaworld import get_config
    from vidrl_jax import diffusion
    from vidrl_jax.envs.counterfactual import SEED_BASE, check_frames
    from vidrl_jax.envs.metaworld_env import make_env_from_config
    from vidrl_jax.models import vae3d
    from vidrl_jax.rewards.judge import judge_data, judge_scores, train_judge
    from vidrl_jax.rewards.quality import roc_auc
    from vidrl_jax.stages.goal import first_frame, sample_goal_videos

    config = get_config()
    config.env.task = args.task
    vae_cfg, vae_params = vae3d.load(os.path.join(args.workdir, "autoencoder"))
    model = diffusion.load(os.path.join(args.workdir, "diffusion"))
    env = make_env_from_config(config.env)
    try:
        params = train_judge(*judge_data(env, args.task, args.episodes))
        check = check_frames(env, args.task, range(SEED_BASE, SEED_BASE + 5))
    finally:
        env.close()
    done = judge_scores(params, check["done"])
    out = {"task": args.task, "judge_heldout_auc_undone": roc_auc(
        done, judge_scores(params, check["undone"])), "scales": {}}
    frame = first_frame(config)
    for scale in [float(s) for s in args.scales.split(",")]:
        videos = sample_goal_videos(model, vae_cfg, vae_params, frame, args.task,
                                    args.num_videos, 50, 0.0, scale,
                                    jax.random.PRNGKey(0))[0]
        last = judge_scores(params, videos[:, -1])
        out["scales"][scale] = {"done_videos": int(np.sum(last > 0.5)),
                                "last_mean": round(float(np.mean(last)), 3)}
        print(f"{args.task} guidance {scale}: {out['scales'][scale]['done_videos']} of "
              f"{args.num_videos} goal videos done (mean P(done) of the last frames "
              f"{out['scales'][scale]['last_mean']})", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
