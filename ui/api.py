"""API-only endpoints for headless clients (gradio_client): train on a table and wait for the result, search
settings, slice a run's validation rows."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import gradio as gr

from core.common.errors import StudioError
from core.insight.slices import slice_run
from core.runs import events as ev
from core.search import space as search_space
from core.search import study as search
from core.train import service

from .context import AppContext, viewer_of


def build(ctx: AppContext) -> None:
    with gr.Column(visible=False):
        data = gr.File(type="filepath")
        text_col = gr.Textbox()
        label_col = gr.Textbox()
        config_json = gr.Textbox()
        result = gr.JSON()
        trigger = gr.Button()

    def train(path: str, text_column: str, label_column: str, config: str, request: gr.Request) -> dict:
        """Train on a table with a JSON object of settings: any of the declared TrainConfig names
        (core.runs.config.SETTINGS; another name is refused with the known ones), plus "columns": {role: column}
        to pick columns; waits in the queue, returns metrics."""
        try:
            if not path:
                raise StudioError("Upload a data file.")
            fields = json.loads(config) if config else {}
            if not isinstance(fields, dict):
                raise json.JSONDecodeError("not an object", config, 0)
            columns = fields.pop("columns", None) or {}
            plan = service.plan_run(path, fields, columns, limits=ctx.limits, text_column=text_column,
                                    label_column=label_column)
        except json.JSONDecodeError:
            raise gr.Error("The config must be a JSON object, e.g. {\"epochs\": 1, \"columns\": {\"text\": \"review\"}}.")
        except StudioError as exc:
            raise gr.Error(exc.message)
        job = service.make_job(plan, ctx.store, owner=getattr(request, "username", None))
        job_id = ctx.queue.submit(job)
        last = service.wait_for_outcome(job)
        if isinstance(last, ev.Failed):
            raise gr.Error(last.message)
        return {"job": job_id, "status": last.kind, "run_id": Path(last.run_dir).name, "metrics": last.metrics}

    trigger.click(train, [data, text_col, label_col, config_json], result, api_name="train", concurrency_limit=None)

    with gr.Column(visible=False):
        search_json = gr.Textbox()
        tune_trigger = gr.Button()

    def tune(path: str, text_column: str, label_column: str, config: str, wanted: str, request: gr.Request) -> dict:
        """Search settings on Optuna: a JSON TrainConfig as for /train (the base run) and a JSON search, e.g.
        {"search": {"learning_rate": [1e-5, 1e-3], "epochs": []}, "trials": 6, "timeout_s": 600,
        "pruner": "median"}; trials wait in the job queue; returns every trial and the best."""
        try:
            if not path:
                raise StudioError("Upload a data file.")
            fields, options = json.loads(config or "{}"), json.loads(wanted or "{}")
            if not isinstance(fields, dict) or not isinstance(options, dict):
                raise json.JSONDecodeError("not an object", config, 0)
            columns = fields.pop("columns", None) or {}
            space = {name: tuple(bounds or ()) for name, bounds in (options.pop("search", None) or
                                                                    {n: () for n in search_space.DEFAULT_SEARCH}).items()}
            settings = search_space.SearchSettings(space, **options)
            record, study = search.create_study(path, fields, columns, settings, ctx.store.root,
                                                text_column=text_column, label_column=label_column)
        except (json.JSONDecodeError, TypeError):
            raise gr.Error("The config and the search must be JSON objects, e.g. {\"search\": {\"learning_rate\": "
                           "[1e-5, 1e-3]}, \"trials\": 6}.")
        except StudioError as exc:
            raise gr.Error(exc.message)
        run = search.SearchRun(record, study, ctx.store, ctx.queue, getattr(request, "username", None)).start()
        run.join()
        if run.error:
            raise gr.Error(run.error)
        best = search.best(study)
        return {"study": record.name, "metric": record.metric,
                "best": asdict(best) if best else None, "trials": [asdict(r) for r in search.results(study)]}

    tune_trigger.click(tune, [data, text_col, label_col, config_json, search_json], result, api_name="tune",
                       concurrency_limit=None)

    with gr.Column(visible=False):
        run_id, column, browser = gr.Textbox(), gr.Textbox(), gr.Textbox()
        slices_trigger = gr.Button()

    def slices(run: str, by: str, browser_id: str | None = None, request: gr.Request = None) -> dict:
        """A run's validation metric per value of a column kept with it (or "input length"), worst first: as
        `python -m core slices --run RUN --by COLUMN --json`; a column not kept is refused with the usable ones."""
        try:
            return slice_run(ctx.store.path_of(run, viewer_of(request, browser_id)), by).to_dict()
        except StudioError as exc:
            raise gr.Error(exc.message)

    slices_trigger.click(slices, [run_id, column, browser], result, api_name="slices")
