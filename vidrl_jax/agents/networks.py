"""Flax networks for SAC and FB: MLPs, twin critics, tanh-Gaussian actor, pixel encoder.

Shapes: B = batch, O = obs dim (state) or H x W x C uint8 (pixels), A = action dim,
Z = FB latent dim, P = frame-feature dim (phi of a frame).
"""
from typing import Sequence

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


SQRT2 = math.sqrt(2.0)


def default_init(scale=1.0):
    """Variance-scaling (fan-in, truncated normal) init; `scale` is a gain.

    (Orthogonal init, as in jaxrl, needs a QR per layer, which costs seconds of
    compile time per layer shape on CPU; this is as good for these MLP sizes.)
    """
    return nn.initializers.variance_scaling(float(scale) ** 2, "fan_in", "truncated_normal")


class MLP(nn.Module):
    """Dense layers with ReLU between them; the last layer has no activation
    unless `activate_final`."""
    features: Sequence[int]
    activate_final: bool = False

    @nn.compact
    def __call__(self, x):
        for i, f in enumerate(self.features):
            x = nn.Dense(f, kernel_init=default_init(SQRT2))(x)
            if i + 1 < len(self.features) or self.activate_final:
                x = nn.relu(x)
        return x


class QHead(nn.Module):
    """Q(h, a) -> [B] for one critic."""
    hidden: Sequence[int]

    @nn.compact
    def __call__(self, h, a):
        x = jnp.concatenate([h, a], -1)
        x = MLP(tuple(self.hidden), activate_final=True)(x)
        return nn.Dense(1, kernel_init=default_init(1.0))(x)[..., 0]


class TwinCritic(nn.Module):
    """Two independent Q heads evaluated in one vectorised call: -> [2, B]."""
    hidden: Sequence[int]
    num: int = 2

    @nn.compact
    def __call__(self, h, a):
        ens = nn.vmap(QHead, variable_axes={"params": 0}, split_rngs={"params": True},
                      in_axes=None, out_axes=0, axis_size=self.num)
        return ens(self.hidden)(h, a)


class TanhGaussianActor(nn.Module):
    """pi(a|h): returns (mean [B,A], log_std [B,A]) of the pre-tanh Gaussian."""
    hidden: Sequence[int]
    action_dim: int
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, h):
        x = MLP(tuple(self.hidden), activate_final=True)(h)
        mean = nn.Dense(self.action_dim, kernel_init=default_init(1.0))(x)
        log_std = nn.Dense(self.action_dim, kernel_init=default_init(1.0))(x)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (
            jnp.tanh(log_std) + 1.0)
        return mean, log_std


def tanh_gaussian_sample(mean, log_std, eps):
    """Reparameterised sample a = tanh(mean + std*eps) and its log-prob [B]."""
    std = jnp.exp(log_std)
    pre = mean + std * eps
    logp = jnp.sum(-0.5 * eps ** 2 - 0.5 * jnp.log(2 * jnp.pi) - log_std, -1)
    # log(1 - tanh(x)^2) computed stably.
    logp -= jnp.sum(2.0 * (jnp.log(2.0) - pre - jax.nn.softplus(-2.0 * pre)), -1)
    return jnp.tanh(pre), logp


class Temperature(nn.Module):
    """alpha = exp(log_alpha), a learned scalar."""
    init_value: float = 0.1

    @nn.compact
    def __call__(self):
        log_alpha = self.param("log_alpha", lambda _: jnp.full((), jnp.log(self.init_value)))
        return jnp.exp(log_alpha)


class IdentityEncoder(nn.Module):
    """State observations pass through unchanged (no parameters)."""

    @nn.compact
    def __call__(self, obs):
        return obs.astype(jnp.float32)


class ConvEncoder(nn.Module):
    """Small DrQ-style conv encoder: uint8 [B,H,W,C] -> [B, feature_dim] (LayerNorm+tanh)."""
    channels: Sequence[int] = (32, 32, 32, 32)
    feature_dim: int = 50

    @nn.compact
    def __call__(self, obs):
        x = obs.astype(jnp.float32) / 255.0 - 0.5
        for i, c in enumerate(self.channels):
            x = nn.Conv(c, (3, 3), strides=2 if i == 0 else 1, padding="VALID",
                        kernel_init=default_init(SQRT2))(x)
            x = nn.relu(x)
        x = x.reshape(x.shape[:-3] + (-1,))
        x = nn.Dense(self.feature_dim)(x)
        return jnp.tanh(nn.LayerNorm()(x))


class Embed(nn.Module):
    """FB input embedding: Dense -> LayerNorm -> tanh -> Dense -> ReLU (metamotivo-style)."""
    hidden: int
    out: int

    @nn.compact
    def __call__(self, x):
        x = jnp.tanh(nn.LayerNorm()(nn.Dense(self.hidden)(x)))
        return nn.relu(nn.Dense(self.out)(x))


class ForwardHead(nn.Module):
    """One F(s,a,z) head -> [B,Z]: embeddings of (s,a) and (s,z), then an MLP."""
    hidden: Sequence[int]
    z_dim: int

    @nn.compact
    def __call__(self, s, a, z):
        h = self.hidden[0]
        e1 = Embed(h, h // 2)(jnp.concatenate([s, a], -1))
        e2 = Embed(h, h // 2)(jnp.concatenate([s, z], -1))
        x = MLP(tuple(self.hidden[1:]), activate_final=True)(jnp.concatenate([e1, e2], -1))
        return nn.Dense(self.z_dim)(x)


class ForwardMap(nn.Module):
    """Twin F(s,a,z) heads -> [2, B, Z]."""
    hidden: Sequence[int]
    z_dim: int
    num: int = 2

    @nn.compact
    def __call__(self, s, a, z):
        ens = nn.vmap(ForwardHead, variable_axes={"params": 0}, split_rngs={"params": True},
                      in_axes=None, out_axes=0, axis_size=self.num)
        return ens(self.hidden, self.z_dim)(s, a, z)


class BackwardMap(nn.Module):
    """B(phi) -> [B, Z], projected onto the sphere of radius sqrt(Z)."""
    hidden: Sequence[int]
    z_dim: int

    @nn.compact
    def __call__(self, phi):
        x = jnp.tanh(nn.LayerNorm()(nn.Dense(self.hidden[0])(phi)))
        x = MLP(tuple(self.hidden[1:]), activate_final=True)(x)
        x = nn.Dense(self.z_dim)(x)
        return project_sphere(x)


def project_sphere(z):
    """Scales each row of z [..., Z] to norm sqrt(Z)."""
    d = z.shape[-1]
    return jnp.sqrt(d) * z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-6)


class FBActor(nn.Module):
    """pi_z(s): deterministic tanh action [B,A] (exploration/smoothing noise added outside)."""
    hidden: Sequence[int]
    action_dim: int

    @nn.compact
    def __call__(self, s, z):
        h = self.hidden[0]
        e1 = Embed(h, h // 2)(s)
        e2 = Embed(h, h // 2)(jnp.concatenate([s, z], -1))
        x = MLP(tuple(self.hidden[1:]), activate_final=True)(jnp.concatenate([e1, e2], -1))
        return jnp.tanh(nn.Dense(self.action_dim)(x))
