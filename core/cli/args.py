"""What the commands share: exit codes, ``--col`` pairs and ``--run`` folders (the settings' flags are declared with
the settings: core/runs/settings.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..common.errors import DataError
from ..runs.store import RunStore

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130


def key_value_flags(pairs: list[str], flag: str, form: str, example: str) -> dict[str, str]:
    """Repeated ``flag KEY=VALUE`` flags as {key: value}; ``form`` (ROLE=COLUMN) and ``example`` shape the refusal."""
    found = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key or not value:
            raise DataError(f"{flag} takes {form}, e.g. {flag} {example} (got '{pair}').")
        found[key] = value
    return found


def role_flags(pairs: list[str]) -> dict[str, str]:
    """``--col ROLE=COLUMN`` flags as {role: column}."""
    return key_value_flags(pairs, "--col", "ROLE=COLUMN", "text_a=question1")


def run_path(args: argparse.Namespace, name: str | None = None) -> Path:
    """``--run`` (or ``name``): a run folder, or a run id in the runs folder."""
    name = name or args.run
    return Path(name).resolve() if Path(name).is_dir() else RunStore(args.runs).path_of(name)
