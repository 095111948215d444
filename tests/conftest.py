"""Test environment: 2 forced CPU devices, offline, EGL rendering, no progress bars."""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=2").strip()
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ["VIDRL_NO_PROGRESS"] = "1"
