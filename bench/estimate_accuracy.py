"""The time estimate shown before Start against the real run, on a quiet machine: the short speed test and the
run share one load here, which a CI machine shared with other work cannot promise (the browser tests hold the
estimate only to a factor of 3).

    python -m bench.estimate_accuracy [--cases bbc_news:Fast,sentiment_scores:Fast] [--out bench/out/estimate.json]

For each sample and preset: plan the run as the app does (task detected, model suggested), measure this machine
with the app's short test, estimate, train for real and report estimated / taken. Target: within +-50%.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from core.data.samples import build_sample
from core.runs import events as ev
from core.runs.config import PRESETS
from core.runs.store import RunStore
from core.train import service
from core.train.estimate import SpeedBook, estimate


def one(sample: str, preset: str, folder: Path) -> dict:
    plan = service.plan_run(build_sample(sample), PRESETS[preset])
    book = SpeedBook(folder / "speeds")
    speed = book.measure(plan.config, plan.data)
    said = estimate(plan.config, plan.data, speed).seconds
    job = service.make_job(plan, RunStore(folder / "runs"))
    final = service.train_job(job)
    took = final.time - job.events.since(0)[0].time
    return dict(sample=sample, preset=preset, model=plan.config.base_model, rows=len(plan.data),
                finished=isinstance(final, ev.Finished), estimated_s=round(said, 1), took_s=round(took, 1),
                ratio=round(said / took, 2), within_50_percent=0.5 * took <= said <= 1.5 * took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="bbc_news:Fast,sentiment_scores:Fast")
    parser.add_argument("--out", default="bench/out/estimate.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sft-estimate-") as folder:
        for case in args.cases.split(","):
            sample, preset = case.split(":")
            rows.append(one(sample, preset, Path(folder) / sample))
            print(json.dumps(rows[-1]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(f"within +-50%: {sum(r['within_50_percent'] for r in rows)} of {len(rows)}")


if __name__ == "__main__":
    main()
