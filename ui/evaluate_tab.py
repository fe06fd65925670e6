"""Evaluate tab: a run's metrics against its baseline, per-class table, the task's chart and worst validation rows."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from core.common.errors import StudioError
from core.common.foreground import person_waiting
from core.deploy.export import EXPORTERS, check_export
from core.insight import outputs as insight
from core.insight.verdict import judge
from core.runs import events as ev
from core.runs.run_folder import RunFolder
from core.tasks import get_task
from core.train import service
from core.train.learning_curve import learning_curve, saved_curve

from . import charts, slices_view
from .context import AppContext, error_md, first_steps, first_steps_shown, ok_md, run_picker, viewer_of
from .modalities import VIEWS, mistake_updates
from .strings import format_key, t

EMPTY_INSIGHT = (None, None, None, None)
HIDDEN_THRESHOLD = (gr.update(visible=False), "", gr.update(visible=False))


# The Evaluate tab's chart per task chart kind (TaskView.chart): (metrics, validation predictions) -> figure
CHARTS = {
    "confusion": lambda m, frame: charts.confusion_heatmap(m["confusion"], list(m["per_class"])),
    "scatter": lambda m, frame: charts.predicted_vs_true(frame) if frame is not None else None,
    "per_label": lambda m, frame: charts.per_label_f1(m["per_class"]) if m.get("per_class") else None,
    "none": lambda m, frame: None,
}


def insight_outputs(run_dir, predictions: pd.DataFrame | None) -> tuple:
    """ROC, precision-recall and reliability charts, and the suspected label errors, for runs with class probabilities."""
    outputs = insight.load_outputs(run_dir)
    if outputs is None:
        return EMPTY_INSIGHT
    curves = insight.class_curves(outputs)
    return (charts.roc_curves(curves), charts.pr_curves(curves), charts.reliability(insight.calibration(outputs)),
            insight.label_issues(outputs, predictions))


def threshold_outputs(run_dir) -> tuple:
    """The threshold slider (shown for two-class runs, at the saved threshold or 0.5) and its metrics."""
    outputs = insight.load_outputs(run_dir)
    if outputs is None or outputs.multi_label or len(outputs.names) != 2:
        return HIDDEN_THRESHOLD
    value = insight.saved_threshold(run_dir) or 0.5
    return gr.update(visible=True, value=value), threshold_html(outputs, value), gr.update(visible=True)


def threshold_html(outputs: insight.ValidationOutputs, threshold: float) -> str:
    m = insight.threshold_metrics(outputs, threshold)
    return ok_md(f"At threshold <b>{threshold:.2f}</b> on P({outputs.names[1]}): precision <b>{m['precision']:.4f}</b> · "
                 f"recall <b>{m['recall']:.4f}</b> · F1 <b>{m['f1']:.4f}</b> · macro-F1 {m['macro_f1']:.4f} · "
                 f"accuracy {m['accuracy']:.4f}")


def export_check_html(ctx: AppContext, run_id: str | None, fmt: str, viewer: str) -> str:
    """The run and its export scored on the validation rows: metrics, size and speed side by side."""
    if not run_id:
        return error_md("Pick a run first.")
    try:
        path = ctx.store.path_of(run_id, viewer)
        check = check_export(path, fmt)
    except StudioError as exc:
        return error_md(exc.message)
    task = get_task(ctx.store.info(path).task)
    return ok_md(f"<b>{fmt}</b> on the {check.rows:,} validation rows: {task.headline(check.metrics)}<br>"
                 f"the run itself: {task.headline(check.run_metrics)}<br>"
                 f"size {check.size_mb:.1f} MB vs {check.run_size_mb:.1f} MB · {check.rows_per_s:.0f} vs "
                 f"{check.run_rows_per_s:.0f} rows/s on this machine")


@person_waiting()
def evaluate_run(ctx: AppContext, run_id: str | None, viewer: str | None):
    """Outputs: summary, per-class table, chart, worst validation rows, ROC, PR, reliability, label issues."""
    if not run_id:
        return ok_md("No trained run yet: train one in the Train tab."), None, None, None, *EMPTY_INSIGHT
    try:
        info = ctx.store.info(ctx.store.path_of(run_id, viewer))
    except StudioError as exc:
        return error_md(exc.message), None, None, None, *EMPTY_INSIGHT
    m, task = info.metrics, get_task(info.task)
    if "step" not in m:
        return ok_md(f"Run <code>{run_id}</code> ({info.status}) has no evaluation yet."), None, None, None, *EMPTY_INSIGHT
    baseline, classical, verdict = m.get("baseline"), m.get("classical"), judge(task, m)
    summary = ok_md(
        f"<b>{run_id}</b> ({info.status}) · {task.view.title} · base model {info.base_model} · best at step {m['step']}"
        f"<br>{task.headline(m)} · validation loss {m['val_loss']:.4f}"
        + (f"<br>{baseline['name']} baseline: {task.headline(baseline)}" if baseline else "")
        + (f"<br>classical baseline ({classical['name']}): {task.headline(classical)}"
           if classical and "skipped" not in classical else "")
        + (f"<br><span id='eval-verdict'>{'✔' if verdict.beats else '⚠' if verdict.beats is False else 'ℹ'} "
           f"{verdict.text}</span>" if verdict.text else "")
        + (f" · {m['samples_per_s']:.1f} samples/s" if m.get("samples_per_s") else ""))
    per_class = pd.DataFrame([{task.view.table: name, **{k: round(v, 4) for k, v in row.items()}}
                              for name, row in m.get("per_class", {}).items()]) if m.get("per_class") else None
    predictions_file = info.path / RunFolder.PREDICTIONS
    frame = pd.read_csv(predictions_file) if predictions_file.is_file() else None
    chart = CHARTS[task.view.chart](m, frame)
    worst = task.mistakes(frame) if frame is not None else pd.DataFrame(m.get("samples", []))
    return summary, per_class, chart, worst, *insight_outputs(info.path, frame)


def curve_outputs(curve) -> tuple:
    """The learning curve's sentence and chart, or nothing shown for a run without one."""
    if curve is None:
        return "", gr.update(value=None, visible=False)
    return (ok_md(f"<span id='eval-curve-said'>{curve.sentence()}</span>"),
            gr.update(value=charts.learning_curve(curve), visible=True))


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    steps = first_steps("eval-first-steps")
    run, refresh = run_picker(t("run"), "eval-run")
    summary = gr.HTML(elem_id="eval-summary")
    with gr.Row():
        export_format = gr.Dropdown([(t(format_key(name)), name) for name, exporter in EXPORTERS.items() if exporter.scored],
                                    value="onnx-int8", label=t("export_check_format"), elem_id="eval-export-format",
                                    scale=2)
        export_button = gr.Button(t("export_check"), elem_id="eval-export-check", scale=1)
    export_result = gr.HTML(elem_id="eval-export-result")
    with gr.Row():
        per_class = gr.Dataframe(label=t("per_class"), elem_id="eval-per-class")
        confusion = gr.Plot(label=t("eval_chart"), elem_id="eval-confusion")
    wrong = gr.Dataframe(label=t("misclassified"), wrap=True, max_height=400, elem_id="eval-misclassified")
    with gr.Row():
        roc = gr.Plot(label=t("roc"), elem_id="eval-roc")
        pr = gr.Plot(label=t("pr"), elem_id="eval-pr")
    with gr.Row():
        calibration = gr.Plot(label=t("reliability"), elem_id="eval-reliability")
        with gr.Column():
            threshold = gr.Slider(0.01, 0.99, value=0.5, step=0.01, label=t("threshold"), info=t("threshold_info"),
                                  visible=False, elem_id="eval-threshold")
            at_threshold = gr.HTML(elem_id="eval-threshold-metrics")
            save = gr.Button(t("save_threshold"), visible=False, elem_id="eval-save-threshold")
    issues = gr.Dataframe(label=t("label_issues"), wrap=True, max_height=400, elem_id="eval-label-issues")
    slice_by, slice_table, slice_message = slices_view.build()
    with gr.Row():
        with gr.Column():
            grow = gr.Button(t("more_labels"), elem_id="eval-more-labels")
            said = gr.HTML(elem_id="eval-curve-sentence")
        curve_chart = gr.Plot(label=t("learning_curve"), visible=False, elem_id="eval-learning-curve")
    outputs = [summary, per_class, confusion, wrong, roc, pr, calibration, issues]
    mistakes = [c for view in VIEWS.values() for c in view.build_mistakes()]  # e.g. a gallery of images
    page_outputs = [*outputs, threshold, at_threshold, save, *mistakes, said, curve_chart, slice_by, slice_table,
                    slice_message]

    def on_page(results: tuple, run_id: str | None, viewer: str) -> tuple:
        """The outputs with tables hidden where a task has none, and the threshold slider for two-class runs."""
        summary_html, table, chart, worst, *more = results
        label_errors = more[-1]
        try:
            slider = threshold_outputs(ctx.store.path_of(run_id, viewer)) if run_id else HIDDEN_THRESHOLD
        except StudioError:
            slider = HIDDEN_THRESHOLD
        try:
            saved = saved_curve(ctx.store.path_of(run_id, viewer)) if run_id else None
        except StudioError:
            saved = None
        return (summary_html, gr.update(value=table, visible=table is not None), chart, worst, *more[:-1],
                gr.update(value=label_errors, visible=label_errors is not None), *slider, *mistake_updates(worst),
                *curve_outputs(saved), *slices_view.shown(ctx, run_id, viewer))

    def choose(selected: str | None, browser_id: str | None = None, request: gr.Request = None):
        viewer = viewer_of(request, browser_id)
        update, value = ctx.pick_run(selected, viewer)
        return (update, *on_page(evaluate_run(ctx, value, viewer), value, viewer), first_steps_shown(ctx, viewer))

    def at(run_id: str | None, value: float, browser_id: str | None = None, request: gr.Request = None):
        """Precision, recall and F1 of a two-class run at a decision threshold, on its validation rows."""
        try:
            outputs = insight.load_outputs(ctx.store.path_of(run_id, viewer_of(request, browser_id)))
        except StudioError as exc:
            return error_md(exc.message)
        return threshold_html(outputs, float(value)) if outputs is not None else ""

    def keep(run_id: str | None, value: float, browser_id: str | None = None, request: gr.Request = None):
        """Save the decision threshold with the run: prediction, the server and exports use it."""
        try:
            path = ctx.store.path_of(run_id, viewer_of(request, browser_id))
            insight.save_threshold(path, float(value))
        except StudioError as exc:
            return error_md(exc.message)
        return at(run_id, value, browser_id, request) + ok_md(
            f"Saved: {run_id} now predicts the positive class from probability {float(value):.2f}.")

    def show(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        """Metrics, per-class table, the task's chart and the worst validation rows of a run."""
        return evaluate_run(ctx, run_id, viewer_of(request, browser_id))

    def show_on_page(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        viewer = viewer_of(request, browser_id)
        return on_page(evaluate_run(ctx, run_id, viewer), run_id, viewer)

    run.input(show_on_page, [run, user], page_outputs, api_visibility="private")
    api_only = gr.Button(visible=False)
    api_only.click(show, [run, user], outputs, api_name="evaluate")
    chosen = [run, *page_outputs, steps]
    refresh.click(choose, [run, user], chosen, api_visibility="private")
    def check(run_id: str | None, fmt: str, browser_id: str | None = None, request: gr.Request = None):
        """Export the run (cached) and score the export and the run on its validation rows: metrics, size, speed."""
        return export_check_html(ctx, run_id, fmt, viewer_of(request, browser_id))

    export_button.click(check, [run, export_format, user], export_result, api_name="check_export")

    def more_labels(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        """Train the run again on 25/50/75% of its training rows (queued), fit the learning curve, say what twice
        the rows would give."""
        if not run_id:
            yield error_md("Pick a run first."), gr.skip()
            return
        viewer = viewer_of(request, browser_id)

        def queued(job) -> ev.Event:
            ctx.queue.submit(job)
            return service.wait_for_outcome(job)

        yield ok_md("Training on 25%, 50% and 75% of the training rows (queued; the same validation rows)…"), gr.skip()
        try:
            found = learning_curve(ctx.store.path_of(run_id, viewer), ctx.store, queued, owner=viewer)
        except StudioError as exc:
            yield error_md(exc.message), gr.skip()
            return
        yield curve_outputs(found)

    grow.click(more_labels, [run, user], [said, curve_chart], api_name="learning_curve")

    def slice_rows(run_id: str | None, by: str | None, browser_id: str | None = None, request: gr.Request = None):
        """The run's validation metric per value of the chosen column (core.insight.slices), worst first."""
        return slices_view.sliced(ctx, run_id, by, viewer_of(request, browser_id))

    slice_by.input(slice_rows, [run, slice_by, user], [slice_table, slice_message], api_visibility="private")
    threshold.input(at, [run, threshold, user], at_threshold, api_name="threshold_metrics")
    save.click(keep, [run, threshold, user], at_threshold, api_name="save_threshold")
    return {"choose": choose, "run": run, "outputs": chosen}
