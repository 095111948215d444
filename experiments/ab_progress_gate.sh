#!/usr/bin/env bash
# (bash experiments/ab_progress_gate.sh) A/B for issue #21: the progress video term with
# its off-path gate (reward.video_progress_gate=0.1: progress × exp(-d_min/0.1)), against
# the table's per-step arm without it (runs/table50k's
# task=window-open-v3_reward=genreward_video_form=progress_frame_form=bsim: success 0.00,
# the agent held an off-path arm pose that progress pays 0.76 per step against the
# expert's 0.51). Same settings as that cell: genreward (no env reward), progress τ 0.1 +
# bsim, 3 seeds × 50k env steps, 10 eval episodes every 10k, the video models of
# runs/ab_shared. Resumable: re-run it. Finished cells' records are kept in
# experiments/results/ab_progress_gate/ (commit them), the summary as
# experiments/results/ab_progress_gate{,_terms}.csv and .png.
# genreward: run 2026-12-06, 0.00; genreward+dense: run 2026-12-07, 0.23 ± 0.17 against
# the arm's 0.00; handle-press's genreward+dense (the example below): 0.67 against 0.67
# (experiments/results/metaworld.md, "Progress's off-path gate").
# TASKS, REWARDS (comma-separated) choose other cells, OUT the summary's name in
# experiments/results/, e.g. handle-press's genreward+dense:
#   TASKS=handle-press-v3 REWARDS=genreward+dense OUT=ab_progress_gate_handle_press \
#     bash experiments/ab_progress_gate.sh
set -e
cd "$(dirname "$0")/.."
TASKS=${TASKS:-window-open-v3}
REWARDS=${REWARDS:-genreward,genreward+dense}
OUT=${OUT:-ab_progress_gate}
# an earlier call's summary must not be copied under this call's name (as table.sh's sweep())
rm -f runs/ab_progress_gate/summary.{csv,md,png} runs/ab_progress_gate/summary_terms.{csv,png}
python -m experiments.sweep --config=configs/metaworld.py \
  --set seeds=3 --set agent.total_steps=50000 --set agent.replay_capacity=50000 \
  --set agent.eval_every=10000 --set agent.eval_episodes=10 \
  --set agent.checkpoint_every=5000 --set agent.log_every=1000 \
  --set reward.video_form=progress --set reward.frame_form=bsim \
  --set reward.video_progress_temperature=0.1 \
  --workdir=runs/ab_progress_gate --shared_dir=runs/ab_shared \
  --records=experiments/results/ab_progress_gate \
  --grid env.task="$TASKS" --grid reward="$REWARDS" \
  --grid reward.video_progress_gate=0.1
# the summary, its curves and each term's running mean and std (commit them)
# (none when no cell finished: the sweep says so)
for f in summary.csv summary.png summary_terms.csv summary_terms.png; do
  if [ -f "runs/ab_progress_gate/$f" ]; then
    cp "runs/ab_progress_gate/$f" "experiments/results/${f/summary/$OUT}"
  fi
done
