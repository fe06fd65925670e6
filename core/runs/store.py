"""Run folders on disk: create, list, mark status, delete, export as zip."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import ModelError
from .config import DEFAULT_TASK
from .run_folder import INTERRUPTED, RUNNING, RunFolder


def default_runs_dir() -> Path:
    return Path(os.environ.get("SFT_STUDIO_RUNS", "runs"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return True


@dataclass
class RunInfo:
    """What the runs table shows about one run."""

    run_id: str
    path: Path
    status: str
    created: float
    base_model: str
    data_name: str
    label_names: list[str]
    metrics: dict
    owner: str | None = None
    shared: bool = False
    task: str = DEFAULT_TASK
    study: str | None = None  # the search study this run is a trial of
    trial: int | None = None
    learning_curve_of: str | None = None  # the run whose learning curve this run is a point of

    def visible_to(self, viewer: str | None) -> bool:
        """Runs without an owner (CLI, API) or marked shared are visible to everyone."""
        return viewer is None or self.owner is None or self.shared or self.owner == viewer

    @property
    def has_model(self) -> bool:
        return RunFolder(self.path).has_model


class RunStore:
    """All runs live as folders under one root directory."""

    def __init__(self, root: str | Path | None = None):
        self.root = (Path(root) if root else default_runs_dir()).expanduser().resolve()  # absolute once, here:
        # worker processes, exports and the server run in other folders

    def create(self, hint: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", hint).strip("-")[:40] or "run"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            path = self.root / (f"{stamp}-{slug}" + (f"-{n}" if n else ""))
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
        raise ModelError("Could not create a new run folder.")

    def path_of(self, run_id: str, viewer: str | None = None) -> Path:
        """The folder of a run, if it exists and ``viewer`` may see it (None: any run)."""
        path = (self.root / run_id).resolve()
        if path.parent != self.root.resolve() or not path.is_dir() or not self.info(path).visible_to(viewer):
            raise ModelError(f"There is no run called '{run_id}'.")
        return path

    def info(self, run_dir: Path) -> RunInfo:
        run_dir = Path(run_dir)
        folder = RunFolder(run_dir)
        status = folder.status()
        state = status.get("status", INTERRUPTED)
        if state == RUNNING and not _pid_alive(int(status.get("pid", -1))):
            state = INTERRUPTED
        config, data = folder.config_dict(), folder.data()
        return RunInfo(
            run_id=run_dir.name, path=run_dir, status=state,
            created=float(status.get("created", run_dir.stat().st_mtime)),
            base_model=config.get("base_model", "?"), data_name=data.get("name", ""),
            label_names=data.get("label_names", []),
            metrics=folder.metrics(),
            owner=status.get("owner"), shared=bool(status.get("shared")),
            task=config.get("task", DEFAULT_TASK), study=status.get("study"), trial=status.get("trial"),
            learning_curve_of=status.get("learning_curve"),
        )

    def list(self, viewer: str | None = None) -> list[RunInfo]:
        """Runs visible to ``viewer`` (None: all), newest first."""
        if not self.root.is_dir():
            return []
        runs = [self.info(p) for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted((r for r in runs if r.visible_to(viewer)), key=lambda r: r.created, reverse=True)

    def set_shared(self, run_id: str, shared: bool, viewer: str | None = None) -> None:
        path = self.path_of(run_id, viewer)
        info = self.info(path)
        if viewer is not None and info.owner not in (None, viewer):
            raise ModelError("Only the owner of a run can change its sharing.")
        RunFolder(path).update_status(shared=shared)

    def delete(self, run_id: str, viewer: str | None = None) -> None:
        shutil.rmtree(self.path_of(run_id, viewer))

    def export_zip(self, run_id: str, out_dir: str | Path | None = None, viewer: str | None = None) -> Path:
        """Zip a run folder (weights, tokenizer, config, metrics) and return the zip path."""
        path = self.path_of(run_id, viewer)
        out_dir = Path(out_dir or tempfile.mkdtemp(prefix="sft-export-"))
        return Path(shutil.make_archive(str(out_dir / run_id), "zip", root_dir=path))
