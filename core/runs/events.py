"""Typed training events and a thread-safe, append-only log that subscribers read from."""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from .config import DEFAULT_TASK


@dataclass
class Event:
    time: float = field(default_factory=time.time, kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__.lower()

    def to_dict(self) -> dict:
        return {"event": self.kind, **asdict(self)}


@dataclass
class Status(Event):
    """A phase message: loading the model, tokenising, saving."""

    message: str


@dataclass
class Started(Event):
    run_dir: str
    total_steps: int
    train_rows: int
    val_rows: int
    label_names: list[str]
    precision: str
    unk_rate: float
    warnings: list[str]
    trainable_params: int
    total_params: int
    task: str = DEFAULT_TASK
    schedule: str = ""  # epochs, steps and evaluation interval, in words


@dataclass
class Baselines(Event):
    """What the fine-tune must beat, scored on the validation rows: the trivial predictor and the classical
    model (fitted beside the first steps; its dict says 'skipped' when it could not be fitted)."""

    trivial: dict | None
    classical: dict | None


@dataclass
class Step(Event):
    step: int
    total_steps: int
    epoch: float
    loss: float
    learning_rate: float
    samples_per_s: float
    eta_s: float


@dataclass
class Evaluation(Event):
    """One validation pass: the task's metrics dict and which of them decides the best checkpoint."""

    step: int
    epoch: float
    loss: float
    metrics: dict
    primary: str
    is_best: bool


@dataclass
class Finished(Event):
    run_dir: str
    metrics: dict
    train_seconds: float
    samples_per_s: float


@dataclass
class Failed(Event):
    message: str


@dataclass
class Cancelled(Event):
    run_dir: str
    metrics: dict


TERMINAL = (Finished, Failed, Cancelled)
EVENT_TYPES = {cls.__name__.lower(): cls for cls in (Status, Started, Baselines, Step, Evaluation, Finished, Failed, Cancelled)}


def from_dict(data: dict) -> Event:
    """The event that ``Event.to_dict`` wrote (one line of a run's history.jsonl)."""
    fields = dict(data)
    return EVENT_TYPES[fields.pop("event")](**fields)


class EventLog:
    """Append-only event list; readers keep a cursor so a page reload can replay from 0."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self._subscribers: list[Callable[[Event], None]] = []

    def publish(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            subscribers = list(self._subscribers)
            self._cond.notify_all()
        for callback in subscribers:
            callback(event)

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        with self._cond:
            self._subscribers.append(callback)

    def since(self, cursor: int = 0) -> list[Event]:
        with self._cond:
            return self._events[cursor:]

    def wait(self, cursor: int, timeout: float | None = None) -> list[Event]:
        """Block until there are events after ``cursor`` (or timeout) and return them."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._events) > cursor, timeout=timeout)
            return self._events[cursor:]

    @property
    def done(self) -> bool:
        with self._cond:
            return bool(self._events) and isinstance(self._events[-1], TERMINAL)
