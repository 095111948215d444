"""Every bad input to experiments.run stops before any stage runs: one line naming the
field, the value and the fix, exit status 2. In-process validate() for
the config classes; a few subprocess runs for the command line itself."""
import os
import subprocess
import sys
import time

import pytest

from configs import metaworld
from vidrl_jax import config_check
from vidrl_jax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _smoke(**fields):
    c = metaworld.get_config("smoke")
    for field, value in fields.items():
        *sections, key = field.split(".")
        node = c
        for s in sections:
            node = node[s]
        node[key] = value
    return c


def _refused(fields, *words):
    """validate refuses `fields` on the smoke config; the message is one line naming
    every one of `words` (the field, the value, the fix)."""
    with pytest.raises(ConfigError) as e:
        config_check.validate(_smoke(**fields), defaults=metaworld.get_config())
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


# ----------------------------------------------------------------------------- valid configs
SWEEP_SETS = {"agent.total_steps": 6000, "agent.eval_every": 2000, "agent.checkpoint_every":
              2000, "agent.log_every": 500, "seeds": 3, "agent.utd": 0.5,
              "agent.prefill_steps": 1000, "agent.eval_episodes": 4, "agent.batch_size": 128,
              "reward.video_stride": 4, "reward.video": 100.0}


@pytest.mark.parametrize("variant", [
    v for size in metaworld.SIZE_VARIANTS
    for v in [size] + [f"{size},{r}" for r in metaworld.REWARD_VARIANTS]])
def test_every_variant_is_valid(variant, tmp_path):
    c = metaworld.get_config(variant)
    if c.reward.roboclip:  # needs CLIP weights: refused without (test_clip), a dir here
        c.clip.path = str(tmp_path)
    config_check.validate(c)


def test_sweep_sets_and_documented_overrides_are_valid():
    for base in ("default", "smoke"):
        c = metaworld.get_config(base)
        for field, value in SWEEP_SETS.items():
            *sections, key = field.split(".")
            (c[sections[0]] if sections else c)[key] = value
        config_check.validate(c)
    config_check.validate(_smoke(**{"env.task": "drawer-open-v3", "agent.lr": 1e-4,
                                    "diffusion.holdout_task": True, "diffusion.text": "words"}))


# ----------------------------------------------------------------------------- ranges
@pytest.mark.parametrize("field,value,words", [
    ("agent.lr", -1.0, ["agent.lr=-1.0", "> 0", "learning rate", "--config.agent.lr=0.0003"]),
    ("agent.fb.lr", 0.0, ["agent.fb.lr=0.0", "--config.agent.fb.lr="]),
    ("vae.lr", -5e-4, ["vae.lr="]),
    ("diffusion.lr", 0.0, ["diffusion.lr="]),
    ("agent.discount", 1.5, ["agent.discount=1.5", "(0, 1]", "--config.agent.discount=0.99"]),
    ("agent.fb.discount", 0.0, ["agent.fb.discount=0.0"]),
    ("agent.tau", 0.0, ["agent.tau=0.0", "(0, 1]"]),
    ("agent.fb.tau", 2.0, ["agent.fb.tau=2.0"]),
    ("agent.batch_size", 0, ["agent.batch_size=0", ">= 1"]),
    ("vae.batch_size", -2, ["vae.batch_size=-2"]),
    ("clip.batch_size", 0, ["clip.batch_size=0"]),
    ("agent.batch_size", 10_000, ["agent.replay_capacity=5000", "agent.batch_size=10000"]),
    ("reward.video_stride", 0, ["reward.video_stride=0", ">= 1", "--config.reward.video_stride=2"]),
    ("vae.frame_stride", 0, ["vae.frame_stride=0"]),
    ("reward.window", 1, ["reward.window=1", ">= 2"]),
    ("seeds", 0, ["seeds=0", ">= 1"]),
    ("seed", -1, ["seed=-1", ">= 0"]),
    ("env.num_workers", 0, ["env.num_workers=0", "worker"]),
    ("demos.num_workers", 0, ["demos.num_workers=0"]),
    ("agent.eval_episodes", 0, ["agent.eval_episodes=0", "--config.agent.eval_episodes=10"]),
    ("agent.total_steps", 0, ["agent.total_steps=0"]),
    ("agent.eval_every", 0, ["agent.eval_every=0", "interval"]),
    ("agent.checkpoint_every", -1, ["agent.checkpoint_every=-1"]),
    ("vae.log_every", 0, ["vae.log_every=0"]),
    ("diffusion.eval_every", 0, ["diffusion.eval_every=0"]),
    ("agent.utd", 0.0, ["agent.utd=0.0", "> 0"]),
    ("agent.updates_per_call", 0, ["agent.updates_per_call=0"]),
    ("reward.video", -1.0, ["reward.video=-1.0", ">= 0", "reward weight"]),
    ("reward.frame", -0.5, ["reward.frame=-0.5"]),
    ("reward.likelihood", -1.0, ["reward.likelihood=-1.0"]),
    ("reward.roboclip", -1.0, ["reward.roboclip=-1.0"]),
    ("goal.eta", 2.0, ["goal.eta=2.0", "[0, 1]"]),
    ("goal.guidance_scale", -1.0, ["goal.guidance_scale=-1.0"]),
    ("goal.num_videos", 0, ["goal.num_videos=0"]),
    ("diffusion.cond_dropout", 1.0, ["diffusion.cond_dropout=1.0"]),
    ("agent.hidden", ("abc",), ["agent.hidden=('abc',)", "ints", "--config.agent.hidden=256,256"]),
    ("vae.channels", (), ["vae.channels=()"]),
])
def test_out_of_range_values_name_field_value_and_fix(field, value, words):
    assert "e.g. --config." in _refused({field: value}, *words)


@pytest.mark.parametrize("field,value,words", [
    ("agent.prefill_steps", 600, ["agent.prefill_steps=600", "agent.total_steps=600",
                                   "random"]),
    ("agent.prefill_steps", 5001, ["agent.prefill_steps=5001", "agent.replay_capacity=5000"]),
])
def test_prefill_against_total_steps_and_replay(field, value, words):
    c = {field: value}
    if value > 600:
        c["agent.total_steps"] = 100_000
    _refused(c, *words)


@pytest.mark.parametrize("field", ["goal.guidance_scale", "agent.lr", "agent.fb.actor_noise",
                                   "diffusion.ema_decay", "vae.kl_weight"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_every_float_must_be_finite(field, value):
    _refused({field: value}, f"{field}=", "finite", f"--config.{field}=")


def test_finite_check_walks_every_float_field():
    """A float field the range rules do not know (target_entropy_scale) is still refused."""
    _refused({"agent.target_entropy_scale": float("nan")}, "agent.target_entropy_scale=nan")


# ----------------------------------------------------------------------------- reward
def test_every_reward_weight_zero_with_no_env_reward_is_refused_early():
    msg = _refused({"reward.env": "none", "reward.video": 0.0, "reward.frame": 0.0},
                   "every reward weight", "reward.env='none'", "--config.reward.video=1")
    assert "learn from nothing" in msg
    config_check.validate(_smoke(**{"reward.env": "sparse", "reward.video": 0.0,
                                    "reward.frame": 0.0}))


# ----------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("fields,words", [
    ({"diffusion.clip_length": 10}, ["diffusion.clip_length=10", "vae.temporal_downsample=4"]),
    ({"vae.clip_length": 10}, ["vae.clip_length=10"]),
    ({"vae.temporal_downsample": 3, "vae.clip_length": 10, "diffusion.clip_length": 10},
     ["vae.temporal_downsample=3"]),
    ({"env.size": 30}, ["env.size=30"]),
    ({"env.size": 4}, ["env.size=4", "[8, 1024]"]),
    ({"diffusion.heads": 3}, ["diffusion.heads=3"]),
    ({"diffusion.attention_levels": (5,)}, ["diffusion.attention_levels"]),
    ({"goal.sampling_steps": 5000}, ["goal.sampling_steps=5000", "diffusion.timesteps"]),
    ({"diffusion.timesteps": 1}, ["diffusion.timesteps=1"]),
    ({"vae.dtype": "float16"}, ["vae.dtype"]),
])
def test_sizes_the_models_cannot_take(fields, words):
    _refused(fields, *words)


# ----------------------------------------------------------------------------- weight paths
def test_missing_weight_directories_name_the_field(tmp_path):
    _refused({"clip.path": "/nonexistent"}, "clip.path='/nonexistent'", "no such directory",
             "--config.clip.path=")
    (tmp_path / "file").write_text("x")
    _refused({"clip.path": str(tmp_path / "file")}, "clip.path=", "not a directory")
    _refused({"diffusion.init_from": "/nonexistent", "diffusion.finetune_steps": 10},
             "diffusion.init_from='/nonexistent'", "no such directory")
    _refused({"diffusion.init_from": str(tmp_path), "diffusion.finetune_steps": 10},
             "diffusion.init_from=", "no trained diffusion model")
    from vidrl_jax.diffusion import model_io
    for name in (model_io.CONFIG_FILE, model_io.PARAMS_FILE):
        (tmp_path / name).write_text("{}")
    _refused({"diffusion.init_from": str(tmp_path)}, "diffusion.finetune_steps=0")
    config_check.validate(_smoke(**{"diffusion.init_from": str(tmp_path),
                                    "diffusion.finetune_steps": 10}))


# ----------------------------------------------------------------------------- workdir
def test_output_dir_check(tmp_path):
    config_check.check_output_dir(str(tmp_path))                  # existing
    config_check.check_output_dir(str(tmp_path / "new" / "run"))  # creatable
    assert os.listdir(tmp_path) == []                            # nothing created or left
    (tmp_path / "file").write_text("x")
    for bad, words in ((tmp_path / "file", "not a directory"),
                       (tmp_path / "file" / "run", "is a file"),
                       ("/proc/forbidden/run", "cannot be created")):
        with pytest.raises(ConfigError, match="--workdir=") as e:
            config_check.check_output_dir(str(bad), "--workdir")
        assert words in str(e.value)
    assert os.listdir(tmp_path) == ["file"]


# ----------------------------------------------------------------------------- the command line
def _run(*args, workdir):
    start = time.time()
    proc = subprocess.run(
        # --stages=bogus: should the check under test not fire, fail at once, run nothing
        [sys.executable, "-m", "experiments.run", *args, f"--workdir={workdir}",
         "--stages=bogus"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu"})
    assert time.time() - start < 60
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_cli_unknown_field_is_one_line_with_close_names(tmp_path):
    line = _run("--config=configs/metaworld.py:smoke", "--config.agent.lrr=1",
                workdir=tmp_path / "run")
    assert line.startswith("error: --config.agent.lrr: no such config field"), line
    assert "agent.lr" in line and "configs/metaworld.py" in line
    assert not (tmp_path / "run").exists()


def test_cli_missing_config_file_is_one_line(tmp_path):
    line = _run("--config=configs/nosuch.py", "--config.agent.lr=1", workdir=tmp_path / "run")
    assert "--config=configs/nosuch.py" in line and "no such file" in line, line


def test_cli_unwritable_workdir_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    line = _run("--config=configs/metaworld.py:smoke", workdir=tmp_path / "file" / "run")
    assert line.startswith(f"error: --workdir={tmp_path / 'file' / 'run'}"), line


def test_cli_bad_value_into_an_existing_workdir_changes_nothing(tmp_path):
    """Nothing lost: a bad input aimed at a finished workdir leaves it byte for byte."""
    workdir = tmp_path / "run"
    for rel, text in (("demos/config.json", "{}"), ("demos/summary.json", '{"ok": 1}'),
                      ("agent/checkpoints/10/state", "weights"), ("metrics.jsonl", "{}\n")):
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (workdir / rel).write_text(text)
    past = time.time() - 3600
    for root, dirs, files in os.walk(workdir):
        for n in dirs + files:
            os.utime(os.path.join(root, n), (past, past))

    def snapshot():
        out = {}
        for root, dirs, files in os.walk(workdir):
            for n in dirs + files:
                p = os.path.join(root, n)
                st = os.stat(p)
                out[p] = (st.st_mtime_ns, open(p, "rb").read() if os.path.isfile(p) else None)
        return out

    before = snapshot()
    line = _run("--config=configs/metaworld.py:smoke", "--config.agent.lr=-1",
                workdir=workdir)
    assert line == ("error: agent.lr=-1.0 must be > 0 (a learning rate); "
                    "e.g. --config.agent.lr=0.0003"), line
    assert snapshot() == before
