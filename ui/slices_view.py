"""The Evaluate tab's slices (core.insight.slices): a run's validation metric per value of a column the model did not
read, or of the input length, worst first."""
from __future__ import annotations

import gradio as gr

from core.common.errors import StudioError
from core.insight.slices import choices, slice_run

from .context import AppContext, error_md
from .strings import t


def build() -> tuple[gr.Dropdown, gr.Dataframe, gr.HTML]:
    """The column to slice by (hidden for runs without one), the table of slices and a message."""
    with gr.Row():
        by = gr.Dropdown([], value=None, label=t("slice_by"), visible=False, elem_id="eval-slice-by", scale=1)
        message = gr.HTML(elem_id="eval-slices-message")
    table = gr.Dataframe(label=t("slices"), visible=False, wrap=True, max_height=400, elem_id="eval-slices")
    return by, table, message


def shown(ctx: AppContext, run_id: str | None, viewer: str) -> tuple:
    """The dropdown offering what the run's validation rows can be sliced by (nothing chosen yet), the table hidden."""
    try:
        found = choices(ctx.store.path_of(run_id, viewer)) if run_id else []
    except StudioError:
        found = []
    return gr.update(choices=found, value=None, visible=bool(found)), gr.update(value=None, visible=False), ""


def sliced(ctx: AppContext, run_id: str | None, by: str | None, viewer: str) -> tuple:
    """The table of slices, or a message saying why there is none."""
    if not run_id or not by:
        return gr.update(value=None, visible=False), ""
    try:
        found = slice_run(ctx.store.path_of(run_id, viewer), by)
    except StudioError as exc:
        return gr.update(value=None, visible=False), error_md(exc.message)
    return gr.update(value=found.table(), visible=True), ""
