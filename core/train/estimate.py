"""How long a run will take on this machine and how much memory it needs, said before Start.

The first time a base model trains a task in a given mode (full or LoRA, precision), a short real run measures
this machine: the engine trains a sample of the table for MEASURE_STEPS steps and evaluates once, in a throw-away
folder. Its events' times give the seconds to load the model, per training token and per evaluation; they are
remembered per machine in the runs folder (``machine_speed.json``), so later tables and settings are estimated
at once from their token counts and schedule.
"""
from __future__ import annotations

import functools
import math
import platform
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from transformers import AutoConfig

from ..common.atomic import read_json, write_json_atomic
from ..common.errors import StudioError
from ..common.foreground import someone_waiting, yields_to_people
from ..models.registry import resolve_model_path
from ..runs import events as ev
from ..runs.config import TrainConfig
from ..runs.store import RunStore
from ..tasks import get_task
from ..tasks.classical import MAX_TRAIN_ROWS
from ..tasks.types import TaskData
from .engine import TrainingJob
from .few_shot import few_shot_mode
from .model_setup import activation_bytes, length_grouped_batches
from .schedule import Schedule, expected_train_rows

SPEED_FILE = "machine_speed.json"
TRAIN_BATCHES = 4  # training rows of the short run, in batches
MEASURE_STEPS = 1 + 2 * TRAIN_BATCHES  # about two epochs of the sample are timed, so that every length-grouped
                                       # batch counts; the first step (warming up) and those beside the classical
                                       # baseline's fit are left out
EVAL_ROWS = 32  # validation rows of the short run (at most)
FORWARD_SHARE = 1 / 3  # of a training step's time per token, the forward pass (the backward pass costs about twice)
SAMPLE_ROWS = 256  # rows whose token lengths stand for the table's
SETTLE_S = 2.0  # settings unchanged this long before a short run measures them (a person may still be moving sliders)


@dataclass(frozen=True)
class Speed:
    """What the short run measured."""

    load_s: float  # Start -> first step: loading the model, tokenising
    train_s_per_token: float  # one padded training token: forward, backward, optimizer step
    eval_fixed_s: float  # an evaluation besides its forward passes: scoring, sample answers, saving the best model
    classical_s: float  # the classical baseline, fitted on the sample's training rows beside the first steps
    classical_rows: int
    total_params: int
    trainable_params: int


@dataclass(frozen=True)
class Estimate:
    seconds: float
    memory_bytes: float

    def describe(self) -> str:
        return f"about {duration(self.seconds)} on this machine · needs about {self.memory_bytes / 2**30:.1f} GB of memory"


def duration(seconds: float) -> str:
    """'40 s', '7 min', '1 h 20 min'."""
    if seconds < 90:
        return f"{max(5, round(seconds / 5) * 5):.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def machine() -> str:
    """This machine as the speed depends on it: the processor, the threads torch uses and the GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu} · {torch.get_num_threads()} threads · {gpu}"


def speed_key(config: TrainConfig) -> str:
    """What a measured speed is valid for: the machine, the base model, the task and what trains."""
    mode = f"lora r{config.lora_rank} top {config.lora_layers}" if config.lora else (
        "full, frozen embeddings" if config.freeze_embeddings else "full")
    return " | ".join((machine(), config.base_model, config.task, mode, config.precision,
                       f"keep {config.keep_layers}"))


def row_tokens(config: TrainConfig, data: TaskData) -> list[int]:
    """Token counts of up to SAMPLE_ROWS rows, encoded as the run will encode them."""
    task = get_task(config.task)
    rows = data if len(data) <= SAMPLE_ROWS else data.subset(
        torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:SAMPLE_ROWS].tolist())
    state = task.fit(rows, config)
    return task.encode(task.processor(config.base_model, state), rows, config.max_length, state).lengths()


_TABLE_TOKENS: dict[tuple, tuple[TaskData, list[int]]] = {}  # the last tables' counts: the page asks at each change


def table_tokens(config: TrainConfig, data: TaskData) -> list[int]:
    """``row_tokens`` of a table, remembered for that table object and the settings that change them."""
    key = (id(data), config.base_model, config.task, config.max_length)
    known = _TABLE_TOKENS.get(key)
    if known is None or known[0] is not data:
        if len(_TABLE_TOKENS) >= 8:
            _TABLE_TOKENS.clear()
        known = _TABLE_TOKENS[key] = (data, row_tokens(config, data))
    return known[1]


@functools.lru_cache(maxsize=8)
def model_config(base_model: str):
    return AutoConfig.from_pretrained(resolve_model_path(base_model), local_files_only=True)


def padded_tokens_per_row(lengths: list[int], batch_size: int, grouped: bool) -> float:
    """Tokens a row costs in a batch, padding to the batch's longest row included."""
    batches = length_grouped_batches(lengths, batch_size, torch.Generator().manual_seed(0), grouped)
    return sum(max(lengths[i] for i in rows) * len(rows) for rows in batches) / len(lengths)


def evaluations(schedule: Schedule) -> int:
    return math.ceil(schedule.total_steps / schedule.eval_every)


class MeasureStopped(Exception):
    """The short run was stopped (a real run started); nothing was learnt about the machine."""


def measure(config: TrainConfig, data: TaskData, on_job: Callable[[TrainingJob], None] = lambda job: None) -> Speed:
    """Train a sample of ``data`` (TRAIN_BATCHES batches, up to EVAL_ROWS validation rows) for MEASURE_STEPS steps
    with ``config`` in a temporary folder, evaluate once and time it; ``on_job`` gets the short run's job before it
    starts (to stop it)."""
    task = get_task(config.task)
    val_rows = min(EVAL_ROWS, max(1, round(config.val_fraction * len(data))))
    wanted = TRAIN_BATCHES * config.batch_size + val_rows
    sample = data
    if len(data) > wanted:
        try:
            sample = task.split(data, wanted / len(data), config.seed)[1]
        except StudioError:
            sample = data
    trial = replace(config, max_steps=MEASURE_STEPS, eval_every_steps=MEASURE_STEPS, early_stopping_patience=0,
                    processes=1, mlflow="", augment="off", deduplicate=False, few_shot="off",
                    val_fraction=min(0.5, val_rows / len(sample)) if len(sample) < len(data) else config.val_fraction)
    resolve_model_path(config.base_model)  # a first use converts the model once: not part of any later load
    with tempfile.TemporaryDirectory(prefix="sft-speed-") as folder:
        job = TrainingJob(trial, sample, RunStore(folder), data_name="speed-test", save_on_stop=False)
        on_job(job)
        began = time.time()
        job.run()
        events = job.events.since(0)
    if isinstance(events[-1], ev.Cancelled):
        raise MeasureStopped()
    if not isinstance(events[-1], ev.Finished):
        raise StudioError(f"Could not measure this machine's speed: {getattr(events[-1], 'message', 'stopped')}")
    started = next(e for e in events if isinstance(e, ev.Started))
    baselines = next((e for e in events if isinstance(e, ev.Baselines)), None)
    classical = (baselines.classical if baselines else None) or {}
    steps = [e.time for e in events if isinstance(e, ev.Step)]
    alone = [t for t in steps if baselines and t > baselines.time]  # the classical fit no longer shares the CPU
    steps = alone if len(alone) >= 3 else steps
    evaluated = next(e.time for e in events if isinstance(e, ev.Evaluation))
    train, val = task.split(sample, trial.val_fraction, trial.seed)
    train_tokens = padded_tokens_per_row(row_tokens(config, train), config.batch_size, config.group_by_length)
    per_token = (steps[-1] - steps[0]) / (len(steps) - 1) / (train_tokens * min(config.batch_size, len(train)))
    forward_s = sum(row_tokens(config, val)) * FORWARD_SHARE * per_token
    return Speed(load_s=started.time - began, train_s_per_token=per_token,
                 eval_fixed_s=max(0.0, evaluated - steps[-1] - forward_s),
                 classical_s=classical.get("seconds", 0.0), classical_rows=len(train),
                 total_params=started.total_params, trainable_params=started.trainable_params)


def classical_seconds(speed: Speed, train_rows: int) -> float:
    """The classical baseline's fit on ``train_rows`` rows. Its cost grows more slowly than the rows on tables of
    this size (vectorisers, solver set-up and one model per class cost the same for any length): seen here as the
    square root (multi-label TF-IDF + logistic regression, 64 -> 480 rows: 2.4 -> 6.9 s, about 2.8x for 7.5x)."""
    rows = min(train_rows, MAX_TRAIN_ROWS)
    return speed.classical_s * math.sqrt(rows / max(1, speed.classical_rows))


def estimate(config: TrainConfig, data: TaskData, speed: Speed, correction: float = 1.0) -> Estimate:
    """The run's time (load, steps, evaluations; times ``correction``, what real runs here took against their
    estimate) and memory (weights, gradients, AdamW states, activations). Cross-validation: one run per fold, each
    holding out 1/folds of the rows. A few-shot run's step reads a pair of rows per row of its batch."""
    if config.folds > 1:
        one = estimate(replace(config, folds=1, fold=0, val_fraction=1 / config.folds), data, speed, correction)
        return Estimate(one.seconds * config.folds, one.memory_bytes)
    lengths = table_tokens(config, data)
    train_rows = expected_train_rows(config, len(data))
    mode = few_shot_mode(config, data)
    schedule = mode.schedule(config, train_rows, config.processes)
    step_tokens = (padded_tokens_per_row(lengths, config.batch_size, config.group_by_length) * config.batch_size
                   * (2 if mode.on else 1))
    val_tokens = max(1, round(config.val_fraction * len(data))) * statistics.mean(lengths)
    per_evaluation = speed.eval_fixed_s + val_tokens * FORWARD_SHARE * speed.train_s_per_token
    seconds = (speed.load_s + schedule.total_steps * config.processes * step_tokens * speed.train_s_per_token
               + evaluations(schedule) * per_evaluation + classical_seconds(speed, train_rows))
    weights = 4 * speed.total_params + 12 * speed.trainable_params  # fp32 weights; gradients and two AdamW moments
    return Estimate(seconds * correction,
                    weights + activation_bytes(model_config(config.base_model), config.batch_size, max(lengths)))


class SpeedBook:
    """Measured speeds, kept in the runs folder; measures a missing one in a background thread."""

    def __init__(self, root: str | Path):
        self.path = Path(root) / SPEED_FILE
        self._lock = threading.Lock()
        self._measuring: dict[str, threading.Thread] = {}
        self._jobs: dict[str, TrainingJob] = {}  # the short runs under way, to stop when a real run starts
        self._failed: dict[str, str] = {}
        self._wanted: str | None = None  # the settings the page shows now
        yields_to_people(self)

    def get(self, config: TrainConfig) -> Speed | None:
        known = (read_json(self.path, {}) or {}).get(speed_key(config))
        try:
            return Speed(**known) if known else None
        except TypeError:  # written by another version: measured again
            return None

    def correction(self, config: TrainConfig) -> float:
        """What real runs of this model, task and mode took here over their estimate (1 until one has finished all
        its steps): the page and the browser share the processor with a real run, not with the short test. Runs
        of another kind teach nothing: their overheads differ."""
        return float((read_json(self.path, {}) or {}).get(self._real_runs_key(config), 1.0))

    def follow(self, job: TrainingJob, config: TrainConfig, data: TaskData) -> None:
        """Compare ``job``'s time with its estimate when it finishes all its steps (an early stop proves nothing)."""

        def on_event(event: ev.Event) -> None:
            if not isinstance(event, ev.Finished) or (speed := self.get(config)) is None:
                return
            events = job.events.since(0)
            started = next((e for e in events if isinstance(e, ev.Started)), None)
            if not started or sum(isinstance(e, ev.Step) for e in events) != started.total_steps:
                return
            try:
                expected = estimate(config, data, speed).seconds
            except (StudioError, OSError, ValueError):
                return
            self._learn(config, min(3.0, max(1 / 3, (event.time - events[0].time) / expected)))

        job.events.subscribe(on_event)

    @staticmethod
    def _real_runs_key(config: TrainConfig) -> str:
        return f"{speed_key(config)} | real runs / estimate"

    def _learn(self, config: TrainConfig, ratio: float) -> None:
        with self._lock:
            known = read_json(self.path, {}) or {}
            key = self._real_runs_key(config)
            known[key] = ratio if known.get(key) is None else (known[key] + ratio) / 2
            write_json_atomic(self.path, known)

    def failure(self, config: TrainConfig) -> str | None:
        return self._failed.get(speed_key(config))

    def measuring(self, config: TrainConfig) -> bool:
        thread = self._measuring.get(speed_key(config))
        return bool(thread and thread.is_alive())

    def stop(self) -> None:
        """Stop the short runs under way and those waiting (a real run is starting: the two would slow and mistime
        each other)."""
        self._wanted = None
        self.yield_now()

    def yield_now(self) -> None:
        """A person waits for an answer (chat, prediction, evaluation): stop the short runs under way; the page's
        timer asks again, and the next one starts once nobody waits."""
        for job in list(self._jobs.values()):
            job.cancel()

    def measure(self, config: TrainConfig, data: TaskData) -> Speed:
        """Measure now (in this thread) and remember."""
        key = speed_key(config)
        try:
            speed = measure(config, data, lambda job: self._jobs.__setitem__(key, job))
        finally:
            self._jobs.pop(key, None)
        with self._lock:
            known = read_json(self.path, {}) or {}
            known[speed_key(config)] = asdict(speed)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, known)
        return speed

    def measure_later(self, config: TrainConfig, data: TaskData) -> None:
        """Measure the settings the page shows, in the background, once they have stayed SETTLE_S seconds and no
        other short run is under way; a short run for settings no longer shown is stopped."""
        key = speed_key(config)
        with self._lock:
            self._wanted = key
            for other, job in self._jobs.items():
                if other != key:
                    job.cancel()
            if self.measuring(config) or key in self._failed:
                return
            self._measuring[key] = threading.Thread(target=self._measure_when_settled, args=(key, config, data),
                                                    name="sft-speed", daemon=True)
            self._measuring[key].start()

    def _measure_when_settled(self, key: str, config: TrainConfig, data: TaskData) -> None:
        time.sleep(SETTLE_S)
        while self._wanted == key and (someone_waiting() or any(
                thread.is_alive() for other, thread in list(self._measuring.items()) if other != key)):
            time.sleep(0.2)
        if self._wanted != key:
            return  # the page moved on (or a real run started): measured when it asks again
        try:
            self.measure(config, data)
        except MeasureStopped:
            pass
        except StudioError as exc:
            self._failed[key] = exc.message
        except Exception as exc:  # a model that cannot train here: said once, no estimate
            self._failed[key] = f"Could not measure this machine's speed: {type(exc).__name__}: {exc}"
