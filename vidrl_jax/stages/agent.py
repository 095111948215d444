"""Stage `agent`: SAC (+FB) trained on the rewards of the goal video, with evaluation.

Writes checkpoints, `eval_last.gif` (the last eval episode) into the stage
directory, and `<workdir>/results.json` and `<workdir>/success.png`. Resumes from
its last checkpoint after a kill, and from its final one when `agent.total_steps` is
raised on a finished run. See vidrl_jax/train/agent.py for the loop.

Multi-process (jax.distributed): every process runs this stage with its own
`env.num_workers` envs and replay shard; process 0 writes results and plots.
"""
import json
import os

import jax

from vidrl_jax.envs.vector import make_vector_env
from vidrl_jax.train import agent as agent_loop
from vidrl_jax.train.agent_results import plot_success
from vidrl_jax.utils.signals import sigterm_as_interrupt

DEPENDS = ("seed", "seeds", "env", "demos", "vae", "diffusion", "goal", "clip", "agent",
           "reward")
ALL_PROCESSES = True  # (vidrl_jax.stages.run_pipeline) one agent over the envs of all processes
# A finished (or killed) run with agent.total_steps raised goes on from its last checkpoint,
# as if it had been started with the higher budget (vidrl_jax.stages.check_stage_dir)
EXTENDABLE = ("agent.total_steps",)


def run(config, ctx):
    num_envs = int(config.env.num_workers) * int(config.seeds)
    seed = int(config.seed) + num_envs * jax.process_index()  # env i of process p: distinct
    # SIGTERM or Ctrl-C: the workers are stopped, the last checkpoint stays; re-run resumes
    with sigterm_as_interrupt(), make_vector_env(config.env, num_envs=num_envs,
                                                 seed=seed) as envs:
        results = agent_loop.AgentRun(config, ctx, envs).run()
    if ctx.is_main_process:
        tmp = os.path.join(ctx.workdir, "results.json.tmp")
        with open(tmp, "w") as f:
            json.dump(results, f, indent=1)
        os.replace(tmp, os.path.join(ctx.workdir, "results.json"))
        plot_success(results, os.path.join(ctx.workdir, "success.png"))
    return {k: results[k] for k in ("final_success_mean", "final_success_std",
                                    "best_success_mean", "env_steps", "updates",
                                    "env_steps_per_s", "layout")}
