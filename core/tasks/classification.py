"""Single-label text classification: one text column, one label column; softmax head, macro-F1."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..common.errors import DataError
from ..data.tables import LABEL_NAME_HINTS, TEXT_NAME_HINTS, as_strings, name_hint
from ..models import mean_pooled  # noqa: F401  (registers the few-shot mode's architecture for loading runs)
from .base import Task, missing_text_warnings
from .metrics import classification_metrics
from .outputs import LABEL
from .types import Encoded, Prediction, Role, Scored, TaskData, TaskView

CLASS_CARDS = (("macro_f1", "macro-F1"), ("accuracy", "accuracy"), ("macro_precision", "precision"),
               ("macro_recall", "recall"))

CLASSICAL_C = 10.0  # inverse L2 strength of the TF-IDF logistic regression (sparse n-grams want little shrinkage)


def guess_label_column(frame: pd.DataFrame) -> str:
    """The column with few distinct values, preferring names such as 'label' or 'category'."""
    candidates = []
    for column in frame.columns:
        values = as_strings(frame[column])
        values = values[values != ""]
        distinct = values.nunique()
        hinted = name_hint(column, LABEL_NAME_HINTS)
        if hinted or 2 <= distinct <= max(2, min(1000, len(values) // 2)):
            candidates.append((not hinted, distinct / max(len(values), 1), column))
    if not candidates:
        raise DataError("No column looks like a label. The table needs a column with the class of each text.")
    return min(candidates)[2]


def label_sort_key(name: str):
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def normalise_label(value: str) -> str:
    """Treat 1, "1" and 1.0 as the same label."""
    if re.fullmatch(r"[-+]?\d+\.0+", value):
        return value.split(".")[0]
    return value


def class_index(labels: pd.Series, column: str) -> tuple[list[str], list[int]]:
    """Sorted class names and each row's index; refuses ID-like columns, single classes and 1-row classes."""
    counts = labels.value_counts()
    if len(counts) > 50 and len(counts) > len(labels) / 2:
        raise DataError(f"The label column '{column}' has {len(counts):,} different values for {len(labels):,} "
                        "rows: it looks like an ID or free text, not a class. Choose another label column.")
    if len(counts) < 2:
        raise DataError(f"Every row has the same label '{counts.index[0]}'. Training needs at least two classes.")
    rare = [str(name) for name, n in counts.items() if n < 2]
    if rare:
        shown = ", ".join(f"'{r}'" for r in rare[:5]) + (f" and {len(rare) - 5} more" if len(rare) > 5 else "")
        raise DataError(f"{len(rare)} class(es) have fewer than 2 rows: {shown}. Add examples or remove them.")
    names = sorted(counts.index, key=label_sort_key)
    index = {name: i for i, name in enumerate(names)}
    return names, [index[v] for v in labels]


class Classification(Task):
    name = "classification"
    roles = (Role("text", "text", TEXT_NAME_HINTS), Role("label", "label", LABEL_NAME_HINTS, text=False))
    view = TaskView("Classify texts", "文本分类", ("text",), CLASS_CARDS, "confusion", "Per-class metrics")
    output = LABEL
    primary_metric = "macro_f1"
    classical_name = "TF-IDF + logistic regression"
    augmentations = ("eda", "synonyms", "oversample")

    def guess_role(self, frame, role, chosen):
        return guess_label_column(frame) if role.name == "label" else super().guess_role(frame, role, chosen)

    def build(self, frame: pd.DataFrame, columns: dict[str, str]) -> TaskData:
        values = self.strings(frame, columns)
        target = columns["label"]
        labels = values["label"].map(normalise_label)
        total = len(frame)
        missing = int((labels == "").sum())
        if missing > total / 2:
            raise DataError(f"The label column '{target}' is empty on {missing:,} of {total:,} rows. "
                            "Fill in the labels or choose another column.")
        keep = labels != ""
        warnings = missing_text_warnings(self, values, columns, keep)
        for role in self.roles:
            if role.text:
                keep &= values[role.name] != ""
        if not keep.any():
            raise DataError("No row has both a text and a label.")
        names, targets = class_index(labels[keep], target)
        inputs = {r.name: values[r.name][keep].tolist() for r in self.roles if r.text}
        return TaskData(inputs, targets, columns, names, rows_total=total, rows_dropped=total - int(keep.sum()),
                        warnings=warnings)

    def to_frame(self, data: TaskData) -> pd.DataFrame:
        return pd.DataFrame({**data.inputs, "label": [data.label_names[y] for y in data.targets]})

    def split(self, data: TaskData, val_fraction: float, seed: int, folds: int = 1,
              fold: int = 0) -> tuple[TaskData, TaskData]:
        """Stratified split (or folds); every class keeps at least one row on each side."""
        if folds > 1:
            rare = min(data.class_counts().items(), key=lambda item: item[1])
            if rare[1] < folds:
                raise DataError(f"The class '{rare[0]}' has {rare[1]} row(s), fewer than the {folds} folds: each fold "
                                "needs one. Use fewer folds or add rows.")
            return self.fold_split(data, folds, fold, seed, strata=list(data.targets))
        n_classes = len(data.label_names)
        n_val = max(n_classes, round(val_fraction * len(data)))
        if len(data) - n_val < n_classes:
            raise DataError(f"{len(data)} rows are too few to hold out a validation set for {n_classes} classes. "
                            "Add rows or lower the validation fraction.")
        train_idx, val_idx = train_test_split(list(range(len(data))), test_size=n_val,
                                              stratify=data.targets, random_state=seed)
        return data.subset(train_idx), data.subset(val_idx)

    def encode(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        return Encoded(**self.encode_inputs(tokenizer, data.inputs, max_length), labels=list(data.targets))

    def score(self, outputs, val, encoded, state) -> Scored:
        probs = softmax(np.stack(outputs))
        preds = probs.argmax(-1).tolist()
        metrics = classification_metrics(val.targets, preds, val.label_names).to_dict()
        names = val.label_names
        frame = pd.DataFrame({**val.inputs, "label": [names[y] for y in val.targets],
                              "predicted": [names[p] for p in preds], "confidence": probs.max(-1).round(4)})
        return Scored(metrics, frame, probabilities=probs, truth=np.asarray(val.targets))

    def prediction_metrics(self, predictions, truth) -> dict:
        names = sorted(set(truth) | {p.label for p in predictions}, key=label_sort_key)
        index = {n: i for i, n in enumerate(names)}
        return classification_metrics([index[t] for t in truth], [index[p.label] for p in predictions], names).to_dict()

    def baseline(self, train, val, state) -> dict:
        majority = int(np.bincount(train.targets).argmax())
        metrics = classification_metrics(val.targets, [majority] * len(val), val.label_names)
        return {"name": "majority class", "accuracy": metrics.accuracy, "macro_f1": metrics.macro_f1}

    def classical_baseline(self, train, val, state) -> dict:
        x_train, x_val = self.classical_features(train, val)
        model = self.classical_model().fit(x_train, train.targets)
        metrics = classification_metrics(val.targets, model.predict(x_val).tolist(), val.label_names).to_dict()
        return {k: v for k, v in metrics.items() if k not in ("per_class", "confusion")}

    def classical_model(self):
        """The scikit-learn classifier of the classical baseline, fitted on ``classical_features``."""
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=CLASSICAL_C, max_iter=1000)

    def format(self, outputs, features, model_config) -> list[Prediction]:
        names = label_names_of(model_config)
        probs = softmax(np.stack(outputs))
        threshold = (getattr(model_config, "sft_studio", None) or {}).get("threshold")
        if threshold is not None and len(names) == 2:  # saved from the Evaluate tab: the second class is positive
            chosen = (probs[:, 1] >= threshold).astype(int)
        else:
            chosen = probs.argmax(-1)
        return [Prediction(names[int(k)], dict(zip(names, p.tolist()))) for k, p in zip(chosen, probs)]


def label_names_of(model_config) -> list[str]:
    return [model_config.id2label[i] for i in range(len(model_config.id2label))]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)
