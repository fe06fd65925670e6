"""What a task is: its column roles, data preparation, model head, encoding, metrics and UI description.

The engine, store, events, CLI and UI only talk to a ``Task``; adding a task is one module that
subclasses it and registers itself in ``core/tasks/__init__.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from transformers import AutoModelForSequenceClassification

from ..common.errors import ConfigError, DataError
from ..data.tables import as_strings, guess_text_column, name_hint
from ..data.tokens import tokenize_truncated
from ..models.registry import training_tokenizer
from ..runs.config import TrainConfig


@dataclass(frozen=True)
class Role:
    """One column a task reads: its name, the header names that suggest it, and whether it holds free text."""

    name: str
    label: str
    hints: tuple[str, ...] = ()
    text: bool = True


@dataclass(frozen=True)
class TaskView:
    """Plain data the UI renders for a task: predict inputs, output kind, metric cards and charts."""

    title: str
    title_zh: str  # the title in Chinese (the UI follows the browser's language)
    predict_inputs: tuple[str, ...]  # role names that get a text box in the Predict tab
    output: str  # "label" | "labels" | "number" | "spans" | "chat"
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
    """One row's prediction; which fields are set depends on the task's view.output."""

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


def shown_first(predictions: pd.DataFrame) -> pd.DataFrame:
    """Verdict columns (label, predicted, confidence/error) before the texts, which are cut to 300 characters."""
    verdict = [c for c in ("label", "predicted", "confidence", "error") if c in predictions.columns]
    ordered = predictions[verdict + [c for c in predictions.columns if c not in verdict]]
    return ordered.map(lambda v: v[:300] if isinstance(v, str) else v)


def missing_text_warnings(task: "Task", values: dict[str, pd.Series], columns: dict[str, str],
                          labelled: pd.Series) -> list[str]:
    """One warning per text role that is empty on labelled rows (e.g. a pair missing its second text)."""
    warnings = []
    for role in task.roles:
        empty = int(((values[role.name] == "") & labelled).sum()) if role.text else 0
        if empty:
            warnings.append(f"{empty:,} labelled row(s) have no {role.label} (column '{columns[role.name]}') "
                            "and were left out.")
    return warnings


class Task:
    """Base of every task; the defaults fit a text-in, sequence-classification-head task."""

    name: ClassVar[str]
    roles: ClassVar[tuple[Role, ...]]
    view: ClassVar[TaskView]
    primary_metric: ClassVar[str]
    greater_is_better: ClassVar[bool] = True
    model_class: ClassVar[type] = AutoModelForSequenceClassification
    per_token: ClassVar[bool] = False  # one output per token (the engine keeps each row's token logits)
    peft_task: ClassVar[str] = "SEQ_CLS"
    generative: ClassVar[bool] = False  # a causal LM that writes text (chat, GGUF export), not an encoder with a head
    augmentations: ClassVar[tuple[str, ...]] = ("eda", "synonyms")  # core.train.augment methods that keep targets true
    builds_on_chat_runs: ClassVar[bool] = False  # its base model may be one of the user's chat runs (after SFT)
    classical_name: ClassVar[str] = ""  # the classical baseline (core.tasks.classical) every run is compared with; "" for none
    encoding_status: ClassVar[str] = "Tokenising"  # the progress line while the rows are encoded
    suggested: ClassVar[dict] = {}  # settings this task trains better with than the app-wide defaults and presets
    bf16_on_cpu: ClassVar[bool] = True  # precision "auto" may pick bf16 on a CPU that runs it fast
    modality: ClassVar[str] = "text"  # what its inputs are ("text" or "image"): it trains base models of the same

    def check_config(self, config: TrainConfig) -> None:
        """Refuse settings that do not fit this task: an augmentation, a base model of another modality, LoRA
        for a task whose models have no adapters."""
        from ..models.registry import REGISTRY

        self.check_augmentation(config.augment)
        spec = REGISTRY.get(config.base_model)
        if spec is not None and spec.modality != self.modality:
            raise ConfigError(f"Invalid setting: {spec.key} reads {spec.modality}s, but {self.view.title} needs a base "
                              f"model that reads {self.modality}s.")
        if config.lora and not self.peft_task:
            raise ConfigError(f"Invalid setting: LoRA is not offered for {self.view.title}; train fully or as a "
                              "linear probe.")

    def check_augmentation(self, method: str) -> None:
        """Refuse an augmentation (core.train.augment) that would not keep this task's targets true."""
        if method != "off" and method not in self.augmentations:
            offered = ", ".join(self.augmentations) or "none"
            raise ConfigError(f"Invalid setting: '{method}' augmentation does not fit {self.view.title} "
                              f"(offered: {offered}).")

    # -- columns and data -------------------------------------------------------
    def guess_columns(self, frame: pd.DataFrame, given: dict[str, str | None]) -> dict[str, str]:
        """Fill in roles not given: a column named like the role, else the task's own guess."""
        columns = {r: c for r, c in given.items() if c}
        for role in self.roles:
            if role.name in columns:
                continue
            free = [c for c in frame.columns if c not in columns.values()]
            named = next((c for c in free if name_hint(c, role.hints)), None)
            columns[role.name] = named or self.guess_role(frame[free], role, columns)
        return {role.name: columns[role.name] for role in self.roles}

    def guess_role(self, frame: pd.DataFrame, role: Role, chosen: dict[str, str]) -> str:
        if frame.columns.empty:
            raise DataError(f"The table needs a {role.label} column.")
        return guess_text_column(frame) if role.text else frame.columns[0]

    def prepare(self, frame: pd.DataFrame, columns: dict[str, str | None] | None = None) -> TaskData:
        """Pick the columns of every role (given or guessed), check them and clean the rows."""
        needed = ", ".join(r.label for r in self.roles)
        if len(frame.columns) < len(self.roles):
            raise DataError(f"The table has only {len(frame.columns)} column(s); this task needs {len(self.roles)}: "
                            f"{needed}.")
        given = {r: c for r, c in (columns or {}).items() if c}
        for role, column in given.items():
            if role not in {r.name for r in self.roles}:
                raise DataError(f"This task has no '{role}' column; its columns are: {needed}.")
            if column not in frame.columns:
                raise DataError(f"The {role.replace('_', ' ')} column '{column}' is not in the table. "
                                f"Columns: {', '.join(map(str, frame.columns))}.")
        chosen = self.guess_columns(frame, given)
        if len(set(chosen.values())) < len(chosen):
            raise DataError(f"Each of these must be a different column: {needed}.")
        return self.build(frame, chosen)

    def recognises(self, frame: pd.DataFrame) -> bool:
        """Whether a freshly uploaded table looks made for this task (the Data tab then picks it)."""
        return False

    def build(self, frame: pd.DataFrame, columns: dict[str, str]) -> TaskData:
        raise NotImplementedError

    def to_frame(self, data: TaskData) -> pd.DataFrame:
        """The cleaned rows as a table with one column per role, readable again by ``prepare``."""
        raise NotImplementedError

    def strings(self, frame: pd.DataFrame, columns: dict[str, str]) -> dict[str, pd.Series]:
        return {role: as_strings(frame[column]) for role, column in columns.items()}

    def split(self, data: TaskData, val_fraction: float, seed: int) -> tuple[TaskData, TaskData]:
        """A seeded random split; tasks with classes stratify."""
        indices = list(range(len(data)))
        n_val = max(1, round(val_fraction * len(indices)))
        if len(indices) - n_val < 2:
            raise DataError(f"{len(data)} rows are too few to hold out a validation set. Add rows.")
        train_idx, val_idx = train_test_split(indices, test_size=n_val, random_state=seed)
        return data.subset(train_idx), data.subset(val_idx)

    def texts(self, data: TaskData) -> list[str]:
        """Every text the model reads (for the unknown-token check)."""
        return [t for role in self.roles if role.text for t in data.inputs[role.name]]

    def describe(self, data: TaskData) -> str:
        """One line for the Data tab and the CLI about what was found."""
        shown = " · ".join(f"{r.label} <b>{data.columns[r.name]}</b>" for r in self.roles)
        return f"{len(data):,} rows kept, {data.rows_dropped:,} dropped · {shown}"

    def metric_name(self, key: str) -> str:
        """A metric's shown name (from the cards), e.g. 'macro-F1' for 'macro_f1'; the key itself if not shown."""
        return dict(self.view.cards).get(key, key)

    def headline(self, metrics: dict) -> str:
        """The task's metric cards as one line, e.g. 'macro-F1 0.9512 · accuracy 0.9550'."""
        return " · ".join(f"{name} {metrics[key]:.4f}" for key, name in self.view.cards
                          if isinstance(metrics.get(key), (int, float)))

    def balance(self, data: TaskData) -> dict[str, int] | None:
        """Counts to chart in the Data tab, if the task has classes."""
        return data.class_counts() if data.label_names else None

    # -- model --------------------------------------------------------------
    def fit(self, train: TaskData, config: TrainConfig | None = None) -> dict:
        """State fitted on the training split (e.g. a target scaler) or taken from the run's settings; saved in
        the model's config."""
        return {}

    def head(self, data: TaskData) -> dict:
        """``from_pretrained`` keywords that shape the output layer."""
        names = data.label_names
        return dict(num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})

    def processor(self, base_model: str, state: dict):
        """What turns inputs into model features for training: a private copy of the base model's tokenizer."""
        return training_tokenizer(base_model)

    def load_processor(self, folder):
        """The tokenizer (or image processor) a run or export folder saved."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder, local_files_only=True)

    def check_tokenizer(self, tokenizer, base_model: str) -> None:
        """Refuse a base model whose tokenizer cannot serve the task."""

    def encode(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        raise NotImplementedError

    def encode_training(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        """The training split's encoding (images add random crops per batch); the same as ``encode`` for text."""
        return self.encode(tokenizer, data, max_length, state)

    def loss(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of one batch (the model's own by default)."""
        return model(**batch).loss

    def before_training(self, ctx, train: Encoded) -> None:
        """Work on the starting model before the first step (``ctx``: a ``core.train.evaluation.EvalContext``), e.g.
        reference scores a loss compares with."""

    def encoding_warnings(self, encoded: Encoded, data: TaskData) -> list[str]:
        """Warnings about what tokenising lost (e.g. entities cut by the max length)."""
        return []

    def encode_inputs(self, tokenizer, rows: dict[str, list[str]], max_length: int) -> dict:
        """Tokenizer features for prediction inputs (role -> texts)."""
        return {"input_ids": tokenize_truncated(tokenizer, rows["text"], max_length)}

    def feature_batches(self, tokenizer, features: dict, batch_size: int):
        """Yield (row indices, padded model inputs) over ``encode_inputs`` features, shortest rows first."""
        ids = features["input_ids"]
        model_keys = [k for k in ("input_ids", "token_type_ids") if k in features]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            indices = order[start:start + batch_size]
            yield indices, tokenizer.pad({k: [features[k][i] for i in indices] for k in model_keys},
                                         padding_side="right", return_tensors="pt")

    def export_inputs(self, tokenizer) -> tuple[dict[str, torch.Tensor], dict[str, dict[int, str]]]:
        """Sample model inputs to trace an ONNX graph with, and their dynamic axes."""
        sample = tokenizer(["a short text", "a somewhat longer text to export"], ["b", "c"], padding=True,
                           return_tensors="pt")
        names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
        return {k: sample[k] for k in names}, {k: {0: "batch", 1: "sequence"} for k in names}

    # -- evaluation ---------------------------------------------------------
    def evaluate(self, ctx) -> tuple[float, Scored]:
        """Validation loss and scores; ``ctx`` (a ``core.train.evaluation.EvalContext``) runs the model over the
        held-out rows."""
        loss, outputs = ctx.forward_validation()
        return loss, self.score(outputs, ctx.val, ctx.val_encoded, ctx.task_state)

    def score(self, outputs: list[np.ndarray], val: TaskData, encoded: Encoded, state: dict) -> Scored:
        raise NotImplementedError

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

    # -- prediction ---------------------------------------------------------
    def format(self, outputs: list[np.ndarray], features: dict, model_config) -> list[Prediction]:
        """Turn raw model outputs into predictions; ``model_config.sft_studio`` holds the fitted state."""
        raise NotImplementedError

    def columns_of(self, prediction: Prediction) -> dict:
        """Prediction columns for a batch CSV."""
        raise NotImplementedError
