"""What `python -m experiments.run` reports at its end: outputs, final success, times.

    summary = run_summary(workdir, summaries, total_seconds, task)  # a JSON-able dict
    print(format_summary(summary))                                  # the text on stdout
    record_summary(workdir, summary)   # the same dict as results.json's "run_summary"
                                       # (when this run trained the agent)

`summaries` is what `vidrl_jax.stages.run_pipeline` returns: each stage's summary, with
`wall_time_s` (the seconds it took when it was built) and `skipped: True` where this run
found it built for the same config.
"""
import json
import os

# (label, path inside the workdir) of the outputs a person opens first, in that order
OUTPUTS = (
    ("goal video", "goal/goal_video.gif"),
    ("goal frame", "select/goal_frame.png"),
    ("eval episode", "agent/eval_last.gif"),
    ("success curve", "success.png"),
    ("results", "results.json"),
    ("metrics", "metrics.jsonl"),
    ("tensorboard", "tb"),
)


def run_summary(workdir, summaries, total_seconds, task):
    """The run's summary: where its outputs are, each stage's time, the final success."""
    stages = {name: {"seconds": s.get("wall_time_s"), "skipped": bool(s.get("skipped"))}
              for name, s in summaries.items()}
    out = {
        "workdir": workdir,
        "task": task,
        "total_seconds": round(float(total_seconds), 1),
        "stages": stages,
        "outputs": {label: os.path.join(workdir, path) for label, path in OUTPUTS
                    if os.path.exists(os.path.join(workdir, path))},
        "tensorboard_command": f"tensorboard --logdir {os.path.join(workdir, 'tb')}",
    }
    agent = summaries.get("agent", {})
    for key in ("final_success_mean", "final_success_std", "best_success_mean", "env_steps"):
        if key in agent:
            out[key] = agent[key]
    return out


def duration(seconds):
    """3524.4 -> '58 min 44 s'; 12.3 -> '12 s'; 7322 -> '2 h 2 min'."""
    s = int(round(float(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def format_summary(summary):
    """The summary as lines a person reads at the end of the run."""
    lines = [f"vidrl_jax: {summary['task']} done in {duration(summary['total_seconds'])}, "
             f"outputs in {summary['workdir']}", "stages:"]
    width = max([len(n) for n in summary["stages"]] + [5])
    for name, stage in summary["stages"].items():
        took = duration(stage["seconds"]) if stage["seconds"] is not None else "-"
        text = f"skipped (built before in {took})" if stage["skipped"] else took
        lines.append(f"  {name:<{width}}  {text}")
    if "final_success_mean" in summary:
        lines.append(f"final eval success: {summary['final_success_mean']:.2f} ± "
                     f"{summary['final_success_std']:.2f} over seeds at "
                     f"{summary['env_steps']:,} env steps "
                     f"(best evaluation {summary['best_success_mean']:.2f})")
    if summary["outputs"]:
        lines.append("outputs:")
        width = max(len(label) for label in summary["outputs"])
        lines += [f"  {label:<{width}}  {path}" for label, path in summary["outputs"].items()]
    lines.append(f"open tensorboard: {summary['tensorboard_command']}")
    return "\n".join(lines)


def record_summary(workdir, summary):
    """Adds `summary` to `<workdir>/results.json` as "run_summary" (atomically) when this
    run trained the agent; a run that skipped or left out the agent stage leaves
    results.json as the run that trained it wrote it."""
    path = os.path.join(workdir, "results.json")
    agent = summary["stages"].get("agent")
    if agent is None or agent["skipped"] or not os.path.exists(path):
        return
    with open(path) as f:
        results = json.load(f)
    results["run_summary"] = summary
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, path)
