"""Which part of a picture decided an image classifier's prediction: occlusion (captum's Occlusion). A grey patch,
an eighth of the model's input side, slides over the picture half a patch at a time; how much the predicted class's
log-odds (its logit less the log-sum-exp of the others') drops while a patch hides a pixel, averaged over those
patches, is that pixel's heat, scaled to [0, 1]. Log-odds keep the map alive on a nearly certain model, whose
probability (and, in float32, log-probability) does not move at all.
A faithful map: greying its hottest patches lowers the probability more than greying random ones
(bench/explain_images.py).
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..data.pixels import rgb_square
from .predict import Predictor

PATCHES = 8  # patches per side of the model's input
GREY = 0.5  # the patch's colour, on pixels in [0, 1]
SHOWN_SIDE = 256  # the overlay's side
RED = np.array([255.0, 0.0, 0.0])
OPACITY = 0.6  # of the red at the hottest pixel


@dataclass(frozen=True)
class Saliency:
    label: str
    heat: np.ndarray  # side x side of the model's input, in [0, 1]

    def png(self) -> bytes:
        """The heat map as a greyscale PNG (white: hiding it lowers the label's probability most)."""
        out = io.BytesIO()
        Image.fromarray(np.round(self.heat * 255).astype(np.uint8), mode="L").save(out, format="PNG")
        return out.getvalue()

    def to_dict(self) -> dict:
        return {"label": self.label, "saliency_png": base64.b64encode(self.png()).decode()}

    def overlay(self, source) -> np.ndarray:
        """The picture (a path or bytes) squared as the model sees it, with the heat laid over it in red."""
        picture = rgb_square(source, SHOWN_SIDE).astype(float)
        heat = Image.fromarray(self.heat.astype(np.float32), mode="F").resize((SHOWN_SIDE, SHOWN_SIDE),
                                                                              Image.Resampling.BILINEAR)
        alpha = OPACITY * np.clip(np.asarray(heat), 0, 1)[..., None]
        return np.round(picture * (1 - alpha) + RED * alpha).astype(np.uint8)


def occlusion(scores: Callable[[torch.Tensor], torch.Tensor], pixels: torch.Tensor, target: int,
              patch: int) -> np.ndarray:
    """Heat (side x side, in [0, 1]) of one picture (1 x 3 x side x side, in [0, 1]) for class ``target``:
    ``scores`` maps such pictures to per-class scores (log-odds)."""
    from captum.attr import Occlusion

    stride = max(1, patch // 2)
    drops = Occlusion(scores).attribute(pixels, sliding_window_shapes=(3, patch, patch),
                                               strides=(3, stride, stride), baselines=GREY, target=target,
                                               perturbations_per_eval=32)
    heat = drops[0].mean(0).clamp(min=0).cpu().numpy()
    return heat / heat.max() if heat.max() > 0 else heat


def model_pixels(predictor: Predictor, images: list) -> torch.Tensor:
    """Images (paths or bytes) as the model's input pictures, N x 3 x side x side in [0, 1]."""
    rows = {predictor.inputs[0]: images}
    return predictor.task.encode_inputs(predictor.tokenizer, rows, predictor.max_length)["pixel_values"].float() / 255


def log_odds(logits: torch.Tensor) -> torch.Tensor:
    """Each class's log-odds, log(p / (1 - p)) = its logit less the log-sum-exp of the other classes' logits."""
    others = logits.unsqueeze(1).expand(-1, logits.shape[-1], -1).masked_fill(
        torch.eye(logits.shape[-1], dtype=torch.bool, device=logits.device), float("-inf"))
    return logits - others.logsumexp(-1)


def class_scores(predictor: Predictor, score: Callable[[torch.Tensor], torch.Tensor] = log_odds
                 ) -> Callable[[torch.Tensor], torch.Tensor]:
    """Pictures in [0, 1] -> ``score`` of the model's logits (log-odds; ``softmax`` gives probabilities), through the
    task's own scaling (from uint8, as in prediction)."""
    task, tokenizer = predictor.task, predictor.tokenizer

    def scores(x: torch.Tensor) -> torch.Tensor:
        features = {"pixel_values": (x * 255).round().to(torch.uint8)}
        _, batch = next(task.feature_batches(tokenizer, features, len(x)))
        return score(predictor.model(**batch.to(predictor.device)).logits.float())

    return scores


def saliency(predictor: Predictor, images: list) -> list[Saliency]:
    """One occlusion map per image (a path or bytes), for the class the predictor gives it."""
    predictions = predictor.predict({predictor.inputs[0]: images})
    scores, found = class_scores(predictor), []
    with predictor._lock, torch.inference_mode():
        for picture, prediction in zip(model_pixels(predictor, images), predictions):
            target = predictor.label_names.index(prediction.label)
            heat = occlusion(scores, picture[None], target, max(1, picture.shape[-1] // PATCHES))
            found.append(Saliency(prediction.label, heat))
    return found
