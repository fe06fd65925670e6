"""Evaluate tab: metrics, per-class table, confusion matrix and misclassified examples of a run."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from core.errors import StudioError

from . import charts
from .context import AppContext, error_md, ok_md, run_picker, viewer_of
from .strings import t


def evaluate_run(ctx: AppContext, run_id: str | None, viewer: str | None):
    """Outputs: summary, per-class table, confusion heatmap, misclassified table."""
    if not run_id:
        return ok_md("No trained run yet: train one in the Train tab."), None, None, None
    try:
        info = ctx.store.info(ctx.store.path_of(run_id, viewer))
    except StudioError as exc:
        return error_md(exc.message), None, None, None
    m = info.metrics
    if "perplexity" in m:
        summary = ok_md(f"<b>{run_id}</b> ({info.status}) · assistant · base model {info.base_model} · best at step "
                        f"{m['step']}<br>validation loss <b>{m['val_loss']:.4f}</b> · perplexity <b>{m['perplexity']:.2f}</b>")
        return summary, None, None, pd.DataFrame(m.get("samples", []))
    if "accuracy" not in m:
        return ok_md(f"Run <code>{run_id}</code> ({info.status}) has no evaluation yet."), None, None, None
    summary = ok_md(
        f"<b>{run_id}</b> ({info.status}) · base model {info.base_model} · best at step {m['step']}<br>"
        f"accuracy <b>{m['accuracy']:.4f}</b> · macro precision {m['macro_precision']:.4f} · macro recall "
        f"{m['macro_recall']:.4f} · macro-F1 <b>{m['macro_f1']:.4f}</b> · majority-class baseline "
        f"{m.get('majority_baseline') or 0:.4f} · {m.get('samples_per_s') or 0:.1f} samples/s")
    per_class = pd.DataFrame([{"class": name, **{k: round(v, 4) for k, v in row.items()}}
                              for name, row in m["per_class"].items()])
    names = list(m["per_class"])
    predictions_file = info.path / "validation_predictions.csv"
    wrong = None
    if predictions_file.is_file():
        frame = pd.read_csv(predictions_file)
        wrong = frame[frame["label"] != frame["predicted"]].sort_values("confidence", ascending=False)
        wrong["text"] = wrong["text"].str.slice(0, 300)
    return summary, per_class, charts.confusion_heatmap(m["confusion"], names), wrong


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    run, refresh = run_picker(t("run"), "eval-run")
    summary = gr.HTML(elem_id="eval-summary")
    with gr.Row():
        per_class = gr.Dataframe(label=t("per_class"), elem_id="eval-per-class")
        confusion = gr.Plot(label=t("confusion"), elem_id="eval-confusion")
    wrong = gr.Dataframe(label=t("misclassified"), wrap=True, max_height=400, elem_id="eval-misclassified")
    outputs = [summary, per_class, confusion, wrong]

    def choose(selected: str | None, browser_id: str | None = None, request: gr.Request = None):
        viewer = viewer_of(request, browser_id)
        update, value = ctx.pick_run(selected, viewer)
        return (update, *evaluate_run(ctx, value, viewer))

    def show(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        """Metrics, per-class table, confusion matrix and misclassified rows of a run."""
        return evaluate_run(ctx, run_id, viewer_of(request, browser_id))

    run.input(show, [run, user], outputs, api_name="evaluate")
    refresh.click(choose, [run, user], [run, *outputs], api_visibility="private")
    return {"choose": choose, "run": run, "outputs": [run, *outputs]}
