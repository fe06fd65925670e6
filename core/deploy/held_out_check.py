"""Before swapping the served model: the served run and a new run predict the same held-out rows, the served run's
validation rows plus optional extra reviewed rows, and ``core.insight.held_out`` compares them (verdict rule there)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..common.errors import DataError
from ..data.tables import DataLimits, read_table
from ..insight.held_out import HeldOutReport, compare_predictions, metric_keys, role_frame
from ..runs.run_folder import RunFolder
from ..tasks import get_task
from .predict import load_predictor


def validation_rows(run_dir: Path, task) -> pd.DataFrame:
    """The run's validation rows as its validation_predictions.csv holds them: inputs by role, truth as 'label'."""
    frame = RunFolder(run_dir).predictions()
    if frame is None:
        raise DataError(f"The run '{run_dir.name}' has no validation predictions to compare on.")
    return frame[[*task.view.predict_inputs, "label"]]


def compare_held_out(served_dir: Path, new_dir: Path, extra: Path | None = None,
                     limits: DataLimits = DataLimits()) -> HeldOutReport:
    """Both runs on the served run's validation rows (+ the ``extra`` table's rows, in the run's own columns or
    named by role), then on the extra rows alone."""
    served_dir, new_dir = Path(served_dir), Path(new_dir)
    folder = RunFolder(served_dir)
    task = get_task(folder.config().task)
    metric_keys(task)  # a task it covers, before any prediction
    if RunFolder(new_dir).config().task != task.name:
        raise DataError(f"'{new_dir.name}' is not a {task.view.title} run like '{served_dir.name}'.")
    frames = [validation_rows(served_dir, task)]
    if extra is not None:
        frames.append(role_frame(read_table(extra, limits), task, folder.data().get("columns", {})))
    rows = pd.concat(frames, ignore_index=True)
    inputs = {role: rows[role].tolist() for role in task.view.predict_inputs}
    served, new = (load_predictor(run).predict(inputs) for run in (served_dir, new_dir))
    comparisons = [compare_predictions("validation rows" if extra is None else "validation + extra rows", task,
                                       rows["label"], served, new)]
    if extra is not None:
        start = len(frames[0])
        comparisons.append(compare_predictions("extra rows", task, rows["label"].iloc[start:], served[start:],
                                               new[start:]))
    return HeldOutReport(served_dir.name, new_dir.name, comparisons)
