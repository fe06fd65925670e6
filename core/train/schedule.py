"""How long a run trains: epochs derived from the table's size, optimizer steps and evaluation interval.

A fixed epoch count gives a 500-row table about 90 optimizer steps, too few for a fine-tune to beat a
TF-IDF model; ``epochs = 0`` (the default) trains small tables for at least ``min_steps`` steps, up to
MAX_AUTO_EPOCHS, and large tables for MIN_AUTO_EPOCHS. Early stopping on the primary metric ends runs
that stop improving.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..runs.config import COPYING_AUGMENTATIONS, TrainConfig

MIN_AUTO_EPOCHS = 3.0
MAX_AUTO_EPOCHS = 20.0
EVALUATIONS = 5  # at least this many evaluations per run, and at least one per epoch


@dataclass(frozen=True)
class Schedule:
    epochs: float
    steps_per_epoch: int
    total_steps: int
    eval_every: int
    derived: bool  # epochs came from the table's size (config.epochs == 0)

    def describe(self) -> str:
        how = "derived from the table's size" if self.derived else "as set"
        return (f"{self.epochs:g} epochs ({how}) · {self.total_steps:,} optimizer steps of {self.steps_per_epoch:,} "
                f"per epoch · an evaluation every {self.eval_every:,} steps")


def auto_epochs(config: TrainConfig, steps_per_epoch: int) -> float:
    """At least ``min_steps`` optimizer steps, between MIN_AUTO_EPOCHS and MAX_AUTO_EPOCHS epochs, rounded
    up to a whole epoch."""
    wanted = math.ceil(config.min_steps / max(steps_per_epoch, 1))
    return float(min(MAX_AUTO_EPOCHS, max(MIN_AUTO_EPOCHS, wanted)))


def plan_schedule(config: TrainConfig, train_rows: int, world: int = 1) -> Schedule:
    """The schedule of a run on ``train_rows`` training rows with ``world`` data-parallel processes."""
    steps_per_epoch = max(1, math.ceil(train_rows / (config.batch_size * world)))
    derived = not config.epochs
    epochs = auto_epochs(config, steps_per_epoch) if derived else config.epochs
    total = config.max_steps or max(1, math.ceil(epochs * steps_per_epoch))
    eval_every = config.eval_every_steps or min(steps_per_epoch, math.ceil(total / EVALUATIONS))
    return Schedule(epochs, steps_per_epoch, total, eval_every, derived)


def expected_train_rows(config: TrainConfig, rows: int) -> int:
    """Training rows after the validation split (before deduplication) and the share used, with the rows
    augmentation adds (entity swaps: at most), for a schedule shown before Start."""
    train = max(1, round((rows - max(1, round(config.val_fraction * rows))) * config.train_share))
    return train * (1 + config.augment_copies) if config.augment in COPYING_AUGMENTATIONS else train
