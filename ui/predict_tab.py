"""Predict tab: one sentence -> label with probabilities; a whole table -> CSV with predictions."""
from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from core.errors import StudioError
from core.predict import load_predictor

from .context import AppContext, error_md, ok_md, run_picker, viewer_of
from .strings import t

EXAMPLES = [
    "Shares in the carmaker fell sharply after it cut its profit forecast.",
    "The striker scored twice as the champions won the league final.",
    "The new smartphone chip doubles battery life, the company says.",
    "这是一个非常好的产品，我非常喜欢它。",
    "酒店的服务太差了，再也不会来了。",
]


def _run_dir(ctx: AppContext, run_id: str | None, viewer: str | None) -> Path:
    if not run_id:
        runs = ctx.runs_with_model(viewer, "classification")
        if not runs:
            raise StudioError("There is no trained model yet: train one in the Train tab first.")
        run_id = runs[0].run_id
    path = ctx.store.path_of(run_id, viewer)
    if ctx.store.info(path).task != "classification":
        raise StudioError(f"'{run_id}' is an assistant, not a classifier: talk to it in the Chat tab.")
    return path


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    run, refresh = run_picker(t("run"), "predict-run")
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label=t("text_in"), lines=4, elem_id="predict-text")
            button = gr.Button(t("predict"), variant="primary", elem_id="predict-button")
            gr.Examples(EXAMPLES, inputs=text)
        with gr.Column():
            message = gr.HTML(elem_id="predict-message")
            label = gr.Label(label=t("prediction"), num_top_classes=5, elem_id="predict-label")
    with gr.Row():
        batch_in = gr.File(label=t("batch_in"), type="filepath", elem_id="batch-in")
        batch_out = gr.File(label=t("batch_out"), elem_id="batch-out")

    def predict(sentence: str, run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        """Predict the label of one text with the chosen run (default: the newest)."""
        if not sentence or not sentence.strip():
            return None, error_md("Type a sentence first.")
        try:
            prediction = load_predictor(_run_dir(ctx, run_id, viewer_of(request, browser_id))).predict([sentence])[0]
        except StudioError as exc:
            return None, error_md(exc.message)
        return prediction.probabilities, ""

    def predict_file(path: str | None, run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        """Predict every row of an uploaded table; returns a CSV with prediction columns."""
        if not path:
            return None, gr.skip()
        try:
            out = Path(tempfile.mkdtemp(prefix="sft-pred-")) / f"{Path(path).stem}_predictions.csv"
            predictor = load_predictor(_run_dir(ctx, run_id, viewer_of(request, browser_id)))
            frame = predictor.predict_file(path, out, limits=ctx.limits)
        except StudioError as exc:
            return None, error_md(exc.message)
        return str(out), ok_md(f"✅ Predicted {len(frame):,} rows.")

    def choose(selected: str | None, browser_id: str | None = None, request: gr.Request = None):
        return ctx.pick_run(selected, viewer_of(request, browser_id), "classification")[0]

    button.click(predict, [text, run, user], [label, message], api_name="predict", concurrency_limit=4)
    text.submit(predict, [text, run, user], [label, message], api_visibility="private", concurrency_limit=4)
    batch_in.upload(predict_file, [batch_in, run, user], [batch_out, message], api_name="predict_file")
    refresh.click(choose, [run, user], run, api_visibility="private")
    return {"choose": choose, "run": run}
