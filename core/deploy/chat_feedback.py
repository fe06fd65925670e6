"""Preferences given while chatting with a run (the Chat tab's thumbs and "write a better answer"): each one a
(prompt, chosen, rejected) row in the run folder's ``chat_preferences.csv``, a table the preference task reads."""
from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd

from ..common.atomic import write_csv_atomic
from ..common.errors import DataError
from ..runs.run_folder import RunFolder

COLUMNS = ["prompt", "chosen", "rejected"]
_lock = threading.Lock()


def feedback_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / RunFolder.CHAT_PREFERENCES


def feedback_rows(run_dir: str | Path) -> pd.DataFrame:
    path = feedback_path(run_dir)
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else pd.DataFrame(columns=COLUMNS)


def record_preference(run_dir: str | Path, prompt: str, chosen: str, rejected: str) -> int:
    """Add one preference (the file is rewritten whole, atomically); returns how many the run holds now."""
    prompt, chosen, rejected = (str(v or "").strip() for v in (prompt, chosen, rejected))
    if not prompt or not chosen or not rejected:
        raise DataError("A preference needs the prompt, a better answer and a worse one.")
    if chosen == rejected:
        raise DataError("The better and the worse answer are the same; nothing to learn from.")
    with _lock:
        rows = pd.concat([feedback_rows(run_dir), pd.DataFrame([[prompt, chosen, rejected]], columns=COLUMNS)],
                         ignore_index=True)
        write_csv_atomic(rows, feedback_path(run_dir))
    return len(rows)


def feedback_table(run_dir: str | Path, minimum: int = 4) -> Path:
    """The run's preference table, once it holds enough rows to train on."""
    count = len(feedback_rows(run_dir))
    if count < minimum:
        raise DataError(f"This run has {count} preference(s) from the Chat tab; give at least {minimum} (thumbs up or "
                        "down on one of two answers, or write a better answer) before training on them.")
    return feedback_path(run_dir)
