"""Reward gates before RL: does a reward pay the task done over the task undone?

    python -m experiments.gate_reward --config=configs/metaworld.py[:VARIANTS] --workdir=DIR
        [--seeds=20] [--pretrain_steps=2000] [--out=FILE.json]

Scores each per-frame reward term of the config (`learned`, `progress_net`, `video` in
its progress form, `frame` in its bsim form) on real frames of `env.task` (vidrl_jax/envs/
counterfactual.py): the expert's final frame (done), the same state with the object put
back (undone: the arm where the expert left it), the expert's frames before success
(before) and random-policy episodes (random), over --seeds episodes from seeds the
agent never trains on. Reports, per term, ROC-AUC of done against undone, random and
before, and whether both gates hold: done-vs-undone AUC >= 0.9 and done-vs-random AUC
>= 0.9.

The rewards are those of DIR's agent: from its latest checkpoint when there is one (a
learned term as the run left it). Without a checkpoint, the learned term is what it
would be before RL: its model trained --pretrain_steps updates on the goal videos
against random-policy frames (what the prefill puts in the replay); terms that need a
trained FB (bsim) are then skipped. DIR needs the goal and select stages (and the
autoencoder): `python -m experiments.run ... --stages=demos,autoencoder,diffusion,goal,select`.
"""
import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

from absl import flags  # noqa: E402

from vidrl_jax.utils.cli import define_config_file, run_absl_main  # noqa: E402

GATE = 0.9
SCORED = ("learned", "progress_net", "video", "frame")
PREFILL_EPISODES = 10  # random-policy episodes standing in for the replay before RL


def transitions(encoders, frames, firsts):
    """Replay-like columns of frames [B,H,W,3] whose episodes began at firsts [B,...]:
    what the per-frame terms read (next_phi, start_phi); the rest zeros."""
    import numpy as np
    n = len(frames)
    phi = np.asarray(encoders.phi(frames))
    start = (np.asarray(encoders.phi(firsts)) if encoders.plan.reads_start
             else np.zeros((n, 0), np.float32))
    zeros = np.zeros(n, np.float32)
    extra = ({"progress_net": encoders.progress_net(frames)}
             if encoders.plan.weight("progress_net") else {})
    return dict(**extra, obs=np.zeros((n, 39), np.float32), action=np.zeros((n, 4), np.float32),
                next_obs=np.zeros((n, 39), np.float32), next_phi=phi, start_phi=start,
                window_latent=np.zeros((n, encoders.latent_dim), np.float32),
                reward=zeros, success=zeros, terminal=zeros, truncated=zeros)


def pretrain_learned(learner, encoders, env, steps, seed=0):
    """Trains the learned term's model `steps` updates on the goal videos against
    random-policy frames (the replay before RL), in place in learner.state."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from vidrl_jax.envs.counterfactual import random_episode
    from vidrl_jax.rewards import learned as learned_lib
    from vidrl_jax.utils import distributed
    eps = [random_episode(env, 10_000 + s)["frames"] for s in range(PREFILL_EPISODES)]
    frames = np.concatenate(eps)
    firsts = np.concatenate([np.repeat(e[:1], len(e), 0) for e in eps])
    dphi = jnp.asarray(np.asarray(encoders.phi(frames)) - np.asarray(encoders.phi(firsts)))
    state = learner.state
    defn, goal = state.defn, encoders.goal
    # (the learner's state in its layout: single, pmap [devices, ...] or seeds [S, ...])

    @jax.jit
    def step(m, key):
        k_rows, k_gen = jax.random.split(key)
        rows = jax.random.randint(k_rows, (defn.batch_size,), 0, len(dphi))
        params, opt, _ = learned_lib.update(defn.learned_hidden, defn.learned_lr,
                                            defn.learned_domain_weight, m["params"],
                                            m["opt"], dphi[rows], goal, k_gen)
        return {"params": params, "opt": opt}

    def train(m):
        key = jax.random.PRNGKey(seed)
        for _ in range(steps):
            key, k = jax.random.split(key)
            m = step(m, k)
        return m

    m = state.reward_model
    if learner.layout == "pmap":    # one copy per device: train one, copy it back
        m = distributed.replicate(train(distributed.unreplicate(m)))
    elif learner.layout == "seeds":  # one model per seed (the same data)
        m = jax.tree.map(lambda *x: jnp.stack(x), *[
            train(jax.tree.map(lambda x, i=i: x[i], m)) for i in range(learner.num_seeds)])
    else:
        m = train(m)
    learner.state = state.replace(reward_model=m)


AUCS = ("auc_undone", "auc_random", "auc_before")


def gate_term(paid):
    """{"auc_undone", "auc_random", "auc_before", "mean": {group: mean paid}, "pass"} of
    one term's rewards {group: [n]} (groups done, undone, before, random)."""
    import numpy as np

    from vidrl_jax.rewards.quality import roc_auc
    auc = {f"auc_{g}": roc_auc(paid["done"], paid[g]) for g in ("undone", "random", "before")}
    return dict(auc, mean={g: float(np.mean(v)) for g, v in paid.items()},
                **{"pass": bool(auc["auc_undone"] >= GATE and auc["auc_random"] >= GATE)})


def gate(config, ctx, seeds, pretrain_steps):
    """{"task", "source", "terms": {term: {"auc_undone", "auc_random", "auc_before",
    "mean": {group: paid}, "pass"}}} for the per-frame terms of `config`; a run of several
    seeds (config.seeds) also gives each seed's under "seeds", and passes when all do."""
    import numpy as np

    from vidrl_jax.envs.counterfactual import SEED_BASE, check_frames
    from vidrl_jax.envs.metaworld_env import make_env_from_config
    from vidrl_jax.train.agent import AgentRun

    task = config.env.task
    run = AgentRun(config, ctx, envs=None, read_only=True)  # the run may be live
    restored = run.restore()
    env = make_env_from_config(config.env)
    try:
        if not restored and run.learner.state.defn.use_learned:
            pretrain_learned(run.learner, run.encoders, env, pretrain_steps)
        groups = check_frames(env, task, range(SEED_BASE, SEED_BASE + seeds))
    finally:
        env.close()
    scored = [n for n, _ in run.learner.state.defn.reward_terms if n in SCORED
              and (restored or n != "frame")
              and not (n == "video" and config.reward.video_form != "progress")]
    names = ("done", "undone", "before", "random")
    # one call: every group paid with the same running statistics (the learned term is
    # standardised by them); each seed's agent pays every frame (the learner splits a
    # batch seed by seed, so the frames are repeated once per seed)
    tr = transitions(run.encoders, np.concatenate([groups[g] for g in names]),
                     np.concatenate([groups[f"{g}_first"] for g in names]))
    num_seeds = run.learner.num_seeds
    terms = run.learner.reward_terms({k: np.concatenate([v] * num_seeds)
                                      for k, v in tr.items()}, run.encoders.goal)
    bounds = np.cumsum([0] + [len(groups[g]) for g in names])
    out = {}
    for name in scored:
        per_seed = [gate_term({g: paid[bounds[i]:bounds[i + 1]] for i, g in enumerate(names)})
                    for paid in np.asarray(terms[name]).reshape(num_seeds, -1)]
        out[name] = per_seed[0] if num_seeds == 1 else {  # the seeds' mean; pass: all do
            **{k: float(np.mean([r[k] for r in per_seed])) for k in AUCS},
            "mean": {g: float(np.mean([r["mean"][g] for r in per_seed])) for g in names},
            "pass": all(r["pass"] for r in per_seed), "seeds": per_seed}
    return {"task": task, "episodes": int(len(groups["done"])),
            "source": "checkpoint" if restored else f"before RL ({pretrain_steps} updates)"
            if any(n == "learned" for n in scored) else "before RL", "terms": out}


def format_gate(result):
    lines = [f"{result['task']}: rewards from {result['source']}, {result['episodes']} "
             f"expert episodes (gates: AUC >= {GATE})",
             "| term | done vs undone | done vs random | done vs before | gates |",
             "|---|---|---|---|---|"]
    for name, r in result["terms"].items():
        rows = [(name, r)] + [(f"{name} (seed {i})", s) for i, s in enumerate(r.get("seeds", []))]
        lines += [f"| {n} | {s['auc_undone']:.2f} | {s['auc_random']:.2f} | "
                  f"{s['auc_before']:.2f} | {'pass' if s['pass'] else 'fail'} |" for n, s in rows]
    return "\n".join(lines)


def define_flags():
    """The command's flags (defined only when it runs as a command: modules that tests
    import beside this one define flags of the same names)."""
    define_config_file("config", "configs/metaworld.py",
                       "Config file, optionally with :VARIANTS.", lock_config=True)
    flags.DEFINE_string("workdir", "runs/default", "The run's directory.")
    flags.DEFINE_integer("seeds", 20, "Expert and random episodes scored.")
    flags.DEFINE_integer("pretrain_steps", 2000,
                         "Updates of a learned term's model before RL (no checkpoint).")
    flags.DEFINE_string("out", None, "Also write the results here as JSON.")


def main(argv):
    del argv
    from vidrl_jax.stages import StageContext
    f = flags.FLAGS
    ctx = StageContext(f.workdir, os.path.join(f.workdir, "agent"), logger=None)
    result = gate(f.config, ctx, int(f.seeds), int(f.pretrain_steps))
    print(format_gate(result))
    if f.out:
        with open(f.out, "w") as out:
            json.dump(result, out, indent=1)


if __name__ == "__main__":
    define_flags()
    run_absl_main(main)
