"""The pipeline: stages run in order, each cached in `<workdir>/<stage>/`.

A stage is a module `vidrl_jax.stages.<name>` with

    DEPENDS = ("env", "demos", ...)   # config sections/fields that define its output,
    def depends(config) -> tuple      # or these keys computed from the config
    def run(config, ctx) -> dict      # JSON-able summary
    ALL_PROCESSES = True              # optional: runs in every process of a multi-process
                                      # run (else in process 0 alone; see run_pipeline)
    EXTENDABLE = ("agent.total_steps",)  # optional: fields that may be raised on a
                                      # finished or started stage, which then goes on
                                      # from its own checkpoints (see check_stage_dir)

Stages before `goal` are task-free (`TASK_FREE_ENV`): a sweep over `env.task`
reuses one set of demos and video models, unless the target task changes their
training (held-out-task mode, finetuning, a task outside `demos.tasks`).

`run_pipeline` writes `<stage_dir>/config.json` (the DEPENDS part of the config)
before a stage starts and `<stage_dir>/summary.json` when it finishes. A
finished stage whose recorded config equals the current one is skipped; an
unfinished one is run again in the same directory (stages resume from their own
checkpoints there); a stage directory made with another config is refused
unless `force=True`, which clears it, or unless the only change is a raised field of
the stage's EXTENDABLE (the agent's `total_steps`): then it goes on.
"""
import dataclasses
import glob
import hashlib
import importlib
import json
import logging
import os
import shutil
import time

from vidrl_jax.errors import ConfigError, StageMissingError, VidrlError

STAGES = ("demos", "autoencoder", "diffusion", "goal", "select", "agent")

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"


def stage_module(name):
    if name not in STAGES:
        raise ConfigError(f"--stages: unknown stage {name!r}; valid: {', '.join(STAGES)}")
    return importlib.import_module(f"vidrl_jax.stages.{name}")


# The env fields that change rendered frames (not env.task or env.num_workers).
TASK_FREE_ENV = tuple(f"env.{k}" for k in ("size", "camera", "fast_render", "action_repeat",
                                           "max_episode_steps"))


def uses_target_task(config):
    """Whether env.task changes what the demos and video models are trained on."""
    return bool(config.diffusion.holdout_task or config.diffusion.finetune_steps
                or config.env.task not in config.demos.tasks)


def stage_depends(module, config):
    """The config keys that define `module`'s output (its `depends(config)` if any)."""
    return tuple(module.depends(config)) if hasattr(module, "depends") else module.DEPENDS


def recorded_config(config, name):
    """What stage `name` records in its config.json: the part of `config` it depends on."""
    return stage_config(config, stage_depends(stage_module(name), config))


def stage_config(config, depends):
    """The JSON-able part of `config` named by `depends` (sections or dotted fields)."""
    out = {}
    for key in depends:
        value = config[key]
        out[key] = value.to_dict() if hasattr(value, "to_dict") else value
    return json.loads(json.dumps(out, sort_keys=True, default=list))


def is_done(stage_dir):
    return os.path.exists(os.path.join(stage_dir, SUMMARY_FILE))


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True, default=str)
    os.replace(tmp, path)


@dataclasses.dataclass
class StageContext:
    """What a stage gets besides the config."""
    workdir: str
    stage_dir: str
    logger: object
    is_main_process: bool = True

    def stage_output(self, name):
        """Directory of the finished stage `name`, or StageMissingError naming it."""
        path = os.path.join(self.workdir, name)
        if not is_done(path):
            raise StageMissingError(
                f"stage {name!r} has no finished output in {path}; run it first: "
                f"python -m experiments.run --config=... --workdir={self.workdir} "
                f"--stages={name}")
        return path


# Fields added to config sections after workdirs were made, with the value that
# reproduces the older behaviour: a recorded config without them reads as having it.
ADDED_FIELDS = {"vae": {"dtype": "float32"},
                "diffusion": {"dtype": "float32", "target": "latents", "text": "table"},
                "reward": {"video_goal": "decoded", "video_form": "score", "frame_form": "fz",
                           "video_progress_temperature": 0.02, "video_progress_gate": 0.0}}


def _with_added_fields(recorded):
    out = dict(recorded)
    for section, fields in ADDED_FIELDS.items():
        if isinstance(out.get(section), dict):
            out[section] = {**fields, **out[section]}
    return out


def check_stage_dir(config, workdir, name, force=False):
    """Returns 'done', 'resume' or 'new' for stage `name`; refuses a foreign config.

    A stage whose config differs only by raised fields of its module's EXTENDABLE
    (`agent.total_steps` 50000 -> 100000) is 'resume': finished or not, it goes on from
    its last checkpoint; its summary.json is removed first, so a kill before it ends
    leaves it unfinished under the new config.
    """
    stage_dir = os.path.join(workdir, name)
    want = recorded_config(config, name)
    path = os.path.join(stage_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return "new"
    with open(path) as f:
        have = _with_added_fields(json.load(f))
    if have == want:
        return "done" if is_done(stage_dir) else "resume"
    diffs = _differences(have, want)
    extendable = getattr(stage_module(name), "EXTENDABLE", ())
    if not force and all(k in extendable and isinstance(a, int) and isinstance(b, int)
                         and b > a for k, a, b in diffs):
        summary = os.path.join(stage_dir, SUMMARY_FILE)
        if os.path.exists(summary):
            os.remove(summary)
        logging.info("stage %s: %s raised: it goes on from its last checkpoint", name,
                     ", ".join(f"{k} {a} -> {b}" for k, a, b in diffs))
        return "resume"
    if force:
        shutil.rmtree(stage_dir)
        return "new"
    k, a, b = diffs[0]
    hint = (f" (only a raise of {', '.join(extendable)} lets a stage go on)"
            if extendable else "")
    raise VidrlError(
        f"{stage_dir} was made with another config ({k} was {a!r}, now {b!r}); use another "
        f"--workdir, or pass --force to rebuild stage {name!r}{hint}")


def _differences(have, want, prefix=""):
    """[(dotted key, have's value, want's value)] where two recorded configs differ."""
    out = []
    for k in sorted(set(have) | set(want)):
        a, b = have.get(k, "<unset>"), want.get(k, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append((f"{prefix}{k}", a, b))
    return out


def link_shared_stage(config, workdir, name, shared_dir):
    """Makes `<workdir>/<name>` a link to `<shared_dir>/<name>-<hash of its config>`.

    Runs whose stage configs agree (a sweep over agent settings) then build each
    shared stage once and reuse it.
    """
    want = recorded_config(config, name)
    key = json.dumps(want, sort_keys=True)
    target = os.path.abspath(os.path.join(
        shared_dir, f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"))
    if not os.path.exists(os.path.join(target, CONFIG_FILE)):
        target = _finished_shared_copy(shared_dir, name, want) or target
    os.makedirs(target, exist_ok=True)
    link = os.path.join(workdir, name)
    if os.path.islink(link) and os.path.realpath(link) != target:
        os.remove(link)  # config changed: point at the matching shared copy
    if not os.path.lexists(link):
        os.symlink(target, link)


def _finished_shared_copy(shared_dir, name, want):
    """A finished `<shared_dir>/<name>-*` whose recorded config reads as `want`.

    A copy recorded before a field of ADDED_FIELDS existed hashes differently from
    the same config today; without this, adding a config field would retrain every
    shared stage of an existing sweep.
    """
    for path in sorted(glob.glob(os.path.join(shared_dir, f"{name}-*"))):
        if not is_done(path):
            continue
        with open(os.path.join(path, CONFIG_FILE)) as f:
            if _with_added_fields(json.load(f)) == want:
                return os.path.abspath(path)
    return None


def _prepare_stage(config, workdir, name, force, shared_dir, shared_stages):
    """Links a shared stage, checks its directory and records its config; returns
    check_stage_dir's 'done' | 'resume' | 'new'."""
    stage_dir = os.path.join(workdir, name)
    if shared_dir and name in shared_stages:
        link_shared_stage(config, workdir, name, shared_dir)
    state = check_stage_dir(config, workdir, name, force)
    if state != "done":
        os.makedirs(stage_dir, exist_ok=True)
        _write_json(os.path.join(stage_dir, CONFIG_FILE), recorded_config(config, name))
    return state


def _read_summary(stage_dir):
    with open(os.path.join(stage_dir, SUMMARY_FILE)) as f:
        return json.load(f)


def _execute_stage(config, workdir, name, state, logger, is_main_process):
    """Runs (or skips, when done) a prepared stage; process 0 writes its summary. Returns
    the summary, with `skipped: True` when the stage was done for this config."""
    stage_dir = os.path.join(workdir, name)
    if state == "done":
        logging.info("stage %s: done for this config, skipped (%s)", name, stage_dir)
        return dict(_read_summary(stage_dir), skipped=True)
    logging.info("stage %s: %s in %s", name,
                 "resuming" if state == "resume" else "running", stage_dir)
    start = time.time()
    ctx = StageContext(workdir, stage_dir, logger, is_main_process)
    summary = dict(stage_module(name).run(config, ctx) or {})
    summary["wall_time_s"] = round(time.time() - start, 2)
    if is_main_process:
        _write_json(os.path.join(stage_dir, SUMMARY_FILE), summary)
    logger.flush()
    return summary


def run_pipeline(config, workdir, stages=STAGES, force=False, logger=None,
                 is_main_process=True, shared_dir=None, shared_stages=STAGES[:-1]):
    """Runs `stages` (in pipeline order) for `config` in `workdir`; returns summaries.

    With `shared_dir`, the `shared_stages` live there, keyed by their config, and
    are linked into `workdir` (see `link_shared_stage`).

    Multi-process (jax.distributed, every process calls this with the same
    arguments): a stage module with `ALL_PROCESSES = True` (the agent) runs in every
    process; any other stage runs (or is skipped as done) in process 0 alone, on its
    local devices, while the others wait. Only process 0 writes config.json,
    summary.json and logs.
    """
    import jax

    from vidrl_jax.utils import distributed
    from vidrl_jax.utils.logging import MetricLogger

    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"--stages: unknown stage(s) {unknown}; valid: {', '.join(STAGES)}")
    os.makedirs(workdir, exist_ok=True)
    own_logger = logger is None
    logger = logger or MetricLogger(workdir, use_tensorboard=is_main_process,
                                    use_jsonl=is_main_process)
    multi = jax.process_count() > 1
    prepare = lambda name: _prepare_stage(config, workdir, name, force, shared_dir,
                                          shared_stages)
    summaries = {}
    try:
        for name in (s for s in STAGES if s in stages):
            if not multi:
                summaries[name] = _execute_stage(config, workdir, name, prepare(name), logger,
                                                 is_main_process)
            elif getattr(stage_module(name), "ALL_PROCESSES", False):
                state = prepare(name) if is_main_process else None
                distributed.barrier(f"{name} prepared")
                if state is None:  # process 0 has checked and recorded the config
                    state = check_stage_dir(config, workdir, name)
                summaries[name] = _execute_stage(config, workdir, name, state, logger,
                                                 is_main_process)
                distributed.barrier(f"{name} finished")  # its summary is written
            else:
                if is_main_process:
                    summaries[name] = _execute_stage(config, workdir, name, prepare(name),
                                                     logger, True)
                else:
                    logging.info("stage %s: runs in process 0; waiting", name)
                distributed.barrier(f"{name} finished")
                if not is_main_process:
                    summaries[name] = _read_summary(os.path.join(workdir, name))
    finally:
        if own_logger:
            logger.close()
    return summaries
