"""Load a saved run of any task and predict: labels, numbers, label sets or entity spans."""
from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch

from ..common.devices import pick_device
from ..common.errors import DataError, ModelError
from ..data.tables import DataLimits, guess_text_column, read_table
from ..runs.config import TrainConfig
from ..runs.run_folder import RunFolder
from ..runs.weights import load_run_model, weights_file
from ..tasks import get_task
from ..tasks.types import Prediction

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix cells a spreadsheet would run as formulas (=, +, -, @) with a quote."""
    def clean(value):
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value
    return frame.apply(lambda column: column.map(clean) if column.dtype == object or column.dtype == "string" else column)


@lru_cache(maxsize=4)
def _cached_predictor(run_dir: str, weights_mtime: float, config_mtime: float) -> "Predictor":
    return Predictor(run_dir)


def load_predictor(run_dir: str | Path) -> "Predictor":
    """A Predictor kept in memory; reloaded when the run's weights or config (e.g. a saved threshold) change."""
    config = Path(run_dir) / RunFolder.MODEL_CONFIG
    return _cached_predictor(str(run_dir), weights_file(Path(run_dir)).stat().st_mtime,
                             config.stat().st_mtime if config.is_file() else 0.0)


class Predictor:
    """A fine-tuned model loaded from a run folder; the run's task shapes inputs and outputs."""

    def __init__(self, run_dir: str | Path, device: torch.device | None = None, merge: bool = True):
        self.run_dir = Path(run_dir)
        weights_file(self.run_dir)
        self.device = device or pick_device()
        config_path = self.run_dir / RunFolder.CONFIG
        train_config = TrainConfig.load(config_path) if config_path.is_file() else TrainConfig(max_length=256)
        self.task = get_task(train_config.task)
        self.tokenizer = self.task.load_processor(self.run_dir)
        self.model = load_run_model(self.run_dir, self.task.model_class, train_config.base_model, merge)
        self.model = self.model.to(self.device).eval()
        self.label_names = [self.model.config.id2label[i] for i in range(len(self.model.config.id2label))]
        trained_length = train_config.max_length
        self.max_length = min(trained_length, getattr(self.model.config, "max_position_embeddings", None) or trained_length)
        self._lock = threading.Lock()  # fast tokenizers are not safe to call from two threads at once

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.task.view.predict_inputs

    def predict(self, rows: list[str] | dict[str, list[str]], batch_size: int | None = None) -> list[Prediction]:
        """Predict texts (a list, for one-input tasks) or role -> texts (e.g. text_a and text_b for pairs)."""
        if self.task.generative:
            raise ModelError(f"'{self.run_dir.name}' is an assistant: talk to it in the Chat tab or with "
                             "`python -m core chat`.")
        if not isinstance(rows, dict):
            rows = {self.inputs[0]: list(rows)}
        rows = {role: [t if isinstance(t, bytes) else str(t) for t in rows[role]] for role in self.inputs}  # bytes: images
        with self._lock, torch.inference_mode():
            return self._predict(rows, batch_size or getattr(self.model, "batch_size", 64))

    def _predict(self, rows: dict[str, list[str]], batch_size: int) -> list[Prediction]:
        features = self.task.encode_inputs(self.tokenizer, rows, self.max_length)
        outputs = [None] * len(rows[self.inputs[0]])
        for indices, batch in self.task.feature_batches(self.tokenizer, features, batch_size):
            logits = self.model(**batch.to(self.device)).logits.float().cpu().numpy()
            for row, i in enumerate(indices):
                outputs[i] = logits[row, :len(features["input_ids"][i])] if self.task.per_token else logits[row]
        return self.task.format(outputs, features, self.model.config)

    def predict_frame(self, frame: pd.DataFrame, columns: dict[str, str] | None = None) -> pd.DataFrame:
        """A copy of ``frame`` with the task's prediction columns (label + probabilities, score, labels, spans)."""
        columns = dict(columns or {})
        for role in self.inputs:
            if not columns.get(role):
                columns[role] = role if role in frame.columns else guess_text_column(
                    frame.drop(columns=[c for c in columns.values() if c in frame.columns]))
            if columns[role] not in frame.columns:
                raise DataError(f"The {role.replace('_', ' ')} column '{columns[role]}' is not in the table.")
        rows = {role: frame[columns[role]].fillna("").astype(str).tolist() for role in self.inputs}
        predictions = self.predict(rows)
        return pd.concat([frame.reset_index(drop=True),
                          pd.DataFrame([self.task.output.columns(p) for p in predictions])], axis=1)

    def predict_file(self, in_path: str | Path, out_path: str | Path, columns: dict[str, str] | None = None,
                     limits: DataLimits = DataLimits()) -> pd.DataFrame:
        """Predict every row of a table file and write a CSV safe to open in a spreadsheet."""
        out = self.predict_frame(read_table(in_path, limits), columns)
        neutralise_formulas(out).to_csv(out_path, index=False, encoding="utf-8-sig")
        return out

