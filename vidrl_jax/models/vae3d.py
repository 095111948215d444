"""Causal 3D convolutional video VAE ("the video encoder" of the rewards).

Shapes (B batch, T frames, H = W = size, C latent channels):
    video   uint8 or float [B, T, H, W, 3]  (uint8 0..255, float in [0, 1])
    latents float32 [B, T', h, w, C],  T' = 1 + (T - 1) / temporal_downsample,
                                        h = H / spatial_downsample
Causal: every conv pads time only at the front (replicating the first frame),
normalisation is per frame, and temporal downsampling pairs frames (2j-1, 2j)
with frame 0 paired with itself. So latent frame j depends only on frames
<= j * temporal_downsample; frame 0 is encoded on its own and a single frame
(T = 1) maps to one latent frame. Convolutions are factorised: a 3x3 spatial
conv per frame, then a causal temporal conv of width 3. With patch_size > 1 the
input is first cut into patch_size x patch_size patches (space-to-depth; the
first temporal halving happens there too), which makes the full-resolution
layers cheap: spatial_downsample = patch_size * 2 ** (len(channels) - 1).
`dtype` ('float32' | 'bfloat16', config `vae.dtype`) is the compute dtype of the
convolutions and activations; params stay float32, GroupNorm statistics are
float32, and the latent head and the output conv compute in float32 (latents and
reconstructions are float32 whatever the dtype).

Public pure functions (model_config = the `config.vae` section plus `size`, a
`VAEConfig`, or a dict; all take plain values so they can be closed over in jit):
    init(model_config, key) -> params
    encode(model_config, params, video) -> (mean, logvar)       [B, T', h, w, C] each
    decode(model_config, params, latents) -> float video in [0, 1] [B, T, H, W, 3]
    decode_uint8(model_config, params, latents) -> uint8 video
    video_embedding(model_config, params, video) -> [B, T'*h*w*C]  (flat posterior mean)
    frame_features(model_config, params, frames [B, H, W, 3]) -> [B, h*w*C]
    save(stage_dir, model_config, params);  load(stage_dir) -> (VAEConfig, params)
"""
import dataclasses
import json
import math
import os
import tempfile
from typing import Any

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax.errors import CheckpointError, ConfigError, VidrlError

PARAMS_FILE = "vae_params.msgpack"
DTYPES = ("float32", "bfloat16")
CONFIG_FILE = "vae_config.json"


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Hashable model config (the architecture only; training fields are ignored)."""
    channels: tuple = (32, 64, 64)
    latent_channels: int = 8
    spatial_downsample: int = 4
    temporal_downsample: int = 4
    size: int = 32
    patch_size: int = 1
    dtype: str = "float32"  # compute dtype (see the module docstring)

    @property
    def latent_size(self):
        return self.size // self.spatial_downsample

    def latent_frames(self, num_frames):
        check_num_frames(self, num_frames)
        return 1 + (num_frames - 1) // self.temporal_downsample

    def num_frames(self, latent_frames):
        return 1 + (latent_frames - 1) * self.temporal_downsample

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        return d


def as_config(model_config, size=None):
    """VAEConfig from a VAEConfig, a `config.vae` ConfigDict (needs `size` or a
    `size` field) or a dict; validates the architecture fields."""
    if isinstance(model_config, VAEConfig):
        cfg = model_config
    else:
        get = (model_config.get if hasattr(model_config, "get")
               else lambda k, d=None: getattr(model_config, k, d))
        size = size if size is not None else get("size", None)
        if size is None:
            raise ConfigError("VAE model config needs the frame size: pass size=config.env.size "
                              "(vae3d.as_config(config.vae, size=config.env.size))")
        cfg = VAEConfig(channels=tuple(int(c) for c in get("channels")),
                        latent_channels=int(get("latent_channels")),
                        spatial_downsample=int(get("spatial_downsample")),
                        temporal_downsample=int(get("temporal_downsample")),
                        size=int(size), patch_size=int(get("patch_size", 1) or 1),
                        dtype=str(get("dtype", "float32") or "float32"))
    if cfg.dtype not in DTYPES:
        raise ConfigError(f"vae.dtype={cfg.dtype!r}; choose one of {', '.join(DTYPES)}")
    levels = len(cfg.channels)
    if levels < 1 or any(c <= 0 for c in cfg.channels):
        raise ConfigError(f"vae.channels={cfg.channels}: needs at least one positive width")
    if cfg.patch_size not in (1, 2, 4):
        raise ConfigError(f"vae.patch_size={cfg.patch_size} must be 1, 2 or 4")
    if cfg.spatial_downsample != cfg.patch_size * 2 ** (levels - 1):
        raise ConfigError(f"vae.spatial_downsample={cfg.spatial_downsample} must be "
                          f"vae.patch_size * 2 ** (len(vae.channels) - 1) = "
                          f"{cfg.patch_size * 2 ** (levels - 1)}")
    td, stages = cfg.temporal_downsample, _num_stages(cfg)
    if td < 1 or td & (td - 1) or td > 2 ** stages:
        raise ConfigError(f"vae.temporal_downsample={td} must be a power of two <= "
                          f"{2 ** stages} (one halving per downsampling stage: the patch "
                          f"embedding when patch_size > 1, then each level)")
    if cfg.size % cfg.spatial_downsample:
        raise ConfigError(f"env.size={cfg.size} must be divisible by "
                          f"vae.spatial_downsample={cfg.spatial_downsample}")
    return cfg


def check_num_frames(cfg, num_frames):
    if num_frames < 1 or (num_frames - 1) % cfg.temporal_downsample:
        ok = ", ".join(str(1 + k * cfg.temporal_downsample) for k in range(4))
        raise VidrlError(f"the VAE needs T with (T - 1) % temporal_downsample == 0 "
                         f"(temporal_downsample={cfg.temporal_downsample}: T = {ok}, ...); "
                         f"got T={num_frames} (resample the clip, e.g. "
                         f"rewards.video_level.resample_window)")


# ----------------------------------------------------------------------------- layers

def _groups(channels):
    return math.gcd(channels, 8)


class FrameNorm(nn.Module):
    """GroupNorm over (H, W, channel group) of each frame separately (keeps causality);
    statistics in float32, output in `dtype`."""
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        b, t = x.shape[:2]
        y = nn.GroupNorm(num_groups=_groups(x.shape[-1]), dtype=self.dtype)(
            x.reshape((b * t,) + x.shape[2:]))
        return y.reshape(x.shape)


class CausalConv(nn.Module):
    """3x3 spatial conv per frame, then a causal temporal conv (front replicate pad)."""
    features: int
    temporal_kernel: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        b, t, h, w, c = x.shape
        y = nn.Conv(self.features, (3, 3), padding="SAME", dtype=self.dtype)(
            x.reshape(b * t, h, w, c))
        y = y.reshape(b, t, h, w, self.features)
        k = self.temporal_kernel
        if k > 1:
            pad = jnp.repeat(y[:, :1], k - 1, axis=1)
            y = jnp.concatenate([pad, y], axis=1)
            y = nn.Conv(self.features, (k, 1, 1), padding="VALID", dtype=self.dtype)(y)
        return y


class ResBlock(nn.Module):
    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        dt = self.dtype
        h = CausalConv(self.features, dtype=dt)(nn.swish(FrameNorm(dt)(x)))
        h = CausalConv(self.features, dtype=dt)(nn.swish(FrameNorm(dt)(h)))
        if x.shape[-1] != self.features:
            x = nn.Dense(self.features, dtype=dt)(x)
        return x.astype(dt) + h


class Downsample(nn.Module):
    """Spatial /2 (strided conv) and optionally causal temporal /2:
    frames (0,0), (1,2), (3,4), ... are paired, T = 1 + 2k -> 1 + k."""
    features: int
    temporal: bool
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        b, t, h, w, c = x.shape
        y = nn.Conv(self.features, (3, 3), strides=(2, 2), padding="SAME", dtype=self.dtype)(
            x.reshape(b * t, h, w, c))
        y = y.reshape(b, t, h // 2, w // 2, self.features)
        if self.temporal:
            y = nn.Dense(self.features, dtype=self.dtype)(_pair_time(y))
        return y


class Upsample(nn.Module):
    """Inverse of Downsample: optional temporal x2 (1 + k -> 1 + 2k), then spatial
    nearest x2 and a conv."""
    features: int
    temporal: bool
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        b, t, h, w, c = x.shape
        if self.temporal:
            x = _unpair_time(nn.Dense(2 * c, dtype=self.dtype)(x))
            t = 2 * t - 1
        x = jnp.broadcast_to(x[:, :, :, None, :, None], (b, t, h, 2, w, 2, c))
        x = x.reshape(b, t, 2 * h, 2 * w, c)  # nearest-neighbour x2
        return CausalConv(self.features, temporal_kernel=1, dtype=self.dtype)(x)


def _num_stages(cfg):
    """Downsampling stages: the patch embedding (if patch_size > 1), then the levels."""
    return (cfg.patch_size > 1) + len(cfg.channels) - 1


def _temporal(cfg, stage):
    """Whether downsampling stage `stage` also halves time (the first log2(td) do)."""
    return stage < int(round(math.log2(cfg.temporal_downsample)))


def _pair_time(x):
    """Causal temporal pairing [B, 1+2k, ..., C] -> [B, 1+k, ..., 2C]: (0,0), (1,2), ..."""
    b, t = x.shape[:2]
    x = jnp.concatenate([x[:, :1], x], axis=1)
    x = x.reshape((b, (t + 1) // 2, 2) + x.shape[2:])
    return jnp.moveaxis(x, 2, -2).reshape((b, (t + 1) // 2) + x.shape[3:-1] + (-1,))


def _unpair_time(x):
    """Inverse of _pair_time: [B, 1+k, ..., 2C] -> [B, 1+2k, ..., C]."""
    b, t = x.shape[:2]
    x = x.reshape(x.shape[:-1] + (2, x.shape[-1] // 2))
    x = jnp.moveaxis(x, -2, 2).reshape((b, 2 * t) + x.shape[2:-2] + (x.shape[-1],))
    return x[:, 1:]


def _space_to_depth(x, p):
    b, t, h, w, c = x.shape
    x = x.reshape(b, t, h // p, p, w // p, p, c).transpose(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, t, h // p, w // p, p * p * c)


def _depth_to_space(x, p):
    b, t, h, w, c = x.shape
    x = x.reshape(b, t, h, w, p, p, c // (p * p)).transpose(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, t, h * p, w * p, c // (p * p))


class Encoder(nn.Module):
    cfg: VAEConfig

    @nn.compact
    def __call__(self, x):
        cfg, ch, dt = self.cfg, self.cfg.channels, jnp.dtype(self.cfg.dtype)
        stage = 0
        if cfg.patch_size > 1:
            x = _space_to_depth(x, cfg.patch_size)
            if _temporal(cfg, stage):
                x = _pair_time(x)
            stage += 1
        x = CausalConv(ch[0], dtype=dt)(x)
        for i, c in enumerate(ch):
            x = ResBlock(c, dt)(x)
            if i < len(ch) - 1:
                x = Downsample(ch[i + 1], temporal=_temporal(cfg, stage), dtype=dt)(x)
                stage += 1
        x = ResBlock(ch[-1], dt)(x)
        x = nn.swish(FrameNorm(jnp.float32)(x))  # the latent head in float32
        x = CausalConv(2 * cfg.latent_channels)(x)
        mean, logvar = jnp.split(x, 2, axis=-1)
        return mean, jnp.clip(logvar, -30.0, 20.0)


class Decoder(nn.Module):
    cfg: VAEConfig

    @nn.compact
    def __call__(self, z):
        cfg, ch, dt = self.cfg, self.cfg.channels, jnp.dtype(self.cfg.dtype)
        patch_stages = int(cfg.patch_size > 1)
        x = CausalConv(ch[-1], dtype=dt)(z)
        x = ResBlock(ch[-1], dt)(x)
        for i in reversed(range(len(ch))):
            x = ResBlock(ch[i], dt)(x)
            if i > 0:
                x = Upsample(ch[i - 1], temporal=_temporal(cfg, i - 1 + patch_stages),
                             dtype=dt)(x)
        x = nn.swish(FrameNorm(jnp.float32)(x))  # the output conv in float32
        if cfg.patch_size > 1:
            pair = _temporal(cfg, 0)
            x = CausalConv(3 * cfg.patch_size ** 2 * (2 if pair else 1))(x)
            if pair:
                x = _unpair_time(x)
            return _depth_to_space(x, cfg.patch_size)
        return CausalConv(3)(x)  # in [-1, 1] space (unbounded)


class VAE(nn.Module):
    cfg: VAEConfig

    def setup(self):
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)

    def __call__(self, video, key):
        """Full pass (used for init and training): returns (recon, mean, logvar)."""
        mean, logvar = self.encoder(video)
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)
        return self.decoder(z), mean, logvar

    def encode(self, video):
        return self.encoder(video)

    def decode(self, z):
        return self.decoder(z)


# ----------------------------------------------------------------------------- API

def to_model_input(video):
    """uint8 [0, 255] or float [0, 1] -> float32 in [-1, 1]."""
    video = jnp.asarray(video)
    if video.dtype == jnp.uint8:
        video = video.astype(jnp.float32) / 255.0
    return video.astype(jnp.float32) * 2.0 - 1.0


def _check_video(cfg, video):
    if video.ndim != 5 or video.shape[-1] != 3:
        raise VidrlError(f"VAE video must be [B, T, H, W, 3]; got shape {tuple(video.shape)}")
    if video.shape[2:4] != (cfg.size, cfg.size):
        raise VidrlError(f"VAE was built for {cfg.size}x{cfg.size} frames; got "
                         f"{video.shape[2]}x{video.shape[3]} (set env.size to match the VAE)")
    check_num_frames(cfg, video.shape[1])


def init(model_config, key):
    """Random parameters for the VAE described by `model_config`."""
    cfg = as_config(model_config)
    video = jnp.zeros((1, 1 + cfg.temporal_downsample, cfg.size, cfg.size, 3), jnp.float32)
    k1, k2 = jax.random.split(key)
    return jax.jit(VAE(cfg).init)(k1, video, k2)["params"]


def apply(model_config, params, video, key):
    """Training pass: video [B,T,H,W,3] -> (recon in [-1,1] space, mean, logvar)."""
    cfg = as_config(model_config)
    _check_video(cfg, video)
    return VAE(cfg).apply({"params": params}, to_model_input(video), key)


def encode(model_config, params, video):
    """video uint8/float [B,T,H,W,3] -> (mean, logvar) float32 [B,T',h,w,C]."""
    cfg = as_config(model_config)
    _check_video(cfg, video)
    return VAE(cfg).apply({"params": params}, to_model_input(video), method=VAE.encode)


def decode(model_config, params, latents):
    """latents [B,T',h,w,C] -> float32 video in [0, 1], [B, 1+(T'-1)*td, H, W, 3]."""
    cfg = as_config(model_config)
    x = VAE(cfg).apply({"params": params}, jnp.asarray(latents, jnp.float32),
                       method=VAE.decode)
    return jnp.clip((x + 1.0) * 0.5, 0.0, 1.0)


def decode_uint8(model_config, params, latents):
    """latents -> uint8 video [B, T, H, W, 3]."""
    return jnp.round(decode(model_config, params, latents) * 255.0).astype(jnp.uint8)


def video_embedding(model_config, params, video):
    """Flattened posterior mean of a video: [B,T,H,W,3] -> [B, T'*h*w*C]."""
    mean, _ = encode(model_config, params, video)
    return mean.reshape(mean.shape[0], -1)


def frame_features(model_config, params, frames):
    """Single frames through the causal encoder: [B,H,W,3] -> [B, h*w*C] (φ for FB)."""
    frames = jnp.asarray(frames)
    if frames.ndim != 4:
        raise VidrlError(f"frame_features needs frames [B, H, W, 3]; got shape {tuple(frames.shape)}")
    return video_embedding(model_config, params, frames[:, None])


def embedding_dim(model_config, num_frames):
    """Size D of video_embedding for videos of `num_frames` frames."""
    cfg = as_config(model_config)
    return cfg.latent_frames(num_frames) * cfg.latent_size ** 2 * cfg.latent_channels


def save(stage_dir, model_config, params):
    """Writes `vae_config.json` and `vae_params.msgpack` atomically into stage_dir."""
    cfg = as_config(model_config)
    os.makedirs(stage_dir, exist_ok=True)
    _atomic_write(os.path.join(stage_dir, CONFIG_FILE),
                  json.dumps(cfg.to_dict(), indent=2).encode())
    data = flax.serialization.to_bytes(jax.device_get(params))
    _atomic_write(os.path.join(stage_dir, PARAMS_FILE), data)


def load(stage_dir):
    """(VAEConfig, params) from a directory written by `save` (the autoencoder stage)."""
    cpath, ppath = os.path.join(stage_dir, CONFIG_FILE), os.path.join(stage_dir, PARAMS_FILE)
    if not (os.path.exists(cpath) and os.path.exists(ppath)):
        raise CheckpointError(f"no trained VAE in {stage_dir} (missing {CONFIG_FILE} or "
                              f"{PARAMS_FILE}); run the autoencoder stage "
                              f"(python -m experiments.run --stages=autoencoder ...)")
    try:
        with open(cpath) as f:
            d = json.load(f)
        cfg = as_config(VAEConfig(channels=tuple(d["channels"]),
                                  latent_channels=d["latent_channels"],
                                  spatial_downsample=d["spatial_downsample"],
                                  temporal_downsample=d["temporal_downsample"],
                                  size=d["size"], patch_size=d.get("patch_size", 1),
                                  dtype=d.get("dtype", "float32")))
        target = jax.eval_shape(lambda: init(cfg, jax.random.PRNGKey(0)))
        target = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), target)
        with open(ppath, "rb") as f:
            params = flax.serialization.from_bytes(target, f.read())
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"VAE checkpoint in {stage_dir} is corrupt or does not match "
                              f"its {CONFIG_FILE} ({type(e).__name__}: {str(e)[:200]}); "
                              f"rerun the autoencoder stage") from None
    shapes_ok = jax.tree.all(jax.tree.map(lambda a, b: np.shape(a) == np.shape(b),
                                          params, target))
    if not shapes_ok:
        raise CheckpointError(f"VAE params in {stage_dir} do not match {CONFIG_FILE}; "
                              f"rerun the autoencoder stage")
    return cfg, jax.tree.map(jnp.asarray, params)


def _atomic_write(path, data):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp_")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
