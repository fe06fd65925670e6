"""Slices: the validation rows grouped by a column the model did not read (a source, a year, a region) or by their
input length, with the task's per-row metric in each group, worst first: where one overall number hides a weak group.

When a table is read for a run (core.train.service), its unused columns that can group rows are kept with the run as
``slice_columns.csv``, row i describing the run's cleaned row i (``dataset.csv``): numeric columns, and columns of at
most MAX_VALUES distinct values; identifiers (nearly every value distinct) and free text are not kept. The validation
rows are found again by replaying the run's seeded split (core.tasks.rows) over its cleaned rows, in the order of
``validation_predictions.csv``. Numeric columns are cut into quarters; a share of rows right comes with its 95%
Wilson interval.
"""
from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ..common.errors import DataError
from ..data.dedup import input_roles, normalise, row_keys
from ..data.tables import as_string, as_strings
from ..runs.run_folder import RunFolder
from ..tasks import get_task
from ..tasks.base import Task
from ..tasks.rows import held_out, run_rows
from ..tasks.types import TaskData

MAX_VALUES = 30  # a column of more distinct values is kept only if it is numeric
ID_SHARE = 0.95  # distinct values per filled row from which a column of words or whole numbers is an identifier
QUARTERS = 4
INPUT_LENGTH = "input length"  # characters of the texts the model read
BLANK = "(blank)"
Z95 = 1.959964


@dataclass(frozen=True)
class Slice:
    value: str  # the column's value, or a range of numbers ("2004–2008")
    rows: int
    metric: float
    low: float | None = None  # the 95% Wilson interval of a share of rows right
    high: float | None = None


@dataclass(frozen=True)
class Slices:
    by: str
    metric: str  # the output kind's slice_metric: accuracy, exact match, MAE
    overall: float
    rows: int
    slices: tuple[Slice, ...]  # worst first

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{self.by: s.value, "rows": s.rows, self.metric: round(s.metric, 4),
                              **({"95% interval": f"{s.low:.3f}–{s.high:.3f}"} if s.low is not None else {})}
                             for s in self.slices])

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """E.g. ['accuracy by source over 120 validation rows: 0.8500 overall', 'forum  40 rows  0.6000 (0.45–0.74)']."""
        head = f"{self.metric} by {self.by} over {self.rows:,} validation rows: {self.overall:.4f} overall"
        width = max((len(s.value) for s in self.slices), default=0)
        return [head] + [f"{s.value:<{width}}  {s.rows:>6,} rows  {s.metric:.4f}"
                         + (f" ({s.low:.2f}–{s.high:.2f})" if s.low is not None else "") for s in self.slices]


# -- kept with a run ----------------------------------------------------------
def is_numeric(values: pd.Series) -> bool:
    filled = values[values != ""]
    return not filled.empty and bool(pd.to_numeric(filled, errors="coerce").notna().all())


def can_slice(values: pd.Series) -> bool:
    """A column (as strings) that groups rows: numeric, or of few distinct values; not an identifier or free text."""
    filled = values[values != ""]
    distinct = filled.nunique()
    if distinct < 2:
        return False
    numeric = is_numeric(filled)
    if distinct >= ID_SHARE * len(filled) and not (numeric and (pd.to_numeric(filled) % 1 != 0).any()):
        return False  # a row number, a user id, a file name (a measurement with decimals stays)
    return numeric or distinct <= MAX_VALUES


def cell_key(cell) -> str:
    return normalise(cell if isinstance(cell, list) else as_string(cell))


def matched(table_keys: list[str], data_keys: list[str]) -> list[int | None]:
    """For each cleaned row, the first table row with its key not taken yet (cleaning keeps the table's order)."""
    waiting: dict[str, deque[int]] = defaultdict(deque)
    for i, key in enumerate(table_keys):
        waiting[key].append(i)
    return [waiting[key].popleft() if waiting[key] else None for key in data_keys]


def kept_columns(frame: pd.DataFrame, data: TaskData) -> pd.DataFrame | None:
    """The table's unused columns that can slice rows, one row per cleaned row of ``data`` (found by what the model
    reads; blank where none is found); None without any such column."""
    used, roles = set(data.columns.values()), input_roles(data)
    kept = {column: as_strings(frame[column]) for column in frame.columns if column not in used}
    kept = {column: values for column, values in kept.items() if can_slice(values)}
    if not kept or not all(data.columns.get(role) in frame.columns for role in roles):
        return None
    cells = [frame[data.columns[role]].map(cell_key) for role in roles]
    rows = matched(["\x1f".join(key) for key in zip(*cells)], row_keys(data))
    return pd.DataFrame({column: [values.iat[r] if r is not None else "" for r in rows]
                         for column, values in kept.items()})


# -- slicing a run's validation rows --------------------------------------------
def text_roles(task: Task) -> list[str]:
    return [role.name for role in task.roles if role.text and role.name in task.view.predict_inputs]


def choices(run_dir: str | Path) -> list[str]:
    """What a run's validation rows can be sliced by: its kept columns and the input length (text tasks); [] for a
    run without per-row scores."""
    folder = RunFolder(run_dir)
    task = get_task(folder.config().task)
    if not task.output.slice_metric or not (folder / RunFolder.PREDICTIONS).is_file():
        return []
    kept = folder / RunFolder.SLICES
    names = list(pd.read_csv(kept, nrows=0).columns) if kept.is_file() else []
    return names + ([INPUT_LENGTH] if text_roles(task) else [])


def wilson(right: float, rows: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a share of ``right`` in ``rows``."""
    share, spread = right / rows, z * z / rows
    centre = (share + spread / 2) / (1 + spread)
    half = z * math.sqrt(share * (1 - share) / rows + spread / (4 * rows)) / (1 + spread)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def groups(values: pd.Series) -> pd.Series:
    """Each row's group: its value, or for a numeric column of more than four values its quarter's range."""
    numbers = pd.to_numeric(values.where(values != ""), errors="coerce")
    if not is_numeric(values) or numbers.nunique() <= QUARTERS:
        return values.replace("", BLANK)
    quarter = pd.qcut(numbers, QUARTERS, labels=False, duplicates="drop")
    spans = numbers.groupby(quarter).agg(["min", "max"])
    names = {q: f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}" for q, (lo, hi) in spans.iterrows()}
    return quarter.map(names).fillna(BLANK)


def validation_rows(folder: RunFolder, task: Task) -> TaskData:
    """The run's validation rows, each with its cleaned row's index as the input ``_row``."""
    data = run_rows(folder)
    data.inputs["_row"] = list(range(len(data)))
    return held_out(task, data, folder.config())[1]


def slice_values(folder: RunFolder, task: Task, by: str, val: TaskData) -> pd.Series:
    if by == INPUT_LENGTH:
        roles = text_roles(task)
        return pd.Series([str(sum(len(cell_key(val.inputs[r][i])) for r in roles)) for i in range(len(val))])
    kept = folder.slices()
    if len(kept) != len(folder.dataset()):
        raise DataError(f"The kept columns of '{folder.path.name}' no longer match its rows.")
    return kept[by].iloc[val.inputs["_row"]].reset_index(drop=True)


def slice_run(run_dir: str | Path, by: str) -> Slices:
    """The run's validation rows grouped ``by`` a kept column or INPUT_LENGTH, with the metric per group."""
    folder = RunFolder(run_dir)
    task = get_task(folder.config().task)
    if not task.output.slice_metric:
        raise DataError(f"Slices cover tasks scored row by row, not {task.view.title}.")
    predictions = folder.predictions()
    if predictions is None:
        raise DataError(f"The run '{folder.path.name}' has no validation predictions yet.")
    usable = choices(run_dir)
    if by not in usable:
        raise DataError(f"The validation rows cannot be sliced by '{by}': only columns the model did not read that "
                        "group rows (numbers, or at most 30 values; not identifiers or free text) are kept. "
                        f"Slice by one of: {', '.join(usable) or 'none'}.")
    val = validation_rows(folder, task)
    if len(val) != len(predictions):
        raise DataError(f"The validation rows of '{folder.path.name}' cannot be found again.")
    scores = pd.Series(task.output.row_scores(predictions))
    share = task.output.slice_share
    found = []
    for value, group in scores.groupby(groups(slice_values(folder, task, by, val))):
        interval = wilson(group.sum(), len(group)) if share else (None, None)
        found.append(Slice(str(value), len(group), float(group.mean()), *interval))
    found.sort(key=lambda s: (s.metric if share else -s.metric, -s.rows))
    return Slices(by, task.output.slice_metric, float(scores.mean()), len(scores), tuple(found))
