"""A small CNN that scores single frames, and its trainer (BCE, random shifts).

    params = train_frame_classifier(frames [M,H,W,3] uint8, labels [M] in [0,1],
                                    steps=1500, batch=128, seed=0, balanced=False)
    logits = frame_logits(params, frames [N,H,W,3] uint8)          # [N] float32

Used by the goal-video judge (balanced batches of done and not-done real frames) and by
the progress net reward (uniform batches of goal-video frames labelled by their time).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vidrl_jax.errors import VidrlError
from vidrl_jax.models.augment import draw_shifts, random_shift

SHIFT = 2  # random-shift augmentation (pixels)


class FrameClassifier(nn.Module):
    """uint8 frames [B,H,W,3] -> logit [B]: three stride-2 3x3 convs (32, 64, 64), a
    128-unit hidden layer."""

    @nn.compact
    def __call__(self, x):
        x = x.astype(jnp.float32) / 127.5 - 1.0
        for c in (32, 64, 64):
            x = nn.relu(nn.Conv(c, (3, 3), strides=2)(x))
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return nn.Dense(1)(x)[:, 0]


def train_frame_classifier(frames, labels, steps=1500, batch=128, seed=0, balanced=False,
                           lr=3e-4):
    """FrameClassifier params after `steps` Adam steps of BCE against soft labels [M] in
    [0,1], each frame randomly shifted by up to SHIFT pixels. `balanced`: half of each
    batch from frames labelled > 0.5, half from the rest; else uniform over frames."""
    net, opt = FrameClassifier(), optax.adam(lr)
    key = jax.random.PRNGKey(seed)
    params = net.init(key, frames[:1])["params"]
    state = opt.init(params)
    frames, labels = jnp.asarray(frames), jnp.asarray(labels, jnp.float32)
    if balanced:
        pos, neg = jnp.flatnonzero(labels > 0.5), jnp.flatnonzero(labels <= 0.5)
        if not len(pos) or not len(neg):
            raise VidrlError("a balanced frame classifier needs frames labelled above and "
                             "below 0.5")

    def draw(key):
        if not balanced:
            return jax.random.randint(key, (batch,), 0, len(frames))
        kp, kn = jax.random.split(key)
        return jnp.concatenate([pos[jax.random.randint(kp, (batch // 2,), 0, len(pos))],
                                neg[jax.random.randint(kn, (batch - batch // 2,), 0,
                                                       len(neg))]])

    @jax.jit
    def step(params, state, key):
        ki, ks = jax.random.split(key)
        idx = draw(ki)
        x = random_shift(frames[idx], draw_shifts(ks, batch, SHIFT), SHIFT)

        def loss(p):
            return jnp.mean(optax.sigmoid_binary_cross_entropy(
                net.apply({"params": p}, x), labels[idx]))
        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), state

    for _ in range(steps):
        key, k = jax.random.split(key)
        params, state = step(params, state, k)
    return params


@jax.jit
def _logits(params, frames):
    return FrameClassifier().apply({"params": params}, frames)


def frame_logits(params, frames):
    """Logits [N] of frames [N,H,W,3] uint8."""
    return np.asarray(_logits(params, jnp.asarray(frames)))
