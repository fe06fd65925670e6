"""Training configuration: one dataclass shared by the UI, the CLI and the engine."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..common.errors import ConfigError
from ..models.registry import DEFAULT_MODEL

PRECISIONS = ("auto", "fp32", "bf16")
AUGMENTATIONS = ("off", "eda", "synonyms", "entities", "oversample", "crops", "crops_flips")  # core.train.augment
BATCH_AUGMENTATIONS = ("crops", "crops_flips")  # images: new random crops (and mirror images) in every batch
COPYING_AUGMENTATIONS = ("eda", "synonyms", "entities")  # add augment_copies new rows per training row (at most)
PREFERENCE_LOSSES = ("dpo", "orpo")  # of the preference task (core/tasks/preference.py)
DEFAULT_TASK = "classification"  # what a table is trained for when nothing else is known


@dataclass
class TrainConfig:
    """Hyperparameters of one fine-tuning run."""

    task: str = DEFAULT_TASK  # a name from core.tasks.TASKS
    base_model: str = DEFAULT_MODEL
    learning_rate: float = 1e-4
    epochs: float = 0.0  # 0: derived from the table's size (core.train.schedule: at least min_steps steps, 3 to 20 epochs)
    min_steps: int = 300  # with derived epochs: small tables train for at least this many optimizer steps
    batch_size: int = 16
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    val_fraction: float = 0.2
    group_by_length: bool = True  # batches of similar lengths: less padding, faster (SmolLM2 1.9x), loss a little higher
    deduplicate: bool = True  # drop exact copies (same text and label) before the split, so none leaks into validation
    eval_every_steps: int = 0  # 0: about 5 evaluations per run, at least one per epoch
    early_stopping_patience: int = 3  # evaluations without a gain in the task's primary metric; 0 disables
    max_grad_norm: float = 1.0
    head_lr_scale: float = 1.0  # the newly initialised head learns at this multiple of the learning rate
    precision: str = "auto"
    max_steps: int = 0  # 0: derived from epochs
    attention_dropout: float = 0.0  # on attention probabilities; 0 skips a random mask per head (faster, same accuracy)
    hidden_dropout: float = 0.1  # on hidden states and the classifier input (BERT's own rate)
    freeze_embeddings: bool = True  # full fine-tuning keeps the token-embedding matrix as pretrained (faster)
    linear_probe: bool = False  # train only the new output layer; the pretrained body stays frozen (fast, a baseline)
    keep_layers: int = 0  # prune: keep only the bottom N transformer layers (0: all); fine-tuning recovers the rest
    lora: bool = False  # train LoRA adapters (peft) instead of every weight
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0  # as LLaMA-Factory: dropout on the adapter input costs a copy per layer (-20% rows/s)
    lora_layers: int = 0  # adapters on the top N transformer layers only (0: all); lower layers run no backward
    processes: int = 1  # data-parallel training processes (GPUs, or CPU processes); batch_size is per process
    augment: str = "off"  # the training split only: one of AUGMENTATIONS (core.train.augment)
    augment_copies: int = 1  # new rows per training row (eda, synonyms, entities)
    preference_loss: str = "dpo"  # the preference task's loss: one of PREFERENCE_LOSSES
    preference_beta: float = 0.1  # DPO: how far from the starting model; ORPO: the odds-ratio term's weight
    mlflow: str = ""  # log the run to MLflow: "" off, "local" (runs/mlflow.db) or a tracking URI (core.runs.mlflow_log)

    def validate(self) -> "TrainConfig":
        """Refuse out-of-range settings (what the task itself refuses is checked by ``core.tasks.check_config``)."""
        checks = [
            (0 < self.learning_rate <= 1, "learning rate must be between 0 and 1"),
            (0 < self.head_lr_scale <= 1000, "the head's learning-rate scale must be between 0 and 1000"),
            (0 <= self.epochs <= 1000, "epochs must be between 0 (derived from the table) and 1000"),
            (0 <= self.min_steps <= 1_000_000, "minimum steps must be between 0 and 1,000,000"),
            (1 <= self.batch_size <= 4096, "batch size must be between 1 and 4096"),
            (8 <= self.max_length <= 8192, "max length must be between 8 and 8192 tokens"),
            (0 <= self.warmup_ratio < 1, "warmup ratio must be between 0 and 1"),
            (0 <= self.weight_decay < 1, "weight decay must be between 0 and 1"),
            (0 < self.val_fraction < 0.9, "validation fraction must be between 0 and 0.9"),
            (self.eval_every_steps >= 0, "evaluation interval cannot be negative"),
            (self.early_stopping_patience >= 0, "early-stopping patience cannot be negative"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.max_steps >= 0, "max steps cannot be negative"),
            (1 <= self.lora_rank <= 256, "LoRA rank must be between 1 and 256"),
            (self.lora_alpha >= 1, "LoRA alpha must be at least 1"),
            (0 <= self.lora_dropout < 1, "LoRA dropout must be between 0 and 1"),
            (self.lora_layers >= 0, "LoRA layers cannot be negative"),
            (self.keep_layers >= 0, "layers to keep cannot be negative"),
            (1 <= self.processes <= 64, "processes must be between 1 and 64"),
            (0 <= self.attention_dropout < 1, "attention dropout must be between 0 and 1"),
            (0 <= self.hidden_dropout < 1, "hidden dropout must be between 0 and 1"),
            (not (self.lora and self.linear_probe), "choose LoRA or a linear probe, not both"),
            (1 <= self.augment_copies <= 10, "augmented copies per row must be between 1 and 10"),
            (self.preference_loss in PREFERENCE_LOSSES, f"preference loss must be one of {', '.join(PREFERENCE_LOSSES)}"),
            (0 < self.preference_beta <= 10, "preference beta must be between 0 and 10"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"Invalid setting: {message}.")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Settings by name, each converted to its field's type (a slider's 16.0 is the int 16; "1e-4" from
        JSON is the float); unknown names and values of the wrong kind are refused with a message."""
        kinds = {f.name: type(f.default) for f in fields(cls)}
        unknown = set(data) - set(kinds)
        if unknown:
            raise ConfigError(f"Unknown settings: {', '.join(sorted(unknown))}.")
        return cls(**{name: _coerce(name, value, kinds[name]) for name, value in data.items()})

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls.from_dict(json.loads(text))

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def _coerce(name: str, value, kind: type):
    """``value`` as ``kind`` (bool, int, float or str), or a ConfigError naming the setting."""
    try:
        if kind is bool:
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.strip().lower() in ("true", "1", "yes")
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
        elif kind is int and not isinstance(value, (list, dict)):
            number = float(value)
            if number.is_integer():
                return int(number)
        elif kind is float and not isinstance(value, (list, dict, bool)):
            return float(value)
        elif kind is str and isinstance(value, str):
            return value
    except (TypeError, ValueError, OverflowError):
        pass
    shown = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[kind]
    raise ConfigError(f"Invalid setting: {name.replace('_', ' ')} must be {shown} (got {value!r:.60}).")


PRESETS: dict[str, dict] = {  # time budgets: one pass; enough steps for the table; twice those steps, longer texts
    "Fast": dict(epochs=1.0, min_steps=0, batch_size=16, max_length=64, learning_rate=3e-4, hidden_dropout=0.0),
    "Balanced": dict(epochs=0.0, min_steps=300, batch_size=16, max_length=128, learning_rate=1e-4),
    "Accurate": dict(epochs=0.0, min_steps=600, batch_size=16, max_length=256, learning_rate=5e-5),
}
