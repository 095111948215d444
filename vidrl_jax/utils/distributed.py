"""Multi-host start-up through JAX's own runtime (no home-made distribution layer).

Each process runs its own envs and replay shard; `jax.pmap` over all devices of
all processes averages gradients with `lax.pmean`. Call `initialize` before any
other JAX work.
"""
import jax


def initialize(coordinator_address="", num_processes=0, process_id=-1):
    """jax.distributed.initialize with explicit values, or auto-detected when empty.

    On CPU, cross-process collectives use gloo (what the CPU test runs on).
    """
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, ValueError):  # option renamed/removed in a future jax
        pass
    kwargs = {}
    if coordinator_address:
        kwargs["coordinator_address"] = coordinator_address
    if num_processes > 0:
        kwargs["num_processes"] = int(num_processes)
    if process_id >= 0:
        kwargs["process_id"] = int(process_id)
    jax.distributed.initialize(**kwargs)
    return jax.process_index(), jax.process_count()


def initialize_from_config(config):
    d = config.distributed
    return initialize(d.coordinator_address, d.num_processes, d.process_id)
