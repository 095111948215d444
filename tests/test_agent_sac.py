"""SAC: learns Pendulum-v1 in a short run; pixel encoder + random-shift augmentation."""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.studies.check_sac_pendulum import evaluate, pendulum_defn, train
from vidrl_jax.agents.state import AgentDef, init_agent_state
from vidrl_jax.agents.train_step import check_finite, run_updates
from vidrl_jax.models.augment import random_shift


def test_sac_learns_pendulum():
    # 3000 env steps, 1 update per step (K=10 per fused call). The untrained policy
    # scores about -1200 to -1600; a learning SAC is past -800 here (-150 when solved;
    # experiments/studies/check_sac_pendulum.py runs the long version).
    state, ret = train(3000, seed=0, prefill=500, eval_episodes=3)
    assert int(state.step) == 2510
    assert ret > -800, ret
    init = init_agent_state(pendulum_defn(), jax.random.key(0))
    assert evaluate(init, 0, 1) < -900     # the check can fail: untrained is far worse


def test_random_shift():
    img = jnp.arange(2 * 6 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 6, 1)
    same = random_shift(img, jnp.array([[2, 2], [2, 2]]), pad=2)
    np.testing.assert_array_equal(same, img)
    shifted = random_shift(img, jnp.array([[3, 2], [2, 0]]), pad=2)
    np.testing.assert_array_equal(shifted[0, :5], img[0, 1:])     # one row down
    np.testing.assert_array_equal(shifted[0, 5], img[0, 5])       # edge padding
    np.testing.assert_array_equal(shifted[1, :, 2:], img[1, :, :4])


def test_pixel_sac_update():
    defn = AgentDef(obs_type="pixels", obs_shape=(16, 16, 3), action_dim=2, feature_dim=0,
                    latent_dim=0, hidden=(32, 32), batch_size=8, updates_per_call=2,
                    encoder_channels=(8, 8), encoder_feature_dim=16, aug_pad=2,
                    use_fb=False, reward_terms=(("env_dense", 1.0),), target_entropy=-2.0)
    st = init_agent_state(defn, jax.random.key(0))
    rng = np.random.default_rng(0)
    batches = {"obs": rng.integers(0, 255, (2, 8, 16, 16, 3), dtype=np.uint8),
               "next_obs": rng.integers(0, 255, (2, 8, 16, 16, 3), dtype=np.uint8),
               "action": rng.uniform(-1, 1, (2, 8, 2)).astype(np.float32),
               "reward": rng.normal(size=(2, 8)).astype(np.float32),
               "terminal": np.zeros((2, 8), np.float32)}
    fn = jax.jit(run_updates).lower(st, batches, {}, jax.random.key(1)).compile(
        {"xla_backend_optimization_level": 0})
    new, m = fn(st, batches, {}, jax.random.key(1))
    check_finite(m)
    enc0 = jax.tree.leaves(st.critic["params"]["encoder"])
    enc1 = jax.tree.leaves(new.critic["params"]["encoder"])
    assert max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(enc0, enc1)) > 0
    assert int(new.step) == 2
