"""Multi-host through jax.distributed: 2 local processes (coordinator on 127.0.0.1),
each with its own replay shard, give the same parameters as one process with the
same global batch on as many devices."""
import os
import socket
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "multihost_worker.py")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(pid, nproc, port, local, out):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("XLA_FLAGS", None)
    return subprocess.Popen([sys.executable, WORKER, str(pid), str(nproc), str(port),
                             str(local), out], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_processes_equal_one_process(tmp_path):
    single = str(tmp_path / "single.npz")
    multi = str(tmp_path / "multi.npz")
    ref = _launch(0, 1, 0, 2, single)
    port = _free_port()
    procs = [_launch(i, 2, port, 1, multi) for i in range(2)]
    for p in [ref] + procs:
        out, _ = p.communicate(timeout=400)
        assert p.returncode == 0, out[-3000:]
    a, b = np.load(single), np.load(multi)
    assert len(a.files) == len(b.files) > 10
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- the agent stage
def _run_command(workdir, port, pid):
    """`python -m experiments.run` of process `pid` of 2 (1 CPU device each): demos in
    process 0 alone, then one agent over both processes' envs (tiny, dense reward)."""
    flags = dict(
        stages="demos,agent", workdir=workdir,
        **{f"config.{k}": v for k, v in {
            "demos.tasks": "('door-open-v3',)", "demos.episodes_per_task": 1,
            "demos.num_workers": 1, "demos.episodes_per_shard": 1,
            "env.max_episode_steps": 25, "env.num_workers": 1,
            "agent.hidden": "(32, 32)", "agent.batch_size": 16, "agent.updates_per_call": 5,
            "agent.replay_capacity": 400, "agent.prefill_steps": 52,  # no update before the kill
            "agent.total_steps": 100, "agent.eval_every": 100, "agent.eval_episodes": 2,
            "agent.checkpoint_every": 50, "agent.log_every": 50,
            "agent.fb.z_dim": 4, "agent.fb.hidden": "(16, 16)",
            "distributed.enabled": True, "distributed.coordinator_address": f"127.0.0.1:{port}",
            "distributed.num_processes": 2, "distributed.process_id": pid}.items()})
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", VIDRL_NO_PROGRESS="1",
               XLA_FLAGS="--xla_force_host_platform_device_count=1"
                         " --xla_backend_optimization_level=0")  # as conftest
    cmd = [sys.executable, "-m", "experiments.run", "--config=configs/metaworld.py:smoke,dense"]
    return subprocess.Popen(cmd + [f"--{k}={v}" for k, v in flags.items()], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_agent_stage_over_two_processes_resumes_after_a_kill(tmp_path):
    """Two `experiments.run` processes: killed after the first agent checkpoint, the
    same commands resume; both finish with the same agent; process 0 alone writes."""
    import json
    import signal
    import time

    workdir = str(tmp_path / "run")
    ckpt = os.path.join(workdir, "agent", "checkpoints")
    port = _free_port()
    procs = [_run_command(workdir, port, i) for i in range(2)]
    deadline = time.time() + 300
    while not (os.path.isdir(ckpt) and any(d.isdigit() for d in os.listdir(ckpt))):
        assert time.time() < deadline and all(p.poll() is None for p in procs), \
            procs[0].communicate()[0][-3000:]
        time.sleep(0.2)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    assert not os.path.exists(os.path.join(workdir, "results.json"))

    port = _free_port()
    procs = [_run_command(workdir, port, i) for i in range(2)]
    outs = [p.communicate(timeout=400)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
        assert "agent: resumed at env step" in out, out[-3000:]
    assert "stage demos: runs in process 0" in outs[1]
    with open(os.path.join(workdir, "results.json")) as f:
        r = json.load(f)
    assert r["processes"] == 2 and r["layout"] == "pmap"
    assert r["env_steps"] == 100 and r["updates"] == 50  # global steps: 2 envs x 25 x 2
    assert r["agents_identical_across_processes"] is True
    assert r["success_curve"]["env_steps"] == [0, 100]
    assert sorted(f for f in os.listdir(workdir) if "results" in f) == ["results.json"]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        evals = [json.loads(line)["step"] for line in f if "agent/eval/success" in line]
    assert evals.count(100) == 1  # one writer (process 0)
