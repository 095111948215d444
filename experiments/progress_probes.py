"""Probes of the progress reward (experiments/eval_reward.py, experiments/probe_shut_door.py):
Markov forms of "how far along the goal video a frame stands" that are measured beside
`reward.video_form=progress` (vidrl_jax/rewards/video_level.frame_progress) and are not
reward options. Each maps goal frames [T, ...] and frames [N, ...] to [N] in [0, 1]."""


def local_progress(goal, frames, cells, temperature, floor=0.01):
    """Progress located cell by cell of the latent grid.
    goal [T,P], frames [N,P], P = cells * C -> [N] in [0, 1]: each grid cell whose span
    over the goal video (max_i |g_i - g_0|² there) is >= floor x the largest is located
    on the goal video alone (frame_progress over that cell's C channels), and the cells'
    progress is averaged, so a small object that moves counts as much per cell as the arm."""
    import numpy as np
    t = len(goal)
    g = goal.reshape(t, cells, -1)
    f = frames.reshape(len(frames), cells, -1)
    span = np.max(np.sum((g - g[0]) ** 2, -1), 0)                          # [cells]
    keep = span >= floor * max(span.max(), 1e-8)
    d = np.sum((f[:, None] - g[None]) ** 2, -1)[..., keep] / span[keep]    # [N,T,k]
    w = np.exp(-(d - d.min(1, keepdims=True)) / temperature)
    w /= w.sum(1, keepdims=True)
    return np.einsum("ntk,t->nk", w, np.arange(t) / max(t - 1, 1)).mean(-1)


def pixel_cells(frames, grid):
    """Frames [N,H,W,3] uint8 -> [N, grid² · (H/grid)(W/grid)·3] in [0, 1], cell by cell
    of a grid×grid grid (the VAE latent grid's layout: cell-major, so local_progress
    reads raw pixels as it reads latents)."""
    import numpy as np
    n, h, w, c = frames.shape
    x = frames.astype(np.float32).reshape(n, grid, h // grid, grid, w // grid, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, -1) / 255.0


def not_arm(frames):
    """[N,H,W,3] uint8 -> [N,H,W] float32, 0 where a pixel is the Sawyer arm's red (and
    its shades), 1 elsewhere: a colour mask for Meta-World's renders and the goal videos
    made from them."""
    import numpy as np
    x = frames.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return (~((r > 80) & (r > 1.6 * g) & (r > 1.6 * b))).astype(np.float32)


def masked_progress(goal, frames, temperature, batch=64):
    """Progress on raw pixels with the arm masked out of both sides.
    goal [T,H,W,3], frames [N,H,W,3] uint8 -> [N] in [0, 1]. The distance of a frame to
    goal frame i is the mean squared pixel difference over the pixels that are the arm in
    neither, over the goal's span (the largest such distance of a goal frame to its
    first); located as frame_progress does. What is left is the scene: the object's
    state, not the arm's pose."""
    import numpy as np
    t = len(goal)
    gm, g = not_arm(goal), goal.astype(np.float32) / 255.0

    def dist(m, x):  # [n,H,W], [n,H,W,3] -> [n,T]
        both = m[:, None] * gm[None]
        sq = np.sum((x[:, None] - g[None]) ** 2, -1)
        return np.sum(both * sq, (2, 3)) / np.maximum(np.sum(both, (2, 3)), 1.0)

    span = max(float(dist(gm, g)[0].max()), 1e-8)
    out = []
    for i in range(0, len(frames), batch):
        f = frames[i:i + batch]
        d = dist(not_arm(f), f.astype(np.float32) / 255.0) / span
        w = np.exp(-(d - d.min(1, keepdims=True)) / temperature)
        out.append((w / w.sum(1, keepdims=True)) @ (np.arange(t) / max(t - 1, 1)))
    return np.concatenate(out)


def projected_progress(goal, frames):
    """The frame's displacement from the goal's first frame projected on the goal's
    own, first to last frame, clipped to [0, 1]: goal [T,P], frames [N,P] -> [N]. An
    off-path pose is paid only its component along the motion."""
    import numpy as np
    d = goal[-1] - goal[0]
    return np.clip((frames - goal[0]) @ d / max(float(d @ d), 1e-8), 0.0, 1.0)
