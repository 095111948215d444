"""The results table's goals, checked on sweep summaries: met, or missed and by how much.

    python -m experiments.studies.goals experiments/results/metaworld.csv [MORE.csv ...] [--out goals.md]

Reads `summary.csv` files as `experiments.sweep` writes them (cells named
`task=T_reward=R[_field=value...]`, `final_success` as "mean ± std" over seeds) and,
for each task, compares every GenReward cell with that task's `dense` and `sparse`
cells (from any of the files), on the mean final success over seeds:

  genreward*        final ≥ sparse + 0.3   and   final ≥ 0.8 × dense
  genreward+dense*  final ≥ dense

(`*`: the reward with any further fields, e.g. the per-step forms.) A target above 1
cannot be met by any success rate: it is reported as unreachable, with the target.
Prints a markdown table (and writes it to --out).
"""
import argparse
import csv
import sys

GOALS = {  # reward -> [(baseline, factor, offset)]: final ≥ factor × baseline + offset
    "genreward": [("sparse", 1.0, 0.3), ("dense", 0.8, 0.0)],
    "genreward+dense": [("dense", 1.0, 0.0)],
}


def goal_text(baseline, factor, offset):
    """('dense', 0.8, 0.0) -> '≥ 0.8 × dense'."""
    return ("≥ " + (f"{factor:g} × " if factor != 1 else "") + baseline
            + (f" + {offset:g}" if offset else ""))


def parse_cell(name):
    """'task=T_reward=R_video_form=progress' -> ('T', 'R', 'video_form=progress')."""
    task, sep, rest = name.partition("_reward=")
    if not (sep and task.startswith("task=")):
        raise ValueError(f"cell {name!r}: expected task=TASK_reward=REWARD[_FIELD=VALUE...]")
    reward, _, fields = rest.partition("_")
    return task[len("task="):], reward, fields


def parse_mean(text, where):
    """'0.30 ± 0.16' -> 0.3."""
    try:
        return float(text.split("±")[0])
    except ValueError:
        raise ValueError(f"{where}: final_success {text!r} is not 'mean ± std'") from None


def read_rows(paths):
    """{cell: summary row} from every summary csv in `paths`; a later file's row wins."""
    rows = {}
    for path in paths:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not {"cell", "final_success"} <= set(reader.fieldnames or ()):
                raise ValueError(f"{path}: no 'cell' and 'final_success' columns; expected a "
                                 "summary.csv written by experiments.sweep")
            rows.update((row["cell"], row) for row in reader)
    return rows


def read_cells(paths):
    """{(task, reward, fields): final success mean} from every summary csv in `paths`."""
    cells = {}
    for path in paths:
        for name, row in read_rows([path]).items():
            cells[parse_cell(name)] = parse_mean(row["final_success"], f"{path}, cell {name}")
    return cells


def check(cells):
    """[(task, cell variant, final, goal, target, verdict)] for every GenReward cell,
    grouped by task in the order the tasks first appear."""
    out = []
    tasks = list(dict.fromkeys(task for task, _, _ in cells))
    for (task, reward, fields), final in sorted(cells.items(),
                                                key=lambda kv: tasks.index(kv[0][0])):
        if reward not in GOALS:
            continue
        variant = reward + (f" ({fields})" if fields else "")
        for baseline, factor, offset in GOALS[reward]:
            goal, base = goal_text(baseline, factor, offset), cells.get((task, baseline, ""))
            if base is None:
                out.append((task, variant, final, goal, None, f"no `{baseline}` cell"))
                continue
            target = factor * base + offset
            if final >= target - 1e-9:
                verdict = f"met (+{final - target:.2f})"
            elif target > 1:
                verdict = f"missed by {target - final:.2f}: unreachable (target > 1)"
            else:
                verdict = f"**missed by {target - final:.2f}**"
            out.append((task, variant, final, goal, target, verdict))
    return out


def to_markdown(results):
    lines = ["| task | cell | final success | goal | target | verdict |",
             "|---|---|---|---|---|---|"]
    for task, variant, final, goal, target, verdict in results:
        t = "-" if target is None else f"{target:.2f}"
        lines.append(f"| {task} | `{variant}` | {final:.2f} | {goal} | {t} | {verdict} |")
    return "\n".join(lines) + "\n"


def emit(tool, make_markdown, out=""):
    """Prints `make_markdown()` and writes it to `out` when given; a bad or missing input
    file (OSError, ValueError) exits with 'error: experiments.TOOL: ...'."""
    try:
        md = make_markdown()
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: experiments.{tool}: {e}")
    if out:
        with open(out, "w") as f:
            f.write(md)
    sys.stdout.write(md)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", nargs="+", help="summary.csv files of experiments.sweep")
    parser.add_argument("--out", default="", help="write the markdown table here")
    args = parser.parse_args(argv)

    def make():
        results = check(read_cells(args.summaries))
        if not results:
            raise ValueError("no genreward or genreward+dense cell in "
                             + ", ".join(args.summaries))
        return to_markdown(results)
    emit("goals", make, args.out)


if __name__ == "__main__":
    main()
