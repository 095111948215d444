"""Stage `goal`: the goal video, imagined from a fresh episode's first frame.

Resets `env.task` with `goal.seed`, encodes the first frame with the VAE (alone,
and held still for the clip: the base a residual model's sample is added to),
samples `goal.num_videos` latent videos with DDIM (`goal.sampling_steps`,
`goal.eta`) and classifier-free guidance (`goal.guidance_scale`), sets latent
frame 0 to the encoded first frame (known exactly), decodes. Output:
  goal_video.npz  frames uint8 [T,H,W,3] (video 0), latents float32 [T',h,w,C]
                  (VAE posterior mean of the decoded goal video 0), sampled_latents
                  float32 [T',h,w,C] (the mean over the N videos of their sampled VAE
                  latents: the goal embedding of reward.video_goal=sampled), first_frame
                  uint8 [H,W,3], task, instruction; all_frames [N,T,H,W,3] and
                  all_sampled_latents [N,T',h,w,C] when N > 1
  goal_video.gif  the goal video;  strip.png  goal video over a real expert demo
  metrics.json    diffusion held-out denoising losses (from the diffusion stage's
                  summary), sampling and compile seconds, MSE of the goal video against
                  the real first frame / the expert demo, and the judge's verdict
                  (judge_*: how many goal videos show the task done, by a classifier
                  trained on real expert frames, vidrl_jax/rewards/judge.py; with
                  judge.episodes > 0) (merged into the file: the reward-quality
                  evaluation adds its keys to the same file)
"""
import json
import logging
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax import diffusion
from vidrl_jax.data import shards
from vidrl_jax.diffusion.data import clip_indices, make_encoder, still_videos
from vidrl_jax.envs.tasks import instruction
from vidrl_jax.errors import VidrlError
from vidrl_jax.models import vae3d
from vidrl_jax.utils.video_io import frame_strip, save_gif, save_png

DEPENDS = ("env", "demos", "vae", "diffusion", "clip", "goal")

METRICS_FILE = "metrics.json"


def first_frame(config):
    """The frame after reset of env.task with goal.seed, uint8 [H,W,3]."""
    from vidrl_jax.envs.metaworld_env import make_env_from_config
    env = make_env_from_config(config.env, seed=config.goal.seed)
    try:
        _, info = env.reset(seed=config.goal.seed)
        return np.asarray(info["frame"])
    finally:
        env.close()


def sample_goal_videos(model, vae_cfg, vae_params, frame, task, num, steps, eta, scale, key):
    """-> (frames uint8 [N,T,H,W,3], latents [N,T',h,w,C] (re-encoded), sampled latents
    [N,T',h,w,C] (decoded into frames), sampling seconds, compile seconds)."""
    encode = make_encoder(vae_cfg, vae_params)
    still = jnp.repeat(encode(still_videos(frame[None], model.clip_length)), num, axis=0)
    first = still[:, 0]                                   # [N,h,w,C] (causal: frame 0 alone)
    sample = diffusion.make_sampler(model.apply_fn, model.prediction,
                                    (num,) + tuple(model.latent_shape), steps)
    args = (model.params, model.schedule, model.cond(task, first), key, eta, scale)
    start = time.time()
    compiled = sample.lower(*args).compile()
    compile_seconds = time.time() - start
    start = time.time()
    x0 = jax.block_until_ready(compiled(*args))
    seconds = time.time() - start
    z = model.from_model(x0, still).at[:, 0].set(first)
    frames = np.asarray(jax.jit(lambda p, z: vae3d.decode_uint8(vae_cfg, p, z))(vae_params, z))
    return frames, encode(frames), np.asarray(z), seconds, compile_seconds


def expert_demo(demos_dir, task, clip_length):
    """The first expert demo of `task`, resampled like the training videos."""
    for ep in shards.iter_episodes(demos_dir, tasks=[task]):
        return ep["frames"][clip_indices(len(ep["frames"]), ep["success"], clip_length)]
    raise VidrlError(f"no expert demo of {task} in {demos_dir}; add it to demos.tasks")


def run_judge(config, videos):
    """The judge's verdict on goal videos [N,T,H,W,3] (vidrl_jax/rewards/judge.py)."""
    from vidrl_jax.envs.metaworld_env import make_env_from_config
    from vidrl_jax.rewards.judge import judge_goal_videos
    env = make_env_from_config(config.env)
    try:
        out = judge_goal_videos(env, config.env.task, videos, int(config.judge.episodes),
                                int(config.judge.steps))
    finally:
        env.close()
    logging.info("goal: the judge calls %d of %d goal videos done (held-out AUC done vs "
                 "undone %.2f)", out["judge_done_videos"], out["judge_num_videos"],
                 out["judge_heldout_auc_undone"])
    return out


def merge_metrics(path, new):
    old = {}
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
    old.update(new)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(old, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return old


def run(config, ctx):
    g, task = config.goal, config.env.task
    vae_cfg, vae_params = vae3d.load(ctx.stage_output("autoencoder"))
    diff_dir = ctx.stage_output("diffusion")
    model = diffusion.load(diff_dir)
    frame = first_frame(config)
    frames, latents, sampled, seconds, compile_seconds = sample_goal_videos(
        model, vae_cfg, vae_params, frame, task, int(g.num_videos), int(g.sampling_steps),
        float(g.eta), float(g.guidance_scale), jax.random.PRNGKey(int(g.seed)))
    d = ctx.stage_dir
    extra = {"all_frames": frames, "all_sampled_latents": sampled} if len(frames) > 1 else {}
    tmp = os.path.join(d, f"tmp{os.getpid()}_goal_video.npz")
    np.savez(tmp, frames=frames[0], latents=latents[0], sampled_latents=sampled.mean(axis=0),
             first_frame=frame, task=task,
             instruction=instruction(task), **extra)
    os.replace(tmp, os.path.join(d, "goal_video.npz"))
    save_gif(os.path.join(d, "goal_video.gif"), frames[0], fps=4, scale=4)
    demo = expert_demo(ctx.stage_output("demos"), task, model.clip_length)
    strip = frame_strip([frames[0], demo])
    save_png(os.path.join(d, "strip.png"), strip)
    ctx.logger.image("goal/strip", 0, strip)
    ctx.logger.video("goal/video", 0, frames[0])

    with open(os.path.join(diff_dir, "summary.json")) as f:
        dsum = json.load(f)
    first_mse = float(np.mean((frames[0, 0].astype(np.float32) - frame) ** 2) / 255.0 ** 2)
    demo_mse = float(np.mean((frames[0].astype(np.float32) - demo) ** 2) / 255.0 ** 2)
    metrics = {"diffusion_heldout_loss": dsum.get("heldout_loss"),
               "diffusion_target_heldout_loss": dsum.get("target_loss"),
               "diffusion_holdout_task": bool(config.diffusion.holdout_task),
               "goal_sampling_seconds": round(seconds, 3),
               "goal_sampling_compile_seconds": round(compile_seconds, 3),
               "goal_first_frame_mse": first_mse,
               "goal_vs_expert_demo_mse": demo_mse}
    if int(config.judge.episodes):
        metrics.update(run_judge(config, frames))
    merge_metrics(os.path.join(d, METRICS_FILE), metrics)
    logging.info("goal: %d-frame goal video of %s in %.2fs (%d DDIM steps, scale %.1f)",
                 len(frames[0]), task, seconds, g.sampling_steps, g.guidance_scale)
    judged = {k: metrics[k] for k in ("judge_done_videos", "judge_num_videos") if k in metrics}
    return {"frames": int(frames.shape[1]), "sampling_seconds": round(seconds, 3), **judged,
            "sampling_compile_seconds": round(compile_seconds, 3),
            "first_frame_mse": first_mse, "vs_expert_demo_mse": demo_mse}
