"""One way in: plan a run from a table, settings and column roles; start it; wait for its outcome.

The CLI, the app's ``/train`` endpoint, the Train tab, the benchmarks and the search all go through here, so a
table is read, its task detected, its columns checked and its base model suggested the same way everywhere.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import pandas as pd

from ..data.tables import DataLimits, read_table
from ..insight.slices import kept_columns
from ..models.language import ModelSuggestion
from ..runs import events as ev
from ..runs.config import TrainConfig
from ..runs.store import RunStore
from ..tasks import check_config, column_roles, detect_task, get_task
from ..tasks.types import TaskData
from .base_run import check_base_model
from .callbacks import TrainerCallback
from .crossval import CrossValidationJob, small_table_hint
from .engine import TrainingJob
from .few_shot import few_shot_mode


@dataclass
class RunPlan:
    """Everything a run needs before it starts: its settings, its cleaned rows and where they came from."""

    config: TrainConfig
    data: TaskData
    data_name: str
    suggestion: ModelSuggestion | None = None  # the model that reads the data (None when the user chose one)
    detected_task: bool = False  # the task was detected from the table, not given

    def describe(self) -> str:
        """Plain lines: the task, what was kept, the model and the few-shot mode when chosen, e.g. for the CLI."""
        task = get_task(self.config.task)
        found = task.describe(self.data).replace("<b>", "'").replace("</b>", "'")
        model = (f"{self.suggestion.message()} Training {self.config.base_model}." if self.suggestion
                 else f"Training {self.config.base_model} (as asked).")
        how = " (detected from the table)" if self.detected_task else ""
        hint = (small_table_hint(len(self.data), self.config.val_fraction)
                if self.config.folds == 1 and get_task(self.config.task).classical_name else None)
        few_shot = few_shot_mode(self.config, self.data).reason
        return f"{self.config.task}{how}: {found}\n{model}" + "".join(f"\n{line}" for line in (few_shot, hint) if line)


def plan_run(table: str | Path | pd.DataFrame, settings: dict | None = None, columns: dict | None = None, *,
             data_name: str | None = None, limits: DataLimits = DataLimits(), text_column: str | None = None,
             label_column: str | None = None, base: TrainConfig | None = None) -> RunPlan:
    """Read and check a table for a run. ``settings`` are the TrainConfig fields the user gave (on top of
    ``base``); the task is detected from the table and the base model suggested from its texts unless given.
    ``columns`` maps role -> column; ``text_column``/``label_column`` name the first and the last role."""
    given = dict(settings or {})
    config = TrainConfig.from_dict({**asdict(base or TrainConfig()), **given})
    detected = "task" not in given and base is None
    config.validate()  # its own ranges, before any reading
    frame = table if isinstance(table, pd.DataFrame) else read_table(table, limits)
    if detected:
        config = replace(config, task=detect_task(frame))
    task = get_task(config.task)
    if base is None:  # the task's own suggestions (e.g. a higher learning rate for images) where none was given
        config = replace(config, **{k: v for k, v in task.suggested.items() if k not in given})
    data = task.prepare(frame, column_roles(config.task, columns, text_column, label_column))
    data.slices = kept_columns(frame, data)  # kept with the run to slice its validation rows by
    suggestion = None
    if "base_model" not in given and base is None:
        suggestion = task.modality.suggest(task, data)
        config = replace(config, base_model=suggestion.model)
    check_config(config)  # with the task's own checks (its augmentations, a model of its modality)
    check_base_model(config)  # a missing local folder or a run of another task is refused now, not in training
    few_shot_mode(config, data)  # few-shot "on" where it cannot train is refused now
    name = data_name or (Path(table).stem if not isinstance(table, pd.DataFrame) else "data")
    return RunPlan(config, data, name, suggestion, detected)


def make_job(plan: RunPlan, store: RunStore | None = None, owner: str | None = None,
             callbacks: list[TrainerCallback] = (), tags: dict | None = None) -> TrainingJob:
    """The job that trains ``plan`` (not started: run it, start it, or submit it to a queue); ``tags`` are kept
    in the run's status (e.g. the study and trial of a search). With ``folds`` > 1, one job over every fold."""
    if plan.config.folds > 1:
        return CrossValidationJob(plan.config, plan.data, store, data_name=plan.data_name, owner=owner,
                                  callbacks=callbacks, tags=tags)
    return TrainingJob(plan.config, plan.data, store, data_name=plan.data_name, owner=owner, callbacks=callbacks,
                       tags=tags)


def wait_for_outcome(job: TrainingJob, on_event: Callable[[ev.Event], None] | None = None,
                     poll_s: float = 1.0) -> ev.Event:
    """Block until the job ends and return its final event (Finished, Failed or Cancelled); ``on_event`` sees
    every event on the way, in order."""
    cursor = 0
    while True:
        batch = job.events.wait(cursor, timeout=poll_s)
        cursor += len(batch)
        for event in batch:
            if on_event:
                on_event(event)
            if isinstance(event, ev.TERMINAL):
                return event


def train_job(job: TrainingJob) -> ev.Event:
    """Run a job in this thread; its final event."""
    job.run()
    return job.events.since(0)[-1]


def train(plan: RunPlan, store: RunStore | None = None, owner: str | None = None,
          callbacks: list[TrainerCallback] = ()) -> tuple[TrainingJob, ev.Event]:
    """Train ``plan`` in this thread; the job and its final event."""
    job = make_job(plan, store, owner, callbacks)
    return job, train_job(job)
