"""Diffusion training data: resampled demo videos, splits, pretrain/finetune/held-out phases;
a killed diffusion fit resumes to the model of one never killed."""
import numpy as np
import pytest

from configs.metaworld import get_config
from vidrl_jax.diffusion import data as ddata
from vidrl_jax.envs.tasks import TASKS
from vidrl_jax.errors import ConfigError
from vidrl_jax.train.diffusion import phases


def test_clip_indices_start_at_first_frame_and_end_after_success():
    success = np.zeros(40, bool)
    success[20:] = True                                # first success after step 20 -> frame 21
    full = ddata.clip_indices(41, success, 9)
    assert full[0] == 0 and full[-1] == 40 and len(full) == 9 and np.all(np.diff(full) >= 0)
    rng = np.random.default_rng(0)
    ends = {int(ddata.clip_indices(41, success, 9, rng)[-1]) for _ in range(200)}
    assert min(ends) == 21 and max(ends) == 40


def _episodes():
    return [dict(task=t, frames=np.zeros((11, 4, 4, 3), np.uint8), success=np.ones(10, bool))
            for t in ("door-open-v3", "drawer-open-v3") for _ in range(5)]


def _latent_set(episodes, views=2):
    n = len(episodes) * views
    return ddata.LatentSet(latents=np.zeros((n, 3, 2, 2, 4), np.float32),
                           still=np.zeros((n, 3, 2, 2, 4), np.float32),
                           task=np.repeat([TASKS.index(e["task"]) for e in episodes], views),
                           episode=np.repeat(np.arange(len(episodes)), views),
                           view=np.tile(np.arange(views), len(episodes)))


def test_phases_pretrain_finetune_and_holdout():
    eps = _episodes()
    val_ep = ddata.split_episodes(eps, 0.2)
    assert val_ep.sum() == 2 and val_ep[4] and val_ep[9]        # last episode of each task
    lat = _latent_set(eps)
    val = val_ep[lat.episode]
    door = TASKS.index("door-open-v3")
    c = get_config("smoke")
    c.env.task = "door-open-v3"
    c.diffusion.finetune_steps = 5
    plan, evals = phases(c, lat, val)
    assert [p[0] for p in plan] == ["pretrain", "finetune"]
    assert not val[plan[0][1]].any() and set(lat.task[plan[0][1]]) == {door, TASKS.index(
        "drawer-open-v3")}
    assert set(lat.task[plan[1][1]]) == {door} and plan[1][2] == 5
    assert set(lat.task[evals["target"]]) == {door} and val[evals["target"]].all()

    c.diffusion.finetune_steps = 0
    c.diffusion.holdout_task = True
    plan, evals = phases(c, lat, val)
    assert len(plan) == 1 and door not in set(lat.task[plan[0][1]])
    assert len(evals["target"]) == 5                            # every door episode, view 0

    c.diffusion.finetune_steps = 5
    with pytest.raises(ConfigError, match="holdout_task"):
        phases(c, lat, val)


def test_still_latents_share_frame_zero_with_the_video():
    """The residual target subtracts the first frame held still; with the causal VAE its
    latent frame 0 is the video's own, so a residual's frame 0 is exactly zero."""
    import jax

    from vidrl_jax.models import vae3d
    cfg = vae3d.VAEConfig(channels=(4,), latent_channels=2, patch_size=2, spatial_downsample=2,
                          temporal_downsample=2, size=8)
    params = vae3d.init(cfg, jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    eps = [dict(task="door-open-v3", frames=rng.integers(0, 256, (7, 8, 8, 3), dtype=np.uint8),
                success=np.arange(6) >= 3) for _ in range(2)]
    lat = ddata.build_latent_set(eps, ddata.make_encoder(cfg, params), 5, 2, seed=0,
                                 batch_size=2)
    assert lat.still.shape == lat.latents.shape == (4, 3, 4, 4, 2)
    np.testing.assert_array_equal(lat.still[:, 0], lat.latents[:, 0])
    assert np.abs(lat.latents[:, 1:] - lat.still[:, 1:]).max() > 1e-3   # motion remains
    # still latents are per episode: both views of an episode share them, episodes differ
    np.testing.assert_array_equal(lat.still[0], lat.still[1])
    assert np.abs(lat.still[0] - lat.still[2]).max() > 1e-3


def test_a_killed_diffusion_fit_resumes_across_the_phase_boundary_to_the_same_model(
        tmp_path, monkeypatch, caplog):
    """A fit's stage directory as a kill in the finetune phase leaves it (its checkpoint
    at step 3, in pretrain, the last; no saved model): the same call resumes there and
    saves exactly the model of the fit never killed."""
    import logging
    import shutil

    import jax

    from vidrl_jax.diffusion import model_io
    from vidrl_jax.models import vae3d
    from vidrl_jax.train import diffusion as train_diffusion
    from vidrl_jax.utils.logging import MetricLogger

    config = get_config("smoke")
    config.diffusion.update(steps=4, finetune_steps=2, checkpoint_every=3, eval_every=6,
                            log_every=3, channels=(8,), attention_levels=(), heads=1,
                            text_dim=8)
    vae_cfg = vae3d.as_config(config.vae, size=config.env.size)
    eps = [dict(task=t, frames=None, success=None) for t in config.demos.tasks for _ in range(3)]
    lat = _latent_set(eps)
    shape = (vae_cfg.latent_frames(config.diffusion.clip_length), vae_cfg.latent_size,
             vae_cfg.latent_size, vae_cfg.latent_channels)
    rng = np.random.default_rng(0)
    lat.latents = rng.normal(size=(len(lat),) + shape).astype(np.float32)
    lat.still = np.repeat(lat.latents[:, :1], shape[0], axis=1)
    full, killed = tmp_path / "full", tmp_path / "killed"
    full.mkdir()                                      # (the latents as the stage caches them)
    np.savez(full / train_diffusion.LATENTS_FILE, val=ddata.split_episodes(eps, 0.2)[lat.episode],
             **lat.to_npz())
    # (the logged sample videos, decoded by the VAE, do not touch the params; sampling
    # them would double the time. With the latents cached, nothing else needs the VAE.)
    monkeypatch.setattr(train_diffusion, "log_samples", lambda *args: None)

    def fit(stage_dir):
        train_diffusion.train(config, str(stage_dir), MetricLogger(str(stage_dir)), vae_cfg,
                              vae_params=None, demos_dir=None)
        return model_io.load(str(stage_dir)).params

    uninterrupted = fit(full)
    shutil.copytree(full, killed)
    shutil.rmtree(killed / "checkpoints" / "6")
    for name in (model_io.PARAMS_FILE, model_io.CONFIG_FILE):
        (killed / name).unlink()
    with caplog.at_level(logging.INFO):
        resumed = fit(killed)
    assert "diffusion: resuming from step 3" in caplog.text
    for a, b in zip(jax.tree.leaves(uninterrupted), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
