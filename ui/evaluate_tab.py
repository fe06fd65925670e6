"""Evaluate tab: a run's metrics against its baseline, per-class table, the task's chart and worst validation rows."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from core.errors import StudioError
from core.tasks import get_task

from . import charts
from .context import AppContext, error_md, ok_md, run_picker, viewer_of
from .strings import t


def evaluate_run(ctx: AppContext, run_id: str | None, viewer: str | None):
    """Outputs: summary, per-class/label/entity table, chart, table of the worst validation rows."""
    if not run_id:
        return ok_md("No trained run yet: train one in the Train tab."), None, None, None
    try:
        info = ctx.store.info(ctx.store.path_of(run_id, viewer))
    except StudioError as exc:
        return error_md(exc.message), None, None, None
    m, task = info.metrics, get_task(info.task)
    if "step" not in m:
        return ok_md(f"Run <code>{run_id}</code> ({info.status}) has no evaluation yet."), None, None, None
    baseline = m.get("baseline")
    summary = ok_md(
        f"<b>{run_id}</b> ({info.status}) · {task.view.title} · base model {info.base_model} · best at step {m['step']}"
        f"<br>{task.headline(m)} · validation loss {m['val_loss']:.4f}"
        + (f"<br>{baseline['name']} baseline: {task.headline(baseline)}" if baseline else "")
        + (f" · {m['samples_per_s']:.1f} samples/s" if m.get("samples_per_s") else ""))
    per_class = pd.DataFrame([{task.view.table: name, **{k: round(v, 4) for k, v in row.items()}}
                              for name, row in m.get("per_class", {}).items()]) if m.get("per_class") else None
    predictions_file = info.path / "validation_predictions.csv"
    frame = pd.read_csv(predictions_file) if predictions_file.is_file() else None
    chart = None
    if task.view.chart == "confusion":
        chart = charts.confusion_heatmap(m["confusion"], list(m["per_class"]))
    elif task.view.chart == "scatter" and frame is not None:
        chart = charts.predicted_vs_true(frame)
    elif task.view.chart == "per_label" and m.get("per_class"):
        chart = charts.per_label_f1(m["per_class"])
    worst = task.mistakes(frame) if frame is not None else pd.DataFrame(m.get("samples", []))
    return summary, per_class, chart, worst


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    run, refresh = run_picker(t("run"), "eval-run")
    summary = gr.HTML(elem_id="eval-summary")
    with gr.Row():
        per_class = gr.Dataframe(label=t("per_class"), elem_id="eval-per-class")
        confusion = gr.Plot(label=t("eval_chart"), elem_id="eval-confusion")
    wrong = gr.Dataframe(label=t("misclassified"), wrap=True, max_height=400, elem_id="eval-misclassified")
    outputs = [summary, per_class, confusion, wrong]

    def on_page(results: tuple) -> tuple:
        """The same outputs with the per-class table hidden for tasks that have none (e.g. scores)."""
        summary_html, table, chart, worst = results
        return summary_html, gr.update(value=table, visible=table is not None), chart, worst

    def choose(selected: str | None, browser_id: str | None = None, request: gr.Request = None):
        viewer = viewer_of(request, browser_id)
        update, value = ctx.pick_run(selected, viewer)
        return (update, *on_page(evaluate_run(ctx, value, viewer)))

    def show(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        """Metrics, per-class table, the task's chart and the worst validation rows of a run."""
        return evaluate_run(ctx, run_id, viewer_of(request, browser_id))

    def show_on_page(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        return on_page(show(run_id, browser_id, request))

    run.input(show_on_page, [run, user], outputs, api_visibility="private")
    api_only = gr.Button(visible=False)
    api_only.click(show, [run, user], outputs, api_name="evaluate")
    refresh.click(choose, [run, user], [run, *outputs], api_visibility="private")
    return {"choose": choose, "run": run, "outputs": [run, *outputs]}
