"""experiments/studies/make_figures: the README's figures from committed results (the
parts that need no rendering; the real demos are rendered by the command itself)."""
import numpy as np

from experiments.studies import make_figures


def test_success_curves_read_every_task_and_reward_of_the_committed_table(tmp_path):
    curves = make_figures.summary_curves(["experiments/results/metaworld.csv",
                                          "experiments/results/metaworld_perstep.csv"])
    for task in make_figures.TASKS:
        for key, *_ in make_figures.CURVES:
            steps, mean, std = curves[task, key]
            assert steps[0] == 0 and len(steps) == len(mean) == len(std) >= 6
            assert np.all((0 <= mean) & (mean <= 1)) and np.all(std >= 0)
    assert curves["door-open-v3", "dense"][0][-1] == 100000
    assert curves["drawer-close-v3", "dense"][1][-1] == 1.0
    make_figures.plot_success(curves, str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_goal_videos_sit_beside_the_demos_upscaled_with_white_gaps():
    goals = make_figures.kept_goal_videos()
    assert set(make_figures.TASKS) <= set(goals)
    generated = goals["door-open-v3"]
    assert generated.shape == (17, 32, 32, 3) and generated.dtype == np.uint8
    real = np.zeros_like(generated)
    video = make_figures.side_by_side([(generated, real)] * 2, scale=4, gap=4)
    assert video.shape == (17, 2 * 128 + 4, 2 * 128 + 4, 3)
    np.testing.assert_array_equal(video[:, :128, :128], make_figures.upscale(generated, 4))
    assert (video[:, :, 128:132] == 255).all() and (video[:, 128:132] == 255).all()


def test_gates_figure_reads_every_task_and_reward_of_the_committed_gates(tmp_path):
    aucs = make_figures.gate_aucs()
    for prefix, *_ in make_figures.GATES:
        for task in make_figures.GATE_TASKS:
            assert all(0.0 <= v <= 1.0 for v in aucs[prefix, task].values())
    assert aucs["gates_progress_net", "door-open-v3"]["auc_undone"] >= 0.9
    make_figures.plot_gates(aucs, str(tmp_path / "gates.png"))
    assert (tmp_path / "gates.png").stat().st_size > 10_000
