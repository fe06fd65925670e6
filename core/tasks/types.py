"""The plain data a task works with: its column roles and UI view, cleaned rows, encoded rows, predictions and
validation scores."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch


@dataclass(frozen=True)
class Role:
    """One column a task reads: its name, the header names that suggest it, and whether it holds free text."""

    name: str
    label: str
    hints: tuple[str, ...] = ()
    text: bool = True


@dataclass(frozen=True)
class TaskView:
    """Plain data the UI renders for a task: predict inputs, metric cards and charts."""

    title: str
    title_zh: str  # the title in Chinese (the UI follows the browser's language)
    predict_inputs: tuple[str, ...]  # role names the Predict tab takes one input for (a text box, an image upload)
    cards: tuple[tuple[str, str], ...]  # (metric key, shown name); the first is the primary metric
    chart: str  # Evaluate tab chart: "confusion" | "scatter" | "per_label" | "none"
    table: str = ""  # Evaluate tab table title: per class / per label / per entity type
    curves: tuple[str, ...] = ()  # more validation metrics drawn on the training curve's loss axis


@dataclass
class TaskData:
    """Cleaned rows of one task: inputs by role, one target per row, and where they came from."""

    inputs: dict[str, list]  # role -> one value per row (a text, or a list of words)
    targets: list  # class index, number, list of label indices, list of tag indices, or response text
    columns: dict[str, str]  # role -> column name in the user's table
    label_names: list[str] = field(default_factory=list)
    rows_total: int = 0
    rows_dropped: int = 0
    warnings: list[str] = field(default_factory=list)
    slices: pd.DataFrame | None = None  # the table's unused columns that can group rows, one row per row
    # (core.insight.slices); kept with the run, not carried by ``subset``

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices) -> "TaskData":
        idx = list(indices)
        return TaskData({role: [values[i] for i in idx] for role, values in self.inputs.items()},
                        [self.targets[i] for i in idx], self.columns, self.label_names, len(idx), 0)

    @property
    def texts(self) -> list[str]:
        return self.inputs["text"]

    @property
    def labels(self) -> list:
        return self.targets

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(np.asarray(self.targets, dtype=int), minlength=len(self.label_names))
        return dict(zip(self.label_names, counts.tolist()))


@dataclass
class Encoded:
    """Pre-tokenised rows (no padding) and their targets, with an explicit label dtype."""

    input_ids: list[list[int]]
    labels: list
    label_dtype: torch.dtype = torch.long
    per_token: bool = False  # labels are one per token (padded with -100, ignored by the loss)
    token_type_ids: list[list[int]] | None = None
    extras: dict[str, list] = field(default_factory=dict)  # per-row data a task needs to score (e.g. word starts)

    def lengths(self) -> list[int]:
        """Each row's padded width in a batch (batches group rows of similar lengths)."""
        return [len(ids) for ids in self.input_ids]

    def batch(self, indices: list[int], tokenizer, device: torch.device) -> dict[str, torch.Tensor]:
        """Pad on the right to a multiple of 8."""
        features = {"input_ids": [self.input_ids[i] for i in indices]}
        if self.token_type_ids is not None:
            features["token_type_ids"] = [self.token_type_ids[i] for i in indices]
        padded = tokenizer.pad(features, pad_to_multiple_of=8, padding_side="right", return_tensors="pt")
        labels = [self.labels[i] for i in indices]
        if self.per_token:
            width = padded["input_ids"].shape[1]
            labels = [row + [-100] * (width - len(row)) for row in labels]
        return {**{k: v.to(device) for k, v in padded.items()},
                "labels": torch.tensor(labels, dtype=self.label_dtype, device=device)}


@dataclass
class Prediction:
    """One row's prediction; which fields are set depends on the task's output kind (core.tasks.outputs)."""

    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    labels: list[str] = field(default_factory=list)
    spans: list[dict] = field(default_factory=list)

    @property
    def confidence(self) -> float | None:
        return self.probabilities.get(self.label) if self.label is not None else None


@dataclass
class Scored:
    """A task's verdict on validation outputs: metrics, a table of predictions, and state to save with the model."""

    metrics: dict
    predictions: pd.DataFrame | None = None
    state: dict = field(default_factory=dict)
    probabilities: np.ndarray | None = None  # rows x classes, for ROC/PR curves, calibration and label checks
    truth: np.ndarray | None = None  # class index per row, or a 0/1 row per row (multi-label)
