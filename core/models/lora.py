"""LoRA adapters (peft): wrap a classifier for training, reload a saved adapter, merge for export."""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..runs.config import TrainConfig

ADAPTER_CONFIG = "adapter_config.json"
BLOCK = re.compile(r"\.(layers|layer|h|block|blocks)\.\d+\.")  # the numbered blocks peft's layers_to_transform sees


def apply_lora(model, config: TrainConfig, task: str):
    """Freeze the base model and add LoRA adapters on every linear layer of its transformer blocks.

    ``task`` is "SEQ_CLS" (the classification head stays fully trainable) or "CAUSAL_LM". With
    ``config.lora_layers`` = N only the top N layers get adapters, so autograd never enters the layers
    below them: the backward pass shrinks with N.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    layers = model.config.num_hidden_layers
    top = min(config.lora_layers or layers, layers)
    return get_peft_model(model, LoraConfig(task_type=TaskType[task], r=config.lora_rank, lora_alpha=config.lora_alpha,
                                            lora_dropout=config.lora_dropout, target_modules=block_linear_names(model),
                                            layers_to_transform=list(range(layers - top, layers))))


def block_linear_names(model) -> list[str]:
    """Names of every linear layer inside the transformer blocks (attention and MLP), as QLoRA recommends."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and BLOCK.search(name)})


def is_adapter_run(run_dir: Path) -> bool:
    return (Path(run_dir) / ADAPTER_CONFIG).is_file()


def load_adapter(base_model, run_dir: Path, merge: bool):
    """The base classifier with the run's adapter on top; merged into plain weights when asked."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(base_model, run_dir)
    return model.merge_and_unload() if merge else model
