"""Is a new run at least as good as the served one? Both models' predictions of the SAME held-out rows
(``core/deploy/held_out_check.py`` makes them): each model's primary metric, the difference new - served and its 95%
paired bootstrap interval (the same resampled rows for both models, 1,000 resamples).

The verdict rule: with ``gain`` the difference in the direction the metric improves (new - served, or
served - new for an error such as RMSE), the new run is "not worse" when the lower bound of the gain's interval is
at least -0.01 or the gain itself is at least 0; otherwise it is "worse". The new run must not have trained on the
served run's validation rows, or it is flattered.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..common.errors import DataError
from ..tasks.multi_label import detect_separator, split_cell
from ..tasks.types import Prediction

RESAMPLES, MARGIN, CHUNK = 1000, 0.01, 100


def class_stats(predictions: list[Prediction], truth: pd.Series) -> np.ndarray:
    """Per row, one-hot over the classes seen: the true class, the predicted class, and the hit."""
    names = sorted(set(truth) | {p.label for p in predictions})
    eye = np.eye(len(names))
    given = eye[[names.index(t) for t in truth]]
    chosen = eye[[names.index(p.label) for p in predictions]]
    return np.hstack([given, chosen, given * chosen])


def macro_f1(sums: np.ndarray) -> np.ndarray:
    """Macro-F1 over the classes present (in the truth or the predictions) of each resample."""
    k = sums.shape[-1] // 3
    both = sums[..., :k] + sums[..., k:2 * k]
    f1 = np.divide(2 * sums[..., 2 * k:], both, out=np.zeros_like(both), where=both > 0)
    return f1.sum(-1) / np.maximum((both > 0).sum(-1), 1)


def accuracy(sums: np.ndarray) -> np.ndarray:
    k = sums.shape[-1] // 3
    return sums[..., 2 * k:].sum(-1) / sums[..., :k].sum(-1)


def label_set_stats(predictions: list[Prediction], truth: pd.Series) -> np.ndarray:
    """Per row: labels both given and predicted, predicted, given."""
    separator = detect_separator(truth)
    given = [set(split_cell(cell, separator)) for cell in truth]
    return np.array([[len(g & set(p.labels)), len(p.labels), len(g)] for p, g in zip(predictions, given)], float)


def micro_f1(sums: np.ndarray) -> np.ndarray:
    both = sums[..., 1] + sums[..., 2]
    return np.divide(2 * sums[..., 0], both, out=np.zeros_like(both), where=both > 0)


def score_stats(predictions: list[Prediction], truth: pd.Series) -> np.ndarray:
    """Per row: the squared error and a count."""
    error = np.array([p.value for p in predictions]) - truth.astype(float).to_numpy()
    return np.stack([error ** 2, np.ones_like(error)], axis=1)


def rmse(sums: np.ndarray) -> np.ndarray:
    return np.sqrt(sums[..., 0] / sums[..., 1])


@dataclass(frozen=True)
class RowMetric:
    """A metric as a function of per-row statistics summed over rows, so a resample is a weighted sum."""

    name: str
    stats: Callable[[list[Prediction], pd.Series], np.ndarray]
    value: Callable[[np.ndarray], np.ndarray]
    greater_is_better: bool = True


METRICS = {"macro_f1": RowMetric("macro-F1", class_stats, macro_f1),
           "accuracy": RowMetric("accuracy", class_stats, accuracy),
           "micro_f1": RowMetric("micro-F1", label_set_stats, micro_f1),
           "rmse": RowMetric("RMSE", score_stats, rmse, greater_is_better=False)}


@dataclass
class MetricComparison:
    """One metric of both models on the same rows; ``low``/``high``: the 95% interval of new - served."""

    metric: str
    served: float
    new: float
    difference: float
    low: float
    high: float
    verdict: str


def paired_bootstrap(served: np.ndarray, new: np.ndarray, value: Callable, resamples: int = RESAMPLES,
                     seed: int = 0) -> tuple[float, float]:
    """The 95% percentile interval of value(new) - value(served) over ``resamples`` resamples of the rows, each
    resample weighting both models' per-row statistics the same way."""
    rng, n, differences = np.random.default_rng(seed), len(served), []
    for start in range(0, resamples, CHUNK):
        weights = rng.multinomial(n, np.full(n, 1 / n), size=min(CHUNK, resamples - start)).astype(float)
        differences.append(value(weights @ new) - value(weights @ served))
    low, high = np.percentile(np.concatenate(differences), [2.5, 97.5])
    return float(low), float(high)


def compare_metric(metric: RowMetric, served: np.ndarray, new: np.ndarray) -> MetricComparison:
    """Both models' ``metric``, the difference, its interval and the verdict (the module's rule)."""
    before, after = float(metric.value(served.sum(0))), float(metric.value(new.sum(0)))
    low, high = paired_bootstrap(served, new, metric.value)
    sign = 1 if metric.greater_is_better else -1
    gain, gain_low = sign * (after - before), min(sign * low, sign * high)
    verdict = "not worse" if gain_low >= -MARGIN or gain >= 0 else "worse"
    return MetricComparison(metric.name, before, after, after - before, low, high, verdict)


@dataclass
class RowsComparison:
    """Both models on one set of rows: the primary metric first."""

    rows: str
    count: int
    metrics: list[MetricComparison]


@dataclass
class HeldOutReport:
    served: str
    new: str
    comparisons: list[RowsComparison]  # all rows, then the extra rows alone when given

    @property
    def verdict(self) -> str:
        """The primary metric's verdict on all the rows."""
        return self.comparisons[0].metrics[0].verdict

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}

    def lines(self) -> list[str]:
        said = [f"served {self.served} vs new {self.new}"]
        for rows in self.comparisons:
            for m in rows.metrics:
                said.append(f"{rows.rows} ({rows.count:,} rows) {m.metric}: served {m.served:.4f}, new {m.new:.4f}, "
                            f"difference {m.difference:+.4f} [95% {m.low:+.4f}, {m.high:+.4f}]: {m.verdict}")
        return said + [f"verdict: the new run is {self.verdict} than the served one"]


def role_frame(frame: pd.DataFrame, task, columns: dict[str, str]) -> pd.DataFrame:
    """Extra rows as the validation rows hold them: the inputs by role and the truth as 'label' (rows without one
    left out); the columns are the run's own (as trained on) or named by role."""
    truth = next(role.name for role in task.roles if role.name not in task.view.predict_inputs)
    picked = {}
    for role, name in [(r, r) for r in task.view.predict_inputs] + [(truth, "label")]:
        column = next((c for c in (columns.get(role), role) if c in frame.columns), None)
        if column is None:
            raise DataError(f"The held-out rows have no {role.replace('_', ' ')} column ('{columns.get(role, role)}').")
        picked[name] = frame[column].fillna("").astype(str).str.strip()
    rows = pd.DataFrame(picked)
    rows = rows[rows["label"] != ""]  # rows nobody reviewed yet
    if rows.empty:
        raise DataError("The held-out rows have no true answers to compare with.")
    return rows


def metric_keys(task) -> list[str]:
    """The metrics compared: the task's primary one, and the accuracy beside a macro-F1; refuses other tasks."""
    if task.primary_metric not in METRICS:
        raise DataError(f"Comparing on held-out rows covers class, multi-label and score tasks, not "
                        f"{task.view.title}.")
    return [task.primary_metric] + (["accuracy"] if task.primary_metric == "macro_f1" else [])


def compare_predictions(label: str, task, truth: pd.Series, served: list[Prediction],
                        new: list[Prediction]) -> RowsComparison:
    """Both models' predictions of the same rows against ``truth`` (as validation_predictions.csv holds it)."""
    keys = metric_keys(task)
    stats = [METRICS[keys[0]].stats(predictions, truth) for predictions in (served, new)]
    return RowsComparison(label, len(truth), [compare_metric(METRICS[key], *stats) for key in keys])
