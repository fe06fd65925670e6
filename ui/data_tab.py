"""Data tab: upload or pick a sample, preview, choose columns, see the class balance."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from core.data import read_table, unknown_token_rate, unknown_token_warning
from core.errors import StudioError
from core.models import DEFAULT_MODEL, load_tokenizer
from core.samples import DEFAULT_SAMPLE, SAMPLES, sample_path
from core.tasks import prepare_data

from . import charts
from .context import AppContext, error_md, ok_md
from .strings import t

TABLE_TYPES = [".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".xlsx", ".xls"]


def analyse(ctx: AppContext, path: str, name: str, text_col: str | None = None, label_col: str | None = None,
            task: str = "classification"):
    """Outputs: data state, preview, text dropdown, label dropdown, balance chart, message."""
    try:
        frame = read_table(path, ctx.limits)
    except StudioError as exc:
        return None, None, gr.update(choices=[], value=None), gr.update(choices=[], value=None), None, error_md(exc.message)
    columns = [str(c) for c in frame.columns]
    preview = frame.head(8).map(lambda v: v[:120] + "…" if isinstance(v, str) and len(v) > 120 else v)
    try:
        data = prepare_data(task, frame, text_col or None, label_col or None)
    except StudioError as exc:
        return (None, preview, gr.update(choices=columns, value=text_col), gr.update(choices=columns, value=label_col),
                None, error_md(exc.message))
    state = {"path": path, "name": Path(name).stem, "text_col": data.text_column, "label_col": data.label_column,
             "task": task}
    columns_update = (gr.update(choices=columns, value=data.text_column), gr.update(choices=columns, value=data.label_column))
    if task == "assistant":
        message = (f"✅ <b>{Path(name).name}</b>: {len(data):,} prompt/response pairs kept, {data.rows_dropped:,} dropped · "
                   f"prompt column <b>{data.text_column}</b> → response column <b>{data.label_column}</b>. "
                   "Train with SmolLM2-135M-Instruct, then talk to it in the Chat tab.")
        return state, preview, *columns_update, None, ok_md(message)
    lines = [f"✅ <b>{Path(name).name}</b>: {len(data):,} rows kept, {data.rows_dropped:,} dropped (empty text or label) · "
             f"{len(data.label_names)} classes · text column <b>{data.text_column}</b> · label column <b>{data.label_column}</b>"]
    rate = unknown_token_rate(load_tokenizer(DEFAULT_MODEL), data.texts)
    warning = unknown_token_warning(rate, DEFAULT_MODEL, data.texts)
    if warning:
        lines.append(f"⚠️ {warning}")
    return state, preview, *columns_update, charts.class_balance(data.class_counts()), ok_md("<br>".join(lines))


def build(ctx: AppContext) -> dict:
    data_state = gr.State(None)
    task = gr.Radio([(t("task_classification"), "classification"), (t("task_assistant"), "assistant")],
                    value="classification", label=t("task"), elem_id="task")
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.File(label=t("upload"), file_types=TABLE_TYPES, type="filepath", elem_id="data-upload")
        with gr.Column(scale=1):
            sample = gr.Dropdown([(s.description, s.name) for s in SAMPLES.values()], value=DEFAULT_SAMPLE,
                                 label=t("sample"), elem_id="sample-choice")
            use_sample = gr.Button(t("use_sample"), elem_id="use-sample")
    message = gr.HTML(elem_id="data-message")
    with gr.Row():
        text_col = gr.Dropdown([], label=t("text_col"), elem_id="text-col")
        label_col = gr.Dropdown([], label=t("label_col"), elem_id="label-col")
    with gr.Row():
        preview = gr.Dataframe(label=t("preview"), wrap=False, max_height=320, elem_id="data-preview")
        balance = gr.Plot(label=t("balance"), elem_id="class-balance")
    outputs = [data_state, preview, text_col, label_col, balance, message]

    def on_upload(path: str | None, kind: str = "classification"):
        """Read an uploaded table and check it for the task (classification or assistant)."""
        return analyse(ctx, path, Path(path).name, task=kind) if path else (gr.skip(),) * len(outputs)

    def on_sample(name: str):
        """Load a sample dataset (and switch the task to the sample's)."""
        try:
            path = sample_path(name)
        except StudioError as exc:
            return None, None, gr.skip(), gr.skip(), None, error_md(exc.message), gr.skip()
        kind = SAMPLES[name].task
        return (*analyse(ctx, str(path), path.name, task=kind), kind)

    def on_change(state, text, label, kind):
        if not state:
            return (gr.skip(),) * len(outputs)
        same_task = state.get("task") == kind
        return analyse(ctx, state["path"], state["name"], text if same_task else None, label if same_task else None, kind)

    upload.upload(on_upload, [upload, task], outputs, api_name="load_data")
    use_sample.click(on_sample, sample, [*outputs, task], api_name="load_sample")
    for control in (text_col, label_col, task):
        control.input(on_change, [data_state, text_col, label_col, task], outputs, api_visibility="private")
    return {"state": data_state, "on_sample": on_sample, "sample": sample, "outputs": [*outputs, task]}
