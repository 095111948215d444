"""Reward-quality statistics and the video-level reward."""
import re

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from vidrl_jax.rewards import quality
from vidrl_jax.rewards.video_level import (agent_video_indices, resample_indices, resample_window,
                                           video_reward)


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
    # distance: 0 at the goal, -1 for a video with no change (centred embedding 0)
    np.testing.assert_allclose(video_reward(g, jnp.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]),
                                            "distance"), [0, -1, -1], atol=1e-6)
    with pytest.raises(ValueError, match="video_metric"):
        video_reward(g, w, "l1")


def test_agent_video_indices():
    # episode: frames 0..t resampled to the goal length, first and last kept
    assert list(agent_video_indices("episode", 0, 4, 3)) == [0, 0, 0]
    assert list(agent_video_indices("episode", 10, 4, 3)) == [0, 5, 10]
    # last: the last W frames, frame 0 repeated before the episode has W frames
    assert list(agent_video_indices("last", 1, 4, 4)) == [0, 0, 0, 1]
    assert list(agent_video_indices("last", 20, 4, 4)) == [17, 18, 19, 20]
    with pytest.raises(ValueError, match="video_window"):
        agent_video_indices("all", 3, 4, 4)


def test_eval_reward_scorer_goal_episode_scores_best():
    """The episode that is the goal video scores 0 distance / cosine 1 at its end;
    an episode where nothing moves scores -1 distance throughout."""
    import jax

    from experiments import eval_reward
    from vidrl_jax.models import vae3d
    cfg = vae3d.VAEConfig(channels=(4, 8), latent_channels=2, patch_size=2,
                          spatial_downsample=4, temporal_downsample=4, size=8)
    params = vae3d.init(cfg, jax.random.PRNGKey(0))
    frames = np.zeros((21, 8, 8, 3), np.uint8)
    for t in range(21):  # a bright square sliding right
        frames[t, 2:5, t % 6:t % 6 + 3] = 255
    goal = frames[resample_indices(21, 9)]
    scorer = eval_reward.Scorer(cfg, params, goal, window=8)
    ends, r = scorer.rewards(frames, stride=5)
    assert list(ends) == [5, 10, 15, 20]
    assert {k.split("/")[1] for k in r} == {"episode", "last"}
    for emb in ("vae", "pixels"):
        np.testing.assert_allclose(r[f"{emb}/episode/centred_distance"][-1], 0.0, atol=1e-5)
        np.testing.assert_allclose(r[f"{emb}/episode/cosine"][-1], 1.0, atol=1e-5)
        assert r[f"{emb}/episode/centred_distance"][0] < -0.1
    _, still = scorer.rewards(np.repeat(frames[:1], 21, axis=0), stride=5)
    for emb in ("vae", "pixels"):
        np.testing.assert_allclose(still[f"{emb}/episode/centred_distance"], -1.0, atol=1e-5)
    assert eval_reward.configured_key() in r
    # --goal=generated_latents: the goal's own latents (centred on its first frame) give
    # the same VAE rewards as re-encoding its frames
    lat = np.asarray(vae3d.encode(cfg, params, goal[None])[0])[0]
    from_latents = eval_reward.Scorer(cfg, params, goal, window=8, goal_latents=lat,
                                      first_frame=goal[0])
    _, r2 = from_latents.rewards(frames, stride=5)
    for k in r:
        np.testing.assert_allclose(r2[k], r[k], atol=1e-5)


def test_read_gif_restores_merged_frames_and_eval_reward_scores_an_agent_group(tmp_path):
    """save_gif merges repeated frames (a still agent); read_gif repeats them back to
    their duration. eval_reward's `agent` group (--agent_gifs) gets an expert-vs-agent
    AUC and its per-step and final rewards beside the other groups'."""
    from experiments import eval_reward
    from vidrl_jax.utils.video_io import read_gif, save_gif
    frames = np.zeros((7, 8, 8, 3), np.uint8)
    for t, c in enumerate([(0, 0, 0), (255, 0, 0), (255, 0, 0), (255, 0, 0), (0, 255, 0),
                           (0, 255, 0), (0, 0, 255)]):
        frames[t, 2:5, 2:5] = c
    path = str(tmp_path / "episode.gif")
    save_gif(path, frames)
    np.testing.assert_array_equal(read_gif(path), frames)
    np.testing.assert_array_equal(eval_reward.read_agent_gif(path, (8, 8, 3)), frames)
    (tmp_path / "notes.txt").write_text("not a gif")
    for bad, words in ((str(tmp_path / "missing.gif"), "cannot read"),
                       (str(tmp_path / "notes.txt"), "cannot read"),
                       (path, "has frames of (8, 8, 3), not the goal video's (16, 16, 3)")):
        with pytest.raises(eval_reward.VidrlError, match=r"--agent_gifs: .*" + re.escape(words)):
            eval_reward.read_agent_gif(bad, (16, 16, 3))

    def scores(means):
        return [{"mean": m, "final": 2 * m, "ends": np.arange(3), "rewards": np.full(3, m)}
                for m in means]
    groups = {"expert": [{"success": True, "first_success": 2}] * 2,
              "random": [{"success": False}] * 2,
              "noisy": [{"success": True}, {"success": False}],
              "agent": [{"success": None}] * 2}
    q = eval_reward.quality(groups, {"expert": scores([0.4, 0.5]), "random": scores([0.1, 0.2]),
                                     "noisy": scores([0.3, 0.2]), "agent": scores([0.8, 0.9])})
    assert q["auc_expert_vs_agent"] == 0.0 and q["auc_expert_vs_random"] == 1.0
    np.testing.assert_allclose(q["mean_reward"]["agent"], 0.85)
    np.testing.assert_allclose(q["final_reward"]["expert"], 0.9)
    result = {"task": "door-open-v3", "goal": "g", "configured": "x", "agent_gifs": [path],
              "rewards": {"vae/frame/progress": q}}
    assert "| 0.45 / 0.85 |" in eval_reward.format_table(result)
