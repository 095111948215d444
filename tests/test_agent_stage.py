"""The agent stage end to end on a tiny config: results, resume after a kill, seeds."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import metaworld
from vidrl_jax import stages
from vidrl_jax.train import agent as agent_loop

TIMING_KEYS = ("wall_time_s", "env_steps_per_s")


def tiny_config(variant="sparse", **agent):
    c = metaworld.get_config(f"smoke,{variant}")
    c.env.max_episode_steps = 25
    c.env.num_workers = 1
    c.agent.update(hidden=(32, 32), batch_size=16, updates_per_call=5, replay_capacity=400,
                   prefill_steps=25, total_steps=100, eval_every=50, eval_episodes=1,
                   checkpoint_every=25, log_every=25)
    c.agent.update(agent)
    c.agent.fb.update(z_dim=4, hidden=(16, 16))
    return c


def _results(workdir):
    with open(os.path.join(workdir, "results.json")) as f:
        r = json.load(f)
    return {k: v for k, v in r.items() if k not in TIMING_KEYS}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("full"))
    stages.run_pipeline(tiny_config(), workdir, stages=["agent"])
    return workdir


def test_results_and_plot_are_written(uninterrupted):
    r = _results(uninterrupted)
    assert r["env_steps"] == 100 and r["seeds"] == [0]
    assert r["updates"] == (100 - 25) // 5 * 5
    assert r["success_curve"]["env_steps"] == [0, 50, 100]
    assert 0.0 <= r["final_success_mean"] <= 1.0
    assert set(r["final_returns"]) >= {"env_sparse", "env_dense"}
    assert os.path.getsize(os.path.join(uninterrupted, "success.png")) > 1000
    assert os.path.exists(os.path.join(uninterrupted, "agent", "eval_last.gif"))
    assert os.listdir(os.path.join(uninterrupted, "tb"))


def test_killed_run_resumes_to_the_same_results(uninterrupted, tmp_path, monkeypatch):
    workdir = str(tmp_path)
    original = agent_loop.AgentRun.train_episode
    calls = []

    def dies_after_two_episodes(self, bar):
        if len(calls) == 2:
            raise KeyboardInterrupt  # like a kill: nothing past the last checkpoint is kept
        calls.append(1)
        return original(self, bar)
    monkeypatch.setattr(agent_loop.AgentRun, "train_episode", dies_after_two_episodes)
    with pytest.raises(KeyboardInterrupt):
        stages.run_pipeline(tiny_config(), workdir, stages=["agent"])
    assert not os.path.exists(os.path.join(workdir, "results.json"))
    monkeypatch.setattr(agent_loop.AgentRun, "train_episode", original)
    stages.run_pipeline(tiny_config(), workdir, stages=["agent"])
    assert _results(workdir) == _results(uninterrupted)


def test_serial_env_stepping_trains_as_much_as_the_overlapped_default(uninterrupted, tmp_path):
    """agent.overlap_env: the default (the fixture) steps the envs while the fused step
    runs, its policy one step stale; False is the serial loop. Same env steps, updates and
    eval points; different actions after prefill, so different returns. That the
    overlapped run is reproducible is test_killed_run_resumes_to_the_same_results (two
    overlapped runs, one killed and resumed, give equal results)."""
    config = tiny_config()
    assert config.agent.overlap_env
    config.agent.overlap_env = False
    stages.run_pipeline(config, str(tmp_path), stages=["agent"])
    serial, overlapped = _results(str(tmp_path)), _results(uninterrupted)
    assert overlapped["config"]["agent"]["overlap_env"] is True
    for key in ("env_steps", "updates", "layout"):
        assert serial[key] == overlapped[key]
    assert serial["updates"] == (100 - 25) // 5 * 5
    assert serial["success_curve"]["env_steps"] == overlapped["success_curve"]["env_steps"]
    assert np.isfinite(serial["final_returns"]["env_dense"]).all()
    assert serial["final_returns"] != overlapped["final_returns"]


def test_workdir_of_another_config_is_refused(uninterrupted):
    other = tiny_config()
    other.agent.lr = 1e-3
    with pytest.raises(Exception, match="another config.*--force"):
        stages.run_pipeline(other, uninterrupted, stages=["agent"])


def _fill(learner, n, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        tr = {k: rng.normal(size=(learner.num_seeds * learner.envs_per_seed,) + tuple(s))
              .astype(np.float32) for k, (s, _) in learner.specs.items()}
        learner.add(tr)


def test_vmapped_seeds_equal_separate_single_seed_learners():
    config = tiny_config("dense")
    config.seeds = 2
    stacked = agent_loop.Learner(config, 0, 0, ())
    assert stacked.layout == "seeds"
    _fill(stacked, 30, 0)
    goal = {"video_latent": jnp.zeros((0,)), "frame_feature": jnp.zeros((0,))}
    key = jax.random.PRNGKey(5)
    stacked.train(goal, key)
    for s in range(2):
        config1 = tiny_config("dense")
        config1.seed = s
        single = agent_loop.Learner(config1, 0, 0, ())
        single.layout, single._step = "single", agent_loop.ts.jit_train_step  # even on 2 devices
        single.replay = jax.tree.map(lambda x: x[s], stacked.replay)
        single.state = jax.tree.map(lambda x: x[s], agent_loop.ts.replicate(
            agent_loop.agents.create_agent_state(config1, 39, 4, 0, 0, jax.random.PRNGKey(s)), 1))
        single.train(goal, key)
        for a, b in zip(jax.tree.leaves(single.state),
                        jax.tree.leaves(jax.tree.map(lambda x: x[s], stacked.state))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)


def test_pmap_layout_survives_a_kill(tmp_path, monkeypatch):
    """2 envs on 2 devices: one agent, replay sharded, state replicated; resumes."""
    config = tiny_config("dense")
    config.env.num_workers = 2
    config.agent.total_steps = 100
    original = agent_loop.AgentRun.train_episode
    calls = []

    def dies_once(self, bar):
        if len(calls) == 1:
            calls.append("killed")
            raise KeyboardInterrupt
        calls.append(1)
        return original(self, bar)
    monkeypatch.setattr(agent_loop.AgentRun, "train_episode", dies_once)
    with pytest.raises(KeyboardInterrupt):
        stages.run_pipeline(config, str(tmp_path), stages=["agent"])
    stages.run_pipeline(config, str(tmp_path), stages=["agent"])
    r = _results(str(tmp_path))
    assert r["layout"] == "pmap" and r["env_steps"] == 100
    assert r["updates"] > 0 and np.isfinite(r["final_returns"]["env_dense"]).all()
