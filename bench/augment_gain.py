"""Does augmenting the training split help small tables? The app's default settings on n rows per class of a
sample, with and without each augmentation, several seeds; scored on held-out rows of the same sample that no run
sees (macro-F1), with the TF-IDF + logistic-regression baseline on the same rows for scale.

    python -m bench.augment_gain [--samples bbc_news chinese_reviews] [--rows 20 50 100] [--seeds 1 2 3]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import f1_score

from core.data.samples import build_sample
from core.deploy.predict import Predictor
from core.runs.store import RunStore
from core.tasks import get_task, prepare_data
from core.tasks.classical import fit_classical
from core.train.service import plan_run, train

TEST_PER_CLASS = 40


def split(sample: str, rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training table of ``rows`` per class, the fixed held-out rows)."""
    frame = build_sample(sample, rows_per_class=10_000, seed=0)
    test = frame.groupby("label").head(TEST_PER_CLASS)
    rest = frame.drop(test.index)
    table = rest.sample(frac=1, random_state=seed).groupby("label").head(rows)
    return table.reset_index(drop=True), test.reset_index(drop=True)


def score(run_dir: Path, test: pd.DataFrame) -> float:
    predicted = [p.label for p in Predictor(run_dir).predict(test["text"].tolist())]
    return f1_score(test["label"], predicted, average="macro")


def classical(table: pd.DataFrame, test: pd.DataFrame) -> float:
    task, data, held_out = get_task("classification"), prepare_data("classification", table), prepare_data(
        "classification", test)
    assert data.label_names == held_out.label_names
    return fit_classical(task, data, held_out, task.fit(data), seed=0)["macro_f1"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", nargs="+", default=["bbc_news", "chinese_reviews"])
    parser.add_argument("--rows", nargs="+", type=int, default=[20, 50, 100])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=["off", "eda", "synonyms"])
    args = parser.parse_args(argv)
    store = RunStore(Path(tempfile.mkdtemp(prefix="bench-augment-")))
    print("| sample | rows/class | method | macro-F1 (mean of seeds) | per seed | classical | minutes/run |")
    print("|---|---|---|---|---|---|---|")
    for sample in args.samples:
        for rows in args.rows:
            tables = {seed: split(sample, rows, seed) for seed in args.seeds}
            base = statistics.mean(classical(*tables[s]) for s in args.seeds)
            for method in args.methods:
                scores, started = [], time.time()
                for seed in args.seeds:
                    table, test = tables[seed]
                    job, _ = train(plan_run(table, {"seed": seed, "augment": method}, data_name=sample), store)
                    scores.append(score(job.run_dir, test))
                    shutil.rmtree(job.run_dir, ignore_errors=True)
                minutes = (time.time() - started) / 60 / len(args.seeds)
                print(f"| {sample} | {rows} | {method} | {statistics.mean(scores):.3f} | "
                      f"{' '.join(f'{s:.3f}' for s in scores)} | {base:.3f} | {minutes:.1f} |", flush=True)
    shutil.rmtree(store.root, ignore_errors=True)


if __name__ == "__main__":
    main()
