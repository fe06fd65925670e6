"""Model and optimizer setup, the second stage of a run: the base model loaded with the task's head, the training
split encoded as it reads it (refused when a batch cannot fit in memory), then the optimizer, its learning-rate
schedule and the generator of the batch order, restored from the resume checkpoint when the run continues one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from transformers import get_linear_schedule_with_warmup

from ..models.language import unknown_share, unknown_token_warning
from ..runs import events as ev
from ..runs.config import TrainConfig
from ..runs.run_folder import RunFolder
from ..tasks.base import Task
from ..tasks.types import Encoded
from .callbacks import LoopState
from .checkpoint import load_resume
from .dropout import use_fast_dropout
from .evaluation import EvalContext
from .few_shot import FewShotMode
from .model_setup import check_memory, load_training_model, make_optimizer
from .prepare import Splits
from .schedule import Schedule

if TYPE_CHECKING:
    from .engine import TrainingJob


@dataclass
class Encoding:
    """The training split as the model reads it, and the warnings of the data, of preparing and of encoding it."""

    rows: Encoded
    max_length: int  # the run's max length, lowered to the longest input the model accepts
    unknown_share: float  # of the tokens, the tokenizer's unknown token
    warnings: list[str]


def encode_split(task: Task, tokenizer, model, config: TrainConfig, splits: Splits, state: dict,
                 device: torch.device) -> Encoding:
    """Tokenise the training split; check that a batch of its longest rows fits on ``device``."""
    warnings = list(splits.warnings)
    max_length = min(config.max_length, getattr(model.config, "max_position_embeddings", None) or config.max_length)
    if max_length < config.max_length:
        warnings.append(f"Max length lowered to {max_length} tokens, the longest input this model accepts.")
    rows = task.encode_training(tokenizer, splits.train, max_length, state)
    warnings += task.encoding_warnings(rows, splits.train)
    unk = unknown_share(tokenizer, rows.input_ids)
    if (warning := unknown_token_warning(unk, config.base_model, task.texts(splits.train))):
        warnings.append(warning)
    check_memory(model.config, config.batch_size, max(rows.lengths()), device)
    return Encoding(rows, max_length, unk, warnings)


@dataclass
class Optimization:
    """What the step loop moves on: where it stands, the optimizer, its schedule and the batch-order generator."""

    schedule: Schedule
    state: LoopState
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator

    def resume(self, folder: RunFolder, model, device: torch.device) -> None:
        """Continue from the run folder's resume checkpoint: weights, optimizer, schedule, RNGs and loop state."""
        self.state = load_resume(folder, model, self.optimizer, self.scheduler, self.generator, device)


def make_optimization(model, config: TrainConfig, new_weights: set[str], schedule: Schedule) -> Optimization:
    """The optimizer (``new_weights``: the head's, see ``make_optimizer``) with linear warmup and decay over the
    ``schedule``'s steps, and the seeded generator of the batch order."""
    total = schedule.total_steps
    optimizer = make_optimizer(model, config, new_weights)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    return Optimization(schedule, LoopState(total=total), optimizer, scheduler,
                        torch.Generator().manual_seed(config.seed))


def set_up(job: TrainingJob, splits: Splits, mode: FewShotMode) -> tuple[Encoding, Optimization, EvalContext]:
    """The task's state fitted on the training split and ``job``'s model loaded (process 0 keeps the data and the
    tokenizer in the run folder), the split encoded, the optimizer made and, when resuming, restored; ``mode`` (the
    few-shot mode's or the plain fine-tune's) gives the model class, the learning rate and the schedule."""
    cfg, task, device = job.config, job.task, job.device

    def status(message: str) -> None:
        job.events.publish(ev.Status(message))

    job.task_state = task.fit(splits.train, cfg)
    tokenizer, model, new_weights, carried = load_training_model(cfg, task, job.data, device, job.task_state,
                                                                 mode.model_class)
    if device.type == "cpu":
        use_fast_dropout(model)
    job.check_cancel()
    job.tokenizer, job.model = tokenizer, model.to(device)
    if job.parallel.main:
        if not job.resuming:
            job.save_dataset(train_rows=len(splits.train), val_rows=len(splits.val))
        tokenizer.save_pretrained(job.run_dir)
    status(task.encoding_status)
    encoding = encode_split(task, tokenizer, job.model, cfg, splits, job.task_state, device)
    encoding.warnings += carried  # the labels a fine-tuned base model kept, gained and dropped
    evaluation = EvalContext(job.model, tokenizer, device, job.precision, splits.val, job.task_state,
                             lambda rows: task.encode(tokenizer, rows, encoding.max_length, job.task_state),
                             job.check_cancel, max(64, cfg.batch_size * 2), status=status)
    optimization = make_optimization(job.model, mode.optimizer_settings(cfg), new_weights,
                                     mode.schedule(cfg, len(splits.train), job.parallel.world))
    job.model.eval()  # no dropout (peft's wrapper turns training mode on)
    task.before_training(evaluation, encoding.rows)  # on the starting model, also when resuming
    if job.resuming:
        optimization.resume(job.folder, job.model, device)
        status(f"Resuming from step {optimization.state.step}")
        job.task_state.update((optimization.state.best or {}).get("task_state", {}))
    return encoding, optimization, evaluation
