"""The 50 Meta-World v3 tasks and a short instruction for each.

Pure data, importable without MuJoCo, so configs can be validated cheaply.
"""
import difflib

INSTRUCTIONS = {
    "assembly-v3": "put the ring onto the peg",
    "basketball-v3": "dunk the ball into the basket",
    "bin-picking-v3": "move the puck from one bin to the other",
    "box-close-v3": "put the lid on the box",
    "button-press-topdown-v3": "press the button from the top",
    "button-press-topdown-wall-v3": "press the button from the top behind the wall",
    "button-press-v3": "press the button",
    "button-press-wall-v3": "press the button behind the wall",
    "coffee-button-v3": "push the button on the coffee machine",
    "coffee-pull-v3": "pull the mug from the coffee machine",
    "coffee-push-v3": "push the mug into the coffee machine",
    "dial-turn-v3": "turn the dial",
    "disassemble-v3": "pick the ring off the peg",
    "door-close-v3": "close the door",
    "door-lock-v3": "lock the door by turning the lock",
    "door-open-v3": "open the door",
    "door-unlock-v3": "unlock the door by turning the lock",
    "hand-insert-v3": "insert the gripper into the hole",
    "drawer-close-v3": "close the drawer",
    "drawer-open-v3": "open the drawer",
    "faucet-open-v3": "turn the faucet on",
    "faucet-close-v3": "turn the faucet off",
    "hammer-v3": "hammer the nail into the wall",
    "handle-press-side-v3": "press the handle down from the side",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up from the side",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever up",
    "pick-place-wall-v3": "pick up the puck and place it behind the wall",
    "pick-out-of-hole-v3": "pick the puck out of the hole",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "plate-slide-v3": "slide the plate into the cabinet",
    "plate-slide-side-v3": "slide the plate into the cabinet from the side",
    "plate-slide-back-v3": "slide the plate out of the cabinet",
    "plate-slide-back-side-v3": "slide the plate out of the cabinet sideways",
    "peg-insert-side-v3": "insert the peg into the hole from the side",
    "peg-unplug-side-v3": "unplug the peg from the side",
    "soccer-v3": "kick the ball into the goal",
    "stick-push-v3": "grasp the stick and push the box with it",
    "stick-pull-v3": "grasp the stick and pull the box with it",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck around the wall to the goal",
    "push-back-v3": "push the puck back to the goal",
    "reach-v3": "reach the goal position",
    "reach-wall-v3": "reach the goal position over the wall",
    "shelf-place-v3": "place the puck on the shelf",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the table",
    "window-open-v3": "slide the window open",
    "window-close-v3": "slide the window closed",
}

TASKS = tuple(sorted(INSTRUCTIONS))


def check_task(name, field="env.task"):
    """Returns `name` if it is a task, else raises ConfigError naming close ones."""
    from vidrl_jax.errors import ConfigError

    if name in INSTRUCTIONS:
        return name
    close = difflib.get_close_matches(name, TASKS, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ConfigError(
        f"{field}={name!r} is not a Meta-World v3 task; {hint}"
        f"valid tasks: {', '.join(TASKS)}"
    )


def instruction(task):
    """The human-readable instruction of `task`, e.g. 'open the door'."""
    return INSTRUCTIONS[check_task(task)]


# Vocabulary of every task's instruction, so tasks unseen in training still have words.
WORDS = tuple(sorted({w for text in INSTRUCTIONS.values() for w in text.split()}))


def instruction_words():
    """Bag-of-words features of every task's instruction: float32 [len(TASKS), len(WORDS)].

    Row i is the multi-hot vector of TASKS[i]'s instruction words, L2-normalised. A
    linear map of it is a sum of learned word embeddings, so "open the door" shares
    "open" with "open the drawer" and "door" with "close the door": a task left out of
    training is still described by words trained on others (`diffusion.text=words`).
    """
    import numpy as np

    index = {w: i for i, w in enumerate(WORDS)}
    out = np.zeros((len(TASKS), len(WORDS)), np.float32)
    for row, task in enumerate(TASKS):
        for w in set(INSTRUCTIONS[task].split()):
            out[row, index[w]] = 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)
