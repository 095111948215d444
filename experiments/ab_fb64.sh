#!/usr/bin/env bash
# (bash experiments/ab_fb64.sh) A/B for issue #20: FB 64x64 against the default FB 128x128,
# genreward at the default reward.video_stride=2, drawer-close-v3 and door-open-v3, 3 seeds,
# 20k env steps per seed. The 128x128 arm is ab_stride.sh's (runs/ab_stride2,
# experiments/results/ab_stride2.csv); this script runs the 64x64 arm on the same video
# models (runs/ab_shared). FB 64x64 costs about 0.4x FB 128x128's FLOPs, which would lift
# the fused update's FLOP limit past 0.5x the SAC scan (README, Benchmarks).
# Resumable: re-run it.
# The reward forms of the defaults when this A/B ran (score, fz), pinned: the defaults
# changed on 2026-12-06 (progress, bsim).
cd "$(dirname "$0")/.."
python -m experiments.sweep --config=configs/metaworld.py:genreward \
  --set seeds=3 --set agent.total_steps=20000 --set agent.replay_capacity=20000 \
  --set agent.eval_every=10000 --set agent.eval_episodes=10 --set agent.checkpoint_every=5000 \
  --set agent.log_every=1000 --set reward.video_stride=2 --set "agent.fb.hidden=(64,64)" \
  --set reward.video_form=score --set reward.frame_form=fz \
  --set reward.video_progress_temperature=0.02 \
  --workdir=runs/ab_fb64 --shared_dir=runs/ab_shared --grid env.task=drawer-close-v3,door-open-v3
