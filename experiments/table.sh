#!/usr/bin/env bash
# (bash experiments/table.sh) Issue #21's results table: 4 tasks x 3 seeds x 50k env steps
# per seed, 10 eval episodes at every evaluation, into runs/table50k (summary.csv there is
# what experiments/results/metaworld.csv copies). Resumable: re-run it; finished cells
# are skipped and agents resume from their checkpoints. The video models are those of
# runs/ab_shared (the defaults; built by ab_fb.sh, or here on a fresh machine).
# Order: door-open-v3's baselines; the A/B of the reward forms on door-open-v3, which
# doubles as the table's ablations (video term only, by reward.video_form score|progress; frame term
# only, by reward.frame_form); the other tasks' baselines; then, with TABLE_GENREWARD=1
# and the chosen forms in TABLE_FORMS (e.g. "--set reward.video_form=progress
# --set reward.video_progress_temperature=0.1 --set reward.frame_form=bsim"), the GenReward cells of every task
# and the oracle ablation on door-open-v3 (reward.video_goal=expert).
set -e
cd "$(dirname "$0")/.."
sweep() {
  python -m experiments.sweep --config=configs/metaworld.py \
    --set seeds=3 --set agent.total_steps=50000 --set agent.replay_capacity=50000 \
    --set agent.eval_every=10000 --set agent.eval_episodes=10 \
    --set agent.checkpoint_every=5000 --set agent.log_every=1000 \
    --workdir=runs/table50k --shared_dir=runs/ab_shared "${@:2}"
  # each call rewrites summary.{csv,md,png} with its own cells: keep a copy per part
  for f in summary.csv summary.md summary.png; do
    if [ -f "runs/table50k/$f" ]; then cp "runs/table50k/$f" "runs/table50k/${f/summary/summary_$1}"; fi
  done
}
OTHER=drawer-close-v3,handle-press-v3,window-open-v3
sweep baselines_door --grid env.task=door-open-v3 --grid reward=dense,sparse --stages=agent
sweep video_forms --set reward.video_progress_temperature=0.1 --grid env.task=door-open-v3 --grid reward=video \
  --grid reward.video_form=score,progress   # (shaped cannot teach alone: README, known gaps)
sweep frame_forms --grid env.task=door-open-v3 --grid reward=frame \
  --grid reward.frame_form=fz,fz_scaled,bsim
sweep baselines --grid env.task=door-open-v3,$OTHER --grid reward=dense,sparse --stages=agent
if [ "${TABLE_GENREWARD:-0}" = 1 ]; then
  # The table: every task x the 4 rewards (the finished baselines are skipped), so
  # this call's summary.csv is experiments/results/metaworld.csv.
  # shellcheck disable=SC2086
  sweep table $TABLE_FORMS --grid env.task=door-open-v3,$OTHER \
    --grid reward=dense,sparse,genreward,genreward+dense
  # The oracle ablation: the same GenReward with a real expert demo as the goal video.
  # shellcheck disable=SC2086
  sweep oracle $TABLE_FORMS --grid env.task=door-open-v3 --grid reward=genreward \
    --grid reward.video_goal=expert
fi
