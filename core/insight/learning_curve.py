"""How many more labels? A learning curve: the validation metric of runs trained on growing shares of the same
training rows, a power law fitted to its error (error = a * rows^-b, a line in log-log, the form learning curves
follow over a wide range), and what it predicts for twice the rows, with a 90% interval, in one plain sentence."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

NOT_MUCH = 0.01  # a predicted gain below this is "will not help much"
LEVEL = 0.90  # the prediction interval's coverage


@dataclass(frozen=True)
class Point:
    rows: int  # training rows
    score: float  # the task's primary metric on the same validation rows


@dataclass(frozen=True)
class LearningCurve:
    metric: str
    metric_name: str
    greater_is_better: bool
    points: tuple[Point, ...]
    classes: int = 0  # the task's classes (0: no classes), to speak of rows per class

    def error(self, score: float) -> float:
        """What the power law fits: 1 - score for a score in [0, 1] that grows, else the score itself (a loss)."""
        return 1.0 - score if self.greater_is_better else score

    def score(self, error: float) -> float:
        return 1.0 - error if self.greater_is_better else error

    def fit(self) -> tuple[np.ndarray, np.ndarray, float, int] | None:
        """(coefficients of log error on log rows, their covariance, residual variance, degrees of freedom); None
        without at least three points of distinct sizes and positive errors."""
        usable = [p for p in self.points if self.error(p.score) > 1e-6]
        if len({p.rows for p in usable}) < 3:
            return None
        x = np.log([p.rows for p in usable])
        y = np.log([self.error(p.score) for p in usable])
        design = np.column_stack([np.ones_like(x), x])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        dof = len(x) - 2
        residual = float(np.sum((y - design @ coef) ** 2) / dof)
        covariance = residual * np.linalg.inv(design.T @ design)
        return coef, covariance, residual, dof

    def predict(self, rows: float) -> tuple[float, float, float] | None:
        """The predicted score at ``rows`` training rows, with its 90% prediction interval (low, high)."""
        fitted = self.fit()
        if fitted is None:
            return None
        coef, covariance, residual, dof = fitted
        at = np.array([1.0, math.log(rows)])
        spread = math.sqrt(residual + at @ covariance @ at)
        t = stats.t.ppf(0.5 + LEVEL / 2, dof)
        centre = float(at @ coef)
        bounds = sorted(self.score(math.exp(centre + s * t * spread)) for s in (-1, 1))
        clip = (0.0, 1.0) if self.greater_is_better else (0.0, math.inf)
        return tuple(float(np.clip(v, *clip)) for v in (self.score(math.exp(centre)), *bounds))

    def sentence(self, factor: float = 2.0) -> str:
        """E.g. "With about 2x the rows (60 per class), macro-F1 would be about 0.91 (0.88-0.93), against 0.86 now."."""
        last = max(self.points, key=lambda p: p.rows)
        if self.error(last.score) <= 1e-6:
            return (f"The model is already perfect on the validation rows ({self.metric_name} {last.score:.2f}): "
                    "more rows of the same kind cannot show a gain there; new kinds of rows may.")
        predicted = self.predict(last.rows * factor)
        if predicted is None:
            return "Too few points to fit a learning curve."
        centre, low, high = predicted
        gain = centre - last.score if self.greater_is_better else last.score - centre
        per_class = f" ({round(last.rows * factor / self.classes):,} per class)" if self.classes else ""
        guess = f"{self.metric_name} would be about {centre:.2f} ({low:.2f}-{high:.2f}), against {last.score:.2f} now"
        if gain < NOT_MUCH:
            return f"More rows of the same kind will not help much: with {factor:g}x the rows{per_class}, {guess}."
        return f"With about {factor:g}x the rows{per_class}, {guess}."

    def to_dict(self) -> dict:
        found = asdict(self)
        found["sentence"] = self.sentence()
        return found

    @classmethod
    def from_dict(cls, data: dict) -> "LearningCurve":
        fields = {k: v for k, v in data.items() if k != "sentence"}
        return cls(**{**fields, "points": tuple(Point(**p) for p in fields["points"])})
