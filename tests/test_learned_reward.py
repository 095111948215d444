"""The learned reward (rewards/learned.py): it learns the goal video's late frames over the
agent's, a pose the agent keeps visiting without the task done stops being paid, its
domain head's gradient reaches the features reversed, and its config errors are clear; the reward gate
(experiments/gate_reward.py) scores it; the goal-video judge (rewards/judge.py) tells
done frames from not-done ones."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import metaworld
from vidrl_jax.errors import ConfigError
from vidrl_jax.rewards import learned
from vidrl_jax.rewards.quality import roc_auc

P, T, N = 8, 9, 4
HIDDEN = (32, 32)


def _goal():
    """Goal videos in a toy Δφ space: feature 0 is the arm (moves with progress), feature
    1 the object (changes with progress), feature 7 a cue every generated frame carries
    (the generated->real gap), plus noise."""
    rng = np.random.default_rng(0)
    p = np.tile(np.linspace(0.0, 1.0, T), N)
    x = rng.normal(0, 0.05, (N * T, P))
    x[:, 0] += p
    x[:, 1] += p
    x[:, 7] += 1.0
    x = jnp.asarray(x, jnp.float32)
    return {"gen_dphi": x, "gen_progress": jnp.asarray(p, jnp.float32),
            "dphi_mean": jnp.mean(x, 0), "dphi_scale": jnp.std(x, 0) + 1e-3}


def _frames(rng, n, arm, obj):
    x = rng.normal(0, 0.05, (n, P))
    x[:, 0] += arm
    x[:, 1] += obj
    return jnp.asarray(x, jnp.float32)


def _train(params, opt, goal, agent, steps, domain_weight=1.0, lr=3e-3):
    step = jax.jit(lambda p, o, x, k: learned.update(HIDDEN, lr, domain_weight, p, o, x,
                                                      goal, k))
    key = jax.random.PRNGKey(1)
    rng = np.random.default_rng(1)
    losses = []
    for _ in range(steps):
        key, k = jax.random.split(key)
        params, opt, m = step(params, opt, agent[rng.integers(0, len(agent), 64)], k)
        losses.append(float(m["learned/loss_agent"] + m["learned/loss_goal"]))
    return params, opt, losses


def test_learns_the_goal_video_and_stops_paying_a_pose_the_agent_holds():
    goal = _goal()
    rng = np.random.default_rng(2)
    random = _frames(rng, 256, rng.uniform(-0.5, 0.3, 256), 0.0)     # the replay before RL
    done, undone = _frames(rng, 32, 1.0, 1.0), _frames(rng, 32, 1.0, 0.0)
    params = learned.init(HIDDEN, P, jax.random.PRNGKey(0))
    opt = learned.optimizer(3e-3).init(params)
    params, opt, losses = _train(params, opt, goal, random, 300)
    assert np.mean(losses[-30:]) < 0.8 * np.mean(losses[:30])
    r = lambda x: np.asarray(learned.reward(HIDDEN, params, x, goal))
    assert roc_auc(r(done), r(random)) > 0.95
    # the agent finds the goal pose without the task done and holds it: as those frames
    # fill the replay (negatives), the pose alone stops being paid, the object still is
    lead = lambda: float(np.mean(r(done)) - np.mean(r(undone)))
    before = lead()
    params, opt, _ = _train(params, opt, goal, jnp.concatenate([random, undone]), 300)
    assert lead() > before + 1.0 and roc_auc(r(done), r(undone)) > 0.9
    assert roc_auc(r(done), r(random)) > 0.9


def test_a_silent_domain_head_is_reported():
    """The update reports the share of the domain head's units that fire: all of them
    at init, none once every unit's input is pushed below zero (the head gone silent)."""
    goal = _goal()
    params = learned.init(HIDDEN, P, jax.random.PRNGKey(0))
    opt = learned.optimizer(3e-3).init(params)
    agent = _frames(np.random.default_rng(3), 64, 0.0, 0.0)
    step = lambda p: learned.update(HIDDEN, 3e-3, 1.0, p, opt, agent, goal,
                                    jax.random.PRNGKey(1))[2]["learned/domain_units_firing"]
    assert float(step(params)) > 0.9
    head = f"Dense_{len(HIDDEN) + 1}"  # the domain head's hidden layer
    assert params[head]["kernel"].shape == (HIDDEN[-1], 64)
    silent = dict(params, **{head: dict(params[head], bias=jnp.full((64,), -1e6))})
    assert float(step(silent)) == 0.0


def test_reversed_gradient_is_identity_forward_and_negated_backward():
    x = jnp.arange(3.0)
    np.testing.assert_array_equal(learned.reverse_gradient(x), x)
    g = jax.grad(lambda v: jnp.sum(2.0 * learned.reverse_gradient(v)))(x)
    np.testing.assert_array_equal(g, -2.0 * jnp.ones(3))


def test_learned_reward_config_errors():
    from vidrl_jax.agents.state import agent_def_from_config
    from vidrl_jax.rewards import terms
    c = metaworld.get_config("smoke,learned")
    plan = terms.resolve(c.reward)
    assert plan.terms == (("learned", 1.0),) and plan.reads_start and plan.reads_frames
    assert not plan.reads_window
    with pytest.raises(ConfigError, match="reward.learned > 0 needs frame features"):
        agent_def_from_config(c, 39, 4, 0, 0)
    defn = agent_def_from_config(c, 39, 4, 16, 0)
    assert defn.use_learned and not defn.use_fb
    from vidrl_jax import config_check
    c.reward.learned_lr = -1.0
    with pytest.raises(ConfigError, match="reward.learned_lr"):
        config_check.validate(c)


def test_gate_scores_the_learned_term_before_rl(tmp_path, monkeypatch):
    """The gate on a tiny workdir: the learned term's model is trained before RL on the
    goal videos against random frames, and scored on real counterfactual frames; the
    goal carries the learned term's inputs and each episode's first-frame φ is kept."""
    from experiments import gate_reward
    from experiments.benches.pipeline import write_reward_inputs
    from vidrl_jax.stages import StageContext
    from vidrl_jax.train.reward_inputs import RewardEncoders

    monkeypatch.setattr(gate_reward, "PREFILL_EPISODES", 1)
    config = metaworld.get_config("smoke,learned")
    config.env.size = 16
    config.env.max_episode_steps = 150  # (the expert succeeds in ~100 steps)
    config.vae.update(channels=(4, 8), latent_channels=2)
    config.reward.learned_hidden = (16,)
    write_reward_inputs(config, str(tmp_path))
    ctx = StageContext(str(tmp_path), str(tmp_path / "agent"), None)
    enc = RewardEncoders(config, ctx)
    assert enc.goal["gen_dphi"].shape == (len(enc.goal_frames), enc.feature_dim)
    np.testing.assert_allclose(enc.goal["gen_dphi"][0], 0.0, atol=1e-6)  # frame 0 - itself
    frames = enc.goal_frames[:3]
    enc.start_episode(frames)
    np.testing.assert_allclose(enc.start_phi, enc.phi(frames), atol=1e-6)
    result = gate_reward.gate(config, ctx, seeds=2, pretrain_steps=3)
    r = result["terms"]["learned"]
    assert result["source"].startswith("before RL") and result["episodes"] >= 1
    for k in ("auc_undone", "auc_random", "auc_before"):
        assert 0.0 <= r[k] <= 1.0
    assert r["pass"] == (r["auc_undone"] >= 0.9 and r["auc_random"] >= 0.9)
    assert "| learned |" in gate_reward.format_gate(result)

    # a run of 2 seeds: each seed's model pays every frame (two identical models score
    # alike), the top line is their mean, and it passes only when both seeds do
    pretrain = gate_reward.pretrain_learned

    def pretrain_one_model_for_both_seeds(learner, *args):
        pretrain(learner, *args)
        m = jax.tree.map(lambda x: jnp.stack([x[0], x[0]]), learner.state.reward_model)
        learner.state = learner.state.replace(reward_model=m)

    monkeypatch.setattr(gate_reward, "pretrain_learned", pretrain_one_model_for_both_seeds)
    config.seeds = 2
    r2 = gate_reward.gate(config, ctx, seeds=2, pretrain_steps=3)["terms"]["learned"]
    assert len(r2["seeds"]) == 2
    for k in ("auc_undone", "auc_random", "auc_before"):
        assert r2["seeds"][0][k] == pytest.approx(r2["seeds"][1][k], abs=1e-6)
    assert r2["seeds"][0]["mean"] == pytest.approx(r2["seeds"][1]["mean"], rel=1e-5)
    assert r2["auc_undone"] == pytest.approx(r2["seeds"][0]["auc_undone"])
    assert r2["pass"] == r2["seeds"][0]["pass"]


def test_judge_tells_done_frames_from_not_done():
    from vidrl_jax.rewards.judge import judge_scores, train_judge
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (64, 16, 16, 3)).astype(np.uint8)
    labels = (np.arange(64) % 2).astype(np.float32)
    frames[labels > 0, 4:12, 4:12] = 255  # "done": a bright object in place
    params = train_judge(frames, labels, steps=60, batch=32)
    s = judge_scores(params, frames)
    assert s[labels > 0].min() > 0.5 > s[labels == 0].max()


def tiny_agent_config(variant="learned"):
    """A tiny agent with a reward variant's terms (the learned model's and the progress
    net's sizes cut down); tests/test_progress_net.py builds on it too."""
    c = metaworld.get_config(f"smoke,{variant}")
    c.env.update(size=16, max_episode_steps=25, num_workers=1)
    c.vae.update(channels=(4, 8), latent_channels=2)
    c.reward.learned_hidden = (16,)
    c.reward.progress_net_steps = 5
    c.agent.update(hidden=(32, 32), batch_size=16, updates_per_call=5, replay_capacity=400,
                   prefill_steps=25, total_steps=100, eval_every=50, eval_episodes=1,
                   checkpoint_every=25, log_every=25)
    return c


def results_without_timings(workdir):
    import json
    import os
    with open(os.path.join(workdir, "results.json")) as f:
        r = json.load(f)
    return {k: v for k, v in r.items() if k not in ("wall_time_s", "env_steps_per_s",
                                                      "run_summary")}


def test_learned_agent_trains_checkpoints_and_a_resumed_run_ends_as_an_uninterrupted_one(
        tmp_path):
    """The agent stage with the learned term alone: its model is in the checkpoint, the
    term is paid and logged, and 50 steps then raised to 100 end exactly as 100 at once."""
    from experiments.benches.pipeline import write_reward_inputs
    from vidrl_jax import stages
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    for d in (whole, split):
        write_reward_inputs(tiny_agent_config(), d)
    stages.run_pipeline(tiny_agent_config(), whole, stages=["agent"])
    half = tiny_agent_config()
    half.agent.total_steps = 50
    stages.run_pipeline(half, split, stages=["agent"])
    stages.run_pipeline(tiny_agent_config(), split, stages=["agent"])
    r = results_without_timings(whole)
    assert r == results_without_timings(split)
    assert "learned" in r["final_returns"] and "learned" in r["reward_running"]
    assert r["reward_running"]["learned"]["std"] > 0


def test_goal_stage_judge_reports_how_many_videos_show_the_task_done():
    from vidrl_jax.stages.goal import run_judge
    c = metaworld.get_config("smoke")
    c.env.size = 16
    c.env.max_episode_steps = 150
    c.judge.update(episodes=1, steps=5)
    videos = np.random.default_rng(0).integers(0, 256, (3, 5, 16, 16, 3), dtype=np.uint8)
    out = run_judge(c, videos)
    assert out["judge_num_videos"] == 3 and 0 <= out["judge_done_videos"] <= 3
    assert len(out["judge_last_scores"]) == 3
    assert all(0.0 <= s <= 1.0 for s in out["judge_last_scores"])
    assert 0.0 <= out["judge_heldout_auc_undone"] <= 1.0
