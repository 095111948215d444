"""The causal video VAE and its training step (tiny configs, 2 forced CPU devices)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidrl_jax.errors import CheckpointError, ConfigError, VidrlError
from vidrl_jax.models import vae3d
from vidrl_jax.train import autoencoder as ae

# Two levels + patch embedding: every kind of layer (patchify, level downsample, both
# temporal halvings, upsample) is on the path.
CFG = vae3d.VAEConfig(channels=(4, 8), latent_channels=2, patch_size=2, spatial_downsample=4,
                      temporal_downsample=4, size=8)
# One level for the training tests (cheaper to compile).
TINY = vae3d.VAEConfig(channels=(8,), latent_channels=2, patch_size=2, spatial_downsample=2,
                       temporal_downsample=2, size=8)
TRAIN = {"lr": 3e-3, "kl_weight": 1e-6}


@pytest.fixture(scope="module")
def params():
    return vae3d.init(CFG, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def encode(params):
    return jax.jit(lambda v: vae3d.encode(CFG, params, v)[0])


def _video(t, seed=0, b=2, size=8):
    return np.random.default_rng(seed).integers(0, 256, (b, t, size, size, 3), dtype=np.uint8)


def test_encoder_is_causal(params, encode):
    v = _video(9)
    changed = v.copy()
    changed[:, 5:] = 255 - changed[:, 5:]          # frames 5..8 feed latent frame 2 only
    a, b = np.asarray(encode(v)), np.asarray(encode(changed))
    np.testing.assert_array_equal(a[:, :2], b[:, :2])
    assert np.abs(a[:, 2] - b[:, 2]).max() > 1e-4
    changed[:, 1:] = 0                              # frame 0 alone decides latent frame 0
    np.testing.assert_array_equal(a[:, 0], np.asarray(encode(changed))[:, 0])
    dec = jax.jit(lambda z: vae3d.decode(CFG, params, z))
    z2 = jnp.asarray(a).at[:, 1:].set(0.0)          # decoder is causal too
    np.testing.assert_allclose(np.asarray(dec(a))[:, :1], np.asarray(dec(z2))[:, :1], atol=1e-6)


@pytest.mark.parametrize("t", [1, 5, 13])
def test_shapes_any_length(params, t):
    mean, logvar = jax.eval_shape(lambda v: vae3d.encode(CFG, params, v), _video(t))
    assert mean.shape == logvar.shape == (2, 1 + (t - 1) // 4, 2, 2, 2)
    assert jax.eval_shape(lambda z: vae3d.decode(CFG, params, z), mean).shape == (2, t, 8, 8, 3)
    assert jax.eval_shape(lambda z: vae3d.decode_uint8(CFG, params, z), mean).dtype == jnp.uint8
    emb = jax.eval_shape(lambda v: vae3d.video_embedding(CFG, params, v), _video(t))
    assert emb.shape == (2, vae3d.embedding_dim(CFG, t))


def test_round_trip_shapes_run(params):
    """Odd length and T=1 actually run end to end (decode(encode(v)) keeps T)."""
    run = jax.jit(lambda v: vae3d.decode(CFG, params, vae3d.encode(CFG, params, v)[0]))
    for t in (1, 9):
        out = np.asarray(run(_video(t)))
        assert out.shape == (2, t, 8, 8, 3) and out.min() >= 0 and out.max() <= 1


def test_frame_features_is_single_frame_latent(params, encode):
    v = _video(5)
    f = vae3d.frame_features(CFG, params, v[:, 0])
    assert f.shape == (2, 8)
    np.testing.assert_allclose(f, np.asarray(encode(v))[:, 0].reshape(2, -1), atol=1e-5)


def test_clear_errors(params):
    with pytest.raises(VidrlError, match="temporal_downsample"):
        vae3d.encode(CFG, params, _video(4))
    with pytest.raises(VidrlError, match="8x8"):
        vae3d.encode(CFG, params, _video(5, size=16))
    with pytest.raises(ConfigError, match="spatial_downsample"):
        vae3d.as_config({"channels": (4, 8), "latent_channels": 2, "patch_size": 2,
                         "spatial_downsample": 2, "temporal_downsample": 2}, size=8)
    with pytest.raises(ConfigError, match="size"):
        vae3d.as_config({"channels": (4, 8), "latent_channels": 2, "spatial_downsample": 2,
                         "temporal_downsample": 2})


def test_save_load_round_trip(tmp_path, params):
    with pytest.raises(CheckpointError, match="autoencoder"):
        vae3d.load(str(tmp_path))
    vae3d.save(str(tmp_path), CFG, params)
    cfg, loaded = vae3d.load(str(tmp_path))
    assert cfg == CFG
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(a, b)
    (tmp_path / vae3d.PARAMS_FILE).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        vae3d.load(str(tmp_path))


def _clips(n=4, t=5, seed=0):
    """Smooth moving-square clips (learnable structure)."""
    rng = np.random.default_rng(seed)
    v = np.zeros((n, t, 8, 8, 3), np.uint8)
    for i in range(n):
        x, y, c = rng.integers(0, 5), rng.integers(0, 5), rng.integers(80, 255, 3)
        for f in range(t):
            v[i, f, y:y + 3, (x + f) % 6:(x + f) % 6 + 3] = c
    return v


def test_loss_goes_down_and_pmap_matches_one_device():
    assert jax.local_device_count() == 2
    state = ae.create_train_state(TINY, TRAIN, jax.random.PRNGKey(0))
    frames = _clips()
    key = jax.random.PRNGKey(1)
    step1 = jax.jit(lambda s, f, k: ae.train_step(TINY, TRAIN, s, f, k))
    p_train, p_eval, _ = ae.make_steps(TINY, TRAIN)
    # One step on 2 devices (2 clips each) equals one step on one device (4 clips).
    s1, m1 = step1(state, frames, key)
    s2, m2 = p_train(ae.replicate(state), ae.shard(frames, 2), key)
    np.testing.assert_allclose(float(m1["loss"]), float(m2["loss"][0]), rtol=1e-5)
    np.testing.assert_allclose(float(m1["grad_norm"]), float(m2["grad_norm"][0]), rtol=1e-4)
    # Adam's moments are linear/quadratic in the (pmean'd) gradients: compare them.
    # (Params are not compared leaf by leaf: biases right before a norm layer have
    # zero gradient up to float noise, which Adam's first step turns into +-lr.)
    s2u = ae.unreplicate(s2)
    for a, b in zip(jax.tree.leaves(s1.opt_state), jax.tree.leaves(s2u.opt_state)):
        np.testing.assert_allclose(a, b, atol=1e-7, rtol=1e-3)
    assert int(s2u.step) == int(s1.step) == 1
    # Training on a tiny fixed dataset lowers the loss and raises the PSNR.
    before = ae.evaluate(p_eval, s2.params, frames, 4, 2)["psnr"]
    first = float(m1["loss"])
    s = s1
    for i in range(40):
        s, m = step1(s, frames, jax.random.fold_in(key, i))
    assert float(m["loss"]) < 0.5 * first
    after = ae.evaluate(p_eval, ae.replicate(s).params, frames, 4, 2)["psnr"]
    assert after > before + 3.0


def test_a_killed_fit_resumes_to_the_params_of_an_uninterrupted_one(tmp_path, monkeypatch,
                                                                    caplog):
    """Killed one step past its checkpoint at step 3, the same call resumes there and ends
    with exactly the params of a run never killed (clips and keys depend on the step)."""
    import logging

    import ml_collections
    episodes = [{"frames": _clips(n=1, t=9, seed=s)[0]} for s in range(3)]
    tc = ml_collections.ConfigDict(dict(TRAIN, batch_size=2, clip_length=5, frame_stride=1,
                                        steps=6, eval_every=3, checkpoint_every=3,
                                        log_every=3))

    def fit(name):
        return ae.fit(TINY, tc, episodes, episodes[:1], str(tmp_path / name), seed=0)[0]

    full = fit("full")
    batch = ae.ClipSampler.batch

    def killed_at_step_4(self, step, batch_size):
        if step == 4:
            raise KeyboardInterrupt
        return batch(self, step, batch_size)
    monkeypatch.setattr(ae.ClipSampler, "batch", killed_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        fit("killed")
    monkeypatch.setattr(ae.ClipSampler, "batch", batch)
    with caplog.at_level(logging.INFO):
        resumed = fit("killed")
    assert "autoencoder: resumed from step 3" in caplog.text
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
