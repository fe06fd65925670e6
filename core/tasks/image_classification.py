"""Image classification: an image column (file paths; see core.data.images for folders and zips) and a label
column; a pretrained image backbone with a new softmax head. Everything after the logits (metrics, predictions,
thresholds, baselines' shape) is the text classifier's."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification, BatchFeature

from ..common.errors import DataError
from ..data.images import IMAGE_SUFFIXES
from ..data.modalities import IMAGE
from ..data.pixels import Normaliser, open_header, pixel_tensor, training_side
from ..data.tables import LABEL_NAME_HINTS, as_strings, name_hint
from ..models import efficientnet_lite
from .classification import CLASS_CARDS, Classification, class_index, guess_label_column, normalise_label
from .types import Encoded, Role, TaskData, TaskView

IMAGE_NAME_HINTS = ("image", "img", "picture", "photo", "file", "path", "图片", "图像")
FLEXIBLE_SIDE = {efficientnet_lite.EfficientNetLiteConfig.model_type}  # convolutional: any side that is a multiple of 32
SIDE_SAMPLE = 300  # images whose headers set the training side
CLASSICAL_SIDE = 16  # the pixel baseline reads 16 x 16 RGB thumbnails


def looks_like_image_paths(values: pd.Series) -> bool:
    filled = values[values != ""]
    return len(filled) > 0 and filled.str.lower().str.endswith(tuple(IMAGE_SUFFIXES)).mean() >= 0.8


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


class ImageClassification(Classification):
    name = "image_classification"
    roles = (Role("image", "image", IMAGE_NAME_HINTS, text=False), Role("label", "label", LABEL_NAME_HINTS, text=False))
    view = TaskView("Classify images", "图像分类", ("image",), CLASS_CARDS, "confusion", "Per-class metrics")
    model_class = AutoModelForImageClassification
    modality = IMAGE
    encoding_status = "Reading the images"
    peft_task = ""  # no LoRA adapters for image backbones here
    suggested = {"learning_rate": 3e-3}  # a CNN with batch norms: digits 0.84 at 1e-4 vs 0.98 at 3e-3 (360 steps)
    bf16_on_cpu = False  # convolutions run no faster in bf16 on the CPU, and the digits learnt worse (0.84 vs 0.90)
    classical_name = "logistic regression on pixels"
    augmentations = ("crops", "crops_flips", "oversample")

    # -- columns and data -------------------------------------------------------
    def recognises(self, frame: pd.DataFrame) -> bool:
        return any(looks_like_image_paths(as_strings(frame[c])) for c in frame.columns)

    def guess_role(self, frame, role, chosen):
        if role.name == "label":
            return guess_label_column(frame)
        found = [c for c in frame.columns if looks_like_image_paths(as_strings(frame[c]))]
        if not found:
            raise DataError("No column names image files (.png, .jpg, .jpeg, .webp or .bmp).")
        return next((c for c in found if name_hint(c, IMAGE_NAME_HINTS)), found[0])

    def build(self, frame: pd.DataFrame, columns: dict[str, str]) -> TaskData:
        values = self.strings(frame, columns)
        images, labels = values["image"], values["label"].map(normalise_label)
        total = len(frame)
        keep = ((images != "") & (labels != "")).to_numpy(copy=True)
        unlabelled = int(((images != "") & (labels == "")).sum())
        problems = []
        for i in np.flatnonzero(keep):
            try:
                open_header(images.iloc[i]).close()
            except DataError as exc:
                keep[i] = False
                problems.append(exc.message)
        if not (labels != "").any():
            raise DataError("No image has a label. Put each class's images in a folder named after the class (e.g. "
                            "cats/1.jpg, dogs/2.jpg) and zip those folders, or give a table with a label column.")
        if not keep.any():
            raise DataError(f"No row has both a readable image and a label. {problems[0] if problems else ''}".strip())
        warnings = [f"{len(problems):,} image(s) could not be used and were left out, e.g.: {problems[0]}"] \
            if problems else []
        if unlabelled:
            warnings.append(f"{unlabelled:,} image(s) have no label and were left out.")
        names, targets = class_index(labels[keep], columns["label"])
        return TaskData({"image": images[keep].tolist()}, targets, columns, names, rows_total=total,
                        rows_dropped=total - int(keep.sum()), warnings=warnings)

    def describe(self, data: TaskData) -> str:
        return f"{len(data):,} images kept, {data.rows_dropped:,} dropped · {len(data.label_names)} classes"

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
