"""Regression: score a text. One output, MSE loss on a z-scored target; RMSE, MAE, R², Pearson, Spearman."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..common.errors import DataError
from ..data.tables import LABEL_NAME_HINTS, TEXT_NAME_HINTS, as_strings, guess_text_column_or_none, name_hint
from .base import Task, missing_text_warnings
from .metrics import regression_metrics
from .outputs import NUMBER
from .scoring import shown_first
from .types import Encoded, Prediction, Role, Scored, TaskData, TaskView

SCORE_HINTS = ("score", "rating", "value", "target", "label", "y", "stars", "intensity", "sentiment", "similarity",
               "分数", "评分", "得分")
REGRESSION_CARDS = (("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R²"), ("pearson", "Pearson"), ("spearman", "Spearman"))
MIN_DISTINCT = 10  # fewer distinct numbers read as classes (e.g. 1-5 stars): the Data tab suggests classification


def numeric_share(values: pd.Series) -> float:
    filled = values[values != ""]
    return float(pd.to_numeric(filled, errors="coerce").notna().mean()) if len(filled) else 0.0


def looks_like_scores(values: pd.Series) -> bool:
    """Numbers with many distinct values (not a row ID counting up by one); a few cells that are not numbers
    (N/A, typos) still read as scores, so that the regression task names those rows."""
    numbers = pd.to_numeric(values[values != ""], errors="coerce").dropna()
    is_id = len(numbers) > 1 and bool((numbers.diff().dropna() == 1).all())
    return numeric_share(values) > 0.8 and numbers.nunique() >= MIN_DISTINCT and not is_id


class Regression(Task):
    name = "regression"
    roles = (Role("text", "text", TEXT_NAME_HINTS), Role("target", "score", SCORE_HINTS, text=False))
    view = TaskView("Score texts (regression)", "文本打分（回归）", ("text",), REGRESSION_CARDS, "scatter")
    output = NUMBER
    primary_metric = "rmse"
    greater_is_better = False
    classical_name = "TF-IDF + ridge regression"

    def guess_role(self, frame, role, chosen):
        if role.text:
            return super().guess_role(frame, role, chosen)
        numeric = [c for c in frame.columns if numeric_share(as_strings(frame[c])) > 0.95]
        if not numeric:
            raise DataError("No column holds numbers to learn. The table needs a numeric score column.")
        return max(numeric, key=lambda c: as_strings(frame[c]).nunique())

    def recognises(self, frame: pd.DataFrame) -> bool:
        text = guess_text_column_or_none(frame)
        if any(name_hint(c, LABEL_NAME_HINTS) and numeric_share(as_strings(frame[c])) < 0.95 for c in frame.columns):
            return False  # a named class column wins over other numbers in the table
        return any(looks_like_scores(as_strings(frame[c])) for c in frame.columns if c != text)

    def build(self, frame: pd.DataFrame, columns: dict[str, str]) -> TaskData:
        values = self.strings(frame, columns)
        target = columns["target"]
        numbers = pd.to_numeric(values["target"], errors="coerce")
        bad = [i for i, (cell, n) in enumerate(zip(values["target"], numbers)) if cell != "" and pd.isna(n)]
        if bad:
            shown = ", ".join(f"{i + 1} ('{values['target'].iloc[i][:20]}')" for i in bad[:5])
            raise DataError(f"The score column '{target}' has {len(bad):,} value(s) that are not numbers, in data "
                            f"row(s) {shown}{' …' if len(bad) > 5 else ''}. Fix them, or pick 'Classify texts' "
                            "if the column holds classes.")
        keep = numbers.notna() & np.isfinite(numbers.fillna(0))
        warnings = missing_text_warnings(self, values, columns, keep)
        for role in self.roles:
            if role.text:
                keep &= values[role.name] != ""
        if keep.sum() < 4:
            raise DataError("Fewer than 4 rows have both a text and a numeric score; add more examples.")
        distinct = numbers[keep].nunique()
        if distinct < 2:
            raise DataError(f"Every score in '{target}' is the same; there is nothing to learn.")
        if distinct < MIN_DISTINCT:
            warnings.append(f"The score column '{target}' has only {distinct} distinct values: if they are "
                            "classes (e.g. 1-5 stars), 'Classify texts' may suit it better.")
        inputs = {r.name: values[r.name][keep].tolist() for r in self.roles if r.text}
        return TaskData(inputs, numbers[keep].astype(float).tolist(), columns, rows_total=len(frame),
                        rows_dropped=int((~keep).sum()), warnings=warnings)

    def to_frame(self, data: TaskData) -> pd.DataFrame:
        return pd.DataFrame({**data.inputs, "target": [repr(v) for v in data.targets]})

    def describe(self, data: TaskData) -> str:
        values = np.asarray(data.targets)
        return (f"{super().describe(data)} · scores from {values.min():g} to {values.max():g} "
                f"(mean {values.mean():.3g}, std {values.std():.3g})")

    def fit(self, train: TaskData, config=None) -> dict:
        """z-score of the training targets; every prediction and metric is turned back into the data's units."""
        values = np.asarray(train.targets, dtype=float)
        return {"target_mean": float(values.mean()), "target_std": float(values.std() or 1.0)}

    def head(self, data: TaskData) -> dict:
        return dict(num_labels=1, problem_type="regression")

    def encode(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        scaled = [(y - state["target_mean"]) / state["target_std"] for y in data.targets]
        return Encoded(**self.encode_inputs(tokenizer, data.inputs, max_length), labels=scaled,
                       label_dtype=torch.float32)

    @staticmethod
    def unscale(outputs: list[np.ndarray], state: dict) -> np.ndarray:
        return np.stack(outputs)[:, 0] * state["target_std"] + state["target_mean"]

    def score(self, outputs, val, encoded, state) -> Scored:
        predicted = self.unscale(outputs, state)
        truth = np.asarray(val.targets, dtype=float)
        frame = pd.DataFrame({**val.inputs, "label": truth, "predicted": predicted.round(4),
                              "error": (predicted - truth).round(4)})
        return Scored(regression_metrics(truth, predicted), frame)

    def prediction_metrics(self, predictions, truth) -> dict:
        return regression_metrics(truth.astype(float).to_numpy(), np.array([p.value for p in predictions]))

    def baseline(self, train, val, state) -> dict:
        return {"name": "training mean", **regression_metrics(val.targets, [state["target_mean"]] * len(val))}

    def classical_baseline(self, train, val, state) -> dict:
        from sklearn.linear_model import Ridge

        x_train, x_val = self.classical_features(train, val)
        model = Ridge(alpha=1.0).fit(x_train, np.asarray(train.targets, dtype=float))
        return regression_metrics(np.asarray(val.targets, dtype=float), model.predict(x_val))

    def mistakes(self, predictions: pd.DataFrame) -> pd.DataFrame:
        return shown_first(predictions.reindex(predictions["error"].abs().sort_values(ascending=False).index).head(100))

    def format(self, outputs, features, model_config) -> list[Prediction]:
        return [Prediction(value=float(v)) for v in self.unscale(outputs, model_config.sft_studio)]

    def balance(self, data: TaskData) -> dict[str, int]:
        """Rows per score range (ten equal-width bins) for the Data tab's chart."""
        counts, edges = np.histogram(np.asarray(data.targets, dtype=float), bins=10)
        return {f"{low:.3g} to {high:.3g}": int(n) for low, high, n in zip(edges, edges[1:], counts)}
