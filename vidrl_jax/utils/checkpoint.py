"""Atomic, keep-last-N checkpoints of any pytree (orbax), plus JSON-able extras.

    mgr = CheckpointManager(directory, keep=3)
    mgr.save(step, {"params": params, "opt": opt_state, "rng": key}, extra={"config": ...})
    tree, extra = mgr.restore(target_tree)          # newest readable step
    tree, extra = mgr.restore(target_tree, step=100)

Writes are synchronous and atomic (orbax writes a temporary directory and
renames it when complete), so a run killed mid-save keeps the previous
checkpoint. A checkpoint whose structure, shapes or dtypes differ from the
target raises `CheckpointError` with a one-line message naming the directory and
the first mismatch; one whose files are damaged raises `CorruptCheckpointError`.
`restore` without a step falls back: a damaged newest checkpoint (a truncated
file, a disk that filled up) is named in a warning, moved aside to
`corrupt-<step>/` beside the others, and the previous one is restored.

Multi-process (jax.distributed): by default a manager belongs to the one process
that calls it (a stage that process 0 runs alone). `all_processes=True` makes it
collective: every process calls save/restore at the same points; host data is
written by process 0 and global (not fully addressable) jax.Arrays are written
and read shard by shard by the processes that hold them (a replay sharded over
hosts; see vidrl_jax/utils/distributed.py `to_global`).
"""
import logging
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from vidrl_jax.errors import CheckpointError


class CorruptCheckpointError(CheckpointError):
    """A checkpoint's files are damaged or unreadable (not a config mismatch)."""


def _is_key(x):
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_savable(tree):
    """Typed PRNG keys become their raw uint32 data (orbax stores plain arrays);
    empty arrays (which orbax refuses) become None and are rebuilt from the target."""
    def leaf(x):
        x = jax.random.key_data(x) if _is_key(x) else x
        return None if np.size(x) == 0 else x
    return jax.tree.map(leaf, tree)


def _leaf_spec(x):
    x = np.asarray(jax.random.key_data(x)) if _is_key(x) else x
    return tuple(np.shape(x)), np.dtype(getattr(x, "dtype", np.asarray(x).dtype))


def _is_global(x):
    return isinstance(x, jax.Array) and not x.is_fully_addressable


def _abstract(x):
    """Restore target of one leaf: global arrays keep their sharding."""
    if np.size(x) == 0:
        return None
    if _is_global(x):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return jax.ShapeDtypeStruct(*_leaf_spec(x))


class CheckpointManager:
    """Keeps the last `keep` checkpoints of a pytree under `directory`.

    read_only: a reader beside the run that writes there (e.g. a gate scoring a live
    run): it neither saves, nor removes the writer's unfinished (tmp) checkpoints, nor
    moves damaged ones aside."""

    def __init__(self, directory, keep=3, all_processes=False, read_only=False):
        self.directory = os.path.abspath(directory)
        self.read_only = read_only
        os.makedirs(self.directory, exist_ok=True)
        handler_kwargs = {}
        if jax.process_count() > 1 and not all_processes:
            me = jax.process_index()  # a manager of this process alone (no cross-process sync)
            handler_kwargs = {"multiprocessing_options": ocp.options.MultiprocessingOptions(
                primary_host=me, active_processes={me})}
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=not handler_kwargs, enable_async_checkpointing=False,
            cleanup_tmp_directories=not read_only, **handler_kwargs)
        self._mgr = ocp.CheckpointManager(
            self.directory, options=options,
            item_handlers={"state": ocp.StandardCheckpointHandler(**handler_kwargs),
                           "extra": ocp.JsonCheckpointHandler(**handler_kwargs)})

    def latest_step(self):
        """The newest complete checkpoint's step, or None."""
        return self._mgr.latest_step()

    def all_steps(self):
        return sorted(self._mgr.all_steps())

    def save(self, step, tree, extra=None):
        """Saves `tree` (any pytree of arrays) and a JSON-able `extra` dict at `step`."""
        if self.read_only:
            raise CheckpointError(f"{self.directory} was opened read-only: not saved")
        tree = jax.tree.map(lambda x: x if _is_global(x) else jax.device_get(x),
                            _to_savable(tree))
        self._mgr.save(int(step), args=ocp.args.Composite(
            state=ocp.args.StandardSave(tree),
            extra=ocp.args.JsonSave(dict(extra or {}))), force=True)
        self._mgr.wait_until_finished()

    def restore(self, target, step=None):
        """Returns (tree, extra) for `step`, shaped like `target`.

        Without `step`: the newest checkpoint that can be read. Damaged newer ones
        are named in a warning and moved aside (one process); a config mismatch is
        never skipped (it raises at once)."""
        if step is not None:
            return self._restore_step(target, int(step))
        steps = self.all_steps()
        if not steps:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        for i, s in enumerate(reversed(steps)):
            try:
                return self._restore_step(target, s)
            except CorruptCheckpointError as e:
                if i == len(steps) - 1:
                    raise CorruptCheckpointError(
                        f"every checkpoint in {self.directory} is damaged (newest: {e}); "
                        f"delete the directory to start over") from None
                logging.warning("%s; falling back to the previous checkpoint", e)
                if not self.read_only:
                    self._move_aside(s)

    def _move_aside(self, step):
        """Renames a damaged step directory to corrupt-<step> (kept for inspection) so
        that the next save of that step does not collide with it."""
        if jax.process_count() > 1:  # every process reads the same files: nothing to move
            return
        src = os.path.join(self.directory, str(step))
        dst = os.path.join(self.directory, f"corrupt-{step}")
        if os.path.exists(dst):
            shutil.rmtree(dst)
        os.replace(src, dst)
        self._mgr.reload()

    def _restore_step(self, target, step):
        where = f"checkpoint {os.path.join(self.directory, str(step))}"
        self._check_matches(step, target, where)
        abstract = jax.tree.map(_abstract, target)
        try:
            restored = self._mgr.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract),
                extra=ocp.args.JsonRestore()))
        except CheckpointError:
            raise
        except Exception as e:  # orbax/tensorstore raise many types on damaged files
            raise CorruptCheckpointError(
                f"{where} is corrupt or unreadable ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:200] if str(e) else ''}); delete it to "
                f"fall back to an earlier one") from None
        def leaf(t, x):
            if np.size(t) == 0:  # (not stored) an empty global array is its own copy
                return t if _is_global(t) else jnp.zeros(np.shape(t), t.dtype)
            return jax.random.wrap_key_data(jnp.asarray(x)) if _is_key(t) else x
        tree = jax.tree.map(leaf, target, restored.state, is_leaf=lambda x: x is None)
        return tree, dict(restored.extra or {})

    def _check_matches(self, step, target, where):
        try:
            meta = self._mgr.item_metadata(step)["state"]
        except Exception as e:
            raise CorruptCheckpointError(
                f"{where} is corrupt or unreadable (metadata: {type(e).__name__}); "
                f"delete it to fall back to an earlier one") from None
        if meta is None:
            raise CorruptCheckpointError(f"{where} has no state metadata; it is corrupt")
        saved = jax.tree_util.tree_flatten_with_path(_tree_of_meta(meta))[0]
        wanted = jax.tree_util.tree_flatten_with_path(_to_savable(target))[0]
        saved_paths = {_path_str(p): m for p, m in saved}
        wanted_paths = {_path_str(p): x for p, x in wanted}
        missing = sorted(set(wanted_paths) - set(saved_paths))
        extra = sorted(set(saved_paths) - set(wanted_paths))
        if missing or extra:
            raise CheckpointError(
                f"{where} does not match the model: "
                f"missing {missing[:3]}, unexpected {extra[:3]}; it was written by "
                f"another config (use a fresh workdir or the matching config)")
        for path, x in wanted_paths.items():
            shape = tuple(np.shape(x))
            got = tuple(getattr(saved_paths[path], "shape", ()) or ())
            if got != shape:
                raise CheckpointError(
                    f"{where} does not match the model at {path}: saved shape {got}, "
                    f"expected {shape} (use a fresh workdir or the matching config)")


def _path_str(path):
    """'a/b/0' for any mix of dict keys, attributes and sequence indices."""
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def _tree_of_meta(meta):
    """orbax metadata -> plain nested containers of leaf metadata."""
    tree = getattr(meta, "tree", meta)
    return tree
