"""Multi-host through JAX's own runtime (no home-made distribution layer).

Each process runs its own envs and replay shard; `jax.pmap` over all devices of
all processes averages gradients with `lax.pmean`. Call `initialize` before any
other JAX work.

pmap takes and returns *host-local* arrays (leading axis = this process's
devices; jax 0.10 and 0.11 assemble the global array inside pmap). Outside pmap,
`to_global` / `to_host_local` convert such arrays to and from global `jax.Array`s
(what orbax checkpoints: each process writes and reads its own shards), `gather`
collects host data from every process, and `barrier` waits for all processes
(the runtime's coordination service, no device collective: it may wait for hours,
e.g. while process 0 alone trains the video models).
"""
import itertools

import jax
import numpy as np

AXIS = "devices"  # the axis name of every pmap in the package (see pmap_layout)
BARRIER_TIMEOUT_S = 48 * 3600
_barrier_ids = itertools.count()


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


def barrier(name, timeout_s=BARRIER_TIMEOUT_S):
    """Blocks until every process has called barrier() as often (same order, same
    names). No-op with one process."""
    if jax.process_count() == 1:
        return
    barrier_id = f"vidrl:{next(_barrier_ids)}:{name}"
    from jax._src import distributed as runtime  # the client has no public barrier API
    client = getattr(runtime.global_state, "client", None)
    if client is None or not hasattr(client, "wait_at_barrier"):
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(barrier_id)
        return
    client.wait_at_barrier(barrier_id, int(timeout_s * 1000))


def pmap_mesh():
    """The 1-D mesh of a multi-process pmap: the devices of process 0, then of
    process 1, ... (the order jax.pmap uses)."""
    devices = [d for p in range(jax.process_count()) for d in jax.local_devices(process_index=p)]
    return jax.sharding.Mesh(np.array(devices), (AXIS,))


def to_global(tree):
    """Host-local pmap-layout arrays [local devices, ...] -> global jax.Arrays
    [all devices, ...] sharded over processes (nothing is copied between hosts)."""
    from jax.experimental import multihost_utils
    P = jax.sharding.PartitionSpec
    return multihost_utils.host_local_array_to_global_array(tree, pmap_mesh(), P(AXIS))


def to_host_local(tree):
    """Inverse of `to_global`: this process's rows [local devices, ...]."""
    from jax.experimental import multihost_utils
    P = jax.sharding.PartitionSpec
    return multihost_utils.global_array_to_host_local_array(tree, pmap_mesh(), P(AXIS))


def global_sharding():
    """Sharding of `to_global`'s arrays (restore targets for orbax)."""
    P = jax.sharding.PartitionSpec
    return jax.sharding.NamedSharding(pmap_mesh(), P(AXIS))


def pmap_layout(tree, devices=None):
    """[n, ...] leaves laid out as a pmap over `AXIS` (and `devices`) lays out its
    outputs: an identity pmap with that axis name.

    Give a pmapped step its first inputs in this layout. In any other (numpy, one
    device, a pmap without the axis name) the first call compiles a program for
    that layout, and a later call, on the step's own outputs, compiles the step
    again (the diffusion step on 8 CPU devices: 11 s twice).
    """
    return jax.pmap(lambda x: x, axis_name=AXIS, devices=devices)(tree)


def replicate(tree, devices=None):
    """One copy of `tree` per device ([n, ...]; `devices` default: all local
    devices) in `pmap_layout`."""
    n = len(devices) if devices is not None else jax.local_device_count()
    stacked = jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), tree)
    return pmap_layout(stacked, devices)


def unreplicate(tree):
    """Device 0's copy of a pytree replicated for pmap ([local devices, ...] -> [...]).

    Reads that device's buffer directly. `x[0]` on an array sharded over devices
    would compile and run an all-reduce over all of them, one program per leaf;
    many such small collective programs in flight beside a pmapped step (the agent
    reads its state every env step) is what aborted the process on a loaded 2-core
    machine (an XLA CPU collective rendezvous gives up after its timeout with a
    fatal error).
    """
    def first(x):
        if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1:
            return x.addressable_data(0)[0]
        return x[0]
    return jax.tree.map(first, tree)


def gather(tree):
    """Every process's host arrays (same shapes everywhere), stacked: [processes, ...]
    numpy. A collective: every process must call it, equally often."""
    if jax.process_count() == 1:
        return jax.tree.map(lambda x: np.asarray(x)[None], tree)
    from jax.experimental import multihost_utils
    return multihost_utils.process_allgather(tree, tiled=False)
