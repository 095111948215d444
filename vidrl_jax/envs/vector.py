"""Vectorised Meta-World envs in worker processes (rendering is CPU-bound).

    with make_vector_env(config.env, num_envs=2, seed=0) as envs:
        obs, infos = envs.reset()            # obs float32 [N, 39], infos["frame"] uint8 [N, H, W, 3]
        obs, r, term, trunc, infos = envs.step(actions)   # infos["success"] bool [N]

Env i is seeded with seed + i. Autoreset follows gymnasium's default
(NEXT_STEP: the step after an episode ends resets that env); pass
`autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP` to change it.

Shutdown: `close()` (or leaving the `with` block) stops the workers; on an
exception or Ctrl-C inside the block the workers are terminated without
waiting. Workers ignore SIGINT (Ctrl-C reaches the whole process group; only
the main process handles it, so workers never die half-way through a
command) and get SIGTERM if their parent dies, so no orphans are left even
when the main process is killed.
"""
import ctypes
import functools
import multiprocessing
import signal

import gymnasium as gym
from gymnasium.vector.async_vector_env import _async_worker

from vidrl_jax.envs.metaworld_env import MetaWorldEnv

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """Linux: deliver SIGTERM to this process when its parent exits."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _make_env(kwargs):
    return MetaWorldEnv(**kwargs)


def _worker(*args):
    """The worker process's main: set up signals, then gymnasium's worker loop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    return _async_worker(*args)


class MetaWorldVectorEnv(gym.vector.AsyncVectorEnv):
    """AsyncVectorEnv whose close never hangs and which terminates workers on errors."""

    def close(self, timeout=10.0, terminate=False):
        if getattr(self, "closed", True):
            return
        try:
            super().close(timeout=timeout, terminate=terminate)
        except BaseException:
            # A worker died or a pending call timed out: force it.
            for p in getattr(self, "processes", []):
                if p.is_alive():
                    p.terminate()
            for p in getattr(self, "processes", []):
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join()
            self.closed = True
            raise

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # On an exception (incl. KeyboardInterrupt) do not wait on busy workers.
        self.close(terminate=exc_type is not None)
        return False


def make_vector_env(env_config, num_envs, seed, task=None, render=True, context="forkserver",
                    autoreset_mode=None):
    """`num_envs` MetaWorldEnvs (from the `env` config section) in worker processes.

    Returns a MetaWorldVectorEnv (a gymnasium AsyncVectorEnv): obs [N, 39], infos
    with "frame" [N, H, W, 3] (if render) and "success" [N].
    `context`: multiprocessing start method ("forkserver" default: workers fork
    from a clean server that has MuJoCo imported, never from a process with JAX
    threads or GL contexts).
    """
    kwargs = dict(task=task or env_config.task, size=env_config.size, camera=env_config.camera,
                  fast_render=env_config.fast_render, action_repeat=env_config.action_repeat,
                  max_episode_steps=env_config.max_episode_steps, render=render)
    if context == "forkserver":
        multiprocessing.get_context("forkserver").set_forkserver_preload(
            ["vidrl_jax.envs.metaworld_env"])
    fns = [functools.partial(_make_env, dict(kwargs, seed=seed + i)) for i in range(num_envs)]
    extra = {} if autoreset_mode is None else dict(autoreset_mode=autoreset_mode)
    # (AsyncVectorEnv builds env 0 once in this process for its spaces: bad config
    # values raise their ConfigError here, before any worker starts.)
    return MetaWorldVectorEnv(fns, context=context, worker=_worker, **extra)
