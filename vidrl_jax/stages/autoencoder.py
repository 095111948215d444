"""Stage `autoencoder`: trains the causal video VAE on demo clips.

Input: the `demos` stage. Per task, the last ~10% of episodes are held out for
the reconstruction PSNR. With `diffusion.holdout_task=True` the target task
`env.task` is excluded from training (the unseen-task mode) and its episodes
are reported separately as `unseen_task_psnr`.
Output in the stage directory: `vae_config.json` + `vae_params.msgpack` (read
with `vidrl_jax.models.vae3d.load`), `checkpoints/` (resume), `recon_strip.png`
(held-out clips, real above reconstruction). Scalars and real-vs-reconstruction
videos go to tensorboard under `autoencoder/`.
"""
import logging
import os

import numpy as np

from vidrl_jax.data import shards
from vidrl_jax.errors import VidrlError
from vidrl_jax.models import vae3d
from vidrl_jax.train import autoencoder as ae

def depends(config):
    """Task-free unless env.task changes the training set (see stages.uses_target_task)."""
    from vidrl_jax.stages import TASK_FREE_ENV, uses_target_task
    extra = ("env.task",) if uses_target_task(config) else ()
    return ("seed",) + TASK_FREE_ENV + ("demos", "vae", "diffusion.holdout_task") + extra


def train_tasks(config, demo_tasks):
    """Demo tasks the VAE trains on (all, minus env.task in held-out-task mode)."""
    tasks = sorted(demo_tasks)
    if config.diffusion.holdout_task:
        tasks = [t for t in tasks if t != config.env.task]
    if not tasks:
        raise VidrlError(f"no demo tasks left to train the VAE on (demos.tasks={tasks}, "
                         f"diffusion.holdout_task excludes env.task={config.env.task}); "
                         f"add tasks to demos.tasks")
    return tasks


def run(config, ctx):
    demo_dir = ctx.stage_output("demos")
    manifest = shards.read_manifest(demo_dir)
    tasks = train_tasks(config, manifest["tasks"])
    episodes = shards.load_episodes(demo_dir, tasks=tasks)
    train_eps, eval_eps = ae.split_episodes(episodes)
    extra = {}
    if config.diffusion.holdout_task and config.env.task in manifest["tasks"]:
        extra["unseen_task"] = shards.load_episodes(demo_dir, tasks=[config.env.task])
    logging.info("autoencoder: %d train / %d held-out episodes of %d tasks%s",
                 len(train_eps), len(eval_eps), len(tasks),
                 f" (unseen task {config.env.task} excluded)" if extra else "")
    model_config = vae3d.as_config(config.vae, size=config.env.size)
    params, summary = ae.fit(model_config, config.vae, train_eps, eval_eps,
                             os.path.join(ctx.stage_dir, "checkpoints"), seed=config.seed,
                             logger=ctx.logger if ctx.is_main_process else None,
                             extra_eval=extra)
    if ctx.is_main_process:
        vae3d.save(ctx.stage_dir, model_config, params)
        _save_strip(ctx.stage_dir, model_config, params, config.vae, eval_eps or train_eps)
    summary.update(tasks=tasks, holdout_task=bool(config.diffusion.holdout_task),
                   latent_shape=[model_config.latent_frames(config.vae.clip_length),
                                 model_config.latent_size, model_config.latent_size,
                                 model_config.latent_channels])
    return summary


def _save_strip(stage_dir, model_config, params, vae_config, episodes):
    import jax

    from vidrl_jax.utils.video_io import frame_strip, save_png
    sampler = ae.ClipSampler(episodes[:4], vae_config.clip_length, vae_config.frame_stride, 0)
    clips = sampler.eval_clips(clips_per_episode=1)[:4]
    recon = np.asarray(jax.jit(lambda p, v: vae3d.decode_uint8(
        model_config, p, vae3d.encode(model_config, p, v)[0]))(params, clips))
    rows = [r for pair in zip(clips, recon) for r in pair]
    save_png(os.path.join(stage_dir, "recon_strip.png"), frame_strip(rows))
