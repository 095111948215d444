"""One gymnasium wrapper for all 50 Meta-World v3 tasks: state + upright frames.

    env = MetaWorldEnv("door-open-v3", size=32, camera="corner2")
    obs, info = env.reset(seed=3)       # obs float32 [39], info["frame"] uint8 [32, 32, 3]
    obs, r, terminated, truncated, info = env.step(action)   # action float32 [4] in [-1, 1]
    info["success"]                     # bool, any success over the repeated sub-steps

Seeding: each reset draws the task's random initial configuration (object and
goal positions, Meta-World's `rand_vec`) from the env's own generator.
`reset(seed=s)` reseeds it, so the same seed gives the same configuration and
different seeds different ones; `reset()` continues the sequence started by the
constructor's `seed`. (Meta-World's `MT1` benchmark instead picks one of 50
fixed goals with an unseeded wrapper and ignores `reset(seed=...)`, which is why
the task class is built directly here; the observation matches MT1's: goal
position observable, 39 floats.)
"""
import atexit
import os
import weakref

import vidrl_jax.envs  # noqa: F401  (sets MUJOCO_GL before mujoco is imported)

import gymnasium as gym
import numpy as np

from vidrl_jax.envs.tasks import check_task, instruction
from vidrl_jax.errors import ConfigError, VidrlError

CAMERAS = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper",
           "gripperPOV")
# These cameras come out upside down in Meta-World's scene: rotate them 180 degrees.
FLIPPED_CAMERAS = ("corner", "corner2", "corner3", "corner4")
OBS_DIM = 39
ACTION_DIM = 4

_EGL_HELP = (
    "MuJoCo could not create an offscreen GL context for rendering (MUJOCO_GL={gl}): {err}. "
    "On Debian/Ubuntu install the EGL and GL libraries: `sudo apt-get install -y libegl1 libgl1` "
    "(for software rendering also `libegl-mesa0`), or set MUJOCO_GL=osmesa with libosmesa6 installed."
)


_LIVE_ENVS = weakref.WeakSet()
_EXIT_HOOK = []


def _close_at_exit():
    """Closes live envs at exit, before MuJoCo's own atexit hook terminates the EGL display.

    MuJoCo registers `eglTerminate` when the first GL context is made; atexit runs
    hooks last-in first-out, so registering after it (here, after the first render)
    frees our contexts first and avoids EGL errors from `__del__` at exit.
    """
    if not _EXIT_HOOK:
        _EXIT_HOOK.append(True)
        atexit.register(lambda: [env.close() for env in list(_LIVE_ENVS)])


def _task_class(task):
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS
    return ALL_V3_ENVIRONMENTS[check_task(task)]


class MetaWorldEnv(gym.Env):
    """A Meta-World v3 task with state observations and rendered RGB frames.

    Args:
      task: a Meta-World v3 task name, e.g. "door-open-v3".
      size: frames are size x size x 3 uint8.
      camera: one of CAMERAS; corner* cameras are rotated upright.
      fast_render: shadows, MSAA and reflections off (~9x faster software rendering).
      action_repeat: each `step` repeats the action this many times (rewards summed,
        success = any sub-step succeeded).
      max_episode_steps: episode length in (repeated) steps; `truncated` after it.
      seed: seeds the generator of initial configurations.
      render: if False, no frames are rendered (state-only use, much faster) and info
        has no "frame".
    """

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"

    def __init__(self, task, size=32, camera="corner2", fast_render=True, action_repeat=1,
                 max_episode_steps=200, seed=0, render=True):
        check_task(task)
        if camera not in CAMERAS:
            raise ConfigError(f"env.camera={camera!r} is not a Meta-World camera; "
                              f"valid: {', '.join(CAMERAS)}")
        if not (isinstance(size, int) and 8 <= size <= 1024):
            raise ConfigError(f"env.size={size!r} must be an int in [8, 1024] (frame side, pixels)")
        if not (isinstance(action_repeat, int) and action_repeat >= 1):
            raise ConfigError(f"env.action_repeat={action_repeat!r} must be an int >= 1")
        if not (isinstance(max_episode_steps, int) and max_episode_steps >= 1):
            raise ConfigError(f"env.max_episode_steps={max_episode_steps!r} must be an int >= 1")
        self.task = task
        self.instruction = instruction(task)
        self.size = size
        self.camera = camera
        self.action_repeat = action_repeat
        self.max_episode_steps = max_episode_steps
        self.render_frames = render

        env = _task_class(task)(render_mode="rgb_array" if render else None,
                                camera_name=camera, width=size, height=size)
        # As MT1 does: goal observable (39-d obs), and a fresh random initial
        # configuration on every reset, drawn from the env's seeded generator.
        env._partially_observable = False
        env.__dict__.pop("sawyer_observation_space", None)  # cached property
        env._set_task_called = True
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env.max_path_length = 2**62  # only used for its own truncation; we truncate ourselves
        if fast_render:
            env.model.vis.quality.shadowsize = 0   # no shadow maps
            env.model.vis.quality.offsamples = 0   # no MSAA
        self._env = env
        self._fast_render = fast_render
        self._closed = False
        _LIVE_ENVS.add(self)
        self._flip = camera in FLIPPED_CAMERAS
        self._steps = 0
        self._frame = None
        self._rendered_once = False
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self._seed(seed)

    def _seed(self, seed):
        self._env.seed(int(seed))
        self.action_space.seed(int(seed))

    # -- rendering -------------------------------------------------------------
    def _render_frame(self):
        try:
            if not self._rendered_once:
                self._setup_viewer()
            img = self._env.render()
        except Exception as err:  # EGL/GL load failures surface on the first render
            if self._rendered_once:
                raise
            raise VidrlError(_EGL_HELP.format(gl=os.environ.get("MUJOCO_GL"),
                                              err=f"{type(err).__name__}: {err}")) from err
        if not self._rendered_once:
            _close_at_exit()
        self._rendered_once = True
        if self._flip:
            img = img[::-1, ::-1]
        return np.ascontiguousarray(img, dtype=np.uint8)

    def _setup_viewer(self):
        """Creates the offscreen viewer (and GL context); fast_render turns reflections off.

        Without reflections MuJoCo skips the mirrored second pass for the reflective
        floor/table: ~35% faster, visually the same at small sizes. (Render flags
        live on the viewer's scene, which gymnasium 1.4 creates lazily.)
        """
        import mujoco
        viewer = self._env.mujoco_renderer._get_viewer("rgb_array")
        if self._fast_render:
            viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def render(self):
        """The current frame, uint8 [size, size, 3], upright."""
        if self._frame is None:
            self._frame = self._render_frame()
        return self._frame

    def _info(self, info):
        if self.render_frames:
            self._frame = self._render_frame()
            info["frame"] = self._frame
        return info

    # -- gym API -------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        """-> (obs float32 [39], info {"frame", "success": False})."""
        if seed is not None:
            self._seed(seed)
        self._steps = 0
        self._frame = None
        obs, _ = self._env.reset()
        return obs.astype(np.float32), self._info({"success": False})

    def step(self, action):
        """-> (obs float32 [39], reward float, terminated False, truncated bool, info).

        info: "success" (bool), "frame" (uint8 [size, size, 3]).
        """
        action = np.clip(np.asarray(action, dtype=np.float32).reshape(ACTION_DIM), -1.0, 1.0)
        reward, success = 0.0, False
        for _ in range(self.action_repeat):
            obs, r, _, _, inner = self._env.step(action)
            reward += float(r)
            success = success or bool(inner["success"])
        self._steps += 1
        self._frame = None
        truncated = self._steps >= self.max_episode_steps
        info = {"success": success}
        return obs.astype(np.float32), reward, False, truncated, self._info(info)

    @property
    def unwrapped_metaworld(self):
        """The underlying Meta-World task env (SawyerXYZEnv)."""
        return self._env

    def close(self):
        if not getattr(self, "_closed", True):
            self._closed = True
            self._env.close()


def make_env_from_config(env_config, task=None, seed=0, render=True):
    """A MetaWorldEnv from the `env` config section (task defaults to env_config.task)."""
    return MetaWorldEnv(
        task or env_config.task,
        size=env_config.size,
        camera=env_config.camera,
        fast_render=env_config.fast_render,
        action_repeat=env_config.action_repeat,
        max_episode_steps=env_config.max_episode_steps,
        seed=seed,
        render=render,
    )
