"""Shards (exact round trip, atomic writes), the clip iterator, and the demos stage (resume)."""
import json
import os
import shutil

import numpy as np
import pytest

from vidrl_jax.data import shards
from vidrl_jax.data.clips import ClipIterator
from vidrl_jax.errors import ConfigError, VidrlError


def _episode(rng, task, length, seed, size=8, ep_id=0):
    """Synthetic episode; pixel (0,0,0) = frame index, (0,0,1) = ep_id: clips can be checked."""
    frames = rng.integers(0, 256, (length + 1, size, size, 3), dtype=np.uint8)
    frames[:, 0, 0, 0] = np.arange(length + 1) % 256
    frames[:, 0, 0, 1] = ep_id
    success = (rng.random(length) < 0.3) & (ep_id != 2)
    success[-1] = ep_id != 2  # episode 2 fails, the others succeed
    return dict(
        frames=frames,
        states=rng.normal(size=(length + 1, 39)).astype(np.float32),
        actions=rng.uniform(-1, 1, (length, 4)).astype(np.float32),
        rewards=rng.normal(size=(length,)).astype(np.float32),
        success=success,
        task=task, instruction=f"do {task}", seed=seed)


def _dataset(tmp_path, lengths=(5, 12, 3, 20, 9), tasks=("b-task", "a-task")):
    rng = np.random.default_rng(0)
    eps = [_episode(rng, tasks[i % len(tasks)], n, seed=100 + i, ep_id=i)
           for i, n in enumerate(lengths)]
    directory = str(tmp_path / "demos")
    with shards.ShardWriter(directory, episodes_per_shard=2) as writer:
        for ep in eps:
            writer.add(ep)
    return directory, eps


def test_shards_round_trip_exactly(tmp_path):
    directory, eps = _dataset(tmp_path)
    manifest = shards.read_manifest(directory)
    assert [s["name"] for s in manifest["shards"]] == ["shard-00000", "shard-00001", "shard-00002"]
    assert manifest["tasks"] == ["a-task", "b-task"]
    assert manifest["num_episodes"] == 5
    assert manifest["num_frames"] == sum(len(e["frames"]) for e in eps)
    back = shards.load_episodes(directory)
    assert len(back) == len(eps)
    for a, b in zip(eps, back):
        assert set(a) == set(b)
        for k in a:
            if isinstance(a[k], np.ndarray):
                assert b[k].dtype == a[k].dtype and b[k].shape == a[k].shape, k
                np.testing.assert_array_equal(b[k], a[k], err_msg=k)
            else:
                assert b[k] == a[k], k
    only_a = shards.load_episodes(directory, tasks=["a-task"])
    assert [e["seed"] for e in only_a] == [101, 103]


def test_shards_writes_are_atomic(tmp_path, monkeypatch):
    directory, _ = _dataset(tmp_path)
    # A killed write leaves only a hidden temporary directory: ignored, then cleaned.
    os.makedirs(os.path.join(directory, ".tmp-shard-00009-dead"))
    assert shards.list_shards(directory) == ["shard-00000", "shard-00001", "shard-00002"]
    rng = np.random.default_rng(1)
    calls = []

    def failing_save(path, arr):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        with open(path, "wb") as f:
            np.lib.format.write_array(f, np.asanyarray(arr))

    monkeypatch.setattr(shards.np, "save", failing_save)
    with pytest.raises(OSError):
        shards.write_shard(directory, "shard-00003", [_episode(rng, "a-task", 4, 0)])
    monkeypatch.undo()
    assert "shard-00003" not in os.listdir(directory)
    assert not [n for n in os.listdir(directory) if "shard-00003" in n]  # no partial left
    shards.clean_partial(directory)
    assert not [n for n in os.listdir(directory) if n.startswith(".tmp")]
    # Malformed episodes are refused before anything is written.
    bad = _episode(rng, "a-task", 4, 0)
    bad["rewards"] = bad["rewards"][:-1]
    with pytest.raises(VidrlError, match="rewards"):
        shards.write_shard(directory, "shard-00004", [bad])
    with pytest.raises(VidrlError, match="demos"):
        shards.read_manifest(str(tmp_path / "nowhere"))


def test_clip_iterator_deterministic_and_correct(tmp_path):
    directory, eps = _dataset(tmp_path)
    T, stride, B = 4, 2, 6
    kw = dict(clip_length=T, frame_stride=stride, batch_size=B)
    a = iter(ClipIterator(directory, seed=3, **kw))
    b = iter(ClipIterator(directory, seed=3, **kw))
    c = iter(ClipIterator(directory, seed=4, **kw))
    two = iter(ClipIterator(directory, seed=3, num_devices=2, **kw))
    batches = [next(a) for _ in range(5)]
    for batch in batches:
        other = next(b)
        np.testing.assert_array_equal(batch["frames"], other["frames"])
        np.testing.assert_array_equal(batch["task_id"], other["task_id"])
        split = next(two)  # same batch, split across devices
        assert split["frames"].shape == (2, B // 2, T, 8, 8, 3)
        assert split["task_id"].shape == (2, B // 2) and split["task_id"].dtype == np.int32
        np.testing.assert_array_equal(split["frames"].reshape(batch["frames"].shape),
                                      batch["frames"])
        np.testing.assert_array_equal(split["task_id"].reshape(-1), batch["task_id"].reshape(-1))
    assert any(not np.array_equal(batch["frames"], next(c)["frames"]) for batch in batches)
    # two hosts: each gets its half of the same global batch
    hosts = [iter(ClipIterator(directory, seed=3, process_index=i, process_count=2, **kw))
             for i in range(2)]
    halves = [next(h) for h in hosts]
    np.testing.assert_array_equal(
        np.concatenate([h["frames"][0] for h in halves]), batches[0]["frames"][0])

    # Every clip is T frames `stride` apart from one episode (short ones padded with
    # the last frame), and task_id indexes the sorted tasks.
    tasks = ["a-task", "b-task"]
    seen_short = False
    for batch in batches:
        frames, task_ids = batch["frames"][0], batch["task_id"][0]
        for clip, tid in zip(frames, task_ids):
            ep = eps[clip[0, 0, 0, 1]]
            assert tasks[tid] == ep["task"]
            idx = clip[:, 0, 0, 0].astype(int)
            n = len(ep["frames"])
            start = idx[0]
            expected = np.minimum(start + stride * np.arange(T), n - 1)
            np.testing.assert_array_equal(idx, expected)
            np.testing.assert_array_equal(clip, ep["frames"][expected])
            if n < (T - 1) * stride + 1:
                seen_short = True
                assert start == 0
    assert seen_short  # the 3-step episode is shorter than the clip span (7 frames)

    first = next(iter(ClipIterator(directory, seed=0, start="first", tasks=["b-task"], **kw)))
    assert (first["frames"][0, :, 0, 0, 0, 0] == 0).all()
    assert (first["task_id"] == 0).all()  # only b-task, index 0 of ["b-task"]
    ok = ClipIterator(directory, seed=0, success_only=True, **kw)
    assert ok.num_episodes == sum(bool(e["success"].any()) for e in eps) < len(eps)
    with pytest.raises(ConfigError, match="batch_size"):
        ClipIterator(directory, clip_length=T, frame_stride=1, batch_size=3, seed=0, num_devices=2)
    with pytest.raises(VidrlError, match="not in the demo dataset"):
        ClipIterator(directory, clip_length=T, frame_stride=1, batch_size=2, seed=0,
                     tasks=["c-task"])


def _demos_config(tasks, target, workers):
    from configs.metaworld import get_config
    c = get_config("smoke")
    c.env.task = target
    c.env.size = 16
    c.env.max_episode_steps = 6
    c.demos.tasks = tasks
    c.demos.episodes_per_task = 2
    c.demos.episodes_per_shard = 1
    c.demos.steps_after_success = 20  # > max_episode_steps: every episode has 6 steps
    c.demos.num_workers = workers
    return c


def _run_stage(config, workdir):
    from vidrl_jax.stages import StageContext
    from vidrl_jax.stages import demos
    from vidrl_jax.utils.logging import MetricLogger
    stage_dir = os.path.join(workdir, "demos")
    os.makedirs(stage_dir, exist_ok=True)
    logger = MetricLogger(workdir, use_tensorboard=False)
    try:
        return demos.run(config, StageContext(workdir, stage_dir, logger)), stage_dir
    finally:
        logger.close()


def test_demos_stage_parallel_and_resumes(tmp_path):
    """Two workers collect target + demo tasks; a lost shard is re-collected identically."""
    config = _demos_config(("reach-v3",), "drawer-close-v3", workers=2)
    summary, stage_dir = _run_stage(config, str(tmp_path))
    assert summary["episodes"] == 4 and summary["tasks"] == ["drawer-close-v3", "reach-v3"]
    assert summary["frames_per_s"] > 0 and 0.0 <= summary["success_rate"] <= 1.0
    before = shards.load_episodes(stage_dir)
    assert all(len(e["frames"]) == 7 and e["frames"].shape[1:] == (16, 16, 3) for e in before)
    assert len({e["seed"] for e in before}) == 4

    shutil.rmtree(os.path.join(stage_dir, "reach-v3-0001"))  # as if killed mid-way
    os.remove(os.path.join(stage_dir, "manifest.json"))
    config.demos.num_workers = 1
    summary2, _ = _run_stage(config, str(tmp_path))
    assert summary2["resumed_shards"] == 3 and summary2["collected_episodes"] == 1
    after = shards.load_episodes(stage_dir)
    for a, b in zip(before, after):
        for k in ("frames", "states", "actions", "rewards", "success"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with open(os.path.join(stage_dir, "manifest.json")) as f:
        assert json.load(f)["num_episodes"] == 4
