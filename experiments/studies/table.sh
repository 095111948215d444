#!/usr/bin/env bash
# (bash experiments/studies/table.sh) The 50k results table: 4 tasks x 4 rewards x 3 seeds,
# 50k env steps per seed (door-open-v3: 100k, where dense SAC has not learned by 50k),
# 10 eval episodes at every evaluation (every 10k), into runs/table50k.
# Measures: final and best success, dense return and each reward term's running mean and
# std of every cell. Cells: per task the row (dense, sparse, genreward, genreward+dense
# with the reward forms score + fz, pinned so that the defaults do not change the row),
# the per-step arm (genreward and genreward+dense with progress at tau 0.1 and bsim),
# on ORACLE_TASKS the oracle (the row's genreward with the task's real expert demo as
# the goal video), and on door-open-v3 the ablations (video term alone, frame term alone).
# Writes (commit them): experiments/results/metaworld.{csv,png} (the rows' summary.csv
# as experiments.sweep writes it, and its curves), metaworld_{perstep,oracle,ablations}.*
# (the other sweeps' summaries), *_terms.{csv,png} (each term's running mean and std),
# metaworld_goals.md (experiments.studies.goals) and metaworld_table.md
# (experiments.studies.results_table, the table of docs/results.md); each finished
# cell's results.json and metrics.jsonl in experiments/results/table50k/<cell>/
# (sweep --records: a fresh machine restores them instead of running the cell again);
# the video models the cells read in experiments/results/table50k_models/
# (experiments.shared_models: saved once, restored on a fresh machine).
# Resumable: re-run it; finished cells are skipped and agents resume from their
# checkpoints. door-open-v3's cells run in two passes, all to 50k, then all extended to
# 100k from their final checkpoints, so its whole row at 50k comes first.
# TASKS, ORACLE_TASKS: the tasks, comma-separated, in the order they run.
# `bash experiments/studies/table.sh --finished_only` runs nothing: it summarises the
# finished cells (runs/table50k/summary_partial*) and checks the goals on them
# (runs/table50k/goals_partial.md).
set -e
cd "$(dirname "$0")/../.."
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
# The rows, oracles and ablations pin the reward forms score + fz, so that a change of
# the defaults changes none of their cells (a finished cell's record, an unfinished
# cell's checkpoint); the arm sets its own.
START_FORMS=(--set reward.video_form=score --set reward.frame_form=fz
             --set reward.video_progress_temperature=0.02)
PERSTEP=(--grid reward=genreward,genreward+dense --grid reward.video_form=progress
         --grid reward.frame_form=bsim --set reward.video_progress_temperature=0.1)
TASKS=${TASKS:-door-open-v3,drawer-close-v3,handle-press-v3,window-open-v3}
ORACLE_TASKS=${ORACLE_TASKS:-handle-press-v3,door-open-v3}
ORACLE=("${START_FORMS[@]}" --grid reward=genreward --grid reward.video_goal=expert)
ROW=("${START_FORMS[@]}" --grid reward=dense,sparse,genreward,genreward+dense)
ABLATIONS=("${START_FORMS[@]}" --grid env.task=door-open-v3 --grid reward=video,frame)
case "${1:-}" in
  ""|--finished_only) ;;
  *) echo "error: experiments/studies/table.sh: unknown argument '$1' (valid: --finished_only)" >&2; exit 2 ;;
esac
if [ "${1:-}" = --finished_only ]; then
  sweep partial "${DOOR100K[@]}" --grid env.task="$TASKS" "${ROW[@]}" --finished_only
  sweep partial_perstep "${DOOR100K[@]}" --grid env.task="$TASKS" "${PERSTEP[@]}" --finished_only
  sweep partial_oracle "${DOOR100K[@]}" --grid env.task="$ORACLE_TASKS" "${ORACLE[@]}" --finished_only
  sweep partial_ablations "${ABLATIONS[@]}" --finished_only
  finished=()
  for f in runs/table50k/summary_partial{,_perstep,_oracle}.csv; do
    if [ -f "$f" ]; then finished+=("$f"); fi
  done
  if [ ${#finished[@]} -gt 0 ]; then
    python -m experiments.studies.goals "${finished[@]}" --out runs/table50k/goals_partial.md
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
# The table's files, into experiments/results/ (commit them): the rows' summary.csv,
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
python -m experiments.studies.goals runs/table50k/summary_{table,perstep,oracle}.csv \
  --out experiments/results/metaworld_goals.md
python -m experiments.studies.results_table runs/table50k/summary_{table,perstep,oracle,ablations}.csv \
  --out experiments/results/metaworld_table.md
