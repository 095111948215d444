"""The agent loop: vector envs, reward inputs, the learner, evaluation and checkpoints.

    results = AgentRun(config, ctx, envs).run()

The learner (vidrl_jax/train/learner.py) holds the agent(s) and the device replay in
one of its layouts (single, pmap, seeds); the reward inputs
(vidrl_jax/train/reward_inputs.py) turn frames into replay columns.

Episodes run synchronously in all envs (Meta-World never terminates early; every
episode is truncated at `env.max_episode_steps`), with explicit seeded resets, so
the next observation stored at a truncation is the real final one. Everything
random is a pure function of (seed, counters): env seeds of episode k, prefill
actions, PRNG keys of step t. Checkpoints are taken at episode boundaries and
hold the agent, optimiser, replay, reward statistics, counters and eval history,
so a resumed run continues exactly where the killed one stopped.
"""
import logging
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax import agents  # noqa: F401 (tests build states through agent_loop.agents)
from vidrl_jax.errors import NonFiniteError
from vidrl_jax.rewards import terms as reward_terms
from vidrl_jax.rewards.video_level import video_reward
from vidrl_jax.train.agent_results import results_record
from vidrl_jax.train.learner import Learner, ts
from vidrl_jax.train.reward_inputs import FrameWindows, RewardEncoders
from vidrl_jax.utils.checkpoint import CheckpointManager
from vidrl_jax.utils.progress import progress
from vidrl_jax.utils.signals import raise_if_interrupted
from vidrl_jax.utils.video_io import save_gif


def _transitions(obs, action, next_obs, phi, start, latent, reward, success, terminated,
                 truncated):
    return dict(obs=obs, action=action, next_obs=next_obs, next_phi=phi, start_phi=start,
                window_latent=latent,
                reward=np.asarray(reward, np.float32), success=np.asarray(success, np.float32),
                terminal=np.asarray(terminated, np.float32),
                truncated=np.asarray(truncated, np.float32))


def _obs(config, obs, info):
    return info["frame"] if config.agent.obs == "pixels" else np.asarray(obs, np.float32)


def frames_needed(config, plan=None):
    """Whether training episodes must render frames: only when something reads them, a
    video model term (VAE), pixel observations or the RoboCLIP term. Otherwise (the
    sparse and dense baselines) the workers step physics alone, ~15x cheaper per env
    step with the same trajectories. Evaluation renders its last round (eval_last.gif,
    tensorboard)."""
    plan = plan or reward_terms.resolve(config.reward)
    return (plan.reads_frames or config.agent.obs == "pixels"
            or bool(float(config.reward.roboclip)))


class AgentRun:
    """Trains the agent(s) of `config` in `ctx.stage_dir`, resuming from checkpoints.
    read_only: only reads them (a reader beside a live run; see CheckpointManager)."""

    def __init__(self, config, ctx, envs, read_only=False):
        self.config, self.ctx, self.envs = config, ctx, envs
        plan = reward_terms.resolve(config.reward)  # the reward config, read once
        self.encoders = RewardEncoders(config, ctx, plan, read_only)
        self.learner = Learner(config, self.encoders.feature_dim, self.encoders.latent_dim,
                               plan)
        self.windows = FrameWindows(config.reward.video_window, int(config.reward.window),
                                    self.encoders.clip_len, int(config.env.max_episode_steps))
        self.episode_len = int(config.env.max_episode_steps)
        self.stride = max(1, int(config.reward.video_stride))
        self.k = int(config.agent.updates_per_call)
        self.ckpt = CheckpointManager(os.path.join(ctx.stage_dir, "checkpoints"), keep=2,
                                      all_processes=True,  # (several processes: collective)
                                      read_only=read_only)
        self.counters = dict(episode=0, env_steps=0, updates=0, pending=0.0, train_calls=0,
                             wall_time=0.0, history=[])
        self.base_key = jax.random.PRNGKey(int(config.seed))
        self.metrics = {}
        self._unchecked = []  # metrics of train calls not yet checked for NaN/inf
        self.overlap = bool(config.agent.overlap_env)
        self.render_train = frames_needed(config, plan)

    # -- persistence
    def save(self):
        self.counters["wall_time"] += time.time() - self._t0
        self._t0 = time.time()
        self.ckpt.save(self.counters["env_steps"], self.learner.checkpoint_tree(),
                       extra=dict(self.counters))

    def restore(self):
        if self.ckpt.latest_step() is None:
            return False
        tree, extra = self.ckpt.restore(self.learner.checkpoint_tree())
        self.learner.load_tree(tree)
        self.counters.update(extra)
        logging.info("agent: resumed at env step %d (episode %d)", self.counters["env_steps"],
                     self.counters["episode"])
        return True

    # -- one synchronous episode in all envs
    def run_episode(self, seeds_offset, episode, policy, on_step=None, overlap=False,
                    render=True):
        """Runs one episode in every env. policy(obs, t) -> actions [N, 4].

        on_step(transition) is called once per step, in step order. With `overlap`,
        on_step of step t-1 runs between `step_async` and `step_wait` of step t, so
        its device work (replay add, fused train calls; dispatched asynchronously)
        computes while the workers step and render; the policy of step t then acts
        with the learner as it was before on_step(t-1) (one step stale). The last
        on_step runs before this returns: episode boundaries are clean (checkpoints).

        `render=False` (only where no reward term, observation or encoder reads frames:
        `render_train`): the workers render nothing, the frame columns are empty.

        Returns the transitions of every step (dicts of [N, ...]) and env 0's frames
        [L+1, H, W, 3] (None without rendering).
        """
        lr = self.learner
        reset_seeds = lr.reset_seeds(episode, seeds_offset)
        if hasattr(self.envs, "set_attr"):  # (one round trip to the workers per episode)
            self.envs.set_attr("render_frames", bool(render))
        obs, info = self.envs.reset(seed=reset_seeds)
        empty = np.zeros((len(obs), 0), np.float32)  # frame columns without rendering
        if render:
            self.windows.reset(info["frame"])
            self.encoders.start_episode(info["frame"])
            frames = [info["frame"][0]]
            latent = self.encoders.window(self.windows.frames)
        else:
            frames, latent = None, empty
            self.encoders.start_phi = empty
        with_likelihood = "likelihood" in self.learner.specs
        if with_likelihood:
            lik = self.encoders.likelihood(latent)
        # reward.video_form=shaped: Φ of the previous step (at t=0: of the 1-frame episode)
        with_potential = reward_terms.POTENTIAL_COLUMN in self.learner.specs
        if with_potential:
            potential = self.encoders.potential(self.encoders.stored(latent))
        out = []
        overlap = overlap and on_step is not None
        pending = None  # (overlap) the transition whose on_step has not run yet
        for t in range(self.episode_len):
            raise_if_interrupted()
            o = _obs(self.config, obs, info)
            action = policy(o, t)
            if not np.isfinite(action).all():  # (host numpy already: no extra sync)
                self.non_finite_actions()
            if overlap:
                self.envs.step_async(action)
                if pending is not None:
                    on_step(pending)
                next_obs, reward, terminated, truncated, info = self.envs.step_wait()
            else:
                next_obs, reward, terminated, truncated, info = self.envs.step(action)
            last = t == self.episode_len - 1
            if render:
                self.windows.push(info["frame"])
                frames.append(info["frame"][0])
                refresh = t % self.stride == 0 or last
                video = self.windows.frames if refresh and self.encoders.latent_dim else None
                phi, new = self.encoders.encode(info["frame"], video)
            else:
                phi, new = empty, None
            if new is not None:
                latent = new
                if with_likelihood:
                    lik = self.encoders.likelihood(latent)
            tr = _transitions(o, action, _obs(self.config, next_obs, info), phi,
                              self.encoders.start_phi, self.encoders.stored(latent),
                              reward, info["success"], terminated, truncated)
            if with_likelihood:
                tr["likelihood"] = lik
            if "progress_net" in self.learner.specs:
                tr["progress_net"] = self.encoders.progress_net(info["frame"])
            if with_potential:  # (the latent is refreshed every stride steps: Φ with it)
                tr[reward_terms.POTENTIAL_COLUMN] = potential
                potential = self.encoders.potential(tr["window_latent"])
            if "roboclip" in self.learner.specs:  # paid once, at the episode's end
                tr["roboclip"] = (self.encoders.episode_score(self.windows.episode[:, :t + 2])
                                  if last else np.zeros(len(action), np.float32))
            if overlap:
                pending = tr
            elif on_step is not None:
                on_step(tr)
            out.append(tr)
            obs = next_obs
        if pending is not None:
            on_step(pending)
        return out, (np.stack(frames) if render else None)

    def train_episode(self, bar):
        c, lr = self.counters, self.learner
        e = lr.global_envs  # env steps per step: this process's envs and the others'
        prefill = int(self.config.agent.prefill_steps)
        utd = float(self.config.agent.utd)
        start = c["env_steps"]

        def policy(obs, t):
            # the env step of this action (not c["env_steps"]: with overlap_env the
            # counters of the previous step are updated after the policy runs)
            step = start + t * e
            if step < prefill:
                return lr.prefill_actions(step)
            key = jax.random.fold_in(jax.random.fold_in(self.base_key, 1), step)
            return lr.act(obs, key, deterministic=False)

        def on_step(tr):
            lr.add(tr)
            c["env_steps"] += e
            bar.update(e)
            if c["env_steps"] >= prefill:
                c["pending"] += e * utd
                while c["pending"] >= self.k:
                    key = jax.random.fold_in(jax.random.fold_in(self.base_key, 2),
                                             c["train_calls"])
                    metrics = lr.train(self.encoders.goal, key)
                    self._unchecked.append(metrics)  # checked once per episode
                    self.metrics = metrics
                    c["pending"] -= self.k
                    c["updates"] += self.k
                    c["train_calls"] += 1

        transitions, _ = self.run_episode(0, c["episode"], policy, on_step,
                                          overlap=self.overlap, render=self.render_train)
        self.check_metrics()
        c["episode"] += 1
        return transitions

    def check_metrics(self):
        """NonFiniteError naming the first non-finite term and its update step among the
        train calls since the last check. Checked once per episode (before any
        checkpoint), not per call: reading metrics back would wait for the device
        every step and stall the overlap of env stepping and training."""
        unchecked, self._unchecked = self._unchecked, []
        for metrics in jax.device_get(unchecked):
            ts.check_finite(metrics)

    def non_finite_actions(self):
        """NaN/inf actions would crash the env workers: name the update that caused them
        (the metrics not yet checked), else the actions themselves."""
        self.check_metrics()
        raise NonFiniteError(
            f"the policy's actions are non-finite at env step {self.counters['env_steps']}; "
            f"training stopped before saving (the last checkpoint is intact)")

    def evaluate(self):
        """M episodes per agent with the deterministic policy on fresh seeds (several
        processes: each runs its envs' share, and all get the same record)."""
        cfg, lr = self.config, self.learner
        rounds = math.ceil(int(cfg.agent.eval_episodes) / lr.global_envs)
        key = jax.random.fold_in(self.base_key, 3)
        success, final, returns, frames = [], [], {}, None
        for r in range(rounds):
            episode = self.counters["env_steps"] * 1000 + r
            # (without frame-reading terms only the last round renders: its frames are
            # the logged eval episode)
            trs, frames = self.run_episode(
                1, episode, lambda obs, t: lr.act(obs, key, deterministic=True),
                render=self.render_train or r == rounds - 1)
            succ = np.stack([t["success"] for t in trs], axis=1)  # [N, L]
            success.append(succ.max(axis=1))
            final.append(succ[:, -1])
            for name, ret in self._episode_returns(trs).items():
                returns.setdefault(name, []).append(ret)
        success, final, returns = lr.gather_envs((success, final, returns))
        by_seed = lambda x: np.concatenate(x).reshape(rounds, lr.num_seeds, -1) \
            .transpose(1, 0, 2).reshape(lr.num_seeds, -1)[:, :int(cfg.agent.eval_episodes)]
        rec = {"env_steps": self.counters["env_steps"],
               "success": by_seed(success).mean(axis=1).tolist(),
               "final_success": by_seed(final).mean(axis=1).tolist(),
               "returns": {k: by_seed(v).mean(axis=1).tolist() for k, v in returns.items()}}
        return rec, frames

    def _episode_returns(self, trs):
        """Each reward term's return over one episode in every env: trs (L dicts of
        [N, ...]) -> {term: [N]}. All L steps go through the reward terms at once (one
        device call per episode, not per step)."""
        n, steps = len(trs[0]["reward"]), len(trs)

        def env_major(values):  # L x [N, ...] -> [N * L, ...], env by env
            xp = jnp if isinstance(values[0], jax.Array) else np
            x = xp.stack(values, axis=1)
            return x.reshape((n * steps,) + x.shape[2:])

        per_step = self._eval_terms({k: env_major([t[k] for t in trs]) for k in trs[0]})
        return {k: np.asarray(v).reshape(n, steps).sum(axis=1) for k, v in per_step.items()}

    def _eval_terms(self, tr):
        """Each term's reward {term: [B]} of transitions tr (dicts of [B, ...])."""
        out = {"env_dense": tr["reward"], "env_sparse": tr["success"]}
        if self.encoders.latent_dim:
            out["video"] = np.asarray(video_reward(
                self.encoders.goal["video_latent"], jnp.asarray(tr["window_latent"]),
                self.config.reward.video_metric))
        out.update(self.learner.reward_terms(tr, self.encoders.goal))
        return out

    def log_eval(self, rec, frames):
        c, logger = self.counters, self.ctx.logger
        c["history"].append(rec)
        scalars = {"eval/success": float(np.mean(rec["success"])),
                   "eval/final_success": float(np.mean(rec["final_success"]))}
        scalars.update({f"eval/return_{k}": float(np.mean(v)) for k, v in rec["returns"].items()})
        logger.scalars(c["env_steps"], scalars, prefix="agent/")
        if self.ctx.is_main_process:
            logger.video("agent/eval_episode", c["env_steps"], frames)
            save_gif(os.path.join(self.ctx.stage_dir, "eval_last.gif"), frames)

    def log_progress(self, bar, seconds, env_steps, updates):
        """Scalars to tensorboard / metrics.jsonl, and the same figures on the progress
        bar and (for logs that are not a terminal) as one INFO line: env steps/s, ETA,
        the latest eval success and each reward term's running mean."""
        c, total = self.counters, int(self.config.agent.total_steps)
        rate = env_steps / max(seconds, 1e-9)
        scalars = {"env_steps_per_s": rate, "updates_per_s": updates / max(seconds, 1e-9)}
        if self.metrics:
            scalars.update(ts.summarize(self.metrics))
        running = self.learner.reward_running_stats() if c["env_steps"] > int(
            self.config.agent.prefill_steps) else {}
        for term, (mean, std) in running.items():
            scalars[f"reward_running/{term}_mean"] = mean
            scalars[f"reward_running/{term}_std"] = std
        self.ctx.logger.scalars(c["env_steps"], scalars, prefix="agent/")
        success = f"{np.mean(c['history'][-1]['success']):.2f}" if c["history"] else "-"
        terms = {t: f"{m:.3g}" for t, (m, _) in running.items()}
        bar.set_postfix(steps_s=f"{rate:.0f}", success=success, **terms)
        eta = (total - c["env_steps"]) / max(rate, 1e-9)
        logging.info("agent: %d/%d env steps, %.1f env steps/s, ETA %d min, eval success %s%s",
                     c["env_steps"], total, rate, round(eta / 60), success,
                     "".join(f", {t} {v}" for t, v in terms.items()))

    def run(self):
        cfg, c = self.config, self.counters
        total = int(cfg.agent.total_steps)
        self._t0 = time.time()
        self.restore()
        if self.encoders.goal_frames is not None and self.ctx.is_main_process:
            self.ctx.logger.video("agent/goal_video", 0, self.encoders.goal_frames)
        bar = progress(total=total, desc="agent", initial=c["env_steps"])
        every = int(cfg.agent.eval_every)  # the grid point after the last evaluation
        next_eval = lambda: (c["history"][-1]["env_steps"] // every + 1) * every \
            if c["history"] else 0
        next_ckpt = c["env_steps"] + int(cfg.agent.checkpoint_every)
        next_log = c["env_steps"] + int(cfg.agent.log_every)
        t_rate, s_rate, u_rate = time.time(), c["env_steps"], c["updates"]
        while c["env_steps"] < total:
            if c["env_steps"] >= next_eval():
                self.log_eval(*self.evaluate())
            self.train_episode(bar)
            if c["env_steps"] >= next_log:
                self.log_progress(bar, time.time() - t_rate, c["env_steps"] - s_rate,
                                  c["updates"] - u_rate)
                t_rate, s_rate, u_rate = time.time(), c["env_steps"], c["updates"]
                next_log = c["env_steps"] + int(cfg.agent.log_every)
            if c["env_steps"] >= next_ckpt or c["env_steps"] >= total:
                if c["env_steps"] >= total:
                    self.log_eval(*self.evaluate())
                self.save()
                next_ckpt = c["env_steps"] + int(cfg.agent.checkpoint_every)
        bar.close()
        if not c["history"] or c["history"][-1]["env_steps"] != c["env_steps"]:
            self.log_eval(*self.evaluate())
            self.save()
        return self.results()

    def results(self):
        """results.json content (vidrl_jax/train/agent_results.py)."""
        return results_record(self.config, self.counters, self.learner,
                              self.encoders.fingerprints)
