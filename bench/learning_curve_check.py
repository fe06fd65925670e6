"""Does the learning curve extrapolate? Train a sample at 100% of its training rows and at 12.5/25/37.5/50%, fit the
power law on the small shares only, predict the 100% score and compare with the real one (app defaults, 2 seeds).

    python -m bench.learning_curve_check [--sample tweet_sentiment] [--seeds 2]
"""
from __future__ import annotations

import argparse
import tempfile

from core.data.samples import sample_path
from core.insight.learning_curve import LearningCurve, Point
from core.runs.run_folder import RunFolder
from core.runs.store import RunStore
from core.tasks import get_task
from core.train import service
from core.train.learning_curve import curve_jobs

SHARES = (0.125, 0.25, 0.375, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", default="tweet_sentiment")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as runs:
            store = RunStore(runs)
            job, _ = service.train(service.plan_run(sample_path(args.sample), {"seed": seed}), store)
            task, folder = get_task(job.config.task), RunFolder(job.run_dir)
            metric = task.primary_metric
            points = []
            for share in curve_jobs(job.run_dir, store, shares=SHARES):
                outcome = service.train_job(share)
                points.append(Point(RunFolder(outcome.run_dir).data()["train_rows"], outcome.metrics[metric]))
            curve = LearningCurve(metric, task.metric_name(metric), task.greater_is_better, tuple(points))
            rows, real = folder.data()["train_rows"], folder.metrics()[metric]
            centre, low, high = curve.predict(rows)
            shown = ", ".join(f"{p.rows}: {p.score:.3f}" for p in points)
            print(f"{args.sample} seed {seed}: shares {shown}; predicted at {rows} rows {centre:.3f} ({low:.3f}-"
                  f"{high:.3f}), real {real:.3f}, error {centre - real:+.3f}, inside the interval: {low <= real <= high}")


if __name__ == "__main__":
    main()
