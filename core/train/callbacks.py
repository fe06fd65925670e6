"""Callbacks steer the training loop, as transformers' ``TrainerCallback`` / ``TrainerControl`` /
``CallbackHandler``: the loop calls the handler at each event, the handler calls that hook of every callback in
order, and the callbacks of one event share a ``TrainerControl`` asking the loop to evaluate, save a resume
checkpoint or stop.

``on_train_begin`` and ``on_step_end`` run in every training process (so what they decide must depend only on the
loop's state); ``on_new_best``, ``on_evaluate`` and ``on_train_end`` in process 0 alone, whose stop decision is then
shared with the others.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..tasks.types import Scored


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
    best: dict | None = None  # the best evaluation so far: its metrics, step, epoch and the task's state


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
    """One evaluation as the callbacks see it: the metrics, the task's primary metric, whether it improved, and the
    task's verdict (predictions and outputs) to save with a new best model."""

    step: int
    metrics: dict
    primary: str
    greater_is_better: bool
    improved: bool
    scored: Scored

    @property
    def value(self) -> float:
        return self.metrics[self.primary]


class TrainerCallback:
    """Override the hooks you need; those given ``control`` may set its fields."""

    def on_train_begin(self, state: LoopState) -> None:
        """The model, optimizer and resume checkpoint are ready; the first step comes next."""

    def on_step_end(self, state: LoopState, control: TrainerControl) -> None:
        """An optimizer step ended."""

    def on_new_best(self, state: LoopState, evaluated: Evaluated) -> None:
        """An evaluation improved the primary metric (``state.best`` holds it); called before it is published."""

    def on_evaluate(self, state: LoopState, control: TrainerControl, evaluated: Evaluated) -> None:
        """An evaluation was published."""

    def on_train_end(self, state: LoopState) -> None:
        """Training ended, finished or stopped; the run's metrics are written next."""


class CallbackHandler:
    """Calls one hook of every callback, in order, at each event of the loop; returns the control they shared."""

    def __init__(self, callbacks: list[TrainerCallback], state: LoopState):
        self.callbacks, self.state = callbacks, state

    def on_train_begin(self) -> None:
        self._call("on_train_begin")

    def on_step_end(self) -> TrainerControl:
        control = TrainerControl()
        self._call("on_step_end", control)
        return control

    def on_new_best(self, evaluated: Evaluated) -> None:
        self._call("on_new_best", evaluated)

    def on_evaluate(self, control: TrainerControl, evaluated: Evaluated) -> TrainerControl:
        """Continues the control of the step end that asked for the evaluation."""
        self._call("on_evaluate", control, evaluated)
        return control

    def on_train_end(self) -> None:
        self._call("on_train_end")

    def _call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self.state, *args)


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
