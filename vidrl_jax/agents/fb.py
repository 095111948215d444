"""Forward-backward representation (Touati & Ollivier), trained online from the replay.

F(s,a,z) [2,B,Z] (twin heads), B(phi(s')) [B,Z] on frozen frame features of next
states, projected to norm sqrt(Z); pi_z(s) the FB policy maximising F(s,a,z)^T z.

Successor-measure TD loss over all pairs (i, j) of the *global* batch, with
M_ij = F(s_i,a_i,z_i)^T B(phi'_j) and target M'_ij = F'(s'_i, pi_z(s'_i), z_i)^T B'(phi'_j):
  diff = M - gamma * (1 - terminal_i) * M'
  loss = 0.5 * mean_{i != j} diff_ij^2 - mean_i diff_ii   (summed over the F heads)
plus an orthonormality loss on B: 0.5 * mean_{i != j} (B_i.B_j)^2 - mean_i B_i.B_i.

Across devices each device holds rows i of its local batch and all columns j
(B gathered with lax.all_gather), so per-device means, averaged with pmean, equal the
single-device loss on the global batch. Random draws are made at global batch size
and sliced per device (`global_noise`), so the pmapped step equals the 1-device step.
"""
import jax
import jax.numpy as jnp
import optax

from vidrl_jax.agents import networks as nets
from vidrl_jax.agents.sac import pmean, soft_update


def axis_size(axis_name):
    return 1 if axis_name is None else jax.lax.psum(1, axis_name)


def gather(x, axis_name):
    """Concatenates x [b, ...] over devices -> [b * n, ...] (differentiable)."""
    if axis_name is None:
        return x
    return jax.lax.all_gather(x, axis_name, axis=0, tiled=True)


def local_rows(x, local_b, axis_name):
    """The rows of a global array [b * n, ...] that belong to this device."""
    if axis_name is None:
        return x
    start = jax.lax.axis_index(axis_name) * local_b
    return jax.lax.dynamic_slice_in_dim(x, start, local_b, axis=0)


def global_noise(sampler, key, local_b, tail, axis_name):
    """Draws sampler(key, (b * n,) + tail) and returns this device's rows."""
    x = sampler(key, (local_b * axis_size(axis_name),) + tuple(tail))
    return local_rows(x, local_b, axis_name)


def _offdiag_mask(local_b, axis_name):
    """[b, b*n] mask, 0 at (i, global index of row i), 1 elsewhere."""
    n = axis_size(axis_name)
    rows = jnp.arange(local_b)
    if axis_name is not None:
        rows = rows + jax.lax.axis_index(axis_name) * local_b
    return 1.0 - jax.nn.one_hot(rows, local_b * n)


def _diag(m, local_b, axis_name):
    """Entries (i, global index of row i) of m [..., b, b*n] -> [..., b]."""
    rows = jnp.arange(local_b)
    if axis_name is not None:
        rows = rows + jax.lax.axis_index(axis_name) * local_b
    return jnp.take_along_axis(m, jnp.broadcast_to(rows[:, None], m.shape[:-1] + (1,)),
                               axis=-1)[..., 0]


def forward(defn, f_params, h, a, z):
    return defn.forward_module().apply({"params": f_params}, h, a, z)


def backward(defn, b_params, phi):
    return defn.backward_module().apply({"params": b_params}, phi)


def fb_policy(defn, pi_params, h, z, eps=None):
    """pi_z(h) with clipped Gaussian smoothing noise when eps [B,A] is given."""
    a = defn.fb_actor_module().apply({"params": pi_params}, h, z)
    if eps is None:
        return a
    c = defn.fb_actor_noise_clip
    return jnp.clip(a + jnp.clip(defn.fb_actor_noise * eps, -c, c), -1.0, 1.0)


def sample_z(defn, b_params, next_phi, key, axis_name=None):
    """z [b, Z]: random directions on the sphere of radius sqrt(Z), a share
    `z_mix_ratio` replaced by B(phi') of (shuffled) replay next states."""
    local_b = next_phi.shape[0]
    n_global = local_b * axis_size(axis_name)
    k_g, k_m, k_p = jax.random.split(key, 3)
    z_rand = nets.project_sphere(jax.random.normal(k_g, (n_global, defn.z_dim)))
    b_all = jax.lax.stop_gradient(gather(backward(defn, b_params, next_phi), axis_name))
    z_b = b_all[jax.random.permutation(k_p, n_global)]
    mix = jax.random.uniform(k_m, (n_global, 1)) < defn.z_mix_ratio
    return local_rows(jnp.where(mix, z_b, z_rand), local_b, axis_name)


def fb_loss(fb_params_fb, defn, target, pi_params, h, action, next_h, next_phi, terminal,
            z, eps_next, axis_name=None):
    """FB TD loss + ortho loss. fb_params_fb = {"F", "B"}; h/next_h encoder features
    [b,H]; next_phi [b,P]; z [b,Z]; eps_next [b,A]. Returns (loss, metrics)."""
    local_b = h.shape[0]
    next_a = fb_policy(defn, pi_params, next_h, z, eps_next)
    t_f = forward(defn, target["F"], next_h, next_a, z)                 # [2,b,Z]
    t_b = gather(backward(defn, target["B"], next_phi), axis_name)      # [N,Z]
    t_m = jnp.mean(jnp.einsum("kbz,nz->kbn", t_f, t_b), axis=0)         # [b,N]
    bootstrap = (1.0 - terminal.astype(jnp.float32))[:, None]
    target_m = jax.lax.stop_gradient(defn.fb_discount * bootstrap * t_m)

    f = forward(defn, fb_params_fb["F"], h, action, z)                  # [2,b,Z]
    b_local = backward(defn, fb_params_fb["B"], next_phi)               # [b,Z]
    b_all = gather(b_local, axis_name)                                  # [N,Z]
    m = jnp.einsum("kbz,nz->kbn", f, b_all)                             # [2,b,N]
    diff = m - target_m[None]
    off = _offdiag_mask(local_b, axis_name)
    off_count = jnp.sum(off)
    heads = f.shape[0]
    offdiag = 0.5 * jnp.sum((diff * off) ** 2) / off_count
    diag = -jnp.mean(_diag(diff, local_b, axis_name)) * heads
    cov = b_local @ b_all.T                                             # [b,N]
    ortho_off = 0.5 * jnp.sum((cov * off) ** 2) / off_count
    ortho_diag = -jnp.mean(_diag(cov, local_b, axis_name))
    ortho = ortho_off + ortho_diag
    loss = offdiag + diag + defn.ortho_weight * ortho
    metrics = {"fb/loss": loss, "fb/offdiag": offdiag, "fb/diag": diag, "fb/ortho": ortho,
               "fb/M_diag": jnp.mean(_diag(m, local_b, axis_name)),
               "fb/M_offdiag": jnp.sum(m * off) / (off_count * heads),
               "fb/B_norm": jnp.mean(jnp.linalg.norm(b_local, axis=-1)),
               "fb/z_norm": jnp.mean(jnp.linalg.norm(z, axis=-1))}
    return loss, metrics


def fb_actor_loss(pi_params, defn, f_params, h, z, eps):
    """-E[mean_heads F(s, pi_z(s) + noise, z)^T z]."""
    a = fb_policy(defn, pi_params, h, z, eps)
    q = jnp.einsum("kbz,bz->kb", forward(defn, f_params, h, a, z), z)
    loss = -jnp.mean(q)
    return loss, {"fb/actor_loss": loss, "fb/q": jnp.mean(q)}


def fb_update(defn, fb, h, action, next_h, next_phi, terminal, key, axis_name=None):
    """One FB update (F and B, then pi_z, then targets).

    fb: the FB sub-state; h/next_h: stop-gradient encoder features [b,H] of obs and
    next obs; action [b,A]; next_phi frame features of next obs [b,P]; terminal [b].
    Returns (fb, metrics).
    """
    local_b = h.shape[0]
    k_z, k_n, k_a = jax.random.split(key, 3)
    z = sample_z(defn, fb["params"]["B"], next_phi, k_z, axis_name)
    eps_next = global_noise(jax.random.normal, k_n, local_b, (defn.action_dim,), axis_name)
    eps = global_noise(jax.random.normal, k_a, local_b, (defn.action_dim,), axis_name)
    tx = defn.optimizer(defn.fb_lr)

    p_fb = {"F": fb["params"]["F"], "B": fb["params"]["B"]}
    grads, m = jax.grad(fb_loss, has_aux=True)(
        p_fb, defn, fb["target"], fb["params"]["pi"], h, action, next_h, next_phi, terminal,
        z, eps_next, axis_name)
    grads = pmean(grads, axis_name)
    upd, opt_fb = tx.update(grads, fb["opt"]["FB"], p_fb)
    p_fb = optax.apply_updates(p_fb, upd)

    grads, m_pi = jax.grad(fb_actor_loss, has_aux=True)(
        fb["params"]["pi"], defn, p_fb["F"], h, z, eps)
    grads = pmean(grads, axis_name)
    upd, opt_pi = tx.update(grads, fb["opt"]["pi"], fb["params"]["pi"])
    pi = optax.apply_updates(fb["params"]["pi"], upd)

    target = {"F": soft_update(fb["target"]["F"], p_fb["F"], defn.fb_tau),
              "B": soft_update(fb["target"]["B"], p_fb["B"], defn.fb_tau)}
    fb = {"params": {"F": p_fb["F"], "B": p_fb["B"], "pi": pi}, "target": target,
          "opt": {"FB": opt_fb, "pi": opt_pi}}
    return fb, pmean({**m, **m_pi}, axis_name)


def goal_z(defn, b_params, goal_phi):
    """z_g = B(phi(goal frame)) [1,Z] (on the sphere of radius sqrt(Z)); goal_phi [P]."""
    return backward(defn, b_params, goal_phi[None])


def frame_reward(defn, fb_params, h, action, goal_phi):
    """F(s,a,z_g)^T z_g [B] (mean over heads) with z_g = B(phi(goal frame)); goal_phi [P].

    This is `reward.frame_form=fz` (and, divided by its running std, `fz_scaled`;
    vidrl_jax/rewards/terms.py). The paper's F(s,a,z_g)^T B(g) is the same quantity,
    not a separate form: z_g is B(phi(g)) itself (B's output is projected on the
    sphere, so no further normalisation makes z_g differ from B(g)).
    """
    z_g = goal_z(defn, fb_params["B"], goal_phi)                        # [1,Z]
    z = jnp.broadcast_to(z_g, (h.shape[0], defn.z_dim))
    f = forward(defn, fb_params["F"], h, action, z)
    return jnp.mean(jnp.einsum("kbz,bz->kb", f, z), axis=0)


def frame_bsim(defn, fb_params, next_phi, goal_phi, eps=1e-8):
    """cos(B(phi(s')), z_g) [B] in [-1, 1] (`reward.frame_form=bsim`): how close the
    next state's backward embedding is to the goal's; next_phi [B,P], goal_phi [P].
    Bounded and independent of F's scale, which grows as FB trains."""
    z_g = goal_z(defn, fb_params["B"], goal_phi)[0]                     # [Z]
    b = backward(defn, fb_params["B"], next_phi)                        # [B,Z]
    b = b / jnp.maximum(jnp.linalg.norm(b, axis=-1, keepdims=True), eps)
    return jnp.clip(b @ (z_g / jnp.maximum(jnp.linalg.norm(z_g), eps)), -1.0, 1.0)
