"""Benchmark: per-stage throughput of the pipeline, each figure beside its ceiling.

    python -m experiments.bench --what=pipeline [--config=configs/metaworld.py:smoke]
        [--config.FIELD=VALUE ...] [--steps=400] [--iters=3] [--rounds=2]
        [--parts=demos,video,agent,fused,seeds]

Prints JSON lines with "bench": "pipeline" and "stage":
  render_ceiling  env step + render frames/s, random actions, N worker processes
                  (experiments/benches/envs.py's Vector; start-up excluded): the env
                  ceiling, one record per stage it is measured for ("measured_for")
  demos           the demos stage itself (scripted experts, shards written) in a temp
                  workdir: frames/s, beside the render ceiling with demos.num_workers
                  workers measured just after it
  autoencoder_train, diffusion_train   train steps/s at the config's sizes, and
  goal_sampling   seconds for one goal-video batch (lax.scan), beside the Python-loop
                  sampler (experiments/benches/video.py's measurements)
  agent           the agent loop (AgentRun.train_episode: env workers, reward encoders,
                  replay, fused step) at UTD 1: env steps/s, beside the render ceiling of
                  the same env.num_workers * seeds worker processes. reward="genreward"
                  (video + frame, both agent.overlap_env settings), reward="learned"
                  (the learned reward: its model's update in the fused step),
                  reward="progress_net" (its frozen CNN scoring each frame on the host) and
                  reward="sparse" (no reward encoders). Episodes of the ceiling and of each case are
                  timed in turn until each has `--steps` env steps, so load from other
                  processes hits all alike. Each agent's first episode (compilation) is
                  not timed; eval and checkpoints are not part of it. Each record has
                  `ms_per_env_step`, the loop's parts timed one by one on that reward
                  setting (experiments/benches/agent_profile.py), the env steps/s those
                  parts allow (`loop_limit_env_steps_per_s`: 1 / (1/ceiling + update +
                  reward encoding per env step); for sparse, which trains without
                  rendering (`renders` false), its measured physics-only env step in
                  place of 1/ceiling) and `loop_efficiency` = measured / that limit. The VAE, goal
                  video and goal frame it reads are random (weights / frames) written
                  into the temp workdir (speed does not depend on the values).
  fused_updates   the fused step (every GenReward term + FB + SAC, agent.batch_size,
                  agent.updates_per_call per call) on random replay rows, beside a
                  jaxrl-style plain SAC update in one lax.scan with the same hidden sizes,
                  batch and K (experiments/benches/train_step.py), timed interleaved.
  seeds           `seeds` (config.seeds, 3 when it is 1) agents in one process, states
                  stacked and the fused step vmapped, one vector env of num_workers * seeds
                  workers (what `--config.seeds=N` runs), beside the same number of
                  single-seed agents run one after another on one vector env of
                  num_workers workers (N separate runs on one machine): reward genreward,
                  UTD 1, episodes timed in turn after each agent's untimed first one;
                  ratio = vmapped env steps/s / separate env steps/s (> 1: vmapping
                  is faster).
Every record has `ratio` = figure / ceiling where a ceiling applies, and the load average.
`--steps` is the budget of env steps (frames) per agent and ceiling measurement;
`--iters` the timed calls per video-model and fused measurement.
"""
import argparse
import copy
import json
import os
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

from experiments.benches import agent_profile  # noqa: E402

PARTS = ("demos", "video", "agent", "fused", "seeds")
AGENT_REPLAY_CAP = 65_536


def _common(config):
    import jax
    return dict(variant=config.variants, platform=jax.devices()[0].platform,
                devices=jax.local_device_count(), cpus=os.cpu_count(),
                load_avg_1m=round(os.getloadavg()[0], 2))


def render_vector(config, num_envs, envs=None):
    """experiments/benches/envs.py's Vector for config.env: `num_envs` worker processes
    stepping + rendering with random actions (`envs`: those vector envs, not new ones)."""
    from experiments.benches.envs import Vector
    e = config.env
    args = argparse.Namespace(task=e.task, camera=e.camera, size=int(e.size),
                              fast_render=bool(e.fast_render), num_envs=int(num_envs),
                              max_episode_steps=int(e.max_episode_steps))
    return Vector(args, envs)


def render_ceiling(config, num_envs, frames):
    """Frames/s of `num_envs` new worker processes stepping + rendering config.env's task."""
    vector = render_vector(config, num_envs)
    try:
        return vector.run(frames)[0]
    finally:
        vector.close()


def measure_demos(config, workdir):
    """The demos stage in `workdir`: its summary (frames_per_s, num_workers, ...)."""
    from vidrl_jax.stages import run_pipeline
    from vidrl_jax.utils.logging import MetricLogger
    logger = MetricLogger(workdir, use_tensorboard=False)
    try:
        return run_pipeline(config, workdir, stages=["demos"], logger=logger)["demos"]
    finally:
        logger.close()


def write_reward_inputs(config, workdir, seed=0):
    """A VAE with random weights (autoencoder/), a random goal video (goal/) and goal
    frame (select/) in `workdir`, marked finished: what the agent's reward encoders read.
    (Weights are drawn from the parameter shapes: flax's eager init of the 3D VAE takes
    tens of seconds on a busy CPU.)"""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from vidrl_jax.models import vae3d
    from vidrl_jax.stages import SUMMARY_FILE
    vae_cfg = vae3d.as_config(config.vae, size=config.env.size)
    rng = np.random.default_rng(seed)
    size, t = int(config.env.size), int(config.diffusion.clip_length)
    frames = rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8)
    sampled = rng.normal(size=(vae_cfg.latent_frames(t), vae_cfg.latent_size,
                               vae_cfg.latent_size, vae_cfg.latent_channels)).astype(np.float32)
    goal = dict(frames=frames, first_frame=frames[0], sampled_latents=sampled)
    outputs = {"autoencoder": None, "goal": ("goal_video.npz", goal),
               "select": ("goal_frame.npz", dict(frame=frames[-1], index=np.int64(t - 1)))}
    for stage, out in outputs.items():
        d = os.path.join(workdir, stage)
        os.makedirs(d, exist_ok=True)
        if out is None:
            shapes = jax.eval_shape(lambda: vae3d.init(vae_cfg, jax.random.PRNGKey(seed)))
            params = jax.tree.map(lambda x: jnp.asarray(
                rng.normal(0.0, 0.05, x.shape).astype(x.dtype)), shapes)
            vae3d.save(d, vae_cfg, params)
        else:
            np.savez(os.path.join(d, out[0]), **out[1])
        with open(os.path.join(d, SUMMARY_FILE), "w") as f:
            json.dump({"synthetic": "experiments/benches/pipeline.py"}, f)


def agent_config(config, reward, overlap):
    """config with the reward variant `reward`, UTD 1, agent.overlap_env=`overlap`."""
    from configs.metaworld import REWARD_VARIANTS
    c = copy.deepcopy(config)
    c.reward.update(REWARD_VARIANTS[reward])
    c.agent.utd = 1.0
    c.agent.overlap_env = bool(overlap)
    # training starts half-way through the first (untimed) episode, which compiles
    per_episode = int(c.env.max_episode_steps) * int(c.env.num_workers)
    c.agent.prefill_steps = min(int(c.agent.prefill_steps), per_episode // 2)
    # several agents are alive at once (interleaved timing); the replay's size does not
    # change the speed of a step (it is sampled uniformly), so cap its memory
    import jax
    cap = AGENT_REPLAY_CAP - AGENT_REPLAY_CAP % jax.local_device_count()
    c.agent.replay_capacity = max(min(int(c.agent.replay_capacity), cap),
                                  int(c.agent.batch_size))
    return c


def start_agent(config, workdir, envs, name):
    """An AgentRun of `config` on `envs` with its first training episode (which compiles)
    done."""
    import jax

    from vidrl_jax.stages import StageContext
    from vidrl_jax.train import agent as agent_loop
    from vidrl_jax.utils.logging import MetricLogger
    logger = MetricLogger(workdir, use_tensorboard=False, use_jsonl=False)
    ctx = StageContext(workdir, os.path.join(workdir, name), logger)
    os.makedirs(ctx.stage_dir, exist_ok=True)
    run = agent_loop.AgentRun(config, ctx, envs)
    run.train_episode(agent_profile.NoBar())
    jax.block_until_ready(run.learner.state)
    return run


def time_episode(run):
    """(env steps of all seeds, updates, seconds) of one more training episode of `run`."""
    import jax
    c, seeds = run.counters, run.learner.num_seeds
    s0, u0, start = c["env_steps"], c["updates"], time.perf_counter()
    run.train_episode(agent_profile.NoBar())
    jax.block_until_ready(run.learner.state)
    return ((c["env_steps"] - s0) * seeds, (c["updates"] - u0) * seeds,
            time.perf_counter() - start)


def measure_seeds(config, workdir, steps):
    """(seeds, [env steps, seconds] of the vmapped run, [env steps, seconds] of the
    separate single-seed runs together), each agent timed until it has `steps` env
    steps per seed (see the module docstring, "seeds")."""
    from vidrl_jax.envs.vector import make_vector_env
    seeds = int(config.seeds) if int(config.seeds) > 1 else 3
    base = agent_config(config, "genreward", bool(config.agent.overlap_env))
    vmapped_cfg, single_cfgs = copy.deepcopy(base), []
    vmapped_cfg.seeds = seeds
    for i in range(seeds):
        c = copy.deepcopy(base)
        c.seeds, c.seed = 1, int(config.seed) + i
        single_cfgs.append(c)
    workers = int(config.env.num_workers)
    with make_vector_env(config.env, num_envs=workers * seeds, seed=int(config.seed)) as big, \
            make_vector_env(config.env, num_envs=workers, seed=int(config.seed)) as small:
        vmapped = start_agent(vmapped_cfg, workdir, big, "seeds_vmapped")
        singles = [start_agent(c, workdir, small, f"seeds_single{i}")
                   for i, c in enumerate(single_cfgs)]
        together, apart = [0, 0.0], [0, 0.0]  # env steps of all seeds, seconds
        while together[0] < steps * seeds or apart[0] < steps * seeds:
            env_steps, _, seconds = time_episode(vmapped)
            together = [together[0] + env_steps, together[1] + seconds]
            for run in singles:
                env_steps, _, seconds = time_episode(run)
                apart = [apart[0] + env_steps, apart[1] + seconds]
    return seeds, together, apart


def measure_fused(config, iters, rounds, rows=10_000):
    """(fused updates/s with every GenReward term, jaxrl-style plain SAC updates/s)."""
    from configs.metaworld import REWARD_VARIANTS
    from experiments.benches import train_step as tsb
    from vidrl_jax.models import vae3d
    c = copy.deepcopy(config)
    c.reward.update(REWARD_VARIANTS["genreward"])
    a = c.agent
    rows = min(rows, int(a.replay_capacity))
    k, batch = int(a.updates_per_call), int(a.batch_size)
    # the agent's replay columns: one frame's VAE features, the goal-length video's latents
    vae_cfg = vae3d.as_config(c.vae, size=c.env.size)
    t, td = int(c.diffusion.clip_length), int(vae_cfg.temporal_downsample)
    dims = (vae3d.embedding_dim(vae_cfg, 1), vae3d.embedding_dim(vae_cfg, 1 + (t - 1) // td * td))
    fused = tsb.make_fused_call(c, rows, dims)[0]
    ref = tsb.make_jaxrl_call(a.hidden, tsb.plain_replay(rows), k, batch)
    t_fused, t_ref = tsb._best_of([(fused, iters), (ref, iters)], rounds)
    return k / t_fused, k / t_ref


def run(config, steps=400, iters=3, rounds=2, parts=PARTS, workdir=None, emit=print,
        agent_cases=None, profile_episodes=1):
    """Runs the measurements of `parts`; returns the records (also passed to `emit`).

    agent_cases: [(reward variant, overlap_env)] of the agent part; default genreward
    with config.agent.overlap_env and with the other setting, then learned, progress_net
    and sparse.
    profile_episodes: episodes per reward setting of the agent's per-part breakdown."""
    import jax

    from configs import metaworld
    from vidrl_jax import config_check
    from vidrl_jax.envs.vector import make_vector_env
    config_check.validate(config, num_devices=jax.local_device_count(),
                          defaults=metaworld.get_config())
    records = []

    def out(stage, **kw):
        rec = dict(bench="pipeline", stage=stage, **kw, **_common(config))
        records.append(rec)
        emit(json.dumps(rec))
        return rec

    own_dir = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="bench_pipeline_")
    try:
        if "demos" in parts:
            s = measure_demos(config, workdir)
            n = int(s["num_workers"])
            top = render_ceiling(config, n, steps)  # just after, with as many workers
            out("render_ceiling", workers=n, frames_per_s=round(top, 2), frames=steps,
                measured_for="demos", size=int(config.env.size), task=config.env.task)
            out("demos", frames_per_s=s["frames_per_s"], ceiling="render_ceiling",
                ceiling_frames_per_s=round(top, 2), ratio=round(s["frames_per_s"] / top, 3),
                workers=n, frames=s["collected_frames"], episodes=s["collected_episodes"],
                seconds=s["wall_time_s"])
        if "video" in parts:
            from experiments.benches import video
            by_what = {}
            for r in video.measure(config, iters):
                what = r.pop("what")
                by_what[what] = r
                for k in ("variant", "devices", "platform", "loadavg"):
                    r.pop(k, None)
                if what.endswith("_train"):
                    out(what, **r)
            scan, loop = by_what["goal_sampling"], by_what["goal_sampling_loop"]
            out("goal_sampling", seconds=scan["seconds"], ceiling="python_loop_sampler",
                ceiling_seconds=loop["seconds"], ratio=round(loop["seconds"] / scan["seconds"], 3),
                videos=scan["videos"], sampling_steps=scan["sampling_steps"],
                guidance_scale=scan["guidance_scale"])
        if {"agent", "seeds"} & set(parts):
            write_reward_inputs(config, workdir)
        if "agent" in parts:
            n = int(config.env.num_workers) * int(config.seeds)
            default_overlap = bool(config.agent.overlap_env)
            cases = agent_cases or [("genreward", default_overlap),
                                    ("genreward", not default_overlap),
                                    ("learned", default_overlap),
                                    ("progress_net", default_overlap),
                                    ("sparse", default_overlap)]
            with make_vector_env(config.env, num_envs=n, seed=int(config.seed)) as envs:
                runs = [start_agent(agent_config(config, reward, overlap), workdir, envs,
                                    f"agent{i}") for i, (reward, overlap) in enumerate(cases)]
                render = render_vector(config, n, envs)  # the same worker processes
                per_episode = int(config.env.max_episode_steps) * n
                done = [[0, 0, 0.0] for _ in cases]      # env steps, updates, seconds
                ceil = [0, 0.0]                          # frames, seconds
                # interleaved: an episode of the ceiling, then one of each case, ...
                # (load from other processes hits all alike)
                while min(d[0] for d in done) < steps:
                    fps = render.run(per_episode)[0]
                    ceil[0] += per_episode
                    ceil[1] += per_episode / fps
                    for d, r in zip(done, runs):
                        if d[0] < steps:
                            d[:] = [a + b for a, b in zip(d, time_episode(r))]
                # where the time goes: each reward setting's loop, parts timed serially
                profiles = {}
                for (reward, _), r in zip(cases, runs):
                    if reward not in profiles:
                        profiles[reward] = agent_profile.profile_episodes(r, profile_episodes)
            top = ceil[0] / ceil[1]
            out("render_ceiling", workers=n, frames_per_s=round(top, 2), frames=ceil[0],
                measured_for="agent", size=int(config.env.size), task=config.env.task)
            for (reward, overlap), (env_steps, updates, seconds), r in zip(cases, done, runs):
                limit = agent_profile.loop_limit(top, profiles[reward], r.render_train)
                out("agent", reward=reward, overlap_env=overlap, renders=r.render_train,
                    env_steps_per_s=round(env_steps / seconds, 2),
                    updates_per_s=round(updates / seconds, 2), ceiling="render_ceiling",
                    ceiling_frames_per_s=round(top, 2),
                    ratio=round(env_steps / seconds / top, 3),
                    ms_per_env_step=profiles[reward],
                    loop_limit_env_steps_per_s=round(limit, 2),
                    loop_efficiency=round(env_steps / seconds / limit, 3),
                    workers=n, utd=1.0,
                    updates_per_call=int(config.agent.updates_per_call),
                    batch=int(config.agent.batch_size), env_steps=env_steps,
                    seconds=round(seconds, 2), layout=runs[0].learner.layout)
        if "fused" in parts:
            fused, ref = measure_fused(config, iters, rounds)
            out("fused_updates", updates_per_s=round(fused, 2), ceiling="jaxrl_style_sac_scan",
                ceiling_updates_per_s=round(ref, 2), ratio=round(fused / ref, 3),
                k=int(config.agent.updates_per_call), batch=int(config.agent.batch_size),
                hidden=list(config.agent.hidden), reward="genreward")
        if "seeds" in parts:
            seeds, together, apart = measure_seeds(config, workdir, steps)
            vmapped, separate = together[0] / together[1], apart[0] / apart[1]
            out("seeds", seeds=seeds, reward="genreward", utd=1.0,
                vmapped_env_steps_per_s=round(vmapped, 2),
                ceiling="separate_single_seed_runs",
                separate_env_steps_per_s=round(separate, 2),
                ratio=round(vmapped / separate, 3), env_steps=together[0],
                seconds=round(together[1], 2), separate_seconds=round(apart[1], 2),
                workers=int(config.env.num_workers) * seeds)
    finally:
        if own_dir:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
    return records


def main(argv=None):
    import sys

    from absl import flags
    from ml_collections import config_flags

    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", "configs/metaworld.py:smoke",
                                    "Config file with :VARIANTS (sizes of every stage).",
                                    flag_values=fv)
    flags.DEFINE_integer("steps", 400, "Env steps (frames) per agent / ceiling measurement.",
                         flag_values=fv)
    flags.DEFINE_integer("iters", 3, "Timed calls per video-model and fused measurement.",
                         flag_values=fv)
    flags.DEFINE_integer("rounds", 2, "Interleaved rounds of fused vs jaxrl (best counts).",
                         flag_values=fv)
    flags.DEFINE_list("parts", list(PARTS), f"Subset of {','.join(PARTS)}.", flag_values=fv)
    flags.DEFINE_string("workdir", None, "Keep the demos/agent scratch here (default: a "
                        "temp dir, removed; demos already there are not collected again).",
                        flag_values=fv)
    from vidrl_jax.errors import VidrlError
    try:
        fv([sys.argv[0]] + list(sys.argv[1:] if argv is None else argv))
        unknown = sorted(set(fv.parts) - set(PARTS))
        if unknown:
            raise flags.Error(f"--parts: unknown {unknown}; choose from {','.join(PARTS)}")
        run(fv.config, steps=fv.steps, iters=fv.iters, rounds=fv.rounds,
            parts=tuple(fv.parts), workdir=fv.workdir,
            emit=lambda line: print(line, flush=True))
    except (VidrlError, flags.Error) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
