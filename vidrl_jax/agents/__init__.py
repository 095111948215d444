"""SAC + forward-backward (FB) agent with every reward computed inside one fused step.

Call sequence (what the agent stage does):

    import jax
    from vidrl_jax.agents import (create_agent_state, jit_train_step, make_pmapped_train_step,
                                  act, check_finite, summarize, replicate, unreplicate)
    from vidrl_jax.data import replay as rp
    from vidrl_jax.rewards.terms import resolve

    # 1. agent state (obs_dim: 39 for state obs, (H, W, 3) for pixels; feature_dim P = dim
    #    of phi(frame); latent_dim D = dim of a flattened window latent)
    state = create_agent_state(config, obs_dim, action_dim, feature_dim, latent_dim, key)

    # 2. replay (on device; num_devices=None for one device, n to shard over n devices)
    plan = resolve(config.reward)                 # the reward config, read once
    specs = rp.column_specs((obs_dim,), action_dim, feature_dim, latent_dim,
                            extra=plan.extra_columns, start_dim=plan.start_dim(feature_dim))
    #    (pixel obs: rp.column_specs((H, W, 3), ..., obs_dtype=jnp.uint8))
    replay = rp.create_replay(config.agent.replay_capacity, specs, num_devices=None)

    # 3. add transitions as they come (batched; sharded: leading [n, m, ...] axis):
    #    obs, action, next_obs (the real final obs at truncation, never the reset obs),
    #    next_phi = phi(next frame), start_phi = phi(episode's first frame) (the learned
    #    term; else [0]), window_latent = E(window ending at next frame),
    #    reward (dense), success, terminal (true terminal only), truncated (time limit),
    #    + extra columns (likelihood, roboclip) when their weight is nonzero.
    replay = rp.add(replay, transitions)          # the old replay is donated

    # 4. learn: K = config.agent.updates_per_call updates per call
    goal = {"video_latent": jnp [D], "frame_feature": jnp [P]}
    state, metrics = jit_train_step(state, replay, goal, key)          # one device
    #   or: pstep = make_pmapped_train_step()
    #       state = distributed.replicate(state)  # (utils; its layout: 1 compile)
    #       state, metrics = pstep(state, sharded_replay, goal, key)
    check_finite(metrics)        # NonFiniteError naming term and step; check before saving
    logger.scalars(step, summarize(metrics), prefix="agent/")

    # 5. act (jitted): obs [B, ...] or [...] -> actions in [-1, 1]
    a = act(state, obs, key, deterministic=False)     # unreplicate(state) first if pmapped

    # checkpoint: both are pytrees (the static AgentDef is not saved)
    mgr.save(step, {"agent": state, "replay": replay})
    tree, extra = mgr.restore({"agent": fresh_state, "replay": fresh_replay})

The state's `defn` (static AgentDef) carries the hyperparameters; everything else is
arrays, so states can be stacked over seeds and the step vmapped:
`jax.vmap(train_step, in_axes=(0, 0, None, 0))`.
"""
from vidrl_jax.agents.state import AgentDef, AgentState, create_agent_state, init_agent_state
from vidrl_jax.agents.train_step import (act, check_finite, jit_train_step,
                                         make_pmapped_train_step, make_unfused_step,
                                         replicate, run_updates, summarize, train_step,
                                         unreplicate, update)

__all__ = ["AgentDef", "AgentState", "create_agent_state", "init_agent_state", "act",
           "check_finite", "jit_train_step", "make_pmapped_train_step", "make_unfused_step",
           "replicate", "run_updates", "summarize", "train_step", "unreplicate", "update"]
