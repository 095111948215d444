#!/usr/bin/env bash
# (bash experiments/studies/gates.sh [WORKDIR...]) The reward gates before RL, per task:
# does the learned reward pay the task done over the task undone (the arm where the expert
# left it) and over random frames? With the kept video models
# (experiments/results/table50k_models), each task's goal video, the learned reward's
# model trained on it against random-policy frames (what the replay holds before RL),
# scored on 20 expert episodes (experiments.gate_reward). Gates: done-vs-undone and
# done-vs-random AUC >= 0.9. WORKDIRs given: each run's learned reward as its latest
# checkpoint left it, instead (door-open-v3 runs; pass VARIANTS/task via CONFIG).
# Writes experiments/results/gates.md (one table per task or run) and gates_<name>.json;
# PREFIX=gates_progress_net CONFIG=configs/metaworld.py:progress_net scores the progress net
# instead, into gates_progress_net.md and gates_progress_net_<task>.json.
set -e
cd "$(dirname "$0")/../.."
OUT=experiments/results
CONFIG=${CONFIG:-configs/metaworld.py:learned}
PREFIX=${PREFIX:-gates}
SHARED=${SHARED:-runs/ab_shared}
python -m experiments.shared_models restore experiments/results/table50k_models "$SHARED"
if [ $# -gt 0 ]; then
  for w in "$@"; do
    name=$(basename "$w")
    python -m experiments.gate_reward --config="$CONFIG" --workdir="$w" --out="$OUT/${PREFIX}_$name.json" \
      | tail -n 4 >> "$OUT/$PREFIX.md"
  done
  exit
fi
: > "$OUT/$PREFIX.md"
for task in ${TASKS:-door-open-v3 drawer-open-v3 drawer-close-v3 handle-press-v3}; do
  w=runs/gates/$task
  python -m experiments.run --config="$CONFIG" --config.env.task="$task" --workdir="$w" \
    --shared_dir="$SHARED" --stages=demos,autoencoder,diffusion,goal,select > /dev/null
  python -m experiments.gate_reward --config="$CONFIG" --config.env.task="$task" --workdir="$w" \
    --out="$OUT/${PREFIX}_$task.json" | tail -n 4 >> "$OUT/$PREFIX.md"
  echo >> "$OUT/$PREFIX.md"
done
