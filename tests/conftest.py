"""Test environment: 2 forced CPU devices compiling at -O0, offline, EGL rendering, no
progress bars; a fixture counting XLA compiles."""
import os

import pytest

# Tiny models: compiling dominates the suite's time, and XLA's CPU backend compiles
# 3-4x faster without LLVM optimisations (the tiny VAE's init: 13 s -> 4 s).
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=2"
                           " --xla_backend_optimization_level=0").strip()
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ["VIDRL_NO_PROGRESS"] = "1"

# The files whose tests take minutes, slowest first: under `--dist loadfile` files go to
# the 2 workers in collection order, so these start first instead of leaving one worker
# alone on the notebook at the end of the run.
SLOW_FIRST = ("test_notebook.py", "test_multihost.py", "test_agent_stage.py",
              "test_learned_reward.py", "test_diffusion.py", "test_bench_pipeline.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = os.path.basename(str(item.fspath))
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)
    items.sort(key=rank)  # stable: the order within each file is kept


@pytest.fixture
def compiles():
    """The names of the programs XLA compiles while the test runs, in order."""
    import jax
    names = []

    def listener(event, _, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(kwargs.get("fun_name"))
    jax.monitoring.register_event_duration_secs_listener(listener)
    yield names
    jax.monitoring.unregister_event_duration_listener(listener)
