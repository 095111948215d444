"""Episode shards on disk: variable-length episodes, atomic writes, a manifest.

Layout of a dataset directory:

    manifest.json            shards in order, tasks, instructions, per-episode summary
    shard-00000/             one shard = a directory of .npy files + episodes.json
      frames.npy   uint8   [sum(L_i + 1), H, W, 3]   episodes concatenated
      states.npy   float32 [sum(L_i + 1), 39]
      actions.npy  float32 [sum(L_i), 4]
      rewards.npy  float32 [sum(L_i)]
      success.npy  bool    [sum(L_i)]
      episodes.json  [{task, instruction, seed, length, frame_offset, step_offset, success}, ...]

A shard is written into a hidden temporary directory and renamed into place, so
a shard directory that exists is complete; killed writes leave only `.tmp-*`
directories, which are ignored and cleaned up. The manifest is written last
(also atomically), so a dataset with a manifest is complete. Arrays are plain
.npy files so readers memory-map them: streaming episodes or sampling clips
never loads a whole dataset into memory.

Episode dict (see vidrl_jax.envs.experts.collect_episode), L = steps:
  frames uint8 [L+1,H,W,3], states float32 [L+1,39], actions float32 [L,4],
  rewards float32 [L], success bool [L], task str, instruction str, seed int.
"""
import json
import os
import shutil
import uuid

import numpy as np

from vidrl_jax.errors import VidrlError

MANIFEST = "manifest.json"
EPISODES = "episodes.json"
FORMAT_VERSION = 1
_FRAME_KEYS = ("frames", "states")      # L + 1 per episode
_STEP_KEYS = ("actions", "rewards", "success")  # L per episode
_DTYPES = dict(frames=np.uint8, states=np.float32, actions=np.float32,
               rewards=np.float32, success=np.bool_)


def _write_json_atomic(path, obj):
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_episode(ep):
    """Raises VidrlError unless `ep` is a well-formed episode dict; returns its length L."""
    missing = [k for k in _FRAME_KEYS + _STEP_KEYS + ("task", "instruction", "seed") if k not in ep]
    if missing:
        raise VidrlError(f"episode is missing keys {missing}")
    length = len(ep["actions"])
    if length < 1:
        raise VidrlError("episode has no steps (actions is empty)")
    frames = np.asarray(ep["frames"])
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise VidrlError(f"episode frames must be uint8 [L+1,H,W,3], got {frames.dtype} {frames.shape}")
    for k in _FRAME_KEYS:
        if len(ep[k]) != length + 1:
            raise VidrlError(f"episode {k} has {len(ep[k])} rows, expected L+1={length + 1}")
    for k in _STEP_KEYS:
        if len(ep[k]) != length:
            raise VidrlError(f"episode {k} has {len(ep[k])} rows, expected L={length}")
    return length


def write_shard(directory, name, episodes, extra=None):
    """Writes `episodes` (list of episode dicts) as shard `directory/name`, atomically.

    `extra`: JSON-able dict stored with the shard (e.g. what job produced it).
    Returns the shard's summary (as stored in the manifest).
    """
    if not episodes:
        raise VidrlError(f"shard {name!r}: no episodes to write")
    shapes = {np.asarray(ep["frames"]).shape[1:] for ep in episodes}
    if len(shapes) != 1:
        raise VidrlError(f"shard {name!r}: episodes have different frame shapes {sorted(shapes)}")
    os.makedirs(directory, exist_ok=True)
    metas, frame_off, step_off = [], 0, 0
    for ep in episodes:
        length = check_episode(ep)
        metas.append(dict(task=str(ep["task"]), instruction=str(ep["instruction"]),
                          seed=int(ep["seed"]), length=length, frame_offset=frame_off,
                          step_offset=step_off, success=bool(np.any(ep["success"]))))
        frame_off += length + 1
        step_off += length
    tmp = os.path.join(directory, f".tmp-{name}-{uuid.uuid4().hex}")
    os.makedirs(tmp)
    try:
        for k in _FRAME_KEYS + _STEP_KEYS:
            arr = np.concatenate([np.asarray(ep[k], _DTYPES[k]) for ep in episodes])
            np.save(os.path.join(tmp, f"{k}.npy"), arr)
        info = dict(version=FORMAT_VERSION, name=name, frame_shape=list(next(iter(shapes))),
                    episodes=metas, extra=extra or {})
        with open(os.path.join(tmp, EPISODES), "w") as f:
            json.dump(info, f)
        final = os.path.join(directory, name)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return shard_info(directory, name)


def shard_info(directory, name):
    """The stored summary of shard `name` (episodes.json), or None if it is not complete."""
    path = os.path.join(directory, name, EPISODES)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def list_shards(directory):
    """Names of the complete shards in `directory`, sorted (temporary dirs ignored)."""
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory)
                  if not n.startswith(".") and os.path.isfile(os.path.join(directory, n, EPISODES)))


def clean_partial(directory):
    """Removes leftovers of killed writes (hidden `.tmp-*` files and directories)."""
    if not os.path.isdir(directory):
        return
    for n in os.listdir(directory):
        if n.startswith(".tmp-") or ".json.tmp-" in n:
            p = os.path.join(directory, n)
            shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else os.remove(p)


def write_manifest(directory, names=None, extra=None):
    """Writes `directory/manifest.json` over shards `names` (default: all complete ones).

    Returns the manifest dict.
    """
    names = list_shards(directory) if names is None else list(names)
    if not names:
        raise VidrlError(f"no complete shards in {directory}; nothing to put in a manifest")
    shards, instructions, shape = [], {}, None
    for name in names:
        info = shard_info(directory, name)
        if info is None:
            raise VidrlError(f"shard {os.path.join(directory, name)} is missing or incomplete")
        if shape is None:
            shape = info["frame_shape"]
        elif info["frame_shape"] != shape:
            raise VidrlError(f"shard {name} has frames {info['frame_shape']}, others {shape}")
        eps = [dict(task=e["task"], seed=e["seed"], length=e["length"], success=e["success"])
               for e in info["episodes"]]
        for e in info["episodes"]:
            instructions[e["task"]] = e["instruction"]
        shards.append(dict(name=name, episodes=eps,
                           num_frames=sum(e["length"] + 1 for e in eps)))
    manifest = dict(
        version=FORMAT_VERSION,
        frame_shape=shape,
        tasks=sorted(instructions),
        instructions=dict(sorted(instructions.items())),
        num_episodes=sum(len(s["episodes"]) for s in shards),
        num_frames=sum(s["num_frames"] for s in shards),
        shards=shards,
        extra=extra or {},
    )
    _write_json_atomic(os.path.join(directory, MANIFEST), manifest)
    return manifest


def read_manifest(directory):
    """The manifest dict of the dataset in `directory`; VidrlError if there is none."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
        raise VidrlError(f"no demo dataset at {directory} (missing {MANIFEST}); "
                         "collect one with `python -m experiments.run --stages=demos ...`")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except ValueError as err:
        raise VidrlError(f"{path} is corrupt ({err}); delete the directory and re-run the demos stage")
    if manifest.get("version") != FORMAT_VERSION:
        raise VidrlError(f"{path} has format version {manifest.get('version')}, "
                         f"expected {FORMAT_VERSION}; re-run the demos stage")
    return manifest


def open_shard(directory, name):
    """Memory-mapped arrays of one shard: (arrays dict, list of episode metas)."""
    path = os.path.join(directory, name)
    info = shard_info(directory, name)
    if info is None:
        raise VidrlError(f"shard {path} listed in the manifest is missing or incomplete; "
                         "re-run the demos stage")
    arrays = {k: np.load(os.path.join(path, f"{k}.npy"), mmap_mode="r")
              for k in _FRAME_KEYS + _STEP_KEYS}
    return arrays, info["episodes"]


def _episode(arrays, meta):
    f0, s0, length = meta["frame_offset"], meta["step_offset"], meta["length"]
    ep = {k: np.array(arrays[k][f0:f0 + length + 1]) for k in _FRAME_KEYS}
    ep.update({k: np.array(arrays[k][s0:s0 + length]) for k in _STEP_KEYS})
    ep.update(task=meta["task"], instruction=meta["instruction"], seed=meta["seed"])
    return ep


def iter_episodes(directory, tasks=None):
    """Yields episode dicts shard by shard (in manifest order), optionally only `tasks`."""
    manifest = read_manifest(directory)
    wanted = None if tasks is None else set(tasks)
    for shard in manifest["shards"]:
        if wanted is not None and not wanted & {e["task"] for e in shard["episodes"]}:
            continue
        arrays, metas = open_shard(directory, shard["name"])
        for meta in metas:
            if wanted is None or meta["task"] in wanted:
                yield _episode(arrays, meta)


def load_episodes(directory, tasks=None):
    """All episodes (optionally only `tasks`) as a list; for small datasets."""
    return list(iter_episodes(directory, tasks))


class ShardWriter:
    """Writes episodes into shards of `episodes_per_shard`, then a manifest.

        with ShardWriter(dir, episodes_per_shard=16) as w:
            for ep in episodes: w.add(ep)
        # close(): flushes the last shard, writes manifest.json over all shards in dir

    Shards are named `{prefix}-{index:05d}`. Episodes of different lengths (and
    tasks) can share a shard.
    """

    def __init__(self, directory, episodes_per_shard, prefix="shard"):
        if episodes_per_shard < 1:
            raise VidrlError(f"episodes_per_shard={episodes_per_shard} must be >= 1")
        self.directory = directory
        self.episodes_per_shard = episodes_per_shard
        self.prefix = prefix
        os.makedirs(directory, exist_ok=True)
        clean_partial(directory)
        self._buffer = []
        self._index = len([n for n in list_shards(directory) if n.startswith(prefix + "-")])
        self.names = []

    def add(self, episode):
        check_episode(episode)
        self._buffer.append(episode)
        if len(self._buffer) >= self.episodes_per_shard:
            self.flush()

    def flush(self):
        if not self._buffer:
            return
        name = f"{self.prefix}-{self._index:05d}"
        write_shard(self.directory, name, self._buffer)
        self.names.append(name)
        self._index += 1
        self._buffer = []

    def close(self, extra=None):
        """Flushes and writes the manifest; returns it."""
        self.flush()
        return write_manifest(self.directory, extra=extra)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        # on an exception: complete shards stay, no manifest is written for a partial set
