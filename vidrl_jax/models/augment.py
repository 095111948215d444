"""Image augmentation shared by the agent's encoder and the frame classifiers."""
import jax
import jax.numpy as jnp


def random_shift(images, shifts, pad=4):
    """Random-shift augmentation (DrQ): pad by `pad` (edge) and crop back.

    images: [B,H,W,C]; shifts: int32 [B,2] in [0, 2*pad]. Returns [B,H,W,C].
    """
    _, h, w, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")

    def crop(img, s):
        return jax.lax.dynamic_slice(img, (s[0], s[1], 0), (h, w, img.shape[-1]))

    return jax.vmap(crop)(padded, shifts)


def draw_shifts(key, n, pad=4):
    """int32 [n,2] shifts, uniform in [0, 2*pad], for `random_shift`."""
    return jax.random.randint(key, (n, 2), 0, 2 * pad + 1)
