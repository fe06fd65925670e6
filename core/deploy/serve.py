"""A prediction server for one run or export: FastAPI, micro-batched, optional bearer token, size limits.

    python -m core serve --run RUN [--format onnx-int8] [--host 127.0.0.1] [--port 8000] [--token T]

POST /v1/predict {"inputs": ["a text", ...]} (pair tasks: [{"text_a": "...", "text_b": "..."}, ...]; image tasks:
base64-encoded image files) returns
{"predictions": [{"label": ..., "probabilities": {...}} | {"value": ...} | {"labels": [...]} | {"spans": [...]}]};
POST /v1/explain {"inputs": ["a text", ...]} (text classifiers, at most 16 texts) returns each prediction's words
with their weights (image classifiers: base64 images in, each saliency map out as a base64 grey PNG);
GET /healthz says what the model is; /docs has the OpenAPI page. Every answer names the model
(``"model": "name:version"``, or the run folder's name); POST /v1/promote {"run": ...} | {"version": N} swaps it
without dropping a request (core.deploy.model_slot). An assistant run is served OpenAI-compatible
instead (core.deploy.chat_server: POST /v1/chat/completions, GET /v1/models).

With the monitor on (the default), each prediction carries an ``id`` and is logged (core.deploy.monitoring);
POST /v1/feedback {"id": ..., "label": ...} records the true answer, GET /v1/monitor reports drift against the
validation rows and the score on feedback, GET /v1/review?size=40 lists the predictions most worth a person's
look (one-label classifiers served with --log-inputs), and GET /metrics gives the drift to Prometheus.
"""
from __future__ import annotations

import hmac
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pydantic import BaseModel, Field

from ..common.errors import StudioError
from ..data.modalities import TOO_LARGE
from ..runs.config import TrainConfig
from ..runs.run_folder import RunFolder
from ..tasks import get_task
from .batching import MicroBatcher, ServeLimits
from .explain import explain, explainable
from .model_slot import ModelSlot, Served, add_promote_route, warm
from .predict import Predictor
from .versions import NamedModel

EXPLAIN_MAX = 16  # texts per /v1/explain request (each costs STEPS forward and backward passes)


@dataclass(frozen=True)
class MonitorOptions:
    database: str | None = None  # SQLAlchemy URL or file; default: monitor.db beside the served model
    log_inputs: bool = False  # keep each input's text (needed to turn feedback into training rows)
    run_dir: Path | None = None  # the run whose validation rows are the reference (default: the served folder)
    max_rows: int = 100_000


def start_monitor(predictor: Predictor, folder: Path, options: MonitorOptions | None):
    """The served model's monitor, or the reason there is none (the server runs either way)."""
    if options is None:
        return None, "The monitor is off (started with --no-monitor)."
    modality = predictor.task.modality
    if not modality.monitored:
        return None, f"The monitor is off: it watches text inputs, and this model reads {modality.noun}."
    from .monitoring.monitor import Monitor

    try:
        return Monitor(predictor, folder, options.database, options.run_dir, options.log_inputs,
                       options.max_rows), ""
    except StudioError as exc:
        return None, f"The monitor is off: {exc.message}"
    except Exception as exc:  # e.g. a database that cannot be opened: predictions must still be served
        return None, f"The monitor is off: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"


class FeedbackRequest(BaseModel):
    id: str = Field(description="the id a prediction response carried")
    label: str | float | list[str] = Field(description="the true answer: a label, a score or a list of labels")


class PredictRequest(BaseModel):
    inputs: list[str | dict[str, str]] = Field(
        description="texts, or objects with one text per input role (pair tasks: text_a, text_b)",
        examples=[["A gorgeous, moving film."]])


def plain(prediction) -> dict:
    """A prediction as JSON: only the fields its task fills."""
    return {key: value for key, value in asdict(prediction).items() if value not in (None, [], {})}


def guarded_app(title: str, description: str, token: str | None, limits: ServeLimits, error, example: str):
    """A FastAPI app whose /v1/ routes need the token (if any), with size limits and 4xx messages from ``error``."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError

    app = FastAPI(title=title, version="1", description=description)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token and request.url.path.startswith("/v1/") and not hmac.compare_digest(
                request.headers.get("authorization", ""), f"Bearer {token}"):
            return error(401, "Send the server's token as 'Authorization: Bearer <token>'.")
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > limits.max_body_bytes:
            return error(413, f"The request is larger than {limits.max_body_bytes:,} bytes.")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        return error(422, f"Bad request body{f' at {where}' if where else ''}: {first.get('msg', 'invalid')}. "
                          f"Send JSON like {example}.")

    return app


def serves_assistant(folder: Path) -> bool:
    config = Path(folder) / RunFolder.CONFIG
    return config.is_file() and get_task(TrainConfig.load(config).task).generative


def create_chat_app(folder: str | Path, token: str | None = None, limits: ServeLimits = ServeLimits()):
    """An assistant run behind OpenAI-compatible routes (core.deploy.chat_server)."""
    from .chat_server import add_chat_routes, openai_error

    name = Path(folder).name
    app = guarded_app("SFT Studio chat server", f"The assistant {name}, OpenAI-compatible: POST /v1/chat/completions "
                      "(stream: true for server-sent events), GET /v1/models.", token, limits, openai_error,
                      '{"messages": [{"role": "user", "content": "Hello"}]}')

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "task": "assistant", "model": name}

    add_chat_routes(app, Path(folder), limits)
    return app


def create_app(folder: str | Path, token: str | None = None, limits: ServeLimits = ServeLimits(),
               monitor_options: MonitorOptions | None = MonitorOptions(), named: NamedModel | None = None,
               label: str | None = None):
    """The prediction server for ``folder``, answering as ``label`` (default: the folder's name); ``named``: served
    by name, so promotions add versions. An assistant run gets the OpenAI-compatible chat server instead."""
    from fastapi.responses import JSONResponse, Response

    if serves_assistant(Path(folder)):
        return create_chat_app(folder, token, limits)

    def load(run: Path, name: str, options: MonitorOptions | None) -> Served:
        predictor = Predictor(run)
        warm(predictor)
        return Served(predictor, MicroBatcher(predictor, limits), *start_monitor(predictor, run, options), name)

    slot = ModelSlot(load(Path(folder), label or Path(folder).name, monitor_options),
                     lambda run, name: load(run, name, monitor_options and replace(monitor_options, run_dir=run)), named)
    predictor, monitor_off = slot.current.predictor, slot.current.monitor_off
    inputs, modality = predictor.inputs, predictor.task.modality

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def unreadable_log(exc: Exception) -> JSONResponse:
        return error(503, f"Could not read the request log: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")

    app = guarded_app("SFT Studio prediction server",
                      f"{predictor.task.name} model from {Path(folder).name}; inputs: {', '.join(inputs)}.",
                      token, limits, error, '{"inputs": ["a text", ...]}')
    app.state.monitor = slot.current.monitor  # the current model's: promotions replace it
    add_promote_route(app, slot, error)

    @app.get("/healthz")
    def healthz() -> dict:
        served = slot.current
        return {"status": "ok", "task": served.predictor.task.name, "inputs": list(inputs),
                "labels": served.predictor.label_names, "model": served.label, "monitor": served.monitor_off or "on"}

    @app.post("/v1/predict")
    async def predict(body: PredictRequest):
        started = time.perf_counter()
        if not body.inputs:
            return error(422, "Send at least one input.")
        if len(body.inputs) > limits.max_inputs:
            return error(413, f"At most {limits.max_inputs} inputs per request (got {len(body.inputs)}).")
        rows: dict[str, list] = {role: [] for role in inputs}
        for n, item in enumerate(body.inputs):
            item = {inputs[0]: item} if isinstance(item, str) else item
            missing = [role for role in inputs if not isinstance(item.get(role), str)]
            if missing:
                return error(422, f"Input {n} lacks {', '.join(missing)}; this model reads {', '.join(inputs)}.")
            try:  # checked alone, so a bad input (e.g. an image that cannot be read) never fails a shared batch
                decoded = {role: modality.decode(item[role], limits.max_chars) for role in inputs}
            except StudioError as exc:
                return error(413 if exc.code == TOO_LARGE else 422, f"Input {n} is {exc.message}.")
            for role in inputs:
                rows[role].append(decoded[role])
        try:
            served, predictions = await slot.predict(rows)
        except StudioError as exc:  # e.g. an image that cannot be decoded
            return error(422, exc.message)
        responses = [plain(p) for p in predictions]
        if served.monitor:
            try:
                ids = served.monitor.record(rows, predictions, responses, (time.perf_counter() - started) * 1000)
                responses = [{**r, "id": i} for r, i in zip(responses, ids)]
            except Exception:  # the monitor never fails a prediction
                pass
        return {"predictions": responses, "model": served.label}

    @app.post("/v1/explain")
    def explain_inputs(body: PredictRequest):
        """Which words (integrated gradients) or which parts of an image (occlusion) moved each prediction
        (core.deploy.explain)."""
        served = slot.current
        if (why := explainable(served.predictor)) is not None:
            return error(422, why)
        if not body.inputs or len(body.inputs) > EXPLAIN_MAX:
            return error(413 if body.inputs else 422, f"Send 1 to {EXPLAIN_MAX} inputs to explain.")
        texts = []
        for n, item in enumerate(body.inputs):
            try:
                texts.append(modality.decode(item, limits.max_chars))
            except StudioError as exc:
                return error(413 if exc.code == TOO_LARGE else 422, f"Input {n} is {exc.message}.")
        return {"explanations": [e.to_dict() for e in explain(served.predictor, texts)], "model": served.label}

    @app.post("/v1/feedback", status_code=202)
    def feedback(body: FeedbackRequest):
        if not (monitor := slot.monitor_for(body.id)):
            return error(503, monitor_off)
        try:
            monitor.feedback(body.id, body.label)
        except StudioError as exc:
            return error(422, exc.message)
        return {"accepted": body.id}

    @app.get("/v1/monitor")
    def monitor_report(last: int = 500, since_s: float | None = None):
        if not (monitor := app.state.monitor):
            return error(503, monitor_off)
        try:
            return monitor.report(max(1, last), time.time() - since_s if since_s else None)
        except Exception as exc:  # the database may be locked or gone
            return unreadable_log(exc)

    @app.get("/v1/review")
    def review(size: int = 40):
        """The predictions most worth a person's look, and the accuracy on answered ones (monitoring.review)."""
        from .monitoring.review import review_queue

        if not (monitor := app.state.monitor):
            return error(503, monitor_off)
        try:
            return review_queue(monitor.view(), min(max(1, size), 500)).to_dict()
        except StudioError as exc:  # inputs not logged, or not a one-label classifier
            return error(422, exc.message)
        except Exception as exc:  # the database may be locked or gone
            return unreadable_log(exc)

    @app.get("/metrics")
    def metrics():
        from prometheus_client import CONTENT_TYPE_LATEST

        if not (monitor := app.state.monitor):
            return Response(f"# {monitor_off}\n", media_type=CONTENT_TYPE_LATEST)
        return Response(monitor.metrics.text(), media_type=CONTENT_TYPE_LATEST)

    return app
