"""What every tab shares: the run store, the job queue and the upload limits."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from core.data.tables import DataLimits, read_table
from core.runs.store import RunInfo, RunStore
from core.search.study import SearchRun
from core.tasks import get_task
from core.tasks.types import TaskData
from core.train.estimate import SpeedBook
from core.train.jobqueue import JobQueue


@dataclass
class AppContext:
    store: RunStore = field(default_factory=RunStore)
    queue: JobQueue = field(default_factory=JobQueue)
    limits: DataLimits = field(default_factory=DataLimits)
    searches: dict[str, SearchRun] = field(default_factory=dict)  # the app's studies by page key
    speeds: SpeedBook = field(init=False)  # this machine's measured training speeds, kept beside the runs
    _tables: dict[tuple, TaskData] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.speeds = SpeedBook(self.store.root)

    def table(self, state: dict) -> TaskData:
        """The Data tab's table as the run will read it (the last one read is kept: the Train tab asks often)."""
        path = state["path"]
        key = (path, Path(path).stat().st_mtime, repr(state["columns"]), state["task"])
        if key not in self._tables:
            self._tables.clear()
            self._tables[key] = get_task(state["task"]).prepare(read_table(path, self.limits), state["columns"])
        return self._tables[key]

    def runs_with_model(self, viewer: str | None, chat: bool | None = None) -> list[RunInfo]:
        """Runs with saved weights: all, only those that chat (generative tasks: ``chat=True``) or none of them."""
        return [r for r in self.store.list(viewer) if r.has_model and chat in (None, get_task(r.task).generative)]

    def pick_run(self, selected: str | None, viewer: str | None, chat: bool | None = None) -> tuple[dict, str | None]:
        """A dropdown update listing the viewer's runs (newest first), keeping ``selected`` when still there, else the
        newest that is not a point of another run's learning curve."""
        choices = self.run_choices(viewer, chat)
        ids = [c[1] for c in choices]
        whole = [r.run_id for r in self.runs_with_model(viewer, chat) if not r.learning_curve_of]  # not a curve's point
        value = selected if selected in ids else next(iter(whole), ids[0] if ids else None)
        return gr.update(choices=choices, value=value), value

    def run_choices(self, viewer: str | None, chat: bool | None = None) -> list[tuple[str, str]]:
        """(label, run id) pairs for dropdowns, newest first."""
        choices = []
        for r in self.runs_with_model(viewer, chat):
            choices.append((f"{r.run_id} · {r.status} · {r.task}{score_of(r)}", r.run_id))
        return choices


def score_of(run: RunInfo) -> str:
    """' · macro-F1 0.951' (the run's first metric card), or '' before its first evaluation."""
    key, name = get_task(run.task).view.cards[0]
    value = run.metrics.get(key)
    return f" · {name} {value:.3f}" if isinstance(value, (int, float)) else ""


ANONYMOUS = "anonymous"


def viewer_of(request: gr.Request | None, browser_id: str | None) -> str:
    """Who is asking: the login name with --auth, else this browser's random id.

    Without either (an API call, or a page whose id is not set yet) the caller sees only shared runs.
    """
    return getattr(request, "username", None) or browser_id or ANONYMOUS


def run_picker(label, elem_id: str) -> tuple[gr.Dropdown, gr.Button]:
    """A row with a run dropdown and its refresh button (Evaluate, Predict and Chat tabs)."""
    from .strings import t

    with gr.Row():
        run = gr.Dropdown([], label=label, elem_id=elem_id, scale=4, allow_custom_value=True)
        refresh = gr.Button(t("refresh"), scale=1)
    return run, refresh


def first_steps(elem_id: str) -> gr.Markdown:
    """Three short steps for a person with no runs yet, in place of the tables a run would fill."""
    from .strings import t

    return gr.Markdown(t("first_steps"), visible=False, elem_id=elem_id)


def first_steps_shown(ctx: AppContext, viewer: str | None) -> dict:
    return gr.update(visible=not ctx.store.list(viewer))


def error_md(message: str) -> str:
    return f"<div class='sft-error'>⚠ {message}</div>"


def ok_md(message: str) -> str:
    return f"<div class='sft-ok'>{message}</div>"
