"""A run folder and its layout: every file name lives here, and so do the reads and writes of its files.

``runs/<id>/`` holds the model in ``save_pretrained`` form (weights, config.json, tokenizer) beside the
files below; a run folder can also be an export, which has the model files and ``train_config.json``.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import pandas as pd

from ..common.atomic import read_json, write_csv_atomic, write_json_atomic
from . import events as ev
from .config import TrainConfig

RUNNING, FINISHED, CANCELLED, FAILED, INTERRUPTED = "running", "finished", "cancelled", "failed", "interrupted"


class RunFolder:
    """One run's folder: typed access to its config, data description, metrics, history and status."""

    CONFIG = "train_config.json"  # the TrainConfig the run was started with
    MODEL_CONFIG = "config.json"  # the model's config: label map, task and fitted state under ``sft_studio``
    DATA = "data.json"  # the data's name, columns, label names and row counts
    DATASET = "dataset.csv"  # the cleaned rows, for resuming and for worker processes
    METRICS = "metrics.json"  # the best evaluation, baselines, time and speed
    HISTORY = "history.jsonl"  # every event, one JSON object a line
    STATUS = "status.json"  # running / finished / ..., owner, shared
    PREDICTIONS = "validation_predictions.csv"
    OUTPUTS = "validation_outputs.safetensors"  # class tasks: each validation row's probabilities and truth
    WEIGHTS = "model.safetensors"
    ADAPTER = "adapter_model.safetensors"  # LoRA runs keep only the adapter
    RESUME = "resume"  # the last resume checkpoint (a folder)
    WORKERS_LOG = "workers.log"  # multi-process runs: the launcher's output
    STOP = "STOP"  # written by the app to stop worker processes
    TENSORBOARD = "tensorboard"  # the run's curves as TensorBoard event files
    MONITOR_DB = "monitor.db"  # the served model's request log (SQLite), unless another database is given
    CHAT_PREFERENCES = "chat_preferences.csv"  # prompt / chosen / rejected rows given in the Chat tab
    MONITOR_REFERENCE = "monitor_reference.json"  # the validation predictions served traffic is compared with
    LEARNING_CURVE = "learning_curve.json"  # the run's metric at smaller shares of its training rows, and the fit
    SLICES = "slice_columns.csv"  # the table's unused columns that can group rows, row i for dataset.csv's row i

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # -- config and data -------------------------------------------------------
    def config(self) -> TrainConfig:
        return TrainConfig.load(self.path / self.CONFIG)

    def config_dict(self) -> dict:
        return read_json(self.path / self.CONFIG, {}) or {}

    def write_config(self, config: TrainConfig) -> None:
        write_json_atomic(self.path / self.CONFIG, json.loads(config.to_json()))

    def data(self) -> dict:
        return read_json(self.path / self.DATA, {}) or {}

    def write_data(self, description: dict, frame: pd.DataFrame) -> None:
        write_json_atomic(self.path / self.DATA, description)
        write_csv_atomic(frame, self.path / self.DATASET)

    def dataset(self) -> pd.DataFrame:
        return pd.read_csv(self.path / self.DATASET, dtype=str, keep_default_na=False)

    def write_slices(self, frame: pd.DataFrame) -> None:
        write_csv_atomic(frame, self.path / self.SLICES)

    def slices(self) -> pd.DataFrame | None:
        """The columns kept to slice the validation rows by (core.insight.slices), or None."""
        path = self.path / self.SLICES
        return pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else None

    def model_config(self) -> dict:
        return read_json(self.path / self.MODEL_CONFIG, {}) or {}

    # -- results -----------------------------------------------------------------
    def metrics(self) -> dict:
        return read_json(self.path / self.METRICS, {}) or {}

    def write_metrics(self, metrics: dict) -> None:
        write_json_atomic(self.path / self.METRICS, metrics)

    def write_predictions(self, frame: pd.DataFrame) -> None:
        write_csv_atomic(frame, self.path / self.PREDICTIONS)

    def predictions(self) -> pd.DataFrame | None:
        path = self.path / self.PREDICTIONS
        return pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else None

    @property
    def has_model(self) -> bool:
        return any((self.path / name).is_file() for name in (self.WEIGHTS, self.ADAPTER))

    # -- events ------------------------------------------------------------------
    def append_event(self, event: ev.Event) -> None:
        with contextlib.suppress(OSError):  # a full disk fails the run through its own save, not here
            with open(self.path / self.HISTORY, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")

    def history_size(self) -> int:
        path = self.path / self.HISTORY
        return path.stat().st_size if path.exists() else 0

    def read_events(self, offset: int = 0) -> tuple[int, list[ev.Event]]:
        """Events on the complete lines after byte ``offset``, and the offset after them."""
        try:
            with open(self.path / self.HISTORY, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
        except FileNotFoundError:
            return offset, []
        complete = chunk[:chunk.rfind(b"\n") + 1]
        lines = complete.decode("utf-8").splitlines()
        return offset + len(complete), [ev.from_dict(json.loads(line)) for line in lines if line.strip()]

    def history(self) -> list[dict]:
        """Every event as written (lines a crash cut short are skipped)."""
        path = self.path / self.HISTORY
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
            with contextlib.suppress(ValueError):
                rows.append(json.loads(line))
        return rows

    # -- status ------------------------------------------------------------------
    def status(self) -> dict:
        return read_json(self.path / self.STATUS, {}) or {}

    def set_status(self, status: str, **extra) -> None:
        previous = self.status()
        write_json_atomic(self.path / self.STATUS, {"created": time.time(), **previous, **extra,
                                                    "status": status, "pid": os.getpid(), "updated": time.time()})

    def update_status(self, **fields) -> None:
        write_json_atomic(self.path / self.STATUS, {**self.status(), **fields})

    def has_resume_checkpoint(self) -> bool:
        return (self.path / self.RESUME / "state.pt").is_file()
