"""A short digest of arrays, to tell whether two runs read the same video models.

    digest({"w": params, "frames": frames}) -> "3f2a…" (16 hex digits)

Bitwise: any change of a leaf's bytes, dtype, shape or path changes it. The video
models built from the same config differ between machines (docs/results.md,
"Reproducibility across machines"), so results.json records the digests of
what an agent's rewards read (vidrl_jax/train/reward_inputs.RewardEncoders).
"""
import hashlib

import jax
import numpy as np


def digest(tree):
    """sha256 (first 16 hex digits) of every leaf's path, dtype, shape and bytes, in the
    tree's flattening order."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]
