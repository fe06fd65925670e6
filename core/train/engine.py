"""The training engine: fine-tunes a base model in a background thread and publishes events.

The loop is the same for every task: what differs (data, head, encoding, metrics and which of them decides the
best checkpoint) comes from the task; when to evaluate, save and stop comes from callbacks (``core.train.callbacks``).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path

import torch
from transformers import get_linear_schedule_with_warmup, set_seed
from transformers import logging as hf_logging

from ..common.devices import autocast, pick_device, resolve_precision
from ..common.errors import ModelError, StudioError
from ..insight.outputs import save_outputs
from ..insight.quality import deduplicate
from ..models.language import unknown_share, unknown_token_warning
from ..models.registry import REGISTRY
from ..runs import events as ev
from ..runs.config import BATCH_AUGMENTATIONS, TrainConfig
from ..runs.run_folder import CANCELLED, FAILED, FINISHED, INTERRUPTED, RUNNING, RunFolder
from ..runs.store import RunStore
from ..runs.tensorboard_log import TensorBoardLog
from ..tasks import check_config, get_task
from ..tasks.base import Task, TaskData
from ..tasks.classical import classical_result, start_classical
from .augment import augment
from .callbacks import Evaluated, LoopState, TrainerCallback, TrainerControl, default_callbacks
from .checkpoint import load_resume, save_model, save_resume
from .dropout import use_fast_dropout
from .evaluation import EvalContext
from .model_setup import check_memory, length_grouped_batches, load_training_model, make_optimizer
from .parallel.peers import PeerLost, SingleProcess
from .schedule import plan_schedule

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


class Cancelled(Exception):
    """Raised inside the training thread when the user pressed Stop."""


class TrainingJob:
    """One fine-tuning run of any task. ``start()`` runs it in a thread; read ``events`` for progress.

    ``callbacks`` join the default ones (evaluation schedule, a checkpoint per evaluation, early stopping) and
    may ask the loop to evaluate, save or stop (e.g. the search's pruner).
    """

    def __init__(self, config: TrainConfig, data: TaskData, store: RunStore | None = None,
                 data_name: str = "data", owner: str | None = None, parallel: SingleProcess | None = None,
                 callbacks: list[TrainerCallback] = (), tags: dict | None = None, save_on_stop: bool = True):
        self.config = config
        self.save_on_stop = save_on_stop  # Stop keeps the model trained so far (off for a throw-away timing run)
        self.parallel = parallel or SingleProcess()
        self.task: Task = get_task(config.task)
        self.owner = owner
        self.data = data
        self.data_name = data_name
        self.store = store or RunStore()
        self.callbacks = list(callbacks)
        self.tags = dict(tags or {})  # kept in the run's status, e.g. {"study": ..., "trial": ...}
        self.events = ev.EventLog()
        self.folder: RunFolder | None = None
        self.model = self.tokenizer = self.device = self.precision = self.val = None
        self.task_state: dict = {}
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._best: dict | None = None
        self._baseline: dict | None = None
        self._classical: dict | None = None  # fitted on the training split in a thread beside the first steps
        self._classical_job: Future | None = None
        self._eval: EvalContext | None = None
        self._started = time.time()
        self._samples_per_s: float | None = None
        self._existing: RunFolder | None = None  # a run folder this job continues or was prepared in
        self._resuming = False

    @classmethod
    def resume(cls, run_dir: str | Path, store: RunStore | None = None) -> "TrainingJob":
        """A job that continues an interrupted run from its last resume checkpoint, in the same folder."""
        if not RunFolder(run_dir).has_resume_checkpoint():
            raise ModelError(f"The run '{Path(run_dir).name}' has no checkpoint to resume from.")
        return cls.from_folder(run_dir, store)

    @classmethod
    def from_folder(cls, run_dir: str | Path, store: RunStore | None = None,
                    parallel: SingleProcess | None = None) -> "TrainingJob":
        """The job a run folder describes (its config, data description and cleaned rows): it trains in that
        folder and continues from its resume checkpoint when there is one."""
        folder = RunFolder(Path(run_dir).expanduser().resolve())
        meta, config = folder.data(), folder.config()
        task = get_task(config.task)
        data = task.prepare(folder.dataset(), {role.name: role.name for role in task.roles})
        data.columns = meta.get("columns") or data.columns
        data.rows_total, data.rows_dropped = meta["rows_total"], meta["rows_dropped"]
        job = cls(config, data, store or RunStore(folder.path.parent), data_name=meta["name"], parallel=parallel)
        job._existing, job._resuming = folder, folder.has_resume_checkpoint()
        return job

    # -- control -----------------------------------------------------------
    @property
    def run_dir(self) -> Path | None:
        return self.folder.path if self.folder else None

    def start(self) -> "TrainingJob":
        self._thread = threading.Thread(target=self.run, name="sft-train", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    @property
    def done(self) -> bool:
        return self.events.done

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def resuming(self) -> bool:
        """Whether the job continues its run folder's resume checkpoint."""
        return self._resuming

    def check_cancel(self) -> None:
        """Raise Cancelled if Stop was pressed. In a process group only process 0 stops here; the training
        loop stops all of them together at a step boundary."""
        if self._cancel.is_set() and self.parallel.main:
            raise Cancelled()

    def release(self) -> None:
        """Drop the model, tokenizer and rows of a finished job; its events (what the page replays) stay."""
        self.model = self.tokenizer = self.val = self._eval = None
        self.data = None

    # -- the run -----------------------------------------------------------
    def run(self) -> None:
        """Run synchronously; every outcome ends in a Finished, Failed or Cancelled event."""
        try:
            self.check_cancel()
            check_config(self.config)
            self._open_run_dir()
            if self.config.processes > 1 and not self.parallel.distributed:
                from .parallel.launch import train_in_processes

                train_in_processes(self)  # worker processes train; their events are republished here
                return
            if self.parallel.main:
                self.events.subscribe(self.folder.append_event)
                self.events.subscribe(TensorBoardLog(self.run_dir))
                if self.config.mlflow:
                    from ..runs.mlflow_log import MlflowLog

                    self.events.subscribe(MlflowLog(self.config, self.run_dir, self.store.root,
                                                    {"task": self.task.name, "data": self.data_name, **self.tags}))
            self._train()
        except Cancelled:
            self._finish_cancelled()
        except PeerLost:
            self.mark_interrupted("Another training process stopped before the run finished.")
        except StudioError as exc:
            self._fail(exc.message)
        except (torch.OutOfMemoryError, MemoryError):
            self._fail("Out of memory. Lower the batch size or the max length and try again.")
        except OSError as exc:
            self._fail(f"Could not write to the runs folder ({exc.strerror or exc}: {exc.filename or self.store.root}). "
                       "Free some disk space or choose a writable folder.")
        except Exception as exc:  # the message reaches the user; the run folder keeps the history
            self._fail(f"Training failed: {type(exc).__name__}: {exc}")

    def prepare_folder(self) -> Path:
        """Create the run folder with what worker processes rebuild the job from (its config and data), for
        ``accelerate launch -m core.train.worker RUN_DIR`` started by hand, e.g. on several machines."""
        self._open_run_dir()
        self.save_dataset()
        return self.run_dir

    def _open_run_dir(self) -> None:
        if self._existing:  # resuming, or a worker process in the folder the app prepared
            self.folder = self._existing
            if self.parallel.main:
                self.folder.set_status(RUNNING)  # keeps the owner already recorded
        else:
            self.folder = RunFolder(self.store.create(f"{self.data_name}-{Path(self.config.base_model).name}"))
            self.folder.write_config(self.config)
            self.folder.set_status(RUNNING, owner=self.owner, **self.tags)

    def _fail(self, message: str) -> None:
        if not self.parallel.main:  # process 0 reports the run's outcome; the others leave a line in the log
            print(f"Process {self.parallel.rank}: {message}", flush=True)
            return
        if self.folder:
            try:
                self.folder.set_status(FAILED, message=message)
            except OSError:
                pass
        self.events.publish(ev.Failed(message))

    def mark_interrupted(self, cause: str) -> None:
        """A training process died: the run stays resumable from its last checkpoint (failed if it has none)."""
        if not self.parallel.main:
            return
        resumable = self.folder.has_resume_checkpoint()
        message = cause + (" The run is kept as interrupted: resume it from its last checkpoint." if resumable
                           else " No checkpoint was saved yet; start the run again.")
        self.folder.set_status(INTERRUPTED if resumable else FAILED, message=message)
        self.events.publish(ev.Failed(message))

    def _finish_cancelled(self) -> None:
        metrics = {}
        if self.folder and self.parallel.main:
            if self._best is None and self.model is not None and self.save_on_stop:
                self._save_model()
            metrics = self._write_metrics()
            self.folder.set_status(CANCELLED)
        self.events.publish(ev.Cancelled(str(self.run_dir or ""), metrics))

    def _train(self) -> None:
        cfg, data, task = self.config, self.data, self.task
        spec = REGISTRY.get(cfg.base_model)
        first_use = " (first use: converting it once, about a minute)" if spec and spec.needs_conversion else ""
        self.events.publish(ev.Status(f"Loading the base model{first_use}"))
        set_seed(cfg.seed)
        self.device = self.parallel.device or pick_device()
        self.precision = resolve_precision(cfg.precision, self.device, task.bf16_on_cpu)
        split_warnings = []
        if cfg.deduplicate:
            data, dropped = deduplicate(data)
            if dropped:
                split_warnings.append(f"Dropped {dropped:,} exact duplicate row(s) before the split.")
        train, self.val = task.split(data, cfg.val_fraction, cfg.seed)
        if cfg.augment not in ("off", *BATCH_AUGMENTATIONS):
            self.events.publish(ev.Status(f"Augmenting the training split ({cfg.augment})"))
            before, train = len(train), augment(task, train, cfg.augment, cfg.augment_copies, cfg.seed)
            split_warnings.append(f"Augmented the training split ({cfg.augment}): {before:,} -> {len(train):,} rows; "
                                  "the validation rows are untouched.")
        self.task_state = task.fit(train, cfg)
        tokenizer, model, new_weights = load_training_model(cfg, task, self.data, self.device, self.task_state)
        if self.device.type == "cpu":
            use_fast_dropout(model)
        self.check_cancel()
        self.tokenizer, self.model = tokenizer, model.to(self.device)
        if self.parallel.main:
            if not self._resuming:
                self.save_dataset(train_rows=len(train), val_rows=len(self.val))
            tokenizer.save_pretrained(self.run_dir)

        self.events.publish(ev.Status(task.encoding_status))
        warnings = list(data.warnings) + split_warnings
        max_length = min(cfg.max_length, getattr(model.config, "max_position_embeddings", None) or cfg.max_length)
        if max_length < cfg.max_length:
            warnings.append(f"Max length lowered to {max_length} tokens, the longest input this model accepts.")
        train_enc = task.encode_training(tokenizer, train, max_length, self.task_state)
        warnings += task.encoding_warnings(train_enc, train)
        unk = unknown_share(tokenizer, train_enc.input_ids)
        if (warning := unknown_token_warning(unk, cfg.base_model, task.texts(train))):
            warnings.append(warning)
        lengths = train_enc.lengths()
        check_memory(model.config, cfg.batch_size, max(lengths), self.device)
        self._eval = EvalContext(model, tokenizer, self.device, self.precision, self.val, self.task_state,
                                 lambda rows: task.encode(tokenizer, rows, max_length, self.task_state),
                                 self.check_cancel, max(64, cfg.batch_size * 2),
                                 status=lambda message: self.events.publish(ev.Status(message)))
        world = self.parallel.world
        global_batch = cfg.batch_size * world
        schedule = plan_schedule(cfg, len(train), world)
        steps_per_epoch = schedule.steps_per_epoch
        callbacks = default_callbacks(schedule.eval_every, cfg.early_stopping_patience) + self.callbacks
        loop = LoopState(total=schedule.total_steps)
        optimizer = make_optimizer(model, cfg, new_weights)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * loop.total), loop.total)
        generator = torch.Generator().manual_seed(cfg.seed)
        model.eval()  # no dropout (peft's wrapper turns training mode on)
        task.before_training(self._eval, train_enc)  # on the starting model, also when resuming
        if self._resuming:
            loop = load_resume(self.folder, model, optimizer, scheduler, generator, self.device)
            self.events.publish(ev.Status(f"Resuming from step {loop.step}"))
            self.task_state.update((loop.best or {}).get("task_state", {}))
            self._best = loop.best
        self._baseline = task.baseline(train, self.val, self.task_state)
        if self.parallel.main and task.classical_name:
            self._classical_job = start_classical(task, train, self.val, dict(self.task_state), cfg.seed)
        self.events.publish(ev.Started(
            str(self.run_dir), loop.total, len(train), len(self.val), data.label_names, self.precision, unk, warnings,
            sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()),
            task.name, schedule.describe()))
        if world > 1:
            self.events.publish(ev.Status(f"Data-parallel on {world} processes: global batch {global_batch} = "
                                          f"{cfg.batch_size} per process x {world}"))

        self._started = time.time() - loop.elapsed
        model.train()
        while loop.step < loop.total:
            epoch_rng = generator.get_state()
            for index, rows in enumerate(length_grouped_batches(lengths, global_batch, generator, cfg.group_by_length)):
                if index < loop.batch_in_epoch:
                    continue  # already trained before the resume checkpoint
                indices, loss = self.parallel.shard(rows), None
                if indices:
                    batch = train_enc.batch(indices, tokenizer, self.device)
                    with autocast(self.device, self.precision):
                        loss = task.loss(model, batch)
                    loss.backward()
                loss_value, stop = self.parallel.sync_step(model, loss, len(indices), self._cancel.is_set())
                if stop:
                    raise Cancelled()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                loop.step, loop.seen, loop.batch_in_epoch = loop.step + 1, loop.seen + len(rows), index + 1
                elapsed = time.time() - self._started
                self.events.publish(ev.Step(loop.step, loop.total, loop.step / steps_per_epoch, loss_value,
                                            scheduler.get_last_lr()[0], loop.seen / elapsed,
                                            elapsed / loop.step * (loop.total - loop.step)))
                self._publish_classical()
                control = TrainerControl()
                for callback in callbacks:
                    callback.on_step_end(loop, control)
                if control.should_evaluate:
                    if self.parallel.main:  # the others wait for its decision on stopping
                        self._evaluate(loop, loop.step / steps_per_epoch, callbacks, control)
                        self._act(control, loop, lambda: save_resume(self.folder, model, loop, optimizer, scheduler,
                                                                     epoch_rng))
                    loop.total = self.parallel.share(loop.total)
                elif control.should_stop:  # step-end decisions are the same in every process
                    self._act(control, loop, lambda: None)
                if loop.step >= loop.total:
                    break
            loop.epoch, loop.batch_in_epoch = loop.epoch + 1, 0
        if not self.parallel.main:
            return
        self._samples_per_s = loop.seen / (time.time() - self._started)
        metrics = self._write_metrics()
        self.folder.set_status(FINISHED)
        self.events.publish(ev.Finished(str(self.run_dir), metrics, metrics["train_seconds"], self._samples_per_s))

    def _act(self, control: TrainerControl, loop: LoopState, save) -> None:
        """Carry out what the callbacks asked: stop (the loop ends after this step), then save."""
        if control.should_stop:
            self.events.publish(ev.Status(control.stop_reason or "Stopped by a callback"))
            loop.total = loop.step
        if control.should_save:
            loop.elapsed, loop.best = time.time() - self._started, self._best
            save()

    def save_dataset(self, **split_counts) -> None:
        """Describe the data and keep a copy of its cleaned rows: a resumed run or a worker process rebuilds the
        data from these."""
        data = self.data
        self.folder.write_data({
            "name": self.data_name, "task": self.task.name, "columns": data.columns, "label_names": data.label_names,
            "rows_total": data.rows_total, "rows_dropped": data.rows_dropped, **split_counts,
            "class_counts": self.task.balance(data),
        }, self.task.to_frame(data))

    # -- evaluation (the task scores; the engine keeps the best) ---------------
    def _evaluate(self, loop: LoopState, epoch: float, callbacks: list[TrainerCallback],
                  control: TrainerControl) -> None:
        self.model.eval()
        try:
            loss, scored = self.task.evaluate(self._eval)
        finally:
            self.model.train()
        metrics = {**scored.metrics, "val_loss": loss}
        task, primary = self.task, self.task.primary_metric
        value, best = metrics[primary], (self._best or {}).get(primary)
        improved = best is None or (value > best if task.greater_is_better else value < best)
        if improved:
            self.task_state.update(scored.state)
            self._best = {**metrics, "step": loop.step, "epoch": epoch, "task_state": dict(self.task_state)}
            self._save_model()
            if scored.predictions is not None:
                self.folder.write_predictions(scored.predictions)
            if scored.probabilities is not None:
                save_outputs(self.run_dir, scored.probabilities, scored.truth)
        self.events.publish(ev.Evaluation(loop.step, epoch, loss, metrics, primary, improved))
        evaluated = Evaluated(loop.step, metrics, primary, task.greater_is_better, improved)
        for callback in callbacks:
            callback.on_evaluate(loop, control, evaluated)

    def _save_model(self) -> None:
        save_model(self.folder, self.model, self.task.name, self.task_state, self.config.lora)

    def _publish_classical(self, wait: bool = False) -> None:
        """Publish the classical baseline once its thread has fitted it (checked at each step; ``wait`` at the end)."""
        job = self._classical_job
        if job is None or not (wait or job.done()):
            return
        self._classical_job = None
        self._classical = classical_result(job, self.task)
        self.events.publish(ev.Baselines(self._baseline, self._classical))

    def _write_metrics(self) -> dict:
        self._publish_classical(wait=True)
        metrics = dict(self._best or {})
        metrics.update({
            "task": self.task.name,
            "primary_metric": self.task.primary_metric,
            "greater_is_better": self.task.greater_is_better,
            "baseline": self._baseline,
            "classical": self._classical,
            "train_seconds": time.time() - self._started,
            "samples_per_s": self._samples_per_s,
            "precision": self.precision,
            "device": str(self.device),
        })
        self.folder.write_metrics(metrics)
        return metrics
