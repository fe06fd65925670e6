"""Classifying files named in a table (images, sound clips): a file column and a label column. Finding the file
column, checking every file once (the unreadable ones left out with a count and the first reason) and the class
index are shared here; the subclasses own reading the files into model inputs."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from ..common.errors import DataError
from ..data.tables import LABEL_NAME_HINTS, as_strings, name_hint
from .classification import Classification, class_index, guess_label_column, normalise_label
from .types import Role, TaskData


def file_roles(role: str, hints: tuple[str, ...]) -> tuple[Role, Role]:
    """A file column (named like ``hints``) and a label column."""
    return Role(role, role, hints, text=False), Role("label", "label", LABEL_NAME_HINTS, text=False)


class FileClassification(Classification):
    """A Classification whose input column names files of ``suffixes``."""

    suffixes: ClassVar[set[str]]

    folders_hint: ClassVar[str]  # e.g. "cats/1.jpg, dogs/2.jpg"

    def names_files(self, values: pd.Series) -> bool:
        filled = values[values != ""]
        return len(filled) > 0 and filled.str.lower().str.endswith(tuple(self.suffixes)).mean() >= 0.8

    def check_file(self, path: str) -> str | None:
        """Why the file cannot be used (a DataError's message), or None."""
        raise NotImplementedError

    @property
    def role(self) -> str:
        return self.modality.role

    def recognises(self, frame: pd.DataFrame) -> bool:
        return any(self.names_files(as_strings(frame[c])) for c in frame.columns)

    def guess_role(self, frame, role, chosen):
        if role.name == "label":
            return guess_label_column(frame)
        found = [c for c in frame.columns if self.names_files(as_strings(frame[c]))]
        if not found:
            raise DataError(f"No column names {self.modality.noun} ({', '.join(sorted(self.suffixes))}).")
        return next((c for c in found if name_hint(c, self.roles[0].hints)), found[0])

    def build(self, frame: pd.DataFrame, columns: dict[str, str]) -> TaskData:
        values = self.strings(frame, columns)
        files, labels = values[self.role], values["label"].map(normalise_label)
        total = len(frame)
        keep = ((files != "") & (labels != "")).to_numpy(copy=True)
        unlabelled = int(((files != "") & (labels == "")).sum())
        problems = []
        for i in np.flatnonzero(keep):
            problem = self.check_file(files.iloc[i])
            if problem:
                keep[i] = False
                problems.append(problem)
        noun = self.modality.noun
        if not (labels != "").any():
            raise DataError(f"None of the {noun} has a label. Put each class's files in a folder named after the "
                            f"class (e.g. {self.folders_hint}) and zip those folders, or give a table with a label "
                            "column.")
        if not keep.any():
            raise DataError(f"No row has both a usable file and a label. {problems[0] if problems else ''}".strip())
        warnings = [f"{len(problems):,} of the {noun} could not be used and were left out, e.g.: {problems[0]}"] \
            if problems else []
        if unlabelled:
            warnings.append(f"{unlabelled:,} of the {noun} have no label and were left out.")
        names, targets = class_index(labels[keep], columns["label"])
        return TaskData({self.role: files[keep].tolist()}, targets, columns, names, rows_total=total,
                        rows_dropped=total - int(keep.sum()), warnings=warnings)

    def describe(self, data: TaskData) -> str:
        return (f"{len(data):,} {self.modality.noun} kept, {data.rows_dropped:,} dropped · "
                f"{len(data.label_names)} classes")
