"""API-only endpoint for headless clients (gradio_client): train on a table and wait for the result."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import gradio as gr

from core import events as ev
from core.config import TrainConfig
from core.data import read_table
from core.engine import TrainingJob
from core.language import suggest_model
from core.tasks import column_roles, get_task, prepare_data
from core.errors import StudioError

from .context import AppContext


def build(ctx: AppContext) -> None:
    with gr.Column(visible=False):
        data = gr.File(type="filepath")
        text_col = gr.Textbox()
        label_col = gr.Textbox()
        config_json = gr.Textbox()
        result = gr.JSON()
        trigger = gr.Button()

    def train(path: str, text_column: str, label_column: str, config: str, request: gr.Request) -> dict:
        """Train on a table with a JSON TrainConfig (partial is fine; "columns": {role: column} picks columns);
        waits in the queue, returns metrics."""
        try:
            if not path:
                raise StudioError("Upload a data file.")
            fields = json.loads(config) if config else {}
            if not isinstance(fields, dict):
                raise json.JSONDecodeError("not an object", config, 0)
            columns = fields.pop("columns", None) or {}
            settings = TrainConfig.from_dict(fields).validate()
            roles = column_roles(settings.task, columns, text_column, label_column)
            table = prepare_data(settings.task, read_table(path, ctx.limits), roles)
            if "base_model" not in fields:  # the model that reads the data, as the Data tab pre-selects
                settings = replace(settings, base_model=suggest_model(get_task(settings.task), table).model)
        except json.JSONDecodeError:
            raise gr.Error("The config must be a JSON object, e.g. {\"epochs\": 1, \"columns\": {\"text\": \"review\"}}.")
        except StudioError as exc:
            raise gr.Error(exc.message)
        job = TrainingJob(settings, table, ctx.store, data_name=Path(path).stem, owner=getattr(request, "username", None))
        job_id = ctx.queue.submit(job)
        while not job.done:
            job.events.wait(len(job.events.since(0)), timeout=1.0)
        last = job.events.since(0)[-1]
        if isinstance(last, ev.Failed):
            raise gr.Error(last.message)
        return {"job": job_id, "status": last.kind, "run_id": Path(last.run_dir).name, "metrics": last.metrics}

    trigger.click(train, [data, text_col, label_col, config_json], result, api_name="train", concurrency_limit=None)
