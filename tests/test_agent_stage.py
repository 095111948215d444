"""The agent stage end to end on a tiny config: results, resume after a kill (and from a
damaged checkpoint), seeds, NaN stops, SIGTERM."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import psutil
import pytest

from configs import metaworld
from vidrl_jax import stages
from vidrl_jax.errors import NonFiniteError, VidrlError
from vidrl_jax.rewards import terms
from vidrl_jax.train import agent as agent_loop
from vidrl_jax.utils.checkpoint import CheckpointManager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
    assert r["video_models"] == {}  # (a sparse agent reads no video model)
    sparse = r["reward_running"]["env_sparse"]  # what the updates were paid (0 or 1)
    assert 0.0 <= sparse["mean"] <= 1.0 and 0.0 <= sparse["std"] <= 0.5
    assert os.path.getsize(os.path.join(uninterrupted, "success.png")) > 1000
    assert os.path.exists(os.path.join(uninterrupted, "agent", "eval_last.gif"))
    assert os.listdir(os.path.join(uninterrupted, "tb"))
    with open(os.path.join(uninterrupted, "metrics.jsonl")) as f:  # what tensorboard gets
        logged = [json.loads(line) for line in f]
    progress = [r for r in logged if "agent/env_steps_per_s" in r]
    assert progress and all(r["agent/env_steps_per_s"] > 0 for r in progress)
    running = [r for r in progress if "agent/reward_running/env_sparse_mean" in r]
    assert running and all(0.0 <= r["agent/reward_running/env_sparse_mean"] <= 1.0
                           and r["agent/reward_running/env_sparse_std"] >= 0 for r in running)


def _env_workers():
    """Live env worker processes started by this process (forked by multiprocessing's
    forkserver, a child that outlives the vector envs by design)."""
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and \
                    child.ppid() != os.getpid():  # not the forkserver itself
                out.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def test_killed_run_resumes_to_the_same_results_even_from_a_damaged_checkpoint(
        uninterrupted, tmp_path, monkeypatch, caplog):
    """Killed after 3 episodes (checkpoints at 50 and 75 kept), the newest checkpoint then
    truncated: the resumed run warns, falls back to 50 and ends exactly as an
    uninterrupted run; no env worker outlives the interrupted run."""
    workdir = str(tmp_path)
    original = agent_loop.AgentRun.train_episode
    calls = []

    def dies_after_three_episodes(self, bar):
        if len(calls) == 3:
            raise KeyboardInterrupt  # like a kill: nothing past the last checkpoint is kept
        calls.append(1)
        return original(self, bar)
    monkeypatch.setattr(agent_loop.AgentRun, "train_episode", dies_after_three_episodes)
    with pytest.raises(KeyboardInterrupt):
        stages.run_pipeline(tiny_config(), workdir, stages=["agent"])
    assert not os.path.exists(os.path.join(workdir, "results.json"))
    assert _env_workers() == []
    ckpts = os.path.join(workdir, "agent", "checkpoints")
    assert CheckpointManager(ckpts).all_steps() == [50, 75]
    files = [os.path.join(r, n) for r, _, ns in os.walk(os.path.join(ckpts, "75")) for n in ns]
    victim = max(files, key=os.path.getsize)
    with open(victim, "r+b") as f:
        f.truncate(os.path.getsize(victim) // 2)
    monkeypatch.setattr(agent_loop.AgentRun, "train_episode", original)
    with caplog.at_level("INFO"):
        stages.run_pipeline(tiny_config(), workdir, stages=["agent"])
    assert os.path.join(ckpts, "75") in caplog.text and "resumed at env step 50" in caplog.text
    assert _results(workdir) == _results(uninterrupted)


def test_a_finished_run_with_a_raised_budget_goes_on_to_the_results_of_a_longer_run(
        uninterrupted, tmp_path, caplog):
    """A 50-step run, then agent.total_steps raised to 100 in its workdir: it goes on from
    its final checkpoint and ends exactly as the uninterrupted 100-step run. A lowered
    budget is refused, naming the field."""
    workdir = str(tmp_path)
    stages.run_pipeline(tiny_config(total_steps=50), workdir, stages=["agent"])
    assert _results(workdir)["success_curve"]["env_steps"] == [0, 50]
    with pytest.raises(VidrlError, match="agent.total_steps was 50, now 40.*--force"):
        stages.run_pipeline(tiny_config(total_steps=40), workdir, stages=["agent"])
    with caplog.at_level("INFO"):
        stages.run_pipeline(tiny_config(), workdir, stages=["agent"])
    assert "agent.total_steps 50 -> 100 raised" in caplog.text
    assert "resumed at env step 50" in caplog.text
    assert _results(workdir) == _results(uninterrupted)


def test_an_extended_run_evaluates_on_the_eval_every_grid_after_an_off_grid_end(tmp_path):
    """A run that ended between two evaluation points (75, eval_every 50), raised to 150:
    the next evaluations are at the grid's 100 and 150, none skipped."""
    workdir = str(tmp_path)
    stages.run_pipeline(tiny_config(total_steps=75), workdir, stages=["agent"])
    assert _results(workdir)["success_curve"]["env_steps"] == [0, 50, 75]
    stages.run_pipeline(tiny_config(total_steps=150), workdir, stages=["agent"])
    assert _results(workdir)["success_curve"]["env_steps"] == [0, 50, 75, 100, 150]


def test_nan_reward_stops_the_run_naming_term_and_step_and_keeps_the_checkpoint(
        tmp_path, monkeypatch, caplog):
    """NaN env rewards from env step 50 on: NonFiniteError names the term and the update
    step; the checkpoint at 50 is intact and the same command resumes from it."""
    workdir, poison = str(tmp_path), {"on": False}
    transitions, train_episode = agent_loop._transitions, agent_loop.AgentRun.train_episode

    def poisoned(*args):
        tr = transitions(*args)
        if poison["on"]:
            tr["reward"] = np.full_like(tr["reward"], np.nan)
        return tr

    def episode(self, bar):
        poison["on"] = self.counters["env_steps"] >= 50
        return train_episode(self, bar)
    monkeypatch.setattr(agent_loop, "_transitions", poisoned)
    monkeypatch.setattr(agent_loop.AgentRun, "train_episode", episode)
    with pytest.raises(NonFiniteError, match=r"'reward/env_dense' at update step \d+"):
        stages.run_pipeline(tiny_config("dense"), workdir, stages=["agent"])
    assert CheckpointManager(os.path.join(workdir, "agent", "checkpoints")).all_steps() == \
        [25, 50]
    monkeypatch.setattr(agent_loop, "_transitions", transitions)
    monkeypatch.setattr(agent_loop.AgentRun, "train_episode", train_episode)
    with caplog.at_level("INFO"):
        stages.run_pipeline(tiny_config("dense"), workdir, stages=["agent"])
    assert "resumed at env step 50" in caplog.text
    assert _results(workdir)["env_steps"] == 100


def test_sigterm_stops_the_agent_stage_without_leftover_workers_and_the_command_resumes(
        tmp_path):
    cmd = [sys.executable, "-m", "experiments.run", "--config=configs/metaworld.py:smoke,sparse",
           f"--workdir={tmp_path}", "--stages=agent", "--config.env.max_episode_steps=25",
           "--config.env.num_workers=2", "--config.agent.hidden=(32,32)",
           "--config.agent.batch_size=16", "--config.agent.replay_capacity=400",
           "--config.agent.prefill_steps=50", "--config.agent.total_steps=400",
           "--config.agent.eval_every=400", "--config.agent.eval_episodes=2",
           "--config.agent.checkpoint_every=50", "--config.agent.log_every=50"]
    env = dict(os.environ, XLA_FLAGS="--xla_backend_optimization_level=0")  # 1 device
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ckpt = tmp_path / "agent" / "checkpoints" / "50"
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert ckpt.exists() and proc.poll() is None, proc.communicate()[1][-2000:]
    family = psutil.Process(proc.pid).children(recursive=True)
    assert len(family) >= 2  # the forkserver and the env workers
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and not (tmp_path / "results.json").exists(), err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    _, alive = psutil.wait_procs(family, timeout=15)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed at env step" in done.stderr
    assert "env steps/s, ETA" in done.stderr  # the progress line, for logs
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["env_steps"] == 400
    # it ends with the run's summary on stdout, and the same in results.json
    assert f"open tensorboard: tensorboard --logdir {tmp_path}/tb" in done.stdout
    assert "final eval success:" in done.stdout
    assert results["run_summary"]["stages"]["agent"]["skipped"] is False


def test_overlapped_env_stepping_trains_as_much_as_the_serial_default(uninterrupted, tmp_path):
    """agent.overlap_env=True steps the envs while the fused step runs, its policy one step
    stale; the default (the fixture) is the serial loop. Same env steps, updates and eval
    points; different actions after prefill, so different returns. That the overlapped
    loop resumes after a kill is test_pmap_layout_survives_a_kill."""
    config = tiny_config()
    assert not config.agent.overlap_env
    config.agent.overlap_env = True
    stages.run_pipeline(config, str(tmp_path), stages=["agent"])
    overlapped, serial = _results(str(tmp_path)), _results(uninterrupted)
    assert overlapped["config"]["agent"]["overlap_env"] is True
    for key in ("env_steps", "updates", "layout"):
        assert serial[key] == overlapped[key]
    assert overlapped["updates"] == (100 - 25) // 5 * 5
    assert serial["success_curve"]["env_steps"] == overlapped["success_curve"]["env_steps"]
    assert np.isfinite(overlapped["final_returns"]["env_dense"]).all()
    assert serial["final_returns"] != overlapped["final_returns"]


def test_baselines_train_without_rendering_and_learn_exactly_the_same(uninterrupted, tmp_path,
                                                                     monkeypatch):
    """sparse/dense: training episodes step physics only (rendering changes no
    trajectory); forcing the frames on gives the same results, eval gif included."""
    assert not agent_loop.frames_needed(tiny_config("sparse"))
    assert not agent_loop.frames_needed(tiny_config("dense"))
    assert agent_loop.frames_needed(tiny_config("genreward"))
    assert agent_loop.frames_needed(tiny_config("sparse", obs="pixels"))
    monkeypatch.setattr(agent_loop, "frames_needed", lambda config, plan=None: True)
    stages.run_pipeline(tiny_config(), str(tmp_path), stages=["agent"])
    assert _results(str(tmp_path)) == _results(uninterrupted)


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


def test_pmap_layout_compiles_the_step_once_also_after_a_restore(compiles):
    """The pmapped step's first inputs are laid out as its outputs are: in any other
    layout (one device, an identity pmap without its axis name) its second call
    compiles the whole step again."""
    config = tiny_config("dense")
    config.env.num_workers = 2
    learner = agent_loop.Learner(config, 0, 0, terms.resolve(config.reward))
    assert learner.layout == "pmap"
    _fill(learner, 30, 0)
    goal = {"video_latent": jnp.zeros((0,)), "frame_feature": jnp.zeros((0,))}
    key = jax.random.PRNGKey(5)
    first = len(compiles)
    learner.train(goal, key)
    assert len(compiles) > first, "the first call compiles the step"
    for restore in (False, True):
        if restore:  # what a checkpoint restore gives: arrays on one device
            learner.load_tree(jax.device_get(learner.checkpoint_tree()))
        first = len(compiles)
        learner.train(goal, key)
        assert compiles[first:] == [], (restore, compiles[first:])


def test_vmapped_seeds_equal_separate_single_seed_learners():
    config = tiny_config("dense")
    config.seeds = 2
    stacked = agent_loop.Learner(config, 0, 0, terms.resolve(config.reward))
    assert stacked.layout == "seeds"
    _fill(stacked, 30, 0)
    goal = {"video_latent": jnp.zeros((0,)), "frame_feature": jnp.zeros((0,))}
    key = jax.random.PRNGKey(5)
    stacked.train(goal, key)
    for s in range(2):
        config1 = tiny_config("dense")
        config1.seed = s
        single = agent_loop.Learner(config1, 0, 0, terms.resolve(config1.reward))
        single.layout, single._step = "single", agent_loop.ts.jit_train_step  # even on 2 devices
        single.replay = jax.tree.map(lambda x: x[s], stacked.replay)
        single.state = jax.tree.map(lambda x: x[s], agent_loop.ts.replicate(
            agent_loop.agents.create_agent_state(config1, 39, 4, 0, 0, jax.random.PRNGKey(s)), 1))
        single.train(goal, key)
        for a, b in zip(jax.tree.leaves(single.state),
                        jax.tree.leaves(jax.tree.map(lambda x: x[s], stacked.state))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)


def test_pmap_layout_survives_a_kill(tmp_path, monkeypatch):
    """2 envs on 2 devices: one agent, replay sharded, state replicated, envs stepped
    while the fused step runs (agent.overlap_env); resumes."""
    config = tiny_config("dense", overlap_env=True)
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
