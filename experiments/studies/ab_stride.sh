#!/usr/bin/env bash
# (bash experiments/studies/ab_stride.sh) A/B of reward.video_stride=2 (the video encoder
# every other env step) against stride 1 (ab_fb.sh's FB 128x128 serial arm,
# experiments/results/ab_fb_fast.csv), genreward, drawer-close-v3 and door-open-v3,
# 3 seeds x 20k env steps, 10 eval episodes every 10k, reward forms score + fz (pinned),
# FB 128x128 (pinned), the video models of runs/ab_shared. Measures whether the halved encoding costs
# success. Writes runs/ab_stride2 (summary.csv committed as
# experiments/results/ab_stride2.csv). Resumable: re-run it.
cd "$(dirname "$0")/../.."
python -m experiments.sweep --config=configs/metaworld.py:genreward \
  --set seeds=3 --set agent.total_steps=20000 --set agent.replay_capacity=20000 \
  --set agent.eval_every=10000 --set agent.eval_episodes=10 --set agent.checkpoint_every=5000 \
  --set agent.log_every=1000 --set reward.video_stride=2 --set "agent.fb.hidden=(128,128)" \
  --set reward.video_form=score --set reward.frame_form=fz \
  --set reward.video_progress_temperature=0.02 \
  --workdir=runs/ab_stride2 --shared_dir=runs/ab_shared --grid env.task=drawer-close-v3,door-open-v3
