"""Predict tab: one input -> the run's answer (label, score, labels or entities); a table -> CSV with predictions."""
from __future__ import annotations

import html
import tempfile
from pathlib import Path

import gradio as gr

from core.errors import StudioError
from core.predict import load_predictor
from core.tasks import get_task
from core.tasks.base import Prediction

from .context import AppContext, error_md, ok_md, run_picker, viewer_of
from .strings import t

EXAMPLES = [
    "Shares in the carmaker fell sharply after it cut its profit forecast.",
    "The striker scored twice as the champions won the league final.",
    "The new smartphone chip doubles battery life, the company says.",
    "这是一个非常好的产品，我非常喜欢它。",
    "酒店的服务太差了，再也不会来了。",
]


def _score(p: Prediction, sentence: str) -> tuple:
    return None, ok_md(f"Predicted score: <b id='predict-value'>{p.value:.4f}</b>"), None


def _spans(p: Prediction, sentence: str) -> tuple:
    found = ", ".join(f"{html.escape(s['text'])} ({s['entity']})" for s in p.spans) or "no entities"
    entities = [{k: s[k] for k in ("entity", "start", "end")} for s in p.spans]
    return None, ok_md(f"Entities: {found}"), {"text": sentence, "entities": entities}


def _labels(p: Prediction, sentence: str) -> tuple:
    chosen = ", ".join(p.labels) or "none above its threshold"
    return p.probabilities, ok_md(f"Labels: <b>{html.escape(chosen)}</b>"), None


# One prediction as (probabilities for the label chart, a note, highlighted entities), per TaskView.output
RENDERERS = {"label": lambda p, sentence: (p.probabilities, "", None), "number": _score, "spans": _spans,
             "labels": _labels}


def _run_dir(ctx: AppContext, run_id: str | None, viewer: str | None) -> Path:
    if not run_id:
        runs = ctx.runs_with_model(viewer, chat=False)
        if not runs:
            raise StudioError("There is no trained model yet: train one in the Train tab first.")
        run_id = runs[0].run_id
    path = ctx.store.path_of(run_id, viewer)
    if get_task(ctx.store.info(path).task).generative:
        raise StudioError(f"'{run_id}' is an assistant, not a classifier: talk to it in the Chat tab.")
    return path


def second_box(ctx: AppContext, run_id: str | None, viewer: str | None) -> dict:
    """Show the second text box only for runs that read two texts (sentence pairs)."""
    try:
        inputs = get_task(ctx.store.info(_run_dir(ctx, run_id, viewer)).task).view.predict_inputs
    except StudioError:
        return gr.update(visible=False)
    return gr.update(visible=len(inputs) > 1)


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    run, refresh = run_picker(t("run"), "predict-run")
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label=t("text_in"), lines=4, elem_id="predict-text")
            text_b = gr.Textbox(label=t("text_b_in"), lines=2, visible=False, elem_id="predict-text-b")
            button = gr.Button(t("predict"), variant="primary", elem_id="predict-button")
            gr.Examples(EXAMPLES, inputs=text)
        with gr.Column():
            message = gr.HTML(elem_id="predict-message")
            label = gr.Label(label=t("prediction"), num_top_classes=5, elem_id="predict-label")
            spans = gr.HighlightedText(label=t("entities"), combine_adjacent=False, visible=False, elem_id="predict-spans")
    with gr.Row():
        batch_in = gr.File(label=t("batch_in"), type="filepath", elem_id="batch-in")
        batch_out = gr.File(label=t("batch_out"), elem_id="batch-out")

    def predict(sentence: str, run_id: str | None, browser_id: str | None = None, second: str = "",
                request: gr.Request = None):
        """Predict one input with the chosen run (default: the newest); pairs also take the second text."""
        if not sentence or not sentence.strip():
            return None, error_md("Type a sentence first."), None
        try:
            predictor = load_predictor(_run_dir(ctx, run_id, viewer_of(request, browser_id)))
            inputs = predictor.inputs
            if len(inputs) > 1 and not (second or "").strip():
                return None, error_md("This model compares two texts: fill in the second text too."), None
            p = predictor.predict(dict(zip(inputs, ([sentence], [second or ""]))))[0]
        except StudioError as exc:
            return None, error_md(exc.message), None
        return RENDERERS[predictor.task.view.output](p, sentence)

    def show(sentence: str, run_id: str | None, browser_id: str | None = None, second: str = "",
             request: gr.Request = None):
        """The prediction with only the outputs the run's task produces visible."""
        probabilities, note, entities = predict(sentence, run_id, browser_id, second, request)
        return (gr.update(value=probabilities, visible=entities is None), note,
                gr.update(value=entities, visible=entities is not None))

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
        viewer = viewer_of(request, browser_id)
        update, value = ctx.pick_run(selected, viewer, chat=False)
        return update, second_box(ctx, value, viewer)

    def on_run(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        return second_box(ctx, run_id, viewer_of(request, browser_id))

    outputs = [label, message, spans]
    button.click(show, [text, run, user, text_b], outputs, api_visibility="private", concurrency_limit=4)
    text.submit(show, [text, run, user, text_b], outputs, api_visibility="private", concurrency_limit=4)
    with gr.Row(visible=False):  # API endpoints: plain values, /predict keeps its one-text signature
        single, pair = gr.Button(), gr.Button()
    single.click(predict, [text, run, user], outputs, api_name="predict", concurrency_limit=4)
    pair.click(predict, [text, run, user, text_b], outputs, api_name="predict_pair", concurrency_limit=4)
    batch_in.upload(predict_file, [batch_in, run, user], [batch_out, message], api_name="predict_file")
    refresh.click(choose, [run, user], [run, text_b], api_visibility="private")
    run.input(on_run, [run, user], text_b, api_visibility="private")
    return {"choose": choose, "run": run, "outputs": [run, text_b]}
