"""The vidrl_jax pipeline: demos -> autoencoder -> diffusion -> goal -> select -> agent.

    python -m experiments.run --config=configs/metaworld.py[:VARIANTS] --workdir=DIR \
        [--stages=demos,autoencoder,...] [--force] [--config.env.task=drawer-open-v3]

Each stage writes into DIR/<stage>/ and is skipped when its output for the same
config exists. Errors in the input (an unknown flag or config field, a value of the
wrong type or out of range, unknown task, impossible sizes, missing weights, a
--workdir that cannot be written, missing stage output, corrupt checkpoint) exit
with status 2 and a one-line message; all but the last two before any stage runs.
At the end it prints where the outputs are, each stage's time, the final eval success
and the command that opens tensorboard, and adds the same to results.json
(vidrl_jax/run_summary.py).
"""
import logging
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

from absl import flags  # noqa: E402

from vidrl_jax.utils.cli import define_config_file, run_absl_main  # noqa: E402

_CONFIG = define_config_file(
    "config", "configs/metaworld.py", "Config file, optionally with :VARIANTS.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs/default", "Output directory.")
_STAGES = flags.DEFINE_list("stages", "demos,autoencoder,diffusion,goal,select,agent",
                            "Stages to run (in pipeline order).")
_SHARED = flags.DEFINE_string(
    "shared_dir", None, "Keep all stages but `agent` here, keyed by their config, and link "
    "them into --workdir (sweeps reuse demos and video models across runs).")
_FORCE = flags.DEFINE_bool("force", False, "Rebuild stages whose directory has another config.")


def main(argv):
    del argv
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "no TPU" noise
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax's per-save INFO chatter
    import jax

    from configs import metaworld
    from vidrl_jax import config_check
    from vidrl_jax.run_summary import format_summary, record_summary, run_summary
    from vidrl_jax.stages import run_pipeline

    config = _CONFIG.value
    defaults = metaworld.get_config()  # the examples in validation messages
    # Names and sizes first: fail before any device work.
    config_check.validate(config, defaults=defaults)
    config_check.check_output_dir(_WORKDIR.value, "--workdir")
    if _SHARED.value:
        config_check.check_output_dir(_SHARED.value, "--shared_dir")
    if config.distributed.enabled:
        from vidrl_jax.utils import distributed
        distributed.initialize_from_config(config)
    config_check.validate(config, num_devices=jax.local_device_count(), defaults=defaults)
    start = time.time()
    summaries = run_pipeline(config, _WORKDIR.value, stages=_STAGES.value,
                             force=_FORCE.value, shared_dir=_SHARED.value,
                             is_main_process=jax.process_index() == 0)
    if jax.process_index() == 0:
        summary = run_summary(_WORKDIR.value, summaries, time.time() - start, config.env.task)
        record_summary(_WORKDIR.value, summary)
        print(format_summary(summary), flush=True)


if __name__ == "__main__":
    run_absl_main(main)
