"""Fixed-size batching for jitted functions (one compiled shape per function)."""
import numpy as np


def map_fixed_batches(fn, items, batch_size):
    """Applies fn to `items` [N, ...] in batches of exactly `batch_size` (the last one
    padded by repeating its last item) and returns the N real rows of the outputs."""
    out = []
    for i in range(0, len(items), batch_size):
        chunk = items[i:i + batch_size]
        real = len(chunk)
        if real < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - real, 0)])
        out.append(np.asarray(fn(chunk))[:real])
    return np.concatenate(out)
