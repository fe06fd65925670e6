"""The few-shot mode against the plain fine-tune and TF-IDF + logistic regression, with k training rows per class.

Each table has k + k/4 rows per class, so the run's 20% validation split leaves exactly k training rows per class.
All three methods are scored on the same held-out rows (``--test-rows`` per class, never trained or validated on),
with macro-F1 and wall time: the plain fine-tune (few_shot "off", the app's defaults), the few-shot mode (few_shot
"on") and the app's classical baseline fitted on the run's training rows. Results are appended to ``--out`` as JSON
lines as they come; a bench started again skips the tables already there. The table is printed from that file.

    python -m bench.few_shot [--seeds 2] [--k 8 16 32 64] [--zh-k 8 32] [--out bench/out/few_shot.jsonl]
    python -m bench.few_shot --table bench/out/few_shot.jsonl
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from core.data.samples import build_sample
from core.deploy.predict import Predictor
from core.runs.store import RunStore
from core.tasks import get_task
from core.tasks.metrics import classification_metrics
from core.tasks.rows import held_out
from core.train import service

DATASETS = {"tweets": ("tweet_sentiment", "all-MiniLM-L6-v2"), "chinese": ("chinese_reviews", "multilingual-e5-small")}
METHODS = ("off", "on", "tfidf")  # plain fine-tune, few-shot mode, TF-IDF + logistic regression


def split_rows(sample: str, test_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the held-out rows: ``test_rows`` per class, the same for every seed and k; the rest, to draw tables from)."""
    frame = build_sample(sample, 1000, seed=0)
    test = frame.groupby("label").head(test_rows)
    return test, frame.drop(test.index)


def macro_f1(truth: list[str], predicted: list[str]) -> float:
    names = sorted(set(truth) | set(predicted))
    return classification_metrics([names.index(t) for t in truth], [names.index(p) for p in predicted],
                                  names).macro_f1


def measure(dataset: str, k: int, seed: int, test: pd.DataFrame, pool: pd.DataFrame) -> list[dict]:
    """One table of k training rows per class, trained and scored by every method."""
    model = DATASETS[dataset][1]
    table = pool.groupby("label").sample(k + k // 4, random_state=seed).reset_index(drop=True)
    task, results = get_task("classification"), []
    for method in METHODS[:2]:
        started = time.time()
        plan = service.plan_run(table, {"seed": seed, "few_shot": method, "base_model": model},
                                data_name=f"{dataset}-k{k}")
        with tempfile.TemporaryDirectory() as runs:
            job, outcome = service.train(plan, RunStore(runs))
            seconds = time.time() - started
            predicted = [p.label for p in Predictor(job.run_dir).predict(test["text"].tolist())]
        results.append({"method": method, "macro_f1": macro_f1(test["label"].tolist(), predicted),
                        "seconds": seconds, "outcome": type(outcome).__name__})
    train = held_out(task, plan.data, plan.config)[0]
    started = time.time()
    scored = task.classical_baseline(train, task.prepare(test, {"text": "text", "label": "label"}), {})
    results.append({"method": "tfidf", "macro_f1": scored["macro_f1"], "seconds": time.time() - started})
    counts = sorted(set(train.class_counts().values()))
    return [{"dataset": dataset, "k": k, "seed": seed, "train_per_class": counts, **r} for r in results]


def table(path: Path) -> str:
    """Mean macro-F1 and wall seconds of each method per dataset and k, over the seeds measured."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[tuple, dict[str, list]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["k"]), {}).setdefault(row["method"], []).append(row)
    lines = ["| data (model) | k per class | seeds | plain fine-tune | few-shot mode | TF-IDF + LR |",
             "|---|---|---|---|---|---|"]
    for (dataset, k), methods in sorted(groups.items()):
        cells = []
        for method in METHODS:
            found = methods.get(method, [])
            cells.append(f"{statistics.mean(r['macro_f1'] for r in found):.3f} "
                         f"({statistics.mean(r['seconds'] for r in found):.0f} s)" if found else "-")
        seeds = len(methods.get("tfidf", []))
        lines.append(f"| {dataset} ({DATASETS[dataset][1]}) | {k} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--k", type=int, nargs="+", default=[8, 16, 32, 64], help="rows per class, tweets")
    parser.add_argument("--zh-k", type=int, nargs="*", default=[8, 32],
                        help="rows per class, Chinese reviews (multilingual-e5-small is slow on a CPU: fewer)")
    parser.add_argument("--test-rows", type=int, default=100, help="held-out rows per class")
    parser.add_argument("--out", type=Path, default=Path("bench/out/few_shot.jsonl"))
    parser.add_argument("--table", type=Path, help="only print the table of this results file")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    held = {name: split_rows(DATASETS[name][0], args.test_rows) for name in DATASETS}
    done = {(r["dataset"], r["k"], r["seed"]) for r in map(json.loads, args.out.read_text().splitlines())
            } if args.out.is_file() else set()
    for seed in range(args.seeds):  # every table once before the next seed: a stopped bench has them all
        for dataset, ks in (("tweets", args.k), ("chinese", args.zh_k)):
            for k in (k for k in ks if (dataset, k, seed) not in done):
                for result in measure(dataset, k, seed, *held[dataset]):
                    print(json.dumps(result), flush=True)
                    with args.out.open("a") as out:
                        out.write(json.dumps(result) + "\n")
    print(table(args.out))


if __name__ == "__main__":
    main()
