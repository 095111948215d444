"""Converts a PyTorch CLIP checkpoint directory into a Flax one (runtime then needs no torch).

    python -m experiments.convert_clip --src=DIR --dst=DIR

DIR (src) holds a transformers CLIP checkpoint: config.json, model.safetensors or
pytorch_model.bin, tokenizer files (vocab.json + merges.txt or tokenizer.json) and
optionally preprocessor_config.json. dst gets flax_model.msgpack, config.json, the
tokenizer files and preprocessor_config.json (CLIP defaults if src had none).
"""
import argparse
import json
import os
import shutil
import sys


def convert(src, dst):
    """Writes the Flax directory `dst` from `src`; returns the list of files written."""
    from flax.serialization import to_bytes
    import jax
    import numpy as np

    from vidrl_jax.errors import VidrlError
    from vidrl_jax.models import clip as clip_lib

    clip = clip_lib.load_clip(src)  # validates config, weights (shapes) and tokenizer
    src = clip_lib.resolve_path(src)
    if os.path.abspath(src) == os.path.abspath(dst):
        raise VidrlError("--dst must differ from --src")
    os.makedirs(dst, exist_ok=True)
    written = []
    params = jax.tree.map(np.asarray, clip.params)
    tmp = os.path.join(dst, clip_lib.FLAX_WEIGHTS + ".tmp")
    with open(tmp, "wb") as f:
        f.write(to_bytes(params))
    os.replace(tmp, os.path.join(dst, clip_lib.FLAX_WEIGHTS))
    written.append(clip_lib.FLAX_WEIGHTS)
    clip.config.to_json_file(os.path.join(dst, "config.json"))
    written.append("config.json")
    for name in clip_lib.TOKENIZER_FILES:
        if os.path.exists(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
            written.append(name)
    pre = os.path.join(src, clip_lib.PREPROCESSOR_FILE)
    if os.path.exists(pre):
        shutil.copyfile(pre, os.path.join(dst, clip_lib.PREPROCESSOR_FILE))
    else:
        s = clip.spec
        with open(os.path.join(dst, clip_lib.PREPROCESSOR_FILE), "w") as f:
            json.dump({"image_processor_type": "CLIPImageProcessor", "do_resize": True,
                       "size": {"shortest_edge": s.shortest_edge}, "resample": s.resample,
                       "do_center_crop": True,
                       "crop_size": {"height": s.crop_size[0], "width": s.crop_size[1]},
                       "do_rescale": True, "rescale_factor": s.rescale_factor,
                       "do_normalize": True, "image_mean": list(s.mean), "image_std": list(s.std),
                       "do_convert_rgb": True}, f, indent=2)
    written.append(clip_lib.PREPROCESSOR_FILE)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="PyTorch (or Flax) CLIP directory")
    parser.add_argument("--dst", required=True, help="output Flax CLIP directory")
    args = parser.parse_args(argv)
    from vidrl_jax.errors import VidrlError
    try:
        written = convert(args.src, args.dst)
    except VidrlError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({"dst": args.dst, "files": written}))


if __name__ == "__main__":
    main()
