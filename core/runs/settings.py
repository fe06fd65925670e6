"""A setting's declaration, carried once by its TrainConfig field (``setting(...)``): its valid values, its control
in the Train tab, its label and help in English and Chinese, its default search range. Validation, the Train tab,
the search space, the API and the CLI's flags all read it (as scikit-learn's declared parameter constraints)."""
from __future__ import annotations

import argparse
import math
from dataclasses import Field, dataclass, field, fields

SECTIONS = ("basic", "advanced", "lora")  # the Train tab: always shown; under Advanced; in Advanced's LoRA part
WIDGETS = ("slider", "number", "checkbox", "radio", "dropdown", "text")
SEARCH_KINDS = ("log", "float", "int", "choice")


@dataclass(frozen=True)
class Setting:
    """One TrainConfig field's declaration."""

    label: tuple[str, str]  # English, Chinese
    info: tuple[str, str]  # one line of help each
    low: float | None = None  # valid: low <= value (low < value when low_open); None: no lower bound
    high: float | None = None  # valid: value <= high (value < high when high_open)
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()  # the valid values, if only some are
    choice_labels: tuple[tuple[str, str], ...] = ()  # English, Chinese per choice (else the choices themselves)
    widget: str = ""  # one of WIDGETS; "": the page builds its control itself (the task, the base model)
    step: float | None = None  # of a slider or a number box
    log: bool = False  # the control moves in powers of ten (it shows log10 of the value)
    section: str = "advanced"  # one of SECTIONS
    row: str = ""  # the Train tab puts a section's settings of one row name side by side
    placeholder: str = ""  # a text box's hint
    search: str = ""  # searchable as one of SEARCH_KINDS ("": not searchable)
    search_range: tuple = ()  # (low, high), or the choices, a search takes when given none
    speed: bool = False  # changes how fast or how long a run trains: the Train tab estimates the time again
    task: str = ""  # read only by this task (a core.tasks name)

    def problem(self, name: str, value) -> str | None:
        """Why ``value`` is not valid for the setting ``name``, as the end of a sentence; None when it is."""
        shown = name.replace("_", " ")
        if self.choices:
            listed = ", ".join(map(str, self.choices))
            return None if value in self.choices else f"{shown} must be one of {listed} (got {value!r:.40})"
        if self.low is None and self.high is None:
            return None
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if below or above or (isinstance(value, float) and math.isnan(value)):
            return f"{shown} must be {self.range_text()} (got {value})"
        return None

    def range_text(self) -> str:
        """The valid range in words, e.g. 'between 1 and 4096' or 'above 0 and at most 10'."""
        low, high = (_number(b) for b in (self.low, self.high))
        if self.low is not None and self.high is not None and not (self.low_open or self.high_open):
            return f"between {low} and {high}"
        parts = [f"{'above' if self.low_open else 'at least'} {low}" if self.low is not None else "",
                 f"{'below' if self.high_open else 'at most'} {high}" if self.high is not None else ""]
        return " and ".join(p for p in parts if p)


def _number(bound: float | None) -> str:
    return str(int(bound)) if bound is not None and float(bound).is_integer() else str(bound)


def setting(default, label: tuple[str, str], info: tuple[str, str], **declared) -> Field:
    """A dataclass field with its default and its declaration (the keyword arguments are Setting's)."""
    return field(default=default, metadata={"setting": Setting(label, info, **declared)})


def declarations(config_class) -> dict[str, Setting]:
    """Every field's declaration, by name, in the fields' order; a field declared without ``setting`` is a KeyError."""
    return {f.name: f.metadata["setting"] for f in fields(config_class)}


def add_flags(parser: argparse.ArgumentParser, config_class) -> None:
    """A ``--flag`` per declared field (``--learning-rate``; a switch also has ``--no-…``), with its help, range and
    choices; a task's own settings in a group of their own. A flag not given stays None (see settings_from_args)."""
    groups = {}  # task -> its argument group
    defaults = {f.name: f.default for f in fields(config_class)}
    for name, declared in declarations(config_class).items():
        if declared.task and declared.task not in groups:
            groups[declared.task] = parser.add_argument_group(f"{declared.task} task only")
        where = groups[declared.task] if declared.task else parser
        flag, default = f"--{name.replace('_', '-')}", defaults[name]
        limits = f"; {declared.range_text()}" if declared.low is not None or declared.high is not None else ""
        shown = f"{declared.info[0]} (default: {default!r}{limits})".replace("%", "%%")
        if isinstance(default, bool):
            where.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=shown)
        else:
            where.add_argument(flag, dest=name, type=type(default), choices=declared.choices or None,
                               default=None, help=shown)


def settings_from_args(args: argparse.Namespace, config_class) -> dict:
    """The declared fields given as flags (``add_flags``), by name: what ``TrainConfig.from_dict`` takes."""
    return {f.name: getattr(args, f.name) for f in fields(config_class) if getattr(args, f.name, None) is not None}
