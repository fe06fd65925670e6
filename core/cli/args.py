"""What the commands share: exit codes, ``--col`` pairs and ``--run`` folders (the settings' flags are declared with
the settings: core/runs/settings.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..common.errors import DataError
from ..runs.store import RunStore

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130


def role_flags(pairs: list[str]) -> dict[str, str]:
    """``--col ROLE=COLUMN`` flags as {role: column}."""
    columns = {}
    for pair in pairs:
        role, _, column = pair.partition("=")
        if not role or not column:
            raise DataError(f"--col takes ROLE=COLUMN, e.g. --col text_a=question1 (got '{pair}').")
        columns[role] = column
    return columns


def run_path(args: argparse.Namespace, name: str | None = None) -> Path:
    """``--run`` (or ``name``): a run folder, or a run id in the runs folder."""
    name = name or args.run
    return Path(name).resolve() if Path(name).is_dir() else RunStore(args.runs).path_of(name)
