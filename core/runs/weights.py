"""Loading a finished run's weights: ONNX, a LoRA adapter on its base model, or full safetensors. Below both
training setup (a LoRA run as a base model) and prediction."""
from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig

from ..common.errors import ModelError
from ..models.labels_carried import carry_labels, saved_head
from ..models.lora import is_adapter_run, load_adapter
from ..models.onnx_model import ONNX_FILE, OnnxModel
from ..models.registry import resolve_model_path
from .run_folder import RunFolder


def weights_file(run_dir: Path) -> Path:
    """The file holding a run's (or an export's) weights: ONNX, a LoRA adapter or full safetensors."""
    run_dir = Path(run_dir)
    if (run_dir / ONNX_FILE).is_file():
        return run_dir / ONNX_FILE
    weights = run_dir / (RunFolder.ADAPTER if is_adapter_run(run_dir) else RunFolder.WEIGHTS)
    if not weights.is_file():
        raise ModelError(f"The run '{run_dir.name}' has no saved model ({weights.name}).")
    return weights


def load_run_model(run_dir: Path, model_class, base_model: str, merge: bool = True):
    """A run's model: ONNX, full weights, or the base model + the run's LoRA adapter (merged unless merge=False)."""
    if (run_dir / ONNX_FILE).is_file():
        return OnnxModel(run_dir)
    if is_adapter_run(run_dir):
        base_path = resolve_model_path(base_model)
        if is_adapter_run(base_path):  # tuned on top of another LoRA run (e.g. preference tuning after SFT)
            base = load_run_model(base_path, model_class, RunFolder(base_path).config().base_model)
            if (head := saved_head(run_dir)):  # this run's labels: the base's head re-indexed, the adapter's on top
                carry_labels(base, head, base_path.name)
        else:
            base = model_class.from_pretrained(base_path, config=AutoConfig.from_pretrained(run_dir, local_files_only=True),
                                               local_files_only=True, use_safetensors=True, ignore_mismatched_sizes=True)
        return load_adapter(base, run_dir, merge)
    return model_class.from_pretrained(run_dir, local_files_only=True, use_safetensors=True)
