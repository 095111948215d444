"""Stage `demos`: expert demonstration videos of Meta-World tasks, as shards.

Collects `demos.episodes_per_task` episodes of the scripted expert for every
task in `demos.tasks` and the target task `env.task`, rendered as the env
config says (camera, size, action repeat, episode length), in
`demos.num_workers` processes. Output in the stage directory: one shard per
(task, chunk of `demos.episodes_per_shard` episodes), named `<task>-<chunk>`,
and `manifest.json` (read with `vidrl_jax.data.shards`).

Resumable: a shard is written atomically by the worker that collected it, so
after a kill the complete shards stay and only the missing ones are collected
again (a shard counts only if it was made by the same job: task, episode seeds
and env settings). The manifest is written last.

Episode seeds are a pure function of (demos.seed, task, episode index).
"""
import logging
import multiprocessing
import signal
import time
import zlib

import numpy as np

from vidrl_jax.data import shards
from vidrl_jax.envs.tasks import check_task

def depends(config):
    """Task-free unless env.task adds a task to demos.tasks."""
    from vidrl_jax.stages import TASK_FREE_ENV
    extra = ("env.task",) if config.env.task not in config.demos.tasks else ()
    return TASK_FREE_ENV + ("demos",) + extra


def episode_seed(base_seed, task, index):
    """The env seed of episode `index` of `task` (stable across runs and machines)."""
    state = np.random.SeedSequence([int(base_seed), zlib.crc32(task.encode()), int(index)])
    return int(state.generate_state(1)[0] & 0x7FFFFFFF)


def demo_tasks(config):
    """Sorted, de-duplicated demo tasks: demos.tasks plus the target env.task."""
    tasks = {check_task(t, "demos.tasks") for t in config.demos.tasks}
    tasks.add(check_task(config.env.task))
    return sorted(tasks)


def make_jobs(config):
    """One job per shard: dict(name, task, seeds, env, steps_after_success)."""
    env = dict(size=config.env.size, camera=config.env.camera,
               fast_render=config.env.fast_render, action_repeat=config.env.action_repeat,
               max_episode_steps=config.env.max_episode_steps)
    per_task, per_shard = config.demos.episodes_per_task, config.demos.episodes_per_shard
    jobs = []
    for task in demo_tasks(config):
        seeds = [episode_seed(config.demos.seed, task, i) for i in range(per_task)]
        for chunk, start in enumerate(range(0, per_task, per_shard)):
            jobs.append(dict(name=f"{task}-{chunk:04d}", task=task,
                             seeds=seeds[start:start + per_shard], env=env,
                             steps_after_success=config.demos.steps_after_success))
    return jobs


# -- worker side ----------------------------------------------------------------
_ENVS = {}


def _close_envs():
    while _ENVS:
        env, _ = _ENVS.popitem()[1]
        env.close()


def _init_worker():
    from vidrl_jax.envs.vector import _die_with_parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    _die_with_parent()


def run_job(job, directory):
    """Collects one shard's episodes and writes the shard; returns stats."""
    from vidrl_jax.envs.experts import collect_episode, expert_policy
    from vidrl_jax.envs.metaworld_env import MetaWorldEnv

    start = time.time()
    task = job["task"]
    if task not in _ENVS:
        _ENVS[task] = (MetaWorldEnv(task, **job["env"]), expert_policy(task))
    env, policy = _ENVS[task]
    episodes = [collect_episode(env, policy, seed, job["steps_after_success"])
                for seed in job["seeds"]]
    shards.write_shard(directory, job["name"], episodes, extra=dict(job=job))
    return dict(name=job["name"], task=task,
                frames=sum(len(ep["frames"]) for ep in episodes),
                successes=[bool(ep["success"].any()) for ep in episodes],
                seconds=time.time() - start, sample=episodes[0]["frames"])


def _is_done(directory, job):
    info = shards.shard_info(directory, job["name"])
    return info is not None and info.get("extra", {}).get("job") == job


# -- stage -------------------------------------------------------------------------
def run(config, ctx):
    """Collects the demos into ctx.stage_dir; returns a summary (frames_per_s, episodes, ...)."""
    from vidrl_jax.utils.progress import progress

    directory = ctx.stage_dir
    shards.clean_partial(directory)
    jobs = make_jobs(config)
    todo = [j for j in jobs if not _is_done(directory, j)]
    resumed = len(jobs) - len(todo)
    num_workers = max(1, min(config.demos.num_workers, len(todo)))

    results, start = [], time.time()
    bar = progress(total=len(todo), desc="demos")
    if todo and num_workers == 1:
        try:
            for job in todo:
                results.append(run_job(job, directory))
                bar.update(1)
        finally:
            _close_envs()
    elif todo:
        mp = multiprocessing.get_context("forkserver")
        mp.set_forkserver_preload(["vidrl_jax.envs.metaworld_env"])
        pool = mp.Pool(num_workers, initializer=_init_worker)
        try:
            for res in pool.imap_unordered(_RunJob(directory), todo):
                results.append(res)
                bar.update(1)
            pool.close()
        except BaseException:
            pool.terminate()  # Ctrl-C or a failed job: stop the workers now
            raise
        finally:
            pool.join()
    bar.close()
    seconds = time.time() - start

    manifest = shards.write_manifest(directory, [j["name"] for j in jobs],
                                     extra=dict(seed=config.demos.seed))
    frames = sum(r["frames"] for r in results)
    fps = frames / seconds if results else 0.0

    per_task = {}
    for shard in manifest["shards"]:
        for ep in shard["episodes"]:
            per_task.setdefault(ep["task"], []).append(ep["success"])
    success = {t: float(np.mean(v)) for t, v in sorted(per_task.items())}
    ctx.logger.scalars(0, {"frames_per_s": fps, "success_rate": float(np.mean(
        [s for v in per_task.values() for s in v]))}, prefix="demos/")
    ctx.logger.scalars(0, {f"success/{t}": v for t, v in success.items()}, prefix="demos/")
    for r in results:
        if r["name"].endswith("-0000"):
            ctx.logger.video(f"demos/{r['task']}", 0, r["sample"])
    logging.info("demos: %d frames in %.1f s (%.1f frames/s, %d workers); success %s",
                 frames, seconds, fps, num_workers, success)
    return dict(
        frames_per_s=round(fps, 2),
        frames_per_s_per_worker=round(frames / max(sum(r["seconds"] for r in results), 1e-9), 2),
        collected_frames=frames,
        collected_episodes=sum(len(r["successes"]) for r in results),
        resumed_shards=resumed,
        num_workers=num_workers,
        episodes=manifest["num_episodes"],
        frames=manifest["num_frames"],
        tasks=manifest["tasks"],
        success_rate=round(float(np.mean([s for v in per_task.values() for s in v])), 4),
        success_per_task=success,
    )


class _RunJob:
    """Picklable `job -> run_job(job, directory)` for the worker pool."""

    def __init__(self, directory):
        self.directory = directory

    def __call__(self, job):
        return run_job(job, self.directory)
