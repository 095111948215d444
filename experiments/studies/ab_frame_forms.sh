#!/usr/bin/env bash
# (bash experiments/studies/ab_frame_forms.sh) A/B of the frame term's forms, alone
# (reward=frame: no env reward, no video term): fz (F(s,a,z_g)^T z_g), fz_scaled (the same
# over its running std) and bsim (cos(B(phi(s')), z_g)), on drawer-close-v3, where fz
# teaches within 10k steps: 3 seeds x 20k env steps, 10 eval episodes every 5k, the video
# models of runs/ab_shared. Measures whether a bounded form keeps what fz teaches.
# Writes runs/ab_frame_forms (summary.csv and summary_terms.csv committed as
# experiments/results/ab_frame_forms.csv and ab_frame_forms_terms.csv). Resumable.
cd "$(dirname "$0")/../.."
python -m experiments.sweep --config=configs/metaworld.py:frame \
  --set seeds=3 --set agent.total_steps=20000 --set agent.replay_capacity=20000 \
  --set agent.eval_every=5000 --set agent.eval_episodes=10 --set agent.checkpoint_every=5000 \
  --set agent.log_every=1000 --set reward.video_form=score \
  --set reward.video_progress_temperature=0.02 \
  --workdir=runs/ab_frame_forms --shared_dir=runs/ab_shared \
  --grid env.task=drawer-close-v3 --grid reward.frame_form=fz,fz_scaled,bsim
