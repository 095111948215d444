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
