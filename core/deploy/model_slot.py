"""Hot swap of a served model: the ``ModelSlot`` holds what answers requests now, and ``POST /v1/promote`` loads
and warms another run beside it (off the event loop), then switches at once. Requests queued from then on go to
the new model; the old micro-batcher answers what it had queued already, then stops."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pydantic import BaseModel, Field

from ..common.errors import DataError, ModelError, StudioError
from ..tasks.types import Prediction
from .batching import MicroBatcher
from .predict import Predictor
from .versions import PRODUCTION, NamedModel, Signature

if TYPE_CHECKING:
    from .monitoring.monitor import Monitor

BUSY = "busy"  # the error code of a promotion refused because another one is under way
RETIRED_KEPT = 4  # earlier models whose logs still take feedback on their predictions


@dataclass(frozen=True)
class Served:
    """One loaded model with its micro-batcher, its monitor (or the reason there is none) and the label answers
    carry (``name:version``, or the run folder's name)."""

    predictor: Predictor
    batcher: MicroBatcher
    monitor: Monitor | None
    monitor_off: str
    label: str

    @property
    def signature(self) -> Signature:
        return Signature(self.predictor.task.name, tuple(self.predictor.inputs))


Load = Callable[[Path, str], Served]  # (run folder, label) -> a loaded, warmed model


def warm(predictor: Predictor) -> None:
    """One prediction before the first request, so the switch does not make a client wait for lazy set-up."""
    if predictor.task.modality.monitored:  # text inputs: any text will do
        predictor.predict({role: ["warm-up"] for role in predictor.inputs})


class ModelSlot:
    """The served model, swapped atomically by ``promote``; ``named`` when served by name (core.deploy.versions)."""

    def __init__(self, current: Served, load: Load, named: NamedModel | None = None):
        self.current, self._load, self.named = current, load, named
        self.retired: list[Served] = []  # the models served before, newest first (feedback may still name theirs)
        self._promoting = False

    def monitor_for(self, prediction_id: str) -> Monitor | None:
        """The monitor whose log holds the prediction (one made before a promotion keeps its feedback in its own
        model's log), else the current one (a prediction too new to be written yet)."""
        from .monitoring.log import logged

        for served in (self.current, *self.retired):
            if served.monitor is not None and logged(served.monitor.log.engine, prediction_id):
                return served.monitor
        return self.current.monitor

    async def predict(self, rows: dict[str, list[str]]) -> tuple[Served, list[Prediction]]:
        """The predictions of the model current when the rows were queued, and that model."""
        served = self.current
        return served, await served.batcher.submit(rows)

    async def promote(self, run: str | None = None, version: int | None = None) -> dict:
        """Serve the run folder ``run``, or version ``version`` of the served name; the old model keeps serving if
        the new one is refused or cannot be loaded (StudioError)."""
        if (run is None) == (version is None):
            raise DataError('Send {"run": "RUN FOLDER"} or {"version": N}.')
        if self._promoting:
            raise StudioError("Another promotion is under way; try again when it ends.", BUSY)
        self._promoting = True
        try:
            new = await asyncio.to_thread(self._prepare, run, version)
            old, self.current = self.current, new
            self.retired = [old, *self.retired][:RETIRED_KEPT]
            await old.batcher.close()
        finally:
            self._promoting = False
        return {"model": new.label, "previous": old.label}

    def _prepare(self, run: str | None, version: int | None) -> Served:
        """Load and warm the new model (in a worker thread); when served by name, register it and make it production."""
        if version is not None and self.named is None:
            raise DataError("This server serves a run folder, not a named model: promote with {\"run\": ...}, or "
                            "start it with `python -m core serve --model NAME`.")
        folder = self.named.registry.get(self.named.name, version).run if version is not None else Path(run)
        self.current.signature.refuse_other(Signature.of(folder), f"The run '{folder.name}'")
        try:
            served = self._load(folder, folder.name)
        except StudioError:
            raise
        except Exception as exc:  # a damaged folder: the old model keeps serving
            raise ModelError(f"The run '{folder.name}' could not be loaded: {type(exc).__name__}: "
                             f"{(str(exc).splitlines() or [''])[0][:200]}") from exc
        if self.named is None:
            return served
        added = self.named.registry.add(self.named.name, folder)
        self.named.registry.set_alias(self.named.name, PRODUCTION, added.version)
        return replace(served, label=added.label)


class PromoteRequest(BaseModel):
    run: str | None = Field(None, description="a run folder to serve; added as the next version when served by name")
    version: int | None = Field(None, description="a version of the served name, e.g. to roll back")


def add_promote_route(app, slot: ModelSlot, error) -> None:
    """``POST /v1/promote``: 200 with the new and previous labels, 409 while another promotion runs, 422 if refused.
    ``app.state.monitor`` follows the current model (the feedback, drift and metrics routes read it)."""

    @app.post("/v1/promote")
    async def promote(body: PromoteRequest):
        try:
            answer = await slot.promote(body.run, body.version)
        except StudioError as exc:
            return error(409 if exc.code == BUSY else 422, exc.message)
        app.state.monitor = slot.current.monitor
        return answer
