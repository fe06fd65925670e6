"""Modalities as objects: every task's and base model's modality is registered (core and UI), each decodes what the
server is sent, refuses what it cannot read with a clear message, picks its base models, and the UI views fill
the Data, Predict and Evaluate tabs' components of their modality only."""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.common.errors import DataError, StudioError
from core.data.modalities import IMAGE, MODALITIES, TEXT, TOO_LARGE
from core.models.registry import REGISTRY
from core.tasks import TASKS, get_task
from core.tasks.types import TaskData
from ui.modalities import VIEWS, view_of

PNG = io.BytesIO()
Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(PNG, format="PNG")
PNG_B64 = base64.b64encode(PNG.getvalue()).decode()


def test_every_task_and_base_model_reads_a_registered_modality_with_a_view():
    for task in TASKS.values():
        assert task.modality is MODALITIES[task.modality.name], task.name
        assert view_of(task).name == task.modality.name
    assert {model.modality for model in REGISTRY.values()} <= set(MODALITIES)
    assert set(VIEWS) == set(MODALITIES)
    for modality in MODALITIES.values():
        assert modality.models() and all(m.modality == modality.name for m in modality.models().values())


@pytest.mark.parametrize("item, expected", [
    ("a short review", "a short review"),
    (PNG_B64, PNG.getvalue()),
    ("data:image/png;base64," + PNG_B64, PNG.getvalue()),
])
def test_each_modality_decodes_a_payload_item(item, expected):
    modality = TEXT if isinstance(expected, str) else IMAGE
    assert modality.decode(item, max_chars=100) == expected


@pytest.mark.parametrize("modality, item, message", [
    (TEXT, {"text": "a dict"}, "not a text"),
    (TEXT, 42, "not a text"),
    (IMAGE, "/srv/data/cat.png", "not a base64-encoded image (PNG, JPEG, WebP or BMP)"),  # never a server path
    (IMAGE, base64.b64encode(b"RIFF....WAVEfmt ").decode(), "not a base64-encoded image"),  # another kind of file
    (IMAGE, "data:audio/wav;base64,UklGRg==", "not a base64-encoded image"),
    (IMAGE, "data:image/png", "not a base64-encoded image"),
    (IMAGE, "ünïcode", "not a base64-encoded image"),
    (IMAGE, ["a list"], "not a base64-encoded image"),
])
def test_an_unknown_payload_kind_gets_a_clear_message(modality, item, message):
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        modality.decode(item, max_chars=100)
    assert caught.value.code != TOO_LARGE


def test_a_text_over_the_limit_is_too_large_and_an_image_is_not_counted_in_characters():
    with pytest.raises(DataError, match="longer than 1,000 characters") as caught:
        TEXT.decode("x" * 1001, max_chars=1000)
    assert caught.value.code == TOO_LARGE
    assert IMAGE.decode(PNG_B64, max_chars=1) == PNG.getvalue()


def test_text_checks_monitor_and_model_card_follow_the_modality():
    assert TEXT.text_checks and TEXT.monitored and not IMAGE.text_checks and not IMAGE.monitored
    assert (TEXT.processor_class, IMAGE.processor_class) == ("AutoTokenizer", "AutoImageProcessor")


def test_an_image_task_is_suggested_and_searches_image_models():
    task = get_task("image_classification")
    data = TaskData({"image": ["a.png"]}, [0], {"image": "image", "label": "label"}, ["cat"])
    suggestion = task.modality.suggest(task, data)
    assert REGISTRY[suggestion.model].modality == "image"
    assert suggestion.message() == f"Suggested base model: {suggestion.model}."
    assert task.modality.search_models(task, data) == list(IMAGE.models())


def test_a_text_search_tries_the_models_reading_the_texts_language():
    task = get_task("classification")
    data = TaskData({"text": ["这是一个很好的产品"] * 4}, [0, 1, 0, 1], {"text": "text", "label": "label"}, ["a", "b"])
    readers = task.modality.search_models(task, data)
    assert readers and all("zh" in REGISTRY[key].languages for key in readers)


def test_predict_rows_are_made_by_the_runs_modality_only():
    pairs, images = get_task("pairs"), get_task("image_classification")
    assert VIEWS["text"].rows(pairs, ["a", "b"]) == {"text_a": ["a"], "text_b": ["b"]}
    with pytest.raises(StudioError, match="fill in the second text"):
        VIEWS["text"].rows(pairs, ["a", " "])
    assert VIEWS["image"].rows(images, ["/tmp/x.png"]) == {"image": ["/tmp/x.png"]}
    with pytest.raises(StudioError, match="This model reads images: upload one"):
        VIEWS["text"].rows(images, ["a text typed for an image model", ""])
    with pytest.raises(StudioError, match="This model reads texts: type it"):
        VIEWS["image"].rows(pairs, ["/tmp/x.png"])
    assert VIEWS["text"].missing([" ", ""]) and VIEWS["image"].missing([None]) and not VIEWS["image"].missing(["x"])


def test_the_image_view_previews_each_class_and_shows_mistakes_with_a_file(tmp_path):
    files = []
    for i in range(9):
        files.append(str(tmp_path / f"{i}.png"))
        (tmp_path / f"{i}.png").write_bytes(PNG.getvalue())
    data = TaskData({"image": files}, [0] * 8 + [1], {"image": "image", "label": "label"}, ["cat", "dog"])
    grid = VIEWS["image"].preview(data)[0]["value"]
    assert [caption for _, caption in grid] == ["cat (8)"] * 6 + ["dog (1)"]
    assert VIEWS["image"].preview(None)[0]["visible"] is False and VIEWS["text"].preview(data) == []
    worst = pd.DataFrame({"image": [files[0], "/gone.png"], "label": ["cat", "dog"], "predicted": ["dog", "cat"],
                          "confidence": [0.91, 0.8]})
    assert VIEWS["image"].mistakes(worst)[0]["value"] == [(files[0], "cat → dog (0.91)")]
    assert VIEWS["image"].mistakes(worst.rename(columns={"image": "text"}))[0]["visible"] is False
