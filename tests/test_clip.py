"""CLIP in Flax (parity with PyTorch CLIP, conversion, pmap, errors) and goal-frame selection.

A tiny random CLIP is built here with torch and saved with `save_pretrained`,
with a tokenizer written from a hand-made byte-level vocab (no downloads).
"""
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from vidrl_jax.errors import VidrlError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_SIZE = 30
MAX_LEN = 16


def _bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _write_tokenizer(d):
    """A tiny CLIP BPE vocab: all bytes (+ '</w>' forms), a few merges, then the specials."""
    chars = _bytes_to_unicode()
    merges = ["o p", "op e", "ope n</w>", "t h", "th e</w>", "d o", "do o", "doo r</w>"]
    vocab = chars + [c + "</w>" for c in chars] + [m.replace(" ", "") for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]  # eos is the largest id, as in real CLIP
    with open(os.path.join(d, "vocab.json"), "w") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f)
    with open(os.path.join(d, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return len(vocab)


@pytest.fixture(scope="module")
def torch_clip_dir(tmp_path_factory):
    """(directory, torch CLIPModel) of a tiny random CLIP saved as PyTorch weights."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    d = str(tmp_path_factory.mktemp("clip_pt"))
    v = _write_tokenizer(d)
    CLIPTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"),
                  model_max_length=MAX_LEN).save_pretrained(d)
    config = CLIPConfig(
        text_config=dict(vocab_size=v, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=MAX_LEN,
                         bos_token_id=v - 2, eos_token_id=v - 1, pad_token_id=v - 1),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=4, image_size=IMAGE_SIZE, patch_size=6),
        projection_dim=16)
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    model.save_pretrained(d)
    CLIPImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                       crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(d)
    return d, model


@pytest.fixture(scope="module")
def clip(torch_clip_dir):
    from vidrl_jax.models.clip import load_clip
    return load_clip(torch_clip_dir[0])


def _frames(n, h, w, seed=0):
    """Smooth-ish random uint8 frames [n,h,w,3] (image-like, not pure noise)."""
    rng = np.random.default_rng(seed)
    return (np.cumsum(rng.integers(-24, 25, (n, h, w, 3)), axis=2) % 256).astype(np.uint8)


def test_parity_with_pytorch_clip(torch_clip_dir, clip):
    import torch
    from transformers import CLIPProcessor

    from vidrl_jax.models.clip import preprocess
    from vidrl_jax.rewards.goal_selection import select_goal_frame

    d, pt = torch_clip_dir
    proc = CLIPProcessor.from_pretrained(d)
    texts = ["open the door", "a robot arm", "the door"]
    ids, mask = clip.tokenize(texts)
    ref = proc.tokenizer(texts, padding="max_length", max_length=MAX_LEN, return_tensors="np")
    np.testing.assert_array_equal(ids, ref["input_ids"])
    with torch.no_grad():
        t_pt = pt.get_text_features(input_ids=torch.tensor(ids, dtype=torch.long),
                                    attention_mask=torch.tensor(mask, dtype=torch.long)).numpy()
    t_fx = np.asarray(clip.encode_texts(clip.params, ids, mask))
    text_diff = np.abs(t_pt - t_fx).max()
    assert text_diff < 1e-4, text_diff

    report = {"text": float(text_diff)}
    # Non-square frames: 37x53 is shrunk (shortest side 37 -> 30), 20x26 is enlarged.
    for h, w in [(37, 53), (20, 26)]:
        frames = _frames(6, h, w, seed=h)
        pixels = proc.image_processor(images=list(frames), return_tensors="np")["pixel_values"]
        ours_pixels = np.asarray(preprocess(clip.spec, frames)).transpose(0, 3, 1, 2)
        assert np.abs(pixels - ours_pixels).max() < 1e-5  # PIL resize reproduced exactly
        approx = preprocess(dataclasses.replace(clip.spec, exact_resize=False), frames)
        assert np.abs(pixels - np.asarray(approx).transpose(0, 3, 1, 2)).max() < 1.01 / 255 / 0.26
        with torch.no_grad():
            i_pt = pt.get_image_features(pixel_values=torch.tensor(pixels)).numpy()
            out = pt(**proc(text=["open the door"], images=list(frames), padding="max_length",
                            max_length=MAX_LEN, return_tensors="pt"))
            s_pt = (out.logits_per_image[:, 0] / pt.logit_scale.exp()).numpy()
        i_fx = np.asarray(clip.encode_images(clip.params, frames))
        image_diff = np.abs(i_pt - i_fx).max()
        assert image_diff < 1e-4, image_diff
        report[f"image_{h}x{w}"] = float(image_diff)
        if (h, w) == (37, 53):  # the whole selection path (pmap + text), compiled once
            sel = select_goal_frame(clip, frames, instruction="open the door", mode="instruction")
            score_diff = np.abs(sel.scores - s_pt).max()
            assert score_diff < 1e-5, score_diff
            assert sel.index == int(np.argmax(s_pt))
            report[f"scores_{h}x{w}"] = float(score_diff)
    print("clip parity max abs diff:", json.dumps(report))


def test_batched_and_pmap_agree_with_single_call(clip):
    import jax

    from vidrl_jax.models.clip import encode_images_sharded

    assert jax.local_device_count() == 2
    frames = _frames(7, 24, 40, seed=3)
    single = np.asarray(clip.encode_images(clip.params, frames))
    one_by_one = np.concatenate([np.asarray(clip.encode_images(clip.params, f[None])) for f in frames])
    sharded = encode_images_sharded(clip, clip.params, frames, batch_size=2)  # 2 devices x 2, padded
    assert sharded.shape == single.shape == (7, clip.embed_dim)
    np.testing.assert_allclose(one_by_one, single, atol=1e-5)
    np.testing.assert_allclose(sharded, single, atol=1e-5)


def test_converted_directory_loads_without_torch(torch_clip_dir, clip, tmp_path):
    from experiments.convert_clip import convert

    dst = str(tmp_path / "clip_flax")
    convert(torch_clip_dir[0], dst)
    assert os.path.exists(os.path.join(dst, "flax_model.msgpack"))
    assert not os.path.exists(os.path.join(dst, "model.safetensors"))
    frames = _frames(6, 37, 53, seed=5)  # shape compiled already in the parity test
    np.save(tmp_path / "frames.npy", frames)
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # `import torch` now fails: as if not installed
        import numpy as np
        from vidrl_jax.models.clip import load_clip
        c = load_clip({dst!r})
        assert "torch" not in [m for m, v in sys.modules.items() if v is not None]
        img = np.asarray(c.encode_images(c.params, np.load({str(tmp_path / 'frames.npy')!r})))
        txt = c.embed_texts(["open the door"])
        np.savez({str(tmp_path / 'out.npz')!r}, img=img, txt=txt)
    """)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(out["img"], np.asarray(clip.encode_images(clip.params, frames)), atol=1e-6)
    np.testing.assert_allclose(out["txt"], clip.embed_texts(["open the door"]), atol=1e-6)


def _one_line_error(path, match):
    from vidrl_jax.models.clip import load_clip
    with pytest.raises(VidrlError, match=match) as e:
        load_clip(path)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_clear_errors(torch_clip_dir, tmp_path):
    from experiments.convert_clip import convert

    _one_line_error(str(tmp_path / "nope"), "does not exist")
    # hub ids fail fast offline (conftest sets HF_HUB_OFFLINE=1), naming the fix
    _one_line_error("openai/clip-vit-base-patch32", "pass a local directory")

    no_tok = str(tmp_path / "no_tokenizer")
    shutil.copytree(torch_clip_dir[0], no_tok)
    for f in ("vocab.json", "merges.txt", "tokenizer.json"):
        if os.path.exists(os.path.join(no_tok, f)):
            os.remove(os.path.join(no_tok, f))
    _one_line_error(no_tok, "no CLIP tokenizer")

    flax_dir = str(tmp_path / "flax")
    convert(torch_clip_dir[0], flax_dir)
    for d in (torch_clip_dir[0], flax_dir):  # PyTorch and Flax weights
        bad = str(tmp_path / ("bad_" + os.path.basename(d)))
        shutil.copytree(d, bad)
        with open(os.path.join(bad, "config.json")) as f:
            cfg = json.load(f)
        cfg["projection_dim"] = 12
        with open(os.path.join(bad, "config.json"), "w") as f:
            json.dump(cfg, f)
        msg = _one_line_error(bad, "do not match config.json")
        assert "shape" in msg

    bad_cli = subprocess.run([sys.executable, "-m", "experiments.convert_clip",
                              f"--src={tmp_path / 'nope'}", f"--dst={tmp_path / 'x'}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad_cli.returncode == 2 and bad_cli.stderr.strip().count("\n") == 0
    assert "does not exist" in bad_cli.stderr


def test_goal_selection_on_constructed_embeddings():
    from vidrl_jax.rewards import goal_selection as gs

    rng = np.random.default_rng(0)
    d, t = 16, 12
    text = rng.normal(size=d)
    other = rng.normal(size=d)
    other -= other @ text / (text @ text) * text  # orthogonal to text
    # cosine to text per frame: a narrow spike at 3, a broad hill peaking at 8
    cos = np.array([.1, .1, .2, .95, .2, .3, .6, .8, .9, .8, .6, .3])
    u, o = text / np.linalg.norm(text), other / np.linalg.norm(other)
    images = np.stack([c * u + np.sqrt(1 - c * c) * o for c in cos]) * rng.uniform(1, 5, (t, 1))
    scores = gs.prompt_scores(images, "instruction", instruction_embedding=text)
    np.testing.assert_allclose(scores, cos, atol=1e-5)
    assert gs.select_index(scores)[0] == 3
    assert gs.select_index(scores, window=3)[0] == 8      # smoothing ignores the one-frame spike
    assert gs.select_index(scores, last_k=3)[0] == 9      # only frames 9, 10, 11
    # generic: the mean direction of the prompts; both: mean of the two scores
    generic = np.stack([u + 0.3 * o, u - 0.3 * o])
    g = gs.prompt_scores(images, "generic", generic_embeddings=generic)
    np.testing.assert_allclose(g, cos, atol=1e-5)
    b = gs.prompt_scores(images, "both", instruction_embedding=text, generic_embeddings=generic)
    np.testing.assert_allclose(b, cos, atol=1e-5)
    with pytest.raises(VidrlError, match="prompt_mode"):
        gs.prompt_scores(images, "nope", instruction_embedding=text)


def _goal_workdir(tmp_path, frames):
    workdir = tmp_path / "run"
    (workdir / "goal").mkdir(parents=True)
    np.savez(workdir / "goal" / "goal_video.npz", frames=frames, instruction="open the door",
             task="door-open-v3")
    (workdir / "goal" / "summary.json").write_text("{}")
    (workdir / "select").mkdir()
    return workdir


def _run_select(config, workdir):
    from vidrl_jax.stages import StageContext, select
    from vidrl_jax.utils.logging import MetricLogger

    logger = MetricLogger(str(workdir), use_tensorboard=False)
    try:
        return select.run(config, StageContext(str(workdir), str(workdir / "select"), logger))
    finally:
        logger.close()


def test_select_stage_fallback_and_with_clip(torch_clip_dir, tmp_path, caplog, capsys):
    from configs import metaworld
    from experiments import select_goal

    frames = _frames(5, 32, 32, seed=9)
    workdir = _goal_workdir(tmp_path, frames)
    config = metaworld.get_config("smoke")
    with caplog.at_level(logging.WARNING):
        summary = _run_select(config, workdir)
    assert summary["index"] == 4 and summary["mode"] == "last_frame"
    assert any("--config.clip.path" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    out = workdir / "select"
    for f in ("goal_frame.png", "scores.png", "scores.json", "goal_frame.npz"):
        assert (out / f).exists(), f
    with np.load(out / "goal_frame.npz") as z:
        np.testing.assert_array_equal(z["frame"], frames[4])
        assert int(z["index"]) == 4

    config.clip.path = torch_clip_dir[0]
    summary = _run_select(config, workdir)
    scores = json.loads((out / "scores.json").read_text())
    assert scores["index"] == summary["index"] == int(np.argmax(scores["scores"]))
    assert len(scores["scores"]) == 5 and scores["mode"] == "instruction"
    with np.load(out / "goal_frame.npz") as z:
        np.testing.assert_array_equal(z["frame"], frames[scores["index"]])

    # the command gives the same scores
    capsys.readouterr()
    select_goal.main([f"--video={workdir / 'goal' / 'goal_video.npz'}", f"--clip={torch_clip_dir[0]}"])
    printed = json.loads(capsys.readouterr().out.strip())
    assert printed["index"] == scores["index"]
    np.testing.assert_allclose(printed["scores"], scores["scores"], atol=1e-6)


def test_clip_image_features_as_fb_phi(torch_clip_dir, clip, tmp_path):
    """reward.frame_features=clip: the agent's φ (and the goal's) is the unit-norm CLIP
    image embedding; without clip.path the config (or one with the RoboCLIP term) is
    refused naming the field, before any stage runs."""
    from configs import metaworld
    from experiments.benches.pipeline import write_reward_inputs
    from vidrl_jax import config_check
    from vidrl_jax.stages import StageContext
    from vidrl_jax.train.reward_inputs import RewardEncoders
    from vidrl_jax.utils.logging import MetricLogger

    config = metaworld.get_config("smoke,frame")
    config.env.size = 16
    config.vae.update(channels=(4, 8), latent_channels=2)
    config.reward.frame_features = "clip"
    with pytest.raises(VidrlError, match="reward.frame_features=clip needs CLIP weights"):
        config_check.validate(config, num_devices=1)
    roboclip = metaworld.get_config("smoke,roboclip")  # the other CLIP user, same check
    with pytest.raises(VidrlError, match=r"reward.roboclip > 0 needs CLIP weights"):
        config_check.validate(roboclip, num_devices=1)
    config.clip.path = torch_clip_dir[0]
    config_check.validate(config, num_devices=1)
    write_reward_inputs(config, str(tmp_path))
    logger = MetricLogger(str(tmp_path), use_tensorboard=False, use_jsonl=False)
    enc = RewardEncoders(config, StageContext(str(tmp_path), str(tmp_path / "agent"), logger))
    frames = _frames(3, 16, 16, seed=4)
    phi = np.asarray(enc.phi(frames))
    assert enc.feature_dim == clip.embed_dim and phi.shape == (3, clip.embed_dim)
    want = clip.embed_frames(frames)
    np.testing.assert_allclose(phi, want / np.linalg.norm(want, axis=-1, keepdims=True),
                               atol=1e-5)
    with np.load(tmp_path / "select" / "goal_frame.npz") as g:
        goal = clip.embed_frames(g["frame"][None])[0]
    np.testing.assert_allclose(enc.goal["frame_feature"], goal / np.linalg.norm(goal), atol=1e-5)
    assert not np.allclose(phi[0], phi[1])  # different frames, different features
