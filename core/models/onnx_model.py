"""An exported ONNX model (fp32 or int8) behind the small part of a transformers model the Predictor uses."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

ONNX_FILE = "model.onnx"


class OnnxModel:
    """``model(**batch).logits`` and ``model.config`` over an ONNX Runtime session on the CPU."""

    batch_size = 8  # ONNX Runtime on a 2-core CPU: 328 rows/s at 8 rows a call, 244 at 16, 152 at 64 (int8 MiniLM)

    def __init__(self, folder: Path, threads: int = 0):
        import onnxruntime
        from transformers import AutoConfig

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per core
        self.session = onnxruntime.InferenceSession(str(folder / ONNX_FILE), options,
                                                    providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = AutoConfig.from_pretrained(folder, local_files_only=True)

    def __call__(self, **batch: torch.Tensor) -> SimpleNamespace:
        first = batch.get("input_ids", next(iter(batch.values())))
        feed = {}
        for name in self.input_names:  # token ids as int64 (token types zero when not given), pixels as float32
            value = batch[name] if name in batch else torch.zeros_like(first)
            feed[name] = value.cpu().numpy().astype(np.float32 if value.is_floating_point() else np.int64)
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(["logits"], feed)[0]))

    def to(self, _device) -> "OnnxModel":
        return self

    def eval(self) -> "OnnxModel":
        return self
