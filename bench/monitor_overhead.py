"""The monitor's cost and its alarms, on the default model fine-tuned with the app's defaults.

1. The prediction server with the monitor off (--no-monitor) and on (request log in SQLite, the default), each
   offered 100 requests/s by 50 clients, then saturated: req/s and p50/p95 latency, on/off as ratios.
2. False alarms: windows of 100 predictions drawn from the run's own validation rows, against the validation
   reference; then windows of other samples (other topics, another language), which should all alarm.

    python -m bench.monitor_overhead [--sample tweet_sentiment] [--load-seconds 20]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

from bench.export_speed import serve_and_load
from core.data.samples import SAMPLES, sample_path
from core.data.tables import read_table
from core.deploy.monitoring.drift import compare
from core.deploy.monitoring.observe import observe
from core.deploy.monitoring.reference import Reference
from core.deploy.predict import Predictor
from core.runs.run_folder import RunFolder
from core.runs.store import RunStore
from core.train.service import plan_run, train

WINDOW, WINDOWS = 100, 50


def alarm_rates(run_dir: Path, others: list[str]) -> dict:
    predictor = Predictor(run_dir)
    rows = {"text": RunFolder(run_dir).predictions()["text"].tolist()}
    observed = observe(predictor.tokenizer, predictor.task.output, rows, predictor.predict(rows))
    reference, rng = Reference.of(predictor.task.output, observed), random.Random(0)
    windows = [compare(reference, [rng.choice(observed) for _ in range(WINDOW)]) for _ in range(WINDOWS)]
    found = {"validation windows": {"windows": WINDOWS, "checks": sum(map(len, windows)),
                                    "windows alarmed": sum(any(c.drifted for c in w) for w in windows)}}
    for other in others:
        texts = read_table(sample_path(other))["text"].astype(str).tolist()
        alarmed, drifted = 0, set()
        for _ in range(10):
            chosen = {"text": rng.sample(texts, WINDOW)}
            checks = compare(reference, observe(predictor.tokenizer, predictor.task.output, chosen,
                                                predictor.predict(chosen)))
            alarmed += any(c.drifted for c in checks)
            drifted |= {c.name for c in checks if c.drifted}
        found[f"{other} windows"] = {"windows": 10, "windows alarmed": alarmed, "features": sorted(drifted)}
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", default="tweet_sentiment")
    parser.add_argument("--others", nargs="+", default=["bbc_news", "chinese_reviews"])
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--run", default=None, help="a finished run folder to serve instead of training one")
    args = parser.parse_args(argv)
    store = RunStore(Path(tempfile.mkdtemp(prefix="bench-monitor-")))
    if args.run:
        run_dir = Path(shutil.copytree(args.run, store.root / Path(args.run).name))
    else:
        plan = plan_run(sample_path(args.sample), data_name=args.sample)  # the app's default settings
        run_dir = train(plan, store)[0].run_dir
    print(f"{run_dir.name}: {RunFolder(run_dir).metrics().get('macro_f1')}", flush=True)
    texts = [t[:300] for t in read_table(sample_path(args.sample))["text"].astype(str)]
    results = {"off": serve_and_load(run_dir, texts, args.load_seconds, ("--no-monitor",)),
               "on": serve_and_load(run_dir, texts, args.load_seconds)}
    for load in ("offered_100_per_s", "saturation"):
        off, on = results["off"][load], results["on"][load]
        print(f"{load}: off {off['req_s']:.1f} req/s p50 {off['p50_ms']:.1f} p95 {off['p95_ms']:.1f} ms | "
              f"on {on['req_s']:.1f} req/s p50 {on['p50_ms']:.1f} p95 {on['p95_ms']:.1f} ms | "
              f"on/off req/s {on['req_s'] / off['req_s']:.3f}, p95 {on['p95_ms'] / off['p95_ms']:.3f}, "
              f"errors {off['errors']}/{on['errors']}")
    print(json.dumps(alarm_rates(run_dir, [o for o in args.others if o in SAMPLES]), indent=1))
    shutil.rmtree(store.root, ignore_errors=True)


if __name__ == "__main__":
    main()
