"""Learning check: the fused SAC step on gymnasium Pendulum-v1 (state obs, env reward).

    python -m experiments.studies.check_sac_pendulum [--steps=20000] [--seed=0]

Prints one JSON line per evaluation: {"step", "eval_return", "updates", "seconds"}.
Random policy: about -1200; SAC solves it at about -150 to -200.
tests/test_agent_sac.py runs a short version of this loop.
"""
import argparse
import json
import time

import gymnasium as gym
import jax
import numpy as np

from vidrl_jax.agents import act, check_finite, init_agent_state, jit_train_step
from vidrl_jax.agents.state import AgentDef
from vidrl_jax.data import replay as rp


def pendulum_defn(hidden=(128, 128), batch_size=128, k=10, lr=1e-3):
    return AgentDef(obs_type="state", obs_shape=(3,), action_dim=1, feature_dim=0,
                    latent_dim=0, hidden=tuple(hidden), lr=lr, batch_size=batch_size,
                    updates_per_call=k, use_fb=False, reward_terms=(("env_dense", 1.0),),
                    target_entropy=-1.0, init_temperature=0.1)


def evaluate(state, seed, episodes):
    env = gym.make("Pendulum-v1")
    total = []
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + 1000 + e)
        ret, done = 0.0, False
        while not done:
            a = np.asarray(act(state, obs.astype(np.float32), jax.random.key(0),
                               deterministic=True))
            obs, r, term, trunc, _ = env.step(2.0 * a)
            ret += float(r)
            done = term or trunc
        total.append(ret)
    env.close()
    return float(np.mean(total))


def train(steps, seed=0, prefill=500, eval_every=0, eval_episodes=3, defn=None, log=print):
    """Trains SAC on Pendulum-v1 for `steps` env steps (1 update per env step, K per
    call). Returns (state, final eval return)."""
    defn = defn or pendulum_defn()
    k = defn.updates_per_call
    env = gym.make("Pendulum-v1")
    key = jax.random.key(seed)
    key, k0 = jax.random.split(key)
    state = init_agent_state(defn, k0)
    replay = rp.create_replay(steps, rp.column_specs((3,), 1, 0, 0))
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    pending = []
    t0, updates = time.time(), 0
    for t in range(1, steps + 1):
        if t <= prefill:
            a = rng.uniform(-1, 1, size=(1,)).astype(np.float32)
        else:
            key, ka = jax.random.split(key)
            a = np.asarray(act(state, obs.astype(np.float32), ka))
        next_obs, r, term, trunc, _ = env.step(2.0 * a)
        pending.append(dict(obs=obs, action=a, next_obs=next_obs, reward=r, success=0.0,
                            terminal=float(term), truncated=float(trunc),
                            next_phi=np.zeros(0), start_phi=np.zeros(0),
                            window_latent=np.zeros(0)))
        obs = next_obs
        if term or trunc:
            obs, _ = env.reset()
        if len(pending) == k:
            batch = {c: np.stack([np.asarray(p[c], np.float32) for p in pending])
                     for c in pending[0]}
            replay = rp.add(replay, batch)
            pending = []
            if t >= prefill:
                key, ks = jax.random.split(key)
                state, metrics = jit_train_step(state, replay, {}, ks)
                updates += k
                if t % 1000 == 0:
                    check_finite(metrics)
        if eval_every and t % eval_every == 0:
            log(json.dumps({"step": t, "eval_return": evaluate(state, seed, eval_episodes),
                            "updates": updates, "seconds": round(time.time() - t0, 1)}))
    env.close()
    return state, evaluate(state, seed, eval_episodes)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval_every", type=int, default=2000)
    args = p.parse_args()
    _, ret = train(args.steps, args.seed, eval_every=args.eval_every)
    print(json.dumps({"final_eval_return": ret}))


if __name__ == "__main__":
    main()
