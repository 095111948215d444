"""Reward-quality statistics and the video-level reward."""
import jax.numpy as jnp
import numpy as np
from scipy import stats

from vidrl_jax.rewards import quality
from vidrl_jax.rewards.video_level import resample_indices, resample_window, video_reward


def test_roc_auc():
    assert quality.roc_auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert quality.roc_auc([0, 1], [2, 3]) == 0.0
    assert quality.roc_auc([1, 1], [1, 1]) == 0.5                # ties count half
    assert quality.roc_auc([2, 0.5], [1, 0]) == 0.75             # 3 of 4 pairs ordered
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 50), rng.normal(0, 1, 60)
    u = stats.mannwhitneyu(pos, neg).statistic / (50 * 60)
    np.testing.assert_allclose(quality.roc_auc(pos, neg), u)
    assert np.isnan(quality.roc_auc([], [1.0]))


def test_spearman():
    x = np.arange(10.0)
    np.testing.assert_allclose(quality.spearman(x, x ** 3), 1.0)
    np.testing.assert_allclose(quality.spearman(x, -np.exp(x)), -1.0)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=30), rng.normal(size=30)
    np.testing.assert_allclose(quality.spearman(a, b), stats.spearmanr(a, b).statistic)
    assert np.isnan(quality.spearman([1, 2, 3], [5, 5, 5]))
    np.testing.assert_allclose(quality.mean_spearman([(x, x), (x, -x), ([1], [1])]), 0.0, atol=1e-12)


def test_video_reward_and_resampling():
    g = jnp.array([1.0, 0.0])
    w = jnp.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(video_reward(g, w), [1, 0, -1, np.sqrt(0.5)], atol=1e-6)
    assert list(resample_indices(16, 5)) == [0, 4, 8, 11, 15]
    frames = np.arange(16)[:, None, None, None] * np.ones((16, 2, 2, 3))
    out = resample_window(frames[None], 17)
    assert out.shape == (1, 17, 2, 2, 3)
    assert out[0, 0, 0, 0, 0] == 0 and out[0, -1, 0, 0, 0] == 15
