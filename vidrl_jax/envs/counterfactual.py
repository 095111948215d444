"""Real frames that tell the task done from the task undone, the arm where it stands.

    env = MetaWorldEnv(task, size=32, camera="corner2")
    frames, first, q0 = expert_episode(env, task, seed, after=10)   # done: frames[-1]
    undone = undone_frame(env, q0)     # the same state, object joint put back, rendered
    rand = random_episode(env, seed)["frames"]

The undone frame is the counterfactual every reward check uses: the expert's final
state with the task's object joint (the door's hinge, the drawer's slide, ...) put back
where the episode's reset left it, so the arm is exactly where the expert left it. A
reward that pays it as the done frame pays the arm's pose, not the task.
"""
import numpy as np

from vidrl_jax.envs.experts import collect_episode, expert_policy
from vidrl_jax.errors import VidrlError

SEED_BASE = 7_000_000  # evaluation episodes use seeds far from the demo seeds


def object_joint(env):
    """(qpos index, name) of the task's object joint: the first joint not the arm's."""
    import mujoco
    model = env.unwrapped_metaworld.model
    for j in range(model.njnt):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or ""
        if not (name.startswith("right_j") or name in ("r_close", "l_close")):
            return int(model.jnt_qposadr[j]), name
    raise VidrlError(f"task {env.task}: no object joint besides the arm's")


def expert_episode(env, task, seed, after):
    """(frames [L+1,H,W,3] to `after` steps past the first success, first success step,
    the object joint's value at reset)."""
    env.reset(seed=seed)  # (collect_episode resets from the same seed: the same state)
    q, _ = object_joint(env)
    q0 = float(env.unwrapped_metaworld.data.qpos[q])
    ep = collect_episode(env, expert_policy(task), seed, after)
    if not ep["success"].any():
        raise VidrlError(f"the expert of {task} did not succeed from seed {seed}")
    return ep["frames"], int(np.argmax(ep["success"])) + 1, q0


def undone_frame(env, q0):
    """The env's current state with the object joint put back at q0, rendered [H,W,3]."""
    import mujoco
    mw = env.unwrapped_metaworld
    q, _ = object_joint(env)
    mw.data.qpos[q] = q0
    mw.data.qvel[:] = 0.0
    mujoco.mj_forward(mw.model, mw.data)
    return env._render_frame()


def random_episode(env, seed):
    """collect_episode's dict of a uniform random policy (seeded by `seed`) over the
    whole episode, success or not."""
    rng = np.random.default_rng(seed)
    return collect_episode(env, lambda obs: rng.uniform(-1, 1, 4).astype(np.float32), seed,
                           steps_after_success=10 ** 9)


def check_frames(env, task, seeds, after=10):
    """{"done": [N,H,W,3], "undone": [N,H,W,3], "before": [M,H,W,3], "random": [R,H,W,3]}
    real frames of `task` from expert episodes of `seeds` (done: the last frame, `after`
    steps past the first success; undone: its counterfactual; before: every frame before
    the first success) and one random episode per seed. Seeds whose expert fails are
    skipped."""
    done, undone, before, rand = [], [], [], []
    for seed in seeds:
        try:
            frames, first, q0 = expert_episode(env, task, seed, after)
        except VidrlError:
            continue
        done.append(frames[-1])
        undone.append(undone_frame(env, q0))
        before.append(frames[:first])
        rand.append(random_episode(env, seed + 100)["frames"])
    if not done:
        raise VidrlError(f"the expert of {task} failed from every seed of {list(seeds)}")
    return {"done": np.stack(done), "undone": np.stack(undone),
            "before": np.concatenate(before), "random": np.concatenate(rand)}
