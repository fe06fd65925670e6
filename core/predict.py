"""Load a saved run and predict labels with per-class probabilities."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from .config import TrainConfig
from .data import DataLimits, guess_text_column, read_table
from .engine import pick_device
from .errors import DataError, ModelError
from .lora import is_adapter_run, load_adapter
from .models import resolve_model_path

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix cells a spreadsheet would run as formulas (=, +, -, @) with a quote."""
    def clean(value):
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value
    return frame.apply(lambda column: column.map(clean) if column.dtype == object or column.dtype == "string" else column)


@lru_cache(maxsize=4)
def _cached_predictor(run_dir: str, weights_mtime: float) -> "Predictor":
    return Predictor(run_dir)


def weights_file(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    weights = run_dir / ("adapter_model.safetensors" if is_adapter_run(run_dir) else "model.safetensors")
    if not weights.is_file():
        raise ModelError(f"The run '{run_dir.name}' has no saved model ({weights.name}).")
    return weights


def load_predictor(run_dir: str | Path) -> "Predictor":
    """A Predictor kept in memory; reloaded when the run's weights change on disk."""
    return _cached_predictor(str(run_dir), weights_file(Path(run_dir)).stat().st_mtime)


class Predictor:
    """A fine-tuned classifier loaded from a run folder."""

    def __init__(self, run_dir: str | Path, device: torch.device | None = None, merge: bool = True):
        """Load a run; a LoRA run is loaded as base model + adapter, merged into plain weights unless merge=False."""
        self.run_dir = Path(run_dir)
        weights_file(self.run_dir)
        self.device = device or pick_device()
        self.tokenizer = AutoTokenizer.from_pretrained(self.run_dir, local_files_only=True)
        config_path = self.run_dir / "train_config.json"
        train_config = TrainConfig.load(config_path) if config_path.is_file() else TrainConfig(max_length=256)
        if is_adapter_run(self.run_dir):
            config = AutoConfig.from_pretrained(self.run_dir, local_files_only=True)
            base = AutoModelForSequenceClassification.from_pretrained(
                resolve_model_path(train_config.base_model), config=config, local_files_only=True,
                use_safetensors=True, ignore_mismatched_sizes=True)
            model = load_adapter(base, self.run_dir, merge)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                self.run_dir, local_files_only=True, use_safetensors=True)
        self.model = model.to(self.device).eval()
        id2label = self.model.config.id2label
        self.label_names = [id2label[i] for i in range(len(id2label))]
        trained_length = train_config.max_length
        self.max_length = min(trained_length, getattr(self.model.config, "max_position_embeddings", None) or trained_length)
        self._lock = threading.Lock()  # fast tokenizers are not safe to call from two threads at once

    def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]:
        with self._lock, torch.inference_mode():
            return self._predict([str(t) for t in texts], batch_size)

    def _predict(self, texts: list[str], batch_size: int) -> list[Prediction]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[Prediction | None] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            indices = order[start:start + batch_size]
            enc = self.tokenizer([texts[i] for i in indices], truncation=True, max_length=self.max_length,
                                 padding=True, return_tensors="pt").to(self.device)
            enc.pop("token_type_ids", None)
            probs = self.model(**enc).logits.float().softmax(-1).tolist()
            for i, row in zip(indices, probs):
                best = max(range(len(row)), key=row.__getitem__)
                results[i] = Prediction(self.label_names[best], dict(zip(self.label_names, row)))
        return results

    def predict_frame(self, frame: pd.DataFrame, text_column: str | None = None) -> pd.DataFrame:
        """Return a copy of ``frame`` with predicted label, confidence and one probability column per class."""
        column = text_column or guess_text_column(frame)
        if column not in frame.columns:
            raise DataError(f"The text column '{column}' is not in the table.")
        texts = frame[column].fillna("").astype(str).tolist()
        predictions = self.predict(texts)
        out = frame.copy()
        out["predicted_label"] = [p.label for p in predictions]
        out["confidence"] = [round(p.confidence, 4) for p in predictions]
        for name in self.label_names:
            out[f"prob_{name}"] = [round(p.probabilities[name], 4) for p in predictions]
        return out

    def predict_file(self, in_path: str | Path, out_path: str | Path, text_column: str | None = None,
                     limits: DataLimits = DataLimits()) -> pd.DataFrame:
        """Predict every row of a table file and write a CSV safe to open in a spreadsheet."""
        out = self.predict_frame(read_table(in_path, limits), text_column)
        neutralise_formulas(out).to_csv(out_path, index=False, encoding="utf-8-sig")
        return out

    def export(self, out_dir: str | Path) -> Path:
        """Write a plain Hugging Face folder (LoRA merged in) that any transformers code can load."""
        out_dir = Path(out_dir)
        model = self.model.merge_and_unload() if hasattr(self.model, "merge_and_unload") else self.model
        model.save_pretrained(out_dir, safe_serialization=True)
        self.tokenizer.save_pretrained(out_dir)
        return out_dir
