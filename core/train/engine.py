"""The training engine: fine-tunes a base model in a background thread and publishes events.

A run is three stages: data preparation (``core.train.prepare``), model and optimizer setup (``core.train.setup``)
and the step loop (``core.train.loop``). The loop is the same for every task: what differs (data, head, encoding,
metrics and which of them decides the best checkpoint) comes from the task; when to evaluate, save and stop comes
from callbacks (``core.train.callbacks``), and so does what records the run (``core.train.recorders``).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import torch
from transformers import logging as hf_logging
from transformers import set_seed

from ..common.devices import pick_device, resolve_precision
from ..common.errors import ModelError, StudioError
from ..models.registry import REGISTRY
from ..runs import events as ev
from ..runs.config import TrainConfig
from ..runs.run_folder import CANCELLED, FAILED, FINISHED, INTERRUPTED, RUNNING, RunFolder
from ..runs.store import RunStore
from ..runs.tensorboard_log import TensorBoardLog
from ..tasks import check_config, get_task
from ..tasks.base import Task
from ..tasks.rows import run_rows
from ..tasks.types import TaskData
from .callbacks import CallbackHandler, TrainerCallback, default_callbacks
from .checkpoint import save_model
from .evaluation import EvalContext
from .few_shot import few_shot_mode
from .few_shot_loop import FewShotLoop
from .loop import Cancelled, StepLoop
from .parallel.peers import PeerLost, SingleProcess
from .prepare import Splits, prepare_splits, save_dataset
from .recorders import Baselines, SaveBestModel
from .setup import Encoding, Optimization, set_up

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


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
        self._handler: CallbackHandler | None = None  # the loop's callbacks, once training begins
        self._baselines: Baselines | None = None
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
        config, data = folder.config(), run_rows(folder)
        job = cls(config, data, store or RunStore(folder.path.parent), data_name=folder.data()["name"],
                  parallel=parallel)
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
            metrics = self._end()
            self.folder.set_status(CANCELLED)
        self.events.publish(ev.Cancelled(str(self.run_dir or ""), metrics))

    def _train(self) -> None:
        cfg, task = self.config, self.task
        spec = REGISTRY.get(cfg.base_model)
        first_use = " (first use: converting it once, about a minute)" if spec and spec.needs_conversion else ""
        self._status(f"Loading the base model{first_use}")
        set_seed(cfg.seed)
        self.device = self.parallel.device or pick_device()
        self.precision = resolve_precision(cfg.precision, self.device, task.bf16_on_cpu)
        splits = prepare_splits(task, self.data, cfg, self._status)
        self.val = splits.val
        mode = few_shot_mode(cfg, self.data)
        encoding, optimization, self._eval = set_up(self, splits, mode)
        handler = self._begin(splits, encoding, optimization)
        self._started = time.time() - handler.state.elapsed
        loop = FewShotLoop if mode.on else StepLoop
        loop(self, encoding.rows, optimization, self._eval, handler, self._started).run()
        if not self.parallel.main:
            return
        self._samples_per_s = handler.state.seen / (time.time() - self._started)
        metrics = self._end()
        self.folder.set_status(FINISHED)
        self.events.publish(ev.Finished(str(self.run_dir), metrics, metrics["train_seconds"], self._samples_per_s))

    def _begin(self, splits: Splits, encoding: Encoding, optimization: Optimization) -> CallbackHandler:
        """The callback handler (process 0 adds the recorders of the best model and the baselines), told that
        training begins; then the Started event."""
        cfg, task, model, schedule = self.config, self.task, self.model, optimization.schedule
        trivial = task.baseline(splits.train, splits.val, self.task_state)
        recorders = []
        if self.parallel.main:
            self._baselines = Baselines(task, splits, dict(self.task_state), cfg.seed, trivial, self.events.publish)
            recorders = [SaveBestModel(self.folder, self._save_model), self._baselines]
        callbacks = recorders + default_callbacks(schedule.eval_every, cfg.early_stopping_patience) + self.callbacks
        self._handler = CallbackHandler(callbacks, optimization.state)
        self._handler.on_train_begin()
        self.events.publish(ev.Started(
            str(self.run_dir), optimization.state.total, len(splits.train), len(splits.val), self.data.label_names,
            self.precision, encoding.unknown_share, encoding.warnings,
            sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()),
            task.name, schedule.describe()))
        if (world := self.parallel.world) > 1:
            self._status(f"Data-parallel on {world} processes: global batch {cfg.batch_size * world} = "
                         f"{cfg.batch_size} per process x {world}")
        return self._handler

    def save_dataset(self, **split_counts) -> None:
        """Describe the data and keep a copy of its cleaned rows: a resumed run or a worker process rebuilds the
        data from these."""
        save_dataset(self.folder, self.task, self.data, self.data_name, **split_counts)

    def _status(self, message: str) -> None:
        self.events.publish(ev.Status(message))

    @property
    def _best(self) -> dict | None:
        return self._handler.state.best if self._handler else None

    def _save_model(self) -> None:
        save_model(self.folder, self.model, self.task.name, self.task_state, self.config.lora)

    def _end(self) -> dict:
        """Tell the callbacks that training ended (the classical baseline is waited for), then write metrics.json."""
        if self._handler:
            self._handler.on_train_end()
        task, baselines = self.task, self._baselines
        metrics = {**(self._best or {}), "task": task.name, "primary_metric": task.primary_metric,
                   "greater_is_better": task.greater_is_better, "baseline": baselines.trivial if baselines else None,
                   "classical": baselines.classical if baselines else None,
                   "train_seconds": time.time() - self._started, "samples_per_s": self._samples_per_s,
                   "precision": self.precision, "device": str(self.device)}
        self.folder.write_metrics(metrics)
        return metrics

