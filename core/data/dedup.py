"""Exact duplicates: rows compared by their *key*, every text the model reads (each input but the ``_``-prefixed
ones), Unicode-normalised, case-folded and with whitespace collapsed.

Works on any rows with ``inputs`` (role -> one value per row), ``targets`` and ``subset`` (a task's ``TaskData``).
"""
from __future__ import annotations

import unicodedata
from typing import Iterable, Protocol, TypeVar

R = TypeVar("R", bound="Rows")


class Rows(Protocol):
    inputs: dict[str, list]
    targets: list
    rows_total: int
    rows_dropped: int

    def __len__(self) -> int: ...

    def subset(self: R, indices: Iterable[int]) -> R: ...


def normalise(text) -> str:
    """NFKC, case-folded, whitespace collapsed; a list of words is joined with spaces."""
    if isinstance(text, list):
        text = " ".join(map(str, text))
    return " ".join(unicodedata.normalize("NFKC", str(text)).casefold().split())


def input_roles(data: Rows) -> list[str]:
    return [role for role in data.inputs if not role.startswith("_")]


def row_keys(data: Rows) -> list[str]:
    """What the model reads of each row, normalised; pairs keep their two texts apart."""
    columns = [data.inputs[role] for role in input_roles(data)]
    return ["\x1f".join(map(normalise, values)) for values in zip(*columns)]


def target_key(target):
    return tuple(target) if isinstance(target, list) else target


def exact_copies(keys: list[str], targets: list) -> list[int]:
    """Rows repeating an earlier row's key and target (the first of each stays)."""
    seen, copies = set(), []
    for i, pair in enumerate(zip(keys, map(target_key, targets))):
        if pair in seen:
            copies.append(i)
        seen.add(pair)
    return copies


def keep_rows(data: R, drop: set[int]) -> R:
    """The rows not in ``drop``, counting them as dropped."""
    kept = data.subset(i for i in range(len(data)) if i not in drop)
    kept.rows_total, kept.rows_dropped = data.rows_total, data.rows_dropped + len(drop)
    return kept


def deduplicate(data: R) -> tuple[R, int]:
    """Rows without exact copies (the first of each stays): done before the split so no copy leaks."""
    drop = set(exact_copies(row_keys(data), data.targets))
    return (keep_rows(data, drop) if drop else data), len(drop)
