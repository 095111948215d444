"""CLIP (transformers' Flax CLIP) as pure functions over explicit params.

    clip = load_clip("/path/to/clip")          # Flax or PyTorch weights + tokenizer
    img = clip.encode_images(clip.params, frames_uint8)   # [N,H,W,3] uint8 -> [N,D]
    ids, mask = clip.tokenize(["open the door"])           # int32 [M,L] each
    txt = clip.encode_texts(clip.params, ids, mask)        # -> [M,D]
    many = encode_images_sharded(clip, clip.params, frames, batch_size=64)  # pmap
    phi = frame_features(clip)                             # jitted unit-norm [N,D] (FB's φ)

`encode_images` does CLIP's preprocessing inside jit: resize the shortest side
to `size` (the same filter coefficients and the same uint8 rounding as PIL,
which `CLIPImageProcessor` uses), center crop, scale to [0,1] and normalise
with the model's mean/std. Features are the projected (unnormalised)
embeddings, i.e. `get_image_features` / `get_text_features`.

A local directory is the normal input (no hub at run time). A hub id is
tried only when the hub is reachable; offline it fails fast with a VidrlError.
"""
import dataclasses
import functools
import json
import math
import os
import re
import socket
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vidrl_jax.errors import VidrlError

FLAX_WEIGHTS = "flax_model.msgpack"
PT_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json")
PREPROCESSOR_FILE = "preprocessor_config.json"
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# ---------------------------------------------------------------------------
# Preprocessing (PIL-exact resize as matrices, so it runs inside jit)
# ---------------------------------------------------------------------------


def _bicubic(x):
    a = -0.5
    x = np.abs(x)
    return np.where(x < 1.0, ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
                    np.where(x < 2.0, (((x - 5.0) * x + 8.0) * x - 4.0) * a, 0.0))


def _lanczos(x):
    return np.where(np.abs(x) < 3.0, np.sinc(x) * np.sinc(x / 3.0), 0.0)


def _bilinear(x):
    return np.maximum(1.0 - np.abs(x), 0.0)


def _hamming(x):
    return np.where(np.abs(x) < 1.0, np.sinc(x) * (0.54 + 0.46 * np.cos(np.pi * x)), 0.0)


# PIL resample id (PIL.Image.Resampling) -> (filter, support), as in PIL's Resample.c.
# Checked equal to PIL on random sizes; BOX (4) and NEAREST (0) are not supported.
_FILTERS = {1: (_lanczos, 3.0), 2: (_bilinear, 1.0), 3: (_bicubic, 2.0), 5: (_hamming, 1.0)}
_PRECISION_BITS = 32 - 8 - 2  # PIL's fixed point for 8-bit images


@functools.lru_cache(maxsize=64)
def resize_matrix(in_size: int, out_size: int, resample: int = 3) -> np.ndarray:
    """[out_size, in_size] int32 fixed-point weights (units of 2**-22) of PIL's 8-bit resample.

    Mirrors PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` (Resample.c):
    antialiased when shrinking, coefficients quantised to 2**-22.
    """
    if resample not in _FILTERS:
        raise VidrlError(f"CLIP preprocessor resample={resample} is not supported; use 1 (lanczos), "
                         "2 (bilinear), 3 (bicubic) or 5 (hamming) in preprocessor_config.json")
    filt, support = _FILTERS[resample]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = support * filterscale
    m = np.zeros((out_size, in_size), np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        xs = np.arange(xmin, xmax)
        w = filt((xs - center + 0.5) * (1.0 / filterscale))
        total = 0.0
        for v in w:  # sequential, as PIL sums
            total += float(v)
        if total != 0.0:
            w = w / total
        m[xx, xmin:xmax] = w
    # PIL rounds each coefficient to fixed point (away from zero at .5).
    q = np.where(m < 0, np.trunc(-0.5 + m * (1 << _PRECISION_BITS)),
                 np.trunc(0.5 + m * (1 << _PRECISION_BITS)))
    return q.astype(np.int32)


@dataclasses.dataclass(frozen=True)
class PreprocessSpec:
    """What CLIPImageProcessor does, as static data (hashable, jit-static)."""
    shortest_edge: int = 224          # resize the shortest side to this (0 = no resize)
    crop_size: tuple = (224, 224)     # (height, width) center crop (None = no crop)
    resample: int = 3                 # PIL resample id (3 = bicubic)
    mean: tuple = OPENAI_CLIP_MEAN
    std: tuple = OPENAI_CLIP_STD
    rescale_factor: float = 1.0 / 255.0
    exact_resize: bool = True         # int32 fixed point as PIL; False: float32 (same up to rare
                                      # off-by-one roundings; for backends without integer dots)


def resized_shape(height: int, width: int, shortest_edge: int) -> tuple:
    """transformers' `get_resize_output_image_size` (default_to_square=False)."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = shortest_edge, int(shortest_edge * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _resample_axis(x, weights, subscripts, exact=True):
    """One PIL resample pass in exact int32 fixed point: clip((2**21 + sum p*k) >> 22, 0, 255)."""
    if not exact:
        w = jnp.asarray(weights, jnp.float32) / (1 << _PRECISION_BITS)
        acc = jnp.einsum(subscripts, w, x.astype(jnp.float32), precision=jax.lax.Precision.HIGHEST)
        return jnp.clip(jnp.floor(acc + 0.5), 0, 255).astype(jnp.int32)
    acc = jnp.einsum(subscripts, jnp.asarray(weights), x, preferred_element_type=jnp.int32)
    return jnp.clip((acc + (1 << (_PRECISION_BITS - 1))) >> _PRECISION_BITS, 0, 255)


def preprocess(spec: PreprocessSpec, frames: jnp.ndarray) -> jnp.ndarray:
    """uint8 [N,H,W,3] -> float32 [N,h,w,3] normalised pixels (NHWC), jit-friendly.

    Shapes are static, so the resize matrices are built in numpy at trace time.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise VidrlError(f"CLIP frames must be uint8 [N,H,W,3], got shape {tuple(frames.shape)}")
    x = frames.astype(jnp.int32)
    n, h, w, _ = frames.shape
    if spec.shortest_edge:
        nh, nw = resized_shape(h, w, spec.shortest_edge)
        # PIL: horizontal pass first, rounded to uint8, then vertical pass.
        if nw != w:
            x = _resample_axis(x, resize_matrix(w, nw, spec.resample), "vw,nhwc->nhvc",
                               spec.exact_resize)
        if nh != h:
            x = _resample_axis(x, resize_matrix(h, nh, spec.resample), "uh,nhwc->nuwc",
                               spec.exact_resize)
        h, w = nh, nw
    x = x.astype(jnp.float32)
    if spec.crop_size:
        ch, cw = spec.crop_size
        if ch > h or cw > w:
            raise VidrlError(f"CLIP crop {ch}x{cw} is larger than the resized frame {h}x{w}; "
                             "set size.shortest_edge >= crop_size in preprocessor_config.json")
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[:, top:top + ch, left:left + cw]
    x = x * jnp.float32(spec.rescale_factor)
    mean = jnp.asarray(spec.mean, jnp.float32)
    std = jnp.asarray(spec.std, jnp.float32)
    return (x - mean) / std


# ---------------------------------------------------------------------------
# Model functions (pure: module is static, params explicit)
# ---------------------------------------------------------------------------


def _image_features(module, pixel_values):
    out = module.vision_model(pixel_values=pixel_values, deterministic=True)
    return module.visual_projection(out[1])


def _text_features(module, input_ids, attention_mask, position_ids):
    out = module.text_model(input_ids=input_ids, attention_mask=attention_mask,
                            position_ids=position_ids, deterministic=True)
    return module.text_projection(out[1])


def image_features(module, spec: PreprocessSpec, params, frames):
    """uint8 frames [N,H,W,3] -> projected image embeddings float32 [N,D]."""
    pixels = preprocess(spec, jnp.asarray(frames))
    return module.apply({"params": params}, pixels, method=_image_features)


def frame_features(clip: "Clip"):
    """φ from CLIP: uint8 frames [N,H,W,3] -> unit-norm image embeddings float32 [N,D]
    (jitted; the params are an argument, not constants folded into the program)."""
    def phi(params, frames):
        e = clip.encode_images(params, frames)
        return e / jnp.linalg.norm(e, axis=-1, keepdims=True)
    return functools.partial(jax.jit(phi), clip.params)


def text_features(module, params, input_ids, attention_mask):
    """int32 token ids / mask [M,L] -> projected text embeddings float32 [M,D]."""
    input_ids = jnp.asarray(input_ids, jnp.int32)
    attention_mask = jnp.asarray(attention_mask, jnp.int32)
    position_ids = jnp.broadcast_to(jnp.arange(input_ids.shape[-1], dtype=jnp.int32), input_ids.shape)
    return module.apply({"params": params}, input_ids, attention_mask, position_ids,
                        method=_text_features)


@dataclasses.dataclass(frozen=True, eq=False)
class Clip:
    """A loaded CLIP: static parts + params. Functions take params explicitly.

    encode_images(params, frames uint8 [N,H,W,3]) -> float32 [N,D]   (jitted)
    encode_texts(params, ids int32 [M,L], mask int32 [M,L]) -> [M,D] (jitted)
    tokenize(texts) -> (ids, mask) numpy int32 [M, max_length]
    """
    params: Any
    module: Any
    config: Any
    spec: PreprocessSpec
    tokenizer: Any
    encode_images: Callable
    encode_texts: Callable
    _pmap_cache: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def embed_dim(self) -> int:
        return int(self.config.projection_dim)

    @property
    def max_length(self) -> int:
        return int(self.config.text_config.max_position_embeddings)

    def tokenize(self, texts: Sequence[str]):
        if isinstance(texts, str):
            texts = [texts]
        out = self.tokenizer(list(texts), padding="max_length", truncation=True,
                             max_length=self.max_length, return_tensors="np")
        return out["input_ids"].astype(np.int32), out["attention_mask"].astype(np.int32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> float32 numpy [M,D] (tokenize + encode_texts with self.params)."""
        ids, mask = self.tokenize(texts)
        return np.asarray(self.encode_texts(self.params, ids, mask))

    def embed_frames(self, frames, batch_size: int = 64, devices=None) -> np.ndarray:
        """Many uint8 frames -> float32 numpy [N,D], batched and pmapped over local devices."""
        return encode_images_sharded(self, self.params, frames, batch_size, devices)


def make_clip(module, config, params, spec: PreprocessSpec, tokenizer=None) -> Clip:
    """Builds the jitted pure functions around a Flax CLIP module."""
    enc_img = jax.jit(functools.partial(image_features, module, spec))
    enc_txt = jax.jit(functools.partial(text_features, module))
    return Clip(params=params, module=module, config=config, spec=spec, tokenizer=tokenizer,
                encode_images=enc_img, encode_texts=enc_txt)


VISION_KEYS = ("vision_model", "visual_projection", "logit_scale")  # logit_scale: made in setup()


def vision_params(params):
    """The part of the CLIP params the image encoder needs (what pmap broadcasts)."""
    return {k: params[k] for k in VISION_KEYS}


def _pmapped(clip: Clip, devices):
    if devices not in clip._pmap_cache:
        def chunks(params, frames):  # frames [n_chunks, per_dev, H, W, 3] on one device
            return jax.lax.map(lambda f: image_features(clip.module, clip.spec, params, f), frames)
        clip._pmap_cache[devices] = jax.pmap(chunks, in_axes=(None, 0), devices=list(devices))
    return clip._pmap_cache[devices]


def encode_images_sharded(clip: Clip, params, frames, batch_size: int = 64,
                          devices: Optional[Sequence[Any]] = None) -> np.ndarray:
    """uint8 [N,H,W,3] -> float32 numpy [N,D], pmapped over `devices` (default: all local).

    One pmap call: each device encodes its share in chunks of `batch_size` frames
    (lax.map), so params are broadcast once per call. Frames are padded (repeating
    the last) to devices x chunks x batch.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VidrlError(f"CLIP frames must be uint8 [N,H,W,3], got {frames.dtype} {frames.shape}")
    n = frames.shape[0]
    devices = tuple(devices) if devices is not None else tuple(jax.local_devices())
    nd = len(devices)
    if n == 0:
        return np.zeros((0, clip.embed_dim), np.float32)
    per_dev = max(1, min(int(batch_size), math.ceil(n / nd)))
    n_chunks = math.ceil(n / (nd * per_dev))
    total = nd * n_chunks * per_dev
    if total > n:
        frames = np.concatenate([frames, np.repeat(frames[-1:], total - n, axis=0)], axis=0)
    out = _pmapped(clip, devices)(vision_params(params),
                                  frames.reshape((nd, n_chunks, per_dev) + frames.shape[1:]))
    return np.asarray(out).reshape(total, -1)[:n]


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _offline() -> bool:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    return False


def _hub_reachable(timeout: float = 3.0) -> bool:
    from urllib.parse import urlparse
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_path(path: str) -> str:
    """A local directory, or a hub id downloaded when the hub is reachable."""
    if not path:
        raise VidrlError("no CLIP path given; pass a local CLIP directory (--config.clip.path=DIR)")
    path = os.path.expanduser(str(path))
    if os.path.isdir(path):
        return path
    if os.path.exists(path):
        raise VidrlError(f"CLIP path {path!r} is a file, not a directory; pass the directory "
                         "holding config.json, the weights and the tokenizer files")
    if not _HUB_ID.match(path) or path.startswith("."):
        raise VidrlError(f"CLIP directory {path!r} does not exist; pass a local directory with "
                         "config.json, weights and tokenizer files (--config.clip.path=DIR)")
    if _offline() or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if _offline() else "the hub is not reachable"
        raise VidrlError(f"CLIP {path!r} is not a local directory and {why}; pass a local directory "
                         "with the weights (--config.clip.path=DIR)")
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(path, allow_patterns=[
            "*.json", "*.txt", FLAX_WEIGHTS, "model.safetensors"])
    except Exception as e:  # network / auth / missing repo
        raise VidrlError(f"could not download CLIP {path!r} from the hub "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                         "pass a local directory (--config.clip.path=DIR)") from None


def _first_line(e: Exception) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


def load_preprocess_spec(path: str, config) -> PreprocessSpec:
    """PreprocessSpec from preprocessor_config.json, else CLIP's defaults for the model."""
    size = int(config.vision_config.image_size)
    f = os.path.join(path, PREPROCESSOR_FILE)
    if not os.path.exists(f):
        return PreprocessSpec(shortest_edge=size, crop_size=(size, size))
    with open(f) as fh:
        p = json.load(fh)
    s = p.get("size", size)
    if isinstance(s, dict):
        if "shortest_edge" in s:
            s = int(s["shortest_edge"])
        else:
            raise VidrlError(f"{f}: only size={{'shortest_edge': N}} is supported, got {s}")
    crop = p.get("crop_size", size)
    if isinstance(crop, dict):
        crop = (int(crop["height"]), int(crop["width"]))
    else:
        crop = (int(crop), int(crop))
    if crop != (size, size) and p.get("do_center_crop", True):
        raise VidrlError(f"{f}: crop_size {crop} does not match the model's image_size {size}")
    return PreprocessSpec(
        shortest_edge=int(s) if p.get("do_resize", True) else 0,
        crop_size=crop if p.get("do_center_crop", True) else None,
        resample=int(p.get("resample", 3)),
        mean=tuple(float(v) for v in p.get("image_mean", OPENAI_CLIP_MEAN)),
        std=tuple(float(v) for v in p.get("image_std", OPENAI_CLIP_STD)),
        rescale_factor=float(p.get("rescale_factor", 1.0 / 255.0)) if p.get("do_rescale", True) else 1.0)


def load_tokenizer(path: str):
    """CLIP tokenizer from tokenizer.json or vocab.json + merges.txt in `path`."""
    has_fast = os.path.exists(os.path.join(path, "tokenizer.json"))
    has_slow = all(os.path.exists(os.path.join(path, f)) for f in ("vocab.json", "merges.txt"))
    if not (has_fast or has_slow):
        raise VidrlError(f"no CLIP tokenizer in {path!r} (need tokenizer.json or vocab.json + merges.txt); "
                         "copy the tokenizer files from the original checkpoint "
                         "(python -m experiments.convert_clip copies them)")
    from transformers import CLIPTokenizer, CLIPTokenizerFast
    try:
        return (CLIPTokenizerFast if has_fast else CLIPTokenizer).from_pretrained(path)
    except Exception as e:
        raise VidrlError(f"could not load the CLIP tokenizer in {path!r}: {_first_line(e)}") from None


def _check_params(params, shapes, path):
    from flax.traverse_util import flatten_dict
    got, want = flatten_dict(params), flatten_dict(shapes)
    missing = sorted(set(want) - set(got))
    if missing:
        raise VidrlError(f"CLIP weights in {path!r} miss {len(missing)} tensors "
                         f"(e.g. {'/'.join(missing[0])}); they do not belong to this config.json")
    for k, v in want.items():
        if tuple(got[k].shape) != tuple(v.shape):
            raise VidrlError(f"CLIP weights in {path!r} do not match config.json: {'/'.join(k)} has shape "
                             f"{tuple(got[k].shape)} but config.json needs {tuple(v.shape)}")


def _read_flax_weights(file):
    from flax.serialization import msgpack_restore
    try:
        with open(file, "rb") as f:
            return msgpack_restore(f.read())
    except Exception as e:
        raise VidrlError(f"could not read CLIP weights {file!r}: {_first_line(e)}") from None


class _ShapeModel:
    """What transformers' PyTorch->Flax converter needs from a model: param shapes."""

    def __init__(self, params, base_model_prefix):
        self.params = params
        self.base_model_prefix = base_model_prefix


def _read_pt_weights(file, shapes, prefix):
    """PyTorch weights (safetensors without torch, .bin with torch) -> Flax param tree."""
    from transformers.modeling_flax_pytorch_utils import convert_pytorch_state_dict_to_flax
    try:
        if file.endswith(".safetensors"):
            from safetensors import safe_open
            with safe_open(file, framework="flax") as f:
                state = {k: f.get_tensor(k) for k in f.keys()}
        else:
            try:
                import torch
            except ImportError:
                raise VidrlError(
                    f"CLIP weights {file!r} are pytorch_model.bin, which needs torch; convert once: "
                    "python -m experiments.convert_clip --src=DIR --dst=FLAX_DIR") from None
            state = torch.load(file, map_location="cpu", weights_only=True)
    except VidrlError:
        raise
    except Exception as e:
        raise VidrlError(f"could not read CLIP weights {file!r}: {_first_line(e)}") from None
    try:
        return convert_pytorch_state_dict_to_flax(state, _ShapeModel(shapes, prefix))
    except ValueError as e:  # the converter checks shapes
        raise VidrlError(f"CLIP weights in {os.path.dirname(file)!r} do not match config.json: "
                         f"{_first_line(e)}") from None


def _select(params, shapes):
    """Keeps only the tensors the model has (drops e.g. buffers like position_ids)."""
    from flax.traverse_util import flatten_dict, unflatten_dict
    want = flatten_dict(shapes)
    return unflatten_dict({k: v for k, v in flatten_dict(params).items() if k in want})


def load_clip(path: str, tokenizer: bool = True) -> Clip:
    """Loads CLIP (config, Flax or PyTorch weights, tokenizer, preprocessing) from a directory.

    Raises VidrlError (one line) for a missing directory, missing weights/config/tokenizer,
    or weights whose shapes do not match config.json.
    """
    path = resolve_path(path)
    if not os.path.exists(os.path.join(path, "config.json")):
        raise VidrlError(f"no config.json in CLIP directory {path!r}; it must hold a transformers CLIP "
                         "checkpoint (config.json + weights + tokenizer files)")
    flax_file = os.path.join(path, FLAX_WEIGHTS)
    pt_files = [os.path.join(path, f) for f in PT_WEIGHTS if os.path.exists(os.path.join(path, f))]
    if not os.path.exists(flax_file) and not pt_files:
        raise VidrlError(f"no CLIP weights in {path!r} (need {FLAX_WEIGHTS}, model.safetensors "
                         "or pytorch_model.bin)")
    tok = load_tokenizer(path) if tokenizer else None
    from transformers import CLIPConfig, FlaxCLIPModel
    try:
        config = CLIPConfig.from_pretrained(path)
    except Exception as e:
        raise VidrlError(f"bad CLIP config.json in {path!r}: {_first_line(e)}") from None
    model = FlaxCLIPModel(config, _do_init=False)
    shapes = model.params_shape_tree
    if os.path.exists(flax_file):
        params = _read_flax_weights(flax_file)
    else:
        params = _read_pt_weights(pt_files[0], shapes, model.base_model_prefix)
    params = _select(params, shapes)
    _check_params(params, shapes, path)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    return make_clip(model.module, config, params, load_preprocess_spec(path, config), tok)


def random_clip(config, seed: int = 0, spec: Optional[PreprocessSpec] = None) -> Clip:
    """A randomly initialised CLIP for a CLIPConfig (benchmarks/tests; no tokenizer)."""
    from transformers import FlaxCLIPModel
    model = FlaxCLIPModel(config, _do_init=False)
    params = model.init_weights(jax.random.PRNGKey(seed), model.input_shape)
    size = int(config.vision_config.image_size)
    spec = spec or PreprocessSpec(shortest_edge=size, crop_size=(size, size))
    return make_clip(model.module, config, params, spec, None)
