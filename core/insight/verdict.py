"""Is the fine-tune worth it? Its primary metric against the classical baseline, in plain words."""
from __future__ import annotations

from dataclasses import dataclass

from ..tasks.base import Task

ADVICE = ("train longer (more epochs, or the Accurate preset), try a higher learning rate or another base model; "
          "Predict and export still work, but the classical model may serve you better")


@dataclass(frozen=True)
class Verdict:
    beats: bool | None  # None: no classical baseline to compare with (the assistant, or it was skipped)
    text: str


def baselines_line(task: Task, trivial: dict | None, classical: dict | None) -> str:
    """'baselines: TF-IDF + logistic regression macro-F1 0.9494 (1.2 s) · majority class macro-F1 0.0667'."""
    key, name, parts = task.primary_metric, task.metric_name(task.primary_metric), []
    if classical and key in classical:
        parts.append(f"{classical['name']} {name} {classical[key]:.4f} ({classical.get('seconds', 0):.1f} s)")
    if trivial and key in trivial:
        parts.append(f"{trivial['name']} {name} {trivial[key]:.4f}")
    return "baselines: " + " · ".join(parts) if parts else ""


def judge(task: Task, metrics: dict) -> Verdict:
    """The fine-tune's best primary metric against its classical baseline, from a run's metrics.json."""
    classical, key = metrics.get("classical"), task.primary_metric
    name = task.metric_name(key)
    value = metrics.get(key)
    if not classical or value is None:
        return Verdict(None, "")
    if "skipped" in classical:
        return Verdict(None, f"The classical baseline ({classical['name']}) was skipped: {classical['skipped']}.")
    theirs = classical[key]
    beats = value > theirs if task.greater_is_better else value < theirs
    if beats:
        return Verdict(True, f"Beats the classical baseline ({classical['name']}): {name} {value:.4f} vs {theirs:.4f}.")
    return Verdict(False, f"A classical model ({classical['name']}, fitted in {classical.get('seconds', 0):.1f} s) "
                          f"does as well or better: {name} {theirs:.4f} vs this fine-tune's {value:.4f}. "
                          f"To do better, {ADVICE}.")
