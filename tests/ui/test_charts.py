"""The live training curve stays cheap to draw however long the run."""
from core.runs import events as ev
from ui.charts import MAX_CURVE_POINTS, bucket_means, training_curve


def steps(n: int) -> list[ev.Step]:
    return [ev.Step(step=i + 1, total_steps=n, epoch=0.0, loss=float(i % 10), learning_rate=1e-4, samples_per_s=1.0,
                    eta_s=0.0) for i in range(n)]


def curve(events: list[ev.Step]) -> tuple[list[int], list[float]]:
    return [e.step for e in events], [e.loss for e in events]


def test_short_runs_plot_every_step():
    x, y, size = bucket_means(*curve(steps(50)))
    assert (x, size) == (list(range(1, 51)), 1) and y[:3] == [0.0, 1.0, 2.0]


def test_long_runs_plot_bucket_means_ending_at_the_last_step():
    x, y, size = bucket_means(*curve(steps(10_000)))
    assert len(x) <= MAX_CURVE_POINTS and size == 34 and x[-1] == 10_000
    assert y[0] == sum(float(i % 10) for i in range(34)) / 34
    figure = training_curve(steps(10_000))
    assert len(figure.data[0].x) == len(x) and "mean of 34 steps" in figure.data[0].name
