"""Latent video UNet for diffusion over VAE latents.

Shapes: x [B, T, h, w, C] noisy latents, t int32 [B] diffusion timesteps,
cond = {"first_frame": [B, h, w, C] clean first-frame latent,
        "text": int32 [B] task ids (learned table) or float32 [B, F] text features
                (CLIP text embeddings or instruction bag-of-words, see TEXT_MODES)},
drop bool [B]: True replaces both conditions by the null condition (a learned null
text embedding and a zero first frame with a 0 "present" channel), for
classifier-free guidance. Output: [B, T, h, w, C] (eps or v, see diffusion).

Architecture: factorised space-time convolutions (3x3 spatial conv per frame,
then a width-3 temporal conv per pixel), residual blocks modulated by the
timestep embedding (sinusoidal -> MLP) plus the instruction embedding, spatial
self-attention at `attention_levels`, temporal self-attention (with sinusoidal
frame positions) at every level, skip connections between down and up paths.
The first-frame latent is broadcast in time and concatenated to the input
channels together with a presence channel.

`dtype` ('float32' | 'bfloat16', config `diffusion.dtype`): compute dtype of the
convolutions, dense layers and attention; params stay float32, GroupNorm
statistics and the attention softmax are float32, and the output head computes
in float32 (the output is float32 whatever the dtype).
"""
import dataclasses
import logging
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vidrl_jax.envs.tasks import TASKS
from vidrl_jax.errors import ConfigError

# table: a learned embedding per task id; clip / words: a linear map of per-task text
# features (CLIP text embeddings / instruction bag-of-words, envs.tasks.instruction_words).
TEXT_MODES = ("table", "clip", "words")
DTYPES = ("float32", "bfloat16")


def _groups(c):
    return math.gcd(c, 32)


def sinusoidal(positions, dim):
    """[N] positions -> [N, dim] sinusoidal features."""
    half = dim // 2
    freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=jnp.float32) / max(half - 1, 1))
    args = positions.astype(jnp.float32)[:, None] * freqs[None]
    emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
    return jnp.pad(emb, ((0, 0), (0, dim - 2 * half)))


class FactorisedConv(nn.Module):
    """3x3 spatial conv per frame, then a width-3 temporal conv per pixel ('SAME')."""
    features: int
    zero_init: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        b, t, h, w, c = x.shape
        init = nn.initializers.zeros if self.zero_init else nn.initializers.lecun_normal()
        y = nn.Conv(self.features, (3, 3), padding="SAME", dtype=self.dtype)(
            x.reshape(b * t, h, w, c))
        y = y.reshape(b, t, h, w, self.features).transpose(0, 2, 3, 1, 4)
        y = nn.Conv(self.features, (3,), padding="SAME", kernel_init=init, dtype=self.dtype)(
            y.reshape(b * h * w, t, self.features))
        return y.reshape(b, h, w, t, self.features).transpose(0, 3, 1, 2, 4)


class ResBlock(nn.Module):
    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, emb):
        dt = self.dtype
        h = nn.swish(nn.GroupNorm(_groups(x.shape[-1]), dtype=dt)(x))
        h = FactorisedConv(self.features, dtype=dt)(h)
        h = h + nn.Dense(self.features, dtype=dt)(nn.swish(emb))[:, None, None, None, :]
        h = nn.swish(nn.GroupNorm(_groups(self.features), dtype=dt)(h))
        h = FactorisedConv(self.features, zero_init=True, dtype=dt)(h)
        if x.shape[-1] != self.features:
            x = nn.Dense(self.features, dtype=dt)(x)
        return x.astype(dt) + h


class Attention(nn.Module):
    """Pre-norm residual self-attention over axis 'space' (h*w) or 'time' (T)."""
    heads: int
    axis: str
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        b, t, h, w, c = x.shape
        y = nn.GroupNorm(_groups(c), dtype=self.dtype)(x)
        if self.axis == "space":
            y = y.reshape(b * t, h * w, c)
        else:
            y = y.transpose(0, 2, 3, 1, 4).reshape(b * h * w, t, c)
            y = y + sinusoidal(jnp.arange(t), c)[None].astype(self.dtype)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.heads, qkv_features=c, out_kernel_init=nn.initializers.zeros,
            dtype=self.dtype, force_fp32_for_softmax=True)(y, y)
        if self.axis == "space":
            y = y.reshape(b, t, h, w, c)
        else:
            y = y.reshape(b, h, w, t, c).transpose(0, 3, 1, 2, 4)
        return x + y


class UNet3D(nn.Module):
    """See the module docstring. `num_tasks` > 0: learned table; else text features."""
    out_channels: int
    channels: tuple = (64, 128)
    num_res_blocks: int = 1
    attention_levels: tuple = (1,)
    heads: int = 4
    text_dim: int = 64
    text_mode: str = "table"
    num_tasks: int = len(TASKS)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, t, cond, drop):
        b, frames, h, w, c = x.shape
        dt = self.dtype
        ch0 = self.channels[0]
        emb_dim = 4 * ch0
        temb = sinusoidal(t, ch0)
        temb = nn.Dense(emb_dim)(nn.swish(nn.Dense(emb_dim)(temb)))  # (small: float32)

        if self.text_mode == "table":
            text = nn.Embed(self.num_tasks, self.text_dim, name="task_embed")(cond["text"])
        else:
            text = nn.Dense(self.text_dim, name="text_proj")(cond["text"].astype(jnp.float32))
        null = self.param("null_text", nn.initializers.normal(0.02), (self.text_dim,))
        text = jnp.where(drop[:, None], null[None], text)
        emb = temb + nn.Dense(emb_dim)(text)

        keep = (~drop).astype(x.dtype)[:, None, None, None, None]
        first = cond["first_frame"][:, None] * keep
        first = jnp.broadcast_to(first, (b, frames, h, w, first.shape[-1]))
        present = jnp.broadcast_to(keep, (b, frames, h, w, 1))
        hdn = FactorisedConv(ch0, dtype=dt)(jnp.concatenate([x, first, present], axis=-1))

        def attend(hdn, level):
            if level in self.attention_levels:
                hdn = Attention(self.heads, "space", dt)(hdn)
            return Attention(self.heads, "time", dt)(hdn)

        skips = []
        last = len(self.channels) - 1
        for level, ch in enumerate(self.channels):
            for _ in range(self.num_res_blocks):
                hdn = attend(ResBlock(ch, dt)(hdn, emb), level)
            skips.append(hdn)
            if level < last:
                bb, tt, hh, ww, cc = hdn.shape
                hdn = nn.Conv(cc, (3, 3), strides=(2, 2), padding="SAME", dtype=dt)(
                    hdn.reshape(bb * tt, hh, ww, cc)).reshape(bb, tt, hh // 2, ww // 2, cc)

        ch = self.channels[-1]
        hdn = ResBlock(ch, dt)(hdn, emb)
        hdn = Attention(self.heads, "space", dt)(hdn)
        hdn = Attention(self.heads, "time", dt)(hdn)
        hdn = ResBlock(ch, dt)(hdn, emb)

        for level in range(last, -1, -1):
            ch = self.channels[level]
            if level < last:
                bb, tt, hh, ww, cc = hdn.shape
                hdn = jax.image.resize(hdn, (bb, tt, hh * 2, ww * 2, cc), "nearest")
                hdn = nn.Conv(cc, (3, 3), padding="SAME", dtype=dt)(
                    hdn.reshape(bb * tt, hh * 2, ww * 2, cc)).reshape(bb, tt, hh * 2, ww * 2, cc)
            hdn = jnp.concatenate([hdn, skips[level]], axis=-1)
            for _ in range(self.num_res_blocks):
                hdn = attend(ResBlock(ch, dt)(hdn, emb), level)

        # the output head in float32
        hdn = nn.swish(nn.GroupNorm(_groups(hdn.shape[-1]), dtype=jnp.float32)(hdn))
        return FactorisedConv(self.out_channels, zero_init=True)(hdn)


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Hashable architecture config (what `diffusion/unet_config.json` stores)."""
    latent_channels: int
    channels: tuple = (64, 128)
    num_res_blocks: int = 1
    attention_levels: tuple = (1,)
    heads: int = 4
    text_dim: int = 64
    text_mode: str = "table"
    text_feature_dim: int = 0          # text feature size when text_mode != "table"
    dtype: str = "float32"             # compute dtype: float32 | bfloat16 (diffusion.dtype)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["channels"], d["attention_levels"] = list(self.channels), list(self.attention_levels)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["channels"], d["attention_levels"] = tuple(d["channels"]), tuple(d["attention_levels"])
        return cls(**d)


def make_unet(cfg):
    """UNet3D module for a UNetConfig (validated)."""
    if cfg.text_mode not in TEXT_MODES:
        raise ConfigError(f"text_mode={cfg.text_mode!r}; choose one of {', '.join(TEXT_MODES)}")
    if cfg.dtype not in DTYPES:
        raise ConfigError(f"diffusion.dtype={cfg.dtype!r}; choose one of {', '.join(DTYPES)}")
    for c in cfg.channels:
        if c % cfg.heads:
            raise ConfigError(f"diffusion.channels={cfg.channels}: every width must be "
                              f"divisible by diffusion.heads={cfg.heads}")
    bad = [lv for lv in cfg.attention_levels if not 0 <= lv < len(cfg.channels)]
    if bad:
        raise ConfigError(f"diffusion.attention_levels={cfg.attention_levels}: levels {bad} "
                          f"do not exist (0..{len(cfg.channels) - 1})")
    return UNet3D(out_channels=cfg.latent_channels, channels=tuple(cfg.channels),
                  num_res_blocks=cfg.num_res_blocks,
                  attention_levels=tuple(cfg.attention_levels), heads=cfg.heads,
                  text_dim=cfg.text_dim, text_mode=cfg.text_mode, dtype=jnp.dtype(cfg.dtype))


def check_latent_shape(cfg, shape):
    """Raises ConfigError unless latents [.., h, w, C] fit the UNet's downsampling."""
    h, w, c = shape[-3:]
    f = 2 ** (len(cfg.channels) - 1)
    if h % f or w % f:
        raise ConfigError(f"latents of {h}x{w} px are not divisible by 2**(len(diffusion."
                          f"channels)-1)={f}; change env.size or diffusion.channels")
    if c != cfg.latent_channels:
        raise ConfigError(f"latents have {c} channels, the UNet expects {cfg.latent_channels}")


def dummy_cond(cfg, batch, latent_hwc):
    """Zero conditions of the right shapes/dtypes (for init and shape checks)."""
    text = (jnp.zeros((batch,), jnp.int32) if cfg.text_mode == "table"
            else jnp.zeros((batch, cfg.text_feature_dim), jnp.float32))
    return {"first_frame": jnp.zeros((batch,) + tuple(latent_hwc), jnp.float32), "text": text}


def _init_fn(cfg, latent_shape):
    check_latent_shape(cfg, latent_shape)
    model = make_unet(cfg)
    x = jnp.zeros((1,) + tuple(latent_shape), jnp.float32)
    return lambda k: model.init(k, x, jnp.zeros((1,), jnp.int32),
                                dummy_cond(cfg, 1, latent_shape[1:]),
                                jnp.zeros((1,), bool))["params"]


def init_params(cfg, key, latent_shape):
    """Parameters for latents of shape [T', h, w, C]."""
    return jax.jit(_init_fn(cfg, latent_shape))(key)


def init_params_shape(cfg, latent_shape):
    """ShapeDtypeStructs of the parameters (no compute)."""
    return jax.eval_shape(_init_fn(cfg, latent_shape), jax.random.PRNGKey(0))


def make_apply(cfg):
    """`apply_fn(params, x, t, cond, drop) -> out`, a pure function (hashable per cfg)."""
    return _apply_fns.setdefault(cfg, _build_apply(make_unet(cfg)))


_apply_fns = {}


def _build_apply(model):
    def apply_fn(params, x, t, cond, drop):
        return model.apply({"params": params}, x, t, cond, drop)
    return apply_fn


def log_text_mode(cfg, clip_path=""):
    if cfg.text_mode == "clip":
        logging.info("diffusion: instruction embedding = CLIP text features from %s", clip_path)
    elif cfg.text_mode == "words":
        logging.info("diffusion: instruction embedding = learned word embeddings of the "
                     "instruction (diffusion.text=words, clip.path is empty)")
    else:
        logging.info("diffusion: instruction embedding = learned per-task table "
                     "(clip.path is empty); unseen tasks get an untrained embedding")
