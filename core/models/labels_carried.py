"""Training on from a fine-tuned model (a finished run, or any folder whose config names its labels): its output
layer is kept label by label, whatever order the new table's labels come in.

The rows of the head's weight and bias are re-indexed by label name; a label the base never saw gets a freshly
initialised row (and the head then counts among the new weights, which learn at ``head_lr_scale``); labels the new
table lacks are dropped. A one-output head (regression) has no label names and is carried as it is. Training
(``core.train.model_setup``) carries a base's head; loading a LoRA run trained on from a LoRA run widens the base's
head to the run's labels before the run's adapter (which holds the head's weights) goes on top.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..common.atomic import read_json
from ..common.errors import ModelError

DEFAULT_NAME = re.compile(r"LABEL_\d+")  # what transformers names the outputs of a model nobody named


@dataclass
class CarriedHead:
    """What carrying the head changed: the names of its weights when it gained fresh rows, and what to tell."""

    new_weights: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def own_labels(path: Path) -> list[str]:
    """The label names a base model's config.json gives its outputs, in output order ([] when unnamed)."""
    id2label = (read_json(Path(path) / "config.json", {}) or {}).get("id2label") or {}
    names = [str(id2label[key]) for key in sorted(id2label, key=int)]
    return [] if all(DEFAULT_NAME.fullmatch(name) for name in names) else names


def saved_head(path: Path) -> dict:
    """The head keywords of a folder whose config names its labels ({} when unnamed)."""
    names = own_labels(path)
    return dict(num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
                ) if names else {}


def carries_labels(path: Path, head: dict) -> bool:
    """Whether training from ``path`` with the task's ``head`` keywords keeps the base's output rows by name."""
    return bool(head.get("id2label")) and bool(own_labels(path))


def output_layer(model: torch.nn.Module, width: int) -> tuple[str, torch.nn.Linear]:
    """The model's output layer: its last linear layer with ``width`` outputs."""
    found = [(name, module) for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and module.out_features == width]
    if not found:
        raise ModelError(f"The base model has no output layer with one output per label ({width}); train from its "
                         "own base model instead.")
    return found[-1]


def quoted(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def carry_labels(model: torch.nn.Module, head: dict, source: str) -> CarriedHead:
    """Give ``model`` (loaded with the base's own head) the output rows of the labels in ``head`` (the task's
    ``from_pretrained`` keywords), copied by name from its old rows; the config takes the new label map."""
    old = [model.config.id2label[i] for i in range(len(model.config.id2label))]
    new = [head["id2label"][i] for i in range(len(head["id2label"]))]
    name, layer = output_layer(model, len(old))
    kept, added = [n for n in new if n in old], [n for n in new if n not in old]
    dropped = [n for n in old if n not in new]
    if old != new:
        fresh = torch.nn.Linear(layer.in_features, len(new), bias=layer.bias is not None, device=layer.weight.device,
                                dtype=layer.weight.dtype)
        parent, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(parent), attribute, fresh)
        model._init_weights(fresh)
        with torch.no_grad():
            for row, label in enumerate(new):
                if label in old:
                    fresh.weight[row] = layer.weight[old.index(label)]
                    if layer.bias is not None:
                        fresh.bias[row] = layer.bias[old.index(label)]
    model.config.update(head)
    if hasattr(model, "num_labels"):  # transformers' heads read their width from here in the loss
        model.num_labels = len(new)
    if not (added or dropped):
        return CarriedHead()
    said = [f"kept {len(kept)} label(s)"] + ([f"added {quoted(added)}"] if added else []) + (
        [f"dropped {quoted(dropped)}"] if dropped else [])
    weights = {f"{name}.{part}" for part, _ in model.get_submodule(name).named_parameters()} if added else set()
    return CarriedHead(weights, [f"Training on from {source}: {', '.join(said)}."
                                 + (" The added labels start untrained." if added else "")])
