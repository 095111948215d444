"""A grid of runs, each in its own workdir, sharing demos and video models.

    python -m experiments.sweep --config=configs/metaworld.py[:VARIANTS] \
        --grid reward=sparse,dense,genreward --grid env.task=door-open-v3,drawer-open-v3 \
        [--set agent.total_steps=20000] [--set seeds=3] --workdir=DIR \
        [--shared_dir=DIR/shared] [--stages=agent]

`--grid reward=...` (or `variant=...`) appends config variants; any other key is
a config field (`--config.KEY=VALUE`). Every cell runs `experiments.run` in
`DIR/<cell>/` with `--shared_dir=DIR/shared`, so stages whose config is the same
across cells (demos, autoencoder, diffusion, goal, select) are built once.
`--shared_dir` lets several sweeps share them; `--stages` runs only those stages
of each cell (e.g. `agent` for baselines that need no video model). `--set_for
env.task=door-open-v3:agent.total_steps=100000` sets a field only in the cells whose
grid key has that value (a longer budget for one task of the table).
Finished cells are skipped (`--finished_only` runs nothing and summarises the
finished cells of a sweep still under way), unless the command sets a field to another
value than their results.json records: such a cell is run again, and `experiments.run`
extends it (a raised `agent.total_steps` goes on from the final checkpoint) or refuses
the changed config. At the end `DIR/summary.md` and `DIR/summary.csv`
tabulate the success rate at each evaluation, final and best success rate and the
final dense return (mean ± std over seeds) and wall time; `DIR/summary_terms.csv`
each reward term's running mean and std at the end of training; `DIR/summary.png`
plots the success curves (a panel per task, a line per reward variant), and
`DIR/summary_terms.png` each cell's reward terms' running std against env steps beside
its eval success (whether a term grows to drown the others, and when).
`--records DIR` keeps each finished cell's record (results.json, metrics.jsonl) in
`DIR/<cell>/`, a folder to commit, and restores a cell's record from there when its
workdir has none and the record's config is what the command sets: a fresh machine
skips the cells a lost one finished, and the summaries include them (their checkpoints
are not kept: a cell whose command changed since runs from the start).
"""
import argparse
import ast
import csv
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np

VARIANT_KEYS = ("reward", "variant")
# a finished cell's record; results.json last: it is what marks a cell finished
RECORD_FILES = ("metrics.jsonl", "results.json")


def parse_grid(items):
    """['reward=a,b', 'env.task=x'] -> [('reward', ['a','b']), ('env.task', ['x'])]."""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise SystemExit(f"error: --grid {item!r}: expected KEY=V1,V2,...")
        grid.append((key, values.split(",")))
    return grid


def cells(grid):
    """Every combination of the grid as a list of (key, value) pairs."""
    keys = [k for k, _ in grid]
    for values in itertools.product(*[v for _, v in grid]):
        yield list(zip(keys, values))


def parse_set_for(items):
    """['env.task=x:agent.total_steps=9'] -> [(('env.task', 'x'), 'agent.total_steps=9')]."""
    out = []
    for item in items:
        where, sep, setting = item.partition(":")
        key, eq, value = where.partition("=")
        if not (sep and eq and value and "=" in setting):
            raise SystemExit(f"error: --set_for {item!r}: expected GRIDKEY=VALUE:FIELD=VALUE")
        out.append(((key, value), setting))
    return out


def cell_sets(cell, sets, set_for):
    """The --set fields of `cell`: `sets`, then those of `set_for` whose condition it meets."""
    return list(sets) + [setting for cond, setting in set_for if cond in cell]


def cell_name(cell):
    return "_".join(f"{k.split('.')[-1]}={v}" for k, v in cell).replace("/", "-")


def changed_fields(recorded, cell, sets):
    """The fields that `cell`'s command sets (its non-variant grid keys and `sets`) to
    other values than `recorded`, a finished run's config (results.json):
    ['agent.total_steps: 50000, now 100000']. A field the record lacks, or a value that
    does not parse as the recorded one's type, counts as changed: the run decides."""
    fields = {}  # the last setting of a field wins, as in the command
    for setting in [f"{k}={v}" for k, v in cell if k not in VARIANT_KEYS] + list(sets):
        key, _, text = setting.partition("=")
        fields[key] = text
    out = []
    for key, text in fields.items():
        have = recorded
        for part in key.split("."):
            have = have.get(part, "<unset>") if isinstance(have, dict) else "<unset>"
        if not _reads_as(text, have):
            out.append(f"{key}: {have}, now {text}")
    return out


def _reads_as(text, value):
    """Whether the --config override `text` sets a field to `value` (a JSON value)."""
    try:
        if isinstance(value, bool):
            return text.strip().lower() in (("true", "1") if value else ("false", "0"))
        if isinstance(value, (int, float)):
            return float(text) == float(value)
        if isinstance(value, list):
            parsed = ast.literal_eval(text)
            return list(parsed if isinstance(parsed, (list, tuple)) else [parsed]) == value
    except (ValueError, SyntaxError):
        return False
    return isinstance(value, str) and text == value


def cell_command(config, cell, sets, workdir, shared_dir, stages=""):
    path, _, variants = config.partition(":")
    variants = [v for v in variants.split(",") if v]
    variants += [v for k, v in cell if k in VARIANT_KEYS]
    overrides = [f"--config.{k}={v}" for k, v in cell if k not in VARIANT_KEYS]
    overrides += [f"--config.{s}" for s in sets]
    config_arg = path + (":" + ",".join(variants) if variants else "")
    return [sys.executable, "-m", "experiments.run", f"--config={config_arg}",
            f"--workdir={workdir}", f"--shared_dir={shared_dir}",
            *([f"--stages={stages}"] if stages else []), *overrides]


def copy_record(src, dst):
    """Copy a cell's RECORD_FILES that exist from folder src to folder dst, each
    atomically, results.json last. metrics.jsonl is cut at results.json's env_steps:
    a finished cell being extended (a raised agent.total_steps) logs past its record."""
    os.makedirs(dst, exist_ok=True)
    up_to = _recorded_env_steps(src)
    for name in RECORD_FILES:
        if os.path.exists(os.path.join(src, name)):
            tmp = os.path.join(dst, name + ".tmp")
            if name == "metrics.jsonl" and up_to is not None:
                with open(os.path.join(src, name)) as f, open(tmp, "w") as out:
                    out.writelines(line for line in f if json.loads(line)["step"] <= up_to)
            else:
                shutil.copyfile(os.path.join(src, name), tmp)
            os.replace(tmp, os.path.join(dst, name))


def _recorded_env_steps(cell_dir):
    path = os.path.join(cell_dir, "results.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f).get("env_steps")


def restore_record(record_dir, workdir, cell, sets):
    """Copy the record kept in record_dir into an unfinished cell's workdir when it was
    made with the fields the cell's command sets; says what it did."""
    kept = os.path.join(record_dir, "results.json")
    if os.path.exists(os.path.join(workdir, "results.json")) or not os.path.exists(kept):
        return
    with open(kept) as f:
        changed = changed_fields(json.load(f).get("config", {}), cell, sets)
    if changed:
        print(f"[sweep] {cell_name(cell)}: its record in {record_dir} has another config "
              f"({'; '.join(changed)}): not restored", flush=True)
        return
    copy_record(record_dir, workdir)
    print(f"[sweep] {cell_name(cell)}: record restored from {record_dir}", flush=True)


def summarize(rows):
    """rows: [(cell, results dict)] -> (markdown, csv) tables.

    success@N: the evaluation success rate at N env steps (mean ± std over seeds), one
    column per evaluation point of any cell ("-" where a cell has none there).
    final_dense_return: Meta-World's shaped return of the last evaluation (mean ± std
    over seeds), whatever reward the agent trained on: progress short of success.
    """
    def pm(values, fmt=".2f"):
        v = np.asarray(values, np.float64)
        return f"{v.mean():{fmt}} ± {v.std():{fmt}}" if v.size else "-"

    curves = [dict(zip(r["success_curve"]["env_steps"], r["success_curve"]["success"]))
              if "success_curve" in r else {} for _, r in rows]
    points = sorted(set().union(*curves))
    header = (["cell", "seeds"] + [f"success@{n}" for n in points]
              + ["final_success", "best_success", "final_dense_return", "env_steps",
                 "wall_time_s"])
    table = []
    for (cell, r), curve in zip(rows, curves):
        table.append([cell_name(cell), str(len(r["seeds"]))]
                     + [pm(curve[n]) if n in curve else "-" for n in points]
                     + [pm(r["final_success"]), pm(r["best_success"]),
                        pm(r.get("final_returns", {}).get("env_dense", []), ".0f"),
                        str(r["env_steps"]), f"{r['wall_time_s']:.0f}"])
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(row) + " |" for row in table]
    buf = io.StringIO()
    csv.writer(buf).writerows([header] + table)
    return "\n".join(md) + "\n", buf.getvalue()


def summarize_terms(rows):
    """rows: [(cell, results dict)] -> csv: per cell and reward term, the running mean and
    std of what the updates saw at the end of training, and the term's return in the
    last evaluation (mean over seeds). Scales side by side show whether a term drowns
    the others."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["cell", "term", "running_mean", "running_std", "final_eval_return"])
    for cell, r in rows:
        returns = r.get("final_returns", {})
        for term, stats in r.get("reward_running", {}).items():
            ret = returns.get(term, [])
            writer.writerow([cell_name(cell), term, f"{stats['mean']:.4g}",
                             f"{stats['std']:.4g}",
                             f"{np.mean(ret):.4g}" if len(ret) else "-"])
    return buf.getvalue()


def curves_by_panel(rows):
    """rows: [(cell, results dict)] -> {panel: [(label, env_steps [E], mean [E], std [E])]}.

    A panel is the cell's non-variant part (e.g. "task=door-open-v3"), a line its
    variant part (e.g. "reward=sparse"); mean and std of success over seeds.
    """
    panels = {}
    for cell, r in rows:
        fields = [(k, v) for k, v in cell if k not in VARIANT_KEYS]
        variants = [(k, v) for k, v in cell if k in VARIANT_KEYS]
        curve = r["success_curve"]
        success = np.asarray(curve["success"], np.float64)  # [E, seeds]
        panels.setdefault(cell_name(fields) or "all", []).append(
            (cell_name(variants) or cell_name(cell), list(curve["env_steps"]),
             success.mean(axis=1), success.std(axis=1)))
    return panels


def plot_summary(rows, path):
    """summary.png: success rate against env steps, a panel per non-variant cell part,
    a line (mean over seeds, ± std shaded) per variant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidrl_jax.utils.video_io import save_figure
    panels = curves_by_panel(rows)
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), dpi=100,
                             squeeze=False, sharey=True)
    for ax, (panel, lines) in zip(axes[0], panels.items()):  # in grid order
        for label, x, mean, std in lines:
            ax.plot(x, mean, marker="o", ms=3, label=label)
            ax.fill_between(x, mean - std, mean + std, alpha=0.15)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("success rate")
    fig.tight_layout()
    save_figure(path, fig)


def term_curves(metrics_path, up_to=None):
    """A run's metrics.jsonl -> ({term: (env_steps [N], running std [N])},
    (eval env_steps [E], eval success [E])), steps after `up_to` left out (a finished
    cell being extended). A step logged twice (a run resumed from an earlier
    checkpoint) keeps its last value."""
    stds, success = {}, {}
    prefix, suffix = "agent/reward_running/", "_std"
    with open(metrics_path) as f:
        for line in f:
            m = json.loads(line)
            if up_to is not None and m["step"] > up_to:
                continue
            for key, value in m.items():
                if key.startswith(prefix) and key.endswith(suffix):
                    stds.setdefault(key[len(prefix):-len(suffix)], {})[m["step"]] = value
            if "agent/eval/success" in m:
                success[m["step"]] = m["agent/eval/success"]

    def xy(points):
        steps = sorted(points)
        return steps, [points[s] for s in steps]
    return {t: xy(p) for t, p in stds.items()}, xy(success)


def plot_terms(cells, path, columns=4):
    """summary_terms.png: a panel per cell [(name, metrics.jsonl path, last env step or
    None)]: each reward term's running std against env steps (log scale), eval success
    on the right axis."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidrl_jax.utils.video_io import save_figure
    rows = -(-len(cells) // columns)
    cols = min(columns, len(cells))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), dpi=100,
                             squeeze=False)
    for ax in axes.flat[len(cells):]:
        ax.axis("off")
    curves = [term_curves(metrics_path, up_to) for _, metrics_path, up_to in cells]
    colors = {}  # one color per term in every panel
    for terms, _ in curves:
        for term in terms:
            colors.setdefault(term, f"C{len(colors)}")
    for ax, (name, _, _), (terms, (eval_x, eval_y)) in zip(axes.flat, cells, curves):
        for term, (x, y) in terms.items():
            ax.semilogy(x, y, color=colors[term], label=f"{term} std")
        right = ax.twinx()
        right.plot(eval_x, eval_y, "k--", marker="o", ms=3, label="eval success")
        right.set_ylim(-0.05, 1.05)
        ax.set_title(textwrap.fill(name, 60), fontsize=7)
        ax.set_xlabel("env steps", fontsize=8)
        ax.legend(fontsize=6, loc="upper left")
        right.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    save_figure(path, fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/metaworld.py")
    parser.add_argument("--grid", action="append", default=[], help="KEY=V1,V2,...")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for all cells")
    parser.add_argument("--set_for", action="append", default=[],
                        help="GRIDKEY=VALUE:KEY=VALUE, set only in the cells with that value")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--shared_dir", default="", help="shared stages (default DIR/shared)")
    parser.add_argument("--stages", default="", help="comma-separated stages to run per cell")
    parser.add_argument("--records", default="",
                        help="keep finished cells' results.json and metrics.jsonl in "
                             "DIR/<cell>/ and restore them from there")
    parser.add_argument("--dry_run", action="store_true", help="print the commands only")
    parser.add_argument("--finished_only", action="store_true",
                        help="run nothing: summarise the cells that have finished")
    args = parser.parse_args(argv)
    shared = args.shared_dir or os.path.join(args.workdir, "shared")
    grid, set_for = parse_grid(args.grid), parse_set_for(args.set_for)
    unknown = [k for (k, _), _ in set_for if k not in dict(grid)]
    if unknown:
        raise SystemExit(f"error: --set_for {unknown[0]!r}: not a --grid key")
    if args.records and os.path.exists(args.records) and not os.path.isdir(args.records):
        raise SystemExit(f"error: --records={args.records}: not a folder; give a folder "
                         "(made if missing) to keep the finished cells' records in")
    rows = []
    for cell in cells(grid):
        workdir = os.path.join(args.workdir, cell_name(cell))
        sets = cell_sets(cell, args.set, set_for)
        cmd = cell_command(args.config, cell, sets, workdir, shared, args.stages)
        results = os.path.join(workdir, "results.json")
        if args.dry_run:
            print(" ".join(cmd))
            continue
        if args.records:
            restore_record(os.path.join(args.records, cell_name(cell)), workdir, cell, sets)
        record, changed = None, []
        if os.path.exists(results):
            with open(results) as f:
                record = json.load(f)
            changed = changed_fields(record.get("config", {}), cell, sets)
        if record is not None and not changed:
            print(f"[sweep] {cell_name(cell)}: finished, skipped", flush=True)
        elif args.finished_only:
            why = f"finished with another config ({'; '.join(changed)})" if changed \
                else "not finished"
            print(f"[sweep] {cell_name(cell)}: {why}, left out", flush=True)
            continue
        else:
            if changed:  # experiments.run goes on (a raised agent.total_steps) or refuses
                print(f"[sweep] {cell_name(cell)}: finished with another config "
                      f"({'; '.join(changed)}): running it", flush=True)
            print(f"[sweep] {cell_name(cell)}: {' '.join(cmd[1:])}", flush=True)
            proc = subprocess.run(cmd)
            if proc.returncode:
                print(f"[sweep] {cell_name(cell)} failed with exit code {proc.returncode}",
                      file=sys.stderr)
                continue
            if not os.path.exists(results):  # (--stages without the agent: no results)
                continue
            with open(results) as f:
                record = json.load(f)
        if args.records:
            copy_record(workdir, os.path.join(args.records, cell_name(cell)))
        rows.append((cell, record))
    if rows:
        md, table = summarize(rows)
        for name, text in (("summary.md", md), ("summary.csv", table),
                           ("summary_terms.csv", summarize_terms(rows))):
            with open(os.path.join(args.workdir, name), "w") as f:
                f.write(text)
        plot_summary(rows, os.path.join(args.workdir, "summary.png"))
        metrics = [(" ".join(cell_name([part]) for part in cell),
                    os.path.join(args.workdir, cell_name(cell), "metrics.jsonl"),
                    record.get("env_steps")) for cell, record in rows]
        metrics = [m for m in metrics if os.path.exists(m[1])]
        if metrics:
            plot_terms(metrics, os.path.join(args.workdir, "summary_terms.png"))
        print(md)
    elif not args.dry_run:
        print("[sweep] no finished cell: nothing summarised", flush=True)


if __name__ == "__main__":
    main()
