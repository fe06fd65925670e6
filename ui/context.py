"""What every tab shares: the run store, the job queue and the upload limits."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.data import DataLimits
from core.jobqueue import JobQueue
from core.store import RunInfo, RunStore


@dataclass
class AppContext:
    store: RunStore = field(default_factory=RunStore)
    queue: JobQueue = field(default_factory=JobQueue)
    limits: DataLimits = field(default_factory=DataLimits)

    def runs_with_model(self) -> list[RunInfo]:
        return [r for r in self.store.list() if r.has_model]

    def run_choices(self) -> list[tuple[str, str]]:
        """(label, run id) pairs for dropdowns, newest first."""
        choices = []
        for r in self.runs_with_model():
            acc = r.metrics.get("accuracy")
            score = f" · acc {acc:.3f}" if acc is not None else ""
            choices.append((f"{r.run_id} · {r.status}{score}", r.run_id))
        return choices


def error_md(message: str) -> str:
    return f"<div class='sft-error'>⚠️ {message}</div>"


def ok_md(message: str) -> str:
    return f"<div class='sft-ok'>{message}</div>"
