"""Inputs to try a run with: a few of its own validation rows (the Predict tab's examples), so a Chinese NER run
offers Chinese sentences and a topic classifier one text per topic."""
from __future__ import annotations

from pathlib import Path

from ..common.errors import StudioError
from ..data.dedup import deduplicate
from ..models.language import CJK
from ..runs.run_folder import RunFolder
from ..tasks import get_task

MOST = 8  # examples shown
PER_CLASS = 2  # for tasks with classes: at most this many of each class


def as_text(value) -> str:
    """A role's value as typed in a box: a token list's words joined by spaces, but none beside a CJK character."""
    if not isinstance(value, list):
        return str(value)
    words = [str(w) for w in value if str(w)]
    return "".join(w if i == 0 or CJK.match(words[i - 1][-1]) or CJK.match(w[0]) else " " + w
                   for i, w in enumerate(words))


def example_inputs(run_dir: str | Path, most: int = MOST, per_class: int = PER_CLASS) -> list[list[str]]:
    """One [text] or [text_a, text_b] per example: validation rows of the run (the split training used), at most
    ``per_class`` per class for single-class tasks, in row order; [] if the run's data cannot be read back."""
    folder = RunFolder(run_dir)
    try:
        config = folder.config()
        task = get_task(config.task)
        data = task.prepare(folder.dataset(), {role.name: role.name for role in task.roles})
    except (StudioError, OSError, ValueError, KeyError):  # an old or damaged run folder: no examples, no error
        return []
    if config.deduplicate:
        data, _ = deduplicate(data)
    _, val = task.split(data, config.val_fraction, config.seed, config.folds, config.fold)
    taken: dict[int, int] = {}
    rows = []
    for i, target in enumerate(val.targets):
        if isinstance(target, int):  # one class per row
            if taken.get(target, 0) >= per_class:
                continue
            taken[target] = taken.get(target, 0) + 1
        rows.append([as_text(val.inputs.get(box, val.inputs[task.roles[0].name])[i])  # NER's box reads its tokens
                     for box in task.view.predict_inputs])
        if len(rows) >= most:
            break
    return rows
