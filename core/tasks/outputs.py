"""Output kinds: what a task predicts (a class, a label set, a number, entity spans or a text reply), as Ludwig's
output features. Each kind owns how a prediction becomes batch-CSV columns, what the monitor keeps of it and the
feedback it takes; a task points at its kind (``Task.output``)."""
from __future__ import annotations

import json
import math
from typing import ClassVar

import numpy as np
import pandas as pd

from ..common.errors import DataError
from .types import Prediction

NO_LABEL, NO_ENTITY = "(no label)", "(no entity)"
Outcome = tuple[list[str], float | None, float | None]  # the monitor's (categories, confidence, value)


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class OutputKind:
    """Base of every output kind; the defaults fit one the monitor does not watch, scored by its 'label'."""

    name: ClassVar[str]
    outcome_name: ClassVar[str] = ""  # the drift check's name for the mix of outcome categories; "" for none
    feedback_metric: ClassVar[str] = "accuracy"  # what feedback_score measures
    one_class: ClassVar[bool] = False  # one class per input, with a logit to explain (core.deploy.explain)
    slice_metric: ClassVar[str] = ""  # what core.insight.slices measures of each validation row; "" for nothing
    slice_share: ClassVar[bool] = True  # that metric is the share of rows right (else a mean error, lower is better)

    def columns(self, prediction: Prediction) -> dict:
        """Prediction columns for a batch CSV."""
        raise NotImplementedError

    def outcome(self, prediction: Prediction) -> Outcome:
        """(categories, confidence, value) the monitor keeps of a prediction."""
        raise ValueError(f"no monitor for '{self.name}' outputs")

    def checked_truth(self, truth, labels: list[str]):
        """A true answer sent as feedback, as it is logged; refuses one that does not fit the model's ``labels``."""
        return truth

    def row_scores(self, predictions: pd.DataFrame) -> np.ndarray:
        """Each validation row's ``slice_metric`` from ``validation_predictions.csv``: 1 where the predicted
        answer is the given one, else 0."""
        return (predictions["label"].astype(str) == predictions["predicted"].astype(str)).to_numpy(float)

    def feedback_score(self, predictions: list[dict], truths: list) -> float | None:
        """``feedback_metric`` of served predictions (as JSON) against their true answers; None without any."""
        hits = [float(p.get("label") == truth) for p, truth in zip(predictions, truths)]
        return float(np.mean(hits)) if hits else None


def probability_columns(prediction: Prediction) -> dict:
    return {f"prob_{n}": round(p, 4) for n, p in prediction.probabilities.items()}


class LabelOutput(OutputKind):
    """One class and each class's probability."""

    name = "label"
    one_class = True
    slice_metric = "accuracy"
    outcome_name = "class mix"

    def columns(self, prediction: Prediction) -> dict:
        return {"predicted_label": prediction.label, "confidence": round(prediction.confidence, 4),
                **probability_columns(prediction)}

    def outcome(self, prediction: Prediction) -> Outcome:
        return [prediction.label], prediction.confidence, None

    def checked_truth(self, truth, labels: list[str]):
        if truth not in labels:
            raise DataError(f"'{truth}' is not one of this model's labels ({', '.join(map(str, labels[:20]))}).")
        return truth


class LabelsOutput(OutputKind):
    """A set of labels (each above its threshold) and each label's probability."""

    name = "labels"
    slice_metric = "exact match"

    def row_scores(self, predictions: pd.DataFrame) -> np.ndarray:
        """1 where the predicted set of labels is the given one (``|``-separated, in any order), else 0."""
        def labels(cell) -> set[str]:
            return set(str(cell).split("|")) - {""}

        return np.array([float(labels(a) == labels(b)) for a, b in zip(predictions["label"], predictions["predicted"])])
    outcome_name = "label mix"
    feedback_metric = "exact match"

    def columns(self, prediction: Prediction) -> dict:
        return {"predicted_labels": "|".join(prediction.labels), **probability_columns(prediction)}

    def outcome(self, prediction: Prediction) -> Outcome:
        chosen = [prediction.probabilities[name] for name in prediction.labels if name in prediction.probabilities]
        return list(prediction.labels) or [NO_LABEL], mean(chosen), None

    def checked_truth(self, truth, labels: list[str]):
        if not (isinstance(truth, list) and set(truth) <= set(labels)):
            raise DataError(f"Send the true labels as a list of this model's labels ({', '.join(labels[:20])}).")
        return truth

    def feedback_score(self, predictions: list[dict], truths: list) -> float | None:
        hits = [float(set(p.get("labels", [])) == set(truth)) for p, truth in zip(predictions, truths)]
        return float(np.mean(hits)) if hits else None


class NumberOutput(OutputKind):
    """A score (regression)."""

    name = "number"
    feedback_metric = "RMSE"
    slice_metric = "MAE"
    slice_share = False

    def row_scores(self, predictions: pd.DataFrame) -> np.ndarray:
        """Each validation row's absolute error."""
        return (predictions["label"].astype(float) - predictions["predicted"].astype(float)).abs().to_numpy()

    def columns(self, prediction: Prediction) -> dict:
        return {"predicted_score": round(prediction.value, 4)}

    def outcome(self, prediction: Prediction) -> Outcome:
        return [], None, prediction.value

    def checked_truth(self, truth, labels: list[str]):
        try:
            return float(truth)
        except (TypeError, ValueError):
            raise DataError(f"Send the true score as a number (got {truth!r}).") from None

    def feedback_score(self, predictions: list[dict], truths: list) -> float | None:
        errors = [(p["value"] - float(truth)) ** 2 for p, truth in zip(predictions, truths)]
        return math.sqrt(np.mean(errors)) if errors else None


class SpansOutput(OutputKind):
    """Entity spans of the text: type, character offsets, text and score."""

    name = "spans"
    slice_metric = "exact match"
    outcome_name = "entity types"

    def columns(self, prediction: Prediction) -> dict:
        return {"entities": json.dumps(prediction.spans, ensure_ascii=False)}

    def outcome(self, prediction: Prediction) -> Outcome:
        scores = [span["score"] for span in prediction.spans if "score" in span]
        return [span["entity"] for span in prediction.spans] or [NO_ENTITY], mean(scores), None

    def checked_truth(self, truth, labels: list[str]):
        raise DataError("Feedback on entity predictions is not taken yet.")


class TextOutput(OutputKind):
    """A generated reply: talked to in the Chat tab, neither predicted into tables nor monitored."""

    name = "text"


LABEL, LABELS, NUMBER, SPANS, TEXT = LabelOutput(), LabelsOutput(), NumberOutput(), SpansOutput(), TextOutput()
OUTPUTS: dict[str, OutputKind] = {kind.name: kind for kind in (LABEL, LABELS, NUMBER, SPANS, TEXT)}
