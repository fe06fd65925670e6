"""The task registry: each task is one module under core/tasks/ (see base.Task)."""
from __future__ import annotations

import pandas as pd

from ..common.errors import ConfigError, DataError
from ..runs.config import DEFAULT_TASK, TrainConfig
from .assistant import Assistant
from .audio_classification import AudioClassification
from .base import Task
from .classification import Classification
from .image_classification import ImageClassification
from .multi_label import MultiLabel
from .pairs import PairClassification, PairRegression
from .preference import Preference
from .regression import Regression
from .token_classification import TokenClassification
from .types import TaskData

TASKS: dict[str, Task] = {task.name: task for task in (
    Classification(), Regression(), PairClassification(), PairRegression(), MultiLabel(), TokenClassification(),
    Assistant(), Preference(), ImageClassification(), AudioClassification())}
DETECTION_ORDER = ("image_classification", "audio_classification", "token_classification", "preference", "assistant", "pair_regression", "pairs", "multi_label", "regression")


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"Unknown task '{name}'. Tasks: {', '.join(TASKS)}.")
    return TASKS[name]


def check_config(config: TrainConfig) -> TrainConfig:
    """The settings' own ranges, then what their task refuses (its augmentations, a base model of another modality)."""
    get_task(config.task).check_config(config.validate())
    return config


def prepare_data(task: str, frame: pd.DataFrame, columns: dict[str, str | None] | None = None) -> TaskData:
    """Check and clean a table for a task; ``columns`` maps role -> column (missing roles are guessed)."""
    return get_task(task).prepare(frame, columns)


def detect_task(frame: pd.DataFrame) -> str:
    """The task a table most likely is for (the first, in DETECTION_ORDER, that recognises it)."""
    return next((name for name in DETECTION_ORDER if TASKS[name].recognises(frame)), DEFAULT_TASK)


def column_roles(task: str, columns: dict[str, str] | None = None, first: str | None = None,
                 last: str | None = None) -> dict[str, str | None]:
    """{role: column} for a task: explicit roles, plus the older text/label (prompt/response) pair naming
    the first and the last role. Unknown roles are refused with the list of the task's roles."""
    roles = [r.name for r in get_task(task).roles]
    unknown = set(columns or {}) - set(roles)
    if unknown:
        raise DataError(f"The {task} task has no column role {', '.join(sorted(unknown))}; its roles are: "
                        f"{', '.join(roles)}.")
    return {roles[0]: first or None, roles[-1]: last or None, **(columns or {})}
