"""Configs, validation, the stage runner's caching, checkpoints and the CLI's errors."""
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import metaworld
from vidrl_jax import config_check, stages
from vidrl_jax.errors import CheckpointError, ConfigError, StageMissingError, VidrlError
from vidrl_jax.utils import distributed
from vidrl_jax.utils.checkpoint import CheckpointManager
from vidrl_jax.utils.fingerprint import digest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("variant", ["default", "smoke", "gpu", "tpu", "smoke,sparse",
                                     "smoke,genreward+dense"])
def test_variants_are_valid(variant):
    config_check.validate(metaworld.get_config(variant))


def test_reward_variants_differ_only_in_reward_weights():
    base = metaworld.get_config("smoke").to_dict()
    for name in metaworld.REWARD_VARIANTS:
        other = metaworld.get_config(f"smoke,{name}").to_dict()
        changed = {k for k in base if base[k] != other[k]}
        assert changed <= {"reward", "variants"}, (name, changed)


def test_unknown_task_names_close_ones():
    c = metaworld.get_config("smoke")
    c.env.task = "door-opne-v3"
    with pytest.raises(ConfigError, match=r"env.task.*did you mean door-open-v3"):
        config_check.validate(c)


@pytest.mark.parametrize("field,value,match", [
    ("env.size", 30, "env.size"),
    ("vae.clip_length", 10, "vae.clip_length"),
    ("agent.batch_size", 0, "agent.batch_size"),
    ("reward.env", "shaped", "reward.env"),
])
def test_impossible_values_name_the_field(field, value, match):
    c = metaworld.get_config("smoke")
    section, key = field.split(".")
    c[section][key] = value
    with pytest.raises(ConfigError, match=match):
        config_check.validate(c)


def test_unknown_variant():
    with pytest.raises(ConfigError, match="unknown config variant"):
        metaworld.get_config("smok")


def _fake_stage(calls, depends=("env",)):
    def run(config, ctx):
        calls.append(ctx.stage_dir)
        with open(os.path.join(ctx.stage_dir, "out.txt"), "w") as f:
            f.write(config.env.task)
        return {"ok": 1}
    return types.SimpleNamespace(DEPENDS=depends, run=run)


def test_pipeline_caches_refuses_foreign_config_and_forces(tmp_path, monkeypatch):
    calls = []
    fake = _fake_stage(calls)
    monkeypatch.setattr(stages, "stage_module", lambda name: fake)
    c = metaworld.get_config("smoke")
    out = stages.run_pipeline(c, str(tmp_path), stages=["demos"])
    assert out["demos"]["ok"] == 1 and len(calls) == 1
    stages.run_pipeline(c, str(tmp_path), stages=["demos"])
    assert len(calls) == 1  # skipped: same config, finished
    c.agent.lr = 1.0  # not in DEPENDS: still cached
    stages.run_pipeline(c, str(tmp_path), stages=["demos"])
    assert len(calls) == 1
    c.env.task = "drawer-open-v3"
    with pytest.raises(VidrlError, match=r"env.task was 'door-open-v3', now 'drawer-open-v3'"):
        stages.run_pipeline(c, str(tmp_path), stages=["demos"])
    stages.run_pipeline(c, str(tmp_path), stages=["demos"], force=True)
    assert len(calls) == 2
    assert open(tmp_path / "demos" / "out.txt").read() == "drawer-open-v3"


def test_video_models_are_shared_across_target_tasks():
    """A sweep over env.task reuses demos and video models unless the task changes them."""
    def keys(**over):
        c = metaworld.get_config()
        for k, v in over.items():
            section, field = k.split("__")
            c[section][field] = v
        return {name: stages.recorded_config(c, name)
                for name in ("demos", "autoencoder", "diffusion", "goal")}

    door, drawer = keys(env__task="door-open-v3"), keys(env__task="drawer-open-v3")
    for name in ("demos", "autoencoder", "diffusion"):
        assert door[name] == drawer[name], name
    assert door["goal"] != drawer["goal"]
    assert keys(env__num_workers=7)["diffusion"] == door["diffusion"]
    assert keys(env__size=48)["demos"] != door["demos"]
    held = keys(env__task="drawer-open-v3", diffusion__holdout_task=True)
    assert held["autoencoder"] != keys(diffusion__holdout_task=True)["autoencoder"]
    assert keys(env__task="coffee-push-v3")["demos"] != door["demos"]  # adds a demo task


def test_unfinished_stage_resumes_in_place(tmp_path, monkeypatch):
    calls = []
    fake = _fake_stage(calls)

    def crash(config, ctx):
        calls.append("crash")
        raise KeyboardInterrupt
    monkeypatch.setattr(stages, "stage_module",
                        lambda name: types.SimpleNamespace(DEPENDS=("env",), run=crash))
    c = metaworld.get_config("smoke")
    with pytest.raises(KeyboardInterrupt):
        stages.run_pipeline(c, str(tmp_path), stages=["demos"])
    assert not stages.is_done(str(tmp_path / "demos"))
    monkeypatch.setattr(stages, "stage_module", lambda name: fake)
    stages.run_pipeline(c, str(tmp_path), stages=["demos"])
    assert calls == ["crash", str(tmp_path / "demos")]


def test_missing_stage_output_names_the_stage(tmp_path):
    ctx = stages.StageContext(str(tmp_path), str(tmp_path / "goal"), logger=None)
    with pytest.raises(StageMissingError, match="--stages=diffusion"):
        ctx.stage_output("diffusion")


def _tree():
    return {"w": jnp.arange(6.0).reshape(2, 3), "opt": (jnp.ones(4, jnp.int32),),
            "rng": jax.random.PRNGKey(7)}


def test_checkpoint_round_trip_keep_last(tmp_path):
    mgr = CheckpointManager(str(tmp_path), keep=2)
    for step in (1, 2, 3):
        tree = jax.tree.map(lambda x: x + step, _tree())
        mgr.save(step, tree, extra={"step": step, "config": {"a": [1, 2]}})
    assert mgr.all_steps() == [2, 3]
    restored, extra = CheckpointManager(str(tmp_path)).restore(_tree())
    assert extra == {"step": 3, "config": {"a": [1, 2]}}
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(_tree())):
        np.testing.assert_array_equal(a, b + 3)
    restored, _ = mgr.restore(_tree(), step=2)
    np.testing.assert_array_equal(restored["w"], _tree()["w"] + 2)


def test_checkpoint_typed_key_round_trip(tmp_path):
    mgr = CheckpointManager(str(tmp_path))
    tree = {"key": jax.random.key(3)}
    mgr.save(0, tree)
    restored, _ = mgr.restore(tree)
    assert jnp.all(jax.random.key_data(restored["key"]) == jax.random.key_data(tree["key"]))


def test_corrupt_and_mismatched_checkpoints_are_clear(tmp_path):
    mgr = CheckpointManager(str(tmp_path))
    mgr.save(5, _tree())
    bad = dict(_tree(), w=jnp.zeros((3, 3)))
    with pytest.raises(CheckpointError, match=r"does not match the model at w"):
        mgr.restore(bad)
    with pytest.raises(CheckpointError, match="unexpected"):
        mgr.restore({"w": _tree()["w"]})
    for root, _, files in os.walk(tmp_path / "5" / "state"):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        CheckpointManager(str(tmp_path)).restore(_tree())
    with pytest.raises(CheckpointError, match="no checkpoint"):
        CheckpointManager(str(tmp_path / "empty")).restore(_tree())


def test_a_read_only_reader_leaves_a_live_runs_checkpoints_alone(tmp_path):
    """A reader beside a live run (the gate scoring it) must not remove the checkpoint
    the run is writing: a writer's manager clears unfinished (tmp) checkpoints as it
    opens the directory, a read-only one does not, restores the newest complete one and
    refuses to save."""
    CheckpointManager(str(tmp_path)).save(5, _tree())
    unfinished = tmp_path / "10.orbax-checkpoint-tmp"  # the run is writing step 10
    os.makedirs(unfinished / "state")
    (unfinished / "state" / "part").write_bytes(b"half written")
    reader = CheckpointManager(str(tmp_path), read_only=True)
    restored, _ = reader.restore(_tree())
    np.testing.assert_array_equal(restored["w"], _tree()["w"])
    assert (unfinished / "state" / "part").exists()
    with pytest.raises(CheckpointError, match="read-only"):
        reader.save(6, _tree())
    CheckpointManager(str(tmp_path)).save(6, _tree())  # a writer (the run restarting)
    assert not unfinished.exists()                     # clears it


def _truncate_largest_file(step_dir):
    files = [os.path.join(r, n) for r, _, ns in os.walk(step_dir) for n in ns]
    victim = max(files, key=os.path.getsize)
    with open(victim, "r+b") as f:
        f.truncate(os.path.getsize(victim) // 2)
    return victim


def test_truncated_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    mgr = CheckpointManager(str(tmp_path), keep=2)
    for step in (1, 2):
        mgr.save(step, jax.tree.map(lambda x: x + step, _tree()), extra={"step": step})
    _truncate_largest_file(tmp_path / "2")
    mgr = CheckpointManager(str(tmp_path), keep=2)
    with caplog.at_level("WARNING"):
        restored, extra = mgr.restore(_tree())
    assert extra == {"step": 1}
    np.testing.assert_array_equal(restored["w"], _tree()["w"] + 1)
    assert any(str(tmp_path / "2") in r.getMessage() for r in caplog.records), caplog.text
    assert mgr.all_steps() == [1] and os.path.isdir(tmp_path / "corrupt-2")
    mgr.save(2, jax.tree.map(lambda x: x + 7, _tree()))  # the step can be written again
    np.testing.assert_array_equal(mgr.restore(_tree())[0]["w"], _tree()["w"] + 7)


def test_cli_unknown_task_is_one_line_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.run", "--config=configs/metaworld.py:smoke",
         "--config.env.task=door-opne-v3", f"--workdir={tmp_path}", "--stages=demos"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "door-open-v3" in lines[0] and lines[0].startswith("error: env.task")


def test_checkpoint_keeps_empty_arrays(tmp_path):
    mgr = CheckpointManager(str(tmp_path))
    tree = {"empty": jnp.zeros((5, 0)), "x": jnp.ones(2)}
    mgr.save(1, tree)
    restored, _ = mgr.restore(tree)
    assert restored["empty"].shape == (5, 0)
    np.testing.assert_array_equal(restored["x"], tree["x"])


def test_sigterm_is_remembered_when_its_exception_is_lost():
    """A SIGTERM whose KeyboardInterrupt is swallowed (as Python does in __del__ and gc
    callbacks) still stops the next raise_if_interrupted() of the block, and only it."""
    import signal
    import time

    from vidrl_jax.utils.signals import raise_if_interrupted, sigterm_as_interrupt
    with sigterm_as_interrupt():
        raise_if_interrupted()  # nothing received yet
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)
        except KeyboardInterrupt:
            pass  # the handler's exception, lost
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            raise_if_interrupted()
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            raise_if_interrupted()  # remembered until the block ends
    raise_if_interrupted()  # a new block starts clean


def test_sigterm_in_a_gc_callback_is_deferred_without_a_traceback(capfd):
    """A SIGTERM that lands in a gc callback (JAX has one) raises nothing there, where
    Python would print "Exception ignored" and a traceback; the loop's next
    raise_if_interrupted() raises it."""
    import gc
    import signal

    from vidrl_jax.utils.signals import raise_if_interrupted, sigterm_as_interrupt
    sent = []

    def callback(phase, info):
        del info
        if phase == "start" and not sent:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))
            for _ in range(1000):  # the handler runs between these bytecodes
                pass

    with sigterm_as_interrupt():
        gc.callbacks.append(callback)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(callback)
        assert sent
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            raise_if_interrupted()
    assert "Traceback" not in capfd.readouterr().err


def test_replicated_state_compiles_a_pmapped_step_once(compiles):
    """distributed.replicate lays a state out as the package's pmapped steps return
    it; a state from a pmap without the axis name makes the step compile twice."""
    def compiles_in_three_steps(state):  # a fresh step each time
        step = jax.pmap(lambda s: s + 1, axis_name=distributed.AXIS, donate_argnums=0)
        first = len(compiles)
        for _ in range(3):
            state = step(state)
        np.testing.assert_array_equal(np.asarray(state), 3.0)
        return len(compiles) - first

    assert compiles_in_three_steps(distributed.replicate(np.zeros(4, np.float32))) == 1
    other = jax.pmap(lambda x: x)(np.zeros((jax.local_device_count(), 4), np.float32))
    assert compiles_in_three_steps(other) == 2


def test_digest_changes_with_any_bit_dtype_shape_or_path_and_only_then():
    tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3, np.uint8)}
    d = digest(tree)
    assert len(d) == 16 and int(d, 16) >= 0
    assert digest({"b": np.zeros(3, np.uint8), "w": jnp.arange(6.0).reshape(2, 3)}) == d
    flipped = tree["w"].copy()
    flipped.view(np.uint32)[1, 2] ^= 1  # one bit of one float
    for other in ({**tree, "w": flipped}, {**tree, "w": tree["w"].astype(np.float64)},
                  {**tree, "w": tree["w"].reshape(3, 2)}, {"v": tree["w"], "b": tree["b"]}):
        assert digest(other) != d
