"""What a search may tune: the settings declared searchable (core.runs.config), their kinds and default ranges, and a
study's settings."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import optuna

from ..common.errors import ConfigError
from ..runs.config import SETTINGS, TrainConfig


@dataclass(frozen=True)
class Param:
    """One setting the search can tune: its kind of range and the range it gets when none is given."""

    name: str  # a TrainConfig field
    kind: str  # "log" (float, log scale), "float", "int" or "choice"
    default: tuple

    def check(self, bounds: tuple) -> tuple:
        """The bounds as this parameter's values, or a ConfigError that says what is wrong."""
        shown = self.name.replace("_", " ")
        if self.kind == "choice":
            if not bounds:
                raise ConfigError(f"Search range of {shown}: give at least one choice.")
            values = tuple(getattr(TrainConfig.from_dict({self.name: value}), self.name) for value in bounds)
        else:
            if len(bounds) != 2:
                raise ConfigError(f"Search range of {shown}: give a low and a high value.")
            low, high = values = tuple(int(b) if self.kind == "int" else float(b) for b in bounds)
            if low > high:
                raise ConfigError(f"Search range of {shown}: the low value {low} is above the high value {high}.")
            if self.kind == "log" and low <= 0:
                raise ConfigError(f"Search range of {shown}: a log range must start above 0.")
        for value in values:  # every value a trial may take is a valid setting
            if (problem := SETTINGS[self.name].problem(self.name, value)):
                raise ConfigError(f"Search range of {shown}: {problem}.")
        return values

    def suggest(self, trial: optuna.Trial, bounds: tuple):
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(bounds))
        if self.kind == "int":
            return trial.suggest_int(self.name, bounds[0], bounds[1])
        return trial.suggest_float(self.name, bounds[0], bounds[1], log=self.kind == "log")


PARAMS: dict[str, Param] = {name: Param(name, declared.search, declared.search_range)
                             for name, declared in SETTINGS.items() if declared.search}  # base_model: from the table
DEFAULT_SEARCH = ("learning_rate", "epochs")
PRUNERS = ("median", "halving", "none")


@dataclass
class SearchSettings:
    """What to search and for how long. ``space`` maps a parameter name to its range (low, high) or choices;
    an empty tuple takes the parameter's default range."""

    space: dict[str, tuple] = field(default_factory=lambda: {name: () for name in DEFAULT_SEARCH})
    trials: int = 10  # trials to finish (complete or pruned) in the study, across every worker
    timeout_s: float | None = None  # this worker stops starting trials after this long
    seed: int = 42
    pruner: str = "median"
    study: str | None = None  # a new study's name is made from the data and the time
    storage: str | None = None  # SQLAlchemy URL, or a journal file (*.log / *.jsonl); default: SQLite in the runs

    def checked(self, models: tuple[str, ...] = ()) -> "SearchSettings":
        """The settings with every range filled in and checked; bad ones raise a ConfigError with a message."""
        if not self.space:
            raise ConfigError("Choose at least one setting to search.")
        unknown = set(self.space) - set(PARAMS)
        if unknown:
            raise ConfigError(f"These settings cannot be searched: {', '.join(sorted(unknown))}. "
                              f"Searchable: {', '.join(PARAMS)}.")
        if self.trials < 1:
            raise ConfigError("A search needs at least one trial.")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError("The time budget must be above 0.")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"Pruner must be one of {', '.join(PRUNERS)}.")
        space = {}
        for name, bounds in self.space.items():
            default = models if name == "base_model" else PARAMS[name].default
            space[name] = PARAMS[name].check(tuple(bounds) or default)
        return replace(self, space=space)


def parse_space(text: str, ranges: list[str] = ()) -> dict[str, tuple]:
    """``lr,epochs`` plus ``--range name=low:high`` (or ``name=a|b|c`` for choices) as a search space."""
    aliases = {"lr": "learning_rate", "dropout": "hidden_dropout", "warmup": "warmup_ratio", "model": "base_model",
               "layers": "keep_layers", "rank": "lora_rank"}
    space = {aliases.get(n.strip(), n.strip()): () for n in text.split(",") if n.strip()}
    for item in ranges:
        name, _, values = item.partition("=")
        name = aliases.get(name.strip(), name.strip())
        if not values:
            raise ConfigError(f"--range takes NAME=LOW:HIGH or NAME=A|B|C (got '{item}').")
        choices = "|" in values or name not in PARAMS or PARAMS[name].kind == "choice"
        space[name] = tuple(v.strip() for v in values.split("|" if choices else ":"))
    return space


def shown_params(params: dict) -> str:
    """A trial's settings in one line, e.g. 'learning_rate=3.2e-04 epochs=5'."""
    return " ".join(f"{k}={v:.2e}" if isinstance(v, float) and PARAMS[k].kind == "log" else
                    f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
