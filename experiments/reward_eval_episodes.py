"""Episodes for experiments.eval_reward: the env the VAE was trained with, fresh
expert / random / noisy-expert episodes, and trained agents' GIFs."""
import json
import logging
import os

from vidrl_jax.envs.counterfactual import SEED_BASE, random_episode  # noqa: F401
from vidrl_jax.errors import VidrlError

NOISE_LADDER = (0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
DEFAULT_OTHER_TASKS = ("drawer-open-v3", "button-press-topdown-v3", "window-open-v3",
                       "reach-v3", "push-v3", "door-close-v3", "handle-press-v3")


def read_json(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def env_config_of(workdir):
    """The env fields the VAE was trained with (autoencoder/config.json: `env.<field>`
    keys) over the default env config, as a dict."""
    from configs.metaworld import get_config
    env = get_config().env.to_dict()
    recorded = read_json(os.path.join(workdir, "autoencoder", "config.json"))
    fields = {k.split(".", 1)[1]: v for k, v in recorded.items() if k.startswith("env.")}
    fields.update(recorded.get("env", {}))  # a VAE made before stages were task-free
    if not fields:
        logging.warning("no env fields in %s/autoencoder/config.json: using the default "
                        "env config", workdir)
    env.update(fields)
    return env


class EnvCfg(dict):
    __getattr__ = dict.__getitem__


def calibrate_noise(task, env_cfg, seed, episodes=8):
    """The std in NOISE_LADDER whose expert success rate (state only) is nearest 1/2."""
    import numpy as np

    from vidrl_jax.envs.experts import expert_policy
    from vidrl_jax.envs.metaworld_env import make_env_from_config
    env = make_env_from_config(EnvCfg(env_cfg), task=task, render=False)
    policy = expert_policy(task)
    rates = {}
    for std in NOISE_LADDER:
        rng = np.random.default_rng([seed, int(std * 1000)])
        wins = 0
        for i in range(episodes):
            obs, _ = env.reset(seed=SEED_BASE + 500_000 + i)
            for _ in range(env_cfg["max_episode_steps"]):
                a = np.clip(policy(obs) + rng.normal(0, std, 4), -1, 1)
                obs, _, term, trunc, info = env.step(a)
                if info["success"]:
                    wins += 1
                    break
                if term or trunc:
                    break
        rates[std] = wins / episodes
        if rates[std] <= 0.25:
            break
    env.close()
    best = min(rates, key=lambda s: (abs(rates[s] - 0.5), s))
    return best, rates


def collect(task, env_cfg, seeds, kind, noise=0.0, steps_after_success=10):
    """Episodes (dicts with frames, success) of `kind` in expert | random | noisy."""
    import numpy as np

    from vidrl_jax.envs.experts import collect_episode, expert_policy
    from vidrl_jax.envs.metaworld_env import make_env_from_config
    env = make_env_from_config(EnvCfg(env_cfg), task=task)
    out = []
    for s in seeds:
        if kind == "random":
            ep = random_episode(env, s)
        else:
            ep = collect_episode(env, expert_policy(task), s, steps_after_success,
                                 action_noise=noise if kind == "noisy" else 0.0,
                                 rng=np.random.default_rng([s, 1]))
        out.append(dict(frames=ep["frames"], success=bool(ep["success"].any()),
                        first_success=int(np.argmax(ep["success"])) + 1
                        if ep["success"].any() else None, task=task, seed=s))
    env.close()
    return out

def read_agent_gif(path, frame_shape):
    """An --agent_gifs episode's frames [T,H,W,3], read before any episode is collected;
    a missing or unreadable file, or frames of another size than the goal video's
    (frame_shape), is a VidrlError naming the flag."""
    from vidrl_jax.utils.video_io import read_gif
    try:
        frames = read_gif(path)
    except (OSError, ValueError) as e:  # (PIL's UnidentifiedImageError is an OSError)
        raise VidrlError(f"--agent_gifs: cannot read {path} as a GIF ({e}); pass an "
                         f"agent's eval_last.gif") from None
    if frames.shape[1:] != tuple(frame_shape):
        raise VidrlError(f"--agent_gifs: {path} has frames of {frames.shape[1:]}, not the "
                         f"goal video's {tuple(frame_shape)}")
    return frames
