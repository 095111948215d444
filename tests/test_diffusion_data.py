"""Diffusion training data: resampled demo videos, splits, pretrain/finetune/held-out phases."""
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
