"""A finished run as the base model ("train on from run …"): found by its id or folder, checked against the task,
and the runs a viewer may train on from. Its output layer is carried over by ``core.models.labels_carried``."""
from __future__ import annotations

import contextlib
from pathlib import Path

from ..common.errors import ConfigError, ModelError
from ..models.registry import REGISTRY, resolve_model_path
from ..runs.config import TrainConfig
from ..runs.run_folder import FINISHED, RunFolder
from ..runs.store import RunInfo, RunStore
from ..tasks import get_task


def base_model_path(name: str, store: RunStore) -> str:
    """A base-model setting as training reads it: a registered model or an existing folder as given, a run id as
    its folder (anything else is left for ``resolve_model_path`` to refuse in its own words)."""
    if name in REGISTRY or Path(name).expanduser().exists():
        return name
    with contextlib.suppress(ModelError):
        return str(store.path_of(name))
    return name


def check_base_model(config: TrainConfig) -> None:
    """Refuse a missing base-model folder, and a run of another task (unless the task builds on chat runs)."""
    if config.base_model in REGISTRY:
        return
    folder = RunFolder(resolve_model_path(config.base_model))
    trained = folder.config_dict().get("task")
    task = get_task(config.task)
    if trained and trained != config.task and not task.builds_on_chat_runs:
        raise ConfigError(f"The base model '{folder.path.name}' is a run of {get_task(trained).view.title}; "
                          f"{task.view.title} trains on from a run of the same task, or from a base model.")


def runs_to_train_on(store: RunStore, task: str, viewer: str | None) -> list[RunInfo]:
    """The viewer's finished runs of ``task`` with a model, newest first (none for a generative task: those build on
    chat runs their own way)."""
    if get_task(task).generative:
        return []
    return [run for run in store.list(viewer) if run.task == task and run.status == FINISHED and run.has_model]
