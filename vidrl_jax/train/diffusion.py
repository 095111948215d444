"""Training the latent video diffusion model, pmapped over all local devices.

    summary = train(config, stage_dir, logger, vae_cfg, vae_params, demos_dir)

Phases (one global step counter, so checkpoints resume mid-phase):
  pretrain  `diffusion.steps` on every demo task (the target task excluded when
            `diffusion.holdout_task`); skipped when `diffusion.init_from` names
            an earlier diffusion stage directory to start from;
  finetune  `diffusion.finetune_steps` on the target task `env.task` only.
Batches are a pure function of (seed, phase, step). Held-out losses (EMA
params, fixed noise) are computed on held-out episodes of the training tasks
and of the target task (all its episodes in held-out-task mode). Samples are
logged as videos next to the real ones. The final EMA params go to
`vidrl_jax.diffusion.save(stage_dir, ...)`.
"""
import logging
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax.data import shards
from vidrl_jax.diffusion import data as ddata
from vidrl_jax.diffusion import model_io, sampler, training
from vidrl_jax.diffusion.schedules import make_schedule
from vidrl_jax.envs.tasks import TASKS, check_task, instruction, instruction_words
from vidrl_jax.errors import ConfigError, NonFiniteError, VidrlError
from vidrl_jax.models import unet3d, vae3d
from vidrl_jax.utils.checkpoint import CheckpointManager
from vidrl_jax.utils import distributed
from vidrl_jax.utils.distributed import AXIS, unreplicate

LATENTS_FILE = "latents.npz"
EVAL_NOISE_DRAWS = 4


def text_mode(config):
    """The UNet's instruction input: CLIP when clip.path is set, else diffusion.text."""
    return "clip" if config.clip.path else config.diffusion.text


def unet_config(config, latent_channels, text_feature_dim=0):
    d = config.diffusion
    return unet3d.UNetConfig(
        latent_channels=int(latent_channels), channels=tuple(d.channels),
        num_res_blocks=int(d.num_res_blocks), attention_levels=tuple(d.attention_levels),
        heads=int(d.heads), text_dim=int(d.text_dim), text_mode=text_mode(config),
        text_feature_dim=text_feature_dim, dtype=str(d.get("dtype", "float32")))


def text_features(config):
    """Per-task text features float32 [len(TASKS), F] of the text mode, or None (table)."""
    mode = text_mode(config)
    if mode == "words":
        return instruction_words()
    if mode == "table":
        return None
    from vidrl_jax.models.clip import load_clip
    clip = load_clip(config.clip.path, tokenizer=True)
    return np.asarray(clip.embed_texts([instruction(t) for t in TASKS]), np.float32)


def replicate(tree, n):
    """One copy of `tree` on each of the first n local devices, laid out as the
    train step's outputs are."""
    return distributed.replicate(tree, jax.local_devices()[:n])


def host_batch(lat, model, index, ids):
    """UNet training/eval batch for items `index` of LatentSet `lat` (see training)."""
    return {"latents": model.to_model(lat.latents[index], lat.still[index]),
            "first_frame": lat.latents[index][:, 0] * model.first_scale,
            "text": np.asarray(model.text_for_ids(lat.task[index])),
            "ids": np.asarray(ids, np.int32)}


def make_batch(lat, model, index, num_devices):
    """`host_batch` laid out [D, B/D, ...]."""
    b = len(index)
    batch = host_batch(lat, model, index, np.arange(b))
    return jax.tree.map(lambda x: x.reshape((num_devices, b // num_devices) + x.shape[1:]), batch)


def latent_dataset(config, stage_dir, demos_dir, vae_cfg, vae_params):
    """(LatentSet, val mask) cached in `stage_dir/latents.npz`."""
    path = os.path.join(stage_dir, LATENTS_FILE)
    if os.path.exists(path):
        with np.load(path) as z:
            if "still" in z:  # (a cache from before the still latents is rebuilt)
                lat = ddata.LatentSet(z["latents"], z["task"], z["episode"], z["view"],
                                      z["still"])
                return lat, z["val"]
    d = config.diffusion
    episodes = shards.load_episodes(demos_dir)
    logging.info("diffusion: encoding %d episodes x %d views with the VAE", len(episodes),
                 d.views_per_episode)
    lat = ddata.build_latent_set(episodes, ddata.make_encoder(vae_cfg, vae_params),
                                 d.clip_length, d.views_per_episode, config.seed)
    val = ddata.split_episodes(episodes, d.val_fraction)[lat.episode]
    tmp = path + f".tmp{os.getpid()}.npz"
    np.savez(tmp, val=val, **lat.to_npz())
    os.replace(tmp, path)
    return lat, val


def phases(config, lat, val):
    """[(name, item indices, steps)] and the eval sets {name: indices}."""
    d, target = config.diffusion, TASKS.index(check_task(config.env.task))
    is_target = lat.task == target
    if d.holdout_task and d.finetune_steps:
        raise ConfigError("diffusion.holdout_task=True excludes env.task from training, so "
                          "diffusion.finetune_steps must be 0")
    if d.holdout_task and d.init_from:
        raise ConfigError("diffusion.holdout_task=True with diffusion.init_from: the loaded "
                          "model may have seen env.task; set one of them")
    pre = np.flatnonzero(~val & ~is_target) if d.holdout_task else np.flatnonzero(~val)
    fine = np.flatnonzero(~val & is_target)
    out = []
    if not d.init_from:
        if len(pre) == 0:
            raise VidrlError("no training videos for diffusion pretraining (demos.tasks holds "
                             "only env.task and diffusion.holdout_task is set?)")
        out.append(("pretrain", pre, int(d.steps)))
    if d.finetune_steps:
        if len(fine) == 0:
            raise VidrlError(f"no demos of env.task={config.env.task} to finetune on; add it "
                             "to demos.tasks")
        out.append(("finetune", fine, int(d.finetune_steps)))
    if not out:
        raise ConfigError("diffusion.init_from is set but diffusion.finetune_steps=0: nothing "
                          "to train")
    view0 = lat.view == 0
    target_eval = (is_target & view0) if d.holdout_task else (is_target & val & view0)
    evals = {"heldout": np.flatnonzero(val & view0 & ~is_target),
             "target": np.flatnonzero(target_eval)}
    return out, {k: v for k, v in evals.items() if len(v)}


def init_from(path, unet_cfg, latent_shape, target):
    """(EMA params, latent scale, condition scale) of an earlier diffusion stage, checked
    against this architecture; finetuning keeps the pretrained model's scales."""
    model = model_io.load(path)
    if model.unet != unet_cfg or tuple(model.latent_shape) != tuple(latent_shape):
        raise ConfigError(f"diffusion.init_from={path}: its model ({model.unet}, latents "
                          f"{model.latent_shape}) differs from this config ({unet_cfg}, latents "
                          f"{tuple(latent_shape)}); use the same diffusion/vae architecture")
    if model.target != target:
        raise ConfigError(f"diffusion.init_from={path} denoises {model.target!r} but "
                          f"diffusion.target={target!r}; set diffusion.target={model.target}")
    return model.params, model.latent_scale, model.first_scale


class Evaluator:
    """Held-out denoising loss (EMA params, fixed noise): mean over items x draws."""

    def __init__(self, apply_fn, schedule, prediction, batch_size):
        self.fn = jax.jit(training.make_eval_loss(apply_fn, schedule, prediction))
        self.batch_size = batch_size

    def __call__(self, params, lat, model, index):
        idx = np.repeat(index, EVAL_NOISE_DRAWS)
        losses = []
        for i in range(0, len(idx), self.batch_size):
            chunk = idx[i:i + self.batch_size]
            real = len(chunk)
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch_size - real)])
            batch = host_batch(lat, model, chunk, np.arange(i, i + self.batch_size))
            losses.append(np.asarray(self.fn(params, batch, jax.random.PRNGKey(1234)))[:real])
        return float(np.mean(np.concatenate(losses)))


def train(config, stage_dir, logger, vae_cfg, vae_params, demos_dir, tag="diffusion/"):
    """Trains (or resumes) the diffusion model; saves it in `stage_dir`; returns a summary."""
    d = config.diffusion
    nd = jax.local_device_count()
    if d.batch_size % nd:
        raise ConfigError(f"diffusion.batch_size={d.batch_size} must be divisible by the "
                          f"{nd} local devices")
    td = vae_cfg.temporal_downsample
    if d.clip_length < 2 or (d.clip_length - 1) % td:
        raise ConfigError(f"diffusion.clip_length={d.clip_length} must be 1 + a positive multiple "
                          f"of vae.temporal_downsample={td} (e.g. {1 + 2 * td}, {1 + 4 * td})")
    lat, val = latent_dataset(config, stage_dir, demos_dir, vae_cfg, vae_params)
    plan, evals = phases(config, lat, val)
    latent_shape = lat.latents.shape[1:]
    train_items = np.concatenate([p[1] for p in plan])
    text = text_features(config)
    ucfg = unet_config(config, latent_shape[-1], 0 if text is None else text.shape[1])
    unet3d.log_text_mode(ucfg, config.clip.path)
    key = jax.random.PRNGKey(config.seed)
    target = d.target
    if d.init_from:
        params, scale, cond_scale = init_from(d.init_from, ucfg, latent_shape, target)
    else:
        params = unet3d.init_params(ucfg, key, latent_shape)
        train_lat = lat.latents[train_items]
        cond_scale = float(1.0 / max(np.std(train_lat), 1e-6))
        if target == "residual":
            train_lat = train_lat - lat.still[train_items]
        scale = float(1.0 / max(np.std(train_lat), 1e-6))
    model = model_io.DiffusionModel(
        unet=ucfg, params=None, schedule_name=d.schedule, timesteps=int(d.timesteps),
        prediction=d.prediction, latent_scale=scale, latent_shape=tuple(latent_shape),
        clip_length=int(d.clip_length), text_features=text, target=target,
        cond_scale=cond_scale)
    apply_fn, schedule = model.apply_fn, make_schedule(d.schedule, int(d.timesteps))

    tx = training.make_optimizer(float(d.lr))
    state = training.create_state(params, tx)
    ckpt = CheckpointManager(os.path.join(stage_dir, "checkpoints"), keep=2)
    start = 0
    if ckpt.latest_step() is not None:
        state, _ = ckpt.restore(state)
        start = int(state["step"])
        logging.info("diffusion: resuming from step %d", start)
    total = sum(p[2] for p in plan)

    step_fn = jax.pmap(training.make_train_step(apply_fn, tx, schedule, d.prediction,
                                                float(d.cond_dropout), float(d.ema_decay), AXIS),
                       axis_name=AXIS, in_axes=(0, 0, None), donate_argnums=(0,),
                       devices=jax.local_devices())  # (multi-process: process 0 alone)
    evaluator = Evaluator(apply_fn, schedule, d.prediction, max(d.batch_size, 8))
    state_r = replicate(state, nd)
    del state

    def evaluate(step, ema):
        out = {f"{k}_loss": evaluator(ema, lat, model, idx)
               for k, idx in evals.items()}
        logger.scalars(step, out, prefix=tag + "eval/")
        return out

    # Speed: wall time of log windows, excluding the first (compile) and eval/checkpoints.
    eval_metrics, timing = {}, {"tick": time.time(), "from": start, "time": 0.0, "steps": 0}
    step, phase_end = start, 0
    for name, pool, steps in plan:
        phase_end += steps
        phase_id = ["pretrain", "finetune"].index(name)
        while step < phase_end:
            rng = np.random.default_rng([config.seed, phase_id, step])
            index = rng.choice(pool, d.batch_size, replace=len(pool) < d.batch_size)
            batch = make_batch(lat, model, index, nd)
            state_r, metrics = step_fn(state_r, batch, jax.random.PRNGKey(config.seed + 1))
            step += 1
            if step % d.log_every == 0 or step == total:
                # (numpy first: v[0] of a pmapped array would run an all-reduce program)
                m = {k: float(v[0]) for k, v in jax.device_get(metrics).items()}
                if not np.isfinite(m["loss"]):
                    raise NonFiniteError(f"diffusion loss is {m['loss']} at step {step} "
                                         f"({name}); lower diffusion.lr")
                now = time.time()
                m["steps_per_s"] = (step - timing["from"]) / max(now - timing["tick"], 1e-9)
                if timing["from"] > start:
                    timing["time"] += now - timing["tick"]
                    timing["steps"] += step - timing["from"]
                timing.update(tick=now, **{"from": step})
                logger.scalars(step, m, prefix=tag + name + "/")
            if step % d.eval_every == 0 or step == total:
                ema = unreplicate(state_r)["ema"]
                eval_metrics = evaluate(step, ema)
                log_samples(config, logger, tag, step, model, ema, lat, evals, vae_cfg,
                            vae_params)
                timing.update(tick=time.time(), **{"from": max(step, start + 1)})
            if step % d.checkpoint_every == 0 or step == total:
                ckpt.save(step, jax.device_get(unreplicate(state_r)), extra={"phase": name})
                timing.update(tick=time.time(), **{"from": max(step, start + 1)})
    steps_per_s = round(timing["steps"] / timing["time"], 3) if timing["steps"] else None
    state = jax.device_get(unreplicate(state_r))
    model.params = state["ema"]
    if not eval_metrics:
        eval_metrics = evaluate(step, model.params)
    model_io.save(stage_dir, model)
    return {"steps": int(step), "steps_per_s": steps_per_s,
            "text_mode": ucfg.text_mode, "train_videos": int(len(train_items)),
            "latent_shape": list(latent_shape), "latent_scale": scale, "target": target,
            **{f"{k}": round(v, 5) for k, v in eval_metrics.items()}}


def log_samples(config, logger, tag, step, model, ema, lat, evals, vae_cfg, vae_params,
                count=2):
    """Samples from the first frames of held-out videos; logs videos [real | sample]
    (the real one as the VAE reconstruction of its latents)."""
    index = evals.get("target", evals.get("heldout"))
    if index is None:
        return
    index = index[:count]
    cond = {"first_frame": jnp.asarray(lat.latents[index][:, 0] * model.first_scale),
            "text": model.text_for_ids(lat.task[index])}
    steps = min(int(config.diffusion.sample_steps), model.timesteps)
    x0 = sampler.make_sampler(model.apply_fn, model.prediction, (len(index),) + model.latent_shape,
                              steps)(ema, model.schedule, cond, jax.random.PRNGKey(step),
                                     float(config.goal.eta), float(config.goal.guidance_scale))
    dec = jax.jit(lambda p, z: vae3d.decode_uint8(vae_cfg, p, z))
    fake = np.asarray(dec(vae_params, model.from_model(x0, lat.still[index])))
    real = np.asarray(dec(vae_params, jnp.asarray(lat.latents[index])))
    for i in range(len(index)):
        logger.video(f"{tag}samples/{i}", step, np.concatenate([real[i], fake[i]], axis=2))
