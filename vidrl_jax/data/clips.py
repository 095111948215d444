"""Fixed-length video clips from episode shards, as device-ready batches.

    it = ClipIterator(demo_dir, clip_length=17, frame_stride=2, batch_size=8, seed=0,
                      num_devices=jax.local_device_count())
    batch = next(iter(it))
    batch["frames"]   uint8 [num_devices, batch_size // num_devices, T, H, W, 3]
    batch["task_id"]  int32 [num_devices, batch_size // num_devices]  index into it.tasks

A clip is T = clip_length frames, `frame_stride` apart, from one episode.
Sampling: an episode uniformly at random (so every task weighs by its number
of episodes, not their length), then a start uniformly among those where the
clip fits; with `start="first"` clips always start at the reset frame (what a
first-frame-conditioned video model sees at generation time). `success_only`
keeps only episodes where the task succeeded. An episode
shorter than the clip span is padded by repeating its last frame (the scene
after the task is done). The sequence of batches is a pure function of `seed`
(and of the dataset), independent of devices: with num_devices=D the same
batch is only reshaped to [D, B/D, ...]. Multi-host: every host draws the same
global batch of `batch_size` and reads only its rows `process_index` of
`process_count` (pass jax.process_index(), jax.process_count()).

Frames are read from memory-mapped shards: memory stays small for big datasets.
"""
import numpy as np

from vidrl_jax.data.shards import open_shard, read_manifest
from vidrl_jax.errors import ConfigError, VidrlError


class ClipIterator:
    """Infinite iterator of clip batches; see the module docstring.

    Attributes:
      tasks: sorted task names in the dataset (after the `tasks` filter); task_id indexes it.
      instructions: instruction per entry of `tasks`.
      frame_shape: (H, W, 3).
    """

    def __init__(self, directory, clip_length, frame_stride, batch_size, seed, tasks=None,
                 num_devices=1, start="random", success_only=False, process_index=0,
                 process_count=1):
        if clip_length < 1:
            raise ConfigError(f"clip_length={clip_length} must be >= 1")
        if frame_stride < 1:
            raise ConfigError(f"frame_stride={frame_stride} must be >= 1")
        if num_devices < 1 or batch_size < 1 or batch_size % (num_devices * process_count):
            raise ConfigError(f"batch_size={batch_size} must be a positive multiple of the "
                              f"number of devices ({num_devices} per host x {process_count} hosts)")
        if not 0 <= process_index < process_count:
            raise ConfigError(f"process_index={process_index} not in [0, {process_count})")
        if start not in ("random", "first"):
            raise ConfigError(f"start={start!r} must be 'random' or 'first'")
        manifest = read_manifest(directory)
        wanted = set(manifest["tasks"] if tasks is None else tasks)
        unknown = wanted - set(manifest["tasks"])
        if unknown:
            raise VidrlError(f"tasks {sorted(unknown)} are not in the demo dataset at {directory}; "
                             f"it has {', '.join(manifest['tasks'])}")
        self.tasks = sorted(wanted)
        self.instructions = [manifest["instructions"][t] for t in self.tasks]
        self.frame_shape = tuple(manifest["frame_shape"])
        self.clip_length = clip_length
        self.frame_stride = frame_stride
        self.batch_size = batch_size
        self.num_devices = num_devices
        self.process_index = process_index
        self.process_count = process_count
        self.local_batch_size = batch_size // process_count
        self.seed = seed
        self.start = start

        # One entry per episode: (shard index, frame offset, number of frames, task id).
        self._arrays, entries = [], []
        task_index = {t: i for i, t in enumerate(self.tasks)}
        for shard in manifest["shards"]:
            if not wanted & {e["task"] for e in shard["episodes"]}:
                continue
            arrays, metas = open_shard(directory, shard["name"])
            self._arrays.append(arrays["frames"])
            for m in metas:
                if m["task"] in wanted and (m["success"] or not success_only):
                    entries.append((len(self._arrays) - 1, m["frame_offset"], m["length"] + 1,
                                    task_index[m["task"]]))
        if not entries:
            raise VidrlError(f"no {'successful ' if success_only else ''}episodes of tasks "
                             f"{self.tasks} in {directory}")
        self._episodes = np.asarray(entries, np.int64)
        self.num_episodes = len(entries)
        self.span = (clip_length - 1) * frame_stride + 1

    def sample(self, rng):
        """This host's part of one global batch drawn from numpy Generator `rng`.

        Returns frames uint8 [D, B_local/D, T, H, W, 3], task_id int32 [D, B_local/D]
        with B_local = batch_size / process_count.
        """
        idx = rng.integers(0, self.num_episodes, self.batch_size)
        eps = self._episodes[idx]
        n_frames = eps[:, 2]
        max_start = np.maximum(n_frames - self.span, 0)
        if self.start == "random":
            starts = rng.integers(0, max_start + 1)
        else:
            starts = np.zeros_like(max_start)
        # Every host draws the same global batch; each reads only its own rows.
        b = self.local_batch_size
        rows = slice(self.process_index * b, (self.process_index + 1) * b)
        eps, starts = eps[rows], starts[rows]
        offsets = np.arange(self.clip_length) * self.frame_stride
        frames = np.empty((b, self.clip_length) + self.frame_shape, np.uint8)
        for i, (shard, off, n, _) in enumerate(eps):
            local = np.minimum(starts[i] + offsets, n - 1)  # pad short episodes with the last frame
            frames[i] = self._arrays[shard][off + local]
        d = self.num_devices
        return dict(
            frames=frames.reshape((d, b // d) + frames.shape[1:]),
            task_id=eps[:, 3].astype(np.int32).reshape(d, b // d),
        )

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        while True:
            yield self.sample(rng)
