"""LoRA adapters (peft): wrap a classifier for training, reload a saved adapter, merge for export."""
from __future__ import annotations

from pathlib import Path

ADAPTER_CONFIG = "adapter_config.json"


def apply_lora(model, rank: int, alpha: int, dropout: float, task: str):
    """Freeze the base model and add LoRA adapters on peft's per-architecture target modules.

    ``task`` is "SEQ_CLS" (the classification head stays fully trainable) or "CAUSAL_LM".
    """
    from peft import LoraConfig, TaskType, get_peft_model

    return get_peft_model(model, LoraConfig(task_type=TaskType[task], r=rank, lora_alpha=alpha,
                                            lora_dropout=dropout))


def is_adapter_run(run_dir: Path) -> bool:
    return (Path(run_dir) / ADAPTER_CONFIG).is_file()


def load_adapter(base_model, run_dir: Path, merge: bool):
    """The base classifier with the run's adapter on top; merged into plain weights when asked."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(base_model, run_dir)
    return model.merge_and_unload() if merge else model
