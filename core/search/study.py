"""Hyperparameter search on Optuna: each trial is a normal run; the engine's own evaluations feed the pruner.

A study lives in Optuna storage (by default a SQLite file in the runs folder), so several processes or machines
can work on one study: each joins with the study's name and storage, reads the data and settings the study
recorded, and trains one trial at a time. A worker that dies leaves its trial failed (Optuna's heartbeat) and
the others go on.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import optuna

from ..common.errors import ConfigError, StudioError
from ..runs import events as ev
from ..runs.config import TrainConfig
from ..runs.store import RunStore
from ..tasks import get_task
from ..train import service
from ..train.callbacks import Evaluated, LoopState, TrainerCallback, TrainerControl
from ..train.few_shot import few_shot_mode
from ..train.schedule import Schedule, expected_train_rows, plan_schedule
from .space import PARAMS, SearchSettings

optuna.logging.set_verbosity(logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # the heartbeat is "experimental"

# A running trial's worker writes a heartbeat every HEARTBEAT_S; a trial not heard from for GRACE_S is marked failed
# by the next worker that starts a trial (environment variables override both, e.g. for a quick test).
HEARTBEAT_S = int(os.environ.get("SFT_STUDIO_SEARCH_HEARTBEAT_S", "10"))
GRACE_S = int(os.environ.get("SFT_STUDIO_SEARCH_GRACE_S", "30"))


def open_storage(url: str | None, runs: Path):
    """Optuna storage: a journal file for *.log / *.jsonl paths, else an SQLAlchemy URL (default: SQLite in the
    runs folder), with a heartbeat so a dead worker's trial is marked failed."""
    if url and not url.startswith(("sqlite:", "postgresql", "mysql")) and url.endswith((".log", ".jsonl")):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(Path(url).expanduser().resolve())))
    if not url:
        runs.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{runs / 'search.db'}"
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else None
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S,
                                          grace_period=GRACE_S)
    except Exception as exc:  # SQLAlchemy raises many kinds for a bad URL or an unreachable database
        raise ConfigError(f"Cannot open the search storage '{url}': {str(exc).splitlines()[0][:200]}") from exc


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":  # a trial below the median of the others at the same step, after 2 trials and 1 evaluation
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


class PruneTrial(TrainerCallback):
    """Feeds each evaluation's primary metric to Optuna and stops the run when the pruner says so."""

    def __init__(self, trial: optuna.Trial):
        self.trial = trial
        self.pruned_at: int | None = None

    def on_evaluate(self, state: LoopState, control: TrainerControl, evaluated: Evaluated) -> None:
        value = evaluated.value
        if not math.isfinite(value):
            return
        self.trial.report(value, evaluated.step)
        if self.trial.should_prune():
            self.pruned_at = evaluated.step
            control.stop(f"Pruned by the search at step {evaluated.step}: {evaluated.primary} {value:.4f} is behind "
                         "the other trials")


@dataclass
class TrialResult:
    """One finished trial, as the trials table shows it."""

    number: int
    state: str  # complete / pruned / fail / running
    params: dict
    value: float | None
    seconds: float | None
    run_id: str | None
    pruned_at: int | None = None
    message: str = ""


@dataclass
class Study:
    """A study's data, settings and search space, as recorded in the storage for every worker."""

    name: str
    data: str  # the table's absolute path (the same on every machine)
    columns: dict
    settings: dict  # the base run's TrainConfig fields as given
    search: SearchSettings
    task: str
    metric: str
    greater_is_better: bool

    def record(self, study: optuna.Study) -> None:
        study.set_user_attr("sft_studio", {**asdict(self), "search": {**asdict(self.search),
                                                                       "space": {k: list(v) for k, v in self.search.space.items()}}})

    @classmethod
    def recorded(cls, study: optuna.Study) -> "Study":
        attrs = dict(study.user_attrs.get("sft_studio") or {})
        if not attrs:
            raise ConfigError(f"The study '{study.study_name}' was not made by SFT Studio.")
        search = attrs.pop("search")
        search["space"] = {k: tuple(v) for k, v in search["space"].items()}
        return cls(**attrs, search=SearchSettings(**search))


def create_study(data: str | Path, settings: dict, columns: dict, search: SearchSettings, runs: Path,
                 text_column: str | None = None, label_column: str | None = None) -> tuple[Study, optuna.Study]:
    """Check the data and the search, then create the study in its storage (or refuse with a message)."""
    plan = service.plan_run(data, settings, columns, text_column=text_column, label_column=label_column)
    if (mode := few_shot_mode(plan.config, plan.data)).on:
        raise ConfigError(f"This table trains in the few-shot mode ({mode.reason.split(':')[0]}), whose schedule is "
                          "fixed: every trial would be the same run. Set Few-shot mode to off to search the plain "
                          "fine-tune's settings.")
    task = get_task(plan.config.task)
    search = search.checked(tuple(task.modality.search_models(task, plan.data)))
    schedule = plan_schedule(plan.config, expected_train_rows(plan.config, len(plan.data)))
    check_budget(schedule, search)
    name = search.study or f"{plan.data_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    given = {**settings, "task": plan.config.task, "base_model": plan.config.base_model,
             "eval_every_steps": schedule.eval_every}  # the same in every trial: the pruner compares equal steps
    record = Study(name, str(Path(data).expanduser().resolve()), plan.data.columns, given, replace(search, study=name),
                   plan.config.task, task.primary_metric, task.greater_is_better)
    storage = open_storage(search.storage, runs)
    try:
        study = optuna.create_study(storage=storage, study_name=name, load_if_exists=False,
                                    direction="maximize" if task.greater_is_better else "minimize",
                                    sampler=optuna.samplers.TPESampler(seed=search.seed), pruner=make_pruner(search.pruner))
    except optuna.exceptions.DuplicatedStudyError:
        raise ConfigError(f"A study called '{name}' already exists there; join it with --worker or pick a new name.")
    record.record(study)
    if (start := starting_point(plan.config, schedule, search.space)):
        study.enqueue_trial(start)  # trial 0 is the user's own settings: the best is never worse than them
    return record, study


def starting_point(config: TrainConfig, schedule: Schedule, space: dict[str, tuple]) -> dict | None:
    """The run's own settings as a trial, if every searched one lies in its range (derived epochs count as the
    epochs they come to)."""
    values = {**asdict(config), "epochs": schedule.epochs}
    point = {}
    for name, bounds in space.items():
        value = values[name]
        inside = value in bounds if PARAMS[name].kind == "choice" else bounds[0] <= value <= bounds[1]
        if not inside:
            return None
        point[name] = int(value) if PARAMS[name].kind == "int" else value
    return point


def load_study(name: str, storage: str | None, runs: Path) -> tuple[Study, optuna.Study]:
    """An existing study, to continue it or join it from another process or machine."""
    backend = open_storage(storage, runs)
    try:
        probe = optuna.load_study(study_name=name, storage=backend)
    except KeyError:
        raise ConfigError(f"There is no study called '{name}' in that storage.")
    record = Study.recorded(probe)
    study = optuna.load_study(study_name=name, storage=backend,
                              sampler=optuna.samplers.TPESampler(seed=record.search.seed),
                              pruner=make_pruner(record.search.pruner))
    return record, study


def check_budget(schedule: Schedule, search: SearchSettings) -> None:
    """Refuse a time budget that cannot hold one trial, judged by the default run's steps at a generous speed."""
    if search.timeout_s is None:
        return
    steps = schedule.total_steps
    if search.timeout_s < max(10.0, steps * 0.02):
        raise ConfigError(f"A time budget of {search.timeout_s:.0f} s cannot hold one trial ({steps} optimizer "
                          "steps); give it more time or search without a budget.")


def trial_settings(record: Study, trial: optuna.Trial) -> dict:
    """The trial's settings: the study's base settings with the trial's suggestions."""
    return {**record.settings, **{name: PARAMS[name].suggest(trial, bounds)
                                  for name, bounds in record.search.space.items()}}


def run_trial(record: Study, trial: optuna.Trial, store: RunStore, submit=None, owner: str | None = None) -> float:
    """Train one trial as a normal run (through ``submit`` when given, e.g. the app's job queue) and return its
    primary metric; a pruned trial raises TrialPruned, a failed one a StudioError."""
    plan = service.plan_run(record.data, trial_settings(record, trial), record.columns,
                            data_name=f"{record.name}-t{trial.number}")
    pruner = PruneTrial(trial)
    job = service.make_job(plan, store, owner, callbacks=[pruner], tags={"study": record.name, "trial": trial.number})
    started = time.time()
    outcome = submit(job) if submit else service.train_job(job)
    trial.set_user_attr("seconds", round(time.time() - started, 1))
    if job.run_dir:
        trial.set_user_attr("run_id", job.run_dir.name)
    if isinstance(outcome, ev.Failed):
        trial.set_user_attr("message", outcome.message)
        raise StudioError(outcome.message)
    if isinstance(outcome, ev.Cancelled):
        raise SearchStopped()
    value = outcome.metrics.get(record.metric)
    if pruner.pruned_at is not None:
        trial.set_user_attr("pruned_at", pruner.pruned_at)
        raise optuna.TrialPruned()
    if value is None or not math.isfinite(value):
        raise StudioError(f"The trial's run has no {record.metric}.")
    return float(value)


class SearchStopped(Exception):
    """The user stopped the search (Stop in the app, Ctrl-C in the CLI)."""


def optimize(record: Study, study: optuna.Study, store: RunStore, on_trial: Callable[[TrialResult], None] = None,
             submit=None, stop: Callable[[], bool] = lambda: False, owner: str | None = None) -> None:
    """Work on the study until it has ``trials`` finished (complete or pruned) trials, the time budget runs out
    or ``stop()`` says so. Several workers may run this on one study at once."""
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

    def objective(trial: optuna.Trial) -> float:
        return run_trial(record, trial, store, submit, owner)

    def after_trial(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        if on_trial:
            on_trial(trial_result(frozen))
        if len(study.get_trials(deepcopy=False, states=finished)) >= record.search.trials or stop():
            study.stop()

    if len(study.get_trials(deepcopy=False, states=finished)) >= record.search.trials:
        return
    try:
        study.optimize(objective, timeout=record.search.timeout_s, callbacks=[after_trial],
                       catch=(StudioError,), gc_after_trial=True)
    except SearchStopped:
        pass
    optuna.storages.fail_stale_trials(study)  # a dead worker's trial, if its grace period is over


def trial_result(trial: optuna.trial.FrozenTrial) -> TrialResult:
    attrs = trial.user_attrs
    return TrialResult(trial.number, trial.state.name.lower(), dict(trial.params), trial.value, attrs.get("seconds"),
                       attrs.get("run_id"), attrs.get("pruned_at"), attrs.get("message", ""))


def results(study: optuna.Study) -> list[TrialResult]:
    return [trial_result(t) for t in study.get_trials(deepcopy=False)]


def best(study: optuna.Study) -> TrialResult | None:
    """The best complete trial, or None before one completed."""
    try:
        return trial_result(study.best_trial)
    except ValueError:
        return None


class SearchRun:
    """A study worked on in a background thread of the app; its trials wait in the job queue like any run."""

    def __init__(self, record: Study, study: optuna.Study, store: RunStore, queue, owner: str | None = None):
        self.record, self.study, self.store, self.queue, self.owner = record, study, store, queue, owner
        self.current_job: str | None = None  # the queue's id of the trial training now
        self.done = False
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="sft-search", daemon=True)

    def start(self) -> "SearchRun":
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        """End the study after the running trial, which is stopped too (its best model so far is kept)."""
        self._stop.set()
        if self.current_job:
            self.queue.cancel(self.current_job)

    def _submit(self, job) -> ev.Event:
        self.current_job = self.queue.submit(job)
        if self._stop.is_set():
            self.queue.cancel(self.current_job)
        return service.wait_for_outcome(job)

    def _work(self) -> None:
        try:
            optimize(self.record, self.study, self.store, submit=self._submit, stop=self._stop.is_set,
                     owner=self.owner)
        except StudioError as exc:
            self.error = exc.message
        except Exception as exc:  # the study's storage failed: the page shows it, the finished trials stay
            self.error = f"The search stopped: {type(exc).__name__}: {exc}"
        finally:
            self.done = True
