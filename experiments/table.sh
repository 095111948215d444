#!/usr/bin/env bash
# (bash experiments/table.sh) Issue #21's results table: 4 tasks x 4 rewards x 3 seeds x
# 50k env steps per seed, 10 eval episodes at every evaluation, into runs/table50k.
# Resumable: re-run it; finished cells are skipped and agents resume from their
# checkpoints. The video models are those of runs/ab_shared (the defaults; built here
# on a fresh machine, ~20 min).
# Order, most information first: one task's row at a time (its 4 rewards), so a run
# stopped part-way leaves whole rows; then one call over every row (all finished,
# skipped) whose summary.csv is experiments/results/metaworld.csv; then the ablations
# on door-open-v3: video term only (reward.video_form score|progress), frame term only
# (reward.frame_form), and the oracle (the same GenReward, a real expert demo as the
# goal video). TABLE_FORMS: reward-form overrides for the GenReward cells, e.g.
# "--set reward.video_form=progress --set reward.frame_form=bsim" (default: the
# config's forms); TASKS: the tasks, comma-separated. `bash experiments/table.sh
# --finished_only` runs nothing and summarises the table's finished cells
# (runs/table50k/summary_partial.csv, summary_partial_terms.csv).
set -e
cd "$(dirname "$0")/.."
sweep() {
  python -m experiments.sweep --config=configs/metaworld.py \
    --set seeds=3 --set agent.total_steps=50000 --set agent.replay_capacity=50000 \
    --set agent.eval_every=10000 --set agent.eval_episodes=10 \
    --set agent.checkpoint_every=5000 --set agent.log_every=1000 \
    --workdir=runs/table50k --shared_dir=runs/ab_shared "${@:2}"
  # each call rewrites summary.{csv,md,png} with its own cells: keep a copy per part
  for f in summary.csv summary.md summary.png summary_terms.csv; do
    if [ -f "runs/table50k/$f" ]; then cp "runs/table50k/$f" "runs/table50k/${f/summary/summary_$1}"; fi
  done
}
TASKS=${TASKS:-drawer-close-v3,handle-press-v3,window-open-v3,door-open-v3}
REWARDS=dense,sparse,genreward,genreward+dense
case "${1:-}" in
  ""|--finished_only) ;;
  *) echo "error: experiments/table.sh: unknown argument '$1' (valid: --finished_only)" >&2; exit 2 ;;
esac
if [ "${1:-}" = --finished_only ]; then
  # shellcheck disable=SC2086
  sweep partial $TABLE_FORMS --grid env.task="$TASKS" --grid reward=$REWARDS --finished_only
  exit
fi
for task in ${TASKS//,/ }; do
  # shellcheck disable=SC2086
  sweep "row_$task" $TABLE_FORMS --grid env.task="$task" --grid reward=$REWARDS
done
# shellcheck disable=SC2086
sweep table $TABLE_FORMS --grid env.task="$TASKS" --grid reward=$REWARDS
sweep video_forms --set reward.video_progress_temperature=0.1 --grid env.task=door-open-v3 \
  --grid reward=video --grid reward.video_form=score,progress  # (shaped cannot teach alone: README)
sweep frame_forms --grid env.task=door-open-v3 --grid reward=frame \
  --grid reward.frame_form=fz,fz_scaled,bsim
# shellcheck disable=SC2086
sweep oracle $TABLE_FORMS --grid env.task=door-open-v3 --grid reward=genreward \
  --grid reward.video_goal=expert
