"""Images to pixels: opening any common file safely (size limit, greyscale/RGBA/palette to RGB), a square
resize once per run, then per batch scaling to the backbone's range and, for training, random crops and flips."""
from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..common.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
MAX_PIXELS = 50_000_000  # larger images are refused (a decompression bomb can claim billions)
SIZES = (64, 224)  # the automatic training side: the images' typical side, rounded up to a multiple of 32, in these bounds


def shown_name(source) -> str:
    """How messages name an image: its file name, or "the image" for bytes."""
    return Path(source).name if isinstance(source, (str, Path)) else "the image"


def open_header(source) -> Image.Image:
    """An image opened lazily (only its header read), or a DataError naming the file and what is wrong."""
    name = shown_name(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except FileNotFoundError:
        raise DataError(f"The image '{name}' does not exist.") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning, OSError,
            ValueError, SyntaxError) as exc:
        if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            raise DataError(f"The image '{name}' has more pixels than the limit of {MAX_PIXELS / 1e6:.0f} million "
                            "(a decompression bomb?).") from None
        empty = isinstance(source, (str, Path)) and Path(source).is_file() and Path(source).stat().st_size == 0
        raise DataError(f"The image '{name}' " + ("is an empty file." if empty else "cannot be read (not an image, "
                        "or damaged).")) from None
    if image.width * image.height > MAX_PIXELS:
        raise DataError(f"The image '{name}' has {image.width:,} x {image.height:,} pixels; the limit is "
                        f"{MAX_PIXELS / 1e6:.0f} million.")
    return image


def rgb_square(source, size: int) -> np.ndarray:
    """The image as size x size x 3 uint8 (bicubic; transparency laid on white, greyscale repeated)."""
    image = open_header(source)
    name = shown_name(source)
    try:
        image.load()
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
        elif image.mode in ("I;16", "I;16B", "I;16L", "I"):
            scaled = np.asarray(image, dtype=np.float64)
            image = Image.fromarray((255 * scaled / max(scaled.max(), 1)).astype(np.uint8))
        return np.array(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"The image '{name}' is damaged and cannot be decoded ({exc}).") from None


def pixel_tensor(sources: list, size: int) -> torch.Tensor:
    """N x 3 x size x size uint8 pixels of many images."""
    out = torch.empty((len(sources), 3, size, size), dtype=torch.uint8)
    for i, source in enumerate(sources):
        out[i] = torch.from_numpy(rgb_square(source, size)).permute(2, 0, 1)
    return out


def training_side(sides: list[int]) -> int:
    """The square side to train at: the images' median longer side rounded up to a multiple of 32, between 64
    and 224 (the backbone's own size): small images train fast (8x8 digits at 64: 12x faster than at 224)."""
    typical = float(np.median(sides)) if sides else SIZES[1]
    return int(min(max(32 * np.ceil(typical / 32), SIZES[0]), SIZES[1]))


@dataclass(frozen=True)
class Normaliser:
    """uint8 pixels -> the backbone's input range, with optional training augmentation on the batch."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    size: tuple[int, int]
    augment: str = "off"  # "crops" or "crops_flips" (config.BATCH_AUGMENTATIONS) while training

    def __call__(self, pixels: torch.Tensor, device: torch.device, training: bool = False) -> torch.Tensor:
        x = pixels.to(device).float().div_(255)
        if training and self.augment != "off":
            x = self.augmenter()(x)
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
        return (x - mean) / std

    @functools.cache
    def augmenter(self) -> torch.nn.Module:
        """kornia's random resized crops (60-100% of the image, back to its size) and left-right mirrors."""
        import kornia.augmentation as K

        steps = [K.RandomResizedCrop(self.size, scale=(0.6, 1.0), ratio=(0.8, 1.25))]
        if self.augment == "crops_flips":
            steps.append(K.RandomHorizontalFlip())
        return torch.nn.Sequential(*steps)
