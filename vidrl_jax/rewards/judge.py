"""A goal-video judge: does a generated goal video show the task done?

Evaluation only, never part of a reward: it is trained on real rendered frames of the
target task's scripted expert, which no reward may read (that would make the goal video
pointless). A small CNN, per task, on frames of `episodes` expert episodes: frames from
the first success on are done (1); frames before it, the final state with the object
put back (undone: the arm where the expert left it, vidrl_jax/envs/counterfactual.py)
and random-policy frames are not (0).

    result = judge_goal_videos(env, task, videos [N,T,H,W,3] uint8, episodes=20)
    result["judge_done_videos"]     # k: videos whose last frame the judge calls done
    result["judge_num_videos"]      # N
    result["judge_last_scores"]     # [N] P(done) of each video's last frame
    result["judge_heldout_auc_undone"], result["judge_heldout_auc_random"]
                                    # the judge's own check on 5 held-out expert episodes
"""
import jax
import numpy as np

from vidrl_jax.envs.counterfactual import SEED_BASE, check_frames, expert_episode, \
    random_episode, undone_frame
from vidrl_jax.errors import VidrlError
from vidrl_jax.models.frame_classifier import frame_logits, train_frame_classifier
from vidrl_jax.rewards.quality import roc_auc

AFTER_SUCCESS = 10     # expert steps recorded past the first success (done frames)
UNDONE_COPIES = 10     # weight of each episode's undone frame among the negatives
RANDOM_EVERY = 4       # keep every 4th random-policy frame
HELDOUT = 5            # held-out expert episodes of the judge's own check


def judge_data(env, task, episodes):
    """(frames [M,H,W,3] uint8, labels [M] float32) from expert episodes of seeds
    1..; seeds whose expert fails are skipped."""
    xs, ys = [], []
    got, seed = 0, 0
    while got < episodes and seed < 5 * episodes:
        seed += 1
        try:
            frames, first, q0 = expert_episode(env, task, seed, AFTER_SUCCESS)
        except VidrlError:
            continue
        got += 1
        xs += [frames, np.repeat(undone_frame(env, q0)[None], UNDONE_COPIES, 0),
               random_episode(env, 100_000 + seed)["frames"][::RANDOM_EVERY]]
        done = (np.arange(len(frames)) >= first).astype(np.float32)
        ys += [done, np.zeros(UNDONE_COPIES, np.float32),
               np.zeros(len(xs[-1]), np.float32)]
    if not got:
        raise VidrlError(f"the judge of {task}: the expert failed from every seed")
    return np.concatenate(xs), np.concatenate(ys)


def train_judge(frames, labels, steps=1500, batch=128, seed=0):
    """Judge params: a FrameClassifier trained `steps` Adam steps with balanced batches
    (half done)."""
    return train_frame_classifier(frames, labels, steps, batch, seed, balanced=True)


def judge_scores(params, frames):
    """P(done) [N] of frames [N,H,W,3] uint8."""
    return np.asarray(jax.nn.sigmoid(frame_logits(params, frames)))


def judge_goal_videos(env, task, videos, episodes=20, steps=1500):
    """The judge's verdict on goal videos [N,T,H,W,3] (see the module docstring)."""
    params = train_judge(*judge_data(env, task, episodes), steps=steps)
    check = check_frames(env, task, range(SEED_BASE, SEED_BASE + HELDOUT))
    done, undone, rand = (judge_scores(params, check[g]) for g in ("done", "undone", "random"))
    last, first = judge_scores(params, videos[:, -1]), judge_scores(params, videos[:, 0])
    return {"judge_done_videos": int(np.sum(last > 0.5)),
            "judge_num_videos": int(len(videos)),
            "judge_last_scores": [round(float(s), 3) for s in last],
            "judge_first_mean": float(np.mean(first)),
            "judge_heldout_done_mean": float(np.mean(done)),
            "judge_heldout_auc_undone": roc_auc(done, undone),
            "judge_heldout_auc_random": roc_auc(done, rand),
            "judge_episodes": int(episodes)}
