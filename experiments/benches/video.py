"""Benchmark: video model speeds (autoencoder and diffusion training, goal sampling).

    python -m experiments.bench --what=video [--variant=default|smoke|gpu] [--iters=5]
        [--sampling_steps=N] [--no_autoencoder]

Sizes come from configs/metaworld.py:<variant> (vae, diffusion, env.size, goal).
Inputs are random (uint8 frames for the VAE, Gaussian latents for the UNet; the
speed does not depend on the values). Each measurement excludes compilation
(two warm-up calls: a pmapped step fed its own output state compiles again).
Prints JSON lines with "bench": "video":
  autoencoder_train  pmapped VAE train steps/s (vidrl_jax/train/autoencoder.py)
  diffusion_train    pmapped UNet train steps/s
  goal_sampling      seconds for one goal-video batch, DDIM + CFG as one jitted lax.scan
  goal_sampling_loop seconds for the same samples as a Python loop of jitted steps
  sampler_ratio      loop seconds / scan seconds, both measured in this run
"""
import argparse
import json
import os
import time


def _emit(**kw):
    print(json.dumps(dict(bench="video", **kw)), flush=True)


def _time(fn, iters):
    import jax
    for _ in range(2):                 # warm-up: compile (and any recompile for outputs fed back)
        jax.block_until_ready(fn())
    start = time.perf_counter()
    for _ in range(iters):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / iters


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="default")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--sampling_steps", type=int, default=0, help="0 = goal.sampling_steps")
    parser.add_argument("--no_autoencoder", action="store_true")
    args = parser.parse_args(argv)

    from configs.metaworld import get_config
    for record in measure(get_config(args.variant), args.iters, args.sampling_steps,
                          autoencoder=not args.no_autoencoder):
        _emit(**record)


def measure(config, iters, sampling_steps=0, autoencoder=True):
    """Yields the records above (dicts with "what") for `config`'s sizes, one at a time
    (experiments/benches/pipeline.py reuses it)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from vidrl_jax.diffusion import make_schedule, model_io, sampler, training
    from vidrl_jax.models import unet3d, vae3d
    from vidrl_jax.train import diffusion as train_diffusion

    nd = jax.local_device_count()
    common = dict(variant=config.variants, devices=nd, platform=jax.devices()[0].platform,
                  loadavg=round(os.getloadavg()[0], 2))
    vae_cfg = vae3d.as_config(config.vae, size=config.env.size)
    frames_t, size = int(config.diffusion.clip_length), int(config.env.size)

    if autoencoder:
        from vidrl_jax.train import autoencoder as ae
        b = int(config.vae.batch_size)
        state = ae.replicate(ae.create_train_state(vae_cfg, config.vae, jax.random.PRNGKey(0)))
        p_train = ae.make_steps(vae_cfg, config.vae)[0]
        clips = np.random.default_rng(0).integers(
            0, 256, (b, int(config.vae.clip_length), size, size, 3), dtype=np.uint8)
        clips = ae.shard(clips, nd)
        holder = {"s": state}

        def vae_step():
            holder["s"], m = p_train(holder["s"], clips, jax.random.PRNGKey(1))
            return m
        sec = _time(vae_step, iters)
        yield dict(what="autoencoder_train", steps_per_s=round(1 / sec, 3), batch=b,
              clip_length=int(config.vae.clip_length), size=size, **common)

    def encode_shape(video):
        return vae3d.encode(vae_cfg, vae3d.init(vae_cfg, jax.random.PRNGKey(0)), video)[0]
    lat_shape = jax.eval_shape(encode_shape, jax.ShapeDtypeStruct(
        (1, frames_t, size, size, 3), jnp.uint8)).shape[1:]
    ucfg = train_diffusion.unet_config(config, lat_shape[-1])
    params = unet3d.init_params(ucfg, jax.random.PRNGKey(0), lat_shape)
    apply_fn, d = unet3d.make_apply(ucfg), config.diffusion
    schedule = make_schedule(d.schedule, int(d.timesteps))
    tx = training.make_optimizer(float(d.lr))
    step_fn = jax.pmap(training.make_train_step(apply_fn, tx, schedule, d.prediction,
                                                float(d.cond_dropout), float(d.ema_decay),
                                                train_diffusion.AXIS),
                       axis_name=train_diffusion.AXIS, in_axes=(0, 0, None), donate_argnums=(0,))
    b = int(d.batch_size)
    rng = np.random.default_rng(0)
    batch = {"latents": rng.normal(size=(nd, b // nd) + tuple(lat_shape)).astype(np.float32),
             "first_frame": rng.normal(size=(nd, b // nd) + tuple(lat_shape[1:])).astype(
                 np.float32),
             "text": rng.integers(0, 50, (nd, b // nd)).astype(np.int32),
             "ids": np.arange(b, dtype=np.int32).reshape(nd, b // nd)}
    holder = {"s": train_diffusion.replicate(training.create_state(params, tx), nd)}

    def diff_step():
        holder["s"], m = step_fn(holder["s"], batch, jax.random.PRNGKey(1))
        return m
    sec = _time(diff_step, iters)
    yield dict(what="diffusion_train", steps_per_s=round(1 / sec, 3), batch=b,
          latent_shape=list(lat_shape), params=int(sum(x.size for x in jax.tree.leaves(params))),
          **common)
    del holder

    g = config.goal
    steps = sampling_steps or int(g.sampling_steps)
    n = int(g.num_videos)
    model = model_io.DiffusionModel(unet=ucfg, params=params, schedule_name=d.schedule,
                                    timesteps=int(d.timesteps), prediction=d.prediction,
                                    latent_scale=1.0, latent_shape=tuple(lat_shape),
                                    clip_length=frames_t)
    cond = model.cond(config.env.task, jnp.asarray(rng.normal(size=(n,) + tuple(lat_shape[1:])),
                                                  jnp.float32))
    shape = (n,) + tuple(lat_shape)
    scan = sampler.make_sampler(apply_fn, d.prediction, shape, steps)
    key = jax.random.PRNGKey(0)
    scan_s = _time(lambda: scan(params, schedule, cond, key, float(g.eta),
                                float(g.guidance_scale)), iters)
    loop_s = _time(lambda: sampler.ddim_sample_loop(apply_fn, params, schedule, d.prediction,
                                                    shape, cond, key, steps, float(g.eta),
                                                    float(g.guidance_scale)), iters)
    info = dict(videos=n, sampling_steps=steps, guidance_scale=float(g.guidance_scale), **common)
    yield dict(what="goal_sampling", seconds=round(scan_s, 4), **info)
    yield dict(what="goal_sampling_loop", seconds=round(loop_s, 4), **info)
    yield dict(what="sampler_ratio", ratio=round(loop_s / scan_s, 3),
          meaning="python-loop seconds / lax.scan seconds", **info)


if __name__ == "__main__":
    main()
