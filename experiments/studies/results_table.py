"""Sweep summaries as one task × reward table (experiments/results/metaworld_table.md).

    python -m experiments.studies.results_table experiments/results/metaworld.csv \
        experiments/results/metaworld_{perstep,oracle}.csv [--out table.md]

Reads `summary.csv` files as `experiments.sweep` writes them (cells named
`task=T_reward=R[_field=value...]`). One row per task, one column per reward with its
further fields (e.g. `genreward (video_form=progress_frame_form=bsim)`), each in the
order it first appears; a later file's cell replaces an earlier one's. A cell reads
**final success** (mean ± std over seeds), then the best evaluation's success and the
final dense return (Meta-World's shaped return, whatever the agent trained on);
--final_only keeps the final success alone. A task whose cells all ran to one budget
names it beside the task. "-": no such cell. The table is printed, and written to
--out when given.
"""
import argparse

from experiments.studies.compare_summaries import steps_label
from experiments.studies.goals import emit, parse_cell, read_rows


def table(rows):
    """{cell: summary row} -> (tasks, columns, {(task, column): row}, {task: env steps})."""
    cells, tasks, columns = {}, [], []
    for name, row in rows.items():
        task, reward, fields = parse_cell(name)
        column = reward + (f" ({fields})" if fields else "")
        tasks += [task] if task not in tasks else []
        columns += [column] if column not in columns else []
        cells[task, column] = row
    budgets = {t: {r["env_steps"] for (task, _), r in cells.items() if task == t} for t in tasks}
    return tasks, columns, cells, budgets


def cell_text(row, show_steps, final_only=False):
    if final_only:
        return row["final_success"] + (f" (at {steps_label(row['env_steps'])})"
                                        if show_steps else "")
    text = (f"**{row['final_success']}** (best {row['best_success'].split(' ±')[0]}, "
            f"dense return {row['final_dense_return']}")
    return text + (f", at {steps_label(row['env_steps'])})" if show_steps else ")")


def to_markdown(rows, final_only=False):
    tasks, columns, cells, budgets = table(rows)
    out = ["| task | " + " | ".join(f"`{c}`" for c in columns) + " |",
           "|---|" + "---|" * len(columns)]
    for task in tasks:
        one = len(budgets[task]) == 1
        label = task + (f" ({steps_label(next(iter(budgets[task])))})" if one else "")
        out.append(f"| {label} | " + " | ".join(
            cell_text(cells[task, c], not one, final_only) if (task, c) in cells else "-"
            for c in columns) + " |")
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", nargs="+", help="summary.csv files of experiments.sweep")
    parser.add_argument("--out", default="", help="write the markdown table here")
    parser.add_argument("--final_only", action="store_true",
                        help="each cell: the final success alone (the README's compact table)")
    args = parser.parse_args(argv)
    emit("results_table", lambda: to_markdown(read_rows(args.summaries), args.final_only),
         args.out)


if __name__ == "__main__":
    main()
