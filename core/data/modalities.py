"""Modalities: what a task's inputs are (texts, images or sound clips), as Ludwig's input features. Each owns how an input sent
to the prediction server becomes a model input, whether the text checks of the data and the monitor apply, and
which registered base models read it (the one suggested for the data, those a search may try); a task points at
its modality (``Task.modality``)."""
from __future__ import annotations

import base64
from typing import ClassVar

from ..common.errors import DataError
from ..models.language import ModelSuggestion, models_reading, script_mix, suggest_text_model
from ..models.registry import BaseModel, models_for
from .pixels import open_header
from .sound import duration

TOO_LARGE = "too_large"  # the DataError code of a served input over the size limit (HTTP 413, not 422)


class Modality:
    """Base of every modality; the defaults suggest and search its registered models in registry order."""

    name: ClassVar[str]  # as the models registry names what a base model reads (``BaseModel.modality``)
    role: ClassVar[str]  # the input role (and column) of a task reading one input of it
    noun: ClassVar[str]  # its inputs as messages name them: "texts", "images"
    payload: ClassVar[str]  # one input as the prediction server takes it, for messages
    processor_class: ClassVar[str]  # the transformers class an export's model card loads the preprocessing with
    processor_inputs: ClassVar[str]  # the model card's arguments to that processor
    text_checks: ClassVar[bool] = False  # duplicates, near duplicates, leakage, lengths, language (core.insight)
    monitored: ClassVar[bool] = False  # the prediction server's monitor watches its inputs (core.deploy.monitoring)
    tokens: ClassVar[bool] = False  # read as tokens whose embeddings an explanation attributes (core.deploy.explain)
    pixels: ClassVar[bool] = False  # read as pixels an explanation greys patch by patch (core.deploy.saliency)

    def models(self) -> dict[str, BaseModel]:
        """The registered base models that read it."""
        return models_for(self.name)

    def suggest(self, task, data) -> ModelSuggestion:
        """The registered base model to train ``data`` (a task's cleaned rows) on."""
        return ModelSuggestion(next(iter(self.models())))

    def search_models(self, task, data) -> list[str]:
        """The registered base models a search over ``data`` may try."""
        return list(self.models())

    def decode(self, item, max_chars: int):
        """One input of a server request as the model reads it, or a DataError whose message completes
        "Input 3 is ..." (code TOO_LARGE for one over the size limit)."""
        raise NotImplementedError

    def file_bytes(self, item, check) -> bytes:
        """A base64-encoded file (optionally a data: URL) as bytes that ``check`` reads without a DataError."""
        if isinstance(item, str):
            try:
                data = base64.b64decode(item.split(",", 1)[1] if item.startswith("data:") else item, validate=True)
                check(data)
                return data
            except (ValueError, IndexError, DataError):  # binascii.Error is a ValueError
                pass
        raise DataError(f"not {self.payload}")


class TextModality(Modality):
    """Texts: the base model is picked by their language, and the text checks and the monitor apply."""

    name = role = "text"
    noun = "texts"
    payload = "a text"
    processor_class = "AutoTokenizer"
    processor_inputs = "texts, padding=True"
    text_checks = monitored = tokens = True

    def suggest(self, task, data) -> ModelSuggestion:
        return suggest_text_model(task, data)

    def search_models(self, task, data) -> list[str]:
        return models_reading(script_mix(task.texts(data))[0])

    def decode(self, item, max_chars: int) -> str:
        if not isinstance(item, str):
            raise DataError(f"not {self.payload}")
        if len(item) > max_chars:
            raise DataError(f"longer than {max_chars:,} characters", TOO_LARGE)
        return item


class ImageModality(Modality):
    """Images: files in the table, base64-encoded files (optionally data: URLs) on the server, never its paths."""

    name = role = "image"
    noun = "images"
    payload = "a base64-encoded image (PNG, JPEG, WebP or BMP)"
    processor_class = "AutoImageProcessor"
    processor_inputs = "images"
    pixels = True

    def decode(self, item, max_chars: int) -> bytes:
        """The image's bytes, read within the pixel limit (core.data.pixels); the size limit is the body's."""
        return self.file_bytes(item, lambda data: open_header(data).close())


class AudioModality(Modality):
    """Sound clips: files in the table, base64-encoded files (optionally data: URLs) on the server."""

    name = role = "audio"
    noun = "sound clips"
    payload = "a base64-encoded sound file (WAV, FLAC, OGG or MP3)"
    processor_class = "AutoFeatureExtractor"
    processor_inputs = ("waveforms, sampling_rate=16000, padding=\"max_length\", max_length=processor.clip_samples, "
                        "truncation=True")  # waveforms: 16 kHz mono floats (docs/tasks.md)

    def decode(self, item, max_chars: int) -> bytes:
        """The clip's bytes, once its header reads as sound; the size limit is the body's."""
        return self.file_bytes(item, duration)


TEXT, IMAGE, AUDIO = TextModality(), ImageModality(), AudioModality()
MODALITIES: dict[str, Modality] = {kind.name: kind for kind in (TEXT, IMAGE, AUDIO)}
