"""Diffusion: schedules, loss, DDIM sampler (scan == loop, determinism, CFG), pmap."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidrl_jax.diffusion import sampler, schedules, training
from vidrl_jax.errors import ConfigError
from vidrl_jax.models import unet3d

SHAPE = (5, 4, 4, 4)   # T', h, w, C
CFG = unet3d.UNetConfig(latent_channels=4, channels=(8, 16), attention_levels=(1,), heads=2,
                        text_dim=8)


def _data(n=4, seed=0):
    """Smooth, structured latent videos (learnable), task ids and example ids."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 1) + SHAPE[1:]).astype(np.float32)
    ramp = np.linspace(0, 1, SHAPE[0], dtype=np.float32)[None, :, None, None, None]
    lat = base + ramp * rng.normal(size=(n, 1) + SHAPE[1:]).astype(np.float32)
    return {"latents": jnp.asarray(lat), "text": jnp.arange(n, dtype=jnp.int32) % 3,
            "ids": jnp.arange(n, dtype=jnp.int32)}


@pytest.fixture(scope="module")
def model():
    params = unet3d.init_params(CFG, jax.random.PRNGKey(0), SHAPE)
    return unet3d.make_apply(CFG), params


def _trained_params(apply_fn, params, steps):
    sched = schedules.make_schedule("cosine", 100)
    tx = training.make_optimizer(3e-3)
    step = jax.jit(training.make_train_step(apply_fn, tx, sched, "v", 0.1, 0.9))
    state, batch = training.create_state(params, tx), _data()
    for _ in range(steps):
        state, _ = step(state, batch, jax.random.PRNGKey(1))
    return state


@pytest.mark.parametrize("name", schedules.SCHEDULES)
def test_schedules_sane(name):
    s = schedules.make_schedule(name, 1000)
    a = np.asarray(s["alpha_bar"])
    assert a.shape == (1000,) and np.all(np.diff(a) < 0)
    assert a[0] > 0.99 and a[-1] < 0.01 and np.all(a > 0)
    # v-prediction and eps-prediction both invert q_sample exactly.
    x0, eps = jnp.ones((2, 3)), jnp.full((2, 3), -0.5)
    t = jnp.array([10, 900])
    xt = schedules.q_sample(s, x0, t, eps)
    for pred in ("eps", "v"):
        out = schedules.target(pred, s, x0, t, eps)
        rx0, reps = schedules.to_x0_eps(pred, s["alpha_bar"][t][:, None], xt, out)
        np.testing.assert_allclose(rx0, x0, atol=2e-3)
        np.testing.assert_allclose(reps, eps, atol=1e-4)
    with pytest.raises(ConfigError, match="diffusion.schedule"):
        schedules.make_schedule("quadratic", 1000)


def test_loss_goes_down(model):
    apply_fn, params = model
    sched = schedules.make_schedule("cosine", 100)
    eval_loss = jax.jit(training.make_eval_loss(apply_fn, sched, "v"))
    batch, key = _data(), jax.random.PRNGKey(7)
    before = float(eval_loss(params, batch, key).mean())
    state = _trained_params(apply_fn, params, 60)
    after = float(eval_loss(state["params"], batch, key).mean())
    assert after < 0.6 * before, (before, after)


def test_pmap_two_devices_matches_one(model):
    assert jax.local_device_count() == 2, "conftest forces 2 CPU devices"
    apply_fn, params = model
    sched = schedules.make_schedule("linear", 100)
    tx = training.make_optimizer(1e-3)
    one = jax.jit(training.make_train_step(apply_fn, tx, sched, "eps", 0.5, 0.9))
    two = jax.pmap(training.make_train_step(apply_fn, tx, sched, "eps", 0.5, 0.9,
                                            axis_name="d"), axis_name="d")
    batch, key = _data(), jax.random.PRNGKey(3)
    s1 = training.create_state(params, tx)
    s2 = jax.tree.map(lambda x: np.stack([x, x]), s1)
    split = jax.tree.map(lambda x: x.reshape((2, -1) + x.shape[1:]), batch)
    for _ in range(2):
        s1, m1 = one(s1, batch, key)
        s2, m2 = two(s2, split, np.stack([key, key]))
    np.testing.assert_allclose(m2["loss"][0], m1["loss"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(s1["params"]), jax.tree.leaves(s2["params"])):
        np.testing.assert_allclose(b[0], a, atol=2e-5)
        np.testing.assert_allclose(b[1], a, atol=2e-5)


@pytest.fixture(scope="module")
def trained(model):
    apply_fn, params = model
    return apply_fn, _trained_params(apply_fn, params, 15)["params"]


def _sample_inputs():
    batch = _data(2)
    return {"first_frame": batch["latents"][:, 0], "text": batch["text"]}, (2,) + SHAPE


def test_ddim_eta0_deterministic_and_scan_equals_loop(trained):
    apply_fn, params = trained
    sched = schedules.make_schedule("cosine", 100)
    cond, shape = _sample_inputs()
    sample = sampler.make_sampler(apply_fn, "v", shape, 6)
    a = sample(params, sched, cond, jax.random.PRNGKey(0), 0.0, 2.0)
    b = sample(params, sched, cond, jax.random.PRNGKey(0), 0.0, 2.0)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a)) and float(jnp.std(a)) > 0.05
    ref = sampler.ddim_sample_loop(apply_fn, params, sched, "v", shape, cond,
                                   jax.random.PRNGKey(0), 6, 0.0, 2.0)
    np.testing.assert_allclose(a, ref, atol=1e-4)
    # eta > 0 injects noise: a different key changes the sample, the loop still agrees.
    c = sample(params, sched, cond, jax.random.PRNGKey(0), 1.0, 2.0)
    ref_c = sampler.ddim_sample_loop(apply_fn, params, sched, "v", shape, cond,
                                     jax.random.PRNGKey(0), 6, 1.0, 2.0)
    np.testing.assert_allclose(c, ref_c, atol=1e-4)
    assert float(jnp.abs(c - a).max()) > 1e-3


def test_guidance_scale_one_is_conditional_model(trained):
    apply_fn, params = trained
    cond, shape = _sample_inputs()
    x = jax.random.normal(jax.random.PRNGKey(5), shape)
    t = jnp.array([40, 80], jnp.int32)
    guided = sampler.guided_output(apply_fn, params, x, t, cond, 1.0)
    plain = apply_fn(params, x, t, cond, jnp.zeros((2,), bool))
    np.testing.assert_allclose(guided, plain, atol=1e-5)
    stronger = sampler.guided_output(apply_fn, params, x, t, cond, 3.0)
    assert float(jnp.abs(stronger - plain).max()) > 1e-4   # the null condition matters
