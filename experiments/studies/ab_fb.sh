#!/usr/bin/env bash
# (bash experiments/studies/ab_fb.sh) A/B of the agent's FB size and env loop: FB 256x256
# with the overlapped env loop (agent.overlap_env=True) against FB 128x128 with the serial
# loop, genreward, drawer-close-v3 and door-open-v3, 3 seeds x 20k env steps, 10 eval
# episodes every 10k, reward forms score + fz at video stride 1 (pinned), the video
# models of runs/ab_shared. Measures whether the smaller, faster FB costs success.
# Writes runs/ab_default and runs/ab_fast (summary.{csv,md,png} each; committed as
# experiments/results/ab_fb_default.csv and ab_fb_fast.csv). Resumable: re-run it.
cd "$(dirname "$0")/../.."
SETS="--set seeds=3 --set agent.total_steps=20000 --set agent.replay_capacity=20000 \
  --set agent.eval_every=10000 --set agent.eval_episodes=10 --set agent.checkpoint_every=5000 \
  --set agent.log_every=1000 --set reward.video_stride=1 \
  --set reward.video_form=score --set reward.frame_form=fz \
  --set reward.video_progress_temperature=0.02"
for task in drawer-close-v3 door-open-v3; do
  python -m experiments.sweep --config=configs/metaworld.py:genreward $SETS \
    --set "agent.fb.hidden=(256,256)" --set agent.overlap_env=True \
    --workdir=runs/ab_default --shared_dir=runs/ab_shared --grid env.task=$task
  python -m experiments.sweep --config=configs/metaworld.py:genreward $SETS \
    --set "agent.fb.hidden=(128,128)" --set agent.overlap_env=False \
    --workdir=runs/ab_fast --shared_dir=runs/ab_shared --grid env.task=$task
done
for arm in "ab_default (256,256) True" "ab_fast (128,128) False"; do set -- $arm
  python -m experiments.sweep --config=configs/metaworld.py:genreward $SETS \
    --set "agent.fb.hidden=$2" --set agent.overlap_env=$3 \
    --workdir=runs/$1 --shared_dir=runs/ab_shared --grid env.task=drawer-close-v3,door-open-v3
done
