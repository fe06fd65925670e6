"""Runs tab: table of past runs; load one, resume an interrupted one, share it, download it as zip, delete it with
confirmation, compare several."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from core.common.errors import StudioError
from core.deploy.export import FORMATS, export_run
from core.insight import compare
from core.runs.run_folder import INTERRUPTED
from core.runs.store import RunInfo
from core.tasks import get_task
from core.train.engine import TrainingJob

from . import charts
from .context import AppContext, error_md, first_steps, ok_md, viewer_of
from .strings import format_key, t

COLUMNS = ["date", "data", "task", "base model", "metric", "score", "classical", "trivial", "minutes", "MB", "status",
           "classes", "search", "shared", "run"]  # what tells runs apart first; the long run id (the dropdown's) last


def primary_scores(run: RunInfo) -> dict:
    """The run's primary metric, its classical and trivial baselines' on the same rows (numbers sort)."""
    task = get_task(run.task)
    key, m = task.primary_metric, run.metrics

    def value(source) -> float | None:
        return round(source[key], 4) if isinstance(source, dict) and isinstance(source.get(key), (int, float)) else None
    return {"metric": task.metric_name(key), "score": value(m), "classical": value(m.get("classical")),
            "trivial": value(m.get("baseline"))}


def folder_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def runs_table(ctx: AppContext, viewer: str | None) -> pd.DataFrame:
    """Every run the viewer sees: task, primary metric beside its baselines, minutes trained and size on disk."""
    rows = [{
        "run": r.run_id, "status": r.status, "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
        "base model": r.base_model.split("/")[-1], "data": r.data_name, "task": r.task, **primary_scores(r),
        "minutes": round(r.metrics["train_seconds"] / 60, 1) if r.metrics.get("train_seconds") else None,
        "MB": folder_mb(r.path), "classes": len(r.label_names), "shared": "yes" if r.shared or r.owner is None else "",
        "search": f"{r.study} · trial {r.trial}" if r.study else "",
    } for r in ctx.store.list(viewer)]
    frame = pd.DataFrame(rows, columns=COLUMNS)  # newest first; a study's trials stay together
    order = pd.Series(study_order(list(frame["search"])), index=frame.index)
    return frame.loc[order.sort_values(kind="stable").index].reset_index(drop=True)


def study_order(labels: list[str]) -> list[int]:
    """Sort keys that keep each study's trials together, at the place of its newest trial."""
    first: dict[str, int] = {}
    for i, label in enumerate(labels):
        first.setdefault(label.split(" · ")[0], i)
    return [first[label.split(" · ")[0]] if label else i for i, label in enumerate(labels)]


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    steps = first_steps("runs-first-steps")
    table = gr.Dataframe(label=t("runs_table"), interactive=False, elem_id="runs-table")
    with gr.Row():
        run = gr.Dropdown([], label=t("run"), elem_id="runs-run", scale=3, allow_custom_value=True)
        refresh = gr.Button(t("refresh"), scale=1)
    with gr.Row():
        load = gr.Button(t("load_run"), variant="primary", elem_id="runs-load")
        fmt = gr.Dropdown([(t("format_run"), "run")] + [(t(format_key(name)), name) for name in FORMATS], value="run", label=t("download_format"),
                          elem_id="runs-format")
        download = gr.Button(t("download_zip"), elem_id="runs-download")
        share = gr.Button(t("share"), elem_id="runs-share")
        resume = gr.Button(t("resume"), elem_id="runs-resume")
        confirm = gr.Checkbox(label=t("confirm_delete"), value=False, elem_id="runs-confirm")
        delete = gr.Button(t("delete"), variant="stop", elem_id="runs-delete")
    message = gr.HTML(elem_id="runs-message")
    archive = gr.File(label="zip", elem_id="runs-zip")
    with gr.Accordion(t("compare_title"), open=True):
        with gr.Row():
            chosen = gr.Dropdown([], multiselect=True, label=t("compare_runs"), elem_id="compare-runs", scale=4)
            differences = gr.Checkbox(True, label=t("differences_only"), elem_id="compare-differences", scale=1)
            run_compare = gr.Button(t("compare_button"), elem_id="compare-button", scale=1)
        compare_message = gr.HTML(elem_id="compare-message")
        curves = gr.Plot(label=t("compare_curves"), elem_id="compare-curves")
        with gr.Row():
            metric_bars = gr.Plot(label=t("compare_metric"), elem_id="compare-metric")
            class_bars = gr.Plot(label=t("compare_per_class"), elem_id="compare-per-class")
        settings = gr.Dataframe(label=t("compare_settings"), wrap=True, elem_id="compare-settings")

    def show(selected: str | None, browser_id: str | None = None, request: gr.Request = None):
        viewer = viewer_of(request, browser_id)
        ids = [r.run_id for r in ctx.store.list(viewer)]
        return (gr.update(value=runs_table(ctx, viewer), visible=bool(ids)),
                gr.update(choices=ids, value=selected if selected in ids else (ids[0] if ids else None)),
                gr.update(choices=ids), gr.update(visible=not ids))

    def compare_runs(run_ids: list[str] | None, differences_only: bool, browser_id: str | None = None,
                     request: gr.Request = None):
        """Two or more runs side by side: curves, primary metric, per-class F1 and the settings table."""
        if not run_ids or len(run_ids) < 2:
            return error_md("Pick two or more runs to compare."), None, None, None, None
        try:
            viewer = viewer_of(request, browser_id)
            runs = [ctx.store.info(ctx.store.path_of(run_id, viewer)) for run_id in run_ids]
        except StudioError as exc:
            return error_md(exc.message), None, None, None, None
        per_class = compare.per_class_f1(runs)
        tasks = sorted({r.task for r in runs})
        note = "" if len(tasks) == 1 else f" Tasks differ ({', '.join(tasks)}): each bar is its own task's primary metric."
        return (ok_md(f"Comparing {len(runs)} runs.{note}"), charts.compare_curves([compare.run_curves(r) for r in runs]),
                charts.compare_metrics(compare.metric_table(runs)),
                charts.compare_per_class(per_class) if len(per_class.columns) else None,
                compare.config_table(runs, differences_only))

    def export(run_id: str, fmt: str = "run", browser_id: str | None = None, request: gr.Request = None):
        """Zip a run folder, or an export of it (any of core.deploy.export.FORMATS), for download."""
        try:
            viewer = viewer_of(request, browser_id)
            if fmt == "run":
                path = ctx.store.export_zip(run_id, viewer=viewer)
            else:
                folder = export_run(ctx.store.path_of(run_id, viewer), Path(tempfile.mkdtemp()) / f"{run_id}-{fmt}", fmt)
                path = Path(shutil.make_archive(str(folder), "zip", root_dir=folder))
                shutil.rmtree(folder)  # the zip is what the browser gets; the folder would double the disk used
        except StudioError as exc:
            return None, error_md(exc.message)
        return str(path), ok_md(f"{path.name} is ready to download.")

    def resume_run(run_id: str, browser_id: str | None = None, request: gr.Request = None):
        """Continue an interrupted run from its last checkpoint, in the job queue; the Train tab follows it."""
        try:
            path = ctx.store.path_of(run_id, viewer_of(request, browser_id))
            status = ctx.store.info(path).status
            if status != INTERRUPTED:
                return gr.skip(), error_md(f"{run_id} is {status}; only an interrupted run can be resumed."), gr.skip()
            job = TrainingJob.resume(path, ctx.store)
        except StudioError as exc:
            return gr.skip(), error_md(exc.message), gr.skip()
        return ctx.queue.submit(job), ok_md(f"Resuming {run_id} from its last checkpoint."), gr.Tabs(selected="train")

    def toggle_share(run_id: str, browser_id: str | None = None, request: gr.Request = None):
        viewer = viewer_of(request, browser_id)
        try:
            info = ctx.store.info(ctx.store.path_of(run_id, viewer))
            ctx.store.set_shared(run_id, not info.shared, viewer)
        except StudioError as exc:
            return (*show(run_id, browser_id, request), error_md(exc.message))
        state = "shared with every user of this app" if not info.shared else "private again"
        return (*show(run_id, browser_id, request), ok_md(f"{run_id} is now {state}."))

    def remove(run_id: str, sure: bool, browser_id: str | None = None, request: gr.Request = None):
        """Delete a run (needs the confirmation box ticked)."""
        if not sure:
            return (*show(run_id, browser_id, request), error_md("Tick the confirmation box to delete this run."), False)
        try:
            ctx.store.delete(run_id, viewer_of(request, browser_id))
        except StudioError as exc:
            return (*show(run_id, browser_id, request), error_md(exc.message), False)
        return (*show(None, browser_id, request), ok_md(f"Deleted {run_id}."), False)

    listed = [table, run, chosen, steps]
    refresh.click(show, [run, user], listed, api_visibility="private")
    compared = [compare_message, curves, metric_bars, class_bars, settings]
    run_compare.click(compare_runs, [chosen, differences, user], compared, api_name="compare_runs")
    differences.input(compare_runs, [chosen, differences, user], compared, api_visibility="private")
    download.click(export, [run, fmt, user], [archive, message], api_name="download_run")
    share.click(toggle_share, [run, user], [*listed, message], api_name="share_run")
    delete.click(remove, [run, confirm, user], [*listed, message, confirm], api_name="delete_run")
    return {"show": show, "outputs": listed, "load": load, "run": run, "resume": resume,
            "resume_run": resume_run, "message": message}
