"""Predict tab: one input -> the run's answer (label, score, labels or entities); a table -> CSV with predictions."""
from __future__ import annotations

import html
import tempfile
from pathlib import Path

import gradio as gr

from core.common.errors import StudioError
from core.common.foreground import person_waiting
from core.deploy.examples import example_inputs
from core.deploy.predict import load_predictor
from core.tasks import get_task
from core.tasks.types import Prediction

from .context import AppContext, error_md, first_steps, first_steps_shown, ok_md, run_picker, viewer_of
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


def run_inputs(ctx: AppContext, run_id: str | None, viewer: str | None) -> tuple[dict, ...]:
    """The inputs the run reads: one text box, two (sentence pairs) or an image; and examples from the run's own
    validation rows in the table (or gallery) beside them. Updates: text, second text, image, the three examples."""
    hidden = gr.update(samples=[], visible=False)
    try:
        run_dir = _run_dir(ctx, run_id, viewer)
    except StudioError:
        return gr.update(visible=True), gr.update(visible=False), gr.update(visible=False), hidden, hidden, hidden
    task = get_task(ctx.store.info(run_dir).task)
    labels = {role.name: role.label for role in task.roles}
    shown = gr.update(samples=example_inputs(run_dir), headers=[labels.get(b, b) for b in task.view.predict_inputs],
                      visible=True)
    images, pairs = task.modality == "image", len(task.view.predict_inputs) > 1
    return (gr.update(visible=not images), gr.update(visible=pairs), gr.update(visible=images),
            shown if not (pairs or images) else hidden, shown if pairs else hidden, shown if images else hidden)


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    steps = first_steps("predict-first-steps")
    run, refresh = run_picker(t("run"), "predict-run")
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label=t("text_in"), lines=4, elem_id="predict-text")
            text_b = gr.Textbox(label=t("text_b_in"), lines=2, visible=False, elem_id="predict-text-b")
            image = gr.Image(label=t("image_in"), type="filepath", visible=False, height=240, elem_id="predict-image")
            button = gr.Button(t("predict"), variant="primary", elem_id="predict-button")
            examples = gr.Dataset(components=[text], samples=[], label=t("examples"), layout="table", visible=False,
                                  elem_id="predict-examples")
            pair_examples = gr.Dataset(components=[text, text_b], samples=[], label=t("examples"), layout="table",
                                       visible=False, elem_id="predict-pair-examples")
            image_examples = gr.Dataset(components=[image], samples=[], label=t("examples"), visible=False,
                                        elem_id="predict-image-examples")
        with gr.Column():
            message = gr.HTML(elem_id="predict-message")
            label = gr.Label(label=t("prediction"), num_top_classes=5, elem_id="predict-label")
            spans = gr.HighlightedText(label=t("entities"), combine_adjacent=False, visible=False, elem_id="predict-spans")
    with gr.Row():
        batch_in = gr.File(label=t("batch_in"), type="filepath", elem_id="batch-in")
        batch_out = gr.File(label=t("batch_out"), elem_id="batch-out")

    @person_waiting()
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
        return RENDERERS[predictor.task.output.name](p, sentence)

    @person_waiting()
    def predict_image(path: str | None, run_id: str | None, browser_id: str | None = None,
                      request: gr.Request = None):
        """Classify one image file with the chosen run (default: the newest)."""
        if not path:
            return None, error_md("Upload an image first."), None
        try:
            predictor = load_predictor(_run_dir(ctx, run_id, viewer_of(request, browser_id)))
            if predictor.task.modality != "image":
                return None, error_md("This model reads text: type it in the text box."), None
            p = predictor.predict({"image": [path]})[0]
        except StudioError as exc:
            return None, error_md(exc.message), None
        return RENDERERS[predictor.task.output.name](p, path)

    def show(sentence: str, run_id: str | None, browser_id: str | None = None, second: str = "",
             picture: str | None = None, request: gr.Request = None):
        """The prediction with only the outputs the run's task produces visible."""
        if picture or not (sentence or "").strip() and image_run(run_id, viewer_of(request, browser_id)):
            probabilities, note, entities = predict_image(picture, run_id, browser_id, request)
        else:
            probabilities, note, entities = predict(sentence, run_id, browser_id, second, request)
        return (gr.update(value=probabilities, visible=entities is None), note,
                gr.update(value=entities, visible=entities is not None))

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

    def image_run(run_id: str | None, viewer: str | None) -> bool:
        try:
            return get_task(ctx.store.info(_run_dir(ctx, run_id, viewer)).task).modality == "image"
        except StudioError:
            return False

    def choose(selected: str | None, browser_id: str | None = None, request: gr.Request = None):
        viewer = viewer_of(request, browser_id)
        update, value = ctx.pick_run(selected, viewer, chat=False)
        return update, *run_inputs(ctx, value, viewer), first_steps_shown(ctx, viewer)

    def on_run(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        return run_inputs(ctx, run_id, viewer_of(request, browser_id))

    def use_example(sample: list) -> tuple:
        return sample[0], sample[1] if len(sample) > 1 else ""

    def use_image_example(sample: list):
        chosen = sample[0]
        return chosen.get("path") if isinstance(chosen, dict) else chosen

    outputs = [label, message, spans]
    button.click(show, [text, run, user, text_b, image], outputs, api_visibility="private", concurrency_limit=4)
    image.upload(show, [text, run, user, text_b, image], outputs, api_visibility="private", concurrency_limit=4)
    with gr.Row(visible=False):  # API endpoints: plain values, /predict keeps its one-text signature
        single, pair, one_image = gr.Button(), gr.Button(), gr.Button()
    single.click(predict, [text, run, user], outputs, api_name="predict", concurrency_limit=4)
    pair.click(predict, [text, run, user, text_b], outputs, api_name="predict_pair", concurrency_limit=4)
    one_image.click(predict_image, [image, run, user], outputs, api_name="predict_image", concurrency_limit=4)
    batch_in.upload(predict_file, [batch_in, run, user], [batch_out, message], api_name="predict_file")
    shown_inputs = [text, text_b, image, examples, pair_examples, image_examples]
    chosen = [run, *shown_inputs, steps]
    refresh.click(choose, [run, user], chosen, api_visibility="private")
    run.input(on_run, [run, user], shown_inputs, api_visibility="private")
    for table in (examples, pair_examples):
        table.click(use_example, table, [text, text_b], api_visibility="private")
    image_examples.click(use_image_example, image_examples, image, api_visibility="private").then(
        show, [text, run, user, text_b, image], outputs, api_visibility="private")
    return {"choose": choose, "run": run, "outputs": chosen}
