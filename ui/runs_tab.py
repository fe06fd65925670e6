"""Runs tab: table of past runs; load one, download it as zip, delete it with confirmation."""
from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from core.errors import StudioError

from .context import AppContext, error_md, ok_md
from .strings import t


def runs_table(ctx: AppContext) -> pd.DataFrame:
    rows = [{
        "run": r.run_id, "status": r.status, "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
        "base model": r.base_model.split("/")[-1], "data": r.data_name,
        "accuracy": round(r.metrics["accuracy"], 4) if "accuracy" in r.metrics else None,
        "macro-F1": round(r.metrics["macro_f1"], 4) if "macro_f1" in r.metrics else None,
        "classes": len(r.label_names),
    } for r in ctx.store.list()]
    return pd.DataFrame(rows, columns=["run", "status", "date", "base model", "data", "accuracy", "macro-F1", "classes"])


def build(ctx: AppContext) -> dict:
    table = gr.Dataframe(label=t("runs_table"), interactive=False, elem_id="runs-table")
    with gr.Row():
        run = gr.Dropdown([], label=t("run"), elem_id="runs-run", scale=3, allow_custom_value=True)
        refresh = gr.Button(t("refresh"), scale=1)
    with gr.Row():
        load = gr.Button(t("load_run"), variant="primary", elem_id="runs-load")
        download = gr.Button(t("download_zip"), elem_id="runs-download")
        confirm = gr.Checkbox(label=t("confirm_delete"), value=False, elem_id="runs-confirm")
        delete = gr.Button(t("delete"), variant="stop", elem_id="runs-delete")
    message = gr.HTML(elem_id="runs-message")
    archive = gr.File(label="zip", visible=True, elem_id="runs-zip")

    def show(selected=None):
        ids = [r.run_id for r in ctx.store.list()]
        return runs_table(ctx), gr.update(choices=ids, value=selected if selected in ids else (ids[0] if ids else None))

    def export(run_id):
        try:
            return str(ctx.store.export_zip(run_id)), ok_md(f"✅ {run_id}.zip is ready to download.")
        except StudioError as exc:
            return None, error_md(exc.message)

    def remove(run_id, sure):
        if not sure:
            return (*show(run_id), error_md("Tick the confirmation box to delete this run."), False)
        try:
            ctx.store.delete(run_id)
        except StudioError as exc:
            return (*show(run_id), error_md(exc.message), False)
        return (*show(), ok_md(f"🗑 Deleted {run_id}."), False)

    refresh.click(show, run, [table, run], api_visibility="private")
    download.click(export, run, [archive, message], api_name="download_run")
    delete.click(remove, [run, confirm], [table, run, message, confirm], api_name="delete_run")
    return {"show": show, "outputs": [table, run], "load": load, "run": run}
