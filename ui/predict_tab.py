"""Predict tab: one input -> the run's answer (label, score, labels or entities); a table -> CSV with predictions."""
from __future__ import annotations

import html
import tempfile
from pathlib import Path

import gradio as gr

from core.common.errors import StudioError
from core.common.foreground import person_waiting
from core.deploy.examples import example_inputs
from core.deploy.explain import explain, explainable
from core.deploy.predict import load_predictor
from core.tasks import get_task
from core.tasks.types import Prediction

from .context import AppContext, error_md, first_steps, first_steps_shown, ok_md, run_picker, viewer_of
from .modalities import VIEWS, ModalityView, PredictInputs, explanation_updates, view_of
from .strings import t


def _score(p: Prediction, sentence: str) -> tuple:
    return None, ok_md(f"Predicted score: <b id='predict-value'>{p.value:.4f}</b>"), None


def _spans(p: Prediction, sentence: str) -> tuple:
    found = ", ".join(f"{html.escape(s['text'])} ({s['entity']})" for s in p.spans) or "no entities"
    entities = [{k: s[k] for k in ("entity", "start", "end")} for s in p.spans]
    return None, ok_md(f"Entities: {found}"), {"text": sentence, "entities": entities}


def _labels(p: Prediction, sentence: str) -> tuple:
    chosen = ", ".join(p.labels) or "none above its threshold"
    return p.probabilities, ok_md(f"Labels: <b>{html.escape(chosen)}</b>"), None


# One prediction as (probabilities for the label chart, a note, highlighted entities), per output kind's name
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


def run_inputs(ctx: AppContext, inputs: list[PredictInputs], run_id: str | None, viewer: str | None) -> list:
    """The inputs the run reads (one text box, two for sentence pairs, or an image), with examples from the run's own
    validation rows beside them: updates of every modality's boxes and example tables."""
    try:
        run_dir = _run_dir(ctx, run_id, viewer)
    except StudioError:
        return [u for i in inputs for u in i.updates(None, gr.update(samples=[], visible=False))]
    task = get_task(ctx.store.info(run_dir).task)
    labels = {role.name: role.label for role in task.roles}
    shown = gr.update(samples=example_inputs(run_dir), headers=[labels.get(b, b) for b in task.view.predict_inputs],
                      visible=True)
    return [u for i in inputs for u in i.updates(task, shown)]


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    steps = first_steps("predict-first-steps")
    run, refresh = run_picker(t("run"), "predict-run")
    with gr.Row():
        with gr.Column():
            boxes = {name: view.build_inputs() for name, view in VIEWS.items()}
            button = gr.Button(t("predict"), variant="primary", elem_id="predict-button")
            inputs = [PredictInputs(view, boxes[name], view.build_examples(boxes[name]))
                      for name, view in VIEWS.items()]
        with gr.Column():
            message = gr.HTML(elem_id="predict-message")
            label = gr.Label(label=t("prediction"), num_top_classes=5, elem_id="predict-label")
            spans = gr.HighlightedText(label=t("entities"), combine_adjacent=False, visible=False, elem_id="predict-spans")
            explanations = [c for view in VIEWS.values() for c in view.build_explanation()]
    with gr.Row():
        batch_in = gr.File(label=t("batch_in"), type="filepath", elem_id="batch-in")
        batch_out = gr.File(label=t("batch_out"), elem_id="batch-out")

    @person_waiting()
    def predict(view: ModalityView, values: list, run_id: str | None, browser_id: str | None,
                request: gr.Request | None) -> tuple:
        """Predict one input (the values of a modality's boxes) with the chosen run (default: the newest)."""
        if (missing := view.missing(values)):
            return None, error_md(missing), None
        try:
            predictor = load_predictor(_run_dir(ctx, run_id, viewer_of(request, browser_id)))
            p = predictor.predict(view.rows(predictor.task, values))[0]
        except StudioError as exc:
            return None, error_md(exc.message), None
        return RENDERERS[predictor.task.output.name](p, values[0])

    def show(values: dict, request: gr.Request = None):
        """The prediction from the boxes of the run's modality, with only the outputs its task produces visible."""
        run_id, browser_id = values[run], values[user]
        try:
            task = get_task(ctx.store.info(_run_dir(ctx, run_id, viewer_of(request, browser_id))).task)
        except StudioError:
            task = None
        chosen = next(i for i in inputs if i.view is view_of(task))
        probabilities, note, entities = predict(chosen.view, [values[b] for b in chosen.boxes], run_id, browser_id,
                                                request)
        return (gr.update(value=probabilities, visible=entities is None), note,
                gr.update(value=entities, visible=entities is not None))

    @person_waiting()
    def explained(values: dict, request: gr.Request = None):
        """Why the run predicted what it did (core.deploy.explain): a text's words as a heat map, an image's
        saliency map in red; shown by the view of the run's modality."""
        try:
            predictor = load_predictor(_run_dir(ctx, values[run], viewer_of(request, values[user])))
            chosen = next(i for i in inputs if i.view is view_of(predictor.task))
            given = [values[b] for b in chosen.boxes]
            if explainable(predictor) is not None or chosen.view.missing(given):
                return explanation_updates()
            found = explain(predictor, given[:1])[0]
        except StudioError:
            return explanation_updates()
        return explanation_updates(chosen.view, found, given[0])

    @person_waiting()
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
        return str(out), ok_md(f"✔ Predicted {len(frame):,} rows.")

    def choose(selected: str | None, browser_id: str | None = None, request: gr.Request = None):
        viewer = viewer_of(request, browser_id)
        update, value = ctx.pick_run(selected, viewer, chat=False)
        return update, *run_inputs(ctx, inputs, value, viewer), first_steps_shown(ctx, viewer)

    def on_run(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        return run_inputs(ctx, inputs, run_id, viewer_of(request, browser_id))

    outputs = [label, message, spans]
    every_box = {run, user, *(b for i in inputs for b in i.boxes)}
    for trigger in [button.click, *(e for i in inputs for e in i.view.triggers(i.boxes))]:
        trigger(show, every_box, outputs, api_visibility="private", concurrency_limit=4).then(
            explained, every_box, explanations, api_visibility="private", concurrency_limit=4)
    with gr.Row(visible=False):  # API endpoints: plain values, /predict keeps its one-text signature
        for i in inputs:
            for api_name, fn, api_boxes in i.view.endpoints(i.boxes, predict):
                gr.Button().click(fn, [api_boxes[0], run, user, *api_boxes[1:]], outputs, api_name=api_name,
                                  concurrency_limit=4)
    batch_in.upload(predict_file, [batch_in, run, user], [batch_out, message], api_name="predict_file")
    shown_inputs = [c for i in inputs for c in (*i.boxes, *i.tables)]
    chosen = [run, *shown_inputs, steps]
    refresh.click(choose, [run, user], chosen, api_visibility="private")
    run.input(on_run, [run, user], shown_inputs, api_visibility="private")
    for i in inputs:
        for table in i.tables:
            picked = table.click(i.view.example_values, table, i.boxes, api_visibility="private")
            if i.view.predicts_example:
                picked.then(show, every_box, outputs, api_visibility="private").then(
                    explained, every_box, explanations, api_visibility="private")
            else:
                picked.then(explanation_updates, None, explanations, api_visibility="private")
    return {"choose": choose, "run": run, "outputs": chosen}
