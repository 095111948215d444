"""Meta-World env wrapper (upright frames, seeding, action repeat), experts, vector envs."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from vidrl_jax.envs.metaworld_env import MetaWorldEnv, make_env_from_config
from vidrl_jax.errors import ConfigError, VidrlError


def _raw_render(env, size, camera):
    """MuJoCo's own renderer on the same model and state (no flip applied)."""
    import mujoco
    renderer = mujoco.Renderer(env.unwrapped_metaworld.model, size, size)
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0  # as fast_render does
    try:
        renderer.update_scene(env.unwrapped_metaworld.data, camera=camera)
        return renderer.render().copy()
    finally:
        renderer.close()


@pytest.mark.parametrize("camera,flipped", [("corner2", True), ("topview", False)])
def test_frames_upright_and_sized(camera, flipped):
    env = MetaWorldEnv("door-open-v3", size=24, camera=camera)
    try:
        obs, info = env.reset(seed=0)
        frame = info["frame"]
        assert obs.shape == (39,) and obs.dtype == np.float32
        assert frame.shape == (24, 24, 3) and frame.dtype == np.uint8
        raw = _raw_render(env, 24, camera)
        expected = raw[::-1, ::-1] if flipped else raw  # corner cameras: rotate 180 degrees
        np.testing.assert_array_equal(frame, expected)
        assert not np.array_equal(frame, raw[::-1, ::-1] if not flipped else raw)
        _, _, _, _, info = env.step(np.zeros(4, np.float32))
        assert info["frame"].shape == (24, 24, 3) and "success" in info
        np.testing.assert_array_equal(env.render(), info["frame"])
    finally:
        env.close()


def test_seeding_action_repeat_and_truncation():
    env = MetaWorldEnv("drawer-open-v3", size=16, action_repeat=1, max_episode_steps=3, seed=0)
    env2 = MetaWorldEnv("drawer-open-v3", size=16, action_repeat=2, max_episode_steps=3, seed=0,
                        render=False)
    try:
        a, info_a = env.reset(seed=5)
        b, info_b = env.reset(seed=5)
        c, _ = env.reset(seed=6)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(info_a["frame"], info_b["frame"])
        assert not np.allclose(a, c)  # another seed: another object/goal configuration
        # action repeat 2 == two single steps, rewards summed
        action = np.array([0.3, -0.2, 0.1, 1.0], np.float32)
        env.reset(seed=7)
        o1, r1, *_ = env.step(action)
        o2, r2, *_ = env.step(action)
        env2.reset(seed=7)
        o, r, term, trunc, info = env2.step(action)
        np.testing.assert_allclose(o, o2, atol=1e-6)
        np.testing.assert_allclose(r, r1 + r2, rtol=1e-5)
        assert "frame" not in info and not term and not trunc
        # truncation after max_episode_steps (repeated) steps
        env.reset(seed=1)
        truncs = [env.step(action)[3] for _ in range(3)]
        assert truncs == [False, False, True]
    finally:
        env.close()
        env2.close()


def test_bad_config_and_missing_egl_give_clear_errors(monkeypatch):
    with pytest.raises(ConfigError, match="door-open-v3"):
        MetaWorldEnv("door-opne-v3")
    with pytest.raises(ConfigError, match="env.camera"):
        MetaWorldEnv("door-open-v3", camera="nope")
    with pytest.raises(ConfigError, match="env.size"):
        MetaWorldEnv("door-open-v3", size=0)
    env = MetaWorldEnv("reach-v3", size=16)
    try:
        def broken():
            raise ImportError("Cannot initialize a EGL device display")
        monkeypatch.setattr(env.unwrapped_metaworld, "render", broken)
        with pytest.raises(VidrlError, match="libegl1"):
            env.reset(seed=0)
    finally:
        env.close()


@pytest.mark.parametrize("task", ["reach-v3", "button-press-topdown-v3"])
def test_expert_demos_succeed(task):
    from configs.metaworld import get_config
    from vidrl_jax.envs.experts import collect_episode, expert_policy
    config = get_config()
    config.env.size = 16
    env = make_env_from_config(config.env, task=task)
    try:
        ep = collect_episode(env, expert_policy(task), seed=11, steps_after_success=3)
        L = len(ep["actions"])
        assert ep["success"].any(), f"{task} expert failed"
        first = int(np.argmax(ep["success"]))
        assert L == first + 1 + 3  # stopped 3 steps after the first success
        assert ep["frames"].shape == (L + 1, 16, 16, 3) and ep["frames"].dtype == np.uint8
        assert ep["states"].shape == (L + 1, 39) and ep["states"].dtype == np.float32
        assert ep["actions"].shape == (L, 4) and ep["rewards"].shape == (L,)
        assert ep["task"] == task and ep["seed"] == 11 and ep["instruction"]
        assert np.abs(ep["actions"]).max() <= 1.0
        # a noisy expert is reproducible from its rng and differs from the clean one
        env.max_episode_steps = 6
        noisy = [collect_episode(env, expert_policy(task), seed=11, steps_after_success=3,
                                 action_noise=0.3, rng=np.random.default_rng(0))
                 for _ in range(2)]
        assert len(noisy[0]["actions"]) == 6
        np.testing.assert_array_equal(noisy[0]["actions"], noisy[1]["actions"])
        assert not np.array_equal(noisy[0]["actions"][:5], ep["actions"][:5])
    finally:
        env.close()


def _alive(pid):
    """True if `pid` runs (zombies, i.e. exited but not yet reaped, count as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pids, timeout=15):
    end = time.time() + timeout
    while time.time() < end and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_vector_env_steps_and_shuts_down_on_keyboard_interrupt():
    from configs.metaworld import get_config
    from vidrl_jax.envs.vector import make_vector_env
    config = get_config()
    config.env.update(task="reach-v3", size=16, max_episode_steps=3)
    pids = []
    with pytest.raises(KeyboardInterrupt):
        with make_vector_env(config.env, num_envs=2, seed=0) as envs:
            pids = [p.pid for p in envs.processes]
            obs, infos = envs.reset(seed=0)
            assert obs.shape == (2, 39) and infos["frame"].shape == (2, 16, 16, 3)
            assert not np.allclose(obs[0], obs[1])  # env i seeded with seed + i
            for _ in range(3):
                obs, rew, term, trunc, infos = envs.step(np.zeros((2, 4), np.float32))
            assert infos["success"].shape == (2,) and trunc.all()
            envs.step_async(np.zeros((2, 4), np.float32))  # a call in flight when interrupted
            raise KeyboardInterrupt
    assert len(pids) == 2 and envs.closed
    assert _wait_gone(pids) == []


_SCRIPT = textwrap.dedent("""
    import sys, time
    from configs.metaworld import get_config
    from vidrl_jax.envs.vector import make_vector_env
    if __name__ == "__main__":
        c = get_config(); c.env.update(task="reach-v3", size=16)
        envs = make_vector_env(c.env, num_envs=2, seed=0)
        envs.reset(seed=0)
        print(" ".join(str(p.pid) for p in envs.processes), flush=True)
        try:
            while True:
                envs.step(envs.action_space.sample())
        finally:
            envs.close(terminate=True)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_vector_env_leaves_no_orphans(tmp_path, sig):
    """Ctrl-C to the whole process group, or the main process killed: workers exit."""
    script = tmp_path / "vec.py"
    script.write_text(_SCRIPT)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # The default SIGINT disposition, as under a terminal: a test runner started in the
    # background by a non-interactive shell inherits SIGINT ignored, and so would the
    # script, which then never sees the Ctrl-C.
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=root, text=True,
                            start_new_session=True, env=dict(os.environ, PYTHONPATH=root),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        if sig == signal.SIGINT:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            proc.kill()
        proc.wait(timeout=30)
        assert _wait_gone(pids) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
