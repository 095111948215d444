"""Writing frames and videos people can look at (PNG, animated GIF), and reading GIFs
back."""
import io
import os

import numpy as np
from PIL import Image


def _uint8(frames):
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)
    return frames


def atomic_write(path, data):
    """Writes bytes to `path` through a temporary file and a rename (never half-written)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def gif_bytes(frames, fps=10, scale=1):
    """Animated GIF of `frames` (T,H,W,3; uint8 or float in [0,1]) as bytes."""
    frames = _uint8(frames)
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(1, int(1000 / fps)), loop=0)
    return buf.getvalue()


def save_gif(path, frames, fps=10, scale=1):
    """Writes `frames` (T,H,W,3) as an animated GIF at `path` (atomically)."""
    atomic_write(path, gif_bytes(frames, fps, scale))


def read_gif(path, fps=10):
    """The frames [T,H,W,3] uint8 of an animated GIF written by `save_gif` at `fps`.

    GIF keeps 256 colours per frame, and the writer merges repeated frames into one of
    longer duration: each is repeated back to its duration (a still agent's frames
    return as they were, up to the palette).
    """
    out = []
    with Image.open(path) as im:
        for i in range(im.n_frames):
            im.seek(i)
            repeat = max(1, round(im.info.get("duration", 1000 / fps) * fps / 1000))
            out += [np.array(im.convert("RGB"))] * repeat
    return np.stack(out)


def save_png(path, image):
    """Writes an HxWx3 image (uint8 or float in [0,1]) as PNG (atomically)."""
    buf = io.BytesIO()
    Image.fromarray(_uint8(image)).save(buf, format="PNG")
    atomic_write(path, buf.getvalue())


def save_figure(path, fig):
    """Writes a matplotlib figure as PNG at `path` (atomically) and closes it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    atomic_write(path, buf.getvalue())


def frame_strip(rows, max_frames=None):
    """Rows of videos (each T_i,H,W,3) -> one image, each row its frames side by side.

    Rows shorter than the longest are padded with black frames.
    """
    rows = [_uint8(r) for r in rows]
    if max_frames:
        rows = [r[np.linspace(0, len(r) - 1, min(max_frames, len(r))).round().astype(int)]
                for r in rows]
    t = max(len(r) for r in rows)
    h, w = rows[0].shape[1:3]
    out = np.zeros((len(rows) * h, t * w, 3), np.uint8)
    for i, r in enumerate(rows):
        for j, f in enumerate(r):
            out[i * h:(i + 1) * h, j * w:(j + 1) * w] = f
    return out
