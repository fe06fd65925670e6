"""Sound classification: an audio column (file paths; see core.data.folders for folders and zips) and a label
column (core.tasks.file_classification); a pretrained speech encoder reading 16 kHz waveforms with a new softmax
head. Every clip is read once per run, mixed to mono at 16 kHz and cut (its loudest stretch) or padded to the
run's clip length; everything after the logits is the text classifier's."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, BatchFeature

from ..common.errors import DataError
from ..data.modalities import AUDIO
from ..data.sound import (
    AUDIO_SUFFIXES,
    Waveforms,
    clip_length,
    duration,
    is_silent,
    logmel_statistics,
    shown_name,
    waveform_tensor,
)
from ..models import speech_embedding  # noqa: F401  (registers the speech-embedding architecture)
from .classification import CLASS_CARDS
from .file_classification import FileClassification, file_roles
from .types import Encoded, TaskData, TaskView

LENGTH_SAMPLE = 300  # clips whose durations set the clip length


@dataclass
class AudioEncoded(Encoded):
    """Clips cut or padded once to the run's length (int16, N x samples); scaled (and augmented) per batch."""

    samples: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int16))
    waveforms: Waveforms = Waveforms()
    training: bool = False

    def lengths(self) -> list[int]:
        return [1] * len(self.labels)

    def batch(self, indices: list[int], tokenizer, device: torch.device) -> dict[str, torch.Tensor]:
        return {"input_values": self.waveforms(self.samples[torch.tensor(indices)], device, self.training),
                "labels": torch.tensor([self.labels[i] for i in indices], dtype=torch.long, device=device)}


class AudioClassification(FileClassification):
    name = "audio_classification"
    suffixes = AUDIO_SUFFIXES
    folders_hint = "yes/1.wav, no/2.wav"
    roles = file_roles("audio", ("audio", "sound", "clip", "wav", "recording", "file", "path", "音频", "声音", "录音"))
    view = TaskView("Classify sounds", "声音分类", ("audio",), CLASS_CARDS, "confusion", "Per-class metrics")
    model_class = AutoModelForAudioClassification
    modality = AUDIO
    encoding_status = "Reading the sound clips"
    peft_task = ""  # no LoRA adapters for the convolutional speech encoder
    suggested = {"learning_rate": 1e-3}
    bf16_on_cpu = False  # convolutions run no faster in bf16 on the CPU
    classical_name = "logistic regression on log-mel statistics"
    augmentations = ("sound", "oversample")

    def check_file(self, path: str) -> str | None:
        try:
            duration(path)
            if is_silent(path):
                return f"The clip '{shown_name(path)}' is silent."
        except DataError as exc:
            return exc.message
        return None

    # -- model --------------------------------------------------------------
    def fit(self, train: TaskData, config=None) -> dict:
        return {"clip_samples": self.clip_samples(train), "augment": config.augment if config else "off"}

    def clip_samples(self, train: TaskData) -> int:
        """The run's clip length, from the durations of (a sample of) the training clips."""
        sample = random.Random(0).sample(train.inputs["audio"], min(LENGTH_SAMPLE, len(train)))
        return clip_length([duration(path) for path in sample])

    def processor(self, base_model: str, state: dict):
        """The base model's feature extractor, holding the run's clip length (saved with the run)."""
        from ..models.registry import resolve_model_path

        extractor = self.load_processor(resolve_model_path(base_model))
        extractor.clip_samples = state["clip_samples"]
        return extractor

    def load_processor(self, folder):
        return AutoFeatureExtractor.from_pretrained(folder, local_files_only=True)

    def encode(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        samples = waveform_tensor(data.inputs["audio"], tokenizer.clip_samples)
        return AudioEncoded([], list(data.targets), samples=samples)

    def encode_training(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        encoded = self.encode(tokenizer, data, max_length, state)
        encoded.waveforms, encoded.training = Waveforms(state.get("augment", "off")), True
        return encoded

    def encode_inputs(self, tokenizer, rows: dict[str, list], max_length: int) -> dict:
        return {"input_values": waveform_tensor(rows["audio"], tokenizer.clip_samples)}

    def feature_batches(self, tokenizer, features: dict, batch_size: int):
        samples, scale = features["input_values"], Waveforms()
        for start in range(0, len(samples), batch_size):
            indices = list(range(start, min(start + batch_size, len(samples))))
            yield indices, BatchFeature({"input_values": scale(samples[start:start + batch_size], torch.device("cpu"))})

    def export_inputs(self, tokenizer):
        return ({"input_values": torch.zeros(2, tokenizer.clip_samples)},
                {"input_values": {0: "batch", 1: "samples"}})

    # -- baselines ----------------------------------------------------------
    def classical_features(self, train, val):
        """Log-mel statistics of the clips at the run's length."""
        length = self.clip_samples(train)

        def statistics(data: TaskData):
            return logmel_statistics(waveform_tensor(data.inputs["audio"], length).numpy() / 32768.0)

        return statistics(train), statistics(val)

    def classical_model(self):
        """Logistic regression on standardised log-mel statistics."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
