"""How the tabs show each modality (core.data.modalities), keyed by its name: the Data tab's preview of the loaded
rows, the Predict tab's input boxes with their example tables and the rows an input makes, and the Evaluate tab's
most confident mistakes. The tabs build every view's components and fill them here; none asks which modality a
task reads."""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar
from urllib.parse import quote

import gradio as gr
import pandas as pd

from core.common.errors import StudioError
from core.data.modalities import AUDIO, IMAGE, TEXT
from core.data.sound import duration
from core.tasks.base import Task
from core.tasks.types import TaskData

from . import charts
from .strings import t

IMAGES_PER_CLASS = 6  # shown in the Data tab's grid
CLIPS_PER_CLASS = 3  # players per class in the Data tab
DURATIONS_READ = 2000  # clips whose durations the Data tab's histogram shows
MISTAKES_SHOWN = 18
Predict = Callable[..., tuple]  # the Predict tab's (view, box values, run id, browser id, request) -> outputs
Endpoint = tuple[str, Callable, list]  # an API endpoint: its name, its function, its boxes (the first comes first)


class ModalityView:
    """Base: a modality whose rows and mistakes the Data and Evaluate tabs show only in their tables."""

    name: ClassVar[str]  # its modality's name
    hint: ClassVar[str]  # how a person gives a model of this modality its input
    predicts_example: ClassVar[bool] = False  # picking an example predicts it at once

    # -- Data tab ---------------------------------------------------------------
    def build_preview(self) -> list:
        """The Data tab's components for loaded rows of this modality (hidden until then)."""
        return []

    def preview(self, data: TaskData | None) -> list:
        """Updates of those components: ``data``, a task of this modality's rows, or hidden for None."""
        return []

    # -- Predict tab ------------------------------------------------------------
    def build_inputs(self) -> list:
        """The Predict tab's input boxes (hidden until a run of this modality is chosen)."""
        raise NotImplementedError

    def build_examples(self, boxes: list) -> list[gr.Dataset]:
        """Tables of a run's validation rows (core.deploy.examples) that fill the boxes."""
        raise NotImplementedError

    def shown(self, task: Task | None, examples: dict) -> list:
        """Updates of the boxes, then of the tables (``examples``: the run's), for a run of this modality."""
        raise NotImplementedError

    def missing(self, values: list) -> str:
        """What to give first, when the boxes hold no input; else ""."""
        raise NotImplementedError

    def rows(self, task: Task, values: list) -> dict[str, list]:
        """The predictor's rows (role -> one value) for the boxes' values; refuses a task of another modality."""
        reads = view_of(task)
        if reads is not self:
            raise StudioError(f"This model reads {task.modality.noun}: {reads.hint}.")
        return self.row(task.view.predict_inputs, values)

    def row(self, inputs: tuple[str, ...], values: list) -> dict[str, list]:
        raise NotImplementedError

    def example_values(self, sample: list):
        """The boxes' values for a picked example."""
        raise NotImplementedError

    def triggers(self, boxes: list) -> list:
        """Events of the boxes that predict at once (besides the Predict button)."""
        return []

    def endpoints(self, boxes: list, predict: Predict) -> list[Endpoint]:
        """The API endpoints predicting one input, each a function of its first box, the run, the browser id and
        its other boxes."""
        raise NotImplementedError

    def build_explanation(self) -> list:
        """The Predict tab's components showing why a prediction was made (core.deploy.explain), hidden until then."""
        return []

    def explanation(self, found, value) -> list:
        """Updates of those components: ``found`` explains the prediction for the box's ``value``; None hides them."""
        return []

    # -- Evaluate tab -----------------------------------------------------------
    def build_mistakes(self) -> list:
        """The Evaluate tab's components for the most confident mistakes (hidden until a run has them)."""
        return []

    def mistakes(self, worst: pd.DataFrame | None) -> list:
        """Updates of those components for a run's worst validation rows (task.mistakes)."""
        return []


class TextView(ModalityView):
    """Texts: one box (two for pairs) with a table of example rows; rows and mistakes are shown as tables."""

    name = TEXT.name
    hint = "type it in the text box"

    def build_inputs(self) -> list:
        return [gr.Textbox(label=t("text_in"), lines=4, elem_id="predict-text"),
                gr.Textbox(label=t("text_b_in"), lines=2, visible=False, elem_id="predict-text-b")]

    def build_examples(self, boxes: list) -> list[gr.Dataset]:
        return [gr.Dataset(components=boxes[:1], samples=[], label=t("examples"), layout="table", visible=False,
                           elem_id="predict-examples"),
                gr.Dataset(components=boxes, samples=[], label=t("examples"), layout="table", visible=False,
                           elem_id="predict-pair-examples")]

    def shown(self, task: Task | None, examples: dict) -> list:
        pairs, hidden = task is not None and len(task.view.predict_inputs) > 1, gr.update(samples=[], visible=False)
        return [gr.update(visible=True), gr.update(visible=pairs), hidden if pairs else examples,
                examples if pairs else hidden]

    def missing(self, values: list) -> str:
        return "" if values[0] and values[0].strip() else "Type a sentence first."

    def row(self, inputs: tuple[str, ...], values: list) -> dict[str, list]:
        sentence, second = values
        if len(inputs) > 1 and not (second or "").strip():
            raise StudioError("This model compares two texts: fill in the second text too.")
        return dict(zip(inputs, ([sentence], [second or ""])))

    def example_values(self, sample: list) -> tuple:
        return sample[0], sample[1] if len(sample) > 1 else ""

    def endpoints(self, boxes: list, predict: Predict) -> list[Endpoint]:
        def one(sentence: str, run_id: str | None, browser_id: str | None = None, second: str = "",
                request: gr.Request = None):
            """Predict one input with the chosen run (default: the newest); pairs also take the second text."""
            return predict(self, [sentence, second], run_id, browser_id, request)

        return [("predict", one, boxes[:1]), ("predict_pair", one, boxes)]

    def build_explanation(self) -> list:
        return [gr.HighlightedText(label=t("explanation"), show_legend=False, visible=False,
                                   elem_id="predict-explanation")]

    def explanation(self, found, value) -> list:
        """The words as a heat map (integrated gradients)."""
        if found is None:
            return [gr.update(value=None, visible=False)]
        return [gr.update(value=[(f"{word} ", weight) for word, weight in found.words], visible=True)]


def examples_per_class(data: TaskData, role: str, per_class: int) -> list[tuple[str, str]]:
    """(file, "class (count)") for the first ``per_class`` files of every class, class by class."""
    counts, shown = data.class_counts(), {}
    for path, target in zip(data.inputs[role], data.targets):
        if len(shown.setdefault(target, [])) < per_class:
            shown[target].append(path)
    return [(path, f"{data.label_names[k]} ({counts[data.label_names[k]]:,})") for k in sorted(shown)
            for path in shown[k]]


class FileView(ModalityView):
    """A modality given as one file: one box, a table of the run's validation files that predicts the one picked,
    and an API endpoint taking a file path."""

    predicts_example = True
    missing_text: ClassVar[str]  # when the box is empty
    endpoint: ClassVar[str]  # the API name of predicting one file

    def build_examples(self, boxes: list) -> list[gr.Dataset]:
        return [gr.Dataset(components=boxes, samples=[], label=t("examples"), visible=False,
                           elem_id=f"{boxes[0].elem_id}-examples")]

    def shown(self, task: Task | None, examples: dict) -> list:
        return [gr.update(visible=True), examples]

    def missing(self, values: list) -> str:
        return "" if values[0] else self.missing_text

    def row(self, inputs: tuple[str, ...], values: list) -> dict[str, list]:
        return {inputs[0]: [values[0]]}

    def example_values(self, sample: list):
        chosen = sample[0]
        return chosen.get("path") if isinstance(chosen, dict) else chosen

    def endpoints(self, boxes: list, predict: Predict) -> list[Endpoint]:
        def one(path: str | None, run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
            """Classify one file with the chosen run (default: the newest)."""
            return predict(self, [path], run_id, browser_id, request)

        return [(self.endpoint, one, boxes)]

    def mistaken_files(self, worst: pd.DataFrame | None) -> list[tuple[str, str]]:
        """(file, "true → predicted (confidence)") of the most confident mistakes whose file is still there."""
        if worst is None or self.name not in worst.columns:  # the modality's name is its column's
            return []
        return [(row[self.name], f"{row['label']} → {row['predicted']} ({row['confidence']:.2f})")
                for _, row in worst.head(MISTAKES_SHOWN).iterrows() if Path(str(row[self.name])).is_file()]


class ImageView(FileView):
    """Images: a grid per class, an upload box predicted at once, and a gallery of the worst mistakes."""

    name = IMAGE.name
    hint = "upload one in the image box"
    missing_text = "Upload an image first."
    endpoint = "predict_image"

    def build_preview(self) -> list:
        return [gr.Gallery(label=t("image_grid"), columns=IMAGES_PER_CLASS, height="auto", visible=False,
                           elem_id="data-images")]

    def preview(self, data: TaskData | None) -> list:
        """A few images of every class, each captioned with its class and the class's count."""
        if data is None:
            return [gr.update(value=None, visible=False)]
        return [gr.update(value=examples_per_class(data, IMAGE.role, IMAGES_PER_CLASS), visible=True)]

    def build_inputs(self) -> list:
        return [gr.Image(label=t("image_in"), type="filepath", visible=False, height=240, elem_id="predict-image")]

    def triggers(self, boxes: list) -> list:
        return [boxes[0].upload]

    def build_explanation(self) -> list:
        return [gr.Image(label=t("saliency"), interactive=False, visible=False, height=240,
                         elem_id="predict-saliency")]

    def explanation(self, found, value) -> list:
        """The picture with its saliency map (occlusion) in red."""
        if found is None:
            return [gr.update(value=None, visible=False)]
        return [gr.update(value=found.overlay(value), visible=True)]

    def build_mistakes(self) -> list:
        return [gr.Gallery(label=t("mistake_images"), columns=6, height="auto", visible=False,
                           elem_id="eval-mistake-images")]

    def mistakes(self, worst: pd.DataFrame | None) -> list:
        shown = self.mistaken_files(worst)
        return [gr.update(value=shown, visible=bool(shown))]


def players(items: list[tuple[str, str]]) -> str:
    """HTML audio players, each under its caption, for (file path, caption) pairs (files gradio may serve)."""
    return "".join(f'<figure style="display:inline-block;margin:4px"><figcaption>{html.escape(caption)}'
                   f'</figcaption><audio controls preload="none" src="/gradio_api/file={quote(path)}"></audio></figure>'
                   for path, caption in items)


class AudioView(FileView):
    """Sound clips: players per class and the durations in the Data tab, a microphone or upload box predicted at
    once, and players of the worst mistakes."""

    name = AUDIO.name
    hint = "record or upload one in the sound box"
    missing_text = "Record or upload a sound clip first."
    endpoint = "predict_audio"

    def build_preview(self) -> list:
        return [gr.HTML(label=t("clip_players"), visible=False, elem_id="data-clips"),
                gr.Plot(label=t("clip_lengths"), visible=False, elem_id="data-durations")]

    def preview(self, data: TaskData | None) -> list:
        """A few players per class, captioned with the class and its count, and a histogram of the durations."""
        if data is None:
            return [gr.update(value="", visible=False), gr.update(value=None, visible=False)]
        items = examples_per_class(data, AUDIO.role, CLIPS_PER_CLASS)
        seconds = [duration(path) for path in data.inputs[AUDIO.role][:DURATIONS_READ]]
        return [gr.update(value=f"<b>{t('clip_players')}</b><br>" + players(items), visible=True),
                gr.update(value=charts.durations(seconds), visible=True)]

    def build_inputs(self) -> list:
        return [gr.Audio(label=t("audio_in"), sources=["upload", "microphone"], type="filepath", visible=False,
                         elem_id="predict-audio")]

    def triggers(self, boxes: list) -> list:
        return [boxes[0].upload, boxes[0].stop_recording]

    def build_mistakes(self) -> list:
        return [gr.HTML(visible=False, elem_id="eval-mistake-clips")]

    def mistakes(self, worst: pd.DataFrame | None) -> list:
        shown = self.mistaken_files(worst)
        return [gr.update(value=f"<b>{t('mistake_clips')}</b><br>" + players(shown) if shown else "",
                          visible=bool(shown))]


VIEWS: dict[str, ModalityView] = {view.name: view for view in (TextView(), ImageView(), AudioView())}


def view_of(task: Task | None) -> ModalityView:
    """The view of a task's modality; before any run is chosen, the text view."""
    return VIEWS[(task.modality if task else TEXT).name]


@dataclass
class PredictInputs:
    """One modality's components in the Predict tab: its input boxes and the example tables that fill them."""

    view: ModalityView
    boxes: list
    tables: list[gr.Dataset]

    def updates(self, task: Task | None, examples: dict) -> list:
        """Its boxes and tables shown for a run of its modality (``examples``: the run's), else hidden."""
        if view_of(task) is self.view:
            return self.view.shown(task, examples)
        return [gr.update(visible=False) for _ in self.boxes] + [gr.update(samples=[], visible=False)
                                                                  for _ in self.tables]


def preview_updates(task: Task | None, data: TaskData | None) -> list:
    """Every view's Data tab preview: the loaded task's filled with ``data``, the others (all, for None) hidden."""
    return [u for view in VIEWS.values() for u in view.preview(data if task and view_of(task) is view else None)]


def explanation_updates(view: ModalityView | None = None, found=None, value=None) -> list:
    """Every view's Predict tab explanation: ``view``'s showing ``found`` for the box's ``value``, the others (all,
    for None) hidden."""
    return [u for v in VIEWS.values() for u in v.explanation(found if v is view else None, value)]


def mistake_updates(worst: pd.DataFrame | None) -> list:
    """Every view's Evaluate tab mistakes for a run's worst validation rows."""
    return [u for view in VIEWS.values() for u in view.mistakes(worst)]
