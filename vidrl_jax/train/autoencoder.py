"""Training the causal video VAE: KL-regularised reconstruction, pmapped over devices.

    state = create_train_state(model_config, train_config, key)       # one copy
    train_step, eval_step = make_steps(model_config, train_config)     # pmapped
    state_r = replicate(state)
    state_r, metrics = train_step(state_r, frames, key)   # frames [D, B/D, T, H, W, 3] uint8
    metrics = eval_step(state_r.params, frames)           # posterior mean, no noise

The loss per clip is mean squared error in [-1, 1] pixel space plus
`kl_weight * KL / num_elements` (KL summed over the latent, i.e. the usual
"sum-sum" VAE loss divided by the number of pixel values). The
reparameterisation noise of example i of the global batch is drawn from
fold_in(key, i), so a step over N devices equals the same step on one device.
"""
import flax
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vidrl_jax.models import vae3d
from vidrl_jax.utils.batching import map_fixed_batches
from vidrl_jax.utils import distributed
from vidrl_jax.utils.distributed import AXIS, unreplicate


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: dict
    opt_state: optax.OptState


def make_optimizer(train_config):
    """Adam with global-norm clipping (lr from `train_config.lr`)."""
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(float(train_config["lr"])))


def create_train_state(model_config, train_config, key):
    params = vae3d.init(model_config, key)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=make_optimizer(train_config).init(params))


def loss_fn(model_config, params, frames, example_keys, kl_weight):
    """frames [B,T,H,W,3] uint8; example_keys [B] keys -> (loss, metrics)."""
    cfg = vae3d.as_config(model_config)
    model = vae3d.VAE(cfg)
    x = vae3d.to_model_input(frames)
    mean, logvar = model.apply({"params": params}, x, method=vae3d.VAE.encode)
    eps = jax.vmap(lambda k: jax.random.normal(k, mean.shape[1:], mean.dtype))(example_keys)
    z = mean + jnp.exp(0.5 * logvar) * eps
    recon = model.apply({"params": params}, z, method=vae3d.VAE.decode)
    mse = jnp.mean((recon - x) ** 2)
    kl = 0.5 * jnp.sum(mean ** 2 + jnp.exp(logvar) - 1.0 - logvar) / mean.shape[0]
    n_elem = np.prod(x.shape[1:])
    loss = mse + kl_weight * kl / n_elem
    return loss, {"loss": loss, "mse": mse, "kl": kl}


def _example_keys(key, local_batch, axis_name):
    offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * local_batch
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(offset + jnp.arange(local_batch))


def train_step(model_config, train_config, state, frames, key, axis_name=None):
    """One update. frames [B,T,H,W,3] (per device when axis_name is set)."""
    keys = _example_keys(key, frames.shape[0], axis_name)
    grad_fn = jax.grad(lambda p: loss_fn(model_config, p, frames, keys,
                                         float(train_config["kl_weight"])), has_aux=True)
    grads, metrics = grad_fn(state.params)
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
        metrics = jax.lax.pmean(metrics, axis_name)
    metrics["grad_norm"] = optax.global_norm(grads)
    updates, opt_state = make_optimizer(train_config).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics


def eval_step(model_config, params, frames):
    """Reconstruction through the posterior mean. frames [B,T,H,W,3] uint8 ->
    per-clip mean squared error in [0, 1] pixel space, [B]."""
    mean, _ = vae3d.encode(model_config, params, frames)
    recon = vae3d.decode(model_config, params, mean)
    target = jnp.asarray(frames, jnp.float32) / 255.0
    return jnp.mean((recon - target) ** 2, axis=tuple(range(1, target.ndim)))


def psnr_from_mse(mse):
    """PSNR in dB for images in [0, 1]."""
    return -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))


def make_steps(model_config, train_config):
    """pmapped (train_step, eval_step, reconstruct) over all local devices.

    train_step(state_r, frames [D,b,T,H,W,3], key) -> (state_r, metrics_r)
    eval_step(params_r, frames [D,b,...]) -> per-clip MSE in [0,1] space [D,b]
    reconstruct(params_r, frames [D,b,...]) -> uint8 [D,b,T,H,W,3]
    """
    cfg = vae3d.as_config(model_config)
    tc = {"lr": float(train_config["lr"]), "kl_weight": float(train_config["kl_weight"])}
    # (local devices: in a multi-process run process 0 trains the VAE alone)
    devices = jax.local_devices()
    p_train = jax.pmap(lambda s, f, k: train_step(cfg, tc, s, f, k, AXIS),
                       axis_name=AXIS, in_axes=(0, 0, None), devices=devices)
    p_eval = jax.pmap(lambda p, f: eval_step(cfg, p, f), devices=devices)
    p_recon = jax.pmap(lambda p, f: vae3d.decode_uint8(cfg, p, vae3d.encode(cfg, p, f)[0]),
                       devices=devices)
    return p_train, p_eval, p_recon


def replicate(tree):
    """One copy of `tree` per local device, laid out as the steps' outputs are."""
    return distributed.replicate(tree, jax.local_devices())


def shard(batch, num_devices):
    """[B, ...] -> [num_devices, B/num_devices, ...]."""
    b = batch.shape[0]
    if b % num_devices:
        from vidrl_jax.errors import ConfigError
        raise ConfigError(f"vae.batch_size={b} must be divisible by the number of "
                          f"devices ({num_devices})")
    return batch.reshape((num_devices, b // num_devices) + batch.shape[1:])


# ----------------------------------------------------------------------------- data

class ClipSampler:
    """Random clips from in-memory episodes, deterministic in (seed, step).

    episodes: list of episode dicts with `frames` uint8 [L+1,H,W,3]. A clip is
    `clip_length` frames taken every `frame_stride` frames; episodes shorter
    than that are sampled with a smaller stride (down to 1) or padded with
    their last frame.
    """

    def __init__(self, episodes, clip_length, frame_stride, seed):
        if not episodes:
            from vidrl_jax.errors import VidrlError
            raise VidrlError("no episodes to sample VAE clips from (check demos.tasks and "
                             "diffusion.holdout_task)")
        self.frames = [np.asarray(e["frames"]) for e in episodes]
        self.clip_length, self.frame_stride, self.seed = clip_length, frame_stride, seed

    def clip(self, episode_index, start_fraction):
        f = self.frames[episode_index]
        n = len(f)
        stride = self.frame_stride
        while stride > 1 and (self.clip_length - 1) * stride + 1 > n:
            stride -= 1
        span = (self.clip_length - 1) * stride + 1
        start = int(start_fraction * max(n - span + 1, 1))
        idx = np.minimum(start + stride * np.arange(self.clip_length), n - 1)
        return f[idx]

    def batch(self, step, batch_size):
        rng = np.random.default_rng([self.seed, int(step)])
        eps = rng.integers(0, len(self.frames), batch_size)
        starts = rng.random(batch_size)
        return np.stack([self.clip(e, s) for e, s in zip(eps, starts)])

    def eval_clips(self, clips_per_episode=2):
        """Fixed evaluation clips (evenly spaced starts in every episode) [N,T,H,W,3]."""
        return np.stack([self.clip(e, s) for e in range(len(self.frames))
                         for s in np.linspace(0.0, 0.999, clips_per_episode)])


def evaluate(p_eval, params_r, clips, batch_size, num_devices):
    """Held-out reconstruction: {"mse", "psnr" (of the mean MSE), "psnr_clip_mean"}."""
    errs = map_fixed_batches(
        lambda chunk: np.asarray(p_eval(params_r, shard(chunk, num_devices))).reshape(-1),
        clips, batch_size)
    mse = float(np.mean(errs))
    return {"mse": mse, "psnr": float(-10 * np.log10(max(mse, 1e-10))),
            "psnr_clip_mean": float(np.mean(-10 * np.log10(np.maximum(errs, 1e-10)))),
            "num_clips": int(len(errs))}


# ----------------------------------------------------------------------------- loop

def split_episodes(episodes, eval_fraction=0.1):
    """Per task, the last max(1, round(eval_fraction * n)) episodes are held out
    (none when a task has a single episode). Returns (train, held_out)."""
    by_task = {}
    for ep in episodes:
        by_task.setdefault(str(ep["task"]), []).append(ep)
    train, held = [], []
    for task in sorted(by_task):
        eps = by_task[task]
        k = 0 if len(eps) < 2 else max(1, int(round(eval_fraction * len(eps))))
        train += eps[:len(eps) - k]
        held += eps[len(eps) - k:]
    return train, held


def fit(model_config, train_config, train_episodes, eval_episodes, checkpoint_dir, seed,
        logger=None, prefix="autoencoder/", extra_eval=None):
    """Trains the VAE for train_config.steps, resuming from checkpoint_dir.

    train_config: the `config.vae` section (lr, kl_weight, batch_size, clip_length,
    frame_stride, steps, eval_every, checkpoint_every, log_every).
    extra_eval: optional {name: episodes} evaluated like eval_episodes.
    Returns (params, summary dict).
    """
    import logging
    import time

    from vidrl_jax.errors import NonFiniteError
    from vidrl_jax.utils.checkpoint import CheckpointManager
    from vidrl_jax.utils.video_io import frame_strip

    cfg = vae3d.as_config(model_config)
    tc = train_config
    n_dev = jax.local_device_count()
    train_sampler = ClipSampler(train_episodes, tc.clip_length, tc.frame_stride, seed)
    eval_sets = {"heldout": eval_episodes or train_episodes[:1]}
    eval_sets.update(extra_eval or {})
    eval_clips = {name: ClipSampler(eps, tc.clip_length, tc.frame_stride, seed).eval_clips()
                  for name, eps in eval_sets.items() if eps}

    key = jax.random.PRNGKey(seed)
    init_key, train_key = jax.random.split(key)
    state = create_train_state(cfg, tc, init_key)
    mgr = CheckpointManager(checkpoint_dir, keep=2)
    start = 0
    if mgr.latest_step() is not None:
        restored, extra = mgr.restore({"state": state})
        state, start = restored["state"], int(extra["step"])
        logging.info("autoencoder: resumed from step %d", start)
    p_train, p_eval, p_recon = make_steps(cfg, tc)
    state_r = replicate(state)

    def run_eval(step):
        out = {}
        for name, clips in eval_clips.items():
            m = evaluate(p_eval, state_r.params, clips, tc.batch_size, n_dev)
            out.update({f"{name}_psnr": m["psnr"], f"{name}_mse": m["mse"],
                        f"{name}_psnr_clip_mean": m["psnr_clip_mean"]})
        if logger is not None:
            logger.scalars(step, out, prefix=prefix + "eval/")
            clips = eval_clips["heldout"][:tc.batch_size]
            if len(clips) < tc.batch_size:
                clips = np.concatenate([clips, np.repeat(clips[-1:], tc.batch_size - len(clips), 0)])
            recon = np.asarray(p_recon(state_r.params, shard(clips, n_dev))).reshape(clips.shape)
            logger.video(prefix + "real_vs_recon", step,
                         np.concatenate([clips[0], recon[0]], axis=2))
            logger.image(prefix + "real_vs_recon_strip", step,
                         frame_strip([clips[0], recon[0], clips[1], recon[1]]))
        return out

    t0, metrics, last = time.time(), None, {}
    for step in range(start, int(tc.steps)):
        frames = shard(train_sampler.batch(step, tc.batch_size), n_dev)
        state_r, metrics = p_train(state_r, frames, jax.random.fold_in(train_key, step))
        done = step + 1
        if done % tc.log_every == 0 or done == tc.steps:
            m = {k: float(v[0]) for k, v in jax.device_get(metrics).items()}
            if not np.isfinite(m["loss"]):
                raise NonFiniteError(f"autoencoder loss is {m['loss']} at step {done} "
                                     f"(lower vae.lr or vae.kl_weight)")
            m["steps_per_s"] = (done - start) / max(time.time() - t0, 1e-9)
            m["psnr_train"] = float(-10 * np.log10(max(m["mse"] / 4.0, 1e-10)))
            if logger is not None:
                logger.scalars(done, m, prefix=prefix)
            logging.info("autoencoder step %d: %s", done,
                         {k: round(v, 5) for k, v in m.items()})
            last = m
        if done % tc.eval_every == 0 and done != tc.steps:
            logging.info("autoencoder eval step %d: %s", done, run_eval(done))
        if done % tc.checkpoint_every == 0 or done == tc.steps:
            mgr.save(done, {"state": unreplicate(state_r)}, extra={"step": done})
    final = run_eval(int(tc.steps))
    summary = dict(final, steps=int(tc.steps), train_loss=last.get("loss"),
                   train_mse=last.get("mse"), train_kl=last.get("kl"),
                   steps_per_s=last.get("steps_per_s"),
                   num_train_episodes=len(train_episodes),
                   num_eval_episodes=len(eval_episodes), num_devices=n_dev)
    params = jax.device_get(unreplicate(state_r).params)
    return params, summary
