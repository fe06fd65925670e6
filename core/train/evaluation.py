"""What a task's evaluation gets from the loop: the model, the validation rows, a forward pass and a cancel check."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..common.devices import autocast
from ..tasks.types import Encoded, TaskData


@dataclass
class EvalContext:
    """The model under training and its held-out rows, for ``Task.evaluate``."""

    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    precision: str
    val: TaskData
    task_state: dict
    encode: Callable[[TaskData], Encoded]  # tokenises rows as training did
    check_cancel: Callable[[], None]  # raises when Stop was pressed
    batch_size: int = 64
    status: Callable[[str], None] = lambda message: None  # shows what a long step is doing (the progress line)
    _val_encoded: Encoded | None = field(default=None, repr=False)

    @property
    def val_encoded(self) -> Encoded:
        """The validation rows, tokenised once (at the first evaluation) and kept."""
        if self._val_encoded is None:
            self._val_encoded = self.encode(self.val)
        return self._val_encoded

    def autocast(self):
        return autocast(self.device, self.precision)

    def forward_batches(self, enc: Encoded, forward=None):
        """Yield (row indices, batch, ``forward(model, batch)``; default the model's output) over ``enc``, shortest
        rows first, without gradients."""
        lengths = enc.lengths()
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        for start in range(0, len(order), self.batch_size):
            self.check_cancel()
            indices = order[start:start + self.batch_size]
            batch = enc.batch(indices, self.tokenizer, self.device)
            with torch.inference_mode(), self.autocast():
                yield indices, batch, forward(self.model, batch) if forward else self.model(**batch)

    def forward_validation(self) -> tuple[float, list[np.ndarray]]:
        """Mean validation loss and each row's logits (per-token tasks: one row of logits per token)."""
        enc = self.val_encoded
        total_loss, outputs = 0.0, [None] * len(enc.labels)
        for indices, _, out in self.forward_batches(enc):
            total_loss += float(out.loss) * len(indices)
            logits = out.logits.float().cpu().numpy()
            for row, i in enumerate(indices):
                outputs[i] = logits[row, :len(enc.input_ids[i])] if enc.per_token else logits[row]
        return total_loss / len(outputs), outputs
