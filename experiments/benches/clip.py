"""Benchmark: CLIP image embedding frames/s, our jitted pure function vs transformers' model object.

    python -m experiments.bench --what=clip [--frames=16] [--baseline_frames=3]
        [--batch_size=8] [--input_size=128] [--rounds=2] [--tiny]

Model: a randomly initialised ViT-B/32-sized CLIP (transformers' default
CLIPConfig: 12 layers, width 768, patch 32, 224 px; no download). Input: random
uint8 frames of --input_size x --input_size (resized to 224 by CLIP preprocessing).
  ours         `clip.encode_images(params, frames)`: preprocessing + ViT in one jitted
               call per batch of --batch_size frames (compile excluded, one warm-up)
  transformers CLIPImageProcessor + FlaxCLIPModel.get_image_features called frame
               by frame (how the model object is used out of the box; first call excluded)
Prints one JSON line per measurement ("bench": "clip") and a final line with
`ratio` = ours frames/s / transformers frames/s, both measured in this run: the
two alternate for --rounds rounds and the ratio is of the medians.
"""
import argparse
import json
import os
import statistics
import time


def _emit(**kw):
    print(json.dumps(dict(bench="clip", **kw)), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16, help="frames timed on our path")
    parser.add_argument("--baseline_frames", type=int, default=3, help="frames timed on transformers")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--input_size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (medians)")
    parser.add_argument("--tiny", action="store_true", help="a tiny config (smoke test of this script)")
    args = parser.parse_args(argv)

    import jax
    import numpy as np
    from transformers import CLIPConfig, CLIPImageProcessor, FlaxCLIPModel

    from vidrl_jax.models.clip import random_clip

    if args.tiny:
        config = CLIPConfig(text_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                             num_attention_heads=4),
                            vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                               num_attention_heads=4, image_size=32, patch_size=8),
                            projection_dim=16)
    else:
        config = CLIPConfig()  # ViT-B/32 sizes
    size = config.vision_config.image_size
    clip = random_clip(config, seed=0)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.frames, args.input_size, args.input_size, 3), dtype=np.uint8)
    common = dict(model="tiny" if args.tiny else "ViT-B/32", image_size=size,
                  input_size=args.input_size, devices=jax.device_count(),
                  platform=jax.devices()[0].platform, loadavg=round(os.getloadavg()[0], 2))

    # ours: jitted preprocessing + encoder, batched
    bs = min(args.batch_size, args.frames)
    batches = [frames[i:i + bs] for i in range(0, args.frames - bs + 1, bs)]
    jax.block_until_ready(clip.encode_images(clip.params, batches[0]))  # compile

    def run_ours():
        start = time.perf_counter()
        for b in batches:
            out = clip.encode_images(clip.params, b)
        jax.block_until_ready(out)
        return len(batches) * bs / (time.perf_counter() - start)

    # transformers: processor + model object, frame by frame
    model = FlaxCLIPModel(config, _do_init=False)
    proc = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})

    def one(frame):
        px = proc(images=[frame], return_tensors="np")["pixel_values"]
        return np.asarray(model.get_image_features(px, params=clip.params))

    ref = one(frames[0])  # first call excluded
    base = frames[1:1 + args.baseline_frames]

    def run_theirs():
        start = time.perf_counter()
        for f in base:
            one(f)
        return len(base) / (time.perf_counter() - start)

    # Rounds alternate so load from other processes on a shared machine hits both alike.
    ours_r, theirs_r = [], []
    for r in range(args.rounds):
        ours_r.append(run_ours())
        _emit(what="ours_jit", round=r, frames_per_s=round(ours_r[-1], 3), batch_size=bs,
              frames=len(batches) * bs, **common)
        theirs_r.append(run_theirs())
        _emit(what="transformers_per_frame", round=r, frames_per_s=round(theirs_r[-1], 3),
              frames=len(base), **common)
    ours, theirs = statistics.median(ours_r), statistics.median(theirs_r)
    diff = float(np.abs(ref[0] - np.asarray(clip.encode_images(clip.params, batches[0]))[0]).max())
    common["loadavg"] = round(os.getloadavg()[0], 2)
    _emit(what="ratio", ratio=round(ours / theirs, 2), ours_frames_per_s=round(ours, 3),
          transformers_frames_per_s=round(theirs, 3), max_abs_diff_same_frame=diff, **common)


if __name__ == "__main__":
    main()
