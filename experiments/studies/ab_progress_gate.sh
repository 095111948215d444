#!/usr/bin/env bash
# (bash experiments/studies/ab_progress_gate.sh) A/B of progress's off-path gate
# (reward.video_progress_gate=0.1: progress x exp(-d_min/0.1)) against the 50k table's
# per-step arm without it: progress at tau 0.1 + bsim, 3 seeds x 50k env steps, 10 eval
# episodes every 10k, the video models of runs/ab_shared. Measures whether the gate
# stops the agent from holding an arm pose that ungated progress pays as the goal.
# Writes each finished cell's records to experiments/results/ab_progress_gate/<cell>/
# and the summary as experiments/results/$OUT{,_terms}.{csv,png} (commit them).
# TASKS, REWARDS (comma-separated) choose the cells (default: window-open-v3,
# genreward and genreward+dense), OUT the summary's name (default ab_progress_gate),
# e.g. handle-press's genreward+dense:
#   TASKS=handle-press-v3 REWARDS=genreward+dense OUT=ab_progress_gate_handle_press \
#     bash experiments/studies/ab_progress_gate.sh
# Resumable: re-run it.
set -e
cd "$(dirname "$0")/../.."
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
