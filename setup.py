"""vidrl_jax: rewards for RL agents from generated goal videos (GenReward in JAX)."""
from setuptools import find_packages, setup

# Exact pins (see DESIGN.md): jax 0.10.2 has a ~3x slower CPU conv backward;
# transformers 4.57.6 is the last release with Flax CLIP; metaworld 3.1.1 pins
# mujoco 3.3.0 and imports `packaging` without declaring it.
INSTALL_REQUIRES = [
    "jax==0.10.1",
    "jaxlib==0.10.1",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "ml_collections==1.1.0",
    "absl-py==2.5.1",
    "tensorboardX==2.6.5",
    "tensorboard==2.21.0",  # the viewer: `tensorboard --logdir WORKDIR/tb`
    "gymnasium==1.4.0",
    "metaworld==3.1.1",
    "mujoco==3.3.0",
    "numpy==2.4.6",
    "packaging==26.3",
    "transformers==4.57.6",
    "huggingface-hub==0.36.2",
    "tqdm==4.70.1",
    "imageio==2.38.1",
    "pillow==13.0.0",
    "matplotlib==3.11.2",
    "scipy==1.17.1",
]

EXTRAS = {
    # torch only for CLIP conversion and parity tests; never a runtime need.
    "test": ["pytest==9.2.0", "pytest-timeout==2.4.0", "pytest-xdist==3.8.0", "execnet==2.1.2", "psutil==7.2.2", "torch==2.13.0"],
    "convert": ["torch==2.13.0"],
}

setup(
    name="vidrl_jax",
    version="0.1.0",
    description="Rewards for RL agents from generated goal videos (GenReward) in JAX/Flax.",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["vidrl_jax", "vidrl_jax.*", "configs", "experiments"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
)
