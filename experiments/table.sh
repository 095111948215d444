#!/usr/bin/env bash
# (bash experiments/table.sh) Issue #21's results table: 4 tasks x 4 rewards x 3 seeds,
# 50k env steps per seed (door-open-v3: 100k, where dense SAC has not learned by 50k),
# 10 eval episodes at every evaluation, into runs/table50k.
# Resumable: re-run it; finished cells are skipped and agents resume from their
# checkpoints. The video models are those of runs/ab_shared (the defaults; built here
# on a fresh machine, ~20 min).
# Order, most information first: one task at a time, its row (the 4 rewards) and then
# the per-step A/B arm (genreward and genreward+dense with the Markov forms:
# video_form=progress, frame_form=bsim, each term bounded; against the row's cells
# with today's score and fz), so a run
# stopped part-way leaves whole rows; then one call over every row (all finished,
# skipped) whose summary.csv is experiments/results/metaworld.csv, one over the arms;
# then the ablations on door-open-v3 at 50k: video term only (reward.video_form
# score|progress), frame term only (reward.frame_form), and the oracle (the same
# GenReward, a real expert demo as the goal video). TASKS: the tasks, comma-separated.
# `bash experiments/table.sh --finished_only` runs nothing and summarises the finished
# cells (runs/table50k/summary_partial*.csv, summary_partial_perstep*.csv).
set -e
cd "$(dirname "$0")/.."
sweep() {  # sweep NAME ARGS...: one sweep call; its summary files are kept as summary_NAME.*
  rm -f runs/table50k/summary.{csv,md,png} runs/table50k/summary_terms.csv
  python -m experiments.sweep --config=configs/metaworld.py \
    --set seeds=3 --set agent.total_steps=50000 --set agent.replay_capacity=50000 \
    --set agent.eval_every=10000 --set agent.eval_episodes=10 \
    --set agent.checkpoint_every=5000 --set agent.log_every=1000 \
    --workdir=runs/table50k --shared_dir=runs/ab_shared "${@:2}"
  # each call rewrites summary.{csv,md,png} with its own cells: keep a copy per call
  for f in summary.csv summary.md summary.png summary_terms.csv; do
    if [ -f "runs/table50k/$f" ]; then cp "runs/table50k/$f" "runs/table50k/${f/summary/summary_$1}"; fi
  done
}
DOOR100K=(--set_for env.task=door-open-v3:agent.total_steps=100000
          --set_for env.task=door-open-v3:agent.replay_capacity=100000)
PERSTEP=(--grid reward=genreward,genreward+dense --grid reward.video_form=progress
         --grid reward.frame_form=bsim --set reward.video_progress_temperature=0.1)
TASKS=${TASKS:-drawer-close-v3,handle-press-v3,window-open-v3,door-open-v3}
REWARDS=dense,sparse,genreward,genreward+dense
case "${1:-}" in
  ""|--finished_only) ;;
  *) echo "error: experiments/table.sh: unknown argument '$1' (valid: --finished_only)" >&2; exit 2 ;;
esac
if [ "${1:-}" = --finished_only ]; then
  sweep partial "${DOOR100K[@]}" --grid env.task="$TASKS" --grid reward=$REWARDS --finished_only
  sweep partial_perstep "${DOOR100K[@]}" --grid env.task="$TASKS" "${PERSTEP[@]}" --finished_only
  exit
fi
for task in ${TASKS//,/ }; do
  sweep "row_$task" "${DOOR100K[@]}" --grid env.task="$task" --grid reward=$REWARDS
  sweep "perstep_$task" "${DOOR100K[@]}" --grid env.task="$task" "${PERSTEP[@]}"
done
sweep table "${DOOR100K[@]}" --grid env.task="$TASKS" --grid reward=$REWARDS
sweep perstep "${DOOR100K[@]}" --grid env.task="$TASKS" "${PERSTEP[@]}"
sweep video_forms --set reward.video_progress_temperature=0.1 --grid env.task=door-open-v3 \
  --grid reward=video --grid reward.video_form=score,progress  # (shaped cannot teach alone: README)
sweep frame_forms --grid env.task=door-open-v3 --grid reward=frame \
  --grid reward.frame_form=fz,fz_scaled,bsim
sweep oracle --grid env.task=door-open-v3 --grid reward=genreward --grid reward.video_goal=expert
