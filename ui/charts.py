"""Plotly figures for the tabs."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core import events as ev


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
    steps = [e for e in events if isinstance(e, ev.Step)]
    evals = [e for e in events if isinstance(e, ev.EVALUATIONS)]
    generative = any(isinstance(e, ev.GenerationEvaluation) for e in evals)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x, y, size = bucket_means(steps)
    fig.add_trace(go.Scatter(x=x, y=y, name="train loss" if size == 1 else f"train loss (mean of {size} steps)",
                             mode="lines", line=dict(color="#4f46e5")))
    fig.add_trace(go.Scatter(x=[e.step for e in evals], y=[e.loss for e in evals], name="validation loss",
                             mode="lines+markers", line=dict(color="#f59e0b")))
    second, name = ("perplexity", "validation perplexity") if generative else ("macro_f1", "validation macro-F1")
    fig.add_trace(go.Scatter(x=[e.step for e in evals], y=[getattr(e, second) for e in evals], name=name,
                             mode="lines+markers", line=dict(color="#10b981", dash="dot")), secondary_y=True)
    fig.update_layout(height=360, margin=dict(l=40, r=40, t=30, b=40), legend=dict(orientation="h", y=-0.2),
                      xaxis_title="step")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    if generative:
        fig.update_yaxes(title_text="perplexity", secondary_y=True)
    else:
        fig.update_yaxes(title_text="macro-F1", range=[0, 1], secondary_y=True)
    return fig


def confusion_heatmap(confusion: list[list[int]], label_names: list[str]) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=confusion, x=label_names, y=label_names, colorscale="Blues",
                               text=confusion, texttemplate="%{text}", hovertemplate="true %{y}<br>predicted %{x}<br>%{z}"))
    fig.update_layout(height=400, margin=dict(l=60, r=10, t=30, b=60), xaxis_title="predicted",
                      yaxis_title="true", yaxis_autorange="reversed")
    return fig
