"""How long the data-quality report takes on the full tweet corpus (38k rows), as the Data tab runs it.

    python -m bench.quality_speed [--repeat 3]

The first report of a process also loads every registered tokenizer (the Data tab has loaded them already for
its model suggestion when a user presses the button); later reports reuse them. Printed: rows, each report's
seconds, the share of that time per stage, and what it found.
"""
from __future__ import annotations

import argparse
import time

from core.data.dedup import row_keys
from core.data.samples import SAMPLES
from core.insight import quality
from core.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    task = get_task("classification")
    started = time.time()
    data = task.prepare(SAMPLES["tweet_sentiment"].build())
    print(f"tweets: {len(data):,} rows read and prepared in {time.time() - started:.1f} s")
    started = time.time()
    suggestion = task.modality.suggest(task, data)
    print(f"model suggestion (loads the tokenizers, done by the Data tab on upload): {time.time() - started:.1f} s")
    for attempt in range(args.repeat):
        report = quality.inspect(task, data, suggestion=suggestion)
        print(f"report {attempt + 1}: {report.seconds:.2f} s")
    keys = row_keys(data)
    for name, stage in (("row keys", lambda: row_keys(data)), ("near pairs (MinHash LSH)",
                        lambda: quality.near_pairs(sorted(set(keys)))),
                        ("lengths", lambda: quality.truncation_finding(task, data, suggestion.model, 128))):
        started = time.time()
        stage()
        print(f"  {name}: {time.time() - started:.2f} s")
    for finding in report.findings:
        print(f"  {finding.key}: {finding.count:,}")


if __name__ == "__main__":
    main()
