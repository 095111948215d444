"""The summary `python -m experiments.run` prints at its end and adds to results.json
(vidrl_jax/run_summary.py), on stage summaries as run_pipeline returns them."""
import json
import os

from vidrl_jax.run_summary import duration, format_summary, record_summary, run_summary


def summaries():
    """run_pipeline's return for a run that found the video stages built and trained
    the agent."""
    built = {"wall_time_s": 869.4, "skipped": True}
    return {"demos": {"wall_time_s": 77.0, "skipped": True}, "autoencoder": built,
            "diffusion": {"wall_time_s": 297.0, "skipped": True},
            "goal": {"wall_time_s": 12.2, "skipped": True},
            "select": {"wall_time_s": 1.0, "skipped": True},
            "agent": {"wall_time_s": 2266.0, "final_success_mean": 1 / 3,
                      "final_success_std": 0.4714, "best_success_mean": 0.4,
                      "env_steps": 100000}}


def workdir_with_outputs(tmp_path):
    for path in ("goal/goal_video.gif", "agent/eval_last.gif", "success.png"):
        os.makedirs(os.path.dirname(tmp_path / path) or tmp_path, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    os.makedirs(tmp_path / "tb")
    (tmp_path / "results.json").write_text(json.dumps({"env_steps": 100000}))
    return str(tmp_path)


def test_duration_reads_as_a_person_writes_it():
    assert duration(12.3) == "12 s"
    assert duration(3524.4) == "58 min 44 s"
    assert duration(7322) == "2 h 2 min"


def test_the_summary_names_outputs_success_stage_times_and_the_tensorboard_command(tmp_path):
    workdir = workdir_with_outputs(tmp_path)
    summary = run_summary(workdir, summaries(), 2301.4, "door-open-v3")
    text = format_summary(summary)
    assert text.splitlines()[0] == (f"vidrl_jax: door-open-v3 done in 38 min 21 s, outputs "
                                    f"in {workdir}")
    assert "  agent        37 min 46 s" in text
    assert "  autoencoder  skipped (built before in 14 min 29 s)" in text
    assert ("final eval success: 0.33 ± 0.47 over seeds at 100,000 env steps "
            "(best evaluation 0.40)") in text
    for label, path in [("goal video", "goal/goal_video.gif"),
                        ("eval episode", "agent/eval_last.gif"), ("tensorboard", "tb")]:
        assert f"{label}" in text and os.path.join(workdir, path) in text
    assert "goal frame" not in text  # outputs that do not exist are left out
    assert text.splitlines()[-1] == f"open tensorboard: tensorboard --logdir {workdir}/tb"


def test_results_json_gets_the_same_numbers_only_when_the_agent_ran(tmp_path):
    workdir = workdir_with_outputs(tmp_path)
    summary = run_summary(workdir, summaries(), 2301.4, "door-open-v3")
    record_summary(workdir, summary)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["env_steps"] == 100000  # the agent's record is kept
    assert results["run_summary"] == json.loads(json.dumps(summary))
    assert results["run_summary"]["stages"]["agent"] == {"seconds": 2266.0, "skipped": False}
    assert results["run_summary"]["final_success_mean"] == 1 / 3

    # a later run that skips the agent stage leaves the training run's summary
    again = dict(summaries(), agent=dict(summaries()["agent"], skipped=True))
    record_summary(workdir, run_summary(workdir, again, 3.0, "door-open-v3"))
    assert json.loads((tmp_path / "results.json").read_text())["run_summary"] == \
        results["run_summary"]


def test_a_run_without_the_agent_stage_reports_no_success_and_writes_no_results(tmp_path):
    summary = run_summary(str(tmp_path), {"demos": {"wall_time_s": 8.0}}, 9.0, "door-open-v3")
    text = format_summary(summary)
    assert "final eval success" not in text and "  demos  8 s" in text
    record_summary(str(tmp_path), summary)
    assert not (tmp_path / "results.json").exists()
