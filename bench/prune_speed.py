"""Structured pruning, measured: keep the bottom N transformer layers, fine-tune, and compare accuracy and
prediction speed against the full model, in one run.

    python -m bench.prune_speed [--sample chinese_reviews] [--rows-per-class 1000] [--keep 0 8 6 4]

Each row: the same data, split and settings (the app's defaults, 1 epoch); held-out accuracy and macro-F1 of
the best checkpoint; training seconds; prediction over the validation rows through ``Predictor`` (PyTorch,
the app's path) in rows/s, one-text p50 latency; and the ONNX int8 export scored on the same rows
(``core.deploy.export.check_export``: accuracy, size, rows/s).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from core.data.samples import build_sample
from core.deploy.export import check_export
from core.deploy.predict import Predictor
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import get_task
from core.train import service


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", default="chinese_reviews")
    parser.add_argument("--rows-per-class", type=int, default=1000)
    parser.add_argument("--keep", type=int, nargs="+", default=[0, 8, 6, 4])
    args = parser.parse_args()
    task = get_task("classification")
    data = task.prepare(build_sample(args.sample, rows_per_class=args.rows_per_class))
    model = task.modality.suggest(task, data).model
    store = RunStore(Path(tempfile.mkdtemp()) / "runs")
    print(f"{args.sample}: {len(data)} rows, {model}")
    print("| layers kept | accuracy | macro-F1 | train s | predict rows/s | one text p50 ms | int8 accuracy | int8 MB | int8 rows/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for keep in args.keep:
        config = TrainConfig(base_model=model, epochs=1.0, keep_layers=keep)
        job, _ = service.train(service.RunPlan(config, data, f"{args.sample}-keep{keep}"), store)
        metrics = store.info(job.run_dir).metrics
        predictor = Predictor(job.run_dir)
        texts = job.val.texts
        started = time.perf_counter()
        predictor.predict(texts)
        batch_speed = len(texts) / (time.perf_counter() - started)
        single = []
        for text in texts[:50]:
            started = time.perf_counter()
            predictor.predict([text])
            single.append((time.perf_counter() - started) * 1000)
        check = check_export(job.run_dir, "onnx-int8")
        layers = predictor.model.config.num_hidden_layers
        print(f"| {layers} | {metrics['accuracy']:.4f} | {metrics['macro_f1']:.4f} | {metrics['train_seconds']:.0f} | "
              f"{batch_speed:.1f} | {statistics.median(single):.1f} | {check.metrics['accuracy']:.4f} | "
              f"{check.size_mb:.0f} | {check.rows_per_s:.1f} |", flush=True)


if __name__ == "__main__":
    main()
