"""What the monitor says about a request log: traffic, latency, each drift check and a verdict, and the score on
the predictions that got feedback; also the training table that feedback makes and the Prometheus metrics."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ...common.errors import DataError
from ...runs.run_folder import RunFolder
from ...tasks.outputs import OutputKind
from .drift import MIN_WINDOW, compare, verdict
from .log import database_url, observation_of, read_meta, read_window
from .observe import outcome_counts
from .reference import Reference

WINDOW = 500  # the report's default window: the newest predictions


@dataclass(frozen=True)
class FeedbackScore:
    labelled: int
    metric: str  # accuracy / RMSE / exact match
    value: float | None


def feedback_score(rows: list[dict], output: OutputKind) -> FeedbackScore:
    labelled = [r for r in rows if r["truth"] is not None]
    return FeedbackScore(len(labelled), output.feedback_metric,
                         output.feedback_score([r["prediction"] for r in labelled], [r["truth"] for r in labelled]))


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def shares(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {name: round(count / total, 4) for name, count in counts.items()}


def report(engine, reference: Reference, last: int | None = WINDOW, since: float | None = None) -> dict:
    """The monitor's JSON for the newest ``last`` predictions (or those after ``since``)."""
    return summarise(read_window(engine, last, since), reference)


def summarise(rows: list[dict], reference: Reference) -> dict:
    """The monitor's JSON for logged ``rows`` (oldest first)."""
    observations = [observation_of(r) for r in rows]
    checks = compare(reference, observations) if len(rows) >= MIN_WINDOW else []
    latencies = [r["latency_ms"] for r in rows]
    return {
        "window": len(rows),
        "from": rows[0]["time"] if rows else None,
        "to": rows[-1]["time"] if rows else None,
        "verdict": verdict(checks, len(rows)),
        "drifted": any(c.drifted for c in checks),
        "checks": [{**asdict(c), "severity": c.severity} for c in checks],
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "outcome_mix": {"validation": shares(reference.outcome), "window": shares(outcome_counts(observations))},
        "feedback": asdict(feedback_score(rows, reference.kind)),
        "reference": {"rows": reference.rows, "metric": reference.metric},
    }


def dataset_columns(run_dir: Path, frame: pd.DataFrame, inputs: list[str]) -> tuple[dict[str, str], str]:
    """Which columns of the run's ``dataset.csv`` (``frame``) hold each input role, and which the target: a column
    named after the role, or else the user's own column name that data.json keeps for it."""
    named = RunFolder(run_dir).data().get("columns") or {}
    columns = {role: role if role in frame.columns else named.get(role, role) for role in inputs}
    missing = [c for c in columns.values() if c not in frame.columns]
    if missing or len(frame.columns) <= len(columns):
        lacking = ", ".join(missing) or "of the target"
        raise DataError(f"The rows of '{Path(run_dir).name}' lack the column(s) {lacking}.")
    return columns, next(c for c in frame.columns if c not in columns.values())


def feedback_rows(engine, run_dir: Path, inputs: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's cleaned rows, and every logged input that got feedback as a row in the same columns (the feedback
    as its target, indexed by the prediction's id)."""
    original = RunFolder(run_dir).dataset()
    columns, target = dataset_columns(run_dir, original, inputs)
    added, ids = [], []
    for row in read_window(engine):
        if row["truth"] is None or not row["input"]:
            continue
        truth = row["truth"]
        value = json.dumps(truth, ensure_ascii=False) if isinstance(truth, list) else repr(truth) if isinstance(
            truth, float) else str(truth)
        added.append({**{column: row["input"].get(role, "") for role, column in columns.items()}, target: value})
        ids.append(row["id"])
    return original, pd.DataFrame(added, columns=original.columns, index=pd.Index(ids, name="id"))


def training_table(engine, run_dir: Path, inputs: list[str]) -> tuple[pd.DataFrame, int]:
    """The run's cleaned rows plus every logged input that got feedback, in the run's own column layout (the Data
    tab reads it back). Returns the table and how many rows feedback added."""
    original, added = feedback_rows(engine, run_dir, inputs)
    return pd.concat([original, added], ignore_index=True), len(added)


@dataclass
class LogView:
    """A request log opened for reading: its database, what it was written for, and that model's reference."""

    engine: sa.Engine
    meta: dict
    reference: Reference

    def report(self, last: int | None = WINDOW) -> dict:
        return report(self.engine, self.reference, last)

    def look(self, last: int | None = WINDOW) -> tuple[dict, pd.DataFrame]:
        """The report and the predictions behind it as a table (time, latency_ms, outcome, value, ...), read once."""
        rows = read_window(self.engine, last)
        frame = pd.DataFrame(rows, columns=["time", "latency_ms", "outcome", "value", "confidence", "truth"])
        frame["time"] = pd.to_datetime(frame["time"], unit="s")
        return summarise(rows, self.reference), frame

    def training_table(self) -> tuple[pd.DataFrame, int]:
        self.need_inputs()
        return training_table(self.engine, Path(self.meta["run"]), self.meta["inputs"])

    def need_inputs(self) -> None:
        if not self.meta.get("inputs_logged"):
            raise DataError("This log has no inputs: serve with --log-inputs to turn feedback into training rows.")


def open_log(database: str | Path) -> LogView:
    """Open a request log written by ``python -m core serve`` (a SQLAlchemy URL or a SQLite file)."""
    url = database_url(database)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise DataError(f"There is no request log at {url.removeprefix('sqlite:///')}.")
    engine = sa.create_engine(url)
    try:
        meta = read_meta(engine)
    except sa.exc.SQLAlchemyError as exc:
        raise DataError(f"{database} is not a request log of SFT Studio "
                        f"({str(exc.orig if hasattr(exc, 'orig') else exc).splitlines()[0][:200]}).") from None
    reference = Reference.load(Path(meta.get("folder", "")))
    if reference is None:
        raise DataError(f"The model this log was written for ({meta.get('folder', '?')}) has no monitor reference.")
    return LogView(engine, meta, reference)
