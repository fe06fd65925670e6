"""What every tab shares: the run store, the job queue and the upload limits."""
from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from core.data import DataLimits
from core.jobqueue import JobQueue
from core.store import RunInfo, RunStore


@dataclass
class AppContext:
    store: RunStore = field(default_factory=RunStore)
    queue: JobQueue = field(default_factory=JobQueue)
    limits: DataLimits = field(default_factory=DataLimits)

    def runs_with_model(self, viewer: str | None) -> list[RunInfo]:
        return [r for r in self.store.list(viewer) if r.has_model]

    def run_choices(self, viewer: str | None) -> list[tuple[str, str]]:
        """(label, run id) pairs for dropdowns, newest first."""
        choices = []
        for r in self.runs_with_model(viewer):
            acc = r.metrics.get("accuracy")
            score = f" · acc {acc:.3f}" if acc is not None else ""
            choices.append((f"{r.run_id} · {r.status}{score}", r.run_id))
        return choices


def viewer_of(request: gr.Request | None, browser_id: str | None) -> str | None:
    """Who is asking: the login name with --auth, else this browser's random id (None for bare API calls)."""
    return getattr(request, "username", None) or browser_id


def error_md(message: str) -> str:
    return f"<div class='sft-error'>⚠️ {message}</div>"


def ok_md(message: str) -> str:
    return f"<div class='sft-ok'>{message}</div>"
