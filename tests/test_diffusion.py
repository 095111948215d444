"""Diffusion: schedules, loss, DDIM sampler (scan == loop, determinism, CFG), pmap.

One tiny UNet; compiled functions are shared through module fixtures (XLA
compile time dominates on 2 CPU cores).
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vidrl_jax.diffusion import sampler, schedules, training
from vidrl_jax.errors import ConfigError
from vidrl_jax.models import unet3d

SHAPE = (3, 4, 4, 4)   # T', h, w, C
CFG = unet3d.UNetConfig(latent_channels=4, channels=(8,), attention_levels=(0,), heads=2,
                        text_dim=8)
SCHED = schedules.make_schedule("cosine", 100)


def _data(n=4, seed=0):
    """Smooth, structured latent videos (learnable), task ids and example ids."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 1) + SHAPE[1:]).astype(np.float32)
    ramp = np.linspace(0, 1, SHAPE[0], dtype=np.float32)[None, :, None, None, None]
    lat = base + ramp * rng.normal(size=(n, 1) + SHAPE[1:]).astype(np.float32)
    return {"latents": jnp.asarray(lat), "first_frame": jnp.asarray(lat[:, 0]),
            "text": jnp.arange(n, dtype=jnp.int32) % 3, "ids": jnp.arange(n, dtype=jnp.int32)}


@pytest.fixture(scope="module")
def setup():
    params = unet3d.init_params(CFG, jax.random.PRNGKey(0), SHAPE)
    apply_fn = unet3d.make_apply(CFG)
    tx = training.make_optimizer(1e-2)
    fn = training.make_train_step(apply_fn, tx, SCHED, "v", 0.2, 0.9)
    return apply_fn, params, tx, jax.jit(fn)


@pytest.fixture(scope="module")
def trained(setup):
    apply_fn, params, tx, step = setup
    state, batch = training.create_state(params, tx), _data()
    for _ in range(60):
        state, _ = step(state, batch, jax.random.PRNGKey(1))
    return state


@pytest.mark.parametrize("name", schedules.SCHEDULES)
def test_schedules_sane(name):
    s = schedules.make_schedule(name, 1000)
    a = np.asarray(s["alpha_bar"])
    assert a.shape == (1000,) and np.all(np.diff(a) < 0)
    assert a[0] > 0.99 and a[-1] < 0.01 and np.all(a > 0)
    # v-prediction and eps-prediction both invert q_sample.
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
    with pytest.raises(ConfigError, match="sampling steps"):
        sampler.ddim_timesteps(1000, 0)


def test_loss_goes_down(setup, trained):
    apply_fn, params, _, _ = setup
    eval_loss = jax.jit(training.make_eval_loss(apply_fn, SCHED, "v"))
    data = _data()
    # 4 videos x 8 noise draws each: a low-variance estimate of the loss.
    batch = jax.tree.map(lambda x: jnp.concatenate([x] * 8), data)
    batch["ids"] = jnp.arange(32, dtype=jnp.int32)
    key = jax.random.PRNGKey(7)
    before = float(eval_loss(params, batch, key).mean())
    after = float(eval_loss(trained["params"], batch, key).mean())
    assert after < 0.8 * before, (before, after)   # measured: 1.22 -> 0.87
    assert int(trained["step"]) == 60
    # EMA follows the parameters but lags them.
    leaf = lambda t: jax.tree.leaves(t)[0]
    assert not np.allclose(leaf(trained["ema"]), leaf(params))


def test_pmap_two_devices_matches_one(setup):
    assert jax.local_device_count() == 2, "conftest forces 2 CPU devices"
    apply_fn, params = setup[:2]
    # SGD: Adam's first steps are ~lr * sign(grad), which turns float-summation-order
    # noise in near-zero gradients into lr-sized differences.
    tx = optax.sgd(0.1)
    one = jax.jit(training.make_train_step(apply_fn, tx, SCHED, "v", 0.2, 0.9))
    two = jax.pmap(training.make_train_step(apply_fn, tx, SCHED, "v", 0.2, 0.9,
                                            axis_name="d"), axis_name="d")
    batch, key = _data(), jax.random.PRNGKey(3)
    s1 = training.create_state(params, tx)
    s2 = jax.tree.map(lambda x: np.stack([x, x]), s1)
    split = jax.tree.map(lambda x: x.reshape((2, -1) + x.shape[1:]), batch)
    for _ in range(2):
        s1, m1 = one(s1, batch, key)
        s2, m2 = two(s2, split, np.stack([key, key]))
    np.testing.assert_allclose(m2["loss"][0], m1["loss"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
        np.testing.assert_allclose(b[0], a, atol=1e-5)
        np.testing.assert_allclose(b[1], a, atol=1e-5)


def _cond():
    batch = _data(2)
    return {"first_frame": batch["first_frame"], "text": batch["text"]}, (2,) + SHAPE


def test_ddim_eta0_deterministic_and_scan_equals_loop(setup, trained):
    apply_fn, params = setup[0], trained["ema"]
    cond, shape = _cond()
    sample = sampler.make_sampler(apply_fn, "v", shape, 4)
    a = sample(params, SCHED, cond, jax.random.PRNGKey(0), 0.0, 2.0)
    b = sample(params, SCHED, cond, jax.random.PRNGKey(0), 0.0, 2.0)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a)) and float(jnp.std(a)) > 0.05
    ref = sampler.ddim_sample_loop(apply_fn, params, SCHED, "v", shape, cond,
                                   jax.random.PRNGKey(0), 4, 0.0, 2.0)
    np.testing.assert_allclose(a, ref, atol=1e-4)
    # eta > 0 injects noise: the sample changes, scan and loop still agree.
    c = sample(params, SCHED, cond, jax.random.PRNGKey(0), 1.0, 2.0)
    ref_c = sampler.ddim_sample_loop(apply_fn, params, SCHED, "v", shape, cond,
                                     jax.random.PRNGKey(0), 4, 1.0, 2.0)
    np.testing.assert_allclose(c, ref_c, atol=1e-4)
    assert float(jnp.abs(c - a).max()) > 1e-3


def test_guidance_scale_one_is_conditional_model(setup, trained):
    apply_fn, params = setup[0], trained["params"]
    cond, shape = _cond()
    x = jax.random.normal(jax.random.PRNGKey(5), shape)
    t = jnp.array([40, 80], jnp.int32)
    guided = jax.jit(sampler.guided_output, static_argnums=0)
    plain = jax.jit(apply_fn)(params, x, t, cond, jnp.zeros((2,), bool))
    np.testing.assert_allclose(guided(apply_fn, params, x, t, cond, 1.0), plain, atol=1e-5)
    stronger = guided(apply_fn, params, x, t, cond, 3.0)
    assert float(jnp.abs(stronger - plain).max()) > 1e-4   # the null condition matters


def test_likelihood_reward_prefers_training_videos(setup, trained):
    from vidrl_jax.diffusion.model_io import DiffusionModel
    from vidrl_jax.rewards.likelihood import make_likelihood_reward

    model = DiffusionModel(unet=CFG, params=trained["ema"], schedule_name="cosine",
                           timesteps=100, prediction="v", latent_scale=1.0,
                           latent_shape=SHAPE, clip_length=9)
    reward = jax.jit(make_likelihood_reward(model, num_timesteps=4))
    data = _data()
    cond = {"first_frame": data["first_frame"], "text": data["text"]}
    other = jax.random.normal(jax.random.PRNGKey(9), data["latents"].shape)
    other = other.at[:, 0].set(data["latents"][:, 0])        # same first frame, wrong motion
    lat = jnp.concatenate([data["latents"], other])
    both = reward(model.params, lat, jnp.zeros_like(lat),  # ('latents' target: still unused)
                  jax.tree.map(lambda c: jnp.concatenate([c, c]), cond), jax.random.PRNGKey(0))
    assert both.shape == (8,) and np.all(np.isfinite(both))
    assert np.all(both[:4] > both[4:]), both


def test_residual_target_round_trip_and_scales():
    from vidrl_jax.diffusion.model_io import DiffusionModel

    common = dict(unet=CFG, params=None, schedule_name="cosine", timesteps=100,
                  prediction="v", latent_scale=4.0, latent_shape=SHAPE, clip_length=9)
    lat = _data()["latents"]
    still = jnp.broadcast_to(lat[:, :1], lat.shape)          # the first frame held still
    res = DiffusionModel(target="residual", cond_scale=0.5, **common)
    x = res.to_model(lat, still)
    np.testing.assert_allclose(x, 4.0 * (lat - still), rtol=1e-6)
    np.testing.assert_array_equal(x[:, 0], 0.0)               # frame 0 is given, not generated
    np.testing.assert_allclose(res.from_model(x, still), lat, atol=1e-6)
    np.testing.assert_allclose(res.cond("door-open-v3", lat[:, 0])["first_frame"],
                               0.5 * lat[:, 0], rtol=1e-6)
    plain = DiffusionModel(**common)                          # 'latents': still is unused
    np.testing.assert_allclose(plain.to_model(lat, still), 4.0 * lat, rtol=1e-6)
    np.testing.assert_allclose(plain.cond("door-open-v3", lat[:, 0])["first_frame"],
                               4.0 * lat[:, 0], rtol=1e-6)


def test_instruction_words_describe_unseen_tasks_by_shared_words():
    from vidrl_jax.envs.tasks import TASKS, WORDS, instruction_words

    f = instruction_words()
    assert f.shape == (len(TASKS), len(WORDS)) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-6)
    row = {t: f[TASKS.index(t)] for t in ("door-open-v3", "door-close-v3", "drawer-open-v3",
                                          "push-v3")}
    # 'open the door' shares 'door' with 'close the door', 'open' with 'open the drawer',
    # only 'the' with 'push the puck to the goal'
    assert row["door-open-v3"] @ row["door-close-v3"] > row["door-open-v3"] @ row["push-v3"]
    assert row["door-open-v3"] @ row["drawer-open-v3"] > row["door-open-v3"] @ row["push-v3"]


def test_words_text_mode_saves_loads_and_conditions(tmp_path):
    import dataclasses

    from vidrl_jax.diffusion import model_io
    from vidrl_jax.envs.tasks import TASKS, instruction_words
    from vidrl_jax.errors import CheckpointError

    words = instruction_words()
    cfg = dataclasses.replace(CFG, text_mode="words", text_feature_dim=words.shape[1])
    params = unet3d.init_params(cfg, jax.random.PRNGKey(0), SHAPE)
    leaves, tree = jax.tree.flatten(params)   # perturbed: the init's output head is zero
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    params = jax.tree.unflatten(tree, [p + 0.05 * jax.random.normal(k, p.shape)
                                       for p, k in zip(leaves, keys)])
    model = model_io.DiffusionModel(unet=cfg, params=params, schedule_name="cosine",
                                    timesteps=100, prediction="v", latent_scale=1.0,
                                    latent_shape=SHAPE, clip_length=9, text_features=words,
                                    target="residual", cond_scale=1.0)
    model_io.save(str(tmp_path), model)
    back = model_io.load(str(tmp_path))
    ids = [TASKS.index("door-open-v3"), TASKS.index("push-v3")]
    np.testing.assert_array_equal(back.text_for_ids(ids), words[ids])
    x = jnp.zeros((2,) + SHAPE)
    cond = {"first_frame": x[:, 0], "text": back.text_for_ids(ids)}
    out = back.apply_fn(back.params, x, jnp.array([5, 5]), cond, jnp.zeros(2, bool))
    assert out.shape == x.shape
    assert not np.allclose(out[0], out[1])      # the instruction changes the prediction
    (tmp_path / model_io.TEXT_FILE).unlink()
    with pytest.raises(CheckpointError, match="words text mode"):
        model_io.load(str(tmp_path))


def test_unknown_text_source_names_the_field():
    from configs import metaworld
    from vidrl_jax import config_check

    c = metaworld.get_config("smoke")
    c.diffusion.text = "clip"
    with pytest.raises(ConfigError, match="diffusion.text"):
        config_check.validate(c)
