"""One process of the multi-host check (run by tests/test_multihost.py).

    python tests/multihost_worker.py PROCESS_ID NUM_PROCESSES PORT LOCAL_DEVICES OUT.npz

Every process builds the same initial agent and the same *global* replay data
(one slice per global device), keeps the slices of its own devices, runs a few
fused train steps pmapped over all devices of all processes, and process 0
writes the resulting parameters.
"""
import os
import sys


def main(pid, nproc, port, local_devices, out):
    os.environ["XLA_FLAGS"] = (f"--xla_force_host_platform_device_count={local_devices}"
                               " --xla_backend_optimization_level=0")  # as conftest
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    import numpy as np

    from vidrl_jax.utils import distributed
    if nproc > 1:
        distributed.initialize(f"127.0.0.1:{port}", nproc, pid)
    from configs import metaworld
    from vidrl_jax import agents
    from vidrl_jax.data import replay as rp

    c = metaworld.get_config("smoke,genreward+dense")
    c.agent.update(hidden=(32, 32), batch_size=16, updates_per_call=3)
    c.agent.fb.update(z_dim=4, hidden=(16, 16))
    feat, lat, cap = 6, 10, 32
    n_global, n_local = jax.device_count(), jax.local_device_count()
    state = agents.create_agent_state(c, 39, 4, feat, lat, jax.random.PRNGKey(0))
    specs = rp.column_specs((39,), 4, feat, lat)
    rng = np.random.default_rng(0)
    data = {k: rng.normal(size=(n_global, cap) + tuple(s)).astype(np.float32)
            for k, (s, _) in specs.items()}
    data["terminal"] = (data["terminal"] > 1.5).astype(np.float32)
    data["success"] = (data["success"] > 0).astype(np.float32)
    mine = slice(jax.process_index() * n_local, (jax.process_index() + 1) * n_local)
    replay = rp.create_replay(cap * n_local, specs, num_devices=n_local)
    replay = rp.add(replay, {k: v[mine] for k, v in data.items()})
    goal = {"video_latent": jax.numpy.ones((lat,)), "frame_feature": jax.numpy.ones((feat,)),
            "frame_latents": jax.numpy.linspace(-1.0, 1.0, 5 * feat).reshape(5, feat)}
    step = agents.make_pmapped_train_step()
    state = distributed.replicate(state)
    for i in range(3):
        state, metrics = step(state, replay, goal, jax.random.PRNGKey(i))
    first = lambda x: np.asarray(x.addressable_shards[0].data).reshape(np.shape(x)[1:])
    leaves = [first(x) for x in jax.tree.leaves((state.critic["params"], state.actor["params"],
                                                 state.fb["params"]))]
    if jax.process_index() == 0:
        np.savez(out, *leaves)
    print(f"process {pid}/{nproc}: {n_local} local of {n_global} devices, done", flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]), int(a[1]), int(a[2]), int(a[3]), a[4])
