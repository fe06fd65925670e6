"""Checkpoints in a run folder: the best model (what Predict and export load) and the resume checkpoint (the
trainable weights plus optimizer, scheduler and RNG state), each written to a temp folder and moved in whole."""
from __future__ import annotations

import os
import shutil
from dataclasses import asdict

import torch
from safetensors.torch import load_file, save_file

from ..common.errors import ModelError
from ..runs.run_folder import RunFolder
from .callbacks import LoopState
from .model_setup import trainable_state


def save_model(folder: RunFolder, model, task_name: str, task_state: dict, lora: bool) -> None:
    """Weights (or the LoRA adapter) + config, with the task and its fitted state, then each file moved in."""
    tmp = folder / ".checkpoint-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    config = model.get_base_model().config if lora else model.config
    config.sft_studio = {"task": task_name, **task_state}
    model.save_pretrained(tmp, safe_serialization=True)
    if lora:
        config.save_pretrained(tmp)
    for item in tmp.iterdir():
        os.replace(item, folder / item.name)
    tmp.rmdir()


def save_resume(folder: RunFolder, model, loop: LoopState, optimizer, scheduler, epoch_rng: torch.Tensor) -> None:
    """Current trainable weights + optimizer/scheduler/RNG state, written to a temp folder then swapped in."""
    name = RunFolder.RESUME
    tmp, final, old = folder / f".{name}-tmp", folder / name, folder / f".{name}-old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save({"loop": asdict(loop), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch_rng": epoch_rng, "torch_rng": torch.get_rng_state()}, tmp / "state.pt")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def load_resume(folder: RunFolder, model, optimizer, scheduler, generator: torch.Generator,
                device: torch.device) -> LoopState:
    """Restore the weights and states ``save_resume`` wrote; returns the loop state to continue from."""
    resume = folder / RunFolder.RESUME
    weights = resume / "trainable.safetensors"
    if not weights.exists():  # resume checkpoints written before 2026-11-29 hold every weight
        weights = resume / RunFolder.WEIGHTS
    unexpected = model.load_state_dict(load_file(weights, device=str(device)), strict=False).unexpected_keys
    if unexpected:  # strict=False only because the frozen weights are not saved; names must still match
        raise ModelError(f"The resume checkpoint does not fit this model ({len(unexpected)} unknown weights, "
                         f"e.g. {unexpected[0]}).")
    state = torch.load(resume / "state.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    generator.set_state(state["epoch_rng"])
    torch.set_rng_state(state["torch_rng"])
    return LoopState(**state["loop"])
