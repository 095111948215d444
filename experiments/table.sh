#!/usr/bin/env bash
# (bash experiments/table.sh) Issue #21's results table: 4 tasks x 4 rewards x 3 seeds,
# 50k env steps per seed (door-open-v3: 100k, where dense SAC has not learned by 50k),
# 10 eval episodes at every evaluation, into runs/table50k.
# Resumable: re-run it; finished cells are skipped and agents resume from their
# checkpoints. Each finished cell's results.json and metrics.jsonl are kept in
# experiments/results/table50k/<cell>/ (commit them): on a fresh machine, whose runs/ is
# empty, the sweep restores them and runs only the cells not yet recorded. The video
# models are those of runs/ab_shared (the defaults): kept in experiments/results/table50k_models
# as they are built (experiments.shared_models: VAE, diffusion model, each task's goal
# video and goal frame; 8 MB) and restored from there on a fresh machine, so that every
# cell run since 2026-12-07 reads the same models (a rebuild differs from machine to
# machine; the cells finished before read builds of 2026-12-06 and earlier, lost).
# Order, most information first: one task at a time, its row (the 4 rewards), then
# the per-step A/B arm (genreward and genreward+dense with the Markov forms:
# video_form=progress, frame_form=bsim, each term bounded; against the row's cells
# with score and fz, the forms the table started with), then (ORACLE_TASKS) the
# oracle: the row's genreward with a real expert demo as the goal video, which
# separates the reward's design from the video model's quality; so a run stopped
# part-way leaves whole rows. door-open-v3's
# cells run in two passes: all of them to 50k (replay capacity 100k already), then all
# extended to 100k from their final checkpoints (a raised agent.total_steps goes on, as
# a 100k run would), so its whole row at 50k comes before any cell's 100k; after the
# 100k pass (which needs the 50k checkpoints of this machine, not kept in git, so it
# comes as early as it can), the ablations on door-open-v3 at 50k: video term only,
# frame term only (score and fz; the bounded frame forms were A/B'd alone by
# ab_frame_forms.sh).
# door-open-v3 comes first: the other tasks' cells were finished on a machine whose
# runs/ was lost on 2026-12-06 (their summaries: experiments/results/table50k_lost/),
# so they run again after it, for the sweep's own summary. Then one call over every row
# (all finished, skipped) whose summary.csv is experiments/results/metaworld.csv, one
# over the arms, one over the oracles, one over the ablations.
# TASKS, ORACLE_TASKS: the tasks, comma-separated, in the order they run.
# `bash experiments/table.sh --finished_only` runs nothing and summarises the finished
# cells (runs/table50k/summary_partial*.{csv,png}, summary_partial_{perstep,oracle}*;
# the ablations: summary_partial_ablations*) and
# checks the issue's goals on them and on the cells finished before the loss
# (runs/table50k/goals_partial.md, experiments.goals); it copies these files to
# experiments/results/table50k_partial* and table50k_goals_partial.md, to commit while
# the table is in progress, and compares the cells rerun so far with their lost rows
# (table50k_rerun_vs_lost.md) and writes the finished cells as one task x reward table
# (table50k_table_partial.md). The complete table's files are metaworld_* (below);
# the table was completed on 2026-12-07 and these snapshots removed.
set -e
cd "$(dirname "$0")/.."
sweep() {  # sweep NAME ARGS...: one sweep call; its summary files are kept as summary_NAME.*
  rm -f runs/table50k/summary.{csv,md,png} runs/table50k/summary_terms.{csv,png}
  python -m experiments.sweep --config=configs/metaworld.py \
    --set seeds=3 --set agent.total_steps=50000 --set agent.replay_capacity=50000 \
    --set agent.eval_every=10000 --set agent.eval_episodes=10 \
    --set agent.checkpoint_every=5000 --set agent.log_every=1000 \
    --workdir=runs/table50k --shared_dir=runs/ab_shared --records=experiments/results/table50k \
    "${@:2}"
  # the video models its cells read, kept once (a later rebuild does not replace them)
  if [ -d runs/ab_shared ]; then python -m experiments.shared_models save runs/ab_shared "$MODELS"; fi
  # each call rewrites summary.{csv,md,png} with its own cells: keep a copy per call
  for f in summary.csv summary.md summary.png summary_terms.csv summary_terms.png; do
    if [ -f "runs/table50k/$f" ]; then cp "runs/table50k/$f" "runs/table50k/${f/summary/summary_$1}"; fi
  done
}
MODELS=experiments/results/table50k_models
DOOR50K=(--set_for env.task=door-open-v3:agent.replay_capacity=100000)  # the first pass
DOOR100K=("${DOOR50K[@]}" --set_for env.task=door-open-v3:agent.total_steps=100000)
# The rows, oracles and ablations pin the reward forms the table started with (the
# defaults until 2026-12-06), so that a change of the defaults changes none of their
# cells (a finished cell's record, an unfinished cell's checkpoint); the arm sets its own.
START_FORMS=(--set reward.video_form=score --set reward.frame_form=fz
             --set reward.video_progress_temperature=0.02)
PERSTEP=(--grid reward=genreward,genreward+dense --grid reward.video_form=progress
         --grid reward.frame_form=bsim --set reward.video_progress_temperature=0.1)
TASKS=${TASKS:-door-open-v3,drawer-close-v3,handle-press-v3,window-open-v3}
ORACLE_TASKS=${ORACLE_TASKS:-handle-press-v3,door-open-v3}
ORACLE=("${START_FORMS[@]}" --grid reward=genreward --grid reward.video_goal=expert)
ROW=("${START_FORMS[@]}" --grid reward=dense,sparse,genreward,genreward+dense)
ABLATIONS=("${START_FORMS[@]}" --grid env.task=door-open-v3 --grid reward=video,frame)
# the summaries of the cells finished before runs/ was lost on 2026-12-06
LOST=(experiments/results/table50k_lost/table50k_partial{,_perstep,_oracle}.csv)
case "${1:-}" in
  ""|--finished_only) ;;
  *) echo "error: experiments/table.sh: unknown argument '$1' (valid: --finished_only)" >&2; exit 2 ;;
esac
if [ "${1:-}" = --finished_only ]; then
  sweep partial "${DOOR100K[@]}" --grid env.task="$TASKS" "${ROW[@]}" --finished_only
  sweep partial_perstep "${DOOR100K[@]}" --grid env.task="$TASKS" "${PERSTEP[@]}" --finished_only
  sweep partial_oracle "${DOOR100K[@]}" --grid env.task="$ORACLE_TASKS" "${ORACLE[@]}" --finished_only
  # door-open-v3's first pass (all 7 cells at 50k, finished 2026-12-06; not goal-checked)
  # is summarised no more: its cells are being extended to 100k, and a cell extended is
  # no longer a 50k cell, so these summaries would lose it. Its summaries stay as
  # committed (experiments/results/table50k_partial_door50k{,_perstep,_oracle}*), made by:
  #   sweep partial_door50k "${DOOR50K[@]}" --grid env.task=door-open-v3 "${ROW[@]}" \
  #     --finished_only    (and the same with "${PERSTEP[@]}", "${ORACLE[@]}")
  sweep partial_ablations "${ABLATIONS[@]}" --finished_only
  # the committed copies: experiments/results/table50k_partial*
  for f in runs/table50k/summary_partial*.{csv,png}; do
    if [ -f "$f" ]; then cp "$f" "experiments/results/$(basename "${f/summary_partial/table50k_partial}")"; fi
  done
  # the goals, first on the summaries of the cells finished before runs/ was lost on
  # 2026-12-06, then on this machine's: a cell finished here replaces its lost row
  # (experiments.goals: the last file wins)
  # (the lost summaries are committed; this machine's exist once a cell has finished)
  rerun=()
  for f in runs/table50k/summary_partial{,_perstep,_oracle}.csv; do
    if [ -f "$f" ]; then rerun+=("$f"); fi
  done
  python -m experiments.goals "${LOST[@]}" "${rerun[@]}" --out runs/table50k/goals_partial.md
  cp runs/table50k/goals_partial.md experiments/results/table50k_goals_partial.md
  # the cells rerun so far against their lost rows (same pins and seeds): identical, or
  # where they first differ (experiments.compare_summaries)
  if [ ${#rerun[@]} -gt 0 ]; then
    python -m experiments.compare_summaries "${LOST[@]}" --new "${rerun[@]}" \
      --out experiments/results/table50k_rerun_vs_lost.md
    # this machine's finished cells as one task x reward table (door-open-v3's ablations,
    # once finished, as two more columns)
    tables=("${rerun[@]}")
    if [ -f runs/table50k/summary_partial_ablations.csv ]; then
      tables+=(runs/table50k/summary_partial_ablations.csv)
    fi
    python -m experiments.results_table "${tables[@]}" \
      --out experiments/results/table50k_table_partial.md
  fi
  exit
fi
python -m experiments.shared_models restore "$MODELS" runs/ab_shared
door_100k_left() {  # how many of door-open-v3's cells are not finished at 100k
  for arm in ROW PERSTEP ORACLE; do
    if [ $arm = ORACLE ] && [[ ",$ORACLE_TASKS," != *",door-open-v3,"* ]]; then continue; fi
    local -n args=$arm
    sweep check_door "${DOOR100K[@]}" --grid env.task=door-open-v3 "${args[@]}" --finished_only
  done | grep -c "left out" || true
}
for task in ${TASKS//,/ }; do
  passes=(100k)
  # the 50k pass only while a door-open-v3 cell is unfinished at 100k: on a fresh machine
  # whose records hold the whole row at 100k, a 50k pass would run every cell again
  if [ "$task" = door-open-v3 ] && [ "$(door_100k_left)" -gt 0 ]; then passes=(50k 100k); fi
  for pass in "${passes[@]}"; do
    if [ "$pass" = 50k ]; then budget=("${DOOR50K[@]}") name="${task}_50k"
    else budget=("${DOOR100K[@]}") name=$task; fi
    sweep "row_$name" "${budget[@]}" --grid env.task="$task" "${ROW[@]}"
    sweep "perstep_$name" "${budget[@]}" --grid env.task="$task" "${PERSTEP[@]}"
    if [[ ",$ORACLE_TASKS," == *",$task,"* ]]; then
      sweep "oracle_$name" "${budget[@]}" --grid env.task="$task" "${ORACLE[@]}"
    fi
  done
  # after door-open-v3's 100k pass, not between its passes: the ablations need no
  # checkpoint, the 100k pass needs this machine's 50k ones (not kept in git)
  if [ "$task" = door-open-v3 ]; then sweep ablations "${ABLATIONS[@]}"; fi
done
sweep table "${DOOR100K[@]}" --grid env.task="$TASKS" "${ROW[@]}"
sweep perstep "${DOOR100K[@]}" --grid env.task="$TASKS" "${PERSTEP[@]}"
sweep oracle "${DOOR100K[@]}" --grid env.task="$ORACLE_TASKS" "${ORACLE[@]}"
sweep ablations "${ABLATIONS[@]}"
# The issue's artefacts, into experiments/results/ (commit them): the rows' summary.csv,
# exactly as experiments.sweep wrote it, as metaworld.csv and its summary.png as
# metaworld.png; the arms', oracles' and ablations' as metaworld_{perstep,oracle,ablations}.*,
# each call's per-term summary as *_terms.*; the goals on the rows, arms and oracles as
# metaworld_goals.md.
for name in table perstep oracle ablations; do
  out=metaworld; if [ "$name" != table ]; then out="metaworld_$name"; fi
  for f in summary.csv summary.png summary_terms.csv summary_terms.png; do
    src="runs/table50k/${f/summary/summary_$name}"
    if [ -f "$src" ]; then cp "$src" "experiments/results/${f/summary/$out}"; fi
  done
done
python -m experiments.goals runs/table50k/summary_{table,perstep,oracle}.csv \
  --out experiments/results/metaworld_goals.md
python -m experiments.results_table runs/table50k/summary_{table,perstep,oracle,ablations}.csv \
  --out experiments/results/metaworld_table.md   # the README's table
# and the rerun of the cells lost on 2026-12-06 against their lost rows
python -m experiments.compare_summaries "${LOST[@]}" \
  --new runs/table50k/summary_{table,perstep,oracle}.csv \
  --out experiments/results/metaworld_rerun_vs_lost.md
