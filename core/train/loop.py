"""The step loop, the last stage of a run: optimizer steps over length-grouped batches, each ending at the callback
handler, which may ask for an evaluation (the task scores it, the loop keeps the best in its state and the
recorders write it), a resume checkpoint or a stop. In a process group every process steps; process 0 alone
evaluates and saves, then shares its stop decision."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from ..common.devices import autocast
from ..runs import events as ev
from ..tasks.types import Encoded
from .callbacks import CallbackHandler, Evaluated, TrainerControl
from .checkpoint import save_resume
from .evaluation import EvalContext
from .model_setup import length_grouped_batches
from .setup import Optimization

if TYPE_CHECKING:
    from .engine import TrainingJob


class Cancelled(Exception):
    """Raised inside the training thread when the user pressed Stop."""


@dataclass
class StepLoop:
    """The steps of ``job`` from ``handler.state`` (0, or where a resume checkpoint left off) to its total."""

    job: TrainingJob
    rows: Encoded
    optimization: Optimization
    evaluation: EvalContext
    handler: CallbackHandler
    started: float  # when training began, less the time trained before a resume

    def run(self) -> None:
        state, generator = self.handler.state, self.optimization.generator
        self.job.model.train()
        while state.step < state.total:
            epoch_rng = generator.get_state()
            for index, rows in enumerate(self.batches(generator)):
                if index < state.batch_in_epoch:
                    continue  # already trained before the resume checkpoint
                self.step(index, rows)
                self.end_step(epoch_rng)
                if state.step >= state.total:
                    break
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0

    def batches(self, generator: torch.Generator) -> list[list[int]]:
        """One epoch's batches of training rows (of every process), grouped by length as configured."""
        cfg = self.job.config
        return length_grouped_batches(self.rows.lengths(), cfg.batch_size * self.job.parallel.world, generator,
                                      cfg.group_by_length)

    def backward(self, indices: list[int]) -> torch.Tensor:
        """The task's loss on the training rows ``indices``, its gradients computed."""
        job = self.job
        batch = self.rows.batch(indices, job.tokenizer, job.device)
        with autocast(job.device, job.precision):
            loss = job.task.loss(job.model, batch)
        loss.backward()
        return loss

    def step(self, index: int, rows: list[int]) -> None:
        """One optimizer step on this process's share of the batch ``rows``, gradients averaged over the group."""
        job, state, opt = self.job, self.handler.state, self.optimization
        indices = job.parallel.shard(rows)
        loss = self.backward(indices) if indices else None
        loss_value, stop = job.parallel.sync_step(job.model, loss, len(indices), job.cancel_requested)
        if stop:
            raise Cancelled()
        torch.nn.utils.clip_grad_norm_(job.model.parameters(), job.config.max_grad_norm)
        opt.optimizer.step()
        opt.scheduler.step()
        opt.optimizer.zero_grad(set_to_none=True)
        state.step, state.seen, state.batch_in_epoch = state.step + 1, state.seen + len(rows), index + 1
        elapsed = time.time() - self.started
        job.events.publish(ev.Step(state.step, state.total, self.epoch, loss_value, opt.scheduler.get_last_lr()[0],
                                   state.seen / elapsed, elapsed / state.step * (state.total - state.step)))

    @property
    def epoch(self) -> float:
        return self.handler.state.step / self.optimization.schedule.steps_per_epoch

    def end_step(self, epoch_rng: torch.Tensor) -> None:
        """Ask the callbacks, then evaluate, save and stop as they say."""
        job, state, opt = self.job, self.handler.state, self.optimization
        control = self.handler.on_step_end()
        if control.should_evaluate:
            if job.parallel.main:  # the others wait for its decision on stopping
                self.evaluate(control)
                self.act(control, lambda: save_resume(job.folder, job.model, state, opt.optimizer, opt.scheduler,
                                                      epoch_rng))
            state.total = job.parallel.share(state.total)
        elif control.should_stop:  # step-end decisions are the same in every process
            self.act(control, lambda: None)

    def evaluate(self, control: TrainerControl) -> None:
        """The task scores the validation rows; an improvement of its primary metric becomes the best."""
        job, state, task = self.job, self.handler.state, self.job.task
        job.model.eval()
        try:
            loss, scored = task.evaluate(self.evaluation)
        finally:
            job.model.train()
        metrics, primary = {**scored.metrics, "val_loss": loss}, task.primary_metric
        value, best = metrics[primary], (state.best or {}).get(primary)
        improved = best is None or (value > best if task.greater_is_better else value < best)
        evaluated = Evaluated(state.step, metrics, primary, task.greater_is_better, improved, scored)
        if improved:
            job.task_state.update(scored.state)
            state.best = {**metrics, "step": state.step, "epoch": self.epoch, "task_state": dict(job.task_state)}
            self.handler.on_new_best(evaluated)
        job.events.publish(ev.Evaluation(state.step, self.epoch, loss, metrics, primary, improved))
        self.handler.on_evaluate(control, evaluated)

    def act(self, control: TrainerControl, save: Callable[[], None]) -> None:
        """Carry out what the callbacks asked: stop (the loop ends after this step), then save."""
        state = self.handler.state
        if control.should_stop:
            self.job.events.publish(ev.Status(control.stop_reason or "Stopped by a callback"))
            state.total = state.step
        if control.should_save:
            state.elapsed = time.time() - self.started
            save()
