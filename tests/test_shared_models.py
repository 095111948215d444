"""experiments/shared_models: the video models kept in git and put back on a fresh machine
are found by the pipeline as finished stages, with their files but checkpoints and caches."""
import os

import pytest

from configs import metaworld
from experiments import shared_models
from vidrl_jax import stages


def _build(config, workdir, shared, name, files):
    """What a finished shared stage leaves: its link, config.json, summary.json, files."""
    os.makedirs(workdir, exist_ok=True)
    stages.link_shared_stage(config, workdir, name, shared)
    stage_dir = os.path.realpath(os.path.join(workdir, name))
    stages._write_json(os.path.join(stage_dir, stages.CONFIG_FILE),
                       stages.recorded_config(config, name))
    for rel, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(stage_dir, rel)), exist_ok=True)
        with open(os.path.join(stage_dir, rel), "wb") as f:
            f.write(data)
    stages._write_json(os.path.join(stage_dir, stages.SUMMARY_FILE), {})
    return stage_dir


def test_kept_models_are_finished_stages_on_a_fresh_machine_and_never_replaced(tmp_path):
    config = metaworld.get_config("smoke")
    shared, kept = str(tmp_path / "shared"), str(tmp_path / "kept")
    ae = _build(config, str(tmp_path / "run"), shared, "autoencoder",
                {"vae_params.msgpack": b"vae", "checkpoints/3/state": b"resume"})
    _build(config, str(tmp_path / "run"), shared, "diffusion",
           {"unet_params.msgpack": b"unet", "latents.npz": b"cache"})
    _build(config, str(tmp_path / "run"), shared, "demos", {"shard": b"frames"})
    stages.link_shared_stage(config, str(tmp_path / "run"), "goal", shared)  # unfinished
    names = shared_models.copy_missing(shared, kept)
    assert [n.split("-")[0] for n in names] == ["autoencoder", "diffusion"]
    kept_ae = os.path.join(kept, os.path.basename(ae))
    assert sorted(os.listdir(kept_ae)) == ["config.json", "summary.json", "vae_params.msgpack"]
    assert "latents.npz" not in os.listdir(os.path.join(kept, names[1]))
    # a stage kept once is the one the cells read: a rebuild elsewhere does not replace it
    with open(os.path.join(ae, "vae_params.msgpack"), "wb") as f:
        f.write(b"another machine's vae")
    shared_models.main(["save", shared, kept])
    with open(os.path.join(kept_ae, "vae_params.msgpack"), "rb") as f:
        assert f.read() == b"vae"
    # a fresh machine, killed while building the autoencoder: the kept one replaces it
    fresh, run = str(tmp_path / "fresh"), str(tmp_path / "run2")
    os.makedirs(run)
    stages.link_shared_stage(config, run, "autoencoder", fresh)
    unfinished = os.path.realpath(os.path.join(run, "autoencoder"))
    os.makedirs(os.path.join(unfinished, "checkpoints"))
    shared_models.main(["restore", kept, fresh])
    assert sorted(shared_models.stage_dirs(fresh)) == [os.path.join(fresh, n) for n in names]
    assert stages.check_stage_dir(config, run, "autoencoder") == "done"
    with open(os.path.join(run, "autoencoder", "vae_params.msgpack"), "rb") as f:
        assert f.read() == b"vae"
    stages.link_shared_stage(config, run, "diffusion", fresh)
    assert stages.check_stage_dir(config, run, "diffusion") == "done"
    assert stages.check_stage_dir(config, run, "demos") == "new"  # rendered again
    assert shared_models.copy_missing(kept, fresh) == []
    assert not [p for p in os.listdir(fresh) if ".tmp" in p]


def test_a_missing_source_folder_is_one_clear_error_and_nothing_is_made(tmp_path):
    with pytest.raises(SystemExit, match="restore: .*nowhere is not a folder of kept stages"):
        shared_models.main(["restore", str(tmp_path / "nowhere"), str(tmp_path / "shared")])
    with pytest.raises(SystemExit, match="save: .*typo is not a shared dir"):
        shared_models.main(["save", str(tmp_path / "typo"), str(tmp_path / "kept")])
    assert os.listdir(tmp_path) == []
