#!/usr/bin/env bash
# (bash experiments/studies/rewards_table.sh) The learned rewards' table: 4 tasks x 7
# rewards x 3 seeds, 10 eval episodes every 10k env steps, into runs/rewards.
# Tasks: door-open-v3 and drawer-open-v3 at 100k env steps, drawer-close-v3 and
# handle-press-v3 at 50k. Rewards: dense, sparse, progress_net (the progress net alone),
# progress_net+sparse, progress_net+dense, genreward+sparse (the default fixed forms beside
# the success signal, the peers' setting) and learned (the online discriminator alone); on
# door-open-v3 also the oracle (progress_net with the task's real expert demo as the goal
# video). Measures final and best success, dense return and
# each term's running mean and std per cell.
# Writes (commit them): experiments/results/rewards.{csv,png} (the sweep's summary.csv as
# written, and its curves), rewards_oracle.{csv,png}, rewards_terms.{csv,png}; each
# finished cell's results.json and metrics.jsonl in experiments/results/rewards/<cell>/.
# The video models are the kept ones (experiments/results/table50k_models), restored
# first; drawer-open-v3's goal video is sampled from them on the first run.
# Resumable: re-run it; finished cells are skipped, agents resume from checkpoints.
# FINISHED_ONLY=1 runs nothing and writes the same files for the cells finished so far;
# TASKS=... and REWARDS=... (comma-separated) run a part of the grid, in that order;
# ORACLE=0 skips the oracle cell.
set -e
cd "$(dirname "$0")/../.."
MODELS=experiments/results/table50k_models
python -m experiments.shared_models restore "$MODELS" runs/ab_shared
sweep() {  # sweep NAME ARGS...: one sweep call; its summary files kept as NAME.*
  rm -f runs/rewards/summary.{csv,md,png} runs/rewards/summary_terms.{csv,png}
  python -m experiments.sweep --config=configs/metaworld.py \
    --set seeds=3 --set agent.total_steps=50000 --set agent.replay_capacity=50000 \
    --set agent.eval_every=10000 --set agent.eval_episodes=10 \
    --set agent.checkpoint_every=5000 --set agent.log_every=1000 \
    --set_for env.task=door-open-v3:agent.total_steps=100000 \
    --set_for env.task=door-open-v3:agent.replay_capacity=100000 \
    --set_for env.task=drawer-open-v3:agent.total_steps=100000 \
    --set_for env.task=drawer-open-v3:agent.replay_capacity=100000 \
    --workdir=runs/rewards --shared_dir=runs/ab_shared --records=experiments/results/rewards \
    ${FINISHED_ONLY:+--finished_only} "${@:2}"
  python -m experiments.shared_models save runs/ab_shared "$MODELS"
  for f in summary.csv summary.png summary_terms.csv summary_terms.png; do
    if [ -f "runs/rewards/$f" ]; then cp "runs/rewards/$f" "experiments/results/${f/summary/$1}"; fi
  done
}
TASKS=${TASKS:-door-open-v3,drawer-close-v3,handle-press-v3,drawer-open-v3}
REWARDS=${REWARDS:-dense,sparse,progress_net,progress_net+sparse,progress_net+dense,genreward+sparse,learned}
sweep rewards --grid env.task="$TASKS" --grid reward="$REWARDS"
[ "${ORACLE:-1}" = 0 ] || sweep rewards_oracle --grid env.task=door-open-v3 --grid reward=progress_net --grid reward.video_goal=expert
