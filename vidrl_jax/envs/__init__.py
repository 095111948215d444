"""Meta-World environments, vector envs and scripted experts.

MuJoCo picks its GL backend when it is first imported, so this package sets
`MUJOCO_GL=egl` (headless rendering) before anything imports mujoco. Importing
`vidrl_jax.envs` itself does not import mujoco: `vidrl_jax.envs.tasks` stays
cheap for config validation.
"""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
# PyOpenGL must use the same platform as MuJoCo.
if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
