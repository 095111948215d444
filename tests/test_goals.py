"""The study tools on sweep summaries: the goal check (experiments.studies.goals), a
rerun against the first run (experiments.studies.compare_summaries) and the task x reward
table (experiments.studies.results_table)."""
import pytest

from experiments import sweep
from experiments.studies import compare_summaries, goals, results_table


def results(final):
    """A cell's results.json with per-seed final success rates `final`."""
    return {"seeds": list(range(len(final))), "final_success": final, "best_success": final,
            "success_curve": {"env_steps": [0, 100], "success": [[0.0] * len(final), final]},
            "env_steps": 100, "wall_time_s": 1.0, "final_returns": {"env_dense": [1.0]}}


def write_summary(path, finals):
    """A summary.csv exactly as experiments.sweep writes it: {(task, reward): finals}."""
    rows = [([("env.task", t), ("reward", r)], results(f)) for (t, r), f in finals.items()]
    path.write_text(sweep.summarize(rows)[1])
    return str(path)


def test_goals_met_missed_and_unreachable_across_files(tmp_path, capsys):
    row = write_summary(tmp_path / "row.csv", {
        ("a-v3", "dense"): [1.0, 0.8], ("a-v3", "sparse"): [0.2, 0.4],  # dense 0.9, sparse 0.3
        ("a-v3", "genreward"): [0.6, 0.8], ("a-v3", "genreward+dense"): [0.8, 0.8],
        ("b-v3", "dense"): [0.5, 0.5], ("b-v3", "sparse"): [0.9, 0.9],
        ("b-v3", "genreward"): [0.4, 0.6]})
    # the per-step arm: other fields in the cell name, baselines from the first file
    arm = write_summary(tmp_path / "arm.csv", {("a-v3", "genreward+dense_video_form=progress"):
                                               [1.0, 1.0]})
    goals.main([row, arm, "--out", str(tmp_path / "goals.md")])
    out = capsys.readouterr().out
    assert (tmp_path / "goals.md").read_text() == out
    lines = out.splitlines()
    assert "| a-v3 | `genreward` | 0.70 | ≥ sparse + 0.3 | 0.60 | met (+0.10) |" in lines
    assert "| a-v3 | `genreward` | 0.70 | ≥ 0.8 × dense | 0.72 | **missed by 0.02** |" in lines
    assert "| a-v3 | `genreward+dense` | 0.80 | ≥ dense | 0.90 | **missed by 0.10** |" in lines
    assert ("| a-v3 | `genreward+dense (video_form=progress)` | 1.00 | ≥ dense | 0.90 "
            "| met (+0.10) |") in lines
    assert ("| b-v3 | `genreward` | 0.50 | ≥ sparse + 0.3 | 1.20 "
            "| missed by 0.70: unreachable (target > 1) |") in lines
    assert "| b-v3 | `genreward` | 0.50 | ≥ 0.8 × dense | 0.40 | met (+0.10) |" in lines
    # grouped by task: every a-v3 line before any b-v3 line
    tasks = [l.split(" | ")[0] for l in lines[2:]]
    assert tasks == sorted(tasks) and len(lines) == 2 + 6


def test_goals_name_a_missing_baseline_and_reject_other_files(tmp_path):
    only = write_summary(tmp_path / "s.csv", {("a-v3", "genreward"): [0.5]})
    lines = goals.to_markdown(goals.check(goals.read_cells([only]))).splitlines()
    assert lines[2].endswith("| ≥ sparse + 0.3 | - | no `sparse` cell |")
    assert lines[3].endswith("| ≥ 0.8 × dense | - | no `dense` cell |")
    bad = tmp_path / "terms.csv"
    bad.write_text("cell,term,mean,std\ntask=a-v3_reward=genreward,frame,1,2\n")
    with pytest.raises(SystemExit, match="no 'cell' and 'final_success' columns"):
        goals.main([str(bad)])
    with pytest.raises(SystemExit, match="no genreward or genreward\\+dense cell"):
        goals.main([write_summary(tmp_path / "d.csv", {("a-v3", "dense"): [1.0]})])
    with pytest.raises(SystemExit, match="missing.csv"):
        goals.main([str(tmp_path / "missing.csv")])


def test_a_rerun_compares_identical_or_names_its_first_differing_evaluation(tmp_path):
    def summary(name, curves):
        """{cell reward: per-evaluation success per seed, at 0, 100, 200 env steps}."""
        rows = [([("env.task", "a-v3"), ("reward", r)],
                 dict(results(c[-1]), success_curve={"env_steps": [0, 100, 200], "success": c}))
                for r, c in curves.items()]
        (tmp_path / name).write_text(sweep.summarize(rows)[1])
        return str(tmp_path / name)
    start, mid = [0.0, 0.0], [0.5, 1.0]
    old = summary("old.csv", {"dense": [start, mid, [1.0, 1.0]],
                              "genreward": [start, mid, [0.5, 0.5]],
                              "sparse": [start, mid, [1.0, 1.0]]})
    new = summary("new.csv", {"dense": [start, mid, [1.0, 1.0]],
                              "genreward": [start, [0.0, 1.0], [0.5, 0.5]],
                              "genreward+dense": [start, mid, [1.0, 1.0]]})  # not in old
    out = tmp_path / "compare.md"
    compare_summaries.main([old, "--new", new, "--out", str(out)])
    lines = out.read_text().splitlines()
    assert len(lines) == 2 + 2                      # sparse not rerun, genreward+dense new
    assert lines[2].startswith("| `task=a-v3_reward=dense` | 1.00 ± 0.00 | 1.00 ± 0.00 |")
    assert lines[2].endswith("| identical |")
    assert lines[3].endswith("| first differs at 100: 0.75 → 0.50 |")
    with pytest.raises(SystemExit, match="no 'cell' and 'final_success' columns"):
        compare_summaries.main([old, "--new", str(tmp_path / "compare.md")])


def test_results_table_puts_each_task_in_a_row_and_each_reward_variant_in_a_column(tmp_path):
    row = write_summary(tmp_path / "row.csv", {("a-v3", "dense"): [1.0, 0.8],
                                               ("b-v3", "dense"): [0.5, 0.5],
                                               ("b-v3", "sparse"): [0.0, 0.2]})
    arm = write_summary(tmp_path / "arm.csv", {("a-v3", "genreward_video_form=progress"):
                                               [1.0, 0.0]})
    out = tmp_path / "table.md"
    results_table.main([row, arm, "--out", str(out)])
    lines = out.read_text().splitlines()
    assert lines[0] == "| task | `dense` | `sparse` | `genreward (video_form=progress)` |"
    assert lines[2] == ("| a-v3 (100) | **0.90 ± 0.10** (best 0.90, dense return 1 ± 0) | - "
                        "| **0.50 ± 0.50** (best 0.50, dense return 1 ± 0) |")
    assert lines[3].startswith("| b-v3 (100) | **0.50 ± 0.00** (best 0.50,")
    assert lines[3].endswith("| **0.10 ± 0.10** (best 0.10, dense return 1 ± 0) | - |")
    results_table.main([row, arm, "--out", str(out), "--final_only"])  # the README's table
    assert out.read_text().splitlines()[2] == "| a-v3 (100) | 0.90 ± 0.10 | - | 0.50 ± 0.50 |"
    with pytest.raises(SystemExit, match="expected task=TASK_reward=REWARD"):
        bad = tmp_path / "bad.csv"
        bad.write_text("cell,final_success\nno_task_here,0.5 ± 0.0\n")
        results_table.main([str(bad)])
