#!/usr/bin/env bash
# (bash experiments/ab_frame_forms.sh) A/B for issue #21: the frame term alone (reward=frame,
# no env reward, no video term) in each of its forms, fz (F(s,a,z_g)^T z_g, the default then),
# fz_scaled (the same over its running std) and bsim (cos(B(phi(s')), z_g)), on
# drawer-close-v3, where fz teaches within 10k steps: 3 seeds, 20k env steps per
# seed, 10 eval episodes every 5k, the video models of runs/ab_shared. It asks whether
# a bounded form keeps what fz teaches. Resumable: re-run it.
# The reward forms of the defaults when this A/B ran (score, fz), pinned: the defaults
# changed on 2026-12-06 (progress, bsim).
cd "$(dirname "$0")/.."
python -m experiments.sweep --config=configs/metaworld.py:frame \
  --set seeds=3 --set agent.total_steps=20000 --set agent.replay_capacity=20000 \
  --set agent.eval_every=5000 --set agent.eval_episodes=10 --set agent.checkpoint_every=5000 \
  --set agent.log_every=1000 --set reward.video_form=score \
  --set reward.video_progress_temperature=0.02 \
  --workdir=runs/ab_frame_forms --shared_dir=runs/ab_shared \
  --grid env.task=drawer-close-v3 --grid reward.frame_form=fz,fz_scaled,bsim
