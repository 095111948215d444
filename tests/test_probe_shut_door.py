"""experiments/studies/probe_shut_door: the task undone with the arm where the expert left it."""
import numpy as np
import pytest

from vidrl_jax.errors import VidrlError


def test_undone_frame_shuts_the_door_and_the_masked_form_tells_it():
    """Putting door-open's hinge back where the reset left it changes the frame (the door
    shuts) and not the arm; whole-frame progress pays the shut door about as the open one,
    the arm-masked form as a random episode (a lead near 1)."""
    from experiments.studies import probe_shut_door as probe
    from experiments.progress_probes import not_arm
    from vidrl_jax.envs.metaworld_env import MetaWorldEnv

    env = MetaWorldEnv("door-open-v3", size=16)
    try:
        assert probe.object_joint(env)[1] == "doorjoint"
        frames, first, q0 = probe.expert_episode(env, "door-open-v3", probe.SEED_BASE, 2)
        assert first is not None and len(frames) == first + 3
        done = frames[-1]
        undone = probe.undone_frame(env, q0)
    finally:
        env.close()
    changed = np.any(done != undone, axis=-1)
    assert changed.sum() >= 3                         # the door moved
    arm = not_arm(done[None])[0] == 0
    assert not np.any(changed & arm & (not_arm(undone[None])[0] == 0))  # the arm did not

    out = probe.probe("door-open-v3", "corner2", 16, 1)
    assert set(out) == {"progress", "progress_local", "progress_proj", "progress_masked"}
    assert all(np.isfinite(v["lead"]) for v in out.values())
    assert out["progress_masked"]["lead"] > out["progress"]["lead"] + 0.3


def test_a_size_off_the_grid_is_refused():
    from experiments.studies import probe_shut_door as probe
    with pytest.raises(VidrlError, match="--sizes: 20 is not a multiple of 8"):
        probe.probe("door-open-v3", "corner2", 20, 1)
