"""FB on a 2-D point environment: the frame-level reward F(s,a,z_g)^T z_g with
z_g = B(phi(goal)) rises toward the goal (correlation with -distance > 0.8)."""
import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax.agents import fb as fb_lib
from vidrl_jax.agents.state import AgentDef, init_agent_state

STEP = 0.1   # point env: s' = clip(s + STEP * a, -1, 1), s in [-1, 1]^2


def point_data(n, seed=0):
    """Uniform states and actions; phi(s') = (x, y, x^2, y^2) of the next position
    (a frozen "frame feature" that is not the state itself)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    a = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    s2 = np.clip(s + STEP * a, -1, 1)
    return {"obs": s, "action": a, "next_obs": s2, "next_phi": phi(s2),
            "terminal": np.zeros(n, np.float32)}


def phi(s):
    return np.concatenate([s, s ** 2], -1).astype(np.float32)


def test_fb_frame_reward_rises_toward_goal():
    defn = AgentDef(obs_type="state", obs_shape=(2,), action_dim=2, feature_dim=4,
                    latent_dim=0, use_fb=True, z_dim=16, fb_hidden=(64, 64), fb_lr=1e-3,
                    fb_discount=0.95, fb_tau=0.01, batch_size=128,
                    reward_terms=(("frame", 1.0),))
    state = init_agent_state(defn, jax.random.key(0))
    data = {k: jnp.asarray(v) for k, v in point_data(20000).items()}
    n = data["obs"].shape[0]

    @jax.jit
    def train(fb, key):
        def body(fb, k):
            k_i, k_u = jax.random.split(k)
            idx = jax.random.randint(k_i, (defn.batch_size,), 0, n)
            b = {c: v[idx] for c, v in data.items()}
            return fb_lib.fb_update(defn, fb, b["obs"], b["action"], b["next_obs"],
                                    b["next_phi"], b["terminal"], k_u)
        return jax.lax.scan(body, fb, jax.random.split(key, 1500))

    fb, m = train(state.fb, jax.random.key(1))
    m = {k: np.asarray(v) for k, v in m.items()}
    assert np.all(np.isfinite(m["fb/loss"]))
    np.testing.assert_allclose(m["fb/B_norm"], np.sqrt(16), rtol=1e-4)
    np.testing.assert_allclose(m["fb/z_norm"], np.sqrt(16), rtol=1e-4)

    g = np.linspace(-0.9, 0.9, 13, dtype=np.float32)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    reward = jax.jit(lambda p, s, goal: fb_lib.frame_reward(
        defn, p, s, jnp.zeros((s.shape[0], 2)), goal))
    corrs = []
    for goal in ([0.5, 0.5], [-0.6, 0.2], [0.0, -0.7]):
        goal = np.asarray(goal, np.float32)
        r = np.asarray(reward(fb["params"], jnp.asarray(grid), jnp.asarray(phi(goal[None])[0])))
        corrs.append(np.corrcoef(r, -np.linalg.norm(grid - goal, axis=1))[0, 1])
    print("corr(frame reward, -distance to goal):", corrs)
    assert min(corrs) > 0.8, corrs
