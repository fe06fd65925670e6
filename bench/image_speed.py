"""Image classification: SFT Studio's engine vs transformers' Trainer (its image-classification example's way:
a dataset of image files decoded and preprocessed per batch by the model's image processor), same data, model,
head, side, steps, batch, learning rate and seed, in one process; and a linear probe vs full fine-tuning.

    python -m bench.image_speed [--sample digits] [--steps 360] [--out bench/out/images.json]

Both sides are scored on the engine's own held-out split with the task's metrics. images/s: Trainer's
train_runtime; the engine's rate at its last step (before the final evaluation). The machine changes between
sessions: compare the ratio, not the absolute numbers.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from PIL import Image
from transformers import AutoModelForImageClassification, Trainer, TrainingArguments, set_seed
from transformers import logging as hf_logging

from core.data.samples import sample_path
from core.data.tables import read_table
from core.models.registry import resolve_model_path
from core.runs import events as ev
from core.runs.store import RunStore
from core.tasks import get_task
from core.tasks.metrics import classification_metrics
from core.train import service

hf_logging.set_verbosity_error()


def engine_run(path: Path, settings: dict, rate: str = "images_per_s") -> dict:
    """One run of the engine through the service: its rate at the last step (as ``rate``), time and scores."""
    plan = service.plan_run(path, settings)
    with tempfile.TemporaryDirectory() as runs:
        job = service.make_job(plan, RunStore(runs))
        started = time.time()
        job.run()
        events = job.events.since(0)
        metrics = json.loads((job.run_dir / "metrics.json").read_text())
    steps = [e for e in events if isinstance(e, ev.Step)]
    return {rate: steps[-1].samples_per_s, "seconds": time.time() - started,
            "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "steps": steps[-1].step,
            "classical_accuracy": metrics["classical"]["accuracy"],
            "classical_macro_f1": metrics["classical"]["macro_f1"]}


def trainer_run(path: Path, settings: dict, side: int) -> dict:
    """The Trainer recipe on the engine's split: images decoded and processed in the batch transform."""
    plan = service.plan_run(path, settings)
    config, task = plan.config, get_task("image_classification")
    set_seed(config.seed)
    train, val = task.split(plan.data, config.val_fraction, config.seed)
    base = resolve_model_path(config.base_model)
    processor = task.load_processor(base)
    processor.size = {"height": side, "width": side}

    def transform(batch):
        images = [Image.open(p).convert("RGB") for p in batch["image"]]
        return {"pixel_values": processor(images, return_tensors="pt")["pixel_values"], "labels": batch["label"]}

    def dataset(subset):
        return Dataset.from_dict({"image": subset.inputs["image"], "label": subset.targets}).with_transform(transform)

    model = AutoModelForImageClassification.from_pretrained(base, num_labels=len(train.label_names),
                                                            ignore_mismatched_sizes=True)
    result, logits = trainer_recipe(model, config, settings["max_steps"], dataset(train), dataset(val))
    metrics = classification_metrics(val.targets, np.asarray(logits).argmax(-1).tolist(), val.label_names)
    return {"images_per_s": result.metrics["train_samples_per_second"], "seconds": result.metrics["train_runtime"],
            "accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1}


def trainer_recipe(model, config, steps: int, train, val) -> tuple:
    """transformers' Trainer at the run's settings (batch, lr, warm-up, weight decay, seed, ``steps``) on ``train``;
    its TrainOutput and its logits on ``val`` (datasets with a batch transform)."""
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(out, per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
                                 max_steps=steps, warmup_steps=int(config.warmup_ratio * steps),
                                 weight_decay=config.weight_decay, seed=config.seed, report_to=[], save_strategy="no",
                                 logging_strategy="no", use_cpu=not torch.cuda.is_available(),
                                 remove_unused_columns=False, dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, train_dataset=train)
        return trainer.train(), trainer.predict(val).predictions


def as_photos(path: Path, side: int, folder: Path) -> Path:
    """The same images as side x side JPEG files (photo-sized inputs: decoding and resizing cost per batch)."""
    frame = read_table(path)
    for n, (image, label) in enumerate(zip(frame["image"], frame["label"])):
        out = folder / label / f"{n}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.open(image).convert("RGB").resize((side, side), Image.Resampling.BICUBIC).save(out, quality=90)
    return folder


def compare(path: Path, settings: dict, repeats: int) -> dict:
    """Engine and Trainer alternately ``repeats`` times; the faster of each side's runs (this CPU's speed drifts)."""
    side = get_task("image_classification").fit(get_task("image_classification").prepare(read_table(path)))["image_size"]
    runs = {"engine": [], "trainer": []}
    for _ in range(repeats):
        runs["engine"].append(engine_run(path, settings))
        runs["trainer"].append(trainer_run(path, settings, side))
    best = {name: max(found, key=lambda r: r["images_per_s"]) for name, found in runs.items()}
    return {"side": side, **best, "speedup": best["engine"]["images_per_s"] / best["trainer"]["images_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", default="digits")
    parser.add_argument("--steps", type=int, default=360)
    parser.add_argument("--photo-side", type=int, default=128, help="the second case: the images as JPEGs this big")
    parser.add_argument("--photo-steps", type=int, default=120, help="steps of the second case (a bigger side: slower)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="bench/out/images.json")
    args = parser.parse_args()
    path = sample_path(args.sample)
    settings = {"max_steps": args.steps, "precision": "fp32", "eval_every_steps": args.steps}  # Trainer: one at the end
    results = {"sample": args.sample, "images": len(read_table(path)), "steps": args.steps,
               "as shipped": compare(path, settings, args.repeats)}
    results["as shipped"]["linear_probe"] = engine_run(path, {**settings, "linear_probe": True})
    with tempfile.TemporaryDirectory() as folder:
        photos = as_photos(path, args.photo_side, Path(folder) / "photos")
        steps = {**settings, "max_steps": args.photo_steps, "eval_every_steps": args.photo_steps}
        results[f"as {args.photo_side}x{args.photo_side} JPEGs, {args.photo_steps} steps"] = compare(photos, steps,
                                                                                                   args.repeats)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    for case, found in results.items():
        if not isinstance(found, dict):
            continue
        print(f"{args.sample} {case} (trained at {found['side']}x{found['side']}):")
        for name in ("engine", "trainer", "linear_probe"):
            if name in found:
                r = found[name]
                print(f"  {name:13s} {r['images_per_s']:7.1f} images/s  accuracy {r['accuracy']:.4f}  macro-F1 "
                      f"{r['macro_f1']:.4f}  {r['seconds']:.0f} s")
        print(f"  engine / Trainer images/s: {found['speedup']:.2f}x; classical (logistic regression on pixels) "
              f"accuracy {found['engine']['classical_accuracy']:.4f}")


if __name__ == "__main__":
    main()
