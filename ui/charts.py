"""Plotly figures for the tabs."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core import events as ev
from core.tasks import get_task


def class_balance(counts: dict[str, int]) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), marker_color="#4f46e5"))
    fig.update_layout(height=300, margin=dict(l=40, r=10, t=30, b=40), yaxis_title="rows")
    return fig


MAX_CURVE_POINTS = 300


def bucket_means(steps: list[ev.Step], limit: int = MAX_CURVE_POINTS) -> tuple[list[int], list[float], int]:
    """At most ``limit`` points: the mean loss of each run of consecutive steps, at the run's last step."""
    size = max(1, math.ceil(len(steps) / limit))
    chunks = [steps[i:i + size] for i in range(0, len(steps), size)]
    return [c[-1].step for c in chunks], [sum(s.loss for s in c) / len(c) for c in chunks], size


def training_curve(events: list[ev.Event]) -> go.Figure:
    """Train and validation loss, and the task's headline metric on a second axis."""
    steps = [e for e in events if isinstance(e, ev.Step)]
    evals = [e for e in events if isinstance(e, ev.Evaluation)]
    started = next((e for e in events if isinstance(e, ev.Started)), None)
    key, label = get_task(started.task if started else "classification").view.cards[0]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x, y, size = bucket_means(steps)
    fig.add_trace(go.Scatter(x=x, y=y, name="train loss" if size == 1 else f"train loss (mean of {size} steps)",
                             mode="lines", line=dict(color="#4f46e5")))
    fig.add_trace(go.Scatter(x=[e.step for e in evals], y=[e.loss for e in evals], name="validation loss",
                             mode="lines+markers", line=dict(color="#f59e0b")))
    values = [e.metrics.get(key) for e in evals]
    fig.add_trace(go.Scatter(x=[e.step for e in evals], y=values, name=f"validation {label}",
                             mode="lines+markers", line=dict(color="#10b981", dash="dot")), secondary_y=True)
    fig.update_layout(height=360, margin=dict(l=40, r=40, t=30, b=40), legend=dict(orientation="h", y=-0.2),
                      xaxis_title="step")
    fig.update_yaxes(title_text="loss", secondary_y=False)
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
