"""Classification metrics (scikit-learn)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


@dataclass
class ClassificationMetrics:
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]

    def to_dict(self) -> dict:
        return asdict(self)


def classification_metrics(y_true: list[int], y_pred: list[int], label_names: list[str]) -> ClassificationMetrics:
    labels = list(range(len(label_names)))
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    macro = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    per_class = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
        for i, name in enumerate(label_names)
    }
    return ClassificationMetrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_precision=float(macro[0]),
        macro_recall=float(macro[1]),
        macro_f1=float(macro[2]),
        per_class=per_class,
        confusion=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    )


def majority_baseline(y_train: list[int], y_eval: list[int]) -> float:
    """Accuracy of always predicting the most frequent training class."""
    majority = max(set(y_train), key=y_train.count)
    return sum(1 for y in y_eval if y == majority) / len(y_eval)
