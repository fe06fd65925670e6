"""Getting a model ready to train: the tokenizer, the base model with the task's head, pruning, frozen
embeddings or LoRA, the optimizer, the batches, and a memory check before the first step."""
from __future__ import annotations

import threading
from pathlib import Path

import torch
from transformers import AutoConfig

from ..common.devices import free_memory_bytes
from ..common.errors import StudioError
from ..models.labels_carried import CarriedHead, carries_labels, carry_labels
from ..models.lora import apply_lora, is_adapter_run
from ..models.registry import resolve_model_path
from ..runs.config import TrainConfig
from ..runs.run_folder import RunFolder
from ..runs.weights import load_run_model


def length_grouped_batches(lengths: list[int], batch_size: int, generator: torch.Generator,
                           group: bool = True) -> list[list[int]]:
    """Shuffle, sort by length inside mega-batches of 50 batches, then shuffle batch order. ``group=False``:
    plain shuffled batches (more padding, but each batch mixes lengths)."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    mega = batch_size * (50 if group else 1)
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def activation_bytes(model_config, batch_size: int, seq_len: int) -> float:
    """Memory a training step's activations take (Korthikanti et al., fp32)."""
    hidden = getattr(model_config, "hidden_size", 768)
    heads = getattr(model_config, "num_attention_heads", 12)
    layers = getattr(model_config, "num_hidden_layers", 12)
    return seq_len * batch_size * hidden * (34 + 5 * heads * seq_len / hidden) * 2 * layers


def check_memory(model_config, batch_size: int, seq_len: int, device: torch.device) -> None:
    """Refuse settings whose activations cannot fit (x2 headroom)."""
    needed, free = activation_bytes(model_config, batch_size, seq_len) * 2, free_memory_bytes(device)
    if needed > free:
        raise StudioError(f"Batch size {batch_size} with sequences of {seq_len} tokens needs about "
                          f"{needed / 2**30:.0f} GB of memory, but only {free / 2**30:.0f} GB is free. "
                          "Lower the batch size or the max length.")


ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop")
HIDDEN_DROPOUT_KEYS = ("hidden_dropout_prob", "hidden_dropout", "dropout", "resid_pdrop", "embd_pdrop")


def training_overrides(path: Path, config: TrainConfig, device: torch.device) -> dict:
    """``from_pretrained`` keywords for training: the run's dropout rates under whichever names the
    architecture uses and, on the CPU, the plain ("eager") attention, which trains faster there than
    PyTorch's fused kernel with its slow CPU backward (BERT at 128 tokens, attention dropout 0: 0.42 ->
    0.27 s a step). GPUs keep transformers' default kernel."""
    names = AutoConfig.from_pretrained(path, local_files_only=True).to_dict()
    overrides = {key: config.attention_dropout for key in ATTENTION_DROPOUT_KEYS if key in names}
    overrides |= {key: config.hidden_dropout for key in HIDDEN_DROPOUT_KEYS if key in names}
    return {**overrides, "attn_implementation": "eager"} if device.type == "cpu" else overrides


def keep_bottom_layers(model, keep: int) -> None:
    """Structured pruning: drop the transformer layers above the bottom ``keep`` (0 or more than the model
    has: keep all). Fewer layers run in every forward pass; fine-tuning recovers what the top ones did."""
    count = getattr(model.config, "num_hidden_layers", 0)
    if not keep or keep >= count:
        return
    stack = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == count)
    del stack[keep:]
    model.config.num_hidden_layers = keep
    if isinstance(getattr(model.config, "layer_types", None), list):
        model.config.layer_types = model.config.layer_types[:keep]


def freeze_input_layers(model) -> None:
    """Keep the input layers as pretrained: those a model names itself (``input_layers()``: the speech encoder's
    lowest convolutions), else the token-embedding matrix unless an output layer shares it (a tied LM head).

    AdamW and gradient clipping then skip vocabulary x hidden weights (half of MiniLM's parameters) whose rows a
    batch barely touches; a speech step computes no gradient at the two finest time resolutions (1.8x faster).
    """
    if hasattr(model, "input_layers"):
        for module in model.input_layers():
            module.requires_grad_(False)
        return
    if model.main_input_name != "input_ids":  # an image model reads pixels
        return
    embeddings = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    if output is None or output.weight is not embeddings:
        embeddings.requires_grad_(False)


class FrozenBatchNorm2d(torch.nn.BatchNorm2d):
    """A batch norm that stays in evaluation mode (its running statistics), whatever ``train()`` asks."""

    def train(self, mode: bool = True):
        return super().train(False)


def train_only(model: torch.nn.Module, names: set[str]) -> None:
    """A linear probe: only the new head learns; the pretrained body stays as it is (batch norms included)."""
    if not names:
        raise StudioError("A linear probe needs a new output layer, but this base model already has one of the "
                          "right size. Turn the linear probe off.")
    for name, param in model.named_parameters():
        param.requires_grad_(name in names)
    for module in model.modules():
        if type(module) is torch.nn.BatchNorm2d:
            module.__class__ = FrozenBatchNorm2d
            module.eval()


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What training changes: the trainable weights and the running statistics of batch norms (image
    backbones). A resume checkpoint needs no more, since the frozen rest is reloaded from the base model
    (multilingual-e5-small: 85 MB instead of 471 MB per evaluation)."""
    state = {name: param.detach().contiguous() for name, param in model.named_parameters() if param.requires_grad}
    norms = [name for name, module in model.named_modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)]
    state |= {name: buffer.detach().contiguous() for name, buffer in model.named_buffers()
              if name.rpartition(".")[0] in norms}
    return state


def make_optimizer(model: torch.nn.Module, config: TrainConfig, new: set[str] = frozenset()) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and LayerNorm weights; the newly initialised weights ``new`` (the
    task's head) learn at ``head_lr_scale`` times the learning rate."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((param.ndim >= 2, name in new), []).append(param)
    groups = [{"params": params, "weight_decay": config.weight_decay if decayed else 0.0,
               "lr": config.learning_rate * (config.head_lr_scale if head else 1.0)}
              for (decayed, head), params in groups.items()]
    try:
        return torch.optim.AdamW(groups, lr=config.learning_rate, fused=True)
    except RuntimeError:  # torch < 2.4 has no fused AdamW on the CPU
        return torch.optim.AdamW(groups, lr=config.learning_rate)


# transformers builds a model under process-wide patches (empty "meta" weights first): two threads loading at once
# (the Train tab's short speed test and a real run) break each other's load, so loads for training take turns.
LOADING = threading.Lock()


def load_training_model(config: TrainConfig, task, data, device: torch.device, state: dict | None = None,
                        model_class: type | None = None):
    """The tokenizer (an image processor for images; ``state``: the task's fitted state), the base model from a local folder with the task's head (LoRA or frozen embeddings as
    configured; ``model_class``: another than the task's, e.g. the few-shot mode's), the names of the weights the
    base model did not have (the new head) and the warnings of carrying a fine-tuned base's labels over
    (``core.models.labels_carried``)."""
    with LOADING:
        return _load_training_model(config, task, data, device, state or {}, model_class or task.model_class)


def _load_training_model(config: TrainConfig, task, data, device: torch.device, state: dict, model_class: type):
    path = resolve_model_path(config.base_model)
    tokenizer = task.processor(config.base_model, state)
    task.check_tokenizer(tokenizer, config.base_model)
    head = task.head(data)
    carrying = carries_labels(path, head)  # a fine-tuned base: loaded with its own head, then re-indexed by label
    if is_adapter_run(path):  # a LoRA run as the base model (e.g. preference tuning after SFT): merged first
        model, loading = load_run_model(path, model_class, RunFolder(path).config().base_model), {}
    else:
        model, loading = model_class.from_pretrained(
            path, local_files_only=True, use_safetensors=True, ignore_mismatched_sizes=True, output_loading_info=True,
            **({} if carrying else head), **training_overrides(path, config, device))
    carried = carry_labels(model, head, path.name) if carrying else CarriedHead()
    new_weights = carried.new_weights | set(loading.get("missing_keys", ())) | {
        key if isinstance(key, str) else key[0] for key in loading.get("mismatched_keys", ())}
    if getattr(tokenizer, "pad_token_id", None) is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    keep_bottom_layers(model, config.keep_layers)
    if config.linear_probe:
        train_only(model, new_weights)
    elif config.lora:
        model = apply_lora(model, config, task.peft_task)
    elif config.freeze_embeddings:
        freeze_input_layers(model)
    return tokenizer, model, new_weights, carried.warnings
