"""Sweeps: grid cells, their commands, shared stages built once, the summary table."""
import json
import types

import pytest

from configs import metaworld
from experiments import sweep
from vidrl_jax import stages


def test_cells_and_commands():
    grid = sweep.parse_grid(["reward=sparse,genreward", "env.task=door-open-v3,drawer-open-v3"])
    cells = list(sweep.cells(grid))
    assert len(cells) == 4
    cmd = sweep.cell_command("configs/metaworld.py:smoke", cells[1], ["seeds=3"], "W/c", "W/shared")
    assert "--config=configs/metaworld.py:smoke,sparse" in cmd
    assert "--config.env.task=drawer-open-v3" in cmd and "--config.seeds=3" in cmd
    assert "--shared_dir=W/shared" in cmd
    assert sweep.cell_name(cells[1]) == "reward=sparse_task=drawer-open-v3"


def test_set_for_sets_a_field_only_in_the_cells_with_that_value(tmp_path, capsys):
    sweep.main(["--grid", "env.task=door-open-v3,drawer-close-v3", "--grid", "reward=dense",
                "--set", "agent.total_steps=50", "--workdir", str(tmp_path), "--dry_run",
                "--set_for", "env.task=door-open-v3:agent.total_steps=100"])
    door, drawer = capsys.readouterr().out.splitlines()  # the commands, nothing else
    # the last override wins (absl config flags), so the cell's own budget follows --set
    assert door.endswith("--config.agent.total_steps=50 --config.agent.total_steps=100")
    assert drawer.endswith("--config.agent.total_steps=50")
    for bad in (["--set_for", "env.task=x"], ["--set_for", "seed=1:agent.lr=1"]):
        with pytest.raises(SystemExit, match="--set_for"):
            sweep.main(["--grid", "env.task=x", "--workdir", str(tmp_path), *bad])


def test_shared_stages_are_built_once_across_cells(tmp_path, monkeypatch):
    calls = []

    def fake(name):
        depends = ("env",) if name == "demos" else ("env", "reward")
        return types.SimpleNamespace(DEPENDS=depends,
                                     run=lambda config, ctx: calls.append((name, ctx.stage_dir)))
    monkeypatch.setattr(stages, "stage_module", fake)
    shared = str(tmp_path / "shared")
    for variant in ("sparse", "dense"):
        c = metaworld.get_config(f"smoke,{variant}")
        stages.run_pipeline(c, str(tmp_path / variant), stages=["demos", "agent"],
                            shared_dir=shared)
    assert [n for n, _ in calls] == ["demos", "agent", "agent"]  # demos reused by cell 2
    assert (tmp_path / "dense" / "demos").is_symlink()
    assert stages.is_done(str(tmp_path / "dense" / "demos"))


def test_shared_stage_recorded_before_a_field_was_added_is_reused(tmp_path, monkeypatch):
    calls = []
    module = types.SimpleNamespace(DEPENDS=("diffusion",),
                                   run=lambda config, ctx: calls.append(ctx.stage_dir))
    monkeypatch.setattr(stages, "stage_module", lambda name: module)
    monkeypatch.setitem(stages.ADDED_FIELDS, "diffusion", {"text": "table"})
    config = metaworld.get_config("smoke")
    shared = tmp_path / "shared"
    stages.run_pipeline(config, str(tmp_path / "a"), stages=["diffusion"], shared_dir=str(shared))
    # As written before diffusion.text existed: without the field, under another hash.
    [made] = shared.iterdir()
    old_copy = made.rename(shared / "diffusion-0123456789ab")
    recorded = old_copy / stages.CONFIG_FILE
    old = json.loads(recorded.read_text())
    del old["diffusion"]["text"]
    recorded.write_text(json.dumps(old))
    stages.run_pipeline(config, str(tmp_path / "b"), stages=["diffusion"], shared_dir=str(shared))
    assert len(calls) == 1, "the older copy was not reused"
    assert (tmp_path / "b" / "diffusion").resolve() == old_copy.resolve()
    assert json.loads(recorded.read_text()) == old  # left as it was
    config.diffusion.text = "words"  # a real change still builds a new copy
    stages.run_pipeline(config, str(tmp_path / "c"), stages=["diffusion"], shared_dir=str(shared))
    assert len(calls) == 2 and len(list(shared.iterdir())) == 2


def test_summary_table():
    r = {"seeds": [0, 1], "final_success": [0.0, 1.0], "best_success": [1.0, 1.0],
         "success_curve": {"env_steps": [0, 50, 100],
                           "success": [[0.0, 0.0], [1.0, 0.5], [0.0, 1.0]]},
         "env_steps": 100, "wall_time_s": 12.0,
         "final_returns": {"env_dense": [100.0, 300.0]}}
    other = dict(r, success_curve={"env_steps": [0, 100], "success": [[0.0, 0.0], [0.0, 1.0]]})
    md, csv = sweep.summarize([([("reward", "sparse")], r), ([("reward", "dense")], other)])
    assert ("| cell | seeds | success@0 | success@50 | success@100 | final_success |"
            in md.splitlines()[0])
    assert ("| reward=sparse | 2 | 0.00 ± 0.00 | 0.75 ± 0.25 | 0.50 ± 0.50 | 0.50 ± 0.50 "
            "| 1.00 ± 0.00 | 200 ± 100 | 100 | 12 |") in md
    assert "| reward=dense | 2 | 0.00 ± 0.00 | - | 0.50 ± 0.50 |" in md  # no eval at 50
    assert csv.splitlines()[1].startswith("reward=sparse,2,")


def test_summary_terms_lists_each_terms_running_scale_per_cell():
    r = {"final_returns": {"video": [-200.0, -100.0], "frame": [3e4, 5e4]},
         "reward_running": {"video": {"mean": -1.07, "std": 0.081},
                            "frame": {"mean": 96.2, "std": 88.35}}}
    lines = sweep.summarize_terms([([("reward", "genreward")], r),
                                   ([("reward", "sparse")], {"final_returns": {}})])
    assert lines.splitlines() == [
        "cell,term,running_mean,running_std,final_eval_return",
        "reward=genreward,video,-1.07,0.081,-150",
        "reward=genreward,frame,96.2,88.35,4e+04"]


def test_summary_plot_groups_cells_by_task(tmp_path):
    def results(success):
        return {"success_curve": {"env_steps": [0, 100], "success": success}}
    rows = [([("env.task", t), ("reward", r)], results([[0.0, 0.0], [v, 1.0]]))
            for t in ("a", "b") for r, v in (("sparse", 0.0), ("dense", 0.5))]
    panels = sweep.curves_by_panel(rows)
    assert sorted(panels) == ["task=a", "task=b"]
    [(label, x, mean, std), _] = panels["task=a"]
    assert (label, x) == ("reward=sparse", [0, 100])
    assert list(mean) == [0.0, 0.5] and list(std) == [0.0, 0.5]
    path = str(tmp_path / "summary.png")
    sweep.plot_summary(rows, path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_term_curves_keep_the_last_value_of_a_step_logged_twice_and_plot(tmp_path):
    lines = [{"step": 0, "agent/eval/success": 0.0},
             {"step": 1000, "agent/reward_running/frame_std": 2.0,
              "agent/reward_running/frame_mean": 1.0, "agent/reward_running/video_std": 0.1},
             {"step": 2000, "agent/reward_running/frame_std": 9.0},
             {"step": 1000, "agent/reward_running/frame_std": 3.0},  # resumed from step 1000
             {"step": 2000, "agent/reward_running/frame_std": 4.0,
              "agent/eval/success": 0.5}]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in lines))
    terms, success = sweep.term_curves(str(path))
    assert terms == {"frame": ([1000, 2000], [3.0, 4.0]), "video": ([1000], [0.1])}
    assert success == ([0, 2000], [0.0, 0.5])
    png = str(tmp_path / "summary_terms.png")
    sweep.plot_terms([("reward=genreward", str(path), None)] * 5, png)  # 2 rows of panels
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


FINISHED = {"seeds": [0], "final_success": [1.0], "best_success": [1.0],
            "success_curve": {"env_steps": [0, 10], "success": [[0.0], [1.0]]},
            "env_steps": 10, "wall_time_s": 3.0, "final_returns": {"env_dense": [5.0]},
            "reward_running": {"env_dense": {"mean": 0.5, "std": 0.25}}}


def test_finished_only_summarises_finished_cells_and_runs_nothing(tmp_path, monkeypatch):
    r = FINISHED
    (tmp_path / "reward=dense").mkdir()
    (tmp_path / "reward=dense" / "results.json").write_text(json.dumps(r))
    (tmp_path / "reward=dense" / "metrics.jsonl").write_text(
        json.dumps({"step": 10, "agent/reward_running/env_dense_std": 0.25}) + "\n")
    monkeypatch.setattr(sweep.subprocess, "run", lambda *a, **k: 1 / 0)  # runs nothing
    sweep.main(["--grid", "reward=dense,sparse", "--workdir", str(tmp_path), "--finished_only"])
    rows = (tmp_path / "summary.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("reward=dense,1,0.00 ± 0.00,1.00 ± 0.00,")
    assert (tmp_path / "summary_terms.csv").read_text().splitlines()[1] == \
        "reward=dense,env_dense,0.5,0.25,5"
    assert (tmp_path / "summary_terms.png").exists()


def test_a_finished_cell_is_run_again_when_the_command_changes_a_field(tmp_path, monkeypatch,
                                                                      capsys):
    """Its results.json records its config: the same values (in other spellings) skip
    the cell; a raised agent.total_steps runs it again (experiments.run goes on from its
    checkpoint), and --finished_only leaves it out, naming the field."""
    recorded = {"agent": {"total_steps": 50, "lr": 3e-4, "hidden": [64, 64],
                          "overlap_env": False}, "env": {"task": "door-open-v3"}}
    (tmp_path / "task=door-open-v3").mkdir()
    (tmp_path / "task=door-open-v3" / "results.json").write_text(
        json.dumps({**FINISHED, "config": recorded}))
    ran = []
    monkeypatch.setattr(sweep.subprocess, "run",
                        lambda cmd: ran.append(cmd) or types.SimpleNamespace(returncode=1))
    same = ["--set", "agent.lr=0.0003", "--set", "agent.hidden=(64,64)",
            "--set", "agent.overlap_env=False", "--set", "agent.total_steps=50"]
    args = ["--grid", "env.task=door-open-v3", "--workdir", str(tmp_path)]
    sweep.main(args + ["--set", "agent.total_steps=100"] + same)  # the last setting wins
    assert not ran and "task=door-open-v3: finished, skipped" in capsys.readouterr().out
    sweep.main(args + same + ["--set", "agent.total_steps=100", "--finished_only"])
    assert not ran and "finished with another config (agent.total_steps: 50, now 100), " \
        "left out" in capsys.readouterr().out
    sweep.main(args + same + ["--set", "agent.total_steps=100"])
    assert len(ran) == 1 and ran[0][-1] == "--config.agent.total_steps=100"
    assert sweep.changed_fields(recorded, [("env.task", "door-open-v3")],
                                ["agent.lr=1e-3", "agent.tau=0.01", "agent.hidden=64"]) == [
        "agent.lr: 0.0003, now 1e-3", "agent.tau: <unset>, now 0.01", "agent.hidden: [64, 64], now 64"]


def test_records_keep_finished_cells_for_a_fresh_machine(tmp_path, monkeypatch, capsys):
    """--records: a finished cell's results.json and metrics.jsonl are kept in
    DIR/<cell>/; a fresh workdir takes them from there and skips the cell, unless the
    command now sets another value (then it runs, the record not restored)."""
    config = {"agent": {"total_steps": 10}, "env": {"task": "door-open-v3"}}
    lost, records = tmp_path / "lost", tmp_path / "records"
    (lost / "task=door-open-v3").mkdir(parents=True)
    (lost / "task=door-open-v3" / "results.json").write_text(
        json.dumps({**FINISHED, "config": config}))
    (lost / "task=door-open-v3" / "metrics.jsonl").write_text(
        json.dumps({"step": 10, "agent/reward_running/env_dense_std": 0.25}) + "\n")
    ran = []
    monkeypatch.setattr(sweep.subprocess, "run",
                        lambda cmd: ran.append(cmd) or types.SimpleNamespace(returncode=1))
    args = ["--grid", "env.task=door-open-v3,drawer-close-v3", "--set", "agent.total_steps=10",
            "--records", str(records)]
    sweep.main(args + ["--workdir", str(lost)])
    kept = records / "task=door-open-v3"
    assert sorted(p.name for p in kept.iterdir()) == ["metrics.jsonl", "results.json"]
    # a finished cell being extended logs past its results.json: its record stops there
    with open(lost / "task=door-open-v3" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 12, "agent/reward_running/env_dense_std": 9.0}) + "\n")
    sweep.copy_record(str(lost / "task=door-open-v3"), str(kept))
    assert [json.loads(x)["step"] for x in (kept / "metrics.jsonl").read_text().splitlines()] \
        == [10]
    terms, _ = sweep.term_curves(str(lost / "task=door-open-v3" / "metrics.jsonl"), up_to=10)
    assert terms == {"env_dense": ([10], [0.25])}
    assert not (records / "task=drawer-close-v3").exists()  # unfinished: nothing kept
    assert len(ran) == 1 and "drawer-close-v3" in " ".join(ran[0])
    fresh = tmp_path / "fresh"
    ran.clear()
    sweep.main(args + ["--workdir", str(fresh)])
    out = capsys.readouterr().out
    assert "task=door-open-v3: record restored from" in out
    assert "task=door-open-v3: finished, skipped" in out
    assert len(ran) == 1 and "drawer-close-v3" in " ".join(ran[0])
    assert (fresh / "task=door-open-v3" / "metrics.jsonl").read_text() == \
        (kept / "metrics.jsonl").read_text()
    assert (fresh / "summary.csv").read_text().splitlines()[1].startswith("task=door-open-v3,1,")
    other = tmp_path / "other"
    ran.clear()
    sweep.main(["--grid", "env.task=door-open-v3", "--set", "agent.total_steps=20",
                "--records", str(records), "--workdir", str(other)])
    assert "has another config (agent.total_steps: 10, now 20): not restored" in \
        capsys.readouterr().out
    assert len(ran) == 1 and not (other / "task=door-open-v3" / "results.json").exists()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit, match="--records=.*a_file: not a folder"):
        sweep.main(args[:-1] + [str(tmp_path / "a_file"), "--workdir", str(fresh)])


def test_a_sweep_of_stages_without_the_agent_ends_without_results(tmp_path, monkeypatch, capsys):
    """--stages=goal (e.g. to sample goal videos for later): the cells run and have no
    results.json; the sweep ends cleanly, with nothing to summarise."""
    ran = []
    monkeypatch.setattr(sweep.subprocess, "run",
                        lambda cmd: ran.append(cmd) or types.SimpleNamespace(returncode=0))
    sweep.main(["--grid", "env.task=door-open-v3,drawer-open-v3", "--stages", "goal",
                "--workdir", str(tmp_path)])
    assert len(ran) == 2 and all("--stages=goal" in cmd for cmd in ran)
    assert not (tmp_path / "summary.csv").exists()
