"""The validation reference: the served model's own predictions on its run's validation rows, described as the
monitor describes live traffic. Built once when a model is first served, then kept beside it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...common.atomic import read_json, write_json_atomic
from ...common.errors import ModelError
from ...runs.run_folder import RunFolder
from ...tasks.outputs import OUTPUTS, OutputKind
from .observe import Observation, observe, outcome_counts

MAX_ROWS = 2000  # validation rows predicted for the reference


@dataclass
class Reference:
    """Distributions of the validation predictions: outcome counts and the numeric features' values."""

    output: str  # the task's output kind: label / labels / number / spans
    rows: int
    outcome: dict[str, int] = field(default_factory=dict)
    numbers: dict[str, list[float]] = field(default_factory=dict)  # feature name -> one value per row
    metric: dict = field(default_factory=dict)  # the run's validation score: {"name", "value"}

    @classmethod
    def of(cls, output: OutputKind, observations: list[Observation], metric: dict | None = None) -> "Reference":
        return cls(output.name, len(observations), dict(outcome_counts(observations)),
                   numeric_features(observations), metric or {})

    @property
    def kind(self) -> OutputKind:
        return OUTPUTS[self.output]

    def save(self, folder: Path) -> None:
        write_json_atomic(Path(folder) / RunFolder.MONITOR_REFERENCE, asdict(self))

    @classmethod
    def load(cls, folder: Path) -> "Reference | None":
        data = read_json(Path(folder) / RunFolder.MONITOR_REFERENCE, None)
        return cls(**data) if data else None


NUMERIC = ("confidence", "value", "input_chars", "unknown_rate")


def numeric_features(observations: list[Observation]) -> dict[str, list[float]]:
    """Feature name -> values, leaving out features the task does not fill (e.g. confidence for regression)."""
    values = {name: [getattr(o, name) for o in observations if getattr(o, name) is not None] for name in NUMERIC}
    return {name: [float(v) for v in found] for name, found in values.items() if found}


def build_reference(predictor, run_dir: Path) -> Reference:
    """Predict the run's validation rows with ``predictor`` (the served model, maybe an export of the run)."""
    folder = RunFolder(run_dir)
    frame = folder.predictions()
    if frame is None or not set(predictor.inputs) <= set(frame.columns):
        raise ModelError(f"'{Path(run_dir).name}' has no validation predictions to compare live traffic with.")
    frame = frame.head(MAX_ROWS)
    rows = {role: frame[role].astype(str).tolist() for role in predictor.inputs}
    observations = observe(predictor.tokenizer, predictor.task.output, rows, predictor.predict(rows))
    metrics, primary = folder.metrics(), predictor.task.primary_metric
    metric = {"name": primary, "value": metrics[primary]} if primary in metrics else {}
    return Reference.of(predictor.task.output, observations, metric)


def reference_for(predictor, served: Path, run_dir: Path | None = None) -> Reference:
    """The served folder's saved reference, or one built now from ``run_dir`` (default: the served folder)."""
    found = Reference.load(served)
    if found is None or found.output != predictor.task.output.name:
        found = build_reference(predictor, run_dir or served)
        found.save(served)
    return found
