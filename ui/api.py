"""API-only endpoint for headless clients (gradio_client): train on a table and wait for the result."""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from core import events as ev
from core import service
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
