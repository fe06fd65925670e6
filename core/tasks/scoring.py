"""What a task says about a model's outputs: validation scores, the baselines a fine-tune must beat, metric names
and the mistakes worth showing (mixed into ``core.tasks.base.Task``)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .types import Encoded, Prediction, Scored, TaskData


def shown_first(predictions: pd.DataFrame) -> pd.DataFrame:
    """Verdict columns (label, predicted, confidence/error) before the texts, which are cut to 300 characters."""
    verdict = [c for c in ("label", "predicted", "confidence", "error") if c in predictions.columns]
    ordered = predictions[verdict + [c for c in predictions.columns if c not in verdict]]
    return ordered.map(lambda v: v[:300] if isinstance(v, str) else v)


class TaskScoring:
    """The evaluation half of a ``Task`` (whose ``view`` names the metrics); the defaults fit rows of one text."""

    def evaluate(self, ctx) -> tuple[float, Scored]:
        """Validation loss and scores; ``ctx`` (a ``core.train.evaluation.EvalContext``) runs the model over the
        held-out rows."""
        loss, outputs = ctx.forward_validation()
        return loss, self.score(outputs, ctx.val, ctx.val_encoded, ctx.task_state)

    def score(self, outputs: list[np.ndarray], val: TaskData, encoded: Encoded, state: dict) -> Scored:
        raise NotImplementedError

    def metric_name(self, key: str) -> str:
        """A metric's shown name (from the cards), e.g. 'macro-F1' for 'macro_f1'; the key itself if not shown."""
        return dict(self.view.cards).get(key, key)

    def headline(self, metrics: dict) -> str:
        """The task's metric cards as one line, e.g. 'macro-F1 0.9512 · accuracy 0.9550'."""
        return " · ".join(f"{name} {metrics[key]:.4f}" for key, name in self.view.cards
                          if isinstance(metrics.get(key), (int, float)))

    def baseline(self, train: TaskData, val: TaskData, state: dict) -> dict | None:
        """Metrics of the trivial predictor a fine-tune must beat, as {'name': ..., metric: value}."""
        return None

    def classical_baseline(self, train: TaskData, val: TaskData, state: dict) -> dict:
        """Metrics of the classical model named ``classical_name``, fitted on ``train`` and scored on ``val``
        with the task's own metrics (``core.tasks.classical.fit_classical`` times it and catches what cannot fit)."""
        raise NotImplementedError

    def classical_features(self, train: TaskData, val: TaskData):
        """TF-IDF matrices of the training and validation rows, fitted on the training texts."""
        from .classical import TextFeatures

        features = TextFeatures.fit(self.texts(train))
        return self.classical_matrix(features, train), self.classical_matrix(features, val)

    def classical_matrix(self, features, data: TaskData):
        return features(data.inputs["text"])

    def prediction_metrics(self, predictions: list[Prediction], truth: pd.Series) -> dict | None:
        """The task's metrics of ``predictions`` against the true values as saved in validation_predictions.csv
        (its 'label' column, as strings); None where the task cannot score predictions that way."""
        return None

    def mistakes(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Validation rows the model got wrong, most confident first (texts cut to 300 characters)."""
        wrong = predictions[predictions["label"].astype(str) != predictions["predicted"].astype(str)]
        if "confidence" in wrong.columns:
            wrong = wrong.sort_values("confidence", ascending=False)
        return shown_first(wrong)
