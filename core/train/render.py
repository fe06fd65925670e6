"""A training run's events as lines of text, for the command line and the Train tab: pure functions, no printing."""
from __future__ import annotations

from ..insight.verdict import baselines_line, judge
from ..runs import events as ev
from ..tasks.base import Task


def started_lines(event: ev.Started) -> list[str]:
    """A starting run's folder, precision, schedule and warnings."""
    return [f"run folder: {event.run_dir}  precision: {event.precision}", f"schedule: {event.schedule}",
            *(f"warning: {warning}" for warning in event.warnings)]


def step_stats(event: ev.Step) -> dict[str, str]:
    """A step's loss and throughput, e.g. as a progress bar's postfix."""
    return {"loss": f"{event.loss:.4f}", "samples_s": f"{event.samples_per_s:.1f}"}


def event_line(task: Task, event: ev.Event) -> str | None:
    """The line of a baselines, evaluation or status event; None for the others (and baselines with no score)."""
    if isinstance(event, ev.Baselines):
        return baselines_line(task, event.trivial, event.classical) or None
    if isinstance(event, ev.Evaluation):
        return (f"eval step {event.step}: loss {event.loss:.4f}  {task.headline(event.metrics)}"
                f"{'  (best)' if event.is_best else ''}")
    if isinstance(event, ev.Status):
        return event.message
    return None


def outcome_lines(task: Task, outcome: ev.Finished | ev.Cancelled | ev.Failed) -> list[str]:
    """How a run ended: its error, or its validation metrics, baselines, verdict, time and folder."""
    if isinstance(outcome, ev.Failed):
        return [f"error: {outcome.message}"]
    m, lines = outcome.metrics, []
    if m.get("cross_validation"):
        lines.append(cross_validation_line(task, m["cross_validation"]))
    elif m.get("val_loss") is not None:
        lines.append(f"validation loss {m['val_loss']:.4f}  {task.headline(m)}")
    if m.get("baseline"):
        lines.append(f"baseline ({m['baseline']['name']}): {task.headline(m['baseline'])}")
    if m.get("classical") and "skipped" not in m["classical"]:
        lines.append(f"classical baseline ({m['classical']['name']}, {m['classical']['seconds']:.1f} s): "
                     f"{task.headline(m['classical'])}")
    if (verdict := judge(task, m)).text:
        lines.append(("" if verdict.beats is not False else "warning: ") + verdict.text)
    lines.append(f"train time {m['train_seconds']:.1f} s  samples/s {m['samples_per_s'] or 0:.1f}")
    lines.append(f"run folder: {outcome.run_dir}")
    return lines


def cross_validation_line(task: Task, found: dict) -> str:
    """E.g. "macro-F1 over 5 folds: 0.8120 ± 0.0310 (0.780, ...); classical baseline 0.7740 ± 0.0200; a typical
    fold's run: NAME" (``found``: core.train.crossval.CrossValidation.to_dict())."""
    name = task.metric_name(found["metric"])
    folds = ", ".join(f"{s:.3f}" for s in found["scores"])
    line = f"{name} over {found['folds']} folds: {found['mean']:.4f} ± {found['spread']:.4f} ({folds})"
    if "classical" in found:
        line += f"; classical baseline {found['classical']['mean']:.4f} ± {found['classical']['spread']:.4f}"
    return f"{line}; a typical fold's run: {found['typical_run']}"
