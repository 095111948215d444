"""`python -m experiments.bench --what=pipeline` on a tiny config: every record, positive."""
import json

from configs import metaworld
from experiments.benches import agent_profile, pipeline


def tiny_config():
    c = metaworld.get_config("smoke")
    c.env.update(size=16, max_episode_steps=10, num_workers=1)
    c.demos.update(tasks=("door-open-v3",), episodes_per_task=1, episodes_per_shard=1,
                   num_workers=1)
    c.vae.update(channels=(4, 8), latent_channels=2, batch_size=2, clip_length=5)
    c.diffusion.update(channels=(8, 16), heads=1, text_dim=8, batch_size=2, clip_length=5)
    c.goal.sampling_steps = 2
    c.agent.update(hidden=(16, 16), batch_size=8, updates_per_call=2, replay_capacity=200)
    c.agent.fb.update(z_dim=4, hidden=(16, 16))
    c.reward.window = 4
    return c


def test_pipeline_bench_emits_every_stage_beside_its_ceiling():
    """Without the "video" part (compiling the VAE and UNet train steps and both samplers
    takes minutes on a busy 2-core machine; it is experiments/benches/video.py's
    `measure`) and with one agent case (each compiles its own step and encoders)."""
    lines = []
    records = pipeline.run(tiny_config(), steps=10, iters=1, rounds=1,
                           parts=("demos", "agent", "fused"), emit=lines.append,
                           agent_cases=[("genreward", False)])
    assert [json.loads(line) for line in lines] == records
    by_stage = {}
    for r in records:
        by_stage.setdefault(r["stage"], []).append(r)
    assert sorted(by_stage) == ["agent", "demos", "fused_updates", "render_ceiling"]
    ceiling = {r["measured_for"]: r["frames_per_s"] for r in by_stage["render_ceiling"]}
    assert sorted(ceiling) == ["agent", "demos"] and min(ceiling.values()) > 0
    demos = by_stage["demos"][0]
    assert demos["frames_per_s"] > 0 and demos["ceiling_frames_per_s"] == ceiling["demos"]
    [agent] = by_stage["agent"]
    assert (agent["reward"], agent["overlap_env"], agent["utd"]) == ("genreward", False, 1.0)
    assert agent["env_steps_per_s"] > 0 and agent["env_steps"] >= 10
    assert agent["updates_per_s"] == agent["env_steps_per_s"]  # UTD 1
    assert agent["ceiling_frames_per_s"] == ceiling["agent"]
    assert abs(agent["ratio"] - agent["env_steps_per_s"] / ceiling["agent"]) < 0.01
    parts = agent["ms_per_env_step"]  # the breakdown: every part timed, adding up
    assert set(parts) == set(agent_profile.PARTS) | {"total"}
    assert parts["env_step_render"] > 0 and parts["fused_update"] > 0
    assert parts["reward_encoders"] > 0 and parts["policy_act"] > 0
    assert abs(sum(parts[k] for k in agent_profile.PARTS) - parts["total"]) < 0.01
    assert agent["loop_limit_env_steps_per_s"] > 0
    assert abs(agent["loop_efficiency"] - agent["env_steps_per_s"]
               / agent["loop_limit_env_steps_per_s"]) < 0.01
    fused = by_stage["fused_updates"][0]
    assert fused["updates_per_s"] > 0 and fused["ceiling_updates_per_s"] > 0


def test_pipeline_bench_times_vmapped_seeds_beside_separate_runs():
    c = tiny_config()
    c.seeds = 2
    [r] = pipeline.run(c, steps=10, parts=("seeds",), emit=lambda line: None)
    assert (r["stage"], r["seeds"], r["workers"]) == ("seeds", 2, 2)
    assert r["env_steps"] >= 2 * 10  # every seed's steps, timed after the first episode
    assert r["vmapped_env_steps_per_s"] > 0 and r["separate_env_steps_per_s"] > 0
    assert abs(r["ratio"] - r["vmapped_env_steps_per_s"] / r["separate_env_steps_per_s"]) < 0.01
