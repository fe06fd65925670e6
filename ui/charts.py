"""Plotly figures for the tabs."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.runs import events as ev
from core.runs.config import DEFAULT_TASK
from core.tasks import get_task


def class_balance(counts: dict[str, int]) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), marker_color="#4f46e5"))
    fig.update_layout(height=300, margin=dict(l=40, r=10, t=30, b=40), yaxis_title="rows")
    return fig


def durations(seconds: list[float]) -> go.Figure:
    """A histogram of clip durations."""
    fig = go.Figure(go.Histogram(x=seconds, marker_color="#4f46e5", nbinsx=30))
    fig.update_layout(height=260, margin=dict(l=40, r=10, t=30, b=40), xaxis_title="seconds", yaxis_title="clips")
    return fig


def learning_curve(curve) -> go.Figure:
    """A learning curve's points (core.insight.learning_curve), its fitted power law to twice the rows and the
    90% interval around it."""
    rows = [p.rows for p in curve.points]
    fig = go.Figure(go.Scatter(x=rows, y=[p.score for p in curve.points], mode="markers", name="trained",
                               marker=dict(color="#4f46e5", size=9)))
    grid = [min(rows) * (2 * max(rows) / min(rows)) ** (i / 40) for i in range(41)]
    fitted = [curve.predict(n) for n in grid]
    if all(fitted):
        fig.add_trace(go.Scatter(x=grid + grid[::-1], y=[f[2] for f in fitted] + [f[1] for f in fitted][::-1],
                                 fill="toself", fillcolor="rgba(16,185,129,0.15)", line=dict(width=0),
                                 name="90% interval", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=grid, y=[f[0] for f in fitted], mode="lines", name="power law",
                                 line=dict(color="#10b981", dash="dot")))
    fig.update_layout(height=300, margin=dict(l=40, r=10, t=30, b=40), xaxis_title="training rows",
                      yaxis_title=curve.metric_name, legend=dict(orientation="h", y=-0.25))
    return fig


MAX_CURVE_POINTS = 300


def bucket_means(steps: list[int], losses: list[float], limit: int = MAX_CURVE_POINTS) -> tuple[list[int], list[float], int]:
    """At most ``limit`` points: the mean loss of each run of consecutive steps, at the run's last step."""
    size = max(1, math.ceil(len(steps) / limit))
    starts = range(0, len(steps), size)
    return ([steps[min(i + size, len(steps)) - 1] for i in starts],
            [sum(losses[i:i + size]) / len(losses[i:i + size]) for i in starts], size)


def training_curve(events: list[ev.Event]) -> go.Figure:
    """Train and validation loss, and the task's headline metric on a second axis."""
    steps = [e for e in events if isinstance(e, ev.Step)]
    evals = [e for e in events if isinstance(e, ev.Evaluation)]
    started = next((e for e in events if isinstance(e, ev.Started)), None)
    view = get_task(started.task if started else DEFAULT_TASK).view
    key, label = view.cards[0]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x, y, size = bucket_means([s.step for s in steps], [s.loss for s in steps])
    fig.add_trace(go.Scatter(x=x, y=y, name="train loss" if size == 1 else f"train loss (mean of {size} steps)",
                             mode="lines", line=dict(color="#4f46e5")))
    fig.add_trace(go.Scatter(x=[e.step for e in evals], y=[e.loss for e in evals], name="validation loss",
                             mode="lines+markers", line=dict(color="#f59e0b")))
    for extra in view.curves:
        fig.add_trace(go.Scatter(x=[e.step for e in evals], y=[e.metrics.get(extra) for e in evals],
                                 name=f"validation {dict(view.cards).get(extra, extra)}", mode="lines+markers",
                                 line=dict(color="#ef4444", dash="dash")))
    values = [e.metrics.get(key) for e in evals]
    fig.add_trace(go.Scatter(x=[e.step for e in evals], y=values, name=f"validation {label}",
                             mode="lines+markers", line=dict(color="#10b981", dash="dot")), secondary_y=True)
    fig.update_layout(height=360, margin=dict(l=40, r=40, t=30, b=40), legend=dict(orientation="h", y=-0.2),
                      xaxis_title="step")
    fig.update_yaxes(title_text=" / ".join(["loss", *(dict(view.cards).get(c, c) for c in view.curves)]),
                     secondary_y=False)
    unit_range = all(v is not None and 0 <= v <= 1 for v in values)
    fig.update_yaxes(title_text=label, secondary_y=True, **({"range": [0, 1]} if unit_range else {}))
    return fig


def predicted_vs_true(frame) -> go.Figure:
    """Scatter of predicted against true values (regression), with the y = x line."""
    low, high = float(min(frame["label"].min(), frame["predicted"].min())), float(max(frame["label"].max(),
                                                                                       frame["predicted"].max()))
    fig = go.Figure([go.Scatter(x=frame["label"], y=frame["predicted"], mode="markers", name="rows",
                                marker=dict(color="#4f46e5", opacity=0.6, size=6)),
                     go.Scatter(x=[low, high], y=[low, high], mode="lines", name="y = x",
                                line=dict(color="#9ca3af", dash="dash"))])
    fig.update_layout(height=400, margin=dict(l=60, r=10, t=30, b=60), xaxis_title="true", yaxis_title="predicted")
    return fig


def per_label_f1(per_class: dict[str, dict]) -> go.Figure:
    """F1 per label / entity type (multi-label and NER)."""
    names = list(per_class)
    fig = go.Figure(go.Bar(x=names, y=[per_class[n]["f1"] for n in names], marker_color="#10b981"))
    fig.update_layout(height=400, margin=dict(l=40, r=10, t=30, b=60), yaxis_title="F1", yaxis_range=[0, 1])
    return fig


def confusion_heatmap(confusion: list[list[int]], label_names: list[str]) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=confusion, x=label_names, y=label_names, colorscale="Blues",
                               text=confusion, texttemplate="%{text}", hovertemplate="true %{y}<br>predicted %{x}<br>%{z}"))
    fig.update_layout(height=400, margin=dict(l=60, r=10, t=30, b=60), xaxis_title="predicted",
                      yaxis_title="true", yaxis_autorange="reversed")
    return fig


def roc_curves(curves) -> go.Figure:
    """One-vs-rest ROC curve per class, AUC in the legend."""
    fig = go.Figure([go.Scatter(x=c.fpr, y=c.tpr, mode="lines", name=f"{c.name} (AUC {c.roc_auc:.3f})") for c in curves]
                    + [go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(color="#9ca3af", dash="dash"))])
    fig.update_layout(height=380, margin=dict(l=50, r=10, t=30, b=50), xaxis_title="false positive rate",
                      yaxis_title="true positive rate", xaxis_range=[0, 1], yaxis_range=[0, 1.02])
    return fig


def pr_curves(curves) -> go.Figure:
    """One-vs-rest precision-recall curve per class, average precision in the legend."""
    fig = go.Figure([go.Scatter(x=c.recall, y=c.precision, mode="lines", name=f"{c.name} (AP {c.average_precision:.3f})")
                     for c in curves])
    fig.update_layout(height=380, margin=dict(l=50, r=10, t=30, b=50), xaxis_title="recall", yaxis_title="precision",
                      xaxis_range=[0, 1], yaxis_range=[0, 1.02])
    return fig


def reliability(cal) -> go.Figure:
    """Accuracy per confidence bin against the diagonal of perfect calibration; ECE in the title."""
    fig = go.Figure([go.Bar(x=cal.confidence, y=cal.accuracy, width=0.08, name="accuracy", marker_color="#4f46e5",
                            customdata=cal.counts, hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} rows"),
                     go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                                line=dict(color="#9ca3af", dash="dash"))])
    fig.update_layout(height=380, margin=dict(l=50, r=10, t=40, b=50), xaxis_title="confidence",
                      yaxis_title="accuracy", xaxis_range=[0, 1], yaxis_range=[0, 1.02],
                      title=dict(text=f"Expected calibration error {cal.ece:.3f}", font=dict(size=13)))
    return fig


def compare_curves(runs) -> go.Figure:
    """Train loss (left) and the validation primary metric (right) of several runs, one colour per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("train and validation loss", "validation primary metric"))
    palette = ["#4f46e5", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#84cc16", "#ec4899"]
    for i, run in enumerate(runs):
        colour = palette[i % len(palette)]
        x, y, _ = bucket_means(run.steps, run.losses)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{run.run_id} train loss", legendgroup=run.run_id,
                                 line=dict(color=colour)), row=1, col=1)
        fig.add_trace(go.Scatter(x=run.eval_steps, y=run.eval_losses, mode="lines+markers", legendgroup=run.run_id,
                                 name=f"{run.run_id} validation loss", line=dict(color=colour, dash="dot")), row=1, col=1)
        fig.add_trace(go.Scatter(x=run.eval_steps, y=run.eval_metric, mode="lines+markers", legendgroup=run.run_id,
                                 name=f"{run.run_id} {run.metric_name}", line=dict(color=colour)), row=1, col=2)
    fig.update_layout(height=420, margin=dict(l=40, r=10, t=40, b=40), legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(title_text="step")
    return fig


def compare_metrics(table) -> go.Figure:
    """A bar per run: its primary metric, with the trivial and classical baselines' values as markers."""
    labels = [f"{r}<br>{m}" for r, m in zip(table["run"], table["metric"])]
    fig = go.Figure([go.Bar(x=labels, y=table["value"], name="best checkpoint", marker_color="#4f46e5",
                            text=[f"{v:.4f}" if v == v and v is not None else "" for v in table["value"]],
                            textposition="outside", cliponaxis=False),
                     go.Scatter(x=labels, y=table["baseline"], mode="markers", name="trivial baseline",
                                marker=dict(color="#ef4444", symbol="line-ew-open", size=30, line=dict(width=3))),
                     go.Scatter(x=labels, y=table["classical baseline"], mode="markers", name="classical baseline",
                                marker=dict(color="#f59e0b", symbol="line-ew-open", size=30, line=dict(width=3)))])
    fig.update_layout(height=360, margin=dict(l=40, r=10, t=30, b=80))
    fig.update_yaxes(rangemode="tozero")
    return fig


def compare_per_class(table) -> go.Figure:
    """Per-class F1 side by side: classes on the x axis, one bar per run."""
    fig = go.Figure([go.Bar(x=list(table.index), y=table[run].tolist(), name=run) for run in table.columns])
    fig.update_layout(height=360, margin=dict(l=40, r=10, t=30, b=60), barmode="group", yaxis_title="F1",
                      yaxis_range=[0, 1.05], legend=dict(orientation="h", y=-0.25))
    return fig


def best_so_far(values: list[tuple[int, float]], metric: str, greater_is_better: bool) -> go.Figure:
    """Each complete trial's primary metric (dots) and the best so far (a step line), by trial number."""
    fig = go.Figure()
    if values:
        numbers, scores = zip(*values)
        pick = max if greater_is_better else min
        best = [pick(scores[:i + 1]) for i in range(len(scores))]
        fig.add_trace(go.Scatter(x=numbers, y=scores, mode="markers", name=metric, marker=dict(color="#94a3b8")))
        fig.add_trace(go.Scatter(x=numbers, y=best, mode="lines", line_shape="hv", name="best so far",
                                 line=dict(color="#4f46e5")))
    fig.update_layout(height=300, margin=dict(l=40, r=10, t=30, b=40), xaxis_title="trial", yaxis_title=metric)
    return fig


def study_figures(study) -> list:
    """Optuna's own plotly figures of a study: parameter importances, parallel coordinates, slice (None where
    the study has too few complete trials for one)."""
    from optuna import visualization

    figures = []
    for plot in (visualization.plot_param_importances, visualization.plot_parallel_coordinate,
                 visualization.plot_slice):
        try:
            figure = plot(study)
            figure.update_layout(height=320, margin=dict(l=40, r=10, t=40, b=40))
            figures.append(figure)
        except (ValueError, RuntimeError, ZeroDivisionError):  # e.g. importances need two complete trials
            figures.append(None)
    return figures


def monitor_traffic(frame) -> go.Figure:
    """Predictions per minute (bars) and their latency p50 / p95 (lines) over the window."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if len(frame):
        minutes = frame.set_index("time")["latency_ms"].resample("1min")
        counts, p50, p95 = minutes.count(), minutes.quantile(0.5), minutes.quantile(0.95)
        fig.add_trace(go.Bar(x=counts.index, y=counts.values, name="predictions / min", marker_color="#c7d2fe"))
        for values, name, color in ((p50, "latency p50 (ms)", "#4f46e5"), (p95, "latency p95 (ms)", "#dc2626")):
            fig.add_trace(go.Scatter(x=values.index, y=values.values, name=name, mode="lines+markers",
                                     line=dict(color=color)), secondary_y=True)
    fig.update_layout(height=320, margin=dict(l=40, r=40, t=30, b=40), legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(title_text="predictions", secondary_y=False)
    fig.update_yaxes(title_text="ms", secondary_y=True)
    return fig


def monitor_mix(validation: dict[str, float], window: dict[str, float], limit: int = 15) -> go.Figure:
    """Share of each class (label, entity type) in the validation predictions and in the window."""
    names = sorted(set(validation) | set(window), key=lambda n: -max(validation.get(n, 0), window.get(n, 0)))[:limit]
    fig = go.Figure([go.Bar(x=names, y=[share.get(n, 0) for n in names], name=name, marker_color=color)
                     for share, name, color in ((validation, "validation", "#94a3b8"), (window, "now", "#4f46e5"))])
    fig.update_layout(barmode="group", height=320, margin=dict(l=40, r=10, t=30, b=40), yaxis_tickformat=".0%")
    return fig


def monitor_scores(validation: list[float], window: list[float]) -> go.Figure:
    """Predicted scores: the validation rows' and the window's, as overlaid histograms."""
    fig = go.Figure([go.Histogram(x=values, name=name, histnorm="probability", opacity=0.6, marker_color=color)
                     for values, name, color in ((validation, "validation", "#94a3b8"), (window, "now", "#4f46e5"))])
    fig.update_layout(barmode="overlay", height=320, margin=dict(l=40, r=10, t=30, b=40), yaxis_tickformat=".0%")
    return fig
