"""The request log: one row per served prediction (time, latency, what the monitor observes of it, optionally
the input) and one per piece of feedback, in any SQLAlchemy database (a SQLite file by default).

Requests only put entries on a queue; one writer thread turns them into rows in batches, keeps the table under
``max_rows`` and counts what it could not write, so a slow, locked or missing database never fails a prediction.
"""
from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

from ...tasks.types import Prediction
from .observe import Observation

WRITE_INTERVAL_S = 0.5  # the log lags requests by at most about this much
metadata = sa.MetaData()
META = sa.Table("meta", metadata, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
PREDICTIONS = sa.Table(
    "predictions", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("time", sa.Float, index=True),
    sa.Column("latency_ms", sa.Float),
    sa.Column("outcome", sa.Text),  # JSON list of categories
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("input_chars", sa.Integer),
    sa.Column("unknown_rate", sa.Float),
    sa.Column("prediction", sa.Text),  # the response's JSON
    sa.Column("input", sa.Text, nullable=True),  # JSON role -> text, only when inputs are logged
)
FEEDBACK = sa.Table(
    "feedback", metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # the prediction's id
    sa.Column("time", sa.Float),
    sa.Column("truth", sa.Text),  # JSON: a label, a number or a list of labels
)


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL as given, or a SQLite URL for a file path."""
    text = str(target)
    return text if "://" in text else f"sqlite:///{Path(text).resolve()}"


def open_database(url: str, tables: sa.MetaData = metadata) -> sa.Engine:
    """An engine with ``tables`` created (the request log's by default); SQLite files get their folder, WAL and a
    short lock timeout."""
    url = database_url(url)
    options = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        options["connect_args"] = {"timeout": 1.0, "check_same_thread": False}
    engine = sa.create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", sqlite_settings)
    tables.create_all(engine)
    return engine


def sqlite_settings(connection, _record) -> None:
    """WAL: readers (the report) never wait for the writer; NORMAL sync: a power cut may lose the last
    half-second of log, never the database."""
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


@dataclass
class Logged:
    """A prediction waiting to be written: its input (role -> text) is kept only if ``keep_input``."""

    id: str
    time: float
    latency_ms: float
    input: dict[str, str]
    prediction: Prediction
    response: dict
    keep_input: bool = False


Describe = Callable[[dict[str, list[str]], list[Prediction]], list[Observation]]


@dataclass
class WriterStats:
    written: int = 0
    dropped: int = 0  # the queue was full
    failed: int = 0  # entries lost to database errors
    last_error: str = ""


class RequestLog:
    """Writes predictions and feedback off the request path; reads them back for the report."""

    def __init__(self, url: str | Path, describe: Describe, meta: dict | None = None, max_rows: int = 100_000,
                 queue_size: int = 20_000):
        self.url, self.describe, self.max_rows = database_url(url), describe, max_rows
        self._since_trim = max_rows  # trim on the first write, then every 1,000 predictions
        self.engine = open_database(self.url)
        self.stats = WriterStats()
        self._queue: queue.Queue = queue.Queue(queue_size)
        if meta:
            self._write_meta(meta)
        self._writer = threading.Thread(target=self._drain, name="request-log", daemon=True)
        self._writer.start()

    # -- writing -------------------------------------------------------------------
    def add(self, entry: Logged | tuple[str, float, object]) -> None:
        """Queue a prediction (``Logged``) or feedback (``(id, time, truth)``); never blocks, never raises."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.stats.dropped += 1

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until everything queued so far is written (or given up on)."""
        deadline = time.time() + timeout_s
        while self._queue.unfinished_tasks and time.time() < deadline:
            time.sleep(0.01)

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            time.sleep(WRITE_INTERVAL_S)  # gather a batch: one transaction per interval, not per request
            while len(batch) < 2000:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
                self.stats.written += len(batch)
            except Exception as exc:  # a locked or missing database loses these rows, nothing else
                self.stats.failed += len(batch)
                self.stats.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _write(self, batch: list) -> None:
        logged = [e for e in batch if isinstance(e, Logged)]
        predictions = []
        if logged:
            rows = {role: [e.input[role] for e in logged] for role in logged[0].input}
            predictions = [prediction_row(e, o) for e, o in zip(logged, self.describe(rows, [e.prediction for e in logged]))]
        with self.engine.begin() as conn:
            if predictions:
                conn.execute(PREDICTIONS.insert(), predictions)
            write_feedback(conn, [e for e in batch if not isinstance(e, Logged)])
            self._since_trim += len(predictions)
            if self._since_trim >= min(1000, self.max_rows):
                self._trim(conn)
                self._since_trim = 0

    def _trim(self, conn) -> None:
        """Keep the newest ``max_rows`` predictions (and their feedback)."""
        count = conn.execute(sa.select(sa.func.count()).select_from(PREDICTIONS)).scalar_one()
        if count <= self.max_rows:
            return
        cutoff = conn.execute(sa.select(PREDICTIONS.c.time).order_by(PREDICTIONS.c.time.desc())
                              .offset(self.max_rows).limit(1)).scalar_one()
        old = sa.select(PREDICTIONS.c.id).where(PREDICTIONS.c.time <= cutoff)
        conn.execute(FEEDBACK.delete().where(FEEDBACK.c.id.in_(old)))
        conn.execute(PREDICTIONS.delete().where(PREDICTIONS.c.time <= cutoff))

    def _write_meta(self, meta: dict) -> None:
        with self.engine.begin() as conn:
            for key, value in meta.items():
                conn.execute(META.delete().where(META.c.key == key))
                conn.execute(META.insert(), {"key": key, "value": json.dumps(value)})


def prediction_row(entry: Logged, o: Observation) -> dict:
    return {"id": entry.id, "time": entry.time, "latency_ms": entry.latency_ms, "outcome": json.dumps(o.outcome),
            "confidence": o.confidence, "value": o.value, "input_chars": o.input_chars,
            "unknown_rate": o.unknown_rate, "prediction": json.dumps(entry.response, ensure_ascii=False),
            "input": json.dumps(entry.input, ensure_ascii=False) if entry.keep_input else None}


def write_feedback(conn, answers: list[tuple[str, float, object]]) -> None:
    """Store ``(id, time, truth)`` answers in the feedback table; the latest answer for an id wins."""
    for prediction_id, when, truth in answers:
        conn.execute(FEEDBACK.delete().where(FEEDBACK.c.id == prediction_id))
        conn.execute(FEEDBACK.insert(), {"id": prediction_id, "time": when, "truth": json.dumps(truth)})


def logged(engine: sa.Engine, prediction_id: str) -> bool:
    """Whether the log holds the prediction ``prediction_id``."""
    with engine.connect() as conn:
        return conn.execute(sa.select(PREDICTIONS.c.id).where(PREDICTIONS.c.id == prediction_id)).first() is not None


def read_meta(engine: sa.Engine) -> dict:
    with engine.connect() as conn:
        return {key: json.loads(value) for key, value in conn.execute(sa.select(META.c.key, META.c.value))}


def read_window(engine: sa.Engine, last: int | None = None, since: float | None = None) -> list[dict]:
    """The newest ``last`` predictions (or those after ``since``), oldest first, each with its feedback if any."""
    query = (sa.select(PREDICTIONS, FEEDBACK.c.truth)
             .join(FEEDBACK, FEEDBACK.c.id == PREDICTIONS.c.id, isouter=True)
             .order_by(PREDICTIONS.c.time.desc()))
    if since is not None:
        query = query.where(PREDICTIONS.c.time >= since)
    if last is not None:
        query = query.limit(last)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    for row in rows:
        for key in ("outcome", "prediction", "input", "truth"):
            row[key] = json.loads(row[key]) if row[key] is not None else None
    return rows[::-1]


def observation_of(row: dict) -> Observation:
    return Observation(row["outcome"], row["confidence"], row["value"], row["input_chars"], row["unknown_rate"])
