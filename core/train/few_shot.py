"""The few-shot mode: SetFit's method (Tunstall et al. 2022, arXiv 2209.11055) for tables with a few rows per class.

With 8 rows per class the plain fine-tune loses to TF-IDF + logistic regression (bench/RESULTS.md, few-shot). SetFit
first tunes the sentence encoder on pairs of training rows (same class: cosine 1, other class: cosine 0), which turns
24 rows into hundreds of examples, then fits a logistic regression on the rows' embeddings. Here the model is the
mean-pooled BERT of ``core.models.mean_pooled``, whose linear classifier takes the fitted regression's weights, so
the run is an ordinary run folder (safetensors, evaluation, Predict, exports, server). This module decides when the
mode is on and plans its pairs; ``core.train.few_shot_loop`` trains them.

"auto" looks at the median class of the training split, not the smallest: a table with one rare class among large
ones is not few-shot (the fine-tune has plenty of rows to learn from; ``oversample`` is for the rare class).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import numpy as np

from ..common.errors import ConfigError
from ..models.mean_pooled import MeanPooledBertForSequenceClassification
from ..models.registry import REGISTRY, resolve_model_path
from ..runs.config import FEW_SHOT_ROWS, TrainConfig
from ..tasks import get_task
from ..tasks.types import TaskData
from .prepare import prepare_splits
from .schedule import Schedule, plan_schedule

TASK = "classification"  # one label per text: what SetFit's logistic head predicts
ROUNDS = 20  # SetFit's num_iterations: each round gives every training row one positive and one negative pair
MAX_PAIR_STEPS = 500  # the rounds shrink to stay within this many steps (k=64 rows per class, 3 classes: 480)
LEARNING_RATE = 2e-5  # SetFit's body learning rate
ENCODER_TYPES = ("bert", "mean_pooled_bert")  # what loads into the mean-pooled model
METHOD = "few-shot mode (SetFit: contrastive pairs, then a logistic head)"


@dataclass(frozen=True)
class Pairs:
    """Pairs of training rows (indices into the split) and their target cosine: 1 same class, 0 another."""

    left: np.ndarray
    right: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def sample_pairs(labels: list[int], rounds: int, seed: int) -> Pairs:
    """SetFit's sampling, shuffled: in each round every row gets a positive pair (another row of its class, itself
    when it is alone) and a negative pair (a row of another class)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    members = {label: np.flatnonzero(labels == label) for label in np.unique(labels)}
    others = {label: np.flatnonzero(labels != label) for label in members}
    left, right, targets = [], [], []
    for _ in range(rounds):
        for row, label in enumerate(labels):
            same = members[label][members[label] != row]
            left += [row, row]
            right += [int(rng.choice(same)) if len(same) else row, int(rng.choice(others[label]))]
            targets += [1.0, 0.0]
    order = rng.permutation(len(targets))
    return Pairs(np.asarray(left)[order], np.asarray(right)[order], np.asarray(targets, dtype=np.float32)[order])


def pair_rounds(train_rows: int, batch_size: int) -> int:
    """ROUNDS, fewer where they would take more than MAX_PAIR_STEPS steps of ``batch_size`` pairs (at least one)."""
    return max(1, min(ROUNDS, MAX_PAIR_STEPS * batch_size // (2 * train_rows)))


@dataclass(frozen=True)
class PairSchedule(Schedule):
    """One pass over the pairs, then one evaluation (after the head is fitted)."""

    rounds: int = ROUNDS
    reason: str = ""

    def describe(self) -> str:
        return (f"{self.reason} · {self.total_steps:,} steps of pairs ({self.rounds} rounds) at learning rate "
                f"{LEARNING_RATE:g}, then the head and one evaluation")


@dataclass(frozen=True)
class FewShotMode:
    """Whether a run trains in the few-shot mode, and why in words ("" when it was not considered)."""

    on: bool
    reason: str = ""

    @property
    def model_class(self) -> type | None:
        """The model it trains (None: the task's own)."""
        return MeanPooledBertForSequenceClassification if self.on else None

    def optimizer_settings(self, config: TrainConfig) -> TrainConfig:
        """The settings the optimizer reads: SetFit's learning rate in the few-shot mode."""
        return replace(config, learning_rate=LEARNING_RATE) if self.on else config

    def schedule(self, config: TrainConfig, train_rows: int, world: int) -> Schedule:
        """The plain fine-tune's schedule, or one pass over the pairs (capped by ``max_steps`` when set)."""
        if not self.on:
            return plan_schedule(config, train_rows, world)
        rounds = pair_rounds(train_rows, config.batch_size)
        total = math.ceil(2 * rounds * train_rows / config.batch_size)
        total = min(total, config.max_steps) if config.max_steps else total
        return PairSchedule(1.0, total, total, total, True, rounds, self.reason)


def unsupported(config: TrainConfig) -> str | None:
    """Why the few-shot mode cannot train ``config`` (the end of a sentence), or None."""
    if config.task != TASK:
        return f"is for classifying texts ({TASK}), not {get_task(config.task).view.title} ({config.task})"
    if config.lora or config.linear_probe:
        return "tunes the whole encoder: turn LoRA and the linear probe off"
    if config.processes > 1:
        return "trains in one process: set the training processes to 1"
    spec = REGISTRY.get(config.base_model)
    if spec is not None:
        return None if spec.sentence_encoder else (
            f"needs a sentence encoder ({', '.join(k for k, m in REGISTRY.items() if m.sentence_encoder)}), "
            f"not {spec.key}")
    kind = json.loads((resolve_model_path(config.base_model) / "config.json").read_text()).get("model_type")
    return None if kind in ENCODER_TYPES else f"needs a BERT encoder; this base model is a '{kind}' model"


def few_shot_mode(config: TrainConfig, data: TaskData) -> FewShotMode:
    """The mode of a run on ``data`` (the cleaned table): "off"; "on" (a ConfigError where it cannot train); "auto":
    on for a registered sentence encoder classifying texts with fewer than FEW_SHOT_ROWS training rows in its
    median class. The rows counted are the run's training split before augmentation, as the engine makes it."""
    if config.few_shot == "off":
        return FewShotMode(False)
    spec = REGISTRY.get(config.base_model)
    if config.few_shot == "auto" and not (spec and spec.sentence_encoder and unsupported(config) is None):
        return FewShotMode(False)
    if config.few_shot == "on" and (why := unsupported(config)):
        raise ConfigError(f"Invalid setting: the few-shot mode {why}. Set few-shot to auto or off.")
    train = prepare_splits(get_task(config.task), data, replace(config, augment="off"), lambda message: None).train
    per_class = float(np.median(list(train.class_counts().values())))
    rows = f"{len(train):,} training rows, {per_class:g} per class"
    if config.few_shot == "on":
        return FewShotMode(True, f"{rows}: {METHOD}, as set")
    if per_class < FEW_SHOT_ROWS:
        return FewShotMode(True, f"{rows}: {METHOD}, chosen under {FEW_SHOT_ROWS} per class (set few-shot to off "
                                 "for the plain fine-tune)")
    return FewShotMode(False)
