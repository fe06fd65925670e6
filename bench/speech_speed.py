"""Sound classification: SFT Studio's engine vs transformers' Trainer (its audio-classification example's way: a
dataset of clip files decoded, resampled and cut by the feature extractor per batch), same clips, model, head, clip
length, steps, batch, learning rate and seed, in one process; and the engine with sound augmentation and as a linear
probe. The clips are bench.speech_unseen's spoken digits (flite voices, sox effects, mixed formats and rates).

    python -m bench.speech_speed [--steps 200] [--repeats 2] [--out bench/out/speech.json]

Both sides are scored on the engine's own held-out split. clips/s: Trainer's train_runtime; the engine's rate at
its last step. Compare the ratio, not the absolute numbers (the machine changes between sessions).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import soxr
from datasets import Dataset
from transformers import AutoModelForAudioClassification, set_seed
from transformers import logging as hf_logging

from bench import image_speed
from bench.image_speed import trainer_recipe
from bench.speech_unseen import build
from core.models.registry import resolve_model_path
from core.tasks import get_task
from core.tasks.metrics import classification_metrics
from core.train import service

hf_logging.set_verbosity_error()


def engine_run(path: Path, settings: dict) -> dict:
    return image_speed.engine_run(path, settings, rate="clips_per_s")


def trainer_run(path: Path, settings: dict) -> dict:
    """The Trainer recipe on the engine's split: clips decoded and cut to the clip length in the batch transform."""
    plan = service.plan_run(path, settings)
    config, task = plan.config, get_task("audio_classification")
    set_seed(config.seed)
    train, val = task.split(plan.data, config.val_fraction, config.seed)
    base = resolve_model_path(config.base_model)
    extractor, length = task.load_processor(base), task.clip_samples(train)

    def transform(batch):
        waves = []
        for path in batch["audio"]:
            samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
            waves.append(soxr.resample(samples.mean(axis=1), rate, 16000))
        features = extractor(waves, sampling_rate=16000, padding="max_length", max_length=length, truncation=True,
                             return_tensors="pt")
        return {"input_values": features["input_values"], "labels": batch["label"]}

    def dataset(subset):
        return Dataset.from_dict({"audio": subset.inputs["audio"], "label": subset.targets}).with_transform(transform)

    model = AutoModelForAudioClassification.from_pretrained(base, num_labels=len(train.label_names),
                                                            ignore_mismatched_sizes=True)
    result, logits = trainer_recipe(model, config, settings["max_steps"], dataset(train), dataset(val))
    metrics = classification_metrics(val.targets, np.asarray(logits).argmax(-1).tolist(), val.label_names)
    return {"clips_per_s": result.metrics["train_samples_per_second"], "seconds": result.metrics["train_runtime"],
            "accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="bench/out/speech.json")
    args = parser.parse_args()
    settings = {"max_steps": args.steps, "eval_every_steps": args.steps, "learning_rate": 1e-3}
    runs: dict[str, list] = {"engine": [], "trainer": [], "engine, sound augmentation": [], "engine, linear probe": []}
    with tempfile.TemporaryDirectory() as folder:
        path = build(Path(folder) / "digits_spoken")
        for seed in range(args.repeats):  # alternated: this CPU's speed drifts
            seeded = {**settings, "seed": seed}
            runs["engine"].append(engine_run(path, seeded))
            runs["trainer"].append(trainer_run(path, seeded))
            runs["engine, sound augmentation"].append(engine_run(path, {**seeded, "augment": "sound"}))
            runs["engine, linear probe"].append(engine_run(path, {**seeded, "linear_probe": True}))
    summary = {name: {key: float(np.mean([r[key] for r in found])) for key in found[0]} for name, found in runs.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"steps": args.steps, "runs": runs, "mean": summary}, indent=2))
    for name, found in summary.items():
        print(f"{name:28s} {found['clips_per_s']:7.1f} clips/s  accuracy {found['accuracy']:.3f}  macro-F1 "
              f"{found['macro_f1']:.3f}  {found['seconds']:.0f} s")
    print(f"engine / Trainer clips/s: {summary['engine']['clips_per_s'] / summary['trainer']['clips_per_s']:.2f}x; "
          f"classical (log-mel statistics) macro-F1 {summary['engine']['classical_macro_f1']:.3f}")


if __name__ == "__main__":
    main()
