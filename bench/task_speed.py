"""Every task: SFT Studio's engine vs transformers' Trainer (the run_glue.py / run_ner.py way), same data,
model, head, steps, batch, learning rate and seed, in one process.

    python -m bench.task_speed [--tasks regression,pairs,...] [--steps 60] [--rows 1200] [--out bench/out/tasks.json]

Trainer gets the task's own tokenised rows with its standard collator (DataCollatorWithPadding, or
DataCollatorForTokenClassification for NER); both sides are scored by the task's own metrics on the same
held-out rows. rows/s: Trainer's train_runtime; the engine's rate at its last step (before the final
evaluation). The machine changes between sessions: compare the ratio, not the absolute numbers.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from datasets import Dataset
from transformers import (
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers import logging as hf_logging

from core.data.samples import build_sample
from core.models.registry import DEFAULT_MODEL, resolve_model_path, training_tokenizer
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import get_task, prepare_data
from core.train import service

hf_logging.set_verbosity_error()

# task: (sample, learning rate, max length)
CASES = {
    "regression": ("sentiment_scores", 1e-4, 64),
    "pair_regression": ("sts_b", 1e-4, 64),
    "pairs": ("sts_b_paraphrase", 1e-4, 64),
    "multi_label": ("movie_genres", 3e-4, 64),
    "token_classification": ("conll2003", 3e-4, 128),
}


def trainer_run(task_name: str, data, config: TrainConfig) -> tuple[float, float]:
    """(rows/s, primary metric) of transformers' Trainer on the engine's own split and encoding."""
    task = get_task(task_name)
    set_seed(config.seed)
    train, val = task.split(data, config.val_fraction, config.seed)
    state = task.fit(train)
    tokenizer = training_tokenizer(config.base_model)

    def dataset(subset):
        enc = task.encode(tokenizer, subset, config.max_length, state)
        columns = {"input_ids": enc.input_ids, "labels": enc.labels}
        if enc.token_type_ids is not None:
            columns["token_type_ids"] = enc.token_type_ids
        return enc, Dataset.from_dict(columns)

    _, train_set = dataset(train)
    val_enc, val_set = dataset(val)
    model = task.model_class.from_pretrained(resolve_model_path(config.base_model), use_safetensors=True,
                                             ignore_mismatched_sizes=True, **task.head(data))
    collator = (DataCollatorForTokenClassification(tokenizer) if task.per_token
                else DataCollatorWithPadding(tokenizer))
    args = TrainingArguments(output_dir=tempfile.mkdtemp(prefix="bench-trainer-"), max_steps=config.max_steps,
                             per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=64,
                             learning_rate=config.learning_rate, warmup_steps=int(config.warmup_ratio * config.max_steps),
                             weight_decay=config.weight_decay, seed=config.seed, save_strategy="no",
                             report_to="none", logging_strategy="no", use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=collator)
    runtime = trainer.train().metrics["train_runtime"]
    logits = trainer.predict(val_set).predictions
    outputs = [logits[i, :len(ids)] if task.per_token else logits[i] for i, ids in enumerate(val_enc.input_ids)]
    metric = task.score(outputs, val, val_enc, state).metrics[task.primary_metric]
    return config.max_steps * config.batch_size / runtime, metric


def engine_run(task_name: str, data, config: TrainConfig) -> tuple[float, float]:
    job, _ = service.train(service.RunPlan(config, data, task_name), RunStore(tempfile.mkdtemp(prefix="bench-engine-")))
    events = job.events.since(0)
    if not isinstance(events[-1], ev.Finished):
        raise RuntimeError(f"{task_name}: {events[-1]}")
    last_step = [e for e in events if isinstance(e, ev.Step)][-1]
    return last_step.samples_per_s, events[-1].metrics[get_task(task_name).primary_metric]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default=",".join(CASES))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rows", type=int, default=1200)
    parser.add_argument("--out", default="bench/out/tasks.json")
    args = parser.parse_args()
    results = []
    print("| task | Trainer rows/s | engine rows/s | ratio | metric | Trainer | engine |\n|---|---|---|---|---|---|---|")
    for name in args.tasks.split(","):
        sample, lr, max_length = CASES[name]
        frame = build_sample(sample, rows_per_class=args.rows, seed=1)
        data = prepare_data(name, frame)
        config = TrainConfig(task=name, base_model=DEFAULT_MODEL, max_steps=args.steps, eval_every_steps=args.steps,
                             early_stopping_patience=0, learning_rate=lr, max_length=max_length, batch_size=16)
        started = time.time()
        hf_rate, hf_metric = trainer_run(name, data, config)
        ours_rate, ours_metric = engine_run(name, data, config)
        metric = get_task(name).primary_metric
        results.append({"task": name, "trainer_rows_per_s": hf_rate, "engine_rows_per_s": ours_rate,
                        "ratio": ours_rate / hf_rate, "metric": metric, "trainer_metric": hf_metric,
                        "engine_metric": ours_metric, "wall_s": time.time() - started})
        print(f"| {name} | {hf_rate:.1f} | {ours_rate:.1f} | {ours_rate / hf_rate:.2f}x | {metric} | {hf_metric:.4f} | "
              f"{ours_metric:.4f} |", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
