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
    """Real frames of `task` from the expert episodes of `seeds` (seeds whose expert fails
    are skipped) and one random episode per seed:
      done    [N,H,W,3]  the last frame, `after` steps past the first success
      undone  [N,H,W,3]  its counterfactual (undone_frame)
      before  [M,H,W,3]  every frame before the first success
      random  [R,H,W,3]  the random episodes' frames
    and for each, `<name>_first` [.., H,W,3]: the first frame of the episode it comes from
    (rewards that compare a frame with its episode's start read it)."""
    out = {k: [] for k in ("done", "undone", "before", "random")}
    firsts = {k: [] for k in out}

    def put(name, frames, first):
        out[name].append(frames)
        firsts[name].append(np.repeat(first[None], len(frames), 0))

    for seed in seeds:
        try:
            frames, first, q0 = expert_episode(env, task, seed, after)
        except VidrlError:
            continue
        put("done", frames[-1:], frames[0])
        put("undone", undone_frame(env, q0)[None], frames[0])
        put("before", frames[:first], frames[0])
        rand = random_episode(env, seed + 100)["frames"]
        put("random", rand, rand[0])
    if not out["done"]:
        raise VidrlError(f"the expert of {task} failed from every seed of {list(seeds)}")
    res = {k: np.concatenate(v) for k, v in out.items()}
    res.update({f"{k}_first": np.concatenate(v) for k, v in firsts.items()})
    return res
