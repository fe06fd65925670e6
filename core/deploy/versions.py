"""Model versions: a served name's numbered versions (each one a run folder) and its aliases (``production``,
``candidate`` or any other name), kept in ``versions.db`` in the runs folder or any SQLAlchemy database.

We chose this over MLflow's model registry: it needs no tracking server, works offline, and sits beside the
request log in the same kind of database (core.deploy.monitoring.log).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ..common.errors import DataError
from ..runs.config import TrainConfig
from ..runs.run_folder import RunFolder
from ..runs.store import RunStore
from ..runs.weights import weights_file
from ..tasks import get_task
from .monitoring.log import database_url, open_database

VERSIONS_DB = "versions.db"  # in the runs folder, unless another database is given
PRODUCTION = "production"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # names and aliases; no ':' (labels are name:version)

metadata = sa.MetaData()
VERSIONS = sa.Table(
    "versions", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("run", sa.Text),  # the run folder's absolute path
    sa.Column("task", sa.String(64)),
    sa.Column("inputs", sa.Text),  # the input roles, comma-separated
    sa.Column("created", sa.Float),
)
ALIASES = sa.Table(
    "aliases", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer),
)


@dataclass(frozen=True)
class Signature:
    """What a run serves: its task and the inputs each request gives."""

    task: str
    inputs: tuple[str, ...]

    @classmethod
    def of(cls, run: str | Path) -> Signature:
        """The signature of a run (or export) folder; refuses a folder without a saved model."""
        run = Path(run)
        if not run.is_dir():
            raise DataError(f"There is no run folder at {run}.")
        weights_file(run)  # ModelError: the run has no saved model
        config = run / RunFolder.CONFIG
        task = get_task(TrainConfig.load(config).task if config.is_file() else TrainConfig().task)
        return cls(task.name, tuple(task.view.predict_inputs))

    def __str__(self) -> str:
        return f"{self.task} on {', '.join(self.inputs)}"

    def refuse_other(self, other: Signature, what: str) -> None:
        """DataError unless ``other`` serves the same task with the same inputs as this one."""
        if other != self:
            raise DataError(f"{what} is {other}, but this model is {self}: serve it under another name.")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    run: Path
    signature: Signature
    created: float
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How answers name it: ``name:version``."""
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "label": self.label, "run": str(self.run),
                "task": self.signature.task, "inputs": list(self.signature.inputs), "created": self.created,
                "aliases": list(self.aliases)}


def checked_name(name: str, what: str = "name") -> str:
    if not NAME.fullmatch(name or ""):
        raise DataError(f"The {what} '{name}' is not usable: give 1 to 64 letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit.")
    return name


def row_signature(row) -> Signature:
    return Signature(row.task, tuple(row.inputs.split(",")))


class Registry:
    """Served names -> numbered versions and aliases, in ``versions.db`` of the runs folder (or ``database``)."""

    def __init__(self, runs: str | Path | None = None, database: str | None = None):
        self.url = database_url(database or RunStore(runs).root / VERSIONS_DB)
        self.engine = open_database(self.url, metadata)

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(VERSIONS.c.name).distinct().order_by(VERSIONS.c.name)))

    def versions(self, name: str) -> list[ModelVersion]:
        """The name's versions, oldest first; DataError for a name without any."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(VERSIONS).where(VERSIONS.c.name == name).order_by(VERSIONS.c.version)).all()
            aliases = conn.execute(sa.select(ALIASES.c.alias, ALIASES.c.version).where(ALIASES.c.name == name)).all()
        if not rows:
            known = ", ".join(self.names()) or "none yet"
            raise DataError(f"There is no model called '{name}' (known: {known}). "
                            f"Add a version with `python -m core versions --model {name} --add RUN`.")
        return [ModelVersion(r.name, r.version, Path(r.run), row_signature(r), r.created,
                             tuple(sorted(a.alias for a in aliases if a.version == r.version))) for r in rows]

    def get(self, name: str, ref: int | str | None = None) -> ModelVersion:
        """A version by number (``3`` or ``"3"``) or alias (``"production"``); None: production if set, else the newest."""
        found = self.versions(name)
        ref = PRODUCTION if ref is None and any(PRODUCTION in v.aliases for v in found) else ref
        if ref is None:
            return found[-1]
        if isinstance(ref, int) or str(ref).isdigit():
            match = [v for v in found if v.version == int(ref)]
            if not match:
                raise DataError(f"'{name}' has no version {ref} (it has {found[0].version} to {found[-1].version}).")
            return match[0]
        match = [v for v in found if ref in v.aliases]
        if not match:
            aliases = sorted({a for v in found for a in v.aliases})
            raise DataError(f"'{name}' has no alias '{ref}' (aliases: {', '.join(aliases) or 'none yet'}).")
        return match[0]

    def add(self, name: str, run: str | Path) -> ModelVersion:
        """Register ``run`` as the name's next version (or return its version if it is one already). Refuses a run
        without a model, and one of another task or other inputs than the name's versions."""
        run, name = Path(run).resolve(), checked_name(name)
        signature = Signature.of(run)
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(VERSIONS).where(VERSIONS.c.name == name)).all()
            number = next((r.version for r in rows if Path(r.run) == run), None)
            if number is None:
                if rows:
                    row_signature(rows[0]).refuse_other(signature, f"The run '{run.name}'")
                number = max((r.version for r in rows), default=0) + 1
                conn.execute(VERSIONS.insert(), {"name": name, "version": number, "run": str(run),
                                                 "task": signature.task, "inputs": ",".join(signature.inputs),
                                                 "created": time.time()})
        return self.get(name, number)

    def set_alias(self, name: str, alias: str, ref: int | str) -> ModelVersion:
        """Point ``alias`` of ``name`` at a version (by number or another alias); returns that version."""
        if checked_name(alias, "alias").isdigit():
            raise DataError(f"The alias '{alias}' is a number, which would read as a version: add a letter.")
        version = self.get(name, ref)
        with self.engine.begin() as conn:
            conn.execute(ALIASES.delete().where((ALIASES.c.name == name) & (ALIASES.c.alias == alias)))
            conn.execute(ALIASES.insert(), {"name": name, "alias": alias, "version": version.version})
        return self.get(name, version.version)


@dataclass(frozen=True)
class NamedModel:
    """A model served by name: promotions add versions to ``registry`` and move the name's production alias."""

    registry: Registry
    name: str
