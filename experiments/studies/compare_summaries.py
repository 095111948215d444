"""Two sweeps' summaries of the same cells, side by side: did a rerun reproduce?

    python -m experiments.studies.compare_summaries OLD.csv [OLD2.csv ...] --new NEW.csv [...] \
        [--out compare.md]

Reads `summary.csv` files as `experiments.sweep` writes them. For every cell in both
the old and the new files (a later file replacing an earlier one's row of the same
cell), prints (and writes to --out) a markdown row: the final success (mean ± std over
seeds) old and new, the final dense return old and new, and the verdict: `identical`
when every success column (`success@N`, `final_success`, `best_success`) and the final
dense return are equal as written, else the first evaluation whose mean success
differs. Cells in only one side are left out (a cell not rerun yet).
"""
import argparse

from experiments.studies.goals import emit, parse_mean, read_rows


def steps_label(env_steps):
    """10000 -> '10k'; 100 -> '100'."""
    n = int(env_steps)
    return f"{n // 1000}k" if n and n % 1000 == 0 else str(n)


def success_columns(old, new):
    """The `success@N` columns both rows fill, in env-step order."""
    cols = [k for k in old if k.startswith("success@") and old[k] not in ("", "-")
            and new.get(k, "-") not in ("", "-")]
    return sorted(cols, key=lambda k: int(k.split("@")[1]))


def verdict(old, new):
    """'identical', or the first evaluation whose mean success differs
    ('first differs at 10k: 1.00 → 0.53')."""
    cols = success_columns(old, new)
    figures = cols + ["final_success", "best_success", "final_dense_return"]
    if all(old.get(k) == new.get(k) for k in figures):
        return "identical"
    for k in cols + ["final_success"]:
        a, b = parse_mean(old[k], k), parse_mean(new[k], k)
        if a != b:
            at = "the end" if k == "final_success" else steps_label(k.split("@")[1])
            return f"first differs at {at}: {a:.2f} → {b:.2f}"
    return "same success, other figures differ"


def compare(old_rows, new_rows):
    """[(cell, final old, final new, dense return old, new, verdict)], in the new order."""
    return [(cell, old_rows[cell]["final_success"], new["final_success"],
             old_rows[cell].get("final_dense_return", "-"), new.get("final_dense_return", "-"),
             verdict(old_rows[cell], new))
            for cell, new in new_rows.items() if cell in old_rows]


def to_markdown(rows):
    out = ["| cell | final success (old) | final success (new) | dense return (old) | "
           "dense return (new) | verdict |", "|---|---|---|---|---|---|"]
    out += ["| `" + r[0] + "` | " + " | ".join(r[1:]) + " |" for r in rows]
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", nargs="+", help="the first run's summary.csv files")
    parser.add_argument("--new", nargs="+", required=True, help="the rerun's summary.csv files")
    parser.add_argument("--out", default="", help="write the markdown table here")
    args = parser.parse_args(argv)
    emit("compare_summaries",
         lambda: to_markdown(compare(read_rows(args.old), read_rows(args.new))), args.out)


if __name__ == "__main__":
    main()
