#!/usr/bin/env bash
# (bash experiments/table.sh) Issue #21's results table: 4 tasks x 3 seeds x 50k env steps
# per seed, 10 eval episodes at every evaluation, into runs/table50k (summary.csv there is
# what experiments/results/metaworld.csv copies). Resumable: re-run it; finished cells
# are skipped and agents resume from their checkpoints.
# Part 1, the baselines (env reward only, no video model: --stages=agent).
# Part 2, the GenReward cells, runs once the per-step reward forms are chosen (#21 items 1-2).
set -e
cd "$(dirname "$0")/.."
COMMON=(--set seeds=3 --set agent.total_steps=50000 --set agent.replay_capacity=50000
        --set agent.eval_every=10000 --set agent.eval_episodes=10
        --set agent.checkpoint_every=5000 --set agent.log_every=1000
        --grid env.task=door-open-v3,drawer-close-v3,handle-press-v3,window-open-v3
        --workdir=runs/table50k --shared_dir=runs/ab_shared)
python -m experiments.sweep --config=configs/metaworld.py "${COMMON[@]}" \
  --grid reward=dense,sparse --stages=agent
if [ "${TABLE_GENREWARD:-0}" = 1 ]; then
  python -m experiments.sweep --config=configs/metaworld.py "${COMMON[@]}" \
    --grid reward=genreward,genreward+dense
fi
