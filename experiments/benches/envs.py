"""Benchmark: rendering env frames/s, serial (one process) vs vectorised (worker processes).

    python -m experiments.bench --what=envs [--num_envs=2] [--steps=100] [--rounds=5] [--size=32]
        [--task=door-open-v3] [--camera=corner2] [--no_fast_render]

Prints one JSON line per measurement ("bench": "envs") and a final line with
`ratio` = vector frames/s / serial frames/s, both measured in this run with the
same task, camera, size and random actions (a frame rendered every step).
Vector-env start-up (process spawn) is excluded; resets inside the loop are included.
Serial and vector rounds alternate (`--rounds`) and the ratio is of the medians,
so load from other processes on a shared machine hits both alike; the load
average is printed with each line, and CPU ms per frame (all processes) for each
mode. Note: Linux autogroup scheduling gives each terminal session one share of
a busy machine however many processes it runs, so the ratio only shows the
parallel speed-up when cores are free (compare load_avg_1m with cpus).
"""
import argparse
import json
import os
import statistics
import time

os.environ.setdefault("MUJOCO_GL", "egl")


def _emit(**kw):
    print(json.dumps(dict(bench="envs", **kw)), flush=True)


def _env_config(args):
    import ml_collections
    return ml_collections.ConfigDict(dict(
        task=args.task, camera=args.camera, size=args.size, fast_render=args.fast_render,
        action_repeat=1, max_episode_steps=args.max_episode_steps))


def _process_cpu_seconds(pid):
    """User + system CPU seconds of process `pid` (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Serial:
    """One env stepped (and rendered) in this process."""

    def __init__(self, args, render=True):
        import numpy as np

        from vidrl_jax.envs.metaworld_env import make_env_from_config
        self.env = make_env_from_config(_env_config(args), seed=0, render=render)
        self.rng = np.random.default_rng(0)
        self.env.reset(seed=0)
        self.run(5)  # warm-up: GL context creation

    def run(self, steps):
        """Steps `steps` times; returns (frames/s, CPU seconds of this process per frame)."""
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            _, _, term, trunc, _ = self.env.step(self.rng.uniform(-1, 1, 4))
            if term or trunc:
                self.env.reset()
        return steps / (time.perf_counter() - start), (time.process_time() - cpu) / steps

    def close(self):
        self.env.close()


class Vector:
    """`num_envs` envs in worker processes, stepped together (`envs`: use these vector
    envs of as many workers instead of starting new ones)."""

    def __init__(self, args, envs=None):
        import numpy as np

        from vidrl_jax.envs.vector import make_vector_env
        self.n = args.num_envs
        self.rng = np.random.default_rng(0)
        self.envs = envs or make_vector_env(_env_config(args), self.n, seed=0)
        self.envs.reset(seed=0)
        self.run(5 * self.n)

    def _cpu(self):
        return sum(_process_cpu_seconds(p.pid) for p in self.envs.processes)

    def run(self, frames):
        """Steps all envs until `frames` frames are rendered.

        Returns (frames/s over all envs, CPU seconds per frame: workers + this process).
        """
        steps = max(1, frames // self.n)
        # (shared vector envs: an agent's training episodes may have turned rendering off)
        self.envs.set_attr("render_frames", True)
        start, cpu, own = time.perf_counter(), self._cpu(), time.process_time()
        for _ in range(steps):
            self.envs.step(self.rng.uniform(-1, 1, (self.n, 4)))  # autoreset on truncation
        seconds = time.perf_counter() - start
        cpu = self._cpu() - cpu + time.process_time() - own
        return steps * self.n / seconds, cpu / (steps * self.n)

    def close(self):
        self.envs.close()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="door-open-v3")
    p.add_argument("--camera", default="corner2")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--num_envs", type=int, default=2)
    p.add_argument("--steps", type=int, default=100, help="frames per measurement")
    p.add_argument("--rounds", type=int, default=5, help="interleaved serial/vector rounds")
    p.add_argument("--max_episode_steps", type=int, default=200)
    p.add_argument("--no_fast_render", dest="fast_render", action="store_false")
    p.add_argument("--physics", action="store_true", help="also time stepping without rendering")
    args = p.parse_args(argv)
    common = dict(task=args.task, camera=args.camera, size=args.size,
                  fast_render=args.fast_render, cpus=os.cpu_count())
    if args.physics:
        physics = Serial(args, render=False)
        _emit(mode="serial_physics_only", steps_per_s=round(physics.run(args.steps)[0], 1),
              **common)
        physics.close()
    serial, vector = Serial(args), Vector(args)
    fps_s, fps_v, cpu_s, cpu_v = [], [], [], []
    try:
        # Interleaved rounds: load from other processes hits both modes alike.
        for r in range(args.rounds):
            fps, cpu_per_frame = serial.run(args.steps)
            fps_s.append(fps)
            cpu_s.append(cpu_per_frame)
            _emit(mode="serial", round=r, num_envs=1, frames_per_s=round(fps, 1),
                  cpu_ms_per_frame=round(1000 * cpu_per_frame, 2),
                  load_avg_1m=round(os.getloadavg()[0], 2), **common)
            fps, cpu_per_frame = vector.run(args.steps)
            fps_v.append(fps)
            cpu_v.append(cpu_per_frame)
            _emit(mode="vector", round=r, num_envs=args.num_envs, frames_per_s=round(fps, 1),
                  cpu_ms_per_frame=round(1000 * cpu_per_frame, 2),
                  load_avg_1m=round(os.getloadavg()[0], 2), **common)
    finally:
        serial.close()
        vector.close()
    med_s, med_v = statistics.median(fps_s), statistics.median(fps_v)
    # CPU-bound: with a free core per worker, speed-up = N * (serial CPU/frame) / (vector CPU/frame).
    ideal = args.num_envs * statistics.median(cpu_s) / statistics.median(cpu_v)
    _emit(mode="ratio", num_envs=args.num_envs, ratio=round(med_v / med_s, 2),
          ratio_if_cores_free=round(ideal, 2),
          serial_frames_per_s=round(med_s, 1), vector_frames_per_s=round(med_v, 1),
          rounds=args.rounds, load_avg_1m=round(os.getloadavg()[0], 2), **common)


if __name__ == "__main__":
    main()
