"""The review queue: which served predictions a person should check first, and what the answers say.

One place in four goes to a stable random sample: a hash of the prediction id puts a quarter of all traffic in it, so
its accuracy estimates the accuracy on all traffic, and a prediction stays in or out of it on every visit. The other
places go, in order, to predictions the classical model (TF-IDF + logistic regression on the run's training rows)
disagrees with, to unusual inputs (length or unknown-token share outside the validation rows' 1st-99th percentile)
and to the least sure predictions; least sure first within each. Covers one-label text classifiers whose server logs
its inputs (--log-inputs); answers go to the request log's feedback table.
"""
from __future__ import annotations

import functools
import hashlib
import math
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ...common.errors import DataError, StudioError
from ...runs.run_folder import RunFolder
from ...tasks import get_task
from ...tasks.classical import TextFeatures, subsample
from ...tasks.rows import held_out
from ...tasks.base import Task
from ...tasks.types import TaskData
from .log import PREDICTIONS, read_window, write_feedback
from .report import LogView, dataset_columns, feedback_rows

SAMPLE_EVERY = 4  # one place in this many goes to the random sample (which holds 1 / SAMPLE_EVERY of traffic)
TRAIN_SHARE = 0.7  # of the reviewed predictions, the share the training table gets; the rest is held out
MAX_CANDIDATES = 5000  # the newest predictions without an answer that the queue chooses from
RANDOM, CLASSICAL, UNUSUAL, UNSURE = ("random sample", "the classical model disagrees", "unusual input",
                                      "least sure")
Z95 = 1.959964  # the normal quantile of a two-sided 95% interval


def id_share(prediction_id: str, purpose: str) -> float:
    """A stable, uniform number in [0, 1) for a prediction id (one independent number per ``purpose``)."""
    digest = hashlib.sha256(f"{purpose}:{prediction_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_sample(prediction_id: str) -> bool:
    return id_share(prediction_id, "sample") < 1 / SAMPLE_EVERY


def for_training(prediction_id: str) -> bool:
    return id_share(prediction_id, "table") < TRAIN_SHARE


def wilson(right: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``right`` / ``n`` (n > 0)."""
    centre, spread = (right + z * z / 2) / (n + z * z), z * math.sqrt(right * (n - right) / n + z * z / 4) / (n + z * z)
    return max(0.0, centre - spread), min(1.0, centre + spread)


@dataclass(frozen=True)
class ReviewItem:
    """One prediction waiting for a person's answer."""

    id: str
    inputs: dict[str, str]  # role -> text
    label: str  # the served model's answer
    confidence: float
    reason: str  # RANDOM / CLASSICAL / UNUSUAL / UNSURE
    classical: str | None = None  # the classical model's answer, where it differs


@dataclass(frozen=True)
class ReviewAccuracy:
    """The served model's accuracy on the answered predictions, and on those of the random sample."""

    reviewed: int
    right: int
    sample: int
    sample_right: int

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.sample_right, self.sample) if self.sample else None

    def line(self) -> str:
        if not self.reviewed:
            return "No prediction reviewed yet."
        text = f"{self.reviewed:,} reviewed, {self.right / self.reviewed:.0%} right"
        if self.interval:
            low, high = self.interval
            text += (f"; on the random sample ({self.sample:,}) accuracy {self.sample_right / self.sample:.0%} "
                     f"(95% Wilson interval {low:.0%}-{high:.0%})")
        return text + "."

    def to_dict(self) -> dict:
        return {**asdict(self), "interval": self.interval, "line": self.line()}


@dataclass(frozen=True)
class ReviewQueue:
    items: list[ReviewItem]
    waiting: int  # logged predictions without an answer
    labels: list[str]
    accuracy: ReviewAccuracy

    def to_dict(self) -> dict:
        return {"items": [asdict(i) for i in self.items], "waiting": self.waiting, "labels": self.labels,
                "accuracy": self.accuracy.to_dict()}


@dataclass(frozen=True)
class ReviewedTable:
    """The training table (the rows the run trained on + TRAIN_SHARE of the reviewed predictions) and the held-out rest."""

    path: Path
    held_out_path: Path
    rows: int
    added: int
    held_out: int


def reviewable(view: LogView) -> None:
    """Refuses a log the queue cannot serve, saying why."""
    view.need_inputs()
    if not view.reference.kind.one_class:
        raise DataError(f"The review queue covers models that answer one label per input, not "
                        f"{view.meta.get('task', 'this task')}.")


def accuracy_of(answered: list[dict]) -> ReviewAccuracy:
    hits = [(in_sample(r["id"]), r["truth"] == r["prediction"].get("label")) for r in answered]
    sampled = [hit for sample, hit in hits if sample]
    return ReviewAccuracy(len(hits), sum(hit for _, hit in hits), len(sampled), sum(sampled))


def review_accuracy(view: LogView) -> ReviewAccuracy:
    """The accuracy on every answered prediction of the log, and on the random sample's."""
    return accuracy_of([r for r in read_window(view.engine) if r["truth"] is not None])


@functools.lru_cache(maxsize=4)
def classical_labeller(run_dir: str, stamp: float):
    """The run's classical model fitted on its training rows (the run's own split), as a function of inputs
    (role -> texts) to labels; None where the run keeps no rows or they cannot be fitted. ``stamp``: the rows'
    modification time, so changed rows are fitted again."""
    folder = RunFolder(run_dir)
    try:
        task, train, _ = trained_rows(Path(run_dir), folder.dataset())
        train = subsample(train, folder.config().seed)
        features = TextFeatures.fit(task.texts(train))
        model = task.classical_model().fit(task.classical_matrix(features, train), train.targets)
    except (OSError, StudioError, ValueError):  # no rows kept (an export), one class left, an empty vocabulary
        return None

    def label(inputs: dict[str, list[str]]) -> list[str]:
        rows = TaskData(inputs, [0] * len(next(iter(inputs.values()))), train.columns, train.label_names)
        return [train.label_names[int(k)] for k in model.predict(task.classical_matrix(features, rows))]

    return label


def classical_labels(view: LogView, rows: list[dict]) -> list[str | None]:
    """The classical model's label for each logged row (None for all where there is no classical model)."""
    stamp = RunFolder(view.meta["run"]) / RunFolder.DATASET
    labeller = classical_labeller(str(view.meta["run"]), stamp.stat().st_mtime if stamp.is_file() else 0.0)
    if labeller is None or not rows:
        return [None] * len(rows)
    return labeller({role: [r["input"].get(role, "") for r in rows] for role in view.meta["inputs"]})


def unusual(view: LogView, row: dict) -> bool:
    """Whether the input's length or unknown-token share lies outside the validation rows' 1st-99th percentile."""
    for feature in ("input_chars", "unknown_rate"):
        values = view.reference.numbers.get(feature)
        if values and not np.percentile(values, 1) <= row[feature] <= np.percentile(values, 99):
            return True
    return False


def review_queue(view: LogView, size: int = 40) -> ReviewQueue:
    """The ``size`` predictions most worth a look (see the module's docstring) and the accuracy so far."""
    reviewable(view)
    rows = [r for r in read_window(view.engine) if r["input"]]
    answered = [r for r in rows if r["truth"] is not None]
    pending = [r for r in rows if r["truth"] is None][-MAX_CANDIDATES:]
    items = []
    for row, classical in zip(pending, classical_labels(view, pending)):
        label, confidence = row["prediction"].get("label"), row["confidence"] or 0.0
        differs = classical if classical is not None and classical != label else None
        reason = (RANDOM if in_sample(row["id"]) else CLASSICAL if differs else UNUSUAL if unusual(view, row)
                  else UNSURE)
        items.append(ReviewItem(row["id"], row["input"], label, confidence, reason, differs))
    sample = deque(sorted((i for i in items if i.reason == RANDOM), key=lambda i: id_share(i.id, "sample")))
    order = (CLASSICAL, UNUSUAL, UNSURE)
    ranked = deque(sorted((i for i in items if i.reason != RANDOM),
                          key=lambda i: (order.index(i.reason), i.confidence)))
    chosen = []
    while len(chosen) < size and (sample or ranked):
        take_sample = sample and (len(chosen) % SAMPLE_EVERY == 0 or not ranked)
        chosen.append((sample if take_sample else ranked).popleft())
    return ReviewQueue(chosen, len(pending), list(view.meta.get("labels", [])), accuracy_of(answered))


def record_answers(view: LogView, answers: dict[str, str]) -> int:
    """Write people's answers (prediction id -> label) to the log's feedback table; refuses unknown ids and labels."""
    reviewable(view)
    labels = list(view.meta.get("labels", []))
    checked = {i: view.reference.kind.checked_truth(label, labels) for i, label in answers.items()}
    with view.engine.begin() as conn:
        known = set(conn.execute(sa.select(PREDICTIONS.c.id).where(PREDICTIONS.c.id.in_(list(checked)))).scalars())
        unknown = [i for i in checked if i not in known]
        if unknown:
            raise DataError(f"The log has no prediction with the id {', '.join(unknown[:5])}.")
        write_feedback(conn, [(i, time.time(), label) for i, label in checked.items()])
    return len(checked)


def trained_rows(run_dir: Path, original: pd.DataFrame) -> tuple[Task, TaskData, dict[str, str]]:
    """The run's task, the rows of its ``dataset.csv`` (``original``, in either column layout) it trained on (its own
    split: the validation rows left out), and which column of ``original`` holds each role."""
    config = RunFolder(run_dir).config()
    task = get_task(config.task)
    columns, target = dataset_columns(run_dir, original, [r.name for r in task.roles if r.text])
    columns[next(r.name for r in task.roles if not r.text)] = target
    return task, held_out(task, task.prepare(original, columns), config)[0], columns


def training_split(run_dir: Path, original: pd.DataFrame) -> pd.DataFrame:
    """The rows the run trained on, in the columns of ``original``: its validation rows are left out, so a model
    trained on from them can be compared with the run on those rows (core.deploy.held_out_check)."""
    task, train, columns = trained_rows(run_dir, original)
    return task.to_frame(train).rename(columns=columns)[list(original.columns)]


def reviewed_table(view: LogView, path: str | Path) -> ReviewedTable:
    """Write the rows the run trained on (not its validation rows) + TRAIN_SHARE of the reviewed predictions (a stable
    split by id) to ``path``, and the other reviewed predictions to ``<path>_held_out.csv`` beside it: the served run's
    validation rows and these are the rows to compare a new model with the served one."""
    reviewable(view)
    run_dir = Path(view.meta["run"])
    original, reviewed = feedback_rows(view.engine, run_dir, view.meta["inputs"])
    training = np.array([for_training(i) for i in reviewed.index], dtype=bool)
    table = pd.concat([training_split(run_dir, original), reviewed[training]], ignore_index=True)
    path = Path(path)
    held_out_path = path.with_name(f"{path.stem}_held_out.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    reviewed[~training].to_csv(held_out_path, index=False)
    return ReviewedTable(path, held_out_path, len(table), int(training.sum()), int((~training).sum()))
