"""Multi-label: each text has zero or more labels from a set. Sigmoid head (BCE), thresholds tuned on validation."""
from __future__ import annotations

import ast
import json
from collections import Counter

import numpy as np
import pandas as pd
import torch

from ..common.errors import DataError
from ..data.tables import TEXT_NAME_HINTS, as_strings, guess_text_column_or_none
from .base import Task, missing_text_warnings
from .metrics import multi_label_metrics
from .outputs import LABELS
from .types import Encoded, Prediction, Role, Scored, TaskData, TaskView

LABELS_HINTS = ("labels", "tags", "genres", "genre", "categories", "topics", "keywords", "label", "标签", "类别")
SEPARATORS = ("|", ";", ",")
INDICATORS = "labels from 0/1 columns"
ONES, ZEROS = {"1", "1.0", "true", "yes"}, {"0", "0.0", "false", "no"}
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
MIN_POSITIVES_FOR_OWN_THRESHOLD = 5
MULTI_CARDS = (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("subset_accuracy", "subset accuracy"),
               ("hamming_loss", "Hamming loss"), ("micro_f1_at_0.5", "micro-F1 at 0.5"))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def detect_separator(cells: pd.Series) -> str | None:
    """The separator found in most cells that are not lists (None: one label per cell)."""
    filled = cells[(cells != "") & ~cells.str.startswith("[")]
    shares = {sep: filled.str.contains(sep, regex=False).mean() for sep in SEPARATORS}
    best = max(shares, key=shares.get) if shares else None
    return best if best and shares[best] > 0.05 else None


def split_cell(cell, separator: str | None) -> list[str]:
    if isinstance(cell, (list, tuple)):
        return [str(x).strip() for x in cell if str(x).strip()]
    if cell == "":
        return []
    if cell.startswith("[") and cell.endswith("]"):
        try:
            parsed = json.loads(cell)
        except ValueError:
            try:
                parsed = ast.literal_eval(cell)
            except (ValueError, SyntaxError):
                raise DataError(f"The label cell {cell[:40]!r} is not a valid list, e.g. [\"sports\", \"news\"].")
        return split_cell(list(parsed) if isinstance(parsed, (list, tuple)) else [parsed], None)
    return [part.strip() for part in (cell.split(separator) if separator else [cell]) if part.strip()]


def indicator_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding only 0/1 (or true/false) with at least one 1: one column per label."""
    found = []
    for column in frame.columns:
        values = as_strings(frame[column]).str.lower()
        values = values[values != ""]
        if len(values) and values.isin(ONES | ZEROS).all() and values.isin(ONES).any():
            found.append(column)
    return found


def looks_multi_label(values: pd.Series) -> bool:
    """Cells with several labels from a small set that repeat (not free text with commas)."""
    separator = detect_separator(values)
    if separator is None and not values.str.startswith("[").mean() > 0.5:
        return False
    lists = [split_cell(v, separator) for v in values if v != ""]
    counts = Counter(label for labels in lists for label in labels)
    several = sum(len(labels) > 1 for labels in lists) / max(len(lists), 1)
    return several > 0.1 and len(counts) <= max(2, len(lists) // 3) and max(map(len, counts), default=99) <= 40


class MultiLabel(Task):
    name = "multi_label"
    roles = (Role("text", "text", TEXT_NAME_HINTS), Role("labels", "labels", LABELS_HINTS, text=False))
    view = TaskView("Multi-label", "多标签分类", ("text",), MULTI_CARDS, "per_label", "Per-label metrics")
    output = LABELS
    primary_metric = "micro_f1"
    classical_name = "TF-IDF + one-vs-rest logistic regression"

    def guess_role(self, frame, role, chosen):
        if role.text:
            return super().guess_role(frame, role, chosen)
        found = [c for c in frame.columns if looks_multi_label(as_strings(frame[c]))]
        if not found:
            raise DataError("No column holds several labels per row (e.g. 'sports|politics' or [\"a\", \"b\"]).")
        return found[0]

    def recognises(self, frame: pd.DataFrame) -> bool:
        """A column of label lists beside the text column (short texts with commas are not label lists), or 0/1
        columns, one per label."""
        text = guess_text_column_or_none(frame)
        return (any(looks_multi_label(as_strings(frame[c])) for c in frame.columns if c != text)
                or len(indicator_columns(frame)) >= 2)

    def prepare(self, frame: pd.DataFrame, columns: dict[str, str | None] | None = None) -> TaskData:
        """Also accepts one 0/1 column per label: they become one list-of-labels column named INDICATORS."""
        columns = dict(columns or {})
        if columns.get("labels") in (None, "", INDICATORS):
            flags = indicator_columns(frame.drop(columns=[c for c in [columns.get("text")] if c in frame.columns]))
            if len(flags) >= 2:
                on = frame[flags].map(lambda v: str(v).strip().lower() in ONES)
                frame = frame.drop(columns=flags).assign(**{INDICATORS: [
                    json.dumps([f for f in flags if row[f]], ensure_ascii=False) for _, row in on.iterrows()]})
                columns["labels"] = INDICATORS
        return super().prepare(frame, columns)

    def build(self, frame: pd.DataFrame, columns: dict[str, str]) -> TaskData:
        values = self.strings(frame, columns)
        raw = frame[columns["labels"]]
        cells = raw if raw.map(lambda v: isinstance(v, (list, tuple))).any() else values["labels"]
        separator = detect_separator(values["labels"])
        labels = cells.map(lambda cell: split_cell(cell if isinstance(cell, (list, tuple)) else str(cell).strip()
                                                   if not pd.isna(cell) else "", separator))
        # a blank cell is a missing answer; an explicit empty list ([] or all 0/1 columns 0) means "none apply"
        has_labels = labels.map(bool) | (values["labels"] == "[]")
        empty = int((~has_labels).sum())
        if empty > len(frame) / 2:
            raise DataError(f"{empty:,} of {len(frame):,} rows have no labels in '{columns['labels']}'. Fill them in "
                            "or choose the column that lists each text's labels.")
        warnings = missing_text_warnings(self, values, columns, has_labels)
        if empty:
            warnings.append(f"{empty:,} row(s) have no labels and were left out.")
        keep = has_labels & (values["text"] != "")
        counts = Counter(label for row in labels[keep] for label in row)
        if len(counts) < 2:
            raise DataError("Multi-label training needs at least two different labels.")
        names = sorted(counts)
        index = {name: i for i, name in enumerate(names)}
        return TaskData({"text": values["text"][keep].tolist()}, [[index[x] for x in row] for row in labels[keep]],
                        columns, names, rows_total=len(frame), rows_dropped=int((~keep).sum()), warnings=warnings)

    def to_frame(self, data: TaskData) -> pd.DataFrame:
        names = data.label_names
        return pd.DataFrame({"text": data.inputs["text"],
                             "labels": [json.dumps([names[i] for i in row], ensure_ascii=False) for row in data.targets]})

    def describe(self, data: TaskData) -> str:
        per_row = np.mean([len(row) for row in data.targets])
        return f"{super().describe(data)} · {len(data.label_names)} labels, {per_row:.2f} per row on average"

    def balance(self, data: TaskData) -> dict[str, int]:
        counts = Counter(i for row in data.targets for i in row)
        return {name: counts.get(i, 0) for i, name in enumerate(data.label_names)}

    def head(self, data: TaskData) -> dict:
        return {**super().head(data), "problem_type": "multi_label_classification"}

    def multi_hot(self, targets: list[list[int]], width: int) -> np.ndarray:
        matrix = np.zeros((len(targets), width), dtype=np.float32)
        for row, labels in enumerate(targets):
            matrix[row, labels] = 1.0
        return matrix

    def encode(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        return Encoded(**self.encode_inputs(tokenizer, data.inputs, max_length),
                       labels=self.multi_hot(data.targets, len(data.label_names)).tolist(), label_dtype=torch.float32)

    def tune_thresholds(self, probs: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """Thresholds that maximise micro-F1 on validation: the best global one, then, label by label, the
        threshold of each label with enough positives that raises micro-F1 further (coordinate ascent)."""
        truth = truth.astype(bool)
        counts = np.stack([np.stack([((probs >= t) & truth).sum(0), ((probs >= t) & ~truth).sum(0)])
                           for t in THRESHOLDS])  # thresholds x (tp, fp) x labels
        positives = truth.sum(0)

        def micro(tp: np.ndarray, fp: np.ndarray) -> np.ndarray:
            return 2 * tp / np.maximum(tp + fp + positives.sum(), 1)

        chosen = np.full(probs.shape[1], int(np.argmax(micro(counts[:, 0].sum(1), counts[:, 1].sum(1)))))
        for label in np.flatnonzero(positives >= MIN_POSITIVES_FOR_OWN_THRESHOLD):
            picked = counts[chosen, :, np.arange(probs.shape[1])].sum(0)  # (tp, fp) with the current thresholds
            others = picked - counts[chosen[label], :, label]
            chosen[label] = int(np.argmax(micro(others[0] + counts[:, 0, label], others[1] + counts[:, 1, label])))
        return THRESHOLDS[chosen]

    def tuned_metrics(self, probs: np.ndarray, truth: np.ndarray, names: list[str]) -> tuple[dict, np.ndarray, np.ndarray]:
        """Metrics at thresholds tuned on the validation rows (and micro-F1 at 0.5), the thresholds and the
        0/1 predictions: the same for the model and its classical baseline."""
        thresholds = self.tune_thresholds(probs, truth)
        predicted = (probs >= thresholds).astype(int)
        metrics = multi_label_metrics(truth, predicted, names)
        metrics["micro_f1_at_0.5"] = multi_label_metrics(truth, (probs >= 0.5).astype(int), names)["micro_f1"]
        return metrics, thresholds, predicted

    def score(self, outputs, val, encoded, state) -> Scored:
        probs = sigmoid(np.stack(outputs))
        truth = self.multi_hot(val.targets, len(val.label_names)).astype(int)
        metrics, thresholds, predicted = self.tuned_metrics(probs, truth, val.label_names)
        for name, t in zip(val.label_names, thresholds):
            metrics["per_class"][name]["threshold"] = float(t)
        names = val.label_names
        frame = pd.DataFrame({"text": val.inputs["text"],
                              "label": ["|".join(names[i] for i in row) for row in val.targets],
                              "predicted": ["|".join(n for n, on in zip(names, row) if on) for row in predicted],
                              "confidence": probs.max(-1).round(4)})
        return Scored(metrics, frame, {"thresholds": dict(zip(names, map(float, thresholds)))}, probs, truth)

    def prediction_metrics(self, predictions, truth) -> dict:
        given = [set(cell.split("|")) - {""} for cell in truth]
        chosen = [set(p.labels) for p in predictions]
        names = sorted(set().union(*given, *chosen))

        def multi_hot(rows: list[set[str]]) -> np.ndarray:
            return np.array([[int(n in row) for n in names] for row in rows])

        return multi_label_metrics(multi_hot(given), multi_hot(chosen), names)

    def baseline(self, train, val, state) -> dict:
        """Always the labels on more than half the training rows, else the most frequent one."""
        share = self.multi_hot(train.targets, len(train.label_names)).mean(0)
        constant = (share > 0.5).astype(int) if (share > 0.5).any() else (share == share.max()).astype(int)
        truth = self.multi_hot(val.targets, len(val.label_names)).astype(int)
        metrics = multi_label_metrics(truth, np.tile(constant, (len(val), 1)), val.label_names)
        return {"name": "most frequent labels", **{k: v for k, v in metrics.items() if k != "per_class"}}

    def classical_baseline(self, train, val, state) -> dict:
        """One-vs-rest TF-IDF logistic regression, its thresholds tuned on validation as the model's are."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        from .classification import CLASSICAL_C

        x_train, x_val = self.classical_features(train, val)
        width = len(train.label_names)
        model = OneVsRestClassifier(LogisticRegression(C=CLASSICAL_C, max_iter=1000))
        model.fit(x_train, self.multi_hot(train.targets, width).astype(int))
        truth = self.multi_hot(val.targets, width).astype(int)
        metrics = self.tuned_metrics(model.predict_proba(x_val), truth, val.label_names)[0]
        return {k: v for k, v in metrics.items() if k != "per_class"}

    def format(self, outputs, features, model_config) -> list[Prediction]:
        names = [model_config.id2label[i] for i in range(len(model_config.id2label))]
        thresholds = model_config.sft_studio["thresholds"]
        results = []
        for probs in sigmoid(np.stack(outputs)):
            chosen = [n for n, p in zip(names, probs) if p >= thresholds[n]]
            results.append(Prediction(probabilities=dict(zip(names, probs.tolist())), labels=chosen))
        return results
