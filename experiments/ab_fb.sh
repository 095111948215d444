#!/usr/bin/env bash
# (bash experiments/ab_fb.sh) A/B for issue #20: the current default agent vs the faster candidate (FB 128x128, serial env loop),
# genreward, drawer-close-v3 and door-open-v3, 3 seeds, 20k env steps per seed. Resumable: re-run it.
# The reward settings of the defaults when this A/B ran (score, fz, stride 1), pinned:
# the defaults changed on 2026-12-06 (progress, bsim).
cd "$(dirname "$0")/.."
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
