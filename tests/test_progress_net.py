"""The progress net (rewards/progress_net.py): trained on goal videos alone it ranks the
late frames of videos it never saw above their early ones, its params are kept and
reloaded (a corrupt file is refused), bad goal videos get a clear error, the agent stage
pays it and resumes exactly, and the reward gate scores it without writing to the run."""
import os

import numpy as np
import pytest

from configs import metaworld
from vidrl_jax import config_check
from vidrl_jax.errors import CheckpointError, ConfigError
from vidrl_jax.rewards import progress_net
from vidrl_jax.rewards.quality import roc_auc
from test_learned_reward import results_without_timings, tiny_agent_config

T = 9


def _videos(n, seed):
    """[n,T,16,16,3] uint8: a noisy scene (each video its own) where an object brightens
    along the video, as a task's object changes toward done."""
    rng = np.random.default_rng(seed)
    v = np.repeat(rng.integers(0, 90, (n, 1, 16, 16, 3)), T, 1).astype(np.float64)
    v += rng.normal(0, 8, v.shape)
    v[:, :, 5:11, 5:11] += np.linspace(0, 150, T)[None, :, None, None, None]
    return np.clip(v, 0, 255).astype(np.uint8)


def test_ranks_late_frames_of_unseen_videos_above_early_ones():
    train = _videos(6, 0)
    params = progress_net.train(train, steps=150, batch=32, lr=1e-3)
    scale = progress_net.standardisation(params, train)
    frames, _ = progress_net.video_labels(train)
    paid = progress_net.reward(params, scale, frames)
    assert paid.dtype == np.float32 and paid.shape == (6 * T,)
    assert abs(paid.mean()) < 1e-3 and paid.std() == pytest.approx(1.0, rel=1e-3)
    test = _videos(3, 1)
    late = progress_net.reward(params, scale, test[:, -2:].reshape(-1, 16, 16, 3))
    early = progress_net.reward(params, scale, test[:, :2].reshape(-1, 16, 16, 3))
    assert roc_auc(late, early) == 1.0
    assert late.mean() > early.mean() + 1.0


def test_kept_params_are_reloaded_and_a_corrupt_file_is_refused(tmp_path, monkeypatch):
    path = str(tmp_path / "progress_net.msgpack")
    videos = _videos(2, 0)
    first = progress_net.load_or_train(path, videos, steps=3)
    assert os.path.exists(path)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the kept params")
    monkeypatch.setattr(progress_net, "train", no_training)
    again = progress_net.load_or_train(path, videos, steps=3)
    frames = videos[0]
    np.testing.assert_array_equal(progress_net.reward(first, {"mean": 0, "std": 1}, frames),
                                  progress_net.reward(again, {"mean": 0, "std": 1}, frames))
    with open(path, "wb") as f:
        f.write(b"not msgpack")
    with pytest.raises(CheckpointError, match="progress_net.msgpack.*delete the file"):
        progress_net.load_or_train(path, videos, steps=3)


def test_bad_goal_videos_and_config_are_refused():
    with pytest.raises(ConfigError, match=r"\[N,T,H,W,3\] uint8"):
        progress_net.video_labels(np.zeros((2, T, 16, 16, 3), np.float32))
    with pytest.raises(ConfigError, match="2 frames or more"):
        progress_net.video_labels(np.zeros((2, 1, 16, 16, 3), np.uint8))
    for field, value in (("progress_net", -1.0), ("progress_net_steps", 0)):
        c = metaworld.get_config("smoke,progress_net")
        c.reward[field] = value
        with pytest.raises(ConfigError, match=f"reward.{field}"):
            config_check.validate(c)


def _agent_config():
    return tiny_agent_config("progress_net+sparse")


def test_agent_pays_the_progress_net_and_a_resumed_run_ends_as_an_uninterrupted_one(tmp_path):
    """50 env steps then raised to 100 end exactly as 100 at once: the resumed run reloads
    the kept net instead of training another."""
    from experiments.benches.pipeline import write_reward_inputs
    from vidrl_jax import stages
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    for d in (whole, split):
        write_reward_inputs(_agent_config(), d)
    stages.run_pipeline(_agent_config(), whole, stages=["agent"])
    half = _agent_config()
    half.agent.total_steps = 50
    stages.run_pipeline(half, split, stages=["agent"])
    assert os.path.exists(os.path.join(split, "agent", "progress_net.msgpack"))
    stages.run_pipeline(_agent_config(), split, stages=["agent"])
    r = results_without_timings(whole)
    assert r == results_without_timings(split)
    assert "progress_net" in r["final_returns"] and "env_sparse" in r["final_returns"]
    assert r["reward_running"]["progress_net"]["std"] > 0


def test_gate_scores_the_progress_net_and_writes_nothing_to_the_run(tmp_path):
    from experiments import gate_reward
    from experiments.benches.pipeline import write_reward_inputs
    from vidrl_jax.stages import StageContext
    c = _agent_config()
    c.env.max_episode_steps = 150  # (the expert succeeds in ~100 steps)
    write_reward_inputs(c, str(tmp_path))
    os.makedirs(tmp_path / "agent")
    ctx = StageContext(str(tmp_path), str(tmp_path / "agent"), None)
    result = gate_reward.gate(c, ctx, seeds=1, pretrain_steps=1)
    r = result["terms"]["progress_net"]
    for k in ("auc_undone", "auc_random", "auc_before"):
        assert 0.0 <= r[k] <= 1.0
    assert r["pass"] == (r["auc_undone"] >= 0.9 and r["auc_random"] >= 0.9)
    assert "progress_net.msgpack" not in os.listdir(tmp_path / "agent")
