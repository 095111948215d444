"""Fused train step: pmap == one device, rewards inside == outside, NaN -> NonFiniteError,
terminal vs truncation targets, replay ring buffer and checkpoint round trip."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vidrl_jax.agents import sac
from vidrl_jax.agents.state import AgentDef, init_agent_state
from vidrl_jax.agents.train_step import (check_finite, make_pmapped_train_step, replicate,
                                         run_updates, unreplicate)
from vidrl_jax.data import replay as rp
from vidrl_jax.errors import NonFiniteError
from vidrl_jax.rewards import learned as learned_lib
from vidrl_jax.rewards import terms

O, A, P, D, B, K = 6, 2, 5, 7, 16, 2
TERMS = (("env_dense", 1.0), ("video", 0.5), ("frame", 2.0), ("learned", 0.5))
DEFN = AgentDef(obs_type="state", obs_shape=(O,), action_dim=A, feature_dim=P, latent_dim=D,
                hidden=(32, 32), batch_size=B, updates_per_call=K, use_fb=True, z_dim=4,
                fb_hidden=(32, 32), reward_terms=TERMS, reward_normalize=True,
                target_entropy=-2.0, learned_hidden=(16,))
SPECS = rp.column_specs((O,), A, P, D, start_dim=P)


def _transitions(rng, n):
    t = {k: rng.normal(size=(n,) + s).astype(np.float32) for k, (s, _) in SPECS.items()}
    t["action"] = np.tanh(t["action"])
    t["terminal"] = (rng.random(n) < 0.2).astype(np.float32)
    t["truncated"] = (rng.random(n) < 0.2).astype(np.float32) * (1 - t["terminal"])
    t["success"] = (rng.random(n) < 0.5).astype(np.float32)
    return t


O0 = {"xla_backend_optimization_level": 0}  # tiny nets: compile time dominates


def compiled(fn, *args):
    """fn (jit or pmap) compiled for args at XLA opt level 0."""
    return fn.lower(*args).compile(O0)


GOAL = {"video_latent": jnp.linspace(-1.0, 1.0, D), "frame_feature": jnp.linspace(0.5, -0.5, P),
        "gen_dphi": jnp.linspace(-2.0, 2.0, 6 * P).reshape(6, P),
        "gen_progress": jnp.linspace(0.0, 1.0, 6), "dphi_mean": jnp.zeros(P),
        "dphi_scale": jnp.ones(P)}


@pytest.fixture(scope="module")
def runs():
    """Single-device and 2-device runs of K updates on the same global batches."""
    assert jax.local_device_count() >= 2
    rng = np.random.default_rng(0)
    batches = [_transitions(rng, B) for _ in range(K)]
    stacked = {k: np.stack([b[k] for b in batches]) for k in SPECS}       # [K, B, ...]
    state0 = init_agent_state(DEFN, jax.random.key(0))
    key = jax.random.key(1)
    single_fn = compiled(jax.jit(run_updates), state0, stacked, GOAL, key)
    s1, m1 = single_fn(state0, stacked, GOAL, key)
    # split every batch in two halves: device i gets rows [i*B/2, (i+1)*B/2)
    per_dev = {k: np.stack([v[:, :B // 2], v[:, B // 2:]]) for k, v in stacked.items()}
    pfn = jax.pmap(lambda s, b, g, k: run_updates(s, b, g, k, axis_name="d"), axis_name="d",
                   in_axes=(0, 0, None, None))
    rep = replicate(state0, 2)
    s2, m2 = compiled(pfn, rep, per_dev, GOAL, key)(rep, per_dev, GOAL, key)
    return dict(state0=state0, batches=batches, single=(s1, m1), pmap=(s2, m2),
                single_fn=single_fn, stacked=stacked, key=key)


def test_pmap_equals_single_device(runs):
    s1, m1 = runs["single"]
    s2, m2 = runs["pmap"]
    l1 = jax.tree.leaves(s1)
    l2 = jax.tree.leaves(s2)
    assert len(l1) == len(l2)
    for a, b in zip(l1, l2):
        b = np.asarray(b)
        np.testing.assert_allclose(b[0], b[1], rtol=0, atol=0)           # devices in sync
        np.testing.assert_allclose(np.asarray(a), b[0], rtol=2e-4, atol=2e-5)
    for k in m1:
        np.testing.assert_allclose(np.asarray(m1[k]), np.asarray(m2[k])[0], rtol=2e-4,
                                   atol=2e-5, err_msg=k)
    # the params actually moved (so the comparison is not vacuous)
    for part in ("fb", "reward_model"):
        moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                             getattr(runs["state0"], part)["params"],
                             getattr(s1, part)["params"])
        assert max(jax.tree.leaves(moved)) > 1e-4, part


def test_rewards_inside_equal_outside(runs):
    """Per-term reward means of update 0 equal a direct computation from the batch."""
    _, m1 = runs["single"]
    b = runs["batches"][0]
    st = runs["state0"]
    dense = b["reward"]
    g = np.asarray(GOAL["video_latent"])
    cos = (b["window_latent"] @ g) / (np.linalg.norm(b["window_latent"], axis=1)
                                      * np.linalg.norm(g))
    z_g = DEFN.backward_module().apply({"params": st.fb["params"]["B"]},
                                       GOAL["frame_feature"][None])
    f = DEFN.forward_module().apply({"params": st.fb["params"]["F"]}, jnp.asarray(b["obs"]),
                                    jnp.asarray(b["action"]), jnp.repeat(z_g, B, 0))
    frame = np.asarray(jnp.mean(jnp.sum(f * z_g[None], -1), 0))
    learned = np.asarray(learned_lib.reward(DEFN.learned_hidden, st.reward_model["params"],
                                            b["next_phi"] - b["start_phi"], GOAL))
    raw = {"env_dense": dense, "video": cos, "frame": frame, "learned": learned}
    total = 0.0
    for name, w in TERMS:
        paid = 0.0 if name == "learned" else raw[name].mean()  # (learned: standardised)
        np.testing.assert_allclose(float(m1[f"reward/{name}"][0]), paid,
                                   rtol=1e-4, atol=1e-5, err_msg=name)
        # normalize=True: stats start at count 0, so after one batch mean = batch mean
        mu, sd = raw[name].mean(), np.sqrt(raw[name].var() + 1e-8)
        np.testing.assert_allclose(float(m1[f"reward/{name}_scale"][0]), sd, rtol=1e-3)
        total = total + w * (raw[name] - mu) / sd
    np.testing.assert_allclose(float(m1["reward/total"][0]), total.mean(), atol=1e-4)


def test_nan_raises_naming_term_and_step(runs):
    check_finite(runs["single"][1])  # finite run passes
    stacked = {k: v.copy() for k, v in runs["stacked"].items()}
    stacked["reward"][1, 3] = np.nan                       # second update of the call
    _, m = runs["single_fn"](runs["state0"], stacked, GOAL, runs["key"])
    with pytest.raises(NonFiniteError, match=r"reward/env_dense.*step 2"):
        check_finite(m)
    # a NaN loss with finite rewards: blame the first loss term, with its step
    m = {"critic/loss": np.array([1.0, np.inf, np.nan]), "actor/loss": np.array([1, 2, np.nan]),
         "step": np.array([11, 12, 13])}
    with pytest.raises(NonFiniteError, match=r"critic/loss.*step 12"):
        check_finite(m)


SAC_DEFN = dataclasses.replace(DEFN, use_fb=False, reward_terms=(("env_dense", 1.0),))


def test_terminal_vs_truncation_targets():
    defn = SAC_DEFN
    st = init_agent_state(defn, jax.random.key(3))
    n = 4
    next_obs = jnp.ones((n, O))
    r = jnp.arange(n, dtype=jnp.float32)
    eps = jnp.zeros((n, A))
    terminal = jnp.array([1.0, 0.0, 1.0, 0.0])   # rows 1, 3: truncated (not terminal)
    alpha = jnp.exp(st.temp["params"]["log_alpha"])

    @jax.jit
    def targets(st, alpha):
        t = sac.critic_target(defn, st.critic, st.actor["params"], alpha, next_obs, r,
                              terminal, eps)
        a, logp = sac.policy(defn, st.actor["params"], next_obs, eps)
        v = jnp.min(sac.q_values(defn, st.critic["target"]["q"], next_obs, a), 0) - alpha * logp
        return t, v
    t, v = targets(st, alpha)
    np.testing.assert_allclose(t[jnp.array([0, 2])], r[jnp.array([0, 2])])
    np.testing.assert_allclose(t[jnp.array([1, 3])], (r + defn.discount * v)[jnp.array([1, 3])],
                               rtol=1e-6)
    assert float(jnp.min(jnp.abs(v))) > 1e-4


def test_replay_ring_buffer_and_sharded_step(tmp_path):
    rng = np.random.default_rng(1)
    r = rp.create_replay(10, SPECS)
    t = _transitions(rng, 7)
    r = rp.add(r, t)
    r = rp.add(r, _transitions(rng, 7))          # wraps: rows 7,8,9,0,1,2,3
    assert int(r.size) == 10 and int(r.ptr) == 4
    np.testing.assert_array_equal(np.asarray(r.data["obs"][4:7]), t["obs"][4:7])
    s = jax.jit(rp.sample, static_argnums=2)(r, jax.random.key(0), 5)
    assert s["obs"].shape == (5, O)
    # checkpoint round trip keeps the data
    from vidrl_jax.utils.checkpoint import CheckpointManager
    mgr = CheckpointManager(str(tmp_path / "ckpt"))
    from flax.serialization import from_state_dict, to_state_dict
    mgr.save(1, {"replay": to_state_dict(r)})
    fresh = rp.create_replay(10, SPECS)
    back, _ = mgr.restore({"replay": to_state_dict(fresh)})
    back = {"replay": from_state_dict(fresh, back["replay"])}
    for k in SPECS:
        np.testing.assert_array_equal(np.asarray(back["replay"].data[k]), np.asarray(r.data[k]))
    assert int(back["replay"].size) == 10

    # sharded replay + the pmapped fused step (SAC-only defn: the FB part's pmap path is
    # covered by test_pmap_equals_single_device): devices stay in sync, metrics finite
    sr = rp.create_replay(40, SPECS, num_devices=2)
    tr = _transitions(rng, 24)
    sr = rp.add(sr, {k: v.reshape((2, 12) + v.shape[1:]) for k, v in tr.items()})
    assert np.asarray(sr.size).tolist() == [12, 12]
    np.testing.assert_array_equal(np.asarray(sr.data["obs"][1, :12]), tr["obs"][12:])
    state = replicate(init_agent_state(SAC_DEFN, jax.random.key(0)), 2)
    pstep = compiled(make_pmapped_train_step(), state, sr, GOAL, jax.random.key(2))
    state, m = pstep(state, sr, GOAL, jax.random.key(2))
    check_finite(m)
    assert m["critic/loss"].shape == (2, K)
    assert np.asarray(state.step).tolist() == [K, K]
    for leaf in jax.tree.leaves(state):
        np.testing.assert_array_equal(np.asarray(leaf)[0], np.asarray(leaf)[1])
    _ = unreplicate(state)


def test_reward_config_errors():
    import ml_collections
    from vidrl_jax.errors import ConfigError
    cfg = ml_collections.ConfigDict(dict(env="dens", video=0.0, frame=0.0, likelihood=0.0,
                                         roboclip=0.0))
    with pytest.raises(ConfigError, match="reward.env"):
        terms.active_terms(cfg)
    cfg.env = "none"
    with pytest.raises(ConfigError, match="every reward weight"):
        terms.active_terms(cfg)
    cfg.likelihood = 0.5
    assert terms.active_terms(cfg) == (("likelihood", 0.5),)
    assert terms.extra_columns(cfg) == ("likelihood",)
