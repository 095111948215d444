"""bfloat16 compute for the video models (vae.dtype, diffusion.dtype): the same float32
params give outputs close to float32 compute, and a few bf16 train steps lower the loss.
(On CPU this checks numerics only; any speed-up is an accelerator matter.)"""
import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import metaworld
from vidrl_jax.diffusion import training
from vidrl_jax.errors import ConfigError
from vidrl_jax.models import unet3d, vae3d
from vidrl_jax.train import autoencoder as ae
from vidrl_jax.train import diffusion as train_diffusion

from test_diffusion import SHAPE, _data as unet_test_data  # noqa: E402 (same latent shape)

# One level each (XLA compile time dominates on 2 CPU cores; bf16 paths are the same
# layers at every level).
VAE = vae3d.VAEConfig(channels=(8,), latent_channels=2, patch_size=2, spatial_downsample=2,
                      temporal_downsample=2, size=8)
UNET = unet3d.UNetConfig(latent_channels=4, channels=(8,), attention_levels=(), heads=2,
                         text_dim=8)


def _bf16(cfg):
    return dataclasses.replace(cfg, dtype="bfloat16")


def _rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def _perturbed(params, seed=0, scale=0.05):
    """Init params + noise: zero-initialised output layers would make any dtype agree."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree.unflatten(tree, [x + scale * jax.random.normal(k, x.shape, x.dtype)
                                     for x, k in zip(leaves, keys)])


def test_config_fields_and_variants():
    assert metaworld.get_config().vae.dtype == metaworld.get_config().diffusion.dtype == "float32"
    for variant in ("gpu", "tpu"):
        c = metaworld.get_config(variant)
        assert c.vae.dtype == c.diffusion.dtype == "bfloat16"
        assert vae3d.as_config(c.vae, size=c.env.size).dtype == "bfloat16"
        assert train_diffusion.unet_config(c, 8).dtype == "bfloat16"
    with pytest.raises(ConfigError, match="vae.dtype"):
        vae3d.as_config(dataclasses.replace(VAE, dtype="float16"))
    with pytest.raises(ConfigError, match="diffusion.dtype"):
        unet3d.make_unet(dataclasses.replace(UNET, dtype="half"))


def test_vae_bf16_close_to_fp32_and_trains():
    params = vae3d.init(VAE, jax.random.PRNGKey(0))  # (the dtype does not change the params)
    video = np.random.default_rng(0).integers(0, 256, (2, 5, 8, 8, 3), dtype=np.uint8)
    outs = {}

    def roundtrip(cfg, p, v):
        mean, logvar = vae3d.encode(cfg, p, v)
        return mean, logvar, vae3d.decode(cfg, p, mean)
    for cfg in (VAE, _bf16(VAE)):
        mean, logvar, recon = jax.jit(lambda p, v, c=cfg: roundtrip(c, p, v))(params, video)
        assert mean.dtype == logvar.dtype == recon.dtype == jnp.float32
        outs[cfg.dtype] = (mean, recon)
    for a, b in zip(outs["bfloat16"], outs["float32"]):
        assert 0 < _rel_err(a, b) < 0.05, _rel_err(a, b)   # bf16 is used; measured 1.1e-2, 7.7e-3

    cfg, tc = _bf16(VAE), {"lr": 3e-3, "kl_weight": 1e-6}
    state = ae.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state=ae.make_optimizer(tc).init(params))
    step = jax.jit(lambda s, f, k: ae.train_step(cfg, tc, s, f, k))
    losses = []
    for i in range(12):
        state, m = step(state, video, jax.random.PRNGKey(i))
        losses.append(float(m["loss"]))
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.7 * losses[0], losses
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.params))


def test_unet_bf16_close_to_fp32():
    """(bf16 training is covered by the VAE test: the UNet's train step is the same
    optimiser over the same float32 params, and compiling it twice costs minutes.)"""
    init = unet3d.init_params(UNET, jax.random.PRNGKey(0), SHAPE)
    batch = unet_test_data()
    cond = training.batch_cond(batch)
    drop = jnp.array([False, True, False, False])
    apply = {c.dtype: jax.jit(unet3d.make_apply(c)) for c in (UNET, _bf16(UNET))}
    params = _perturbed(init)
    t = jnp.array([5, 30, 60, 90], jnp.int32)
    out = {k: f(params, batch["latents"], t, cond, drop) for k, f in apply.items()}
    assert out["bfloat16"].dtype == jnp.float32
    err = _rel_err(out["bfloat16"], out["float32"])
    assert 0 < err < 0.05, err   # measured 7.4e-3


def test_workdirs_recorded_before_the_dtype_fields_still_match(tmp_path):
    from vidrl_jax import stages
    config = metaworld.get_config("smoke")
    name = "autoencoder"
    want = stages.recorded_config(config, name)
    old = {k: ({f: v for f, v in d.items() if f != "dtype"} if k == "vae" else d)
           for k, d in want.items()}
    assert old != want
    os.makedirs(tmp_path / name)
    with open(tmp_path / name / stages.CONFIG_FILE, "w") as f:
        json.dump(old, f)
    assert stages.check_stage_dir(config, str(tmp_path), name) == "resume"
    config.vae.dtype = "bfloat16"  # a real change is still refused
    with pytest.raises(Exception, match="vae.dtype"):
        stages.check_stage_dir(config, str(tmp_path), name)
