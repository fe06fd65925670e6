"""Callbacks that record a run without steering it: the best model, written each time an evaluation improves, and
the baselines it is compared with. Process 0 alone has them."""
from __future__ import annotations

from concurrent.futures import Future
from typing import Callable

from ..insight.outputs import save_outputs
from ..runs import events as ev
from ..runs.run_folder import RunFolder
from ..tasks.base import Task
from ..tasks.classical import classical_result, start_classical
from .callbacks import Evaluated, LoopState, TrainerCallback, TrainerControl
from .prepare import Splits


class SaveBestModel(TrainerCallback):
    """At each new best: the model (``save_model``), its validation predictions and its outputs."""

    def __init__(self, folder: RunFolder, save_model: Callable[[], None]):
        self.folder, self.save_model = folder, save_model

    def on_new_best(self, state: LoopState, evaluated: Evaluated) -> None:
        self.save_model()
        scored = evaluated.scored
        if scored.predictions is not None:
            self.folder.write_predictions(scored.predictions)
        if scored.probabilities is not None:
            save_outputs(self.folder.path, scored.probabilities, scored.truth)


class Baselines(TrainerCallback):
    """The task's trivial baseline (given) and its classical model, fitted on the training split in a thread beside
    the first steps; both are published once the classical model is fitted (looked at each step end, waited for when
    training ends)."""

    def __init__(self, task: Task, splits: Splits, task_state: dict, seed: int, trivial: dict | None,
                 publish: Callable[[ev.Event], None]):
        self.task, self.splits, self.task_state, self.seed, self.publish = task, splits, task_state, seed, publish
        self.trivial: dict | None = trivial
        self.classical: dict | None = None
        self._fit: Future | None = None

    def on_train_begin(self, state: LoopState) -> None:
        if self.task.classical_name:
            self._fit = start_classical(self.task, self.splits.train, self.splits.val, self.task_state, self.seed)

    def on_step_end(self, state: LoopState, control: TrainerControl) -> None:
        if self._fit is not None and self._fit.done():
            self._publish()

    def on_train_end(self, state: LoopState) -> None:
        if self._fit is not None:
            self._publish()

    def _publish(self) -> None:
        fit, self._fit = self._fit, None
        self.classical = classical_result(fit, self.task)
        self.publish(ev.Baselines(self.trivial, self.classical))
