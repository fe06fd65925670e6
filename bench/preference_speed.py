"""Preference tuning: SFT Studio's DPO against TRL's DPOTrainer, same model, rows, settings and one epoch.

    python -m bench.preference_speed [--rows 120] [--batch-size 8] [--out bench/out/preference.json]

Both trainers see the same training pairs (the engine's deduplication and seeded split of the
"chatterbot_preferences" sample: each question's answer against another question's), one epoch over them, the
same batch, learning rate, linear schedule with 10% warm-up, weight decay, clipping, beta, max length, seed and
precision, full fine-tuning of SmolLM2-135M-Instruct. TRL runs its defaults (a reference model forward per step;
gradient checkpointing off, its faster setting). Time is wall-clock from the first reference forward to the last
optimizer step (SFT Studio: the reference pass over every row before training is included; TRL: its
train_runtime). Both final models are scored by one function: DPO loss and reward accuracy on the same held-out
pairs against the starting model's log-probabilities.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from core.common.devices import autocast, pick_device, resolve_precision
from core.data.dedup import deduplicate
from core.data.samples import build_sample
from core.models.registry import DEFAULT_CHAT_MODEL, resolve_model_path
from core.runs.config import TrainConfig
from core.tasks import get_task, prepare_data
from core.tasks.preference import response_logps

MODEL = DEFAULT_CHAT_MODEL


def load_split(rows: int, config: TrainConfig):
    data = prepare_data("preference", build_sample("chatterbot_preferences", rows))
    data, _ = deduplicate(data)
    return data, *get_task("preference").split(data, config.val_fraction, config.seed)


def config_for(args, train_rows: int) -> TrainConfig:
    return TrainConfig(task="preference", base_model=MODEL, epochs=1.0, min_steps=0, batch_size=args.batch_size,
                       max_length=args.max_length, learning_rate=args.learning_rate, eval_every_steps=10**6,
                       early_stopping_patience=0, seed=args.seed, preference_beta=args.beta)


@torch.inference_mode()
def pair_logps(model, tokenizer, encoded, precision: str) -> np.ndarray:
    model.eval()
    out = np.zeros((len(encoded.input_ids), 2), dtype=np.float32)
    for start in range(0, len(encoded.input_ids), 16):
        indices = list(range(start, min(start + 16, len(encoded.input_ids))))
        with autocast(torch.device("cpu"), precision):
            sums, _ = response_logps(model, encoded.batch(indices, tokenizer, torch.device("cpu")))
        out[indices] = sums.float().numpy().reshape(2, -1).T
    return out


def score(model, tokenizer, val, config: TrainConfig, precision: str) -> dict:
    """DPO loss and reward accuracy of ``model`` on the held-out pairs, against the starting model."""
    from transformers import AutoModelForCausalLM

    task = get_task("preference")
    encoded = task.encode(tokenizer, val, config.max_length, task.fit(val, config))
    start = AutoModelForCausalLM.from_pretrained(resolve_model_path(MODEL), dtype=torch.float32)
    encoded.reference = pair_logps(start, tokenizer, encoded, precision)  # the same for both trainers
    tuned = pair_logps(model, tokenizer, encoded, precision)
    moved = tuned - encoded.reference
    ratio = config.preference_beta * (moved[:, 0] - moved[:, 1])
    return {"val_dpo_loss": float(np.mean(np.logaddexp(0, -ratio))), "val_reward_accuracy": float(np.mean(ratio > 0))}


def run_studio(data, config: TrainConfig) -> dict:
    from core.runs import events as ev
    from core.runs.store import RunStore
    from core.train import service

    job, last = service.train(service.RunPlan(config, data, "pref"), RunStore(tempfile.mkdtemp(prefix="bench-pref-")))
    assert isinstance(last, ev.Finished), last
    events = job.events.since(0)
    first = next(e for e in events if isinstance(e, ev.Status) and "starting model" in e.message)
    steps = [e for e in events if isinstance(e, ev.Step)]
    return {"seconds": steps[-1].time - first.time, "rows": steps[-1].step * config.batch_size,
            "model": job.model, "tokenizer": job.tokenizer}


def run_trl(train, config: TrainConfig, precision: str) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from core.models.registry import training_tokenizer

    tokenizer = training_tokenizer(MODEL)
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(MODEL), dtype=torch.float32)
    rows = Dataset.from_list([{"prompt": [{"role": "user", "content": p}],
                               "chosen": [{"role": "assistant", "content": c}],
                               "rejected": [{"role": "assistant", "content": r}]}
                              for p, c, r in zip(train.inputs["prompt"], train.targets, train.inputs["rejected"])])
    steps = -(-len(train) // config.batch_size)
    settings = DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-"), use_cpu=True, bf16=precision == "bf16",
        max_steps=steps, per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
        lr_scheduler_type="linear", warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm, seed=config.seed, max_length=config.max_length, beta=config.preference_beta,
        gradient_checkpointing=False, save_strategy="no", eval_strategy="no", report_to=[], logging_steps=1000,
        disable_tqdm=True)
    trainer = DPOTrainer(model=model, args=settings, train_dataset=rows, processing_class=tokenizer)
    result = trainer.train()
    return {"seconds": result.metrics["train_runtime"], "rows": steps * config.batch_size,
            "model": trainer.model, "tokenizer": tokenizer}


def child(trainer: str, args) -> dict:
    torch.manual_seed(args.seed)
    data, train, val = load_split(args.rows, TrainConfig(task="preference", seed=args.seed))
    config = config_for(args, len(train))
    precision = resolve_precision(config.precision, pick_device())
    out = run_studio(data, config) if trainer == "studio" else run_trl(train, config, precision)
    return {"trainer": trainer, "rows_per_s": out["rows"] / out["seconds"], "seconds": out["seconds"],
            **score(out["model"], out["tokenizer"], val, config, precision), "train_rows": len(train),
            "val_rows": len(val), "precision": precision}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--trainers", default="studio,trl")
    parser.add_argument("--out", default="bench/out/preference.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args)))
        return
    results = []
    for trainer in args.trainers.split(","):
        command = [sys.executable, "-m", "bench.preference_speed", "--rows", str(args.rows), "--batch-size",
                   str(args.batch_size), "--max-length", str(args.max_length), "--learning-rate", str(args.learning_rate),
                   "--beta", str(args.beta), "--seed", str(args.seed), "--child", trainer]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(output.rsplit("RESULT ", 1)[1]))
        print(f"  {trainer}: {results[-1]['rows_per_s']:.2f} rows/s", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"model": MODEL, **vars(args), "results": results}, indent=2))
    trl = next((r for r in results if r["trainer"] == "trl"), None)
    print("| trainer | rows/s | seconds | val DPO loss | val reward accuracy | rows/s vs TRL |\n|---|---|---|---|---|---|")
    for r in results:
        ratio = f"{r['rows_per_s'] / trl['rows_per_s']:.2f}x" if trl else "-"
        print(f"| {r['trainer']} | {r['rows_per_s']:.2f} | {r['seconds']:.0f} | {r['val_dpo_loss']:.4f} | "
              f"{r['val_reward_accuracy']:.3f} | {ratio} |")
    first = results[0]
    print(f"\nDPO, one epoch, batch {args.batch_size}, lr {args.learning_rate}, beta {args.beta}, max length "
          f"{args.max_length}, {first['precision']}; train/val pairs {first['train_rows']}/{first['val_rows']}")


if __name__ == "__main__":
    main()
