"""Callbacks steer the training loop, as transformers' ``TrainerCallback`` / ``TrainerControl``: at each step
end and after each evaluation they may ask the loop to evaluate, save a resume checkpoint or stop.

The loop calls ``on_step_end`` in every training process (so what it decides must depend only on the loop's
state) and ``on_evaluate`` in process 0 alone, whose stop decision is then shared with the others.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoopState:
    """Where the training loop stands; saved with every resume checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    seen: int = 0
    elapsed: float = 0.0
    bad_evals: int = 0
    total: int = 0
    best: dict | None = None


@dataclass
class TrainerControl:
    """What the callbacks asked for at this point of the loop (reset after the loop acts on it)."""

    should_evaluate: bool = False
    should_save: bool = False
    should_stop: bool = False
    stop_reason: str = ""

    def stop(self, reason: str) -> None:
        self.should_stop, self.stop_reason = True, reason


@dataclass
class Evaluated:
    """One evaluation as the callbacks see it: the metrics, the task's primary metric, and whether it improved."""

    step: int
    metrics: dict
    primary: str
    greater_is_better: bool
    improved: bool

    @property
    def value(self) -> float:
        return self.metrics[self.primary]


class TrainerCallback:
    """Override the hooks you need; each may set fields of ``control``."""

    def on_step_end(self, state: LoopState, control: TrainerControl) -> None:
        pass

    def on_evaluate(self, state: LoopState, control: TrainerControl, evaluated: Evaluated) -> None:
        pass


class EvaluationSchedule(TrainerCallback):
    """Evaluate every ``every`` optimizer steps and after the last one."""

    def __init__(self, every: int):
        self.every = every

    def on_step_end(self, state: LoopState, control: TrainerControl) -> None:
        if state.step % self.every == 0 or state.step >= state.total:
            control.should_evaluate = True


class CheckpointAfterEvaluation(TrainerCallback):
    """Write a resume checkpoint after every evaluation."""

    def on_evaluate(self, state: LoopState, control: TrainerControl, evaluated: Evaluated) -> None:
        control.should_save = True


class EarlyStopping(TrainerCallback):
    """Stop once the primary metric has not improved in ``patience`` evaluations in a row (0: never). The count
    lives in the loop state, so a resumed run keeps it."""

    def __init__(self, patience: int):
        self.patience = patience

    def on_evaluate(self, state: LoopState, control: TrainerControl, evaluated: Evaluated) -> None:
        state.bad_evals = 0 if evaluated.improved else state.bad_evals + 1
        if self.patience and state.bad_evals >= self.patience:
            control.stop(f"Early stopping: {evaluated.primary} did not improve in {state.bad_evals} evaluations")


def default_callbacks(eval_every: int, patience: int) -> list[TrainerCallback]:
    """The callbacks every run has: the evaluation schedule, a checkpoint per evaluation, early stopping."""
    return [EvaluationSchedule(eval_every), CheckpointAfterEvaluation(), EarlyStopping(patience)]
