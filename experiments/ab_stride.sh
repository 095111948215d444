#!/usr/bin/env bash
# (bash experiments/ab_stride.sh) A/B for issue #20: reward.video_stride=2 (the video encoder
# every other env step) against the default stride 1, genreward, drawer-close-v3 and
# door-open-v3, 3 seeds, 20k env steps per seed. The stride-1 arm is ab_fb.sh's FB 128x128
# serial arm (runs/ab_fast, the current default); this script runs the stride-2 arm on the
# same video models (runs/ab_shared). Resumable: re-run it.
# The reward forms of the defaults when this A/B ran (score, fz), pinned: the defaults
# changed on 2026-12-06 (progress, bsim).
cd "$(dirname "$0")/.."
python -m experiments.sweep --config=configs/metaworld.py:genreward \
  --set seeds=3 --set agent.total_steps=20000 --set agent.replay_capacity=20000 \
  --set agent.eval_every=10000 --set agent.eval_episodes=10 --set agent.checkpoint_every=5000 \
  --set agent.log_every=1000 --set reward.video_stride=2 \
  --set reward.video_form=score --set reward.frame_form=fz \
  --set reward.video_progress_temperature=0.02 \
  --workdir=runs/ab_stride2 --shared_dir=runs/ab_shared --grid env.task=drawer-close-v3,door-open-v3
