"""Training speed: SFT Studio's engine vs transformers' Trainer, same model/data/steps/seed, one process.

    python -m bench.train_speed [--dataset tweets|bbc|both] [--steps 60] [--repeats 2] [--out bench/out/results.json]

Prints a markdown table and writes JSON. Each repeat runs the methods in turn, alternating the order
(a b c, then c b a) so drift in machine speed hits all alike; samples/s is the mean over repeats.
Peak RSS is measured per method in a fresh subprocess (10 steps), as one process never gives memory back.
Methods:
  (a) Trainer, TrainingArguments defaults, tokenised with padding="max_length" (the common tutorial);
  (b) Trainer with DataCollatorWithPadding (dynamic padding);
  (c) SFT Studio's TrainingJob (pre-tokenised, length-grouped dynamic padding, precision "auto").
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers import logging as hf_logging

from core.common.devices import cpu_has_fast_bf16
from core.data.samples import build_sample
from core.deploy.predict import Predictor
from core.models.registry import DEFAULT_MODEL, load_tokenizer, resolve_model_path
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import get_task, prepare_data
from core.tasks.metrics import classification_metrics
from core.train import service

hf_logging.set_verbosity_error()


METHODS = {"a": "(a) Trainer, padding=max_length", "b": "(b) Trainer + dynamic padding", "c": "(c) SFT Studio engine"}
SAMPLES = {"bbc": "bbc_news", "tweets": "tweet_sentiment"}


@dataclass
class Result:
    method: str
    samples_per_s: float
    wall_s: float
    accuracy: float
    macro_f1: float
    tokens_per_s: float = 0.0
    peak_rss_mb: float = 0.0
    mfu_fp32: float = 0.0
    mfu_bf16: float = 0.0
    samples_per_s_each: list[float] = field(default_factory=list)


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of a large square matmul in this process (the MFU denominator)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def non_embedding_params(model) -> int:
    embeddings = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    return sum(p.numel() for p in model.parameters()) - embeddings


def run_trainer(train, val, args, dynamic: bool) -> Result:
    tokenizer = load_tokenizer(DEFAULT_MODEL)
    pad = False if dynamic else "max_length"

    def encode(d):
        enc = tokenizer(d.texts, truncation=True, max_length=args.max_length, padding=pad)
        return Dataset.from_dict({**enc, "labels": d.labels})

    train_ds, val_ds = encode(train), encode(val)
    set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_model_path(DEFAULT_MODEL), num_labels=len(train.label_names), use_safetensors=True)
    targs = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size,
                              learning_rate=args.lr, max_steps=args.steps, warmup_steps=int(0.1 * args.steps),
                              weight_decay=0.01, seed=args.seed, report_to="none", save_strategy="no",
                              eval_strategy="no", logging_strategy="no", disable_tqdm=True)
    collator = DataCollatorWithPadding(tokenizer) if dynamic else None
    trainer = Trainer(model=model, args=targs, train_dataset=train_ds, data_collator=collator)
    start = time.perf_counter()
    out = trainer.train()
    wall = time.perf_counter() - start
    predictions = trainer.predict(val_ds).predictions.argmax(-1).tolist()
    metrics = classification_metrics(val.labels, predictions, val.label_names)
    return Result(METHODS["b" if dynamic else "a"], out.metrics["train_samples_per_second"], wall,
                  metrics.accuracy, metrics.macro_f1)


def run_engine(data, args, store: RunStore) -> tuple[Result, float, Path]:
    """The engine splits ``data`` itself with the same seed and fraction as the Trainer runs."""
    config = TrainConfig(learning_rate=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                         max_steps=args.steps, eval_every_steps=args.steps, early_stopping_patience=0,
                         seed=args.seed, val_fraction=0.2, precision=args.precision)
    job = service.make_job(service.RunPlan(config, data, "bench"), store)
    start = time.perf_counter()
    first_step: list[float] = []

    def mark_first_step(event: ev.Event) -> None:
        if isinstance(event, ev.Step) and not first_step:
            first_step.append(time.perf_counter() - start)

    last = service.wait_for_outcome(job.start(), mark_first_step)
    job.join()
    wall = time.perf_counter() - start
    first_step_s = first_step[0] if first_step else float("nan")
    assert isinstance(last, ev.Finished), last
    steps = [e for e in job.events.since(0) if isinstance(e, ev.Step)]
    m = last.metrics
    return Result(f"{METHODS['c']} ({m['precision']})", steps[-1].samples_per_s, wall, m["accuracy"],
                  m["macro_f1"]), first_step_s, job.run_dir


def load_split(name: str, args):
    return _load_split(name, args.rows_per_class, args.seed)


@lru_cache(maxsize=2)
def _load_split(name: str, rows_per_class: int, seed: int):
    full = prepare_data("classification", build_sample(SAMPLES[name], rows_per_class=rows_per_class, seed=1), {"text": "text", "label": "label"})
    return full, *get_task("classification").split(full, 0.2, seed=seed)


def training_peak_rss_mb(key: str, name: str, args) -> float:
    """Peak RSS while one method trains: the kernel's high-water mark is reset after the data is loaded."""
    load_split(name, args)
    Path("/proc/self/clear_refs").write_text("5")
    run_method(key, name, args)
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024


def run_method(key: str, name: str, args) -> tuple[Result, float, Path | None]:
    """One training run of method a, b or c: (result, seconds to first loss, run folder)."""
    full, train, val = load_split(name, args)
    if key == "c":
        return run_engine(full, args, RunStore(tempfile.mkdtemp(prefix="bench-runs-")))
    return run_trainer(train, val, args, dynamic=key == "b"), 0.0, None


def peak_rss_mb(key: str, name: str, args) -> float:
    """Peak RSS of a fresh process that runs 10 steps of one method."""
    cmd = [sys.executable, "-m", "bench.train_speed", "--probe-memory", key, "--dataset", name, "--steps", "10",
           "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
           "--rows-per-class", str(args.rows_per_class), "--precision", args.precision]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)["peak_rss_mb"]


def prediction_speed(run_dir: Path, texts: list[str]) -> dict:
    """Single-sentence latency (first sentence of each text) and batch throughput on whole texts."""
    predictor = Predictor(run_dir)
    predictor.predict(texts[:4])
    latencies = []
    for text in texts[:100]:
        text = text.split(". ")[0][:300]
        start = time.perf_counter()
        predictor.predict([text])
        latencies.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    predictor.predict(texts)
    throughput = len(texts) / (time.perf_counter() - start)
    q = statistics.quantiles(latencies, n=20)
    return {"single_p50_ms": statistics.median(latencies), "single_p95_ms": q[18], "batch_rows_per_s": throughput}


def bench_dataset(name: str, args, peaks: dict) -> dict:
    full, train, val = load_split(name, args)
    tokenizer = load_tokenizer(DEFAULT_MODEL)
    lengths = [len(x) for x in tokenizer(train.texts, truncation=True, max_length=args.max_length)["input_ids"]]
    mean_tokens = sum(lengths) / len(lengths)
    model = AutoModelForSequenceClassification.from_pretrained(resolve_model_path(DEFAULT_MODEL), num_labels=2,
                                                               use_safetensors=True)
    flops_per_token = 6 * non_embedding_params(model)
    runs: dict[str, list[Result]] = {key: [] for key in METHODS}
    first_loss, engine_runs = [], []
    for repeat in range(args.repeats):
        for key in ("abc" if repeat % 2 == 0 else "cba"):
            result, first_step_s, run_dir = run_method(key, name, args)
            runs[key].append(result)
            if key == "c":
                first_loss.append(first_step_s)
                engine_runs.append(run_dir)
    results = []
    for key, each in runs.items():
        r = each[0]
        r.samples_per_s_each = [x.samples_per_s for x in each]
        r.samples_per_s = statistics.mean(r.samples_per_s_each)
        r.wall_s = statistics.mean(x.wall_s for x in each)
        r.peak_rss_mb = peak_rss_mb(key, name, args)
        results.append(r)
    for r in results:
        r.tokens_per_s = r.samples_per_s * mean_tokens
        r.mfu_fp32 = r.tokens_per_s * flops_per_token / peaks["fp32"]
        r.mfu_bf16 = r.tokens_per_s * flops_per_token / peaks["bf16"]
    return {
        "dataset": name, "train_rows": len(train), "val_rows": len(val), "mean_real_tokens": mean_tokens,
        "results": [asdict(r) for r in results],
        "ratio_c_over_a": results[2].samples_per_s / results[0].samples_per_s,
        "ratio_c_over_b": results[2].samples_per_s / results[1].samples_per_s,
        "start_to_first_loss_s": statistics.mean(first_loss),
        "prediction": prediction_speed(engine_runs[0], val.texts * max(1, 500 // len(val.texts))),
    }


def markdown(report: dict) -> str:
    lines = [f"Machine: {report['machine']}. Peak matmul: fp32 {report['peak_fp32_tflops']:.3f} TFLOP/s, "
             f"bf16 {report['peak_bf16_tflops']:.3f} TFLOP/s. {report['steps']} optimizer steps, batch "
             f"{report['batch_size']}, max length {report['max_length']}, lr {report['lr']}, seed {report['seed']}.", ""]
    for d in report["datasets"]:
        lines += [f"### {d['dataset']} ({d['train_rows']} train / {d['val_rows']} val rows, "
                  f"{d['mean_real_tokens']:.0f} real tokens per row)", "",
                  "| method | samples/s | tokens/s | wall s | peak RSS MB | val accuracy | val macro-F1 | MFU fp32 | MFU bf16 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in d["results"]:
            lines.append(f"| {r['method']} | {r['samples_per_s']:.1f} | {r['tokens_per_s']:.0f} | {r['wall_s']:.1f} | "
                         f"{r['peak_rss_mb']:.0f} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
                         f"{r['mfu_fp32']:.1%} | {r['mfu_bf16']:.1%} |")
        p = d["prediction"]
        lines += ["", f"(c)/(a) = **{d['ratio_c_over_a']:.2f}x**, (c)/(b) = **{d['ratio_c_over_b']:.2f}x** samples/s. "
                  f"Start to first loss: {d['start_to_first_loss_s']:.2f} s. Prediction: single p50 "
                  f"{p['single_p50_ms']:.1f} ms, p95 {p['single_p95_ms']:.1f} ms; batch {p['batch_rows_per_s']:.0f} rows/s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["tweets", "bbc", "both"], default="both")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rows-per-class", type=int, default=400)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="bench/out/results.json")
    parser.add_argument("--probe-memory", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe_memory:
        print(json.dumps({"peak_rss_mb": training_peak_rss_mb(args.probe_memory, args.dataset, args)}))
        return
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    names = ["tweets", "bbc"] if args.dataset == "both" else [args.dataset]
    report = {
        "machine": f"{os.cpu_count()} CPU threads, torch {torch.__version__}, "
                   f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}, fast bf16: {cpu_has_fast_bf16()}",
        "peak_fp32_tflops": peaks["fp32"] / 1e12, "peak_bf16_tflops": peaks["bf16"] / 1e12,
        "steps": args.steps, "batch_size": args.batch_size, "max_length": args.max_length, "lr": args.lr,
        "seed": args.seed, "datasets": [bench_dataset(n, args, peaks) for n in names],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
