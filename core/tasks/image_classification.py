"""Image classification: an image column (file paths; see core.data.folders for folders and zips) and a label
column (core.tasks.file_classification); a pretrained image backbone with a new softmax head. Everything after the
logits (metrics, predictions, thresholds, baselines' shape) is the text classifier's."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification, BatchFeature

from ..common.errors import DataError
from ..data.modalities import IMAGE
from ..data.pixels import IMAGE_SUFFIXES, Normaliser, open_header, pixel_tensor, training_side
from ..models import efficientnet_lite
from .classification import CLASS_CARDS
from .file_classification import FileClassification, file_roles
from .types import Encoded, TaskData, TaskView

FLEXIBLE_SIDE = {efficientnet_lite.EfficientNetLiteConfig.model_type}  # convolutional: any side that is a multiple of 32
SIDE_SAMPLE = 300  # images whose headers set the training side
CLASSICAL_SIDE = 16  # the pixel baseline reads 16 x 16 RGB thumbnails


@dataclass
class ImageEncoded(Encoded):
    """Images resized once to the training side (uint8, N x 3 x side x side); scaled per batch."""

    pixels: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.uint8))
    normaliser: Normaliser | None = None
    training: bool = False  # random crops/flips (the run's augmentation) in every batch

    def lengths(self) -> list[int]:
        return [1] * len(self.labels)

    def batch(self, indices: list[int], tokenizer, device: torch.device) -> dict[str, torch.Tensor]:
        pixels = self.pixels[torch.tensor(indices)]
        return {"pixel_values": self.normaliser(pixels, device, self.training),
                "labels": torch.tensor([self.labels[i] for i in indices], dtype=torch.long, device=device)}


class ImageClassification(FileClassification):
    name = "image_classification"
    suffixes = IMAGE_SUFFIXES
    folders_hint = "cats/1.jpg, dogs/2.jpg"
    roles = file_roles("image", ("image", "img", "picture", "photo", "file", "path", "图片", "图像"))
    view = TaskView("Classify images", "图像分类", ("image",), CLASS_CARDS, "confusion", "Per-class metrics")
    model_class = AutoModelForImageClassification
    modality = IMAGE
    encoding_status = "Reading the images"
    peft_task = ""  # no LoRA adapters for image backbones here
    suggested = {"learning_rate": 3e-3}  # a CNN with batch norms: digits 0.84 at 1e-4 vs 0.98 at 3e-3 (360 steps)
    bf16_on_cpu = False  # convolutions run no faster in bf16 on the CPU, and the digits learnt worse (0.84 vs 0.90)
    classical_name = "logistic regression on pixels"
    augmentations = ("crops", "crops_flips", "oversample")

    def check_file(self, path: str) -> str | None:
        try:
            open_header(path).close()
        except DataError as exc:
            return exc.message
        return None

    # -- model --------------------------------------------------------------
    def fit(self, train: TaskData, config=None) -> dict:
        sample = random.Random(0).sample(train.inputs["image"], min(SIDE_SAMPLE, len(train)))
        sides = []
        for path in sample:
            with open_header(path) as image:
                sides.append(max(image.size))
        return {"image_size": training_side(sides), "augment": config.augment if config else "off"}

    def processor(self, base_model: str, state: dict):
        """The base model's image processor at the training side (a fixed-size backbone keeps its own: the
        state then records that)."""
        from ..models.registry import resolve_model_path

        path = resolve_model_path(base_model)
        processor = self.load_processor(path)
        if model_type(path) in FLEXIBLE_SIDE:
            processor.size = {"height": state["image_size"], "width": state["image_size"]}
        state["image_size"] = processor.size["height"]
        return processor

    def load_processor(self, folder):
        return AutoImageProcessor.from_pretrained(folder, local_files_only=True, backend="pil")

    def encode(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        side = tokenizer.size["height"]
        return ImageEncoded([], list(data.targets), pixels=pixel_tensor(data.inputs["image"], side),
                            normaliser=normaliser(tokenizer))

    def encode_training(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        encoded = self.encode(tokenizer, data, max_length, state)
        encoded.normaliser = normaliser(tokenizer, state.get("augment", "off"))
        encoded.training = True
        return encoded

    def encode_inputs(self, tokenizer, rows: dict[str, list], max_length: int) -> dict:
        return {"pixel_values": pixel_tensor(rows["image"], tokenizer.size["height"])}

    def feature_batches(self, tokenizer, features: dict, batch_size: int):
        pixels, scale = features["pixel_values"], normaliser(tokenizer)
        for start in range(0, len(pixels), batch_size):
            indices = list(range(start, min(start + batch_size, len(pixels))))
            yield indices, BatchFeature({"pixel_values": scale(pixels[start:start + batch_size], torch.device("cpu"))})

    def export_inputs(self, tokenizer):
        side = tokenizer.size["height"]
        return {"pixel_values": torch.zeros(2, 3, side, side)}, {"pixel_values": {0: "batch"}}

    # -- baselines ----------------------------------------------------------
    def classical_features(self, train, val):
        """16 x 16 RGB thumbnails, scaled to [0, 1]."""
        def thumbnails(data: TaskData) -> np.ndarray:
            return pixel_tensor(data.inputs["image"], CLASSICAL_SIDE).reshape(len(data), -1).numpy() / 255.0

        return thumbnails(train), thumbnails(val)

    def classical_model(self):
        """Logistic regression on standardised pixels."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))


def normaliser(processor, augment: str = "off") -> Normaliser:
    side = processor.size["height"]
    return Normaliser(tuple(processor.image_mean), tuple(processor.image_std), (side, side), augment)


def model_type(path) -> str:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path, local_files_only=True).model_type
