"""Meta-World's scripted expert policies and episode collection.

    policy = expert_policy("door-open-v3")          # callable: obs float [39] -> action float32 [4]
    ep = collect_episode(env, policy, seed=3, steps_after_success=20)

Episode dict (the data contract, see vidrl_jax.data.shards), L = number of steps:
  frames  uint8   [L+1, H, W, 3]   frame after reset, then after each step
  states  float32 [L+1, 39]
  actions float32 [L, 4]           the actions actually applied (after noise, clipped)
  rewards float32 [L]              Meta-World dense reward (summed over action repeat)
  success bool    [L]
  task str, instruction str, seed int
"""
import warnings

import numpy as np

from vidrl_jax.envs.tasks import check_task, instruction
from vidrl_jax.errors import VidrlError


def expert_policy(task):
    """Meta-World's scripted policy for `task` as a function obs -> action float32 [4]."""
    from metaworld.policies import ENV_POLICY_MAP

    policy = ENV_POLICY_MAP[check_task(task)]()

    def act(obs):
        with warnings.catch_warnings():
            # "Constant(s) may be too high": harmless, the env clips actions.
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(policy.get_action(np.asarray(obs, np.float64)), np.float32)

    return act


def collect_episode(env, policy, seed, steps_after_success, action_noise=0.0, rng=None):
    """Runs `policy` in `env` from `env.reset(seed=seed)`; returns an episode dict.

    Stops `steps_after_success` steps after the first successful step, or when the
    env truncates (env.max_episode_steps). `action_noise` adds Gaussian noise of
    that std to each action (drawn from `rng`, default np.random.default_rng(seed)),
    e.g. for a noisy expert that fails part of the time.
    """
    if action_noise > 0 and rng is None:
        rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=int(seed))
    if "frame" not in info:
        raise VidrlError("collect_episode needs an env that renders frames (MetaWorldEnv(render=True))")
    frames, states = [info["frame"]], [obs]
    actions, rewards, successes = [], [], []
    first_success = None
    while True:
        action = np.asarray(policy(obs), np.float32)
        if action_noise > 0:
            action = action + rng.normal(0.0, action_noise, action.shape).astype(np.float32)
        action = np.clip(action, -1.0, 1.0)
        obs, reward, terminated, truncated, info = env.step(action)
        frames.append(info["frame"])
        states.append(obs)
        actions.append(action)
        rewards.append(reward)
        successes.append(bool(info["success"]))
        t = len(actions)
        if first_success is None and info["success"]:
            first_success = t
        if terminated or truncated:
            break
        if first_success is not None and t - first_success >= steps_after_success:
            break
    return dict(
        frames=np.stack(frames).astype(np.uint8),
        states=np.stack(states).astype(np.float32),
        actions=np.stack(actions).astype(np.float32),
        rewards=np.asarray(rewards, np.float32),
        success=np.asarray(successes, bool),
        task=env.task,
        instruction=instruction(env.task),
        seed=int(seed),
    )
