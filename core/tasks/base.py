"""What a task is: its column roles, data preparation, model head and encoding, and its output kind; its scoring
is mixed in from ``scoring.TaskScoring``, its plain data types live in ``types``.

The engine, store, events, CLI and UI only talk to a ``Task``; adding a task is one module that
subclasses it and registers itself in ``core/tasks/__init__.py``.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from transformers import AutoModelForSequenceClassification

from ..common.errors import ConfigError, DataError
from ..data.modalities import MODALITIES, TEXT, Modality
from ..data.tables import as_strings, guess_text_column, name_hint
from ..data.tokens import tokenize_truncated
from ..models.registry import training_tokenizer
from ..runs.config import TrainConfig
from .outputs import OutputKind
from .scoring import TaskScoring
from .types import Encoded, Prediction, Role, TaskData, TaskView


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


class Task(TaskScoring):
    """Base of every task; the defaults fit a text-in, sequence-classification-head task."""

    name: ClassVar[str]
    roles: ClassVar[tuple[Role, ...]]
    view: ClassVar[TaskView]
    output: ClassVar[OutputKind]  # what it predicts (core.tasks.outputs): columns, monitor outcome, feedback
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
    modality: ClassVar[Modality] = TEXT  # what its inputs are (core.data.modalities): it trains models reading them

    def check_config(self, config: TrainConfig) -> None:
        """Refuse settings that do not fit this task: an augmentation, a base model of another modality, LoRA
        for a task whose models have no adapters."""
        from ..models.registry import REGISTRY

        self.check_augmentation(config.augment)
        spec = REGISTRY.get(config.base_model)
        if spec is not None and spec.key not in self.modality.models():
            raise ConfigError(f"Invalid setting: {spec.key} reads {MODALITIES[spec.modality].noun}, but "
                              f"{self.view.title} needs a base model that reads {self.modality.noun}.")
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

    def split(self, data: TaskData, val_fraction: float, seed: int, folds: int = 1,
              fold: int = 0) -> tuple[TaskData, TaskData]:
        """A seeded random split, or with ``folds`` > 1 the ``fold``-th of as many seeded folds (cross-validation);
        tasks with classes stratify."""
        if folds > 1:
            return self.fold_split(data, folds, fold, seed)
        indices = list(range(len(data)))
        n_val = max(1, round(val_fraction * len(indices)))
        if len(indices) - n_val < 2:
            raise DataError(f"{len(data)} rows are too few to hold out a validation set. Add rows.")
        train_idx, val_idx = train_test_split(indices, test_size=n_val, random_state=seed)
        return data.subset(train_idx), data.subset(val_idx)

    def fold_split(self, data: TaskData, folds: int, fold: int, seed: int,
                   strata: list | None = None) -> tuple[TaskData, TaskData]:
        """The ``fold``-th of ``folds`` shuffled folds (stratified by ``strata`` when given) held out."""
        from sklearn.model_selection import KFold, StratifiedKFold

        if len(data) < 2 * folds:
            raise DataError(f"{len(data)} rows are too few for {folds} folds. Use fewer folds or add rows.")
        splitter = (StratifiedKFold if strata is not None else KFold)(folds, shuffle=True, random_state=seed)
        train_idx, val_idx = list(splitter.split(np.zeros(len(data)), strata))[fold]
        return data.subset(train_idx.tolist()), data.subset(val_idx.tolist())

    def texts(self, data: TaskData) -> list[str]:
        """Every text the model reads (for the unknown-token check)."""
        return [t for role in self.roles if role.text for t in data.inputs[role.name]]

    def describe(self, data: TaskData) -> str:
        """One line for the Data tab and the CLI about what was found."""
        shown = " · ".join(f"{r.label} <b>{data.columns[r.name]}</b>" for r in self.roles)
        return f"{len(data):,} rows kept, {data.rows_dropped:,} dropped · {shown}"

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

    # -- prediction ---------------------------------------------------------
    def format(self, outputs: list[np.ndarray], features: dict, model_config) -> list[Prediction]:
        """Turn raw model outputs into predictions; ``model_config.sft_studio`` holds the fitted state."""
        raise NotImplementedError
