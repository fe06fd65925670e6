"""The training engine: fine-tunes a base model in a background thread and publishes events."""
from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup
from transformers import logging as hf_logging
from transformers import set_seed

from . import events as ev
from .config import TrainConfig
from .data import LabelledData, split, unknown_token_rate, unknown_token_warning
from .errors import StudioError
from .metrics import classification_metrics, majority_baseline
from .models import load_tokenizer, resolve_model_path
from .store import CANCELLED, FAILED, FINISHED, RUNNING, RunStore, write_json_atomic

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_fast_bf16() -> bool:
    """AMX tiles or AVX512-BF16: bf16 matmuls run several times faster than fp32."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' picks bf16 where the hardware runs it fast (AMX/AVX512-BF16 CPUs, bf16 GPUs), else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def length_grouped_batches(lengths: list[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Shuffle, sort by length inside mega-batches of 50 batches, then shuffle batch order."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    mega = batch_size * 50
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


@dataclass
class Encoded:
    """Pre-tokenised texts (no padding) with their labels."""

    input_ids: list[list[int]]
    labels: list[int]

    def batch(self, indices: list[int], tokenizer, device: torch.device) -> dict[str, torch.Tensor]:
        padded = tokenizer.pad({"input_ids": [self.input_ids[i] for i in indices]}, return_tensors="pt")
        return {
            "input_ids": padded["input_ids"].to(device),
            "attention_mask": padded["attention_mask"].to(device),
            "labels": torch.tensor([self.labels[i] for i in indices], device=device),
        }


def encode(tokenizer, data: LabelledData, max_length: int) -> Encoded:
    ids = tokenizer(data.texts, truncation=True, max_length=max_length)["input_ids"]
    return Encoded(ids, list(data.labels))


def load_tokenizer_and_model(base_model: str, label_names: list[str]):
    """Load a base model from a local folder with a fresh classification head."""
    path = resolve_model_path(base_model)
    tokenizer = copy.deepcopy(load_tokenizer(base_model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(label_names), local_files_only=True, use_safetensors=True,
        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
        ignore_mismatched_sizes=True,
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.learning_rate, fused=True)


class Cancelled(Exception):
    """Raised inside the training thread when the user pressed Stop."""


class TrainingJob:
    """One fine-tuning run. ``start()`` runs it in a thread; read ``events`` for progress."""

    def __init__(self, config: TrainConfig, data: LabelledData, store: RunStore | None = None,
                 data_name: str = "data"):
        self.config = config
        self.data = data
        self.data_name = data_name
        self.store = store or RunStore()
        self.events = ev.EventLog()
        self.run_dir: Path | None = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._model = self._tokenizer = self._device = self._precision = None
        self._best: dict | None = None
        self._baseline: float | None = None
        self._started = time.time()
        self._samples_per_s: float | None = None

    # -- control -----------------------------------------------------------
    def start(self) -> "TrainingJob":
        self._thread = threading.Thread(target=self.run, name="sft-train", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    @property
    def done(self) -> bool:
        return self.events.done

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    # -- the run -----------------------------------------------------------
    def run(self) -> None:
        """Run synchronously; every outcome ends in a Finished, Failed or Cancelled event."""
        try:
            self._check_cancel()
            self.config.validate()
            self.run_dir = self.store.create(f"{self.data_name}-{Path(self.config.base_model).name}")
            self.store.set_status(self.run_dir, RUNNING)
            self.config.save(self.run_dir / "train_config.json")
            self.events.subscribe(self._append_history)
            self._train()
        except Cancelled:
            self._finish_cancelled()
        except StudioError as exc:
            self._fail(exc.message)
        except (torch.OutOfMemoryError, MemoryError):
            self._fail("Out of memory. Lower the batch size or the max length and try again.")
        except Exception as exc:  # the message reaches the user; the run folder keeps the history
            self._fail(f"Training failed: {type(exc).__name__}: {exc}")

    def _append_history(self, event: ev.Event) -> None:
        with open(self.run_dir / "history.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")

    def _fail(self, message: str) -> None:
        if self.run_dir:
            self.store.set_status(self.run_dir, FAILED, message=message)
        self.events.publish(ev.Failed(message))

    def _finish_cancelled(self) -> None:
        metrics = {}
        if self.run_dir:
            if self._best is None and self._model is not None:
                self._save_checkpoint()
            metrics = self._write_metrics()
            self.store.set_status(self.run_dir, CANCELLED)
        self.events.publish(ev.Cancelled(str(self.run_dir or ""), metrics))

    def _train(self) -> None:
        cfg, data = self.config, self.data
        self.events.publish(ev.Status("Loading the base model"))
        set_seed(cfg.seed)
        self._device = pick_device()
        self._precision = resolve_precision(cfg.precision, self._device)
        train, val = split(data, cfg.val_fraction, cfg.seed)
        self._val = val
        tokenizer, model = load_tokenizer_and_model(cfg.base_model, data.label_names)
        self._check_cancel()
        self._tokenizer, self._model = tokenizer, model.to(self._device)
        write_json_atomic(self.run_dir / "data.json", {
            "name": self.data_name, "text_column": data.text_column, "label_column": data.label_column,
            "label_names": data.label_names, "rows_total": data.rows_total, "rows_dropped": data.rows_dropped,
            "train_rows": len(train), "val_rows": len(val), "class_counts": data.class_counts(),
        })
        tokenizer.save_pretrained(self.run_dir)

        self.events.publish(ev.Status("Tokenising"))
        unk = unknown_token_rate(tokenizer, train.texts)
        warnings = list(data.warnings)
        if (warning := unknown_token_warning(unk, cfg.base_model)):
            warnings.append(warning)
        train_enc, self._val_enc = encode(tokenizer, train, cfg.max_length), encode(tokenizer, val, cfg.max_length)
        steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
        total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        eval_every = cfg.eval_every_steps or min(steps_per_epoch, math.ceil(total / 5))
        optimizer = make_optimizer(model, cfg)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
        self._baseline = majority_baseline(train.labels, val.labels)
        self.events.publish(ev.Started(str(self.run_dir), total, len(train), len(val), data.label_names,
                                       self._precision, unk, warnings))

        generator = torch.Generator().manual_seed(cfg.seed)
        lengths = [len(x) for x in train_enc.input_ids]
        step, seen, bad_evals, self._started = 0, 0, 0, time.time()
        model.train()
        while step < total:
            for indices in length_grouped_batches(lengths, cfg.batch_size, generator):
                self._check_cancel()
                batch = train_enc.batch(indices, tokenizer, self._device)
                with autocast(self._device, self._precision):
                    loss = model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step, seen = step + 1, seen + len(indices)
                elapsed = time.time() - self._started
                self.events.publish(ev.Step(step, total, step / steps_per_epoch, loss.item(), scheduler.get_last_lr()[0],
                                            seen / elapsed, elapsed / step * (total - step)))
                if step % eval_every == 0 or step == total:
                    improved = self._evaluate(step, step / steps_per_epoch)
                    bad_evals = 0 if improved else bad_evals + 1
                    if cfg.early_stopping_patience and bad_evals >= cfg.early_stopping_patience:
                        self.events.publish(ev.Status(f"Early stopping: no macro-F1 gain in {bad_evals} evaluations"))
                        total = step
                if step >= total:
                    break
        self._samples_per_s = seen / (time.time() - self._started)
        metrics = self._write_metrics()
        self.store.set_status(self.run_dir, FINISHED)
        self.events.publish(ev.Finished(str(self.run_dir), metrics, metrics["train_seconds"], self._samples_per_s))

    @torch.inference_mode()
    def _predict_val(self) -> tuple[float, list[int], list[list[float]]]:
        model, enc = self._model, self._val_enc
        model.eval()
        order = sorted(range(len(enc.labels)), key=lambda i: len(enc.input_ids[i]))
        batch_size = max(64, self.config.batch_size * 2)
        total_loss, preds, probs = 0.0, [0] * len(order), [[]] * len(order)
        for start in range(0, len(order), batch_size):
            self._check_cancel()
            indices = order[start:start + batch_size]
            with autocast(self._device, self._precision):
                out = model(**enc.batch(indices, self._tokenizer, self._device))
            total_loss += float(out.loss) * len(indices)
            p = out.logits.float().softmax(-1)
            for i, row in zip(indices, p.tolist()):
                probs[i] = row
                preds[i] = max(range(len(row)), key=row.__getitem__)
        model.train()
        return total_loss / len(order), preds, probs

    def _evaluate(self, step: int, epoch: float) -> bool:
        loss, preds, probs = self._predict_val()
        metrics = classification_metrics(self._val.labels, preds, self.data.label_names)
        improved = self._best is None or metrics.macro_f1 > self._best["macro_f1"]
        if improved:
            self._best = {**metrics.to_dict(), "val_loss": loss, "step": step, "epoch": epoch}
            self._save_checkpoint()
            self._save_val_predictions(preds, probs)
        self.events.publish(ev.Evaluation(step, epoch, loss, metrics.accuracy, metrics.macro_precision,
                                          metrics.macro_recall, metrics.macro_f1, metrics.per_class,
                                          metrics.confusion, improved))
        return improved

    def _save_checkpoint(self) -> None:
        """Save weights + config into a temp folder, then move each file in (never half-written)."""
        tmp = self.run_dir / ".checkpoint-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self._model.save_pretrained(tmp, safe_serialization=True)
        for item in tmp.iterdir():
            os.replace(item, self.run_dir / item.name)
        tmp.rmdir()

    def _save_val_predictions(self, preds: list[int], probs: list[list[float]]) -> None:
        names = self.data.label_names
        frame = pd.DataFrame({
            "text": self._val.texts,
            "label": [names[y] for y in self._val.labels],
            "predicted": [names[p] for p in preds],
            "confidence": [round(max(p), 4) for p in probs],
        })
        tmp = self.run_dir / ".validation.csv.tmp"
        frame.to_csv(tmp, index=False)
        os.replace(tmp, self.run_dir / "validation_predictions.csv")

    def _write_metrics(self) -> dict:
        metrics = dict(self._best or {})
        metrics.update({
            "majority_baseline": self._baseline,
            "train_seconds": time.time() - self._started,
            "samples_per_s": self._samples_per_s,
            "precision": self._precision,
            "device": str(self._device),
        })
        write_json_atomic(self.run_dir / "metrics.json", metrics)
        return metrics
