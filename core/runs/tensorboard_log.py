"""TensorBoard event files for every run (``<run>/tensorboard``): training loss, learning rate and speed per
step, validation loss and every numeric metric per evaluation. ``tensorboard --logdir runs`` shows all runs."""
from __future__ import annotations

from pathlib import Path

from . import events as ev
from .run_folder import RunFolder


class TensorBoardLog:
    """An event subscriber (process 0) that writes scalars; a write that fails never fails the run."""

    def __init__(self, run_dir: Path):
        self.path, self.writer = Path(run_dir) / RunFolder.TENSORBOARD, None

    def __call__(self, event: ev.Event) -> None:
        try:
            self._write(event)
        except Exception:  # e.g. a full disk: the run's own files report that, not its curves
            self.writer = None

    def _write(self, event: ev.Event) -> None:
        if isinstance(event, ev.TERMINAL):
            if self.writer:
                self.writer.close()
            return
        if not isinstance(event, (ev.Step, ev.Evaluation)):
            return
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.path))
        if isinstance(event, ev.Step):
            for name, value in (("loss", event.loss), ("learning_rate", event.learning_rate),
                                ("samples_per_s", event.samples_per_s)):
                self.writer.add_scalar(f"train/{name}", value, event.step)
        else:
            self.writer.add_scalar("validation/loss", event.loss, event.step)
            for name, value in event.metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"validation/{name}", value, event.step)
            self.writer.flush()
