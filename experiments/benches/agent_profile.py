"""Where one agent env step spends its time: the loop's parts timed one by one.

    parts = profile_episodes(run, episodes=2)   # run: a started AgentRun (compiled)

Runs `episodes` training episodes of `run` serially (agent.overlap_env off for the
profile only) with every part wrapped in a timer that waits for its device work,
so the parts do not overlap and their times add up to the episode's:

  env_step_render   workers step the physics and render the frames (host wait)
  policy_act        obs host->device, actor forward, actions device->host
  reward_encoders   phi of the new frames (FB's input: the VAE encoder on one frame) and,
                    every reward.video_stride steps, the VAE encoder on the agent's videos
                    (RewardEncoders.encode)
  replay_add        transitions host->device and the scatter into the device replay
  fused_update      the fused train calls (K updates each) of the step
  nan_check         metrics device->host, checked for NaN/inf once per episode
  host_other        the rest: Python bookkeeping of the loop (frames, windows, dicts)

Returns {part: ms per env step} (per single env: a vector step of N envs counts N
env steps) plus "total".
"""
import collections
import time

PARTS = ("env_step_render", "policy_act", "reward_encoders", "replay_add",
         "fused_update", "nan_check", "host_other")


class NoBar:
    """What AgentRun.train_episode needs of a progress bar."""

    def update(self, n):
        pass


def _timed(totals, name, fn, wait=None):
    """fn timed into totals[name], waiting for its outputs (or for `wait()`)."""
    import jax

    def call(*args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        jax.block_until_ready(out if wait is None else wait())
        totals[name] += time.perf_counter() - t
        return out
    return call


def profile_episodes(run, episodes=2):
    import jax
    totals = collections.defaultdict(float)
    lr, enc = run.learner, run.encoders
    saved = dict(overlap=run.overlap, step=run.envs.step, act=lr.act, add=lr.add,
                 train=lr.train, encode=enc.encode, check=run.check_metrics)
    run.overlap = False
    run.envs.step = _timed(totals, "env_step_render", saved["step"])
    lr.act = _timed(totals, "policy_act", saved["act"])
    lr.add = _timed(totals, "replay_add", saved["add"], wait=lambda: lr.replay)
    lr.train = _timed(totals, "fused_update", saved["train"], wait=lambda: lr.state)
    enc.encode = _timed(totals, "reward_encoders", saved["encode"])
    run.check_metrics = _timed(totals, "nan_check", saved["check"])
    steps0 = run.counters["env_steps"]
    try:
        start = time.perf_counter()
        for _ in range(episodes):
            run.train_episode(NoBar())
        jax.block_until_ready(lr.state)
        total = time.perf_counter() - start
    finally:
        run.overlap, run.envs.step = saved["overlap"], saved["step"]
        lr.act, lr.add, lr.train = saved["act"], saved["add"], saved["train"]
        enc.encode, run.check_metrics = saved["encode"], saved["check"]
    env_steps = (run.counters["env_steps"] - steps0) * lr.num_seeds
    totals["host_other"] = total - sum(totals.values())
    out = {k: round(1000 * totals[k] / env_steps, 3) for k in PARTS}
    out["total"] = round(1000 * total / env_steps, 3)
    return out


def loop_limit(ceiling_frames_per_s, parts_ms, renders=True):
    """Env steps/s the loop could reach with these parts on a shared CPU:
    1 / (env step + update time per env step + reward encoding per env step)
    (the updates happen at the run's UTD, so fused_update already holds it). The env
    step is 1/ceiling for a loop that renders, and its measured physics-only step
    (parts_ms["env_step_render"]) for one that does not (the sparse/dense baselines)."""
    env = 1.0 / ceiling_frames_per_s if renders else parts_ms["env_step_render"] / 1000.0
    return 1.0 / (env + (parts_ms["fused_update"] + parts_ms["reward_encoders"]) / 1000.0)
