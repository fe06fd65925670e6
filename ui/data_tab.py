"""Data tab: upload or pick a sample, preview, choose columns, see the class balance."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from core.data import prepare, read_table, unknown_token_rate, unknown_token_warning
from core.errors import StudioError
from core.models import DEFAULT_MODEL, load_tokenizer
from core.samples import DEFAULT_SAMPLE, SAMPLES, sample_path

from . import charts
from .context import AppContext, error_md, ok_md
from .strings import t

TABLE_TYPES = [".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".xlsx", ".xls"]


def analyse(ctx: AppContext, path: str, name: str, text_col: str | None = None, label_col: str | None = None):
    """Outputs: data state, preview, text dropdown, label dropdown, balance chart, message."""
    try:
        frame = read_table(path, ctx.limits)
    except StudioError as exc:
        return None, None, gr.update(choices=[], value=None), gr.update(choices=[], value=None), None, error_md(exc.message)
    columns = [str(c) for c in frame.columns]
    preview = frame.head(8)
    try:
        data = prepare(frame, text_col or None, label_col or None)
    except StudioError as exc:
        return (None, preview, gr.update(choices=columns, value=text_col), gr.update(choices=columns, value=label_col),
                None, error_md(exc.message))
    lines = [f"✅ <b>{Path(name).name}</b>: {len(data):,} rows kept, {data.rows_dropped:,} dropped (empty text or label) · "
             f"{len(data.label_names)} classes · text column <b>{data.text_column}</b> · label column <b>{data.label_column}</b>"]
    warning = unknown_token_warning(unknown_token_rate(load_tokenizer(DEFAULT_MODEL), data.texts), DEFAULT_MODEL)
    if warning:
        lines.append(f"⚠️ {warning}")
    state = {"path": path, "name": Path(name).stem, "text_col": data.text_column, "label_col": data.label_column}
    return (state, preview, gr.update(choices=columns, value=data.text_column),
            gr.update(choices=columns, value=data.label_column), charts.class_balance(data.class_counts()),
            ok_md("<br>".join(lines)))


def build(ctx: AppContext) -> dict:
    data_state = gr.State(None)
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

    def on_upload(path):
        return analyse(ctx, path, Path(path).name) if path else (gr.skip(),) * len(outputs)

    def on_sample(name):
        try:
            path = sample_path(name)
        except StudioError as exc:
            return None, None, gr.skip(), gr.skip(), None, error_md(exc.message)
        return analyse(ctx, str(path), path.name)

    def on_columns(state, text, label):
        if not state:
            return (gr.skip(),) * len(outputs)
        return analyse(ctx, state["path"], state["name"], text, label)

    upload.upload(on_upload, upload, outputs, api_name="load_data")
    use_sample.click(on_sample, sample, outputs, api_name="load_sample")
    text_col.input(on_columns, [data_state, text_col, label_col], outputs, api_visibility="private")
    label_col.input(on_columns, [data_state, text_col, label_col], outputs, api_visibility="private")
    return {"state": data_state, "on_sample": on_sample, "sample": sample, "outputs": outputs}
