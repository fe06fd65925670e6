"""What a run's validation outputs tell beyond its metrics: ROC and precision-recall curves per class, a
reliability diagram with the expected calibration error, metrics at a decision threshold, and suspected label
errors (confident learning, ``cleanlab``). Works on ``validation_outputs.safetensors``: each validation row's
class probabilities and its true class index (single-label) or 0/1 row (multi-label).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from safetensors.numpy import load_file, save_file
from sklearn.metrics import (
    auc,
    average_precision_score,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_curve,
)

from ..common.atomic import read_json, write_json_atomic
from ..common.errors import ModelError
from ..runs.run_folder import RunFolder

OUTPUTS_FILE = RunFolder.OUTPUTS
CALIBRATION_BINS = 10
MAX_LABEL_ISSUES = 50


@dataclass
class ValidationOutputs:
    probabilities: np.ndarray  # rows x classes
    truth: np.ndarray  # rows (class index) or rows x classes (0/1)
    names: list[str]

    @property
    def multi_label(self) -> bool:
        return self.truth.ndim == 2

    @property
    def one_hot(self) -> np.ndarray:
        if self.multi_label:
            return self.truth.astype(int)
        return np.eye(len(self.names), dtype=int)[self.truth]


def save_outputs(run_dir: Path, probabilities: np.ndarray, truth: np.ndarray) -> None:
    path = Path(run_dir) / OUTPUTS_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({"probabilities": probabilities.astype(np.float32), "truth": truth.astype(np.int64)}, str(tmp))
    tmp.replace(path)


def load_outputs(run_dir: Path) -> ValidationOutputs | None:
    """The best checkpoint's validation outputs, or None for tasks without class probabilities."""
    path = Path(run_dir) / OUTPUTS_FILE
    if not path.is_file():
        return None
    arrays = load_file(str(path))
    names = RunFolder(run_dir).data().get("label_names", [])
    return ValidationOutputs(arrays["probabilities"], arrays["truth"], names)


@dataclass
class ClassCurve:
    """One class against the rest: ROC (with AUC) and precision-recall (with average precision)."""

    name: str
    fpr: list[float]
    tpr: list[float]
    roc_auc: float
    precision: list[float]
    recall: list[float]
    average_precision: float


def class_curves(outputs: ValidationOutputs) -> list[ClassCurve]:
    """One-vs-rest curves for every class that has both positive and negative validation rows."""
    curves = []
    for k, name in enumerate(outputs.names):
        truth, score = outputs.one_hot[:, k], outputs.probabilities[:, k]
        if truth.min() == truth.max():
            continue  # AUC is undefined without both kinds of row
        fpr, tpr, _ = roc_curve(truth, score)
        precision, recall, _ = precision_recall_curve(truth, score)
        curves.append(ClassCurve(name, fpr.tolist(), tpr.tolist(), float(auc(fpr, tpr)), precision.tolist(),
                                 recall.tolist(), float(average_precision_score(truth, score))))
    return curves


@dataclass
class Calibration:
    """Reliability diagram: per confidence bin, the mean confidence, the accuracy and the row count."""

    confidence: list[float]
    accuracy: list[float]
    counts: list[int]
    ece: float


def calibration(outputs: ValidationOutputs, bins: int = CALIBRATION_BINS) -> Calibration:
    """Single-label: the top class's probability against whether it was right; multi-label: every label's
    probability against whether the label applies. ECE = row-weighted mean |accuracy - confidence|."""
    if outputs.multi_label:
        confidence, correct = outputs.probabilities.ravel(), outputs.truth.ravel().astype(float)
    else:
        confidence = outputs.probabilities.max(1)
        correct = (outputs.probabilities.argmax(1) == outputs.truth).astype(float)
    which = np.clip((confidence * bins).astype(int), 0, bins - 1)
    conf, acc, counts, ece = [], [], [], 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            conf.append(float(confidence[mask].mean()))
            acc.append(float(correct[mask].mean()))
            counts.append(int(mask.sum()))
            ece += mask.sum() / len(confidence) * abs(acc[-1] - conf[-1])
    return Calibration(conf, acc, counts, float(ece))


def threshold_metrics(outputs: ValidationOutputs, threshold: float) -> dict[str, float]:
    """Binary tasks: the second class is positive when its probability reaches ``threshold``."""
    predicted = (outputs.probabilities[:, 1] >= threshold).astype(int)
    p, r, f, _ = precision_recall_fscore_support(outputs.truth, predicted, average="binary", zero_division=0)
    macro = precision_recall_fscore_support(outputs.truth, predicted, average="macro", zero_division=0)[2]
    return {"precision": float(p), "recall": float(r), "f1": float(f), "macro_f1": float(macro),
            "accuracy": float((predicted == outputs.truth).mean())}


def save_threshold(run_dir: Path, threshold: float) -> None:
    """Store a binary decision threshold with the run's model, where prediction and exports read it."""
    path = Path(run_dir) / RunFolder.MODEL_CONFIG
    config = read_json(path)
    if not config:
        raise ModelError(f"The run '{Path(run_dir).name}' has no saved model config.")
    if len(config.get("id2label", {})) != 2:
        raise ModelError("A decision threshold applies to two-class runs only.")
    config.setdefault("sft_studio", {})["threshold"] = round(float(threshold), 4)
    write_json_atomic(path, config)


def saved_threshold(run_dir: Path) -> float | None:
    return (RunFolder(run_dir).model_config().get("sft_studio") or {}).get("threshold")


def label_issues(outputs: ValidationOutputs, predictions: pd.DataFrame | None) -> pd.DataFrame:
    """Validation rows whose given label the model doubts most (cleanlab's confident learning), worst first."""
    if predictions is None or len(predictions) != len(outputs.truth):
        return pd.DataFrame()
    try:
        ranked, confidence = ranked_issues(outputs)
    except (ValueError, IndexError):  # cleanlab needs a few rows of each class; small validation sets lack them
        return pd.DataFrame()
    ranked = list(ranked)[:MAX_LABEL_ISSUES]
    rows = predictions.iloc[ranked]
    texts = [c for c in rows.columns if c not in ("label", "predicted", "confidence")]
    return pd.DataFrame({"given label": rows["label"].astype(str).tolist(),
                         "predicted": rows["predicted"].astype(str).tolist(),
                         "confidence in given label": np.round(confidence[:len(ranked)], 4),
                         **{c: rows[c].astype(str).str.slice(0, 300).tolist() for c in texts}})


def ranked_issues(outputs: ValidationOutputs) -> tuple[list[int], list[float]]:
    """Row indices cleanlab flags, most doubtful first, and the model's confidence in each given label (in this
    process: cleanlab's worker processes would fork the whole app, weights and threads included)."""
    from cleanlab.filter import find_label_issues

    if outputs.multi_label:
        given = [list(np.flatnonzero(row)) for row in outputs.truth]
        ranked = find_label_issues(given, outputs.probabilities, multi_label=True,
                                   return_indices_ranked_by="self_confidence", n_jobs=1)
        confidence = [float(np.mean([p if t else 1 - p for p, t in zip(outputs.probabilities[i], outputs.truth[i])]))
                      for i in ranked]
    else:
        ranked = find_label_issues(outputs.truth, outputs.probabilities, return_indices_ranked_by="self_confidence",
                                   n_jobs=1)
        confidence = [float(outputs.probabilities[i, outputs.truth[i]]) for i in ranked]
    return list(ranked), confidence

