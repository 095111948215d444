"""A reward model learned from the generated goal video and against the agent's own frames.

What it sees: the change a frame shows since its episode began, in the VAE's latent
space, Δφ = φ(frame) − φ(episode's first frame) [P]. The generated goal videos and the
agent's real frames both pass through the same encoder, and each is taken relative to
its own first frame, so what the decoder adds to every generated frame alike (its
blur, its colour shift) cancels; what is left is the motion and the object's change.

What it learns (a discriminator, as in VICE / GAIL, with progress labels on the goal
video as in TimeRewarder):
  goal video frames   Δφ of frame t of each of the N goal videos, label t/(T−1): the
                      video itself says what comes late (the task done) and early
  agent frames        Δφ of the replay's next frames, label 0: every pose the agent
                      finds without the task done stops being paid as it is visited
Loss: mean BCE over the goal frames + mean BCE over the agent frames (balanced), plus
domain_weight x the BCE of a domain head (generated 1, real 0) that reads the hidden
features through a reversed gradient: the features are trained so that it cannot tell
generated frames from real ones. Without it every real frame's logit sinks far below
the generated ones' (about −40 on door-open), where the gradient on the agent's frames
vanishes and nothing the agent holds stops being paid.
Reward: the logit, log D − log(1 − D) (AIRL's form), paid standardised by its running
statistics (rewards/terms.py): an offset between the two domains changes no ranking
among the agent's frames, which is all a reward needs.

    params = init(hidden, feature_dim, key); opt = optimizer(lr).init(params)
    r = reward(hidden, params, dphi [B,P], goal)                       # [B] logits
    params, opt, metrics = update(hidden, lr, domain_weight, params, opt, dphi [B,P],
                                  goal, key, axis_name)
    metrics["learned/domain_units_firing"]   # 0: the domain head has gone silent

goal: {"gen_dphi": [M,P] Δφ of the goal videos' frames, "gen_progress": [M] in [0,1],
"dphi_mean", "dphi_scale": [P] the goal frames' per-feature mean and std (the input's
standardisation)}, built on the host once (goal_inputs).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

GEN_BATCH = 128  # goal-video frames per update


@jax.custom_vjp
def reverse_gradient(x):
    """Identity whose gradient is negated (domain-adversarial training, Ganin et al.)."""
    return x


reverse_gradient.defvjp(lambda x: (x, None), lambda _, g: (-g,))


class GoalDiscriminator(nn.Module):
    """MLP on scaled Δφ [B,P] -> (logit [B], domain logit [B]: generated vs real, read
    through a reversed gradient, so the features learn not to tell the two apart)."""
    hidden: tuple = (256, 256)

    @nn.compact
    def __call__(self, x):
        for h in self.hidden:
            x = nn.relu(nn.Dense(h)(x))
        domain = nn.Dense(1)(nn.relu(nn.Dense(64)(reverse_gradient(x))))[:, 0]
        return nn.Dense(1)(x)[:, 0], domain


def init(hidden, feature_dim, key):
    return GoalDiscriminator(tuple(hidden)).init(key, jnp.zeros((1, feature_dim)))["params"]


def optimizer(lr):
    return optax.adam(lr)


def reward(hidden, params, dphi, goal):
    """Logits [B] of Δφ [B,P]: the reward before standardisation."""
    return _apply(hidden, params, dphi, goal)[0]


def _apply(hidden, params, dphi, goal, capture=False):
    """(logit [B], domain logit [B]); with `capture` also the domain head's hidden
    pre-activations [B,64] (the Dense built after the hidden layers and the domain
    head's output layer)."""
    x = (dphi - goal["dphi_mean"]) / goal["dphi_scale"]
    model = GoalDiscriminator(tuple(hidden))
    if not capture:
        return model.apply({"params": params}, x)
    (logit, domain), state = model.apply({"params": params}, x, capture_intermediates=True)
    return logit, domain, state["intermediates"][f"Dense_{len(hidden) + 1}"]["__call__"][0]


def units_firing(pre, axis_name=None):
    """Share of the domain head's hidden units that fire on at least one frame of
    pre-activations [B,64] (of any device's along `axis_name`). 0: the head has gone
    silent (a constant output, loss ln 2, no gradient to the features), which the
    reversed gradient drives it to."""
    fired = jnp.any(pre > 0, axis=0).astype(jnp.float32)
    if axis_name is not None:
        fired = jax.lax.pmax(fired, axis_name)
    return jnp.mean(fired)


def loss(params, hidden, domain_weight, dphi, gen_dphi, gen_progress, goal):
    """Balanced BCE of the agent frames (label 0) and the goal frames (their progress),
    plus domain_weight x the domain head's BCE (generated 1, real 0). Aux: (the three
    losses, the domain head's hidden pre-activations on both batches)."""
    bce = optax.sigmoid_binary_cross_entropy
    logit_a, dom_a, pre_a = _apply(hidden, params, dphi, goal, capture=True)
    logit_g, dom_g, pre_g = _apply(hidden, params, gen_dphi, goal, capture=True)
    agent, gen = jnp.mean(bce(logit_a, 0.0)), jnp.mean(bce(logit_g, gen_progress))
    domain = 0.5 * (jnp.mean(bce(dom_a, 0.0)) + jnp.mean(bce(dom_g, 1.0)))
    return (agent + gen + domain_weight * domain,
            (agent, gen, domain, jnp.concatenate([pre_a, pre_g])))


def update(hidden, lr, domain_weight, params, opt_state, dphi, goal, key, axis_name=None):
    """One Adam step on a replay batch's Δφ [B,P] (negatives) and GEN_BATCH goal-video
    frames drawn with `key` (the same on every device). Gradients are averaged over
    `axis_name`. Returns (params, opt_state, metrics)."""
    idx = jax.random.randint(key, (GEN_BATCH,), 0, goal["gen_dphi"].shape[0])
    (_, (agent, gen, domain, pre)), grads = jax.value_and_grad(loss, has_aux=True)(
        params, hidden, domain_weight, dphi, goal["gen_dphi"][idx],
        goal["gen_progress"][idx], goal)
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
    updates, opt_state = optimizer(lr).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, {
        "learned/loss_agent": agent, "learned/loss_goal": gen, "learned/loss_domain": domain,
        "learned/domain_units_firing": units_firing(pre, axis_name)}


def goal_inputs(phi, videos):
    """The goal entries the model reads, from the goal videos [N,T,H,W,3] uint8 and the
    frame encoder phi ([K,H,W,3] -> [K,P]): {"gen_dphi" [N*T,P], "gen_progress" [N*T],
    "dphi_mean" [P], "dphi_scale" [P]} (the input standardisation: the goal frames'
    per-feature mean and std)."""
    n, t = videos.shape[:2]
    flat = jnp.asarray(phi(videos.reshape((n * t,) + videos.shape[2:]))).reshape(n, t, -1)
    dphi = (flat - flat[:, :1]).reshape(n * t, -1)
    progress = jnp.tile(jnp.arange(t, dtype=jnp.float32) / max(t - 1, 1), n)
    return {"gen_dphi": dphi, "gen_progress": progress,
            "dphi_mean": jnp.mean(dphi, axis=0), "dphi_scale": jnp.std(dphi, axis=0) + 1e-3}
